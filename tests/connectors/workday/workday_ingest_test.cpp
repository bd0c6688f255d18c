// The workday source through the engine's ingest into a temporary store: overlapping windows and
// rows delivered twice or late make one fact each; a failing report keeps the stored cursor.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "connectors/workday/workday_test_support.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using namespace certgate::testing::workday_support;
using certgate::testing::workday::WorkdayFake;

namespace {

Json row(const std::string& worker, const std::string& course, const std::string& date,
         const std::string& status, const std::string& score = "", const std::string& attempt = "") {
  Json r = {{"Employee_ID", worker}, {"Learning_Content_ID", course}, {"Completion_Date", date},
            {"Completion_Status", status}};
  if (!score.empty()) r["Score"] = score;
  if (!score.empty()) r["Max_Score"] = "20";
  if (!attempt.empty()) r["Attempt"] = attempt;
  return r;
}

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  core::Instant now = *core::parseIso("2026-03-10T12:00:00Z");
  WorkdayFake wd;
  Sleeps sleeps;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-workday-" + std::to_string(::getpid()) + "-" +
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
    settings.items.push_back({"", "AI101", "M1", {}});
    settings.items.push_back({"", "AIQUIZ", "AI/quiz", {}});
    source_settings.name = "workday";
    source_settings.kind = "workday";
    source_settings.min_record_ratio = 0.5;
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    wd.start();
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  engine::SourceReport ingest() {
    ports::FixedClock clock{now};
    engine::Ingestor ingestor(*store, settings, clock);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&source_settings, makeSource(options(wd).scalar("start", "2026-01-01"), sleeps)});
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
      if (s.name == "workday") return s.cursor;
    return {};
  }
};

}  // namespace

TEST_CASE("overlapping windows, duplicate and late Workday rows make one fact each",
          "[connector][workday]") {
  Fixture f;
  f.wd.addRow(row("E0001", "AI101", "2026-03-08", "Completed"));
  f.wd.addRow(row("E0002", "AIQUIZ", "2026-03-09", "Failed", "10", "1"));
  f.wd.addRow(row("E0002", "AIQUIZ", "2026-03-09", "Failed", "10", "1"));  // the same row twice
  auto first = f.ingest();
  INFO(first.problem);
  CHECK(first.complete);
  CHECK(first.inserted == 2);
  CHECK(f.facts() == 2);
  CHECK(f.cursor().rfind("2026-03-10T12:00:00Z;q=", 0) == 0);

  // A day later: the overlap reads all three rows again, plus a late attempt dated before the
  // one already stored (out of order) and the next attempt.
  f.now += core::days(1);
  f.wd.addRow(row("E0002", "AIQUIZ", "2026-03-10", "Passed", "18", "2"));
  f.wd.addRow(row("E0003", "AIQUIZ", "2026-03-07", "Passed", "17", "1"));
  auto second = f.ingest();
  CHECK(second.complete);
  CHECK(second.inserted == 2);
  CHECK(f.facts() == 4);
  CHECK(f.cursor().rfind("2026-03-11T12:00:00Z;q=", 0) == 0);

  // The report fails: the stored cursor stays, nothing is lost.
  f.now += core::days(1);
  f.wd.failRequests(static_cast<int>(f.wd.reportRequests()) + 1, 100, 503);
  auto third = f.ingest();
  CHECK_FALSE(third.complete);
  CHECK_THAT(third.problem, Catch::Contains("HTTP 503"));
  CHECK(f.cursor().rfind("2026-03-11T12:00:00Z;q=", 0) == 0);
  CHECK(f.facts() == 4);
}
