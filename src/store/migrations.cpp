#include "store/migrations.hpp"

#include <sqlite3.h>

#include "store/db.hpp"

namespace certgate::store::detail {
namespace {

// Conventions: instants are INTEGER unix seconds (UTC); std::optional and "no score" are NULL;
// an id of 0 in the API ("none") is NULL in an optional foreign key; plain strings are NOT NULL
// with '' for empty. Enumerations are stored as text so the file reads well in a sqlite3 shell
// and survives reordering of the C++ enums.
constexpr const char kInitialSchema[] = R"sql(
CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  kind         TEXT    NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  outcome      TEXT    NOT NULL DEFAULT 'running',
  summary_json TEXT    NOT NULL DEFAULT '{}'
);

CREATE TABLE sources (
  id     INTEGER PRIMARY KEY,
  name   TEXT NOT NULL UNIQUE,
  kind   TEXT NOT NULL,
  cursor TEXT NOT NULL DEFAULT ''
);

-- Unit ledger: one row per (source, content hash) so a file delivered twice is read once.
CREATE TABLE source_units (
  id        INTEGER PRIMARY KEY,
  source_id INTEGER NOT NULL REFERENCES sources(id),
  unit_key  TEXT    NOT NULL,
  name      TEXT    NOT NULL DEFAULT '',
  bytes     INTEGER NOT NULL DEFAULT 0,
  complete  INTEGER NOT NULL CHECK (complete IN (0, 1)),
  problem   TEXT    NOT NULL DEFAULT '',
  records   INTEGER NOT NULL DEFAULT 0,  -- records read from it (the collapse guard's baseline)
  at        INTEGER NOT NULL,
  UNIQUE (source_id, unit_key)
);
CREATE INDEX source_units_complete ON source_units (source_id, at) WHERE complete = 1;

-- Completeness of every fetch: the stale-source guard reads the last one per source.
CREATE TABLE fetches (
  id            INTEGER PRIMARY KEY,
  source_id     INTEGER NOT NULL REFERENCES sources(id),
  run_id        INTEGER REFERENCES runs(id),
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER NOT NULL,
  complete      INTEGER NOT NULL CHECK (complete IN (0, 1)),
  problem       TEXT    NOT NULL DEFAULT '',
  units_seen    INTEGER NOT NULL DEFAULT 0,
  units_skipped INTEGER NOT NULL DEFAULT 0,
  records       INTEGER NOT NULL DEFAULT 0,
  quarantined   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fetches_by_source ON fetches (source_id);

CREATE TABLE persons (
  id           INTEGER PRIMARY KEY,
  key          TEXT    NOT NULL UNIQUE,
  employee_id  TEXT    NOT NULL DEFAULT '',
  email        TEXT    NOT NULL DEFAULT '',
  display_name TEXT    NOT NULL DEFAULT '',
  population   TEXT    NOT NULL DEFAULT '',
  first_seen   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

-- The current employee id and email of each person; a value belongs to one person at a time.
CREATE TABLE person_identifiers (
  kind      TEXT    NOT NULL CHECK (kind IN ('employee_id', 'email')),
  value     TEXT    NOT NULL,
  person_id INTEGER NOT NULL REFERENCES persons(id),
  PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX person_identifiers_by_person ON person_identifiers (person_id, kind);

CREATE TABLE facts (
  id          INTEGER PRIMARY KEY,
  source_id   INTEGER NOT NULL REFERENCES sources(id),
  external_id TEXT    NOT NULL,
  -- 64-bit hash of external_id (store.cpp factKey): the compact uniqueness key. A random 66-char
  -- text key made every insert land on a random leaf of a huge index (docs/benchmarks.md).
  -- external_id is compared on every key match, so a hash collision is detected, never merged.
  ext_key     INTEGER NOT NULL,
  person_id   INTEGER REFERENCES persons(id),  -- NULL while the identity is unresolved
  item        TEXT    NOT NULL,
  lms_item    TEXT    NOT NULL DEFAULT '',
  -- Hot path: these CHECKs are spelled with = / BETWEEN, not IN (...): SQLite builds a temporary
  -- table for an IN list on every row checked, which made upserts three times slower.
  kind        TEXT    NOT NULL
              CHECK (kind = 'completion' OR kind = 'quiz_attempt' OR kind = 'attempt_reset'),
  status      TEXT    NOT NULL
              CHECK (status = 'completed' OR status = 'passed' OR status = 'failed'
                     OR status = 'unknown'),
  lms_pass    INTEGER NOT NULL CHECK (lms_pass BETWEEN -1 AND 1),
  attempt     INTEGER NOT NULL,
  score       REAL,
  max_score   REAL,
  at          INTEGER NOT NULL,
  lms_expiry  INTEGER,
  location    TEXT    NOT NULL DEFAULT '',
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  UNIQUE (source_id, ext_key)
);
-- Serves forEachFact (ORDER BY person_id, at, id) without a sort, and factsOf.
CREATE INDEX facts_by_person_at ON facts (person_id, at);

CREATE TABLE quarantine (
  id          INTEGER PRIMARY KEY,
  source_id   INTEGER REFERENCES sources(id),
  external_id TEXT    NOT NULL DEFAULT '',
  location    TEXT    NOT NULL DEFAULT '',
  reason      TEXT    NOT NULL,
  raw         TEXT    NOT NULL DEFAULT '',
  at          INTEGER NOT NULL,              -- the latest time it was seen
  first_at    INTEGER NOT NULL,
  times       INTEGER NOT NULL DEFAULT 1,
  run_id      INTEGER REFERENCES runs(id)
);
-- The same record set aside for the same reason is one row, however often it is re-delivered.
CREATE UNIQUE INDEX quarantine_once ON quarantine (ifnull(source_id, 0), external_id, reason, raw);
CREATE INDEX quarantine_by_time ON quarantine (at);

CREATE TABLE exceptions (
  id                 INTEGER PRIMARY KEY,
  person_id          INTEGER NOT NULL REFERENCES persons(id),
  track              TEXT    NOT NULL,
  requester          TEXT    NOT NULL,
  requested_at       INTEGER NOT NULL,
  starts_at          INTEGER NOT NULL,
  ends_at            INTEGER NOT NULL,
  justification_json TEXT    NOT NULL DEFAULT '{}',
  revoked_at         INTEGER,
  revoked_by         TEXT    NOT NULL DEFAULT '',
  CHECK (ends_at >= starts_at)
);
CREATE INDEX exceptions_by_person ON exceptions (person_id);

CREATE TABLE approvals (
  id           INTEGER PRIMARY KEY,
  exception_id INTEGER NOT NULL REFERENCES exceptions(id),
  approver     TEXT    NOT NULL,
  role         TEXT    NOT NULL,
  at           INTEGER NOT NULL,
  comment      TEXT    NOT NULL DEFAULT '',
  UNIQUE (exception_id, approver, role)
);

-- The grant ledger: what certgate added to a directory or gateway and therefore owns.
CREATE TABLE grants (
  id           INTEGER PRIMARY KEY,
  person_id    INTEGER NOT NULL REFERENCES persons(id),
  track        TEXT    NOT NULL,
  target_kind  TEXT    NOT NULL,
  target       TEXT    NOT NULL,
  external_ref TEXT    NOT NULL DEFAULT '',
  granted_at   INTEGER NOT NULL,
  revoked_at   INTEGER
);
CREATE INDEX grants_by_person ON grants (person_id);
CREATE UNIQUE INDEX grants_active_once ON grants (person_id, track, target_kind, target)
  WHERE revoked_at IS NULL;

-- Intent log / outbox: written before an external side effect, completed after it.
CREATE TABLE intents (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER REFERENCES runs(id),
  kind            TEXT    NOT NULL,
  target          TEXT    NOT NULL DEFAULT '',
  idempotency_key TEXT    NOT NULL UNIQUE,
  payload_json    TEXT    NOT NULL DEFAULT '{}',
  state           TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'done', 'failed', 'abandoned')),
  outcome         TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX intents_pending ON intents (id) WHERE state = 'pending';

-- Append-only evidence. prev_hash/hash are filled by the hash chain (a later stage): they may be
-- set once, every other column never changes, and rows are never deleted.
CREATE TABLE audit (
  id           INTEGER PRIMARY KEY,
  at           INTEGER NOT NULL,
  actor        TEXT    NOT NULL,
  action       TEXT    NOT NULL,
  subject      TEXT    NOT NULL DEFAULT '',
  details_json TEXT    NOT NULL DEFAULT '{}',
  run_id       INTEGER REFERENCES runs(id),
  prev_hash    TEXT,
  hash         TEXT
);
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'audit is append-only: rows cannot be deleted');
END;
CREATE TRIGGER audit_no_rewrite
  BEFORE UPDATE OF id, at, actor, action, subject, details_json, run_id ON audit
BEGIN
  SELECT RAISE(ABORT, 'audit is append-only: rows cannot be changed');
END;
CREATE TRIGGER audit_hash_once BEFORE UPDATE OF prev_hash, hash ON audit
  WHEN old.hash IS NOT NULL OR old.prev_hash IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'audit is append-only: a row''s hash is set once');
END;
)sql";

// Directory reconciliation: the person -> directory account cache and stored plans.
constexpr const char kDirectorySchema[] = R"sql(
-- Which directory user a person is, per directory (found by the configured match rules).
CREATE TABLE directory_accounts (
  directory   TEXT    NOT NULL,
  person_id   INTEGER NOT NULL REFERENCES persons(id),
  user_id     TEXT    NOT NULL,
  resolved_at INTEGER NOT NULL,
  PRIMARY KEY (directory, person_id)
) WITHOUT ROWID;
CREATE INDEX directory_accounts_by_user ON directory_accounts (directory, user_id);

-- Plans: the printable dry run, kept so that `apply ID` applies exactly what was reviewed and a
-- held plan can be approved.
CREATE TABLE plans (
  id           TEXT    PRIMARY KEY,
  created_at   INTEGER NOT NULL,
  run_id       INTEGER REFERENCES runs(id),
  fingerprint  TEXT    NOT NULL,
  state        TEXT    NOT NULL
               CHECK (state IN ('planned', 'held', 'approved', 'applied', 'partial', 'superseded')),
  adds         INTEGER NOT NULL DEFAULT 0,
  removes      INTEGER NOT NULL DEFAULT 0,
  skipped      INTEGER NOT NULL DEFAULT 0,
  scope        TEXT    NOT NULL DEFAULT '',
  plan_json    TEXT    NOT NULL,
  approved_by  TEXT,
  approved_at  INTEGER,
  applied_at   INTEGER,
  outcome      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX plans_by_created ON plans (created_at);
)sql";

// Gateway tokens: what certgate issued, by alias (the idempotency key), with only a digest of
// the secret, and whether a revocation is enforced yet.
constexpr const char kTokenSchema[] = R"sql(
CREATE TABLE tokens (
  id            INTEGER PRIMARY KEY,
  person_id     INTEGER NOT NULL REFERENCES persons(id),
  track         TEXT    NOT NULL,
  gateway       TEXT    NOT NULL,
  scope         TEXT    NOT NULL,
  alias         TEXT    NOT NULL UNIQUE,
  token_id      TEXT    NOT NULL,
  secret_digest TEXT    NOT NULL DEFAULT '' CHECK (secret_digest = '' OR secret_digest LIKE 'sha256:%'),
  issued_at     INTEGER NOT NULL,
  expires_at    INTEGER,
  revoked_at    INTEGER,
  revoke_reason TEXT    NOT NULL DEFAULT '',
  enforcement   TEXT    NOT NULL DEFAULT 'live'
                CHECK (enforcement IN ('live', 'pending', 'enforced', 'not_enforced', 'unknown')),
  verify_after  INTEGER,
  UNIQUE (gateway, token_id)
);
CREATE INDEX tokens_live ON tokens (person_id) WHERE revoked_at IS NULL;
CREATE INDEX tokens_pending ON tokens (verify_after) WHERE enforcement = 'pending';
)sql";

// certgate's own token authority (gateway kind `builtin`): the tokens it minted, found by the
// SHA-256 digest of the secret (never the secret itself). At most one unrevoked token per
// (authority, alias), the idempotency key. `seq` is bumped on every change (from the highest
// value + 1, inside the write transaction), so a reader's in-memory index catches up by reading
// only the rows with a higher seq.
constexpr const char kAuthoritySchema[] = R"sql(
CREATE TABLE authority_tokens (
  token_id   TEXT    PRIMARY KEY,
  authority  TEXT    NOT NULL,
  digest     TEXT    NOT NULL UNIQUE CHECK (digest LIKE 'sha256:%' AND length(digest) = 71),
  alias      TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  client_id  TEXT    NOT NULL,
  scope      TEXT    NOT NULL DEFAULT '',
  issued_at  INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  seq        INTEGER NOT NULL UNIQUE
) WITHOUT ROWID;
CREATE UNIQUE INDEX authority_tokens_live_alias ON authority_tokens (authority, alias)
  WHERE revoked_at IS NULL;
CREATE INDEX authority_tokens_by_alias ON authority_tokens (authority, alias, issued_at);
)sql";

// Facts written in bulk (docs/benchmarks.md, "bulk fact writes"). The table itself keeps no
// secondary index: a unit's new rows are appended in arrival order (same ids as before), and the
// two lookups it needs live in clustered side tables that the store fills in key order, one
// sorted pass per batch, instead of one random B-tree descent per row and index:
//   fact_keys   (source_id, ext_key) -> fact id: the uniqueness of (source, external id);
//   fact_order  (person_id, at, fact id): the person scan, and the person foreign key, which is
//               checked here in person order (on facts it cost a random lookup per row).
// Facts of no known person (person_id NULL) are not in fact_order; facts_unresolved lists them.
// Every fact has one fact_keys row; every fact with a person has one fact_order row with the same
// person_id and at. Only the store writes these tables and keeps that true.
constexpr const char kBulkFactsSchema[] = R"sql(
CREATE TABLE facts_v4 (
  id          INTEGER PRIMARY KEY,
  source_id   INTEGER NOT NULL REFERENCES sources(id),
  external_id TEXT    NOT NULL,
  ext_key     INTEGER NOT NULL,  -- 64-bit hash of external_id (store.cpp factKey)
  person_id   INTEGER,           -- NULL while unresolved; the foreign key is on fact_order
  item        TEXT    NOT NULL,
  lms_item    TEXT    NOT NULL DEFAULT '',
  kind        TEXT    NOT NULL
              CHECK (kind = 'completion' OR kind = 'quiz_attempt' OR kind = 'attempt_reset'),
  status      TEXT    NOT NULL
              CHECK (status = 'completed' OR status = 'passed' OR status = 'failed'
                     OR status = 'unknown'),
  lms_pass    INTEGER NOT NULL CHECK (lms_pass BETWEEN -1 AND 1),
  attempt     INTEGER NOT NULL,
  score       REAL,
  max_score   REAL,
  at          INTEGER NOT NULL,
  lms_expiry  INTEGER,
  location    TEXT    NOT NULL DEFAULT '',
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL
);
INSERT INTO facts_v4 (id, source_id, external_id, ext_key, person_id, item, lms_item, kind,
                      status, lms_pass, attempt, score, max_score, at, lms_expiry, location,
                      first_seen, last_seen)
  SELECT id, source_id, external_id, ext_key, person_id, item, lms_item, kind, status, lms_pass,
         attempt, score, max_score, at, lms_expiry, location, first_seen, last_seen
    FROM facts ORDER BY id;
DROP TABLE facts;
ALTER TABLE facts_v4 RENAME TO facts;

CREATE TABLE fact_keys (
  source_id INTEGER NOT NULL,
  ext_key   INTEGER NOT NULL,
  fact_id   INTEGER NOT NULL,
  PRIMARY KEY (source_id, ext_key)
) WITHOUT ROWID;
INSERT INTO fact_keys (source_id, ext_key, fact_id)
  SELECT source_id, ext_key, id FROM facts ORDER BY source_id, ext_key;

CREATE TABLE fact_order (
  person_id INTEGER NOT NULL REFERENCES persons(id),
  at        INTEGER NOT NULL,
  fact_id   INTEGER NOT NULL,
  PRIMARY KEY (person_id, at, fact_id)
) WITHOUT ROWID;
INSERT INTO fact_order (person_id, at, fact_id)
  SELECT person_id, at, id FROM facts WHERE person_id IS NOT NULL ORDER BY person_id, at, id;

CREATE INDEX facts_unresolved ON facts (at) WHERE person_id IS NULL;
)sql";

// Token secrets waiting to be picked up through a single-use link (delivery: email). Never the
// secret: AES-256-GCM ciphertext under a key the store does not hold, the pickup id as associated
// data. Once fetched, ciphertext and nonce are wiped (NULL) and fetched_at set, in one statement;
// rows are deleted once they expire.
constexpr const char kPickupSchema[] = R"sql(
CREATE TABLE pickups (
  id          TEXT    PRIMARY KEY,  -- 128 random bits, base64url: the link's last segment
  person      TEXT    NOT NULL,
  token_alias TEXT    NOT NULL,
  ciphertext  BLOB,                 -- NULL once fetched
  nonce       BLOB,                 -- 96 bits; NULL once fetched
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  fetched_at  INTEGER,
  CHECK ((fetched_at IS NULL) = (ciphertext IS NOT NULL AND nonce IS NOT NULL))
) WITHOUT ROWID;
CREATE INDEX pickups_by_expiry ON pickups (expires_at);
)sql";

// Alerts: a projection of the audit log, runs and fetches (engine/alerts.hpp). One outbox row per
// (alert, sink), unique on (sink, dedup_id) so collecting the same origin twice adds nothing; the
// cursors say how far each origin table was read. Written in one transaction with the cursor.
constexpr const char kAlertSchema[] = R"sql(
CREATE TABLE alert_outbox (
  id              INTEGER PRIMARY KEY,
  sink            TEXT    NOT NULL,
  dedup_id        TEXT    NOT NULL,
  kind            TEXT    NOT NULL,
  severity        TEXT    NOT NULL,
  payload_json    TEXT    NOT NULL,  -- the alert document; never secrets
  state           TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  last_error      TEXT    NOT NULL DEFAULT '',
  UNIQUE (sink, dedup_id)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';

CREATE TABLE alert_cursors (
  name  TEXT    PRIMARY KEY,  -- 'audit', 'runs', 'fetches'
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// The exceptions workflow (engine/exceptions.hpp): a rejection ends a request for good; a
// revocation keeps its reason; end_recorded_at is when the end of an exception that ran out by
// itself was written to the audit log (the sweep), so that it is written once.
constexpr const char kExceptionWorkflowSchema[] = R"sql(
ALTER TABLE exceptions ADD COLUMN rejected_at     INTEGER;
ALTER TABLE exceptions ADD COLUMN rejected_by     TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN rejected_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN revoked_reason  TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN end_recorded_at INTEGER;
CREATE INDEX exceptions_end_unrecorded ON exceptions (ends_at) WHERE end_recorded_at IS NULL;
)sql";

// The audit hash chain (store.hpp appendAudit): rows without a hash are the ones written before
// the chain existed; Store::open (writing) chains them in id order, found by this index, which
// stays empty afterwards. audit_by_action: the newest event of a kind without a scan.
constexpr const char kAuditChainSchema[] = R"sql(
CREATE INDEX audit_unchained ON audit (id) WHERE hash IS NULL;
-- The newest event of a kind (config.change) and the events of a kind (report kpi, export).
CREATE INDEX audit_by_action ON audit (action, id);
)sql";

// The record-count collapse guard of sources that read part of their data whole at every fetch
// but cut it into incremental units (FetchOutcome::full_records); NULL: the source has none.
constexpr const char kFullRecordsSchema[] = R"sql(
ALTER TABLE fetches ADD COLUMN full_records INTEGER;
)sql";

// fact_order without its person foreign key (docs/benchmarks.md, "fact loads"): the check cost a
// persons lookup per fact, about a fifth of the person-order writes. What stands in for it:
// persons are never deleted (the trigger refuses it), so an id read from persons keeps naming
// its person; and the store refuses a batch with a person id outside 1..max(persons.id)
// (store.cpp checkPersonRange), which catches an id that was never assigned.
constexpr const char kFactOrderNoForeignKeySchema[] = R"sql(
CREATE TABLE fact_order_v11 (
  person_id INTEGER NOT NULL,
  at        INTEGER NOT NULL,
  fact_id   INTEGER NOT NULL,
  PRIMARY KEY (person_id, at, fact_id)
) WITHOUT ROWID;
INSERT INTO fact_order_v11 (person_id, at, fact_id)
  SELECT person_id, at, fact_id FROM fact_order ORDER BY person_id, at, fact_id;
DROP TABLE fact_order;
ALTER TABLE fact_order_v11 RENAME TO fact_order;
CREATE TRIGGER persons_never_deleted BEFORE DELETE ON persons
BEGIN
  SELECT RAISE(ABORT, 'persons are never deleted: facts, grants and the audit log refer to them');
END;
)sql";

// A first load's facts whose fact_keys entries are not written yet (docs/design.md, "Fact
// loads"; docs/benchmarks.md, "a first load writes its keys at its end"): every fact of the
// source with id >= keys_from. A first load
// (Store::beginFactLoad on a source with no stored fact) keeps its keys in memory and writes
// them once, sorted, at its end, in the transaction that clears the mark; a load that ends
// without (a crash) leaves the mark, and the next write of the source's facts writes the
// entries from facts first. NULL: every fact of the source has its entry.
constexpr const char kFactKeysFromSchema[] = R"sql(
ALTER TABLE sources ADD COLUMN keys_from INTEGER;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kInitialSchema},
    {2, "directory accounts and plans", kDirectorySchema},
    {3, "gateway tokens", kTokenSchema},
    {4, "token authority", kAuthoritySchema},
    {5, "facts written in bulk: key and person order in clustered tables", kBulkFactsSchema},
    {6, "token secret pickups (delivery by email)", kPickupSchema},
    {7, "alert outbox and cursors", kAlertSchema},
    {8, "exceptions: rejection, revocation reason, recorded end", kExceptionWorkflowSchema},
    {9, "audit hash chain: rows not chained yet, events by action", kAuditChainSchema},
    {10, "fetches: what the source read whole (the collapse guard's baseline)", kFullRecordsSchema},
    {11, "fact_order without the person foreign key; persons are never deleted",
     kFactOrderNoForeignKeySchema},
    {12, "sources: facts of a first load whose fact_keys entries are written at its end",
     kFactKeysFromSchema},
};

constexpr const char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version    INTEGER PRIMARY KEY,"
    "  applied_at INTEGER NOT NULL"
    ")";

core::Status finish(sqlite3* db, const std::string& path, core::Status status) {
  if (status.ok()) {
    auto committed = execScript(db, "COMMIT", "migrate: commit", path);
    if (committed.ok()) return committed;
    status = committed;
  }
  if (sqlite3_get_autocommit(db) == 0) {
    static_cast<void>(execScript(db, "ROLLBACK", "migrate: rollback", path));
  }
  return status;
}

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

core::Result<int> readSchemaVersion(sqlite3* db, const std::string& path) {
  auto tables = prepare(db,
                        "SELECT count(*) FILTER (WHERE name = 'schema_migrations'),"
                        "       count(*) FILTER (WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\')"
                        "  FROM sqlite_schema WHERE type = 'table'",
                        false, "read schema version", path);
  if (!tables) return tables.error();
  Stmt list(std::move(*tables), "read schema version", &path);
  auto row = list.stepRow();
  if (!row) return row.error();
  const bool has_migrations = list.colInt(0) > 0;
  const std::int64_t user_tables = list.colInt(1);
  if (!has_migrations) {
    if (user_tables > 0) {
      return core::makeError(core::ErrorKind::Invalid,
                             "'" + path +
                                 "' is an SQLite database but not a certgate state store "
                                 "(it has tables but no schema_migrations)",
                             path, "point certgate at its own database file (store.path)");
    }
    return 0;
  }
  auto max = prepare(db, "SELECT ifnull(max(version), 0) FROM schema_migrations", false,
                     "read schema version", path);
  if (!max) return max.error();
  Stmt version(std::move(*max), "read schema version", &path);
  auto got = version.stepRow();
  if (!got) return got.error();
  return static_cast<int>(version.colInt(0));
}

core::Result<int> migrate(sqlite3* db, const std::string& path, std::span<const Migration> list,
                          core::Instant now) {
  const int newest = list.empty() ? 0 : list.back().version;
  auto current = readSchemaVersion(db, path);
  if (!current) return current.error();
  int version = *current;
  for (const Migration& migration : list) {
    if (migration.version <= version) continue;
    auto begun = execScript(db, "BEGIN IMMEDIATE", "migrate: begin", path);
    if (!begun) return begun.error();
    auto status = [&]() -> core::Status {
      // Another process may have migrated while we waited for the lock.
      auto inside = readSchemaVersion(db, path);
      if (!inside) return inside.error();
      if (*inside >= migration.version) return {};
      auto created = execScript(db, kCreateMigrationsTable, "migrate: schema_migrations", path);
      if (!created) return created;
      const std::string op =
          "migration " + std::to_string(migration.version) + " (" + migration.name + ")";
      auto applied = execScript(db, migration.sql, op, path);
      if (!applied) return applied;
      auto insert =
          prepare(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", false,
                  "migrate: record version", path);
      if (!insert) return insert.error();
      Stmt record(std::move(*insert), "migrate: record version", &path);
      record.bindInt(1, migration.version);
      record.bindInstant(2, now);
      return record.run();
    }();
    auto done = finish(db, path, std::move(status));
    if (!done) return done.error();
    auto after = readSchemaVersion(db, path);
    if (!after) return after.error();
    version = *after;
  }
  if (version > newest) {
    return core::makeError(core::ErrorKind::Invalid,
                           "database was written by a newer certgate (schema version " +
                               std::to_string(version) + ", this certgate knows up to " +
                               std::to_string(newest) + ")",
                           path, "upgrade certgate");
  }
  return version;
}

}  // namespace certgate::store::detail
