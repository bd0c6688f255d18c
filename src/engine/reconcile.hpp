#pragma once
// Directory reconciliation: evaluate -> desire -> observe -> plan -> apply, over the store and
// the configured directories (ports::Directory).
//
//   makePlan()  evaluates everybody (or one person) from the facts in the store, resolves the
//               people who should hold a group to their directory accounts, observes the live
//               members of every mapped group, and asks core::plan for the actions. The plan is
//               stored (table plans) and returned; nothing in a directory changes.
//   apply()     executes a plan's applicable actions through the intent log: every membership
//               change is written as a pending intent before the call and completed after it, the
//               ledger (grants) and the audit log follow each completed change, and a directory
//               answering 401/403, or failing more than its max_failure_ratio, is quarantined for
//               the rest of the run.
//   recover()   finishes the intents a crash left pending: each is checked against the live
//               group and marked done (and the ledger updated) or abandoned for the next plan to
//               decide again. Nothing is called twice.
//
// Semantics of the plan itself (managed/exclusive, allow-list, stale-source guard, blast-radius
// brake) live in core/plan.hpp and docs/design.md.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "engine/evaluation.hpp"
#include "engine/token_reconcile.hpp"
#include "ports/directory.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

struct DirectoryHandle {
  const settings::DirectorySettings* settings = nullptr;
  ports::Directory* directory = nullptr;
};

struct ReconcileOptions {
  std::string person;               // "" = everybody; else a key, employee id or email
  std::string actor = "certgate";   // recorded in the audit log
  std::int64_t run_id = 0;          // 0 when not part of a run
  // Injection seams: plan ids, and the waits between retries of a failed batch.
  std::function<std::string(core::Instant)> make_id;
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> random01;
  int max_attempts = 4;                                    // per batch, for transient failures
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{30'000};
  std::chrono::milliseconds max_retry_after{120'000};
  std::function<void(const char* point)> crash_point;  // tests only (token steps)
  // When set and true, apply finishes the change in flight, records it, and leaves the rest of
  // the plan undone (counted as interrupted): how the daemon stops within its stop timeout.
  const std::atomic<bool>* stop = nullptr;
};

// A mapped group that was not observed, and why (its actions are withheld).
struct TargetProblem {
  std::string directory;
  std::string group;
  std::string problem;
};

struct PlanResult {
  core::Plan plan;
  std::string state;                 // "planned" or "held"
  std::string json;                  // as stored
  std::vector<TargetProblem> targets_not_observed;
  std::vector<std::string> problems;  // people without an account, directories not configured ...
  std::vector<SourceHealth> sources;
  bool sources_complete = true;
  std::size_t people = 0;             // people evaluated
  std::optional<TokenPlanResult> tokens;  // when a TokenReconciler is attached
};

struct ApplyResult {
  std::string plan_id;
  std::size_t added = 0;
  std::size_t removed = 0;
  std::size_t no_op = 0;               // the directory already matched
  std::size_t failed = 0;
  std::size_t withheld = 0;            // removals held back by the brake
  std::size_t dropped = 0;             // stored actions no longer needed (apply of a stored plan)
  std::size_t already_done = 0;        // actions this plan applied before
  std::size_t interrupted = 0;         // left undone because a stop was asked for
  std::vector<std::string> failures;   // one line per failed change
  std::vector<std::string> quarantined;  // directories quarantined in this run, with the reason
  std::map<std::string, std::uint64_t> requests;  // directory -> HTTP requests made
  std::string state;  // plan state afterwards: applied | partial | held
  std::optional<TokenApplyResult> tokens;
  bool ok() const {
    return failed == 0 && interrupted == 0 && quarantined.empty() &&
           (!tokens || (tokens->failed == 0 && tokens->interrupted == 0));
  }
};

struct RecoverResult {
  std::size_t done = 0;       // the change had happened: ledger updated
  std::size_t abandoned = 0;  // it had not: the next plan decides again
  std::vector<std::string> problems;
  std::optional<TokenRecoverResult> tokens;
};

class Reconciler {
 public:
  // `settings` and the directories must outlive the Reconciler.
  Reconciler(store::Store& store, const settings::Settings& settings,
             std::vector<DirectoryHandle> directories);
  // Token actions join every plan, apply and recover from now on. `tokens` must outlive this.
  void attachTokens(TokenReconciler* tokens) { tokens_ = tokens; }

  core::Result<RecoverResult> recover(core::Instant now, const ReconcileOptions& options);
  core::Result<PlanResult> makePlan(core::Instant now, const ReconcileOptions& options);
  // Applies `plan` (and its token actions, when given). `release_brake` applies removals and
  // revocations of a held plan (an approved plan).
  core::Result<ApplyResult> apply(const core::Plan& plan, bool release_brake, core::Instant now,
                                  const ReconcileOptions& options,
                                  const TokenPlanResult* tokens = nullptr);
  // Applies the stored plan `id`: only its actions that a fresh plan (same scope) still
  // contains; a held plan's removals only once it is approved.
  core::Result<ApplyResult> applyStored(const std::string& id, core::Instant now,
                                        const ReconcileOptions& options);

 private:
  struct Impl;
  store::Store& store_;
  const settings::Settings& settings_;
  std::vector<DirectoryHandle> directories_;
  TokenReconciler* tokens_ = nullptr;
};

// The plan as JSON (what `plan --format json` prints and the store keeps), and back.
std::string planToJson(const PlanResult& result, const core::SymbolTable& symbols);
core::Result<core::Plan> planFromJson(const std::string& json, core::SymbolTable& symbols);

// A stable key of an action (kind, directory, group, person) used for intents and for matching
// a stored plan against a fresh one.
std::string actionKey(const core::Action& a);

}  // namespace certgate::engine
