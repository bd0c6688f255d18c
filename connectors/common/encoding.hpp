#pragma once
// Small encodings the HTTP-based connectors share. Pure; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>

namespace certgate::connectors::encoding {

// Percent-encoding of a URL query component (RFC 3986: everything but unreserved characters).
std::string urlEncode(std::string_view s);
// Standard base64 with padding (RFC 4648 section 4), e.g. for HTTP Basic credentials.
std::string base64(std::string_view data);
// Lower-case hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);
// `s` cut to `n` bytes ("..." appended when cut) with line breaks and tabs made spaces: a piece
// of a response body fit for an error message.
std::string excerpt(std::string_view s, std::size_t n = 200);

// SHA-256 over data handed over in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void reset();
  void update(std::string_view data);
  std::string hex();  // of everything since the last reset(); resets

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace certgate::connectors::encoding
