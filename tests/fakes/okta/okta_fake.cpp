// The Okta fake: see okta_fake.hpp for the documents it follows.
#include "fakes/okta/okta_fake.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "connectors/common/jwt.hpp"

namespace certgate::testing::okta {
namespace {

using Json = nlohmann::json;

// With a charset parameter cpp-httplib does not compress the body (its brotli at the default
// quality would cost more than everything else a benchmark measures).
constexpr const char* kJson = "application/json; charset=utf-8";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
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

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded
std::multimap<std::string, std::string> parseForm(std::string_view body) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out += ' ';
      } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
                 hexValue(s[i + 2]) >= 0) {
        out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::multimap<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    const auto pair = body.substr(start, end - start);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      out.emplace(decode(pair.substr(0, eq)),
                  eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
  return out;
}

std::string randomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string makeId(std::string_view prefix, std::uint64_t n) {
  std::string digits = std::to_string(n);
  return std::string(prefix) + std::string(17 - std::min<std::size_t>(17, digits.size()), '0') + digits;
}

std::string httpDate(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string isoTime(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

// ---- Okta search / filter expressions (a SCIM-style subset) ------------------------------------

struct Expr {
  enum class Kind { Compare, And, Or, Not } kind = Kind::Compare;
  std::string attr;
  std::string op;
  std::string value;
  std::unique_ptr<Expr> left;
  std::unique_ptr<Expr> right;
};

class ExprParser {
 public:
  explicit ExprParser(std::string_view s) : s_(s) {}

  std::unique_ptr<Expr> parse() {
    auto e = parseOr();
    skip();
    if (!e || i_ != s_.size()) return nullptr;
    return e;
  }

 private:
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool keyword(std::string_view word) {
    skip();
    if (s_.size() - i_ < word.size() || !iequals(s_.substr(i_, word.size()), word)) return false;
    const std::size_t after = i_ + word.size();
    if (after < s_.size() && !std::isspace(static_cast<unsigned char>(s_[after])) && s_[after] != '(')
      return false;
    i_ = after;
    return true;
  }
  std::unique_ptr<Expr> binary(Expr::Kind kind, std::unique_ptr<Expr> l, std::unique_ptr<Expr> r) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->left = std::move(l);
    e->right = std::move(r);
    return e;
  }
  std::unique_ptr<Expr> parseOr() {
    auto l = parseAnd();
    while (l && keyword("or")) {
      auto r = parseAnd();
      if (!r) return nullptr;
      l = binary(Expr::Kind::Or, std::move(l), std::move(r));
    }
    return l;
  }
  std::unique_ptr<Expr> parseAnd() {
    auto l = parseUnary();
    while (l && keyword("and")) {
      auto r = parseUnary();
      if (!r) return nullptr;
      l = binary(Expr::Kind::And, std::move(l), std::move(r));
    }
    return l;
  }
  std::unique_ptr<Expr> parseUnary() {
    if (keyword("not")) {
      auto inner = parseUnary();
      if (!inner) return nullptr;
      return binary(Expr::Kind::Not, std::move(inner), nullptr);
    }
    skip();
    if (i_ < s_.size() && s_[i_] == '(') {
      ++i_;
      auto inner = parseOr();
      skip();
      if (!inner || i_ >= s_.size() || s_[i_] != ')') return nullptr;
      ++i_;
      return inner;
    }
    return parseCompare();
  }
  std::string word() {
    skip();
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' ||
                              s_[i_] == '_' || s_[i_] == '-' || s_[i_] == ':'))
      ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  std::unique_ptr<Expr> parseCompare() {
    auto e = std::make_unique<Expr>();
    e->attr = word();
    e->op = lower(word());
    static const std::set<std::string> kOps = {"eq", "ne", "sw", "co", "ew", "pr",
                                               "gt", "ge", "lt", "le"};
    if (e->attr.empty() || kOps.count(e->op) == 0) return nullptr;
    if (e->op == "pr") return e;
    skip();
    if (i_ < s_.size() && s_[i_] == '"') {
      ++i_;
      std::string v;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        v += s_[i_++];
      }
      if (i_ >= s_.size()) return nullptr;
      ++i_;
      e->value = std::move(v);
    } else {
      e->value = word();  // true, false, numbers
      if (e->value.empty()) return nullptr;
    }
    return e;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

using Lookup = std::function<std::optional<std::string>(const std::string&)>;

bool evaluate(const Expr& e, const Lookup& lookup, bool case_sensitive) {
  switch (e.kind) {
    case Expr::Kind::And: return evaluate(*e.left, lookup, case_sensitive) && evaluate(*e.right, lookup, case_sensitive);
    case Expr::Kind::Or: return evaluate(*e.left, lookup, case_sensitive) || evaluate(*e.right, lookup, case_sensitive);
    case Expr::Kind::Not: return !evaluate(*e.left, lookup, case_sensitive);
    case Expr::Kind::Compare: break;
  }
  const auto actual = lookup(e.attr);
  if (e.op == "pr") return actual.has_value() && !actual->empty();
  if (!actual) return e.op == "ne";
  const std::string a = case_sensitive ? *actual : lower(*actual);
  const std::string v = case_sensitive ? e.value : lower(e.value);
  if (e.op == "eq") return a == v;
  if (e.op == "ne") return a != v;
  if (e.op == "sw") return a.compare(0, v.size(), v) == 0;
  if (e.op == "ew") return a.size() >= v.size() && a.compare(a.size() - v.size(), v.size(), v) == 0;
  if (e.op == "co") return a.find(v) != std::string::npos;
  if (e.op == "gt") return a > v;
  if (e.op == "ge") return a >= v;
  if (e.op == "lt") return a < v;
  if (e.op == "le") return a <= v;
  return false;
}

// ---- records -----------------------------------------------------------------------------------

struct UserRec {
  FakeUser u;
  std::string json;
};

struct GroupRec {
  FakeGroup g;
  std::string json;
  std::set<std::string> members;
};

struct BucketState {
  long long limit = 0;
  std::int64_t reset = 0;  // end of the current window (fake clock, without skew)
  long long used = 0;
  long long min_remaining = -1;
};

struct FailRule {
  std::string method;
  std::string path;
  int nth = 0;
  int count = 0;
  int status = 500;
};

struct TokenRec {
  std::int64_t expires = 0;
  std::vector<std::string> scopes;
};

std::string userJson(const FakeUser& u, std::int64_t created) {
  Json profile = {{"firstName", u.first_name}, {"lastName", u.last_name}, {"login", u.login},
                  {"email", u.email},          {"mobilePhone", nullptr}, {"secondEmail", nullptr}};
  if (!u.employee_number.empty()) profile["employeeNumber"] = u.employee_number;
  if (!u.user_type.empty()) profile["userType"] = u.user_type;
  for (const auto& [k, v] : u.extra) profile[k] = v;
  const Json doc = {{"id", u.id},
                    {"status", u.status},
                    {"created", isoTime(created)},
                    {"activated", isoTime(created)},
                    {"statusChanged", isoTime(created)},
                    {"lastLogin", nullptr},
                    {"lastUpdated", isoTime(created)},
                    {"passwordChanged", nullptr},
                    {"type", {{"id", "otyfakedefault0000000"}}},
                    {"profile", profile}};
  return doc.dump();
}

std::string groupJson(const FakeGroup& g, std::int64_t created) {
  const Json doc = {{"id", g.id},
                    {"created", isoTime(created)},
                    {"lastUpdated", isoTime(created)},
                    {"lastMembershipUpdated", isoTime(created)},
                    {"objectClass", {"okta:user_group"}},
                    {"type", g.type},
                    {"profile", {{"name", g.name}, {"description", g.description}}}};
  return doc.dump();
}

std::optional<std::string> userAttr(const FakeUser& u, const std::string& attr) {
  if (attr == "id") return u.id;
  if (attr == "status") return u.status;
  if (attr.compare(0, 8, "profile.") != 0) return std::nullopt;
  const std::string name = attr.substr(8);
  if (name == "login") return u.login;
  if (name == "email") return u.email;
  if (name == "firstName") return u.first_name;
  if (name == "lastName") return u.last_name;
  if (name == "employeeNumber") return u.employee_number.empty() ? std::nullopt : std::optional(u.employee_number);
  if (name == "userType") return u.user_type.empty() ? std::nullopt : std::optional(u.user_type);
  for (const auto& [k, v] : u.extra)
    if (k == name) return v;
  return std::nullopt;
}

std::optional<std::string> groupAttr(const FakeGroup& g, const std::string& attr) {
  if (attr == "id") return g.id;
  if (attr == "type") return g.type;
  if (attr == "profile.name") return g.name;
  if (attr == "profile.description") return g.description;
  return std::nullopt;
}

}  // namespace

std::string LoggedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string LoggedRequest::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

struct OktaFake::State {
  OktaFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  std::map<std::string, UserRec> users;                       // by id (creation order)
  std::unordered_map<std::string, std::string> login_to_id;   // lower-cased login
  std::map<std::string, GroupRec> groups;
  std::map<std::string, BucketState, std::less<>> buckets;
  std::map<std::pair<std::string, std::string>, int> path_counts;
  std::vector<FailRule> fail_rules;
  bool always401 = false;
  std::unordered_map<std::string, TokenRec> tokens;
  std::unordered_set<std::string> used_jti;
  std::vector<std::string> claims_log;
  std::vector<LoggedRequest> log;
  std::uint64_t request_count = 0;
  std::uint64_t tokens_issued = 0;
  long long limited = 0;
  std::uint64_t next_user = 1;
  std::uint64_t next_group = 1;
  // attribute -> lower-cased value -> user ids (sorted), for `attr eq "value"` searches
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<std::string>>> index;

  std::int64_t now() const { return opt.clock(); }

  BucketState& bucket(std::string_view name) {
    auto it = buckets.find(name);
    if (it == buckets.end()) {
      BucketState b;
      b.limit = opt.default_rate_limit;
      it = buckets.emplace(std::string(name), b).first;
    }
    return it->second;
  }

  void rollWindow(BucketState& b, std::int64_t t) const {
    if (t >= b.reset) {
      b.reset = t + opt.window_seconds;
      b.used = 0;
    }
  }

  void handle(const httplib::Request& req, httplib::Response& res);
  void route(const httplib::Request& req, httplib::Response& res, const std::string& route_name,
             const std::vector<std::string>& seg);
  bool authorize(const httplib::Request& req, httplib::Response& res,
                 const std::vector<std::string>& any_scope);
  void token(const httplib::Request& req, httplib::Response& res);
  void listGroups(const httplib::Request& req, httplib::Response& res);
  void listMembers(const httplib::Request& req, httplib::Response& res, const std::string& gid);
  void listUsers(const httplib::Request& req, httplib::Response& res);
  void writeMember(httplib::Response& res, const std::string& method, const std::string& gid,
                   const std::string& uid);

  void setPage(httplib::Response& res, const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& query, std::size_t limit,
               const std::vector<const std::string*>& items, const std::string& next_after) const {
    std::string body = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) body += ',';
      body += *items[i];
    }
    body += ']';
    std::string q;
    for (const auto& [k, v] : query) q += k + "=" + urlEncode(v) + "&";
    const std::string& origin = opt.link_base.empty() ? base : opt.link_base;
    res.set_header("Link", "<" + origin + path + "?" + q + "limit=" + std::to_string(limit) +
                               ">; rel=\"self\"");
    if (!next_after.empty())
      res.set_header("Link", "<" + origin + path + "?" + q + "after=" + urlEncode(next_after) +
                                 "&limit=" + std::to_string(limit) + ">; rel=\"next\"");
    res.status = 200;
    res.set_content(body, kJson);
  }
};

namespace {

void oktaError(httplib::Response& res, int status, const std::string& code,
               const std::string& summary, const std::vector<std::string>& causes = {}) {
  Json cause_list = Json::array();
  for (const auto& c : causes) cause_list.push_back({{"errorSummary", c}});
  const Json body = {{"errorCode", code},
                     {"errorSummary", summary},
                     {"errorLink", code},
                     {"errorId", "oae" + randomHex(11)},
                     {"errorCauses", cause_list}};
  res.status = status;
  res.set_content(body.dump(), kJson);
}

void oauthError(httplib::Response& res, int status, const std::string& error,
                const std::string& description) {
  res.status = status;
  res.set_content(Json{{"error", error}, {"error_description", description}}.dump(),
                  kJson);
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::optional<std::size_t> limitParam(const httplib::Request& req, std::size_t def,
                                      std::size_t max) {
  if (!req.has_param("limit")) return def;
  const std::string s = req.get_param_value("limit");
  std::size_t n = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || p != s.data() + s.size() || n == 0) return std::nullopt;
  return std::min(n, max);
}

}  // namespace

void OktaFake::State::handle(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard lock(mu);
  const std::int64_t t = now();
  ++request_count;

  // Which endpoint, and which rate-limit bucket it draws on.
  const std::vector<std::string> seg = segments(req.path);
  std::string route_name;
  std::string_view bucket_name;
  const std::string& m = req.method;
  if (seg.size() == 3 && seg[0] == "oauth2" && seg[1] == "v1" && seg[2] == "token" && m == "POST") {
    route_name = "token";
    bucket_name = kBucketToken;
  } else if (seg.size() >= 3 && seg[0] == "api" && seg[1] == "v1" && seg[2] == "groups") {
    if (seg.size() == 3 && m == "GET") {
      route_name = "groups";
      bucket_name = kBucketGroups;
    } else if (seg.size() == 4 && m == "GET") {
      route_name = "group";
      bucket_name = kBucketGroup;
    } else if (seg.size() == 5 && seg[4] == "users" && m == "GET") {
      route_name = "members";
      bucket_name = kBucketMembers;
    } else if (seg.size() == 6 && seg[4] == "users" && (m == "PUT" || m == "DELETE")) {
      route_name = "member";
      bucket_name = kBucketMembers;
    }
  } else if (seg.size() >= 3 && seg[0] == "api" && seg[1] == "v1" && seg[2] == "users") {
    if (seg.size() == 3 && m == "GET") {
      route_name = "users";
      bucket_name = kBucketUsers;
    } else if (seg.size() == 4 && m == "GET") {
      route_name = "user";
      bucket_name = kBucketUser;
    }
  }

  LoggedRequest entry;
  entry.at = t;
  entry.bucket = std::string(bucket_name);

  [&] {
    if (route_name.empty()) {
      oktaError(res, 404, "E0000022", "The endpoint does not support the provided HTTP method");
      return;
    }
    // Rate limit: one-minute windows per bucket, 429 once the window's calls are spent.
    BucketState& b = bucket(bucket_name);
    if (b.limit > 0) {
      rollWindow(b, t);
      res.set_header("X-Rate-Limit-Limit", std::to_string(b.limit));
      res.set_header("X-Rate-Limit-Reset", std::to_string(b.reset + opt.clock_skew));
      if (b.used >= b.limit) {
        res.set_header("X-Rate-Limit-Remaining", "0");
        entry.remaining = 0;
        ++limited;
        oktaError(res, 429, "E0000047", "API call exceeded rate limit due to too many requests.");
        return;
      }
      ++b.used;
      const long long remaining = b.limit - b.used;
      entry.remaining = remaining;
      b.min_remaining = b.min_remaining < 0 ? remaining : std::min(b.min_remaining, remaining);
      res.set_header("X-Rate-Limit-Remaining", std::to_string(remaining));
    }
    // Injected faults.
    const int n = ++path_counts[{m, req.path}];
    for (const auto& rule : fail_rules) {
      if (rule.method == m && rule.path == req.path && n >= rule.nth && n < rule.nth + rule.count) {
        if (rule.status >= 500) {
          oktaError(res, rule.status, "E0000009", "Internal Server Error");
        } else if (rule.status == 429) {
          if (res.has_header("X-Rate-Limit-Remaining")) {
            res.headers.erase("X-Rate-Limit-Remaining");
            res.set_header("X-Rate-Limit-Remaining", "0");
          }
          ++limited;
          oktaError(res, 429, "E0000047", "API call exceeded rate limit due to too many requests.");
        } else if (rule.status == 401) {
          oktaError(res, 401, "E0000011", "Invalid token provided");
        } else
          oktaError(res, rule.status, "E0000001", "Api validation failed: injected fault");
        return;
      }
    }
    route(req, res, route_name, seg);
  }();

  res.set_header("Date", httpDate(t + opt.clock_skew));
  res.set_header("X-Okta-Request-Id", randomHex(10));
  if (opt.record_requests) {
    entry.method = req.method;
    entry.path = req.path;
    entry.target = req.target;
    entry.params.insert(req.params.begin(), req.params.end());
    if (route_name == "token") {
      for (auto& kv : parseForm(req.body)) entry.params.insert(std::move(kv));
    }
    entry.headers.assign(req.headers.begin(), req.headers.end());
    entry.body = req.body;
    entry.status = res.status;
    log.push_back(std::move(entry));
  }
}

bool OktaFake::State::authorize(const httplib::Request& req, httplib::Response& res,
                                const std::vector<std::string>& any_scope) {
  const std::string auth = req.get_header_value("Authorization");
  if (always401) {
    oktaError(res, 401, "E0000011", "Invalid token provided");
    return false;
  }
  if (auth.compare(0, 5, "SSWS ") == 0) {
    if (!opt.ssws_token.empty() && auth.substr(5) == opt.ssws_token) return true;
    oktaError(res, 401, "E0000011", "Invalid token provided");
    return false;
  }
  if (auth.compare(0, 7, "Bearer ") == 0) {
    const auto it = tokens.find(auth.substr(7));
    if (it == tokens.end() || it->second.expires <= now()) {
      res.set_header("WWW-Authenticate",
                     "Bearer authorization_uri=\"" + base + "/oauth2/v1/authorize\", "
                     "realm=\"" + base + "\", scope=\"\", error=\"invalid_token\", "
                     "error_description=\"The token has expired.\", resource=\"" + req.path + "\"");
      oktaError(res, 401, "E0000011", "Invalid token provided");
      return false;
    }
    for (const auto& need : any_scope) {
      if (std::find(it->second.scopes.begin(), it->second.scopes.end(), need) !=
          it->second.scopes.end())
        return true;
    }
    res.set_header("WWW-Authenticate", "Bearer error=\"insufficient_scope\"");
    oktaError(res, 403, "E0000006", "You do not have permission to perform the requested action");
    return false;
  }
  oktaError(res, 401, "E0000011", "Invalid token provided");
  return false;
}

void OktaFake::State::route(const httplib::Request& req, httplib::Response& res,
                            const std::string& route_name, const std::vector<std::string>& seg) {
  if (route_name == "token") return token(req, res);
  if (route_name == "groups" || route_name == "group" || route_name == "members") {
    if (!authorize(req, res, {"okta.groups.read", "okta.groups.manage"})) return;
  } else if (route_name == "member") {
    if (!authorize(req, res, {"okta.groups.manage"})) return;
  } else if (!authorize(req, res, {"okta.users.read", "okta.users.manage"})) {
    return;
  }
  if (route_name == "groups") return listGroups(req, res);
  if (route_name == "group") {
    const auto it = groups.find(seg[3]);
    if (it == groups.end())
      return oktaError(res, 404, "E0000007",
                       "Not found: Resource not found: " + seg[3] + " (UserGroup)");
    res.status = 200;
    return res.set_content(it->second.json, kJson);
  }
  if (route_name == "members") return listMembers(req, res, seg[3]);
  if (route_name == "member") return writeMember(res, req.method, seg[3], seg[5]);
  if (route_name == "users") return listUsers(req, res);
  if (route_name == "user") {
    auto it = users.find(seg[3]);
    if (it == users.end()) {
      const auto by_login = login_to_id.find(lower(seg[3]));
      if (by_login != login_to_id.end()) it = users.find(by_login->second);
    }
    if (it == users.end())
      return oktaError(res, 404, "E0000007", "Not found: Resource not found: " + seg[3] + " (User)");
    res.status = 200;
    return res.set_content(it->second.json, kJson);
  }
}

void OktaFake::State::token(const httplib::Request& req, httplib::Response& res) {
  const auto form = parseForm(req.body);
  auto get = [&](const std::string& k) {
    const auto it = form.find(k);
    return it == form.end() ? std::string() : it->second;
  };
  if (get("grant_type") != "client_credentials")
    return oauthError(res, 400, "unsupported_grant_type",
                      "The authorization grant type is not supported by the authorization server.");
  if (get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
      get("client_assertion").empty())
    return oauthError(res, 401, "invalid_client",
                      "Client authentication failed. Either the client or the client credentials "
                      "are invalid.");
  if (opt.require_dpop && !req.has_header("DPoP"))
    return oauthError(res, 400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.");
  if (opt.public_key_pem.empty())
    return oauthError(res, 401, "invalid_client", "The client_assertion signature is invalid.");
  auto verified = connectors::jwt::verifyRs256(get("client_assertion"), opt.public_key_pem);
  if (!verified)
    return oauthError(res, 401, "invalid_client", "The client_assertion signature is invalid.");
  const Json header = Json::parse(verified->header_json, nullptr, false);
  const Json claims = Json::parse(verified->claims_json, nullptr, false);
  auto claim = [&](const char* k) {
    return claims.contains(k) && claims[k].is_string() ? claims[k].get<std::string>() : std::string();
  };
  auto number = [&](const char* k) -> std::optional<std::int64_t> {
    if (!claims.contains(k) || !claims[k].is_number_integer()) return std::nullopt;
    return claims[k].get<std::int64_t>();
  };
  if (!opt.key_id.empty() && header.contains("kid") &&
      (!header["kid"].is_string() || header["kid"].get<std::string>() != opt.key_id))
    return oauthError(res, 401, "invalid_client", "The client_assertion JWT kid is invalid.");
  if (claim("iss") != opt.client_id || claim("sub") != opt.client_id)
    return oauthError(res, 401, "invalid_client",
                      "The iss and sub claims of the client_assertion must be the client_id.");
  if (form.count("client_id") > 0 && get("client_id") != opt.client_id)
    return oauthError(res, 401, "invalid_client", "The client_id does not match the client_assertion.");
  if (claim("aud") != base + "/oauth2/v1/token")
    return oauthError(res, 401, "invalid_client",
                      "The audience claim for client_assertion must be the endpoint invoked for "
                      "the request.");
  const auto exp = number("exp");
  const std::int64_t t = now();
  if (!exp || *exp <= t)
    return oauthError(res, 401, "invalid_client", "The client_assertion token is expired.");
  if (*exp - t > 3600)
    return oauthError(res, 401, "invalid_client",
                      "The client_assertion token has an expiration too far into the future.");
  if (const auto iat = number("iat"); iat && *iat > t + 60)
    return oauthError(res, 401, "invalid_client", "The client_assertion token was issued in the future.");
  const std::string jti = claim("jti");
  if (!jti.empty() && !used_jti.insert(jti).second)
    return oauthError(res, 401, "invalid_client", "The client_assertion token has already been used.");

  std::vector<std::string> scopes;
  std::string not_granted;
  {
    const std::string scope = get("scope");
    std::size_t start = 0;
    while (start < scope.size()) {
      auto end = scope.find(' ', start);
      if (end == std::string::npos) end = scope.size();
      std::string s = scope.substr(start, end - start);
      if (!s.empty()) {
        if (std::find(opt.granted_scopes.begin(), opt.granted_scopes.end(), s) == opt.granted_scopes.end())
          not_granted += (not_granted.empty() ? "" : " ") + s;
        scopes.push_back(std::move(s));
      }
      start = end + 1;
    }
  }
  if (scopes.empty())
    return oauthError(res, 400, "invalid_scope", "The authorization server requires a scope.");
  if (!not_granted.empty())
    return oauthError(res, 400, "invalid_scope",
                      "The following scopes were requested, but not granted: " + not_granted);

  claims_log.push_back(verified->claims_json);
  ++tokens_issued;
  const std::string access_token = "fakeAT." + randomHex(24);
  std::string scope_text;
  for (const auto& s : scopes) scope_text += (scope_text.empty() ? "" : " ") + s;
  tokens[access_token] = TokenRec{t + opt.access_token_lifetime, scopes};
  res.status = 200;
  res.set_content(Json{{"token_type", "Bearer"},
                       {"expires_in", opt.access_token_lifetime},
                       {"access_token", access_token},
                       {"scope", scope_text}}
                      .dump(),
                  kJson);
}

void OktaFake::State::listGroups(const httplib::Request& req, httplib::Response& res) {
  const auto limit = limitParam(req, 10000, 10000);
  if (!limit) return oktaError(res, 400, "E0000001", "Api validation failed: limit");
  std::unique_ptr<Expr> expr;
  bool case_sensitive = false;
  std::vector<std::pair<std::string, std::string>> query;
  if (req.has_param("search") || req.has_param("filter")) {
    case_sensitive = !req.has_param("search");
    const std::string key = req.has_param("search") ? "search" : "filter";
    query.emplace_back(key, req.get_param_value(key));
    expr = ExprParser(req.get_param_value(key)).parse();
    if (!expr) return oktaError(res, 400, "E0000031", "Invalid search criteria.");
  }
  const std::string q = req.has_param("q") ? lower(req.get_param_value("q")) : std::string();
  if (req.has_param("q")) query.emplace_back("q", req.get_param_value("q"));
  const std::string after = req.get_param_value("after");
  std::vector<const std::string*> items;
  std::string last;
  bool more = false;
  for (auto it = after.empty() ? groups.begin() : groups.upper_bound(after); it != groups.end(); ++it) {
    const FakeGroup& g = it->second.g;
    if (!q.empty() && lower(g.name).compare(0, q.size(), q) != 0) continue;
    if (expr && !evaluate(*expr, [&](const std::string& a) { return groupAttr(g, a); }, case_sensitive))
      continue;
    if (items.size() == *limit) {
      more = true;
      break;
    }
    items.push_back(&it->second.json);
    last = it->first;
  }
  setPage(res, "/api/v1/groups", query, *limit, items, more ? last : std::string());
}

void OktaFake::State::listMembers(const httplib::Request& req, httplib::Response& res,
                                  const std::string& gid) {
  const auto git = groups.find(gid);
  if (git == groups.end())
    return oktaError(res, 404, "E0000007", "Not found: Resource not found: " + gid + " (UserGroup)");
  const auto limit = limitParam(req, 1000, 10000);
  if (!limit) return oktaError(res, 400, "E0000001", "Api validation failed: limit");
  const std::string after = req.get_param_value("after");
  const auto& members = git->second.members;
  std::vector<const std::string*> items;
  std::string last;
  bool more = false;
  for (auto it = after.empty() ? members.begin() : members.upper_bound(after); it != members.end(); ++it) {
    if (items.size() == *limit) {
      more = true;
      break;
    }
    const auto u = users.find(*it);
    if (u == users.end()) continue;
    items.push_back(&u->second.json);
    last = *it;
  }
  setPage(res, "/api/v1/groups/" + gid + "/users", {}, *limit, items, more ? last : std::string());
}

void OktaFake::State::listUsers(const httplib::Request& req, httplib::Response& res) {
  const auto limit = limitParam(req, 200, 200);
  if (!limit) return oktaError(res, 400, "E0000001", "Api validation failed: limit");
  std::unique_ptr<Expr> expr;
  bool case_sensitive = false;
  bool deprovisioned_too = false;
  std::vector<std::pair<std::string, std::string>> query;
  if (req.has_param("search") || req.has_param("filter")) {
    const bool search = req.has_param("search");
    case_sensitive = !search;     // filter compares values case-sensitively
    deprovisioned_too = search;   // only search returns DEPROVISIONED users
    const std::string key = search ? "search" : "filter";
    query.emplace_back(key, req.get_param_value(key));
    expr = ExprParser(req.get_param_value(key)).parse();
    if (!expr) return oktaError(res, 400, "E0000031", "Invalid search criteria.");
  }
  const std::string q = req.has_param("q") ? lower(req.get_param_value("q")) : std::string();
  if (req.has_param("q")) query.emplace_back("q", req.get_param_value("q"));
  const std::string after = req.get_param_value("after");

  std::vector<const std::string*> items;
  std::string last;
  bool more = false;
  auto consider = [&](const UserRec& rec) {  // false: the page is full and one more exists
    const FakeUser& u = rec.u;
    if (u.status == "DEPROVISIONED" && !deprovisioned_too) return true;
    if (!q.empty() && lower(u.first_name).compare(0, q.size(), q) != 0 &&
        lower(u.last_name).compare(0, q.size(), q) != 0 && lower(u.email).compare(0, q.size(), q) != 0)
      return true;
    if (expr && !evaluate(*expr, [&](const std::string& a) { return userAttr(u, a); }, case_sensitive))
      return true;
    if (items.size() == *limit) {
      more = true;
      return false;
    }
    items.push_back(&rec.json);
    last = u.id;
    return true;
  };

  if (expr && expr->kind == Expr::Kind::Compare && expr->op == "eq" && !case_sensitive) {
    // Indexed `attr eq "value"`, as a benchmark resolving many people does.
    auto& by_value = index[expr->attr];
    if (by_value.empty()) {
      for (const auto& [id, rec] : users) {
        if (const auto v = userAttr(rec.u, expr->attr)) by_value[lower(*v)].push_back(id);
      }
      by_value.emplace("", std::vector<std::string>{});  // marks the index as built
    }
    const auto hit = by_value.find(lower(expr->value));
    if (hit != by_value.end()) {
      const auto& ids = hit->second;
      for (auto it = after.empty() ? ids.begin() : std::upper_bound(ids.begin(), ids.end(), after);
           it != ids.end(); ++it) {
        if (!consider(users.at(*it))) break;
      }
    }
  } else {
    for (auto it = after.empty() ? users.begin() : users.upper_bound(after); it != users.end(); ++it)
      if (!consider(it->second)) break;
  }
  setPage(res, "/api/v1/users", query, *limit, items, more ? last : std::string());
}

void OktaFake::State::writeMember(httplib::Response& res, const std::string& method,
                                  const std::string& gid, const std::string& uid) {
  const auto git = groups.find(gid);
  if (git == groups.end())
    return oktaError(res, 404, "E0000007", "Not found: Resource not found: " + gid + " (UserGroup)");
  if (users.find(uid) == users.end())
    return oktaError(res, 404, "E0000007", "Not found: Resource not found: " + uid + " (User)");
  if (git->second.g.type != "OKTA_GROUP")
    return oktaError(res, 403, "E0000006", "You do not have permission to perform the requested action");
  if (method == "PUT") {
    git->second.members.insert(uid);
  } else {
    git->second.members.erase(uid);
  }
  res.status = 204;
}

// ---- OktaFake ----------------------------------------------------------------------------------

OktaFake::OktaFake(OktaFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  if (!state_->opt.clock) {
    state_->opt.clock = [] {
      return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
    };
  }
  State* s = state_.get();
  auto handler = [s](const httplib::Request& req, httplib::Response& res) { s->handle(req, res); };
  s->server.Get(".*", handler);
  s->server.Put(".*", handler);
  s->server.Delete(".*", handler);
  s->server.Post(".*", handler);
  s->server.set_keep_alive_max_count(1'000'000);
  s->server.set_keep_alive_timeout(30);
}

OktaFake::~OktaFake() { stop(); }

void OktaFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("okta fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("okta fake: server did not start");
    std::this_thread::yield();
  }
}

void OktaFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string OktaFake::url() const { return state_->base; }
std::string OktaFake::tokenUrl() const { return state_->base + "/oauth2/v1/token"; }

std::string OktaFake::addUser(FakeUser user) {
  std::lock_guard lock(state_->mu);
  if (user.id.empty()) user.id = makeId("00u", state_->next_user++);
  if (user.login.empty()) user.login = user.email.empty() ? user.id + "@example.com" : user.email;
  const std::string id = user.id;
  state_->login_to_id[lower(user.login)] = id;
  UserRec rec{std::move(user), {}};
  rec.json = userJson(rec.u, state_->now());
  state_->users[id] = std::move(rec);
  state_->index.clear();
  return id;
}

std::string OktaFake::addGroup(FakeGroup group) {
  std::lock_guard lock(state_->mu);
  if (group.id.empty()) group.id = makeId("00g", state_->next_group++);
  const std::string id = group.id;
  GroupRec rec{std::move(group), {}, {}};
  rec.json = groupJson(rec.g, state_->now());
  state_->groups[id] = std::move(rec);
  return id;
}

void OktaFake::addMember(const std::string& group_id, const std::string& user_id) {
  std::lock_guard lock(state_->mu);
  state_->groups.at(group_id).members.insert(user_id);
}

bool OktaFake::isMember(const std::string& group_id, const std::string& user_id) const {
  std::lock_guard lock(state_->mu);
  const auto it = state_->groups.find(group_id);
  return it != state_->groups.end() && it->second.members.count(user_id) > 0;
}

std::vector<std::string> OktaFake::members(const std::string& group_id) const {
  std::lock_guard lock(state_->mu);
  const auto& m = state_->groups.at(group_id).members;
  return {m.begin(), m.end()};
}

std::size_t OktaFake::memberCount(const std::string& group_id) const {
  std::lock_guard lock(state_->mu);
  return state_->groups.at(group_id).members.size();
}

void OktaFake::setPublicKey(std::string pem) {
  std::lock_guard lock(state_->mu);
  state_->opt.public_key_pem = std::move(pem);
}

void OktaFake::setRateLimit(std::string_view bucket, long long limit) {
  std::lock_guard lock(state_->mu);
  state_->bucket(bucket).limit = limit;
}

void OktaFake::consume(std::string_view bucket, long long calls) {
  std::lock_guard lock(state_->mu);
  BucketState& b = state_->bucket(bucket);
  state_->rollWindow(b, state_->now());
  b.used = std::min(b.limit, b.used + calls);
}

long long OktaFake::minRemaining(std::string_view bucket) const {
  std::lock_guard lock(state_->mu);
  const auto it = state_->buckets.find(bucket);
  return it == state_->buckets.end() ? -1 : it->second.min_remaining;
}

long long OktaFake::rateLimitedCount() const {
  std::lock_guard lock(state_->mu);
  return state_->limited;
}

void OktaFake::failRequests(const std::string& method, const std::string& path, int nth, int count,
                            int status) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back(FailRule{method, path, nth, count, status});
}

void OktaFake::setAlways401(bool on) {
  std::lock_guard lock(state_->mu);
  state_->always401 = on;
}

void OktaFake::revokeTokens() {
  std::lock_guard lock(state_->mu);
  state_->tokens.clear();
}

std::vector<LoggedRequest> OktaFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}

void OktaFake::clearRequests() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}

std::uint64_t OktaFake::requestCount() const {
  std::lock_guard lock(state_->mu);
  return state_->request_count;
}

std::uint64_t OktaFake::tokensIssued() const {
  std::lock_guard lock(state_->mu);
  return state_->tokens_issued;
}

std::vector<std::string> OktaFake::acceptedAssertionClaims() const {
  std::lock_guard lock(state_->mu);
  return state_->claims_log;
}

RsaKeyPair generateRsaKeyPair(int bits) {
  EVP_PKEY* raw = EVP_RSA_gen(static_cast<unsigned int>(bits));
  if (raw == nullptr) throw std::runtime_error("okta fake: RSA key generation failed");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("okta fake: cannot write the private key");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  RsaKeyPair pair;
  pair.private_pem.assign(data, static_cast<std::size_t>(n));
  auto pub = connectors::jwt::publicKeyPem(pair.private_pem);
  if (!pub) throw std::runtime_error("okta fake: cannot derive the public key");
  pair.public_pem = std::move(*pub);
  return pair;
}

}  // namespace certgate::testing::okta
