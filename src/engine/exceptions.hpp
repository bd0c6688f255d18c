#pragma once
// The exceptions workflow: time-limited access without certification (docs/rules.md R15-R18,
// docs/operations.md "Exceptions"). Used by `certgate exceptions ...` and the admin HTTP API.
//
// Lifecycle: request -> approve (once per required role) -> active -> ended (by itself), or
// rejected (while pending) or revoked (at any time before it ended).
//
// Rules enforced when writing (the rule engine, core::evaluate, checks the same again when it
// decides access, so a row written by other means never grants more):
//  - the track's policy allows exceptions (accessGating.approvals.exceptionPath.allowed);
//  - every justification field of the policy is given and not blank; no other field is given;
//  - 0 < end - start <= maxDurationDays (refused, never shortened);
//  - an approver holds the role in certgate.yaml exceptions.approvers, is neither the requester
//    nor the person the exception is for, and approves one role of the exception only; a role
//    approved by one person is not approved again by another;
//  - a rejected, revoked or ended exception is not approved; approving a fully approved one
//    again changes nothing and succeeds (idempotent), as does repeating a recorded approval.
//
// Audit rows (store audit log, actor = the person acting, subject = "exception/<id>"):
//   exception.request, exception.approve, exception.reject, exception.revoke,
//   exception.active (written with the approval that completed the required roles),
//   exception.end (written by sweep() once an exception's window has closed by itself).
//
// Errors (core::Error with message, where = "exception #<id>" / the track / the person, and a
// hint). Suggested HTTP status per kind: Invalid 400 or 422 (bad input), NotFound 404,
// Auth 403 (this person may not do this: not a holder of the role, the requester, the person
// the exception is for), Conflict 409 (the exception's state does not allow it), Transient 503.
//
// Every mutating call is one store transaction (BEGIN IMMEDIATE): the checks read the row inside
// it, so concurrent approvals from several processes are serialised. Do not call them while a
// store::Transaction is open on the same Store. Not thread-safe: one service per Store, used
// from one thread at a time (like the Store). Times are injected: `now` is every call's clock.

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

enum class ExceptionState {
  Pending,   // waiting for approvals (and not yet ended, rejected or revoked)
  Approved,  // every required role approved; its window has not started yet
  Active,    // approved and inside its window: it grants access (unless certified anyway)
  Rejected,  // refused by an approver; never grants anything
  Revoked,   // ended early by someone
  Ended,     // its window closed (approved or not)
};
const char* toString(ExceptionState state);  // "pending", "approved", "active", ...

// One exception as the workflow sees it at an instant.
struct ExceptionView {
  store::ExceptionRow row;                  // as stored, with its approvals
  std::string person;                       // the person's key
  ExceptionState state = ExceptionState::Pending;
  bool track_known = true;                  // false: the track is no longer configured
  std::vector<std::string> required_roles;  // the track's requiredApprovers
  std::vector<std::string> missing_roles;   // still to approve (empty once approved)
  // When it started (or starts) granting access: the later of starts_at and the approval that
  // completed the required roles. Unset while roles are missing.
  std::optional<core::Instant> active_from;
  core::Instant access_ends{};              // ends_at, or the revocation if earlier
};

struct ExceptionRequest {
  std::string person;     // key, employee id or email of the person who needs access
  std::string track;
  std::string requester;  // who asks; may not approve it
  std::optional<core::Instant> starts_at;  // default: now
  // The end: exactly one of ends_at or days (> 0).
  std::optional<core::Instant> ends_at;
  int days = 0;
  std::map<std::string, std::string> justification;  // the policy's justificationFields
};

struct ApproveResult {
  ExceptionView view;
  bool recorded = false;      // false: nothing written (a repeat, or already fully approved)
  bool became_active = false; // this approval completed the required roles
};

struct SweepResult {
  std::vector<std::int64_t> ended;  // exceptions whose exception.end row this sweep wrote
};

class ExceptionService {
 public:
  // Keeps references: both must outlive the service. Does no I/O.
  ExceptionService(store::Store& store, const settings::Settings& settings);

  // Records a new exception (pending) and audits exception.request.
  // Invalid: unknown justification field, blank or missing field, bad window, too long;
  // exceptions not allowed for the track; NotFound: unknown track or person.
  core::Result<ExceptionView> request(const ExceptionRequest& request, core::Instant now);

  // Approves exception `id` in `role` on behalf of `approver` (see the rules above).
  core::Result<ApproveResult> approve(std::int64_t id, const std::string& approver,
                                      const std::string& role, core::Instant now,
                                      const std::string& comment = {});

  // Refuses a pending exception for good. `by` must hold one of the track's required roles;
  // `reason` is required. Rejecting a rejected exception again returns it unchanged (the first
  // rejection stands). Conflict when it is approved already (revoke it instead), revoked or
  // ended.
  core::Result<ExceptionView> reject(std::int64_t id, const std::string& by,
                                     const std::string& reason, core::Instant now);

  // Ends an exception now (pending or approved): access follows the normal rules from `now`.
  // Anyone named may revoke (it only removes access). Revoking a revoked exception returns it
  // unchanged. Conflict when it was rejected or has ended already.
  core::Result<ExceptionView> revoke(std::int64_t id, const std::string& by,
                                     const std::string& reason, core::Instant now);

  core::Result<ExceptionView> get(std::int64_t id, core::Instant now);  // NotFound
  core::Result<std::vector<ExceptionView>> list(core::Instant now);     // by id

  // Audits exception.end for every exception whose window closed by `now` and whose end is
  // not recorded yet (not for rejected ones, nor ones revoked before their end: those were
  // audited when it happened). Idempotent: a second sweep writes nothing. The daemon and
  // `certgate sync` call it on every run.
  core::Result<SweepResult> sweep(core::Instant now);

 private:
  core::Result<ExceptionView> viewOf(const store::ExceptionRow& row, core::Instant now);
  core::Result<ExceptionView> load(std::int64_t id, core::Instant now);
  const core::Track* track(const std::string& id) const;
  core::Status audit(const std::string& actor, const std::string& action, std::int64_t id,
                     const nlohmann::json& details, core::Instant now);

  store::Store& store_;
  const settings::Settings& settings_;
};

// The exception as JSON, shared by `certgate exceptions ... --format json` and the admin API:
// {id, person, track, requester, requested_at, starts_at, ends_at, state, active_from|null,
//  access_ends, required_roles, missing_roles, justification{}, approvals[{approver, role, at,
//  comment}], rejected|null {by, at, reason}, revoked|null {by, at, reason}, track_known}.
// Instants are ISO 8601 UTC ("2026-11-25T12:00:00Z").
nlohmann::json toJson(const ExceptionView& view);

}  // namespace certgate::engine
