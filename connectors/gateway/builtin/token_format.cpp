#include "connectors/gateway/builtin/token_format.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>

namespace certgate::connectors::builtin {
namespace {

constexpr std::string_view kAlphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::array<std::uint32_t, 256> crcTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

bool isBase62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

}  // namespace

std::uint32_t crc32(std::string_view data) {
  static const auto table = crcTable();
  std::uint32_t c = 0xFFFFFFFFU;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

std::string checksum(std::string_view body) {
  std::uint64_t v = crc32(body);
  std::string out(kChecksumChars, '0');
  for (std::size_t i = kChecksumChars; i-- > 0;) {
    out[i] = kAlphabet[v % 62];
    v /= 62;
  }
  return out;
}

core::Result<std::string> mintToken() {
  std::string token(kTokenPrefix);
  // Rejection sampling: bytes >= 248 (= 4 x 62) are discarded so each character is uniform.
  unsigned char buf[64];
  while (token.size() < kTokenPrefix.size() + kRandomChars) {
    if (RAND_bytes(buf, sizeof buf) != 1)
      return core::makeError(core::ErrorKind::Internal, "the CSPRNG (RAND_bytes) failed", {},
                             "check the system's entropy source; no token was issued");
    for (unsigned char b : buf) {
      if (b >= 248) continue;
      token += kAlphabet[b % 62];
      if (token.size() == kTokenPrefix.size() + kRandomChars) break;
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  token += checksum(token);
  return token;
}

bool wellFormed(std::string_view token) {
  if (token.size() != kTokenLength || token.substr(0, kTokenPrefix.size()) != kTokenPrefix)
    return false;
  for (char c : token.substr(kTokenPrefix.size()))
    if (!isBase62(c)) return false;
  const std::string_view body = token.substr(0, kTokenLength - kChecksumChars);
  return checksum(body) == token.substr(kTokenLength - kChecksumChars);
}

std::string digest(std::string_view token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char b : md) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace certgate::connectors::builtin
