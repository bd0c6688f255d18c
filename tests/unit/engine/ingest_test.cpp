// The ingest pipeline against an in-memory source and a temporary store: identity resolution,
// item mapping, quarantine, idempotency and completeness.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/evaluation.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
core::Instant day(int d) { return *core::parseIso("2026-11-01T00:00:00Z") + core::days(d); }

// An LMS source that hands out prepared units of records.
class FakeSource final : public ports::LmsSource {
 public:
  struct Unit {
    ports::UnitInfo info;
    std::vector<ports::SourceRecord> records;
    std::vector<ports::QuarantinedRecord> bad;
    bool complete = true;
    std::string problem;
  };
  explicit FakeSource(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "fake"; }
  core::Result<ports::FetchOutcome> fetch(const std::string&, core::Instant, ports::RecordSink& sink) override {
    ++fetches;
    if (fail_with) return *fail_with;
    ports::FetchOutcome out;
    out.complete = true;
    for (auto& u : units) {
      ++out.units_seen;
      if (sink.alreadyProcessed(u.info)) {
        ++out.units_skipped;
        continue;
      }
      sink.beginUnit(u.info);
      for (auto r : u.records) sink.record(std::move(r));
      for (auto q : u.bad) sink.quarantine(std::move(q));
      sink.endUnit(u.info, u.complete, u.problem);
      if (!u.complete) {
        out.complete = false;
        out.problem = u.problem;
      }
    }
    return out;
  }
  std::vector<Unit> units;
  std::optional<core::Error> fail_with;
  int fetches = 0;

 private:
  std::string name_;
};

ports::SourceRecord rec(std::string id, std::string employee_id, std::string email, std::string item,
                        core::Instant at, double score = core::kNoScore, double max = core::kNoScore) {
  ports::SourceRecord r;
  r.external_id = std::move(id);
  r.location = "fake:" + r.external_id;
  r.employee_id = std::move(employee_id);
  r.email = std::move(email);
  r.lms_item = std::move(item);
  r.at = at;
  r.score = score;
  r.max_score = max;
  return r;
}

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  ports::FixedClock clock{kNow};

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-engine-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("T");
    t.modules = {sym.intern("M1")};
    t.quiz = core::QuizRule{sym.intern("T/quiz"), 80, 3};
    t.recertify_days = 365;
    t.populations = {sym.intern("contractor")};
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"T", "", "test", {}});
    settings.policy = policy;
    settings.items.push_back({"", "course-1", "M1", {}});
    settings.items.push_back({"", "quiz-9", "T/quiz", {}});
    settings.identity.populations["E2"] = "contractor";
    source_settings.name = "lms";
    source_settings.kind = "fake";
    source_settings.min_record_ratio = 0.5;
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }
  std::size_t batch = engine::Ingestor::kDefaultBatchFacts;

  engine::IngestReport ingest(FakeSource& src) {
    engine::Ingestor ingestor(*store, settings, clock);
    ingestor.setBatchFacts(batch);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&source_settings, std::unique_ptr<ports::LmsSource>(&src)});
    auto report = ingestor.run(handles);
    handles[0].source.release();  // the test owns the source
    REQUIRE(report.ok());
    return *report;
  }
};

std::int64_t valueOrZero(const core::Result<std::int64_t>& r) {
  REQUIRE(r.ok());
  return *r;
}

FakeSource::Unit unit(std::string key, std::vector<ports::SourceRecord> records) {
  FakeSource::Unit u;
  u.info = {std::move(key), "export.csv", 100};
  u.records = std::move(records);
  return u;
}

}  // namespace

TEST_CASE("ingest maps items, classifies quiz attempts and creates people", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  auto r1 = rec("a", "E1", "Ann@Example.org", "course-1", day(1));
  r1.population = "contractor";
  src.units.push_back(unit("sha256:1", {r1, rec("b", "E1", "", "quiz-9", day(2), 85, 100)}));
  const auto report = f.ingest(src);
  REQUIRE(report.sources.size() == 1);
  CHECK(report.sources[0].inserted == 2);
  CHECK(report.sources[0].people_created == 1);
  CHECK(report.sources[0].complete);

  auto people = f.store->persons();
  REQUIRE(people.ok());
  REQUIRE(people->size() == 1);
  CHECK(people->at(0).email == "ann@example.org");
  CHECK(people->at(0).population == "contractor");
  auto facts = f.store->factsOf(people->at(0).id);
  REQUIRE(facts.ok());
  REQUIRE(facts->size() == 2);
  CHECK(facts->at(0).item == "M1");
  CHECK(facts->at(0).kind == core::FactKind::Completion);
  CHECK(facts->at(1).item == "T/quiz");
  CHECK(facts->at(1).kind == core::FactKind::QuizAttempt);

  auto ev = engine::Evaluation::load(*f.store, *f.settings.policy);
  REQUIRE(ev.ok());
  int seen = 0;
  REQUIRE(ev->forEach(kNow, nullptr, [&](const engine::PersonVerdicts& pv) {
             ++seen;
             REQUIRE(pv.verdicts.size() == 1);
             CHECK(pv.verdicts[0].state == core::State::Certified);
             CHECK(pv.verdicts[0].entitled);
           }).ok());
  CHECK(seen == 1);
}

TEST_CASE("a unit ingested twice changes nothing", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  src.units.push_back(unit("sha256:1", {rec("a", "E1", "", "course-1", day(1))}));
  f.ingest(src);
  const auto again = f.ingest(src);
  CHECK(again.sources[0].units_skipped == 1);
  CHECK(again.sources[0].inserted == 0);
  // The same record re-delivered in a new file upserts the same fact.
  src.units.push_back(unit("sha256:2", {rec("a", "E1", "", "course-1", day(1))}));
  const auto third = f.ingest(src);
  CHECK(third.sources[0].inserted == 0);
  CHECK(third.sources[0].unchanged == 1);
  CHECK(*f.store->countFacts() == 1);
}

TEST_CASE("conflicting identities and impossible values are quarantined, not guessed", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  src.units.push_back(unit("sha256:1", {rec("a", "E1", "one@example.org", "course-1", day(1)),
                                        rec("b", "E2", "two@example.org", "course-1", day(1))}));
  f.ingest(src);
  src.units.push_back(unit("sha256:2", {
      rec("c", "E1", "two@example.org", "course-1", day(2)),       // keys point at two people
      rec("d", "", "", "course-1", day(2)),                         // no identity at all
      rec("e", "E1", "", "quiz-9", day(3), 130, 100),               // impossible score
      rec("f", "E1", "", "quiz-9", kNow + core::days(2), 90, 100),  // dated in the future
  }));
  const auto r = f.ingest(src);
  CHECK(r.sources[0].inserted == 0);
  CHECK(r.sources[0].quarantined == 4);
  auto q = f.store->quarantine();
  REQUIRE(q.ok());
  std::string all;
  for (const auto& row : *q) all += row.location + " " + row.reason + "\n";
  CHECK_THAT(all, Catch::Contains("fake:c ambiguous identity"));
  CHECK_THAT(all, Catch::Contains("fake:d unmatched identity"));
  CHECK_THAT(all, Catch::Contains("exceeds the maximum"));
  CHECK_THAT(all, Catch::Contains("in the future"));
}

TEST_CASE("the population mapping file wins over the record's attribute", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  auto r = rec("a", "E2", "", "course-1", day(1));
  r.population = "employee";
  src.units.push_back(unit("sha256:1", {r}));
  f.ingest(src);
  auto p = f.store->findPerson("E2");
  REQUIRE(p.ok());
  REQUIRE(p->has_value());
  CHECK((*p)->population == "contractor");
}

TEST_CASE("with a roster, records of people not on it are quarantined", "[unit][engine]") {
  Fixture f;
  f.settings.identity.roster_path = "roster.csv";
  engine::Ingestor ingestor(*f.store, f.settings, f.clock);
  auto loaded = ingestor.loadRoster({{"E1", "ann@example.org", "Ann", "contractor", "roster.csv:2"},
                                     {"E1", "dup@example.org", "Dup", "", "roster.csv:3"}});
  REQUIRE(loaded.ok());
  CHECK(*loaded == 1);  // the duplicate employee id is set aside
  FakeSource src("lms");
  src.units.push_back(unit("sha256:1", {rec("a", "", "ANN@example.org", "course-1", day(1)),
                                        rec("b", "E9", "", "course-1", day(1))}));
  const auto r = f.ingest(src);
  CHECK(r.sources[0].inserted == 1);
  CHECK(r.sources[0].people_created == 0);
  CHECK(r.sources[0].quarantined == 1);
  auto q = f.store->quarantine();
  REQUIRE(q.ok());
  bool duplicate = false;
  for (const auto& row : *q) duplicate = duplicate || row.location == "roster.csv:3";
  CHECK(duplicate);
}

TEST_CASE("records are counted and stored in the unit they came in, however few", "[unit][engine]") {
  // The unit ledger's record count (the collapse guard's baseline) is per unit: a unit of two
  // records, then one of six records and a quarantined one, counted and stored where they came.
  Fixture f;
  FakeSource src("lms");
  src.units.push_back(unit("sha256:1", {rec("a", "E1", "", "course-1", day(1)),
                                        rec("b", "E2", "", "course-1", day(1))}));
  auto first = f.ingest(src);
  CHECK(first.sources[0].inserted == 2);
  CHECK(first.sources[0].complete);
  CHECK(valueOrZero(f.store->lastCompleteUnitRecords(1)) == 2);
  std::vector<ports::SourceRecord> six;
  for (int i = 0; i < 6; ++i)
    six.push_back(rec("c" + std::to_string(i), "E" + std::to_string(3 + i), "", "course-1", day(2)));
  src.units.push_back(unit("sha256:2", six));
  src.units.back().bad.push_back({"bad-1", "export.csv:9", "score is not a number", "x"});
  auto second = f.ingest(src);
  CHECK(second.sources[0].units_skipped == 1);
  CHECK(second.sources[0].inserted == 6);
  CHECK(second.sources[0].quarantined == 1);
  CHECK(valueOrZero(f.store->lastCompleteUnitRecords(1)) == 7);
}

TEST_CASE("a roster identifier seen twice names the entry that had it first", "[unit][engine]") {
  Fixture f;
  f.settings.identity.roster_path = "roster.csv";
  engine::Ingestor ingestor(*f.store, f.settings, f.clock);
  auto loaded = ingestor.loadRoster({{"E1", "ann@example.org", "Ann", "", "roster.csv:2"},
                                     {"E2", "bob@example.org", "Bob", "", "roster.csv:3"},
                                     {"E1", "carl@example.org", "Carl", "", "roster.csv:4"},
                                     {"E5", "BOB@example.org", "Bobby", "", "roster.csv:5"},
                                     // E6 is new but its email is taken: set aside, and E6 is
                                     // then known as this entry's
                                     {"E6", "ann@example.org", "Ann2", "", "roster.csv:6"},
                                     {"E6", "fay@example.org", "Fay", "", "roster.csv:7"},
                                     {"E8", "", "Gil", "", "roster.csv:8"}});
  REQUIRE(loaded.ok());
  CHECK(*loaded == 3);  // Ann, Bob, Gil
  auto q = f.store->quarantine();
  REQUIRE(q.ok());
  std::map<std::string, std::string> reasons;  // location -> reason
  for (const auto& row : *q) reasons[row.location] = row.reason;
  CHECK(reasons.size() == 4);
  CHECK(reasons["roster.csv:4"] ==
        "duplicate roster identifier 'E1' (also at roster.csv:2); each person must appear once");
  CHECK(reasons["roster.csv:5"] == "duplicate roster identifier 'bob@example.org' (also at "
                                   "roster.csv:3); each person must appear once");
  CHECK(reasons["roster.csv:6"].find("'ann@example.org' (also at roster.csv:2)") !=
        std::string::npos);
  CHECK(reasons["roster.csv:7"].find("'E6' (also at roster.csv:6)") != std::string::npos);
  auto gil = f.store->findPerson("E8");
  REQUIRE(gil.ok());
  CHECK(gil->has_value());
  auto bobby = f.store->findPerson("E5");
  REQUIRE(bobby.ok());
  CHECK_FALSE(bobby->has_value());
}

TEST_CASE("an incomplete unit keeps the source incomplete until it is replaced", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  auto u = unit("sha256:bad", {rec("a", "E1", "", "course-1", day(1))});
  u.complete = false;
  u.problem = "export.csv: truncated";
  src.units.push_back(u);
  const auto first = f.ingest(src);
  CHECK_FALSE(first.sources[0].complete);
  CHECK(first.sources[0].inserted == 1);  // its good records still count
  const auto second = f.ingest(src);
  CHECK_FALSE(second.sources[0].complete);  // read again, still incomplete
  CHECK(second.sources[0].units_skipped == 0);
  src.units[0] = unit("sha256:good", {rec("a", "E1", "", "course-1", day(1))});
  const auto third = f.ingest(src);
  CHECK(third.sources[0].complete);
  auto last = f.store->lastFetch(1);
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  CHECK((*last)->complete);
}

TEST_CASE("a collapsed record count marks the source incomplete", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  std::vector<ports::SourceRecord> many;
  for (int i = 0; i < 10; ++i)
    many.push_back(rec("r" + std::to_string(i), "E" + std::to_string(i), "", "course-1", day(1)));
  src.units.push_back(unit("sha256:full", many));
  CHECK(f.ingest(src).sources[0].complete);
  src.units.push_back(unit("sha256:tiny", {rec("x", "E1", "", "course-1", day(2))}));
  const auto r = f.ingest(src);
  CHECK_FALSE(r.sources[0].complete);
  CHECK_THAT(r.sources[0].problem, Catch::Contains("record count collapsed"));
  // Turned off, the same export is fine.
  f.source_settings.min_record_ratio = 0;
  CHECK(f.ingest(src).sources[0].complete);
}

TEST_CASE("a source that fails entirely is reported and the others still run", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  src.fail_with = core::makeError(core::ErrorKind::Auth, "token refused", "lms", "check the token");
  const auto r = f.ingest(src);
  CHECK_FALSE(r.sources[0].fetched);
  CHECK_FALSE(r.sources[0].complete);
  CHECK_THAT(r.sources[0].problem, Catch::Contains("token refused"));
  auto health = engine::sourceHealth(*f.store, [&] {
    settings::Settings s = f.settings;
    s.sources = {f.source_settings};
    return s;
  }());
  REQUIRE(health.ok());
  REQUIRE(health->size() == 1);
  CHECK_FALSE(health->at(0).complete);
}

TEST_CASE("an LMS expiry is kept only when the source trusts it", "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  auto r = rec("a", "E1", "", "course-1", day(1));
  r.lms_expiry = day(100);
  src.units.push_back(unit("sha256:1", {r}));
  f.ingest(src);
  auto facts = f.store->factsOf(1);
  REQUIRE(facts.ok());
  REQUIRE(facts->size() == 1);
  CHECK_FALSE(facts->at(0).lms_expiry.has_value());

  Fixture g;
  g.source_settings.trust_lms_expiry = true;
  FakeSource src2("lms");
  src2.units.push_back(unit("sha256:1", {r}));
  g.ingest(src2);
  auto facts2 = g.store->factsOf(1);
  REQUIRE(facts2.ok());
  REQUIRE(facts2->size() == 1);
  REQUIRE(facts2->at(0).lms_expiry.has_value());
  CHECK(*facts2->at(0).lms_expiry == day(100));
}

namespace {

// Every stored fact and quarantine row, as text, in the store's own order.
std::string storedRows(store::Store& st) {
  std::string out;
  REQUIRE(st.forEachFact([&](const store::FactRow& f) {
              out += std::to_string(f.id) + " " + f.external_id + " p" + std::to_string(f.person_id) +
                     " " + f.item + " " + core::formatIso(f.at) + " " + std::to_string(f.score) +
                     " " + f.location + " " + std::to_string(f.first_seen.time_since_epoch().count()) +
                     "/" + std::to_string(f.last_seen.time_since_epoch().count()) + "\n";
            }).ok());
  auto q = st.quarantine(-1);
  REQUIRE(q.ok());
  for (const auto& row : *q) out += "q" + std::to_string(row.id) + " " + row.external_id + " " + row.reason + "\n";
  return out;
}

// Two exports and a re-delivery: new facts, a record repeated within a unit, late and
// out-of-order records, changed scores, and quarantined records in between.
void deliveries(FakeSource& src) {
  src.units.push_back(unit("sha256:1", {
      rec("a", "E1", "", "course-1", day(3)), rec("b", "E2", "", "quiz-9", day(1), 70, 100),
      rec("c", "E1", "", "quiz-9", day(2), 85, 100), rec("bad", "", "", "course-1", day(2)),
      rec("b", "E2", "", "quiz-9", day(1), 75, 100), rec("d", "E3", "", "course-1", day(4)),
      rec("e", "E2", "", "quiz-9", day(5), 130, 100), rec("a", "E1", "", "course-1", day(3))}));
  src.units.push_back(unit("sha256:2", {
      rec("f", "E3", "", "quiz-9", day(0), 90, 100), rec("c", "E1", "", "quiz-9", day(2), 95, 100),
      rec("g", "E1", "", "course-1", day(6)), rec("d", "E3", "", "course-1", day(1)),
      rec("h", "E4", "", "course-1", day(2))}));
  src.units.push_back(unit("sha256:3", {
      rec("a", "E1", "", "course-1", day(3)), rec("g", "E1", "", "course-1", day(6)),
      rec("i", "E2", "", "course-1", day(7)), rec("bad", "", "", "course-1", day(2))}));
}

// A source that stops the process in the middle of its unit, after `crash_after` records.
class CrashingSource final : public ports::LmsSource {
 public:
  CrashingSource(std::vector<ports::SourceRecord> records, std::size_t crash_after)
      : records_(std::move(records)), crash_after_(crash_after) {}
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "fake"; }
  core::Result<ports::FetchOutcome> fetch(const std::string&, core::Instant,
                                          ports::RecordSink& sink) override {
    const ports::UnitInfo info{"sha256:crash", "big.csv", 100};
    if (sink.alreadyProcessed(info)) return ports::FetchOutcome{true, "", "", 1, 1, 0, 0};
    sink.beginUnit(info);
    for (std::size_t i = 0; i < records_.size(); ++i) {
      if (i == crash_after_) std::_Exit(0);  // no rollback, no destructors: a power cut
      sink.record(ports::SourceRecord(records_[i]));
    }
    sink.endUnit(info, true, "");
    return ports::FetchOutcome{true, "", "", 1, 0, static_cast<std::int64_t>(records_.size()), 0};
  }

 private:
  std::string name_ = "lms";
  std::vector<ports::SourceRecord> records_;
  std::size_t crash_after_;
};

}  // namespace

TEST_CASE("ingest in batches stores the same facts, ids and counts as one fact at a time",
          "[unit][engine]") {
  Fixture one;
  one.batch = 1;
  Fixture batched;
  batched.batch = 3;
  FakeSource a("lms");
  FakeSource b("lms");
  deliveries(a);
  deliveries(b);
  const auto ra = one.ingest(a);
  const auto rb = batched.ingest(b);
  CHECK(rb.sources[0].inserted == ra.sources[0].inserted);
  CHECK(rb.sources[0].updated == ra.sources[0].updated);
  CHECK(rb.sources[0].unchanged == ra.sources[0].unchanged);
  CHECK(rb.sources[0].quarantined == ra.sources[0].quarantined);
  CHECK(ra.sources[0].inserted == 8);
  CHECK(ra.sources[0].quarantined == 3);
  const std::string rows = storedRows(*one.store);
  INFO(rows);
  CHECK(rows == storedRows(*batched.store));
  // Re-ingesting the same units changes nothing; a new unit with the same records only touches.
  CHECK(batched.ingest(b).sources[0].units_skipped == 3);
  b.units.push_back(unit("sha256:4", b.units[1].records));
  const auto again = batched.ingest(b);
  CHECK(again.sources[0].inserted == 0);
  CHECK(again.sources[0].unchanged == 5);
}

TEST_CASE("a crash in the middle of a unit leaves nothing of that unit", "[unit][engine]") {
  Fixture f;
  FakeSource first("lms");
  first.units.push_back(unit("sha256:0", {rec("before", "E1", "", "course-1", day(1))}));
  f.ingest(first);
  std::vector<ports::SourceRecord> records;
  for (int i = 0; i < 40; ++i)
    records.push_back(rec("r" + std::to_string(i), "E" + std::to_string(i % 7), "", "quiz-9",
                          day(i % 20), 90, 100));

  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Batches of 4: several of them reach the store before the crash at record 30.
    auto opened = store::Store::open((f.dir / "certgate.db").string());
    if (!opened.ok()) std::_Exit(2);
    engine::Ingestor ingestor(**opened, f.settings, f.clock);
    ingestor.setBatchFacts(4);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&f.source_settings, std::make_unique<CrashingSource>(records, 30)});
    (void)ingestor.run(handles);
    std::_Exit(3);  // not reached: the source stops the process
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  // Reopened as after a restart: only the earlier unit is there.
  f.store.reset();
  auto reopened = store::Store::open((f.dir / "certgate.db").string());
  REQUIRE(reopened.ok());
  f.store = std::move(reopened).value();
  CHECK(*f.store->countFacts() == 1);
  auto source_id = f.store->ensureSource("lms", "fake");
  REQUIRE(source_id.ok());
  CHECK_FALSE(*f.store->unitProcessed(*source_id, "sha256:crash"));

  // The next run reads the unit again, whole.
  engine::Ingestor ingestor(*f.store, f.settings, f.clock);
  ingestor.setBatchFacts(4);
  std::vector<engine::SourceHandle> handles;
  handles.push_back({&f.source_settings, std::make_unique<CrashingSource>(records, records.size())});
  auto report = ingestor.run(handles);
  REQUIRE(report.ok());
  CHECK(report->sources[0].inserted == 40);
  CHECK(*f.store->countFacts() == 41);
  CHECK(*f.store->unitProcessed(*source_id, "sha256:crash"));
}

TEST_CASE("a unit delivered twice in one fetch is written once and skipped the second time",
          "[unit][engine]") {
  // The writer may still be committing the first delivery when the source asks about the second.
  Fixture f;
  f.batch = 1;
  FakeSource src("lms");
  src.units.push_back(unit("sha256:1", {rec("a", "E1", "", "course-1", day(1)),
                                        rec("b", "E2", "", "quiz-9", day(2), 90, 100)}));
  src.units.push_back(unit("sha256:2", {rec("c", "E1", "", "quiz-9", day(3), 85, 100)}));
  src.units.push_back(src.units[0]);
  const auto r = f.ingest(src);
  CHECK(r.sources[0].units_seen == 3);
  CHECK(r.sources[0].units_skipped == 1);
  CHECK(r.sources[0].inserted == 3);
  CHECK(r.sources[0].updated == 0);
  CHECK(r.sources[0].unchanged == 0);
  CHECK(r.sources[0].complete);
  CHECK(*f.store->countFacts() == 3);
}

TEST_CASE("a store error stops the run: units before it stay, nothing after it is written",
          "[unit][engine]") {
  Fixture f;
  FakeSource src("lms");
  auto bad = rec("b2", "E2", "", "course-1", day(2));
  bad.lms_pass = 7;  // the store refuses the batch that holds it
  src.units.push_back(unit("sha256:1", {rec("a", "E1", "", "course-1", day(1))}));
  src.units.push_back(unit("sha256:2", {rec("b1", "E2", "", "course-1", day(2)), bad}));
  src.units.push_back(unit("sha256:3", {rec("c", "E3", "", "course-1", day(3))}));
  engine::Ingestor ingestor(*f.store, f.settings, f.clock);
  ingestor.setBatchFacts(1);
  std::vector<engine::SourceHandle> handles;
  handles.push_back({&f.source_settings, std::unique_ptr<ports::LmsSource>(&src)});
  auto report = ingestor.run(handles);
  handles[0].source.release();  // the test owns the source
  REQUIRE_FALSE(report.ok());
  CHECK_THAT(report.error().message, Catch::Contains("lms_pass"));
  CHECK(*f.store->countFacts() == 1);
  auto source_id = f.store->ensureSource("lms", "fake");
  REQUIRE(source_id.ok());
  CHECK(*f.store->unitProcessed(*source_id, "sha256:1"));
  CHECK_FALSE(*f.store->unitProcessed(*source_id, "sha256:2"));
  CHECK_FALSE(*f.store->unitProcessed(*source_id, "sha256:3"));
}
