#pragma once
// Gateway tokens: plan, apply, recover and verify, over the store's token ledger and the
// configured gateways (ports::Gateway). The directory Reconciler drives it, so that one plan
// shows group changes and token actions together and one brake guards both.
//
//   plan()     observes each mapped gateway (the tokens certgate owns there), reads the ledger
//              and asks core::planTokens for the actions; a plan revoking more tokens than
//              max(max_removals, max_removal_pct x live tokens) is held.
//   apply()    runs each action through the intent log:
//                issue:  intent -> gateway.issue(alias) -> ledger row (digest only) ->
//                        delivery of the secret -> intent done, audit
//                revoke: intent -> gateway.revoke -> ledger marks it revoked, enforcement
//                        pending until the gateway's cache window has passed -> intent done
//   recover()  finishes intents a crash left pending: a minted token the ledger lacks is found
//              by its alias and adopted (delivery none) or revoked (its secret never reached
//              anyone); so there is never a second live token for a grant, nor one certgate
//              does not know.
//   verify()   checks revocations whose cache window has passed: enforced, or not_enforced
//              (audited as token.revoke.not_enforced for the alert stage).
//
// Crash points (tests only): ReconcileOptions::crash_point is called with the name of each
// step boundary ("token.issue.before_call", "token.issue.after_call",
// "token.issue.after_record", "token.issue.after_delivery", "token.revoke.before_call",
// "token.revoke.after_call"); a test makes it stop the process there.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "core/token_plan.hpp"
#include "ports/gateway.hpp"
#include "ports/secret_delivery.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

struct GatewayHandle {
  const settings::GatewaySettings* settings = nullptr;
  ports::Gateway* gateway = nullptr;
};

// Delivery methods by name ("webhook", "email"); a grant whose method has no entry fails its
// issues with a clear error instead of minting a token nobody can receive.
using Deliveries = std::map<std::string, ports::SecretDelivery*>;

struct TokenPlanResult {
  core::TokenPlan plan;
  bool held = false;
  std::size_t revocations = 0;   // revocations that count for the brake (not rotations)
  std::size_t live_tokens = 0;   // in the ledger, in scope
  std::size_t threshold = 0;
  std::vector<std::string> problems;  // gateways not observed, unknown people ...
  // Ledger tokens an observed gateway no longer has (expired there or deleted outside certgate).
  std::vector<std::int64_t> gone;
};

struct TokenApplyResult {
  std::size_t issued = 0;
  std::size_t adopted = 0;       // an existing token with the alias was found (a retry)
  std::size_t revoked = 0;
  std::size_t no_op = 0;         // revoking what was already gone
  std::size_t failed = 0;
  std::size_t withheld = 0;      // revocations held back by the brake
  std::size_t already_done = 0;  // actions this plan applied before
  std::size_t pending_enforcement = 0;
  std::size_t interrupted = 0;   // left undone because a stop was asked for
  std::vector<std::string> failures;
  std::map<std::string, std::uint64_t> requests;  // gateway -> HTTP requests made
};

struct TokenRecoverResult {
  std::size_t adopted = 0;    // minted and kept
  std::size_t revoked = 0;    // minted, secret lost: revoked
  std::size_t done = 0;       // the step had completed
  std::size_t abandoned = 0;  // the call had not happened: the next plan decides
  std::vector<std::string> problems;
};

struct TokenVerifyResult {
  std::size_t enforced = 0;
  std::size_t not_enforced = 0;  // alert
  std::size_t unknown = 0;
  std::size_t still_pending = 0;
  std::vector<std::string> alerts;  // one line per revocation that is not enforced
};

struct TokenOptions {
  std::string actor = "certgate";
  std::int64_t run_id = 0;
  std::function<void(const char* point)> crash_point;  // tests only
  const std::atomic<bool>* stop = nullptr;  // see ReconcileOptions::stop
};

class TokenReconciler {
 public:
  // Everything must outlive the TokenReconciler.
  TokenReconciler(store::Store& store, const settings::Settings& settings,
                  std::vector<GatewayHandle> gateways, Deliveries deliveries = {});

  // `people` are the evaluated verdicts; `scope_person` is "" for everybody, else the one
  // person the plan is for (then orphans are not looked for).
  core::Result<TokenPlanResult> plan(std::span<const core::PersonVerdicts> people,
                                     const std::string& scope_person, core::Instant now);
  core::Result<TokenApplyResult> apply(const TokenPlanResult& plan, const std::string& plan_id,
                                       bool release_brake, core::Instant now,
                                       const TokenOptions& options);
  core::Result<TokenRecoverResult> recover(core::Instant now, const TokenOptions& options);
  core::Result<TokenVerifyResult> verify(core::Instant now, const TokenOptions& options);
  // An operator's revocation of one live token (by alias), now: audited with who and why
  // (`options.actor`, `why`), through the intent log like any revocation, enforcement verified
  // the same way. The person keeps their entitlement: the next sync issues a new token (a new
  // secret) if they are still entitled. NotFound: no such token; Conflict: already revoked.
  core::Result<TokenApplyResult> revokeByOperator(const std::string& alias, const std::string& why,
                                                  core::Instant now, const TokenOptions& options);

  bool empty() const { return gateways_.empty(); }

 private:
  GatewayHandle* handle(const std::string& name);
  const settings::TokenGrantSettings* grantOf(const std::string& track, const std::string& gateway,
                                              const std::string& scope) const;
  core::Status audit(const std::string& action, const std::string& subject,
                     const std::string& details_json, core::Instant now,
                     const TokenOptions& options);
  core::Status revokeMinted(GatewayHandle& h, const store::TokenRow& row, const std::string& why,
                            core::Instant now, const TokenOptions& options);

  store::Store& store_;
  const settings::Settings& settings_;
  std::vector<GatewayHandle> gateways_;
  Deliveries deliveries_;
};

// A stable key of a token action (kind, gateway, person, scope, alias or token id).
std::string tokenActionKey(const core::TokenAction& a);

// Token actions as JSON (the "tokens" part of a stored plan), and back.
std::string tokenPlanToJson(const TokenPlanResult& r, const core::SymbolTable& symbols);
core::Result<TokenPlanResult> tokenPlanFromJson(const std::string& json,
                                                core::SymbolTable& symbols);

}  // namespace certgate::engine
