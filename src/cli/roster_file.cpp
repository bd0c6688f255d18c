#include "cli/roster_file.hpp"

#include <filesystem>

#include "connectors/lms/csv/csv_parser.hpp"

namespace certgate::cli {

core::Result<std::vector<engine::RosterEntry>> readRoster(const settings::IdentitySettings& identity) {
  std::vector<engine::RosterEntry> roster;
  const auto& cols = identity.roster_columns;
  auto column = [&](const char* field) -> std::string {
    auto it = cols.find(field);
    return it != cols.end() ? it->second : std::string(field);
  };
  std::vector<std::string> required;
  for (const char* f : {"employee_id", "email"})
    if (cols.count(f)) required.push_back(cols.at(f));
  const std::string file_name = std::filesystem::path(identity.roster_path).filename().string();
  auto read = connectors::csv::readCsvFile(
      identity.roster_path, ',', required, [&](const connectors::csv::Row& row) {
        engine::RosterEntry e;
        auto get = [&](const char* f) {
          const std::string* v = row.get(column(f));
          return v ? *v : std::string();
        };
        e.employee_id = get("employee_id");
        e.email = get("email");
        e.display_name = get("display_name");
        e.population = get("population");
        e.location = file_name + ":" + std::to_string(row.line);
        roster.push_back(std::move(e));
      });
  if (!read.ok()) return read.error();
  return roster;
}

}  // namespace certgate::cli
