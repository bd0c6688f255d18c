// The audit hash chain: appends link each row to the one before, verifyAudit recomputes the
// chain and names the first row where it breaks (rows changed, deleted, reordered, re-hashed,
// truncated behind an anchored head), concurrent writers keep one chain, and rows written
// before the chain existed are chained when the store is opened for writing.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/migrations.hpp"
#include "store_test_support.hpp"

using namespace certgate::store;
using namespace certgate::store::testing;

namespace {

const certgate::core::Instant kNow = at(1'700'000'000);

AuditRow auditRow(std::int64_t at_seconds, const std::string& action, const std::string& subject) {
  return AuditRow{0, at(at_seconds), "certgate", action, subject,
                  R"({"n":)" + std::to_string(at_seconds) + "}", 0};
}

struct Chain {
  TempDir dir;
  std::string path = dir.file("state.db");
  std::unique_ptr<Store> store = openOk(path);
  explicit Chain(int rows) {
    for (int i = 1; i <= rows; ++i)
      valueOf(store->appendAudit(auditRow(1'700'000'000 + i * 60, "group.add", "E100" + std::to_string(i))));
  }
  AuditVerification verify(const std::optional<AuditHead>& head = {}) {
    // A fresh read-only connection, as `certgate audit verify` opens it.
    auto reader = openOk(path, OpenOptions{true, 5000});
    return valueOf(reader->verifyAudit(head));
  }
};

// The triggers that keep the table append-only, dropped the way an attacker with file access
// would before rewriting rows.
constexpr const char kDropTriggers[] =
    "DROP TRIGGER audit_no_delete; DROP TRIGGER audit_no_rewrite; DROP TRIGGER audit_hash_once;";

}  // namespace

TEST_CASE("The audit hash is SHA-256 over the documented length-prefixed encoding",
          "[unit][store]") {
  // Reference values computed independently (Python hashlib over the encoding in store.hpp).
  AuditRow first{1, at(1'700'000'000), "certgate", "ingest", "lms", "{}", 0};
  first.prev_hash = kAuditGenesis;
  CHECK(auditRowHash(first) == "73b93d4aeef1b75f359d824604f696cd700caa361bd6e0c6b4fca44a4b917fea");
  AuditRow second{2, at(1'700'000'060), "ciso@example.com", "exception.approve", "E1001/TRACK",
                  R"({"id":1})", 0};
  second.prev_hash = auditRowHash(first);
  CHECK(auditRowHash(second) == "82d65841e78880fec702ba1b22c75bd92f0511c0a3d878bf77aaf401b8c7ad17");
  // Length prefixes keep field boundaries: moving a character between fields changes the hash.
  AuditRow shifted = first;
  shifted.actor = "certgatei";
  shifted.action = "ngest";
  CHECK(auditRowHash(shifted) != auditRowHash(first));
}

TEST_CASE("Appended audit rows form one chain that verifies", "[unit][store]") {
  Chain c(5);
  RawDb raw(c.path);
  CHECK(raw.text("SELECT prev_hash FROM audit WHERE id = 1") == kAuditGenesis);
  for (int id = 2; id <= 5; ++id) {
    CHECK(raw.text("SELECT prev_hash FROM audit WHERE id = " + std::to_string(id)) ==
          raw.text("SELECT hash FROM audit WHERE id = " + std::to_string(id - 1)));
  }
  const auto v = c.verify();
  CHECK_FALSE(v.broken.has_value());
  CHECK(v.entries == 5);
  CHECK(v.head.id == 5);
  CHECK(v.head.hash == raw.text("SELECT hash FROM audit WHERE id = 5"));
  const auto rows = valueOf(c.store->audit());
  REQUIRE(rows.size() == 5);
  CHECK(rows[0].hash == v.head.hash);
  CHECK(auditRowHash(rows[0]) == rows[0].hash);
  // The head verifies as its own anchor.
  CHECK_FALSE(c.verify(v.head).broken.has_value());
}

TEST_CASE("An edited audit field is reported at its row as changed", "[unit][store]") {
  Chain c(6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  REQUIRE(raw.exec("UPDATE audit SET subject = 'E9999' WHERE id = 4") == SQLITE_OK);
  const auto v = c.verify();
  REQUIRE(v.broken.has_value());
  CHECK(v.broken->kind == AuditBreak::Kind::Changed);
  CHECK(v.broken->id == 4);
  CHECK_THAT(v.broken->message, Catch::Contains("row 4 was changed"));
  CHECK_FALSE(v.broken->hint.empty());
}

TEST_CASE("A deleted middle audit row is reported as missing at its id", "[unit][store]") {
  Chain c(6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  REQUIRE(raw.exec("DELETE FROM audit WHERE id = 3") == SQLITE_OK);
  const auto v = c.verify();
  REQUIRE(v.broken.has_value());
  CHECK(v.broken->kind == AuditBreak::Kind::Missing);
  CHECK(v.broken->id == 3);
  CHECK_THAT(v.broken->message, Catch::Contains("row 3 is missing"));
}

TEST_CASE("Deleting a row and renumbering the rest breaks the chain at that id", "[unit][store]") {
  Chain c(6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  REQUIRE(raw.exec("DELETE FROM audit WHERE id = 3; UPDATE audit SET id = id - 1 WHERE id > 3") ==
          SQLITE_OK);
  const auto v = c.verify();
  REQUIRE(v.broken.has_value());
  CHECK(v.broken->id == 3);
  CHECK(v.broken->kind == AuditBreak::Kind::Changed);
}

TEST_CASE("Two swapped audit rows are reported as reordered at the first of them",
          "[unit][store]") {
  Chain c(6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  // Swap every column but the id (hashes travel with their rows).
  REQUIRE(raw.exec("UPDATE audit SET id = -3 WHERE id = 3;"
                   "UPDATE audit SET id = 3 WHERE id = 5;"
                   "UPDATE audit SET id = 5 WHERE id = -3;") == SQLITE_OK);
  const auto v = c.verify();
  REQUIRE(v.broken.has_value());
  CHECK(v.broken->kind == AuditBreak::Kind::Reordered);
  CHECK(v.broken->id == 3);
  CHECK_THAT(v.broken->message, Catch::Contains("written as row 5"));
}

TEST_CASE("A changed audit hash is reported at its row, a recomputed one at the next row",
          "[unit][store]") {
  Chain c(6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  SECTION("a hash replaced by another value") {
    REQUIRE(raw.exec("UPDATE audit SET hash = '" + std::string(64, 'f') + "' WHERE id = 2") ==
            SQLITE_OK);
    const auto v = c.verify();
    REQUIRE(v.broken.has_value());
    CHECK(v.broken->kind == AuditBreak::Kind::Changed);
    CHECK(v.broken->id == 2);
  }
  SECTION("a row edited and re-hashed consistently") {
    auto row = valueOf(c.store->audit(100))[6 - 4];  // newest first: index 2 is row 4
    REQUIRE(row.id == 4);
    row.actor = "mallory";
    const std::string hash = auditRowHash(row);
    REQUIRE(raw.exec("UPDATE audit SET actor = 'mallory', hash = '" + hash + "' WHERE id = 4") ==
            SQLITE_OK);
    const auto v = c.verify();
    REQUIRE(v.broken.has_value());
    CHECK(v.broken->kind == AuditBreak::Kind::LinkBroken);
    CHECK(v.broken->id == 5);
    CHECK_THAT(v.broken->message, Catch::Contains("row 4 was rewritten"));
  }
  SECTION("a hash removed") {
    REQUIRE(raw.exec("UPDATE audit SET hash = NULL, prev_hash = NULL WHERE id = 6") == SQLITE_OK);
    const auto v = c.verify();
    REQUIRE(v.broken.has_value());
    CHECK(v.broken->kind == AuditBreak::Kind::Unchained);
    CHECK(v.broken->id == 6);
  }
}

TEST_CASE("A truncated audit tail is caught only with the anchored head", "[unit][store]") {
  Chain c(6);
  const auto anchor = c.verify().head;
  REQUIRE(anchor.id == 6);
  RawDb raw(c.path);
  REQUIRE(raw.exec(kDropTriggers) == SQLITE_OK);
  REQUIRE(raw.exec("DELETE FROM audit WHERE id >= 5") == SQLITE_OK);
  // The rest of the chain is intact: without an anchor nothing is wrong.
  const auto plain = c.verify();
  CHECK_FALSE(plain.broken.has_value());
  CHECK(plain.head.id == 4);
  const auto anchored = c.verify(anchor);
  REQUIRE(anchored.broken.has_value());
  CHECK(anchored.broken->kind == AuditBreak::Kind::HeadMissing);
  CHECK(anchored.broken->id == 6);
  CHECK_THAT(anchored.broken->message, Catch::Contains("truncated"));

  SECTION("and a tail rebuilt after truncation does not match the anchor") {
    valueOf(c.store->appendAudit(auditRow(1'800'000'000, "group.remove", "E1")));
    valueOf(c.store->appendAudit(auditRow(1'800'000'060, "group.remove", "E2")));
    const auto rebuilt = c.verify(anchor);
    REQUIRE(rebuilt.broken.has_value());
    CHECK(rebuilt.broken->kind == AuditBreak::Kind::HeadMismatch);
    CHECK(rebuilt.broken->id == 6);
  }
}

TEST_CASE("Two store handles appending at once keep one valid chain", "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  openOk(path);  // create and migrate once
  constexpr int kPerWriter = 40;
  std::atomic<int> failures{0};
  auto writer = [&](const std::string& actor) {
    auto store = Store::open(path);
    if (!store) {
      ++failures;
      return;
    }
    for (int i = 0; i < kPerWriter; ++i) {
      AuditRow row{0, at(1'700'000'000 + i), actor, "token.issue", "E" + std::to_string(i), "", 0};
      if (!(*store)->appendAudit(row)) ++failures;
    }
  };
  std::thread a(writer, "daemon");
  std::thread b(writer, "operator");
  a.join();
  b.join();
  CHECK(failures == 0);
  auto reader = openOk(path, OpenOptions{true, 5000});
  const auto v = valueOf(reader->verifyAudit());
  CHECK_FALSE(v.broken.has_value());
  CHECK(v.entries == 2 * kPerWriter);
  CHECK(v.head.id == 2 * kPerWriter);
}

TEST_CASE("Audit rows written before the chain are chained when the store is opened",
          "[unit][store]") {
  TempDir dir;
  const auto path = dir.file("state.db");
  {
    RawDb raw(path);
    const auto all = detail::migrations();
    REQUIRE(all.size() >= 9);
    REQUIRE(all[8].version == 9);
    REQUIRE(valueOf(detail::migrate(raw.get(), path, all.first(8), kNow)) == 8);
    REQUIRE(raw.exec("INSERT INTO audit (at, actor, action, subject, details_json) VALUES"
                     " (100, 'certgate', 'ingest', 'lms', '{}'),"
                     " (200, 'ciso', 'exception.approve', 'E1/T', '{\"id\":1}'),"
                     " (300, 'certgate', 'group.add', 'E1/T', '{}')") == SQLITE_OK);
    CHECK(raw.integer("SELECT count(*) FROM audit WHERE hash IS NULL") == 3);
  }
  {
    // Opening for writing applies migration 9 and chains the three rows.
    auto store = openOk(path);
    CHECK(store->schemaVersion() >= 9);
  }
  RawDb raw(path);
  CHECK(raw.integer("SELECT count(*) FROM audit WHERE hash IS NULL") == 0);
  CHECK(raw.text("SELECT prev_hash FROM audit WHERE id = 1") == kAuditGenesis);
  auto store = openOk(path);
  const auto v = valueOf(store->verifyAudit());
  CHECK_FALSE(v.broken.has_value());
  CHECK(v.entries == 3);
  // Appends continue the chain from the migrated rows.
  CHECK(valueOf(store->appendAudit(auditRow(400, "token.issue", "E1/T"))) == 4);
  const auto after = valueOf(store->verifyAudit());
  CHECK_FALSE(after.broken.has_value());
  CHECK(after.head.id == 4);
  CHECK(raw.text("SELECT prev_hash FROM audit WHERE id = 4") ==
        raw.text("SELECT hash FROM audit WHERE id = 3"));
}

TEST_CASE("A row appended without a hash by an older writer is chained by the next append",
          "[unit][store]") {
  Chain c(2);
  RawDb raw(c.path);
  REQUIRE(raw.exec("INSERT INTO audit (at, actor, action) VALUES (5, 'old-certgate', 'ingest')") ==
          SQLITE_OK);
  valueOf(c.store->appendAudit(auditRow(1'900'000'000, "group.add", "E7")));
  const auto v = c.verify();
  CHECK_FALSE(v.broken.has_value());
  CHECK(v.entries == 4);
}

TEST_CASE("forEachAudit filters by time, action prefix and subject", "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  valueOf(store->appendAudit(AuditRow{0, at(100), "certgate", "group.add", "E1/T", "", 0}));
  valueOf(store->appendAudit(AuditRow{0, at(200), "certgate", "token.issue", "E1/T", "", 0}));
  valueOf(store->appendAudit(AuditRow{0, at(300), "certgate", "token.revoke", "E12/T", "", 0}));
  valueOf(store->appendAudit(AuditRow{0, at(400), "certgate", "token.issue", "E1", "", 0}));
  auto collectIds = [&](const AuditFilter& f) {
    std::vector<std::int64_t> ids;
    requireOk(store->forEachAudit(f, [&](const AuditRow& r) { ids.push_back(r.id); }));
    return ids;
  };
  CHECK(collectIds({}) == std::vector<std::int64_t>{1, 2, 3, 4});
  CHECK(collectIds({at(200), "", ""}) == std::vector<std::int64_t>{2, 3, 4});
  CHECK(collectIds({std::nullopt, "token.", ""}) == std::vector<std::int64_t>{2, 3, 4});
  CHECK(collectIds({std::nullopt, "token.issue", ""}) == std::vector<std::int64_t>{2, 4});
  CHECK(collectIds({std::nullopt, "", "E1"}) == std::vector<std::int64_t>{1, 2, 4});
}
