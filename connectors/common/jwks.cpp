#include "connectors/common/jwks.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <climits>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "connectors/common/jwt.hpp"

namespace certgate::connectors::jwt {
namespace {

using core::ErrorKind;
using Json = nlohmann::json;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using BldPtr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

core::Error jwkError(std::string what) {
  return core::makeError(ErrorKind::Invalid, "JWK " + std::move(what), {},
                         "give the JWK Set the learning system publishes ({\"keys\": [...]}, "
                         "RSA keys with n and e)");
}

core::Error jwtError(std::string what) {
  return core::makeError(ErrorKind::Invalid, "JWT " + std::move(what));
}

BnPtr bignum(std::string_view b64url) {
  const auto bytes = base64UrlDecode(b64url);
  if (!bytes || bytes->empty() || bytes->size() > static_cast<std::size_t>(INT_MAX))
    return BnPtr(nullptr, BN_free);
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                         static_cast<int>(bytes->size()), nullptr),
               BN_free);
}

std::string stringField(const Json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A NumericDate claim (RFC 7519 section 2: seconds, possibly fractional); nullopt when absent,
// an error when present and not a number.
core::Result<std::optional<std::int64_t>> numericDate(const Json& claims, const char* key) {
  const auto it = claims.find(key);
  if (it == claims.end() || it->is_null()) return std::optional<std::int64_t>();
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    return jwtError(std::string("claim ") + key + " is not a NumericDate (unix seconds)");
  return std::optional<std::int64_t>(static_cast<std::int64_t>(std::floor(it->get<double>())));
}

}  // namespace

core::Result<std::string> rsaPublicKeyPem(std::string_view n, std::string_view e) {
  ERR_clear_error();
  BnPtr bn_n = bignum(n);
  BnPtr bn_e = bignum(e);
  if (!bn_n || !bn_e) return jwkError("n or e is not base64url");
  if (BN_num_bits(bn_n.get()) < 2048)
    return jwkError("is an RSA key of " + std::to_string(BN_num_bits(bn_n.get())) +
                    " bits; at least 2048 are required");
  BldPtr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    return core::makeError(ErrorKind::Internal, "cannot build the RSA key parameters");
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    ERR_clear_error();
    return jwkError("n and e do not form an RSA public key");
  }
  PkeyPtr key(raw, EVP_PKEY_free);
  BioPtr out(BIO_new(BIO_s_mem()), BIO_free);
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) {
    ERR_clear_error();
    return core::makeError(ErrorKind::Internal, "cannot write the JWK's public key as PEM");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  if (size <= 0 || data == nullptr)
    return core::makeError(ErrorKind::Internal, "empty public key");
  return std::string(data, static_cast<std::size_t>(size));
}

core::Result<std::vector<Jwk>> parseJwks(std::string_view json, std::string_view where) {
  const Json doc = Json::parse(json, nullptr, false);
  const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
  if (!doc.is_object() || keys == doc.end() || !keys->is_array())
    return core::makeError(ErrorKind::Invalid, "is not a JWK Set (a JSON object with \"keys\")",
                           std::string(where),
                           "give the JWKS document the learning system publishes");
  std::vector<Jwk> out;
  std::string skipped;
  std::size_t index = 0;
  for (const Json& k : *keys) {
    ++index;
    if (!k.is_object()) continue;
    const std::string use = stringField(k, "use");
    const std::string alg = stringField(k, "alg");
    if (stringField(k, "kty") != "RSA" || (!use.empty() && use != "sig") ||
        (!alg.empty() && alg != "RS256"))
      continue;
    auto pem = rsaPublicKeyPem(stringField(k, "n"), stringField(k, "e"));
    if (!pem) {
      skipped = "key " + std::to_string(index) + ": " + pem.error().message;
      continue;
    }
    out.push_back({stringField(k, "kid"), std::move(*pem)});
  }
  if (out.empty())
    return core::makeError(ErrorKind::Invalid,
                           "holds no RSA signing key" +
                               (skipped.empty() ? std::string() : " (" + skipped + ")"),
                           std::string(where),
                           "give the JWKS document the learning system publishes (kty RSA, "
                           "use sig, alg RS256)");
  return out;
}

core::Result<VerifiedJwt> verifyJwt(std::string_view token, const std::vector<Jwk>& keys,
                                    const JwtRules& rules) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return jwtError("is not compact serialization");
  const auto header_text = base64UrlDecode(token.substr(0, dot));
  if (!header_text) return jwtError("header is not base64url");
  const Json header = Json::parse(*header_text, nullptr, false);
  if (!header.is_object()) return jwtError("header is not a JSON object");
  // The algorithm is fixed by certgate, never chosen by the token.
  const std::string alg = stringField(header, "alg");
  if (alg != "RS256")
    return jwtError("header alg '" + alg.substr(0, 16) + "' is refused: only RS256 is accepted");

  VerifiedJwt v;
  v.kid = stringField(header, "kid");
  const Jwk* key = nullptr;
  if (v.kid.empty()) {
    if (keys.size() == 1) key = &keys.front();
  } else {
    for (const Jwk& k : keys)
      if (k.kid == v.kid) key = &k;
  }
  if (!key)
    return core::makeError(ErrorKind::NotFound,
                           v.kid.empty() ? std::string("JWT header has no kid and the key set "
                                                       "holds several keys")
                                         : "JWT kid '" + v.kid.substr(0, 64) +
                                               "' is not in the key set",
                           {}, "refresh the JWKS from the learning system");

  auto verified = verifyRs256(token, key->public_pem);
  if (!verified) return jwtError(verified.error().message);
  const Json claims = Json::parse(verified->claims_json, nullptr, false);
  if (!claims.is_object()) return jwtError("claims are not a JSON object");

  auto exp = numericDate(claims, "exp");
  if (!exp) return exp.error();
  if (*exp && **exp + rules.leeway_s < rules.now)
    return jwtError("has expired (exp " + std::to_string(**exp) + ", now " +
                    std::to_string(rules.now) + ")");
  for (const char* claim : {"nbf", "iat"}) {
    auto t = numericDate(claims, claim);
    if (!t) return t.error();
    if (*t && **t - rules.leeway_s > rules.now)
      return jwtError(std::string("claim ") + claim + " lies in the future (" +
                      std::to_string(**t) + ", now " + std::to_string(rules.now) + ")");
  }
  if (!rules.issuer.empty() && stringField(claims, "iss") != rules.issuer)
    return jwtError("issuer '" + stringField(claims, "iss").substr(0, 80) + "' is not '" +
                    rules.issuer + "'");
  v.jti = stringField(claims, "jti");
  v.claims_json = std::move(verified->claims_json);
  return v;
}

}  // namespace certgate::connectors::jwt
