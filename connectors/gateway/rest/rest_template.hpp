#pragma once
// Templates of the `rest` gateway: `{{name}}` placeholders in a JSON document (issue_body,
// revoke_body) or in a URL path and query (issue_path, revoke_path, verify_path, alias_query).
//
//  - A placeholder is `{{name}}` (blanks inside the braces are allowed); names are letters,
//    digits, '_', '-' and '.', and `metadata.KEY` names one IssueRequest::metadata entry.
//  - JSON: a string value that is exactly one placeholder is replaced by the typed value (a
//    JSON array, number, string or null); placeholders inside a longer string are interpolated
//    as text (null as nothing, an array as its elements joined with ','). Object keys are
//    left as written. Substitution happens in the parsed document, so a value can never change
//    the document's structure.
//  - Paths: each placeholder is replaced by its text, percent-encoded (RFC 3986 unreserved
//    characters stay), so a value cannot add a path segment or a query parameter.
//  - A placeholder without a value renders as null (JSON) or nothing (path).
// Pure; never throws.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace certgate::connectors::rest {

using TemplateValues = std::map<std::string, nlohmann::json>;

// What a template may name: `names`, and `metadata.KEY` when `metadata` is set.
struct Placeholders {
  std::vector<std::string> names;
  bool metadata = false;

  bool allows(const std::string& name) const;
  std::string list() const;  // "{{a}}, {{b}}" for messages
};

// The text a value interpolates as.
std::string templateText(const nlohmann::json& value);

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string percentEncode(std::string_view text);

class JsonTemplate {
 public:
  JsonTemplate() = default;
  // Errors are Invalid; their message says what is wrong without naming the option.
  static core::Result<JsonTemplate> parse(std::string_view text, const Placeholders& allowed);

  nlohmann::json render(const TemplateValues& values) const;
  bool uses(const std::string& name) const;
  bool empty() const { return doc_.is_null(); }

 private:
  nlohmann::json doc_;
  std::vector<std::string> names_;  // the placeholders it holds
};

class PathTemplate {
 public:
  PathTemplate() = default;
  static core::Result<PathTemplate> parse(std::string_view text, const Placeholders& allowed);

  std::string render(const TemplateValues& values) const;
  bool uses(const std::string& name) const;
  bool empty() const { return parts_.empty(); }

 private:
  struct Part {
    std::string text;
    bool placeholder = false;
  };
  std::vector<Part> parts_;
};

}  // namespace certgate::connectors::rest
