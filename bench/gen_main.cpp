// certgate_gen: writes a deterministic synthetic data set (roster, LMS CSV exports, config and
// tracks) that certgate can ingest and evaluate. See synth_write.hpp for the layout.

#include <cstdio>
#include <string>

#include "bench_util.hpp"
#include "core/time.hpp"
#include "synth_write.hpp"

namespace {

constexpr const char* kUsage =
    "usage: certgate_gen --people N --out DIR [--seed S] [--facts-per-person F]\n"
    "                    [--rows-per-file R] [--order date|person] [--now ISO8601]\n"
    "  N and R accept 100k / 1M shorthands. Defaults: seed 42, F 8 (target mean; other\n"
    "  courses pad each person up to it), R 1M (files hold at most R rows), order date\n"
    "  (rows sorted by completion time), now 2026-11-25T00:00:00Z (every record is older).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace certgate;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when redirected to a file
  bench::Args args(argc, argv);
  if (args.flag("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  bench::GenOptions opt;
  const auto people = args.integer("people", -1);
  auto out = args.take("out");
  opt.synth.seed = static_cast<std::uint64_t>(args.integer("seed", 42));
  opt.synth.facts_per_person = static_cast<int>(args.integer("facts-per-person", 8));
  opt.rows_per_file = args.integer("rows-per-file", 1'000'000);
  const auto order = args.take("order").value_or("date");
  const auto now_text = args.take("now");
  args.done(kUsage);
  if (people < 1 || people > 50'000'000 || !out || out->empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (order != "date" && order != "person") {
    std::fprintf(stderr, "error: --order must be date or person\n");
    return 2;
  }
  opt.order_by_date = order == "date";
  opt.people = static_cast<std::uint32_t>(people);
  opt.out_dir = *out;
  opt.synth.now = bench::defaultNow();
  if (now_text) {
    auto t = core::parseIso(*now_text);
    if (!t) {
      std::fprintf(stderr, "error: --now '%s' is not an ISO 8601 time\n", now_text->c_str());
      return 2;
    }
    opt.synth.now = *t;
  }

  bench::GenSummary s;
  std::string error;
  if (!bench::generate(opt, s, error)) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  std::printf("certgate_gen: %s people (%s on the roster, %s not), %s records in %lld file(s), "
              "%.1f MiB, %.2f s -> %s\n",
              bench::withCommas(static_cast<double>(s.people)).c_str(),
              bench::withCommas(static_cast<double>(s.roster_rows)).c_str(),
              bench::withCommas(static_cast<double>(s.off_roster)).c_str(),
              bench::withCommas(static_cast<double>(s.records)).c_str(),
              static_cast<long long>(s.files), static_cast<double>(s.export_bytes) / 1048576.0,
              s.seconds, opt.out_dir.c_str());
  std::printf("  config: %s/certgate.yaml   now: %s   seed: %llu\n", opt.out_dir.c_str(),
              core::formatIso(opt.synth.now).c_str(),
              static_cast<unsigned long long>(opt.synth.seed));
  return 0;
}
