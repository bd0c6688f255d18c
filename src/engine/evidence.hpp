#pragma once
// Audit and evidence over the store: configuration changes recorded in the audit chain, the
// per-person evidence export auditors receive, and the KPI report PeopleOps publish.
//
// recordConfigChange writes one audit row when the configuration changed. evidence() and kpi()
// are read-only: they evaluate the rules as of `now` and read facts, exceptions and the audit
// log; they never write. Output is rendered here (CSV / JSON text); writing it to a file is the
// caller's job. None of the output holds secrets: the store keeps none in the rows read here.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

// ---------------------------------------------------------------- configuration changes

// The files whose content is the configuration: certgate.yaml, track files, policy documents,
// item and grant mapping files and the identity mapping file (not the roster: that is data).
std::vector<std::string> configFiles(const settings::Settings& settings);

struct ConfigChange {
  bool recorded = false;             // a config.change row was appended
  std::string digest;                // SHA-256 over the sorted "path\tfile digest" lines
  std::vector<std::string> changed;  // files whose content differs from the last record
  std::vector<std::string> added;    // files not in the last record
  std::vector<std::string> removed;  // files in the last record, no longer loaded
  std::int64_t audit_id = 0;
};

// Digests the configuration files and compares them with the newest `config.change` audit row.
// When they differ (or none was recorded yet) appends a `config.change` row: subject
// "configuration", details {"digest", "files": {path: sha256}, "changed", "added", "removed",
// "first"}. An unreadable file is digested as "unreadable" (the settings loader has read it
// already, so this is a race with an edit; the next call records the settled state).
core::Result<ConfigChange> recordConfigChange(store::Store& store,
                                              const settings::Settings& settings,
                                              core::Instant now, const std::string& actor);

// ---------------------------------------------------------------- evidence export

enum class EvidenceFormat { Csv, Json };

struct EvidenceOptions {
  core::Instant since{};     // facts, exceptions, approvals and actions from this instant on
  core::Instant now{};       // certification states are evaluated as of now
  std::string person;        // one person (key, employee id or email); "" = everybody
  EvidenceFormat format = EvidenceFormat::Json;
};

struct EvidenceExport {
  std::string text;            // the whole document
  std::int64_t persons = 0;    // persons exported
  std::int64_t records = 0;    // records (CSV rows below the header, without audit_head)
  store::AuditHead head;       // the audit chain's head when the export was read
};

// The CSV columns, in order (docs/operations.md "Audit and evidence" describes each).
extern const std::vector<std::string> kEvidenceColumns;

// NotFound when `person` matches nobody.
core::Result<EvidenceExport> exportEvidence(store::Store& store,
                                            const settings::LoadedPolicy& policy,
                                            const EvidenceOptions& options);

// ---------------------------------------------------------------- KPI report

// Nearest-rank percentile of `values` (p in (0, 100]): the smallest value with at least p% of
// the values at or below it. nullopt for no values.
std::optional<double> percentile(std::vector<double> values, double p);

struct KpiWeek {
  std::string week;            // ISO week "2026-W48"
  core::Instant starts_at{};   // Monday 00:00 UTC
  std::int64_t requested = 0;  // exceptions requested in the week
  std::int64_t approved = 0;   // exceptions whose last required approval fell in the week
  std::int64_t active = 0;     // approved exceptions granting access at some time in the week
};

struct KpiReport {
  core::Instant since{};
  core::Instant now{};
  // Time from certification to access, in hours.
  std::int64_t access_measured = 0;   // certifications with an access event after them
  std::int64_t access_waiting = 0;    // certifications with none yet
  std::optional<double> access_p50_hours;
  std::optional<double> access_p95_hours;
  std::optional<double> access_target_p95_hours;  // sloTargets.accessProvisioning...
  // Completion within 48 hours of assignment.
  std::int64_t assigned = 0;           // (person, track) assignments whose 48 h have passed
  std::int64_t completed_within_48h = 0;
  std::optional<double> completion_pct;
  std::optional<double> completion_target_pct;    // sloTargets.trainingCompletion...
  std::vector<KpiWeek> weeks;          // every ISO week from `since` to `now`, oldest first
};

// Definitions (docs/operations.md "KPI report"):
// - certification to access: for each (person, track) whose current cycle was certified at or
//   after `since` (certified_at from the evaluation as of `now`), the first `group.add` or
//   `token.issue` audit event for that person and track at or after certified_at; hours
//   between the two. Without such an event the certification counts as waiting.
// - assignment: the person's first_seen (when certgate first recorded them, from the roster,
//   a directory roster or a source) for every track in scope for them (state not
//   out_of_scope). Counted when first_seen is in [since, now - 48 h]; completed within 48 h
//   when the track's certified_at of that evaluation is at or before first_seen + 48 h.
// - exceptions per ISO week (Monday 00:00 UTC): requested by requested_at; approved at the
//   first moment every required role of the track had an approval by someone other than the
//   requester; active when approved and [max(starts_at, approved), min(ends_at, revoked_at))
//   overlaps the week.
core::Result<KpiReport> kpiReport(store::Store& store, const settings::LoadedPolicy& policy,
                                  core::Instant since, core::Instant now);

// "2026-W48" for the ISO week containing `t`, and that week's Monday 00:00 UTC.
std::string isoWeek(core::Instant t);
core::Instant isoWeekStart(core::Instant t);

}  // namespace certgate::engine
