// bench_xapi: fetch and ingest of xAPI statements from the loopback LRS fake (tests/fakes/xapi),
// over the real code path.
//
//   the fake generates N statements on the fly (deterministic; verbs completed, passed, failed,
//   scored in turn; O(1) memory in the fake)
//   -> the xapi source (libcurl, one query per verb, pages of --limit, `more` links)
//   -> mode fetch:  a sink that only counts                       <- parsing and HTTP share
//   -> mode ingest: engine::Ingestor into a fresh SQLite store    <- the ingest figure
//
// The fake runs in this process (its own threads), so CPU time and peak RSS include it; the
// fake keeps no statements, so peak RSS is the source's page plus the store's caches. Run one
// mode per process so that each peak RSS is its own. Prints statements/s, wall and CPU seconds,
// peak RSS and the number of HTTP requests.

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "bench_util.hpp"
#include "connectors/lms/xapi/xapi_source.hpp"
#include "engine/ingest.hpp"
#include "fakes/xapi/xapi_fake.hpp"
#include "ports/clock.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace {

using namespace certgate;
namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: bench_xapi [--statements N] [--limit L] [--people P] [--mode fetch|ingest]\n"
    "                  [--db PATH] [--keep-db]\n"
    "  N accepts 100k / 1M shorthands (default 1M); L is the page size (default 500);\n"
    "  P the distinct learners (default 100k). PATH defaults to /tmp/certgate-bench/xapi.db\n"
    "  and is recreated.\n";

class CountingSink final : public ports::RecordSink {
 public:
  bool alreadyProcessed(const ports::UnitInfo&) override { return false; }
  void beginUnit(const ports::UnitInfo&) override {}
  void record(ports::SourceRecord&&) override { ++records; }
  void quarantine(ports::QuarantinedRecord&&) override { ++quarantined; }
  void endUnit(const ports::UnitInfo&, bool, const std::string&) override { ++units; }
  std::int64_t records = 0, quarantined = 0, units = 0;
};

ports::Options sourceOptions(const std::string& endpoint, std::int64_t limit) {
  ports::Options o;
  o.where = "bench";
  auto scalar = [&](const std::string& k, const std::string& v) {
    ports::OptionValue value;
    value.scalar = v;
    o.values.emplace_back(k, std::move(value));
  };
  scalar("endpoint", endpoint);
  scalar("username", "lrs-key");
  scalar("limit", std::to_string(limit));
  ports::OptionValue secret;
  secret.shape = ports::OptionValue::Shape::Map;
  secret.map = {{"file", "lrs-password"}};
  o.values.emplace_back("password", std::move(secret));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args args(argc, argv);
  const std::int64_t n = args.integer("statements", 1'000'000);
  const std::int64_t limit = args.integer("limit", 500);
  const std::int64_t people = args.integer("people", 100'000);
  const std::string mode = args.take("mode").value_or("ingest");
  const std::string db = args.take("db").value_or("/tmp/certgate-bench/xapi.db");
  const bool keep_db = args.flag("keep-db");
  args.done(kUsage);
  if (mode != "fetch" && mode != "ingest") {
    std::fprintf(stderr, "error: --mode is fetch or ingest\n%s", kUsage);
    return 2;
  }

  testing::xapi::XapiFakeOptions fo;
  fo.generated = n;
  fo.generated_people = static_cast<int>(people);
  fo.record_requests = false;
  fo.max_limit = 10'000;
  fo.clock_us = fo.generated_start_us + n * 1000 + 1'000'000;  // consistent through the end
  testing::xapi::XapiFake lrs(fo);
  lrs.start();

  const ports::SecretReader secrets = [](const ports::OptionValue&) -> core::Result<std::string> {
    return std::string("lrs-secret");
  };
  auto made = connectors::xapi::makeSource("lrs", sourceOptions(lrs.endpoint(), limit), "", secrets,
                                           std::make_shared<connectors::http::Redactor>());
  if (!made) {
    std::fprintf(stderr, "error: %s\n", made.error().describe().c_str());
    return 1;
  }
  const core::Instant now = *core::parseIso("2026-11-25T00:00:00Z");

  std::printf("bench_xapi: %s statements, page size %lld, %s learners, mode %s\n",
              bench::withCommas(static_cast<double>(n)).c_str(), static_cast<long long>(limit),
              bench::withCommas(static_cast<double>(people)).c_str(), mode.c_str());
  std::printf("  peak RSS before       %8.1f MiB\n", bench::peakRssMiB());

  if (mode == "fetch") {
    CountingSink sink;
    const bench::Stopwatch wall;
    const double cpu0 = bench::cpuSeconds();
    auto out = (*made)->fetch("", now, sink);
    const double secs = wall.seconds(), cpu = bench::cpuSeconds() - cpu0;
    if (!out || !out->complete) {
      std::fprintf(stderr, "error: fetch %s\n",
                   out ? out->problem.c_str() : out.error().describe().c_str());
      return 1;
    }
    std::printf("  fetch (count only)    wall %8.3f s  cpu %8.3f s  %s statements/s\n", secs, cpu,
                bench::withCommas(static_cast<double>(sink.records) / secs).c_str());
    std::printf("  records %lld, quarantined %lld, pages %lld, requests %llu\n",
                static_cast<long long>(sink.records), static_cast<long long>(sink.quarantined),
                static_cast<long long>(sink.units),
                static_cast<unsigned long long>(lrs.statementRequests()));
    std::printf("  peak RSS              %8.1f MiB\n", bench::peakRssMiB());
    return sink.records == n ? 0 : 1;
  }

  // ingest: a policy whose quiz and modules use the generated activities.
  fs::create_directories(fs::path(db).parent_path());
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
  auto opened = store::Store::open(db);
  if (!opened) {
    std::fprintf(stderr, "error: %s\n", opened.error().describe().c_str());
    return 1;
  }
  auto st = std::move(opened).value();
  settings::Settings s;
  auto policy = std::make_shared<settings::LoadedPolicy>();
  core::Track t;
  t.id = policy->symbols.intern("AI");
  for (int i = 0; i < fo.generated_items; ++i) {
    const std::string module = "M" + std::to_string(i);
    t.modules.push_back(policy->symbols.intern(module));
    s.items.push_back({"", "https://lms.example.com/xapi/activities/course-" + std::to_string(i), module, {}});
  }
  t.recertify_days = 365;
  policy->policy.tracks.push_back(t);
  policy->tracks.push_back({"AI", "", "bench", {}});
  s.policy = policy;
  settings::SourceSettings src;
  src.name = "lrs";
  src.kind = "xapi";
  ports::FixedClock clock(now);
  engine::Ingestor ingestor(*st, s, clock);
  std::vector<engine::SourceHandle> handles;
  handles.push_back({&src, std::move(made).value()});

  const bench::Stopwatch wall;
  const double cpu0 = bench::cpuSeconds();
  auto report = ingestor.run(handles);
  const double secs = wall.seconds(), cpu = bench::cpuSeconds() - cpu0;
  if (!report) {
    std::fprintf(stderr, "error: %s\n", report.error().describe().c_str());
    return 1;
  }
  const auto& r = report->sources.at(0);
  if (!r.complete) std::fprintf(stderr, "warning: incomplete: %s\n", r.problem.c_str());
  const std::int64_t stored = r.inserted + r.updated + r.unchanged;
  std::printf("  fetch + ingest        wall %8.3f s  cpu %8.3f s  %s statements/s\n", secs, cpu,
              bench::withCommas(static_cast<double>(stored + r.quarantined) / secs).c_str());
  std::printf("  inserted %lld, updated %lld, unchanged %lld, quarantined %lld, people created %lld,\n"
              "  pages %lld, requests %llu, complete %s\n",
              static_cast<long long>(r.inserted), static_cast<long long>(r.updated),
              static_cast<long long>(r.unchanged), static_cast<long long>(r.quarantined),
              static_cast<long long>(r.people_created), static_cast<long long>(r.units_seen),
              static_cast<unsigned long long>(lrs.statementRequests()), r.complete ? "yes" : "no");
  std::printf("  peak RSS              %8.1f MiB\n", bench::peakRssMiB());
  std::error_code ec;
  std::printf("  database              %8.1f MiB\n",
              static_cast<double>(fs::file_size(db, ec)) / 1048576.0);
  st.reset();
  if (!keep_db)
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix, ec);
  return r.complete && stored == n ? 0 : 1;
}
