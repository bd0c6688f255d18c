#pragma once
// audit verify, audit list, export evidence and report kpi (src/cli/audit_commands.cpp).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "cli/context.hpp"

namespace certgate::cli::detail {

// Declares the subcommands and their options on `app` (before parsing); run() executes the
// one that was parsed, nullopt when none of them was.
class AuditCommands {
 public:
  explicit AuditCommands(CLI::App& app);
  std::optional<int> run(Io& io, const std::string& config) const;

 private:
  CLI::App* verify_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* evidence_ = nullptr;
  CLI::App* kpi_ = nullptr;
  std::string expect_head_;
  std::string verify_format_ = "text";
  std::string list_since_;
  std::string list_action_;
  std::string list_person_;
  std::int64_t list_limit_ = 200;
  std::string list_format_ = "table";
  std::string evidence_since_ = "30d";
  std::string evidence_format_ = "csv";
  std::string evidence_output_;
  std::string evidence_person_;
  std::string kpi_since_ = "90d";
  std::string kpi_format_ = "text";
};

// "30d" (before `now`) or an ISO 8601 instant; nullopt when it is neither.
std::optional<core::Instant> parseSince(const std::string& text, core::Instant now);

// Writes `text` to `path` atomically: a temporary file in the same directory created with mode
// 0600, written, fsync'd and renamed over `path` (which ends up 0600 too).
core::Status writeFileAtomic(const std::string& path, const std::string& text);

}  // namespace certgate::cli::detail
