#pragma once
// Deterministic synthetic people and learning records for the benchmarks.
//
// One description of the tracks (kTracks) and one generator of a person's records
// (synthPerson) feed both certgate_gen (which writes CSV exports plus a config) and
// bench_evaluate (which builds core::Fact values in memory), so both see the same data.
//
// Determinism: person i's records depend only on (seed, i, facts_per_person, now); every person
// has its own PRNG stream, so any subset of people can be generated in any order.
// Not thread-safe only in the sense that a SynthPerson must not be shared while being filled.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"
#include "core/symbols.hpp"
#include "core/time.hpp"

namespace certgate::bench {

// splitmix64 seeding a xoshiro256** generator: fast, good enough and identical everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  // Uniform in [lo, hi] (inclusive); lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi);
  // True with probability `p` (0..1).
  bool chance(double p);
  // Index drawn with the given relative weights.
  std::size_t pick(const std::vector<int>& weights);

 private:
  std::uint64_t s_[4];
};

enum class Population : std::uint8_t { Employee, Contractor, Intern };
const char* populationName(Population p);

// What a track scenario aims at. The rule engine decides the real state; the histogram that
// the benchmarks print shows what it decided.
enum class Scenario : std::uint8_t {
  NotStarted,
  InProgress,
  LockedOut,
  Certified,
  Expiring,
  Grace,
  Expired,
};

struct TrackSpec {
  std::string_view id;
  std::string_view title;
  std::vector<std::string_view> modules;       // certgate module ids
  std::vector<std::string_view> module_items;  // the LMS item ids mapped to them
  std::string_view quiz_id;                    // certgate quiz id
  std::string_view quiz_item;                  // the LMS item id mapped to it
  int min_score_pct = 80;
  int attempts_allowed = 3;
  int recertify_days = 365;
  int grace_days = 0;
  int renew_window_days = 30;
  std::vector<int> remind_before_days;
  std::vector<Population> populations;
  std::vector<std::string_view> requires_tracks;
  double engaged = 1.0;          // share of in-scope people who have started the track at all
  std::vector<int> weights;      // by Scenario, for engaged in-scope people (NotStarted first)
};

// The tracks of the synthetic organisation, in policy order.
const std::vector<TrackSpec>& tracks();

// LMS items that no track uses (other compliance courses): stored, never evaluated.
const std::vector<std::string>& otherItems();

// Every LMS item id: modules and quizzes of every track, then otherItems(). Rec::item indexes it.
struct ItemInfo {
  std::string lms_item;
  std::string certgate_id;  // module or quiz id; "" for other items
  bool quiz = false;
};
const std::vector<ItemInfo>& items();

enum class RecStatus : std::uint8_t { Completed, Passed, Failed };

// One LMS record, compact (the generator may hold millions of them).
struct Rec {
  std::int64_t at = 0;          // unix seconds, UTC
  std::uint32_t person = 0;
  std::uint16_t score = 0;      // raw score; only when max != 0
  std::uint16_t max = 0;        // 0: no score (a module completion)
  std::uint16_t attempt = 0;    // 0: none
  std::uint8_t item = 0;        // index into items()
  RecStatus status = RecStatus::Completed;
};

struct SynthPerson {
  std::uint32_t index = 0;
  Population population = Population::Employee;
  bool on_roster = true;        // a few LMS users are not on the HR roster (quarantined)
  std::vector<Rec> recs;        // in no particular order
  std::vector<Scenario> aims;   // per track (what was intended), for diagnostics
};

struct SynthOptions {
  std::uint64_t seed = 42;
  int facts_per_person = 8;     // target mean; unrelated courses pad up to it
  core::Instant now{};          // every record is dated before it
};

// Default reference time of generated data: 2026-11-25T00:00:00Z.
core::Instant defaultNow();

// Fills `out` (cleared first) with person `index`.
void synthPerson(const SynthOptions& options, std::uint32_t index, SynthPerson& out);

// "P0000042", "p0000042@example.org".
std::string employeeId(std::uint32_t index);
std::string email(std::uint32_t index);

// The rule-engine policy for tracks(), interning ids into `symbols` the way settings does
// (track ids, module ids, quiz ids, populations). Exceptions policy as in the track file.
core::Policy buildPolicy(core::SymbolTable& symbols);

// Sym of each items() entry after item mapping: module/quiz id, or the LMS id for other items.
std::vector<core::Sym> itemSymbols(core::SymbolTable& symbols);

// Converts a record to the fact the engine would evaluate (ref = `ref`).
core::Fact toFact(const Rec& r, core::Sym item, std::int64_t ref);

}  // namespace certgate::bench
