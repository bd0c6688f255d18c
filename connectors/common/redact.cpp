#include "connectors/common/redact.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <regex>

namespace certgate::connectors::http {
namespace {

struct Rule {
  std::regex pattern;
  const char* replacement;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> kRules = [] {
    const auto flags = std::regex::ECMAScript | std::regex::icase | std::regex::optimize;
    std::vector<Rule> r;
    // Header lines: the whole value up to the end of the line.
    r.push_back({std::regex(R"re(((?:proxy-)?authorization|cookie|set-cookie|x-api-key)(\s*:\s*)[^\r\n]*)re",
                            flags),
                 "$1$2[redacted]"});
    // Credentials after an auth scheme, wherever they appear (e.g. inside an exception text).
    r.push_back({std::regex(R"re(\b(bearer|basic|ssws)(\s+)[A-Za-z0-9._~+/=\-]+)re", flags),
                 "$1$2[redacted]"});
    // Recognisable token formats: certgate's own (cgt_), and LiteLLM-style sk- keys.
    r.push_back({std::regex(R"re(\b(cgt_|sk-)[A-Za-z0-9_\-]{16,})re", std::regex::ECMAScript),
                 "$1[redacted]"});
    // JSON string members.
    r.push_back({std::regex(R"re(("(?:access_token|refresh_token|id_token|client_secret|client_assertion|password|key|api_key|token)"\s*:\s*)"(?:[^"\\]|\\.)*")re",
                            flags),
                 "$1\"[redacted]\""});
    // Query strings and form bodies.
    r.push_back({std::regex(R"re((^|[?&;\s,"'])(access_token|refresh_token|id_token|client_secret|client_assertion|password|api_key|wstoken)=[^&\s#"',;]*)re",
                            flags),
                 "$1$2=[redacted]"});
    return r;
  }();
  return kRules;
}

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

void replaceAll(std::string& text, std::string_view needle) {
  if (needle.empty()) return;
  std::size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), kRedacted);
    pos += kRedacted.size();
  }
}

}  // namespace

std::string redact(std::string_view text) {
  std::string out(text);
  for (const auto& rule : rules()) out = std::regex_replace(out, rule.pattern, rule.replacement);
  return out;
}

void Redactor::add(std::string secret) {
  if (secret.empty()) return;
  std::unique_lock lock(mutex_);
  std::string encoded = percentEncode(secret);
  auto insert = [this](std::string s) {
    if (std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end()) secrets_.push_back(std::move(s));
  };
  if (encoded != secret) insert(std::move(encoded));
  insert(std::move(secret));
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::redact(std::string_view text) const {
  std::string out(text);
  {
    std::shared_lock lock(mutex_);
    // Known values first: a pattern may otherwise cut a secret in half and leave a tail.
    for (const auto& s : secrets_) replaceAll(out, s);
  }
  return http::redact(out);
}

}  // namespace certgate::connectors::http
