#pragma once
// Normalisation of one xAPI 1.0.3 Statement (xAPI-Data.md section 2.4) into a certgate learning
// record, for the `xapi` LMS source.
//
// Contract:
//  - Pure: no I/O, no clock; never throws (a value of any JSON shape is handled).
//  - A statement with one of the four learning verbs (ADL completed, passed, failed, scored) and
//    an Activity object becomes a Record whose external id is the statement id (lower-cased).
//  - A voiding statement (ADL voided, object StatementRef) becomes a Voiding naming its target.
//  - A statement certgate has no use for (another verb, a StatementRef object with another
//    verb) is Ignore.
//  - Anything malformed or unusable is Quarantine with a reason that says what was wrong and
//    what to do; the statement id is kept when there is one.
//  Scores: raw with max is kept as raw score and max (min only checks the range); otherwise
//  scaled (-1..1) becomes a score out of 100. A negative score counts as 0, so the attempt
//  still counts and fails any minimum.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "ports/lms_source.hpp"

namespace certgate::connectors::xapi {

inline constexpr std::string_view kAdlVerbPrefix = "http://adlnet.gov/expapi/verbs/";
inline constexpr std::string_view kVoidedVerb = "http://adlnet.gov/expapi/verbs/voided";

enum class Verb : std::uint8_t { Completed, Passed, Failed, Scored };
inline constexpr Verb kAllVerbs[] = {Verb::Completed, Verb::Passed, Verb::Failed, Verb::Scored};
const char* toString(Verb verb);      // "completed"
std::string verbIri(Verb verb);       // "http://adlnet.gov/expapi/verbs/completed"
// A short name ("passed") or the ADL IRI of one of the four verbs.
std::optional<Verb> parseVerb(std::string_view text);

// What an `account` actor's name is to certgate.
enum class AccountAs : std::uint8_t { User, EmployeeId, Email };
// What an actor identified only by mbox_sha1sum becomes.
enum class Sha1As : std::uint8_t { Quarantine, User };

struct NormaliseOptions {
  AccountAs account_as = AccountAs::User;
  Sha1As mbox_sha1sum = Sha1As::Quarantine;
  std::string attempt_extension;  // IRI looked up in context and result extensions; "" = none
};

struct Normalised {
  enum class Outcome : std::uint8_t { Record, Quarantine, Voiding, Ignore };
  Outcome outcome = Outcome::Ignore;
  std::string statement_id;             // lower-cased, "" when the statement has none
  std::optional<Verb> verb;
  ports::SourceRecord record;           // Record
  std::string reason;                   // Quarantine
  std::string voided_id;                // Voiding: the statement it voids (lower-cased)
  std::optional<std::int64_t> stored_us;  // the LRS's `stored`, microseconds since the epoch
};

// `location` is copied into the record ("completed page 3 #17").
Normalised normalise(const nlohmann::json& statement, const NormaliseOptions& options,
                     const std::string& location);

// ISO 8601 timestamp with offset and optional fraction -> microseconds since the Unix epoch
// (the fraction is truncated to microseconds). nullopt when it does not parse.
std::optional<std::int64_t> parseMicros(std::string_view text);
// "2026-11-26T03:00:00.123456Z"
std::string formatMicros(std::int64_t us);

}  // namespace certgate::connectors::xapi
