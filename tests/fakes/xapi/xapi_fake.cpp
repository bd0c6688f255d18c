#include "fakes/xapi/xapi_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "connectors/common/jwt.hpp"
#include "core/time.hpp"

namespace certgate::testing::xapi {

namespace {

using Json = nlohmann::json;

constexpr const char* kVersion = "1.0.3";
// With a charset parameter cpp-httplib does not compress the body.
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kVerbs[] = {"http://adlnet.gov/expapi/verbs/completed",
                                  "http://adlnet.gov/expapi/verbs/passed",
                                  "http://adlnet.gov/expapi/verbs/failed",
                                  "http://adlnet.gov/expapi/verbs/scored"};
constexpr std::string_view kVoided = "http://adlnet.gov/expapi/verbs/voided";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

std::optional<std::int64_t> parseMicros(std::string_view text) {
  const auto seconds = core::parseIso(text);
  if (!seconds) return std::nullopt;
  std::int64_t us = seconds->time_since_epoch().count() * 1'000'000;
  const auto t = text.find_first_of("Tt");
  if (t != std::string_view::npos && t + 9 < text.size() && text[t + 3] == ':' &&
      text[t + 6] == ':' && (text[t + 9] == '.' || text[t + 9] == ',')) {
    std::int64_t scale = 100'000;
    for (std::size_t p = t + 10; p < text.size() && std::isdigit(static_cast<unsigned char>(text[p])); ++p) {
      us += (text[p] - '0') * scale;
      scale /= 10;
    }
  }
  return us;
}

std::string base64Decode(std::string s) {
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return connectors::jwt::base64UrlDecode(s).value_or("");
}

struct Key {
  std::int64_t stored = 0;
  std::uint64_t seq = 0;
  bool operator<(const Key& o) const { return stored != o.stored ? stored < o.stored : seq < o.seq; }
  bool operator==(const Key& o) const { return stored == o.stored && seq == o.seq; }
};

struct Entry {
  std::string id;
  std::string verb;
  std::string activity;      // object id when the object is an Activity
  std::string registration;
  std::string target;        // StatementRef target id, lower-cased
  bool voided = false;
  std::string body;
};

struct Query {
  std::string verb, activity, registration;
  std::optional<std::int64_t> since, until;
  std::size_t limit = 0;
  bool ascending = false;
  std::optional<Key> after;
  int hop = 0;  // distinguishes the `more` link of an empty page from the page it repeats

  Json toJson() const {
    Json j = {{"v", verb}, {"a", activity}, {"r", registration}, {"l", limit}, {"asc", ascending},
              {"h", hop}};
    if (since) j["s"] = *since;
    if (until) j["u"] = *until;
    if (after) j["k"] = {after->stored, after->seq};
    return j;
  }
  static std::optional<Query> fromJson(const Json& j) {
    try {
      Query q;
      q.verb = j.at("v").get<std::string>();
      q.activity = j.at("a").get<std::string>();
      q.registration = j.at("r").get<std::string>();
      q.limit = j.at("l").get<std::size_t>();
      q.ascending = j.at("asc").get<bool>();
      q.hop = j.at("h").get<int>();
      if (j.contains("s")) q.since = j.at("s").get<std::int64_t>();
      if (j.contains("u")) q.until = j.at("u").get<std::int64_t>();
      if (j.contains("k")) q.after = Key{j.at("k").at(0).get<std::int64_t>(), j.at("k").at(1).get<std::uint64_t>()};
      return q;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
};

struct FailRule {
  int from = 0, to = 0, status = 500;
  long retry_after = -1;
};

}  // namespace

std::string isoMicros(std::int64_t us) {
  std::int64_t s = us / 1'000'000, frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --s;
  }
  std::string iso = core::formatIso(core::Instant{core::Seconds{s}});
  char buf[8];
  std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
  iso.insert(iso.size() - 1, buf);
  return iso;
}

std::string LoggedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string LoggedRequest::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::string XapiFake::generatedId(std::int64_t i) {
  char buf[40];
  const auto u = static_cast<unsigned long long>(i);
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-4%03llx-8%03llx-%012llx", (u * 2654435761ULL) & 0xffffffffULL,
                (u >> 8) & 0xffffULL, u & 0xfffULL, (u >> 12) & 0xfffULL, u);
  return buf;
}

struct XapiFake::State {
  XapiFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  std::map<Key, Entry> entries;
  std::unordered_map<std::string, Key> by_id;
  std::uint64_t next_seq = 1;
  std::optional<std::int64_t> consistent;
  bool omit_consistent = false;
  std::vector<FailRule> fail_rules;
  std::unordered_set<int> empty_pages, truncated_pages;
  bool always401 = false;
  std::unordered_set<std::string> tokens;
  std::uint64_t tokens_issued = 0;
  std::uint64_t statement_requests = 0;
  std::vector<LoggedRequest> log;

  void handle(const httplib::Request& req, httplib::Response& res);
  void error(const httplib::Request& req, httplib::Response& res, int status,
             const std::string& message) const;
  bool authorized(const httplib::Request& req) const;
  void token(const httplib::Request& req, httplib::Response& res);
  void statements(const httplib::Request& req, httplib::Response& res, int n);
  void single(const httplib::Request& req, httplib::Response& res);
  void page(const httplib::Request& req, httplib::Response& res, Query q, int n);
  void generatedPage(httplib::Response& res, const Query& q, std::string& body_out,
                     std::string& more_out) const;
  bool matches(const Entry& e, const Query& q, int depth) const;
  std::string generatedStatement(std::int64_t i) const;
  std::string moreLink(const Query& q) const {
    return opt.base_path + "/statements/more/" + connectors::jwt::base64UrlEncode(q.toJson().dump());
  }
};

void XapiFake::State::error(const httplib::Request& req, httplib::Response& res, int status,
                            const std::string& message) const {
  res.status = status;
  const std::string accept = req.get_header_value("Accept");
  if (accept.find("json") != std::string::npos) {
    res.set_content(Json{{"error", true}, {"code", status}, {"message", message}}.dump(), kJson);
  } else {
    res.set_content(message, "text/plain; charset=utf-8");
  }
  if (status == 401) res.set_header("WWW-Authenticate", "Basic realm=\"xAPI\"");
}

bool XapiFake::State::authorized(const httplib::Request& req) const {
  if (always401) return false;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Basic ", 0) == 0) {
    if (opt.username.empty()) return false;
    return base64Decode(auth.substr(6)) == opt.username + ":" + opt.password;
  }
  if (auth.rfind("Bearer ", 0) == 0) return tokens.count(auth.substr(7)) > 0;
  return false;
}

void XapiFake::State::token(const httplib::Request& req, httplib::Response& res) {
  std::string id, secret;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Basic ", 0) == 0) {
    const std::string pair = base64Decode(auth.substr(6));
    const auto colon = pair.find(':');
    if (colon != std::string::npos) {
      id = httplib::detail::decode_url(pair.substr(0, colon), true);
      secret = httplib::detail::decode_url(pair.substr(colon + 1), true);
    }
  } else {
    id = req.get_param_value("client_id");
    secret = req.get_param_value("client_secret");
  }
  res.status = 400;
  if (req.get_param_value("grant_type") != "client_credentials") {
    res.set_content(R"({"error":"unsupported_grant_type"})", kJson);
    return;
  }
  if (opt.client_id.empty() || id != opt.client_id || secret != opt.client_secret) {
    res.status = 401;
    res.set_content(R"({"error":"invalid_client"})", kJson);
    return;
  }
  const std::string t = "xapi-token-" + std::to_string(++tokens_issued);
  tokens.insert(t);
  res.status = 200;
  res.set_content(Json{{"access_token", t}, {"token_type", "Bearer"}, {"expires_in", 3600}}.dump(),
                  kJson);
}

bool XapiFake::State::matches(const Entry& e, const Query& q, int depth) const {
  // Filter Conditions for StatementRefs: a targeting statement matches when its target does.
  if (!e.target.empty() && depth < 10) {
    const auto it = by_id.find(e.target);
    if (it != by_id.end() && matches(entries.at(it->second), q, depth + 1)) return true;
  }
  if (!q.verb.empty() && e.verb != q.verb) return false;
  if (!q.activity.empty() && e.activity != q.activity) return false;
  if (!q.registration.empty() && e.registration != q.registration) return false;
  return true;
}

std::string XapiFake::State::generatedStatement(std::int64_t i) const {
  const std::int64_t stored = opt.generated_start_us + i * 1000;
  const int v = static_cast<int>(i % 4);
  const long long person = (i * 7919) % opt.generated_people;
  const long long item = (i / 4) % opt.generated_items;
  std::string result;
  switch (v) {
    case 0: result = R"({"completion":true,"duration":"PT20M"})"; break;
    case 1: result = R"({"score":{"scaled":0.85,"raw":85,"min":0,"max":100},"success":true,"completion":true})"; break;
    case 2: result = R"({"score":{"scaled":0.4,"raw":40,"min":0,"max":100},"success":false,"completion":true})"; break;
    default: result = R"({"score":{"raw":)" + std::to_string(i % 101) + R"(,"min":0,"max":100}})"; break;
  }
  std::string s;
  s.reserve(700);
  s += R"({"id":")" + XapiFake::generatedId(i) + R"(","actor":{"objectType":"Agent","name":"Person )" +
       std::to_string(person) + R"(","mbox":"mailto:person)" + std::to_string(person) +
       R"(@example.org"},"verb":{"id":")" + kVerbs[v] + R"(","display":{"en-US":")" +
       std::string(kVerbs[v]).substr(31) +
       R"("}},"object":{"objectType":"Activity","id":"https://lms.example.com/xapi/activities/course-)" +
       std::to_string(item) + R"(","definition":{"name":{"en-US":"Course )" + std::to_string(item) +
       R"("}}},"result":)" + result + R"(,"timestamp":")" + isoMicros(stored - 60'000'000) +
       R"(","stored":")" + isoMicros(stored) +
       R"(","authority":{"objectType":"Agent","account":{"homePage":"https://lrs.example.com","name":"lms"}},"version":"1.0.0"})";
  return s;
}

void XapiFake::State::generatedPage(httplib::Response& res, const Query& q, std::string& body,
                                    std::string& more) const {
  (void)res;
  const std::int64_t n = opt.generated;
  int residue = -1;
  if (!q.verb.empty()) {
    for (int v = 0; v < 4; ++v)
      if (q.verb == kVerbs[v]) residue = v;
    if (residue < 0) return;  // no generated statement has that verb
  }
  std::int64_t i = 0;
  if (q.since && *q.since >= opt.generated_start_us) i = (*q.since - opt.generated_start_us) / 1000 + 1;
  if (q.after) i = std::max<std::int64_t>(i, static_cast<std::int64_t>(q.after->seq) + 1);
  std::int64_t last = n - 1;
  if (q.until) last = std::min(last, (*q.until - opt.generated_start_us) / 1000);
  const std::int64_t step = residue < 0 ? 1 : 4;
  if (residue >= 0) i += (residue - i % 4 + 4) % 4;
  std::size_t count = 0;
  std::int64_t last_sent = -1;
  for (; i <= last && count < q.limit; i += step, ++count) {
    if (count > 0) body += ',';
    body += generatedStatement(i);
    last_sent = i;
  }
  if (count == q.limit && i <= last) {
    Query next = q;
    next.after = Key{opt.generated_start_us + last_sent * 1000, static_cast<std::uint64_t>(last_sent)};
    more = moreLink(next);
  }
}

void XapiFake::State::page(const httplib::Request& req, httplib::Response& res, Query q, int n) {
  std::string body, more;
  if (empty_pages.count(n) > 0) {
    Query same = q;
    same.hop = q.hop + 1;
    more = moreLink(same);
  } else if (opt.generated > 0) {
    if (!q.ascending) return error(req, res, 400, "this fake serves generated statements ascending only");
    generatedPage(res, q, body, more);
  } else {
    std::vector<const Entry*> picked;
    std::optional<Key> last_key;
    bool has_more = false;
    auto consider = [&](const Key& k, const Entry& e) {
      if (e.voided) return true;
      if (q.since && k.stored <= *q.since) return true;
      if (q.until && k.stored > *q.until) return true;
      if (q.after && (q.ascending ? !(*q.after < k) : !(k < *q.after))) return true;
      if (!matches(e, q, 0)) return true;
      if (picked.size() == q.limit) {
        has_more = true;
        return false;
      }
      picked.push_back(&e);
      last_key = k;
      return true;
    };
    if (q.ascending) {
      for (const auto& [k, e] : entries)
        if (!consider(k, e)) break;
    } else {
      for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if (!consider(it->first, it->second)) break;
    }
    for (std::size_t i = 0; i < picked.size(); ++i) {
      if (i > 0) body += ',';
      body += picked[i]->body;
    }
    if (has_more) {
      Query next = q;
      next.after = last_key;
      more = moreLink(next);
    }
  }
  std::string out = R"({"statements":[)" + body + R"(],"more":")" + more + R"("})";
  if (truncated_pages.count(n) > 0) out = out.substr(0, out.size() / 2);
  res.status = 200;
  res.set_content(out, kJson);
}

void XapiFake::State::single(const httplib::Request& req, httplib::Response& res) {
  const bool voided = req.has_param("voidedStatementId");
  const std::string id = lower(req.get_param_value(voided ? "voidedStatementId" : "statementId"));
  const auto it = by_id.find(id);
  if (it == by_id.end() || entries.at(it->second).voided != voided)
    return error(req, res, 404, "no statement " + id);
  res.status = 200;
  res.set_content(entries.at(it->second).body, kJson);
}

void XapiFake::State::statements(const httplib::Request& req, httplib::Response& res, int n) {
  static const std::unordered_set<std::string> kParams = {
      "statementId", "voidedStatementId", "agent",   "verb",   "activity",
      "registration", "related_activities", "related_agents", "since", "until",
      "limit",        "format",            "attachments",    "ascending"};
  for (const auto& [k, v] : req.params)
    if (kParams.count(k) == 0) return error(req, res, 400, "unknown parameter '" + k + "'");
  if (req.has_param("statementId") || req.has_param("voidedStatementId")) {
    for (const auto& [k, v] : req.params)
      if (k != "statementId" && k != "voidedStatementId" && k != "format" && k != "attachments")
        return error(req, res, 400, "statementId and voidedStatementId take no filter ('" + k + "')");
    if (req.has_param("statementId") && req.has_param("voidedStatementId"))
      return error(req, res, 400, "statementId and voidedStatementId together");
    return single(req, res);
  }
  Query q;
  q.verb = req.get_param_value("verb");
  q.activity = req.get_param_value("activity");
  q.registration = req.get_param_value("registration");
  for (const char* t : {"since", "until"}) {
    if (!req.has_param(t)) continue;
    const auto v = parseMicros(req.get_param_value(t));
    if (!v) return error(req, res, 400, std::string(t) + " is not an ISO 8601 timestamp");
    (std::string(t) == "since" ? q.since : q.until) = v;
  }
  std::size_t limit = 0;
  if (req.has_param("limit")) {
    const std::string l = req.get_param_value("limit");
    if (l.empty() || l.size() > 9 || !std::all_of(l.begin(), l.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return error(req, res, 400, "limit must be a nonnegative integer");
    limit = std::stoul(l);
  }
  q.limit = (limit == 0 || limit > opt.max_limit) ? opt.max_limit : limit;
  if (req.has_param("ascending")) {
    const std::string a = req.get_param_value("ascending");
    if (a != "true" && a != "false") return error(req, res, 400, "ascending must be true or false");
    q.ascending = a == "true";
  }
  page(req, res, std::move(q), n);
}

void XapiFake::State::handle(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard lock(mu);
  res.set_header("X-Experience-API-Version", kVersion);
  auto finish = [&] {
    if (!opt.record_requests) return;
    LoggedRequest r;
    r.method = req.method;
    r.path = req.path;
    r.target = req.target;
    for (const auto& [k, v] : req.params) r.params.emplace(k, v);
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
    r.status = res.status;
    log.push_back(std::move(r));
  };
  if (req.path == "/oauth/token" && req.method == "POST" && !opt.client_id.empty()) {
    token(req, res);
    return finish();
  }
  const std::string statements_path = opt.base_path + "/statements";
  const std::string more_prefix = statements_path + "/more/";
  const bool is_more = req.path.rfind(more_prefix, 0) == 0;
  if (req.path != statements_path && !is_more) {
    error(req, res, 404, "no resource " + req.path);
    return finish();
  }
  if (req.method != "GET" && req.method != "HEAD") {
    error(req, res, 405, "this fake serves GET statements only");
    return finish();
  }
  const std::string version = req.get_header_value("X-Experience-API-Version");
  if (version.empty()) {
    error(req, res, 400, "X-Experience-API-Version header missing");
    return finish();
  }
  if (version != "1.0" && version.rfind("1.0.", 0) != 0) {
    error(req, res, 400, "X-Experience-API-Version " + version + " is not supported (1.0.x only)");
    return finish();
  }
  if (!authorized(req)) {
    error(req, res, 401, "the credentials were refused");
    return finish();
  }
  const int n = static_cast<int>(++statement_requests);
  if (!omit_consistent)
    res.set_header("X-Experience-API-Consistent-Through", isoMicros(consistent.value_or(opt.clock_us)));
  for (const auto& rule : fail_rules) {
    if (n < rule.from || n > rule.to) continue;
    if (rule.retry_after >= 0) res.set_header("Retry-After", std::to_string(rule.retry_after));
    error(req, res, rule.status,
          rule.status == 429 ? "too many requests from these credentials" : "injected failure");
    return finish();
  }
  if (is_more) {
    if (!req.params.empty()) {
      error(req, res, 400, "a more link takes no parameters");
      return finish();
    }
    const auto decoded = connectors::jwt::base64UrlDecode(req.path.substr(more_prefix.size()));
    const Json j = decoded ? Json::parse(*decoded, nullptr, false) : Json();
    auto q = Query::fromJson(j);
    if (!q) {
      error(req, res, 400, "unknown more link");
      return finish();
    }
    page(req, res, std::move(*q), n);
    return finish();
  }
  statements(req, res, n);
  finish();
}

XapiFake::XapiFake(XapiFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  State* s = state_.get();
  auto handler = [s](const httplib::Request& req, httplib::Response& res) { s->handle(req, res); };
  s->server.Get(".*", handler);
  s->server.Post(".*", handler);
  s->server.Put(".*", handler);
  s->server.Delete(".*", handler);
  s->server.set_keep_alive_max_count(1'000'000);
  s->server.set_keep_alive_timeout(30);
}

XapiFake::~XapiFake() { stop(); }

void XapiFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("xapi fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("xapi fake: server did not start");
    std::this_thread::yield();
  }
}

void XapiFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string XapiFake::url() const { return state_->base; }
std::string XapiFake::endpoint() const { return state_->base + state_->opt.base_path; }
std::string XapiFake::tokenUrl() const { return state_->base + "/oauth/token"; }

namespace {

Entry describe(const Json& st) {
  Entry e;
  auto str = [](const Json& o, const char* k) -> std::string {
    if (!o.is_object()) return {};
    const auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  e.id = lower(str(st, "id"));
  if (st.is_object()) {
    if (auto v = st.find("verb"); v != st.end()) e.verb = str(*v, "id");
    if (auto o = st.find("object"); o != st.end()) {
      const std::string type = str(*o, "objectType");
      if (type == "StatementRef") {
        e.target = lower(str(*o, "id"));
      } else if (type.empty() || type == "Activity") {
        e.activity = str(*o, "id");
      }
    }
    if (auto c = st.find("context"); c != st.end()) e.registration = str(*c, "registration");
  }
  e.body = st.dump();
  return e;
}

}  // namespace

std::string XapiFake::add(Json statement, std::optional<std::string> stored) {
  std::lock_guard lock(state_->mu);
  State& s = *state_;
  if (!statement.contains("id")) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08llx-0000-4000-8000-%012llx", 0xfa4eULL,
                  static_cast<unsigned long long>(s.next_seq));
    statement["id"] = buf;
  }
  std::int64_t stored_us = s.opt.clock_us;
  if (stored) {
    stored_us = parseMicros(*stored).value_or(stored_us);
  } else {
    s.opt.clock_us += 1000;
  }
  statement["stored"] = isoMicros(stored_us);
  if (!statement.contains("timestamp")) statement["timestamp"] = statement["stored"];
  statement["version"] = "1.0.0";
  statement["authority"] = {{"objectType", "Agent"},
                            {"account", {{"homePage", "https://lrs.example.com"}, {"name", "lms"}}}};
  Entry e = describe(statement);
  if (e.verb == kVoided && !e.target.empty())
    if (auto it = s.by_id.find(e.target); it != s.by_id.end()) s.entries.at(it->second).voided = true;
  const Key k{stored_us, s.next_seq++};
  const std::string id = e.id;
  s.by_id[id] = k;
  s.entries.emplace(k, std::move(e));
  return statement["id"].get<std::string>();
}

void XapiFake::addRaw(Json statement, const std::string& stored) {
  std::lock_guard lock(state_->mu);
  State& s = *state_;
  const std::int64_t stored_us = parseMicros(stored).value_or(s.opt.clock_us);
  Entry e = describe(statement);
  const Key k{stored_us, s.next_seq++};
  if (!e.id.empty()) s.by_id[e.id] = k;
  s.entries.emplace(k, std::move(e));
}

std::size_t XapiFake::size() const {
  std::lock_guard lock(state_->mu);
  return state_->entries.size();
}

void XapiFake::setClock(std::int64_t us) {
  std::lock_guard lock(state_->mu);
  state_->opt.clock_us = us;
}
std::int64_t XapiFake::clock() const {
  std::lock_guard lock(state_->mu);
  return state_->opt.clock_us;
}
void XapiFake::setConsistentThrough(std::optional<std::int64_t> us) {
  std::lock_guard lock(state_->mu);
  state_->consistent = us;
}
void XapiFake::omitConsistentThrough(bool omit) {
  std::lock_guard lock(state_->mu);
  state_->omit_consistent = omit;
}
void XapiFake::failRequests(int nth, int count, int status, long retry_after) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back({nth, nth + count - 1, status, retry_after});
}
void XapiFake::setAlways401(bool on) {
  std::lock_guard lock(state_->mu);
  state_->always401 = on;
}
void XapiFake::emptyPage(int nth) {
  std::lock_guard lock(state_->mu);
  state_->empty_pages.insert(nth);
}
void XapiFake::truncatePage(int nth) {
  std::lock_guard lock(state_->mu);
  state_->truncated_pages.insert(nth);
}
std::vector<LoggedRequest> XapiFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
void XapiFake::clearRequests() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}
std::uint64_t XapiFake::statementRequests() const {
  std::lock_guard lock(state_->mu);
  return state_->statement_requests;
}
std::uint64_t XapiFake::tokensIssued() const {
  std::lock_guard lock(state_->mu);
  return state_->tokens_issued;
}

}  // namespace certgate::testing::xapi
