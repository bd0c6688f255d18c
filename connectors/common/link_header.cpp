#include "connectors/common/link_header.hpp"

#include <algorithm>
#include <cctype>

namespace certgate::connectors::http {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void skipSpace() { while (!done() && isSpace(s_[i_])) ++i_; }
  bool eat(char c) {
    skipSpace();
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  // Up to (not including) any of `stops`, trimmed.
  std::string_view token(std::string_view stops) {
    skipSpace();
    std::size_t start = i_;
    while (!done() && stops.find(s_[i_]) == std::string_view::npos) ++i_;
    std::string_view t = s_.substr(start, i_ - start);
    while (!t.empty() && isSpace(t.back())) t.remove_suffix(1);
    return t;
  }
  // A quoted-string after the opening quote; handles backslash escapes.
  std::string quoted() {
    std::string out;
    while (!done()) {
      char c = s_[i_++];
      if (c == '"') return out;
      if (c == '\\' && !done()) c = s_[i_++];
      out.push_back(c);
    }
    return out;
  }
  // Skip to just after the next top-level comma (outside quotes and <>).
  void skipEntry() {
    bool in_quotes = false;
    bool in_angle = false;
    while (!done()) {
      char c = s_[i_++];
      if (in_quotes) {
        if (c == '\\' && !done()) ++i_;
        else if (c == '"') in_quotes = false;
      } else if (in_angle) {
        if (c == '>') in_angle = false;
      } else if (c == '"') {
        in_quotes = true;
      } else if (c == '<') {
        in_angle = true;
      } else if (c == ',') {
        return;
      }
    }
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<Link> parseLinks(std::string_view header_value) {
  std::vector<Link> links;
  Cursor cur(header_value);
  while (true) {
    cur.skipSpace();
    if (cur.done()) break;
    if (!cur.eat('<')) {  // malformed entry: skip it
      cur.skipEntry();
      continue;
    }
    Link link;
    link.url = std::string(cur.token(">"));
    if (!cur.eat('>')) break;  // unterminated target: nothing more can be trusted
    bool ok = true;
    while (true) {
      cur.skipSpace();
      if (cur.done() || cur.peek() == ',') {
        cur.eat(',');
        break;
      }
      if (!cur.eat(';')) {
        ok = false;
        cur.skipEntry();
        break;
      }
      std::string name = lower(cur.token("=;,"));
      std::string value;
      if (cur.eat('=')) {
        cur.skipSpace();
        if (cur.eat('"')) value = cur.quoted();
        else value = std::string(cur.token(";,"));
      }
      if (name == "rel" && link.rels.empty()) {  // RFC 8288 3.3: only the first rel counts
        std::string_view v = value;
        while (!v.empty()) {
          std::size_t start = 0;
          while (start < v.size() && isSpace(v[start])) ++start;
          std::size_t end = start;
          while (end < v.size() && !isSpace(v[end])) ++end;
          if (end > start) link.rels.push_back(lower(v.substr(start, end - start)));
          v.remove_prefix(end);
        }
      }
    }
    if (ok) links.push_back(std::move(link));
  }
  return links;
}

std::optional<std::string> nextLink(std::string_view header_value) {
  for (auto& link : parseLinks(header_value)) {
    if (std::find(link.rels.begin(), link.rels.end(), "next") != link.rels.end() && !link.url.empty()) {
      return std::move(link.url);
    }
  }
  return std::nullopt;
}

}  // namespace certgate::connectors::http
