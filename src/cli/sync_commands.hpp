#pragma once
// plan, apply, sync and plans (src/cli/sync_commands.cpp).

#include <cstdint>
#include <string>

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
int cmdSync(Io& io, const std::string& config, const std::string& person, bool fetch,
            const std::string& format);
int cmdPlansList(Io& io, const std::string& config, std::int64_t limit, const std::string& format);
int cmdPlansShow(Io& io, const std::string& config, const std::string& id,
                 const std::string& format);
int cmdPlansApprove(Io& io, const std::string& config, const std::string& id,
                    const std::string& by, const std::string& reason);

}  // namespace certgate::cli::detail
