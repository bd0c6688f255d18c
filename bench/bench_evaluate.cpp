// bench_evaluate: times the pure rule engine over N synthetic people held in memory.
//
//   (a) stream: core::evaluatePerson once per person, reusing one output vector (what
//       engine::Evaluation does for every person it reads from the store);
//   (b) all:    core::evaluate over every fact and person at once.
//
// The people and facts come from bench/synth.cpp (the same distribution certgate_gen writes);
// building them is not timed. Single-threaded. Prints people/s, facts/s, wall and CPU seconds,
// peak RSS and the state histogram per track.

#include <array>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "core/evaluate.hpp"
#include "synth.hpp"

namespace {

using namespace certgate;

constexpr const char* kUsage =
    "usage: bench_evaluate [--people N] [--seed S] [--facts-per-person F] [--mode stream|all|both]\n"
    "                      [--repeat R]\n"
    "  N accepts 100k / 1M shorthands (default 100k). R runs of each mode (default 1).\n";

constexpr std::size_t kStates = 9;

struct Histogram {
  std::vector<std::array<std::int64_t, kStates>> by_track;
  std::vector<std::int64_t> entitled;
  std::int64_t evidence = 0;
  explicit Histogram(std::size_t tracks) : by_track(tracks), entitled(tracks, 0) {
    for (auto& a : by_track) a.fill(0);
  }
  void add(std::span<const core::Verdict> verdicts) {
    for (std::size_t t = 0; t < verdicts.size(); ++t) {
      const core::Verdict& v = verdicts[t];
      ++by_track[t][static_cast<std::size_t>(v.state)];
      entitled[t] += v.entitled ? 1 : 0;
      evidence += static_cast<std::int64_t>(v.evidence.size());
    }
  }
  bool operator==(const Histogram& o) const {
    return by_track == o.by_track && entitled == o.entitled && evidence == o.evidence;
  }
};

void printHistogram(const Histogram& h, const core::Policy& policy, const core::SymbolTable& symbols,
                    std::int64_t people) {
  std::printf("  state histogram (share of people per track):\n");
  std::printf("    %-18s", "track");
  for (std::size_t s = 0; s < kStates; ++s)
    std::printf(" %12s", core::toString(static_cast<core::State>(s)));
  std::printf(" %12s\n", "entitled");
  for (std::size_t t = 0; t < h.by_track.size(); ++t) {
    std::printf("    %-18s", std::string(symbols.name(policy.tracks[t].id)).c_str());
    for (std::size_t s = 0; s < kStates; ++s)
      std::printf(" %11.2f%%", 100.0 * static_cast<double>(h.by_track[t][s]) / static_cast<double>(people));
    std::printf(" %11.2f%%\n", 100.0 * static_cast<double>(h.entitled[t]) / static_cast<double>(people));
  }
  std::printf("  evidence items: %s (%.1f per verdict)\n",
              bench::withCommas(static_cast<double>(h.evidence)).c_str(),
              static_cast<double>(h.evidence) /
                  static_cast<double>(people * static_cast<std::int64_t>(h.by_track.size())));
}

void printRun(const char* what, double wall, double cpu, std::int64_t people, std::int64_t facts) {
  std::printf("  %-6s wall %7.3f s  cpu %7.3f s  %12s people/s  %13s facts/s  peak RSS %7.1f MiB\n",
              what, wall, cpu, bench::withCommas(static_cast<double>(people) / wall).c_str(),
              bench::withCommas(static_cast<double>(facts) / wall).c_str(), bench::peakRssMiB());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when redirected to a file
  bench::Args args(argc, argv);
  if (args.flag("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const auto people = args.integer("people", 100'000);
  bench::SynthOptions opt;
  opt.seed = static_cast<std::uint64_t>(args.integer("seed", 42));
  opt.facts_per_person = static_cast<int>(args.integer("facts-per-person", 8));
  opt.now = bench::defaultNow();
  const std::string mode = args.take("mode").value_or("both");
  const auto repeat = args.integer("repeat", 1);
  args.done(kUsage);
  if (people < 1 || people > 20'000'000 || (mode != "stream" && mode != "all" && mode != "both") ||
      repeat < 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }

  // ---- input (not timed)
  bench::Stopwatch build;
  core::SymbolTable symbols;
  const core::Policy policy = bench::buildPolicy(symbols);
  const std::vector<core::Sym> item_sym = bench::itemSymbols(symbols);
  std::array<core::Sym, 3> population_sym{};
  for (int p = 0; p < 3; ++p)
    population_sym[static_cast<std::size_t>(p)] =
        symbols.intern(bench::populationName(static_cast<bench::Population>(p)));
  if (auto st = core::validatePolicy(policy, symbols); !st.ok()) {
    std::fprintf(stderr, "error: invalid policy: %s\n", st.error().describe().c_str());
    return 1;
  }

  const auto n = static_cast<std::size_t>(people);
  std::vector<core::Person> persons(n);
  std::vector<std::size_t> start(n + 1, 0);
  std::vector<core::Fact> facts;
  facts.reserve(n * static_cast<std::size_t>(opt.facts_per_person + 1));
  bench::SynthPerson sp;
  std::int64_t relevant = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bench::synthPerson(opt, static_cast<std::uint32_t>(i), sp);
    persons[i].population = population_sym[static_cast<std::size_t>(sp.population)];
    start[i] = facts.size();
    for (const bench::Rec& r : sp.recs) {
      facts.push_back(bench::toFact(r, item_sym[r.item], static_cast<std::int64_t>(facts.size())));
      if (!bench::items()[r.item].certgate_id.empty()) ++relevant;
    }
  }
  start[n] = facts.size();
  const auto total_facts = static_cast<std::int64_t>(facts.size());
  std::printf("bench_evaluate: %s people, %s facts (%.2f per person, %.1f%% for a track), "
              "%zu tracks, now %s, seed %llu\n",
              bench::withCommas(static_cast<double>(people)).c_str(),
              bench::withCommas(static_cast<double>(total_facts)).c_str(),
              static_cast<double>(total_facts) / static_cast<double>(people),
              100.0 * static_cast<double>(relevant) / static_cast<double>(total_facts),
              policy.tracks.size(), core::formatIso(opt.now).c_str(),
              static_cast<unsigned long long>(opt.seed));
  std::printf("  input built in %.2f s (not timed); RSS with input %.1f MiB (sizeof Fact %zu, "
              "Verdict %zu, Evidence %zu bytes)\n",
              build.seconds(), bench::currentRssMiB(), sizeof(core::Fact), sizeof(core::Verdict),
              sizeof(core::Evidence));

  Histogram streamed(policy.tracks.size());
  if (mode == "stream" || mode == "both") {
    for (std::int64_t run = 0; run < repeat; ++run) {
      Histogram h(policy.tracks.size());
      std::vector<core::Verdict> out;
      const double cpu0 = bench::cpuSeconds();
      bench::Stopwatch sw;
      for (std::size_t i = 0; i < n; ++i) {
        out.clear();
        core::evaluatePerson(static_cast<core::PersonIndex>(i), persons[i],
                             std::span<const core::Fact>(facts.data() + start[i], start[i + 1] - start[i]),
                             {}, policy, opt.now, out);
        h.add(out);
      }
      const double wall = sw.seconds();
      printRun("stream", wall, bench::cpuSeconds() - cpu0, people, total_facts);
      streamed = h;
    }
    printHistogram(streamed, policy, symbols, people);
  }

  if (mode == "all" || mode == "both") {
    for (std::int64_t run = 0; run < repeat; ++run) {
      core::EvaluationInput in;
      in.facts = facts;
      in.people = persons;
      in.policy = &policy;
      in.now = opt.now;
      const double cpu0 = bench::cpuSeconds();
      bench::Stopwatch sw;
      std::vector<core::Verdict> verdicts = core::evaluate(in);
      const double wall = sw.seconds();
      printRun("all", wall, bench::cpuSeconds() - cpu0, people, total_facts);
      Histogram h(policy.tracks.size());
      const std::size_t k = policy.tracks.size();
      for (std::size_t i = 0; i < n; ++i)
        h.add(std::span<const core::Verdict>(verdicts.data() + i * k, k));
      std::printf("         %zu verdicts held at once; RSS holding them %.1f MiB\n", verdicts.size(),
                  bench::currentRssMiB());
      if (mode == "both" && !(h == streamed)) {
        std::fprintf(stderr, "error: evaluate() and evaluatePerson() disagree\n");
        return 1;
      }
      if (mode == "all" && run == 0) printHistogram(h, policy, symbols, people);
      bench::Stopwatch freeing;
      verdicts = {};
      std::printf("         freeing the verdicts took %.3f s (not in the figure above)\n",
                  freeing.seconds());
    }
  }
  return 0;
}
