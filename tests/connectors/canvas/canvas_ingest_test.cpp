// The canvas source through the engine's ingest into a temporary store: overlapping fetches,
// duplicate and out-of-order deliveries make one fact each; the cursor is stored and kept when a
// page fails.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "connectors/canvas/canvas_test_support.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using namespace certgate::testing::canvas_support;
using certgate::testing::canvas::CanvasFake;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:30:00Z");

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  ports::FixedClock clock{kNow};
  CanvasFake site;
  Sleeps sleeps;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-canvas-" + std::to_string(::getpid()) + "-" +
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
    settings.items.push_back({"", "course:1234", "M1", {}});
    settings.items.push_back({"", "assignment:55", "AI/quiz", {}});
    source_settings.name = "canvas";
    source_settings.kind = "canvas";
    source_settings.min_record_ratio = 0.5;
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
  engine::SourceReport ingest() {
    engine::Ingestor ingestor(*store, settings, clock);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&source_settings, makeSource(options(site, {{"per_page", "2"}}), sleeps)});
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
      if (s.name == "canvas") return s.cursor;
    return {};
  }
};

}  // namespace

TEST_CASE("overlapping, duplicate and out-of-order Canvas deliveries make one fact each",
          "[connector][canvas]") {
  Fixture f;
  auto first = f.ingest();
  INFO(first.problem);
  CHECK(first.complete);
  CHECK(first.inserted == 8);
  CHECK(f.facts() == 8);
  const std::string cursor1 = f.cursor();
  CHECK(cursor1.rfind("2026-11-23T10:05:00Z;q=", 0) == 0);

  // Nothing new: pages already stored are skipped, the overlap re-reads nothing new.
  auto second = f.ingest();
  CHECK(second.complete);
  CHECK(second.inserted == 0);
  CHECK(second.updated == 0);
  CHECK(f.facts() == 8);
  CHECK(f.cursor() == cursor1);

  // Grace's first attempt graded late, listed after her second; Ada's history answered newest
  // first and delivered twice (her submission is regraded in the same minute as Grace's).
  for (auto& s : f.site.site()["submissions"]) {
    if (s["id"] == 9002) {
      s["attempt"] = 2;
      s["graded_at"] = "2026-11-25T10:00:00Z";
      s["submission_history"] = Json::array(
          {{{"attempt", 2}, {"score", 17.0}, {"grade", "17"}, {"submitted_at", "2026-11-24T11:00:00Z"},
            {"graded_at", "2026-11-25T10:00:00Z"}, {"workflow_state", "graded"}},
           {{"attempt", 1}, {"score", 9.0}, {"grade", "9"}, {"submitted_at", "2026-11-21T11:00:00Z"},
            {"graded_at", "2026-11-21T11:05:00Z"}, {"workflow_state", "graded"}}});
    }
    if (s["id"] == 9001) {
      s["graded_at"] = "2026-11-25T10:00:00Z";
      std::swap(s["submission_history"][0], s["submission_history"][1]);
    }
  }
  f.site.site()["submissions"].push_back(f.site.site()["submissions"][0]);
  auto third = f.ingest();
  CHECK(third.complete);
  CHECK(third.inserted == 1);  // Grace's second attempt only
  CHECK(f.facts() == 9);
  CHECK(f.cursor().rfind("2026-11-25T10:00:00Z;q=", 0) == 0);

  // A failing page keeps the cursor.
  const std::string cursor3 = f.cursor();
  f.site.failRequests(f.site.requestCount() + 5, 100, 503);
  auto fourth = f.ingest();
  CHECK_FALSE(fourth.complete);
  CHECK_THAT(fourth.problem, Catch::Contains("HTTP 503"));
  CHECK(f.cursor() == cursor3);
}

TEST_CASE("a Canvas fetch whose students and progress collapsed leaves the source incomplete, "
          "and a fetch of unchanged, already stored pages does not", "[connector][canvas]") {
  Fixture f;
  auto first = f.ingest();
  INFO(first.problem);
  REQUIRE(first.complete);
  auto same = f.ingest();
  INFO(same.problem);
  CHECK(same.complete);
  CHECK(same.units_skipped == same.units_seen);

  // The token's user now sees a single student with progress (its role narrowed): every answer
  // is well formed, yet the source is not to be believed.
  auto& site = f.site.site();
  site["enrollments"].erase(site["enrollments"].begin() + 1, site["enrollments"].end());
  site["progress"].erase(site["progress"].begin() + 1, site["progress"].end());
  auto collapsed = f.ingest();
  CHECK_FALSE(collapsed.complete);
  CHECK_THAT(collapsed.problem, Catch::Contains("record count collapsed: 2 records read") &&
                                    Catch::Contains("(min_record_ratio 0.5"));
  CHECK_FALSE(f.ingest().complete);
  f.source_settings.min_record_ratio = 0;
  CHECK(f.ingest().complete);
}
