#pragma once
// Ingest: fetch every enabled source, normalise, resolve identities, map items, set aside
// impossible facts, and upsert what is left into the store — one transaction per unit (file),
// together with the unit's ledger entry, so a crash never half-applies an export.
//
// Idempotent: re-running ingest over the same exports changes nothing (units are recorded by
// content hash; facts are upserted by source + external id).
// Side effects: writes the store only. Never revokes or grants anything.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "ports/clock.hpp"
#include "ports/lms_source.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

struct SourceReport {
  std::string source;
  std::string kind;
  bool fetched = false;       // fetch() returned (complete or not)
  bool complete = false;      // safe to compute revocations from this source
  std::string problem;        // why not complete / why the fetch failed
  std::int64_t units_seen = 0;
  std::int64_t units_skipped = 0;
  std::int64_t inserted = 0;
  std::int64_t updated = 0;
  std::int64_t unchanged = 0;
  std::int64_t quarantined = 0;
  std::int64_t people_created = 0;
  std::int64_t unmapped_items = 0;  // records whose item no track uses (stored, not evaluated)
  double writer_cpu_seconds = 0;    // CPU time of the thread that wrote to the store
};

struct IngestReport {
  std::int64_t run_id = 0;
  std::vector<SourceReport> sources;
  std::int64_t roster_people = 0;
  bool complete() const;  // every enabled source complete
};

// A person from an authoritative roster (HR export or, later, the directory).
struct RosterEntry {
  std::string employee_id;
  std::string email;
  std::string display_name;
  std::string population;
  std::string location;  // "roster.csv:12"
};

struct SourceHandle {
  const settings::SourceSettings* settings = nullptr;
  std::unique_ptr<ports::LmsSource> source;
};

class Ingestor {
 public:
  Ingestor(store::Store& store, const settings::Settings& settings, const ports::Clock& clock)
      : store_(store), settings_(settings), clock_(clock) {}

  // Loads roster entries as people (identity keys must be unique; duplicates are quarantined).
  core::Result<std::int64_t> loadRoster(const std::vector<RosterEntry>& roster);

  // Fetches each source in turn. A failing source is reported and does not stop the others.
  // Each unit is one store transaction. A second thread owns the store while a source is
  // fetched: it writes the unit's facts in batches of up to `batch_facts` and commits the unit
  // while the source reads on, into the next batch and the next unit (the store is still used
  // by one thread at a time). Memory: about two batches of facts.
  core::Result<IngestReport> run(std::vector<SourceHandle>& sources);

  static constexpr std::size_t kDefaultBatchFacts = 262'144;
  // Facts per store batch (at least 1): larger batches write faster and take more memory.
  void setBatchFacts(std::size_t batch_facts) { batch_facts_ = batch_facts < 1 ? 1 : batch_facts; }

 private:
  store::Store& store_;
  const settings::Settings& settings_;
  const ports::Clock& clock_;
  bool roster_loaded_ = false;
  std::size_t batch_facts_ = kDefaultBatchFacts;
};

}  // namespace certgate::engine
