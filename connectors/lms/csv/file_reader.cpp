#include "connectors/lms/csv/file_reader.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>

namespace certgate::connectors::csv {

namespace {

constexpr std::size_t kBufferBytes = std::size_t{64} * 1024;

struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Length of the valid UTF-8 sequence starting at s[i], 0 when invalid (RFC 3629 table).
std::size_t utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t k, unsigned char lo, unsigned char hi) {
    return k < s.size() && b(k) >= lo && b(k) <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1, 0x80, 0xBF) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF) && cont(i + 3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

std::string describeErrno(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (which may or may not be buf).
  const char* msg = strerror_r(err, buf, sizeof buf);
  return msg != nullptr ? std::string(msg) : std::string("error ") + std::to_string(err);
}

}  // namespace

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx{EVP_MD_CTX_new()};
  bool ok = false;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ok = impl_->ctx && EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) == 1;
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
  if (impl_->ok && size > 0) impl_->ok = EVP_DigestUpdate(impl_->ctx.get(), data, size) == 1;
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!impl_->ok || EVP_DigestFinal_ex(impl_->ctx.get(), md, &len) != 1) return {};
  impl_->ok = false;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{len} * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0x0F];
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  // Called once per row (external ids): the digest is fetched once and the context reused, per
  // thread. The result is the same SHA-256 as Sha256 gives.
  struct Reused {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Reused() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local Reused reused;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (reused.md == nullptr || reused.ctx == nullptr ||
      EVP_DigestInit_ex2(reused.ctx, reused.md, nullptr) != 1 ||
      EVP_DigestUpdate(reused.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(reused.ctx, md, &len) != 1)
    return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(std::size_t{len} * 2, '\0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0x0F];
  }
  return out;
}

core::Result<std::string> sha256File(const std::string& path, std::int64_t* bytes) {
  FileReader in;
  if (auto st = in.open(path); !st) return st.error();
  std::int64_t n = 0;
  while (in.peek() >= 0) {  // a buffer at a time (peek() reads the next one)
    const std::size_t chunk = in.buffered().size();
    n += static_cast<std::int64_t>(chunk);
    in.skip(chunk);
  }
  if (in.failed()) return core::makeError(core::ErrorKind::Permanent, "cannot read " + path, path);
  if (bytes != nullptr) *bytes = n;
  std::string hex = in.digestHex();
  if (hex.empty())
    return core::makeError(core::ErrorKind::Internal, "SHA-256 failed (OpenSSL)", path);
  return hex;
}

FileReader::~FileReader() {
  if (file_ != nullptr) std::fclose(file_);
}

core::Status FileReader::open(const std::string& path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    const int err = errno;
    return core::makeError(err == ENOENT ? core::ErrorKind::NotFound : core::ErrorKind::Permanent,
                           "cannot open " + path + ": " + describeErrno(err), path,
                           "check that the file exists and that certgate may read it");
  }
  buf_.resize(kBufferBytes);
  return {};
}

bool FileReader::fill() {
  if (eof_ || failed_ || file_ == nullptr) return false;
  len_ = std::fread(buf_.data(), 1, buf_.size(), file_);
  pos_ = 0;
  if (len_ < buf_.size()) {
    if (std::ferror(file_) != 0) failed_ = true;
    eof_ = true;
  }
  hash_.update(buf_.data(), len_);
  return len_ > 0;
}

void FileReader::skipBom() {
  if (pos_ >= len_ && !fill()) return;
  // A BOM straddling the first buffer boundary is impossible: the buffer holds 64 KiB.
  if (len_ - pos_ >= 3 && std::memcmp(buf_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
}

bool FileReader::readLine(std::string& out, bool& terminated, std::size_t max_bytes,
                          bool& too_long) {
  out.clear();
  terminated = false;
  too_long = false;
  bool any = false;
  for (;;) {
    if (pos_ >= len_ && !fill()) return any;
    any = true;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
    const std::size_t take = nl != nullptr ? static_cast<std::size_t>(nl - start) : len_ - pos_;
    if (out.size() + take > max_bytes) {
      const std::size_t room = max_bytes - out.size();
      out.append(start, room);
      pos_ += room;
      too_long = true;
      return true;
    }
    out.append(start, take);
    pos_ += take;
    if (nl != nullptr) {
      ++pos_;
      terminated = true;
      return true;
    }
  }
}

std::size_t firstInvalidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = utf8Length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string excerpt(std::string_view raw, std::size_t limit) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t n = utf8Length(raw, i);
    if (n == 0) {
      if (out.size() + 4 > limit) break;
      const auto c = static_cast<unsigned char>(raw[i]);
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
      ++i;
      continue;
    }
    if (out.size() + n > limit) break;
    out.append(raw.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace certgate::connectors::csv
