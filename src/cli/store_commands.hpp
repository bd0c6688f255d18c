#pragma once
// backup and restore of the state store (src/cli/store_commands.cpp; docs/operations.md
// "Backup and restore").

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "cli/context.hpp"

namespace certgate::cli::detail {

// Declares the subcommands and their options on `app` (before parsing); run() executes the
// one that was parsed, nullopt when none of them was.
class StoreCommands {
 public:
  explicit StoreCommands(CLI::App& app);
  std::optional<int> run(Io& io, const std::string& config) const;

 private:
  CLI::App* backup_ = nullptr;
  CLI::App* restore_ = nullptr;
  std::string backup_output_;
  std::string backup_format_ = "text";
  std::string restore_from_;
  std::string restore_format_ = "text";
  bool restore_force_ = false;
};

}  // namespace certgate::cli::detail
