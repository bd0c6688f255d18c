#include "cli/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace certgate::cli {

using core::Finding;

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string s;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      s += cell;
      if (i + 1 < width.size()) s += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(header_);
  std::vector<std::string> rule;
  for (auto w : width) rule.emplace_back(w, '-');
  line(rule);
  for (const auto& r : rows_) line(r);
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string relative(core::Instant t, core::Instant now) {
  const auto diff = (t - now).count();
  const long long d = std::llabs(diff) / 86400;
  const long long h = std::llabs(diff) / 3600;
  std::string amount = d >= 1 ? std::to_string(d) + (d == 1 ? " day" : " days")
                       : h >= 1 ? std::to_string(h) + (h == 1 ? " hour" : " hours")
                                : "less than an hour";
  return diff >= 0 ? "in " + amount : amount + " ago";
}

const core::Track* findTrack(const settings::LoadedPolicy& policy, core::Sym id) {
  for (const auto& t : policy.policy.tracks)
    if (t.id == id) return &t;
  return nullptr;
}

namespace {

std::string name(const RenderContext& ctx, core::Sym s) {
  const auto n = ctx.policy.symbols.name(s);
  return n.empty() ? "?" : std::string(n);
}

std::string pct(double v) {
  if (std::isnan(v)) return "no score";
  char buf[32];
  if (std::fabs(v - std::round(v)) < 0.005)
    std::snprintf(buf, sizeof buf, "%.0f%%", v);
  else
    std::snprintf(buf, sizeof buf, "%.2f%%", v);
  return buf;
}

std::string factRef(const RenderContext& ctx, std::int64_t ref) {
  if (ref < 0) return "";
  for (const auto& f : ctx.facts)
    if (f.id == ref) {
      std::string s = " [fact " + std::to_string(ref);
      if (!f.location.empty()) s += " " + f.location;
      return s + "]";
    }
  return " [fact " + std::to_string(ref) + "]";
}

std::string role(const core::Track& t, std::int32_t i) {
  if (i >= 0 && static_cast<std::size_t>(i) < t.exceptions.required_roles.size())
    return t.exceptions.required_roles[static_cast<std::size_t>(i)];
  return "?";
}

std::string field(const core::Track& t, std::int32_t i) {
  if (i >= 0 && static_cast<std::size_t>(i) < t.exceptions.justification_fields.size())
    return t.exceptions.justification_fields[static_cast<std::size_t>(i)];
  return "?";
}

}  // namespace

std::string describe(const core::Evidence& e, const core::Track& t, const RenderContext& ctx) {
  const std::string when = e.at.time_since_epoch().count() != 0 ? core::formatIso(e.at) : "";
  const std::string ref = factRef(ctx, e.fact_ref);
  const std::string x = "exception #" + std::to_string(e.exception_id);
  switch (e.finding) {
    case Finding::InScope: return "population " + name(ctx, e.item) + " is in scope";
    case Finding::PopulationNotInScope:
      return "population " + name(ctx, e.item) + " is not one this track applies to";
    case Finding::PopulationUnknown: return "population unknown; this track applies only to some populations";
    case Finding::ModuleCompleted: return "module " + name(ctx, e.item) + " completed " + when + ref;
    case Finding::ModuleMissing: return "module " + name(ctx, e.item) + " not completed";
    case Finding::QuizPassed:
      return "quiz passed with " + pct(e.value) + " (minimum " + pct(e.limit) + ") " + when + ref;
    case Finding::QuizFailedAttempt:
      return "quiz attempt scored " + pct(e.value) + ", below the minimum " + pct(e.limit) + " " +
             when + ref;
    case Finding::QuizNotTaken: return "quiz not passed yet (minimum " + pct(e.limit) + ")";
    case Finding::QuizPassNotCounted:
      return "quiz passed " + when + " but after the allowed attempts were used; not counted" + ref;
    case Finding::AttemptsExhausted: {
      const int n = static_cast<int>(e.limit);
      return (n == 1 ? std::string("the only allowed attempt") : "all " + std::to_string(n) + " allowed attempts") +
             " used without a pass: locked out";
    }
    case Finding::AttemptsReset: return "attempts reset " + when + ref;
    case Finding::RenewalNotCounted:
      return name(ctx, e.item) + " on " + when +
             " came before the renewal window opened; it does not count toward renewal" + ref;
    case Finding::CertifiedUntil:
    case Finding::RenewedEarly:
    case Finding::RenewedLate:
    case Finding::LmsExpiryTaken: {
      const core::Instant until{core::Seconds{static_cast<std::int64_t>(e.value)}};
      const bool never = until >= core::kNever;
      std::string s = e.cycle == 0 ? "certified " + when : "renewed " + when;
      if (e.finding == Finding::RenewedEarly) s += " (early: extends from the previous expiry)";
      if (e.finding == Finding::RenewedLate) s += " (after expiry: counts from the renewal date)";
      s += never ? ", does not expire" : ", valid until " + core::formatIso(until);
      if (e.finding == Finding::LmsExpiryTaken) s += " (expiry as computed by the LMS)";
      return s;
    }
    case Finding::Expired: return "certification lapsed; access ended " + when;
    case Finding::PrerequisiteMet: return "prerequisite track " + name(ctx, e.item) + " is entitled";
    case Finding::PrerequisiteNotMet:
      return "prerequisite track " + name(ctx, e.item) + " is not entitled: access withheld";
    case Finding::ExceptionActive: {
      const core::Instant end{core::Seconds{static_cast<std::int64_t>(e.value)}};
      return x + " active until " + core::formatIso(end);
    }
    case Finding::ExceptionNotStarted: return x + " starts " + when;
    case Finding::ExceptionEnded: return x + " ended " + when;
    case Finding::ExceptionRevoked: return x + " revoked " + when;
    case Finding::ExceptionTooLong: {
      char buf[96];
      std::snprintf(buf, sizeof buf, " lasts %.1f days, longer than the allowed %d", e.value,
                    static_cast<int>(e.limit));
      return x + buf;
    }
    case Finding::ExceptionMissingApproval:
      return x + " lacks an approval by a " + role(t, e.index) +
             " (each role by a different person, not the requester)";
    case Finding::ExceptionSelfApproved:
      return x + ": the requester's own approval as " + role(t, e.index) + " does not count";
    case Finding::ExceptionMissingJustification:
      return x + " lacks the justification field " + field(t, e.index);
    case Finding::ExceptionNotAllowed: return x + ": this track allows no exceptions";
    case Finding::FactImpossible:
      return "a record for " + name(ctx, e.item) + " has impossible values and was set aside" + ref +
             " (see certgate quarantine)";
    case Finding::RenewalInProgress:
      return std::string("renewal window open since ") + when +
             (e.met ? "; renewal in progress" : "; nothing done toward renewal yet");
  }
  return "?";
}

std::string nextStep(const core::Verdict& v, const core::Track& t, const RenderContext& ctx) {
  auto missing = [&](int cycle) {
    std::vector<std::string> steps;
    for (const auto& e : v.evidence) {
      if (e.cycle != cycle) continue;
      if (e.finding == Finding::ModuleMissing) steps.push_back("complete " + name(ctx, e.item));
      if (e.finding == Finding::QuizNotTaken || e.finding == Finding::QuizFailedAttempt) {
        const std::string q = "pass the quiz (" + pct(e.limit) + " or more)";
        if (std::find(steps.begin(), steps.end(), q) == steps.end()) steps.push_back(q);
      }
    }
    if (v.attempts_allowed && (v.state != core::State::LockedOut)) {
      const int left = *v.attempts_allowed - v.attempts_used;
      if (left < *v.attempts_allowed && left > 0)
        steps.push_back(std::to_string(left) + (left == 1 ? " attempt" : " attempts") + " left");
    }
    std::string s;
    for (std::size_t i = 0; i < steps.size(); ++i) s += (i ? ", " : "") + steps[i];
    return s;
  };
  bool prereq_missing = false;
  std::string prereqs;
  for (const auto& e : v.evidence)
    if (e.finding == Finding::PrerequisiteNotMet) {
      prereq_missing = true;
      prereqs += (prereqs.empty() ? "" : ", ") + name(ctx, e.item);
    }
  std::string s;
  switch (v.state) {
    case core::State::OutOfScope: return "nothing: this track does not apply";
    case core::State::NotStarted:
    case core::State::InProgress: s = missing(0); break;
    case core::State::LockedOut:
      s = "ask for an attempt reset (certgate attempts reset); attempts are used up";
      break;
    case core::State::Certified:
      s = v.expires_at ? "renew from " + core::formatDate(*v.renewal_opens_at) : "nothing";
      break;
    case core::State::Expiring:
    case core::State::Grace: {
      const std::string steps = missing(v.cycle + 1);
      s = "renew before " + core::formatDate(v.access_ends_at.value_or(ctx.now)) +
          (steps.empty() ? "" : ": " + steps);
      break;
    }
    case core::State::Expired: {
      const std::string steps = missing(v.cycle + 1);
      s = "recertify" + (steps.empty() ? "" : ": " + steps);
      break;
    }
    case core::State::Exception:
      s = "complete the certification before the exception ends " +
          core::formatDate(v.access_ends_at.value_or(ctx.now));
      break;
  }
  (void)t;
  if (prereq_missing) s += (s.empty() ? "" : "; ") + std::string("first get ") + prereqs;
  return s.empty() ? "nothing" : s;
}

namespace {
nlohmann::json instant(const std::optional<core::Instant>& t) {
  return t ? nlohmann::json(core::formatIso(*t)) : nlohmann::json(nullptr);
}
nlohmann::json number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }
}  // namespace

nlohmann::json verdictJson(const core::Verdict& v, const RenderContext& ctx, bool with_evidence) {
  const core::Track* t = findTrack(ctx.policy, v.track);
  nlohmann::json j;
  j["track"] = name(ctx, v.track);
  j["state"] = core::toString(v.state);
  j["entitled"] = v.entitled;
  j["cycle"] = v.cycle;
  j["certified_at"] = instant(v.certified_at);
  j["expires_at"] = instant(v.expires_at);
  j["grace_ends_at"] = instant(v.grace_ends_at);
  j["renewal_opens_at"] = instant(v.renewal_opens_at);
  j["access_ends_at"] = instant(v.access_ends_at);
  j["attempts_used"] = v.attempts_used;
  j["attempts_allowed"] = v.attempts_allowed ? nlohmann::json(*v.attempts_allowed) : nlohmann::json(nullptr);
  j["exception_id"] = v.exception_id ? nlohmann::json(v.exception_id) : nlohmann::json(nullptr);
  if (t) j["next_step"] = nextStep(v, *t, ctx);
  if (with_evidence && t) {
    auto arr = nlohmann::json::array();
    for (const auto& e : v.evidence) {
      nlohmann::json x;
      x["requirement"] = core::toString(e.requirement);
      x["finding"] = core::toString(e.finding);
      x["met"] = e.met;
      x["cycle"] = e.cycle;
      x["item"] = e.item == core::kNoSym ? nlohmann::json(nullptr) : nlohmann::json(name(ctx, e.item));
      x["fact"] = e.fact_ref >= 0 ? nlohmann::json(e.fact_ref) : nlohmann::json(nullptr);
      x["at"] = e.at.time_since_epoch().count() ? nlohmann::json(core::formatIso(e.at)) : nlohmann::json(nullptr);
      x["value"] = number(e.value);
      x["limit"] = number(e.limit);
      if (e.exception_id) x["exception_id"] = e.exception_id;
      x["text"] = describe(e, *t, ctx);
      arr.push_back(std::move(x));
    }
    j["evidence"] = std::move(arr);
  }
  return j;
}

nlohmann::json personJson(const store::PersonRow& p) {
  nlohmann::json j;
  j["key"] = p.key;
  j["employee_id"] = p.employee_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.employee_id);
  j["email"] = p.email.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.email);
  j["name"] = p.display_name;
  j["population"] = p.population.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.population);
  return j;
}

}  // namespace certgate::cli
