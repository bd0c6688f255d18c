#pragma once
// Reading a Workday Reports-as-a-Service answer (`?format=json`): the document
// {"Report_Entry": [ {...}, ... ]} read entry by entry, and one entry normalised into a learning
// record through the field names the tenant's report uses, for the `workday` LMS source.
//
// Contract:
//  - Pure apart from reading the given FILE*: no clock, no network; never throws.
//  - readReport() streams: memory is one entry at a time, however large the report.
//  - normaliseEntry() turns one entry into a Record, a Skip (a status that is not a result yet,
//    e.g. "In Progress") or a Quarantine with a reason naming the field and what to do.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/time.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::workday {

// Workday dates as reports write them: "2026-03-01" (UTC midnight), "2026-03-01-08:00" or
// "2026-03-01Z" (a date with a zone offset: midnight there), "2026-03-01T10:15:00" (UTC),
// "2026-03-01T10:15:00.000-08:00" (any ISO 8601 date-time with offset and fraction).
std::optional<core::Instant> parseDate(std::string_view text);

struct ReportRead {
  bool parsed = false;         // the whole document was well-formed JSON
  bool has_entries = false;    // it had a top-level "Report_Entry" array, read to its end
  std::size_t entries = 0;     // entries handed to the callback
  std::size_t error_byte = 0;  // where the JSON broke, when !parsed
  std::string error;           // the parser's message, when !parsed
  std::string top_keys;        // top-level keys seen (for the problem text when there are no entries)
};

// Streams the JSON document in `file` (read from its current position) and hands each element
// of the top-level "Report_Entry" array to `on_entry` (1-based index). Returning false from
// `on_entry` stops the read (parsed stays false, error "stopped").
ReportRead readReport(std::FILE* file,
                      const std::function<bool(nlohmann::json&&, std::size_t)>& on_entry);

// What a report status means to certgate.
enum class StatusMeaning : std::uint8_t { Completed, Passed, Failed, InProgress };
std::optional<StatusMeaning> parseStatusMeaning(std::string_view text);  // "completed", "in_progress" ...

enum class ScoreScale : std::uint8_t { Raw, Percent, Fraction };

// Which report field holds which fact. Names are the report's JSON keys; "a.b" looks into a
// nested object (the first element of an array on the way). "" = not in the report.
struct FieldMap {
  std::string worker_id, email, user, name;  // identity: at least one of the first three
  std::string course_id;                     // required
  std::string completed_at;                  // required
  std::string status, score, max_score, pass, attempt, expires_at, record_id;
};

struct NormaliseOptions {
  FieldMap fields;
  // Status text (lower-cased) -> meaning, on top of the built-in ones.
  std::vector<std::pair<std::string, StatusMeaning>> status_values;
  ScoreScale score_scale = ScoreScale::Raw;
  std::optional<double> default_max_score;
};

struct Normalised {
  enum class Outcome : std::uint8_t { Record, Skip, Quarantine };
  Outcome outcome = Outcome::Quarantine;
  ports::SourceRecord record;  // Record
  std::string identity;        // "worker E0001, course AI101" as far as known
  std::string external_id;     // as far as known
  std::string reason;          // Quarantine
};

// `location` ("report row 17") is copied into the record.
Normalised normaliseEntry(const nlohmann::json& entry, const NormaliseOptions& options,
                          const std::string& location);

}  // namespace certgate::connectors::workday
