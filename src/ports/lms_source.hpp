#pragma once
// The LMS source port. A source reads learning records from one learning system and hands them,
// normalised, to a RecordSink as it goes (streaming: no source holds a whole export in memory).
//
// Contract:
//  - Constructors do no I/O; fetch() does all of it.
//  - fetch() never mutates the learning system.
//  - Every record carries a stable external_id, unique within the source, so that repeated and
//    late deliveries upsert the same fact.
//  - A record that cannot be normalised goes to quarantine() with its location and a reason;
//    the rest of the unit still counts.
//  - FetchOutcome::complete is true only when everything that should have been read was read
//    (every page answered, every file whole). The stale-source guard depends on it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::ports {

struct SourceRecord {
  std::string external_id;     // stable, unique within the source
  std::string location;        // "file.csv:12", "page 3 item 7": where it came from
  std::string employee_id;     // identity claims (any may be empty)
  std::string email;
  std::string source_user;     // the LMS's own user key
  std::string display_name;
  std::string population;      // when the export carries it
  std::string lms_item;        // the LMS's item id (course, module, quiz), before mapping
  core::FactKind kind = core::FactKind::Completion;
  core::FactStatus status = core::FactStatus::Completed;
  std::int8_t lms_pass = -1;
  std::uint16_t attempt = 0;
  double score = core::kNoScore;
  double max_score = core::kNoScore;
  core::Instant at{};
  std::optional<core::Instant> lms_expiry;
};

struct QuarantinedRecord {
  std::string external_id;  // may be empty when the record is too broken to have one
  std::string location;     // "file.csv:12"
  std::string reason;       // what was wrong and what to do
  std::string raw;          // the offending input, truncated to a few hundred bytes
};

// A unit is a piece of input that is processed exactly once (a file, identified by its content
// hash). The sink commits all records of a unit together with the unit's ledger entry.
struct UnitInfo {
  std::string key;       // content hash ("sha256:...")
  std::string name;      // file name, page URL ...
  std::int64_t bytes = 0;
  // A page of an incremental feed (e.g. statements since a cursor): its record count says
  // nothing about completeness, so the record-count collapse guard does not apply to it.
  bool incremental = false;
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // True when the unit was fully processed before; the source then skips it.
  virtual bool alreadyProcessed(const UnitInfo& unit) = 0;
  virtual void beginUnit(const UnitInfo& unit) = 0;
  virtual void record(SourceRecord&& record) = 0;
  virtual void quarantine(QuarantinedRecord&& record) = 0;
  // `complete` false: the unit was empty or truncated; its good records still count.
  virtual void endUnit(const UnitInfo& unit, bool complete, const std::string& problem) = 0;
};

struct FetchOutcome {
  bool complete = false;
  std::string problem;        // why not complete ("" when complete)
  std::string next_cursor;    // opaque to the engine; stored and handed back next time
  std::int64_t units_seen = 0;
  std::int64_t units_skipped = 0;  // already processed
  std::int64_t records = 0;
  std::int64_t quarantined = 0;
  // The size of what the source reads whole at every fetch, however its units are cut (e.g. the
  // enrolled users of the configured courses), counting pages skipped as already processed too;
  // -1 when the source has no such part. The record-count collapse guard compares it with the
  // last complete fetch's (min_record_ratio), for sources whose units are all incremental.
  std::int64_t full_records = -1;
};

// A push from the learning system (a webhook call), as the source understands it. Decisions are
// never taken from a push alone: the records it carries are upserted like fetched ones, the people
// it names get an early reconcile, and the periodic full fetch stays the source of truth (a lost
// push is healed by the next one).
struct PushPerson {
  std::string employee_id;
  std::string email;
  std::string source_user;  // the LMS's own user key
};

struct PushEvent {
  std::string kind;                         // the LMS's event name ("submission_created", ...)
  std::vector<PushPerson> people;           // who it concerns
  std::vector<SourceRecord> records;        // whole records it carries, when it carries them
  std::vector<QuarantinedRecord> quarantined;
};

class LmsSource {
 public:
  virtual ~LmsSource() = default;
  virtual const std::string& name() const = 0;  // the source's configured name
  virtual const char* kind() const = 0;          // "csv", "xapi", ...
  // Errors are for failures of the whole fetch (directory missing, auth refused); per-record
  // problems go to the sink.
  virtual core::Result<FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                           RecordSink& sink) = 0;

  // Reads the body of a push (webhook call) this kind of learning system sends. Sources whose
  // system cannot push keep the default, which answers Permanent: the receiver then reads the
  // body in certgate's generic push shape (docs/connectors.md, "Push").
  virtual core::Result<PushEvent> parsePush(std::string_view body, core::Instant now) const {
    (void)body;
    (void)now;
    return core::makeError(core::ErrorKind::Permanent,
                           std::string("a ") + kind() + " source does not read pushes of its own",
                           name(), "send the generic push body described in docs/connectors.md");
  }
};

}  // namespace certgate::ports
