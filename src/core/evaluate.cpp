#include "core/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace certgate::core {

namespace {

constexpr double kPctEpsilon = 1e-9;

bool isQuizFact(const Fact& f, const Track& t) {
  return t.quiz && f.item == t.quiz->item && f.kind != FactKind::AttemptReset;
}

bool isResetFact(const Fact& f, const Track& t) {
  return t.quiz && f.item == t.quiz->item && f.kind == FactKind::AttemptReset;
}

int moduleIndex(const Track& t, Sym item) {
  for (std::size_t i = 0; i < t.modules.size(); ++i)
    if (t.modules[i] == item) return static_cast<int>(i);
  return -1;
}

bool relevant(const Fact& f, const Track& t) {
  return (t.quiz && f.item == t.quiz->item) || moduleIndex(t, f.item) >= 0;
}

// A module counts as completed unless the LMS said it was failed.
bool completesModule(const Fact& f) {
  return f.kind != FactKind::AttemptReset && f.status != FactStatus::Failed && f.lms_pass != 0;
}

// Pass = the normalised score reaches the minimum (inclusive). Without a usable score the LMS's
// own pass flag (or a passed/failed status) decides; with neither, it is not a pass.
bool attemptPasses(const Fact& f, const QuizRule& q) {
  const double pct = f.pct();
  if (!std::isnan(pct)) return pct + kPctEpsilon >= q.min_score_pct;
  if (f.lms_pass >= 0) return f.lms_pass == 1;
  return f.status == FactStatus::Passed;
}

Evidence ev(Requirement r, Finding f, bool met, Sym item, int cycle) {
  Evidence e;
  e.requirement = r;
  e.finding = f;
  e.met = met;
  e.item = item;
  e.cycle = static_cast<std::int16_t>(cycle);
  return e;
}

// Progress of one certification cycle: which requirement was met when, and by which fact.
struct CycleProgress {
  std::vector<const Fact*> module_fact;  // earliest completion per module, nullptr if missing
  const Fact* quiz_pass = nullptr;       // earliest counted passing attempt
  std::vector<const Fact*> counted_failures;
  std::vector<const Fact*> uncounted_passes;  // passes after the attempts ran out
  std::vector<const Fact*> resets;
  int attempts_in_window = 0;  // counted attempts in the attempt window that is open now
  bool locked = false;         // the attempt window open now is exhausted without a pass
  bool any_fact = false;
  std::optional<Instant> completed_at;
};

// Evaluates the requirements of a cycle from facts dated at or after `window_start`.
// `lapse` (renewal cycles only) is the old expiry: attempts after it get a fresh allowance.
CycleProgress progressSince(std::span<const Fact* const> facts, const Track& t,
                            Instant window_start, std::optional<Instant> lapse, Instant now) {
  CycleProgress p;
  p.module_fact.assign(t.modules.size(), nullptr);
  const bool has_quiz = t.quiz.has_value();
  const int allowed = has_quiz && t.quiz->attempts_allowed ? *t.quiz->attempts_allowed : -1;

  // Attempt windows open at the cycle start, at each reset and at the lapse of the old cycle.
  Instant seg_start = window_start;
  int seg_count = 0;
  bool seg_passed = false;
  auto openWindow = [&](Instant at) {
    seg_start = at;
    seg_count = 0;
    seg_passed = false;
  };

  for (const Fact* f : facts) {  // sorted by (at, attempt, ref)
    if (f->at < window_start) continue;
    if (!relevant(*f, t)) continue;
    if (lapse && f->at >= *lapse && seg_start < *lapse) openWindow(*lapse);
    if (isResetFact(*f, t)) {
      p.resets.push_back(f);
      openWindow(f->at);
      continue;
    }
    p.any_fact = true;
    if (isQuizFact(*f, t)) {
      if (p.quiz_pass) continue;  // requirement already met in this cycle
      const bool pass = attemptPasses(*f, *t.quiz);
      if (allowed >= 0 && seg_count >= allowed) {
        if (pass) p.uncounted_passes.push_back(f);
        continue;
      }
      ++seg_count;
      if (pass) {
        p.quiz_pass = f;
        seg_passed = true;
      } else {
        p.counted_failures.push_back(f);
      }
      continue;
    }
    const int m = moduleIndex(t, f->item);
    if (m >= 0 && !p.module_fact[static_cast<std::size_t>(m)] && completesModule(*f))
      p.module_fact[static_cast<std::size_t>(m)] = f;
  }
  // The lapse may open a fresh window after the last fact.
  if (lapse && now >= *lapse && seg_start < *lapse) openWindow(*lapse);
  p.attempts_in_window = seg_count;
  p.locked = allowed >= 0 && !seg_passed && !p.quiz_pass && seg_count >= allowed;

  Instant done = window_start;
  bool complete = true;
  for (const Fact* f : p.module_fact) {
    if (!f) {
      complete = false;
      break;
    }
    done = std::max(done, f->at);
  }
  if (complete && has_quiz) {
    if (p.quiz_pass)
      done = std::max(done, p.quiz_pass->at);
    else
      complete = false;
  }
  // A track with no modules and no quiz has nothing to complete: never certified by facts.
  if (complete && (t.modules.empty() && !has_quiz)) complete = false;
  if (complete) p.completed_at = done;
  return p;
}

void addProgressEvidence(const CycleProgress& p, const Track& t, int cycle, Verdict& v) {
  for (std::size_t i = 0; i < t.modules.size(); ++i) {
    const Fact* f = p.module_fact[i];
    Evidence e = ev(Requirement::Module, f ? Finding::ModuleCompleted : Finding::ModuleMissing,
                    f != nullptr, t.modules[i], cycle);
    if (f) {
      e.fact_ref = f->ref;
      e.at = f->at;
    }
    v.evidence.push_back(e);
  }
  if (!t.quiz) return;
  const QuizRule& q = *t.quiz;
  for (const Fact* r : p.resets) {
    Evidence e = ev(Requirement::Attempts, Finding::AttemptsReset, true, q.item, cycle);
    e.fact_ref = r->ref;
    e.at = r->at;
    v.evidence.push_back(e);
  }
  for (const Fact* f : p.counted_failures) {
    Evidence e = ev(Requirement::Quiz, Finding::QuizFailedAttempt, false, q.item, cycle);
    e.fact_ref = f->ref;
    e.at = f->at;
    e.value = f->pct();
    e.limit = q.min_score_pct;
    v.evidence.push_back(e);
  }
  if (p.quiz_pass) {
    Evidence e = ev(Requirement::Quiz, Finding::QuizPassed, true, q.item, cycle);
    e.fact_ref = p.quiz_pass->ref;
    e.at = p.quiz_pass->at;
    e.value = p.quiz_pass->pct();
    e.limit = q.min_score_pct;
    v.evidence.push_back(e);
  } else if (p.counted_failures.empty() && p.uncounted_passes.empty()) {
    Evidence e = ev(Requirement::Quiz, Finding::QuizNotTaken, false, q.item, cycle);
    e.limit = q.min_score_pct;
    v.evidence.push_back(e);
  }
  for (const Fact* f : p.uncounted_passes) {
    Evidence e = ev(Requirement::Quiz, Finding::QuizPassNotCounted, false, q.item, cycle);
    e.fact_ref = f->ref;
    e.at = f->at;
    e.value = f->pct();
    e.limit = q.attempts_allowed ? *q.attempts_allowed : kNoScore;
    v.evidence.push_back(e);
  }
  if (p.locked) {
    Evidence e = ev(Requirement::Attempts, Finding::AttemptsExhausted, false, q.item, cycle);
    e.value = p.attempts_in_window;
    e.limit = q.attempts_allowed ? *q.attempts_allowed : kNoScore;
    v.evidence.push_back(e);
  }
}

// True when every required role (from role_idx on) can be given a distinct approver: a small
// bipartite matching, solved by backtracking (a handful of roles and approvals at most).
bool matchRoles(const std::vector<std::string>& roles, const std::vector<const Approval*>& valid,
                std::size_t role_idx, std::vector<const std::string*>& used) {
  if (role_idx == roles.size()) return true;
  for (const Approval* a : valid) {
    if (a->role != roles[role_idx]) continue;
    if (std::any_of(used.begin(), used.end(),
                    [&](const std::string* u) { return *u == a->approver; }))
      continue;
    used.push_back(&a->approver);
    if (matchRoles(roles, valid, role_idx + 1, used)) return true;
    used.pop_back();
  }
  return false;
}

// Returns true when the exception grants access now; appends its findings either way.
bool checkException(const Exception& x, const Track& t, Instant now, Verdict& v) {
  const ExceptionPolicy& pol = t.exceptions;
  auto add = [&](Finding f, bool met) -> Evidence& {
    Evidence e = ev(Requirement::Exception, f, met, t.id, 0);
    e.exception_id = x.id;
    e.at = x.starts_at;
    v.evidence.push_back(e);
    return v.evidence.back();
  };
  bool ok = true;
  if (!pol.allowed) {
    add(Finding::ExceptionNotAllowed, false);
    return false;
  }
  const auto duration = x.ends_at - x.starts_at;
  if (duration > days(pol.max_duration_days) || duration <= Seconds{0}) {
    Evidence& e = add(Finding::ExceptionTooLong, false);
    e.value = static_cast<double>(duration.count()) / 86400.0;
    e.limit = pol.max_duration_days;
    ok = false;
  }
  for (std::size_t i = 0; i < pol.justification_fields.size(); ++i) {
    const auto& field = pol.justification_fields[i];
    const bool filled = std::any_of(x.justification.begin(), x.justification.end(), [&](const auto& kv) {
      return kv.first == field && kv.second.find_first_not_of(" \t\r\n") != std::string::npos;
    });
    if (!filled) {
      add(Finding::ExceptionMissingJustification, false).index = static_cast<std::int32_t>(i);
      ok = false;
    }
  }
  for (const Approval& a : x.approvals) {
    if (a.at > now || a.approver != x.requester) continue;
    Evidence& e = add(Finding::ExceptionSelfApproved, false);
    e.at = a.at;
    for (std::size_t i = 0; i < pol.required_roles.size(); ++i)
      if (pol.required_roles[i] == a.role) e.index = static_cast<std::int32_t>(i);
  }
  for (std::size_t i : missingApprovals(x, pol, now)) {
    add(Finding::ExceptionMissingApproval, false).index = static_cast<std::int32_t>(i);
    ok = false;
  }
  if (!ok) return false;
  if (x.revoked_at && *x.revoked_at <= now) {
    add(Finding::ExceptionRevoked, false).at = *x.revoked_at;
    return false;
  }
  if (now < x.starts_at) {
    add(Finding::ExceptionNotStarted, false);
    return false;
  }
  if (now >= x.ends_at) {
    add(Finding::ExceptionEnded, false).at = x.ends_at;
    return false;
  }
  Evidence& e = add(Finding::ExceptionActive, true);
  e.value = static_cast<double>(x.ends_at.time_since_epoch().count());
  return true;
}

void evaluateTrack(PersonIndex person, const Person& info, std::span<const Fact* const> facts,
                   std::span<const Exception> exceptions, const Track& t, Instant now,
                   Verdict& v) {
  v.person = person;
  v.track = t.id;
  v.attempts_allowed = t.quiz ? t.quiz->attempts_allowed : std::nullopt;

  if (!t.populations.empty()) {
    if (info.population == kNoSym) {
      v.state = State::OutOfScope;
      v.evidence.push_back(ev(Requirement::Population, Finding::PopulationUnknown, false, kNoSym, 0));
      return;
    }
    if (std::find(t.populations.begin(), t.populations.end(), info.population) ==
        t.populations.end()) {
      v.state = State::OutOfScope;
      v.evidence.push_back(
          ev(Requirement::Population, Finding::PopulationNotInScope, false, info.population, 0));
      return;
    }
    v.evidence.push_back(ev(Requirement::Population, Finding::InScope, true, info.population, 0));
  }

  // Walk the certification cycles forward in time.
  int cycle = 0;
  Instant window_start = kBeginning;
  std::optional<Instant> lapse;  // old expiry while a renewal is pending
  std::optional<Instant> certified_at, expires_at;
  CycleProgress last_done;
  int last_done_cycle = -1;
  CycleProgress pending;
  for (;;) {
    CycleProgress p = progressSince(facts, t, window_start, lapse, now);
    if (!p.completed_at) {
      pending = std::move(p);
      break;
    }
    const Instant c = *p.completed_at;
    Instant e = kNever;
    Finding renewal = Finding::CertifiedUntil;
    if (t.recertify_days) {
      if (cycle > 0 && lapse && c < *lapse) {
        e = *lapse + days(*t.recertify_days);
        renewal = Finding::RenewedEarly;
      } else {
        e = c + days(*t.recertify_days);
        if (cycle > 0) renewal = Finding::RenewedLate;
      }
    }
    // Where the source trusts the LMS's own expiry, take it from the facts that certified.
    std::optional<Instant> lms_expiry;
    auto consider = [&](const Fact* f) {
      if (f && f->lms_expiry) lms_expiry = std::max(lms_expiry.value_or(kBeginning), *f->lms_expiry);
    };
    for (const Fact* f : p.module_fact) consider(f);
    consider(p.quiz_pass);
    if (lms_expiry) e = *lms_expiry;

    certified_at = c;
    expires_at = e;
    last_done = std::move(p);
    last_done_cycle = cycle;
    Evidence ce = ev(Requirement::Expiry, renewal, true, t.id, cycle);
    ce.at = c;
    ce.value = static_cast<double>(e.time_since_epoch().count());
    if (lms_expiry) ce.finding = Finding::LmsExpiryTaken;
    v.evidence.push_back(ce);
    if (e >= kNever) break;  // never expires: no renewal cycles
    ++cycle;
    window_start = std::max(e - days(t.renew_window_days), c + Seconds{1});
    lapse = e;
    if (cycle > 1000) break;  // defensive: impossible with validated policies
  }

  if (last_done_cycle >= 0) addProgressEvidence(last_done, t, last_done_cycle, v);

  v.cycle = std::max(last_done_cycle, 0);
  v.certified_at = certified_at;
  v.expires_at = expires_at && *expires_at < kNever ? expires_at : std::nullopt;
  bool entitled_by_cert = false;
  if (certified_at) {
    const Instant e = *expires_at;
    const Instant grace_end = e < kNever ? e + days(t.grace_days) : kNever;
    if (e < kNever) {
      v.renewal_opens_at = std::max(e - days(t.renew_window_days), *certified_at + Seconds{1});
      if (t.grace_days > 0) v.grace_ends_at = grace_end;
    }
    int remind = 0;
    for (int d : t.remind_before_days) remind = std::max(remind, d);
    if (now < e) {
      v.state = (remind > 0 && e < kNever && now >= e - days(remind)) ? State::Expiring
                                                                       : State::Certified;
      entitled_by_cert = true;
    } else if (now < grace_end) {
      v.state = State::Grace;
      entitled_by_cert = true;
    } else {
      v.state = pending.locked ? State::LockedOut : State::Expired;
      Evidence x = ev(Requirement::Expiry, Finding::Expired, false, t.id, last_done_cycle);
      x.at = grace_end;
      v.evidence.push_back(x);
    }
    if (entitled_by_cert && grace_end < kNever) v.access_ends_at = grace_end;
    // Show renewal progress once its window is open.
    if (e < kNever && now >= *v.renewal_opens_at) {
      Evidence r = ev(Requirement::Expiry, Finding::RenewalInProgress, pending.any_fact, t.id,
                      last_done_cycle + 1);
      r.at = *v.renewal_opens_at;
      v.evidence.push_back(r);
      addProgressEvidence(pending, t, last_done_cycle + 1, v);
    }
    v.attempts_used = pending.attempts_in_window;
  } else {
    addProgressEvidence(pending, t, 0, v);
    v.attempts_used = pending.attempts_in_window;
    v.state = pending.locked ? State::LockedOut
              : pending.any_fact ? State::InProgress
                                 : State::NotStarted;
  }

  // Facts after certification that were too early to count toward a renewal.
  if (certified_at && v.renewal_opens_at) {
    for (const Fact* f : facts) {
      if (f->at <= *certified_at || f->at >= *v.renewal_opens_at) continue;
      if (!relevant(*f, t) || f->kind == FactKind::AttemptReset) continue;
      Evidence n = ev(Requirement::Expiry, Finding::RenewalNotCounted, false, f->item, last_done_cycle);
      n.fact_ref = f->ref;
      n.at = f->at;
      v.evidence.push_back(n);
    }
  }

  if (!entitled_by_cert) {
    for (const Exception& x : exceptions) {
      if (x.track != t.id) continue;
      if (checkException(x, t, now, v)) {
        v.state = State::Exception;
        v.exception_id = x.id;
        const Instant end = x.revoked_at ? std::min(x.ends_at, *x.revoked_at) : x.ends_at;
        v.access_ends_at = end;
        break;
      }
    }
  }
  v.entitled = grantsAccess(v.state);
}

// Order in which tracks must be evaluated so prerequisites come first. Cycles were rejected by
// validatePolicy; any left are broken arbitrarily (the prerequisite then reads as not entitled).
std::vector<std::size_t> dependencyOrder(const Policy& policy) {
  const std::size_t n = policy.tracks.size();
  std::vector<std::size_t> order;
  std::vector<int> mark(n, 0);  // 0 new, 1 visiting, 2 done
  auto index = [&](Sym id) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < n; ++i)
      if (policy.tracks[i].id == id) return i;
    return std::nullopt;
  };
  auto visit = [&](auto&& self, std::size_t i) -> void {
    if (mark[i] != 0) return;
    mark[i] = 1;
    for (Sym r : policy.tracks[i].requires_tracks)
      if (auto j = index(r)) self(self, *j);
    mark[i] = 2;
    order.push_back(i);
  };
  for (std::size_t i = 0; i < n; ++i) visit(visit, i);
  return order;
}

bool factLess(const Fact* a, const Fact* b) {
  if (a->at != b->at) return a->at < b->at;
  if (a->attempt != b->attempt) return a->attempt < b->attempt;
  return a->ref < b->ref;
}

}  // namespace

std::vector<std::size_t> missingApprovals(const Exception& x, const ExceptionPolicy& policy,
                                          Instant now) {
  std::vector<const Approval*> valid;
  for (const Approval& a : x.approvals)
    if (a.at <= now && a.approver != x.requester) valid.push_back(&a);
  std::vector<const std::string*> used;
  if (matchRoles(policy.required_roles, valid, 0, used)) return {};
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < policy.required_roles.size(); ++i) {
    const bool has = std::any_of(valid.begin(), valid.end(), [&](const Approval* a) {
      return a->role == policy.required_roles[i];
    });
    if (!has) missing.push_back(i);
  }
  // Every role has an approval, but one person approved for several roles: the last role
  // still needs somebody else.
  if (missing.empty()) missing.push_back(policy.required_roles.size() - 1);
  return missing;
}

std::string impossibleFactReason(const Fact& f, Instant now, Seconds skew) {
  if (f.at > now + skew) return "dated " + formatIso(f.at) + ", in the future beyond the allowed clock skew";
  if (f.kind == FactKind::AttemptReset) return f.item == kNoSym ? "attempt reset without a quiz" : "";
  if (f.item == kNoSym) return "no item";
  const bool has_score = !std::isnan(f.score);
  const bool has_max = !std::isnan(f.max_score);
  if (has_score && !std::isfinite(f.score)) return "score is not a finite number";
  if (has_max && !std::isfinite(f.max_score)) return "maximum score is not a finite number";
  if (has_score && f.score < 0) return "negative score " + std::to_string(f.score);
  if (has_max && f.max_score <= 0) return "maximum score must be positive, got " + std::to_string(f.max_score);
  if (has_score && has_max && f.score > f.max_score)
    return "score " + std::to_string(f.score) + " exceeds the maximum " + std::to_string(f.max_score);
  return "";
}

void evaluatePerson(PersonIndex person, const Person& info, std::span<const Fact> facts,
                    std::span<const Exception> exceptions, const Policy& policy, Instant now,
                    std::vector<Verdict>& out) {
  std::vector<const Fact*> usable;
  std::vector<const Fact*> impossible;
  usable.reserve(facts.size());
  for (const Fact& f : facts) {
    if (impossibleFactReason(f, now, policy.clock_skew).empty())
      usable.push_back(&f);
    else
      impossible.push_back(&f);
  }
  std::sort(usable.begin(), usable.end(), factLess);

  const std::size_t base = out.size();
  out.resize(base + policy.tracks.size());
  for (std::size_t i : dependencyOrder(policy)) {
    const Track& t = policy.tracks[i];
    Verdict& v = out[base + i];
    evaluateTrack(person, info, usable, exceptions, t, now, v);
    for (const Fact* f : impossible) {
      if (!relevant(*f, t)) continue;
      Evidence e = ev(Requirement::Quarantine, Finding::FactImpossible, false, f->item, v.cycle);
      e.fact_ref = f->ref;
      e.at = f->at;
      v.evidence.push_back(e);
    }
    for (Sym r : t.requires_tracks) {
      const Verdict* req = nullptr;
      for (std::size_t j = 0; j < policy.tracks.size(); ++j)
        if (policy.tracks[j].id == r) req = &out[base + j];
      const bool met = req && req->track == r && req->entitled;
      Evidence e = ev(Requirement::Prerequisite,
                      met ? Finding::PrerequisiteMet : Finding::PrerequisiteNotMet, met, r, v.cycle);
      v.evidence.push_back(e);
      if (!met) v.entitled = false;
    }
    // While entitled, access ends with the earliest prerequisite's access.
    if (v.entitled) {
      for (Sym r : t.requires_tracks)
        for (std::size_t j = 0; j < policy.tracks.size(); ++j) {
          const Verdict& req = out[base + j];
          if (policy.tracks[j].id != r || !req.access_ends_at) continue;
          if (!v.access_ends_at || *req.access_ends_at < *v.access_ends_at)
            v.access_ends_at = req.access_ends_at;
        }
    }
  }
}

std::vector<Verdict> evaluate(const EvaluationInput& in) {
  std::vector<Verdict> out;
  if (!in.policy) return out;
  const Policy& policy = *in.policy;
  out.reserve(in.people.size() * policy.tracks.size());

  // Group facts and exceptions by person with a counting sort: O(n), no comparisons.
  const std::size_t n = in.people.size();
  std::vector<std::size_t> fact_start(n + 1, 0), exc_start(n + 1, 0);
  for (const Fact& f : in.facts)
    if (f.person < n) ++fact_start[f.person + 1];
  for (const Exception& x : in.exceptions)
    if (x.person < n) ++exc_start[x.person + 1];
  for (std::size_t i = 0; i < n; ++i) {
    fact_start[i + 1] += fact_start[i];
    exc_start[i + 1] += exc_start[i];
  }
  std::vector<Fact> facts(fact_start[n]);
  std::vector<Exception> excs(exc_start[n]);
  {
    std::vector<std::size_t> pos(fact_start.begin(), fact_start.end() - 1);
    for (const Fact& f : in.facts)
      if (f.person < n) facts[pos[f.person]++] = f;
    std::vector<std::size_t> xpos(exc_start.begin(), exc_start.end() - 1);
    for (const Exception& x : in.exceptions)
      if (x.person < n) excs[xpos[x.person]++] = x;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::span<const Fact> pf(facts.data() + fact_start[i], fact_start[i + 1] - fact_start[i]);
    std::span<const Exception> px(excs.data() + exc_start[i], exc_start[i + 1] - exc_start[i]);
    evaluatePerson(static_cast<PersonIndex>(i), in.people[i], pf, px, policy, in.now, out);
  }
  return out;
}

Status validatePolicy(const Policy& policy, const SymbolTable& symbols) {
  auto name = [&](Sym s) { return std::string(symbols.name(s)); };
  for (std::size_t i = 0; i < policy.tracks.size(); ++i) {
    const Track& t = policy.tracks[i];
    const std::string where = "track " + name(t.id);
    for (std::size_t j = 0; j < i; ++j)
      if (policy.tracks[j].id == t.id)
        return makeError(ErrorKind::Invalid, "track id defined twice", where,
                         "give every track a unique id");
    if (t.quiz) {
      if (!(t.quiz->min_score_pct >= 0 && t.quiz->min_score_pct <= 100))
        return makeError(ErrorKind::Invalid,
                         "quiz minScorePct must be between 0 and 100, got " +
                             std::to_string(t.quiz->min_score_pct),
                         where, "use a percentage, e.g. minScorePct: 80");
      if (t.quiz->attempts_allowed && *t.quiz->attempts_allowed < 1)
        return makeError(ErrorKind::Invalid, "quiz attemptsAllowed must be at least 1", where,
                         "remove attemptsAllowed for unlimited attempts");
    }
    if (t.recertify_days && *t.recertify_days < 1)
      return makeError(ErrorKind::Invalid, "recertifyDays must be at least 1", where,
                       "remove recertifyDays if the certification never expires");
    if (t.grace_days < 0)
      return makeError(ErrorKind::Invalid, "graceDays must not be negative", where, "use 0 for no grace");
    if (t.renew_window_days < 0)
      return makeError(ErrorKind::Invalid, "renewWindowDays must not be negative", where, "");
    if (t.recertify_days && t.renew_window_days >= *t.recertify_days)
      return makeError(ErrorKind::Invalid,
                       "renewWindowDays (" + std::to_string(t.renew_window_days) +
                           ") must be shorter than recertifyDays (" +
                           std::to_string(*t.recertify_days) + ")",
                       where, "shorten the renewal window");
    for (int d : t.remind_before_days)
      if (d < 0)
        return makeError(ErrorKind::Invalid, "remindBeforeDays must not be negative", where, "");
    if (t.exceptions.max_duration_days < 0)
      return makeError(ErrorKind::Invalid, "maxDurationDays must not be negative", where, "");
    for (Sym r : t.requires_tracks) {
      if (r == t.id)
        return makeError(ErrorKind::Invalid, "track requires itself", where, "remove it from requires");
      const bool known = std::any_of(policy.tracks.begin(), policy.tracks.end(),
                                     [&](const Track& o) { return o.id == r; });
      if (!known)
        return makeError(ErrorKind::Invalid, "requires unknown track " + name(r), where,
                         "define the track or remove it from requires");
    }
  }
  // Prerequisite cycles.
  const std::size_t n = policy.tracks.size();
  std::vector<int> mark(n, 0);
  std::vector<std::size_t> path;
  std::string cycle_text;
  auto index = [&](Sym id) -> std::size_t {
    for (std::size_t i = 0; i < n; ++i)
      if (policy.tracks[i].id == id) return i;
    return n;
  };
  auto visit = [&](auto&& self, std::size_t i) -> bool {
    if (mark[i] == 2) return false;
    if (mark[i] == 1) {
      auto it = std::find(path.begin(), path.end(), i);
      for (; it != path.end(); ++it) cycle_text += name(policy.tracks[*it].id) + " -> ";
      cycle_text += name(policy.tracks[i].id);
      return true;
    }
    mark[i] = 1;
    path.push_back(i);
    for (Sym r : policy.tracks[i].requires_tracks) {
      const std::size_t j = index(r);
      if (j < n && self(self, j)) return true;
    }
    path.pop_back();
    mark[i] = 2;
    return false;
  };
  for (std::size_t i = 0; i < n; ++i)
    if (visit(visit, i))
      return makeError(ErrorKind::Invalid, "prerequisite cycle: " + cycle_text, "requires",
                       "break the cycle: a track cannot (indirectly) require itself");
  return {};
}

const char* toString(Requirement r) {
  switch (r) {
    case Requirement::Population: return "population";
    case Requirement::Module: return "module";
    case Requirement::Quiz: return "quiz";
    case Requirement::Attempts: return "attempts";
    case Requirement::Expiry: return "expiry";
    case Requirement::Prerequisite: return "prerequisite";
    case Requirement::Exception: return "exception";
    case Requirement::Quarantine: return "quarantine";
  }
  return "?";
}

const char* toString(Finding f) {
  switch (f) {
    case Finding::InScope: return "in_scope";
    case Finding::PopulationNotInScope: return "population_not_in_scope";
    case Finding::PopulationUnknown: return "population_unknown";
    case Finding::ModuleCompleted: return "module_completed";
    case Finding::ModuleMissing: return "module_missing";
    case Finding::QuizPassed: return "quiz_passed";
    case Finding::QuizFailedAttempt: return "quiz_failed_attempt";
    case Finding::QuizNotTaken: return "quiz_not_taken";
    case Finding::QuizPassNotCounted: return "quiz_pass_not_counted";
    case Finding::AttemptsExhausted: return "attempts_exhausted";
    case Finding::AttemptsReset: return "attempts_reset";
    case Finding::RenewalNotCounted: return "renewal_not_counted";
    case Finding::CertifiedUntil: return "certified_until";
    case Finding::RenewedEarly: return "renewed_early";
    case Finding::RenewedLate: return "renewed_late";
    case Finding::LmsExpiryTaken: return "lms_expiry_taken";
    case Finding::Expired: return "expired";
    case Finding::PrerequisiteMet: return "prerequisite_met";
    case Finding::PrerequisiteNotMet: return "prerequisite_not_met";
    case Finding::ExceptionActive: return "exception_active";
    case Finding::ExceptionNotStarted: return "exception_not_started";
    case Finding::ExceptionEnded: return "exception_ended";
    case Finding::ExceptionRevoked: return "exception_revoked";
    case Finding::ExceptionTooLong: return "exception_too_long";
    case Finding::ExceptionMissingApproval: return "exception_missing_approval";
    case Finding::ExceptionSelfApproved: return "exception_self_approved";
    case Finding::ExceptionMissingJustification: return "exception_missing_justification";
    case Finding::ExceptionNotAllowed: return "exception_not_allowed";
    case Finding::FactImpossible: return "fact_impossible";
    case Finding::RenewalInProgress: return "renewal_in_progress";
  }
  return "?";
}

}  // namespace certgate::core
