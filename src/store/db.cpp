#include "store/db.hpp"

#include <cmath>
#include <utility>

namespace certgate::store::detail {

using core::ErrorKind;

core::Error corruptError(const std::string& path, std::string_view detail) {
  std::string message = "database file '" + path + "' is corrupt";
  if (!detail.empty()) {
    message += ": ";
    message += detail;
  }
  return core::makeError(
      ErrorKind::Corrupt, std::move(message), path,
      "certgate will not run on a damaged store; stop certgate, then restore the file from a "
      "backup (`certgate restore --from FILE`), or move the file aside so "
      "certgate starts with an empty store and re-ingests its sources");
}

core::Error sqlError(sqlite3* db, int rc, std::string_view op, const std::string& path) {
  const int primary = rc & 0xff;
  std::string detail;
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == primary) {
    detail = sqlite3_errmsg(db);
  } else {
    detail = sqlite3_errstr(rc);
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return corruptError(path, std::string(op) + ": " + detail);
  }
  std::string message =
      std::string(op) + " failed: " + detail + " (SQLite code " + std::to_string(rc) + ")";
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return core::makeError(ErrorKind::Transient, std::move(message), path,
                             "another process (certgate or a sqlite3 shell) holds the database "
                             "lock; retry later, or raise the busy timeout");
    case SQLITE_FULL:
      return core::makeError(ErrorKind::Transient, std::move(message), path,
                             "the disk holding the database is full; free space and retry");
    case SQLITE_IOERR:
      return core::makeError(ErrorKind::Transient, std::move(message), path,
                             "the operating system reported an I/O error; check the disk and "
                             "retry");
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return core::makeError(ErrorKind::Permanent, std::move(message), path,
                             "check that the database file and its directory exist and are "
                             "writable by the certgate user");
    default:
      return core::makeError(ErrorKind::Internal, std::move(message), path);
  }
}

core::Result<StmtHandle> prepare(sqlite3* db, const char* sql, bool persistent, std::string_view op,
                                 const std::string& path) {
  sqlite3_stmt* raw = nullptr;
  const unsigned flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0U;
  const int rc = sqlite3_prepare_v3(db, sql, -1, flags, &raw, nullptr);
  StmtHandle handle(raw);
  if (rc != SQLITE_OK) return sqlError(db, rc, op, path);
  if (!handle) {
    return core::makeError(ErrorKind::Internal, std::string(op) + ": empty SQL statement", path);
  }
  return handle;
}

core::Status execScript(sqlite3* db, const char* sql, std::string_view op,
                        const std::string& path) {
  char* raw_message = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &raw_message);
  const std::unique_ptr<char, decltype(&sqlite3_free)> message(raw_message, &sqlite3_free);
  if (rc != SQLITE_OK) return sqlError(db, rc, op, path);
  return {};
}

Stmt::Stmt(sqlite3_stmt* stmt, bool* in_use, StmtHandle owned, std::string_view op,
           const std::string* path) noexcept
    : stmt_(stmt), in_use_(in_use), owned_(std::move(owned)), op_(op), path_(path) {}

Stmt::Stmt(StmtHandle owned, std::string_view op, const std::string* path) noexcept
    : stmt_(owned.get()), owned_(std::move(owned)), op_(op), path_(path) {}

Stmt::Stmt(Stmt&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      owned_(std::move(other.owned_)),
      op_(other.op_),
      path_(other.path_),
      bind_rc_(other.bind_rc_) {}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (in_use_ != nullptr) *in_use_ = false;
}

void Stmt::noteBind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Stmt::bindInt(int index, std::int64_t value) {
  noteBind(sqlite3_bind_int64(stmt_, index, value));
}

void Stmt::bindDouble(int index, double value) {
  if (std::isnan(value)) {
    bindNull(index);
  } else {
    noteBind(sqlite3_bind_double(stmt_, index, value));
  }
}

void Stmt::bindText(int index, const std::string& value) {
  noteBind(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8));
}

void Stmt::bindLiteral(int index, const char* value) {
  noteBind(sqlite3_bind_text(stmt_, index, value, -1, SQLITE_STATIC));
}

void Stmt::bindNull(int index) {
  noteBind(sqlite3_bind_null(stmt_, index));
}

void Stmt::bindId(int index, std::int64_t id) {
  if (id == 0) {
    bindNull(index);
  } else {
    bindInt(index, id);
  }
}

void Stmt::bindInstant(int index, const std::optional<core::Instant>& value) {
  if (value) {
    bindInt(index, toUnix(*value));
  } else {
    bindNull(index);
  }
}

int Stmt::step() {
  if (bind_rc_ != SQLITE_OK) return bind_rc_;
  return sqlite3_step(stmt_);
}

core::Error Stmt::error(int rc) const {
  return sqlError(db(), rc, op_, *path_);
}

core::Status Stmt::run() {
  const int rc = step();
  if (rc == SQLITE_DONE) return {};
  if (rc == SQLITE_ROW) {
    return core::makeError(ErrorKind::Internal,
                           std::string(op_) + ": statement returned a row where none was expected",
                           *path_);
  }
  return error(rc);
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  bind_rc_ = SQLITE_OK;
}

core::Result<bool> Stmt::stepRow() {
  const int rc = step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error(rc);
}

bool Stmt::isNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::int64_t Stmt::colInt(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

double Stmt::colDouble(int col) const {
  if (isNull(col)) return std::nan("");
  return sqlite3_column_double(stmt_, col);
}

std::string Stmt::colText(int col) const {
  const auto* text = sqlite3_column_text(stmt_, col);
  if (text == nullptr) return {};
  const int bytes = sqlite3_column_bytes(stmt_, col);
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(bytes));
}

std::optional<core::Instant> Stmt::colOptInstant(int col) const {
  if (isNull(col)) return std::nullopt;
  return colInstant(col);
}

}  // namespace certgate::store::detail
