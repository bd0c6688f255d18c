// The hosted token API fake: see token_api_fake.hpp for the shape it follows.
#include "fakes/token_api/token_api_fake.hpp"

#include <httplib.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace certgate::testing::token_api {
namespace {

using Json = nlohmann::json;

constexpr const char* kJson = "application/json";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string randomHex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("token api fake: RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string isoTime(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "YYYY-MM-DDTHH:MM:SSZ" (what the fake accepts).
std::optional<std::int64_t> parseIso(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

void apiError(httplib::Response& res, int status, const std::string& code,
              const std::string& message) {
  res.status = status;
  res.set_content(Json{{"error", {{"code", code}, {"message", message}}}}.dump(), kJson);
}

struct Rule {
  std::string method;
  std::string path;
  int nth = 0;
  int count = 0;
  int status = 0;
  int retry_after = -1;
  std::string body;

  bool matches(const std::string& m, const std::string& p, int n) const {
    const bool path_ok = !path.empty() && path.back() == '*'
                             ? p.compare(0, path.size() - 1, path, 0, path.size() - 1) == 0
                             : p == path;
    return m == method && path_ok && n >= nth && n < nth + count;
  }
};

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

struct TokenApiFake::State {
  TokenApiFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  std::vector<FakeToken> tokens;  // live, oldest first
  std::vector<std::string> revoked_ids;
  std::map<std::pair<std::string, std::string>, int> counts;
  std::vector<Rule> fail_rules;
  std::vector<Rule> drop_rules;
  std::vector<LoggedRequest> log;

  std::int64_t now() const { return opt.clock(); }

  Json view(const FakeToken& t) const {
    Json j = {{"id", t.id},
              {"name", t.name},
              {"gateway_id", t.gateway_id},
              {"scopes", t.scopes},
              {"expires_at", t.expires_at ? Json(isoTime(*t.expires_at)) : Json()},
              {"created_at", isoTime(t.created_at)},
              {"active", !t.disabled && !(t.expires_at && *t.expires_at <= now())},
              {"metadata", t.metadata}};
    return j;
  }

  void add(FakeToken t) {
    if (t.id.empty()) t.id = "tok_" + randomHex(8);
    if (t.created_at == 0) t.created_at = now();
    t.secret.clear();  // shown once, never kept
    tokens.push_back(std::move(t));
  }

  FakeToken* find(const std::string& id) {
    for (auto& t : tokens)
      if (t.id == id) return &t;
    return nullptr;
  }

  void create(const httplib::Request& req, httplib::Response& res) {
    const Json body = Json::parse(req.body, nullptr, false);
    if (!body.is_object()) return apiError(res, 400, "invalid_request", "the body is not a JSON object");
    const auto str = [&](const char* k) -> std::optional<std::string> {
      const auto it = body.find(k);
      if (it == body.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    const auto gateway = str("gateway_id");
    if (!gateway || gateway->empty())
      return apiError(res, 400, "invalid_request", "gateway_id is required");
    const auto name = str("name");
    if (!name || name->empty()) return apiError(res, 400, "invalid_request", "name is required");
    FakeToken t;
    t.gateway_id = *gateway;
    t.name = *name;
    if (body.contains("scopes")) {
      if (!body["scopes"].is_array())
        return apiError(res, 400, "invalid_request", "scopes must be an array of strings");
      for (const auto& s : body["scopes"]) {
        if (!s.is_string())
          return apiError(res, 400, "invalid_request", "scopes must be an array of strings");
        t.scopes.push_back(s.get<std::string>());
      }
    }
    if (body.contains("expires_at") && !body["expires_at"].is_null()) {
      const auto e = str("expires_at");
      const auto at = e ? parseIso(*e) : std::nullopt;
      if (!at) return apiError(res, 400, "invalid_request", "expires_at must be an ISO 8601 time");
      if (*at <= now()) return apiError(res, 400, "invalid_request", "expires_at is in the past");
      t.expires_at = at;
    }
    if (body.contains("metadata")) {
      if (!body["metadata"].is_object())
        return apiError(res, 400, "invalid_request", "metadata must be an object");
      for (const auto& [k, v] : body["metadata"].items())
        t.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    for (const auto& other : tokens)
      if (other.name == t.name)
        return apiError(res, 409, "conflict", "a token named '" + t.name + "' already exists");
    t.id = "tok_" + randomHex(8);
    const std::string secret = "gk_" + randomHex(20);
    t.created_at = now();
    Json out = view(t);
    out["token"] = secret;
    tokens.push_back(std::move(t));
    res.status = 201;
    res.set_content(out.dump(), kJson);
  }

  void list(const httplib::Request& req, httplib::Response& res) {
    int limit = opt.page_size;
    if (req.has_param("limit")) {
      try {
        limit = std::stoi(req.get_param_value("limit"));
      } catch (const std::exception&) {
        limit = 0;
      }
      if (limit < 1 || limit > 100)
        return apiError(res, 400, "invalid_request", "limit must be from 1 to 100");
    }
    std::vector<const FakeToken*> matching;
    for (const auto& t : tokens) {
      if (opt.honour_name_filter && req.has_param("name") && t.name != req.get_param_value("name"))
        continue;
      if (req.has_param("gateway_id") && t.gateway_id != req.get_param_value("gateway_id"))
        continue;
      matching.push_back(&t);
    }
    std::size_t start = 0;
    if (req.has_param("cursor")) {
      const std::string cursor = req.get_param_value("cursor");
      const auto it = std::find_if(matching.begin(), matching.end(),
                                   [&](const FakeToken* t) { return "c_" + t->id == cursor; });
      if (it == matching.end()) return apiError(res, 400, "invalid_request", "unknown cursor");
      start = static_cast<std::size_t>(it - matching.begin()) + 1;
    }
    Json items = Json::array();
    std::size_t i = start;
    for (; i < matching.size() && items.size() < static_cast<std::size_t>(limit); ++i)
      items.push_back(view(*matching[i]));
    const Json next = i < matching.size() ? Json("c_" + matching[i - 1]->id) : Json();
    if (opt.link_header && !next.is_null()) {
      std::string query;
      for (const auto& [k, v] : req.params) {
        if (k == "cursor") continue;
        query += (query.empty() ? "" : "&") + k + "=" + httplib::detail::encode_query_param(v);
      }
      query += (query.empty() ? "" : "&") + std::string("cursor=") + next.get<std::string>();
      res.set_header("Link", "<" + base + "/v1/tokens?" + query + ">; rel=\"next\"");
    }
    res.status = 200;
    res.set_content(Json{{"items", items}, {"next_cursor", next}}.dump(), kJson);
  }
};

TokenApiFake::TokenApiFake(TokenApiFakeOptions options) : state_(std::make_unique<State>()) {
  State* s = state_.get();
  s->opt = std::move(options);
  if (!s->opt.clock) {
    s->opt.clock = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  auto handler = [s](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(s->mu);
    LoggedRequest entry;
    entry.method = req.method;
    entry.path = req.path;
    entry.target = req.target;
    entry.params.insert(req.params.begin(), req.params.end());
    entry.headers.assign(req.headers.begin(), req.headers.end());
    entry.body = req.body;

    const int n = ++s->counts[{req.method, req.path}];
    bool failed = false;
    for (const auto& rule : s->fail_rules) {
      if (!rule.matches(req.method, req.path, n)) continue;
      if (rule.retry_after >= 0) res.set_header("Retry-After", std::to_string(rule.retry_after));
      if (rule.body.empty()) {
        apiError(res, rule.status, rule.status == 429 ? "rate_limited" : "internal",
                 rule.status == 429 ? "too many requests" : "injected fault");
      } else {
        res.status = rule.status;
        res.set_content(rule.body, kJson);
      }
      failed = true;
      break;
    }
    if (!failed) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      const std::string id = req.path.size() > 11 && req.path.rfind("/v1/tokens/", 0) == 0
                                 ? req.path.substr(11)
                                 : std::string();
      if (auth.compare(0, prefix.size(), prefix) != 0 ||
          auth.substr(prefix.size()) != s->opt.admin_token) {
        apiError(res, 401, "unauthorized", "invalid or missing API token");
      } else if (req.method == "POST" && req.path == "/v1/tokens") {
        s->create(req, res);
      } else if (req.method == "GET" && req.path == "/v1/tokens") {
        s->list(req, res);
      } else if (req.method == "GET" && !id.empty()) {
        if (const FakeToken* t = s->find(id)) {
          res.status = 200;
          res.set_content(s->view(*t).dump(), kJson);
        } else {
          apiError(res, 404, "not_found", "no token " + id);
        }
      } else if (req.method == "DELETE" && !id.empty()) {
        const auto it = std::find_if(s->tokens.begin(), s->tokens.end(),
                                     [&](const FakeToken& t) { return t.id == id; });
        if (it == s->tokens.end()) {
          apiError(res, 404, "not_found", "no token " + id);
        } else {
          s->revoked_ids.push_back(id);
          s->tokens.erase(it);
          res.status = 204;
        }
      } else {
        apiError(res, 404, "not_found", "no route " + req.method + " " + req.path);
      }
    }

    bool drop = false;
    for (const auto& rule : s->drop_rules)
      if (rule.matches(req.method, req.path, n)) drop = true;
    entry.status = drop ? 0 : res.status;
    s->log.push_back(std::move(entry));
    if (drop) {
      // Headers go out, the body never does: the connection closes mid-response.
      const std::size_t length = std::max<std::size_t>(res.body.size(), 1);
      res.body.clear();
      res.set_content_provider(length, kJson,
                               [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
    }
  };
  s->server.Get(".*", handler);
  s->server.Post(".*", handler);
  s->server.Put(".*", handler);
  s->server.Patch(".*", handler);
  s->server.Delete(".*", handler);
}

TokenApiFake::~TokenApiFake() {
  stop();
}

void TokenApiFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("token api fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("token api fake: server did not start");
    std::this_thread::yield();
  }
}

void TokenApiFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string TokenApiFake::url() const {
  return state_->base;
}

const std::string& TokenApiFake::adminToken() const {
  return state_->opt.admin_token;
}

std::string TokenApiFake::addToken(FakeToken token) {
  std::lock_guard lock(state_->mu);
  state_->add(std::move(token));
  return state_->tokens.back().id;
}

std::optional<FakeToken> TokenApiFake::token(const std::string& id) const {
  std::lock_guard lock(state_->mu);
  for (const auto& t : state_->tokens)
    if (t.id == id) return t;
  return std::nullopt;
}

std::vector<FakeToken> TokenApiFake::tokens() const {
  std::lock_guard lock(state_->mu);
  return state_->tokens;
}

bool TokenApiFake::revoked(const std::string& id) const {
  std::lock_guard lock(state_->mu);
  return std::find(state_->revoked_ids.begin(), state_->revoked_ids.end(), id) !=
         state_->revoked_ids.end();
}

void TokenApiFake::revoke(const std::string& id) {
  std::lock_guard lock(state_->mu);
  auto& v = state_->tokens;
  const auto it = std::find_if(v.begin(), v.end(), [&](const FakeToken& t) { return t.id == id; });
  if (it == v.end()) return;
  state_->revoked_ids.push_back(id);
  v.erase(it);
}

void TokenApiFake::failRequests(const std::string& method, const std::string& path, int nth,
                                int count, int status, int retry_after, std::string body) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back({method, path, nth, count, status, retry_after, std::move(body)});
}

void TokenApiFake::dropResponses(const std::string& method, const std::string& path, int nth,
                                 int count) {
  std::lock_guard lock(state_->mu);
  state_->drop_rules.push_back({method, path, nth, count, 0, -1, {}});
}

std::vector<LoggedRequest> TokenApiFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}

std::vector<LoggedRequest> TokenApiFake::requests(const std::string& method,
                                                  const std::string& path) const {
  std::lock_guard lock(state_->mu);
  std::vector<LoggedRequest> out;
  for (const auto& r : state_->log)
    if (r.method == method && r.path == path) out.push_back(r);
  return out;
}

void TokenApiFake::clearRequests() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}

}  // namespace certgate::testing::token_api
