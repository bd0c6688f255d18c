// The daemon's pure parts: when runs are due (RunSchedule), the run lock between processes
// (flock: two open file descriptions conflict even inside one process), and the admin API's
// bearer check.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/admin_api.hpp"
#include "cli/daemon.hpp"
#include "engine/run_lock.hpp"

using certgate::cli::RunSchedule;
using certgate::engine::RunLock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {
using TP = RunSchedule::TimePoint;
const TP t0 = TP{} + 1000h;
}  // namespace

TEST_CASE("RunSchedule: the first full run is due at start, then every interval plus jitter",
          "[daemon]") {
  double share = 0.5;
  RunSchedule s(900s, 60s, {}, [&] { return share; });
  s.start(t0);
  CHECK(s.nextDue() == t0);
  auto due = s.take(t0);
  CHECK(due.full);
  CHECK(due.sources.empty());
  CHECK(s.nextDue() == t0 + 900s + 30s);  // half of the jitter
  // Nothing is due before that.
  due = s.take(t0 + 929s);
  CHECK_FALSE(due.full);
  CHECK(s.nextDue() == t0 + 930s);
  share = 0.0;
  due = s.take(t0 + 930s);
  CHECK(due.full);
  CHECK(s.nextDue() == t0 + 930s + 900s);
}

TEST_CASE("RunSchedule: a source with its own interval falls due on its own", "[daemon]") {
  RunSchedule s(3600s, 0s, {{"lrs", 60s}, {"workday", 86400s}}, [] { return 0.0; });
  s.start(t0);
  auto due = s.take(t0);
  CHECK(due.full);
  CHECK(due.sources == std::vector<std::string>{"lrs", "workday"});
  CHECK(s.nextDue() == t0 + 60s);
  due = s.take(t0 + 60s);
  CHECK_FALSE(due.full);
  CHECK(due.sources == std::vector<std::string>{"lrs"});
  CHECK(s.nextDue() == t0 + 120s);
}

TEST_CASE("RunSchedule: a reload brings a shorter interval forward and keeps nearer times",
          "[daemon]") {
  RunSchedule s(3600s, 0s, {{"lrs", 600s}}, [] { return 0.0; });
  s.start(t0);
  (void)s.take(t0);
  CHECK(s.nextDue() == t0 + 600s);
  s.reconfigure(300s, 0s, {{"lrs", 600s}, {"csv", 120s}}, t0 + 10s);
  // The new source is fetched at once; the full run comes within the new interval.
  CHECK(s.nextDue() == t0 + 10s);
  auto due = s.take(t0 + 10s);
  CHECK_FALSE(due.full);
  CHECK(due.sources == std::vector<std::string>{"csv"});
  CHECK(s.nextDue() == t0 + 130s);
  due = s.take(t0 + 310s);
  CHECK(due.full);
  CHECK(due.sources == std::vector<std::string>{"csv"});
}

TEST_CASE("RunLock: a second holder is refused and told who holds it, then gets it once freed",
          "[daemon]") {
  const fs::path dir = fs::temp_directory_path() / ("certgate-lock-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "store.db.run.lock").string();
  {
    auto first = RunLock::acquire(path, "certgate sync", 0ms);
    REQUIRE(first.ok());
    CHECK(RunLock::holder(path).find("pid " + std::to_string(getpid()) + " certgate sync") == 0);
    auto second = RunLock::acquire(path, "certgate daemon", 50ms);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().kind == certgate::core::ErrorKind::Conflict);
    CHECK(second.error().message.find("certgate sync") != std::string::npos);
    first->release();
    CHECK(RunLock::holder(path).empty());
    auto third = RunLock::acquire(path, "certgate daemon", 0ms);
    CHECK(third.ok());
  }
  // A waiting caller gets the lock as soon as the holder lets go.
  auto held = RunLock::acquire(path, "certgate sync", 0ms);
  REQUIRE(held.ok());
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held->release();
  });
  auto waited = RunLock::acquire(path, "certgate daemon", 5000ms);
  releaser.join();
  CHECK(waited.ok());
  fs::remove_all(dir);
}

TEST_CASE("RunLock: an unwritable place is a clear error, not a hang", "[daemon]") {
  auto lock = RunLock::acquire("/nonexistent-dir/x.run.lock", "sync", 0ms);
  REQUIRE_FALSE(lock.ok());
  CHECK(lock.error().kind == certgate::core::ErrorKind::Transient);
  CHECK(lock.error().hint.find("writable") != std::string::npos);
}

TEST_CASE("bearerMatches: only the exact token after the Bearer scheme", "[daemon][http]") {
  using certgate::cli::bearerMatches;
  CHECK(bearerMatches("Bearer s3cret-token", "s3cret-token"));
  CHECK(bearerMatches("bearer s3cret-token", "s3cret-token"));
  CHECK_FALSE(bearerMatches("Bearer s3cret-tokeN", "s3cret-token"));
  CHECK_FALSE(bearerMatches("Bearer s3cret-token ", "s3cret-token"));
  CHECK_FALSE(bearerMatches("Bearer s3cret", "s3cret-token"));
  CHECK_FALSE(bearerMatches("Basic s3cret-token", "s3cret-token"));
  CHECK_FALSE(bearerMatches("s3cret-token", "s3cret-token"));
  CHECK_FALSE(bearerMatches("", "s3cret-token"));
  // No token configured: nothing matches, not even an empty bearer.
  CHECK_FALSE(bearerMatches("Bearer ", ""));
}
