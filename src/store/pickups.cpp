// Token secret pickups (store.hpp, "token secret pickups"). Each method is one SQL statement, so
// it is atomic on its own and joins a Transaction the caller has open.
#include <sqlite3.h>

#include "store/db.hpp"
#include "store/store.hpp"

namespace certgate::store {

using core::ErrorKind;
using core::makeError;
using detail::Stmt;

namespace {

constexpr const char kInsertPickup[] =
    "INSERT INTO pickups (id, person, token_alias, ciphertext, nonce, created_at, expires_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char kSelectPickup[] =
    "SELECT id, person, token_alias, ciphertext, nonce, created_at, expires_at, fetched_at"
    "  FROM pickups WHERE id = ?1";
constexpr const char kMarkPickupFetched[] =
    "UPDATE pickups SET ciphertext = NULL, nonce = NULL, fetched_at = ?2"
    " WHERE id = ?1 AND fetched_at IS NULL";
constexpr const char kPurgePickups[] = "DELETE FROM pickups WHERE expires_at <= ?1";

void bindBlob(Stmt& stmt, int index, const std::string& bytes) {
  // A failed bind surfaces at step() as the statement's error.
  sqlite3_bind_blob(stmt.raw(), index, bytes.data(), static_cast<int>(bytes.size()),
                    SQLITE_TRANSIENT);
}

std::string colBlob(const Stmt& stmt, int col) {
  const void* data = sqlite3_column_blob(stmt.raw(), col);
  const int size = sqlite3_column_bytes(stmt.raw(), col);
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

// Runs `fn` with PRAGMA secure_delete on, then puts the previous setting back: the bytes a wipe
// or a purge frees are overwritten with zeros instead of lingering in free pages.
template <typename Fn>
auto withSecureDelete(sqlite3* db, const std::string& path, Fn&& fn) -> decltype(fn()) {
  int previous = 0;
  {
    auto read = detail::prepare(db, "PRAGMA secure_delete", false, "read secure_delete", path);
    if (!read) return read.error();
    Stmt stmt(std::move(*read), "read secure_delete", &path);
    auto row = stmt.stepRow();
    if (!row) return row.error();
    if (*row) previous = static_cast<int>(stmt.colInt(0));
  }
  if (previous != 1) {
    auto on = detail::execScript(db, "PRAGMA secure_delete = 1", "secure_delete on", path);
    if (!on) return on.error();
  }
  auto result = fn();
  if (previous != 1)
    static_cast<void>(detail::execScript(
        db, previous == 2 ? "PRAGMA secure_delete = FAST" : "PRAGMA secure_delete = 0",
        "secure_delete off", path));
  return result;
}

}  // namespace

Status Store::insertPickup(const PickupRow& row) {
  if (row.id.empty() || row.person.empty() || row.ciphertext.empty() || row.nonce.empty())
    return makeError(ErrorKind::Invalid,
                     "insertPickup: id, person, ciphertext and nonce are required", path_);
  if (row.expires_at <= row.created_at)
    return makeError(ErrorKind::Invalid, "insertPickup: expires_at must be after created_at",
                     path_);
  auto prepared = detail::prepare(db_, kInsertPickup, false, "insertPickup", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "insertPickup", &path_);
  stmt.bindText(1, row.id);
  stmt.bindText(2, row.person);
  stmt.bindText(3, row.token_alias);
  bindBlob(stmt, 4, row.ciphertext);
  bindBlob(stmt, 5, row.nonce);
  stmt.bindInstant(6, row.created_at);
  stmt.bindInstant(7, row.expires_at);
  const int rc = stmt.step();
  if (rc == SQLITE_DONE) return {};
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
    return makeError(ErrorKind::Conflict, "insertPickup: a pickup with this id exists", path_);
  return stmt.error(rc);
}

Result<std::optional<PickupRow>> Store::pickup(const std::string& id) {
  auto prepared = detail::prepare(db_, kSelectPickup, false, "pickup", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "pickup", &path_);
  stmt.bindText(1, id);
  auto found = stmt.stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<PickupRow>{};
  PickupRow row;
  row.id = stmt.colText(0);
  row.person = stmt.colText(1);
  row.token_alias = stmt.colText(2);
  row.ciphertext = colBlob(stmt, 3);
  row.nonce = colBlob(stmt, 4);
  row.created_at = stmt.colInstant(5);
  row.expires_at = stmt.colInstant(6);
  row.fetched_at = stmt.colOptInstant(7);
  return std::optional<PickupRow>{std::move(row)};
}

Result<bool> Store::markPickupFetched(const std::string& id, Instant at) {
  return withSecureDelete(db_, path_, [&]() -> Result<bool> {
    auto prepared = detail::prepare(db_, kMarkPickupFetched, false, "markPickupFetched", path_);
    if (!prepared) return prepared.error();
    Stmt stmt(std::move(*prepared), "markPickupFetched", &path_);
    stmt.bindText(1, id);
    stmt.bindInstant(2, at);
    if (auto ran = stmt.run(); !ran) return ran.error();
    return sqlite3_changes(db_) > 0;
  });
}

Result<std::int64_t> Store::purgePickups(Instant now) {
  return withSecureDelete(db_, path_, [&]() -> Result<std::int64_t> {
    auto prepared = detail::prepare(db_, kPurgePickups, false, "purgePickups", path_);
    if (!prepared) return prepared.error();
    Stmt stmt(std::move(*prepared), "purgePickups", &path_);
    stmt.bindInstant(1, now);
    if (auto ran = stmt.run(); !ran) return ran.error();
    return static_cast<std::int64_t>(sqlite3_changes(db_));
  });
}

}  // namespace certgate::store
