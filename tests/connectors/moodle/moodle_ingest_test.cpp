// The moodle source through the engine's ingest into a temporary store: repeated fetches,
// duplicate and out-of-order deliveries make one fact each; a failing call leaves the source
// incomplete with the facts read before it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "connectors/moodle/moodle_test_support.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using namespace certgate::testing::moodle_support;
using certgate::testing::moodle::MoodleFake;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:30:00Z");

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  ports::FixedClock clock{kNow};
  MoodleFake site;
  Sleeps sleeps;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-moodle-" + std::to_string(::getpid()) + "-" +
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
    settings.items.push_back({"", "cm:44", "M1", {}});
    settings.items.push_back({"", "quiz:45", "AI/quiz", {}});
    source_settings.name = "moodle";
    source_settings.kind = "moodle";
    source_settings.min_record_ratio = 0.5;  // the default: pages must not trip it
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    site.load(fixture("site.json"));
    site.start();
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  engine::SourceReport ingest(std::vector<std::pair<std::string, std::string>> extra = {
                                  {"page_size", "2"}}) {
    engine::Ingestor ingestor(*store, settings, clock);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&source_settings, makeSource(options(site, extra), sleeps)});
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
  std::vector<store::FactRow> factsOf(const std::string& key) {
    auto p = store->findPerson(key);
    REQUIRE(p.ok());
    REQUIRE(p->has_value());
    auto f = store->factsOf((*p)->id);
    REQUIRE(f.ok());
    return *f;
  }
};

}  // namespace

TEST_CASE("repeated, duplicate and out-of-order Moodle deliveries make one fact each",
          "[connector][moodle]") {
  Fixture f;
  auto first = f.ingest();
  INFO(first.problem);
  CHECK(first.complete);  // pages differ in size: the record-count guard does not apply
  CHECK(first.inserted == 11);
  CHECK(first.quarantined == 0);
  CHECK(f.facts() == 11);

  // Nothing changed in Moodle: every page is skipped, nothing is written.
  auto second = f.ingest();
  CHECK(second.complete);
  CHECK(second.units_skipped == 3);
  CHECK(second.inserted == 0);
  CHECK(second.updated == 0);
  CHECK(f.facts() == 11);

  // Ada enrolled twice (a second enrolment method), her attempts answered newest first, and a
  // late attempt of Grace's that finished before her earlier one.
  f.site.site()["enrolments"].push_back({{"courseid", 12}, {"userid", 101}, {"status", 0}});
  auto& attempts = f.site.site()["attempts"];
  std::swap(attempts[0], attempts[1]);
  attempts.push_back({{"id", 506}, {"quiz", 7}, {"userid", 102}, {"attempt", 2}, {"uniqueid", 9506},
                      {"layout", "1,0"}, {"currentpage", 0}, {"preview", 0}, {"state", "finished"},
                      {"timestart", 1795160000}, {"timefinish", 1795161000},
                      {"timemodified", 1795161000}, {"timemodifiedoffline", 0},
                      {"timecheckstate", nullptr}, {"sumgrades", 9.5}});
  auto third = f.ingest();
  CHECK(third.complete);
  CHECK(third.inserted == 1);
  CHECK(third.updated == 0);
  CHECK(f.facts() == 12);

  const auto ada = f.factsOf("E0001");
  const auto ada_completions = std::count_if(ada.begin(), ada.end(), [](const auto& r) {
    return r.external_id == "completion:12:44:101";
  });
  CHECK(ada_completions == 1);
  const auto grace = f.factsOf("E0002");
  std::vector<const store::FactRow*> quiz;
  for (const auto& r : grace)
    if (r.item == "AI/quiz") quiz.push_back(&r);
  REQUIRE(quiz.size() == 2);
  CHECK(quiz[0]->external_id == "attempt:506");  // ordered by when it happened
  CHECK(quiz[0]->score == Approx(95));
  CHECK(quiz[0]->kind == core::FactKind::QuizAttempt);
  CHECK(quiz[1]->external_id == "attempt:504");
}

TEST_CASE("a Moodle call failing mid-fetch leaves the source incomplete and keeps what was read",
          "[connector][moodle]") {
  Fixture f;
  auto first = f.ingest();
  REQUIRE(first.complete);
  f.site.site()["completion"][0]["statuses"][0]["timecompleted"] = 1795170000;  // re-marked
  f.site.failCalls(f.site.callCount() + 4, 100, 502);
  auto second = f.ingest();
  CHECK(second.fetched);
  CHECK_FALSE(second.complete);
  CHECK_THAT(second.problem, Catch::Contains("HTTP 502"));
  CHECK(second.updated == 1);  // Ada's page was read before the failure
  CHECK(f.facts() == 11);
}

TEST_CASE("a Moodle fetch whose enrolled users collapsed leaves the source incomplete, and a "
          "fetch of unchanged, already stored pages does not", "[connector][moodle]") {
  Fixture f;
  auto first = f.ingest();
  INFO(first.problem);
  REQUIRE(first.complete);
  // Every page skipped as stored before: the users were still listed whole.
  auto same = f.ingest();
  INFO(same.problem);
  CHECK(same.complete);
  CHECK(same.units_skipped == same.units_seen);

  // The WS user now sees one enrolled user of six (a role removed, a course emptied):
  // nothing is wrong with the answers, but the source is not to be believed.
  auto& enrolments = f.site.site()["enrolments"];
  enrolments.erase(enrolments.begin() + 1, enrolments.end());
  auto collapsed = f.ingest();
  CHECK_FALSE(collapsed.complete);
  CHECK_THAT(collapsed.problem,
             Catch::Contains("record count collapsed: 1 records read, the previous complete "
                             "fetch read 6 (min_record_ratio 0.5"));  // 104's enrolment is suspended
  // It stays so on the next fetch (the baseline is the last complete fetch) ...
  CHECK_FALSE(f.ingest().complete);
  // ... until the operator accepts the drop.
  f.source_settings.min_record_ratio = 0;
  CHECK(f.ingest().complete);
}
