#include "fakes/cornerstone/cornerstone_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "core/time.hpp"

namespace certgate::testing::cornerstone {

namespace {

using Json = nlohmann::json;
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kViews = "/services/api/x/odata/api/views/";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string encode(std::string_view s) {
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

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

struct Rule {
  int from = 0, to = 0, status = 0;
  long retry_after = -1;
  enum class Kind { Status, Truncate, Empty } kind = Kind::Status;
};

void odataError(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(Json{{"error", {{"errorId", "c0ffee00-0000-4000-8000-000000000001"}, {"message", message}, {"code", code}}}}.dump(),
                  kJson);
}

}  // namespace

std::string LoggedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (lower(k) == lower(name)) return v;
  return {};
}
std::string LoggedRequest::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

struct CornerstoneFake::State {
  CornerstoneFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;
  mutable std::mutex mu;
  std::vector<Json> transcript, users;
  std::vector<Rule> rules;
  std::vector<LoggedRequest> log;
  std::uint64_t view_requests = 0;
  std::uint64_t tokens = 0;
  std::vector<std::string> live;

  LoggedRequest logOf(const httplib::Request& req) const {
    LoggedRequest lr;
    lr.method = req.method;
    lr.path = req.path;
    for (const auto& [k, v] : req.params) lr.params.emplace(k, v);
    for (const auto& [k, v] : req.headers) lr.headers.emplace_back(k, v);
    lr.body = req.body;
    lr.at_ms = opt.clock_ms ? opt.clock_ms() : 0;
    return lr;
  }

  void token(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    LoggedRequest lr = logOf(req);
    const Json body = Json::parse(req.body, nullptr, false);
    auto str = [&](const char* k) {
      return body.is_object() && body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : std::string();
    };
    if (!body.is_object() || str("grantType") != "client_credentials") {
      odataError(res, 400, "400", "grantType must be client_credentials");
    } else if (str("clientId") != opt.client_id || str("clientSecret") != opt.client_secret) {
      odataError(res, 401, "401", "Invalid client credentials");
    } else {
      const std::string t = "csod-token-" + std::to_string(++tokens);
      live.push_back(t);
      res.status = 200;
      res.set_content(Json{{"access_token", t}, {"expires_in", opt.token_lifetime_s},
                           {"scope", str("scope")}, {"token_type", "Bearer"}}.dump(),
                      kJson);
    }
    lr.status = res.status;
    log.push_back(std::move(lr));
  }

  void view(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    LoggedRequest lr = logOf(req);
    const int n = static_cast<int>(++view_requests);
    auto done = [&] {
      lr.status = res.status;
      log.push_back(lr);
    };
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0 ||
        std::find(live.begin(), live.end(), auth.substr(7)) == live.end()) {
      odataError(res, 401, "401", "Unauthorized: invalid or expired token");
      return done();
    }
    std::optional<Rule> rule;
    for (const auto& r : rules)
      if (n >= r.from && n <= r.to) rule = r;
    if (rule && rule->kind == Rule::Kind::Status) {
      if (rule->retry_after >= 0) res.set_header("Retry-After", std::to_string(rule->retry_after));
      if (rule->status == 429)
        odataError(res, 429, "429", "API rate limit exceeded. Please retry after some time.");
      else
        odataError(res, rule->status, std::to_string(rule->status), "Internal server error");
      return done();
    }
    const std::string name = req.path.substr(std::string(kViews).size());
    const std::vector<Json>* rows = nullptr;
    if (name == "vw_rpt_transcript") rows = &transcript;
    if (name == "vw_rpt_user") rows = &users;
    if (rows == nullptr) {
      odataError(res, 404, "404", "Resource not found for the segment '" + name + "'");
      return done();
    }
    // $filter
    const std::string filter = req.get_param_value("$filter");
    std::function<bool(const Json&)> keep = [](const Json&) { return true; };
    if (!filter.empty()) {
      if (name == "vw_rpt_transcript" && filter.rfind("_last_touched_dt_utc ge ", 0) == 0) {
        const auto since = core::parseIso(filter.substr(24));
        if (!since) {
          odataError(res, 400, "400", "The query specified in the URI is not valid.");
          return done();
        }
        keep = [since](const Json& r) {
          const auto t = core::parseIso(r.value("_last_touched_dt_utc", ""));
          return t && *t >= *since;
        };
      } else if (name == "vw_rpt_user") {
        std::vector<std::string> ids;
        for (const auto& part : split(filter, " or ")) {
          if (part.rfind("user_id eq ", 0) != 0) {
            odataError(res, 400, "400", "The query specified in the URI is not valid.");
            return done();
          }
          ids.push_back(part.substr(11));
        }
        keep = [ids](const Json& r) {
          const std::string id = r.contains("user_id") ? r["user_id"].dump() : "";
          return std::find(ids.begin(), ids.end(), id) != ids.end();
        };
      } else {
        odataError(res, 400, "400", "The query specified in the URI is not valid.");
        return done();
      }
    }
    std::vector<std::string> select;
    if (req.has_param("$select")) select = split(req.get_param_value("$select"), ",");
    std::size_t page = opt.default_page_size;
    const std::string prefer = req.get_header_value("Prefer");
    if (const auto at = prefer.find("odata.maxpagesize="); at != std::string::npos)
      page = std::max<std::size_t>(1, std::stoul(prefer.substr(at + 18)));
    std::size_t offset = 0;
    int hop = 0;
    if (req.has_param("$skiptoken")) {
      const auto parts = split(req.get_param_value("$skiptoken"), "-");
      offset = std::stoul(parts[0]);
      if (parts.size() > 1) hop = std::stoi(parts[1]);
    }
    std::vector<const Json*> matching;
    for (const auto& r : *rows)
      if (keep(r)) matching.push_back(&r);
    Json value = Json::array();
    std::size_t next = offset;
    if (!(rule && rule->kind == Rule::Kind::Empty)) {
      for (; next < matching.size() && next < offset + page; ++next) {
        if (select.empty()) {
          value.push_back(*matching[next]);
        } else {
          Json o = Json::object();
          for (const auto& col : select)
            if (matching[next]->contains(col)) o[col] = (*matching[next])[col];
          value.push_back(std::move(o));
        }
      }
    }
    Json doc = {{"@odata.context", base + kViews + "$metadata#" + name}, {"value", value}};
    const bool more = next < matching.size() || (rule && rule->kind == Rule::Kind::Empty);
    if (more) {
      std::string link = base + req.path + "?";
      if (req.has_param("$select")) link += "$select=" + encode(req.get_param_value("$select")) + "&";
      if (!filter.empty()) link += "$filter=" + encode(filter) + "&";
      link += "$skiptoken=" + std::to_string(next) + "-" + std::to_string(hop + 1);
      doc["@odata.nextLink"] = link;
    }
    std::string body = doc.dump();
    if (rule && rule->kind == Rule::Kind::Truncate) body = body.substr(0, body.size() / 2);
    res.status = 200;
    res.set_content(body, kJson);
    done();
  }
};

CornerstoneFake::CornerstoneFake(CornerstoneFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  State* s = state_.get();
  s->server.Post("/services/api/oauth2/token",
                 [s](const httplib::Request& req, httplib::Response& res) { s->token(req, res); });
  s->server.Get(R"(/services/api/x/odata/api/views/[A-Za-z0-9_$]+)",
                [s](const httplib::Request& req, httplib::Response& res) { s->view(req, res); });
}

CornerstoneFake::~CornerstoneFake() { stop(); }

void CornerstoneFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("cornerstone fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("cornerstone fake: server did not start");
    std::this_thread::yield();
  }
}

void CornerstoneFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string CornerstoneFake::url() const { return state_->base; }

void CornerstoneFake::addTranscript(Json row) {
  std::lock_guard lock(state_->mu);
  state_->transcript.push_back(std::move(row));
}
void CornerstoneFake::addUser(Json row) {
  std::lock_guard lock(state_->mu);
  state_->users.push_back(std::move(row));
}
void CornerstoneFake::failRequests(int nth, int count, int status, long retry_after) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth + count - 1, status, retry_after, Rule::Kind::Status});
}
void CornerstoneFake::truncateRequest(int nth) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth, 200, -1, Rule::Kind::Truncate});
}
void CornerstoneFake::emptyPage(int nth) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth, 200, -1, Rule::Kind::Empty});
}
void CornerstoneFake::revokeTokens() {
  std::lock_guard lock(state_->mu);
  state_->live.clear();
}
std::vector<LoggedRequest> CornerstoneFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
std::uint64_t CornerstoneFake::viewRequests() const {
  std::lock_guard lock(state_->mu);
  return state_->view_requests;
}
std::uint64_t CornerstoneFake::tokensIssued() const {
  std::lock_guard lock(state_->mu);
  return state_->tokens;
}

}  // namespace certgate::testing::cornerstone
