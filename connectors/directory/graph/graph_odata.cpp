#include "connectors/directory/graph/graph_odata.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

namespace certgate::connectors::graph {

std::string odataString(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    out += c;
    if (c == '\'') out += '\'';
  }
  out += '\'';
  return out;
}

std::string encodeQueryValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool isObjectId(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

bool isPropertyPath(std::string_view text) {
  if (text.empty() || text.front() == '/' || text.back() == '/') return false;
  int slashes = 0;
  for (unsigned char c : text) {
    if (c == '/') {
      ++slashes;
    } else if (!std::isalnum(c) && c != '_') {
      return false;
    }
  }
  return slashes <= 1;
}

GraphErrorBody parseGraphError(std::string_view body) {
  GraphErrorBody out;
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_object()) return out;
  const auto& e = doc["error"];
  if (e.contains("code") && e["code"].is_string()) out.code = e["code"].get<std::string>();
  if (e.contains("message") && e["message"].is_string())
    out.message = e["message"].get<std::string>();
  for (const char* inner : {"innerError", "innererror"}) {
    if (e.contains(inner) && e[inner].is_object() && e[inner].contains("request-id") &&
        e[inner]["request-id"].is_string())
      out.request_id = e[inner]["request-id"].get<std::string>();
  }
  return out;
}

bool isAlreadyMember(long status, const GraphErrorBody& error) {
  return status == 400 &&
         error.message.find("added object references already exist") != std::string::npos;
}

bool isAbsentReference(long status, const GraphErrorBody& error) {
  if (status == 404) return true;
  return status == 400 &&
         error.message.find("removed object references do not exist") != std::string::npos;
}

}  // namespace certgate::connectors::graph
