#pragma once
// Buffered byte reading with a running SHA-256, and small text helpers shared by the CSV and
// JSONL readers. Memory is one buffer (64 KiB), whatever the file size. Not thread-safe.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace certgate::connectors::csv {

// SHA-256 (OpenSSL EVP). hex() finishes the digest; call it once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256Hex(std::string_view data);
// SHA-256 of a whole file, streamed. Errors: NotFound, Permanent (unreadable).
core::Result<std::string> sha256File(const std::string& path, std::int64_t* bytes = nullptr);

class FileReader {
 public:
  FileReader() = default;
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Errors: NotFound, Permanent (exists but cannot be opened).
  core::Status open(const std::string& path);
  // Skips a UTF-8 byte order mark at the current position (call right after open()).
  void skipBom();
  // next byte (0..255) or -1 at end of file or on a read error (inline: called once per byte)
  int get() {
    if (pos_ >= len_ && !fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  // the same without consuming
  int peek() {
    if (pos_ >= len_ && !fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  bool failed() const { return failed_; }
  // The bytes already buffered after the current position (reads nothing); skip(n) consumes n
  // of them. For callers that scan runs of bytes instead of one get() per byte.
  std::string_view buffered() const { return {buf_.data() + pos_, len_ - pos_}; }
  void skip(std::size_t n) { pos_ += n; }
  // Reads up to the next '\n' (not stored; a preceding '\r' is kept). false at end of file when
  // nothing was read. `terminated` tells whether the line ended with '\n'. Stops after
  // `max_bytes` and sets `too_long`.
  bool readLine(std::string& out, bool& terminated, std::size_t max_bytes, bool& too_long);
  // SHA-256 of every byte read from the file so far (the whole file once get() returned -1).
  std::string digestHex() { return hash_.hex(); }

 private:
  bool fill();

  std::FILE* file_ = nullptr;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t len_ = 0;
  bool eof_ = false;
  bool failed_ = false;
  Sha256 hash_;
};

// Offset of the first byte that is not valid UTF-8 (overlong forms and surrogates count as
// invalid), or npos when all of `s` is valid.
std::size_t firstInvalidUtf8(std::string_view s);

// `raw` cut to at most `limit` bytes on a character boundary, invalid bytes shown as \xNN, so
// that it can be stored and displayed safely.
std::string excerpt(std::string_view raw, std::size_t limit = 300);

}  // namespace certgate::connectors::csv
