// The KPI report (evidence.hpp, "KPI report"): definitions are stated there and in
// docs/operations.md; keep the three in step.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "engine/evaluation.hpp"
#include "engine/evidence.hpp"

namespace certgate::engine {

using json = nlohmann::json;

std::optional<double> percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const auto n = static_cast<double>(values.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

core::Instant isoWeekStart(core::Instant t) {
  const std::int64_t secs = t.time_since_epoch().count();
  std::int64_t day = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  // 1970-01-01 was a Thursday: days since a Monday = (day + 3) mod 7.
  const std::int64_t since_monday = ((day + 3) % 7 + 7) % 7;
  day -= since_monday;
  return core::Instant{core::Seconds{day * 86400}};
}

std::string isoWeek(core::Instant t) {
  // The ISO year is the year of the week's Thursday.
  const core::Instant thursday = isoWeekStart(t) + core::days(3);
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  core::civilFromDays(thursday.time_since_epoch().count() / 86400, y, m, d);
  const std::int64_t jan1 = core::daysFromCivil(y, 1, 1);
  const std::int64_t week = (thursday.time_since_epoch().count() / 86400 - jan1) / 7 + 1;
  return std::to_string(y) + (week < 10 ? "-W0" : "-W") + std::to_string(week);
}

namespace {

// When every required role of the track had an approval by someone other than the requester.
std::optional<core::Instant> approvedAt(const store::ExceptionRow& x,
                                        const settings::LoadedPolicy& policy) {
  auto sym = policy.symbols.find(x.track);
  if (!sym) return std::nullopt;
  const core::Track* track = nullptr;
  for (const auto& t : policy.policy.tracks)
    if (t.id == *sym) track = &t;
  if (!track) return std::nullopt;
  core::Instant last = x.requested_at;
  for (const auto& role : track->exceptions.required_roles) {
    std::optional<core::Instant> first;
    for (const auto& a : x.approvals)
      if (a.role == role && a.approver != x.requester && (!first || a.at < *first)) first = a.at;
    if (!first) return std::nullopt;
    last = std::max(last, *first);
  }
  return last;
}

}  // namespace

core::Result<KpiReport> kpiReport(store::Store& store, const settings::LoadedPolicy& policy,
                                  core::Instant since, core::Instant now) {
  KpiReport out;
  out.since = since;
  out.now = now;
  out.access_target_p95_hours = policy.slo.p95_hours_cert_to_access;
  out.completion_target_pct = policy.slo.completion_pct_within_48h;

  // Access events per (person key, track), oldest first.
  std::map<std::pair<std::string, std::string>, std::vector<core::Instant>> access;
  for (const char* action : {"group.add", "token.issue"}) {
    store::AuditFilter filter;
    filter.since = since;
    filter.action = action;
    auto st = store.forEachAudit(filter, [&](const store::AuditRow& a) {
      const json d = json::parse(a.details_json, nullptr, false);
      std::string track;
      if (d.is_object() && d.contains("track") && d["track"].is_string())
        track = d["track"].get<std::string>();
      const auto slash = a.subject.find('/');
      if (track.empty() && slash != std::string::npos) track = a.subject.substr(slash + 1);
      access[{a.subject.substr(0, slash), track}].push_back(a.at);
    });
    if (!st) return st.error();
  }
  for (auto& [key, times] : access) std::sort(times.begin(), times.end());

  auto evaluation = Evaluation::load(store, policy);
  if (!evaluation) return evaluation.error();
  std::vector<double> hours;
  constexpr core::Seconds kWindow{48 * 3600};
  auto st = evaluation->forEach(now, nullptr, [&](const PersonVerdicts& pv) {
    for (const auto& v : pv.verdicts) {
      if (v.state == core::State::OutOfScope) continue;
      const std::string track(policy.symbols.name(v.track));
      if (v.certified_at && *v.certified_at >= since && *v.certified_at <= now) {
        auto it = access.find({pv.person->key, track});
        std::optional<core::Instant> first;
        if (it != access.end()) {
          auto at = std::lower_bound(it->second.begin(), it->second.end(), *v.certified_at);
          if (at != it->second.end()) first = *at;
        }
        if (first) {
          ++out.access_measured;
          hours.push_back(static_cast<double>((*first - *v.certified_at).count()) / 3600.0);
        } else {
          ++out.access_waiting;
        }
      }
      const core::Instant assigned = pv.person->first_seen;
      if (assigned >= since && assigned + kWindow <= now) {
        ++out.assigned;
        if (v.certified_at && *v.certified_at <= assigned + kWindow) ++out.completed_within_48h;
      }
    }
  });
  if (!st) return st.error();
  out.access_p50_hours = percentile(hours, 50);
  out.access_p95_hours = percentile(hours, 95);
  if (out.assigned > 0)
    out.completion_pct =
        100.0 * static_cast<double>(out.completed_within_48h) / static_cast<double>(out.assigned);

  for (core::Instant w = isoWeekStart(since); w <= now; w += core::days(7))
    out.weeks.push_back(KpiWeek{isoWeek(w), w, 0, 0, 0});
  auto weekOf = [&](core::Instant t) -> KpiWeek* {
    if (out.weeks.empty() || t < out.weeks.front().starts_at) return nullptr;
    const auto index = static_cast<std::size_t>((t - out.weeks.front().starts_at) / core::days(7));
    return index < out.weeks.size() ? &out.weeks[index] : nullptr;
  };
  auto exceptions = store.exceptions();
  if (!exceptions) return exceptions.error();
  for (const auto& x : *exceptions) {
    if (x.requested_at >= since && x.requested_at <= now)
      if (KpiWeek* w = weekOf(x.requested_at)) ++w->requested;
    const auto approved = approvedAt(x, policy);
    if (!approved) continue;
    if (*approved >= since && *approved <= now)
      if (KpiWeek* w = weekOf(*approved)) ++w->approved;
    const core::Instant from = std::max(x.starts_at, *approved);
    const core::Instant to = x.revoked_at ? std::min(x.ends_at, *x.revoked_at) : x.ends_at;
    if (from >= to) continue;
    for (auto& w : out.weeks)
      if (from < w.starts_at + core::days(7) && to > w.starts_at) ++w.active;
  }
  return out;
}

}  // namespace certgate::engine
