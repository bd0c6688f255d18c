#include "core/plan.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace certgate::core {

namespace {

bool targetLess(const GroupTarget& a, const GroupTarget& b) {
  return std::tie(a.directory, a.group) < std::tie(b.directory, b.group);
}

// Index of (directory, group) in the sorted target list, or nullopt outside the allow-list.
std::optional<std::size_t> findTarget(const std::vector<PlannedTarget>& targets,
                                      std::string_view directory, std::string_view group) {
  auto it = std::lower_bound(
      targets.begin(), targets.end(), std::pair{directory, group},
      [](const PlannedTarget& t, const std::pair<std::string_view, std::string_view>& k) {
        return std::pair<std::string_view, std::string_view>{t.target.directory, t.target.group} <
               k;
      });
  if (it == targets.end() || it->target.directory != directory || it->target.group != group)
    return std::nullopt;
  return static_cast<std::size_t>(it - targets.begin());
}

const Verdict* findVerdict(const PersonVerdicts& p, Sym track) {
  for (const Verdict& v : p.verdicts)
    if (v.track == track) return &v;
  return nullptr;
}

const Evidence* findEvidence(const Verdict& v, Finding f) {
  for (const Evidence& e : v.evidence)
    if (e.finding == f) return &e;
  return nullptr;
}

struct Cause {
  Reason reason = Reason::NoVerdict;
  State state = State::NotStarted;
  bool source_dependent = true;
  std::int64_t exception_id = 0;
  std::optional<Instant> at;
};

// Why a verdict does not entitle, and whether that could change with data a stale source lacks.
// Time (expiry past grace, an exception's end) and approver decisions (revocation) do not depend
// on source data; everything else does. A prerequisite failure depends on sources iff the
// prerequisite's own cause does. `depth` guards against prerequisite cycles.
Cause whyNot(const PersonVerdicts& p, const Verdict* v, std::size_t depth) {
  Cause c;
  if (!v) return c;
  c.state = v->state;
  if (grantsAccess(v->state)) {
    c.reason = Reason::PrerequisiteNotMet;
    c.source_dependent = false;
    bool any = false;
    for (const Evidence& e : v->evidence) {
      if (e.finding != Finding::PrerequisiteNotMet) continue;
      any = true;
      const Verdict* req = findVerdict(p, e.item);
      if (depth == 0 || !req || req->entitled || whyNot(p, req, depth - 1).source_dependent)
        c.source_dependent = true;
    }
    if (!any) c.source_dependent = true;  // not entitled for a reason we cannot see
    return c;
  }
  if (const Evidence* e = findEvidence(*v, Finding::Expired)) {
    c.reason = Reason::Expired;
    c.source_dependent = false;
    c.at = e->at;
    return c;
  }
  if (const Evidence* e = findEvidence(*v, Finding::ExceptionRevoked)) {
    c.reason = Reason::ExceptionRevoked;
    c.source_dependent = false;
    c.exception_id = e->exception_id;
    c.at = e->at;
    return c;
  }
  if (const Evidence* e = findEvidence(*v, Finding::ExceptionEnded)) {
    c.reason = Reason::ExceptionEnded;
    c.source_dependent = false;
    c.exception_id = e->exception_id;
    c.at = e->at;
    return c;
  }
  switch (v->state) {
    case State::OutOfScope:
      c.reason = Reason::OutOfScope;
      break;
    case State::LockedOut:
      c.reason = Reason::LockedOut;
      break;
    default:
      c.reason = Reason::NotCertified;
      break;
  }
  return c;
}

bool actionLess(const Action& a, const Action& b) {
  return std::tie(a.kind, a.target.directory, a.target.group, a.person) <
         std::tie(b.kind, b.target.directory, b.target.group, b.person);
}

void fnv(std::uint64_t& h, std::string_view s) {
  for (char ch : s) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ULL;
  }
  h ^= 0xffU;  // field separator
  h *= 1099511628211ULL;
}

std::string targetName(const GroupTarget& t) {
  return t.directory + "/" + t.group;
}

}  // namespace

RemovalCause removalCause(const PersonVerdicts& person, Sym track) {
  const Cause c = whyNot(person, findVerdict(person, track), 64);
  return RemovalCause{c.reason, c.state, c.source_dependent, c.exception_id, c.at};
}

Desired desire(std::span<const PersonVerdicts> people, std::span<const TrackGrant> mappings) {
  Desired out;
  // Allow-list: every (directory, group) named by a mapping, merged.
  for (const TrackGrant& m : mappings) {
    if (m.track == kNoSym) continue;
    for (const GroupTarget& g : m.groups) {
      auto it = std::find_if(out.targets.begin(), out.targets.end(), [&](const PlannedTarget& t) {
        return t.target.directory == g.directory && t.target.group == g.group;
      });
      if (it == out.targets.end()) {
        out.targets.push_back(PlannedTarget{g, {m.track}, false});
        continue;
      }
      if (it->target.mode != g.mode) {
        it->mode_conflict = true;
        it->target.mode = GroupMode::Managed;
      }
      if (std::find(it->tracks.begin(), it->tracks.end(), m.track) == it->tracks.end())
        it->tracks.push_back(m.track);
    }
  }
  std::sort(out.targets.begin(), out.targets.end(),
            [](const PlannedTarget& a, const PlannedTarget& b) {
              return targetLess(a.target, b.target);
            });

  for (const PersonVerdicts& p : people) {
    for (std::size_t ti = 0; ti < out.targets.size(); ++ti) {
      for (Sym track : out.targets[ti].tracks) {
        const Verdict* v = findVerdict(p, track);
        if (!v || !v->entitled) continue;
        out.members.push_back(
            DesiredMember{ti, p.person_key, track, v->state, v->exception_id, v->access_ends_at,
                          v->state == State::Exception ? std::nullopt : v->certified_at});
        break;  // first granting track in mapping order gives the reason
      }
    }
  }
  std::stable_sort(out.members.begin(), out.members.end(),
                   [](const DesiredMember& a, const DesiredMember& b) {
                     return std::tie(a.target, a.person_key) < std::tie(b.target, b.person_key);
                   });
  // The same person key listed twice: keep the first.
  out.members.erase(std::unique(out.members.begin(), out.members.end(),
                                [](const DesiredMember& a, const DesiredMember& b) {
                                  return a.target == b.target && a.person_key == b.person_key;
                                }),
                    out.members.end());
  return out;
}

Plan plan(const PlanInput& in) {
  Plan out;
  out.id = in.id;
  if (!in.desired) return out;
  const Desired& desired = *in.desired;
  const std::size_t n = desired.targets.size();

  for (const PlannedTarget& t : desired.targets)
    if (t.mode_conflict) out.mode_conflicts.push_back(t.target);

  std::unordered_map<std::string_view, const PersonVerdicts*> people;
  people.reserve(in.people.size());
  for (const PersonVerdicts& p : in.people) people.emplace(p.person_key, &p);

  std::vector<std::unordered_map<std::string_view, const DesiredMember*>> want(n);
  for (const DesiredMember& d : desired.members)
    if (d.target < n) want[d.target].emplace(d.person_key, &d);

  std::vector<std::optional<std::unordered_set<std::string_view>>> have(n);
  for (const ObservedGroup& g : in.observed) {
    const auto ti = findTarget(desired.targets, g.directory, g.group);
    if (!ti) continue;  // outside the allow-list: never touched
    if (!have[*ti]) have[*ti].emplace();
    for (const std::string& m : g.members) have[*ti]->insert(m);
  }

  std::vector<std::unordered_map<std::string_view, std::vector<const LedgerGrant*>>> owned(n);
  for (const LedgerGrant& l : in.ledger) {
    const auto ti = findTarget(desired.targets, l.directory, l.group);
    if (!ti) {
      out.outside_allow_list.push_back(l);
      continue;
    }
    owned[*ti][l.person_key].push_back(&l);
  }
  std::sort(out.outside_allow_list.begin(), out.outside_allow_list.end(),
            [](const LedgerGrant& a, const LedgerGrant& b) {
              return std::tie(a.directory, a.group, a.person_key, a.track) <
                     std::tie(b.directory, b.group, b.person_key, b.track);
            });

  const std::size_t depth = 64;  // prerequisite chains are short; this only stops cycles
  for (std::size_t ti = 0; ti < n; ++ti) {
    const PlannedTarget& t = desired.targets[ti];
    if (!have[ti]) {
      out.unobserved.push_back(t.target);
      continue;
    }
    const auto& members = *have[ti];
    const bool exclusive = t.target.mode == GroupMode::Exclusive;

    for (const auto& [key, d] : want[ti]) {
      if (members.count(key)) continue;
      Action a;
      a.kind = ActionKind::Add;
      a.target = t.target;
      a.person = d->person_key;
      a.track = d->track;
      a.reason = Reason::Entitled;
      a.state = d->state;
      a.exception_id = d->exception_id;
      a.at = d->access_ends_at;
      a.since = d->entitled_since;
      out.actions.push_back(std::move(a));
    }

    for (std::string_view m : members) {
      const auto own = owned[ti].find(m);
      const bool is_owned = own != owned[ti].end();
      if (exclusive || is_owned) ++out.brake.current_grants;
      if (want[ti].count(m)) continue;
      if (!exclusive && !is_owned) continue;  // managed: never touch what certgate did not add

      Action a;
      a.kind = ActionKind::Remove;
      a.target = t.target;
      a.person = std::string(m);
      a.ledger_owned = is_owned;
      const auto pit = people.find(m);
      if (pit == people.end()) {
        a.reason = Reason::UnknownMember;
        a.source_dependent = true;
        if (!in.roster_complete) {
          out.skipped.push_back(Skipped{std::move(a), SkipReason::RosterIncomplete});
          continue;
        }
        out.actions.push_back(std::move(a));
        continue;
      }
      const PersonVerdicts& p = *pit->second;
      // The reason names the ledger row's track when it still grants this target, else the
      // first granting track.
      Sym track = t.tracks.front();
      if (is_owned)
        for (const LedgerGrant* l : own->second)
          if (std::find(t.tracks.begin(), t.tracks.end(), l->track) != t.tracks.end()) {
            track = l->track;
            break;
          }
      const Cause c = whyNot(p, findVerdict(p, track), depth);
      a.track = track;
      a.reason = c.reason;
      a.state = c.state;
      a.exception_id = c.exception_id;
      a.at = c.at;
      // Data-independent only if no granting track could turn entitled with the missing data.
      a.source_dependent = false;
      for (Sym other : t.tracks)
        if (whyNot(p, findVerdict(p, other), depth).source_dependent) a.source_dependent = true;
      if (a.source_dependent && !p.sources_complete) {
        out.skipped.push_back(Skipped{std::move(a), SkipReason::SourceIncomplete});
        continue;
      }
      out.actions.push_back(std::move(a));
    }
  }

  std::sort(out.actions.begin(), out.actions.end(), actionLess);
  std::sort(out.skipped.begin(), out.skipped.end(),
            [](const Skipped& a, const Skipped& b) { return actionLess(a.action, b.action); });

  Brake& b = out.brake;
  b.removals = countActions(out, ActionKind::Remove);
  const double pct = std::isfinite(in.limits.max_removal_pct) && in.limits.max_removal_pct > 0
                         ? in.limits.max_removal_pct
                         : 0.0;
  // Multiply before dividing so whole percentages of whole counts stay exact; the epsilon keeps
  // a product like 7.000000000000001 from rounding up to 8.
  const double share = pct * static_cast<double>(b.current_grants) / 100.0;
  const auto by_pct = static_cast<std::size_t>(std::ceil(share - 1e-9));
  b.threshold = std::max(in.limits.max_removals, by_pct);
  b.held = b.removals > b.threshold;

  std::uint64_t h = 14695981039346656037ULL;
  for (const Action& a : out.actions) {
    fnv(h, toString(a.kind));
    fnv(h, a.target.directory);
    fnv(h, a.target.group);
    fnv(h, a.person);
    fnv(h, toString(a.reason));
  }
  out.fingerprint = h;
  return out;
}

std::vector<const Action*> applicable(const Plan& p) {
  std::vector<const Action*> out;
  out.reserve(p.actions.size());
  for (const Action& a : p.actions)
    if (!p.held() || a.kind == ActionKind::Add) out.push_back(&a);
  return out;
}

std::size_t countActions(const Plan& p, ActionKind kind) {
  return static_cast<std::size_t>(std::count_if(
      p.actions.begin(), p.actions.end(), [kind](const Action& a) { return a.kind == kind; }));
}

const char* toString(GroupMode m) {
  switch (m) {
    case GroupMode::Managed:
      return "managed";
    case GroupMode::Exclusive:
      return "exclusive";
  }
  return "?";
}

const char* toString(ActionKind k) {
  switch (k) {
    case ActionKind::Remove:
      return "remove";
    case ActionKind::Add:
      return "add";
  }
  return "?";
}

const char* toString(Reason r) {
  switch (r) {
    case Reason::Entitled:
      return "entitled";
    case Reason::Expired:
      return "expired";
    case Reason::ExceptionEnded:
      return "exception_ended";
    case Reason::ExceptionRevoked:
      return "exception_revoked";
    case Reason::PrerequisiteNotMet:
      return "prerequisite_not_met";
    case Reason::NotCertified:
      return "not_certified";
    case Reason::LockedOut:
      return "locked_out";
    case Reason::OutOfScope:
      return "out_of_scope";
    case Reason::NoVerdict:
      return "no_verdict";
    case Reason::UnknownMember:
      return "unknown_member";
  }
  return "?";
}

const char* toString(SkipReason r) {
  switch (r) {
    case SkipReason::SourceIncomplete:
      return "source_incomplete";
    case SkipReason::RosterIncomplete:
      return "roster_incomplete";
  }
  return "?";
}

std::string describe(const Action& a, const SymbolTable& symbols) {
  const std::string track(symbols.name(a.track));
  std::string s = std::string(toString(a.kind)) + " " + a.person +
                  (a.kind == ActionKind::Add ? " to " : " from ") + targetName(a.target) + ": ";
  switch (a.reason) {
    case Reason::Entitled:
      s += "track " + track + " " + toString(a.state);
      if (a.state == State::Exception) s += " #" + std::to_string(a.exception_id);
      if (a.at) s += ", access until " + formatIso(*a.at);
      break;
    case Reason::Expired:
      s += "track " + track + " expired";
      if (a.at) s += " (grace ended " + formatIso(*a.at) + ")";
      break;
    case Reason::ExceptionEnded:
    case Reason::ExceptionRevoked:
      s += "track " + track +
           (a.reason == Reason::ExceptionEnded ? " exception ended" : " exception revoked");
      if (a.at) s += " (" + formatIso(*a.at) + ")";
      break;
    case Reason::PrerequisiteNotMet:
      s += "track " + track + " " + toString(a.state) + " but a prerequisite is not met";
      break;
    case Reason::NotCertified:
    case Reason::LockedOut:
    case Reason::OutOfScope:
      s += "track " + track + " " + toString(a.state);
      break;
    case Reason::NoVerdict:
      s += "no verdict for track " + track;
      break;
    case Reason::UnknownMember:
      s += "not a known person";
      break;
  }
  if (a.kind == ActionKind::Remove) s += a.ledger_owned ? ", ledger-owned" : ", exclusive group";
  return s;
}

std::string describe(const Skipped& sk, const SymbolTable& symbols) {
  return "skipped (" + std::string(toString(sk.why)) + "): " + describe(sk.action, symbols);
}

std::string describe(const Brake& b) {
  std::string s = std::to_string(b.removals) + " removals against a threshold of " +
                  std::to_string(b.threshold) + " (" + std::to_string(b.current_grants) +
                  " current grants)";
  if (b.held) s += ": held, nothing is removed until the plan is approved; additions may apply";
  return s;
}

}  // namespace certgate::core
