#pragma once
// A signer of RS256 JWTs for tests of pushes signed the way Canvas Live Events are over HTTPS
// with "Sign Payload" (developerdocs.instructure.com/services/canvas/data-services/live-events/
// overview/file.data_service_setup): the body is a compact JWS, its header names the key by
// `kid`, and the receiver holds the public keys as a JWK Set (RFC 7517 section 5). The key pair
// is generated here with OpenSSL; link OpenSSL::Crypto and certgate::connectors_common.

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "connectors/common/jwt.hpp"

namespace certgate::testing {

class JwtSigner {
 public:
  explicit JwtSigner(std::string kid, int bits = 2048) : kid_(std::move(kid)) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_RSA_gen(static_cast<unsigned int>(bits)), EVP_PKEY_free);
    if (!key) throw std::runtime_error("RSA key generation failed");
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) != 1)
      throw std::runtime_error("cannot write the private key");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    private_pem_.assign(data, static_cast<std::size_t>(size));
    n_ = component(key.get(), OSSL_PKEY_PARAM_RSA_N);
    e_ = component(key.get(), OSSL_PKEY_PARAM_RSA_E);
  }

  const std::string& kid() const { return kid_; }

  // This key as a JWK (RFC 7517 section 4, RFC 7518 section 6.3.1).
  nlohmann::json jwk() const {
    return {{"kty", "RSA"}, {"use", "sig"}, {"alg", "RS256"}, {"kid", kid_}, {"n", n_}, {"e", e_}};
  }

  // A compact JWS of `claims` with header {"alg":"RS256","typ":"JWT","kid":kid}; `header`
  // entries replace or add header fields (e.g. {"kid": "other"}).
  std::string sign(const nlohmann::json& claims,
                   const nlohmann::json& header = nlohmann::json::object()) const {
    nlohmann::json h = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", kid_}};
    for (const auto& [k, v] : header.items()) h[k] = v;
    auto token = connectors::jwt::signRs256(h.dump(), claims.dump(), private_pem_);
    if (!token) throw std::runtime_error("signing failed: " + token.error().message);
    return *token;
  }

 private:
  static std::string component(EVP_PKEY* key, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("no RSA parameter");
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(bn);
    return connectors::jwt::base64UrlEncode(bytes);
  }

  std::string kid_;
  std::string private_pem_;
  std::string n_;
  std::string e_;
};

// {"keys": [...]} of the given signers' public keys.
template <typename... Signers>
nlohmann::json jwks(const Signers&... signers) {
  return {{"keys", nlohmann::json::array({signers.jwk()...})}};
}

// An unsigned token ("alg":"none", RFC 7519 section 6.1) of `claims`.
inline std::string unsignedJwt(const nlohmann::json& claims) {
  return connectors::jwt::base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." +
         connectors::jwt::base64UrlEncode(claims.dump()) + ".";
}

}  // namespace certgate::testing
