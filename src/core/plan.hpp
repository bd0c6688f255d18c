#pragma once
// Group planning: desire(verdicts, mappings) -> Desired, plan(desired, observed, ledger, limits)
// -> Plan. Both are pure: no I/O, no clock, no logging; same inputs, same plan, same order.
// Semantics are written down in docs/design.md ("Planning (groups)"); every rule has a case in
// tests/unit/core/plan_test.cpp.
//
// The plan is a printable value. Applying it is somebody else's job; the contract with the
// applier is: apply applicable(plan) in order, record adds in the ledger, drop the ledger rows of
// removed memberships. Planning again against the resulting state yields an empty plan.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/symbols.hpp"
#include "core/time.hpp"

namespace certgate::core {

// managed: certgate removes only memberships its ledger says it added (the default).
// exclusive: certgate governs the group completely and removes anyone not entitled.
enum class GroupMode : std::uint8_t { Managed, Exclusive };

struct GroupTarget {
  std::string directory;  // connector instance name, e.g. "okta"
  std::string group;      // directory group id or name, as the connector addresses it
  GroupMode mode = GroupMode::Managed;
};

// One mapping: an entitled verdict for `track` grants membership of every group listed.
// The allow-list is exactly the set of (directory, group) pairs named here.
struct TrackGrant {
  Sym track = kNoSym;
  std::vector<GroupTarget> groups;
};

// A person's verdicts (any order, at most one per track), keyed by the person key the
// directory and the ledger use. sources_complete is false when any source behind these verdicts
// was stale or partial at evaluation time; it turns on the stale-source guard for this person.
struct PersonVerdicts {
  std::string person_key;
  std::vector<Verdict> verdicts;
  bool sources_complete = true;
};

// A target of the allow-list, merged over all mappings that name it.
struct PlannedTarget {
  GroupTarget target;          // mode: Exclusive only if every mapping naming it says exclusive
  std::vector<Sym> tracks;     // tracks granting it, in mapping order, no duplicates
  bool mode_conflict = false;  // mappings disagree on the mode (reported; managed is used)
};

struct DesiredMember {
  std::size_t target = 0;  // index into Desired::targets
  std::string person_key;
  Sym track = kNoSym;  // first track in mapping order with an entitled verdict
  State state = State::Certified;
  std::int64_t exception_id = 0;
  std::optional<Instant> access_ends_at;
  std::optional<Instant> entitled_since;  // the verdict's certified_at (none for an exception)
};

struct Desired {
  std::vector<PlannedTarget> targets;  // sorted by (directory, group)
  std::vector<DesiredMember> members;  // sorted by (target, person_key), one per pair
};

// A person is desired in a target iff some track granting the target has an entitled verdict for
// them. Mappings whose track is kNoSym or whose group list is empty contribute nothing.
Desired desire(std::span<const PersonVerdicts> people, std::span<const TrackGrant> mappings);

// Live members of one target as the directory reported them. A member that is a known person is
// given by person key; anyone else by their directory id. A target with no ObservedGroup was not
// observed: it gets no actions (and is reported), because "unknown" is not "empty".
struct ObservedGroup {
  std::string directory;
  std::string group;
  std::vector<std::string> members;
};

// A membership certgate added and therefore owns.
struct LedgerGrant {
  std::string person_key;
  std::string directory;
  std::string group;
  Sym track = kNoSym;  // the track it was granted for
};

struct Limits {
  std::size_t max_removals = 25;
  double max_removal_pct = 10.0;  // of current grants; negative or NaN counts as 0
};

// Remove sorts before Add: revocations are ordered before grants.
enum class ActionKind : std::uint8_t { Remove, Add };

enum class Reason : std::uint8_t {
  Entitled,            // add: the verdict grants access (state says how)
  Expired,             // certification expired past grace (time; evidence Finding::Expired)
  ExceptionEnded,      // an exception's window closed (time)
  ExceptionRevoked,    // an exception was revoked by an approver (decision, not source data)
  PrerequisiteNotMet,  // the track's own state grants access, a prerequisite track does not
  NotCertified,        // not_started or in_progress
  LockedOut,           // attempts exhausted and never certified
  OutOfScope,          // the person's population is outside the track
  NoVerdict,           // a known person without a verdict for any granting track
  UnknownMember,       // the member is not a known person (exclusive targets, or a ledger row
                       // for a person no longer known)
};

struct Action {
  ActionKind kind = ActionKind::Add;
  GroupTarget target;
  std::string person;  // person key, or directory id for an unknown member
  Sym track = kNoSym;  // track the reason is about; kNoSym for UnknownMember
  Reason reason = Reason::Entitled;
  State state = State::NotStarted;  // the verdict state behind the reason
  bool ledger_owned = false;        // remove: certgate added this membership
  bool source_dependent = false;    // remove: the reason could change with data a source lacks
  std::int64_t exception_id = 0;
  std::optional<Instant> at;  // add: when access ends; remove: when it ended (expiry, exception)
  std::optional<Instant> since;  // add: when the entitlement began (certified at), if known
};

enum class SkipReason : std::uint8_t {
  SourceIncomplete,  // the person's sources were stale or partial
  RosterIncomplete,  // the member is unknown and the roster/identity data was incomplete
};

// A removal the stale-source guard held back. It is not part of the plan's actions.
struct Skipped {
  Action action;
  SkipReason why = SkipReason::SourceIncomplete;
};

// The blast-radius brake, always filled in so that reports can show the numbers.
struct Brake {
  std::size_t removals = 0;        // Remove actions in the plan
  std::size_t current_grants = 0;  // memberships certgate governs now (see docs/design.md)
  std::size_t threshold = 0;       // max(max_removals, ceil(pct/100 x current_grants))
  bool held = false;               // removals > threshold: remove nothing until approved
};

struct Plan {
  std::string id;                 // assigned by the caller (injected id generator)
  std::uint64_t fingerprint = 0;  // FNV-1a of (kind, target, person, reason) per action
  std::vector<Action> actions;    // removes first, then by (directory, group, person)
  std::vector<Skipped> skipped;   // same order as actions
  Brake brake;
  std::vector<LedgerGrant> outside_allow_list;  // ledger rows for unmapped targets: not acted on
  std::vector<GroupTarget> unobserved;          // mapped targets without an observation
  std::vector<GroupTarget> mode_conflicts;      // copied from Desired for the report

  bool held() const { return brake.held; }
  bool empty() const { return actions.empty(); }
};

struct PlanInput {
  const Desired* desired = nullptr;        // from desire(); nullptr plans nothing
  std::span<const PersonVerdicts> people;  // the same people desire() saw
  std::span<const ObservedGroup> observed;
  std::span<const LedgerGrant> ledger;
  Limits limits;
  bool roster_complete = true;  // false: removals of unknown members are skipped
  std::string id;
};

Plan plan(const PlanInput& in);

// Why `track` does not entitle the person, and whether that could change with data a stale
// source lacks (the group planner's removal reason; also used by the token planner).
struct RemovalCause {
  Reason reason = Reason::NoVerdict;
  State state = State::NotStarted;
  bool source_dependent = true;
  std::int64_t exception_id = 0;
  std::optional<Instant> at;
};
RemovalCause removalCause(const PersonVerdicts& person, Sym track);

// The actions an applier may execute now: all of them, or only the adds while the plan is held.
std::vector<const Action*> applicable(const Plan& p);

// Count of actions of one kind.
std::size_t countActions(const Plan& p, ActionKind kind);

const char* toString(GroupMode m);
const char* toString(ActionKind k);
const char* toString(Reason r);
const char* toString(SkipReason r);

// One line of plain text, e.g.
// "remove alice from okta/ai-users: track T expired (2026-03-01), ledger-owned".
std::string describe(const Action& a, const SymbolTable& symbols);
std::string describe(const Skipped& s, const SymbolTable& symbols);
std::string describe(const Brake& b);

}  // namespace certgate::core
