#include "connectors/gateway/rest/rest_template.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>
#include <utility>

namespace certgate::connectors::rest {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;

bool isNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

// A string cut into literal text and placeholder names.
struct Piece {
  std::string text;
  bool placeholder = false;
};

core::Result<std::vector<Piece>> split(std::string_view s, const Placeholders& allowed) {
  std::vector<Piece> out;
  std::string literal;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "{{") != 0) {
      literal += s[i++];
      continue;
    }
    const std::size_t close = s.find("}}", i + 2);
    if (close == std::string_view::npos)
      return core::makeError(ErrorKind::Invalid,
                             "'{{' without a closing '}}' in '" + std::string(s) + "'");
    std::string_view inner = s.substr(i + 2, close - i - 2);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    const std::string name(inner);
    if (name.empty() || !std::all_of(name.begin(), name.end(), isNameChar))
      return core::makeError(ErrorKind::Invalid, "'{{" + std::string(s.substr(i + 2, close - i - 2)) +
                                                     "}}' is not a placeholder name");
    if (!allowed.allows(name))
      return core::makeError(ErrorKind::Invalid, "unknown placeholder {{" + name + "}}");
    if (!literal.empty()) out.push_back({std::move(literal), false});
    literal.clear();
    out.push_back({name, true});
    i = close + 2;
  }
  if (!literal.empty()) out.push_back({std::move(literal), false});
  return out;
}

const Json& valueOf(const TemplateValues& values, const std::string& name) {
  static const Json kNull;
  const auto it = values.find(name);
  return it == values.end() ? kNull : it->second;
}

// Checks the placeholders of every string in `doc`.
core::Status check(const Json& doc, const Placeholders& allowed, std::vector<std::string>& names) {
  if (doc.is_string()) {
    auto pieces = split(doc.get_ref<const std::string&>(), allowed);
    if (!pieces) return pieces.error();
    for (const auto& p : *pieces)
      if (p.placeholder) names.push_back(p.text);
    return {};
  }
  if (doc.is_array() || doc.is_object()) {
    for (const auto& item : doc) {
      if (auto ok = check(item, allowed, names); !ok) return ok;
    }
  }
  return {};
}

Json renderNode(const Json& node, const TemplateValues& values, const Placeholders& allowed) {
  if (node.is_string()) {
    auto pieces = split(node.get_ref<const std::string&>(), allowed);
    if (!pieces || pieces->empty()) return node;  // checked at parse time
    if (pieces->size() == 1 && (*pieces)[0].placeholder) return valueOf(values, (*pieces)[0].text);
    std::string out;
    for (const auto& p : *pieces) out += p.placeholder ? templateText(valueOf(values, p.text)) : p.text;
    return out;
  }
  if (node.is_array()) {
    Json out = Json::array();
    for (const auto& item : node) out.push_back(renderNode(item, values, allowed));
    return out;
  }
  if (node.is_object()) {
    Json out = Json::object();
    for (const auto& [k, v] : node.items()) out[k] = renderNode(v, values, allowed);
    return out;
  }
  return node;
}

// Every name is allowed while rendering: parse() has checked them.
const Placeholders& anyName() {
  static const Placeholders kAny = [] {
    Placeholders p;
    p.metadata = true;
    p.names = {"*"};
    return p;
  }();
  return kAny;
}

}  // namespace

bool Placeholders::allows(const std::string& name) const {
  if (names.size() == 1 && names.front() == "*") return true;
  if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  return metadata && name.size() > 9 && name.compare(0, 9, "metadata.") == 0;
}

std::string Placeholders::list() const {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("{{" + n + "}}");
  if (metadata) out += (out.empty() ? "" : ", ") + std::string("{{metadata.KEY}}");
  return out;
}

std::string templateText(const Json& value) {
  if (value.is_null()) return {};
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    std::string out;
    for (const auto& item : value) {
      if (!out.empty()) out += ',';
      out += templateText(item);
    }
    return out;
  }
  return value.dump();
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3 / 2);
  for (const unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

core::Result<JsonTemplate> JsonTemplate::parse(std::string_view text, const Placeholders& allowed) {
  JsonTemplate t;
  try {
    t.doc_ = Json::parse(text);
  } catch (const std::exception& e) {
    std::string why = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." -> from "parse error"
    if (const auto at = why.find("] "); at != std::string::npos) why = why.substr(at + 2);
    return core::makeError(ErrorKind::Invalid, "is not valid JSON (" + why + ")");
  }
  if (!t.doc_.is_object() && !t.doc_.is_array())
    return core::makeError(ErrorKind::Invalid, "must be a JSON object or array");
  if (auto ok = check(t.doc_, allowed, t.names_); !ok) return ok.error();
  return t;
}

Json JsonTemplate::render(const TemplateValues& values) const {
  return renderNode(doc_, values, anyName());
}

bool JsonTemplate::uses(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

core::Result<PathTemplate> PathTemplate::parse(std::string_view text, const Placeholders& allowed) {
  auto pieces = split(text, allowed);
  if (!pieces) return pieces.error();
  PathTemplate t;
  for (auto& p : *pieces) t.parts_.push_back({std::move(p.text), p.placeholder});
  return t;
}

std::string PathTemplate::render(const TemplateValues& values) const {
  std::string out;
  for (const auto& p : parts_)
    out += p.placeholder ? percentEncode(templateText(valueOf(values, p.text))) : p.text;
  return out;
}

bool PathTemplate::uses(const std::string& name) const {
  return std::any_of(parts_.begin(), parts_.end(),
                     [&](const Part& p) { return p.placeholder && p.text == name; });
}

}  // namespace certgate::connectors::rest
