// The cornerstone source through the engine's ingest into a temporary store: a row delivered
// twice, rows touched again (status changes, late and out of order) and the overlap make one
// fact per person, learning object, registration and attempt; a failing page keeps the cursor.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "connectors/cornerstone/cornerstone_test_support.hpp"
#include "engine/ingest.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using namespace certgate::testing::cornerstone_support;
using certgate::testing::cornerstone::CornerstoneFake;

namespace {

constexpr const char* kBasics = "0f3c2a51-7d4e-4b8a-9c1e-5a6b7c8d9e01";
constexpr const char* kQuiz = "7a9e4c22-1b3d-4f5a-8e6c-2d4f6a8b0c02";

Json row(int user, const std::string& object, const std::string& done, const std::string& touched,
         const std::string& status, int attempts, Json score = nullptr) {
  return {{"transc_user_id", user}, {"transc_object_id", object}, {"reg_num", 1},
          {"user_lo_status", status}, {"user_lo_comp_dt", done}, {"user_lo_score", score},
          {"user_lo_num_attempts", attempts}, {"user_lo_pass", status != "Failed"},
          {"is_removed", false}, {"is_archive", 0}, {"_last_touched_dt_utc", touched}};
}

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  settings::SourceSettings source_settings;
  std::unique_ptr<store::Store> store;
  ports::FixedClock clock{*core::parseIso("2026-03-10T12:00:00Z")};
  CornerstoneFake csod;
  TestClock test_clock;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-csod-" + std::to_string(::getpid()) + "-" +
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
    source_settings.name = "csod";
    source_settings.kind = "cornerstone";
    source_settings.min_record_ratio = 0.5;
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    csod.start();
    csod.addUser({{"user_id", 101}, {"user_ref", "E0001"}, {"user_email", "ada@example.org"}});
    csod.addUser({{"user_id", 102}, {"user_ref", "E0002"}, {"user_email", "grace@example.org"}});
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  engine::SourceReport ingest() {
    engine::Ingestor ingestor(*store, settings, clock);
    std::vector<engine::SourceHandle> handles;
    handles.push_back({&source_settings, makeSource(options(csod).scalar("page_size", "2"), test_clock)});
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
      if (s.name == "csod") return s.cursor;
    return {};
  }
};

}  // namespace

TEST_CASE("duplicate, re-touched and out-of-order Cornerstone rows make one fact each",
          "[connector][cornerstone]") {
  Fixture f;
  f.csod.addTranscript(row(101, kBasics, "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", "Completed", 1));
  f.csod.addTranscript(row(102, kQuiz, "2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", "Failed", 1, 50));
  // The same row twice (on two pages).
  f.csod.addTranscript(row(101, kBasics, "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", "Completed", 1));
  auto first = f.ingest();
  INFO(first.problem);
  CHECK(first.complete);
  CHECK(first.inserted == 2);
  CHECK(f.facts() == 2);
  CHECK(f.cursor().rfind("2026-03-02T10:01:00Z;q=", 0) == 0);

  // Grace's second attempt passes (a new attempt count: a new fact), and a late row touched
  // inside the overlap arrives after a later one; Grace's first attempt is read again, unchanged.
  f.csod.addTranscript(row(102, kQuiz, "2026-03-03T10:00:00Z", "2026-03-03T10:01:00Z", "Completed", 2, 90));
  f.csod.addTranscript(row(101, kQuiz, "2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z", "Completed", 1, 85));
  auto second = f.ingest();
  CHECK(second.complete);
  CHECK(second.inserted == 2);
  CHECK(f.facts() == 4);
  CHECK(f.cursor().rfind("2026-03-03T10:01:00Z;q=", 0) == 0);

  // Nothing new: re-reading the overlap changes nothing.
  auto third = f.ingest();
  CHECK(third.complete);
  CHECK(third.inserted == 0);
  CHECK(f.facts() == 4);

  // A failing page: the stored cursor stays.
  f.csod.addTranscript(row(101, kBasics, "2026-03-04T10:00:00Z", "2026-03-04T10:01:00Z", "Completed", 1));
  f.csod.failRequests(static_cast<int>(f.csod.viewRequests()) + 1, 100, 503);
  auto fourth = f.ingest();
  CHECK_FALSE(fourth.complete);
  CHECK_THAT(fourth.problem, Catch::Contains("transcript page 1"));
  CHECK(f.cursor().rfind("2026-03-03T10:01:00Z;q=", 0) == 0);
}
