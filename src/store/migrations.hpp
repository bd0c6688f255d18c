#pragma once
// Versioned, forward-only schema migrations. Private to the store module (and its tests).
//
// A migration is (version, name, SQL). Versions are strictly increasing; an applied migration is
// never edited: a change to the schema is a new migration at the end of the list. Each pending
// migration runs in its own BEGIN IMMEDIATE transaction together with the row that records it in
// schema_migrations(version, applied_at), so a failure leaves the database at the previous
// version. Two processes migrating at once are serialised by the write lock; the loser re-reads
// the version inside its transaction and finds nothing left to do.

#include <span>
#include <string>

#include "core/result.hpp"
#include "core/time.hpp"

struct sqlite3;

namespace certgate::store::detail {

struct Migration {
  int version = 0;
  const char* name = "";
  const char* sql = "";  // one or more statements; constant text, never built from values
};

// certgate's migrations, in order. The last version is Store::latestSchemaVersion().
std::span<const Migration> migrations();

// The highest version recorded in schema_migrations, 0 for a database without that table.
// Invalid when the file holds tables but no schema_migrations (an SQLite file, not certgate's).
core::Result<int> readSchemaVersion(sqlite3* db, const std::string& path);

// Applies every migration in `list` whose version is above the database's, in order. Returns the
// resulting version. Invalid when the database is newer than the newest migration in `list`.
core::Result<int> migrate(sqlite3* db, const std::string& path, std::span<const Migration> list,
                          core::Instant now);

}  // namespace certgate::store::detail
