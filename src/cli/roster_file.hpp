#pragma once
// Reads the HR roster named by `identity.roster` (a CSV export) into roster entries.

#include <vector>

#include "core/result.hpp"
#include "engine/ingest.hpp"
#include "settings/settings.hpp"

namespace certgate::cli {

// Columns come from identity.roster.columns (employee_id, email, display_name, population),
// each defaulting to the field's own name. Errors name the file and line.
core::Result<std::vector<engine::RosterEntry>> readRoster(const settings::IdentitySettings& identity);

}  // namespace certgate::cli
