#pragma once
// The domain values the rule engine works on. Plain data, no behaviour beyond small helpers.
// Identifiers are interned (Sym) against one SymbolTable owned by whoever built the Policy.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/symbols.hpp"
#include "core/time.hpp"

namespace certgate::core {

// Index of a person in the `people` span handed to evaluate(); dense, 0-based.
using PersonIndex = std::uint32_t;

enum class FactKind : std::uint8_t {
  Completion,    // a module (or course) was completed
  QuizAttempt,   // a scored attempt at a track's quiz
  AttemptReset,  // an audited reset of the attempt counter for the quiz `item`
};

// LMS-reported outcome of a record, kept as evidence. For modules, Failed means "not completed".
enum class FactStatus : std::uint8_t { Completed, Passed, Failed, Unknown };

constexpr double kNoScore = std::numeric_limits<double>::quiet_NaN();

// One normalised learning fact. `ref` is the stable id of the fact in the store (or the index in
// the caller's array) and is what evidence points at.
struct Fact {
  std::int64_t ref = 0;
  PersonIndex person = 0;
  Sym item = kNoSym;  // module id or quiz id (after mapping LMS item ids)
  Instant at{};       // when it happened (LMS event time, UTC), not when it was fetched
  FactKind kind = FactKind::Completion;
  FactStatus status = FactStatus::Completed;
  std::int8_t lms_pass = -1;     // -1 unknown, 0 failed, 1 passed (the LMS's own flag)
  std::uint16_t attempt = 0;     // LMS attempt number, 0 when not reported
  double score = kNoScore;       // raw score as reported
  double max_score = kNoScore;   // maximum possible raw score
  std::optional<Instant> lms_expiry;  // expiry computed by the LMS, when the source trusts it

  // Normalised percentage 0..100, or NaN when there is no usable score.
  double pct() const;
};

struct Person {
  Sym population = kNoSym;  // kNoSym: population not known
};

struct QuizRule {
  Sym item = kNoSym;                     // quiz id facts are mapped to
  double min_score_pct = 0;              // inclusive
  std::optional<int> attempts_allowed;   // per cycle; nullopt = unlimited
};

struct ExceptionPolicy {
  bool allowed = false;
  int max_duration_days = 0;                     // 0 = no exception may be granted
  std::vector<std::string> required_roles;       // each must approve, by distinct people
  std::vector<std::string> justification_fields; // each must be non-empty
};

struct Track {
  Sym id = kNoSym;
  std::vector<Sym> modules;
  std::optional<QuizRule> quiz;
  std::optional<int> recertify_days;  // nullopt: certification does not expire
  int grace_days = 0;
  int renew_window_days = 30;
  std::vector<int> remind_before_days;  // "expiring" when inside the largest window
  std::vector<Sym> populations;         // empty: everyone is in scope
  std::vector<Sym> requires_tracks;     // prerequisite tracks
  ExceptionPolicy exceptions;
};

// Tracks in dependency order is not required: evaluate() orders prerequisites itself.
struct Policy {
  std::vector<Track> tracks;
  Seconds clock_skew{300};  // facts dated later than now + skew are impossible
};

struct Approval {
  std::string approver;
  std::string role;
  Instant at{};
};

struct Exception {
  std::int64_t id = 0;
  PersonIndex person = 0;
  Sym track = kNoSym;
  std::string requester;
  Instant starts_at{};
  Instant ends_at{};  // exclusive
  std::vector<std::pair<std::string, std::string>> justification;
  std::vector<Approval> approvals;
  std::optional<Instant> revoked_at;
};

enum class State : std::uint8_t {
  OutOfScope,
  NotStarted,
  InProgress,
  LockedOut,
  Certified,
  Expiring,
  Grace,
  Expired,
  Exception,
};

const char* toString(State s);
std::optional<State> parseState(std::string_view text);
inline bool grantsAccess(State s) {
  return s == State::Certified || s == State::Expiring || s == State::Grace ||
         s == State::Exception;
}

// What a piece of evidence is about.
enum class Requirement : std::uint8_t {
  Population,
  Module,
  Quiz,
  Attempts,
  Expiry,
  Prerequisite,
  Exception,
  Quarantine,
};

// Why a requirement is or is not met. Rendering to prose lives outside core.
enum class Finding : std::uint8_t {
  InScope,
  PopulationNotInScope,
  PopulationUnknown,
  ModuleCompleted,
  ModuleMissing,
  QuizPassed,
  QuizFailedAttempt,    // a counted attempt below the minimum
  QuizNotTaken,
  QuizPassNotCounted,   // a pass after the allowed attempts ran out
  AttemptsExhausted,    // locked out
  AttemptsReset,
  RenewalNotCounted,    // a fact dated before the renewal window opened
  CertifiedUntil,
  RenewedEarly,         // renewal before expiry: extends from the old expiry
  RenewedLate,          // renewal after expiry: counts from the renewal date
  LmsExpiryTaken,
  Expired,
  PrerequisiteMet,
  PrerequisiteNotMet,
  ExceptionActive,
  ExceptionNotStarted,
  ExceptionEnded,
  ExceptionRevoked,
  ExceptionTooLong,
  ExceptionMissingApproval,  // a required role has no valid approval
  ExceptionSelfApproved,     // an approval by the requester was ignored
  ExceptionMissingJustification,
  ExceptionNotAllowed,
  FactImpossible,            // a fact was set aside (see the quarantine list)
  RenewalInProgress,         // renewal window open; facts here count toward the next cycle
};

const char* toString(Finding f);
const char* toString(Requirement r);

struct Evidence {
  Requirement requirement = Requirement::Module;
  Finding finding = Finding::ModuleMissing;
  bool met = false;
  Sym item = kNoSym;            // module / quiz / track / population concerned
  std::int64_t fact_ref = -1;   // the fact behind this finding, -1 when none
  Instant at{};                 // when it happened (0 when not applicable)
  double value = kNoScore;      // score pct, attempt count, duration ... (by finding)
  double limit = kNoScore;      // the threshold it was compared to
  std::int64_t exception_id = 0;
  std::int32_t index = -1;      // role / justification field index in the track's ExceptionPolicy
  std::int16_t cycle = 0;       // certification cycle the finding belongs to (0 = initial)
};

struct Verdict {
  PersonIndex person = 0;
  Sym track = kNoSym;
  State state = State::NotStarted;
  bool entitled = false;                 // state grants access and prerequisites are entitled
  int cycle = 0;                         // 0 = initial certification, 1.. = renewals
  std::optional<Instant> certified_at;   // the last requirement of the current cycle was met
  std::optional<Instant> expires_at;
  std::optional<Instant> grace_ends_at;
  std::optional<Instant> renewal_opens_at;
  std::optional<Instant> access_ends_at;  // when access ends unless something changes
  int attempts_used = 0;                  // counted attempts in the current attempt window
  std::optional<int> attempts_allowed;
  std::int64_t exception_id = 0;          // the exception granting access, when state==Exception
  std::vector<Evidence> evidence;
};

}  // namespace certgate::core
