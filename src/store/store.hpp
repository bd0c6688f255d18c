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
//
// Atomicity: begin() opens a Transaction; every write method called while one is open joins it
// (multi-statement methods use a savepoint, so a failed call leaves no partial write and the
// transaction usable; upsertFacts is the one exception, see there). Called outside a
// Transaction, each write method is atomic on its own (its own BEGIN IMMEDIATE ... COMMIT, i.e.
// one fsync each: batch hot paths in a Transaction).
//
// Errors: Transient (database locked / busy past busy_timeout, disk full, I/O error), Corrupt
// (SQLITE_CORRUPT / NOTADB anywhere), Conflict (documented per method), NotFound (an id that does
// not exist, per method), Invalid (bad arguments), Permanent (file not writable), Internal (a
// defect, e.g. a foreign key to a missing row). Messages name the operation and the file.
//
// Storage conventions: instants are INTEGER unix seconds; NaN scores and empty optionals are
// NULL; an id of 0 ("none": run_id, source_id of a quarantine row, person_id of an unresolved
// fact) is NULL. Lists with a `limit` return the newest rows first; a negative limit means all.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

struct sqlite3;

namespace certgate::store {

namespace detail {
class Stmt;
}

using core::Instant;
using core::Result;
using core::Status;

// Connection settings as SQLite reports them (for `certgate status` and tests).
struct StoreSettings {
  std::string journal_mode;  // "wal"
  int synchronous = 0;       // 2 = FULL
  bool foreign_keys = false;
  int busy_timeout_ms = 0;
};

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
  std::int64_t full_records = -1;  // FetchOutcome::full_records; -1 stored as NULL
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

// Inserted: a new (source, external_id). Updated: a column that matters changed (person_id, item,
// lms_item, kind, status, lms_pass, attempt, score, max_score, at, lms_expiry); location is
// then updated too. Unchanged: none did; only last_seen moves forward (location and first_seen
// keep the values of the delivery that set the current data).
enum class UpsertOutcome { Inserted, Updated, Unchanged };

// What upsertFacts did, one count per UpsertOutcome.
struct UpsertCounts {
  std::int64_t inserted = 0;
  std::int64_t updated = 0;
  std::int64_t unchanged = 0;
};

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
  std::string revoked_reason;
  std::optional<Instant> rejected_at;   // a rejected request never grants anything
  std::string rejected_by;
  std::string rejected_reason;
  std::optional<Instant> end_recorded_at;  // when its end was audited (exception.end)
  std::string person_key;              // filled on read
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

// A person's account in a directory (the match cache).
struct AccountRow {
  std::string directory;
  std::int64_t person_id = 0;
  std::string user_id;
  Instant resolved_at{};
};

// A stored plan. plan_json is the whole plan as printed by `plan --format json`.
struct PlanRow {
  std::string id;
  Instant created_at{};
  std::int64_t run_id = 0;
  std::string fingerprint;
  std::string state;  // planned | held | approved | applied | partial | superseded
  std::int64_t adds = 0;
  std::int64_t removes = 0;
  std::int64_t skipped = 0;
  std::string scope;  // "" = everybody, else the person the plan was made for
  std::string plan_json;
  std::string approved_by;
  std::optional<Instant> approved_at;
  std::optional<Instant> applied_at;
  std::string outcome;
};

// A gateway token certgate issued. Never the secret: only its digest ("sha256:<hex>").
struct TokenRow {
  std::int64_t id = 0;
  std::int64_t person_id = 0;
  std::string track;
  std::string gateway;
  std::string scope;
  std::string alias;          // unique: the idempotency key
  std::string token_id;       // the gateway's id; unique per gateway
  std::string secret_digest;  // "" when adopted without the secret
  Instant issued_at{};
  std::optional<Instant> expires_at;
  std::optional<Instant> revoked_at;
  std::string revoke_reason;
  std::string enforcement = "live";  // live | pending | enforced | not_enforced | unknown
  std::optional<Instant> verify_after;
};

// A token of certgate's own token authority (gateway kind `builtin`). Never the secret: only
// its digest, "sha256:<64 lower-case hex>".
struct AuthorityTokenRow {
  std::string token_id;       // public id (never the secret)
  std::string authority;      // the builtin gateway's name
  std::string digest;         // "sha256:<hex>" of the secret; unique
  std::string alias;          // the idempotency key: one unrevoked token per (authority, alias)
  std::string subject;        // the person key
  std::string client_id;
  std::string scope;          // space-separated
  Instant issued_at{};
  std::optional<Instant> expires_at;  // nullopt: no expiry
  std::optional<Instant> revoked_at;
  std::int64_t seq = 0;       // set by the store: bumped on every change of the row
};

struct AuthorityIssue {
  AuthorityTokenRow token;
  bool adopted = false;  // an unrevoked, unexpired token with the alias existed: it is returned
};

// A token secret waiting for its person behind a single-use link (delivery: email). Never the
// secret: its AES-256-GCM ciphertext, sealed and opened by the caller (the store holds no key).
struct PickupRow {
  std::string id;             // 128 random bits, base64url
  std::string person;         // the person key
  std::string token_alias;
  std::string ciphertext;     // bytes (ciphertext and tag); empty once fetched
  std::string nonce;          // 12 bytes; empty once fetched
  Instant created_at{};
  Instant expires_at{};
  std::optional<Instant> fetched_at;
};

// How facts.kind and facts.status are stored ("completion", "quiz_attempt", "attempt_reset";
// "completed", "passed", "failed", "unknown"), also the words evidence exports use.
const char* toString(core::FactKind kind);
const char* toString(core::FactStatus status);

struct AuditRow {
  std::int64_t id = 0;
  Instant at{};
  std::string actor;         // "certgate", an operator, an approver
  std::string action;        // "ingest", "exception.request", "attempts.reset" ...
  std::string subject;       // person key, track, source ...
  std::string details_json;  // never secrets
  std::int64_t run_id = 0;
  // The hash chain, set by appendAudit (ignored on input): prev_hash is the hash of the row
  // before (kAuditGenesis for the first), hash = auditRowHash(row). Empty on a row not chained.
  std::string prev_hash{};
  std::string hash{};
};

// The prev_hash of the first audit row: 64 zeros.
extern const char kAuditGenesis[];

// Lower-case hex SHA-256 of the row's canonical encoding: the text "certgate.audit.v1\n", then
// for each of id, at (unix seconds), actor, action, subject, details_json, run_id (0 = none)
// and prev_hash: its byte length in decimal, ':', its bytes, '\n' (length-prefixed, so no two
// different rows encode alike). Needs no secret: anyone can recompute it (sqlite3 + sha256sum).
std::string auditRowHash(const AuditRow& row);
// Lower-case hex SHA-256 of `bytes` (the chain's digest; also the configuration digests that
// config.change audit events record).
std::string sha256Hex(std::string_view bytes);

// The newest audit row: its id and hash (id 0 and kAuditGenesis for an empty log).
struct AuditHead {
  std::int64_t id = 0;
  std::string hash{};
  std::string str() const;  // "ID:HASH", the form `certgate audit verify --expect-head` reads
};

// The first place the chain does not hold, as found by verifyAudit.
struct AuditBreak {
  enum class Kind {
    Missing,       // ids jump: rows were deleted (id = the first missing id)
    Unchained,     // the row has no hash (written outside certgate, or its hash was removed)
    Changed,       // the row's content does not match its hash
    Reordered,     // the row holds the entry written under another id (moved or swapped)
    LinkBroken,    // prev_hash is not the hash of the row before
    HeadMissing,   // the anchored head row does not exist: the log was truncated
    HeadMismatch,  // the anchored head row exists with another hash: rewritten from there
  };
  Kind kind = Kind::Changed;
  std::int64_t id = 0;    // the entry named
  std::string message;    // what does not match
  std::string hint;       // what to do
};
const char* toString(AuditBreak::Kind kind);  // "missing", "changed", ...

struct AuditVerification {
  std::int64_t entries = 0;           // rows read
  AuditHead head;                     // the newest row
  std::optional<AuditBreak> broken;   // the first break, none when the chain holds
};

// What forEachAudit reads.
struct AuditFilter {
  std::optional<Instant> since;  // rows with at >= since
  std::string action;            // exact action, or a prefix ending in '.' ("token.")
  std::string subject;           // rows whose subject is this or starts with this + "/"
};

struct RunRow {
  std::int64_t id = 0;
  std::string kind;          // "ingest", "sync", ...
  Instant started_at{};
  std::optional<Instant> finished_at;
  std::string outcome;       // "running" | "ok" | "partial" | "failed"
  std::string summary_json;
};

// One alert for one sink (engine/alerts.hpp). Never secrets: the payload is the alert document.
struct AlertOutboxRow {
  std::int64_t id = 0;
  std::string sink;
  std::string dedup_id;      // stable per origin ("audit-42"); unique per sink
  std::string kind;          // "revocation", "plan.held" ...
  std::string severity;      // info | warning | error | critical
  std::string payload_json;
  std::string state = "pending";  // pending | delivered | dead
  int attempts = 0;
  Instant next_attempt_at{};
  Instant created_at{};
  std::optional<Instant> delivered_at;  // also set when the row went dead
  std::string last_error;    // redacted by the caller
};

// Outbox rows per sink and state (metrics, `certgate alerts list`).
struct AlertCounts {
  std::string sink;
  std::int64_t pending = 0;
  std::int64_t delivered = 0;
  std::int64_t dead = 0;
};

// What a backup holds (Store::backupTo, Store::inspectCopy).
struct BackupInfo {
  std::string path;
  std::int64_t bytes = 0;
  int schema_version = 0;
  AuditHead audit_head;
};

class Store;

// RAII write transaction (BEGIN IMMEDIATE); rolls back unless commit() succeeded.
// Must not outlive its Store. One at a time per Store: begin() inside an open one is an error.
// commit() on a finished (committed or moved-from) Transaction is an Internal error.
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

// --- figures for /metrics (src/store/metrics.cpp)
struct RunFigures {
  std::string kind;
  std::string outcome;
  std::int64_t count = 0;
  std::int64_t last_at = 0;  // unix seconds of the newest such run
};
struct ActionFigures {
  std::string kind;   // intent kind: group.add, group.remove, token.issue ...
  std::string state;  // pending | done | failed | abandoned
  std::int64_t count = 0;
};
struct SourceFigures {
  std::string source;
  bool complete = false;               // the last fetch
  std::int64_t last_fetch = 0;         // unix seconds it finished
  std::int64_t last_complete_fetch = 0;  // 0: never complete
  std::int64_t records = 0;
  std::int64_t quarantined = 0;
};
struct MetricsSnapshot {
  std::vector<RunFigures> runs;
  std::vector<ActionFigures> actions;
  std::vector<SourceFigures> sources;
  std::vector<std::pair<std::string, std::int64_t>> quarantined;  // source ("" none) -> rows
  std::vector<std::pair<std::string, std::int64_t>> live_tokens;  // gateway -> tokens
  std::int64_t held_plans = 0;
  std::int64_t pending_intents = 0;
};
// One access given: the audit row and the seconds from certification to the group change.
struct AccessLatency {
  std::int64_t audit_id = 0;
  std::int64_t seconds = 0;
};

class Store {
 public:
  // Opens (creating the file and parent-less path if needed), sets pragmas, checks integrity,
  // applies pending migrations. Errors: Corrupt (quick_check failed or not a database: says to
  // restore from backup), Invalid (database from a newer certgate), Transient (locked).
  // The file's directory must exist (NotFound otherwise). With read_only: a missing file is
  // NotFound ("run `certgate ingest` first"), nothing is created or migrated, and a schema older
  // than this binary's is Invalid ("run certgate ingest/migrate"); writes then fail (Permanent).
  // Also Invalid: an SQLite file that is not a certgate store.
  static Result<std::unique_ptr<Store>> open(const std::string& path, const OpenOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schemaVersion() const;       // the latest migration applied
  static int latestSchemaVersion();
  const std::string& path() const { return path_; }

  Result<Transaction> begin();     // BEGIN IMMEDIATE
  // The connection's journal_mode, synchronous, foreign_keys and busy_timeout.
  Result<StoreSettings> settings();
  // Writes a consistent, compacted copy to `dest_path` (VACUUM INTO, safe while other
  // connections write: it reads one snapshot) and verifies it with PRAGMA integrity_check.
  // The copy is made as "<dest>.part" with mode 0600, fsync'd and only then linked to
  // `dest_path`, so `dest_path` never holds half a copy. Conflict if `dest_path` exists (a backup
  // never overwrites a file); Corrupt if the copy fails the check (nothing is left behind).
  // Not inside a Transaction.
  Result<BackupInfo> backupTo(const std::string& dest_path);
  // The same from the file at `store_path` over a connection of its own that applies no
  // migrations (`certgate backup`: a backup before an upgrade keeps the old schema).
  static Result<BackupInfo> backupFile(const std::string& store_path, const std::string& dest_path);
  // Reads a copy without changing it: PRAGMA integrity_check, its schema version and audit head.
  // NotFound when the file is missing; Corrupt when it fails the check; Invalid when it is not
  // a certgate store.
  static Result<BackupInfo> inspectCopy(const std::string& path);

  // --- sources, cursors, units, fetches
  // Returns the id of source `name`, creating it on first use. Idempotent. Conflict if the
  // source is recorded with another kind (its facts and cursor belong to that kind).
  Result<std::int64_t> ensureSource(const std::string& name, const std::string& kind);
  Result<std::vector<SourceRow>> sources();  // by id
  Status setCursor(std::int64_t source_id, const std::string& cursor);  // NotFound: no source
  // True when the unit was recorded complete: an incomplete unit is read again next time.
  Result<bool> unitProcessed(std::int64_t source_id, const std::string& unit_key);
  // The keys of the source's units recorded complete (those unitProcessed says true of).
  Result<std::vector<std::string>> processedUnits(std::int64_t source_id);
  // Records a unit by (source, content hash) with the number of records read from it. Recording
  // it again updates an incomplete record; a complete record is final (a later call changes
  // nothing).
  Status recordUnit(std::int64_t source_id, const std::string& unit_key, const std::string& name,
                    std::int64_t bytes, bool complete, const std::string& problem, Instant at,
                    std::int64_t records = 0);
  // Records read from the most recently recorded complete unit of the source (0 if none):
  // the baseline of the record-count collapse guard.
  Result<std::int64_t> lastCompleteUnitRecords(std::int64_t source_id);
  // full_records of the source's newest complete fetch that had them; 0 when none did.
  Result<std::int64_t> lastCompleteFullRecords(std::int64_t source_id);
  Result<std::int64_t> recordFetch(const FetchRow& fetch);  // returns the new id
  // The most recently recorded fetch of the source (highest id), nullopt if none.
  Result<std::optional<FetchRow>> lastFetch(std::int64_t source_id);

  // --- persons and their identifiers
  // Inserts or updates by `key`; empty fields never overwrite known ones. Returns the id.
  // Timestamps: `updated_at` is "now" (it is stored only when something changed); `first_seen`
  // is used on insert (updated_at when unset) and kept afterwards. Also keeps the person's
  // employee_id and email in person_identifiers (one current value per kind; a changed value
  // replaces the old one). Conflict if that employee id or email belongs to another person
  // (nothing is written then): resolve with findPerson and upsert under that person's key.
  // One exception, because the canonical key gets stronger over time: when no person has `key`
  // but the row's email is the key of a person without an employee id (first seen by email),
  // that person takes the row's employee id and `key` (same id, facts stay attached).
  Result<std::int64_t> upsertPerson(const PersonRow& person);
  Result<std::vector<PersonRow>> persons();  // by id
  // Calls fn(id, key, employee_id, email) for every person, by id, from one snapshot: what
  // identity resolution needs, without a PersonRow per person (the ingest's identity index).
  // The views are valid during the call only. Also returns how many people there are, first,
  // through `count` (for sizing), when given.
  Status forEachPersonIdentity(
      const std::function<void(std::int64_t id, std::string_view key, std::string_view employee_id,
                               std::string_view email)>& fn,
      std::int64_t* count = nullptr);
  // Finds by key, employee id or email (normalised by the caller), in that order of precedence.
  Result<std::optional<PersonRow>> findPerson(const std::string& key_or_identifier);

  // --- learning facts
  // Idempotent upsert by (source_id, external_id); `now` becomes first_seen (on insert) and
  // last_seen. fact.id, first_seen and last_seen are ignored. person_id 0 = unresolved (NULL).
  // Errors: Invalid (no source or external id, lms_pass out of range, or a key collision:
  // another external id of the source has the same 64-bit key; nothing is stored then).
  Result<UpsertOutcome> upsertFact(const FactRow& fact, Instant now);
  // The same as upsertFact on each fact in order (same rows, same ids, same outcomes, a fact
  // repeated within the batch included), done as one batch: new rows are appended in order and
  // their key and person-order entries are merged in sorted order, which is what makes a large
  // batch fast (bench_ingest). Invalid facts and key collisions are found before anything is
  // written (Invalid, nothing stored). Outside a Transaction the batch is atomic. Inside one, an
  // SQLite failure part-way (I/O, disk full) can leave part of the batch written: roll the
  // Transaction back. Memory: O(batch) beyond the facts themselves.
  Result<UpsertCounts> upsertFacts(std::span<const FactRow> facts, Instant now);

  // A bulk load of one source's facts (the ingest's writer; docs/design.md, "The ingest write
  // path"). Between beginFactLoad and endFactLoad:
  // - upsertFacts must run inside a Transaction and take facts of `source_id` only. New rows are
  //   written at once; their fact_keys and fact_order entries wait, and Transaction::commit
  //   writes them in one sorted pass before it commits (or upsertFacts does, once
  //   `max_pending` entries wait, or when a later batch names a waiting key). Each B-tree page
  //   is so touched once per unit, not once per batch. Results, rows and ids are those of plain
  //   upsertFacts; a rolled-back Transaction drops its waiting entries with its rows.
  // - If the source had no stored facts at beginFactLoad (a first load), the load knows every
  //   key it has committed, with its fact id (16 bytes a fact), and answers "is this key
  //   stored?" from memory instead of a B-tree probe. Its fact_keys entries are written once,
  //   sorted, by endFactLoad (one pass into an empty key range instead of one into a growing
  //   tree per unit); until then sources.keys_from marks them missing, in the same transactions
  //   as the facts. A load that ends without writing them (a crash, a Transaction still open at
  //   endFactLoad) leaves the mark: the next beginFactLoad or write of the source's facts, on
  //   any connection, writes them from the facts table first. A fact of the source written by
  //   anyone else meanwhile is caught: upsertFact ends the in-memory answers, and a fact id the
  //   load did not assign, of its source, makes its next batch probe the store instead.
  // - Commits do not checkpoint the WAL on this connection: a second connection checkpoints on
  //   a thread of its own after each commit, so the writer does not wait for it.
  // forEachFact and factsOf inside the Transaction see the waiting entries (they are written
  // first). endFactLoad writes what still waits and restores automatic checkpoints; the
  // checkpoint thread's last round runs on in the background (the next beginFactLoad, or closing
  // the store, waits for it). Errors: Invalid (a load already runs, or a Transaction is open at begin).
  struct FactLoadOptions {
    std::size_t max_pending = 2'000'000;  // waiting index entries before they are written
    bool checkpoint_thread = true;
  };
  Status beginFactLoad(std::int64_t source_id, const FactLoadOptions& options);
  Status beginFactLoad(std::int64_t source_id) { return beginFactLoad(source_id, FactLoadOptions{}); }
  Status endFactLoad();
  // What the running load knows, for tests and benchmarks: whether it answers probes from
  // memory, and how many keys and waiting entries it holds.
  struct FactLoadState {
    bool active = false;
    bool all_keys_known = false;
    std::size_t known_keys = 0;
    std::size_t pending = 0;
    std::int64_t checkpoints = 0;  // run by the checkpoint thread so far
  };
  FactLoadState factLoadState() const;

  // Calls `fn` for every fact, ordered by person_id then at, from one snapshot. Streams: O(1)
  // memory.
  // (Unresolved facts, person_id 0, come first; ties on `at` are ordered by id.) `fn` may read
  // from the store but must not write facts while the scan runs.
  Status forEachFact(const std::function<void(const FactRow&)>& fn);
  Result<std::vector<FactRow>> factsOf(std::int64_t person_id);  // ordered by at, id
  Result<std::int64_t> countFacts();

  // --- quarantine
  // Idempotent per (source, external_id, reason, raw): seeing the same record again for the same
  // reason updates that row's at, location and run_id instead of adding one.
  Status addQuarantine(const QuarantineRow& row);
  Result<std::vector<QuarantineRow>> quarantine(std::int64_t limit = 1000);  // latest `at` first
  Result<std::int64_t> countQuarantine();

  // --- exceptions and approvals
  // Returns the new id; row.approvals, if any, are inserted with it (atomically).
  Result<std::int64_t> insertException(const ExceptionRow& row);
  // Idempotent per (exception, approver, role): returns the existing id on a repeat.
  // NotFound if the exception does not exist.
  Result<std::int64_t> addApproval(const ApprovalRow& row);
  // NotFound if it does not exist; revoking a revoked exception keeps the first revocation.
  Status revokeException(std::int64_t id, const std::string& by, Instant at,
                         const std::string& reason = {});
  // NotFound if it does not exist; rejecting a rejected exception keeps the first rejection.
  Status rejectException(std::int64_t id, const std::string& by, const std::string& reason,
                         Instant at);
  // Sets end_recorded_at unless it is set already: true when this call set it. NotFound if the
  // exception does not exist.
  Result<bool> markExceptionEndRecorded(std::int64_t id, Instant at);
  Result<std::vector<ExceptionRow>> exceptions();  // with approvals; by id, approvals by at, id
  Result<std::optional<ExceptionRow>> exception(std::int64_t id);  // with approvals

  // --- grant ledger and intents (used by the reconcile stages)
  // At most one active grant per (person, track, target_kind, target): recording it again with
  // the same external_ref returns the existing id; with another external_ref it is a Conflict.
  Result<std::int64_t> recordGrant(const GrantRow& row);
  // NotFound if it does not exist; revoking a revoked grant keeps the first revoked_at.
  Status markGrantRevoked(std::int64_t grant_id, Instant at);
  Result<std::vector<GrantRow>> activeGrants();  // by id
  // An empty row.state means "pending"; an unset (epoch) updated_at means created_at.
  // Inside a Transaction, a Conflict leaves the transaction usable.
  Result<std::int64_t> addIntent(const IntentRow& row);  // Conflict if the key exists
  // Sets state (pending|done|failed|abandoned, else Invalid) and outcome, bumps attempts.
  // NotFound if the intent does not exist.
  Status completeIntent(std::int64_t id, const std::string& state, const std::string& outcome,
                        Instant at);
  Result<std::vector<IntentRow>> pendingIntents();  // by id

  // --- directory accounts (person -> directory user id)
  // Inserts or replaces the person's account in that directory.
  Status upsertAccount(const AccountRow& row);
  Status forgetAccount(const std::string& directory, std::int64_t person_id);
  Result<std::vector<AccountRow>> accounts(const std::string& directory);  // by person_id

  // --- gateway tokens
  // Inserts; recording the same alias again with the same token id returns the existing id
  // (a retried or adopted issue), with another token id it is a Conflict. A secret_digest that
  // is not "" or "sha256:..." is Invalid: the store never holds a secret.
  Result<std::int64_t> recordToken(const TokenRow& row);
  // Marks a token revoked with the reason; enforcement becomes `enforcement` (pending when the
  // gateway caches keys, with verify_after = when to check). Revoking twice keeps the first.
  Status markTokenRevoked(std::int64_t id, Instant at, const std::string& reason,
                          const std::string& enforcement, std::optional<Instant> verify_after);
  Status setTokenEnforcement(std::int64_t id, const std::string& enforcement);
  Result<std::vector<TokenRow>> tokens(bool live_only);      // by id
  Result<std::optional<TokenRow>> tokenByAlias(const std::string& alias);
  Result<std::vector<TokenRow>> tokensToVerify(Instant now);  // pending, verify_after <= now

  // --- token authority (gateway kind `builtin`)
  // Inserts `row` (seq is assigned) unless (authority, alias) names an unrevoked token that has
  // not expired at `now`: that one is returned with `adopted` set and nothing is written. An
  // unrevoked but expired token with the alias is marked revoked at `now` in the same write.
  // Invalid: an empty token id, authority, alias, subject or client id, or a digest that is not
  // "sha256:" + 64 lower-case hex. Conflict: the token id or the digest exists already.
  Result<AuthorityIssue> issueAuthorityToken(const AuthorityTokenRow& row, Instant now);
  // Sets revoked_at (and bumps seq). False, with nothing written, when the authority has no
  // such token or it is revoked already (the first revocation stands).
  Result<bool> revokeAuthorityToken(const std::string& authority, const std::string& token_id,
                                    Instant at);
  Result<std::optional<AuthorityTokenRow>> authorityToken(const std::string& authority,
                                                          const std::string& token_id);
  // The unrevoked token with the alias, else the most recently issued revoked one.
  Result<std::optional<AuthorityTokenRow>> authorityTokenByAlias(const std::string& authority,
                                                                 const std::string& alias);
  // Every token of `authority`, revoked ones included, by token id. Streams.
  Status forEachAuthorityToken(const std::string& authority,
                               const std::function<void(const AuthorityTokenRow&)>& fn);
  // Every authority's tokens with seq > `after_seq`, by seq: how an in-memory index catches up
  // (after_seq 0: all of them). Streams; `fn` must not write to the store.
  Status authorityTokensChangedSince(std::int64_t after_seq,
                                     const std::function<void(const AuthorityTokenRow&)>& fn);
  // PRAGMA data_version: it changes when another connection (or process) commits a write to
  // the file, not for this connection's own writes. Cheap: no table is read.
  Result<std::int64_t> dataVersion();

  // --- token secret pickups (delivery: email)
  // Single statements: each is atomic on its own and joins an open Transaction.
  // Inserts a waiting pickup. Invalid: an empty id, person, ciphertext or nonce, or expires_at
  // not after created_at. Conflict: the id exists.
  Status insertPickup(const PickupRow& row);
  Result<std::optional<PickupRow>> pickup(const std::string& id);
  // Marks a waiting pickup fetched at `at` and wipes its ciphertext and nonce (with SQLite's
  // secure_delete on for the statement, so the freed bytes are zeroed). False, with nothing
  // written, when it is unknown or fetched already.
  Result<bool> markPickupFetched(const std::string& id, Instant at);
  // Deletes every pickup with expires_at <= now, fetched or not. Returns how many.
  Result<std::int64_t> purgePickups(Instant now);

  // --- figures for /metrics: aggregate reads, no writes
  Result<MetricsSnapshot> metricsSnapshot();
  // Accesses given after audit row `after_audit_id` (at most `limit`, oldest first).
  Result<std::vector<AccessLatency>> accessLatencies(std::int64_t after_audit_id,
                                                     std::int64_t limit = 10000);
  Result<std::int64_t> lastAuditId();

  // --- plans
  Status insertPlan(const PlanRow& row);  // Conflict if the id exists
  Result<std::optional<PlanRow>> plan(const std::string& id);
  Result<std::vector<PlanRow>> plans(std::int64_t limit = 50);  // newest first, without plan_json
  // Sets the state (and approved_by/at, applied_at, outcome when given). NotFound if absent.
  Status updatePlan(const std::string& id, const std::string& state,
                    const std::string& approved_by = {}, std::optional<Instant> approved_at = {},
                    std::optional<Instant> applied_at = {}, const std::string& outcome = {});

  // --- audit and runs
  // Append-only (triggers refuse UPDATE and DELETE of audit rows) and hash-chained: the row
  // gets id = last id + 1, prev_hash = the last row's hash and hash = auditRowHash. The last
  // row is read and the new one written in one write transaction (BEGIN IMMEDIATE, or the open
  // Transaction), so writers in other connections or processes cannot fork the chain. Rows
  // still without a hash (written by a certgate before the chain) are chained first.
  Result<std::int64_t> appendAudit(const AuditRow& row);
  Result<std::vector<AuditRow>> audit(std::int64_t limit = 1000);  // newest first
  // The rows `filter` accepts, oldest first (by id), hashes included. Streams; `fn` must not
  // write to the store.
  Status forEachAudit(const AuditFilter& filter, const std::function<void(const AuditRow&)>& fn);
  Result<AuditHead> auditHead();
  // The newest row with exactly this action (index audit_by_action), nullopt if none.
  Result<std::optional<AuditRow>> lastAudit(const std::string& action);
  // Recomputes the whole chain in one read snapshot and reports the first break (see
  // AuditBreak). With `expect_head` (a head recorded earlier, e.g. by a previous verification),
  // also checks that row still exists with that hash: the chain alone cannot see the newest
  // rows being deleted. Read-only.
  Result<AuditVerification> verifyAudit(const std::optional<AuditHead>& expect_head = {});
  // Hashes the rows that have none (written before the chain existed), in id order. Returns how
  // many. open() runs it for writing connections; appendAudit runs it before each append.
  Result<std::int64_t> chainAudit();
  Result<std::int64_t> beginRun(const std::string& kind, Instant at);  // outcome "running"
  // NotFound if the run does not exist; Conflict if it already finished.
  Status finishRun(std::int64_t run_id, const std::string& outcome,
                   const std::string& summary_json, Instant at);
  Result<std::vector<RunRow>> runs(std::int64_t limit = 50);  // newest first

  // --- alerts (engine/alerts.hpp). Single statements: each is atomic on its own and joins an
  // open Transaction, which is how the collector writes outbox rows and its cursors together.
  // Audit rows, runs and fetches with id > after_id, oldest first, at most `limit`.
  Result<std::vector<AuditRow>> auditAfter(std::int64_t after_id, std::int64_t limit);
  Result<std::vector<RunRow>> runsAfter(std::int64_t after_id, std::int64_t limit);
  Result<std::vector<FetchRow>> fetchesAfter(std::int64_t after_id, std::int64_t limit);
  // Audit rows with `action` and from <= at < to, and id <= up_to_id.
  Result<std::int64_t> countAudit(const std::string& action, Instant from, Instant to,
                                  std::int64_t up_to_id);
  // The newest audit row with `action` and id < before_id whose details_json has the string
  // member `key` equal to `value`; nullopt when there is none.
  Result<std::optional<AuditRow>> lastAuditWith(const std::string& action, const std::string& key,
                                                const std::string& value, std::int64_t before_id);
  Result<std::int64_t> alertCursor(const std::string& name);  // 0 when never set
  Status setAlertCursor(const std::string& name, std::int64_t value);
  // Inserts a pending row (state, attempts, delivered_at and last_error are ignored). False,
  // with nothing written, when the sink already has a row with the dedup id. Invalid: an empty
  // sink, dedup id, kind or payload.
  Result<bool> enqueueAlert(const AlertOutboxRow& row);
  // Pending rows with next_attempt_at <= now, by next_attempt_at then id, at most `limit`.
  Result<std::vector<AlertOutboxRow>> dueAlerts(Instant now, std::int64_t limit);
  // Rows in `state` ("" = any), newest first, at most `limit` (negative: all).
  Result<std::vector<AlertOutboxRow>> alertOutbox(const std::string& state, std::int64_t limit);
  // State changes of a pending row; NotFound when the id is not a pending row.
  Status markAlertDelivered(std::int64_t id, Instant at);  // attempts + 1
  Status markAlertRetry(std::int64_t id, Instant next_attempt_at, const std::string& error);
  Status markAlertDead(std::int64_t id, Instant at, const std::string& error);
  Result<std::vector<AlertCounts>> alertCounts();  // by sink

 private:
  friend class Transaction;
  Store(sqlite3* db, std::string path);
  struct Cache;
  Result<UpsertCounts> writeFacts(std::span<const FactRow> facts, Instant now, bool in_load);
  // Writes the fact load's waiting fact_keys / fact_order entries (none: nothing to do). A
  // failure part-way marks the open Transaction broken.
  Status flushFactLoad();
  // A first load's end: its fact_keys entries and the cleared sources.keys_from, in one
  // transaction (no Transaction open).
  Status writeLoadKeys();
  // Writes the fact_keys entries that a first load which ended without them left missing
  // (sources.keys_from set), from the facts table, and clears the mark. Nothing when none miss.
  Status repairFactKeys(std::int64_t source_id);
  // sources.keys_from of the source: none when every fact of it has its fact_keys entry.
  Result<std::optional<std::int64_t>> keysFrom(std::int64_t source_id);
  // Invalid unless every non-zero person id of `facts` lies in 1..max(persons.id).
  Status checkPersonRange(std::span<const FactRow> facts);
  // One UPDATE of an exception (?1 = id, the rest bound by `bind`): NotFound when no exception
  // has the id; *changed (optional) says whether a row changed.
  Status updateException(std::int64_t id, const char* sql, const char* op,
                         const std::function<void(detail::Stmt&)>& bind, bool* changed = nullptr);

  sqlite3* db_ = nullptr;
  std::string path_;
  std::unique_ptr<Cache> cache_;  // prepared statements kept for hot paths
  int schema_version_ = 0;
};

}  // namespace certgate::store
