#include "fakes/canvas/canvas_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/time.hpp"

namespace certgate::testing::canvas {

namespace {

using Json = nlohmann::json;
constexpr const char* kJson = "application/json; charset=utf-8";

struct Rule {
  int from = 0, to = 0, status = 500;
  bool throttle = false;
};

std::string encode(const std::string& s) {
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

}  // namespace

struct CanvasFake::State {
  std::string token;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  Json site = Json::object();
  std::vector<Rule> rules;
  std::set<int> empty_pages;
  double remaining = 700;
  int count = 0;
  std::vector<LoggedRequest> log;

  const Json& list(const char* key) const {
    static const Json kEmpty = Json::array();
    const auto it = site.find(key);
    return it != site.end() && it->is_array() ? *it : kEmpty;
  }
  void handle(const httplib::Request& req, httplib::Response& res);
  static void errors(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(Json{{"errors", {{{"message", message}}}}}.dump(), kJson);
  }
};

void CanvasFake::State::handle(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard lock(mu);
  LoggedRequest entry;
  entry.path = req.path;
  for (const auto& [k, v] : req.params) entry.params[k].push_back(v);
  entry.authorization = req.get_header_value("Authorization");
  const int n = ++count;
  auto finish = [&] {
    entry.status = res.status;
    log.push_back(entry);
  };
  res.set_header("X-Request-Cost", "0.5");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", remaining);
  res.set_header("X-Rate-Limit-Remaining", buf);

  if (entry.authorization != "Bearer " + token) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"canvas-lms\"");
    errors(res, 401, "Invalid access token.");
    return finish();
  }
  for (const auto& r : rules) {
    if (n < r.from || n > r.to) continue;
    if (r.throttle) {
      res.status = r.status;
      res.set_header("X-Rate-Limit-Remaining", "0.000");
      res.set_content(r.status == 403 ? "403 Forbidden (Rate Limit Exceeded)\n"
                                      : "429 Too Many Requests (Rate Limit Exceeded)\n",
                      "text/plain; charset=utf-8");
    } else {
      errors(res, r.status, "An error occurred.");
    }
    return finish();
  }

  static const std::regex kRoute(R"(^/api/v1/courses/(\d+)/(users|bulk_user_progress|students/submissions)$)");
  std::smatch m;
  if (!std::regex_match(req.path, m, kRoute)) {
    errors(res, 404, "The specified resource does not exist.");
    return finish();
  }
  const std::int64_t course = std::stoll(m[1].str());
  const std::string what = m[2].str();
  bool known = false;
  for (const auto& c : list("courses")) known = known || c.value("id", 0) == course;
  if (!known) {
    errors(res, 404, "The specified resource does not exist.");
    return finish();
  }
  auto values = [&](const std::string& k) {
    std::vector<std::string> out;
    auto range = req.params.equal_range(k);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
  };
  auto has = [&](const std::string& k, const std::string& v) {
    const auto all = values(k);
    return std::find(all.begin(), all.end(), v) != all.end();
  };
  auto userOf = [&](std::int64_t id) -> const Json* {
    for (const auto& u : list("users"))
      if (u.value("id", 0) == id) return &u;
    return nullptr;
  };
  std::vector<std::int64_t> students;
  for (const auto& e : list("enrollments"))
    if (e.value("course_id", 0) == course && e.value("type", "") == "StudentEnrollment" &&
        e.value("enrollment_state", "active") == "active")
      students.push_back(e.value("user_id", 0));

  Json all = Json::array();
  if (what == "users") {
    const auto types = values("enrollment_type[]");
    const bool with_email = has("include[]", "email");
    for (const auto id : students) {
      const Json* u = userOf(id);
      if (u == nullptr) continue;
      if (!types.empty() && std::find(types.begin(), types.end(), "student") == types.end()) continue;
      Json out = *u;
      if (!with_email) out.erase("email");
      all.push_back(out);
    }
  } else if (what == "bulk_user_progress") {
    for (const auto id : students) {
      const Json* u = userOf(id);
      if (u == nullptr) continue;
      Json progress = {{"requirement_count", 0}, {"requirement_completed_count", 0},
                       {"next_requirement_url", nullptr}, {"completed_at", nullptr}};
      for (const auto& p : list("progress"))
        if (p.value("course_id", 0) == course && p.value("user_id", 0) == id)
          for (const auto& k : {"requirement_count", "requirement_completed_count",
                                "next_requirement_url", "completed_at"})
            if (p.contains(k)) progress[k] = p[k];
      all.push_back({{"id", id}, {"display_name", u->value("short_name", u->value("name", ""))},
                     {"avatar_image_url", nullptr}, {"html_url", base + "/courses/" + std::to_string(course) + "/users/" + std::to_string(id)},
                     {"pronouns", nullptr}, {"progress", progress}});
    }
  } else {
    if (!has("student_ids[]", "all")) {
      errors(res, 400, "student_ids is required");
      return finish();
    }
    std::optional<core::Instant> since;
    if (req.has_param("graded_since")) {
      since = core::parseIso(req.get_param_value("graded_since"));
      if (!since) {
        errors(res, 400, "Invalid graded_since");
        return finish();
      }
    }
    const auto assignment_ids = values("assignment_ids[]");
    const std::string state = req.get_param_value("workflow_state");
    for (const auto& s : list("submissions")) {
      const Json* a = nullptr;
      for (const auto& x : list("assignments"))
        if (x.value("id", Json()) == s.value("assignment_id", Json())) a = &x;
      if (a == nullptr || a->value("course_id", 0) != course) continue;
      if (!assignment_ids.empty() &&
          std::find(assignment_ids.begin(), assignment_ids.end(), std::to_string(a->value("id", 0))) ==
              assignment_ids.end())
        continue;
      if (!state.empty() && s.value("workflow_state", "") != state) continue;
      if (since) {
        const auto g = s.value("graded_at", Json()).is_string()
                           ? core::parseIso(s["graded_at"].get<std::string>())
                           : std::nullopt;
        if (!g || *g <= *since) continue;
      }
      Json out = s;
      if (has("include[]", "assignment")) out["assignment"] = *a;
      if (!has("include[]", "submission_history")) out.erase("submission_history");
      all.push_back(out);
    }
  }

  // Paging as basics/file.pagination describes it.
  long per_page = 10;
  if (req.has_param("per_page")) per_page = std::clamp(std::stol(req.get_param_value("per_page")), 1L, 100L);
  long page = req.has_param("page") ? std::max(1L, std::stol(req.get_param_value("page"))) : 1L;
  const long pages = std::max<long>(1, (static_cast<long>(all.size()) + per_page - 1) / per_page);
  Json items = Json::array();
  if (!empty_pages.count(n))
    for (long i = (page - 1) * per_page; i < std::min<long>(page * per_page, all.size()); ++i)
      items.push_back(all[static_cast<std::size_t>(i)]);
  auto link = [&](long p) {
    std::string q;
    for (const auto& [k, v] : req.params) {
      if (k == "page" || k == "per_page") continue;
      q += encode(k) + "=" + encode(v) + "&";
    }
    return "<" + base + req.path + "?" + q + "page=" + std::to_string(p) + "&per_page=" +
           std::to_string(per_page) + ">";
  };
  std::string header = link(page) + "; rel=\"current\"";
  // An empty page injected by a test repeats its page number in the next link.
  if (empty_pages.count(n)) {
    std::string again = link(page);
    again.insert(again.size() - 1, "&hop=" + std::to_string(n));
    header += "," + again + "; rel=\"next\"";
  }
  else if (page < pages) header += "," + link(page + 1) + "; rel=\"next\"";
  header += "," + link(1) + "; rel=\"first\"," + link(pages) + "; rel=\"last\"";
  res.set_header("Link", header);
  res.status = 200;
  res.set_content(items.dump(), kJson);
  finish();
}

CanvasFake::CanvasFake(std::string token) : state_(std::make_unique<State>()) {
  state_->token = std::move(token);
  State* s = state_.get();
  s->server.Get(".*", [s](const httplib::Request& req, httplib::Response& res) { s->handle(req, res); });
}

CanvasFake::~CanvasFake() { stop(); }

void CanvasFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("canvas fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("canvas fake: server did not start");
    std::this_thread::yield();
  }
}

void CanvasFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string CanvasFake::url() const { return state_->base; }
void CanvasFake::load(const Json& site) {
  std::lock_guard lock(state_->mu);
  state_->site = site;
}
Json& CanvasFake::site() { return state_->site; }
void CanvasFake::failRequests(int nth, int count, int status) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth + count - 1, status, false});
}
void CanvasFake::throttle(int nth, int count, int status) {
  std::lock_guard lock(state_->mu);
  state_->rules.push_back({nth, nth + count - 1, status, true});
}
void CanvasFake::emptyPage(int nth) {
  std::lock_guard lock(state_->mu);
  state_->empty_pages.insert(nth);
}
void CanvasFake::setRateLimitRemaining(double remaining) {
  std::lock_guard lock(state_->mu);
  state_->remaining = remaining;
}
void CanvasFake::clearFaults() {
  std::lock_guard lock(state_->mu);
  state_->rules.clear();
  state_->empty_pages.clear();
}
std::vector<LoggedRequest> CanvasFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
int CanvasFake::requestCount() const {
  std::lock_guard lock(state_->mu);
  return state_->count;
}

}  // namespace certgate::testing::canvas
