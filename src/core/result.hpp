#pragma once
// Result<T>: a value or an Error, shaped like std::expected (not available in g++ 12).
// Errors are values with a class; callers must look at them. No exceptions cross module APIs.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace certgate::core {

// Failure classes shared by connectors, store and settings. The engine decides what to do.
enum class ErrorKind {
  Invalid,      // bad input or configuration: fix it and try again
  NotFound,     // the thing asked for does not exist
  Conflict,     // a competing change or an ambiguity
  Transient,    // try again later (network, busy database)
  RateLimited,  // try again after retry_after_s
  Auth,         // credentials missing or refused
  Corrupt,      // stored data failed an integrity check
  Permanent,    // will not succeed by retrying
  Internal,     // a defect in certgate
};

const char* toString(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::Internal;
  std::string message;   // what was wrong
  std::string where;     // file:line:col, connector, person ... (may be empty)
  std::string hint;      // what to do (may be empty)
  long retry_after_s = 0;

  // "where: message (hint)" as shown to operators.
  std::string describe() const;
};

inline Error makeError(ErrorKind kind, std::string message, std::string where = {},
                       std::string hint = {}) {
  return Error{kind, std::move(message), std::move(where), std::move(hint), 0};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}     // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace certgate::core
