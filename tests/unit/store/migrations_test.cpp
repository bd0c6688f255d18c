// Opening, pragmas, integrity and schema migrations of the state store.

#include "store/migrations.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

#include "store_test_support.hpp"

namespace certgate::store {
namespace {

using core::ErrorKind;
using namespace testing;

const core::Instant kNow = at(1'700'000'000);

// A real database file with enough rows to span many pages, closed cleanly (WAL checkpointed).
void writeRealDatabase(const std::string& path) {
  auto store = openOk(path);
  const auto source = valueOf(store->ensureSource("lms", "csv"));
  auto tx = valueOf(store->begin());
  for (int i = 0; i < 3000; ++i) {
    valueOf(store->upsertFact(makeFact(source, "ext-" + std::to_string(i), 0, 1000 + i), kNow));
  }
  requireOk(tx.commit());
}

void overwrite(const std::string& path, std::uintmax_t offset, std::size_t bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(file.good());
  file.seekp(static_cast<std::streamoff>(offset));
  std::vector<char> garbage(bytes);
  std::uint32_t state = 0x9e3779b9U;
  for (char& c : garbage) {
    state = state * 1664525U + 1013904223U;
    c = static_cast<char>(state >> 24);
  }
  file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  REQUIRE(file.good());
}

void requireCorruptWithHelp(const std::string& path) {
  auto opened = Store::open(path);
  REQUIRE_FALSE(opened.ok());
  INFO(opened.error().describe());
  CHECK(opened.error().kind == ErrorKind::Corrupt);
  const std::string text = opened.error().describe();
  CHECK(text.find(path) != std::string::npos);
  CHECK(text.find("backup") != std::string::npos);
  CHECK(text.find("certgate restore --from FILE") != std::string::npos);
  CHECK(text.find("move the file aside") != std::string::npos);
}

TEST_CASE("Opening a new database creates the file and applies every migration once",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  REQUIRE_FALSE(std::filesystem::exists(path));
  {
    auto store = openOk(path);
    CHECK(store->schemaVersion() == Store::latestSchemaVersion());
    CHECK(store->path() == path);
  }
  CHECK(std::filesystem::exists(path));
  RawDb raw(path);
  CHECK(raw.integer("SELECT count(*) FROM schema_migrations") ==
        static_cast<std::int64_t>(detail::migrations().size()));
  CHECK(raw.integer("SELECT max(version) FROM schema_migrations") == Store::latestSchemaVersion());
}

TEST_CASE("Reopening a migrated database applies nothing and keeps the version", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  openOk(path).reset();
  RawDb raw(path);
  // Mark the recorded migrations so a re-application would be visible.
  REQUIRE(raw.exec("UPDATE schema_migrations SET applied_at = 42") == SQLITE_OK);
  const auto rows = raw.integer("SELECT count(*) FROM schema_migrations");

  auto store = openOk(path);
  CHECK(store->schemaVersion() == Store::latestSchemaVersion());
  CHECK(raw.integer("SELECT count(*) FROM schema_migrations") == rows);
  CHECK(raw.integer("SELECT count(*) FROM schema_migrations WHERE applied_at <> 42") == 0);
}

TEST_CASE("A database written by a newer certgate is refused", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  openOk(path).reset();
  {
    RawDb raw(path);
    REQUIRE(raw.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)") ==
            SQLITE_OK);
  }
  for (const bool read_only : {false, true}) {
    auto opened = Store::open(path, OpenOptions{read_only, 5000});
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().kind == ErrorKind::Invalid);
    CHECK(opened.error().describe().find("newer certgate") != std::string::npos);
    CHECK(opened.error().describe().find("upgrade certgate") != std::string::npos);
  }
}

TEST_CASE("A file of garbage bytes is refused as corrupt with a hint to restore a backup",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  {
    std::ofstream file(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) file << "this is not an SQLite database file ";
  }
  requireCorruptWithHelp(path);
}

TEST_CASE("A database with pages overwritten by garbage is refused as corrupt", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  writeRealDatabase(path);
  const auto size = std::filesystem::file_size(path);
  REQUIRE(size > std::uintmax_t{40} * 4096);
  // Leave page 1 (header and schema) intact; damage b-tree pages of the facts table and indexes.
  overwrite(path, std::uintmax_t{4096} * 3, std::size_t{4096} * 6);
  overwrite(path, size / 2, std::size_t{4096} * 4);
  requireCorruptWithHelp(path);
}

TEST_CASE("A truncated database is refused as corrupt", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  writeRealDatabase(path);
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 3);
  requireCorruptWithHelp(path);
}

TEST_CASE("Opening sets WAL, synchronous FULL, foreign keys and the busy timeout",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  auto store = openOk(path, OpenOptions{false, 1234});
  const auto settings = valueOf(store->settings());
  CHECK(settings.journal_mode == "wal");
  CHECK(settings.synchronous == 2);  // FULL
  CHECK(settings.foreign_keys);
  CHECK(settings.busy_timeout_ms == 1234);
  // WAL is a property of the file: another connection sees it too.
  RawDb raw(path);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("Foreign keys are enforced on the store's connection", "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto source = valueOf(store->ensureSource("lms", "csv"));
  auto orphan = store->upsertFact(makeFact(source + 5, "e1", 0, 1000), kNow);
  REQUIRE_FALSE(orphan.ok());
  CHECK(orphan.error().describe().find("FOREIGN KEY") != std::string::npos);
  CHECK(valueOf(store->countFacts()) == 0);
}

TEST_CASE("A fact of a person that does not exist is refused before anything is written",
          "[unit][store]") {
  // fact_order has no person foreign key (migration 11): the store checks the range instead.
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto source = valueOf(store->ensureSource("lms", "csv"));
  const auto p = valueOf(store->upsertPerson(makePerson("e1", "e1", "")));
  for (std::int64_t bad : {p + 1, std::int64_t{777}, std::int64_t{-3}}) {
    auto orphan = store->upsertFact(makeFact(source, "e1", bad, 1000), kNow);
    REQUIRE_FALSE(orphan.ok());
    CHECK(orphan.error().kind == ErrorKind::Invalid);
    CHECK(orphan.error().describe().find("names person " + std::to_string(bad) +
                                         ", which does not exist") != std::string::npos);
    std::vector<FactRow> batch = {makeFact(source, "fine", p, 1000),
                                  makeFact(source, "e2", bad, 1001)};
    REQUIRE_FALSE(store->upsertFacts(batch, kNow).ok());
  }
  CHECK(valueOf(store->countFacts()) == 0);
  valueOf(store->upsertFact(makeFact(source, "e1", p, 1000), kNow));
  CHECK(valueOf(store->countFacts()) == 1);
}

TEST_CASE("Persons are never deleted: the database refuses it", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  {
    auto store = openOk(path);
    valueOf(store->upsertPerson(makePerson("e1", "e1", "")));
  }
  RawDb raw(path);
  CHECK(raw.exec("DELETE FROM persons") == SQLITE_CONSTRAINT);
  CHECK(raw.integer("SELECT count(*) FROM persons") == 1);
}

TEST_CASE("A read-only open of a missing file is NotFound and says to run certgate ingest",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("missing.db");
  auto opened = Store::open(path, OpenOptions{true, 5000});
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().kind == ErrorKind::NotFound);
  CHECK(opened.error().describe().find("certgate ingest") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("Opening a database in a missing directory is NotFound", "[unit][store]") {
  TempDir dir;
  auto opened = Store::open(dir.file("no/such/dir/state.db"));
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().kind == ErrorKind::NotFound);
}

TEST_CASE("A read-only open migrates nothing and asks to migrate an older schema",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("empty.db");
  { std::ofstream create(path); }  // an empty file is an empty SQLite database (version 0)
  auto opened = Store::open(path, OpenOptions{true, 5000});
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().kind == ErrorKind::Invalid);
  CHECK(opened.error().describe().find("certgate ingest") != std::string::npos);
  CHECK(opened.error().describe().find("migrate") != std::string::npos);
  CHECK(std::filesystem::file_size(path) == 0);
}

TEST_CASE("A read-only store reads but refuses writes", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  {
    auto writer = openOk(path);
    valueOf(writer->ensureSource("lms", "csv"));
  }
  auto reader = openOk(path, OpenOptions{true, 5000});
  CHECK(reader->schemaVersion() == Store::latestSchemaVersion());
  CHECK(valueOf(reader->sources()).size() == 1);
  auto write = reader->ensureSource("other", "csv");
  REQUIRE_FALSE(write.ok());
  CHECK(write.error().kind == ErrorKind::Permanent);
  CHECK(valueOf(reader->sources()).size() == 1);
}

TEST_CASE("An SQLite database that is not certgate's is refused", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("other.db");
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "CREATE TABLE customers (id INTEGER)", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(raw);
  }
  auto opened = Store::open(path);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().kind == ErrorKind::Invalid);
  CHECK(opened.error().describe().find("not a certgate state store") != std::string::npos);
}

TEST_CASE("Migrations apply in order, only those not yet applied", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("m.db");
  RawDb raw(path);
  const detail::Migration first[] = {{1, "a", "CREATE TABLE a (x INTEGER);"}};
  const detail::Migration both[] = {{1, "a", "CREATE TABLE a (x INTEGER);"},
                                    {2, "b", "CREATE TABLE b (y INTEGER);"}};

  CHECK(valueOf(detail::migrate(raw.get(), path, first, kNow)) == 1);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'b'") == 0);
  CHECK(valueOf(detail::migrate(raw.get(), path, both, kNow)) == 2);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'b'") == 1);
  // Running again is a no-op (applying migration 1 twice would fail: table a exists).
  CHECK(valueOf(detail::migrate(raw.get(), path, both, kNow)) == 2);
  CHECK(raw.integer("SELECT count(*) FROM schema_migrations") == 2);
  CHECK(raw.integer("SELECT applied_at FROM schema_migrations WHERE version = 2") == 1'700'000'000);
}

TEST_CASE("A database with facts from before migration 5 keeps them, their ids and their order",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  {
    RawDb raw(path);
    REQUIRE(raw.exec("PRAGMA foreign_keys = ON") == SQLITE_OK);
    const auto all = detail::migrations();
    REQUIRE(all.size() >= 5);
    REQUIRE(all[4].version == 5);
    REQUIRE(valueOf(detail::migrate(raw.get(), path, all.first(4), kNow)) == 4);
    REQUIRE(raw.exec("INSERT INTO sources (id, name, kind) VALUES (1, 'lms', 'csv');"
                     "INSERT INTO persons (id, key, first_seen, updated_at) VALUES"
                     " (1, 'e1', 0, 0), (2, 'e2', 0, 0);") == SQLITE_OK);
    // Ids out of arrival order on purpose, a tie on `at`, and a fact of no known person.
    const char* rows[] = {"(5, 'p2-late', 22, 2, 900)", "(7, 'p1-tie', 11, 1, 800)",
                          "(3, 'p1-late', 12, 1, 800)", "(9, 'unresolved', 30, NULL, 999)",
                          "(4, 'p1-early', 13, 1, 100)"};
    for (const char* row : rows) {
      REQUIRE(raw.exec(std::string("INSERT INTO facts (id, external_id, ext_key, person_id, at,"
                                   " source_id, item, kind, status, lms_pass, attempt,"
                                   " first_seen, last_seen) SELECT *, 1, 'M1', 'completion',"
                                   " 'completed', -1, 0, 5, 5 FROM (VALUES ") +
                       row + ")") == SQLITE_OK);
    }
  }
  auto store = openOk(path);
  CHECK(store->schemaVersion() == Store::latestSchemaVersion());
  std::vector<std::string> seen;
  requireOk(store->forEachFact([&](const FactRow& f) {
    seen.push_back(f.external_id + "#" + std::to_string(f.id) + "@" + std::to_string(f.person_id));
  }));
  CHECK(seen == std::vector<std::string>{"unresolved#9@0", "p1-early#4@1", "p1-late#3@1",
                                         "p1-tie#7@1", "p2-late#5@2"});
  RawDb raw(path);
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 5);
  CHECK(raw.integer("SELECT count(*) FROM fact_order") == 4);
  // Migration 11: person order without the person foreign key, persons never deleted.
  CHECK(raw.integer("SELECT count(*) FROM pragma_foreign_key_list('fact_order')") == 0);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
                    " AND name = 'persons_never_deleted'") == 1);
  CHECK(raw.joined("SELECT name FROM sqlite_schema WHERE tbl_name = 'facts' AND type = 'index'"
                   " ORDER BY name", 0) == "facts_unresolved");
  CHECK(raw.integer("SELECT fact_id FROM fact_keys WHERE source_id = 1 AND ext_key = 11") == 7);
  // Migration 12: the stored facts have their keys (no source marks any missing).
  CHECK(raw.integer("SELECT count(*) FROM pragma_table_info('sources') WHERE name = 'keys_from'") ==
        1);
  CHECK(raw.integer("SELECT count(*) FROM sources WHERE keys_from IS NOT NULL") == 0);
  auto found = valueOf(store->factsOf(1));
  REQUIRE(found.size() == 3);
  CHECK(found[2].external_id == "p1-tie");
  CHECK(found[2].id == 7);
}

TEST_CASE("A failing migration is rolled back and leaves the version unchanged", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("m.db");
  RawDb raw(path);
  const detail::Migration list[] = {
      {1, "a", "CREATE TABLE a (x INTEGER);"},
      {2, "broken", "CREATE TABLE c (z INTEGER); INSERT INTO no_such_table VALUES (1);"}};
  auto migrated = detail::migrate(raw.get(), path, list, kNow);
  REQUIRE_FALSE(migrated.ok());
  CHECK(migrated.error().describe().find("migration 2 (broken)") != std::string::npos);
  CHECK(valueOf(detail::readSchemaVersion(raw.get(), path)) == 1);
  CHECK(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'c'") == 0);
  CHECK(sqlite3_get_autocommit(raw.get()) != 0);
}

TEST_CASE("Migrating a database newer than the migration list is refused", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("m.db");
  RawDb raw(path);
  const detail::Migration both[] = {{1, "a", "CREATE TABLE a (x INTEGER);"},
                                    {2, "b", "CREATE TABLE b (y INTEGER);"}};
  const detail::Migration first[] = {{1, "a", "CREATE TABLE a (x INTEGER);"}};
  valueOf(detail::migrate(raw.get(), path, both, kNow));
  auto older = detail::migrate(raw.get(), path, first, kNow);
  REQUIRE_FALSE(older.ok());
  CHECK(older.error().kind == ErrorKind::Invalid);
}

TEST_CASE("The migration versions strictly increase", "[unit][store]") {
  int previous = 0;
  for (const auto& migration : detail::migrations()) {
    CHECK(migration.version > previous);
    previous = migration.version;
  }
  CHECK(previous == Store::latestSchemaVersion());
}

TEST_CASE("A backup is a verified copy that opens with the same data", "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto source = valueOf(store->ensureSource("lms", "csv"));
  valueOf(store->upsertFact(makeFact(source, "e1", 0, 1000), kNow));
  const auto backup = dir.file("backup.db");
  const auto info = valueOf(store->backupTo(backup));
  CHECK(info.path == backup);
  CHECK(info.schema_version == Store::latestSchemaVersion());
  CHECK(info.bytes > 0);
  // Never readable by others, and no .part file left behind.
  CHECK((std::filesystem::status(backup).permissions() &
         (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
        std::filesystem::perms::none);
  CHECK_FALSE(std::filesystem::exists(backup + ".part"));
  auto copy = openOk(backup);
  CHECK(valueOf(copy->countFacts()) == 1);

  auto again = store->backupTo(backup);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::Conflict);
}

}  // namespace
}  // namespace certgate::store
