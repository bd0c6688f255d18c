// bench_ingest: end-to-end ingest and evaluation over the real code path.
//
//   generate (untimed, in a child process; or reuse --data DIR)
//   -> settings::loadSettings(DIR/certgate.yaml)
//   -> a fresh SQLite store
//   -> roster (cli::readRoster + engine::Ingestor::loadRoster), timed on its own
//   -> engine::Ingestor::run with the csv source                  <- the ingest figure
//   -> engine::Evaluation::load + forEach over the store           <- the evaluation figure
//
// The same steps `certgate ingest` and `certgate status` take (src/cli/cli.cpp), with a fixed
// clock at the data set's `now`. Prints facts/s, wall and CPU seconds, peak RSS, DB size.

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/roster_file.hpp"
#include "bench_util.hpp"
#include "connectors/lms/csv/csv_parser.hpp"
#include "connectors/registry.hpp"
#include "core/model.hpp"
#include "engine/evaluation.hpp"
#include "engine/ingest.hpp"
#include "ports/clock.hpp"
#include "ports/lms_source.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"
#include "synth_write.hpp"

namespace {

using namespace certgate;
namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: bench_ingest [--people N] [--seed S] [--facts-per-person F] [--data DIR] [--regen]\n"
    "                    [--db PATH] [--rerun] [--keep-db] [--no-breakdown] [--no-evaluate]\n"
    "                    [--batch-facts B]\n"
    "  N accepts 100k / 1M shorthands (default 100k). DIR defaults to\n"
    "  /tmp/certgate-bench/p<N>-s<S>-f<F>; it is generated (not timed) unless it already holds\n"
    "  a data set of that size (--regen forces it). PATH defaults to DIR/bench.db and is\n"
    "  recreated. --rerun times a second ingest of the same exports (every file skipped).\n"
    "  Unless --no-breakdown, the csv source is first timed alone with a sink that stores\n"
    "  nothing (the parsing share of the ingest). --no-evaluate skips the evaluation over the\n"
    "  store after the ingest. B: facts per store batch (default: the ingest's own).\n";

std::int64_t fileSize(const std::string& path) {
  std::error_code ec;
  const auto s = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::int64_t>(s);
}

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / 1048576.0; }

void printPhase(const char* what, double wall, double cpu, std::int64_t count, const char* unit) {
  std::printf("  %-22s wall %8.3f s  cpu %8.3f s", what, wall, cpu);
  if (count > 0)
    std::printf("  %12s %s/s", bench::withCommas(static_cast<double>(count) / wall).c_str(), unit);
  std::printf("  peak RSS %7.1f MiB\n", bench::peakRssMiB());
}

// Counts what a source hands over, and stores nothing: the cost of reading and normalising the
// exports on their own (the csv source's share of the ingest).
class CountingSink final : public ports::RecordSink {
 public:
  bool alreadyProcessed(const ports::UnitInfo&) override { return false; }
  void beginUnit(const ports::UnitInfo&) override {}
  void record(ports::SourceRecord&& r) override {
    ++records;
    bytes += static_cast<std::int64_t>(r.external_id.size());
  }
  void quarantine(ports::QuarantinedRecord&&) override { ++quarantined; }
  void endUnit(const ports::UnitInfo&, bool, const std::string&) override { ++units; }
  std::int64_t records = 0, quarantined = 0, units = 0, bytes = 0;
};

// Generates in a child process so the generator's memory does not count in our peak RSS.
bool generateInChild(const bench::GenOptions& opt) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    bench::GenSummary s;
    std::string error;
    if (!bench::generate(opt, s, error)) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      _exit(1);
    }
    std::printf("  generated %s records in %lld file(s), %.1f MiB, in %.1f s (not timed)\n",
                bench::withCommas(static_cast<double>(s.records)).c_str(),
                static_cast<long long>(s.files), mib(s.export_bytes), s.seconds);
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when redirected to a file
  bench::Args args(argc, argv);
  if (args.flag("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  bench::GenOptions gen;
  const auto people = args.integer("people", 100'000);
  gen.synth.seed = static_cast<std::uint64_t>(args.integer("seed", 42));
  gen.synth.facts_per_person = static_cast<int>(args.integer("facts-per-person", 8));
  gen.synth.now = bench::defaultNow();
  const std::string data =
      args.take("data").value_or("/tmp/certgate-bench/p" + std::to_string(people) + "-s" +
                                 std::to_string(gen.synth.seed) + "-f" +
                                 std::to_string(gen.synth.facts_per_person));
  const bool regen = args.flag("regen");
  const std::string db = args.take("db").value_or((fs::path(data) / "bench.db").string());
  const bool rerun = args.flag("rerun");
  const bool keep_db = args.flag("keep-db");
  const bool breakdown = !args.flag("no-breakdown");
  const bool evaluate = !args.flag("no-evaluate");
  const auto batch_facts =
      args.integer("batch-facts", static_cast<std::int64_t>(engine::Ingestor::kDefaultBatchFacts));
  args.done(kUsage);
  if (people < 1 || people > 50'000'000) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  gen.people = static_cast<std::uint32_t>(people);
  gen.out_dir = data;

  std::printf("bench_ingest: %s people, data %s\n",
              bench::withCommas(static_cast<double>(people)).c_str(), data.c_str());
  auto meta = bench::readGenerated(data);
  const bool matches = meta["generator_version"] == std::to_string(bench::kGeneratorVersion) &&
                       meta["people"] == std::to_string(people) &&
                       meta["seed"] == std::to_string(gen.synth.seed) &&
                       meta["facts_per_person"] == std::to_string(gen.synth.facts_per_person);
  if (regen || !matches) {
    if (!generateInChild(gen)) {
      std::fprintf(stderr, "error: generating the data set in %s failed\n", data.c_str());
      return 1;
    }
    meta = bench::readGenerated(data);
  } else {
    std::printf("  reusing the data set (%s records in %s file(s))\n", meta["records"].c_str(),
                meta["files"].c_str());
  }
  const core::Instant now{core::Seconds{std::stoll(meta.at("now_unix"))}};
  std::int64_t export_bytes = 0;
  for (const auto& e : fs::directory_iterator(fs::path(data) / "exports"))
    if (e.is_regular_file()) export_bytes += static_cast<std::int64_t>(e.file_size());

  // ---- settings (not timed)
  const std::string config = (fs::path(data) / "certgate.yaml").string();
  std::vector<core::Error> all_errors;
  auto loaded = settings::loadSettings(config, &connectors::lmsSpec, &all_errors);
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.error().describe().c_str());
    for (const auto& e : all_errors) std::fprintf(stderr, "  %s\n", e.describe().c_str());
    return 1;
  }
  const settings::Settings& cfg = *loaded;

  // ---- the csv source alone
  if (breakdown) {
    for (const auto& src : cfg.sources) {
      if (!src.enabled) continue;
      auto made = connectors::makeLmsSource(src.kind, src.name, src.options, cfg.base_dir);
      if (!made.ok()) {
        std::fprintf(stderr, "error: %s\n", made.error().describe().c_str());
        return 1;
      }
      CountingSink sink;
      const double cpu0 = bench::cpuSeconds();
      bench::Stopwatch fw;
      auto out = (*made)->fetch("", now, sink);
      if (!out.ok()) {
        std::fprintf(stderr, "error: fetch: %s\n", out.error().describe().c_str());
        return 1;
      }
      printPhase("csv fetch, no store", fw.seconds(), bench::cpuSeconds() - cpu0,
                 sink.records + sink.quarantined, "rows");
      std::printf("    %s records, %s quarantined, %lld file(s), complete %s\n",
                  bench::withCommas(static_cast<double>(sink.records)).c_str(),
                  bench::withCommas(static_cast<double>(sink.quarantined)).c_str(),
                  static_cast<long long>(sink.units), out->complete ? "yes" : "no");
    }
  }

  // ---- a fresh store
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(db + suffix, ec);
  }
  double cpu = bench::cpuSeconds();
  bench::Stopwatch sw;
  auto opened = store::Store::open(db);
  if (!opened.ok()) {
    std::fprintf(stderr, "error: %s\n", opened.error().describe().c_str());
    return 1;
  }
  store::Store& st = **opened;
  printPhase("open + migrate", sw.seconds(), bench::cpuSeconds() - cpu, 0, "");

  ports::FixedClock clock(now);
  engine::Ingestor ingestor(st, cfg, clock);
  ingestor.setBatchFacts(static_cast<std::size_t>(batch_facts));

  // ---- roster, as `certgate ingest` loads it
  {
    cpu = bench::cpuSeconds();
    bench::Stopwatch rw;
    auto roster = cli::readRoster(cfg.identity);
    if (!roster.ok()) {
      std::fprintf(stderr, "error: roster: %s\n", roster.error().describe().c_str());
      return 1;
    }
    auto n = ingestor.loadRoster(*roster);
    if (!n.ok()) {
      std::fprintf(stderr, "error: roster: %s\n", n.error().describe().c_str());
      return 1;
    }
    printPhase("roster load", rw.seconds(), bench::cpuSeconds() - cpu, *n, "people");
  }

  // ---- ingest: csv source -> Ingestor -> store
  auto runIngest = [&](const char* label) -> bool {
    std::vector<engine::SourceHandle> handles;
    for (const auto& src : cfg.sources) {
      if (!src.enabled) continue;
      auto made = connectors::makeLmsSource(src.kind, src.name, src.options, cfg.base_dir);
      if (!made.ok()) {
        std::fprintf(stderr, "error: %s\n", made.error().describe().c_str());
        return false;
      }
      handles.push_back({&src, std::move(made).value()});
    }
    const double cpu0 = bench::cpuSeconds();
    const double thread0 = bench::threadCpuSeconds();
    bench::Stopwatch iw;
    auto report = ingestor.run(handles);
    const double wall = iw.seconds();
    const double reader_cpu = bench::threadCpuSeconds() - thread0;
    if (!report.ok()) {
      std::fprintf(stderr, "error: ingest: %s\n", report.error().describe().c_str());
      return false;
    }
    std::int64_t stored = 0, quarantined = 0, skipped = 0;
    for (const auto& r : report->sources) {
      stored += r.inserted + r.updated + r.unchanged;
      quarantined += r.quarantined;
      skipped += r.units_skipped;
    }
    printPhase(label, wall, bench::cpuSeconds() - cpu0, stored, "facts");
    double writer_cpu = 0;
    for (const auto& r : report->sources) writer_cpu += r.writer_cpu_seconds;
    std::printf("    cpu: source thread (read, resolve) %.3f s, store writer thread %.3f s\n",
                reader_cpu, writer_cpu);
    for (const auto& r : report->sources)
      std::printf("    source %s: files %lld (skipped %lld), inserted %s, updated %s, unchanged %s, "
                  "quarantined %s, unmapped items %s, complete %s%s%s\n",
                  r.source.c_str(), static_cast<long long>(r.units_seen),
                  static_cast<long long>(r.units_skipped),
                  bench::withCommas(static_cast<double>(r.inserted)).c_str(),
                  bench::withCommas(static_cast<double>(r.updated)).c_str(),
                  bench::withCommas(static_cast<double>(r.unchanged)).c_str(),
                  bench::withCommas(static_cast<double>(r.quarantined)).c_str(),
                  bench::withCommas(static_cast<double>(r.unmapped_items)).c_str(),
                  r.complete ? "yes" : "no", r.problem.empty() ? "" : ": ", r.problem.c_str());
    if (stored + quarantined > 0)
      std::printf("    rows read %s/s (%s rows incl. quarantined)\n",
                  bench::withCommas(static_cast<double>(stored + quarantined) / wall).c_str(),
                  bench::withCommas(static_cast<double>(stored + quarantined)).c_str());
    else
      std::printf("    every file skipped (already processed): %lld file(s) hashed, %.1f MiB/s\n",
                  static_cast<long long>(skipped), mib(export_bytes) / wall);
    return true;
  };
  if (!runIngest("ingest (csv -> store)")) return 1;
  auto facts = st.countFacts();
  std::printf("    store: %s facts; DB %.1f MiB + WAL %.1f MiB\n",
              bench::withCommas(static_cast<double>(facts.ok() ? *facts : -1)).c_str(),
              mib(fileSize(db)), mib(fileSize(db + "-wal")));

  // ---- evaluation over the store
  if (evaluate) {
    cpu = bench::cpuSeconds();
    bench::Stopwatch lw;
    auto ev = engine::Evaluation::load(st, *cfg.policy);
    if (!ev.ok()) {
      std::fprintf(stderr, "error: evaluation: %s\n", ev.error().describe().c_str());
      return 1;
    }
    const double load_wall = lw.seconds();
    printPhase("evaluation load", load_wall, bench::cpuSeconds() - cpu,
               static_cast<std::int64_t>(ev->people().size()), "people");
    const std::size_t k = cfg.policy->policy.tracks.size();
    std::vector<std::array<std::int64_t, 9>> hist(k);
    for (auto& h : hist) h.fill(0);
    std::int64_t persons = 0, fact_rows = 0;
    cpu = bench::cpuSeconds();
    bench::Stopwatch fw;
    auto done = ev->forEach(now, {}, [&](const engine::PersonVerdicts& pv) {
      ++persons;
      fact_rows += static_cast<std::int64_t>(pv.facts.size());
      for (std::size_t t = 0; t < pv.verdicts.size() && t < k; ++t)
        ++hist[t][static_cast<std::size_t>(pv.verdicts[t].state)];
    });
    const double wall = fw.seconds();
    if (!done.ok()) {
      std::fprintf(stderr, "error: evaluation: %s\n", done.error().describe().c_str());
      return 1;
    }
    printPhase("evaluation forEach", wall, bench::cpuSeconds() - cpu, persons, "people");
    std::printf("    %s facts read (%s facts/s); load + forEach %.3f s\n",
                bench::withCommas(static_cast<double>(fact_rows)).c_str(),
                bench::withCommas(static_cast<double>(fact_rows) / wall).c_str(), load_wall + wall);
    std::printf("    state histogram (share of people per track):\n      %-18s", "track");
    for (std::size_t s = 0; s < 9; ++s)
      std::printf(" %12s", core::toString(static_cast<core::State>(s)));
    std::printf("\n");
    for (std::size_t t = 0; t < k; ++t) {
      std::printf("      %-18s", cfg.policy->tracks[t].id.c_str());
      for (std::size_t s = 0; s < 9; ++s)
        std::printf(" %11.2f%%", 100.0 * static_cast<double>(hist[t][s]) /
                                     static_cast<double>(std::max<std::int64_t>(persons, 1)));
      std::printf("\n");
    }
  }

  if (rerun && !runIngest("re-ingest (unchanged)")) return 1;

  std::printf("  DB size %.1f MiB (+ WAL %.1f MiB); peak RSS %.1f MiB\n", mib(fileSize(db)),
              mib(fileSize(db + "-wal")), bench::peakRssMiB());
  if (!keep_db) {
    opened->reset();
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      fs::remove(db + suffix, ec);
    }
  }
  return 0;
}
