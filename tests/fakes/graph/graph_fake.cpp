// Loopback fake of Microsoft Graph group membership; see graph_fake.hpp for the documents it
// follows (/work/shared/reference/idp.md section 2 and the Microsoft Learn pages cited there).
#include "graph_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace certgate::testing {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kVersion = "/v1.0";
constexpr std::string_view kPublicRoot = "https://graph.microsoft.com/v1.0";
constexpr std::size_t kMaxBatch = 20;  // json-batching: "limited to 20 individual requests"
constexpr std::size_t kMaxBind = 20;   // group-post-members: "up to 20 members"
constexpr int kDefaultTop = 100;       // group-list-members: nextLink past 100 members
constexpr int kMaxTop = 999;           // paging: "$top ... between 1 and 999 inclusive"
// Graph's own response type (json-batching sample). cpp-httplib compresses only bodies typed
// exactly "application/json", so this also keeps the fake from spending its time in brotli.
constexpr const char* kGraphContentType =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8";

// The documented duplicate-add answer (quoted verbatim by many public clients).
constexpr const char* kAlreadyExist =
    "One or more added object references already exist for the following modified properties: "
    "'members'.";

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  Json body;  // null: no body (204)
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower(a) == lower(b);
}

bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

using Query = std::vector<std::pair<std::string, std::string>>;

Query parseQuery(std::string_view raw) {
  Query q;
  while (!raw.empty()) {
    const auto amp = raw.find('&');
    const auto part = raw.substr(0, amp);
    if (!part.empty()) {
      const auto eq = part.find('=');
      q.emplace_back(percentDecode(part.substr(0, eq), true),
                     eq == std::string_view::npos ? "" : percentDecode(part.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    raw.remove_prefix(amp + 1);
  }
  return q;
}

std::optional<std::string> param(const Query& q, std::string_view name) {
  for (const auto& [k, v] : q)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

// The raw query without its $skiptoken, for building the next link.
std::string withoutSkipToken(std::string_view raw) {
  std::string out;
  while (!raw.empty()) {
    const auto amp = raw.find('&');
    const auto part = raw.substr(0, amp);
    const std::string name = lower(percentDecode(part.substr(0, part.find('=')), true));
    if (!part.empty() && name != "$skiptoken") {
      if (!out.empty()) out += '&';
      out += part;
    }
    if (amp == std::string_view::npos) break;
    raw.remove_prefix(amp + 1);
  }
  return out;
}

std::string hexEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<std::string> hexDecode(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = hexValue(s[i]), lo = hexValue(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) break;  // '=' padding or junk ends the value
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    if (slash != 0) out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::vector<std::string> splitList(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    std::string item(s.substr(0, comma));
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// ---- $filter: the subset certgate and its tests use ------------------------------------------
// clause := prop (eq|ne) literal | startswith(prop,'text');  expr := clause ((and|or) clause)*
// literal := 'text' (quote doubled inside) | true | false | null. No parentheses.

struct Clause {
  std::string prop;
  std::string op;  // eq, ne, startswith
  Json value;
};

struct Filter {
  std::vector<Clause> clauses;
  bool any_or = false;
};

struct FilterParser {
  std::string_view s;
  std::size_t i = 0;
  std::string error;

  void space() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  bool word(std::string_view w) {
    space();
    if (s.size() - i >= w.size() && iequals(s.substr(i, w.size()), w) &&
        (i + w.size() == s.size() || !std::isalnum(static_cast<unsigned char>(s[i + w.size()])))) {
      i += w.size();
      return true;
    }
    return false;
  }
  bool ch(char c) {
    space();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  std::optional<std::string> ident() {
    space();
    const std::size_t start = i;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' ||
                            s[i] == '/' || s[i] == '.'))
      ++i;
    if (i == start) return std::nullopt;
    return std::string(s.substr(start, i - start));
  }
  std::optional<Json> literal() {
    space();
    if (i < s.size() && s[i] == '\'') {
      std::string out;
      ++i;
      while (i < s.size()) {
        if (s[i] == '\'') {
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            out += '\'';
            i += 2;
            continue;
          }
          ++i;
          return Json(out);
        }
        out += s[i++];
      }
      error = "unterminated string literal";
      return std::nullopt;
    }
    if (word("true")) return Json(true);
    if (word("false")) return Json(false);
    if (word("null")) return Json(nullptr);
    error = "expected a literal";
    return std::nullopt;
  }
  std::optional<Filter> parse() {
    Filter f;
    bool first = true;
    while (true) {
      if (!first) {
        if (word("and")) {
        } else if (word("or")) {
          f.any_or = true;
        } else {
          break;
        }
      }
      first = false;
      Clause c;
      if (word("startswith")) {
        if (!ch('(')) return fail("expected (");
        auto p = ident();
        if (!p || !ch(',')) return fail("expected property,");
        auto v = literal();
        if (!v || !ch(')')) return fail("expected 'text')");
        c = {*p, "startswith", *v};
      } else {
        auto p = ident();
        if (!p) return fail("expected a property name");
        std::string op;
        if (word("eq")) op = "eq";
        else if (word("ne")) op = "ne";
        else return fail("unsupported operator");
        auto v = literal();
        if (!v) return std::nullopt;
        c = {*p, op, *v};
      }
      f.clauses.push_back(std::move(c));
    }
    space();
    if (i != s.size()) return fail("unexpected text");
    return f;
  }
  std::optional<Filter> fail(std::string why) {
    error = std::move(why);
    return std::nullopt;
  }
};

// Properties whose $filter needs ConsistencyLevel: eventual and $count=true (aad-advanced-queries,
// "Support for filter by properties of Microsoft Entra ID (directory) objects").
bool advancedOnly(std::string_view prop) {
  static const char* const kAdvanced[] = {
      "employeeType",      "companyName",     "officeLocation",        "mobilePhone",
      "employeeHireDate",  "postalCode",      "streetAddress",         "preferredLanguage",
      "showInAddressList", "passwordPolicies", "onPremisesSamAccountName",
      "onPremisesImmutableId"};
  for (const char* p : kAdvanced)
    if (iequals(prop, p)) return true;
  return istartsWith(prop, "onPremisesExtensionAttributes");
}

bool matches(const Clause& c, const Json& actual) {
  if (c.op == "startswith") {
    return actual.is_string() && c.value.is_string() &&
           istartsWith(actual.get<std::string>(), c.value.get<std::string>());
  }
  bool equal = false;
  if (c.value.is_null()) {
    equal = actual.is_null() || (actual.is_string() && actual.get<std::string>().empty());
  } else if (c.value.is_string()) {
    equal = actual.is_string() && iequals(actual.get<std::string>(), c.value.get<std::string>());
  } else {
    equal = actual == c.value;
  }
  return c.op == "eq" ? equal : !equal;
}

const char* const kUserProps[] = {
    "id",         "userPrincipalName", "mail",          "employeeId",     "displayName",
    "employeeType", "accountEnabled",  "givenName",     "surname",        "jobTitle",
    "department", "companyName",       "officeLocation", "businessPhones", "mobilePhone",
    "preferredLanguage", "otherMails", "userType",      "onPremisesImmutableId",
    "onPremisesExtensionAttributes",   "onPremisesSyncEnabled", "employeeHireDate"};

}  // namespace

struct GraphFake::Impl {
  GraphFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;

  mutable std::mutex mu;
  std::map<std::string, GraphUser> users;
  std::map<std::string, GraphGroup> groups;
  std::map<std::string, std::set<std::string>> members;
  std::set<std::string> tokens;
  std::size_t token_seq = 0;
  std::size_t token_requests = 0;
  std::size_t http_requests = 0;
  std::size_t request_ids = 0;
  std::size_t unsafe_deletes = 0;
  std::vector<std::string> deleted;
  std::vector<GraphLoggedRequest> log;
  int throttle_left = 0;
  std::optional<long> throttle_retry;
  int batch_throttle_left = 0;
  std::optional<long> batch_throttle_retry;
  int fail_left = 0;
  int fail_status = 0;
  std::optional<long> fail_retry;
  int fail_page = 0;
  int fail_page_status = 500;
  bool always_401 = false;
  std::set<std::string> lagging;

  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::string base() const { return origin() + std::string(kVersion); }

  // ---- answers ----

  Reply error(int status, const std::string& code, const std::string& message) {
    const std::string rid = "00000000-0000-4000-8000-" + [&] {
      std::string n = std::to_string(++request_ids);
      return std::string(12 - std::min<std::size_t>(12, n.size()), '0') + n;
    }();
    Reply r;
    r.status = status;
    r.headers.emplace_back("request-id", rid);
    r.body = {{"error",
               {{"code", code},
                {"message", message},
                {"innerError",
                 {{"date", "2026-11-25T00:00:00"}, {"request-id", rid}, {"client-request-id", rid}}}}}};
    return r;
  }

  Reply notFound(const std::string& id) {
    // The directory's answer for a missing object or a missing reference between two objects.
    return error(404, "Request_ResourceNotFound",
                 "Resource '" + id +
                     "' does not exist or one of its queried reference-property objects are not "
                     "present.");
  }

  Reply throttled(std::optional<long> retry_after) {
    // Shape of the throttling page's sample 429 body.
    Reply r = error(429, "TooManyRequests", "Too many requests.");
    if (retry_after) r.headers.emplace_back("Retry-After", std::to_string(*retry_after));
    return r;
  }

  // ---- rendering ----

  std::optional<Json> userProp(const GraphUser& u, std::string_view name) const {
    if (iequals(name, "id")) return Json(u.id);
    if (iequals(name, "userPrincipalName")) return Json(u.user_principal_name);
    if (iequals(name, "mail")) return u.mail.empty() ? Json(nullptr) : Json(u.mail);
    if (iequals(name, "employeeId")) return u.employee_id.empty() ? Json(nullptr) : Json(u.employee_id);
    if (iequals(name, "displayName")) return Json(u.display_name);
    if (iequals(name, "employeeType"))
      return u.employee_type.empty() ? Json(nullptr) : Json(u.employee_type);
    if (iequals(name, "accountEnabled")) return Json(u.account_enabled);
    for (const auto& [k, v] : u.extra)
      if (iequals(k, name)) return Json(v);
    // A nested complex property (onPremisesExtensionAttributes) is an object of its parts.
    Json nested = Json::object();
    for (const auto& [k, v] : u.extra) {
      const auto slash = k.find('/');
      if (slash != std::string::npos && iequals(std::string_view(k).substr(0, slash), name))
        nested[k.substr(slash + 1)] = v;
    }
    if (!nested.empty()) return nested;
    for (const char* p : kUserProps)
      if (iequals(name, p)) return Json(nullptr);
    if (istartsWith(name, "extension_")) return Json(nullptr);
    return std::nullopt;  // not a property of microsoft.graph.user
  }

  Json renderUser(const GraphUser& u, const std::vector<std::string>& select) const {
    Json j = Json::object();
    if (select.empty()) {
      // Graph's default property set for users; employeeId and employeeType need $select.
      j["businessPhones"] = Json::array();
      j["displayName"] = u.display_name;
      j["givenName"] = nullptr;
      j["jobTitle"] = nullptr;
      j["mail"] = u.mail.empty() ? Json(nullptr) : Json(u.mail);
      j["mobilePhone"] = nullptr;
      j["officeLocation"] = nullptr;
      j["preferredLanguage"] = nullptr;
      j["surname"] = nullptr;
      j["userPrincipalName"] = u.user_principal_name;
      j["id"] = u.id;
      return j;
    }
    for (const auto& name : select) {
      if (auto v = userProp(u, name)) j[name] = *v;
    }
    return j;
  }

  Json renderGroup(const GraphGroup& g, const std::vector<std::string>& select) const {
    Json all = {{"id", g.id},
                {"displayName", g.display_name},
                {"groupTypes", g.group_types},
                {"mailEnabled", g.mail_enabled},
                {"securityEnabled", g.security_enabled},
                {"onPremisesSyncEnabled", g.on_premises_sync_enabled
                                              ? Json(*g.on_premises_sync_enabled)
                                              : Json(nullptr)}};
    if (select.empty()) return all;
    Json j = Json::object();
    for (const auto& name : select)
      for (auto it = all.begin(); it != all.end(); ++it)
        if (iequals(it.key(), name)) j[it.key()] = it.value();
    return j;
  }

  std::optional<Reply> checkSelect(const std::vector<std::string>& select, bool user) {
    static const char* const kGroupProps[] = {"id", "displayName", "groupTypes", "mailEnabled",
                                              "securityEnabled", "onPremisesSyncEnabled",
                                              "description", "mail"};
    for (const auto& name : select) {
      bool known = false;
      if (user) {
        for (const char* p : kUserProps) known = known || iequals(name, p);
        known = known || istartsWith(name, "extension_");
        for (const auto& [id, u] : users) {
          if (known) break;
          for (const auto& [k, v] : u.extra)
            if (iequals(k, name)) known = true;
        }
      } else {
        for (const char* p : kGroupProps) known = known || iequals(name, p);
      }
      if (!known)
        return error(400, "Request_BadRequest",
                     "Could not find a property named '" + name + "' on type 'microsoft.graph." +
                         (user ? "user" : "group") + "'.");
    }
    return std::nullopt;
  }

  // ---- paging ----

  struct Paging {
    int top = kDefaultTop;
    int page = 1;
    std::optional<std::string> after;
  };

  std::optional<Reply> readPaging(const Query& q, Paging& p) {
    if (auto top = param(q, "$top")) {
      int v = 0;
      try {
        v = std::stoi(*top);
      } catch (...) {
        v = -1;
      }
      if (v < 1 || v > kMaxTop)
        return error(400, "Request_BadRequest",
                     "Invalid page size specified: '" + *top +
                         "'. Must be between 1 and 999 inclusive.");
      p.top = v;
    }
    if (auto token = param(q, "$skiptoken")) {
      // The fake's token: "<page>.<hex of the last key served>"; opaque to clients.
      const auto dot = token->find('.');
      std::optional<std::string> key;
      if (dot != std::string::npos) key = hexDecode(token->substr(dot + 1));
      int page = 0;
      try {
        page = std::stoi(token->substr(0, dot));
      } catch (...) {
        page = 0;
      }
      if (!key || page < 2) return error(400, "Request_BadRequest", "Invalid skip token.");
      p.page = page;
      p.after = *key;
    }
    return std::nullopt;
  }

  // One page over `keys` (sorted, unique), keeping those `match` accepts.
  template <typename Keys, typename KeyOf, typename Match, typename Render>
  Reply page(const Keys& keys, KeyOf key_of, Match match, Render render, const Paging& p,
             const std::string& next_base, const std::string& raw_query, bool count) {
    if (fail_page > 0 && p.page == fail_page)
      return error(fail_page_status, "UnknownError", "Injected failure on page " +
                                                          std::to_string(p.page) + ".");
    auto it = p.after ? keys.upper_bound(*p.after) : keys.begin();
    Json value = Json::array();
    std::string last;
    for (; it != keys.end() && value.size() < static_cast<std::size_t>(p.top); ++it) {
      if (!match(*it)) continue;
      value.push_back(render(*it));
      last = key_of(*it);
    }
    bool more = false;
    for (auto j = it; j != keys.end(); ++j)
      if (match(*j)) {
        more = true;
        break;
      }
    Reply r;
    r.body = Json::object();
    if (count) {
      std::size_t n = 0;
      for (const auto& k : keys) n += match(k) ? 1 : 0;
      r.body["@odata.count"] = n;
    }
    if (more) {
      const std::string rest = withoutSkipToken(raw_query);
      r.body["@odata.nextLink"] = next_base + "?" + rest + (rest.empty() ? "" : "&") +
                                  "$skiptoken=" + std::to_string(p.page + 1) + "." +
                                  hexEncode(last);
    }
    r.body["value"] = std::move(value);
    return r;
  }

  // ---- filters ----

  std::optional<Reply> readFilter(const Query& q, bool advanced, bool relationship,
                                  std::optional<Filter>& out) {
    auto text = param(q, "$filter");
    if (!text) return std::nullopt;
    FilterParser parser;
    parser.s = *text;
    out = parser.parse();
    if (!out)
      return error(400, "BadRequest", "Invalid filter clause: " + parser.error + ".");
    bool needs_advanced = relationship;  // a filter on a relationship (members) is advanced here
    for (const auto& c : out->clauses)
      needs_advanced = needs_advanced || c.op == "ne" || advancedOnly(c.prop);
    if (needs_advanced && !advanced)
      return error(400, "Request_UnsupportedQuery",
                   "Unsupported query: this $filter needs the ConsistencyLevel: eventual header "
                   "and $count=true.");
    return std::nullopt;
  }

  template <typename Get>
  bool evaluate(const Filter& f, Get get) const {
    if (f.clauses.empty()) return true;
    bool result = !f.any_or;
    for (const auto& c : f.clauses) {
      const auto v = get(c.prop);
      const bool m = v && matches(c, *v);
      result = f.any_or ? (result || m) : (result && m);
    }
    return result;
  }

  // ---- routes ----

  Reply route(const std::string& method, const std::string& path, const std::string& raw_query,
              const std::string& consistency, const std::string& body,
              const std::string& next_base) {
    const Query q = parseQuery(raw_query);
    const bool advanced = iequals(consistency, "eventual") &&
                          iequals(param(q, "$count").value_or(""), "true");
    const std::vector<std::string> select = splitList(param(q, "$select").value_or(""));
    const auto seg = splitPath(std::string_view(path).substr(kVersion.size()));
    const std::size_t n = seg.size();

    if (n >= 1 && seg[0] == "users") {
      if (n == 1 && method == "GET") return listUsers(q, select, advanced, next_base, raw_query);
      if (n == 2 && method == "GET") {
        auto it = users.find(seg[1]);
        if (it == users.end()) return notFound(seg[1]);
        if (auto bad = checkSelect(select, true)) return *bad;
        Reply r;
        r.body = renderUser(it->second, select);
        return r;
      }
      if (n == 2 && method == "DELETE") return deleteObject(seg[1]);
    }
    if (n >= 1 && seg[0] == "groups") {
      if (n == 1 && method == "GET") return listGroups(q, select, advanced, next_base, raw_query);
      if (n >= 2 && groups.find(seg[1]) == groups.end()) return notFound(seg[1]);
      if (n == 2 && method == "GET") {
        if (auto bad = checkSelect(select, false)) return *bad;
        Reply r;
        r.body = renderGroup(groups.at(seg[1]), select);
        return r;
      }
      if (n == 2 && method == "PATCH") return patchGroup(seg[1], body);
      if (n >= 3 && seg[2] == "members") {
        if (n == 3 && method == "GET")
          return listMembers(seg[1], false, q, select, advanced, next_base, raw_query);
        if (n == 4 && seg[3] == "microsoft.graph.user" && method == "GET")
          return listMembers(seg[1], true, q, select, advanced, next_base, raw_query);
        if (n == 4 && seg[3] == "$ref" && method == "POST") return postMemberRef(seg[1], body);
        if (n == 5 && seg[4] == "$ref" && method == "DELETE") return deleteMemberRef(seg[1], seg[3]);
        if (n == 4 && method == "DELETE") {
          // group-delete-members: without /$ref the member object itself is deleted when the
          // app may manage that object type, otherwise 403.
          ++unsafe_deletes;
          if (!opt.app_can_delete_users)
            return error(403, "Authorization_RequestDenied",
                         "Insufficient privileges to complete the operation.");
          return deleteObject(seg[3]);
        }
      }
    }
    return error(400, "Request_BadRequest",
                 "Unsupported request: " + method + " " + path + " (not served by the fake).");
  }

  Reply listUsers(const Query& q, const std::vector<std::string>& select, bool advanced,
                  const std::string& next_base, const std::string& raw_query) {
    Paging p;
    if (auto bad = readPaging(q, p)) return *bad;
    if (auto bad = checkSelect(select, true)) return *bad;
    std::optional<Filter> f;
    if (auto bad = readFilter(q, advanced, false, f)) return *bad;
    return page(
        users, [](const auto& kv) { return kv.first; },
        [&](const auto& kv) {
          return !f || evaluate(*f, [&](const std::string& prop) { return userProp(kv.second, prop); });
        },
        [&](const auto& kv) { return renderUser(kv.second, select); }, p, next_base, raw_query,
        advanced);
  }

  Reply listGroups(const Query& q, const std::vector<std::string>& select, bool advanced,
                   const std::string& next_base, const std::string& raw_query) {
    Paging p;
    if (auto bad = readPaging(q, p)) return *bad;
    if (auto bad = checkSelect(select, false)) return *bad;
    std::optional<Filter> f;
    if (auto bad = readFilter(q, advanced, false, f)) return *bad;
    return page(
        groups, [](const auto& kv) { return kv.first; },
        [&](const auto& kv) {
          return !f || evaluate(*f, [&](const std::string& prop) -> std::optional<Json> {
                   const Json all = renderGroup(kv.second, {});
                   for (auto it = all.begin(); it != all.end(); ++it)
                     if (iequals(it.key(), prop)) return it.value();
                   return std::nullopt;
                 });
        },
        [&](const auto& kv) { return renderGroup(kv.second, select); }, p, next_base, raw_query,
        advanced);
  }

  Reply listMembers(const std::string& gid, bool users_only, const Query& q,
                    const std::vector<std::string>& select, bool advanced,
                    const std::string& next_base, const std::string& raw_query) {
    Paging p;
    if (auto bad = readPaging(q, p)) return *bad;
    if (auto bad = checkSelect(select, true)) return *bad;
    std::optional<Filter> f;
    if (auto bad = readFilter(q, advanced, true, f)) return *bad;
    const auto& set = members[gid];
    return page(
        set, [](const std::string& id) { return id; },
        [&](const std::string& id) {
          const auto u = users.find(id);
          if (users_only && u == users.end()) return false;
          if (!f) return true;
          return evaluate(*f, [&](const std::string& prop) -> std::optional<Json> {
            if (u != users.end()) return userProp(u->second, prop);
            if (iequals(prop, "id")) return Json(id);
            return std::nullopt;
          });
        },
        [&](const std::string& id) {
          const auto u = users.find(id);
          Json j;
          if (u != users.end()) {
            j = renderUser(u->second, select);
            if (!users_only) j["@odata.type"] = "#microsoft.graph.user";
          } else {
            j = renderGroup(groups.at(id), {"id", "displayName"});
            j["@odata.type"] = "#microsoft.graph.group";
          }
          return j;
        },
        p, next_base, raw_query, advanced);
  }

  std::optional<Reply> refusesMembershipChange(const GraphGroup& g) {
    const bool dynamic =
        std::any_of(g.group_types.begin(), g.group_types.end(),
                    [](const std::string& t) { return iequals(t, "DynamicMembership"); });
    const bool unified = std::any_of(g.group_types.begin(), g.group_types.end(),
                                     [](const std::string& t) { return iequals(t, "Unified"); });
    if (dynamic)  // documented as impossible; the message is the fake's own
      return error(400, "Request_BadRequest",
                   "Members of a group with dynamic membership cannot be changed.");
    if (g.on_premises_sync_enabled.value_or(false))
      return error(400, "Request_BadRequest",
                   "Unable to update the specified properties for on-premises mastered Directory "
                   "Sync objects or objects currently undergoing migration.");
    if (g.mail_enabled && !unified)  // groups-overview: read-only through Microsoft Graph
      return error(400, "Request_BadRequest",
                   "Cannot Update a mail-enabled security groups and or distribution list.");
    return std::nullopt;
  }

  // "https://graph.microsoft.com/v1.0/directoryObjects/{id}" (or this fake's own root) -> id.
  std::optional<std::string> boundId(const Json& v) const {
    if (!v.is_string()) return std::nullopt;
    const std::string s = v.get<std::string>();
    for (const std::string& root : {std::string(kPublicRoot), base()}) {
      const std::string prefix = root + "/directoryObjects/";
      if (s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 &&
          s.find('/', prefix.size()) == std::string::npos)
        return s.substr(prefix.size());
    }
    return std::nullopt;
  }

  // Checks binds all-or-nothing: group-post-members, "If an error condition exists in the
  // request body, no members are added".
  std::optional<Reply> checkBinds(const std::string& gid, const std::vector<std::string>& ids) {
    const auto& set = members[gid];
    for (const auto& id : ids) {
      if (lagging.count(id) != 0)
        return error(400, "Request_BadRequest",
                     "The source resource object or one of the objects being referenced do not "
                     "exist.");
      if (users.count(id) == 0 && groups.count(id) == 0) return notFound(id);
    }
    for (const auto& id : ids)
      if (set.count(id) != 0) return error(400, "Request_BadRequest", kAlreadyExist);
    return std::nullopt;
  }

  Reply patchGroup(const std::string& gid, const std::string& body) {
    const Json doc = Json::parse(body, nullptr, false);
    if (!doc.is_object())
      return error(400, "BadRequest", "Empty Payload. JSON content expected.");
    const auto bind = doc.find("members@odata.bind");
    if (bind == doc.end()) {
      Reply r;
      r.status = 204;
      return r;
    }
    if (!bind->is_array() || bind->empty())
      return error(400, "Request_BadRequest", "Invalid value for members@odata.bind.");
    if (bind->size() > kMaxBind)  // documented limit; the message is the fake's own
      return error(400, "Request_BadRequest",
                   "The request exceeds the limit of 20 members@odata.bind references.");
    if (auto refused = refusesMembershipChange(groups.at(gid))) return *refused;
    std::vector<std::string> ids;
    for (const auto& v : *bind) {
      auto id = boundId(v);
      if (!id)
        return error(400, "Request_BadRequest",
                     "Invalid URL format specified in @odata.bind for members.");
      ids.push_back(*id);
    }
    if (auto bad = checkBinds(gid, ids)) return *bad;
    for (const auto& id : ids) members[gid].insert(id);
    Reply r;
    r.status = 204;
    return r;
  }

  Reply postMemberRef(const std::string& gid, const std::string& body) {
    const Json doc = Json::parse(body, nullptr, false);
    if (!doc.is_object() || !doc.contains("@odata.id"))
      return error(400, "BadRequest", "Empty Payload. JSON content expected.");
    if (auto refused = refusesMembershipChange(groups.at(gid))) return *refused;
    auto id = boundId(doc["@odata.id"]);
    if (!id)
      return error(400, "Request_BadRequest", "Invalid URL format specified in @odata.id.");
    if (auto bad = checkBinds(gid, {*id})) return *bad;
    members[gid].insert(*id);
    Reply r;
    r.status = 204;
    return r;
  }

  Reply deleteMemberRef(const std::string& gid, const std::string& mid) {
    if (auto refused = refusesMembershipChange(groups.at(gid))) return *refused;
    auto& set = members[gid];
    if (set.erase(mid) == 0) return notFound(mid);
    Reply r;
    r.status = 204;
    return r;
  }

  Reply deleteObject(const std::string& id) {
    if (users.erase(id) == 0) return notFound(id);
    for (auto& [gid, set] : members) set.erase(id);
    deleted.push_back(id);
    Reply r;
    r.status = 204;
    return r;
  }

  // ---- $batch ----

  Reply batch(const std::string& body, std::size_t http_index) {
    const Json doc = Json::parse(body, nullptr, false);
    if (!doc.is_object() || !doc.contains("requests") || !doc["requests"].is_array())
      return error(400, "BadRequest", "Invalid batch payload format.");
    const Json& reqs = doc["requests"];
    if (reqs.empty()) return error(400, "BadRequest", "Invalid batch payload format.");
    if (reqs.size() > kMaxBatch)  // documented limit; the message is the fake's own
      return error(400, "BadRequest", "The batch contains more than 20 requests.");
    std::set<std::string> ids;
    for (const auto& r : reqs) {
      if (!r.is_object() || !r.contains("id") || !r["id"].is_string() || !r.contains("method") ||
          !r["method"].is_string() || !r.contains("url") || !r["url"].is_string())
        return error(400, "BadRequest", "Each batch request needs id, method and url.");
      if (!ids.insert(lower(r["id"].get<std::string>())).second)
        return error(400, "BadRequest", "Batch request ids must be unique.");
      if (r.contains("body")) {
        bool has_type = false;
        if (r.contains("headers") && r["headers"].is_object())
          for (auto it = r["headers"].begin(); it != r["headers"].end(); ++it)
            has_type = has_type || iequals(it.key(), "Content-Type");
        if (!has_type)
          return error(400, "BadRequest",
                       "A batch request with a body needs a Content-Type header.");
      }
    }

    std::map<std::string, int> status_of;
    Json responses = Json::array();
    for (const auto& r : reqs) {
      const std::string id = r["id"].get<std::string>();
      const std::string method = r["method"].get<std::string>();
      std::string url = r["url"].get<std::string>();
      if (!url.empty() && url.front() == '/') url.erase(0, 1);
      const auto qm = url.find('?');
      const std::string path =
          std::string(kVersion) + "/" + percentDecode(url.substr(0, qm), false);
      const std::string raw_query = qm == std::string::npos ? "" : url.substr(qm + 1);
      std::string consistency;
      if (r.contains("headers") && r["headers"].is_object())
        for (auto it = r["headers"].begin(); it != r["headers"].end(); ++it)
          if (iequals(it.key(), "ConsistencyLevel") && it.value().is_string())
            consistency = it.value().get<std::string>();
      const std::string sub_body = r.contains("body") ? r["body"].dump() : "";

      Reply sub;
      bool failed_dependency = false;
      if (r.contains("dependsOn") && r["dependsOn"].is_array())
        for (const auto& d : r["dependsOn"]) {
          const auto s = d.is_string() ? status_of.find(d.get<std::string>()) : status_of.end();
          failed_dependency = failed_dependency || s == status_of.end() || s->second >= 400;
        }
      if (failed_dependency) {
        sub = error(424, "FailedDependency", "A request this one depends on failed.");
      } else if (batch_throttle_left > 0) {
        --batch_throttle_left;
        sub = throttled(batch_throttle_retry);
      } else {
        sub = route(method, path, raw_query, consistency, sub_body,
                    origin() + path);
      }
      status_of[id] = sub.status;
      record(method, path, raw_query, sub_body, consistency, sub.status, true, http_index);

      Json item = {{"id", id}, {"status", sub.status}};
      Json headers = Json::object();
      for (const auto& [k, v] : sub.headers) headers[k] = v;
      if (!sub.body.is_null()) headers["Content-Type"] = kGraphContentType;
      item["headers"] = headers;
      if (!sub.body.is_null()) item["body"] = sub.body;
      responses.push_back(std::move(item));
    }
    // json-batching: "Individual responses might appear in a different order than the
    // requests". Reversed, so a client that correlates by position fails.
    std::reverse(responses.begin(), responses.end());
    Reply out;
    out.body = {{"responses", std::move(responses)}};
    return out;
  }

  void record(const std::string& method, const std::string& path, const std::string& query,
              const std::string& body, const std::string& consistency, int status, bool in_batch,
              std::size_t http_index) {
    if (!opt.record_requests) return;
    log.push_back({method, path, query, body, consistency, status, in_batch, http_index});
  }

  // ---- HTTP entry points ----

  void write(const Reply& r, httplib::Response& res) {
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    if (!r.body.is_null()) res.set_content(r.body.dump(), kGraphContentType);
  }

  void graph(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    const std::size_t index = http_requests++;
    const auto qm = req.target.find('?');
    const std::string raw_query = qm == std::string::npos ? "" : req.target.substr(qm + 1);
    const std::string consistency = req.get_header_value("ConsistencyLevel");
    Reply r;
    const std::string auth = req.get_header_value("Authorization");
    const bool bearer = auth.size() > 7 && auth.compare(0, 7, "Bearer ") == 0;
    if (always_401 || !bearer || tokens.count(auth.substr(7)) == 0) {
      r = error(401, "InvalidAuthenticationToken",
                bearer ? "Access token validation failure." : "Access token is empty.");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"\", error=\"invalid_token\"");
    } else if (throttle_left > 0) {
      --throttle_left;
      r = throttled(throttle_retry);
    } else if (fail_left > 0) {
      --fail_left;
      r = error(fail_status, fail_status == 504 ? "GatewayTimeout" : "ServiceUnavailable",
                "Injected failure.");
      if (fail_retry) r.headers.emplace_back("Retry-After", std::to_string(*fail_retry));
    } else if (req.method == "POST" && req.path == std::string(kVersion) + "/$batch") {
      r = batch(req.body, index);
    } else {
      r = route(req.method, req.path, raw_query, consistency, req.body, origin() + req.path);
    }
    record(req.method, req.path, raw_query, req.body, consistency, r.status, false, index);
    write(r, res);
  }

  void token(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    ++token_requests;
    auto fail = [&](int status, const std::string& code, const std::string& description) {
      Json j = {{"error", code},
                {"error_description", description},
                {"error_codes", Json::array()},
                {"timestamp", "2026-11-25 00:00:00Z"}};
      res.status = status;
      res.set_content(j.dump(), "application/json; charset=utf-8");
    };
    const auto segments = splitPath(req.path);
    if (segments.empty() || segments[0] != opt.tenant)
      return fail(400, "invalid_request",
                  "AADSTS90002: Tenant '" + (segments.empty() ? "" : segments[0]) +
                      "' not found.");
    const Query form = parseQuery(req.body);
    if (param(form, "grant_type").value_or("") != "client_credentials")
      return fail(400, "unsupported_grant_type",
                  "AADSTS70003: The app requested an unsupported grant type.");
    std::string id = param(form, "client_id").value_or("");
    std::string secret = param(form, "client_secret").value_or("");
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Basic ", 0) == 0) {
      const std::string decoded = base64Decode(auth.substr(6));
      const auto colon = decoded.find(':');
      id = percentDecode(decoded.substr(0, colon), true);
      secret = colon == std::string::npos ? "" : percentDecode(decoded.substr(colon + 1), true);
    }
    if (id != opt.client_id)
      return fail(400, "unauthorized_client",
                  "AADSTS700016: Application with identifier '" + id +
                      "' was not found in the directory.");
    if (secret != opt.client_secret)
      return fail(401, "invalid_client",
                  "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                  "in the request is the client secret value, not the client secret ID.");
    const std::string scope = param(form, "scope").value_or("");
    if (scope.size() < 9 || scope.compare(scope.size() - 9, 9, "/.default") != 0)
      return fail(400, "invalid_scope",
                  "AADSTS1002012: The provided value for scope " + scope +
                      " is not valid. Client credential flows must have a scope value with "
                      "/.default suffixed to the resource identifier.");
    const std::string t = "fake-access-token-" + std::to_string(++token_seq);
    tokens.insert(t);
    Json j = {{"token_type", "Bearer"},
              {"expires_in", opt.expires_in},
              {"ext_expires_in", opt.expires_in},
              {"access_token", t}};
    res.status = 200;
    res.set_content(j.dump(), "application/json; charset=utf-8");
  }

  void dispatch(const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind(std::string(kVersion) + "/", 0) == 0) return graph(req, res);
    const auto seg = splitPath(req.path);
    if (req.method == "POST" && seg.size() == 4 && seg[1] == "oauth2" && seg[2] == "v2.0" &&
        seg[3] == "token")
      return token(req, res);
    res.status = 404;
    res.set_content("not served by the Graph fake", "text/plain");
  }
};

GraphFake::GraphFake(GraphFakeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    impl_->dispatch(req, res);
  };
  impl_->server.Get(".*", handler);
  impl_->server.Post(".*", handler);
  impl_->server.Patch(".*", handler);
  impl_->server.Put(".*", handler);
  impl_->server.Delete(".*", handler);
  impl_->server.set_keep_alive_max_count(1'000'000);
  impl_->server.set_tcp_nodelay(true);  // no Nagle delay between header and body writes
}

GraphFake::~GraphFake() { stop(); }

void GraphFake::start() {
  impl_->port = impl_->server.bind_to_any_port("127.0.0.1");
  if (impl_->port <= 0) throw std::runtime_error("cannot bind 127.0.0.1:0");
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!impl_->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("Graph fake did not start");
    std::this_thread::yield();
  }
}

void GraphFake::stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

std::string GraphFake::origin() const { return impl_->origin(); }
std::string GraphFake::baseUrl() const { return impl_->base(); }
std::string GraphFake::tokenUrl() const {
  return impl_->origin() + "/" + impl_->opt.tenant + "/oauth2/v2.0/token";
}
const GraphFakeOptions& GraphFake::options() const { return impl_->opt; }

void GraphFake::addUser(GraphUser user) {
  std::lock_guard lock(impl_->mu);
  const std::string id = user.id;
  impl_->users[id] = std::move(user);
}

void GraphFake::addGroup(GraphGroup group) {
  std::lock_guard lock(impl_->mu);
  const std::string id = group.id;
  impl_->members[id];
  impl_->groups[id] = std::move(group);
}

bool GraphFake::addMember(const std::string& group_id, const std::string& member_id) {
  std::lock_guard lock(impl_->mu);
  if (impl_->groups.count(group_id) == 0) return false;
  if (impl_->users.count(member_id) == 0 && impl_->groups.count(member_id) == 0) return false;
  impl_->members[group_id].insert(member_id);
  return true;
}

bool GraphFake::isMember(const std::string& group_id, const std::string& member_id) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->members.find(group_id);
  return it != impl_->members.end() && it->second.count(member_id) != 0;
}

std::vector<std::string> GraphFake::memberIds(const std::string& group_id) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->members.find(group_id);
  if (it == impl_->members.end()) return {};
  return {it->second.begin(), it->second.end()};
}

bool GraphFake::userExists(const std::string& user_id) const {
  std::lock_guard lock(impl_->mu);
  return impl_->users.count(user_id) != 0;
}

void GraphFake::throttleRequests(int count, std::optional<long> retry_after_s) {
  std::lock_guard lock(impl_->mu);
  impl_->throttle_left = count;
  impl_->throttle_retry = retry_after_s;
}

void GraphFake::throttleBatchItems(int count, std::optional<long> retry_after_s) {
  std::lock_guard lock(impl_->mu);
  impl_->batch_throttle_left = count;
  impl_->batch_throttle_retry = retry_after_s;
}

void GraphFake::failRequests(int count, int status, std::optional<long> retry_after_s) {
  std::lock_guard lock(impl_->mu);
  impl_->fail_left = count;
  impl_->fail_status = status;
  impl_->fail_retry = retry_after_s;
}

void GraphFake::failPage(int page, int status) {
  std::lock_guard lock(impl_->mu);
  impl_->fail_page = page;
  impl_->fail_page_status = status;
}

void GraphFake::notYetReplicated(const std::string& object_id) {
  std::lock_guard lock(impl_->mu);
  impl_->lagging.insert(object_id);
}

void GraphFake::setAlwaysUnauthorized(bool on) {
  std::lock_guard lock(impl_->mu);
  impl_->always_401 = on;
}

void GraphFake::revokeTokens() {
  std::lock_guard lock(impl_->mu);
  impl_->tokens.clear();
}

std::vector<GraphLoggedRequest> GraphFake::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->log;
}

std::size_t GraphFake::httpRequestCount() const {
  std::lock_guard lock(impl_->mu);
  return impl_->http_requests;
}

std::size_t GraphFake::tokenRequestCount() const {
  std::lock_guard lock(impl_->mu);
  return impl_->token_requests;
}

std::size_t GraphFake::tokensIssued() const {
  std::lock_guard lock(impl_->mu);
  return impl_->token_seq;
}

std::vector<std::string> GraphFake::deletedObjects() const {
  std::lock_guard lock(impl_->mu);
  return impl_->deleted;
}

std::size_t GraphFake::unsafeDeleteCount() const {
  std::lock_guard lock(impl_->mu);
  return impl_->unsafe_deletes;
}

void GraphFake::clearLog() {
  std::lock_guard lock(impl_->mu);
  impl_->log.clear();
}

}  // namespace certgate::testing
