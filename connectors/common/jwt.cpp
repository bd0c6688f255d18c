#include "connectors/common/jwt.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

namespace certgate::connectors::jwt {
namespace {

using core::ErrorKind;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// The reason of the most recent OpenSSL error (e.g. "no start line"), never key material; the
// queue is emptied so later calls start clean.
std::string opensslReason() {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return {};
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : "";
}

// Refuses to prompt for a passphrase: an encrypted key fails to load instead.
int noPassphrase(char*, int, int, void*) { return 0; }

BioPtr memBio(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return BioPtr(nullptr, BIO_free);
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

core::Error keyError(std::string_view option, std::string what) {
  return core::makeError(ErrorKind::Invalid, std::string(option) + ": " + std::move(what), {},
                         "give the unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or "
                         "-----BEGIN RSA PRIVATE KEY-----) of an RSA key pair of 2048 bits or more");
}

core::Result<PkeyPtr> loadPrivateKey(std::string_view pem, std::string_view option) {
  ERR_clear_error();
  if (pem.find("-----BEGIN") == std::string_view::npos)
    return keyError(option, "is not PEM text (no -----BEGIN line)");
  if (pem.find("ENCRYPTED") != std::string_view::npos)
    return keyError(option, "is an encrypted private key; certgate cannot prompt for its passphrase");
  BioPtr bio = memBio(pem);
  if (!bio) return keyError(option, "cannot be read");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr), EVP_PKEY_free);
  if (!key) {
    const std::string reason = opensslReason();
    return keyError(option, "is not a readable PEM private key" +
                                (reason.empty() ? std::string() : " (" + reason + ")"));
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    return keyError(option, "is not an RSA key (RS256 needs RSA)");
  if (EVP_PKEY_get_bits(key.get()) < 2048)
    return keyError(option, "is an RSA key of " + std::to_string(EVP_PKEY_get_bits(key.get())) +
                                " bits; at least 2048 are required");
  return key;
}

int decodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

core::Error jwsError(std::string what) {
  return core::makeError(ErrorKind::Invalid, "JWS " + std::move(what));
}

}  // namespace

std::string base64UrlEncode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < data.size()) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(data[i])) << 16;
    if (i + 1 < data.size()) n |= static_cast<unsigned>(static_cast<unsigned char>(data[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (i + 1 < data.size()) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = decodeChar(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFFu);
    }
  }
  return out;
}

core::Status checkRsaPrivateKey(std::string_view pem, std::string_view option) {
  auto key = loadPrivateKey(pem, option);
  if (!key) return key.error();
  return {};
}

core::Result<std::string> signRs256(std::string_view header_json, std::string_view claims_json,
                                    std::string_view pem_private_key, std::string_view option) {
  auto key = loadPrivateKey(pem_private_key, option);
  if (!key) return key.error();
  const std::string signing_input = base64UrlEncode(header_json) + "." + base64UrlEncode(claims_json);

  MdCtxPtr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key->get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, data, signing_input.size()) != 1) {
    return core::makeError(ErrorKind::Internal,
                           std::string(option) + ": RS256 signing failed (" + opensslReason() + ")");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                     signing_input.size()) != 1) {
    return core::makeError(ErrorKind::Internal,
                           std::string(option) + ": RS256 signing failed (" + opensslReason() + ")");
  }
  signature.resize(length);
  return signing_input + "." + base64UrlEncode(signature);
}

core::Result<VerifiedJws> verifyRs256(std::string_view jws, std::string_view pem_public_key) {
  const auto first = jws.find('.');
  const auto second = first == std::string_view::npos ? first : jws.find('.', first + 1);
  if (second == std::string_view::npos || jws.find('.', second + 1) != std::string_view::npos)
    return jwsError("is not compact serialization (three dot-separated parts)");
  auto header = base64UrlDecode(jws.substr(0, first));
  auto claims = base64UrlDecode(jws.substr(first + 1, second - first - 1));
  auto signature = base64UrlDecode(jws.substr(second + 1));
  if (!header || !claims || !signature) return jwsError("has a part that is not base64url");

  const nlohmann::json doc = nlohmann::json::parse(*header, nullptr, false);
  if (!doc.is_object()) return jwsError("header is not a JSON object");
  const auto alg = doc.find("alg");
  if (alg == doc.end() || !alg->is_string() || alg->get<std::string>() != "RS256")
    return jwsError("header alg is not RS256");

  ERR_clear_error();
  BioPtr bio = memBio(pem_public_key);
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassphrase, nullptr) : nullptr,
              EVP_PKEY_free);
  if (!key) return jwsError("verification key is not a PEM public key (" + opensslReason() + ")");

  MdCtxPtr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const std::string_view signing_input = jws.substr(0, second);
  const int ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1
          ? EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                             signature->size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size())
          : -1;
  ERR_clear_error();
  if (ok != 1) return jwsError("signature does not verify with the given public key");
  // Only signed claims are parsed.
  if (!nlohmann::json::parse(*claims, nullptr, false).is_object())
    return jwsError("claims are not a JSON object");
  return VerifiedJws{std::move(*header), std::move(*claims)};
}

core::Result<std::string> publicKeyPem(std::string_view pem_private_key, std::string_view option) {
  auto key = loadPrivateKey(pem_private_key, option);
  if (!key) return key.error();
  BioPtr out(BIO_new(BIO_s_mem()), BIO_free);
  if (!out || PEM_write_bio_PUBKEY(out.get(), key->get()) != 1)
    return core::makeError(ErrorKind::Internal,
                           std::string(option) + ": cannot write the public key (" +
                               opensslReason() + ")");
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  if (n <= 0 || data == nullptr) return core::makeError(ErrorKind::Internal, "empty public key");
  return std::string(data, static_cast<std::size_t>(n));
}

std::string randomJwtId() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // The CSPRNG failing is exceptional; a jti only has to be unique, not secret.
    thread_local unsigned long long counter = 0;
    const auto now = static_cast<unsigned long long>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    const unsigned long long mix[2] = {now, ++counter};
    std::memcpy(bytes.data(), mix, bytes.size());
  }
  return base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace certgate::connectors::jwt
