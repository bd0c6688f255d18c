#include "engine/reminders.hpp"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/alerts.hpp"
#include "engine/evaluation.hpp"

namespace certgate::engine {

namespace {

using json = nlohmann::json;
using core::State;

constexpr std::string_view kWeekdays[] = {"monday", "tuesday",  "wednesday", "thursday",
                                          "friday", "saturday", "sunday"};

std::int64_t dayNumber(core::Instant t) {
  const auto s = t.time_since_epoch().count();
  return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

// Whole days from `now` to `t`, rounded up: "expires in 1 day" until the last second.
std::int64_t daysUntil(core::Instant now, core::Instant t) {
  const auto s = (t - now).count();
  return s <= 0 ? 0 : (s + 86399) / 86400;
}

std::string plural(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

struct Due {
  const store::PersonRow* person = nullptr;
  std::size_t track = 0;  // policy order
  core::Verdict verdict;
  std::string stage;      // "30d", "7d", "grace"
};

// The narrowest reminder window `now` is inside, in days; 0 when none.
int narrowestWindow(const core::Track& t, const core::Verdict& v, core::Instant now) {
  if (!v.expires_at) return 0;
  int best = 0;
  for (int d : t.remind_before_days)
    if (d > 0 && now >= *v.expires_at - core::days(d) && (best == 0 || d < best)) best = d;
  return best;
}

std::string who(const store::PersonRow& p) {
  if (!p.display_name.empty()) return p.display_name;
  if (!p.email.empty()) return p.email;
  return p.key;
}

std::string requirements(const settings::LoadedPolicy& policy, const core::Track& t) {
  std::string out;
  for (core::Sym m : t.modules) {
    if (!out.empty()) out += ", ";
    out += "module " + std::string(policy.symbols.name(m));
  }
  if (t.quiz) {
    if (!out.empty()) out += ", ";
    char pct[32];
    std::snprintf(pct, sizeof pct, "%g", t.quiz->min_score_pct);
    out += "quiz " + std::string(policy.symbols.name(t.quiz->item)) + " (at least " + pct + "%)";
  }
  return out;
}

ports::Alert personalReminder(const settings::Settings& s, const Due& d, core::Instant now) {
  const settings::LoadedPolicy& policy = *s.policy;
  const auto& info = policy.tracks[d.track];
  const auto& track = policy.policy.tracks[d.track];
  const store::PersonRow& p = *d.person;
  const core::Instant expires = *d.verdict.expires_at;
  const std::string title = info.title.empty() ? info.id : info.title;
  ports::Alert a;
  a.id = "reminder-" + p.key + "-" + info.id + "-" +
         std::to_string(expires.time_since_epoch().count()) + "-" + d.stage;
  a.kind = "reminder";
  a.occurred_at = now;
  a.to = {p.email};
  std::string text = "Hello " + who(p) + ",\n\n";
  json doc{{"id", a.id},
           {"kind", a.kind},
           {"occurred_at", core::formatIso(now)},
           {"alerted_at", core::formatIso(now)},
           {"person", p.key},
           {"track", info.id},
           {"stage", d.stage},
           {"expires_at", core::formatIso(expires)}};
  if (d.stage == "grace") {
    const core::Instant ends = d.verdict.grace_ends_at.value_or(expires);
    a.severity = "warning";
    a.cc = s.reminders.escalate_to;
    a.title = "Your " + title + " certification has expired: access ends on " +
              core::formatDate(ends);
    text += "Your certification \"" + title + "\" expired on " + core::formatDate(expires) +
            ". You keep your access during a grace period that ends on " +
            core::formatDate(ends) + " (in " + plural(daysUntil(now, ends), "day", "days") +
            "). If you have not recertified by then, the access it grants is removed.\n";
    doc["grace_ends_at"] = core::formatIso(ends);
  } else {
    a.severity = "info";
    a.title = "Your " + title + " certification expires on " + core::formatDate(expires);
    text += "Your certification \"" + title + "\" expires on " + core::formatDate(expires) +
            " (in " + plural(daysUntil(now, expires), "day", "days") + ").";
    if (track.grace_days > 0)
      text += " After that you keep your access for " +
              plural(track.grace_days, "more day", "more days") + " of grace.";
    text += "\n";
    if (d.verdict.renewal_opens_at && now >= *d.verdict.renewal_opens_at)
      text += "\nRenewing now costs you nothing: a renewal before the expiry date counts from "
              "that date, not from the day you renew.\n";
  }
  if (const std::string req = requirements(policy, track); !req.empty())
    text += "\nTo recertify, complete: " + req + ".\n";
  if (!s.reminders.learn_url.empty()) text += "\nStart here: " + s.reminders.learn_url + "\n";
  text += "\n(certgate reminder " + d.stage + " for track " + info.id + ")\n";
  a.text = text;
  a.summary = a.title;
  doc["severity"] = a.severity;
  doc["title"] = a.title;
  doc["summary"] = a.summary;
  doc["text"] = a.text;
  doc["recipients"] = {{"to", a.to}, {"cc", a.cc}};
  a.document_json = doc.dump();
  return a;
}

struct DigestEntry {
  const store::PersonRow* person;
  std::size_t track;
  core::Verdict verdict;
};

ports::Alert digestAlert(const settings::Settings& s, core::Instant day, core::Instant now,
                         std::vector<DigestEntry> expiring, std::vector<DigestEntry> grace,
                         std::int64_t no_address) {
  const settings::LoadedPolicy& policy = *s.policy;
  const int horizon = s.reminders.digest_horizon_days;
  auto byExpiry = [](const DigestEntry& a, const DigestEntry& b) {
    return *a.verdict.expires_at < *b.verdict.expires_at;
  };
  std::sort(expiring.begin(), expiring.end(), byExpiry);
  std::sort(grace.begin(), grace.end(), byExpiry);
  ports::Alert a;
  a.id = "expiring-digest-" + core::formatDate(day);
  a.kind = "expiring.digest";
  a.severity = "info";
  a.occurred_at = now;
  a.title = "Certifications expiring within " + std::to_string(horizon) + " days: " +
            std::to_string(expiring.size()) + ", in grace: " + std::to_string(grace.size());
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> per_track;
  for (const auto& e : expiring) ++per_track[policy.tracks[e.track].id].first;
  for (const auto& e : grace) ++per_track[policy.tracks[e.track].id].second;
  std::string summary = plural(static_cast<std::int64_t>(expiring.size()), "person", "people") +
                        " expire within " + std::to_string(horizon) + " days, " +
                        std::to_string(grace.size()) + " in grace";
  if (!per_track.empty()) {
    summary += " (";
    bool first = true;
    for (const auto& [track, n] : per_track) {
      summary += (first ? "" : "; ") + track + ": " + std::to_string(n.first) + " expiring, " +
                 std::to_string(n.second) + " in grace";
      first = false;
    }
    summary += ")";
  }
  if (no_address > 0)
    summary += "; " + plural(no_address, "person has", "people have") +
               " no email address for reminders";
  a.summary = summary;

  const auto limit = static_cast<std::size_t>(s.reminders.digest_max_people);
  std::size_t listed = 0;
  std::string text = a.summary + ".\n";
  auto list = [&](const std::vector<DigestEntry>& entries, const char* heading, bool in_grace) {
    json out = json::array();
    if (entries.empty()) return out;
    text += std::string("\n") + heading + ":\n";
    for (const auto& e : entries) {
      if (listed >= limit) break;
      ++listed;
      const auto& info = policy.tracks[e.track];
      const core::Instant ends =
          in_grace ? e.verdict.grace_ends_at.value_or(*e.verdict.expires_at) : *e.verdict.expires_at;
      json item{{"person", e.person->key},
                {"name", e.person->display_name},
                {"email", e.person->email},
                {"track", info.id},
                {"state", core::toString(e.verdict.state)},
                {"expires_at", core::formatIso(*e.verdict.expires_at)}};
      if (in_grace) item["grace_ends_at"] = core::formatIso(ends);
      out.push_back(std::move(item));
      text += "  " + core::formatDate(ends) + "  " + info.id + "  " + who(*e.person) +
              (e.person->email.empty() ? "  (no email address)" : "") + "\n";
    }
    return out;
  };
  json doc{{"id", a.id},
           {"kind", a.kind},
           {"severity", a.severity},
           {"occurred_at", core::formatIso(now)},
           {"alerted_at", core::formatIso(now)},
           {"title", a.title},
           {"summary", a.summary},
           {"period", core::formatDate(day)},
           {"horizon_days", horizon},
           {"expiring_count", expiring.size()},
           {"grace_count", grace.size()},
           {"no_address_count", no_address}};
  doc["grace"] = list(grace, "In grace (access ends on the date shown)", true);
  doc["expiring"] = list(expiring, "Expiring (on the date shown)", false);
  const bool truncated = listed < expiring.size() + grace.size();
  doc["truncated"] = truncated;
  if (truncated)
    text += "\n... and " + std::to_string(expiring.size() + grace.size() - listed) +
            " more: certgate status --state expiring (or grace) lists everybody.\n";
  a.text = text;
  doc["text"] = a.text;
  a.document_json = doc.dump();
  return a;
}

}  // namespace

std::optional<core::Instant> digestDay(const std::string& every, core::Instant now) {
  if (every == "off" || every.empty()) return std::nullopt;
  std::int64_t day = dayNumber(now);
  if (every != "daily") {
    const auto wanted = std::find(std::begin(kWeekdays), std::end(kWeekdays), every);
    if (wanted == std::end(kWeekdays)) return std::nullopt;
    // Day 0 (1970-01-01) was a Thursday: Monday-based weekday = (day + 3) mod 7.
    const std::int64_t weekday = ((day + 3) % 7 + 7) % 7;
    const std::int64_t target = wanted - std::begin(kWeekdays);
    day -= ((weekday - target) % 7 + 7) % 7;
  }
  return core::Instant{core::days(day)};
}

core::Result<ReminderResult> collectReminders(store::Store& store,
                                              const settings::Settings& settings,
                                              core::Instant now) {
  ReminderResult out;
  const settings::RemindersSettings& cfg = settings.reminders;
  if (!cfg.configured || !settings.policy) return out;
  const bool personal = !cfg.sink.empty();
  const auto day = settings.alerts.configured ? digestDay(cfg.digest_every, now) : std::nullopt;
  if (!personal && !day) return out;

  const settings::LoadedPolicy& policy = *settings.policy;
  auto evaluation = Evaluation::load(store, policy);
  if (!evaluation) return evaluation.error();
  std::vector<Due> due;
  std::vector<DigestEntry> expiring, grace;
  const core::Instant horizon = now + core::days(cfg.digest_horizon_days);
  auto walked = evaluation->forEach(now, nullptr, [&](const PersonVerdicts& pv) {
    for (std::size_t i = 0; i < pv.verdicts.size() && i < policy.policy.tracks.size(); ++i) {
      const core::Verdict& v = pv.verdicts[i];
      if (!v.expires_at) continue;
      if (v.state == State::Grace) {
        due.push_back({pv.person, i, v, "grace"});
        grace.push_back({pv.person, i, v});
        continue;
      }
      if (v.state != State::Certified && v.state != State::Expiring) continue;
      if (*v.expires_at <= horizon) expiring.push_back({pv.person, i, v});
      if (const int w = narrowestWindow(policy.policy.tracks[i], v, now); w > 0)
        due.push_back({pv.person, i, v, std::to_string(w) + "d"});
    }
  });
  if (!walked) return walked.error();

  std::vector<ports::Alert> personal_alerts;
  for (const auto& d : due) {
    ++out.due;
    if (d.person->email.empty()) {
      ++out.no_address;
      continue;
    }
    if (personal) personal_alerts.push_back(personalReminder(settings, d, now));
  }
  std::optional<ports::Alert> digest;
  if (day) {
    out.expiring = static_cast<std::int64_t>(expiring.size());
    out.in_grace = static_cast<std::int64_t>(grace.size());
    digest = digestAlert(settings, *day, now, std::move(expiring), std::move(grace), out.no_address);
    out.digest_id = digest->id;
  }

  auto tx = store.begin();
  if (!tx) return tx.error();
  auto put = [&](const ports::Alert& a, const std::string& sink) {
    return store.enqueueAlert(outboxRow(a, sink, now));
  };
  for (const auto& a : personal_alerts) {
    auto added = put(a, cfg.sink);
    if (!added) return added.error();
    out.enqueued += *added ? 1 : 0;
  }
  if (digest) {
    for (const auto& sink : routeAlert(settings.alerts, digest->kind, digest->severity)) {
      auto added = put(*digest, sink);
      if (!added) return added.error();
      out.digest_rows += *added ? 1 : 0;
    }
  }
  if (auto c = tx->commit(); !c) return c.error();
  return out;
}

}  // namespace certgate::engine
