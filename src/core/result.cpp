#include "core/result.hpp"

namespace certgate::core {

const char* toString(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Invalid: return "invalid";
    case ErrorKind::NotFound: return "not-found";
    case ErrorKind::Conflict: return "conflict";
    case ErrorKind::Transient: return "transient";
    case ErrorKind::RateLimited: return "rate-limited";
    case ErrorKind::Auth: return "auth";
    case ErrorKind::Corrupt: return "corrupt";
    case ErrorKind::Permanent: return "permanent";
    case ErrorKind::Internal: return "internal";
  }
  return "internal";
}

std::string Error::describe() const {
  std::string out;
  if (!where.empty()) {
    out += where;
    out += ": ";
  }
  out += message;
  if (!hint.empty()) {
    out += " (";
    out += hint;
    out += ")";
  }
  return out;
}

}  // namespace certgate::core
