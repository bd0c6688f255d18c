#include "connectors/common/webhook_signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

namespace certgate::connectors::webhook {
namespace {

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                  static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string mac(std::string_view key, std::string_view id, std::int64_t timestamp,
                std::string_view body) {
  std::string message;
  message.reserve(id.size() + body.size() + 24);
  message.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &len);
  return base64(out, len);
}

}  // namespace

core::Result<std::string> decodeSecret(std::string_view secret) {
  if (secret.rfind("whsec_", 0) == 0) secret.remove_prefix(6);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' || secret.back() == ' '))
    secret.remove_suffix(1);
  if (secret.empty() || secret.size() % 4 != 0)
    return core::makeError(core::ErrorKind::Invalid,
                           "the webhook signing secret is not base64 (optionally whsec_-prefixed)",
                           {}, "generate one with: printf 'whsec_%s' \"$(openssl rand -base64 32)\"");
  std::vector<unsigned char> out(3 * secret.size() / 4 + 1);
  const int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(secret.data()),
                                  static_cast<int>(secret.size()));
  if (len <= 0)
    return core::makeError(core::ErrorKind::Invalid,
                           "the webhook signing secret is not base64 (optionally whsec_-prefixed)",
                           {}, "generate one with: printf 'whsec_%s' \"$(openssl rand -base64 32)\"");
  std::size_t n = static_cast<std::size_t>(len);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (secret.size() >= 1 && secret[secret.size() - 1] == '=') --n;
  if (secret.size() >= 2 && secret[secret.size() - 2] == '=') --n;
  std::string key(reinterpret_cast<const char*>(out.data()), n);
  OPENSSL_cleanse(out.data(), out.size());
  return key;
}

std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body) {
  return "v1," + mac(key, id, timestamp, body);
}

bool verify(std::string_view key, std::string_view id, std::int64_t timestamp,
            std::string_view body, std::string_view header) {
  const std::string expected = mac(key, id, timestamp, body);
  bool ok = false;
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t end = header.find(' ', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view entry = header.substr(pos, end - pos);
    pos = end + 1;
    if (entry.rfind("v1,", 0) != 0) continue;
    entry.remove_prefix(3);
    if (entry.size() == expected.size() &&
        CRYPTO_memcmp(entry.data(), expected.data(), expected.size()) == 0)
      ok = true;
  }
  return ok;
}

}  // namespace certgate::connectors::webhook
