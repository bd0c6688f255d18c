// Figures for /metrics (store.hpp, "metrics"): read-only aggregate queries, each one statement.
#include <sqlite3.h>

#include "store/db.hpp"
#include "store/store.hpp"

namespace certgate::store {

using detail::Stmt;

namespace {

// Runs `sql` (binding ?1 to `arg` when the SQL has it) and calls `row` for every result row.
template <typename Fn>
Status eachRow(sqlite3* db, const std::string& path, const char* sql, const char* op, Fn&& row,
               std::int64_t arg = 0) {
  auto prepared = detail::prepare(db, sql, false, op, path);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), op, &path);
  if (sqlite3_bind_parameter_count(stmt.raw()) > 0) stmt.bindInt(1, arg);
  for (;;) {
    auto more = stmt.stepRow();
    if (!more) return more.error();
    if (!*more) return {};
    row(stmt);
  }
}

}  // namespace

Result<MetricsSnapshot> Store::metricsSnapshot() {
  MetricsSnapshot m;
  auto st = eachRow(db_, path_,
                    "SELECT kind, outcome, count(*), max(coalesce(finished_at, started_at))"
                    "  FROM runs GROUP BY kind, outcome",
                    "metrics: runs", [&](const Stmt& s) {
                      m.runs.push_back({s.colText(0), s.colText(1), s.colInt(2), s.colInt(3)});
                    });
  if (!st) return st.error();
  st = eachRow(db_, path_, "SELECT kind, state, count(*) FROM intents GROUP BY kind, state",
               "metrics: intents", [&](const Stmt& s) {
                 m.actions.push_back({s.colText(0), s.colText(1), s.colInt(2)});
               });
  if (!st) return st.error();
  // The last fetch of every source, and the last complete one.
  st = eachRow(db_, path_,
               "SELECT s.name, f.complete, f.finished_at, f.records, f.quarantined,"
               "       (SELECT max(g.finished_at) FROM fetches g"
               "         WHERE g.source_id = s.id AND g.complete = 1)"
               "  FROM sources s JOIN fetches f ON f.id ="
               "       (SELECT max(id) FROM fetches WHERE source_id = s.id)",
               "metrics: fetches", [&](const Stmt& s) {
                 SourceFigures f;
                 f.source = s.colText(0);
                 f.complete = s.colInt(1) == 1;
                 f.last_fetch = s.colInt(2);
                 f.records = s.colInt(3);
                 f.quarantined = s.colInt(4);
                 f.last_complete_fetch = s.isNull(5) ? 0 : s.colInt(5);
                 m.sources.push_back(std::move(f));
               });
  if (!st) return st.error();
  st = eachRow(db_, path_,
               "SELECT coalesce(s.name, ''), count(*) FROM quarantine q"
               "  LEFT JOIN sources s ON s.id = q.source_id GROUP BY q.source_id",
               "metrics: quarantine", [&](const Stmt& s) {
                 m.quarantined.emplace_back(s.colText(0), s.colInt(1));
               });
  if (!st) return st.error();
  st = eachRow(db_, path_, "SELECT count(*) FROM plans WHERE state = 'held'", "metrics: plans",
               [&](const Stmt& s) { m.held_plans = s.colInt(0); });
  if (!st) return st.error();
  st = eachRow(db_, path_, "SELECT count(*) FROM intents WHERE state = 'pending'",
               "metrics: pending intents",
               [&](const Stmt& s) { m.pending_intents = s.colInt(0); });
  if (!st) return st.error();
  st = eachRow(db_, path_,
               "SELECT gateway, count(*) FROM tokens WHERE revoked_at IS NULL GROUP BY gateway",
               "metrics: tokens",
               [&](const Stmt& s) { m.live_tokens.emplace_back(s.colText(0), s.colInt(1)); });
  if (!st) return st.error();
  return m;
}

Result<std::vector<AccessLatency>> Store::accessLatencies(std::int64_t after_audit_id,
                                                          std::int64_t limit) {
  std::vector<AccessLatency> out;
  // group.add rows carry "since" (when the entitlement began); a change that found the member
  // already in the group (no_op) gave nobody access.
  const std::string sql =
      "SELECT id, at - unixepoch(json_extract(details_json, '$.since')) FROM audit"
      " WHERE id > ?1 AND action = 'group.add'"
      "   AND json_extract(details_json, '$.since') IS NOT NULL"
      "   AND coalesce(json_extract(details_json, '$.no_op'), 0) = 0"
      " ORDER BY id LIMIT " +
      std::to_string(limit);
  auto st = eachRow(
      db_, path_, sql.c_str(), "metrics: access latency",
      [&](const Stmt& s) { out.push_back({s.colInt(0), s.isNull(1) ? 0 : s.colInt(1)}); },
      after_audit_id);
  if (!st) return st.error();
  return out;
}

Result<std::int64_t> Store::lastAuditId() {
  std::int64_t id = 0;
  auto st = eachRow(db_, path_, "SELECT ifnull(max(id), 0) FROM audit", "metrics: audit head",
                    [&](const Stmt& s) { id = s.colInt(0); });
  if (!st) return st.error();
  return id;
}

}  // namespace certgate::store
