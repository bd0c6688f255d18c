// The xapi source through the engine's ingest into a temporary store: overlapping fetches,
// duplicate and out-of-order deliveries make one fact each; pages of any size keep the source
// complete; the cursor is stored.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "connectors/xapi/xapi_test_support.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using namespace certgate::testing::xapi_support;
using certgate::testing::xapi::XapiFake;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:30:00Z");
const std::string kBasics = "https://lms.example.com/xapi/activities/ai-basics";
const std::string kQuiz = "https://lms.example.com/xapi/activities/ai-quiz";

Json statement(const std::string& id, const std::string& email, const std::string& verb,
               const std::string& item, const std::string& timestamp, Json result = nullptr) {
  Json s = {{"id", id},
            {"actor", {{"objectType", "Agent"}, {"mbox", "mailto:" + email}}},
            {"verb", {{"id", "http://adlnet.gov/expapi/verbs/" + verb}, {"display", {{"en-US", verb}}}}},
            {"object", {{"id", item}, {"objectType", "Activity"}}},
            {"timestamp", timestamp}};
  if (!result.is_null()) s["result"] = std::move(result);
  return s;
}

std::string uuid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "a0000000-0000-4000-8000-%012d", n);
  return buf;
}

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  ports::FixedClock clock{kNow};
  XapiFake lrs;
  Sleeps sleeps;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-xapi-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("AI");
    t.modules = {sym.intern("M1")};
    t.quiz = core::QuizRule{sym.intern("AI/quiz"), 80, 3};
    t.recertify_days = 365;
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"AI", "", "test", {}});
    settings.policy = policy;
    settings.items.push_back({"", kBasics, "M1", {}});
    settings.items.push_back({"", kQuiz, "AI/quiz", {}});
    source_settings.name = "lrs";
    source_settings.kind = "xapi";
    source_settings.min_record_ratio = 0.5;  // the default: pages must not trip it
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    lrs.start();
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  engine::SourceReport ingest(std::vector<std::pair<std::string, std::string>> extra = {}) {
    engine::Ingestor ingestor(*store, settings, clock);
    std::vector<engine::SourceHandle> handles;
    if (std::none_of(extra.begin(), extra.end(), [](const auto& kv) { return kv.first == "limit"; }))
      extra.emplace_back("limit", "2");
    handles.push_back({&source_settings, makeSource(options(lrs, extra), sleeps)});
    auto report = ingestor.run(handles);
    REQUIRE(report.ok());
    REQUIRE(report->sources.size() == 1);
    return report->sources[0];
  }
  std::int64_t facts() {
    auto n = store->countFacts();
    REQUIRE(n.ok());
    return *n;
  }
  std::string cursor() {
    auto all = store->sources();
    REQUIRE(all.ok());
    for (const auto& s : *all)
      if (s.name == "lrs") return s.cursor;
    return {};
  }
  std::vector<store::FactRow> factsOf(const std::string& email) {
    auto p = store->findPerson(email);
    REQUIRE(p.ok());
    REQUIRE(p->has_value());
    auto f = store->factsOf((*p)->id);
    REQUIRE(f.ok());
    return *f;
  }
};

}  // namespace

TEST_CASE("overlapping, duplicate and out-of-order xAPI deliveries make one fact each",
          "[connector][xapi]") {
  Fixture f;
  // Five completions (pages of 4 and 1 for completed: the second page is a quarter of the first,
  // which the record-count guard would call a collapse in an export) and two quiz attempts.
  for (int i = 1; i <= 5; ++i)
    f.lrs.add(statement(uuid(i), "person" + std::to_string(i) + "@example.org", "completed", kBasics,
                        "2026-11-20T09:00:00Z"));
  f.lrs.add(statement(uuid(10), "person1@example.org", "failed", kQuiz, "2026-11-21T09:00:00Z",
                      {{"score", {{"raw", 10}, {"max", 20}}}, {"success", false}}));
  f.lrs.add(statement(uuid(11), "person1@example.org", "passed", kQuiz, "2026-11-22T09:00:00Z",
                      {{"score", {{"raw", 18}, {"max", 20}}}, {"success", true}}));

  auto first = f.ingest({{"limit", "4"}});
  INFO(first.problem);
  CHECK(first.complete);  // pages of an incremental feed are not compared
  CHECK(first.inserted == 7);
  CHECK(first.quarantined == 0);
  CHECK(f.facts() == 7);
  const std::string cursor1 = f.cursor();
  CHECK(cursor1.rfind("2026-11-25T12:00:00.006000Z;q=", 0) == 0);

  // The next fetch re-reads the overlap window: nothing new, nothing changed.
  auto second = f.ingest({{"limit", "4"}});
  CHECK(second.complete);
  CHECK(second.inserted == 0);
  CHECK(second.updated == 0);
  CHECK(f.facts() == 7);
  CHECK(f.cursor() == cursor1);

  // A late statement: an attempt from days ago stored only now, ahead of the later one; and the
  // same completion delivered twice by the LRS.
  f.lrs.add(statement(uuid(12), "person2@example.org", "failed", kQuiz, "2026-11-19T09:00:00Z",
                      {{"score", {{"scaled", 0.3}}}, {"success", false}}));
  const Json dup = statement(uuid(13), "person3@example.org", "completed", kBasics, "2026-11-23T09:00:00Z");
  Json dup_stored = dup;
  dup_stored["stored"] = "2026-11-25T12:00:00.100000Z";
  f.lrs.addRaw(dup_stored, "2026-11-25T12:00:00.100000Z");
  dup_stored["stored"] = "2026-11-25T12:00:00.200000Z";
  f.lrs.addRaw(dup_stored, "2026-11-25T12:00:00.200000Z");
  f.lrs.setClock(us("2026-11-25T12:00:01Z"));  // consistent through a later time

  auto third = f.ingest({{"limit", "4"}});
  CHECK(third.complete);
  CHECK(third.inserted == 2);  // the late attempt and the duplicated completion, once
  CHECK(f.facts() == 9);
  CHECK(f.cursor().rfind("2026-11-25T12:00:00.200000Z;q=", 0) == 0);

  // person2's late attempt sorts before nothing else; person1's attempts keep their own times.
  const auto p1 = f.factsOf("person1@example.org");
  REQUIRE(p1.size() == 3);
  CHECK(p1[1].item == "AI/quiz");
  CHECK(p1[1].kind == core::FactKind::QuizAttempt);
  CHECK(p1[1].score == Approx(10));
  CHECK(p1[1].max_score == Approx(20));
  CHECK(p1[2].lms_pass == 1);
  const auto p2 = f.factsOf("person2@example.org");
  REQUIRE(p2.size() == 2);
  CHECK(p2[0].at == *core::parseIso("2026-11-19T09:00:00Z"));  // ordered by when it happened
  CHECK(p2[0].score == Approx(30));
}

TEST_CASE("a failing page keeps the stored cursor and the records read before it",
          "[connector][xapi]") {
  Fixture f;
  for (int i = 1; i <= 5; ++i)
    f.lrs.add(statement(uuid(i), "person" + std::to_string(i) + "@example.org", "completed", kBasics,
                        "2026-11-20T09:00:00Z"));
  auto first = f.ingest({{"overlap", "0s"}});
  REQUIRE(first.complete);
  const std::string cursor1 = f.cursor();
  for (int i = 6; i <= 10; ++i)
    f.lrs.add(statement(uuid(i), "person" + std::to_string(i) + "@example.org", "completed", kBasics,
                        "2026-11-24T09:00:00Z"));
  const auto before = f.lrs.statementRequests();
  f.lrs.failRequests(static_cast<int>(before) + 3, 100, 503);
  auto second = f.ingest({{"overlap", "0s"}});
  CHECK_FALSE(second.complete);
  CHECK_THAT(second.problem, Catch::Contains("completed page 3"));
  CHECK(second.inserted == 4);  // pages 1 and 2 of the new statements
  CHECK(f.facts() == 9);
  CHECK(f.cursor() == cursor1);
}
