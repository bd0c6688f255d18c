#include "fakes/moodle/moodle_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace certgate::testing::moodle {

namespace {

using Json = nlohmann::json;
// With a charset parameter cpp-httplib does not compress the body.
constexpr const char* kJson = "application/json; charset=utf-8";
constexpr const char* kPath = "/webservice/rest/server.php";

const std::set<std::string> kKnownFunctions = {
    "core_enrol_get_enrolled_users", "mod_quiz_get_quizzes_by_courses",
    "mod_quiz_get_user_attempts", "core_completion_get_activities_completion_status",
    "core_webservice_get_site_info"};

struct FailRule {
  int from = 0, to = 0, status = 500;
  long retry_after = -1;
};

struct InjectedException {
  std::string function;
  std::int64_t userid = 0;
  std::string exception, errorcode, message;
};

std::int64_t toInt(const std::map<std::string, std::string>& p, const std::string& k,
                   std::int64_t fallback) {
  const auto it = p.find(k);
  if (it == p.end() || it->second.empty()) return fallback;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

struct MoodleFake::State {
  MoodleFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  Json site = Json::object();
  std::vector<FailRule> fail_rules;
  std::vector<InjectedException> exceptions;
  int count = 0;
  std::vector<LoggedCall> log;

  void handle(const httplib::Request& req, httplib::Response& res);
  // The answer of one function: a JSON value, or an exception (exception, errorcode, message).
  Json dispatch(const std::string& function, const std::map<std::string, std::string>& p);
  static Json exception(const std::string& cls, const std::string& code, const std::string& msg) {
    return Json{{"exception", cls}, {"errorcode", code}, {"message", msg}};
  }
  static Json invalidParameter(const std::string& what) {
    return exception("invalid_parameter_exception", "invalidparameter",
                     "Invalid parameter value detected (" + what + ")");
  }
  const Json& list(const char* key) const {
    static const Json kEmpty = Json::array();
    const auto it = site.find(key);
    return it != site.end() && it->is_array() ? *it : kEmpty;
  }
  const Json* course(std::int64_t id) const {
    for (const auto& c : list("courses"))
      if (c.value("id", 0) == id) return &c;
    return nullptr;
  }
  bool noAccess(std::int64_t courseid) const {
    for (const auto& c : list("no_access_courses"))
      if (c.get<std::int64_t>() == courseid) return true;
    return false;
  }
};

Json MoodleFake::State::dispatch(const std::string& function,
                                 const std::map<std::string, std::string>& p) {
  if (function == "core_webservice_get_site_info")
    return Json{{"sitename", "Fake Moodle"}, {"username", "certgate"}, {"release", "4.5"},
                {"version", "2024100700"}, {"functions", Json::array()}};

  if (function == "core_enrol_get_enrolled_users") {
    if (!p.count("courseid")) return invalidParameter("courseid");
    const std::int64_t courseid = toInt(p, "courseid", 0);
    if (course(courseid) == nullptr)
      return exception("dml_missing_record_exception", "invalidrecord",
                       "Can't find data record in database table course.");
    std::map<std::string, std::string> options;
    for (int i = 0;; ++i) {
      const std::string prefix = "options[" + std::to_string(i) + "]";
      const auto n = p.find(prefix + "[name]");
      if (n == p.end()) break;
      const auto v = p.find(prefix + "[value]");
      if (v == p.end()) return invalidParameter(prefix + "[value]");
      options[n->second] = v->second;
    }
    std::int64_t from = toInt(options, "limitfrom", 0), number = toInt(options, "limitnumber", 0);
    const bool only_active = toInt(options, "onlyactive", 0) != 0;
    std::set<std::string> fields;
    if (auto it = options.find("userfields"); it != options.end()) {
      std::string f;
      for (const char c : it->second + ",") {
        if (c == ',') {
          if (!f.empty()) fields.insert(f);
          f.clear();
        } else if (c != ' ') {
          f += c;
        }
      }
      fields.insert("id");
    }
    std::vector<Json> users;
    for (const auto& e : list("enrolments")) {
      if (e.value("courseid", 0) != courseid) continue;
      if (only_active && e.value("status", 0) != 0) continue;
      for (const auto& u : list("users"))
        if (u.value("id", Json()) == e.value("userid", Json())) users.push_back(u);
    }
    std::stable_sort(users.begin(), users.end(), [](const Json& a, const Json& b) {
      return a.value("id", Json(0)).is_number() && b.value("id", Json(0)).is_number() &&
             a.value("id", 0) < b.value("id", 0);
    });
    Json out = Json::array();
    for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(from, 0)); i < users.size(); ++i) {
      if (number > 0 && out.size() >= static_cast<std::size_t>(number)) break;
      Json u = users[i];
      if (!fields.empty())
        for (auto it = u.begin(); it != u.end();)
          it = fields.count(it.key()) ? std::next(it) : u.erase(it);
      out.push_back(std::move(u));
    }
    return out;
  }

  if (function == "mod_quiz_get_quizzes_by_courses") {
    Json quizzes = Json::array(), warnings = Json::array();
    for (int i = 0; p.count("courseids[" + std::to_string(i) + "]"); ++i) {
      const std::int64_t cid = toInt(p, "courseids[" + std::to_string(i) + "]", 0);
      if (noAccess(cid) || course(cid) == nullptr) {
        warnings.push_back({{"item", "course"}, {"itemid", cid}, {"warningcode", "1"},
                            {"message", "No access rights in course context"}});
        continue;
      }
      for (const auto& q : list("quizzes"))
        if (q.value("course", 0) == cid) quizzes.push_back(q);
    }
    return Json{{"quizzes", quizzes}, {"warnings", warnings}};
  }

  if (function == "mod_quiz_get_user_attempts") {
    if (!p.count("quizid")) return invalidParameter("quizid");
    const std::int64_t quizid = toInt(p, "quizid", 0), userid = toInt(p, "userid", 0);
    const std::string status = p.count("status") ? p.at("status") : "finished";
    if (status != "all" && status != "finished" && status != "unfinished")
      return invalidParameter("status");
    const bool previews = toInt(p, "includepreviews", 0) != 0;
    bool known = false;
    for (const auto& q : list("quizzes")) known = known || q.value("id", 0) == quizid;
    if (!known)
      return exception("dml_missing_record_exception", "invalidrecord",
                       "Can't find data record in database table quiz.");
    Json attempts = Json::array();
    for (const auto& a : list("attempts")) {
      if (a.value("quiz", 0) != quizid || a.value("userid", 0) != userid) continue;
      if (!previews && a.value("preview", 0) != 0) continue;
      const std::string state = a.value("state", "");
      if (status == "finished" && state != "finished") continue;
      if (status == "unfinished" && (state == "finished" || state == "abandoned")) continue;
      attempts.push_back(a);
    }
    return Json{{"attempts", attempts}, {"warnings", Json::array()}};
  }

  if (function == "core_completion_get_activities_completion_status") {
    if (!p.count("courseid") || !p.count("userid")) return invalidParameter("courseid, userid");
    const std::int64_t courseid = toInt(p, "courseid", 0), userid = toInt(p, "userid", 0);
    const Json* c = course(courseid);
    if (c == nullptr)
      return exception("dml_missing_record_exception", "invalidrecord",
                       "Can't find data record in database table course.");
    if (c->value("enablecompletion", 1) == 0)
      return exception("moodle_exception", "completionnotenabled", "Completion is not enabled");
    for (const auto& entry : list("completion"))
      if (entry.value("courseid", 0) == courseid && entry.value("userid", 0) == userid)
        return Json{{"statuses", entry.value("statuses", Json::array())}, {"warnings", Json::array()}};
    return Json{{"statuses", Json::array()}, {"warnings", Json::array()}};
  }
  return exception("dml_missing_record_exception", "invalidrecord",
                   "Can't find data record in database table external_functions.");
}

void MoodleFake::State::handle(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard lock(mu);
  LoggedCall call;
  call.method = req.method;
  call.content_type = req.get_header_value("Content-Type");
  // Moodle reads parameters from the query string and the form body alike.
  httplib::Params query, body;
  const auto q = req.target.find('?');
  if (q != std::string::npos) httplib::detail::parse_query_text(req.target.substr(q + 1), query);
  if (call.content_type.find("application/x-www-form-urlencoded") == 0)
    httplib::detail::parse_query_text(req.body, body);
  for (const auto& [k, v] : query) call.params[k] = v;
  for (const auto& [k, v] : body) call.params[k] = v;
  call.token_in_query = query.count("wstoken") > 0;
  call.function = call.params.count("wsfunction") ? call.params["wsfunction"] : "";
  const int n = ++count;

  auto finish = [&](int status, const std::string& text, const char* type) {
    res.status = status;
    res.set_content(text, type);
    call.status = status;
    call.answer = text;
    log.push_back(call);
  };
  if (!opt.rest_enabled) return finish(403, "", "text/html; charset=utf-8");
  for (const auto& rule : fail_rules) {
    if (n < rule.from || n > rule.to) continue;
    if (rule.retry_after >= 0) res.set_header("Retry-After", std::to_string(rule.retry_after));
    return finish(rule.status, "<html><body>injected failure " + std::to_string(rule.status) +
                                   "</body></html>",
                  "text/html; charset=utf-8");
  }
  const std::string format =
      call.params.count("moodlewsrestformat") ? call.params["moodlewsrestformat"] : "xml";
  auto answer = [&](const Json& doc) {
    if (format == "json") return finish(200, doc.dump(), kJson);
    // The XML form of an exception (locallib.php generate_error); values are not served as XML.
    const Json e = doc.is_object() && doc.contains("exception")
                       ? doc
                       : exception("moodle_exception", "invalidresponse",
                                   "this fake answers values as json only");
    finish(200,
           "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"" +
               e.value("exception", "") + "\">\n<ERRORCODE>" + e.value("errorcode", "") +
               "</ERRORCODE>\n<MESSAGE>" + e.value("message", "") + "</MESSAGE>\n</EXCEPTION>\n",
           "application/xml; charset=utf-8");
  };
  if (call.params["wstoken"] != opt.token)
    return answer(exception("moodle_exception", "invalidtoken", "Invalid token - token not found"));
  if (!kKnownFunctions.count(call.function))
    return answer(exception("dml_missing_record_exception", "invalidrecord",
                            "Can't find data record in database table external_functions."));
  if (!opt.service_functions.empty() && !opt.service_functions.count(call.function))
    return answer(exception("webservice_access_exception", "accessexception",
                            "Access control exception"));
  for (const auto& x : exceptions) {
    if (x.function != call.function) continue;
    if (x.userid != 0 && toInt(call.params, "userid", -1) != x.userid) continue;
    return answer(exception(x.exception, x.errorcode, x.message));
  }
  answer(dispatch(call.function, call.params));
}

MoodleFake::MoodleFake(MoodleFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  State* s = state_.get();
  auto handler = [s](const httplib::Request& req, httplib::Response& res) { s->handle(req, res); };
  s->server.Get(kPath, handler);
  s->server.Post(kPath, handler);
  s->server.set_keep_alive_max_count(1'000'000);
}

MoodleFake::~MoodleFake() { stop(); }

void MoodleFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("moodle fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("moodle fake: server did not start");
    std::this_thread::yield();
  }
}

void MoodleFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string MoodleFake::url() const { return state_->base; }

void MoodleFake::load(const Json& site) {
  std::lock_guard lock(state_->mu);
  state_->site = site;
}
Json& MoodleFake::site() { return state_->site; }

void MoodleFake::failCalls(int nth, int count, int status, long retry_after) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back({nth, nth + count - 1, status, retry_after});
}
void MoodleFake::exceptionFor(const std::string& function, std::int64_t userid,
                              const std::string& exception, const std::string& errorcode,
                              const std::string& message) {
  std::lock_guard lock(state_->mu);
  state_->exceptions.push_back({function, userid, exception, errorcode, message});
}
void MoodleFake::setToken(const std::string& token) {
  std::lock_guard lock(state_->mu);
  state_->opt.token = token;
}
void MoodleFake::clearFaults() {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.clear();
  state_->exceptions.clear();
}
std::vector<LoggedCall> MoodleFake::calls() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}
int MoodleFake::callCount() const {
  std::lock_guard lock(state_->mu);
  return state_->count;
}
void MoodleFake::clearCalls() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}

}  // namespace certgate::testing::moodle
