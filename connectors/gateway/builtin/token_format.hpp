#pragma once
// Tokens of certgate's own token authority (the `builtin` gateway).
//
//   cgt_<32 base62 characters of CSPRNG output><6 base62 characters of CRC-32>
//
// - The prefix makes a leaked token recognisable (secret scanners, log redaction).
// - 32 characters drawn uniformly from 62 carry about 190 bits from OpenSSL's CSPRNG
//   (RAND_bytes, rejection-sampled so that every character is uniform).
// - The CRC-32 (IEEE) of "cgt_" + the random part, written as 6 base62 digits, lets a scanner
//   or a gateway reject a mistyped or made-up token offline, without asking certgate. It is not
//   a security measure: anyone can compute it.
// - certgate stores only digest(token) ("sha256:<hex>"); the token itself exists only in the
//   answer to the person who receives it.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace certgate::connectors::builtin {

inline constexpr std::string_view kTokenPrefix = "cgt_";
inline constexpr std::size_t kRandomChars = 32;
inline constexpr std::size_t kChecksumChars = 6;
inline constexpr std::size_t kTokenLength = kTokenPrefix.size() + kRandomChars + kChecksumChars;

// A new token. Fails (Internal) only when the CSPRNG fails.
core::Result<std::string> mintToken();

// True when `token` has the prefix, the length, only base62 characters and a matching checksum.
bool wellFormed(std::string_view token);

// "sha256:" + lower-case hex SHA-256 of the token: what the store keeps.
std::string digest(std::string_view token);

// The 6-character base62 CRC-32 of `body` (the token without its checksum).
std::string checksum(std::string_view body);

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of `data`.
std::uint32_t crc32(std::string_view data);

}  // namespace certgate::connectors::builtin
