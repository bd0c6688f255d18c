#pragma once
// Helpers shared by the settings tests: fixture paths, a fake connector registry, temp files.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "settings/settings.hpp"

namespace certgate::settings::testing {

inline std::string fixture(const std::string& relative) {
  return std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/settings/" + relative;
}

// The csv connector's keys as documented in config/README.md, plus a "graded" kind with a
// secret, so settings can be tested without linking any connector.
inline const ports::ConfigSpec* fakeSpecs(const std::string& kind) {
  using ports::ValueType;
  static const ports::ConfigSpec csv{
      "csv",
      "LMS export files (CSV or JSON lines) dropped into a directory",
      {{"directory", ValueType::Path, true, "", "where export files are dropped"},
       {"pattern", ValueType::String, false, "*.csv", "file-name glob"},
       {"format", ValueType::String, false, "csv", "csv or jsonl"},
       {"delimiter", ValueType::String, false, ",", "field delimiter"},
       {"columns", ValueType::Map, true, "", "certgate field -> column header"},
       {"date_format", ValueType::String, false, "iso8601", "date format"},
       {"time_zone", ValueType::String, false, "UTC", "zone for dates without offset"},
       {"score_scale", ValueType::String, false, "raw", "raw, percent or fraction"},
       {"default_max_score", ValueType::String, false, "", "max score when not exported"},
       {"status_values", ValueType::Map, false, "", "LMS status -> completed/passed/failed"},
       {"min_rows", ValueType::Int, false, "1", "fewer data rows = empty export"}}};
  static const ports::ConfigSpec graded{
      "graded",
      "a test connector with a secret",
      {{"base_url", ValueType::String, true, "", "API base URL"},
       {"api_token", ValueType::Secret, true, "", "API token"},
       {"page_size", ValueType::Int, false, "100", "page size"},
       {"timeout", ValueType::Duration, false, "30s", "request timeout"},
       {"courses", ValueType::StringList, false, "", "course ids"},
       {"verify_tls", ValueType::Bool, false, "true", "verify TLS"}}};
  if (kind == "csv") return &csv;
  if (kind == "graded") return &graded;
  return nullptr;
}

// A fresh directory under the system temp dir, removed with its content on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("certgate-settings-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  // Writes `content` to `name` (sub-directories created) and returns the full path.
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// The first error whose message contains `text`, or nullptr.
inline const core::Error* findError(const std::vector<core::Error>& errors,
                                    const std::string& text) {
  auto it = std::find_if(errors.begin(), errors.end(), [&](const core::Error& e) {
    return e.message.find(text) != std::string::npos;
  });
  return it == errors.end() ? nullptr : &*it;
}

inline std::string allMessages(const std::vector<core::Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.describe() + "\n";
  return out;
}

}  // namespace certgate::settings::testing
