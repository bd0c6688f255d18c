#include "synth.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

namespace certgate::bench {

namespace {

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDaySecs = 86400;

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix(x);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::int64_t Rng::between(std::int64_t lo, std::int64_t hi) {
  if (hi <= lo) return lo;
  const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  return lo + static_cast<std::int64_t>(next() % span);
}

bool Rng::chance(double p) {
  return static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
}

std::size_t Rng::pick(const std::vector<int>& weights) {
  int total = 0;
  for (int w : weights) total += w;
  std::int64_t r = between(0, total - 1);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (r < weights[i]) return i;
    r -= weights[i];
  }
  return weights.size() - 1;
}

const char* populationName(Population p) {
  switch (p) {
    case Population::Employee: return "employee";
    case Population::Contractor: return "contractor";
    case Population::Intern: return "intern";
  }
  return "?";
}

const std::vector<TrackSpec>& tracks() {
  // Weights by Scenario: NotStarted, InProgress, LockedOut, Certified, Expiring, Grace, Expired.
  static const std::vector<TrackSpec> kTracks = {
      {"GENAI_USER",
       "Safe use of generative AI assistants",
       {"GENAI-101-data-handling", "GENAI-102-reviewing-outputs", "GENAI-103-incident-reporting"},
       {"lms-course-101", "lms-course-102", "lms-course-103"},
       "GENAI_USER/quiz",
       "lms-quiz-100",
       80,
       3,
       365,
       14,
       30,
       {30, 7},
       {Population::Employee, Population::Contractor},
       {},
       0.92,
       {0, 13, 4, 50, 9, 4, 13}},
      {"GENAI_BUILDER",
       "Building with generative AI APIs",
       {"GENAI-201-prompt-injection", "GENAI-202-secrets-and-keys"},
       {"lms-course-201", "lms-course-202"},
       "GENAI_BUILDER/quiz",
       "lms-quiz-200",
       85,
       2,
       180,
       7,
       30,
       {14},
       {Population::Employee},
       {"GENAI_USER"},
       0.35,
       {0, 15, 6, 50, 8, 5, 16}},
      {"GENAI_AUTOMATION",
       "Autonomous agents and automation",
       {"GENAI-301-agent-limits"},
       {"lms-course-301"},
       "GENAI_AUTOMATION/quiz",
       "lms-quiz-300",
       90,
       1,
       120,
       0,
       14,
       {7},
       {Population::Employee, Population::Contractor},
       {},
       0.15,
       {0, 25, 15, 45, 5, 0, 10}},
  };
  return kTracks;
}

const std::vector<std::string>& otherItems() {
  static const std::vector<std::string> kOther = [] {
    std::vector<std::string> v;
    char buf[32];
    for (int i = 1; i <= 12; ++i) {
      std::snprintf(buf, sizeof buf, "lms-compliance-%02d", i);
      v.emplace_back(buf);
    }
    return v;
  }();
  return kOther;
}

const std::vector<ItemInfo>& items() {
  static const std::vector<ItemInfo> kItems = [] {
    std::vector<ItemInfo> v;
    for (const auto& t : tracks()) {
      for (std::size_t m = 0; m < t.modules.size(); ++m)
        v.push_back({std::string(t.module_items[m]), std::string(t.modules[m]), false});
      v.push_back({std::string(t.quiz_item), std::string(t.quiz_id), true});
    }
    for (const auto& o : otherItems()) v.push_back({o, "", false});
    return v;
  }();
  return kItems;
}

core::Instant defaultNow() {
  return core::Instant{core::days(core::daysFromCivil(2026, 11, 25))};
}

std::string employeeId(std::uint32_t index) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "P%07u", index);
  return buf;
}

std::string email(std::uint32_t index) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "p%07u@example.org", index);
  return buf;
}

namespace {

// Item indexes (into items()) of each track's modules and quiz.
struct TrackItems {
  std::vector<std::uint8_t> modules;
  std::uint8_t quiz = 0;
  std::uint16_t quiz_max = 100;  // raw maximum score of the track's quiz
};

const std::vector<TrackItems>& trackItems() {
  static const std::vector<TrackItems> kItems = [] {
    std::vector<TrackItems> v;
    std::uint8_t next = 0;
    const std::uint16_t maxes[] = {20, 100, 50};
    std::size_t i = 0;
    for (const auto& t : tracks()) {
      TrackItems ti;
      for (std::size_t m = 0; m < t.modules.size(); ++m) ti.modules.push_back(next++);
      ti.quiz = next++;
      ti.quiz_max = maxes[i++ % 3];
      v.push_back(ti);
    }
    return v;
  }();
  return kItems;
}

// Writes one person's records for one track.
class TrackWriter {
 public:
  TrackWriter(Rng& rng, const TrackSpec& t, const TrackItems& ti, std::int64_t now,
              SynthPerson& p)
      : rng_(rng), t_(t), ti_(ti), now_(now), p_(p) {}

  void scenario(Scenario s) {
    const std::int64_t R = t_.recertify_days * kDaySecs;
    const std::int64_t remind =
        (t_.remind_before_days.empty()
             ? 0
             : *std::max_element(t_.remind_before_days.begin(), t_.remind_before_days.end())) *
        kDaySecs;
    const std::int64_t grace = t_.grace_days * kDaySecs;
    switch (s) {
      case Scenario::NotStarted:
        return;
      case Scenario::InProgress:
        inProgress();
        return;
      case Scenario::LockedOut:
        if (rng_.chance(0.6)) {
          // First cycle: every module done, every allowed attempt failed.
          std::int64_t at = now_ - rng_.between(20, 120) * kDaySecs;
          for (auto m : ti_.modules) emit(m, at + rng_.between(0, 5 * kDaySecs), RecStatus::Completed);
          at += 6 * kDaySecs;
          for (int a = 0; a < t_.attempts_allowed; ++a) {
            failAttempt(std::min(at, now_ - kHour));
            at += rng_.between(kDaySecs, 4 * kDaySecs);
          }
        } else {
          // A renewal that failed after the certification lapsed.
          const std::int64_t E = now_ - rng_.between(grace + 10 * kDaySecs, grace + 200 * kDaySecs);
          chain(E, historyDepth(false));
          std::int64_t at = E + kHour;
          for (auto m : ti_.modules) emit(m, at + rng_.between(0, 3 * kDaySecs), RecStatus::Completed);
          at += 4 * kDaySecs;
          for (int a = 0; a < t_.attempts_allowed; ++a) {
            failAttempt(std::min(at, now_ - kHour));
            at += rng_.between(kHour, 2 * kDaySecs);
          }
        }
        return;
      case Scenario::Certified: {
        const std::int64_t E = now_ + rng_.between(remind + kDaySecs, R - kDaySecs);
        chain(E, historyDepth(true));
        return;
      }
      case Scenario::Expiring: {
        const std::int64_t E = now_ + rng_.between(kHour, std::max(remind - kHour, 2 * kHour));
        chain(E, historyDepth(false));
        if (rng_.chance(0.4)) {  // renewal under way
          const std::int64_t open = E - t_.renew_window_days * kDaySecs + kHour;
          emit(ti_.modules[0], rng_.between(std::min(open, now_ - kHour), now_ - kHour),
               RecStatus::Completed);
        }
        return;
      }
      case Scenario::Grace: {
        const std::int64_t E = now_ - rng_.between(kHour, std::max(grace - kHour, kHour));
        chain(E, historyDepth(false));
        return;
      }
      case Scenario::Expired: {
        const std::int64_t E = now_ - rng_.between(grace + kDaySecs, grace + 500 * kDaySecs);
        chain(E, historyDepth(false));
        if (rng_.chance(0.25))  // came back for one module, never finished
          emit(ti_.modules.back(), now_ - rng_.between(kHour, 60 * kDaySecs), RecStatus::Completed);
        return;
      }
    }
  }

  void inProgress() {
    const std::size_t n = ti_.modules.size();
    const std::size_t done = n > 1 ? static_cast<std::size_t>(rng_.between(1, static_cast<std::int64_t>(n) - 1)) : 1;
    std::int64_t at = now_ - rng_.between(2, 90) * kDaySecs;
    for (std::size_t m = 0; m < done; ++m) {
      emit(ti_.modules[m], std::min(at, now_ - kHour), RecStatus::Completed);
      at += rng_.between(kHour, 3 * kDaySecs);
    }
    if (t_.attempts_allowed > 1 && rng_.chance(0.3)) failAttempt(std::min(at, now_ - kHour));
  }

 private:
  int historyDepth(bool certified) {
    static const std::vector<int> kCertified = {50, 35, 15};
    static const std::vector<int> kOther = {65, 28, 7};
    return static_cast<int>(rng_.pick(certified ? kCertified : kOther));
  }

  // Writes the cycles that end with expiry E, `depth` renewals back, newest first.
  void chain(std::int64_t E, int depth) {
    const std::int64_t R = t_.recertify_days * kDaySecs;
    const std::int64_t window = t_.renew_window_days * kDaySecs;
    std::int64_t e = E;
    for (int k = depth; k >= 0; --k) {
      if (k == 0) {
        const std::int64_t c = e - R;
        cycle(c - 30 * kDaySecs, c);
      } else if (rng_.chance(0.75)) {  // renewed early: extends from the old expiry
        const std::int64_t e_prev = e - R;
        const std::int64_t c = e_prev - rng_.between(kDaySecs, window - 2 * kDaySecs);
        cycle(e_prev - window + kHour, c);
        e = e_prev;
      } else {  // renewed late: counts from the renewal
        const std::int64_t c = e - R;
        const std::int64_t e_prev = c - rng_.between(kDaySecs, 60 * kDaySecs);
        cycle(e_prev - window + kHour, c);
        e = e_prev;
      }
    }
  }

  // One complete certification cycle: modules in [lo, c], quiz passed at c (after failures).
  void cycle(std::int64_t lo, std::int64_t c) {
    const std::int64_t spread = std::min<std::int64_t>(21 * kDaySecs, c - lo);
    for (auto m : ti_.modules) emit(m, c - rng_.between(0, spread), RecStatus::Completed);
    static const std::vector<int> kFails = {70, 22, 8};
    const int fails = std::min(static_cast<int>(rng_.pick(kFails)), t_.attempts_allowed - 1);
    std::int64_t at = c;
    std::vector<std::int64_t> times;
    for (int f = 0; f < fails; ++f) {
      at -= rng_.between(kDaySecs, 3 * kDaySecs);
      times.push_back(std::max(at, lo + f * kHour));
    }
    std::sort(times.begin(), times.end());
    for (auto t : times) failAttempt(t);
    passAttempt(c);
  }

  void emit(std::uint8_t item, std::int64_t at, RecStatus status, std::uint16_t score = 0,
            std::uint16_t max = 0, std::uint16_t attempt = 0) {
    Rec r;
    r.at = at;
    r.person = p_.index;
    r.item = item;
    r.status = status;
    r.score = score;
    r.max = max;
    r.attempt = attempt;
    p_.recs.push_back(r);
  }

  std::uint16_t passMark() const {
    return static_cast<std::uint16_t>((t_.min_score_pct * ti_.quiz_max + 99) / 100);
  }

  void failAttempt(std::int64_t at) {
    const auto max = ti_.quiz_max;
    const auto score = static_cast<std::uint16_t>(rng_.between(max * 3 / 10, passMark() - 1));
    emit(ti_.quiz, at, RecStatus::Failed, score, max, ++attempt_);
  }

  void passAttempt(std::int64_t at) {
    const auto max = ti_.quiz_max;
    const auto score = static_cast<std::uint16_t>(rng_.between(passMark(), max));
    emit(ti_.quiz, at, RecStatus::Passed, score, max, ++attempt_);
  }

  Rng& rng_;
  const TrackSpec& t_;
  const TrackItems& ti_;
  std::int64_t now_;
  SynthPerson& p_;
  std::uint16_t attempt_ = 0;
};

}  // namespace

namespace {

// The person's own records: population, track scenarios, anomalies. No padding.
void synthCore(const SynthOptions& options, std::uint32_t index, Rng& rng, SynthPerson& out) {
  out.index = index;
  out.recs.clear();
  out.aims.clear();
  const std::int64_t now = options.now.time_since_epoch().count();

  static const std::vector<int> kPopulations = {72, 23, 5};
  out.population = static_cast<Population>(rng.pick(kPopulations));
  out.on_roster = !rng.chance(0.003);

  const auto& ts = tracks();
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const TrackSpec& t = ts[i];
    TrackWriter w(rng, t, trackItems()[i], now, out);
    const bool in_scope =
        std::find(t.populations.begin(), t.populations.end(), out.population) != t.populations.end();
    Scenario s = Scenario::NotStarted;
    if (in_scope) {
      if (rng.chance(t.engaged)) s = static_cast<Scenario>(rng.pick(t.weights));
      w.scenario(s);
    } else if (i == 0 && rng.chance(0.3)) {
      w.inProgress();  // out-of-scope people take courses too
    }
    out.aims.push_back(s);
  }

  // A rare impossible record: a score above the maximum (quarantined, never evaluated).
  if (rng.chance(0.001)) {
    const auto& ti = trackItems()[0];
    Rec r;
    r.person = index;
    r.item = ti.quiz;
    r.max = ti.quiz_max;
    r.score = static_cast<std::uint16_t>(ti.quiz_max + rng.between(1, 10));
    r.attempt = 9;
    r.status = RecStatus::Passed;
    r.at = now - rng.between(kDaySecs, 100 * kDaySecs);
    out.recs.push_back(r);
  }
}

Rng personRng(const SynthOptions& options, std::uint32_t index) {
  return Rng(options.seed * 0x9E3779B97F4A7C15ULL + index);
}

// Mean number of track records per person for these options, measured on a fixed sample so
// that the padding below brings the overall mean to facts_per_person. Deterministic.
double naturalMean(const SynthOptions& options) {
  constexpr std::uint32_t kSample = 20000;
  static std::mutex mu;
  static std::map<std::pair<std::uint64_t, std::int64_t>, double> cache;
  const auto key = std::make_pair(options.seed, options.now.time_since_epoch().count());
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  SynthPerson p;
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < kSample; ++i) {
    Rng rng = personRng(options, i);
    synthCore(options, i, rng, p);
    total += p.recs.size();
  }
  const double mean = static_cast<double>(total) / kSample;
  cache.emplace(key, mean);
  return mean;
}

}  // namespace

void synthPerson(const SynthOptions& options, std::uint32_t index, SynthPerson& out) {
  Rng rng = personRng(options, index);
  synthCore(options, index, rng, out);

  // Other courses, independent of the person's track records, pad the export so that the mean
  // number of records per person is facts_per_person (when that is above the natural mean).
  const double extra_mean = options.facts_per_person - naturalMean(options);
  if (extra_mean <= 0) return;
  const auto whole = static_cast<std::int64_t>(extra_mean);
  std::int64_t extra = rng.between(0, 2 * whole) + (rng.chance(extra_mean - static_cast<double>(whole)) ? 1 : 0);
  const std::int64_t now = options.now.time_since_epoch().count();
  const auto first_other = static_cast<std::int64_t>(items().size() - otherItems().size());
  for (; extra > 0; --extra) {
    Rec r;
    r.person = index;
    r.item = static_cast<std::uint8_t>(rng.between(first_other, static_cast<std::int64_t>(items().size()) - 1));
    r.at = now - rng.between(kDaySecs, 3 * 365 * kDaySecs);
    r.status = RecStatus::Completed;
    out.recs.push_back(r);
  }
}

core::Policy buildPolicy(core::SymbolTable& symbols) {
  core::Policy policy;
  policy.clock_skew = core::Seconds{300};
  for (const TrackSpec& s : tracks()) {
    core::Track t;
    t.id = symbols.intern(s.id);
    for (auto m : s.modules) t.modules.push_back(symbols.intern(m));
    core::QuizRule q;
    q.item = symbols.intern(s.quiz_id);
    q.min_score_pct = s.min_score_pct;
    q.attempts_allowed = s.attempts_allowed;
    t.quiz = q;
    t.recertify_days = s.recertify_days;
    t.grace_days = s.grace_days;
    t.renew_window_days = s.renew_window_days;
    t.remind_before_days = s.remind_before_days;
    for (auto p : s.populations) t.populations.push_back(symbols.intern(populationName(p)));
    for (auto r : s.requires_tracks) t.requires_tracks.push_back(symbols.intern(r));
    t.exceptions.allowed = true;
    t.exceptions.max_duration_days = 7;
    t.exceptions.required_roles = {"TeamLead", "Security"};
    t.exceptions.justification_fields = {"changeTicket"};
    policy.tracks.push_back(std::move(t));
  }
  return policy;
}

std::vector<core::Sym> itemSymbols(core::SymbolTable& symbols) {
  std::vector<core::Sym> out;
  for (const auto& i : items())
    out.push_back(symbols.intern(i.certgate_id.empty() ? i.lms_item : i.certgate_id));
  return out;
}

core::Fact toFact(const Rec& r, core::Sym item, std::int64_t ref) {
  core::Fact f;
  f.ref = ref;
  f.person = r.person;
  f.item = item;
  f.at = core::Instant{core::Seconds{r.at}};
  f.kind = items()[r.item].quiz ? core::FactKind::QuizAttempt : core::FactKind::Completion;
  switch (r.status) {
    case RecStatus::Completed: f.status = core::FactStatus::Completed; break;
    case RecStatus::Passed: f.status = core::FactStatus::Passed; break;
    case RecStatus::Failed: f.status = core::FactStatus::Failed; break;
  }
  f.attempt = r.attempt;
  if (r.max != 0) {
    f.score = r.score;
    f.max_score = r.max;
  }
  return f;
}

}  // namespace certgate::bench
