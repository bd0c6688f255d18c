// The audit chain's hash (store.hpp, "audit and runs"): a canonical, length-prefixed encoding
// of the row hashed with SHA-256. This function's output is stored: it must never change
// (a new encoding would be "certgate.audit.v2", verified side by side with v1).
#include <openssl/evp.h>

#include <array>
#include <new>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace certgate::store {

const char kAuditGenesis[] = "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

void field(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  // EVP_Digest with SHA-256 fails only when the allocator does: that is not recoverable here.
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1)
    throw std::bad_alloc();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

std::string auditRowHash(const AuditRow& row) {
  std::string encoded = "certgate.audit.v1\n";
  encoded.reserve(encoded.size() + row.actor.size() + row.action.size() + row.subject.size() +
                  row.details_json.size() + row.prev_hash.size() + 96);
  field(encoded, std::to_string(row.id));
  field(encoded, std::to_string(row.at.time_since_epoch().count()));
  field(encoded, row.actor);
  field(encoded, row.action);
  field(encoded, row.subject);
  field(encoded, row.details_json);
  field(encoded, std::to_string(row.run_id));
  field(encoded, row.prev_hash);
  return sha256Hex(encoded);
}

std::string AuditHead::str() const {
  return std::to_string(id) + ":" + hash;
}

const char* toString(AuditBreak::Kind kind) {
  switch (kind) {
    case AuditBreak::Kind::Missing:
      return "missing";
    case AuditBreak::Kind::Unchained:
      return "unchained";
    case AuditBreak::Kind::Changed:
      return "changed";
    case AuditBreak::Kind::Reordered:
      return "reordered";
    case AuditBreak::Kind::LinkBroken:
      return "link_broken";
    case AuditBreak::Kind::HeadMissing:
      return "head_missing";
    case AuditBreak::Kind::HeadMismatch:
      return "head_mismatch";
  }
  return "changed";
}

}  // namespace certgate::store
