// The alert outbox and the collector's reads (store.hpp, "alerts"). Each method is one SQL
// statement, so it is atomic on its own and joins a Transaction the caller has open.
#include <sqlite3.h>

#include "store/db.hpp"
#include "store/store.hpp"

namespace certgate::store {

using core::ErrorKind;
using core::makeError;
using detail::Stmt;

namespace {

constexpr const char kAuditAfter[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0)"
    "  FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr const char kRunsAfter[] =
    "SELECT id, kind, started_at, finished_at, outcome, summary_json"
    "  FROM runs WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr const char kFetchesAfter[] =
    "SELECT id, source_id, ifnull(run_id, 0), started_at, finished_at, complete, problem,"
    "       units_seen, units_skipped, records, quarantined"
    "  FROM fetches WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr const char kCountAudit[] =
    "SELECT count(*) FROM audit WHERE action = ?1 AND at >= ?2 AND at < ?3 AND id <= ?4";
constexpr const char kLastAuditWith[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0)"
    "  FROM audit WHERE action = ?1 AND id < ?4"
    "   AND json_valid(details_json) AND json_extract(details_json, '$.' || ?2) = ?3"
    " ORDER BY id DESC LIMIT 1";
constexpr const char kAlertCursor[] = "SELECT value FROM alert_cursors WHERE name = ?1";
constexpr const char kSetAlertCursor[] =
    "INSERT INTO alert_cursors (name, value) VALUES (?1, ?2)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value";
constexpr const char kEnqueueAlert[] =
    "INSERT INTO alert_outbox (sink, dedup_id, kind, severity, payload_json, next_attempt_at,"
    "                          created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (sink, dedup_id) DO NOTHING";
constexpr const char kDueAlerts[] =
    "SELECT id, sink, dedup_id, kind, severity, payload_json, state, attempts, next_attempt_at,"
    "       created_at, delivered_at, last_error FROM alert_outbox"
    " WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2";
constexpr const char kListAlerts[] =
    "SELECT id, sink, dedup_id, kind, severity, payload_json, state, attempts, next_attempt_at,"
    "       created_at, delivered_at, last_error FROM alert_outbox"
    " WHERE (?1 = '' OR state = ?1) ORDER BY id DESC LIMIT ?2";
constexpr const char kAlertDelivered[] =
    "UPDATE alert_outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2,"
    "       last_error = '' WHERE id = ?1 AND state = 'pending'";
constexpr const char kAlertRetry[] =
    "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3"
    " WHERE id = ?1 AND state = 'pending'";
constexpr const char kAlertDead[] =
    "UPDATE alert_outbox SET state = 'dead', attempts = attempts + 1, delivered_at = ?2,"
    "       last_error = ?3 WHERE id = ?1 AND state = 'pending'";
constexpr const char kAlertCounts[] =
    "SELECT sink, sum(state = 'pending'), sum(state = 'delivered'), sum(state = 'dead')"
    "  FROM alert_outbox GROUP BY sink ORDER BY sink";

template <typename T, typename Read>
Result<std::vector<T>> readAll(Stmt& stmt, Read read) {
  std::vector<T> out;
  for (;;) {
    auto row = stmt.stepRow();
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back(read(stmt));
  }
}

AuditRow readAudit(const Stmt& s) {
  return AuditRow{s.colInt(0),  s.colInstant(1), s.colText(2), s.colText(3),
                  s.colText(4), s.colText(5),    s.colInt(6)};
}

AlertOutboxRow readAlert(const Stmt& s) {
  AlertOutboxRow r;
  r.id = s.colInt(0);
  r.sink = s.colText(1);
  r.dedup_id = s.colText(2);
  r.kind = s.colText(3);
  r.severity = s.colText(4);
  r.payload_json = s.colText(5);
  r.state = s.colText(6);
  r.attempts = static_cast<int>(s.colInt(7));
  r.next_attempt_at = s.colInstant(8);
  r.created_at = s.colInstant(9);
  r.delivered_at = s.colOptInstant(10);
  r.last_error = s.colText(11);
  return r;
}

}  // namespace

Result<std::vector<AuditRow>> Store::auditAfter(std::int64_t after_id, std::int64_t limit) {
  auto prepared = detail::prepare(db_, kAuditAfter, false, "auditAfter", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "auditAfter", &path_);
  stmt.bindInt(1, after_id);
  stmt.bindInt(2, limit);
  return readAll<AuditRow>(stmt, readAudit);
}

Result<std::vector<RunRow>> Store::runsAfter(std::int64_t after_id, std::int64_t limit) {
  auto prepared = detail::prepare(db_, kRunsAfter, false, "runsAfter", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "runsAfter", &path_);
  stmt.bindInt(1, after_id);
  stmt.bindInt(2, limit);
  return readAll<RunRow>(stmt, [](const Stmt& s) {
    return RunRow{s.colInt(0),        s.colText(1), s.colInstant(2),
                  s.colOptInstant(3), s.colText(4), s.colText(5)};
  });
}

Result<std::vector<FetchRow>> Store::fetchesAfter(std::int64_t after_id, std::int64_t limit) {
  auto prepared = detail::prepare(db_, kFetchesAfter, false, "fetchesAfter", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "fetchesAfter", &path_);
  stmt.bindInt(1, after_id);
  stmt.bindInt(2, limit);
  return readAll<FetchRow>(stmt, [](const Stmt& s) {
    FetchRow f;
    f.id = s.colInt(0);
    f.source_id = s.colInt(1);
    f.run_id = s.colInt(2);
    f.started_at = s.colInstant(3);
    f.finished_at = s.colInstant(4);
    f.complete = s.colInt(5) != 0;
    f.problem = s.colText(6);
    f.units_seen = s.colInt(7);
    f.units_skipped = s.colInt(8);
    f.records = s.colInt(9);
    f.quarantined = s.colInt(10);
    return f;
  });
}

Result<std::int64_t> Store::countAudit(const std::string& action, Instant from, Instant to,
                                       std::int64_t up_to_id) {
  auto prepared = detail::prepare(db_, kCountAudit, false, "countAudit", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "countAudit", &path_);
  stmt.bindText(1, action);
  stmt.bindInstant(2, from);
  stmt.bindInstant(3, to);
  stmt.bindInt(4, up_to_id);
  auto row = stmt.stepRow();
  if (!row) return row.error();
  return *row ? stmt.colInt(0) : std::int64_t{0};
}

Result<std::optional<AuditRow>> Store::lastAuditWith(const std::string& action,
                                                     const std::string& key,
                                                     const std::string& value,
                                                     std::int64_t before_id) {
  // The key is bound into a JSON path: only plain member names are accepted.
  for (char c : key)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return makeError(ErrorKind::Invalid, "lastAuditWith: '" + key + "' is not a member name",
                       path_);
  auto prepared = detail::prepare(db_, kLastAuditWith, false, "lastAuditWith", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "lastAuditWith", &path_);
  stmt.bindText(1, action);
  stmt.bindText(2, key);
  stmt.bindText(3, value);
  stmt.bindInt(4, before_id);
  auto row = stmt.stepRow();
  if (!row) return row.error();
  if (!*row) return std::optional<AuditRow>{};
  return std::optional<AuditRow>{readAudit(stmt)};
}

Result<std::int64_t> Store::alertCursor(const std::string& name) {
  auto prepared = detail::prepare(db_, kAlertCursor, false, "alertCursor", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "alertCursor", &path_);
  stmt.bindText(1, name);
  auto row = stmt.stepRow();
  if (!row) return row.error();
  return *row ? stmt.colInt(0) : std::int64_t{0};
}

Status Store::setAlertCursor(const std::string& name, std::int64_t value) {
  if (name.empty()) return makeError(ErrorKind::Invalid, "setAlertCursor: no name", path_);
  auto prepared = detail::prepare(db_, kSetAlertCursor, false, "setAlertCursor", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "setAlertCursor", &path_);
  stmt.bindText(1, name);
  stmt.bindInt(2, value);
  return stmt.run();
}

Result<bool> Store::enqueueAlert(const AlertOutboxRow& row) {
  if (row.sink.empty() || row.dedup_id.empty() || row.kind.empty() || row.payload_json.empty())
    return makeError(ErrorKind::Invalid,
                     "enqueueAlert: a sink, a dedup id, a kind and a payload are required", path_);
  auto prepared = detail::prepare(db_, kEnqueueAlert, false, "enqueueAlert", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "enqueueAlert", &path_);
  stmt.bindText(1, row.sink);
  stmt.bindText(2, row.dedup_id);
  stmt.bindText(3, row.kind);
  stmt.bindText(4, row.severity);
  stmt.bindText(5, row.payload_json);
  stmt.bindInstant(6, row.next_attempt_at);
  stmt.bindInstant(7, row.created_at);
  if (auto ran = stmt.run(); !ran) return ran.error();
  return sqlite3_changes(db_) > 0;
}

Result<std::vector<AlertOutboxRow>> Store::dueAlerts(Instant now, std::int64_t limit) {
  auto prepared = detail::prepare(db_, kDueAlerts, false, "dueAlerts", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "dueAlerts", &path_);
  stmt.bindInstant(1, now);
  stmt.bindInt(2, limit);
  return readAll<AlertOutboxRow>(stmt, readAlert);
}

Result<std::vector<AlertOutboxRow>> Store::alertOutbox(const std::string& state,
                                                       std::int64_t limit) {
  auto prepared = detail::prepare(db_, kListAlerts, false, "alertOutbox", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "alertOutbox", &path_);
  stmt.bindText(1, state);
  stmt.bindInt(2, limit);
  return readAll<AlertOutboxRow>(stmt, readAlert);
}

namespace {

Status changedOne(sqlite3* db, const std::string& path, const char* op, std::int64_t id) {
  if (sqlite3_changes(db) > 0) return {};
  return makeError(ErrorKind::NotFound,
                   std::string(op) + ": no pending alert with id " + std::to_string(id), path);
}

}  // namespace

Status Store::markAlertDelivered(std::int64_t id, Instant at) {
  auto prepared = detail::prepare(db_, kAlertDelivered, false, "markAlertDelivered", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "markAlertDelivered", &path_);
  stmt.bindInt(1, id);
  stmt.bindInstant(2, at);
  if (auto ran = stmt.run(); !ran) return ran;
  return changedOne(db_, path_, "markAlertDelivered", id);
}

Status Store::markAlertRetry(std::int64_t id, Instant next_attempt_at, const std::string& error) {
  auto prepared = detail::prepare(db_, kAlertRetry, false, "markAlertRetry", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "markAlertRetry", &path_);
  stmt.bindInt(1, id);
  stmt.bindInstant(2, next_attempt_at);
  stmt.bindText(3, error);
  if (auto ran = stmt.run(); !ran) return ran;
  return changedOne(db_, path_, "markAlertRetry", id);
}

Status Store::markAlertDead(std::int64_t id, Instant at, const std::string& error) {
  auto prepared = detail::prepare(db_, kAlertDead, false, "markAlertDead", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "markAlertDead", &path_);
  stmt.bindInt(1, id);
  stmt.bindInstant(2, at);
  stmt.bindText(3, error);
  if (auto ran = stmt.run(); !ran) return ran;
  return changedOne(db_, path_, "markAlertDead", id);
}

Result<std::vector<AlertCounts>> Store::alertCounts() {
  auto prepared = detail::prepare(db_, kAlertCounts, false, "alertCounts", path_);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "alertCounts", &path_);
  return readAll<AlertCounts>(stmt, [](const Stmt& s) {
    return AlertCounts{s.colText(0), s.colInt(1), s.colInt(2), s.colInt(3)};
  });
}

}  // namespace certgate::store
