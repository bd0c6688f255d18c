#include "fakes/workday/workday_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "connectors/common/jwt.hpp"
#include "core/time.hpp"

namespace certgate::testing::workday {

namespace {

using Json = nlohmann::json;
constexpr const char* kJson = "application/json; charset=utf-8";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A prompt or row date: 2026-03-01, 2026-03-01-08:00, 2026-03-01Z or an ISO date-time.
std::optional<core::Instant> readDate(std::string_view s) {
  if (s.size() == 16 && (s[10] == '-' || s[10] == '+'))
    return core::parseIso(std::string(s.substr(0, 10)) + "T00:00:00" + std::string(s.substr(10)));
  if (s.size() == 11 && s[10] == 'Z') return core::parseIso(std::string(s.substr(0, 10)));
  return core::parseIso(s);
}

std::string base64Decode(std::string s) {
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return connectors::jwt::base64UrlDecode(s).value_or("");
}

struct Rule {
  int from = 0, to = 0;
  int status = 0;
  long retry_after = -1;
  enum class Kind { Status, Truncate, Login, NoEntries } kind = Kind::Status;
};

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
bool LoggedRequest::hasParam(const std::string& name) const { return params.count(name) > 0; }

struct WorkdayFake::State {
  WorkdayFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;
  mutable std::mutex mu;
  Json rows = Json::array();
  std::vector<Rule> rules;
  std::vector<LoggedRequest> log;
  std::uint64_t report_requests = 0;
  std::uint64_t tokens = 0;
  std::vector<std::string> live_tokens;

  std::string reportPath() const {
    return "/ccx/service/customreport2/" + opt.tenant + "/" + opt.owner + "/" + opt.report;
  }
  std::string tokenPath() const { return "/ccx/oauth2/" + opt.tenant + "/token"; }

  static void error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(Json{{"error", message}}.dump(), kJson);
  }

  bool authorised(const httplib::Request& req) {
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Basic ", 0) == 0 && !opt.username.empty())
      return base64Decode(auth.substr(6)) == opt.username + ":" + opt.password;
    if (auth.rfind("Bearer ", 0) == 0)
      return std::find(live_tokens.begin(), live_tokens.end(), auth.substr(7)) != live_tokens.end();
    return false;
  }

  void token(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    if (opt.client_id.empty()) return error(res, 404, "not found");
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Basic ", 0) != 0 ||
        base64Decode(auth.substr(6)) != opt.client_id + ":" + opt.client_secret) {
      res.status = 401;
      res.set_content(Json{{"error", "invalid_client"}}.dump(), kJson);
      return;
    }
    if (req.get_param_value("grant_type") != "refresh_token" ||
        req.get_param_value("refresh_token") != opt.refresh_token) {
      res.status = 400;
      res.set_content(Json{{"error", "invalid_grant"}}.dump(), kJson);
      return;
    }
    const std::string t = "wd-token-" + std::to_string(++tokens);
    live_tokens.push_back(t);
    res.set_content(Json{{"access_token", t}, {"token_type", "Bearer"}, {"refresh_token", opt.refresh_token}}.dump(),
                    kJson);
  }

  static Json generatedRow(const WorkdayFakeOptions& o, std::int64_t i) {
    const auto day = *core::parseIso("2026-01-01") + core::days(i % 300);
    return {{"Employee_ID", "W" + std::to_string(i % o.generated_people)},
            {"Learning_Content_ID", "C" + std::to_string(i % o.generated_items)},
            {"Completion_Date", core::formatDate(day) + "-08:00"},
            {"Completion_Status", "Completed"},
            {"Score", std::to_string(i % 101)},
            {"Max_Score", "100"},
            {"Attempt", std::to_string(1 + i / (static_cast<std::int64_t>(o.generated_people) * o.generated_items))}};
  }

  void report(const httplib::Request& req, httplib::Response& res) {
    std::unique_lock lock(mu);
    const int n = static_cast<int>(++report_requests);
    LoggedRequest lr;
    lr.method = req.method;
    lr.path = req.path;
    for (const auto& [k, v] : req.params) lr.params.emplace(k, v);
    for (const auto& [k, v] : req.headers) lr.headers.emplace_back(k, v);
    auto logged = [&](int status) {
      lr.status = status;
      log.push_back(lr);
    };

    if (!authorised(req)) {
      res.set_header("WWW-Authenticate", "Basic realm=\"Workday\"");
      error(res, 401, "Invalid user name or password");
      return logged(401);
    }
    for (const auto& [k, v] : req.params) {
      if (k == "format") continue;
      if ((!opt.from_prompt.empty() && k == opt.from_prompt) ||
          (!opt.to_prompt.empty() && k == opt.to_prompt) ||
          std::find(opt.other_prompts.begin(), opt.other_prompts.end(), k) != opt.other_prompts.end())
        continue;
      error(res, 400, "The report does not have a prompt named " + k);
      return logged(400);
    }
    std::optional<core::Instant> from, to;
    for (auto [name, slot] : {std::pair{opt.from_prompt, &from}, std::pair{opt.to_prompt, &to}}) {
      if (name.empty() || !req.has_param(name)) continue;
      *slot = readDate(req.get_param_value(name));
      if (!*slot) {
        error(res, 400, "Invalid date for prompt " + name);
        return logged(400);
      }
    }
    std::optional<Rule> rule;
    for (const auto& r : rules)
      if (n >= r.from && n <= r.to) rule = r;
    if (rule && rule->kind == Rule::Kind::Status) {
      if (rule->retry_after >= 0) res.set_header("Retry-After", std::to_string(rule->retry_after));
      error(res, rule->status, rule->status >= 500 ? "Internal Server Error" : "Too Many Requests");
      return logged(rule->status);
    }
    if (rule && rule->kind == Rule::Kind::Login) {
      res.status = 200;
      res.set_content("<!DOCTYPE html><html><head><title>Workday</title></head><body><form "
                      "action=\"/login.flex\">Sign In</form></body></html>",
                      "text/html; charset=utf-8");
      return logged(200);
    }
    if (req.get_param_value("format") != "json") {
      res.status = 200;
      res.set_content("<?xml version='1.0' encoding='UTF-8'?><wd:Report_Data "
                      "xmlns:wd=\"urn:com.workday.report/" + opt.report + "\"></wd:Report_Data>",
                      "text/xml; charset=utf-8");
      return logged(200);
    }
    if (rule && rule->kind == Rule::Kind::NoEntries) {
      res.status = 200;
      res.set_content(R"({"Report_Data": {"error": "report definition changed"}})", kJson);
      return logged(200);
    }
    logged(200);
    if (opt.generated > 0) {
      const WorkdayFakeOptions o = opt;
      lock.unlock();
      auto next = std::make_shared<std::int64_t>(-1);
      res.set_chunked_content_provider(kJson, [o, next](std::size_t, httplib::DataSink& sink) {
        std::string chunk;
        if (*next < 0) {
          chunk = "{\"Report_Entry\":[";
          *next = 0;
        }
        for (int k = 0; k < 2000 && *next < o.generated; ++k, ++*next) {
          if (*next > 0) chunk += ",";
          chunk += generatedRow(o, *next).dump();
        }
        if (*next >= o.generated) {
          chunk += "]}";
          sink.write(chunk.data(), chunk.size());
          sink.done();
          return true;
        }
        return sink.write(chunk.data(), chunk.size());
      });
      return;
    }
    Json out = Json::array();
    for (const auto& row : rows) {
      if (from || to) {
        const auto it = row.find(opt.date_field);
        if (it == row.end() || !it->is_string()) continue;
        const auto d = readDate(it->get<std::string>());
        if (!d) continue;
        // Both ends inclusive, compared as (UTC) dates.
        if (from && core::formatDate(*d) < core::formatDate(*from)) continue;
        if (to && core::formatDate(*d) > core::formatDate(*to)) continue;
      }
      out.push_back(row);
    }
    std::string body = Json{{"Report_Entry", out}}.dump();
    if (rule && rule->kind == Rule::Kind::Truncate) body = body.substr(0, body.size() / 2);
    res.status = 200;
    res.set_content(body, kJson);
  }
};

WorkdayFake::WorkdayFake(WorkdayFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  State* s = state_.get();
  s->server.Get(s->reportPath(), [s](const httplib::Request& req, httplib::Response& res) { s->report(req, res); });
  s->server.Post(s->tokenPath(), [s](const httplib::Request& req, httplib::Response& res) { s->token(req, res); });
}

WorkdayFake::~WorkdayFake() { stop(); }

void WorkdayFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("workday fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("workday fake: server did not start");
    std::this_thread::yield();
  }
}

void WorkdayFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string WorkdayFake::url() const { return state_->base; }
std::string WorkdayFake::reportUrl() const { return state_->base + state_->reportPath(); }
std::string WorkdayFake::tokenUrl() const { return state_->base + state_->tokenPath(); }

void WorkdayFake::addRow(Json row) {
  std::lock_guard lock(state_->mu);
  state_->rows.push_back(std::move(row));
}
void WorkdayFake::setRows(Json rows) {
  std::lock_guard lock(state_->mu);
  state_->rows = std::move(rows);
}
std::size_t WorkdayFake::rows() const {
  std::lock_guard lock(state_->mu);
  return state_->rows.size();
}

void WorkdayFake::failRequests(int nth, int count, int status, long retry_after) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth + count - 1, status, retry_after, Rule::Kind::Status});
}
void WorkdayFake::truncateRequest(int nth) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth, 200, -1, Rule::Kind::Truncate});
}
void WorkdayFake::loginPageRequest(int nth) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth, 200, -1, Rule::Kind::Login});
}
void WorkdayFake::noReportEntryRequest(int nth) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth, 200, -1, Rule::Kind::NoEntries});
}
void WorkdayFake::revokeTokens() {
  std::lock_guard lock(state_->mu);
  state_->live_tokens.clear();
}

std::vector<LoggedRequest> WorkdayFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
std::uint64_t WorkdayFake::reportRequests() const {
  std::lock_guard lock(state_->mu);
  return state_->report_requests;
}
std::uint64_t WorkdayFake::tokensIssued() const {
  std::lock_guard lock(state_->mu);
  return state_->tokens;
}

}  // namespace certgate::testing::workday
