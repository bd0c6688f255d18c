#pragma once
// Internal to the settings module: reading YAML files into located values and collecting every
// error found. yaml-cpp stays behind this header's users (settings .cpp files); its exceptions
// are caught in loadYamlFile() and in the guarded loaders, never passed on.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "settings/settings.hpp"

namespace certgate::settings::detail {

// Collects errors (all of them, in the order found) and non-fatal warnings.
class Diagnostics {
 public:
  void error(const Location& where, std::string message, std::string hint = {});
  void warn(const Location& where, const std::string& message);
  // Errors grouped by file (in the order files first had an error), each file's errors by
  // line and column: the order an operator reads them in.
  std::vector<core::Error> errors() const;
  std::size_t count() const { return errors_.size(); }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<core::Error> errors_;
  std::vector<Location> where_;  // parallel to errors_
  std::vector<std::string> warnings_;
};

// "a.b" / "a[3]": dotted key paths used in messages.
std::string joinPath(const std::string& path, std::string_view key);
std::string indexPath(const std::string& path, std::size_t index);
// "in tracks[1]" / "at the top level".
std::string describePath(const std::string& path);

// The closest valid key (Levenshtein distance <= 2, or equal once case, '_' and '-' are
// ignored), or "" when none is close.
std::string closestKey(std::string_view key, std::span<const std::string_view> valid);
std::string joinList(std::span<const std::string_view> items);
std::string joinList(const std::vector<std::string>& items);

// Checks that `bytes` is UTF-8. On failure returns the 1-based line and column (in characters)
// of the first bad byte and the byte's value.
struct Utf8Problem {
  int line = 0;
  int column = 0;
  unsigned byte = 0;
};
std::optional<Utf8Problem> findInvalidUtf8(std::string_view bytes);

// Makes `path` absolute against `base_dir` (unless already absolute) and normalises it.
std::string resolvePath(const std::string& base_dir, const std::string& path);

// Reads and parses one YAML file (exactly one document). Errors (unreadable, not UTF-8,
// malformed YAML with yaml-cpp's mark, empty, several documents) go to `diag`; when
// `referenced_from` is given, an unreadable file is reported there. `what` names the kind
// of file in messages ("track file").
std::optional<YAML::Node> loadYamlFile(const std::string& path, const std::string& what,
                                       Diagnostics& diag,
                                       const Location* referenced_from = nullptr);

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// A YAML mapping whose keys were checked: plain scalars, no duplicates, and (when a key list
// was given) only known keys.
class MapView {
 public:
  const Entry* find(std::string_view key) const;
  const std::vector<Entry>& entries() const { return entries_; }
  YAML::Node node;  // the mapping itself, for locations

 private:
  friend class FileReader;
  std::vector<Entry> entries_;
};

// Typed, located access to the nodes of one file. Every failed conversion reports an error
// naming the dotted key path and returns nullopt; callers carry on to find further errors.
class FileReader {
 public:
  FileReader(std::string file, Diagnostics& diag) : file_(std::move(file)), diag_(diag) {}

  const std::string& file() const { return file_; }
  Diagnostics& diag() const { return diag_; }
  Location at(const YAML::Node& node) const;
  void error(const YAML::Node& node, std::string message, std::string hint = {}) const;
  void warn(const YAML::Node& node, const std::string& message) const;

  // Checks `node` is a mapping. With `valid` non-empty, unknown keys are errors listing the
  // valid keys (and suggesting the closest). `what` overrides the "in PATH" wording.
  std::optional<MapView> map(const YAML::Node& node, const std::string& path,
                             std::span<const std::string_view> valid = {}) const;
  // Like map() without the unknown-key check (the caller handles other keys itself).
  std::optional<MapView> openMap(const YAML::Node& node, const std::string& path) const;
  // Reports "missing required key" at the mapping when `key` is absent or null.
  const Entry* require(const MapView& map, std::string_view key, const std::string& path,
                       const std::string& hint = {}) const;
  // The entry when present and not null.
  static const Entry* optional(const MapView& map, std::string_view key);

  std::optional<std::string> string(const YAML::Node& node, const std::string& path,
                                    bool allow_empty = false) const;
  std::optional<std::int64_t> integer(const YAML::Node& node, const std::string& path,
                                      std::int64_t min, std::int64_t max) const;
  std::optional<double> number(const YAML::Node& node, const std::string& path, double min,
                               double max) const;
  std::optional<bool> boolean(const YAML::Node& node, const std::string& path) const;
  std::optional<core::Seconds> duration(const YAML::Node& node, const std::string& path) const;
  // A list of strings; a single scalar is accepted as a list of one.
  std::optional<std::vector<std::string>> stringList(const YAML::Node& node,
                                                     const std::string& path) const;
  // Like stringList(), keeping each item's node for locations.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> stringItems(
      const YAML::Node& node, const std::string& path) const;
  // The items of a sequence (a single item is not accepted: lists of objects must be lists).
  std::optional<std::vector<YAML::Node>> sequence(const YAML::Node& node,
                                                  const std::string& path) const;

 private:
  std::string file_;
  Diagnostics& diag_;
};

// Plain text of a scalar for parsing; nullopt for non-scalars.
std::optional<std::int64_t> parseInteger(std::string_view text);
std::optional<double> parseNumber(std::string_view text);
std::optional<bool> parseBool(std::string_view text);

// A secret reference ({file: PATH} or {credential: NAME}); an inline value is an error that
// never echoes it. Defined in settings.cpp.
std::optional<SecretRef> parseSecretRef(const FileReader& r, const YAML::Node& node,
                                        const std::string& path, const std::string& base_dir);

// The alerts: section (alerts_settings.cpp) into s.alerts.
void loadAlerts(const FileReader& r, const YAML::Node& node, Settings& s);
// After loadAlerts: the sink it names must be an email sink there.
void loadReminders(const FileReader& r, const YAML::Node& node, Settings& s);

}  // namespace certgate::settings::detail
