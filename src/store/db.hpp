#pragma once
// Thin RAII layer over the SQLite C API. Private to the store module: nothing outside
// src/store (and its tests) includes this header, so SQL stays in one place.
//
// - DbHandle / StmtHandle own sqlite3* / sqlite3_stmt* and close / finalize them.
// - Stmt is a statement *in use*: it binds values, steps, reads columns, and on destruction
//   resets the statement and clears its bindings, so a cached statement never holds a read
//   lock or a stale pointer between calls.
// - sqlError() turns an SQLite result code into a core::Error of the right class.
// Not thread-safe: one Store (one connection) is used from one thread at a time.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::store::detail {

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

inline std::int64_t toUnix(core::Instant t) {
  return t.time_since_epoch().count();
}
inline core::Instant fromUnix(std::int64_t seconds) {
  return core::Instant{core::Seconds{seconds}};
}

// The error for an SQLite failure `rc` during `op` on the database at `path`:
//   BUSY/LOCKED -> Transient, CORRUPT/NOTADB -> Corrupt, FULL/IOERR -> Transient,
//   CANTOPEN/PERM/READONLY/AUTH -> Permanent, everything else (CONSTRAINT included) -> Internal.
// Callers that expect a specific constraint (an idempotency key) map it to Conflict themselves.
core::Error sqlError(sqlite3* db, int rc, std::string_view op, const std::string& path);

// "database file X is corrupt ...; restore from a backup or move it aside".
core::Error corruptError(const std::string& path, std::string_view detail);

// Prepares `sql` (one statement). `persistent` hints SQLite that the statement is kept.
core::Result<StmtHandle> prepare(sqlite3* db, const char* sql, bool persistent, std::string_view op,
                                 const std::string& path);

// Runs one or more statements without parameters (schema, BEGIN/COMMIT). Never pass values.
core::Status execScript(sqlite3* db, const char* sql, std::string_view op, const std::string& path);

class Stmt {
 public:
  // `stmt` is borrowed from a cache (then `in_use` is its busy flag) or owned via `owned`.
  Stmt(sqlite3_stmt* stmt, bool* in_use, StmtHandle owned, std::string_view op,
       const std::string* path) noexcept;
  // An owned, uncached statement.
  Stmt(StmtHandle owned, std::string_view op, const std::string* path) noexcept;
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binding. Indices are 1-based, matching ?1..?N in the SQL. Text is bound without a copy,
  // so it must outlive the step: temporaries are refused at compile time.
  void bindInt(int index, std::int64_t value);
  void bindBool(int index, bool value) { bindInt(index, value ? 1 : 0); }
  void bindDouble(int index, double value);  // NaN -> NULL
  void bindText(int index, const std::string& value);
  void bindText(int index, std::string&& value) = delete;
  void bindLiteral(int index, const char* value);  // a string with static storage duration
  void bindNull(int index);
  void bindId(int index, std::int64_t id);  // 0 -> NULL (optional foreign key)
  void bindInstant(int index, core::Instant value) { bindInt(index, toUnix(value)); }
  void bindInstant(int index, const std::optional<core::Instant>& value);

  // SQLITE_ROW, SQLITE_DONE or an error code (a failed bind is reported here).
  int step();
  // Steps once and expects SQLITE_DONE.
  core::Status run();
  // Makes the statement ready to step again (bindings are kept) for the next row of a batch.
  void reset();
  // Steps once: true when a row is available (read its columns before stepping again), false
  // when the statement is done.
  core::Result<bool> stepRow();
  core::Error error(int rc) const;

  bool isNull(int col) const;
  std::int64_t colInt(int col) const;
  double colDouble(int col) const;  // NULL -> NaN
  std::string colText(int col) const;
  core::Instant colInstant(int col) const { return fromUnix(colInt(col)); }
  std::optional<core::Instant> colOptInstant(int col) const;

  sqlite3_stmt* raw() const { return stmt_; }
  sqlite3* db() const { return sqlite3_db_handle(stmt_); }

 private:
  void noteBind(int rc);

  sqlite3_stmt* stmt_ = nullptr;
  bool* in_use_ = nullptr;
  StmtHandle owned_;
  std::string_view op_;
  const std::string* path_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace certgate::store::detail
