#pragma once
// A connector declares the configuration keys it accepts; settings validates against the spec
// centrally (unknown keys are errors listing the valid ones) and `certgate connectors describe`
// prints it.

#include <string>
#include <vector>

namespace certgate::ports {

enum class ValueType { String, Int, Bool, Duration, Path, StringList, Map, Secret };
inline const char* toString(ValueType t) {
  switch (t) {
    case ValueType::String: return "string";
    case ValueType::Int: return "int";
    case ValueType::Bool: return "bool";
    case ValueType::Duration: return "duration";
    case ValueType::Path: return "path";
    case ValueType::StringList: return "list of strings";
    case ValueType::Map: return "map";
    case ValueType::Secret: return "secret (file path or systemd credential)";
  }
  return "?";
}

struct ConfigKey {
  std::string key;
  ValueType type = ValueType::String;
  bool required = false;
  std::string default_value;  // as text, "" when none
  std::string description;
};

struct ConfigSpec {
  std::string kind;         // "csv"
  std::string description;  // one line
  std::vector<ConfigKey> keys;

  const ConfigKey* find(const std::string& key) const {
    for (const auto& k : keys)
      if (k.key == key) return &k;
    return nullptr;
  }
};

}  // namespace certgate::ports

namespace certgate::ports {

// A connector's options as read from configuration, neutral of the file format.
// `where` is "file:line:column" of the value, for error messages.
struct OptionValue {
  std::string scalar;
  std::vector<std::string> list;
  std::vector<std::pair<std::string, std::string>> map;  // in file order
  enum class Shape { Scalar, List, Map } shape = Shape::Scalar;
  std::string where;
};

struct Options {
  std::vector<std::pair<std::string, OptionValue>> values;  // in file order
  std::string where;  // location of the block

  const OptionValue* find(const std::string& key) const {
    for (const auto& [k, v] : values)
      if (k == key) return &v;
    return nullptr;
  }
};

}  // namespace certgate::ports

#include <functional>

#include "core/result.hpp"

namespace certgate::ports {

// Reads the value of a secret option (a {file: PATH} or {credential: NAME} reference, see
// config/README.md "Secrets"). Supplied by the composition root; it also registers the value
// with the log redactor. Errors name the reference, never the value.
using SecretReader = std::function<core::Result<std::string>(const OptionValue& ref)>;

}  // namespace certgate::ports
