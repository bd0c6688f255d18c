#include "settings/yaml_support.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

namespace certgate::settings::detail {

namespace fs = std::filesystem;

void Diagnostics::error(const Location& where, std::string message, std::string hint) {
  errors_.push_back(
      core::makeError(core::ErrorKind::Invalid, std::move(message), where.str(), std::move(hint)));
  where_.push_back(where);
}

std::vector<core::Error> Diagnostics::errors() const {
  std::vector<std::string> files;
  for (const auto& w : where_)
    if (std::find(files.begin(), files.end(), w.file) == files.end()) files.push_back(w.file);
  auto rank = [&](std::size_t i) {
    const auto f = std::find(files.begin(), files.end(), where_[i].file) - files.begin();
    return std::make_tuple(f, where_[i].line, where_[i].column);
  };
  std::vector<std::size_t> order(errors_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return rank(a) < rank(b); });
  std::vector<core::Error> out;
  out.reserve(order.size());
  for (std::size_t i : order) out.push_back(errors_[i]);
  return out;
}

void Diagnostics::warn(const Location& where, const std::string& message) {
  warnings_.push_back(where.file.empty() ? message : where.str() + ": " + message);
}

std::string joinPath(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

std::string indexPath(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string describePath(const std::string& path) {
  return path.empty() ? "at the top level" : "in " + path;
}

namespace {

std::size_t levenshtein(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string folded(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string closestKey(std::string_view key, std::span<const std::string_view> valid) {
  const std::string key_folded = folded(key);
  for (auto v : valid)
    if (folded(v) == key_folded) return std::string(v);
  std::string best;
  std::size_t best_distance = 3;
  for (auto v : valid) {
    const std::size_t d = levenshtein(key, v);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(v);
    }
  }
  return best;
}

std::string joinList(std::span<const std::string_view> items) {
  std::string out;
  for (auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out.empty() ? "(none)" : out;
}

std::optional<Utf8Problem> findInvalidUtf8(std::string_view bytes) {
  int line = 1;
  int column = 1;
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    } else {
      return Utf8Problem{line, column, c};
    }
    if (len > 1) {
      if (i + len > bytes.size()) return Utf8Problem{line, column, c};
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(bytes[i + k]);
        if ((cc & 0xC0) != 0x80) return Utf8Problem{line, column, c};
        cp = (cp << 6) | (cc & 0x3Fu);
      }
      // Overlong forms, UTF-16 surrogates and values beyond Unicode are not UTF-8.
      if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return Utf8Problem{line, column, c};
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return std::nullopt;
}

std::string resolvePath(const std::string& base_dir, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::optional<YAML::Node> loadYamlFile(const std::string& path, const std::string& what,
                                       Diagnostics& diag, const Location* referenced_from) {
  const Location file_loc{path, 0, 0};
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec)) {
    const std::string reason = fs::exists(path, ec) ? "it is not a readable file" : "no such file";
    diag.error(referenced_from ? *referenced_from : file_loc,
               "cannot read " + what + " '" + path + "': " + reason,
               "check the path; relative paths resolve against the directory of the file that "
               "names them");
    return std::nullopt;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (auto bad = findInvalidUtf8(text)) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", bad->byte);
    diag.error(Location{path, bad->line, bad->column},
               what + " is not valid UTF-8: byte " + hex + " at line " + std::to_string(bad->line) +
                   ", column " + std::to_string(bad->column),
               "save the file as UTF-8 (for example: iconv -f latin1 -t utf-8 FILE > "
               "FILE.new)");
    return std::nullopt;
  }
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) {
      diag.error(file_loc, what + " is empty",
                 "write the " + what + " content (see config/README.md)");
      return std::nullopt;
    }
    if (docs.size() > 1) {
      diag.error(Location{path, docs[1].Mark().line + 1, docs[1].Mark().column + 1},
                 what + " holds " + std::to_string(docs.size()) +
                     " YAML documents; certgate reads exactly one per file",
                 "remove the '---' separators or split the documents into separate files");
      return std::nullopt;
    }
    return docs[0];
  } catch (const YAML::Exception& e) {
    const bool has_mark = !e.mark.is_null();
    diag.error(Location{path, has_mark ? e.mark.line + 1 : 0, has_mark ? e.mark.column + 1 : 0},
               "malformed YAML in " + what + ": " + e.msg,
               "fix the YAML syntax at this position (wrong indentation, a missing ':' or an "
               "unclosed quote or bracket are the usual causes)");
  } catch (const std::exception& e) {
    diag.error(file_loc, "cannot parse " + what + ": " + e.what(), "check the file is YAML");
  }
  return std::nullopt;
}

const Entry* MapView::find(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

Location FileReader::at(const YAML::Node& node) const {
  const YAML::Mark m = node.Mark();
  if (m.is_null()) return Location{file_, 0, 0};
  return Location{file_, m.line + 1, m.column + 1};
}

void FileReader::error(const YAML::Node& node, std::string message, std::string hint) const {
  diag_.error(at(node), std::move(message), std::move(hint));
}

void FileReader::warn(const YAML::Node& node, const std::string& message) const {
  diag_.warn(at(node), message);
}

namespace {

const char* typeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "something else";
}

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::optional<MapView> FileReader::openMap(const YAML::Node& node, const std::string& path) const {
  if (!node.IsMap()) {
    error(node,
          (path.empty() ? std::string("the file") : path) +
              " must be a mapping (key: value), got " + typeName(node),
          "write it as 'key: value' lines (see config/README.md)");
    return std::nullopt;
  }
  MapView view;
  view.node = node;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      error(key, "keys " + describePath(path) + " must be plain names, got " + typeName(key),
            "write the key as a plain word");
      continue;
    }
    if (view.find(key.Scalar())) {
      error(key, "duplicate key '" + key.Scalar() + "' " + describePath(path),
            "keep one '" + key.Scalar() +
                "' and remove the other (YAML would silently use only one)");
      continue;
    }
    view.entries_.push_back(Entry{key.Scalar(), key, it->second});
  }
  return view;
}

std::optional<MapView> FileReader::map(const YAML::Node& node, const std::string& path,
                                       std::span<const std::string_view> valid) const {
  auto view = openMap(node, path);
  if (!view || valid.empty()) return view;
  for (const auto& e : view->entries()) {
    if (std::find(valid.begin(), valid.end(), std::string_view(e.key)) != valid.end()) continue;
    const std::string suggestion = closestKey(e.key, valid);
    std::string message = (path.empty() ? "unknown top-level key '" + e.key + "'"
                                        : "unknown key '" + e.key + "' in " + path) +
                          "; valid keys: " + joinList(valid);
    std::string hint;
    if (!suggestion.empty()) {
      message += "; did you mean '" + suggestion + "'?";
      hint = "rename '" + e.key + "' to '" + suggestion + "'";
    } else {
      hint = "remove '" + e.key + "' or use one of the valid keys";
    }
    error(e.key_node, std::move(message), std::move(hint));
  }
  return view;
}

const Entry* FileReader::require(const MapView& map, std::string_view key, const std::string& path,
                                 const std::string& hint) const {
  const Entry* e = map.find(key);
  if (e && !e->value.IsNull()) return e;
  const std::string full = joinPath(path, key);
  if (e) {
    error(e->value, full + " is required but empty",
          hint.empty() ? "give " + full + " a value" : hint);
  } else {
    error(map.node, "missing required key '" + std::string(key) + "' " + describePath(path),
          hint.empty() ? "add '" + std::string(key) + ":'" : hint);
  }
  return nullptr;
}

const Entry* FileReader::optional(const MapView& map, std::string_view key) {
  const Entry* e = map.find(key);
  return (e && !e->value.IsNull()) ? e : nullptr;
}

std::optional<std::string> FileReader::string(const YAML::Node& node, const std::string& path,
                                              bool allow_empty) const {
  if (!node.IsScalar()) {
    if (allow_empty && node.IsNull()) return std::string();
    error(node, path + " must be a text value, got " + typeName(node),
          "write a single value, e.g. '" + path.substr(path.rfind('.') + 1) + ": value'");
    return std::nullopt;
  }
  std::string value = trimmed(node.Scalar());
  if (value.empty() && !allow_empty) {
    error(node, path + " must not be empty", "give " + path + " a value");
    return std::nullopt;
  }
  return value;
}

std::optional<std::int64_t> parseInteger(std::string_view text) {
  std::string t = trimmed(text);
  std::string_view s = t;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parseNumber(std::string_view text) {
  std::string t = trimmed(text);
  std::string_view s = t;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

std::optional<bool> parseBool(std::string_view text) {
  std::string t;
  for (char c : trimmed(text)) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  return std::nullopt;
}

std::optional<std::int64_t> FileReader::integer(const YAML::Node& node, const std::string& path,
                                                std::int64_t min, std::int64_t max) const {
  const std::string range = max == INT64_MAX ? "a whole number >= " + std::to_string(min)
                                             : "a whole number from " + std::to_string(min) +
                                                   " to " + std::to_string(max);
  if (!node.IsScalar()) {
    error(node, path + " must be " + range + ", got " + typeName(node), "write a number");
    return std::nullopt;
  }
  const auto v = parseInteger(node.Scalar());
  if (!v) {
    error(node, path + " must be " + range + ", got '" + node.Scalar() + "'", "write a number");
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    error(node, path + " must be " + range + ", got " + std::to_string(*v),
          "use a value in the allowed range");
    return std::nullopt;
  }
  return v;
}

namespace {
std::string formatNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
}  // namespace

std::optional<double> FileReader::number(const YAML::Node& node, const std::string& path,
                                         double min, double max) const {
  const std::string range = "a number from " + formatNumber(min) + " to " + formatNumber(max);
  if (!node.IsScalar()) {
    error(node, path + " must be " + range + ", got " + typeName(node), "write a number");
    return std::nullopt;
  }
  const auto v = parseNumber(node.Scalar());
  if (!v) {
    error(node, path + " must be " + range + ", got '" + node.Scalar() + "'", "write a number");
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    error(node, path + " must be " + range + ", got " + formatNumber(*v),
          "use a value in the allowed range");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> FileReader::boolean(const YAML::Node& node, const std::string& path) const {
  std::optional<bool> v;
  if (node.IsScalar()) v = parseBool(node.Scalar());
  if (!v)
    error(node,
          path + " must be true or false, got " +
              (node.IsScalar() ? "'" + node.Scalar() + "'" : std::string(typeName(node))),
          "write true or false");
  return v;
}

std::optional<core::Seconds> FileReader::duration(const YAML::Node& node,
                                                  const std::string& path) const {
  std::optional<core::Seconds> v;
  if (node.IsScalar()) v = core::parseDuration(trimmed(node.Scalar()));
  if (!v)
    error(node,
          path + " must be a duration like 30s, 15m, 12h, 30d or 2w, got " +
              (node.IsScalar() ? "'" + node.Scalar() + "'" : std::string(typeName(node))),
          "write a whole number followed by s, m, h, d or w");
  return v;
}

std::optional<std::vector<std::string>> FileReader::stringList(const YAML::Node& node,
                                                               const std::string& path) const {
  std::vector<std::string> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) {
    auto v = string(node, path);
    if (!v) return std::nullopt;
    out.push_back(*v);
    return out;
  }
  if (!node.IsSequence()) {
    error(node, path + " must be a list of values, got " + typeName(node),
          "write a list: [a, b] or one '- item' per line");
    return std::nullopt;
  }
  bool ok = true;
  std::size_t i = 0;
  for (const auto& item : node) {
    auto v = string(item, indexPath(path, i++));
    if (v)
      out.push_back(*v);
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::pair<std::string, YAML::Node>>> FileReader::stringItems(
    const YAML::Node& node, const std::string& path) const {
  std::vector<std::pair<std::string, YAML::Node>> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) {
    auto v = string(node, path);
    if (!v) return std::nullopt;
    out.emplace_back(*v, node);
    return out;
  }
  if (!node.IsSequence()) {
    error(node, path + " must be a list of values, got " + typeName(node),
          "write a list: [a, b] or one '- item' per line");
    return std::nullopt;
  }
  bool ok = true;
  std::size_t i = 0;
  for (const auto& item : node) {
    auto v = string(item, indexPath(path, i++));
    if (v)
      out.emplace_back(*v, item);
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<YAML::Node>> FileReader::sequence(const YAML::Node& node,
                                                            const std::string& path) const {
  std::vector<YAML::Node> out;
  if (node.IsNull()) return out;
  if (!node.IsSequence()) {
    error(node, path + " must be a list, got " + typeName(node), "write one '- ' entry per item");
    return std::nullopt;
  }
  for (const auto& item : node) out.push_back(item);
  return out;
}

}  // namespace certgate::settings::detail
