// Repositories of the state store: facts, persons, transactions, ledgers, intents, audit, runs.

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>
#include <utility>
#include <vector>

#include "store_test_support.hpp"

namespace certgate::store {
namespace {

using core::ErrorKind;
using namespace testing;

const core::Instant kNow = at(1'700'000'000);

struct Fixture {
  TempDir dir;
  std::string path = dir.file("state.db");
  std::unique_ptr<Store> store = openOk(path);
  std::int64_t source = valueOf(store->ensureSource("lms", "csv"));
};

// ---------------------------------------------------------------------------------------------
// Facts

TEST_CASE("Delivering the same fact twice reports Unchanged and keeps one row", "[unit][store]") {
  Fixture f;
  const auto fact = makeFact(f.source, "attempt-1", 0, 1000);
  CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Inserted);
  CHECK(valueOf(f.store->upsertFact(fact, kNow + core::Seconds{60})) == UpsertOutcome::Unchanged);
  CHECK(valueOf(f.store->countFacts()) == 1);

  RawDb raw(f.path);
  CHECK(raw.integer("SELECT first_seen FROM facts") == 1'700'000'000);
  CHECK(raw.integer("SELECT last_seen FROM facts") == 1'700'000'060);
  // An older delivery time never moves last_seen back.
  CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Unchanged);
  CHECK(raw.integer("SELECT last_seen FROM facts") == 1'700'000'060);
}

TEST_CASE("A fact read again from another location is Unchanged", "[unit][store]") {
  Fixture f;
  auto fact = makeFact(f.source, "attempt-1", 0, 1000);
  valueOf(f.store->upsertFact(fact, kNow));
  fact.location = "export-2.csv:17";
  CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Unchanged);
}

TEST_CASE("A changed score reports Updated and keeps first_seen", "[unit][store]") {
  Fixture f;
  auto fact = makeFact(f.source, "attempt-1", 0, 1000, 55);
  valueOf(f.store->upsertFact(fact, kNow));
  fact.score = 91;
  fact.location = "export-2.csv:3";
  CHECK(valueOf(f.store->upsertFact(fact, kNow + core::Seconds{3600})) == UpsertOutcome::Updated);
  CHECK(valueOf(f.store->countFacts()) == 1);

  RawDb raw(f.path);
  CHECK(raw.integer("SELECT score FROM facts") == 91);
  CHECK(raw.text("SELECT location FROM facts") == "export-2.csv:3");
  CHECK(raw.integer("SELECT first_seen FROM facts") == 1'700'000'000);
  CHECK(raw.integer("SELECT last_seen FROM facts") == 1'700'003'600);
}

TEST_CASE("Every column that matters turns a repeat into an update", "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  const auto base = makeFact(f.source, "x", 0, 1000);
  struct Case {
    const char* reason;
    void (*change)(FactRow&, std::int64_t person);
  };
  const Case cases[] = {
      {"person resolved", [](FactRow& r, std::int64_t p) { r.person_id = p; }},
      {"item remapped", [](FactRow& r, std::int64_t) { r.item = "other"; }},
      {"lms item renamed", [](FactRow& r, std::int64_t) { r.lms_item = "other"; }},
      {"kind", [](FactRow& r, std::int64_t) { r.kind = core::FactKind::Completion; }},
      {"status", [](FactRow& r, std::int64_t) { r.status = core::FactStatus::Failed; }},
      {"lms pass flag", [](FactRow& r, std::int64_t) { r.lms_pass = 0; }},
      {"attempt number", [](FactRow& r, std::int64_t) { r.attempt = 2; }},
      {"score became unknown", [](FactRow& r, std::int64_t) { r.score = core::kNoScore; }},
      {"max score", [](FactRow& r, std::int64_t) { r.max_score = 50; }},
      {"date corrected", [](FactRow& r, std::int64_t) { r.at = at(999); }},
      {"lms expiry set", [](FactRow& r, std::int64_t) { r.lms_expiry = at(5000); }},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    FactRow fact = base;
    fact.external_id = c.reason;
    CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Inserted);
    c.change(fact, person);
    CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Updated);
    CHECK(valueOf(f.store->upsertFact(fact, kNow)) == UpsertOutcome::Unchanged);
  }
}

TEST_CASE("A late fact dated before the known ones is inserted", "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  valueOf(f.store->upsertFact(makeFact(f.source, "new", person, 5000), kNow));
  CHECK(valueOf(f.store->upsertFact(makeFact(f.source, "old", person, 100), kNow)) ==
        UpsertOutcome::Inserted);
  const auto facts = valueOf(f.store->factsOf(person));
  REQUIRE(facts.size() == 2);
  CHECK(facts[0].external_id == "old");
  CHECK(facts[1].external_id == "new");
}

TEST_CASE("A fact keeps its values through the store, NaN and missing expiry as NULL",
          "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  auto with_expiry = makeFact(f.source, "a", person, 1000, 73.5);
  with_expiry.lms_expiry = at(90000);
  with_expiry.kind = core::FactKind::AttemptReset;
  with_expiry.status = core::FactStatus::Unknown;
  with_expiry.lms_pass = -1;
  with_expiry.attempt = 65535;
  auto no_score = makeFact(f.source, "b", person, 2000, core::kNoScore);
  no_score.max_score = core::kNoScore;
  valueOf(f.store->upsertFact(with_expiry, kNow));
  valueOf(f.store->upsertFact(no_score, kNow));

  const auto facts = valueOf(f.store->factsOf(person));
  REQUIRE(facts.size() == 2);
  const FactRow& a = facts[0];
  CHECK(a.id > 0);
  CHECK(a.source_id == f.source);
  CHECK(a.person_id == person);
  CHECK(a.item == with_expiry.item);
  CHECK(a.lms_item == with_expiry.lms_item);
  CHECK(a.kind == core::FactKind::AttemptReset);
  CHECK(a.status == core::FactStatus::Unknown);
  CHECK(a.lms_pass == -1);
  CHECK(a.attempt == 65535);
  CHECK(a.score == 73.5);
  CHECK(a.max_score == 100);
  CHECK(a.at == at(1000));
  CHECK(a.lms_expiry == at(90000));
  CHECK(a.location == with_expiry.location);
  CHECK(a.first_seen == kNow);
  CHECK(a.last_seen == kNow);
  CHECK(std::isnan(facts[1].score));
  CHECK(std::isnan(facts[1].max_score));
  CHECK_FALSE(facts[1].lms_expiry.has_value());

  RawDb raw(f.path);
  CHECK(raw.isNull("SELECT score FROM facts WHERE external_id = 'b'"));
  CHECK(raw.isNull("SELECT lms_expiry FROM facts WHERE external_id = 'b'"));
  CHECK(raw.text("SELECT kind || '/' || status FROM facts WHERE external_id = 'a'") ==
        "attempt_reset/unknown");
}

TEST_CASE("A fact without a source or external id is invalid", "[unit][store]") {
  Fixture f;
  auto no_id = makeFact(f.source, "", 0, 1000);
  auto result = f.store->upsertFact(no_id, kNow);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == ErrorKind::Invalid);
}

TEST_CASE("forEachFact streams every fact ordered by person then time", "[unit][store]") {
  Fixture f;
  const auto p1 = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  const auto p2 = valueOf(f.store->upsertPerson(makePerson("e2", "e2", "")));
  // Inserted out of order, with a tie on `at`.
  valueOf(f.store->upsertFact(makeFact(f.source, "p2-late", p2, 900), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "p1-late", p1, 800), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "unresolved", 0, 999), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "p2-early", p2, 100), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "p1-early", p1, 100), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "p1-tie", p1, 800), kNow));

  std::vector<std::string> seen;
  requireOk(f.store->forEachFact([&](const FactRow& fact) { seen.push_back(fact.external_id); }));
  CHECK(seen == std::vector<std::string>{"unresolved", "p1-early", "p1-late", "p1-tie", "p2-early",
                                         "p2-late"});

  // The order comes from fact_order and facts_unresolved, not from a sort of the whole table
  // (O(1) memory).
  RawDb raw(f.path);
  const auto plan = raw.joined(
      "EXPLAIN QUERY PLAN SELECT f.* FROM fact_order o JOIN facts f ON f.id = o.fact_id"
      " ORDER BY o.person_id, o.at, o.fact_id",
      3);
  INFO(plan);
  CHECK(plan.find("SCAN o") != std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  const auto unresolved = raw.joined(
      "EXPLAIN QUERY PLAN SELECT * FROM facts WHERE person_id IS NULL ORDER BY at, id", 3);
  INFO(unresolved);
  CHECK(unresolved.find("facts_unresolved") != std::string::npos);
  CHECK(unresolved.find("TEMP B-TREE") == std::string::npos);
}

// Upserts `delivery` into `one` a fact at a time and into `batch` as one batch in a
// transaction; checks that both report the same outcomes and returns the batch's.
UpsertCounts upsertBoth(Store& one, Store& batch, const std::vector<FactRow>& delivery,
                        core::Instant now) {
  UpsertCounts expected;
  for (const auto& f : delivery) {
    switch (valueOf(one.upsertFact(f, now))) {
      case UpsertOutcome::Inserted: ++expected.inserted; break;
      case UpsertOutcome::Updated: ++expected.updated; break;
      case UpsertOutcome::Unchanged: ++expected.unchanged; break;
    }
  }
  auto tx = valueOf(batch.begin());
  const auto got = valueOf(batch.upsertFacts(delivery, now));
  requireOk(tx.commit());
  CHECK(got.inserted == expected.inserted);
  CHECK(got.updated == expected.updated);
  CHECK(got.unchanged == expected.unchanged);
  return got;
}

// Every row of the fact tables, in a fixed order, as text (to compare two stores).
std::string factTables(const std::string& path) {
  RawDb raw(path);
  return raw.joined(
             "SELECT id || ',' || source_id || ',' || external_id || ',' || ext_key || ',' ||"
             " ifnull(person_id, 'null') || ',' || item || ',' || lms_item || ',' || kind || ',' ||"
             " status || ',' || lms_pass || ',' || attempt || ',' || ifnull(score, 'null') || ','"
             " || ifnull(max_score, 'null') || ',' || at || ',' || ifnull(lms_expiry, 'null') ||"
             " ',' || location || ',' || first_seen || ',' || last_seen FROM facts ORDER BY id",
             0) +
         "\nkeys: " +
         raw.joined("SELECT source_id || ',' || ext_key || ',' || fact_id FROM fact_keys"
                    " ORDER BY source_id, ext_key",
                    0) +
         "\norder: " +
         raw.joined("SELECT person_id || ',' || at || ',' || fact_id FROM fact_order"
                    " ORDER BY person_id, at, fact_id",
                    0);
}

TEST_CASE("A batch upsert stores the same rows, ids and outcomes as one upsert per fact",
          "[unit][store]") {
  Fixture one;
  Fixture batch;
  std::vector<std::int64_t> persons;
  for (const char* key : {"e1", "e2", "e3"}) {
    const auto a = valueOf(one.store->upsertPerson(makePerson(key, key, "")));
    const auto b = valueOf(batch.store->upsertPerson(makePerson(key, key, "")));
    REQUIRE(a == b);
    persons.push_back(a);
  }
  const auto second_source = valueOf(one.store->ensureSource("lms-2", "csv"));
  REQUIRE(valueOf(batch.store->ensureSource("lms-2", "csv")) == second_source);

  // Three deliveries: new facts in date order, repeats inside a batch (same, changed),
  // late and re-dated facts, a changed person, a fact of no known person that is resolved later
  // and one that loses its person, and the same external id in two sources.
  std::vector<std::vector<FactRow>> deliveries(3);
  auto fact = [&](std::int64_t source, const std::string& id, std::size_t person, std::int64_t when,
                  double score = 80) {
    return makeFact(source, id, person < persons.size() ? persons[person] : 0, when, score);
  };
  deliveries[0] = {fact(one.source, "a", 0, 100), fact(one.source, "b", 1, 90),
                   fact(one.source, "c", 2, 110), fact(one.source, "a", 0, 100),
                   fact(one.source, "d", 9, 120), fact(one.source, "b", 1, 90, 95),
                   fact(second_source, "a", 1, 100), fact(one.source, "e", 0, 100),
                   fact(one.source, "f", 1, 130)};
  deliveries[1] = {fact(one.source, "g", 0, 50), fact(one.source, "c", 2, 110),
                   fact(one.source, "a", 1, 100), fact(one.source, "d", 2, 120),
                   fact(one.source, "e", 0, 105), fact(one.source, "h", 2, 60),
                   fact(one.source, "f", 9, 130), fact(one.source, "g", 0, 50)};
  deliveries[2] = {fact(one.source, "f", 1, 130), fact(one.source, "i", 9, 10),
                   fact(one.source, "c", 2, 110, 70), fact(one.source, "c", 2, 110, 70)};
  deliveries[1][3].lms_expiry = at(9000);
  deliveries[2][0].location = "other.csv:9";

  std::int64_t step = 0;
  for (const auto& delivery : deliveries)
    upsertBoth(*one.store, *batch.store, delivery, kNow + core::Seconds{60 * ++step});
  const std::string rows = factTables(one.path);
  INFO(rows);
  CHECK(rows == factTables(batch.path));
  CHECK(valueOf(batch.store->countFacts()) == 10);
  // What the two tables say is what the scans return.
  std::vector<std::string> scan_one, scan_batch;
  requireOk(one.store->forEachFact([&](const FactRow& r) {
    scan_one.push_back(r.external_id + "@" + std::to_string(r.person_id));
  }));
  requireOk(batch.store->forEachFact([&](const FactRow& r) {
    scan_batch.push_back(r.external_id + "@" + std::to_string(r.person_id));
  }));
  CHECK(scan_one == scan_batch);
  CHECK(scan_batch.front() == "i@0");  // the one fact of no known person comes first
}

TEST_CASE("Batches larger than one multi-row insert match one upsert per fact", "[unit][store]") {
  // New facts go in INSERTs of 64 rows and single rows for the rest: 200 new facts take both.
  Fixture one;
  Fixture batch;
  std::vector<std::int64_t> persons;
  for (const char* key : {"e1", "e2", "e3", "e4", "e5"}) {
    const auto a = valueOf(one.store->upsertPerson(makePerson(key, key, "")));
    REQUIRE(a == valueOf(batch.store->upsertPerson(makePerson(key, key, ""))));
    persons.push_back(a);
  }
  auto fact = [&](int n, std::int64_t when, double score = 80) {
    // Every 17th fact belongs to no known person.
    const std::int64_t person = n % 17 == 0 ? 0 : persons[static_cast<std::size_t>(n) % persons.size()];
    return makeFact(one.source, "n" + std::to_string(n), person, when, score);
  };
  std::vector<std::vector<FactRow>> deliveries(3);
  for (int n = 0; n < 200; ++n) deliveries[0].push_back(fact(n, 1000 - n));
  deliveries[0].push_back(fact(10, 5000, 99));  // a repeat in the same batch: the last one counts
  deliveries[0].push_back(fact(150, 1000 - 150));
  for (int n = 0; n < 270; ++n) deliveries[1].push_back(fact(n, n < 200 ? 1000 - n : 3000 + n));
  deliveries[1][10] = fact(10, 5000, 99);
  deliveries[2] = deliveries[1];  // delivered again: nothing changes

  std::int64_t step = 0;
  std::vector<UpsertCounts> got;
  for (const auto& delivery : deliveries)
    got.push_back(upsertBoth(*one.store, *batch.store, delivery, kNow + core::Seconds{60 * ++step}));
  CHECK(got[0].inserted == 200);
  CHECK(got[0].updated == 1);  // n10 re-dated and re-scored by its repeat
  CHECK(got[0].unchanged == 1);
  CHECK(got[1].inserted == 70);
  CHECK(got[1].unchanged == 200);
  CHECK(got[2].inserted == 0);
  CHECK(got[2].updated == 0);
  CHECK(got[2].unchanged == 270);
  const std::string rows = factTables(one.path);
  INFO(rows);
  CHECK(rows == factTables(batch.path));
  CHECK(valueOf(batch.store->countFacts()) == 270);
  RawDb raw(batch.path);
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 270);
  CHECK(raw.integer("SELECT min(id) FROM facts") == 1);
  CHECK(raw.integer("SELECT max(id) FROM facts") == 270);
  CHECK(raw.integer("SELECT count(*) FROM fact_order") == 270 - 16);  // 16 of no known person
  CHECK(raw.integer("SELECT score FROM facts WHERE external_id = 'n10'") == 99);
  CHECK(raw.integer("SELECT o.at FROM fact_order o JOIN facts f ON f.id = o.fact_id"
                    " WHERE f.external_id = 'n10'") == 5000);
}

TEST_CASE("A fact repeated in one batch is inserted once and then updated or left unchanged",
          "[unit][store]") {
  Fixture f;
  const auto p = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  std::vector<FactRow> facts = {makeFact(f.source, "x", p, 100), makeFact(f.source, "x", p, 100),
                                makeFact(f.source, "x", p, 200)};
  const auto counts = valueOf(f.store->upsertFacts(facts, kNow));
  CHECK(counts.inserted == 1);
  CHECK(counts.unchanged == 1);
  CHECK(counts.updated == 1);
  const auto stored = valueOf(f.store->factsOf(p));
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].at == at(200));
  RawDb raw(f.path);
  CHECK(raw.integer("SELECT count(*) FROM fact_order") == 1);
  CHECK(raw.integer("SELECT at FROM fact_order") == 200);
}

TEST_CASE("A key that belongs to another external id is refused before the batch writes",
          "[unit][store]") {
  Fixture f;
  valueOf(f.store->upsertFact(makeFact(f.source, "a", 0, 100), kNow));
  {
    // Make "b" hash, as far as the store can tell, to the key of "a".
    RawDb raw(f.path);
    valueOf(f.store->upsertFact(makeFact(f.source, "b", 0, 100), kNow));
    const auto b_key = raw.integer("SELECT ext_key FROM facts WHERE external_id = 'b'");
    REQUIRE(raw.exec("DELETE FROM facts WHERE external_id = 'b'") == SQLITE_OK);
    REQUIRE(raw.exec("DELETE FROM fact_keys WHERE ext_key = " + std::to_string(b_key)) == SQLITE_OK);
    REQUIRE(raw.exec("UPDATE fact_keys SET ext_key = " + std::to_string(b_key)) == SQLITE_OK);
  }
  auto tx = valueOf(f.store->begin());
  std::vector<FactRow> facts = {makeFact(f.source, "c", 0, 100), makeFact(f.source, "b", 0, 100)};
  auto refused = f.store->upsertFacts(facts, kNow);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Invalid);
  CHECK(refused.error().describe().find("collision") != std::string::npos);
  // Nothing was written and the transaction is still usable.
  valueOf(f.store->upsertFact(makeFact(f.source, "d", 0, 100), kNow));
  requireOk(tx.commit());
  RawDb raw(f.path);
  CHECK(raw.joined("SELECT external_id FROM facts ORDER BY id", 0) == "a | d");
}

// ---------------------------------------------------------------------------------------------
// Fact loads (Store::beginFactLoad): the ingest's writer

namespace {

// Units of batches, each unit one transaction; a unit marked `rolled_back` is dropped instead
// of committed. Returns the counts of every batch.
struct LoadUnit {
  std::vector<std::vector<FactRow>> batches;
  bool rolled_back = false;
};
std::vector<UpsertCounts> writeUnits(Store& store, const std::vector<LoadUnit>& units) {
  std::vector<UpsertCounts> counts;
  std::int64_t step = 0;
  for (const LoadUnit& unit : units) {
    auto tx = valueOf(store.begin());
    for (const auto& batch : unit.batches)
      counts.push_back(valueOf(store.upsertFacts(batch, kNow + core::Seconds{60 * ++step})));
    if (!unit.rolled_back) requireOk(tx.commit());
  }
  return counts;
}

std::string countsText(const std::vector<UpsertCounts>& counts) {
  std::string out;
  for (const auto& c : counts)
    out += std::to_string(c.inserted) + "/" + std::to_string(c.updated) + "/" +
           std::to_string(c.unchanged) + " ";
  return out;
}

// Four units over three people: new facts, a repeat of a key whose entries still wait (same
// and changed), a move in person order, a fact of no known person, a rolled-back unit whose
// keys come again later, and a whole unit delivered again.
std::vector<LoadUnit> loadScenario(std::int64_t source, const std::vector<std::int64_t>& persons) {
  auto fact = [&](const std::string& id, std::size_t person, std::int64_t when, double score = 80) {
    return makeFact(source, id, person < persons.size() ? persons[person] : 0, when, score);
  };
  std::vector<LoadUnit> units(5);
  std::vector<FactRow> all;
  for (int n = 0; n < 150; ++n)
    all.push_back(fact("n" + std::to_string(n), static_cast<std::size_t>(n % 4), 1000 - n));
  units[0].batches = {std::vector<FactRow>(all.begin(), all.begin() + 70),
                      std::vector<FactRow>(all.begin() + 70, all.end()),
                      // repeats of keys written by this unit's first batch: one the same, one
                      // re-dated (moves in person order), one given another person
                      {fact("n1", 1, 999), fact("n2", 2, 5000, 91), fact("n5", 0, 995),
                       fact("x1", 1, 10)}};
  units[1].batches = {{fact("n2", 2, 5000, 91), fact("n7", 3, 993), fact("y1", 0, 20),
                       fact("y1", 0, 21)}};
  units[2].batches = {{fact("gone1", 0, 30), fact("gone2", 1, 31)}};
  units[2].rolled_back = true;
  units[3].batches = {{fact("gone1", 0, 30), fact("z1", 2, 40)}, {fact("gone2", 1, 31)}};
  units[4].batches = units[0].batches;
  return units;
}

std::vector<std::int64_t> threePeople(Store& store) {
  std::vector<std::int64_t> persons;
  for (const char* key : {"e1", "e2", "e3"})
    persons.push_back(valueOf(store.upsertPerson(makePerson(key, key, ""))));
  return persons;
}

}  // namespace

TEST_CASE("A fact load stores the same rows, ids, keys and person order as plain batches",
          "[unit][store]") {
  for (std::size_t max_pending : {std::size_t{2'000'000}, std::size_t{50}, std::size_t{1}}) {
    INFO("max_pending " << max_pending);
    Fixture plain;
    Fixture load;
    const auto persons = threePeople(*plain.store);
    REQUIRE(threePeople(*load.store) == persons);
    const auto units = loadScenario(plain.source, persons);

    const auto expected = writeUnits(*plain.store, units);
    Store::FactLoadOptions options;
    options.max_pending = max_pending;
    requireOk(load.store->beginFactLoad(load.source, options));
    CHECK(load.store->factLoadState().all_keys_known);  // a first load
    const auto got = writeUnits(*load.store, units);
    const auto state = load.store->factLoadState();
    CHECK(state.pending == 0);
    CHECK(state.all_keys_known);
    CHECK(state.known_keys == 155);  // n0..n149, x1, y1, gone1, gone2, z1
    requireOk(load.store->endFactLoad());
    CHECK_FALSE(load.store->factLoadState().active);

    CHECK(countsText(got) == countsText(expected));
    CHECK(countsText(got).substr(0, 18) == "70/0/0 80/0/0 1/2/");
    const std::string rows = factTables(plain.path);
    INFO(rows);
    CHECK(rows == factTables(load.path));
    CHECK(valueOf(load.store->countFacts()) == 155);
  }
}

TEST_CASE("A fact load of a source with stored facts finds them in the store", "[unit][store]") {
  Fixture plain;
  Fixture load;
  const auto persons = threePeople(*plain.store);
  REQUIRE(threePeople(*load.store) == persons);
  auto units = loadScenario(plain.source, persons);
  // The first unit is stored before the load begins.
  const std::vector<LoadUnit> before(units.begin(), units.begin() + 1);
  const std::vector<LoadUnit> during(units.begin() + 1, units.end());
  writeUnits(*plain.store, before);
  writeUnits(*load.store, before);
  const auto expected = writeUnits(*plain.store, during);
  requireOk(load.store->beginFactLoad(load.source));
  CHECK_FALSE(load.store->factLoadState().all_keys_known);
  const auto got = writeUnits(*load.store, during);
  CHECK(load.store->factLoadState().known_keys == 0);
  requireOk(load.store->endFactLoad());
  CHECK(countsText(got) == countsText(expected));
  // The first unit delivered again: every key is found in the store, nothing is inserted.
  REQUIRE(got.size() >= 3);
  for (std::size_t i = got.size() - 3; i < got.size(); ++i) CHECK(got[i].inserted == 0);
  CHECK(got[got.size() - 2].unchanged == 80);
  CHECK(factTables(plain.path) == factTables(load.path));
}

TEST_CASE("A fact load takes its own source's facts only, inside a transaction", "[unit][store]") {
  Fixture f;
  const auto other = valueOf(f.store->ensureSource("other", "csv"));
  requireOk(f.store->beginFactLoad(f.source));
  auto again = f.store->beginFactLoad(f.source);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().describe().find("already running") != std::string::npos);
  std::vector<FactRow> batch = {makeFact(f.source, "a", 0, 10)};
  auto outside = f.store->upsertFacts(batch, kNow);
  REQUIRE_FALSE(outside.ok());
  CHECK(outside.error().describe().find("inside a Transaction") != std::string::npos);
  {
    auto tx = valueOf(f.store->begin());
    std::vector<FactRow> foreign = {makeFact(f.source, "a", 0, 10), makeFact(other, "b", 0, 10)};
    auto refused = f.store->upsertFacts(foreign, kNow);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().describe().find("not of source " + std::to_string(other)) !=
          std::string::npos);
    valueOf(f.store->upsertFacts(batch, kNow));  // nothing was written: the transaction goes on
    requireOk(tx.commit());
  }
  requireOk(f.store->endFactLoad());
  CHECK(valueOf(f.store->countFacts()) == 1);
  // A load cannot begin inside a transaction.
  auto tx = valueOf(f.store->begin());
  REQUIRE_FALSE(f.store->beginFactLoad(f.source).ok());
}

TEST_CASE("Inside a fact load, scans and single upserts see the facts whose entries wait",
          "[unit][store]") {
  Fixture f;
  const auto persons = threePeople(*f.store);
  requireOk(f.store->beginFactLoad(f.source));
  auto tx = valueOf(f.store->begin());
  std::vector<FactRow> batch = {makeFact(f.source, "a", persons[0], 20),
                                makeFact(f.source, "b", persons[0], 10),
                                makeFact(f.source, "c", persons[1], 30)};
  valueOf(f.store->upsertFacts(batch, kNow));
  CHECK(f.store->factLoadState().pending == 3);  // person order; a first load's keys wait to its end
  const auto mine = valueOf(f.store->factsOf(persons[0]));  // writes what waits first
  REQUIRE(mine.size() == 2);
  CHECK(mine[0].external_id == "b");
  CHECK(mine[1].external_id == "a");
  CHECK(f.store->factLoadState().pending == 0);
  // A single upsert is not tracked by the load: it stops answering probes from memory.
  valueOf(f.store->upsertFacts(std::vector<FactRow>{makeFact(f.source, "d", persons[2], 5)}, kNow));
  CHECK(valueOf(f.store->upsertFact(makeFact(f.source, "a", persons[2], 20), kNow)) ==
        UpsertOutcome::Updated);
  CHECK_FALSE(f.store->factLoadState().all_keys_known);
  CHECK(valueOf(f.store->upsertFacts(std::vector<FactRow>{makeFact(f.source, "a", persons[2], 20)},
                                     kNow))
            .unchanged == 1);
  std::vector<std::string> scan;
  requireOk(f.store->forEachFact(
      [&](const FactRow& r) { scan.push_back(r.external_id + "@" + std::to_string(r.person_id)); }));
  CHECK(scan == std::vector<std::string>{"b@" + std::to_string(persons[0]),
                                         "c@" + std::to_string(persons[1]),
                                         "d@" + std::to_string(persons[2]),
                                         "a@" + std::to_string(persons[2])});
  requireOk(tx.commit());
  requireOk(f.store->endFactLoad());
}

TEST_CASE("A first load that finds another connection's fact of its source probes the store",
          "[unit][store]") {
  Fixture f;
  requireOk(f.store->beginFactLoad(f.source));
  REQUIRE(f.store->factLoadState().all_keys_known);
  {
    // Another connection (another process) stores a fact of the source meanwhile.
    auto other = openOk(f.path);
    valueOf(other->upsertFact(makeFact(f.source, "dup", 0, 10, 50), kNow));
  }
  {
    auto tx = valueOf(f.store->begin());
    // The load sees a fact id it did not assign, of its source: it stops answering from memory
    // and finds "dup" in the store.
    const auto counts = valueOf(
        f.store->upsertFacts(std::vector<FactRow>{makeFact(f.source, "dup", 0, 10, 90)}, kNow));
    CHECK(counts.inserted == 0);
    CHECK(counts.updated == 1);
    CHECK_FALSE(f.store->factLoadState().all_keys_known);
    requireOk(tx.commit());
  }
  requireOk(f.store->endFactLoad());
  RawDb raw(f.path);
  CHECK(raw.joined("SELECT external_id || ':' || score FROM facts", 0) == "dup:90.0");
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 1);
}

TEST_CASE("Another source's facts written during a first load leave its memory answers on",
          "[unit][store]") {
  Fixture f;
  const auto other_source = valueOf(f.store->ensureSource("other", "csv"));
  requireOk(f.store->beginFactLoad(f.source));
  writeUnits(*f.store, {LoadUnit{{{makeFact(f.source, "a", 0, 10)}}}});
  {
    auto other = openOk(f.path);
    valueOf(other->upsertFact(makeFact(other_source, "a", 0, 10), kNow));
  }
  const auto counts = writeUnits(*f.store, {LoadUnit{{{makeFact(f.source, "a", 0, 10),
                                                       makeFact(f.source, "b", 0, 10)}}}});
  CHECK(countsText(counts) == "1/0/1 ");
  CHECK(f.store->factLoadState().all_keys_known);
  requireOk(f.store->endFactLoad());
  RawDb raw(f.path);
  CHECK(raw.joined("SELECT source_id || ':' || ext_key || ':' || fact_id FROM fact_keys"
                   " ORDER BY fact_id", 0) ==
        raw.joined("SELECT source_id || ':' || ext_key || ':' || id FROM facts ORDER BY id", 0));
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 3);
}

TEST_CASE("A first load writes its keys at its end, and a load that ended without them is repaired",
          "[unit][store]") {
  Fixture f;
  const auto persons = threePeople(*f.store);
  auto unit = [&](std::vector<std::string> ids, double score) {
    LoadUnit u;
    u.batches.emplace_back();
    for (std::size_t i = 0; i < ids.size(); ++i)
      u.batches.back().push_back(makeFact(f.source, ids[i], persons[i % 3], 100 + static_cast<std::int64_t>(i), score));
    return u;
  };
  RawDb raw(f.path);
  requireOk(f.store->beginFactLoad(f.source));
  writeUnits(*f.store, {unit({"a", "b", "c"}, 70)});
  // Committed, readable, but without fact_keys entries: the mark names the first of them.
  CHECK(raw.integer("SELECT count(*) FROM facts") == 3);
  CHECK(raw.integer("SELECT count(*) FROM fact_order") == 3);
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 0);
  CHECK(raw.integer("SELECT keys_from FROM sources WHERE id = " + std::to_string(f.source)) == 1);
  CHECK(valueOf(f.store->factsOf(persons[0])).size() == 1);

  SECTION("the load's end writes them and clears the mark") {
    writeUnits(*f.store, {unit({"a", "d"}, 70)});
    CHECK(raw.integer("SELECT keys_from FROM sources WHERE id = " + std::to_string(f.source)) == 1);
    requireOk(f.store->endFactLoad());
    CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 4);
    CHECK(raw.integer("SELECT count(*) FROM sources WHERE keys_from IS NOT NULL") == 0);
  }
  SECTION("a load that ends without them (a crash) is repaired by the next load of the source") {
    f.store.reset();  // no endFactLoad: the process died
    CHECK(raw.integer("SELECT keys_from FROM sources WHERE id = " + std::to_string(f.source)) == 1);
    CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 0);
    f.store = openOk(f.path);
    requireOk(f.store->beginFactLoad(f.source));
    CHECK_FALSE(f.store->factLoadState().all_keys_known);  // the stored facts are found
    CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 3);
    CHECK(raw.integer("SELECT count(*) FROM sources WHERE keys_from IS NOT NULL") == 0);
    // The same unit again: nothing new, one changed score.
    const auto counts = writeUnits(*f.store, {unit({"a", "b", "c"}, 70), unit({"b"}, 75)});
    CHECK(countsText(counts) == "0/0/3 0/1/0 ");
    requireOk(f.store->endFactLoad());
    CHECK(raw.integer("SELECT count(*) FROM facts") == 3);
  }
  SECTION("another writer of the source repairs them first, and the load's end writes the rest") {
    {
      auto other = openOk(f.path);
      CHECK(valueOf(other->upsertFact(makeFact(f.source, "b", persons[1], 101, 99), kNow)) ==
            UpsertOutcome::Updated);
    }
    CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 3);
    CHECK(raw.integer("SELECT count(*) FROM sources WHERE keys_from IS NOT NULL") == 0);
    // No fact id of the load's source was added: it still answers from memory.
    const auto counts = writeUnits(*f.store, {unit({"a", "e"}, 70)});
    CHECK(countsText(counts) == "1/0/1 ");
    CHECK(f.store->factLoadState().all_keys_known);
    CHECK(raw.integer("SELECT keys_from FROM sources WHERE id = " + std::to_string(f.source)) == 4);
    requireOk(f.store->endFactLoad());
    CHECK(raw.joined("SELECT fact_id FROM fact_keys ORDER BY fact_id", 0) == "1 | 2 | 3 | 4");
    CHECK(raw.integer("SELECT count(*) FROM sources WHERE keys_from IS NOT NULL") == 0);
  }
}

TEST_CASE("Keys that cannot be repaired (two facts share an external id) are a Corrupt error",
          "[unit][store]") {
  Fixture f;
  requireOk(f.store->beginFactLoad(f.source));
  writeUnits(*f.store, {LoadUnit{{{makeFact(f.source, "a", 0, 10), makeFact(f.source, "b", 0, 10)}}}});
  f.store.reset();  // ended without its keys
  RawDb raw(f.path);
  REQUIRE(raw.exec("INSERT INTO facts (source_id, external_id, ext_key, person_id, item, kind,"
                   " status, lms_pass, attempt, at, first_seen, last_seen)"
                   " SELECT source_id, external_id, ext_key, person_id, item, kind, status,"
                   " lms_pass, attempt, at, first_seen, last_seen FROM facts WHERE id = 1") == SQLITE_OK);
  f.store = openOk(f.path);
  auto begun = f.store->beginFactLoad(f.source);
  REQUIRE_FALSE(begun.ok());
  CHECK(begun.error().kind == ErrorKind::Corrupt);
  CHECK(begun.error().describe().find("share an external id") != std::string::npos);
  auto tx = valueOf(f.store->begin());
  auto plain = f.store->upsertFacts(std::vector<FactRow>{makeFact(f.source, "c", 0, 10)}, kNow);
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error().kind == ErrorKind::Corrupt);
  // Nothing of the repair stays: the mark and the missing entries are as they were.
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 0);
}

TEST_CASE("A fact load checkpoints the WAL from its own thread", "[unit][store]") {
  // 3,000 facts make about 60 pages of 16 KiB: far below SQLite's automatic checkpoint (1,000
  // pages), so without the checkpoint thread the database file keeps only its schema.
  for (bool thread : {true, false}) {
    INFO("checkpoint thread " << thread);
    Fixture f;
    const auto before = std::filesystem::file_size(f.path);
    auto threads = [] {
      std::size_t n = 0;
      for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task"))
        ++n;
      return n;
    };
    const std::size_t threads_before = threads();
    Store::FactLoadOptions options;
    options.checkpoint_thread = thread;
    requireOk(f.store->beginFactLoad(f.source, options));
    for (int unit = 0; unit < 3; ++unit) {
      std::vector<FactRow> batch;
      for (int n = 0; n < 1000; ++n)
        batch.push_back(makeFact(f.source, "u" + std::to_string(unit) + "-" + std::to_string(n),
                                 0, 1000 + n));
      auto tx = valueOf(f.store->begin());
      valueOf(f.store->upsertFacts(batch, kNow));
      requireOk(tx.commit());
    }
    requireOk(f.store->endFactLoad());  // the thread's last round may still run
    auto after = std::filesystem::file_size(f.path);
    if (thread) {
      for (int i = 0; i < 100 && after <= before + 300'000; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        after = std::filesystem::file_size(f.path);
      }
      CHECK(after > before + 300'000);
      // After its last round the thread ends by itself: none is left idle between loads.
      for (int i = 0; i < 100 && threads() != threads_before; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } else {
      CHECK(after == before);
    }
    CHECK(threads() == threads_before);
    CHECK(valueOf(f.store->countFacts()) == 3000);
  }
}

TEST_CASE("A batch that fails part-way leaves its transaction only able to roll back",
          "[unit][store]") {
  Fixture f;
  const auto p = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  valueOf(f.store->upsertFact(makeFact(f.source, "kept", p, 1), kNow));
  // A stray person-order entry where the next fact (id 3, at 3) will go: its insert fails on the
  // primary key after the batch's rows were appended.
  REQUIRE(RawDb(f.path).exec("INSERT INTO fact_order (person_id, at, fact_id) VALUES (" +
                             std::to_string(p) + ", 3, 3)") == SQLITE_OK);
  {
    auto tx = valueOf(f.store->begin());
    valueOf(f.store->upsertFact(makeFact(f.source, "same-unit", p, 2), kNow));
    std::vector<FactRow> facts = {makeFact(f.source, "new", p, 3),
                                  makeFact(f.source, "other", p, 4)};
    auto failed = f.store->upsertFacts(facts, kNow);
    REQUIRE_FALSE(failed.ok());
    auto later = f.store->upsertFact(makeFact(f.source, "later", p, 5), kNow);
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().describe().find("roll") != std::string::npos);
    auto committed = tx.commit();
    REQUIRE_FALSE(committed.ok());
  }
  RawDb raw(f.path);
  CHECK(raw.joined("SELECT external_id FROM facts ORDER BY id", 0) == "kept");
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 1);
  CHECK(raw.integer("SELECT count(*) FROM fact_order WHERE fact_id <> 3") == 1);
  REQUIRE(raw.exec("DELETE FROM fact_order WHERE fact_id = 3") == SQLITE_OK);
  // The store is usable again once the transaction is gone.
  valueOf(f.store->upsertFact(makeFact(f.source, "after", p, 6), kNow));
  CHECK(valueOf(f.store->countFacts()) == 2);
}

TEST_CASE("A failed single upsert inside a transaction writes nothing and keeps it usable",
          "[unit][store]") {
  Fixture f;
  const auto p = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  auto tx = valueOf(f.store->begin());
  REQUIRE_FALSE(f.store->upsertFact(makeFact(f.source, "orphan", 999, 4), kNow).ok());
  valueOf(f.store->upsertFact(makeFact(f.source, "ok", p, 5), kNow));
  requireOk(tx.commit());
  RawDb raw(f.path);
  CHECK(raw.joined("SELECT external_id FROM facts ORDER BY id", 0) == "ok");
  CHECK(raw.integer("SELECT count(*) FROM fact_keys") == 1);
}

TEST_CASE("The store can be read from inside a forEachFact callback", "[unit][store]") {
  Fixture f;
  const auto p1 = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  valueOf(f.store->upsertFact(makeFact(f.source, "a", p1, 1), kNow));
  valueOf(f.store->upsertFact(makeFact(f.source, "b", p1, 2), kNow));
  int outer = 0;
  int inner = 0;
  requireOk(f.store->forEachFact([&](const FactRow& fact) {
    ++outer;
    CHECK(valueOf(f.store->factsOf(fact.person_id)).size() == 2);
    requireOk(f.store->forEachFact([&](const FactRow&) { ++inner; }));
  }));
  CHECK(outer == 2);
  CHECK(inner == 4);
}

// ---------------------------------------------------------------------------------------------
// Transactions and concurrency

TEST_CASE("A transaction rolls back when destroyed without commit", "[unit][store]") {
  Fixture f;
  {
    auto tx = valueOf(f.store->begin());
    valueOf(f.store->upsertFact(makeFact(f.source, "a", 0, 1), kNow));
    valueOf(f.store->beginRun("ingest", kNow));
    CHECK(valueOf(f.store->countFacts()) == 1);
  }
  CHECK(valueOf(f.store->countFacts()) == 0);
  CHECK(valueOf(f.store->runs()).empty());
}

TEST_CASE("A committed transaction persists across a reopen", "[unit][store]") {
  Fixture f;
  {
    auto tx = valueOf(f.store->begin());
    valueOf(f.store->upsertFact(makeFact(f.source, "a", 0, 1), kNow));
    requireOk(tx.commit());
    auto twice = tx.commit();
    REQUIRE_FALSE(twice.ok());
    CHECK(twice.error().kind == ErrorKind::Internal);
  }
  f.store.reset();
  auto reopened = openOk(f.path);
  CHECK(valueOf(reopened->countFacts()) == 1);
}

TEST_CASE("A moved transaction is committed or rolled back exactly once", "[unit][store]") {
  Fixture f;
  {
    auto first = valueOf(f.store->begin());
    Transaction moved(std::move(first));
    valueOf(f.store->upsertFact(makeFact(f.source, "a", 0, 1), kNow));
    CHECK_FALSE(first.commit().ok());  // NOLINT(bugprone-use-after-move): the point of the test
    requireOk(moved.commit());
  }
  CHECK(valueOf(f.store->countFacts()) == 1);
}

TEST_CASE("A second begin inside an open transaction is refused", "[unit][store]") {
  Fixture f;
  auto tx = valueOf(f.store->begin());
  auto nested = f.store->begin();
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.error().kind == ErrorKind::Internal);
  requireOk(tx.commit());
  auto next = f.store->begin();
  CHECK(next.ok());
}

TEST_CASE("While one connection writes, another's write gets Transient instead of corrupting",
          "[unit][store]") {
  Fixture f;
  auto other = openOk(f.path, OpenOptions{false, 50});
  {
    auto tx = valueOf(f.store->begin());
    valueOf(f.store->upsertFact(makeFact(f.source, "mine", 0, 1), kNow));

    auto blocked = other->upsertFact(makeFact(f.source, "theirs", 0, 2), kNow);
    REQUIRE_FALSE(blocked.ok());
    CHECK(blocked.error().kind == ErrorKind::Transient);
    auto blocked_tx = other->begin();
    REQUIRE_FALSE(blocked_tx.ok());
    CHECK(blocked_tx.error().kind == ErrorKind::Transient);
    // Readers are not blocked by the writer (WAL) and see the last committed state.
    CHECK(valueOf(other->countFacts()) == 0);
    requireOk(tx.commit());
  }
  CHECK(valueOf(other->upsertFact(makeFact(f.source, "theirs", 0, 2), kNow)) ==
        UpsertOutcome::Inserted);
  CHECK(valueOf(f.store->countFacts()) == 2);
  other.reset();
  f.store.reset();
  RawDb raw(f.path);
  CHECK(raw.text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("A second writer with a busy timeout waits for the first to commit", "[unit][store]") {
  Fixture f;
  auto other = openOk(f.path, OpenOptions{false, 20000});
  auto tx = valueOf(f.store->begin());
  valueOf(f.store->upsertFact(makeFact(f.source, "mine", 0, 1), kNow));
  std::promise<void> started;
  auto waiting = std::async(std::launch::async, [&] {
    started.set_value();
    return other->upsertFact(makeFact(f.source, "theirs", 0, 2), kNow);
  });
  started.get_future().wait();
  requireOk(tx.commit());
  CHECK(valueOf(waiting.get()) == UpsertOutcome::Inserted);
  CHECK(valueOf(f.store->countFacts()) == 2);
}

// ---------------------------------------------------------------------------------------------
// Persons

TEST_CASE("Upserting a person with empty fields does not blank the known ones", "[unit][store]") {
  Fixture f;
  const auto id = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "ann@example.com", 100)));
  PersonRow sparse;
  sparse.key = "e1";
  sparse.updated_at = at(200);
  CHECK(valueOf(f.store->upsertPerson(sparse)) == id);

  auto found = valueOf(f.store->findPerson("e1"));
  REQUIRE(found);
  CHECK(found->employee_id == "e1");
  CHECK(found->email == "ann@example.com");
  CHECK(found->display_name == "Person e1");
  CHECK(found->population == "engineering");
  CHECK(found->first_seen == at(100));
  CHECK(found->updated_at == at(100));  // nothing changed

  PersonRow renamed = sparse;
  renamed.display_name = "Ann Lee";
  renamed.updated_at = at(300);
  CHECK(valueOf(f.store->upsertPerson(renamed)) == id);
  found = valueOf(f.store->findPerson("e1"));
  REQUIRE(found);
  CHECK(found->display_name == "Ann Lee");
  CHECK(found->email == "ann@example.com");
  CHECK(found->first_seen == at(100));
  CHECK(found->updated_at == at(300));
  CHECK(valueOf(f.store->persons()).size() == 1);
}

TEST_CASE("forEachPersonIdentity streams every person's identifiers by id, with the count first",
          "[unit][store]") {
  Fixture f;
  valueOf(f.store->upsertPerson(makePerson("k-1", "E-100", "bob@example.com")));
  valueOf(f.store->upsertPerson(makePerson("k-2", "", "eve@example.com")));
  valueOf(f.store->upsertPerson(makePerson("k-3", "E-300", "")));
  std::int64_t count = -1;
  std::vector<std::string> seen;
  requireOk(f.store->forEachPersonIdentity(
      [&](std::int64_t id, std::string_view key, std::string_view employee_id,
          std::string_view email) {
        seen.push_back(std::to_string(id) + " " + std::string(key) + " " +
                       std::string(employee_id) + " " + std::string(email) + " of " +
                       std::to_string(count));
      },
      &count));
  CHECK(seen == std::vector<std::string>{"1 k-1 E-100 bob@example.com of 3", "2 k-2  eve@example.com of 3",
                                         "3 k-3 E-300  of 3"});
  std::size_t calls = 0;
  requireOk(f.store->forEachPersonIdentity(
      [&](std::int64_t, std::string_view, std::string_view, std::string_view) { ++calls; }));
  CHECK(calls == 3);
}

TEST_CASE("findPerson finds a person by key, employee id or email", "[unit][store]") {
  Fixture f;
  const auto id = valueOf(f.store->upsertPerson(makePerson("k-1", "E-100", "bob@example.com")));
  valueOf(f.store->upsertPerson(makePerson("k-2", "E-200", "eve@example.com")));
  for (const char* query : {"k-1", "E-100", "bob@example.com"}) {
    INFO(query);
    auto found = valueOf(f.store->findPerson(query));
    REQUIRE(found);
    CHECK(found->id == id);
    CHECK(found->key == "k-1");
  }
  CHECK_FALSE(valueOf(f.store->findPerson("nobody@example.com")).has_value());

  RawDb raw(f.path);
  CHECK(raw.integer("SELECT count(*) FROM person_identifiers WHERE person_id = " +
                    std::to_string(id)) == 2);
}

TEST_CASE("A changed email replaces the old identifier", "[unit][store]") {
  Fixture f;
  auto person = makePerson("e1", "e1", "old@example.com");
  const auto id = valueOf(f.store->upsertPerson(person));
  person.email = "new@example.com";
  valueOf(f.store->upsertPerson(person));
  CHECK_FALSE(valueOf(f.store->findPerson("old@example.com")).has_value());
  auto found = valueOf(f.store->findPerson("new@example.com"));
  REQUIRE(found);
  CHECK(found->id == id);
  // The old address is free for someone else now.
  CHECK(f.store->upsertPerson(makePerson("e2", "e2", "old@example.com")).ok());
}

TEST_CASE("A person first known by email is re-keyed when the employee id becomes known",
          "[unit][store]") {
  Fixture f;
  const auto id =
      valueOf(f.store->upsertPerson(makePerson("ann@example.com", "", "ann@example.com")));
  valueOf(f.store->upsertFact(makeFact(f.source, "a1", id, 1000), kNow));

  CHECK(valueOf(f.store->upsertPerson(makePerson("E-1", "E-1", "ann@example.com", 2000))) == id);
  const auto persons = valueOf(f.store->persons());
  REQUIRE(persons.size() == 1);
  CHECK(persons[0].key == "E-1");
  CHECK(persons[0].employee_id == "E-1");
  CHECK(persons[0].first_seen == at(1'700'000'000));
  for (const char* query : {"E-1", "ann@example.com"}) {
    auto found = valueOf(f.store->findPerson(query));
    REQUIRE(found);
    CHECK(found->id == id);
  }
  CHECK(valueOf(f.store->factsOf(id)).size() == 1);

  // Someone else claiming that email with another employee id is still a conflict.
  auto clash = f.store->upsertPerson(makePerson("E-2", "E-2", "ann@example.com"));
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().kind == ErrorKind::Conflict);
}

TEST_CASE("An identifier that belongs to another person is a Conflict and writes nothing",
          "[unit][store]") {
  Fixture f;
  valueOf(f.store->upsertPerson(makePerson("e1", "e1", "shared@example.com")));
  auto clash = f.store->upsertPerson(makePerson("e2", "e2", "shared@example.com"));
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().kind == ErrorKind::Conflict);
  CHECK(clash.error().describe().find("shared@example.com") != std::string::npos);
  CHECK(valueOf(f.store->persons()).size() == 1);
  CHECK_FALSE(valueOf(f.store->findPerson("e2")).has_value());
}

TEST_CASE("A failed write inside a transaction leaves the transaction usable", "[unit][store]") {
  Fixture f;
  {
    auto tx = valueOf(f.store->begin());
    valueOf(f.store->upsertPerson(makePerson("e1", "e1", "shared@example.com")));
    auto clash = f.store->upsertPerson(makePerson("e2", "e2", "shared@example.com"));
    REQUIRE_FALSE(clash.ok());
    valueOf(f.store->upsertPerson(makePerson("e3", "e3", "")));
    requireOk(tx.commit());
  }
  const auto persons = valueOf(f.store->persons());
  REQUIRE(persons.size() == 2);
  CHECK(persons[0].key == "e1");
  CHECK(persons[1].key == "e3");
  RawDb raw(f.path);
  CHECK(raw.integer("SELECT count(*) FROM person_identifiers") == 3);
}

// ---------------------------------------------------------------------------------------------
// Sources, units, fetches

TEST_CASE("ensureSource is idempotent and refuses a changed kind", "[unit][store]") {
  Fixture f;
  CHECK(valueOf(f.store->ensureSource("lms", "csv")) == f.source);
  auto changed = f.store->ensureSource("lms", "moodle");
  REQUIRE_FALSE(changed.ok());
  CHECK(changed.error().kind == ErrorKind::Conflict);
  const auto other = valueOf(f.store->ensureSource("moodle-prod", "moodle"));
  CHECK(other != f.source);

  requireOk(f.store->setCursor(other, "2024-05-01T00:00:00Z"));
  const auto sources = valueOf(f.store->sources());
  REQUIRE(sources.size() == 2);
  CHECK(sources[0].name == "lms");
  CHECK(sources[0].cursor.empty());
  CHECK(sources[1].kind == "moodle");
  CHECK(sources[1].cursor == "2024-05-01T00:00:00Z");
  auto missing = f.store->setCursor(999, "x");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
}

TEST_CASE("The unit ledger marks a unit processed once it was read completely", "[unit][store]") {
  Fixture f;
  const auto other = valueOf(f.store->ensureSource("lms-2", "csv"));
  CHECK_FALSE(valueOf(f.store->unitProcessed(f.source, "sha256:aa")));
  requireOk(f.store->recordUnit(f.source, "sha256:aa", "a.csv", 10, false, "truncated", kNow));
  CHECK_FALSE(valueOf(f.store->unitProcessed(f.source, "sha256:aa")));  // read it again
  requireOk(f.store->recordUnit(f.source, "sha256:aa", "a.csv", 12, true, "", kNow));
  CHECK(valueOf(f.store->unitProcessed(f.source, "sha256:aa")));
  // A complete record is final.
  requireOk(f.store->recordUnit(f.source, "sha256:aa", "a.csv", 12, false, "late", kNow));
  CHECK(valueOf(f.store->unitProcessed(f.source, "sha256:aa")));
  CHECK_FALSE(valueOf(f.store->unitProcessed(other, "sha256:aa")));
  RawDb raw(f.path);
  CHECK(raw.integer("SELECT count(*) FROM source_units") == 1);
  CHECK(raw.text("SELECT problem FROM source_units") == "");
}

TEST_CASE("The last complete unit's record count is the baseline for the collapse guard",
          "[unit][store]") {
  Fixture f;
  const auto other = valueOf(f.store->ensureSource("lms-2", "csv"));
  CHECK(valueOf(f.store->lastCompleteUnitRecords(f.source)) == 0);
  requireOk(f.store->recordUnit(f.source, "h-a", "a.csv", 1, true, "", at(100), 500));
  CHECK(valueOf(f.store->lastCompleteUnitRecords(f.source)) == 500);
  requireOk(f.store->recordUnit(f.source, "h-b", "b.csv", 1, false, "collapsed", at(200), 20));
  CHECK(valueOf(f.store->lastCompleteUnitRecords(f.source)) == 500);  // incomplete: ignored
  requireOk(f.store->recordUnit(f.source, "h-c", "c.csv", 1, true, "", at(300), 480));
  CHECK(valueOf(f.store->lastCompleteUnitRecords(f.source)) == 480);
  // b.csv read again completely later: the most recently recorded complete unit now.
  requireOk(f.store->recordUnit(f.source, "h-b", "b.csv", 1, true, "", at(400), 510));
  CHECK(valueOf(f.store->lastCompleteUnitRecords(f.source)) == 510);
  CHECK(valueOf(f.store->lastCompleteUnitRecords(other)) == 0);
}

TEST_CASE("lastFetch returns the latest fetch of that source", "[unit][store]") {
  Fixture f;
  const auto other = valueOf(f.store->ensureSource("lms-2", "csv"));
  CHECK_FALSE(valueOf(f.store->lastFetch(f.source)).has_value());
  const auto run = valueOf(f.store->beginRun("ingest", kNow));

  FetchRow good;
  good.source_id = f.source;
  good.started_at = at(100);
  good.finished_at = at(110);
  good.complete = true;
  good.records = 500;
  valueOf(f.store->recordFetch(good));

  FetchRow partial;
  partial.source_id = f.source;
  partial.run_id = run;
  partial.started_at = at(200);
  partial.finished_at = at(230);
  partial.complete = false;
  partial.problem = "page 3 returned 500";
  partial.units_seen = 3;
  partial.units_skipped = 1;
  partial.records = 120;
  partial.quarantined = 2;
  const auto id = valueOf(f.store->recordFetch(partial));

  FetchRow elsewhere = good;
  elsewhere.source_id = other;
  valueOf(f.store->recordFetch(elsewhere));

  const auto last = valueOf(f.store->lastFetch(f.source));
  REQUIRE(last);
  CHECK(last->id == id);
  CHECK(last->run_id == run);
  CHECK(last->started_at == at(200));
  CHECK(last->finished_at == at(230));
  CHECK_FALSE(last->complete);
  CHECK(last->problem == "page 3 returned 500");
  CHECK(last->units_seen == 3);
  CHECK(last->units_skipped == 1);
  CHECK(last->records == 120);
  CHECK(last->quarantined == 2);
  CHECK(valueOf(f.store->lastFetch(other))->complete);
}

// ---------------------------------------------------------------------------------------------
// Quarantine

TEST_CASE("Quarantine lists the latest first with source names and counts a repeat once",
          "[unit][store]") {
  Fixture f;
  QuarantineRow bad_score;
  bad_score.source_id = f.source;
  bad_score.external_id = "attempt-9";
  bad_score.location = "a.csv:9";
  bad_score.reason = "score 120 above max 100";
  bad_score.raw = "e9,quiz,120,100";
  bad_score.at = at(100);
  requireOk(f.store->addQuarantine(bad_score));

  QuarantineRow no_source;
  no_source.reason = "fact dated in the future";
  no_source.at = at(200);
  requireOk(f.store->addQuarantine(no_source));

  bad_score.at = at(300);  // delivered again
  bad_score.location = "b.csv:4";
  requireOk(f.store->addQuarantine(bad_score));

  CHECK(valueOf(f.store->countQuarantine()) == 2);
  const auto rows = valueOf(f.store->quarantine());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].external_id == "attempt-9");
  CHECK(rows[0].source_name == "lms");
  CHECK(rows[0].location == "b.csv:4");
  CHECK(rows[0].raw == "e9,quiz,120,100");
  CHECK(rows[0].at == at(300));
  CHECK(rows[1].source_id == 0);
  CHECK(rows[1].source_name.empty());
  CHECK(valueOf(f.store->quarantine(1)).size() == 1);
}

// ---------------------------------------------------------------------------------------------
// Exceptions and approvals

TEST_CASE("Exceptions round-trip with their approvals", "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  ExceptionRow row;
  row.person_id = person;
  row.track = "ai-basics";
  row.requester = "manager@example.com";
  row.requested_at = at(100);
  row.starts_at = at(100);
  row.ends_at = at(100 + 14 * 86400);
  row.justification_json = R"({"ticket":"SEC-1"})";
  row.approvals.push_back(ApprovalRow{0, 0, "ciso@example.com", "security", at(150), "ok"});
  const auto id = valueOf(f.store->insertException(row));

  const auto second = valueOf(
      f.store->addApproval(ApprovalRow{0, id, "lead@example.com", "manager", at(120), "fine"}));
  CHECK(valueOf(f.store->addApproval(
            ApprovalRow{0, id, "lead@example.com", "manager", at(130), "again"})) == second);

  requireOk(f.store->revokeException(id, "ciso@example.com", at(500)));
  requireOk(f.store->revokeException(id, "someone-else", at(600)));

  const auto all = valueOf(f.store->exceptions());
  REQUIRE(all.size() == 1);
  const auto& e = all[0];
  CHECK(e.id == id);
  CHECK(e.person_id == person);
  CHECK(e.track == "ai-basics");
  CHECK(e.requester == "manager@example.com");
  CHECK(e.starts_at == at(100));
  CHECK(e.ends_at == at(100 + 14 * 86400));
  CHECK(e.justification_json == R"({"ticket":"SEC-1"})");
  CHECK(e.revoked_at == at(500));
  CHECK(e.revoked_by == "ciso@example.com");
  REQUIRE(e.approvals.size() == 2);
  CHECK(e.approvals[0].approver == "lead@example.com");  // ordered by time
  CHECK(e.approvals[0].comment == "fine");
  CHECK(e.approvals[1].role == "security");
  CHECK(e.approvals[1].exception_id == id);
}

TEST_CASE("Approving or revoking an unknown exception is NotFound", "[unit][store]") {
  Fixture f;
  auto approval = f.store->addApproval(ApprovalRow{0, 42, "ciso", "security", at(1), ""});
  REQUIRE_FALSE(approval.ok());
  CHECK(approval.error().kind == ErrorKind::NotFound);
  auto revoke = f.store->revokeException(42, "ciso", at(1));
  REQUIRE_FALSE(revoke.ok());
  CHECK(revoke.error().kind == ErrorKind::NotFound);
}

TEST_CASE("An exception whose approval fails is not inserted, inside or outside a transaction",
          "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  ExceptionRow row;
  row.person_id = person;
  row.track = "ai-basics";
  row.requester = "manager";
  row.starts_at = at(100);
  row.ends_at = at(200);
  row.approvals.push_back(ApprovalRow{0, 0, "ciso", "security", at(150), ""});
  row.approvals.push_back(ApprovalRow{0, 0, "", "", at(150), ""});  // fails after the inserts
  CHECK_FALSE(f.store->insertException(row).ok());
  CHECK(valueOf(f.store->exceptions()).empty());
  {
    auto tx = valueOf(f.store->begin());
    CHECK_FALSE(f.store->insertException(row).ok());
    row.approvals.pop_back();
    valueOf(f.store->insertException(row));
    requireOk(tx.commit());
  }
  const auto all = valueOf(f.store->exceptions());
  REQUIRE(all.size() == 1);
  CHECK(all[0].approvals.size() == 1);
  RawDb raw(f.path);
  CHECK(raw.integer("SELECT count(*) FROM approvals") == 1);
}

TEST_CASE("An exception that ends before it starts is invalid", "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  ExceptionRow row;
  row.person_id = person;
  row.track = "t";
  row.requester = "r";
  row.starts_at = at(100);
  row.ends_at = at(50);
  auto inserted = f.store->insertException(row);
  REQUIRE_FALSE(inserted.ok());
  CHECK(inserted.error().kind == ErrorKind::Invalid);
}

// ---------------------------------------------------------------------------------------------
// Grants and intents

TEST_CASE("The grant ledger records each active grant once", "[unit][store]") {
  Fixture f;
  const auto person = valueOf(f.store->upsertPerson(makePerson("e1", "e1", "")));
  GrantRow grant{0, person, "ai-basics", "group", "okta/ai-users", "00u1", at(100), std::nullopt};
  const auto id = valueOf(f.store->recordGrant(grant));
  CHECK(valueOf(f.store->recordGrant(grant)) == id);
  GrantRow other_ref = grant;
  other_ref.external_ref = "00u2";
  auto clash = f.store->recordGrant(other_ref);
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().kind == ErrorKind::Conflict);
  CHECK(valueOf(f.store->activeGrants()).size() == 1);

  requireOk(f.store->markGrantRevoked(id, at(200)));
  requireOk(f.store->markGrantRevoked(id, at(300)));
  CHECK(valueOf(f.store->activeGrants()).empty());
  CHECK(valueOf(f.store->recordGrant(other_ref)) != id);
  auto missing = f.store->markGrantRevoked(999, at(1));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
}

TEST_CASE("An intent with an existing idempotency key is a Conflict", "[unit][store]") {
  Fixture f;
  IntentRow intent;
  intent.kind = "token.issue";
  intent.target = "litellm/ai-basics";
  intent.idempotency_key = "e1|ai-basics|token|cycle-0";
  intent.payload_json = R"({"person":"e1"})";
  intent.created_at = at(100);
  const auto id = valueOf(f.store->addIntent(intent));

  auto again = f.store->addIntent(intent);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::Conflict);
  CHECK(again.error().describe().find(intent.idempotency_key) != std::string::npos);

  // Inside a transaction the conflict does not spoil the transaction.
  {
    auto tx = valueOf(f.store->begin());
    auto inside = f.store->addIntent(intent);
    REQUIRE_FALSE(inside.ok());
    CHECK(inside.error().kind == ErrorKind::Conflict);
    IntentRow alert = intent;
    alert.kind = "alert.send";
    alert.idempotency_key = "alert|e1|revoke";
    valueOf(f.store->addIntent(alert));
    requireOk(tx.commit());
  }
  const auto pending = valueOf(f.store->pendingIntents());
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].id == id);
  CHECK(pending[0].state == "pending");
  CHECK(pending[0].payload_json == R"({"person":"e1"})");
  CHECK(pending[0].updated_at == at(100));
  CHECK(pending[1].kind == "alert.send");
}

TEST_CASE("Completing an intent takes it out of the pending list", "[unit][store]") {
  Fixture f;
  const auto run = valueOf(f.store->beginRun("sync", kNow));
  IntentRow intent;
  intent.run_id = run;
  intent.kind = "group.add";
  intent.idempotency_key = "k1";
  intent.created_at = at(100);
  const auto id = valueOf(f.store->addIntent(intent));

  requireOk(f.store->completeIntent(id, "pending", "503, will retry", at(110)));
  auto pending = valueOf(f.store->pendingIntents());
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].attempts == 1);
  CHECK(pending[0].run_id == run);
  CHECK(pending[0].outcome == "503, will retry");

  requireOk(f.store->completeIntent(id, "done", "member added", at(120)));
  CHECK(valueOf(f.store->pendingIntents()).empty());

  auto bad_state = f.store->completeIntent(id, "finished", "", at(130));
  REQUIRE_FALSE(bad_state.ok());
  CHECK(bad_state.error().kind == ErrorKind::Invalid);
  auto missing = f.store->completeIntent(999, "done", "", at(130));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Audit and runs

TEST_CASE("The audit trail is append-only", "[unit][store]") {
  Fixture f;
  const auto first =
      valueOf(f.store->appendAudit(AuditRow{0, at(100), "certgate", "ingest", "lms", "", 0}));
  valueOf(f.store->appendAudit(
      AuditRow{0, at(200), "ciso@example.com", "exception.approve", "e1", R"({"id":1})", 0}));
  const auto rows = valueOf(f.store->audit());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].action == "exception.approve");  // newest first
  CHECK(rows[0].details_json == R"({"id":1})");
  CHECK(rows[1].id == first);
  CHECK(rows[1].details_json == "{}");

  RawDb raw(f.path);
  CHECK(raw.exec("UPDATE audit SET actor = 'mallory'") != SQLITE_OK);
  CHECK(raw.exec("DELETE FROM audit") != SQLITE_OK);
  // appendAudit sets a row's hash; it is never rewritten (audit_chain_test.cpp: the chain).
  CHECK(raw.text("SELECT length(hash) FROM audit WHERE id = " + std::to_string(first)) == "64");
  CHECK(raw.exec("UPDATE audit SET prev_hash = '', hash = 'h1' WHERE id = " +
                 std::to_string(first)) != SQLITE_OK);
  CHECK(raw.exec("UPDATE audit SET hash = 'h2' WHERE id = " + std::to_string(first)) != SQLITE_OK);
  CHECK(raw.integer("SELECT count(*) FROM audit WHERE actor = 'mallory'") == 0);
}

TEST_CASE("Runs begin as running and finish once with an outcome", "[unit][store]") {
  Fixture f;
  const auto id = valueOf(f.store->beginRun("ingest", at(100)));
  auto runs = valueOf(f.store->runs());
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].kind == "ingest");
  CHECK(runs[0].outcome == "running");
  CHECK_FALSE(runs[0].finished_at.has_value());

  requireOk(f.store->finishRun(id, "ok", R"({"facts":3})", at(160)));
  runs = valueOf(f.store->runs());
  CHECK(runs[0].outcome == "ok");
  CHECK(runs[0].finished_at == at(160));
  CHECK(runs[0].summary_json == R"({"facts":3})");

  auto again = f.store->finishRun(id, "failed", "", at(170));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::Conflict);
  auto missing = f.store->finishRun(999, "ok", "", at(170));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);

  valueOf(f.store->beginRun("sync", at(200)));
  runs = valueOf(f.store->runs(1));
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].kind == "sync");
}

}  // namespace
}  // namespace certgate::store

namespace certgate::store {
namespace {

using core::ErrorKind;
using namespace testing;

// ---------------------------------------------------------------------------------------------
// Directory accounts and plans

TEST_CASE("A person's directory account is cached per directory and can be replaced",
          "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto alice = valueOf(store->upsertPerson(makePerson("e1", "e1", "")));
  const auto bob = valueOf(store->upsertPerson(makePerson("e2", "e2", "")));
  requireOk(store->upsertAccount({"scim", bob, "u-bob", at(10)}));
  requireOk(store->upsertAccount({"scim", alice, "u-alice", at(10)}));
  requireOk(store->upsertAccount({"okta", alice, "00u-alice", at(10)}));
  requireOk(store->upsertAccount({"scim", alice, "u-alice-2", at(20)}));

  const auto scim = valueOf(store->accounts("scim"));
  REQUIRE(scim.size() == 2);
  CHECK(scim[0].person_id == alice);  // by person id
  CHECK(scim[0].user_id == "u-alice-2");
  CHECK(scim[0].resolved_at == at(20));
  CHECK(scim[1].user_id == "u-bob");
  CHECK(valueOf(store->accounts("okta")).size() == 1);

  requireOk(store->forgetAccount("scim", alice));
  CHECK(valueOf(store->accounts("scim")).size() == 1);
  auto bad = store->upsertAccount({"scim", alice, "", at(1)});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::Invalid);
}

TEST_CASE("Plans are stored once, listed newest first and move through their states",
          "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  PlanRow p;
  p.id = "p-1";
  p.created_at = at(100);
  p.fingerprint = "abc";
  p.state = "held";
  p.adds = 2;
  p.removes = 40;
  p.plan_json = R"({"actions":[]})";
  requireOk(store->insertPlan(p));
  auto again = store->insertPlan(p);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == ErrorKind::Conflict);

  PlanRow q = p;
  q.id = "p-2";
  q.created_at = at(200);
  q.state = "planned";
  requireOk(store->insertPlan(q));

  const auto list = valueOf(store->plans());
  REQUIRE(list.size() == 2);
  CHECK(list[0].id == "p-2");
  CHECK(list[0].plan_json.empty());  // the list leaves the JSON out

  requireOk(store->updatePlan("p-1", "approved", "carol", at(300)));
  requireOk(store->updatePlan("p-1", "applied", {}, {}, at(400), "40 removed"));
  const auto got = valueOf(store->plan("p-1"));
  REQUIRE(got.has_value());
  CHECK(got->state == "applied");
  CHECK(got->approved_by == "carol");  // kept from the approval
  CHECK(got->approved_at == at(300));
  CHECK(got->applied_at == at(400));
  CHECK(got->outcome == "40 removed");
  CHECK(got->plan_json == p.plan_json);
  CHECK(got->removes == 40);

  CHECK_FALSE(valueOf(store->plan("nope")).has_value());
  auto missing = store->updatePlan("nope", "applied");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
  auto bad_state = store->updatePlan("p-1", "plan");  // a prefix of "planned" is not a state
  REQUIRE_FALSE(bad_state.ok());
  CHECK(bad_state.error().kind == ErrorKind::Invalid);
}

}  // namespace
}  // namespace certgate::store

namespace certgate::store {
namespace {

using core::ErrorKind;
using namespace testing;

// ---------------------------------------------------------------------------------------------
// Gateway tokens

TokenRow tokenRow(std::int64_t person, const std::string& alias, const std::string& id) {
  TokenRow t;
  t.person_id = person;
  t.track = "AI";
  t.gateway = "litellm";
  t.scope = "basic";
  t.alias = alias;
  t.token_id = id;
  t.secret_digest = "sha256:" + std::string(64, 'a');
  t.issued_at = at(100);
  t.expires_at = at(10'000);
  return t;
}

TEST_CASE("A token is recorded once per alias and never with a secret", "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto alice = valueOf(store->upsertPerson(makePerson("e1", "e1", "")));
  const auto id = valueOf(store->recordToken(tokenRow(alice, "certgate:e1:AI:basic:c0:r0", "k1")));
  // A retried issue that adopted the same token: the same row.
  CHECK(valueOf(store->recordToken(tokenRow(alice, "certgate:e1:AI:basic:c0:r0", "k1"))) == id);
  // The same alias naming another token is a Conflict: one alias, one token.
  auto clash = store->recordToken(tokenRow(alice, "certgate:e1:AI:basic:c0:r0", "k2"));
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().kind == ErrorKind::Conflict);
  // A plaintext secret cannot be stored.
  auto plain = tokenRow(alice, "certgate:e1:AI:basic:c0:r1", "k3");
  plain.secret_digest = "sk-live-1234567890";
  auto refused = store->recordToken(plain);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Invalid);
  RawDb raw(dir.file("state.db"));
  CHECK(raw.integer("SELECT count(*) FROM tokens") == 1);

  const auto got = valueOf(store->tokenByAlias("certgate:e1:AI:basic:c0:r0"));
  REQUIRE(got.has_value());
  CHECK(got->token_id == "k1");
  CHECK(got->enforcement == "live");
  CHECK(got->expires_at == at(10'000));
}

TEST_CASE("A revoked token waits for enforcement to be verified", "[unit][store]") {
  TempDir dir;
  auto store = openOk(dir.file("state.db"));
  const auto alice = valueOf(store->upsertPerson(makePerson("e1", "e1", "")));
  const auto k1 = valueOf(store->recordToken(tokenRow(alice, "a1", "k1")));
  const auto k2 = valueOf(store->recordToken(tokenRow(alice, "a2", "k2")));
  CHECK(valueOf(store->tokens(true)).size() == 2);

  requireOk(store->markTokenRevoked(k1, at(200), "expired", "pending", at(260)));
  requireOk(store->markTokenRevoked(k1, at(300), "other", "enforced", std::nullopt));  // first wins
  const auto live = valueOf(store->tokens(true));
  REQUIRE(live.size() == 1);
  CHECK(live[0].id == k2);
  CHECK(valueOf(store->tokensToVerify(at(259))).empty());  // inside the cache window
  const auto due = valueOf(store->tokensToVerify(at(260)));
  REQUIRE(due.size() == 1);
  CHECK(due[0].revoke_reason == "expired");
  CHECK(due[0].revoked_at == at(200));

  requireOk(store->setTokenEnforcement(k1, "enforced"));
  CHECK(valueOf(store->tokensToVerify(at(1000))).empty());
  auto bad = store->setTokenEnforcement(k1, "maybe");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::Invalid);
  auto live_again = store->markTokenRevoked(k2, at(1), "x", "live", std::nullopt);
  REQUIRE_FALSE(live_again.ok());
  auto missing = store->markTokenRevoked(999, at(1), "x", "enforced", std::nullopt);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);
}

}  // namespace
}  // namespace certgate::store
