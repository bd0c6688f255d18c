#pragma once
// plan, apply, sync and plans (src/cli/sync_commands.cpp).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/context.hpp"

namespace certgate::cli::detail {

// validate-config --online: connects to every enabled directory and resolves every mapped group.
// Fills `report` (a JSON array, one object per directory) and prints errors unless as_json.
int checkDirectoriesOnline(Io& io, const settings::Settings& s, bool as_json,
                           nlohmann::json& report);

int cmdPlan(Io& io, const std::string& config, const std::string& person,
            const std::string& format);
int cmdApply(Io& io, const std::string& config, const std::string& plan_id,
             const std::string& format);
// certgate sync: takes the store's run lock (waiting up to `wait` for a run in progress), then
// runSync.
int cmdSync(Io& io, const std::string& config, const std::string& person, bool fetch,
            const std::string& format, std::chrono::milliseconds wait);

// One run: recover interrupted changes, fetch (the enabled sources, or `only_sources`),
// evaluate, plan and apply, verify token revocations. Reports go to io (table or json). The
// caller holds the run lock. Returns the exit code `certgate sync` would.
struct SyncRequest {
  std::string person;                     // "" = everybody; else key, employee id or email
  bool fetch = true;                      // false: use the facts already stored
  std::vector<std::string> only_sources;  // fetch only these (empty: every enabled source)
  std::string format = "table";           // table | json
  std::string actor = "certgate";         // recorded in the audit log
  std::string kind = "sync";              // the run's kind in `certgate runs`
  const std::atomic<bool>* stop = nullptr;  // true: finish the change in flight and stop
};

struct SyncSummary {
  std::int64_t run_id = 0;
  std::string outcome = "failed";  // ok | partial | interrupted | failed
  std::string plan_id;
  bool held = false;
  bool sources_complete = true;
  bool quarantined = false;  // a directory or gateway sat the run out (auth, failures)
  std::map<std::string, bool> sources;  // fetched source -> complete
  std::size_t added = 0, removed = 0, failed = 0, interrupted = 0;
  std::size_t tokens_issued = 0, tokens_revoked = 0;
};

int runSync(Io& io, settings::Settings& s, store::Store& st, const SyncRequest& request,
            SyncSummary* summary = nullptr);
int cmdPlansList(Io& io, const std::string& config, std::int64_t limit, const std::string& format);
int cmdPlansShow(Io& io, const std::string& config, const std::string& id,
                 const std::string& format);
int cmdPlansApprove(Io& io, const std::string& config, const std::string& id,
                    const std::string& by, const std::string& reason);

}  // namespace certgate::cli::detail
