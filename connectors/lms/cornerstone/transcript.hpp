#pragma once
// Normalisation of one row of Cornerstone's Reporting API transcript view (vw_rpt_transcript,
// OData) into a certgate learning record, for the `cornerstone` LMS source.
//
// Contract:
//  - Pure: no I/O, no clock; never throws (a value of any JSON shape is handled).
//  - A row whose status is a result (completed, passed, failed) becomes a Record whose external
//    id is "<transc_user_id>:<transc_object_id>:<reg_num>:<user_lo_num_attempts>": one fact per
//    person, learning object, registration and attempt, so a row touched again (a changed
//    status, a late redelivery) updates the same fact and a new attempt adds one.
//  - A row that is not a result yet (registered, in progress, ...), removed from the transcript
//    (is_removed) or archived is Skip.
//  - Anything malformed is Quarantine with a reason; the ids are kept when present.
//  Scores: user_lo_score is kept raw with the configured maximum (100 by default: Cornerstone
//  scores are percentages); user_lo_pass is the LMS pass flag.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/time.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::cornerstone {

// The transcript view's columns certgate reads ($select).
inline constexpr const char* kTranscriptColumns =
    "transc_user_id,transc_object_id,reg_num,user_lo_status,user_lo_comp_dt,user_lo_score,"
    "user_lo_num_attempts,user_lo_pass,is_removed,is_archive,_last_touched_dt_utc";

enum class StatusMeaning : std::uint8_t { Completed, Passed, Failed, Skip };
std::optional<StatusMeaning> parseStatusMeaning(std::string_view text);  // completed|passed|failed|ignore

struct NormaliseOptions {
  std::vector<std::pair<std::string, StatusMeaning>> status_values;  // lower-cased status text
  double max_score = 100;
};

struct Identity {
  std::string employee_id;  // vw_rpt_user.user_ref
  std::string email;        // vw_rpt_user.user_email
};

struct Normalised {
  enum class Outcome : std::uint8_t { Record, Skip, Quarantine };
  Outcome outcome = Outcome::Quarantine;
  ports::SourceRecord record;
  std::string user_id;     // transc_user_id as text, "" when absent
  std::string object_id;   // transc_object_id
  std::string external_id;
  std::string reason;
  std::optional<core::Instant> touched;  // _last_touched_dt_utc
};

// `identity` is what the user view says about transc_user_id (nullptr when unknown).
Normalised normaliseRow(const nlohmann::json& row, const NormaliseOptions& options,
                        const Identity* identity, const std::string& location);

// transc_user_id of a row as text ("" when absent or not a number/string).
std::string userIdOf(const nlohmann::json& row);
// An OData Edm.DateTimeOffset as the Reporting API writes it; without an offset it is UTC.
std::optional<core::Instant> parseTime(std::string_view text);

}  // namespace certgate::connectors::cornerstone
