#include "engine/alerts.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <unordered_map>

namespace certgate::engine {

using nlohmann::json;
using core::ErrorKind;

namespace {

constexpr std::int64_t kBatch = 500;
// A run still "running" after this long was interrupted: the runs cursor moves past it.
constexpr core::Seconds kAbandonedRun{86400};

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

json parseDetails(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

// Keeps a line within `limit` bytes without cutting a UTF-8 sequence.
std::string clip(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t cut = limit - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

// One alert under construction: the fields sinks need plus the document.
struct Draft {
  ports::Alert alert;
  json doc = json::object();
};

Draft draft(const std::string& id, const std::string& kind, const std::string& severity,
            core::Instant occurred_at, core::Instant now) {
  Draft d;
  d.alert.id = id;
  d.alert.kind = kind;
  d.alert.severity = severity;
  d.alert.occurred_at = occurred_at;
  d.doc["id"] = id;
  d.doc["kind"] = kind;
  d.doc["severity"] = severity;
  d.doc["occurred_at"] = core::formatIso(occurred_at);
  d.doc["alerted_at"] = core::formatIso(now);
  return d;
}

ports::Alert finish(Draft d, std::string title, std::string summary) {
  d.alert.title = clip(std::move(title), 250);
  d.alert.summary = clip(std::move(summary), 1024);
  d.doc["title"] = d.alert.title;
  d.doc["summary"] = d.alert.summary;
  if (!d.alert.follows.empty()) d.doc["follows"] = d.alert.follows;
  d.alert.document_json = d.doc.dump();
  return std::move(d.alert);
}

json evidence(const store::AuditRow& row, const json& details) {
  json e{{"audit_id", row.id}, {"actor", row.actor}, {"action", row.action}};
  if (row.run_id) e["run_id"] = row.run_id;
  if (auto p = str(details, "plan"); !p.empty()) e["plan_id"] = p;
  return e;
}

// Start of the window of length `per` that holds `t` (UTC calendar boundaries).
core::Instant windowStart(core::Instant t, const std::string& per) {
  const std::int64_t s = t.time_since_epoch().count();
  const auto floorDiv = [](std::int64_t a, std::int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
  };
  std::int64_t start = s;
  if (per == "minute") start = floorDiv(s, 60) * 60;
  else if (per == "hour") start = floorDiv(s, 3600) * 3600;
  else if (per == "week") start = (floorDiv(floorDiv(s, 86400) + 3, 7) * 7 - 3) * 86400;  // Monday
  else if (per == "month") {
    std::int64_t y;
    unsigned m, d;
    core::civilFromDays(floorDiv(s, 86400), y, m, d);
    start = core::daysFromCivil(y, m, 1) * 86400;
  } else start = floorDiv(s, 86400) * 86400;  // day
  return core::Instant{core::Seconds{start}};
}

core::Instant windowEnd(core::Instant start, const std::string& per) {
  if (per == "minute") return start + core::Seconds{60};
  if (per == "hour") return start + core::Seconds{3600};
  if (per == "week") return start + core::days(7);
  if (per == "month") {
    std::int64_t y;
    unsigned m, d;
    core::civilFromDays(start.time_since_epoch().count() / 86400, y, m, d);
    if (++m > 12) {
      m = 1;
      ++y;
    }
    return core::Instant{core::Seconds{core::daysFromCivil(y, m, 1) * 86400}};
  }
  return start + core::days(1);
}

std::string windowLabel(core::Instant start, const std::string& per) {
  const std::string iso = core::formatIso(start);  // 2026-11-25T00:00:00Z
  if (per == "minute") return iso.substr(0, 16);
  if (per == "hour") return iso.substr(0, 13);
  if (per == "month") return iso.substr(0, 7);
  return iso.substr(0, 10);
}

bool isForPeople(const std::string& kind) {
  return kind == "reminder" || kind == "expiring.digest";
}

bool isSurgeThreshold(const settings::AlertThreshold& t) {
  return t.name == "exception-surge" ||
         (t.unit.find("exception") != std::string::npos && t.name.find("surge") != std::string::npos);
}

class Mapper {
 public:
  Mapper(store::Store& store, const settings::Settings& settings, core::Instant now)
      : store_(store), settings_(settings), now_(now) {}

  core::Status audit(const store::AuditRow& row, std::vector<ports::Alert>& out) {
    const json d = parseDetails(row.details_json);
    const std::string& a = row.action;
    if (a == "group.remove") return groupRemoval(row, d, out);
    if (a == "group.remove.failed") return groupRemovalFailed(row, d, out);
    if (a == "token.revoke") return tokenRevocation(row, d, out);
    if (a == "token.revoke.verified") return tokenVerified(row, d, out);
    if (a == "token.revoke.not_enforced") return tokenNotEnforced(row, d, out);
    if (a == "plan.held") return planHeld(row, d, out);
    if (a == "directory.quarantined" || a == "gateway.quarantined")
      return quarantined(row, d, out);
    if (a == "exception.request") return exceptionRequested(row, d, out);
    return {};
  }

  void run(const store::RunRow& r, std::vector<ports::Alert>& out) {
    if (r.outcome != "failed" && r.outcome != "partial") return;
    const bool failed = r.outcome == "failed";
    const core::Instant at = r.finished_at.value_or(r.started_at);
    Draft d = draft("run-" + std::to_string(r.id) + "-" + r.outcome,
                    failed ? "sync.failed" : "sync.partial", failed ? "error" : "warning", at,
                    now_);
    const json summary = parseDetails(r.summary_json);
    d.doc["run"] = {{"id", r.id}, {"kind", r.kind}, {"outcome", r.outcome},
                    {"started_at", core::formatIso(r.started_at)}};
    d.doc["details"] = summary;
    d.doc["evidence"] = {{"run_id", r.id}};
    std::string why = str(summary, "error");
    if (why.empty() && !failed) why = "some changes failed, a connector was down or a source is incomplete";
    out.push_back(finish(std::move(d),
                         std::string(failed ? "Sync failed" : "Sync partly done") + " (run " +
                             std::to_string(r.id) + ")",
                         std::string("certgate ") + r.kind + " run " + std::to_string(r.id) +
                             (failed ? " failed" : " finished partly") +
                             (why.empty() ? "" : ": " + why) + "; see certgate status"));
  }

  void fetch(const store::FetchRow& f, const std::string& source,
             std::vector<ports::Alert>& out) {
    if (f.complete) return;
    Draft d = draft("fetch-" + std::to_string(f.id) + "-incomplete", "source.incomplete",
                    "warning", f.finished_at, now_);
    d.doc["source"] = {{"name", source},           {"problem", f.problem},
                       {"records", f.records},     {"units_seen", f.units_seen},
                       {"units_skipped", f.units_skipped}, {"quarantined", f.quarantined}};
    d.doc["evidence"] = {{"fetch_id", f.id}};
    if (f.run_id) d.doc["evidence"]["run_id"] = f.run_id;
    out.push_back(finish(std::move(d), "Source incomplete: " + source,
                         "the last fetch of source " + source + " was incomplete (" +
                             (f.problem.empty() ? std::string("no reason given") : f.problem) +
                             "): removals that depend on its data are held until a complete "
                             "fetch"));
  }

 private:
  json person(const std::string& key) {
    json p{{"key", key}};
    if (key.empty()) return p;
    auto found = people_.find(key);
    if (found == people_.end()) {
      auto row = store_.findPerson(key);
      std::optional<store::PersonRow> value;
      if (row && *row) value = **row;
      found = people_.emplace(key, std::move(value)).first;
    }
    if (found->second) {
      if (!found->second->email.empty()) p["email"] = found->second->email;
      if (!found->second->employee_id.empty()) p["employee_id"] = found->second->employee_id;
      if (!found->second->display_name.empty()) p["name"] = found->second->display_name;
    }
    return p;
  }

  static std::string who(const json& p) {
    std::string w = p.value("key", "");
    if (p.contains("email") && p["email"] != p["key"]) w += " <" + p["email"].get<std::string>() + ">";
    return w;
  }

  core::Status groupRemoval(const store::AuditRow& row, const json& det,
                            std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "revocation", "warning", row.at, now_);
    const json p = person(row.subject);
    const std::string target = str(det, "directory") + "/" + str(det, "group");
    d.doc["person"] = p;
    d.doc["access"] = {{"type", "group"},
                       {"directory", str(det, "directory")},
                       {"group", str(det, "group")},
                       {"group_id", str(det, "group_id")},
                       {"user_id", str(det, "user_id")}};
    d.doc["rule"] = {{"track", str(det, "track")},
                     {"reason", str(det, "reason")},
                     {"state", str(det, "state")},
                     {"why", str(det, "why")}};
    const bool no_op = det.value("no_op", false);
    d.doc["action"] = "group.remove";
    d.doc["outcome"] = no_op ? "already absent" : "removed";
    // The directory answered the removal itself: no cache stands between it and enforcement.
    d.doc["enforcement"] = {{"state", "applied"}, {"verified", true}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    const std::string why = str(det, "why").empty() ? str(det, "reason") : str(det, "why");
    out.push_back(finish(std::move(d), "Access revoked: " + row.subject + " removed from " + target,
                         who(p) + " was removed from " + target +
                             (str(det, "track").empty() ? "" : " (track " + str(det, "track") + ")") +
                             ": " + why + " [evidence: audit " + std::to_string(row.id) +
                             (str(det, "plan").empty() ? "" : ", plan " + str(det, "plan")) + "]"));
    return {};
  }

  core::Status groupRemovalFailed(const store::AuditRow& row, const json& det,
                                  std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "revocation.failed", "error", row.at, now_);
    const json p = person(row.subject);
    const std::string target = str(det, "directory") + "/" + str(det, "group");
    d.doc["person"] = p;
    d.doc["access"] = {{"type", "group"}, {"directory", str(det, "directory")},
                       {"group", str(det, "group")}};
    d.doc["error"] = str(det, "error");
    d.doc["enforcement"] = {{"state", "failed"}, {"verified", false}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    out.push_back(finish(std::move(d), "Revocation failed: " + row.subject + " in " + target,
                         "removing " + who(p) + " from " + target + " failed: " +
                             str(det, "error") + "; the next sync tries again"));
    return {};
  }

  core::Status tokenRevocation(const store::AuditRow& row, const json& det,
                               std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "revocation", "warning", row.at, now_);
    const std::string key = str(det, "person").empty() ? row.subject : str(det, "person");
    const json p = person(key);
    const std::string enforcement =
        str(det, "enforcement").empty() ? std::string("enforced") : str(det, "enforcement");
    d.doc["person"] = p;
    d.doc["access"] = {{"type", "token"},
                       {"gateway", str(det, "gateway")},
                       {"token_id", str(det, "token_id")},
                       {"alias", str(det, "alias")},
                       {"scope", str(det, "scope")}};
    d.doc["rule"] = {{"track", str(det, "track")},
                     {"reason", str(det, "reason")},
                     {"cause", str(det, "cause")},
                     {"state", str(det, "state")}};
    d.doc["action"] = "token.revoke";
    d.doc["outcome"] = "revoked";
    d.doc["enforcement"] = {{"state", enforcement}, {"verified", enforcement == "enforced"}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    const std::string target = str(det, "gateway") + " token " + str(det, "alias");
    std::string why = str(det, "reason");
    if (why.empty()) why = str(det, "why");
    out.push_back(finish(
        std::move(d), "Access revoked: " + key + " token on " + str(det, "gateway"),
        who(p) + ": " + target + (str(det, "scope").empty() ? "" : " (scope " + str(det, "scope") + ")") +
            " revoked: " + why + "; enforcement " + enforcement + " [evidence: audit " +
            std::to_string(row.id) +
            (str(det, "plan").empty() ? "" : ", plan " + str(det, "plan")) + "]"));
    return {};
  }

  // The revocation alert a follow-up belongs to: the last token.revoke of the same token.
  core::Result<std::string> revocationOf(const store::AuditRow& row, const json& det) {
    const std::string token_id = str(det, "token_id");
    if (token_id.empty()) return std::string();
    auto found = store_.lastAuditWith("token.revoke", "token_id", token_id, row.id);
    if (!found) return found.error();
    return *found ? "audit-" + std::to_string((*found)->id) : std::string();
  }

  core::Status tokenVerified(const store::AuditRow& row, const json& det,
                             std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "revocation.verified", "info", row.at, now_);
    auto follows = revocationOf(row, det);
    if (!follows) return follows.error();
    d.alert.follows = *follows;
    const std::string state = str(det, "enforcement");
    d.doc["access"] = {{"type", "token"}, {"gateway", str(det, "gateway")},
                       {"token_id", str(det, "token_id")}, {"alias", str(det, "alias")},
                       {"scope", str(det, "scope")}};
    d.doc["enforcement"] = {{"state", state}, {"verified", state == "enforced"}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    out.push_back(finish(std::move(d), "Revocation verified: token " + str(det, "alias"),
                         "token " + str(det, "alias") + " on " + str(det, "gateway") +
                             (state == "enforced" ? " is refused by the gateway now"
                                                  : " could not be checked (" + state + ")") +
                             (follows->empty() ? "" : "; follows " + *follows)));
    return {};
  }

  core::Status tokenNotEnforced(const store::AuditRow& row, const json& det,
                                std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "token.not_enforced", "critical", row.at,
                    now_);
    auto follows = revocationOf(row, det);
    if (!follows) return follows.error();
    d.alert.follows = *follows;
    const std::string key = str(det, "person").empty() ? row.subject : str(det, "person");
    d.doc["person"] = person(key);
    d.doc["access"] = {{"type", "token"}, {"gateway", str(det, "gateway")},
                       {"token_id", str(det, "token_id")}, {"alias", str(det, "alias")},
                       {"scope", str(det, "scope")}};
    d.doc["enforcement"] = {{"state", "not_enforced"}, {"verified", false}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    out.push_back(finish(std::move(d), "Revoked token still accepted: " + str(det, "alias"),
                         "token " + str(det, "alias") + " on " + str(det, "gateway") +
                             " was revoked but the gateway still accepts it: block it at the "
                             "gateway by hand and check its key cache [evidence: audit " +
                             std::to_string(row.id) + "]"));
    return {};
  }

  core::Status planHeld(const store::AuditRow& row, const json& det,
                        std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "plan.held", "error", row.at, now_);
    d.doc["plan"] = det;
    d.doc["evidence"] = evidence(row, det);
    const std::string plan = str(det, "plan").empty() ? row.subject : str(det, "plan");
    d.doc["evidence"]["plan_id"] = plan;
    out.push_back(finish(std::move(d), "Plan held by the blast-radius brake: " + plan,
                         "plan " + plan + " would remove " + str(det, "removals") +
                             " grant(s), above the limit of " + str(det, "threshold") +
                             ": nothing was removed. Review with certgate plans show " + plan +
                             ", then approve it or fix the source"));
    return {};
  }

  core::Status quarantined(const store::AuditRow& row, const json& det,
                           std::vector<ports::Alert>& out) {
    Draft d = draft("audit-" + std::to_string(row.id), "connector.quarantined", "error", row.at,
                    now_);
    const bool directory = row.action == "directory.quarantined";
    d.doc["connector"] = {{"type", directory ? "directory" : "gateway"}, {"name", row.subject}};
    d.doc["evidence"] = evidence(row, det);
    d.doc["details"] = det;
    std::string why = str(det, "error");
    if (why.empty() && det.contains("failed"))
      why = str(det, "failed") + " of " + str(det, "tried") + " changes failed";
    out.push_back(finish(std::move(d),
                         std::string(directory ? "Directory" : "Gateway") + " quarantined: " +
                             row.subject,
                         std::string(directory ? "directory " : "gateway ") + row.subject +
                             " is stopped for this run" + (why.empty() ? "" : ": " + why) +
                             "; its changes wait until it answers again"));
    return {};
  }

  core::Status exceptionRequested(const store::AuditRow& row, const json& det,
                                  std::vector<ports::Alert>& out) {
    {
      Draft d = draft("audit-" + std::to_string(row.id), "exception.requested", "info", row.at,
                      now_);
      d.doc["person"] = person(row.subject);
      d.doc["exception"] = det;
      d.doc["requester"] = row.actor;
      d.doc["evidence"] = evidence(row, det);
      std::string what = str(det, "track");
      out.push_back(finish(std::move(d), "Exception requested for " + row.subject,
                           row.actor + " asked for an exception for " + row.subject +
                               (what.empty() ? "" : " on track " + what) +
                               ": approvers, see certgate exceptions list"));
    }
    for (const auto& t : settings_.policy ? settings_.policy->alerts
                                          : std::vector<settings::AlertThreshold>{}) {
      if (!isSurgeThreshold(t)) continue;
      const core::Instant from = windowStart(row.at, t.per);
      const core::Instant to = windowEnd(from, t.per);
      auto count = store_.countAudit("exception.request", from, to, row.id);
      if (!count) return count.error();
      const bool over = t.inclusive ? static_cast<double>(*count) >= t.limit
                                    : static_cast<double>(*count) > t.limit;
      if (!over) continue;
      const std::string label = windowLabel(from, t.per);
      Draft d = draft(t.name + "-" + label, "exception.surge", "warning", row.at, now_);
      d.doc["threshold"] = {{"name", t.name}, {"threshold", t.threshold}, {"limit", t.limit},
                            {"per", t.per}, {"notify", t.notify}};
      d.doc["window"] = {{"from", core::formatIso(from)}, {"to", core::formatIso(to)}};
      d.doc["count"] = *count;
      d.doc["evidence"] = {{"audit_id", row.id}};
      out.push_back(finish(std::move(d), "Exception surge: " + std::to_string(*count) +
                                             " requests in the " + t.per + " of " + label,
                           std::to_string(*count) + " exception requests in the " + t.per +
                               " starting " + core::formatIso(from) + " (threshold " +
                               t.threshold + "): review certgate exceptions list"));
    }
    return {};
  }

  store::Store& store_;
  const settings::Settings& settings_;
  core::Instant now_;
  std::unordered_map<std::string, std::optional<store::PersonRow>> people_;
};

}  // namespace

int severityRank(const std::string& severity) {
  for (int i = 0; i < 4; ++i)
    if (severity == settings::kAlertSeverities[i]) return i;
  return -1;
}

double defaultRatePerMinute(const std::string& sink_kind) {
  if (sink_kind == "slack" || sink_kind == "teams") return 60;  // about 1 per second
  if (sink_kind == "pagerduty") return 120;
  if (sink_kind == "email") return 30;
  if (sink_kind == "syslog") return 6000;
  return 600;
}

bool alertKindMatches(const std::string& pattern, const std::string& kind) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*')
    return kind.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
  return pattern == kind;
}

std::vector<std::string> routeAlert(const settings::AlertsSettings& alerts,
                                    const std::string& kind, const std::string& severity) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  if (alerts.routes.empty()) {
    for (const auto& s : alerts.sinks) add(s.name);
    return out;
  }
  for (const auto& r : alerts.routes) {
    if (severityRank(severity) < severityRank(r.min_severity)) continue;
    if (std::none_of(r.events.begin(), r.events.end(),
                     [&](const std::string& p) { return alertKindMatches(p, kind); }))
      continue;
    for (const auto& s : r.sinks) add(s);
  }
  // Configuration order, whatever the routes' order.
  std::vector<std::string> ordered;
  for (const auto& s : alerts.sinks)
    if (std::find(out.begin(), out.end(), s.name) != out.end()) ordered.push_back(s.name);
  return ordered;
}

AlertCollector::AlertCollector(store::Store& store, const settings::Settings& settings)
    : store_(store), settings_(settings) {}

ports::Alert AlertCollector::testAlert(core::Instant now) {
  const std::string id = "test-" + std::to_string(now.time_since_epoch().count());
  Draft d = draft(id, "test", "info", now, now);
  d.doc["evidence"] = json::object();
  return finish(std::move(d), "certgate test alert",
                "a test alert from certgate (certgate alerts test): this sink works");
}

core::Result<CollectResult> AlertCollector::collect(core::Instant now) {
  CollectResult out;
  const settings::AlertsSettings& cfg = settings_.alerts;
  if (!cfg.configured || cfg.sinks.empty()) return out;
  const core::Instant oldest = now - cfg.max_age;
  auto tx = store_.begin();
  if (!tx) return tx.error();
  Mapper mapper(store_, settings_, now);
  std::vector<ports::Alert> alerts;
  auto enqueue = [&]() -> core::Status {
    for (const auto& a : alerts) {
      ++out.alerts;
      const auto sinks = routeAlert(cfg, a.kind, a.severity);
      if (sinks.empty()) ++out.unrouted;
      for (const auto& sink : sinks) {
        auto added = store_.enqueueAlert(outboxRow(a, sink, now));
        if (!added) return added.error();
        out.enqueued += *added ? 1 : 0;
      }
    }
    alerts.clear();
    return {};
  };

  // Audit rows.
  auto cursor = store_.alertCursor("audit");
  if (!cursor) return cursor.error();
  std::int64_t audit_at = *cursor;
  for (;;) {
    auto rows = store_.auditAfter(audit_at, kBatch);
    if (!rows) return rows.error();
    for (const auto& r : *rows) {
      if (r.at >= oldest)
        if (auto m = mapper.audit(r, alerts); !m) return m.error();
      audit_at = r.id;
    }
    if (auto e = enqueue(); !e) return e.error();
    if (static_cast<std::int64_t>(rows->size()) < kBatch) break;
  }

  // Finished runs, in order; a run still going holds the cursor.
  auto run_cursor = store_.alertCursor("runs");
  if (!run_cursor) return run_cursor.error();
  std::int64_t run_at = *run_cursor;
  for (bool more = true; more;) {
    auto rows = store_.runsAfter(run_at, kBatch);
    if (!rows) return rows.error();
    more = static_cast<std::int64_t>(rows->size()) == kBatch;
    for (const auto& r : *rows) {
      if (!r.finished_at || r.outcome == "running") {
        if (r.started_at + kAbandonedRun > now) {
          more = false;
          break;
        }
      } else if (*r.finished_at >= oldest) {
        mapper.run(r, alerts);
      }
      run_at = r.id;
    }
    if (auto e = enqueue(); !e) return e.error();
  }

  // Fetches.
  auto fetch_cursor = store_.alertCursor("fetches");
  if (!fetch_cursor) return fetch_cursor.error();
  std::int64_t fetch_at = *fetch_cursor;
  auto sources = store_.sources();
  if (!sources) return sources.error();
  std::unordered_map<std::int64_t, std::string> source_names;
  for (const auto& s : *sources) source_names[s.id] = s.name;
  for (;;) {
    auto rows = store_.fetchesAfter(fetch_at, kBatch);
    if (!rows) return rows.error();
    for (const auto& f : *rows) {
      if (f.finished_at >= oldest) mapper.fetch(f, source_names[f.source_id], alerts);
      fetch_at = f.id;
    }
    if (auto e = enqueue(); !e) return e.error();
    if (static_cast<std::int64_t>(rows->size()) < kBatch) break;
  }

  if (auto s = store_.setAlertCursor("audit", audit_at); !s) return s.error();
  if (auto s = store_.setAlertCursor("runs", run_at); !s) return s.error();
  if (auto s = store_.setAlertCursor("fetches", fetch_at); !s) return s.error();
  if (auto c = tx->commit(); !c) return c.error();
  return out;
}

store::AlertOutboxRow outboxRow(const ports::Alert& alert, const std::string& sink,
                                core::Instant now) {
  store::AlertOutboxRow row;
  row.sink = sink;
  row.dedup_id = alert.id;
  row.kind = alert.kind;
  row.severity = alert.severity;
  row.payload_json = alert.document_json;
  row.created_at = now;
  row.next_attempt_at = now;
  return row;
}

core::Result<ports::Alert> alertFromRow(const store::AlertOutboxRow& row) {
  auto doc = json::parse(row.payload_json, nullptr, false);
  if (!doc.is_object())
    return core::makeError(ErrorKind::Corrupt, "the stored alert is not a JSON object",
                           "alert outbox row " + std::to_string(row.id));
  ports::Alert a;
  a.id = row.dedup_id;
  a.kind = row.kind;
  a.severity = row.severity;
  a.title = doc.value("title", row.kind);
  a.summary = doc.value("summary", a.title);
  a.follows = doc.value("follows", "");
  a.occurred_at = core::parseIso(doc.value("occurred_at", "")).value_or(row.created_at);
  a.document_json = row.payload_json;
  if (auto r = doc.find("recipients"); r != doc.end() && r->is_object()) {
    for (const char* field : {"to", "cc"}) {
      auto list = r->find(field);
      if (list == r->end() || !list->is_array()) continue;
      auto& out = std::string_view(field) == "to" ? a.to : a.cc;
      for (const auto& v : *list)
        if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  a.text = doc.value("text", "");
  return a;
}

// ---------------------------------------------------------------------------------------------
// Dispatcher

AlertDispatcher::AlertDispatcher(store::Store& store, const settings::AlertsSettings& alerts,
                                 std::vector<AlertSinkHandle> sinks, DispatchOptions options)
    : store_(store), alerts_(alerts), sinks_(std::move(sinks)), options_(std::move(options)) {
  if (!options_.steady_now) options_.steady_now = [] { return std::chrono::steady_clock::now(); };
  if (!options_.sleep) options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!options_.random01) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random01 = [engine] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
    };
  }
  if (!options_.redact) options_.redact = [](std::string_view s) { return std::string(s); };
}

core::Seconds AlertDispatcher::backoff(int failed_attempts, long retry_after_s) const {
  const double base = static_cast<double>(alerts_.retry_base.count());
  const double cap = static_cast<double>(alerts_.retry_max.count());
  const int exponent = std::clamp(failed_attempts - 1, 0, 40);
  const double full = std::min(cap, base * std::pow(2.0, exponent));
  const double jittered = full / 2 + full / 2 * options_.random01();
  const auto delay = static_cast<std::int64_t>(std::ceil(jittered));
  return core::Seconds{std::max<std::int64_t>({delay, 1, retry_after_s})};
}

core::Result<DeliverResult> AlertDispatcher::deliverDue(core::Instant now,
                                                        std::chrono::milliseconds budget) {
  using std::chrono::milliseconds;
  DeliverResult out;
  const auto deadline = options_.steady_now() + budget;
  auto due = store_.dueAlerts(now, 10'000);
  if (!due) return due.error();
  // Messages to people (reminders, the digest) after everything else: a queue of reminders,
  // paced for the mail server, never holds back an alert for security within the budget.
  std::stable_sort(due->begin(), due->end(),
                   [](const store::AlertOutboxRow& a, const store::AlertOutboxRow& b) {
                     return isForPeople(a.kind) < isForPeople(b.kind);
                   });
  std::vector<std::string> stopped;  // sinks not tried again in this call
  auto isStopped = [&](const std::string& s) {
    return std::find(stopped.begin(), stopped.end(), s) != stopped.end();
  };
  for (const auto& row : *due) {
    const auto handle = std::find_if(sinks_.begin(), sinks_.end(),
                                     [&](const AlertSinkHandle& h) { return h.name == row.sink; });
    const bool expired = now - row.created_at >= alerts_.max_age;
    if (handle == sinks_.end() || handle->sink == nullptr) {
      // The sink left the configuration: the row waits for it until it is too old.
      if (expired) {
        if (auto m = store_.markAlertDead(row.id, now, "sink '" + row.sink + "' is not configured");
            !m)
          return m.error();
        ++out.dead;
      } else {
        ++out.deferred;
      }
      continue;
    }
    if (isStopped(row.sink)) {
      ++out.deferred;
      continue;
    }
    Pace& pace = pace_[row.sink];
    auto now_steady = options_.steady_now();
    if (pace.next_send > now_steady) {
      if (pace.next_send >= deadline) {
        stopped.push_back(row.sink);
        ++out.deferred;
        continue;
      }
      options_.sleep(std::chrono::duration_cast<milliseconds>(pace.next_send - now_steady));
      now_steady = options_.steady_now();
    }
    if (now_steady >= deadline) {
      ++out.deferred;
      continue;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now_steady);
    const auto timeout = std::max(milliseconds{200}, std::min(handle->timeout, left));
    auto alert = alertFromRow(row);
    core::Status sent = alert ? handle->sink->send(*alert, now, timeout) : core::Status(alert.error());
    ++out.attempted;
    const double rate = handle->rate_per_minute > 0 ? handle->rate_per_minute : 60;
    pace.next_send = options_.steady_now() +
                     milliseconds{static_cast<std::int64_t>(std::ceil(60'000.0 / rate))};
    if (sent) {
      if (auto m = store_.markAlertDelivered(row.id, now); !m) return m.error();
      ++out.delivered;
      continue;
    }
    const core::Error& e = sent.error();
    const std::string why = options_.redact(e.describe());
    out.problems.push_back("alert sink " + row.sink + ": " + row.dedup_id + ": " + why);
    // A payload the receiver calls invalid stays invalid: retrying cannot help.
    const bool hopeless = e.kind == ErrorKind::Invalid || e.kind == ErrorKind::Corrupt;
    if (hopeless || expired) {
      if (auto m = store_.markAlertDead(row.id, now, why); !m) return m.error();
      ++out.dead;
    } else {
      core::Instant next = now + backoff(row.attempts + 1, e.retry_after_s);
      // The last attempt falls on max_age, so a receiver back just before it still gets it.
      next = std::min(next, row.created_at + alerts_.max_age);
      if (auto m = store_.markAlertRetry(row.id, next, why); !m) return m.error();
      ++out.retrying;
    }
    // A receiver that fails is not tried again in this call: its other rows stay due.
    if (!hopeless) stopped.push_back(row.sink);
  }
  return out;
}

core::Result<AlertRunResult> collectAndDeliverAlerts(store::Store& store,
                                                     const settings::Settings& settings,
                                                     std::vector<AlertSinkHandle> sinks,
                                                     core::Instant now,
                                                     std::chrono::milliseconds budget,
                                                     DispatchOptions options) {
  AlertRunResult out;
  if (!settings.alerts.configured) return out;
  AlertCollector collector(store, settings);
  auto collected = collector.collect(now);
  if (!collected) return collected.error();
  out.collected = *collected;
  AlertDispatcher dispatcher(store, settings.alerts, std::move(sinks), std::move(options));
  auto delivered = dispatcher.deliverDue(now, budget);
  if (!delivered) return delivered.error();
  out.delivered = std::move(*delivered);
  return out;
}

}  // namespace certgate::engine
