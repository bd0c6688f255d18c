#include "store/store.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <span>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "store/db.hpp"
#include "store/migrations.hpp"

namespace certgate::store {

using core::Error;
using core::ErrorKind;
using core::makeError;
using detail::Stmt;

namespace {

// ---------------------------------------------------------------------------------------------
// SQL. Every statement is a constant: values are always bound (?N), never spliced in.
// The statement cache is keyed by the address of these arrays.

constexpr const char kBeginImmediate[] = "BEGIN IMMEDIATE";
constexpr const char kBeginRead[] = "BEGIN";
constexpr const char kCommit[] = "COMMIT";
constexpr const char kRollback[] = "ROLLBACK";
constexpr const char kSavepoint[] = "SAVEPOINT certgate_write";
constexpr const char kRelease[] = "RELEASE certgate_write";
constexpr const char kRollbackToSavepoint[] = "ROLLBACK TO certgate_write";

// --- sources, units, fetches
constexpr const char kFindSource[] = "SELECT id, kind FROM sources WHERE name = ?1";
constexpr const char kInsertSource[] = "INSERT INTO sources (name, kind) VALUES (?1, ?2)";
constexpr const char kListSources[] = "SELECT id, name, kind, cursor FROM sources ORDER BY id";
constexpr const char kSetCursor[] = "UPDATE sources SET cursor = ?2 WHERE id = ?1";
constexpr const char kUnitProcessed[] =
    "SELECT complete FROM source_units WHERE source_id = ?1 AND unit_key = ?2";
constexpr const char kProcessedUnits[] =
    "SELECT unit_key FROM source_units WHERE source_id = ?1 AND complete = 1";
constexpr const char kRecordUnit[] =
    "INSERT INTO source_units (source_id, unit_key, name, bytes, complete, problem, at, records)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT (source_id, unit_key) DO UPDATE SET"
    "   name = excluded.name, bytes = excluded.bytes, complete = excluded.complete,"
    "   problem = excluded.problem, at = excluded.at, records = excluded.records"
    " WHERE source_units.complete = 0";
// "Most recently recorded": a unit re-read to completion keeps its id but gets a new `at`.
constexpr const char kLastCompleteUnitRecords[] =
    "SELECT records FROM source_units WHERE source_id = ?1 AND complete = 1"
    " ORDER BY at DESC, id DESC LIMIT 1";
constexpr const char kInsertFetch[] =
    "INSERT INTO fetches (source_id, run_id, started_at, finished_at, complete, problem,"
    "                     units_seen, units_skipped, records, quarantined, full_records)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char kLastCompleteFullRecords[] =
    "SELECT full_records FROM fetches"
    " WHERE source_id = ?1 AND complete = 1 AND full_records IS NOT NULL"
    " ORDER BY id DESC LIMIT 1";
constexpr const char kLastFetch[] =
    "SELECT id, source_id, ifnull(run_id, 0), started_at, finished_at, complete, problem,"
    "       units_seen, units_skipped, records, quarantined"
    "  FROM fetches WHERE source_id = ?1 ORDER BY id DESC LIMIT 1";

// --- persons
constexpr const char kPersonByKey[] =
    "SELECT id, key, employee_id, email, display_name, population, first_seen, updated_at"
    "  FROM persons WHERE key = ?1";
constexpr const char kInsertPerson[] =
    "INSERT INTO persons (key, employee_id, email, display_name, population, first_seen,"
    "                     updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char kUpdatePerson[] =
    "UPDATE persons SET employee_id = ?2, email = ?3, display_name = ?4, population = ?5,"
    "                   updated_at = ?6, key = ?7"
    " WHERE id = ?1";
// A person keyed by its email that has no employee id yet (the canonical key may get stronger).
constexpr const char kPersonKeyedByEmail[] =
    "SELECT id, key, employee_id, email, display_name, population, first_seen, updated_at"
    "  FROM persons WHERE key = ?1 AND email = ?1 AND employee_id = ''";
constexpr const char kIdentifierOwner[] =
    "SELECT i.person_id, p.key FROM person_identifiers i JOIN persons p ON p.id = i.person_id"
    " WHERE i.kind = ?1 AND i.value = ?2";
constexpr const char kDropIdentifier[] =
    "DELETE FROM person_identifiers WHERE person_id = ?1 AND kind = ?2";
constexpr const char kAddIdentifier[] =
    "INSERT INTO person_identifiers (kind, value, person_id) VALUES (?1, ?2, ?3)";
constexpr const char kListPersons[] =
    "SELECT id, key, employee_id, email, display_name, population, first_seen, updated_at"
    "  FROM persons ORDER BY id";
constexpr const char kPersonIdentities[] =
    "SELECT id, key, employee_id, email FROM persons ORDER BY id";
constexpr const char kCountPersons[] = "SELECT count(*) FROM persons";
constexpr const char kFindPerson[] =
    "SELECT id, key, employee_id, email, display_name, population, first_seen, updated_at"
    "  FROM (SELECT p.*, 0 AS rank FROM persons p WHERE p.key = ?1"
    "        UNION ALL"
    "        SELECT p.*, CASE i.kind WHEN 'employee_id' THEN 1 ELSE 2 END AS rank"
    "          FROM person_identifiers i JOIN persons p ON p.id = i.person_id"
    "         WHERE i.kind IN ('employee_id', 'email') AND i.value = ?1)"
    " ORDER BY rank LIMIT 1";

// --- facts (migration 5: facts has no secondary index; fact_keys and fact_order are kept in step)
// upsertFacts: probe each distinct key (in key order), read the rows that exist (in id order),
// append the new rows (in arrival order: the ids are those one-by-one upserts would give), then
// add their fact_keys and fact_order entries in key order, then apply repeats and changes.
constexpr const char kProbeFactKey[] =
    "SELECT fact_id FROM fact_keys WHERE source_id = ?1 AND ext_key = ?2";
constexpr const char kFactState[] =
    "SELECT external_id, ifnull(person_id, 0), at FROM facts WHERE id = ?1";
// New rows and their fact_keys / fact_order entries go in multi-row INSERTs of kRowsPerInsert
// rows (one statement step per 64 rows instead of one per row), built by valuesSql below.
// New facts get explicit ids: max(id) + 1 onwards, the ids INTEGER PRIMARY KEY would assign.
constexpr const char kMaxFactId[] = "SELECT ifnull(max(id), 0) FROM facts";
constexpr const char kMaxPersonId[] = "SELECT ifnull(max(id), 0) FROM persons";
// Store::beginFactLoad: does the source have a stored fact; the checkpoint policy of the load.
constexpr const char kAnyFactKey[] = "SELECT 1 FROM fact_keys WHERE source_id = ?1 LIMIT 1";
// A first load's facts without fact_keys entries (migration 12): every fact of the source with
// id >= keys_from lacks its entry until the load's end writes them; a load that ended without
// (a crash, a failure at its end) leaves the mark, and the next write of the source's facts
// writes them from the facts table first (Store::repairFactKeys).
constexpr const char kKeysFrom[] =
    "SELECT keys_from FROM sources WHERE id = ?1 AND keys_from IS NOT NULL";
constexpr const char kMarkKeysFrom[] =
    "UPDATE sources SET keys_from = ?2 WHERE id = ?1 AND (keys_from IS NULL OR keys_from > ?2)";
// A first load's check for facts of its source that another connection added between its
// transactions (ids it did not assign: between the id it expected next and max(id)).
constexpr const char kForeignFacts[] =
    "SELECT 1 FROM facts WHERE id >= ?1 AND id <= ?2 AND source_id = ?3 LIMIT 1";
constexpr const char kClearKeysFrom[] = "UPDATE sources SET keys_from = NULL WHERE id = ?1";
constexpr const char kRepairFactKeys[] =
    "INSERT INTO fact_keys (source_id, ext_key, fact_id)"
    "  SELECT source_id, ext_key, id FROM facts WHERE id >= ?2 AND source_id = ?1 ORDER BY ext_key";
constexpr const char kNoAutoCheckpoint[] = "PRAGMA wal_autocheckpoint = 0";
constexpr const char kAutoCheckpoint[] = "PRAGMA wal_autocheckpoint = 1000";  // SQLite's default
// Per row: ?1 id, ?2 source_id, ?3 external_id, ?4 ext_key, ?5 person_id, ?6 item, ?7 lms_item,
// ?8 kind, ?9 status, ?10 lms_pass, ?11 attempt, ?12 score, ?13 max_score, ?14 at,
// ?15 lms_expiry, ?16 location, ?17 now (first_seen and last_seen); the next row from ?18.
constexpr const char kInsertFactHead[] =
    "INSERT INTO facts (id, source_id, external_id, ext_key, person_id, item, lms_item, kind,"
    "                   status, lms_pass, attempt, score, max_score, at, lms_expiry, location,"
    "                   first_seen, last_seen) VALUES ";
constexpr int kInsertFactWidth = 17;
constexpr const char kInsertFactKeyHead[] =
    "INSERT INTO fact_keys (source_id, ext_key, fact_id) VALUES ";
constexpr const char kInsertFactOrderHead[] =
    "INSERT INTO fact_order (person_id, at, fact_id) VALUES ";
constexpr std::size_t kRowsPerInsert = 64;
constexpr const char kInsertFactOrder[] =
    "INSERT INTO fact_order (person_id, at, fact_id) VALUES (?1, ?2, ?3)";
constexpr const char kDeleteFactOrder[] =
    "DELETE FROM fact_order WHERE person_id = ?1 AND at = ?2 AND fact_id = ?3";
// U: rewrites the row when the person or a column that matters differs (IS NOT: NULL-safe), so
// a repeated delivery changes no row (sqlite3_changes() == 0); location follows the data.
constexpr const char kUpdateFact[] =
    "UPDATE facts SET person_id = ?3, item = ?4, lms_item = ?5, kind = ?6, status = ?7,"
    "                 lms_pass = ?8, attempt = ?9, score = ?10, max_score = ?11, at = ?12,"
    "                 lms_expiry = ?13, location = ?14, last_seen = max(last_seen, ?15)"
    " WHERE id = ?17"
    "   AND (person_id IS NOT ?3 OR item IS NOT ?4 OR lms_item IS NOT ?5 OR kind IS NOT ?6"
    "        OR status IS NOT ?7 OR lms_pass IS NOT ?8 OR attempt IS NOT ?9"
    "        OR score IS NOT ?10 OR max_score IS NOT ?11 OR at IS NOT ?12"
    "        OR lms_expiry IS NOT ?13)";
// T: U changed nothing: only last_seen moves forward.
constexpr const char kTouchFact[] = "UPDATE facts SET last_seen = max(last_seen, ?2) WHERE id = ?1";
// forEachFact: the facts of no known person first (by at, id), then fact_order's person order.
constexpr const char kUnresolvedFacts[] =
    "SELECT id, source_id, external_id, 0, item, lms_item, kind, status,"
    "       lms_pass, attempt, score, max_score, at, lms_expiry, location, first_seen, last_seen"
    "  FROM facts INDEXED BY facts_unresolved WHERE person_id IS NULL ORDER BY at, id";
constexpr const char kAllFacts[] =
    "SELECT f.id, f.source_id, f.external_id, o.person_id, f.item, f.lms_item, f.kind, f.status,"
    "       f.lms_pass, f.attempt, f.score, f.max_score, f.at, f.lms_expiry, f.location,"
    "       f.first_seen, f.last_seen"
    "  FROM fact_order o JOIN facts f ON f.id = o.fact_id"
    " ORDER BY o.person_id, o.at, o.fact_id";
constexpr const char kFactsOf[] =
    "SELECT f.id, f.source_id, f.external_id, o.person_id, f.item, f.lms_item, f.kind, f.status,"
    "       f.lms_pass, f.attempt, f.score, f.max_score, f.at, f.lms_expiry, f.location,"
    "       f.first_seen, f.last_seen"
    "  FROM fact_order o JOIN facts f ON f.id = o.fact_id"
    " WHERE o.person_id = ?1 ORDER BY o.at, o.fact_id";
constexpr const char kCountFacts[] = "SELECT count(*) FROM facts";

// --- quarantine
constexpr const char kAddQuarantine[] =
    "INSERT INTO quarantine (source_id, external_id, location, reason, raw, at, first_at, run_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)"
    " ON CONFLICT (ifnull(source_id, 0), external_id, reason, raw) DO UPDATE SET"
    "   location = excluded.location, at = max(quarantine.at, excluded.at),"
    "   run_id = ifnull(excluded.run_id, quarantine.run_id), times = quarantine.times + 1";
constexpr const char kListQuarantine[] =
    "SELECT q.id, ifnull(q.source_id, 0), ifnull(s.name, ''), q.external_id, q.location,"
    "       q.reason, q.raw, q.at, ifnull(q.run_id, 0)"
    "  FROM quarantine q LEFT JOIN sources s ON s.id = q.source_id"
    " ORDER BY q.at DESC, q.id DESC LIMIT ?1";
constexpr const char kCountQuarantine[] = "SELECT count(*) FROM quarantine";

// --- exceptions and approvals
constexpr const char kInsertException[] =
    "INSERT INTO exceptions (person_id, track, requester, requested_at, starts_at, ends_at,"
    "                        justification_json, revoked_at, revoked_by)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char kExceptionExists[] = "SELECT 1 FROM exceptions WHERE id = ?1";
constexpr const char kInsertApproval[] =
    "INSERT INTO approvals (exception_id, approver, role, at, comment)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (exception_id, approver, role) DO NOTHING";
constexpr const char kFindApproval[] =
    "SELECT id FROM approvals WHERE exception_id = ?1 AND approver = ?2 AND role = ?3";
constexpr const char kRevokeExceptionReason[] =
    "UPDATE exceptions SET revoked_at = ?3, revoked_by = ?2, revoked_reason = ?4"
    " WHERE id = ?1 AND revoked_at IS NULL";
constexpr const char kRejectException[] =
    "UPDATE exceptions SET rejected_at = ?4, rejected_by = ?2, rejected_reason = ?3"
    " WHERE id = ?1 AND rejected_at IS NULL";
constexpr const char kRecordExceptionEnd[] =
    "UPDATE exceptions SET end_recorded_at = ?2 WHERE id = ?1 AND end_recorded_at IS NULL";
#define CERTGATE_EXCEPTION_COLUMNS                                                          \
  "SELECT e.id, e.person_id, e.track, e.requester, e.requested_at, e.starts_at, e.ends_at,"  \
  "       e.justification_json, e.revoked_at, e.revoked_by, e.revoked_reason,"              \
  "       e.rejected_at, e.rejected_by, e.rejected_reason, e.end_recorded_at,"              \
  "       ifnull(p.key, '')"                                                                \
  "  FROM exceptions e LEFT JOIN persons p ON p.id = e.person_id"
constexpr const char kListExceptions[] = CERTGATE_EXCEPTION_COLUMNS " ORDER BY e.id";
constexpr const char kOneException[] = CERTGATE_EXCEPTION_COLUMNS " WHERE e.id = ?1";
#undef CERTGATE_EXCEPTION_COLUMNS
constexpr const char kListApprovals[] =
    "SELECT id, exception_id, approver, role, at, comment"
    "  FROM approvals ORDER BY exception_id, at, id";
constexpr const char kApprovalsOf[] =
    "SELECT id, exception_id, approver, role, at, comment"
    "  FROM approvals WHERE exception_id = ?1 ORDER BY at, id";

// --- grants and intents
constexpr const char kFindActiveGrant[] =
    "SELECT id, external_ref FROM grants"
    " WHERE person_id = ?1 AND track = ?2 AND target_kind = ?3 AND target = ?4"
    "   AND revoked_at IS NULL";
constexpr const char kInsertGrant[] =
    "INSERT INTO grants (person_id, track, target_kind, target, external_ref, granted_at,"
    "                    revoked_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char kRevokeGrant[] =
    "UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
constexpr const char kGrantExists[] = "SELECT 1 FROM grants WHERE id = ?1";
constexpr const char kActiveGrants[] =
    "SELECT id, person_id, track, target_kind, target, external_ref, granted_at, revoked_at"
    "  FROM grants WHERE revoked_at IS NULL ORDER BY id";
constexpr const char kInsertIntent[] =
    "INSERT INTO intents (run_id, kind, target, idempotency_key, payload_json, state, outcome,"
    "                     created_at, updated_at, attempts)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char kIntentByKey[] = "SELECT id, state FROM intents WHERE idempotency_key = ?1";
constexpr const char kCompleteIntent[] =
    "UPDATE intents SET state = ?2, outcome = ?3, updated_at = ?4, attempts = attempts + 1"
    " WHERE id = ?1";
constexpr const char kPendingIntents[] =
    "SELECT id, ifnull(run_id, 0), kind, target, idempotency_key, payload_json, state, outcome,"
    "       created_at, updated_at, attempts"
    "  FROM intents WHERE state = 'pending' ORDER BY id";

// --- audit and runs
constexpr const char kAppendAudit[] =
    "INSERT INTO audit (id, at, actor, action, subject, details_json, run_id, prev_hash, hash)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char kListAudit[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0),"
    "       ifnull(prev_hash, ''), ifnull(hash, '')"
    "  FROM audit ORDER BY id DESC LIMIT ?1";
// The chain's walk and the rows of a period (forEachAudit), by id.
constexpr const char kAuditFrom[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0),"
    "       ifnull(prev_hash, ''), ifnull(hash, ''), hash IS NULL"
    "  FROM audit WHERE at >= ?1 ORDER BY id";
constexpr const char kAuditAll[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0),"
    "       ifnull(prev_hash, ''), ifnull(hash, ''), hash IS NULL"
    "  FROM audit ORDER BY id";
constexpr const char kAuditLast[] =
    "SELECT id, ifnull(hash, '') FROM audit ORDER BY id DESC LIMIT 1";
constexpr const char kAuditLastOfAction[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0),"
    "       ifnull(prev_hash, ''), ifnull(hash, '')"
    "  FROM audit WHERE action = ?1 ORDER BY id DESC LIMIT 1";
constexpr const char kAuditHashOf[] = "SELECT ifnull(hash, '') FROM audit WHERE id = ?1";
// Rows written before the chain: the partial index audit_unchained (migration 9) finds them.
constexpr const char kAuditUnchained[] =
    "SELECT id, at, actor, action, subject, details_json, ifnull(run_id, 0)"
    "  FROM audit INDEXED BY audit_unchained WHERE hash IS NULL AND prev_hash IS NULL"
    " ORDER BY id";
constexpr const char kAuditHashBefore[] =
    "SELECT ifnull(hash, '') FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT 1";
constexpr const char kAuditSetHash[] =
    "UPDATE audit SET prev_hash = ?2, hash = ?3"
    " WHERE id = ?1 AND hash IS NULL AND prev_hash IS NULL";
// verifyAudit: where an entry was written (its prev_hash names the row before it).
constexpr const char kAuditIdOfHash[] = "SELECT id FROM audit WHERE hash = ?1 LIMIT 1";
constexpr const char kBeginRun[] = "INSERT INTO runs (kind, started_at) VALUES (?1, ?2)";
constexpr const char kFinishRun[] =
    "UPDATE runs SET outcome = ?2, summary_json = ?3, finished_at = ?4"
    " WHERE id = ?1 AND finished_at IS NULL";
constexpr const char kRunOutcome[] = "SELECT outcome FROM runs WHERE id = ?1";
constexpr const char kListRuns[] =
    "SELECT id, kind, started_at, finished_at, outcome, summary_json"
    "  FROM runs ORDER BY id DESC LIMIT ?1";

// --- directory accounts and plans
constexpr const char kUpsertAccount[] =
    "INSERT INTO directory_accounts (directory, person_id, user_id, resolved_at)"
    " VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (directory, person_id) DO UPDATE SET user_id = excluded.user_id,"
    "   resolved_at = excluded.resolved_at";
constexpr const char kForgetAccount[] =
    "DELETE FROM directory_accounts WHERE directory = ?1 AND person_id = ?2";
constexpr const char kAccounts[] =
    "SELECT directory, person_id, user_id, resolved_at FROM directory_accounts"
    " WHERE directory = ?1 ORDER BY person_id";
constexpr const char kInsertPlan[] =
    "INSERT INTO plans (id, created_at, run_id, fingerprint, state, adds, removes, skipped,"
    "                   scope, plan_json, outcome)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char kPlanColumns[] =
    "SELECT id, created_at, run_id, fingerprint, state, adds, removes, skipped, scope, ";
constexpr const char kPlanTail[] =
    " approved_by, approved_at, applied_at, outcome FROM plans";
constexpr const char kUpdatePlan[] =
    "UPDATE plans SET state = ?2,"
    "  approved_by = coalesce(?3, approved_by), approved_at = coalesce(?4, approved_at),"
    "  applied_at = coalesce(?5, applied_at), outcome = coalesce(?6, outcome)"
    " WHERE id = ?1";
constexpr const char kPlanStates[] = "planned held approved applied partial superseded";

// --- gateway tokens
constexpr const char kTokenColumns[] =
    "SELECT id, person_id, track, gateway, scope, alias, token_id, secret_digest, issued_at,"
    "       expires_at, revoked_at, revoke_reason, enforcement, verify_after FROM tokens";
constexpr const char kInsertToken[] =
    "INSERT INTO tokens (person_id, track, gateway, scope, alias, token_id, secret_digest,"
    "                    issued_at, expires_at, revoked_at, revoke_reason, enforcement,"
    "                    verify_after)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
constexpr const char kRevokeToken[] =
    "UPDATE tokens SET revoked_at = ?2, revoke_reason = ?3, enforcement = ?4, verify_after = ?5"
    " WHERE id = ?1 AND revoked_at IS NULL";
constexpr const char kTokenExists[] = "SELECT 1 FROM tokens WHERE id = ?1";
constexpr const char kTokenEnforcement[] = "UPDATE tokens SET enforcement = ?2 WHERE id = ?1";
constexpr const char kTokenStates[] = "live pending enforced not_enforced unknown";

// --- connection settings, integrity, backup
constexpr const char kPageSize[] = "PRAGMA page_size = 16384;";
constexpr const char kJournalModeWal[] = "PRAGMA journal_mode = WAL";
constexpr const char kJournalMode[] = "PRAGMA journal_mode";
constexpr const char kSynchronous[] = "PRAGMA synchronous";
constexpr const char kForeignKeys[] = "PRAGMA foreign_keys";
constexpr const char kBusyTimeout[] = "PRAGMA busy_timeout";
constexpr const char kQuickCheck[] = "PRAGMA quick_check";
constexpr const char kIntegrityCheck[] = "PRAGMA integrity_check";
constexpr const char kVacuumInto[] = "VACUUM INTO ?1";
// Per-connection settings. synchronous=FULL: a commit survives power loss (reliability.md §4);
// the cache and WAL size limit keep a million-fact ingest off the disk without unbounded growth.
// Writer cache 256 MiB: an export unit is one transaction, and with 32 MiB a 1M-row unit spilled
// dirty pages into the WAL and read them back (half the ingest time at 8M facts; 256 MiB: about
// 25% more facts/s at 1M people for +216 MiB peak RSS; docs/benchmarks.md).
constexpr const char kWriterPragmas[] =
    "PRAGMA synchronous = FULL;"
    "PRAGMA foreign_keys = ON;"
    "PRAGMA temp_store = MEMORY;"
    "PRAGMA cache_size = -262144;"
    "PRAGMA journal_size_limit = 67108864;";
constexpr const char kReaderPragmas[] =
    "PRAGMA foreign_keys = ON;"
    "PRAGMA query_only = ON;"
    "PRAGMA cache_size = -32768;";

// ---------------------------------------------------------------------------------------------

// The facts table's compact key: a 64-bit hash of the external id (MurmurHash64A, fixed seed;
// the value is stored, so this function must never change). A collision is harmless: every
// statement that matches on ext_key also compares external_id, and upsertFact fails loudly.
std::int64_t factKey(std::string_view text) {
  constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ (static_cast<std::uint64_t>(text.size()) * m);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  auto load = [](const unsigned char* q, std::size_t len) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < len; ++i) v |= static_cast<std::uint64_t>(q[i]) << (8 * i);
    return v;
  };
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t k = load(p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  if (n > 0) {
    h ^= load(p, n);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return static_cast<std::int64_t>(h);
}

const char* kindText(core::FactKind kind) {
  switch (kind) {
    case core::FactKind::Completion:
      return "completion";
    case core::FactKind::QuizAttempt:
      return "quiz_attempt";
    case core::FactKind::AttemptReset:
      return "attempt_reset";
  }
  return "completion";
}

const char* statusText(core::FactStatus status) {
  switch (status) {
    case core::FactStatus::Completed:
      return "completed";
    case core::FactStatus::Passed:
      return "passed";
    case core::FactStatus::Failed:
      return "failed";
    case core::FactStatus::Unknown:
      return "unknown";
  }
  return "unknown";
}

bool parseKind(std::string_view text, core::FactKind& out) {
  if (text == "completion") {
    out = core::FactKind::Completion;
    return true;
  }
  if (text == "quiz_attempt") {
    out = core::FactKind::QuizAttempt;
    return true;
  }
  if (text == "attempt_reset") {
    out = core::FactKind::AttemptReset;
    return true;
  }
  return false;
}

bool parseStatus(std::string_view text, core::FactStatus& out) {
  if (text == "completed") {
    out = core::FactStatus::Completed;
    return true;
  }
  if (text == "passed") {
    out = core::FactStatus::Passed;
    return true;
  }
  if (text == "failed") {
    out = core::FactStatus::Failed;
    return true;
  }
  if (text == "unknown") {
    out = core::FactStatus::Unknown;
    return true;
  }
  return false;
}

bool validIntentState(const std::string& state) {
  return state == "pending" || state == "done" || state == "failed" || state == "abandoned";
}

std::string_view colView(const Stmt& stmt, int col) {
  const auto* text = sqlite3_column_text(stmt.raw(), col);
  if (text == nullptr) return {};
  return {reinterpret_cast<const char*>(text),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt.raw(), col))};
}

Error invalid(const std::string& path, std::string message) {
  return makeError(ErrorKind::Invalid, std::move(message), path);
}

Error notFound(const std::string& path, std::string message) {
  return makeError(ErrorKind::NotFound, std::move(message), path);
}

// Reads the row of kAllFacts / kFactsOf into `fact`, reusing its string buffers.
core::Status readFact(const Stmt& stmt, FactRow& fact, const std::string& path) {
  fact.id = stmt.colInt(0);
  fact.source_id = stmt.colInt(1);
  fact.external_id.assign(colView(stmt, 2));
  fact.person_id = stmt.colInt(3);
  fact.item.assign(colView(stmt, 4));
  fact.lms_item.assign(colView(stmt, 5));
  if (!parseKind(colView(stmt, 6), fact.kind) || !parseStatus(colView(stmt, 7), fact.status)) {
    return detail::corruptError(
        path, "fact " + std::to_string(fact.id) + " has an unknown kind or status");
  }
  fact.lms_pass = static_cast<std::int8_t>(stmt.colInt(8));
  fact.attempt = static_cast<std::uint16_t>(stmt.colInt(9));
  fact.score = stmt.colDouble(10);
  fact.max_score = stmt.colDouble(11);
  fact.at = stmt.colInstant(12);
  fact.lms_expiry = stmt.colOptInstant(13);
  fact.location.assign(colView(stmt, 14));
  fact.first_seen = stmt.colInstant(15);
  fact.last_seen = stmt.colInstant(16);
  return {};
}

PersonRow readPerson(const Stmt& stmt) {
  PersonRow person;
  person.id = stmt.colInt(0);
  person.key = stmt.colText(1);
  person.employee_id = stmt.colText(2);
  person.email = stmt.colText(3);
  person.display_name = stmt.colText(4);
  person.population = stmt.colText(5);
  person.first_seen = stmt.colInstant(6);
  person.updated_at = stmt.colInstant(7);
  return person;
}

// Steps `stmt` to the end, appending read(stmt) for every row.
template <typename Row, typename Read>
Result<std::vector<Row>> collect(Stmt& stmt, Read read) {
  std::vector<Row> rows;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) return rows;
    if (rc != SQLITE_ROW) return stmt.error(rc);
    rows.push_back(read(stmt));
  }
}

// Reads a single integer (a count or a PRAGMA answer).
Result<std::int64_t> scalar(Stmt& stmt) {
  auto row = stmt.stepRow();
  if (!row) return row.error();
  if (!*row) return std::int64_t{0};
  return stmt.colInt(0);
}

// Checkpoints the WAL from a connection and thread of its own while a fact load runs, so that a
// unit's commit on the writer does not also copy the WAL into the database file and fsync it.
// PASSIVE: it never blocks the writer or readers; what it cannot copy yet, the next round does.
// A failure (the file is busy, I/O) only leaves the WAL longer until a later checkpoint.
class Checkpointer {
 public:
  static std::unique_ptr<Checkpointer> start(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      sqlite3_close_v2(db);
      return nullptr;
    }
    // The copy into the database file is made durable before the WAL is reused (reliability.md).
    if (sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      sqlite3_close_v2(db);
      return nullptr;
    }
    return std::unique_ptr<Checkpointer>(new Checkpointer(db));
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  ~Checkpointer() {
    finish();
    thread_.join();
  }
  // Runs what is still wanted, then the thread closes its connection and ends by itself.
  void finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
  }
  // A commit happened: checkpoint what it wrote (coalesces with commits not yet checkpointed).
  void poke() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++wanted_;
    }
    wake_.notify_all();
  }
  std::int64_t rounds() const { return rounds_.load(); }

 private:
  explicit Checkpointer(sqlite3* db)
      : db_(db), thread_([this] {
          pthread_setname_np(pthread_self(), "cg-checkpoint");  // top -H, perf
          loop();
        }) {}
  void loop() {
    std::int64_t done = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || wanted_ != done; });
        if (wanted_ == done) break;  // stopping, nothing left
        done = wanted_;
      }
      static_cast<void>(
          sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr));
      rounds_.fetch_add(1);
    }
    sqlite3_close_v2(db_);
  }
  sqlite3* db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::int64_t wanted_ = 0;
  std::atomic<std::int64_t> rounds_{0};
  std::thread thread_;  // last: starts once the members above exist
};

// A fact key and the fact that owns it (a fact load's memory; ordered by key).
struct KeyEntry {
  std::int64_t key, fact_id;
  bool operator<(const KeyEntry& o) const { return key < o.key; }
};

// For each run (sorted by .key) found in the sorted `set`: mark(run index, its entry). One
// forward pass.
// Galloping from the last match: a batch's keys are spread over the whole set, so the next one
// is usually a few dozen entries on (a handful of nearby reads, not a binary search of 8M).
template <typename Runs, typename Mark>
void markIn(const std::vector<KeyEntry>& set, const Runs& runs, Mark&& mark) {
  auto at = set.begin();
  for (std::size_t i = 0; i < runs.size() && at != set.end(); ++i) {
    const KeyEntry wanted{runs[i].key, 0};
    std::size_t step = 1;
    auto bound = at;
    while (bound != set.end() && *bound < wanted) {
      at = bound + 1;
      bound = static_cast<std::size_t>(set.end() - at) > step ? at + static_cast<std::ptrdiff_t>(step)
                                                              : set.end();
      step *= 2;
    }
    at = std::lower_bound(at, bound, wanted);
    if (at != set.end() && at->key == runs[i].key) mark(i, *at);
  }
}

// Merges the sorted `add` into the sorted `into`.
void mergeSorted(std::vector<KeyEntry>& into, const std::vector<KeyEntry>& add) {
  if (add.empty()) return;
  const auto middle = into.size();
  into.insert(into.end(), add.begin(), add.end());
  std::inplace_merge(into.begin(), into.begin() + static_cast<std::ptrdiff_t>(middle), into.end());
}

}  // namespace

const char* toString(core::FactKind kind) {
  return kindText(kind);
}

const char* toString(core::FactStatus status) {
  return statusText(status);
}

// =============================================================================================
// Statement cache and write scopes.

struct Store::Cache {
  enum class Nested {
    Join,       // inside an open Transaction: run as part of it (single-statement writes)
    Savepoint,  // inside an open Transaction: wrap in a savepoint (multi-statement writes)
  };

  // A write (or consistent read) scope: its own transaction when none is open, else a savepoint
  // or nothing. Rolls back on destruction unless commit() succeeded.
  class Scope {
   public:
    enum class Mode { None, Transaction, Savepoint };
    Scope(Cache* cache, Mode mode) : cache_(cache), mode_(mode) {}
    Scope(Scope&& other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)), mode_(other.mode_) {}
    Scope& operator=(Scope&&) = delete;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() {
      if (cache_ == nullptr) return;
      sqlite3* db = cache_->db_;
      if (mode_ == Mode::Transaction && sqlite3_get_autocommit(db) == 0) {
        static_cast<void>(cache_->exec(kRollback, "rollback"));
      } else if (mode_ == Mode::Savepoint && sqlite3_get_autocommit(db) == 0) {
        static_cast<void>(cache_->exec(kRollbackToSavepoint, "rollback to savepoint"));
        static_cast<void>(cache_->exec(kRelease, "release savepoint"));
      }
    }

    core::Status commit() {
      Cache* cache = std::exchange(cache_, nullptr);
      if (cache == nullptr) return {};
      core::Status done;
      if (mode_ == Mode::Transaction) {
        done = cache->exec(kCommit, "commit");
        if (!done && sqlite3_get_autocommit(cache->db_) == 0) {
          static_cast<void>(cache->exec(kRollback, "rollback"));
        }
      } else if (mode_ == Mode::Savepoint) {
        done = cache->exec(kRelease, "release savepoint");
      }
      return done;
    }

   private:
    Cache* cache_;
    Mode mode_;
  };

  Cache(sqlite3* db, const std::string* path) : db_(db), path_(path) {}

  // The statement for `sql`, prepared once and kept; `sql` must be one of the constants above or
  // other text that lives as long as the process (the cache is keyed by its address). A statement already in use (a store call from inside a
  // forEachFact callback) is prepared afresh for this use only.
  Result<Stmt> stmt(const char* sql, std::string_view op) {
    auto [it, added] = entries_.try_emplace(sql);
    Entry& entry = it->second;
    if (added) {
      auto prepared = detail::prepare(db_, sql, true, op, *path_);
      if (!prepared) {
        entries_.erase(it);
        return prepared.error();
      }
      entry.stmt = std::move(*prepared);
    }
    if (entry.in_use) {
      auto fresh = detail::prepare(db_, sql, false, op, *path_);
      if (!fresh) return fresh.error();
      return Stmt(std::move(*fresh), op, path_);
    }
    entry.in_use = true;
    return Stmt(entry.stmt.get(), &entry.in_use, nullptr, op, path_);
  }

  core::Status exec(const char* sql, std::string_view op) {
    auto statement = stmt(sql, op);
    if (!statement) return statement.error();
    return statement->run();
  }

  Result<Scope> write(std::string_view op, Nested nested) {
    if (tx_open && tx_broken) return brokenError(op);
    const bool autocommit = sqlite3_get_autocommit(db_) != 0;
    if (tx_open && autocommit) {
      // SQLite rolls a transaction back by itself after some errors (disk full, I/O error).
      // Writing on would silently commit outside the caller's Transaction.
      return makeError(ErrorKind::Transient,
                       std::string(op) +
                           ": the open transaction was rolled back by SQLite after "
                           "an earlier error",
                       *path_, "roll back (drop the Transaction) and retry the whole unit of work");
    }
    if (!autocommit) {
      if (nested == Nested::Join) return Scope(this, Scope::Mode::None);
      auto saved = exec(kSavepoint, op);
      if (!saved) return saved.error();
      return Scope(this, Scope::Mode::Savepoint);
    }
    auto begun = exec(kBeginImmediate, op);
    if (!begun) return begun.error();
    return Scope(this, Scope::Mode::Transaction);
  }

  Error brokenError(std::string_view op) const {
    return makeError(ErrorKind::Internal,
                     std::string(op) +
                         ": a batch of facts failed part-way in the open transaction, which "
                         "can only be rolled back now",
                     *path_, "drop the Transaction (it rolls back) and retry the whole unit");
  }

  // A consistent snapshot for a read that takes several statements.
  Result<Scope> read(std::string_view op) {
    if (sqlite3_get_autocommit(db_) == 0) return Scope(this, Scope::Mode::None);
    auto begun = exec(kBeginRead, op);
    if (!begun) return begun.error();
    return Scope(this, Scope::Mode::Transaction);
  }

  // Runs fn() inside write(op, nested) and commits when it succeeded.
  template <typename Fn>
  auto inWrite(std::string_view op, Nested nested, Fn&& fn) -> decltype(fn()) {
    auto scope = write(op, nested);
    if (!scope) return scope.error();
    auto result = fn();
    if (!result) return result;
    auto committed = scope->commit();
    if (!committed) return committed.error();
    return result;
  }

  struct Entry {
    detail::StmtHandle stmt;
    bool in_use = false;
  };
  // Node-based: an Entry (and its in_use flag) keeps its address while others are added.
  std::unordered_map<const char*, Entry> entries_;
  sqlite3* db_;
  const std::string* path_;
  // Store::beginFactLoad .. endFactLoad (store.hpp).
  struct FactLoad {
    std::int64_t source_id = 0;
    Store::FactLoadOptions options;
    // A first load (the source had no stored fact): `known` holds every key it committed with
    // its fact id, probes are answered from memory, and the fact_keys entries of those facts
    // are written once, by endFactLoad (sources.keys_from marks them missing until then).
    bool all_keys_known = false;
    std::vector<KeyEntry> known;    // sorted; committed, fact_keys entries not written
    std::vector<KeyEntry> tx_keys;  // sorted: the rows the open Transaction added
    bool tx_marked = false;         // the open Transaction set sources.keys_from
    std::int64_t next_id = 0;       // a first load: the fact id it expects to assign next
    struct OrderEntry {
      std::int64_t person_id, at, fact_id;
      bool operator<(const OrderEntry& o) const {
        if (person_id != o.person_id) return person_id < o.person_id;
        if (at != o.at) return at < o.at;
        return fact_id < o.fact_id;
      }
    };
    std::vector<KeyEntry> pending_keys;      // not written yet (not a first load)
    std::vector<OrderEntry> pending_order;   // not written yet
    std::unique_ptr<Checkpointer> checkpointer;
    std::size_t pending() const { return pending_keys.size() + pending_order.size(); }
  };
  std::optional<FactLoad> load;
  // The checkpoint thread of the last load, finishing its last round in the background (it then
  // closes its connection and ends); joined by the next beginFactLoad or when the store closes.
  std::unique_ptr<Checkpointer> finishing;
  // The open Transaction ended: a commit keeps its keys, a rollback forgets them.
  void loadTransactionEnded(bool committed) {
    if (!load) return;
    if (committed && load->all_keys_known) mergeSorted(load->known, load->tx_keys);
    load->tx_keys.clear();
    load->tx_marked = false;
    load->pending_keys.clear();
    load->pending_order.clear();
    if (committed && load->checkpointer) load->checkpointer->poke();
  }

  bool tx_open = false;  // a Transaction object is alive
  // upsertFacts failed after it began to write inside the open Transaction: only a rollback is
  // left (every write and commit() fail until the Transaction is dropped).
  bool tx_broken = false;
  bool batch_started = false;  // the current writeFacts call has written
};

// =============================================================================================
// Transaction

Transaction::Transaction(Transaction&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)) {}

Transaction::~Transaction() {
  if (store_ == nullptr) return;
  if (sqlite3_get_autocommit(store_->db_) == 0) {
    static_cast<void>(store_->cache_->exec(kRollback, "rollback"));
  }
  store_->cache_->loadTransactionEnded(false);
  store_->cache_->tx_open = false;
  store_->cache_->tx_broken = false;
}

Status Transaction::commit() {
  if (store_ == nullptr) {
    return makeError(ErrorKind::Internal, "commit: the transaction is already finished");
  }
  if (store_->cache_->tx_broken) return store_->cache_->brokenError("commit");
  // A fact load's waiting index entries are part of the transaction.
  if (auto flushed = store_->flushFactLoad(); !flushed) return flushed;
  auto done = store_->cache_->exec(kCommit, "commit");
  if (done || sqlite3_get_autocommit(store_->db_) != 0) {
    store_->cache_->loadTransactionEnded(done.ok());
    store_->cache_->tx_open = false;
    store_->cache_->tx_broken = false;
    store_ = nullptr;
  }
  return done;
}

// =============================================================================================
// Opening

namespace {

core::Status configure(sqlite3* db, const std::string& path, bool read_only) {
  if (read_only) return detail::execScript(db, kReaderPragmas, "set pragmas", path);
  // Takes effect only on a new, empty database (before its first page is written).
  if (auto ps = detail::execScript(db, kPageSize, "set page_size", path); !ps) return ps;
  auto wal = detail::prepare(db, kJournalModeWal, false, "set journal_mode=WAL", path);
  if (!wal) return wal.error();
  Stmt mode(std::move(*wal), "set journal_mode=WAL", &path);
  auto row = mode.stepRow();
  if (!row) return row.error();
  if (!*row || colView(mode, 0) != "wal") {
    return makeError(ErrorKind::Permanent,
                     "could not switch the database to WAL journal mode (got '" +
                         std::string(colView(mode, 0)) + "')",
                     path, "put the database on a local file system that supports shared memory");
  }
  return detail::execScript(db, kWriterPragmas, "set pragmas", path);
}

// PRAGMA quick_check (or integrity_check): anything but a single "ok" is corruption.
core::Status checkIntegrity(sqlite3* db, const std::string& path, const char* pragma) {
  auto prepared = detail::prepare(db, pragma, false, "integrity check", path);
  if (!prepared) return prepared.error();
  Stmt check(std::move(*prepared), "integrity check", &path);
  std::string problems;
  int count = 0;
  for (;;) {
    const int rc = check.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return check.error(rc);
    const std::string_view line = colView(check, 0);
    if (line == "ok") continue;
    if (++count <= 3) {
      if (!problems.empty()) problems += "; ";
      problems += line;
    }
  }
  if (count == 0) return {};
  if (count > 3) problems += "; and " + std::to_string(count - 3) + " more";
  return detail::corruptError(path, std::string(pragma) + " found: " + problems);
}

}  // namespace

Store::Store(sqlite3* db, std::string path)
    : db_(db), path_(std::move(path)), cache_(std::make_unique<Cache>(db, &path_)) {}

Store::~Store() {
  cache_.reset();  // finalize cached statements before closing
  sqlite3_close_v2(db_);
}

int Store::schemaVersion() const {
  return schema_version_;
}

int Store::latestSchemaVersion() {
  return detail::migrations().back().version;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const OpenOptions& options) {
  namespace fs = std::filesystem;
  // SQLite's memory statistics take a process-wide mutex on every allocation (~8% of an upsert).
  // certgate never reads them. Only possible before SQLite initialises; otherwise a no-op.
  static std::once_flag configured_sqlite;
  std::call_once(configured_sqlite,
                 [] { static_cast<void>(sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0)); });
  if (path.empty()) return invalid(path, "open: no database path given");
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (!exists && options.read_only) {
    return makeError(ErrorKind::NotFound, "database file '" + path + "' does not exist", path,
                     "run `certgate ingest` first to create it, or check store.path");
  }
  if (!exists) {
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      return makeError(ErrorKind::NotFound,
                       "directory '" + parent.string() + "' for the database does not exist", path,
                       "create it (systemd: StateDirectory=) or fix store.path");
    }
  }

  const int flags =
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  detail::DbHandle db(raw);
  if (rc != SQLITE_OK) return detail::sqlError(db.get(), rc, "open", path);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);

  if (auto configured = configure(db.get(), path, options.read_only); !configured) {
    return configured.error();
  }
  if (auto checked = checkIntegrity(db.get(), path, kQuickCheck); !checked) {
    return checked.error();
  }
  auto version = detail::readSchemaVersion(db.get(), path);
  if (!version) return version.error();
  const int latest = latestSchemaVersion();
  if (*version > latest) {
    return makeError(ErrorKind::Invalid,
                     "database was written by a newer certgate (schema version " +
                         std::to_string(*version) + ", this certgate knows up to " +
                         std::to_string(latest) + "); upgrade certgate",
                     path, "upgrade certgate; an older binary never downgrades a database");
  }
  int current = *version;
  if (options.read_only) {
    if (current < latest) {
      return makeError(ErrorKind::Invalid,
                       "database schema version " + std::to_string(current) +
                           " is older than this certgate's (" + std::to_string(latest) +
                           ") and read-only commands do not migrate",
                       path, "run `certgate ingest` (or `certgate migrate`) once to upgrade it");
    }
  } else {
    const auto now = std::chrono::time_point_cast<core::Seconds>(std::chrono::system_clock::now());
    auto migrated = detail::migrate(db.get(), path, detail::migrations(), now);
    if (!migrated) return migrated.error();
    current = *migrated;
  }

  std::unique_ptr<Store> store(new Store(db.release(), path));
  store->schema_version_ = current;
  if (!options.read_only) {
    // Rows written before the audit chain existed (or by an older certgate since) get their
    // hashes now, so `certgate audit verify` can check them.
    if (auto chained = store->chainAudit(); !chained) return chained.error();
  }
  return store;
}

Result<Transaction> Store::begin() {
  if (cache_->tx_open || sqlite3_get_autocommit(db_) == 0) {
    return makeError(ErrorKind::Internal, "begin: a transaction is already open on this store",
                     path_, "commit or drop the open Transaction first");
  }
  auto begun = cache_->exec(kBeginImmediate, "begin transaction");
  if (!begun) return begun.error();
  cache_->tx_open = true;
  cache_->tx_broken = false;
  return Transaction(this);
}

Result<StoreSettings> Store::settings() {
  StoreSettings out;
  {
    auto stmt = cache_->stmt(kJournalMode, "read journal_mode");
    if (!stmt) return stmt.error();
    auto row = stmt->stepRow();
    if (!row) return row.error();
    if (*row) out.journal_mode = stmt->colText(0);
  }
  auto read = [&](const char* sql, std::string_view op) -> Result<std::int64_t> {
    auto stmt = cache_->stmt(sql, op);
    if (!stmt) return stmt.error();
    return scalar(*stmt);
  };
  auto synchronous = read(kSynchronous, "read synchronous");
  if (!synchronous) return synchronous.error();
  auto foreign_keys = read(kForeignKeys, "read foreign_keys");
  if (!foreign_keys) return foreign_keys.error();
  auto busy = read(kBusyTimeout, "read busy_timeout");
  if (!busy) return busy.error();
  out.synchronous = static_cast<int>(*synchronous);
  out.foreign_keys = *foreign_keys != 0;
  out.busy_timeout_ms = static_cast<int>(*busy);
  return out;
}

Result<BackupInfo> Store::inspectCopy(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return makeError(ErrorKind::NotFound, "no such file: " + path, path,
                     "give the path of a backup made by `certgate backup`");
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  detail::DbHandle db(raw);
  if (rc != SQLITE_OK) return detail::sqlError(db.get(), rc, "open copy", path);
  if (auto checked = checkIntegrity(db.get(), path, kIntegrityCheck); !checked)
    return checked.error();
  auto version = detail::readSchemaVersion(db.get(), path);
  if (!version) return version.error();
  if (*version == 0)
    return makeError(ErrorKind::Invalid, "not a certgate store (no schema version)", path,
                     "give the path of a backup made by `certgate backup`");
  BackupInfo info;
  info.path = path;
  info.schema_version = *version;
  info.bytes = static_cast<std::int64_t>(fs::file_size(path, ec));
  info.audit_head = AuditHead{0, kAuditGenesis};
  auto prepared = detail::prepare(db.get(), kAuditLast, false, "audit head of copy", path);
  if (!prepared) return prepared.error();
  Stmt last(std::move(*prepared), "audit head of copy", &path);
  auto found = last.stepRow();
  if (!found) return found.error();
  if (*found) info.audit_head = AuditHead{last.colInt(0), last.colText(1)};
  return info;
}

namespace {

// The copy, its check and its durable naming; `vacuum_into` runs VACUUM INTO the given file.
Result<BackupInfo> backupWith(const std::string& src_path, const std::string& dest_path,
                              const std::function<Status(const std::string&)>& vacuum_into) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (dest_path.empty()) return invalid(src_path, "backup: no destination path given");
  if (fs::exists(dest_path, ec)) {
    return makeError(ErrorKind::Conflict, "backup: '" + dest_path + "' already exists", src_path,
                     "choose a new file name; a backup never overwrites a file");
  }
  const std::string part = dest_path + ".part";
  // An empty file made 0600 first: VACUUM INTO fills an empty file and keeps its mode, so the
  // copy is never readable by others, not even for a moment.
  fs::remove(part, ec);
  const int fd = ::open(part.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return makeError(ErrorKind::Permanent,
                     "backup: cannot create '" + part + "': " + std::strerror(errno), src_path,
                     "check that the directory exists and is writable by certgate");
  ::close(fd);
  auto cleanup = [&] { fs::remove(part, ec); };
  if (auto copied = vacuum_into(part); !copied) {
    cleanup();
    return copied.error();
  }
  auto info = Store::inspectCopy(part);
  if (!info) {
    cleanup();
    return info.error();
  }
  // Durable before it gets its name: fsync the copy, link it (fails if the name was taken in
  // the meantime: never overwrite), drop the .part name and fsync the directory.
  const int cfd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = cfd >= 0 && ::fsync(cfd) == 0;
  if (cfd >= 0) ::close(cfd);
  if (!synced) {
    cleanup();
    return makeError(ErrorKind::Permanent, "backup: fsync of the copy failed", dest_path);
  }
  if (::link(part.c_str(), dest_path.c_str()) != 0) {
    const int err = errno;
    cleanup();
    if (err == EEXIST)
      return makeError(ErrorKind::Conflict, "backup: '" + dest_path + "' already exists", src_path,
                       "choose a new file name; a backup never overwrites a file");
    return makeError(ErrorKind::Permanent,
                     "backup: cannot name the copy '" + dest_path + "': " + std::strerror(err),
                     src_path);
  }
  cleanup();
  const std::string dir = fs::path(dest_path).parent_path().empty()
                              ? std::string(".")
                              : fs::path(dest_path).parent_path().string();
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  info->path = dest_path;
  return info;
}

}  // namespace

Result<BackupInfo> Store::backupTo(const std::string& dest_path) {
  if (cache_->tx_open || sqlite3_get_autocommit(db_) == 0) {
    return makeError(ErrorKind::Internal, "backup: cannot run inside a transaction", path_);
  }
  auto stmt = cache_->stmt(kVacuumInto, "backup (VACUUM INTO)");
  if (!stmt) return stmt.error();
  return backupWith(path_, dest_path, [&](const std::string& part) -> Status {
    stmt->bindText(1, part);
    return stmt->run();
  });
}

Result<BackupInfo> Store::backupFile(const std::string& store_path, const std::string& dest_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(store_path, ec))
    return makeError(ErrorKind::NotFound, "no store at " + store_path, store_path,
                     "check store.path; run `certgate ingest` to create the store");
  // Its own connection, without migrations: a backup taken before an upgrade is of the old
  // schema, exactly as it was.
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(store_path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  detail::DbHandle db(raw);
  if (rc != SQLITE_OK) return detail::sqlError(db.get(), rc, "open for backup", store_path);
  sqlite3_busy_timeout(db.get(), 5000);
  auto prepared = detail::prepare(db.get(), kVacuumInto, false, "backup (VACUUM INTO)", store_path);
  if (!prepared) return prepared.error();
  Stmt stmt(std::move(*prepared), "backup (VACUUM INTO)", &store_path);
  return backupWith(store_path, dest_path, [&](const std::string& part) -> Status {
    stmt.bindText(1, part);
    return stmt.run();
  });
}

// =============================================================================================
// Sources, cursors, units, fetches

Result<std::int64_t> Store::ensureSource(const std::string& name, const std::string& kind) {
  if (name.empty() || kind.empty()) {
    return invalid(path_, "ensureSource: a source needs a name and a kind");
  }
  return cache_->inWrite("ensureSource", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    {
      auto find = cache_->stmt(kFindSource, "ensureSource");
      if (!find) return find.error();
      find->bindText(1, name);
      auto row = find->stepRow();
      if (!row) return row.error();
      if (*row) {
        if (colView(*find, 1) != kind) {
          return makeError(ErrorKind::Conflict,
                           "source '" + name + "' is recorded as kind '" + find->colText(1) +
                               "' but configured as '" + kind + "'",
                           path_,
                           "facts and cursors belong to the recorded kind: give the new source "
                           "a new name");
        }
        return find->colInt(0);
      }
    }
    auto insert = cache_->stmt(kInsertSource, "ensureSource");
    if (!insert) return insert.error();
    insert->bindText(1, name);
    insert->bindText(2, kind);
    if (auto ran = insert->run(); !ran) return ran.error();
    return sqlite3_last_insert_rowid(db_);
  });
}

Result<std::vector<SourceRow>> Store::sources() {
  auto stmt = cache_->stmt(kListSources, "sources");
  if (!stmt) return stmt.error();
  return collect<SourceRow>(*stmt, [](const Stmt& s) {
    return SourceRow{s.colInt(0), s.colText(1), s.colText(2), s.colText(3)};
  });
}

Status Store::setCursor(std::int64_t source_id, const std::string& cursor) {
  return cache_->inWrite("setCursor", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kSetCursor, "setCursor");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, source_id);
    stmt->bindText(2, cursor);
    if (auto ran = stmt->run(); !ran) return ran;
    if (sqlite3_changes(db_) == 0) {
      return notFound(path_, "setCursor: no source with id " + std::to_string(source_id));
    }
    return {};
  });
}

Result<bool> Store::unitProcessed(std::int64_t source_id, const std::string& unit_key) {
  auto stmt = cache_->stmt(kUnitProcessed, "unitProcessed");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  stmt->bindText(2, unit_key);
  auto row = stmt->stepRow();
  if (!row) return row.error();
  return *row && stmt->colInt(0) != 0;
}

Result<std::vector<std::string>> Store::processedUnits(std::int64_t source_id) {
  auto stmt = cache_->stmt(kProcessedUnits, "processedUnits");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  std::vector<std::string> keys;
  for (;;) {
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return keys;
    if (rc != SQLITE_ROW) return stmt->error(rc);
    keys.emplace_back(colView(*stmt, 0));
  }
}

Status Store::recordUnit(std::int64_t source_id, const std::string& unit_key,
                         const std::string& name, std::int64_t bytes, bool complete,
                         const std::string& problem, Instant at, std::int64_t records) {
  if (unit_key.empty()) return invalid(path_, "recordUnit: empty unit key");
  return cache_->inWrite("recordUnit", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kRecordUnit, "recordUnit");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, source_id);
    stmt->bindText(2, unit_key);
    stmt->bindText(3, name);
    stmt->bindInt(4, bytes);
    stmt->bindBool(5, complete);
    stmt->bindText(6, problem);
    stmt->bindInstant(7, at);
    stmt->bindInt(8, records);
    return stmt->run();
  });
}

Result<std::int64_t> Store::lastCompleteUnitRecords(std::int64_t source_id) {
  auto stmt = cache_->stmt(kLastCompleteUnitRecords, "lastCompleteUnitRecords");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  return scalar(*stmt);
}

Result<std::int64_t> Store::lastCompleteFullRecords(std::int64_t source_id) {
  auto stmt = cache_->stmt(kLastCompleteFullRecords, "lastCompleteFullRecords");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  return scalar(*stmt);
}

Result<std::int64_t> Store::recordFetch(const FetchRow& fetch) {
  return cache_->inWrite("recordFetch", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    auto stmt = cache_->stmt(kInsertFetch, "recordFetch");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, fetch.source_id);
    stmt->bindId(2, fetch.run_id);
    stmt->bindInstant(3, fetch.started_at);
    stmt->bindInstant(4, fetch.finished_at);
    stmt->bindBool(5, fetch.complete);
    stmt->bindText(6, fetch.problem);
    stmt->bindInt(7, fetch.units_seen);
    stmt->bindInt(8, fetch.units_skipped);
    stmt->bindInt(9, fetch.records);
    stmt->bindInt(10, fetch.quarantined);
    if (fetch.full_records >= 0)
      stmt->bindInt(11, fetch.full_records);
    else
      stmt->bindNull(11);
    if (auto ran = stmt->run(); !ran) return ran.error();
    return sqlite3_last_insert_rowid(db_);
  });
}

Result<std::optional<FetchRow>> Store::lastFetch(std::int64_t source_id) {
  auto stmt = cache_->stmt(kLastFetch, "lastFetch");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  auto row = stmt->stepRow();
  if (!row) return row.error();
  if (!*row) return std::optional<FetchRow>{};
  FetchRow f;
  f.id = stmt->colInt(0);
  f.source_id = stmt->colInt(1);
  f.run_id = stmt->colInt(2);
  f.started_at = stmt->colInstant(3);
  f.finished_at = stmt->colInstant(4);
  f.complete = stmt->colInt(5) != 0;
  f.problem = stmt->colText(6);
  f.units_seen = stmt->colInt(7);
  f.units_skipped = stmt->colInt(8);
  f.records = stmt->colInt(9);
  f.quarantined = stmt->colInt(10);
  return std::optional<FetchRow>{std::move(f)};
}

// =============================================================================================
// Persons

Result<std::int64_t> Store::upsertPerson(const PersonRow& person) {
  if (person.key.empty()) return invalid(path_, "upsertPerson: a person needs a key");
  return cache_->inWrite("upsertPerson", Cache::Nested::Savepoint, [&]() -> Result<std::int64_t> {
    std::optional<PersonRow> known;
    {
      auto find = cache_->stmt(kPersonByKey, "upsertPerson");
      if (!find) return find.error();
      find->bindText(1, person.key);
      auto row = find->stepRow();
      if (!row) return row.error();
      if (*row) known = readPerson(*find);
    }
    if (!known && !person.employee_id.empty() && !person.email.empty()) {
      auto find = cache_->stmt(kPersonKeyedByEmail, "upsertPerson");
      if (!find) return find.error();
      find->bindText(1, person.email);
      auto row = find->stepRow();
      if (!row) return row.error();
      if (*row) known = readPerson(*find);
    }
    PersonRow merged = known ? *known : person;
    if (known) {
      merged.key = person.key;
      auto keep = [](std::string& field, const std::string& incoming) {
        if (!incoming.empty()) field = incoming;
      };
      keep(merged.employee_id, person.employee_id);
      keep(merged.email, person.email);
      keep(merged.display_name, person.display_name);
      keep(merged.population, person.population);
    }
    const std::int64_t self = known ? known->id : 0;

    // Each identifier belongs to one person: refuse before writing anything.
    struct Identifier {
      const char* kind;
      const std::string* value;
      std::int64_t owner = 0;
    };
    Identifier identifiers[] = {{"employee_id", &merged.employee_id}, {"email", &merged.email}};
    for (Identifier& id : identifiers) {
      if (id.value->empty()) continue;
      auto owner = cache_->stmt(kIdentifierOwner, "upsertPerson");
      if (!owner) return owner.error();
      owner->bindLiteral(1, id.kind);
      owner->bindText(2, *id.value);
      auto row = owner->stepRow();
      if (!row) return row.error();
      if (!*row) continue;
      id.owner = owner->colInt(0);
      if (id.owner != self) {
        return makeError(ErrorKind::Conflict,
                         std::string(id.kind) + " '" + *id.value + "' belongs to person '" +
                             owner->colText(1) + "', not to '" + person.key + "'",
                         path_,
                         "resolve the person first (findPerson) and upsert under that key, or "
                         "fix the identity data in the source");
      }
    }

    std::int64_t id = self;
    if (!known) {
      auto insert = cache_->stmt(kInsertPerson, "upsertPerson");
      if (!insert) return insert.error();
      const Instant first_seen =
          person.first_seen == Instant{} ? person.updated_at : person.first_seen;
      insert->bindText(1, merged.key);
      insert->bindText(2, merged.employee_id);
      insert->bindText(3, merged.email);
      insert->bindText(4, merged.display_name);
      insert->bindText(5, merged.population);
      insert->bindInstant(6, first_seen);
      insert->bindInstant(7, person.updated_at);
      if (auto ran = insert->run(); !ran) return ran.error();
      id = sqlite3_last_insert_rowid(db_);
    } else if (merged.key != known->key || merged.employee_id != known->employee_id ||
               merged.email != known->email || merged.display_name != known->display_name ||
               merged.population != known->population) {
      auto update = cache_->stmt(kUpdatePerson, "upsertPerson");
      if (!update) return update.error();
      update->bindInt(1, id);
      update->bindText(2, merged.employee_id);
      update->bindText(3, merged.email);
      update->bindText(4, merged.display_name);
      update->bindText(5, merged.population);
      update->bindInstant(6, person.updated_at);
      update->bindText(7, merged.key);
      if (auto ran = update->run(); !ran) return ran.error();
    }

    for (const Identifier& ident : identifiers) {
      if (ident.value->empty() || ident.owner == id) continue;
      {
        auto drop = cache_->stmt(kDropIdentifier, "upsertPerson");
        if (!drop) return drop.error();
        drop->bindInt(1, id);
        drop->bindLiteral(2, ident.kind);
        if (auto ran = drop->run(); !ran) return ran.error();
      }
      auto add = cache_->stmt(kAddIdentifier, "upsertPerson");
      if (!add) return add.error();
      add->bindLiteral(1, ident.kind);
      add->bindText(2, *ident.value);
      add->bindInt(3, id);
      if (auto ran = add->run(); !ran) return ran.error();
    }
    return id;
  });
}

Result<std::vector<PersonRow>> Store::persons() {
  auto stmt = cache_->stmt(kListPersons, "persons");
  if (!stmt) return stmt.error();
  return collect<PersonRow>(*stmt, readPerson);
}

Status Store::forEachPersonIdentity(
    const std::function<void(std::int64_t, std::string_view, std::string_view, std::string_view)>&
        fn,
    std::int64_t* count) {
  auto scope = cache_->read("persons");
  if (!scope) return scope.error();
  if (count != nullptr) {
    auto counted = cache_->stmt(kCountPersons, "persons");
    if (!counted) return counted.error();
    auto n = scalar(*counted);
    if (!n) return n.error();
    *count = *n;
  }
  auto stmt = cache_->stmt(kPersonIdentities, "persons");
  if (!stmt) return stmt.error();
  for (;;) {
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return stmt->error(rc);
    fn(stmt->colInt(0), colView(*stmt, 1), colView(*stmt, 2), colView(*stmt, 3));
  }
  return scope->commit();
}

Result<std::optional<PersonRow>> Store::findPerson(const std::string& key_or_identifier) {
  auto stmt = cache_->stmt(kFindPerson, "findPerson");
  if (!stmt) return stmt.error();
  stmt->bindText(1, key_or_identifier);
  auto row = stmt->stepRow();
  if (!row) return row.error();
  if (!*row) return std::optional<PersonRow>{};
  return std::optional<PersonRow>{readPerson(*stmt)};
}

// =============================================================================================
// Facts

namespace {

Error factKeyCollision(const std::string& path, const std::string& external_id) {
  return invalid(path, "upsertFact: fact key collision: external id '" + external_id +
                           "' hashes to the key of another fact of the same source; the fact "
                           "was not stored");
}

// Binds a fact in the parameter layout of kUpdateFact (?1..?16).
void bindFact(Stmt& stmt, const FactRow& fact, std::int64_t key, Instant now) {
  stmt.bindInt(1, fact.source_id);
  stmt.bindText(2, fact.external_id);
  stmt.bindId(3, fact.person_id);
  stmt.bindText(4, fact.item);
  stmt.bindText(5, fact.lms_item);
  stmt.bindLiteral(6, kindText(fact.kind));
  stmt.bindLiteral(7, statusText(fact.status));
  stmt.bindInt(8, fact.lms_pass);
  stmt.bindInt(9, fact.attempt);
  stmt.bindDouble(10, fact.score);
  stmt.bindDouble(11, fact.max_score);
  stmt.bindInstant(12, fact.at);
  stmt.bindInstant(13, fact.lms_expiry);
  stmt.bindText(14, fact.location);
  stmt.bindInstant(15, now);
  stmt.bindInt(16, key);
}

// "<head> (?1, ?2, ...), (?n+1, ...)..." for `rows` rows; `row` lists one row's parameters (1 to
// width, a number may repeat), the next row's are `width` higher.
std::string valuesSql(const char* head, std::initializer_list<int> row, int width, std::size_t rows) {
  std::string sql = head;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ", (";
    bool first = true;
    for (int p : row) {
      if (!first) sql += ", ";
      first = false;
      sql += '?';
      sql += std::to_string(static_cast<std::size_t>(p) + r * static_cast<std::size_t>(width));
    }
    sql += ')';
  }
  return sql;
}

// A multi-row INSERT of kRowsPerInsert rows and its one-row form, built once per process (the
// statement cache keys on the text's address).
struct RowInsert {
  std::string many;
  std::string one;
  int width;
};
RowInsert makeRowInsert(const char* head, std::initializer_list<int> row, int width) {
  return {valuesSql(head, row, width, kRowsPerInsert), valuesSql(head, row, width, 1), width};
}
const RowInsert& factInsert() {
  static const RowInsert insert =
      makeRowInsert(kInsertFactHead, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 17},
                    kInsertFactWidth);
  return insert;
}
const RowInsert& factKeyInsert() {
  static const RowInsert insert = makeRowInsert(kInsertFactKeyHead, {1, 2, 3}, 3);
  return insert;
}
const RowInsert& factOrderInsert() {
  static const RowInsert insert = makeRowInsert(kInsertFactOrderHead, {1, 2, 3}, 3);
  return insert;
}

// Inserts `count` rows: kRowsPerInsert at a time, the rest one by one. bind(stmt, base, i) binds
// row i at parameters base+1 onwards. (`cache` is the Store's statement cache.)
template <typename CacheT, typename Bind>
Status insertRows(CacheT& cache, const RowInsert& insert, std::size_t count, std::string_view op,
                  Bind&& bind) {
  std::size_t i = 0;
  if (count >= kRowsPerInsert) {
    auto many = cache.stmt(insert.many.c_str(), op);
    if (!many) return many.error();
    for (; i + kRowsPerInsert <= count; i += kRowsPerInsert) {
      for (std::size_t r = 0; r < kRowsPerInsert; ++r)
        bind(*many, static_cast<int>(r) * insert.width, i + r);
      if (auto ran = many->run(); !ran) return ran.error();
      many->reset();
    }
  }
  if (i == count) return {};
  auto one = cache.stmt(insert.one.c_str(), op);
  if (!one) return one.error();
  for (; i < count; ++i) {
    bind(*one, 0, i);
    if (auto ran = one->run(); !ran) return ran.error();
    one->reset();
  }
  return {};
}

// Binds a new fact at parameters base+1..base+17 of factInsert().
void bindNewFact(Stmt& stmt, int base, std::int64_t id, const FactRow& fact, std::int64_t key,
                 Instant now) {
  stmt.bindInt(base + 1, id);
  stmt.bindInt(base + 2, fact.source_id);
  stmt.bindText(base + 3, fact.external_id);
  stmt.bindInt(base + 4, key);
  stmt.bindId(base + 5, fact.person_id);
  stmt.bindText(base + 6, fact.item);
  stmt.bindText(base + 7, fact.lms_item);
  stmt.bindLiteral(base + 8, kindText(fact.kind));
  stmt.bindLiteral(base + 9, statusText(fact.status));
  stmt.bindInt(base + 10, fact.lms_pass);
  stmt.bindInt(base + 11, fact.attempt);
  stmt.bindDouble(base + 12, fact.score);
  stmt.bindDouble(base + 13, fact.max_score);
  stmt.bindInstant(base + 14, fact.at);
  stmt.bindInstant(base + 15, fact.lms_expiry);
  stmt.bindText(base + 16, fact.location);
  stmt.bindInstant(base + 17, now);
}

}  // namespace

Result<UpsertOutcome> Store::upsertFact(const FactRow& fact, Instant now) {
  // During a fact load: what waits is written first, and the load stops answering probes from
  // memory (this write is not one it tracks). A first load's keys kept in memory are then
  // written from the facts table by the next write of its source's facts (repairFactKeys).
  if (cache_->load) {
    if (auto flushed = flushFactLoad(); !flushed) return flushed.error();
    cache_->load->all_keys_known = false;
    cache_->load->known = {};
  }
  // A savepoint: the row and its fact_keys / fact_order entries are written together or not at
  // all, and a failure leaves an open Transaction usable.
  auto counts = cache_->inWrite("upsertFact", Cache::Nested::Savepoint, [&] {
    return writeFacts(std::span<const FactRow>(&fact, 1), now, false);
  });
  if (!counts) return counts.error();
  if (counts->inserted > 0) return UpsertOutcome::Inserted;
  if (counts->updated > 0) return UpsertOutcome::Updated;
  return UpsertOutcome::Unchanged;
}

Result<UpsertCounts> Store::upsertFacts(std::span<const FactRow> facts, Instant now) {
  if (facts.empty()) return UpsertCounts{};
  // No savepoint: on a large batch it would copy every index page the batch touches. A failure
  // part-way inside a Transaction instead leaves it able only to roll back.
  const bool in_load = cache_->load.has_value();
  if (in_load && !cache_->tx_open) {
    return makeError(ErrorKind::Internal,
                     "upsertFacts: a fact load writes inside a Transaction (Store::begin)", path_);
  }
  auto counts = cache_->inWrite("upsertFacts", Cache::Nested::Join,
                                [&] { return writeFacts(facts, now, in_load); });
  if (!counts && cache_->tx_open && cache_->batch_started) cache_->tx_broken = true;
  return counts;
}

Result<UpsertCounts> Store::writeFacts(std::span<const FactRow> facts, Instant now,
                                       bool in_load) {
  cache_->batch_started = false;
  Cache::FactLoad* load = in_load ? &*cache_->load : nullptr;
  if (facts.size() > std::numeric_limits<std::uint32_t>::max()) {
    return invalid(path_, "upsertFacts: too many facts in one batch");
  }
  for (const FactRow& fact : facts) {
    if (fact.source_id <= 0 || fact.external_id.empty()) {
      return invalid(path_, "upsertFact: a fact needs a source id and an external id");
    }
    if (fact.lms_pass < -1 || fact.lms_pass > 1) {
      return invalid(path_,
                     "upsertFact: lms_pass must be -1, 0 or 1 (fact '" + fact.external_id + "')");
    }
    if (load != nullptr && fact.source_id != load->source_id) {
      return invalid(path_, "upsertFacts: the fact load is of source " +
                                std::to_string(load->source_id) + ", not of source " +
                                std::to_string(fact.source_id));
    }
  }
  if (auto persons = checkPersonRange(facts); !persons) return persons.error();
  const auto n = static_cast<std::uint32_t>(facts.size());

  // The batch in key order; a key's facts in arrival order.
  struct Keyed {
    std::int64_t source_id;
    std::int64_t key;
    std::uint32_t index;
  };
  std::vector<Keyed> by_key;
  by_key.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i)
    by_key.push_back({facts[i].source_id, factKey(facts[i].external_id), i});
  std::sort(by_key.begin(), by_key.end(), [](const Keyed& a, const Keyed& b) {
    if (a.source_id != b.source_id) return a.source_id < b.source_id;
    if (a.key != b.key) return a.key < b.key;
    return a.index < b.index;
  });

  // One run per distinct key: the row it names and that row's stored person and time.
  struct Run {
    std::int64_t source_id;
    std::int64_t key;
    std::uint32_t first;  // the key's first fact in the batch
    bool exists = false;  // stored before this batch
    std::int64_t fact_id = 0;
    std::int64_t person_id = 0;
    std::int64_t at = 0;
  };
  std::vector<Run> runs;
  std::vector<std::uint32_t> run_of(n);
  for (const Keyed& k : by_key) {
    if (runs.empty() || runs.back().source_id != k.source_id || runs.back().key != k.key) {
      runs.push_back({k.source_id, k.key, k.index});
    } else if (facts[k.index].external_id != facts[runs.back().first].external_id) {
      return factKeyCollision(path_, facts[k.index].external_id);
    }
    run_of[k.index] = static_cast<std::uint32_t>(runs.size() - 1);
  }
  by_key.clear();
  by_key.shrink_to_fit();

  // A fact load: a key added earlier in this transaction may still wait to be written; then
  // everything waiting is written first, so the probe (and a move in person order) finds it.
  // If the load knows every stored key, only keys it knows of are probed.
  // A first load answers from memory alone (its keys are not in fact_keys yet); any other
  // write first gives the source's facts the entries a first load left missing.
  std::vector<bool> maybe_stored;
  if (load != nullptr && load->all_keys_known) {
    // Facts of the source that another connection added since this load's last write end its
    // answers from memory: from here on it probes the store, as a plain load does.
    auto max_id = cache_->stmt(kMaxFactId, "upsertFacts: foreign facts");
    if (!max_id) return max_id.error();
    auto last = scalar(*max_id);
    if (!last) return last.error();
    if (*last >= load->next_id) {
      auto foreign = cache_->stmt(kForeignFacts, "upsertFacts: foreign facts");
      if (!foreign) return foreign.error();
      foreign->bindInt(1, load->next_id);
      foreign->bindInt(2, *last);
      foreign->bindInt(3, load->source_id);
      auto row = foreign->stepRow();
      if (!row) return row.error();
      foreign->reset();
      if (*row) {
        load->all_keys_known = false;
        load->known = {};
      }
    }
    load->next_id = *last + 1;
  }
  if (load != nullptr) {
    if (load->pending() > 0) {
      bool waiting = false;
      markIn(load->tx_keys, runs, [&](std::size_t, const KeyEntry&) { waiting = true; });
      if (waiting) {
        if (auto flushed = flushFactLoad(); !flushed) return flushed.error();
      }
    }
    if (load->all_keys_known) {
      maybe_stored.assign(runs.size(), false);
      auto found = [&](std::size_t i, const KeyEntry& entry) {
        runs[i].exists = true;
        runs[i].fact_id = entry.fact_id;
      };
      markIn(load->known, runs, found);
      markIn(load->tx_keys, runs, found);
    }
  }
  if (maybe_stored.empty()) {
    for (std::size_t r = 0; r < runs.size(); ++r) {
      if (r > 0 && runs[r].source_id == runs[r - 1].source_id) continue;
      if (auto repaired = repairFactKeys(runs[r].source_id); !repaired) return repaired.error();
    }
  }
  // Which keys are stored: probed in key order, so the B-tree pages are visited in order.
  {
    auto probe = cache_->stmt(kProbeFactKey, "upsertFacts: find keys");
    if (!probe) return probe.error();
    for (std::size_t r = 0; r < runs.size(); ++r) {
      Run& run = runs[r];
      if (!maybe_stored.empty() && !maybe_stored[r]) continue;
      probe->bindInt(1, run.source_id);
      probe->bindInt(2, run.key);
      auto row = probe->stepRow();
      if (!row) return row.error();
      if (*row) {
        run.exists = true;
        run.fact_id = probe->colInt(0);
      }
      probe->reset();
    }
  }
  // The stored rows, in id order: a key owned by another external id is a collision.
  std::vector<std::uint32_t> stored;
  std::vector<std::uint32_t> fresh;
  for (std::uint32_t r = 0; r < runs.size(); ++r) (runs[r].exists ? stored : fresh).push_back(r);
  if (!stored.empty()) {
    std::sort(stored.begin(), stored.end(),
              [&](std::uint32_t a, std::uint32_t b) { return runs[a].fact_id < runs[b].fact_id; });
    auto state = cache_->stmt(kFactState, "upsertFacts: read stored facts");
    if (!state) return state.error();
    for (std::uint32_t r : stored) {
      Run& run = runs[r];
      state->bindInt(1, run.fact_id);
      auto row = state->stepRow();
      if (!row) return row.error();
      if (!*row) {
        return detail::corruptError(path_, "fact_keys names fact " + std::to_string(run.fact_id) +
                                               ", which does not exist");
      }
      if (colView(*state, 0) != facts[run.first].external_id) {
        return factKeyCollision(path_, facts[run.first].external_id);
      }
      run.person_id = state->colInt(1);
      run.at = state->colInt(2);
      state->reset();
    }
  }

  // Everything is checked: from here on the batch writes.
  cache_->batch_started = true;
  UpsertCounts counts;

  // New rows, appended in arrival order: the ids one-by-one upserts would have given them.
  // (A run's first fact, in batch order: one pass instead of a sort.)
  if (!fresh.empty()) {
    fresh.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t r = run_of[i];
      if (!runs[r].exists && runs[r].first == i) fresh.push_back(r);
    }
  }
  if (!fresh.empty()) {
    std::int64_t next_id = 0;
    {
      auto max_id = cache_->stmt(kMaxFactId, "upsertFacts: next fact id");
      if (!max_id) return max_id.error();
      auto last = scalar(*max_id);
      if (!last) return last.error();
      next_id = *last + 1;
    }
    for (std::uint32_t r : fresh) {
      Run& run = runs[r];
      const FactRow& fact = facts[run.first];
      run.fact_id = next_id++;
      run.person_id = fact.person_id;
      run.at = detail::toUnix(fact.at);
    }
    if (auto st = insertRows(*cache_, factInsert(), fresh.size(), "upsertFacts: insert",
                             [&](Stmt& stmt, int base, std::size_t i) {
                               const Run& run = runs[fresh[i]];
                               bindNewFact(stmt, base, run.fact_id, facts[run.first], run.key, now);
                             });
        !st)
      return st.error();
    counts.inserted += static_cast<std::int64_t>(fresh.size());
    if (load != nullptr) {
      // A fact load: their index entries wait (runs are in key order, so tx_keys stays sorted
      // by a merge).
      // A first load's keys stay in memory: the transaction marks its facts as without
      // fact_keys entries (from its first new id on) until endFactLoad writes them.
      std::vector<KeyEntry> added;
      added.reserve(fresh.size());
      for (const Run& run : runs) {
        if (run.exists) continue;
        added.push_back({run.key, run.fact_id});
        if (!load->all_keys_known) load->pending_keys.push_back({run.key, run.fact_id});
        if (run.person_id != 0) load->pending_order.push_back({run.person_id, run.at, run.fact_id});
      }
      if (load->all_keys_known) load->next_id = runs[fresh.back()].fact_id + 1;
      if (load->all_keys_known && !load->tx_marked) {
        auto mark = cache_->stmt(kMarkKeysFrom, "upsertFacts: mark keys");
        if (!mark) return mark.error();
        mark->bindInt(1, load->source_id);
        mark->bindInt(2, runs[fresh.front()].fact_id);
        if (auto ran = mark->run(); !ran) return ran.error();
        load->tx_marked = true;
      }
      mergeSorted(load->tx_keys, added);
      fresh.clear();
    } else {
      // Their keys, in key order (runs are in key order).
      std::vector<std::uint32_t> fresh_by_key;
      fresh_by_key.reserve(fresh.size());
      for (std::uint32_t r = 0; r < runs.size(); ++r)
        if (!runs[r].exists) fresh_by_key.push_back(r);
      if (auto st = insertRows(*cache_, factKeyInsert(), fresh_by_key.size(),
                               "upsertFacts: insert keys",
                               [&](Stmt& stmt, int base, std::size_t i) {
                                 const Run& run = runs[fresh_by_key[i]];
                                 stmt.bindInt(base + 1, run.source_id);
                                 stmt.bindInt(base + 2, run.key);
                                 stmt.bindInt(base + 3, run.fact_id);
                               });
          !st)
        return st.error();
      fresh_by_key = {};
      // Their place in person order, in that order.
      std::vector<Cache::FactLoad::OrderEntry> placed;
      placed.reserve(fresh.size());
      for (std::uint32_t r : fresh)
        if (runs[r].person_id != 0)
          placed.push_back({runs[r].person_id, runs[r].at, runs[r].fact_id});
      fresh.clear();
      fresh.shrink_to_fit();
      std::sort(placed.begin(), placed.end());
      if (auto st = insertRows(*cache_, factOrderInsert(), placed.size(),
                               "upsertFacts: insert person order",
                               [&](Stmt& stmt, int base, std::size_t i) {
                                 stmt.bindInt(base + 1, placed[i].person_id);
                                 stmt.bindInt(base + 2, placed[i].at);
                                 stmt.bindInt(base + 3, placed[i].fact_id);
                               });
          !st)
        return st.error();
    }
  }

  // The rest: facts whose key was stored, and repeats of a key within the batch, in row order
  // (a key's facts keep their arrival order).
  std::vector<std::pair<std::int64_t, std::uint32_t>> rest;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Run& run = runs[run_of[i]];
    if (!run.exists && run.first == i) continue;
    rest.emplace_back(run.fact_id, i);
  }
  // A fact load writes what waits first: a repeat may move a fact added above in person order.
  if (load != nullptr && (!rest.empty() || load->pending() >= load->options.max_pending)) {
    if (auto flushed = flushFactLoad(); !flushed) return flushed.error();
  }
  if (rest.empty()) return counts;
  std::sort(rest.begin(), rest.end());
  auto update = cache_->stmt(kUpdateFact, "upsertFacts: update");
  if (!update) return update.error();
  for (const auto& [fact_id, i] : rest) {
    const FactRow& fact = facts[i];
    Run& run = runs[run_of[i]];
    bindFact(*update, fact, run.key, now);
    update->bindInt(17, fact_id);
    if (auto ran = update->run(); !ran) return ran.error();
    update->reset();
    if (sqlite3_changes(db_) == 0) {
      auto touch = cache_->stmt(kTouchFact, "upsertFacts: touch");
      if (!touch) return touch.error();
      touch->bindInt(1, fact_id);
      touch->bindInstant(2, now);
      if (auto ran = touch->run(); !ran) return ran.error();
      ++counts.unchanged;
      continue;
    }
    ++counts.updated;
    const std::int64_t at = detail::toUnix(fact.at);
    if (run.person_id == fact.person_id && run.at == at) continue;
    if (run.person_id != 0) {
      auto drop = cache_->stmt(kDeleteFactOrder, "upsertFacts: move in person order");
      if (!drop) return drop.error();
      drop->bindInt(1, run.person_id);
      drop->bindInt(2, run.at);
      drop->bindInt(3, fact_id);
      if (auto ran = drop->run(); !ran) return ran.error();
    }
    if (fact.person_id != 0) {
      auto add = cache_->stmt(kInsertFactOrder, "upsertFacts: move in person order");
      if (!add) return add.error();
      add->bindInt(1, fact.person_id);
      add->bindInt(2, at);
      add->bindInt(3, fact_id);
      if (auto ran = add->run(); !ran) return ran.error();
    }
    run.person_id = fact.person_id;
    run.at = at;
  }
  return counts;
}

// fact_order has no person foreign key (migration 11): persons are never deleted, and every
// batch's person ids must lie within the ids persons has handed out.
Status Store::checkPersonRange(std::span<const FactRow> facts) {
  std::int64_t lowest = 0;
  std::int64_t highest = 0;
  const FactRow* first_bad = nullptr;
  for (const FactRow& fact : facts) {
    if (fact.person_id == 0) continue;
    if (fact.person_id < 0 && first_bad == nullptr) first_bad = &fact;
    if (lowest == 0 || fact.person_id < lowest) lowest = fact.person_id;
    if (fact.person_id > highest) highest = fact.person_id;
  }
  if (highest == 0 && first_bad == nullptr) return {};
  std::int64_t known = 0;
  if (first_bad == nullptr) {
    auto max_id = cache_->stmt(kMaxPersonId, "upsertFacts: check persons");
    if (!max_id) return max_id.error();
    auto last = scalar(*max_id);
    if (!last) return last.error();
    known = *last;
    if (lowest >= 1 && highest <= known) return {};
    for (const FactRow& fact : facts)
      if (fact.person_id != 0 && (fact.person_id < 1 || fact.person_id > known)) {
        first_bad = &fact;
        break;
      }
  }
  return makeError(ErrorKind::Invalid,
                   "upsertFacts: fact '" + first_bad->external_id + "' names person " +
                       std::to_string(first_bad->person_id) + ", which does not exist",
                   path_, "pass a person id read from the store (persons, upsertPerson), or 0");
}

// A first load's fact_keys entries, in one sorted pass at its end: those of its facts at or
// above sources.keys_from (all of them, unless another writer wrote some meanwhile), and the
// mark cleared, in one transaction.
Status Store::writeLoadKeys() {
  Cache::FactLoad& load = *cache_->load;
  return cache_->inWrite("endFactLoad: keys", Cache::Nested::Join, [&]() -> Status {
    auto mark = keysFrom(load.source_id);
    if (!mark) return mark.error();
    if (!mark->has_value()) return {};  // written by another writer already
    const std::int64_t from = **mark;
    std::vector<KeyEntry> later;
    const std::vector<KeyEntry>* keys = &load.known;
    if (std::any_of(load.known.begin(), load.known.end(),
                    [&](const KeyEntry& e) { return e.fact_id < from; })) {
      std::copy_if(load.known.begin(), load.known.end(), std::back_inserter(later),
                   [&](const KeyEntry& e) { return e.fact_id >= from; });
      keys = &later;
    }
    if (auto st = insertRows(*cache_, factKeyInsert(), keys->size(), "endFactLoad: keys",
                             [&](Stmt& stmt, int base, std::size_t i) {
                               stmt.bindInt(base + 1, load.source_id);
                               stmt.bindInt(base + 2, (*keys)[i].key);
                               stmt.bindInt(base + 3, (*keys)[i].fact_id);
                             });
        !st)
      return st;
    auto clear = cache_->stmt(kClearKeysFrom, "endFactLoad: keys");
    if (!clear) return clear.error();
    clear->bindInt(1, load.source_id);
    return clear->run();
  });
}

Result<std::optional<std::int64_t>> Store::keysFrom(std::int64_t source_id) {
  auto stmt = cache_->stmt(kKeysFrom, "fact keys mark");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, source_id);
  auto row = stmt->stepRow();
  if (!row) return row.error();
  if (!*row) return std::optional<std::int64_t>{};
  return std::optional<std::int64_t>(stmt->colInt(0));
}

Status Store::repairFactKeys(std::int64_t source_id) {
  auto marked = [&] { return keysFrom(source_id); };
  auto seen = marked();
  if (!seen) return seen.error();
  if (!seen->has_value()) return {};
  return cache_->inWrite("repair fact keys", Cache::Nested::Join, [&]() -> Status {
    auto from = marked();  // again, inside the write: another writer may have done it
    if (!from) return from.error();
    if (!from->has_value()) return {};
    cache_->batch_started = true;
    auto repair = cache_->stmt(kRepairFactKeys, "repair fact keys");
    if (!repair) return repair.error();
    repair->bindInt(1, source_id);
    repair->bindInt(2, **from);
    if (auto ran = repair->run(); !ran) {
      if ((sqlite3_extended_errcode(db_) & 0xff) != SQLITE_CONSTRAINT) return ran;
      return makeError(ErrorKind::Corrupt,
                       "the facts of source " + std::to_string(source_id) + " from id " +
                           std::to_string(**from) +
                           " have no fact_keys entries, and writing them failed: " +
                           ran.error().message,
                       path_,
                       "two facts of the source share an external id (two ingests of the source "
                       "ran at once); restore the last backup (certgate restore) and ingest again");
    }
    auto clear = cache_->stmt(kClearKeysFrom, "repair fact keys");
    if (!clear) return clear.error();
    clear->bindInt(1, source_id);
    return clear->run();
  });
}

Status Store::flushFactLoad() {
  if (!cache_->load || cache_->load->pending() == 0) return {};
  Cache::FactLoad& load = *cache_->load;
  cache_->batch_started = true;  // a failure from here on leaves part of it written
  auto failed = [&](const Error& e) -> Status {
    if (cache_->tx_open) cache_->tx_broken = true;
    return e;
  };
  std::sort(load.pending_keys.begin(), load.pending_keys.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  if (auto st = insertRows(*cache_, factKeyInsert(), load.pending_keys.size(),
                           "fact load: insert keys",
                           [&](Stmt& stmt, int base, std::size_t i) {
                             stmt.bindInt(base + 1, load.source_id);
                             stmt.bindInt(base + 2, load.pending_keys[i].key);
                             stmt.bindInt(base + 3, load.pending_keys[i].fact_id);
                           });
      !st)
    return failed(st.error());
  std::sort(load.pending_order.begin(), load.pending_order.end());
  if (auto st = insertRows(*cache_, factOrderInsert(), load.pending_order.size(),
                           "fact load: insert person order",
                           [&](Stmt& stmt, int base, std::size_t i) {
                             stmt.bindInt(base + 1, load.pending_order[i].person_id);
                             stmt.bindInt(base + 2, load.pending_order[i].at);
                             stmt.bindInt(base + 3, load.pending_order[i].fact_id);
                           });
      !st)
    return failed(st.error());
  load.pending_keys = {};
  load.pending_order = {};
  return {};
}

Status Store::beginFactLoad(std::int64_t source_id, const FactLoadOptions& options) {
  if (cache_->load) return invalid(path_, "beginFactLoad: a fact load is already running");
  if (cache_->tx_open || sqlite3_get_autocommit(db_) == 0) {
    return invalid(path_, "beginFactLoad: a transaction is open; begin the load before it");
  }
  if (source_id <= 0) return invalid(path_, "beginFactLoad: no source id");
  cache_->finishing.reset();  // the last load's checkpoint thread, once its round is done
  // A first load that ended without writing its keys: they are written first, so that the
  // facts it stored count as stored.
  if (auto repaired = repairFactKeys(source_id); !repaired) return repaired;
  auto any = cache_->stmt(kAnyFactKey, "beginFactLoad");
  if (!any) return any.error();
  any->bindInt(1, source_id);
  auto row = any->stepRow();
  if (!row) return row.error();
  Cache::FactLoad load;
  load.source_id = source_id;
  load.options = options;
  if (load.options.max_pending < 1) load.options.max_pending = 1;
  load.all_keys_known = !*row;
  any->reset();
  if (load.all_keys_known) {
    auto max_id = cache_->stmt(kMaxFactId, "beginFactLoad");
    if (!max_id) return max_id.error();
    auto last = scalar(*max_id);
    if (!last) return last.error();
    load.next_id = *last + 1;
  }
  if (options.checkpoint_thread) {
    // Without a second connection (a read-only file system, too many open files) the writer
    // keeps checkpointing itself.
    load.checkpointer = Checkpointer::start(path_);
    if (load.checkpointer) {
      if (auto off = detail::execScript(db_, kNoAutoCheckpoint, "beginFactLoad", path_); !off)
        return off;
    }
  }
  cache_->load.emplace(std::move(load));
  return {};
}

Status Store::endFactLoad() {
  if (!cache_->load) return {};
  Status flushed;
  if (cache_->tx_open) {
    flushed = flushFactLoad();  // the open Transaction commits them
    // A first load's keys: sources.keys_from stays, and the next write of the source's facts
    // writes them from the table (repairFactKeys).
  } else if (cache_->load->all_keys_known && !cache_->load->known.empty()) {
    flushed = writeLoadKeys();
    if (flushed && cache_->load->checkpointer) cache_->load->checkpointer->poke();
  }
  const bool had_checkpointer = cache_->load->checkpointer != nullptr;
  // The last round (the last unit's pages) runs on: the load's data is committed and durable,
  // and the next automatic checkpoint on this connection finds the checkpoint lock taken and
  // leaves the work to it.
  cache_->finishing = std::move(cache_->load->checkpointer);
  if (cache_->finishing) cache_->finishing->finish();  // no idle thread between loads
  cache_->load.reset();
  if (had_checkpointer) {
    if (auto on = detail::execScript(db_, kAutoCheckpoint, "endFactLoad", path_); !on && flushed)
      return on;
  }
  return flushed;
}

Store::FactLoadState Store::factLoadState() const {
  FactLoadState state;
  if (!cache_->load) return state;
  const Cache::FactLoad& load = *cache_->load;
  state.active = true;
  state.all_keys_known = load.all_keys_known;
  state.known_keys = load.known.size();
  state.pending = load.pending();
  state.checkpoints = load.checkpointer ? load.checkpointer->rounds() : 0;
  return state;
}

Status Store::forEachFact(const std::function<void(const FactRow&)>& fn) {
  if (auto flushed = flushFactLoad(); !flushed) return flushed;  // a fact load's waiting entries
  // Two statements: one snapshot, so that a writer on another connection cannot slip between.
  auto scope = cache_->read("forEachFact");
  if (!scope) return scope.error();
  FactRow fact;
  for (const char* sql : {kUnresolvedFacts, kAllFacts}) {
    auto stmt = cache_->stmt(sql, "forEachFact");
    if (!stmt) return stmt.error();
    for (;;) {
      const int rc = stmt->step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return stmt->error(rc);
      if (auto read = readFact(*stmt, fact, path_); !read) return read;
      fn(fact);
    }
  }
  return scope->commit();
}

Result<std::vector<FactRow>> Store::factsOf(std::int64_t person_id) {
  if (auto flushed = flushFactLoad(); !flushed) return flushed.error();
  auto stmt = cache_->stmt(kFactsOf, "factsOf");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, person_id);
  std::vector<FactRow> facts;
  for (;;) {
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return facts;
    if (rc != SQLITE_ROW) return stmt->error(rc);
    FactRow& fact = facts.emplace_back();
    if (auto read = readFact(*stmt, fact, path_); !read) return read.error();
  }
}

Result<std::int64_t> Store::countFacts() {
  auto stmt = cache_->stmt(kCountFacts, "countFacts");
  if (!stmt) return stmt.error();
  return scalar(*stmt);
}

// =============================================================================================
// Quarantine

Status Store::addQuarantine(const QuarantineRow& row) {
  if (row.reason.empty())
    return invalid(path_, "addQuarantine: a quarantined record needs a reason");
  return cache_->inWrite("addQuarantine", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kAddQuarantine, "addQuarantine");
    if (!stmt) return stmt.error();
    stmt->bindId(1, row.source_id);
    stmt->bindText(2, row.external_id);
    stmt->bindText(3, row.location);
    stmt->bindText(4, row.reason);
    stmt->bindText(5, row.raw);
    stmt->bindInstant(6, row.at);
    stmt->bindId(7, row.run_id);
    return stmt->run();
  });
}

Result<std::vector<QuarantineRow>> Store::quarantine(std::int64_t limit) {
  auto stmt = cache_->stmt(kListQuarantine, "quarantine");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, limit);
  return collect<QuarantineRow>(*stmt, [](const Stmt& s) {
    QuarantineRow q;
    q.id = s.colInt(0);
    q.source_id = s.colInt(1);
    q.source_name = s.colText(2);
    q.external_id = s.colText(3);
    q.location = s.colText(4);
    q.reason = s.colText(5);
    q.raw = s.colText(6);
    q.at = s.colInstant(7);
    q.run_id = s.colInt(8);
    return q;
  });
}

Result<std::int64_t> Store::countQuarantine() {
  auto stmt = cache_->stmt(kCountQuarantine, "countQuarantine");
  if (!stmt) return stmt.error();
  return scalar(*stmt);
}

// =============================================================================================
// Exceptions and approvals

namespace {

ExceptionRow readException(const Stmt& s) {
  ExceptionRow e;
  e.id = s.colInt(0);
  e.person_id = s.colInt(1);
  e.track = s.colText(2);
  e.requester = s.colText(3);
  e.requested_at = s.colInstant(4);
  e.starts_at = s.colInstant(5);
  e.ends_at = s.colInstant(6);
  e.justification_json = s.colText(7);
  e.revoked_at = s.colOptInstant(8);
  e.revoked_by = s.colText(9);
  e.revoked_reason = s.colText(10);
  e.rejected_at = s.colOptInstant(11);
  e.rejected_by = s.colText(12);
  e.rejected_reason = s.colText(13);
  e.end_recorded_at = s.colOptInstant(14);
  e.person_key = s.colText(15);
  return e;
}

ApprovalRow readApproval(const Stmt& s) {
  return ApprovalRow{s.colInt(0),  s.colInt(1),     s.colText(2),
                     s.colText(3), s.colInstant(4), s.colText(5)};
}

}  // namespace

Result<std::int64_t> Store::insertException(const ExceptionRow& row) {
  if (row.person_id <= 0 || row.track.empty() || row.requester.empty()) {
    return invalid(path_, "insertException: an exception needs a person, a track and a requester");
  }
  if (row.ends_at < row.starts_at) {
    return invalid(path_, "insertException: the exception ends (" + core::formatIso(row.ends_at) +
                              ") before it starts (" + core::formatIso(row.starts_at) + ")");
  }
  static const std::string kEmptyJson = "{}";
  return cache_->inWrite(
      "insertException", Cache::Nested::Savepoint, [&]() -> Result<std::int64_t> {
        std::int64_t id = 0;
        {
          auto stmt = cache_->stmt(kInsertException, "insertException");
          if (!stmt) return stmt.error();
          stmt->bindInt(1, row.person_id);
          stmt->bindText(2, row.track);
          stmt->bindText(3, row.requester);
          stmt->bindInstant(4, row.requested_at);
          stmt->bindInstant(5, row.starts_at);
          stmt->bindInstant(6, row.ends_at);
          stmt->bindText(7, row.justification_json.empty() ? kEmptyJson : row.justification_json);
          stmt->bindInstant(8, row.revoked_at);
          stmt->bindText(9, row.revoked_by);
          if (auto ran = stmt->run(); !ran) return ran.error();
          id = sqlite3_last_insert_rowid(db_);
        }
        for (ApprovalRow approval : row.approvals) {
          approval.exception_id = id;
          auto added = addApproval(approval);
          if (!added) return added.error();
        }
        return id;
      });
}

Result<std::int64_t> Store::addApproval(const ApprovalRow& row) {
  if (row.approver.empty() || row.role.empty()) {
    return invalid(path_, "addApproval: an approval needs an approver and a role");
  }
  return cache_->inWrite("addApproval", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    {
      auto exists = cache_->stmt(kExceptionExists, "addApproval");
      if (!exists) return exists.error();
      exists->bindInt(1, row.exception_id);
      auto found = exists->stepRow();
      if (!found) return found.error();
      if (!*found) {
        return notFound(path_,
                        "addApproval: no exception with id " + std::to_string(row.exception_id));
      }
    }
    {
      auto insert = cache_->stmt(kInsertApproval, "addApproval");
      if (!insert) return insert.error();
      insert->bindInt(1, row.exception_id);
      insert->bindText(2, row.approver);
      insert->bindText(3, row.role);
      insert->bindInstant(4, row.at);
      insert->bindText(5, row.comment);
      if (auto ran = insert->run(); !ran) return ran.error();
      if (sqlite3_changes(db_) > 0) return sqlite3_last_insert_rowid(db_);
    }
    auto find = cache_->stmt(kFindApproval, "addApproval");
    if (!find) return find.error();
    find->bindInt(1, row.exception_id);
    find->bindText(2, row.approver);
    find->bindText(3, row.role);
    return scalar(*find);
  });
}

// Runs `update` (bound by `bind`) and reports NotFound when no exception has the id; an
// update that changed nothing because the state was set already is a success.
Status Store::updateException(std::int64_t id, const char* sql, const char* op,
                              const std::function<void(detail::Stmt&)>& bind, bool* changed) {
  return cache_->inWrite(op, Cache::Nested::Join, [&]() -> Status {
    {
      auto stmt = cache_->stmt(sql, op);
      if (!stmt) return stmt.error();
      stmt->bindInt(1, id);
      bind(*stmt);
      if (auto ran = stmt->run(); !ran) return ran;
      if (changed) *changed = sqlite3_changes(db_) > 0;
      if (sqlite3_changes(db_) > 0) return {};
    }
    auto exists = cache_->stmt(kExceptionExists, op);
    if (!exists) return exists.error();
    exists->bindInt(1, id);
    auto found = exists->stepRow();
    if (!found) return found.error();
    if (!*found) return notFound(path_, std::string(op) + ": no exception with id " + std::to_string(id));
    return {};
  });
}

Status Store::revokeException(std::int64_t id, const std::string& by, Instant at,
                              const std::string& reason) {
  return updateException(id, kRevokeExceptionReason, "revokeException", [&](Stmt& s) {
    s.bindText(2, by);
    s.bindInstant(3, at);
    s.bindText(4, reason);
  });
}

Status Store::rejectException(std::int64_t id, const std::string& by, const std::string& reason,
                              Instant at) {
  return updateException(id, kRejectException, "rejectException", [&](Stmt& s) {
    s.bindText(2, by);
    s.bindText(3, reason);
    s.bindInstant(4, at);
  });
}

Result<bool> Store::markExceptionEndRecorded(std::int64_t id, Instant at) {
  bool changed = false;
  auto done = updateException(id, kRecordExceptionEnd, "markExceptionEndRecorded", [&](Stmt& s) {
    s.bindInstant(2, at);
  }, &changed);
  if (!done) return done.error();
  return changed;
}

Result<std::vector<ExceptionRow>> Store::exceptions() {
  auto snapshot = cache_->read("exceptions");
  if (!snapshot) return snapshot.error();
  std::vector<ExceptionRow> rows;
  {
    auto stmt = cache_->stmt(kListExceptions, "exceptions");
    if (!stmt) return stmt.error();
    auto read = collect<ExceptionRow>(*stmt, readException);
    if (!read) return read.error();
    rows = std::move(*read);
  }
  std::unordered_map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < rows.size(); ++i) index.emplace(rows[i].id, i);
  auto stmt = cache_->stmt(kListApprovals, "exceptions");
  if (!stmt) return stmt.error();
  for (;;) {
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return stmt->error(rc);
    ApprovalRow a = readApproval(*stmt);
    if (auto it = index.find(a.exception_id); it != index.end()) {
      rows[it->second].approvals.push_back(std::move(a));
    }
  }
  if (auto done = snapshot->commit(); !done) return done.error();
  return rows;
}

Result<std::optional<ExceptionRow>> Store::exception(std::int64_t id) {
  auto snapshot = cache_->read("exception");
  if (!snapshot) return snapshot.error();
  std::optional<ExceptionRow> row;
  {
    auto stmt = cache_->stmt(kOneException, "exception");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, id);
    auto found = stmt->stepRow();
    if (!found) return found.error();
    if (*found) row = readException(*stmt);
  }
  if (row) {
    auto stmt = cache_->stmt(kApprovalsOf, "exception");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, id);
    auto approvals = collect<ApprovalRow>(*stmt, readApproval);
    if (!approvals) return approvals.error();
    row->approvals = std::move(*approvals);
  }
  if (auto done = snapshot->commit(); !done) return done.error();
  return row;
}

// =============================================================================================
// Grants and intents

Result<std::int64_t> Store::recordGrant(const GrantRow& row) {
  if (row.person_id <= 0 || row.track.empty() || row.target_kind.empty() || row.target.empty()) {
    return invalid(path_,
                   "recordGrant: a grant needs a person, a track, a target kind and a target");
  }
  return cache_->inWrite("recordGrant", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    if (!row.revoked_at) {
      auto find = cache_->stmt(kFindActiveGrant, "recordGrant");
      if (!find) return find.error();
      find->bindInt(1, row.person_id);
      find->bindText(2, row.track);
      find->bindText(3, row.target_kind);
      find->bindText(4, row.target);
      auto found = find->stepRow();
      if (!found) return found.error();
      if (*found) {
        if (colView(*find, 1) == row.external_ref) return find->colInt(0);
        return makeError(ErrorKind::Conflict,
                         "recordGrant: person " + std::to_string(row.person_id) +
                             " already holds an active grant of " + row.target_kind + " '" +
                             row.target + "' for track '" + row.track + "' (ref '" +
                             find->colText(1) + "', not '" + row.external_ref + "')",
                         path_, "revoke the recorded grant first (markGrantRevoked)");
      }
    }
    auto insert = cache_->stmt(kInsertGrant, "recordGrant");
    if (!insert) return insert.error();
    insert->bindInt(1, row.person_id);
    insert->bindText(2, row.track);
    insert->bindText(3, row.target_kind);
    insert->bindText(4, row.target);
    insert->bindText(5, row.external_ref);
    insert->bindInstant(6, row.granted_at);
    insert->bindInstant(7, row.revoked_at);
    if (auto ran = insert->run(); !ran) return ran.error();
    return sqlite3_last_insert_rowid(db_);
  });
}

Status Store::markGrantRevoked(std::int64_t grant_id, Instant at) {
  return cache_->inWrite("markGrantRevoked", Cache::Nested::Join, [&]() -> Status {
    {
      auto stmt = cache_->stmt(kRevokeGrant, "markGrantRevoked");
      if (!stmt) return stmt.error();
      stmt->bindInt(1, grant_id);
      stmt->bindInstant(2, at);
      if (auto ran = stmt->run(); !ran) return ran;
      if (sqlite3_changes(db_) > 0) return {};
    }
    auto exists = cache_->stmt(kGrantExists, "markGrantRevoked");
    if (!exists) return exists.error();
    exists->bindInt(1, grant_id);
    auto found = exists->stepRow();
    if (!found) return found.error();
    if (!*found) {
      return notFound(path_, "markGrantRevoked: no grant with id " + std::to_string(grant_id));
    }
    return {};
  });
}

Result<std::vector<GrantRow>> Store::activeGrants() {
  auto stmt = cache_->stmt(kActiveGrants, "activeGrants");
  if (!stmt) return stmt.error();
  return collect<GrantRow>(*stmt, [](const Stmt& s) {
    GrantRow g;
    g.id = s.colInt(0);
    g.person_id = s.colInt(1);
    g.track = s.colText(2);
    g.target_kind = s.colText(3);
    g.target = s.colText(4);
    g.external_ref = s.colText(5);
    g.granted_at = s.colInstant(6);
    g.revoked_at = s.colOptInstant(7);
    return g;
  });
}

Result<std::int64_t> Store::addIntent(const IntentRow& row) {
  if (row.idempotency_key.empty() || row.kind.empty()) {
    return invalid(path_, "addIntent: an intent needs a kind and an idempotency key");
  }
  static const std::string kPending = "pending";
  static const std::string kEmptyJson = "{}";
  const std::string& state = row.state.empty() ? kPending : row.state;
  if (!validIntentState(state)) {
    return invalid(path_, "addIntent: unknown intent state '" + row.state +
                              "' (pending, done, failed, abandoned)");
  }
  return cache_->inWrite("addIntent", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    {
      auto stmt = cache_->stmt(kInsertIntent, "addIntent");
      if (!stmt) return stmt.error();
      stmt->bindId(1, row.run_id);
      stmt->bindText(2, row.kind);
      stmt->bindText(3, row.target);
      stmt->bindText(4, row.idempotency_key);
      stmt->bindText(5, row.payload_json.empty() ? kEmptyJson : row.payload_json);
      stmt->bindText(6, state);
      stmt->bindText(7, row.outcome);
      stmt->bindInstant(8, row.created_at);
      stmt->bindInstant(9, row.updated_at == Instant{} ? row.created_at : row.updated_at);
      stmt->bindInt(10, row.attempts);
      const int rc = stmt->step();
      if (rc == SQLITE_DONE) return sqlite3_last_insert_rowid(db_);
      if (rc != SQLITE_CONSTRAINT_UNIQUE) return stmt->error(rc);
    }
    std::string existing;
    auto find = cache_->stmt(kIntentByKey, "addIntent");
    if (!find) return find.error();
    find->bindText(1, row.idempotency_key);
    if (auto found = find->stepRow(); found && *found) {
      existing = " (intent " + std::to_string(find->colInt(0)) + ", " + find->colText(1) + ")";
    }
    return makeError(ErrorKind::Conflict,
                     "addIntent: an intent with idempotency key '" + row.idempotency_key +
                         "' already exists" + existing,
                     path_, "adopt the existing intent instead of starting the side effect again");
  });
}

Status Store::completeIntent(std::int64_t id, const std::string& state, const std::string& outcome,
                             Instant at) {
  if (!validIntentState(state)) {
    return invalid(path_, "completeIntent: unknown intent state '" + state +
                              "' (pending, done, failed, abandoned)");
  }
  return cache_->inWrite("completeIntent", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kCompleteIntent, "completeIntent");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, id);
    stmt->bindText(2, state);
    stmt->bindText(3, outcome);
    stmt->bindInstant(4, at);
    if (auto ran = stmt->run(); !ran) return ran;
    if (sqlite3_changes(db_) == 0) {
      return notFound(path_, "completeIntent: no intent with id " + std::to_string(id));
    }
    return {};
  });
}

Result<std::vector<IntentRow>> Store::pendingIntents() {
  auto stmt = cache_->stmt(kPendingIntents, "pendingIntents");
  if (!stmt) return stmt.error();
  return collect<IntentRow>(*stmt, [](const Stmt& s) {
    IntentRow i;
    i.id = s.colInt(0);
    i.run_id = s.colInt(1);
    i.kind = s.colText(2);
    i.target = s.colText(3);
    i.idempotency_key = s.colText(4);
    i.payload_json = s.colText(5);
    i.state = s.colText(6);
    i.outcome = s.colText(7);
    i.created_at = s.colInstant(8);
    i.updated_at = s.colInstant(9);
    i.attempts = static_cast<int>(s.colInt(10));
    return i;
  });
}

// =============================================================================================
// Audit and runs

namespace {

AuditRow readAudit(const Stmt& s) {
  AuditRow a{s.colInt(0),  s.colInstant(1), s.colText(2), s.colText(3),
             s.colText(4), s.colText(5),    s.colInt(6)};
  a.prev_hash = s.colText(7);
  a.hash = s.colText(8);
  return a;
}

}  // namespace

Result<std::int64_t> Store::chainAudit() {
  return cache_->inWrite("chainAudit", Cache::Nested::Savepoint, [&]() -> Result<std::int64_t> {
    auto rows_stmt = cache_->stmt(kAuditUnchained, "chainAudit");
    if (!rows_stmt) return rows_stmt.error();
    auto rows = collect<AuditRow>(*rows_stmt, [](const Stmt& s) {
      return AuditRow{s.colInt(0),  s.colInstant(1), s.colText(2), s.colText(3),
                      s.colText(4), s.colText(5),    s.colInt(6)};
    });
    if (!rows) return rows.error();
    std::int64_t chained = 0;
    for (AuditRow& row : *rows) {
      auto before = cache_->stmt(kAuditHashBefore, "chainAudit");
      if (!before) return before.error();
      before->bindInt(1, row.id);
      auto found = before->stepRow();
      if (!found) return found.error();
      row.prev_hash = *found ? before->colText(0) : std::string(kAuditGenesis);
      // The row before has a prev_hash but no hash: changed outside certgate. Chaining on
      // would hide that; verifyAudit reports it and appendAudit refuses to continue from it.
      if (row.prev_hash.empty()) return chained;
      auto set = cache_->stmt(kAuditSetHash, "chainAudit");
      if (!set) return set.error();
      const std::string hash = auditRowHash(row);
      set->bindInt(1, row.id);
      set->bindText(2, row.prev_hash);
      set->bindText(3, hash);
      if (auto ran = set->run(); !ran) return ran.error();
      ++chained;
    }
    return chained;
  });
}

Result<std::int64_t> Store::appendAudit(const AuditRow& row) {
  if (row.actor.empty() || row.action.empty()) {
    return invalid(path_, "appendAudit: an audit row needs an actor and an action");
  }
  return cache_->inWrite("appendAudit", Cache::Nested::Savepoint, [&]() -> Result<std::int64_t> {
    if (auto chained = chainAudit(); !chained) return chained.error();
    AuditRow next = row;
    next.details_json = row.details_json.empty() ? "{}" : row.details_json;
    {
      auto last = cache_->stmt(kAuditLast, "appendAudit");
      if (!last) return last.error();
      auto found = last->stepRow();
      if (!found) return found.error();
      next.id = *found ? last->colInt(0) + 1 : 1;
      next.prev_hash = *found ? last->colText(1) : std::string(kAuditGenesis);
    }
    if (next.prev_hash.empty()) {
      return makeError(ErrorKind::Internal,
                       "appendAudit: audit row " + std::to_string(next.id - 1) +
                           " has no hash, so the chain cannot be continued: the audit table was "
                           "changed outside certgate",
                       path_, "run `certgate audit verify` and restore the store from a backup");
    }
    next.hash = auditRowHash(next);
    auto stmt = cache_->stmt(kAppendAudit, "appendAudit");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, next.id);
    stmt->bindInstant(2, next.at);
    stmt->bindText(3, next.actor);
    stmt->bindText(4, next.action);
    stmt->bindText(5, next.subject);
    stmt->bindText(6, next.details_json);
    stmt->bindId(7, next.run_id);
    stmt->bindText(8, next.prev_hash);
    stmt->bindText(9, next.hash);
    if (auto ran = stmt->run(); !ran) return ran.error();
    return next.id;
  });
}

Result<std::vector<AuditRow>> Store::audit(std::int64_t limit) {
  auto stmt = cache_->stmt(kListAudit, "audit");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, limit);
  return collect<AuditRow>(*stmt, readAudit);
}

Status Store::forEachAudit(const AuditFilter& filter,
                           const std::function<void(const AuditRow&)>& fn) {
  auto stmt = cache_->stmt(filter.since ? kAuditFrom : kAuditAll, "forEachAudit");
  if (!stmt) return stmt.error();
  if (filter.since) stmt->bindInstant(1, *filter.since);
  const bool action_prefix = !filter.action.empty() && filter.action.back() == '.';
  for (;;) {
    const int rc = stmt->step();
    if (rc == SQLITE_DONE) return {};
    if (rc != SQLITE_ROW) return stmt->error(rc);
    const std::string_view action = colView(*stmt, 3);
    if (!filter.action.empty() &&
        (action_prefix ? action.substr(0, filter.action.size()) != filter.action
                       : action != filter.action))
      continue;
    const std::string_view subject = colView(*stmt, 4);
    if (!filter.subject.empty() && subject != filter.subject &&
        !(subject.size() > filter.subject.size() &&
          subject.substr(0, filter.subject.size()) == filter.subject &&
          subject[filter.subject.size()] == '/'))
      continue;
    fn(readAudit(*stmt));
  }
}

Result<AuditHead> Store::auditHead() {
  auto last = cache_->stmt(kAuditLast, "auditHead");
  if (!last) return last.error();
  auto found = last->stepRow();
  if (!found) return found.error();
  if (!*found) return AuditHead{0, kAuditGenesis};
  return AuditHead{last->colInt(0), last->colText(1)};
}

Result<std::optional<AuditRow>> Store::lastAudit(const std::string& action) {
  auto stmt = cache_->stmt(kAuditLastOfAction, "lastAudit");
  if (!stmt) return stmt.error();
  stmt->bindText(1, action);
  auto found = stmt->stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<AuditRow>{};
  return std::optional<AuditRow>{readAudit(*stmt)};
}

Result<AuditVerification> Store::verifyAudit(const std::optional<AuditHead>& expect_head) {
  auto snapshot = cache_->read("verifyAudit");
  if (!snapshot) return snapshot.error();
  AuditVerification out;
  out.head = AuditHead{0, kAuditGenesis};
  auto fail = [&](AuditBreak::Kind kind, std::int64_t id, std::string message, std::string hint) {
    out.broken = AuditBreak{kind, id, std::move(message), std::move(hint)};
  };
  const std::string kRestore =
      "the audit table was changed outside certgate: keep this database as evidence (copy it "
      "aside), compare it with a backup or an evidence export to see what changed, and restore "
      "the store from the last backup that verifies";
  // Where the entry in a row was written: one after the row its prev_hash names (0: genesis).
  auto writtenAs = [&](const AuditRow& row) -> Result<std::int64_t> {
    if (row.prev_hash == kAuditGenesis) return std::int64_t{1};
    auto find = cache_->stmt(kAuditIdOfHash, "verifyAudit");
    if (!find) return find.error();
    find->bindText(1, row.prev_hash);
    auto found = find->stepRow();
    if (!found) return found.error();
    return *found ? find->colInt(0) + 1 : std::int64_t{0};
  };
  {
    auto stmt = cache_->stmt(kAuditAll, "verifyAudit");
    if (!stmt) return stmt.error();
    std::int64_t prev_id = 0;
    std::string prev_hash = kAuditGenesis;
    for (;;) {
      const int rc = stmt->step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return stmt->error(rc);
      AuditRow row = readAudit(*stmt);
      const bool unchained = stmt->colInt(9) != 0;
      ++out.entries;
      const std::string id = std::to_string(row.id);
      if (row.id != prev_id + 1) {
        const std::string first = std::to_string(prev_id + 1);
        fail(AuditBreak::Kind::Missing, prev_id + 1,
             row.id == prev_id + 2
                 ? "row " + first + " is missing (ids jump from " + std::to_string(prev_id) +
                       " to " + id + "): it was deleted"
                 : "rows " + first + " to " + std::to_string(row.id - 1) +
                       " are missing (ids jump from " + std::to_string(prev_id) + " to " + id +
                       "): they were deleted",
             kRestore);
        break;
      }
      if (unchained || row.hash.empty()) {
        fail(AuditBreak::Kind::Unchained, row.id,
             "row " + id + " has no hash: it was written outside certgate or its hash was removed",
             "if an older certgate wrote it, open the store once with a writing command (e.g. "
             "`certgate ingest`), which chains such rows, and verify again; otherwise " + kRestore);
        break;
      }
      if (auditRowHash(row) != row.hash) {
        auto written = writtenAs(row);
        if (!written) return written.error();
        AuditRow moved = row;
        moved.id = *written;
        if (*written > 0 && *written != row.id && auditRowHash(moved) == row.hash) {
          fail(AuditBreak::Kind::Reordered, row.id,
               "row " + id + " holds the entry written as row " + std::to_string(*written) +
                   ": rows were reordered (moved or swapped)",
               kRestore);
        } else {
          fail(AuditBreak::Kind::Changed, row.id,
               "row " + id + " was changed: its content (at, actor, action, subject, details, "
               "run) does not match its hash",
               kRestore);
        }
        break;
      }
      if (row.prev_hash != prev_hash) {
        fail(AuditBreak::Kind::LinkBroken, row.id,
             "row " + id + "'s prev_hash is not the hash of row " + std::to_string(prev_id) +
                 ": row " + std::to_string(prev_id) +
                 " was rewritten with a recomputed hash, or row " + id + " was inserted or "
                 "replaced",
             kRestore);
        break;
      }
      prev_id = row.id;
      prev_hash = row.hash;
    }
  }
  auto head = auditHead();
  if (!head) return head.error();
  out.head = *head;
  if (!out.broken && expect_head && expect_head->id > 0) {
    auto of = cache_->stmt(kAuditHashOf, "verifyAudit");
    if (!of) return of.error();
    of->bindInt(1, expect_head->id);
    auto found = of->stepRow();
    if (!found) return found.error();
    const std::string anchored = std::to_string(expect_head->id);
    if (!*found) {
      fail(AuditBreak::Kind::HeadMissing, expect_head->id,
           "the anchored head row " + anchored + " does not exist (the newest row is " +
               std::to_string(out.head.id) + "): the log was truncated",
           kRestore);
    } else if (of->colText(0) != expect_head->hash) {
      fail(AuditBreak::Kind::HeadMismatch, expect_head->id,
           "row " + anchored + " does not have the anchored hash " + expect_head->hash +
               ": the log was rewritten from there on",
           kRestore);
    }
  }
  if (auto done = snapshot->commit(); !done) return done.error();
  return out;
}

Result<std::int64_t> Store::beginRun(const std::string& kind, Instant at) {
  if (kind.empty()) return invalid(path_, "beginRun: a run needs a kind");
  return cache_->inWrite("beginRun", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    auto stmt = cache_->stmt(kBeginRun, "beginRun");
    if (!stmt) return stmt.error();
    stmt->bindText(1, kind);
    stmt->bindInstant(2, at);
    if (auto ran = stmt->run(); !ran) return ran.error();
    return sqlite3_last_insert_rowid(db_);
  });
}

Status Store::finishRun(std::int64_t run_id, const std::string& outcome,
                        const std::string& summary_json, Instant at) {
  if (outcome.empty() || outcome == "running") {
    return invalid(path_, "finishRun: a finished run needs an outcome other than 'running'");
  }
  static const std::string kEmptyJson = "{}";
  return cache_->inWrite("finishRun", Cache::Nested::Join, [&]() -> Status {
    {
      auto stmt = cache_->stmt(kFinishRun, "finishRun");
      if (!stmt) return stmt.error();
      stmt->bindInt(1, run_id);
      stmt->bindText(2, outcome);
      stmt->bindText(3, summary_json.empty() ? kEmptyJson : summary_json);
      stmt->bindInstant(4, at);
      if (auto ran = stmt->run(); !ran) return ran;
      if (sqlite3_changes(db_) > 0) return {};
    }
    auto find = cache_->stmt(kRunOutcome, "finishRun");
    if (!find) return find.error();
    find->bindInt(1, run_id);
    auto found = find->stepRow();
    if (!found) return found.error();
    if (!*found) return notFound(path_, "finishRun: no run with id " + std::to_string(run_id));
    return makeError(
        ErrorKind::Conflict,
        "finishRun: run " + std::to_string(run_id) + " already finished (" + find->colText(0) + ")",
        path_);
  });
}

Result<std::vector<RunRow>> Store::runs(std::int64_t limit) {
  auto stmt = cache_->stmt(kListRuns, "runs");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, limit);
  return collect<RunRow>(*stmt, [](const Stmt& s) {
    return RunRow{s.colInt(0),        s.colText(1), s.colInstant(2),
                  s.colOptInstant(3), s.colText(4), s.colText(5)};
  });
}

// --- directory accounts

Status Store::upsertAccount(const AccountRow& row) {
  if (row.directory.empty() || row.person_id <= 0 || row.user_id.empty()) {
    return invalid(path_, "upsertAccount: an account needs a directory, a person and a user id");
  }
  return cache_->inWrite("upsertAccount", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kUpsertAccount, "upsertAccount");
    if (!stmt) return stmt.error();
    stmt->bindText(1, row.directory);
    stmt->bindInt(2, row.person_id);
    stmt->bindText(3, row.user_id);
    stmt->bindInstant(4, row.resolved_at);
    return stmt->run();
  });
}

Status Store::forgetAccount(const std::string& directory, std::int64_t person_id) {
  return cache_->inWrite("forgetAccount", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kForgetAccount, "forgetAccount");
    if (!stmt) return stmt.error();
    stmt->bindText(1, directory);
    stmt->bindInt(2, person_id);
    return stmt->run();
  });
}

Result<std::vector<AccountRow>> Store::accounts(const std::string& directory) {
  auto stmt = cache_->stmt(kAccounts, "accounts");
  if (!stmt) return stmt.error();
  stmt->bindText(1, directory);
  return collect<AccountRow>(*stmt, [](const Stmt& s) {
    return AccountRow{s.colText(0), s.colInt(1), s.colText(2), s.colInstant(3)};
  });
}

// --- plans

namespace {
bool validPlanState(const std::string& state) {
  if (state.empty() || state.find(' ') != std::string::npos) return false;
  const std::string_view all = kPlanStates;
  for (std::size_t pos = all.find(state); pos != std::string_view::npos;
       pos = all.find(state, pos + 1)) {
    const bool starts = pos == 0 || all[pos - 1] == ' ';
    const bool ends = pos + state.size() == all.size() || all[pos + state.size()] == ' ';
    if (starts && ends) return true;
  }
  return false;
}

PlanRow readPlan(const Stmt& s, bool with_json) {
  PlanRow p;
  p.id = s.colText(0);
  p.created_at = s.colInstant(1);
  p.run_id = s.colInt(2);
  p.fingerprint = s.colText(3);
  p.state = s.colText(4);
  p.adds = s.colInt(5);
  p.removes = s.colInt(6);
  p.skipped = s.colInt(7);
  p.scope = s.colText(8);
  if (with_json) p.plan_json = s.colText(9);
  p.approved_by = s.colText(10);
  p.approved_at = s.colOptInstant(11);
  p.applied_at = s.colOptInstant(12);
  p.outcome = s.colText(13);
  return p;
}
}  // namespace

Status Store::insertPlan(const PlanRow& row) {
  if (row.id.empty() || row.plan_json.empty() || !validPlanState(row.state)) {
    return invalid(path_, "insertPlan: a plan needs an id, a known state (" +
                              std::string(kPlanStates) + ") and its JSON");
  }
  return cache_->inWrite("insertPlan", Cache::Nested::Join, [&]() -> Status {
    auto existing = plan(row.id);
    if (!existing) return existing.error();
    if (existing->has_value()) {
      return makeError(ErrorKind::Conflict, "insertPlan: a plan with id '" + row.id + "' exists",
                       path_, "plan ids are unique; make a new plan");
    }
    auto stmt = cache_->stmt(kInsertPlan, "insertPlan");
    if (!stmt) return stmt.error();
    stmt->bindText(1, row.id);
    stmt->bindInstant(2, row.created_at);
    stmt->bindId(3, row.run_id);
    stmt->bindText(4, row.fingerprint);
    stmt->bindText(5, row.state);
    stmt->bindInt(6, row.adds);
    stmt->bindInt(7, row.removes);
    stmt->bindInt(8, row.skipped);
    stmt->bindText(9, row.scope);
    stmt->bindText(10, row.plan_json);
    stmt->bindText(11, row.outcome);
    return stmt->run();
  });
}

Result<std::optional<PlanRow>> Store::plan(const std::string& id) {
  static const std::string sql =
      std::string(kPlanColumns) + "plan_json," + kPlanTail + " WHERE id = ?1";
  auto stmt = cache_->stmt(sql.c_str(), "plan");
  if (!stmt) return stmt.error();
  stmt->bindText(1, id);
  auto found = stmt->stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<PlanRow>{};
  return std::optional<PlanRow>{readPlan(*stmt, true)};
}

Result<std::vector<PlanRow>> Store::plans(std::int64_t limit) {
  static const std::string sql = std::string(kPlanColumns) + "''," + kPlanTail +
                                 " ORDER BY created_at DESC, rowid DESC LIMIT ?1";
  auto stmt = cache_->stmt(sql.c_str(), "plans");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, limit);
  return collect<PlanRow>(*stmt, [](const Stmt& s) { return readPlan(s, false); });
}

Status Store::updatePlan(const std::string& id, const std::string& state,
                         const std::string& approved_by, std::optional<Instant> approved_at,
                         std::optional<Instant> applied_at, const std::string& outcome) {
  if (!validPlanState(state)) {
    return invalid(path_, "updatePlan: unknown plan state '" + state + "' (" +
                              std::string(kPlanStates) + ")");
  }
  return cache_->inWrite("updatePlan", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kUpdatePlan, "updatePlan");
    if (!stmt) return stmt.error();
    stmt->bindText(1, id);
    stmt->bindText(2, state);
    if (approved_by.empty()) stmt->bindNull(3); else stmt->bindText(3, approved_by);
    stmt->bindInstant(4, approved_at);
    stmt->bindInstant(5, applied_at);
    if (outcome.empty()) stmt->bindNull(6); else stmt->bindText(6, outcome);
    if (auto ran = stmt->run(); !ran) return ran;
    if (sqlite3_changes(db_) == 0) return notFound(path_, "updatePlan: no plan with id '" + id + "'");
    return {};
  });
}

// --- gateway tokens

namespace {
bool validTokenState(const std::string& state) {
  if (state.empty() || state.find(' ') != std::string::npos) return false;
  const std::string padded = std::string(" ") + kTokenStates + " ";
  return padded.find(" " + state + " ") != std::string::npos;
}

TokenRow readToken(const Stmt& s) {
  TokenRow t;
  t.id = s.colInt(0);
  t.person_id = s.colInt(1);
  t.track = s.colText(2);
  t.gateway = s.colText(3);
  t.scope = s.colText(4);
  t.alias = s.colText(5);
  t.token_id = s.colText(6);
  t.secret_digest = s.colText(7);
  t.issued_at = s.colInstant(8);
  t.expires_at = s.colOptInstant(9);
  t.revoked_at = s.colOptInstant(10);
  t.revoke_reason = s.colText(11);
  t.enforcement = s.colText(12);
  t.verify_after = s.colOptInstant(13);
  return t;
}
}  // namespace

Result<std::int64_t> Store::recordToken(const TokenRow& row) {
  if (row.person_id <= 0 || row.track.empty() || row.gateway.empty() || row.scope.empty() ||
      row.alias.empty() || row.token_id.empty())
    return invalid(path_, "recordToken: a token needs a person, a track, a gateway, a scope, an "
                          "alias and the gateway's token id");
  if (!row.secret_digest.empty() && row.secret_digest.rfind("sha256:", 0) != 0)
    return invalid(path_, "recordToken: only a digest (sha256:...) of a secret may be stored");
  if (!validTokenState(row.enforcement))
    return invalid(path_, "recordToken: unknown enforcement state '" + row.enforcement + "'");
  return cache_->inWrite("recordToken", Cache::Nested::Join, [&]() -> Result<std::int64_t> {
    auto existing = tokenByAlias(row.alias);
    if (!existing) return existing.error();
    if (existing->has_value()) {
      const TokenRow& t = **existing;
      if (t.token_id == row.token_id && t.gateway == row.gateway) return t.id;
      return makeError(ErrorKind::Conflict,
                       "recordToken: alias '" + row.alias + "' already names token '" +
                           t.token_id + "' on " + t.gateway,
                       path_, "one alias is one token: revoke the recorded one first");
    }
    auto stmt = cache_->stmt(kInsertToken, "recordToken");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, row.person_id);
    stmt->bindText(2, row.track);
    stmt->bindText(3, row.gateway);
    stmt->bindText(4, row.scope);
    stmt->bindText(5, row.alias);
    stmt->bindText(6, row.token_id);
    stmt->bindText(7, row.secret_digest);
    stmt->bindInstant(8, row.issued_at);
    stmt->bindInstant(9, row.expires_at);
    stmt->bindInstant(10, row.revoked_at);
    stmt->bindText(11, row.revoke_reason);
    stmt->bindText(12, row.enforcement);
    stmt->bindInstant(13, row.verify_after);
    if (auto ran = stmt->run(); !ran) return ran.error();
    return sqlite3_last_insert_rowid(db_);
  });
}

Status Store::markTokenRevoked(std::int64_t id, Instant at, const std::string& reason,
                               const std::string& enforcement,
                               std::optional<Instant> verify_after) {
  if (!validTokenState(enforcement) || enforcement == "live")
    return invalid(path_, "markTokenRevoked: enforcement must be pending, enforced, "
                          "not_enforced or unknown, not '" + enforcement + "'");
  return cache_->inWrite("markTokenRevoked", Cache::Nested::Join, [&]() -> Status {
    {
      auto stmt = cache_->stmt(kRevokeToken, "markTokenRevoked");
      if (!stmt) return stmt.error();
      stmt->bindInt(1, id);
      stmt->bindInstant(2, at);
      stmt->bindText(3, reason);
      stmt->bindText(4, enforcement);
      stmt->bindInstant(5, verify_after);
      if (auto ran = stmt->run(); !ran) return ran;
      if (sqlite3_changes(db_) > 0) return {};
    }
    auto exists = cache_->stmt(kTokenExists, "markTokenRevoked");
    if (!exists) return exists.error();
    exists->bindInt(1, id);
    auto found = exists->stepRow();
    if (!found) return found.error();
    if (!*found) return notFound(path_, "markTokenRevoked: no token with id " + std::to_string(id));
    return {};  // already revoked: the first revocation stands
  });
}

Status Store::setTokenEnforcement(std::int64_t id, const std::string& enforcement) {
  if (!validTokenState(enforcement))
    return invalid(path_, "setTokenEnforcement: unknown state '" + enforcement + "'");
  return cache_->inWrite("setTokenEnforcement", Cache::Nested::Join, [&]() -> Status {
    auto stmt = cache_->stmt(kTokenEnforcement, "setTokenEnforcement");
    if (!stmt) return stmt.error();
    stmt->bindInt(1, id);
    stmt->bindText(2, enforcement);
    if (auto ran = stmt->run(); !ran) return ran;
    if (sqlite3_changes(db_) == 0)
      return notFound(path_, "setTokenEnforcement: no token with id " + std::to_string(id));
    return {};
  });
}

Result<std::vector<TokenRow>> Store::tokens(bool live_only) {
  static const std::string all = std::string(kTokenColumns) + " ORDER BY id";
  static const std::string live =
      std::string(kTokenColumns) + " WHERE revoked_at IS NULL ORDER BY id";
  auto stmt = cache_->stmt(live_only ? live.c_str() : all.c_str(), "tokens");
  if (!stmt) return stmt.error();
  return collect<TokenRow>(*stmt, [](const Stmt& s) { return readToken(s); });
}

Result<std::optional<TokenRow>> Store::tokenByAlias(const std::string& alias) {
  static const std::string sql = std::string(kTokenColumns) + " WHERE alias = ?1";
  auto stmt = cache_->stmt(sql.c_str(), "tokenByAlias");
  if (!stmt) return stmt.error();
  stmt->bindText(1, alias);
  auto found = stmt->stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<TokenRow>{};
  return std::optional<TokenRow>{readToken(*stmt)};
}

Result<std::vector<TokenRow>> Store::tokensToVerify(Instant now) {
  static const std::string sql = std::string(kTokenColumns) +
                                 " WHERE enforcement = 'pending' AND verify_after <= ?1"
                                 " ORDER BY verify_after, id";
  auto stmt = cache_->stmt(sql.c_str(), "tokensToVerify");
  if (!stmt) return stmt.error();
  stmt->bindInstant(1, now);
  return collect<TokenRow>(*stmt, [](const Stmt& s) { return readToken(s); });
}

// --- token authority

namespace {
constexpr const char kAuthorityColumns[] =
    "SELECT token_id, authority, digest, alias, subject, client_id, scope, issued_at, "
    "expires_at, revoked_at, seq FROM authority_tokens";
constexpr const char kInsertAuthorityToken[] =
    "INSERT INTO authority_tokens (token_id, authority, digest, alias, subject, client_id, scope, "
    "issued_at, expires_at, revoked_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, "
    "(SELECT ifnull(max(seq), 0) + 1 FROM authority_tokens))";
constexpr const char kRevokeAuthorityToken[] =
    "UPDATE authority_tokens SET revoked_at = ?3, "
    "seq = (SELECT ifnull(max(seq), 0) + 1 FROM authority_tokens) "
    "WHERE authority = ?1 AND token_id = ?2 AND revoked_at IS NULL";
constexpr const char kDataVersion[] = "PRAGMA data_version";

bool validAuthorityDigest(const std::string& digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || digest.compare(0, kPrefix.size(), kPrefix) != 0)
    return false;
  for (std::size_t i = kPrefix.size(); i < digest.size(); ++i) {
    const char c = digest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

AuthorityTokenRow readAuthorityToken(const Stmt& s) {
  AuthorityTokenRow t;
  t.token_id = s.colText(0);
  t.authority = s.colText(1);
  t.digest = s.colText(2);
  t.alias = s.colText(3);
  t.subject = s.colText(4);
  t.client_id = s.colText(5);
  t.scope = s.colText(6);
  t.issued_at = s.colInstant(7);
  t.expires_at = s.colOptInstant(8);
  t.revoked_at = s.colOptInstant(9);
  t.seq = s.colInt(10);
  return t;
}

Status streamAuthorityTokens(Stmt& stmt, const std::function<void(const AuthorityTokenRow&)>& fn) {
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) return {};
    if (rc != SQLITE_ROW) return stmt.error(rc);
    fn(readAuthorityToken(stmt));
  }
}
}  // namespace

Result<AuthorityIssue> Store::issueAuthorityToken(const AuthorityTokenRow& row, Instant now) {
  if (row.token_id.empty() || row.authority.empty() || row.alias.empty() ||
      row.subject.empty() || row.client_id.empty())
    return invalid(path_, "issueAuthorityToken: a token needs an id, an authority, an alias, a "
                          "subject and a client id");
  if (!validAuthorityDigest(row.digest))
    return invalid(path_, "issueAuthorityToken: only a digest (sha256:<64 hex>) of a secret may "
                          "be stored");
  return cache_->inWrite("issueAuthorityToken", Cache::Nested::Savepoint,
                         [&]() -> Result<AuthorityIssue> {
    auto existing = authorityTokenByAlias(row.authority, row.alias);
    if (!existing) return existing.error();
    if (existing->has_value() && !(*existing)->revoked_at) {
      const AuthorityTokenRow& live = **existing;
      if (!live.expires_at || *live.expires_at > now) return AuthorityIssue{live, true};
      auto retired = revokeAuthorityToken(row.authority, live.token_id, now);
      if (!retired) return retired.error();
    }
    auto stmt = cache_->stmt(kInsertAuthorityToken, "issueAuthorityToken");
    if (!stmt) return stmt.error();
    stmt->bindText(1, row.token_id);
    stmt->bindText(2, row.authority);
    stmt->bindText(3, row.digest);
    stmt->bindText(4, row.alias);
    stmt->bindText(5, row.subject);
    stmt->bindText(6, row.client_id);
    stmt->bindText(7, row.scope);
    stmt->bindInstant(8, row.issued_at);
    stmt->bindInstant(9, row.expires_at);
    const int rc = stmt->step();
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
      return makeError(ErrorKind::Conflict,
                       "issueAuthorityToken: token id '" + row.token_id +
                           "' or its digest is recorded already",
                       path_, "mint a new token");
    if (rc != SQLITE_DONE) return stmt->error(rc);
    auto stored = authorityToken(row.authority, row.token_id);
    if (!stored) return stored.error();
    if (!stored->has_value())
      return makeError(ErrorKind::Internal, "issueAuthorityToken: the new row is not readable",
                       path_);
    return AuthorityIssue{std::move(**stored), false};
  });
}

Result<bool> Store::revokeAuthorityToken(const std::string& authority, const std::string& token_id,
                                         Instant at) {
  return cache_->inWrite("revokeAuthorityToken", Cache::Nested::Join, [&]() -> Result<bool> {
    auto stmt = cache_->stmt(kRevokeAuthorityToken, "revokeAuthorityToken");
    if (!stmt) return stmt.error();
    stmt->bindText(1, authority);
    stmt->bindText(2, token_id);
    stmt->bindInstant(3, at);
    if (auto ran = stmt->run(); !ran) return ran.error();
    return sqlite3_changes(db_) > 0;
  });
}

Result<std::optional<AuthorityTokenRow>> Store::authorityToken(const std::string& authority,
                                                               const std::string& token_id) {
  static const std::string sql =
      std::string(kAuthorityColumns) + " WHERE token_id = ?2 AND authority = ?1";
  auto stmt = cache_->stmt(sql.c_str(), "authorityToken");
  if (!stmt) return stmt.error();
  stmt->bindText(1, authority);
  stmt->bindText(2, token_id);
  auto found = stmt->stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<AuthorityTokenRow>{};
  return std::optional<AuthorityTokenRow>{readAuthorityToken(*stmt)};
}

Result<std::optional<AuthorityTokenRow>> Store::authorityTokenByAlias(const std::string& authority,
                                                                      const std::string& alias) {
  static const std::string sql = std::string(kAuthorityColumns) +
                                 " WHERE authority = ?1 AND alias = ?2"
                                 " ORDER BY revoked_at IS NOT NULL, issued_at DESC, seq DESC"
                                 " LIMIT 1";
  auto stmt = cache_->stmt(sql.c_str(), "authorityTokenByAlias");
  if (!stmt) return stmt.error();
  stmt->bindText(1, authority);
  stmt->bindText(2, alias);
  auto found = stmt->stepRow();
  if (!found) return found.error();
  if (!*found) return std::optional<AuthorityTokenRow>{};
  return std::optional<AuthorityTokenRow>{readAuthorityToken(*stmt)};
}

Status Store::forEachAuthorityToken(const std::string& authority,
                                    const std::function<void(const AuthorityTokenRow&)>& fn) {
  static const std::string sql =
      std::string(kAuthorityColumns) + " WHERE authority = ?1 ORDER BY token_id";
  auto stmt = cache_->stmt(sql.c_str(), "forEachAuthorityToken");
  if (!stmt) return stmt.error();
  stmt->bindText(1, authority);
  return streamAuthorityTokens(*stmt, fn);
}

Status Store::authorityTokensChangedSince(
    std::int64_t after_seq, const std::function<void(const AuthorityTokenRow&)>& fn) {
  static const std::string sql = std::string(kAuthorityColumns) + " WHERE seq > ?1 ORDER BY seq";
  auto stmt = cache_->stmt(sql.c_str(), "authorityTokensChangedSince");
  if (!stmt) return stmt.error();
  stmt->bindInt(1, after_seq);
  return streamAuthorityTokens(*stmt, fn);
}

Result<std::int64_t> Store::dataVersion() {
  auto stmt = cache_->stmt(kDataVersion, "dataVersion");
  if (!stmt) return stmt.error();
  return scalar(*stmt);
}

}  // namespace certgate::store
