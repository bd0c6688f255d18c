#pragma once
// certgate's state store on SQLite.
//
// Durability: WAL, synchronous=FULL, foreign_keys=ON, busy_timeout; every write transaction is
// BEGIN IMMEDIATE. Schema changes are versioned forward-only migrations applied at open().
// open() runs PRAGMA quick_check and refuses a corrupt database with a clear error.
// All SQL lives in this module; statements are prepared (and cached for hot paths), never
// built from values. A Store is used from one thread at a time.
//
// Idempotency: facts are upserted by (source, external_id): delivering the same record twice,
// or late, changes nothing but last_seen. Units (files) are recorded once by content hash.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

struct sqlite3;

namespace certgate::store {

using core::Instant;
using core::Result;
using core::Status;

struct OpenOptions {
  bool read_only = false;     // open without creating or migrating (status, explain, quarantine)
  int busy_timeout_ms = 5000;
};

struct SourceRow {
  std::int64_t id = 0;
  std::string name;
  std::string kind;
  std::string cursor;
};

// One fetch of one source: the stale-source guard reads the last of these.
struct FetchRow {
  std::int64_t id = 0;
  std::int64_t source_id = 0;
  std::int64_t run_id = 0;        // 0 when not part of a run
  Instant started_at{};
  Instant finished_at{};
  bool complete = false;
  std::string problem;            // why incomplete
  std::int64_t units_seen = 0;
  std::int64_t units_skipped = 0;
  std::int64_t records = 0;
  std::int64_t quarantined = 0;
};

struct PersonRow {
  std::int64_t id = 0;
  std::string key;           // canonical key: normalised employee id, else normalised email
  std::string employee_id;   // normalised, may be empty
  std::string email;         // normalised, may be empty
  std::string display_name;
  std::string population;    // may be empty (unknown)
  Instant first_seen{};
  Instant updated_at{};
};

struct FactRow {
  std::int64_t id = 0;             // set by the store
  std::int64_t source_id = 0;
  std::string external_id;
  std::int64_t person_id = 0;
  std::string item;                // mapped module / quiz id
  std::string lms_item;            // as the LMS named it
  core::FactKind kind = core::FactKind::Completion;
  core::FactStatus status = core::FactStatus::Completed;
  std::int8_t lms_pass = -1;
  std::uint16_t attempt = 0;
  double score = core::kNoScore;   // NaN stored as NULL
  double max_score = core::kNoScore;
  Instant at{};
  std::optional<Instant> lms_expiry;
  std::string location;            // where it was read, for evidence
  Instant first_seen{};            // set by the store on insert
  Instant last_seen{};
};

enum class UpsertOutcome { Inserted, Updated, Unchanged };

struct QuarantineRow {
  std::int64_t id = 0;
  std::int64_t source_id = 0;      // 0 when not from a source (e.g. a fact failing evaluation)
  std::string source_name;         // filled on read
  std::string external_id;
  std::string location;
  std::string reason;
  std::string raw;
  Instant at{};
  std::int64_t run_id = 0;
};

struct ApprovalRow {
  std::int64_t id = 0;
  std::int64_t exception_id = 0;
  std::string approver;
  std::string role;
  Instant at{};
  std::string comment;
};

struct ExceptionRow {
  std::int64_t id = 0;
  std::int64_t person_id = 0;
  std::string track;
  std::string requester;
  Instant requested_at{};
  Instant starts_at{};
  Instant ends_at{};
  std::string justification_json;  // {"field": "value", ...}
  std::optional<Instant> revoked_at;
  std::string revoked_by;
  std::vector<ApprovalRow> approvals;  // filled on read
};

// What certgate owns in a directory or gateway (written by later reconcile stages).
struct GrantRow {
  std::int64_t id = 0;
  std::int64_t person_id = 0;
  std::string track;
  std::string target_kind;   // "group" | "token"
  std::string target;        // "<directory>/<group>" or "<gateway>/<scope>"
  std::string external_ref;  // member id / token id in the target system
  Instant granted_at{};
  std::optional<Instant> revoked_at;
};

// An external side effect, written before the call and completed after it (outbox).
struct IntentRow {
  std::int64_t id = 0;
  std::int64_t run_id = 0;
  std::string kind;          // "group.add", "token.issue", "alert.send" ...
  std::string target;
  std::string idempotency_key;  // unique
  std::string payload_json;  // never secrets
  std::string state;         // "pending" | "done" | "failed" | "abandoned"
  std::string outcome;
  Instant created_at{};
  Instant updated_at{};
  int attempts = 0;
};

struct AuditRow {
  std::int64_t id = 0;
  Instant at{};
  std::string actor;         // "certgate", an operator, an approver
  std::string action;        // "ingest", "exception.request", "attempts.reset" ...
  std::string subject;       // person key, track, source ...
  std::string details_json;  // never secrets
  std::int64_t run_id = 0;
};

struct RunRow {
  std::int64_t id = 0;
  std::string kind;          // "ingest", "sync", ...
  Instant started_at{};
  std::optional<Instant> finished_at;
  std::string outcome;       // "running" | "ok" | "partial" | "failed"
  std::string summary_json;
};

class Store;

// RAII write transaction (BEGIN IMMEDIATE); rolls back unless commit() succeeded.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status commit();

 private:
  friend class Store;
  explicit Transaction(Store* store) : store_(store) {}
  Store* store_;
};

class Store {
 public:
  // Opens (creating the file and parent-less path if needed), sets pragmas, checks integrity,
  // applies pending migrations. Errors: Corrupt (quick_check failed or not a database: says to
  // restore from backup), Invalid (database from a newer certgate), Transient (locked).
  static Result<std::unique_ptr<Store>> open(const std::string& path, const OpenOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schemaVersion() const;       // the latest migration applied
  static int latestSchemaVersion();
  const std::string& path() const { return path_; }

  Result<Transaction> begin();     // BEGIN IMMEDIATE

  // --- sources, cursors, units, fetches
  Result<std::int64_t> ensureSource(const std::string& name, const std::string& kind);
  Result<std::vector<SourceRow>> sources();
  Status setCursor(std::int64_t source_id, const std::string& cursor);
  Result<bool> unitProcessed(std::int64_t source_id, const std::string& unit_key);
  Status recordUnit(std::int64_t source_id, const std::string& unit_key, const std::string& name,
                    std::int64_t bytes, bool complete, const std::string& problem, Instant at);
  Result<std::int64_t> recordFetch(const FetchRow& fetch);
  Result<std::optional<FetchRow>> lastFetch(std::int64_t source_id);

  // --- persons and their identifiers
  // Inserts or updates by `key`; empty fields never overwrite known ones. Returns the id.
  Result<std::int64_t> upsertPerson(const PersonRow& person);
  Result<std::vector<PersonRow>> persons();
  // Finds by key, employee id or email (normalised by the caller).
  Result<std::optional<PersonRow>> findPerson(const std::string& key_or_identifier);

  // --- learning facts
  Result<UpsertOutcome> upsertFact(const FactRow& fact, Instant now);
  // Calls `fn` for every fact, ordered by person_id then at. Streams: O(1) memory.
  Status forEachFact(const std::function<void(const FactRow&)>& fn);
  Result<std::vector<FactRow>> factsOf(std::int64_t person_id);
  Result<std::int64_t> countFacts();

  // --- quarantine
  Status addQuarantine(const QuarantineRow& row);
  Result<std::vector<QuarantineRow>> quarantine(std::int64_t limit = 1000);
  Result<std::int64_t> countQuarantine();

  // --- exceptions and approvals
  Result<std::int64_t> insertException(const ExceptionRow& row);
  Result<std::int64_t> addApproval(const ApprovalRow& row);
  Status revokeException(std::int64_t id, const std::string& by, Instant at);
  Result<std::vector<ExceptionRow>> exceptions();  // with approvals

  // --- grant ledger and intents (used by the reconcile stages)
  Result<std::int64_t> recordGrant(const GrantRow& row);
  Status markGrantRevoked(std::int64_t grant_id, Instant at);
  Result<std::vector<GrantRow>> activeGrants();
  Result<std::int64_t> addIntent(const IntentRow& row);  // Conflict if the key exists
  Status completeIntent(std::int64_t id, const std::string& state, const std::string& outcome,
                        Instant at);
  Result<std::vector<IntentRow>> pendingIntents();

  // --- audit and runs
  Result<std::int64_t> appendAudit(const AuditRow& row);
  Result<std::vector<AuditRow>> audit(std::int64_t limit = 1000);
  Result<std::int64_t> beginRun(const std::string& kind, Instant at);
  Status finishRun(std::int64_t run_id, const std::string& outcome,
                   const std::string& summary_json, Instant at);
  Result<std::vector<RunRow>> runs(std::int64_t limit = 50);

 private:
  friend class Transaction;
  Store(sqlite3* db, std::string path);
  struct Cache;

  sqlite3* db_ = nullptr;
  std::string path_;
  std::unique_ptr<Cache> cache_;  // prepared statements kept for hot paths
};

}  // namespace certgate::store
