#include "connectors/lms/moodle/moodle_source.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "connectors/common/encoding.hpp"
#include "connectors/common/options.hpp"

namespace certgate::connectors::moodle {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;
using encoding::excerpt;
using encoding::urlEncode;
using options::OptionReader;

constexpr const char* kServerPath = "/webservice/rest/server.php";
constexpr std::size_t kMaxProblemsListed = 3;

struct Config {
  std::string url;     // the site's root, without a trailing '/'
  std::string token;
  std::vector<std::int64_t> courses;
  std::size_t page_size = 50;
  bool completion = true;
  bool quizzes = true;
  bool only_active = true;
  std::string ca_file;
  core::Seconds timeout{60};
};

using Params = std::vector<std::pair<std::string, std::string>>;

// One web service call's outcome: the parsed answer and its body (for the unit key), or a
// classified error. `fatal` errors end the fetch (auth); `stop` ones end it as incomplete (the
// site is failing); the others make it incomplete and the fetch goes on.
struct CallError {
  core::Error error;
  bool stop = false;
};

struct Answer {
  Json doc;
  std::string body;
};

std::optional<std::int64_t> intOf(const Json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  const auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d)) return static_cast<std::int64_t>(d);
    return std::nullopt;
  }
  // PARAM_INT values arrive as numbers; a digit string is accepted as the same value.
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 18) return std::nullopt;
    for (const char c : s)
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    return std::stoll(s);
  }
  return std::nullopt;
}

std::optional<double> numberOf(const Json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return std::nullopt;
  const double d = it->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string stringOf(const Json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// What an exception answer means, and what the operator should do about it.
struct ExceptionClass {
  ErrorKind kind = ErrorKind::Permanent;
  std::string hint;
};

ExceptionClass classifyException(const std::string& exception, const std::string& errorcode,
                                 const std::string& function) {
  if (errorcode == "invalidtoken")
    return {ErrorKind::Auth,
            "Moodle does not know the token (deleted, expired, or limited to other IP "
            "addresses): create one for certgate's web service user under Site administration > "
            "Server > Web services > Manage tokens and put it in the token file"};
  if (errorcode == "accessexception" || exception == "webservice_access_exception")
    return {ErrorKind::Auth,
            "the token's external service does not offer " + function +
                ", or its user lacks webservice/rest:use: add the function to the service (Site "
                "administration > Server > Web services > External services > Functions)"};
  if (errorcode == "nopermissions" || exception == "required_capability_exception" ||
      errorcode == "requireloginerror" || exception == "require_login_exception" ||
      errorcode == "servicerequireslogin")
    return {ErrorKind::Auth,
            "the web service user lacks a capability " + function +
                " needs: give its role the capabilities listed in docs/connectors.md (moodle) "
                "in every configured course"};
  if (errorcode == "sitemaintenance") return {ErrorKind::Transient, "the site is in maintenance mode"};
  if (errorcode == "invalidparameter" || errorcode == "invalidrecord" ||
      errorcode == "invalidrecordunknown")
    return {ErrorKind::Invalid, "check the course ids under `courses`"};
  if (errorcode == "completionnotenabled")
    return {ErrorKind::Invalid,
            "enable completion tracking in the course (and the site), or set completion: false"};
  return {ErrorKind::Permanent, ""};
}

// ---- the source --------------------------------------------------------------------------------

class MoodleSource final : public ports::LmsSource {
 public:
  MoodleSource(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
               http::ClientOptions client_options)
      : name_(std::move(name)), cfg_(std::move(cfg)), redactor_(std::move(redactor)) {
    if (!cfg_.ca_file.empty()) client_options.ca_file = cfg_.ca_file;
    client_options.total_timeout = std::chrono::duration_cast<http::Millis>(cfg_.timeout);
    client_options.connect_timeout =
        std::min(client_options.connect_timeout, client_options.total_timeout);
    if (redactor_) client_options.redactor = redactor_;
    client_ = std::make_unique<http::Client>(std::move(client_options));
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "moodle"; }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    (void)cursor;  // Moodle offers no `since`: every fetch reads the configured courses whole.
    (void)now;
    try {
      return fetchAll(sink);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure while reading Moodle: ") + e.what(),
                             where());
    }
  }

 private:
  struct Quiz {
    std::int64_t id = 0;
    std::int64_t cmid = 0;
    double sumgrades = 0;
    double grade = 0;
    std::string name;
  };
  struct User {
    std::int64_t id = 0;
    std::string idnumber, email, fullname;
  };
  // Everything read for one user of a page: the answers, in call order.
  struct UserAnswers {
    User user;
    std::optional<Answer> completion;
    std::vector<std::pair<const Quiz*, Answer>> attempts;
  };
  struct FetchState {
    ports::FetchOutcome out;
    std::vector<std::string> problems;
  };

  std::string where() const { return "source '" + name_ + "'"; }
  std::string redact(const std::string& s) const {
    return redactor_ ? redactor_->redact(s) : http::redact(s);
  }
  std::variant<Answer, CallError> call(const std::string& function, const Params& params);
  core::Result<ports::FetchOutcome> fetchAll(ports::RecordSink& sink);
  // false: the fetch stops (an Auth error is in `fatal`, or the site is failing).
  bool readCourse(std::int64_t course, FetchState& st, ports::RecordSink& sink,
                  std::optional<core::Error>& fatal);
  void emitUser(std::int64_t course, const UserAnswers& ua, ports::RecordSink& sink,
                std::int64_t& records, std::int64_t& quarantined) const;
  ports::SourceRecord baseRecord(const User& u) const;

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
};

std::variant<Answer, CallError> MoodleSource::call(const std::string& function,
                                                   const Params& params) {
  http::Request req;
  req.method = http::Method::Post;
  req.url = cfg_.url + kServerPath + "?moodlewsrestformat=json&wsfunction=" + urlEncode(function);
  req.idempotent = true;  // every function certgate calls only reads
  req.headers.set("Accept", "application/json");
  req.headers.set("Content-Type", "application/x-www-form-urlencoded");
  req.body = "wstoken=" + urlEncode(cfg_.token);
  for (const auto& [k, v] : params) req.body += "&" + urlEncode(k) + "=" + urlEncode(v);
  const std::string what = "POST " + req.url;

  auto resp = client_->sendWithRetry(req, http::RetryPolicy{});
  if (!resp) {
    core::Error e = resp.error();
    e.where = where();
    e.message = redact(e.message);
    return CallError{std::move(e), true};
  }
  if (resp->status != 200) {
    core::Status st = http::classify(*resp, what, -1, redactor_.get());
    core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
    std::string message = what + " answered HTTP " + std::to_string(resp->status);
    const std::string body = trimmed(resp->body);
    if (!body.empty()) message += ": " + excerpt(body, 160);
    e.message = redact(message);
    e.where = where();
    if (e.kind == ErrorKind::Auth)
      e.hint = "the site refuses REST web service calls: enable web services and the REST "
               "protocol (Site administration > Server > Web services > Manage protocols)";
    const bool stop = e.kind != ErrorKind::NotFound && e.kind != ErrorKind::Invalid;
    return CallError{std::move(e), stop};
  }
  Answer a;
  a.doc = Json::parse(resp->body, nullptr, false);
  if (a.doc.is_discarded())
    return CallError{core::makeError(ErrorKind::Transient,
                                     redact(what + " answered 200 with a body that is not JSON, "
                                                   "or cut off: " +
                                            excerpt(trimmed(resp->body), 120)),
                                     where(), "check that the URL is the Moodle site's root"),
                     false};
  // Errors come with HTTP 200 and an exception body (webservice/rest/locallib.php send_error).
  if (a.doc.is_object() && a.doc.contains("exception")) {
    const std::string exception = stringOf(a.doc, "exception");
    const std::string errorcode = stringOf(a.doc, "errorcode");
    const ExceptionClass c = classifyException(exception, errorcode, function);
    core::Error e = core::makeError(
        c.kind,
        redact(function + " answered with " + (exception.empty() ? "an exception" : exception) +
               (errorcode.empty() ? "" : " (" + errorcode + ")") + ": " +
               excerpt(stringOf(a.doc, "message"), 200)),
        where(), c.hint);
    return CallError{std::move(e), c.kind == ErrorKind::Transient};
  }
  a.body = std::move(resp->body);
  return a;
}

ports::SourceRecord MoodleSource::baseRecord(const User& u) const {
  ports::SourceRecord r;
  r.employee_id = u.idnumber;
  r.email = u.email;
  r.source_user = std::to_string(u.id);
  r.display_name = u.fullname;
  return r;
}

void MoodleSource::emitUser(std::int64_t course, const UserAnswers& ua, ports::RecordSink& sink,
                            std::int64_t& records, std::int64_t& quarantined) const {
  const std::string who = "course " + std::to_string(course) + " user " + std::to_string(ua.user.id);
  auto quarantine = [&](std::string id, std::string location, std::string reason, const Json& raw) {
    ports::QuarantinedRecord q;
    q.external_id = std::move(id);
    q.location = std::move(location);
    q.reason = std::move(reason);
    q.raw = excerpt(raw.dump(), 300);
    sink.quarantine(std::move(q));
    ++quarantined;
  };

  if (ua.completion) {
    const Json& statuses = ua.completion->doc.at("statuses");
    std::size_t index = 0;
    for (const Json& s : statuses) {
      ++index;
      const std::string location = who + " completion #" + std::to_string(index);
      const auto cmid = intOf(s, "cmid");
      const std::string id = "completion:" + std::to_string(course) + ":" +
                             (cmid ? std::to_string(*cmid) : std::string("?")) + ":" +
                             std::to_string(ua.user.id);
      const auto state = intOf(s, "state");
      const auto timecompleted = intOf(s, "timecompleted");
      if (!cmid || *cmid <= 0) {
        quarantine(id, location, "the completion status has no course module id (cmid)", s);
        continue;
      }
      if (!state || *state < 0 || *state > 3) {
        quarantine(id, location + " (cm " + std::to_string(*cmid) + ")",
                   "completion state is not 0, 1, 2 or 3 (incomplete, complete, complete pass, "
                   "complete fail)",
                   s);
        continue;
      }
      if (*state == 0) continue;  // incomplete: nothing happened yet
      if (!timecompleted || *timecompleted <= 0) {
        quarantine(id, location + " (cm " + std::to_string(*cmid) + ")",
                   "the activity is complete but has no timecompleted; mark it complete again in "
                   "Moodle (or wait for the completion task) so it carries a date",
                   s);
        continue;
      }
      ports::SourceRecord r = baseRecord(ua.user);
      r.external_id = id;
      r.location = location + " (cm " + std::to_string(*cmid) + ")";
      r.lms_item = "cm:" + std::to_string(*cmid);
      r.at = core::Instant{core::Seconds{*timecompleted}};
      switch (*state) {
        case 2: r.status = core::FactStatus::Passed; r.lms_pass = 1; break;
        case 3: r.status = core::FactStatus::Failed; r.lms_pass = 0; break;
        default: r.status = core::FactStatus::Completed; break;
      }
      sink.record(std::move(r));
      ++records;
    }
  }

  for (const auto& [quiz, answer] : ua.attempts) {
    std::size_t index = 0;
    for (const Json& a : answer.doc.at("attempts")) {
      ++index;
      const auto attempt_id = intOf(a, "id");
      const std::string id =
          attempt_id ? "attempt:" + std::to_string(*attempt_id) : std::string();
      const std::string location = who + " quiz " + std::to_string(quiz->id) + " #" +
                                   std::to_string(index) +
                                   (attempt_id ? " (attempt " + std::to_string(*attempt_id) + ")" : "");
      if (!attempt_id || *attempt_id <= 0) {
        quarantine(id, location, "the quiz attempt has no id", a);
        continue;
      }
      const std::string state = stringOf(a, "state");
      if (state != "finished") {
        if (state == "inprogress" || state == "overdue" || state == "abandoned" ||
            state == "submitted" || state == "notstarted")
          continue;  // not a submitted attempt (status=finished should not return these)
        quarantine(id, location, "the attempt's state '" + excerpt(state, 40) +
                                     "' is not one Moodle documents (finished, inprogress, "
                                     "overdue, abandoned)",
                   a);
        continue;
      }
      const auto number = intOf(a, "attempt");
      if (!number || *number < 1 || *number > 65535) {
        quarantine(id, location, "the attempt number is not a whole number from 1 to 65535", a);
        continue;
      }
      const auto timefinish = intOf(a, "timefinish");
      if (!timefinish || *timefinish <= 0) {
        quarantine(id, location, "the finished attempt has no timefinish", a);
        continue;
      }
      const auto it = a.find("sumgrades");
      if (it == a.end() || it->is_null()) {
        quarantine(id, location,
                   "the attempt has no marks (sumgrades): it still needs manual grading, or the "
                   "web service user lacks mod/quiz:viewreports; it is read again on every fetch",
                   a);
        continue;
      }
      const auto marks = numberOf(a, "sumgrades");
      if (!marks) {
        quarantine(id, location, "sumgrades is not a number", a);
        continue;
      }
      if (quiz->sumgrades <= 0) {
        quarantine(id, location,
                   "quiz " + std::to_string(quiz->id) +
                       " has no marks to score against (its sumgrades is 0): add questions with "
                       "marks, or do not map it as a quiz",
                   a);
        continue;
      }
      if (*marks < 0 || *marks > quiz->sumgrades + 1e-9) {
        quarantine(id, location,
                   "the attempt's marks " + excerpt(it->dump(), 20) + " lie outside 0.." +
                       excerpt(Json(quiz->sumgrades).dump(), 20) + " (the quiz's sumgrades)",
                   a);
        continue;
      }
      ports::SourceRecord r = baseRecord(ua.user);
      r.external_id = id;
      r.location = location;
      r.lms_item = "quiz:" + std::to_string(quiz->cmid);
      r.kind = core::FactKind::QuizAttempt;
      r.status = core::FactStatus::Completed;
      r.attempt = static_cast<std::uint16_t>(*number);
      // Attempt marks are on the quiz's sumgrades scale; the quiz grade rescales them to
      // `grade` (Moodle's quiz_rescale_grade). A quiz with grade 0 keeps the raw marks.
      if (quiz->grade > 0) {
        r.score = *marks * quiz->grade / quiz->sumgrades;
        r.max_score = quiz->grade;
      } else {
        r.score = *marks;
        r.max_score = quiz->sumgrades;
      }
      r.at = core::Instant{core::Seconds{*timefinish}};
      sink.record(std::move(r));
      ++records;
    }
  }
}

bool MoodleSource::readCourse(std::int64_t course, FetchState& st, ports::RecordSink& sink,
                              std::optional<core::Error>& fatal) {
  const std::string cs = std::to_string(course);
  auto problem = [&](const std::string& at, const core::Error& e) {
    st.problems.push_back("course " + cs + " " + at + ": " + e.message +
                          (e.hint.empty() ? "" : " (" + e.hint + ")"));
  };
  // false: stop the fetch.
  auto failed = [&](const std::string& at, CallError&& ce) {
    if (ce.error.kind == ErrorKind::Auth) {
      fatal = std::move(ce.error);
      return false;
    }
    problem(at, ce.error);
    return !ce.stop;
  };

  std::vector<Quiz> quizzes;
  if (cfg_.quizzes) {
    auto r = call("mod_quiz_get_quizzes_by_courses", {{"courseids[0]", cs}});
    if (auto* ce = std::get_if<CallError>(&r)) return failed("quizzes", std::move(*ce));
    const Json& doc = std::get<Answer>(r).doc;
    const Json* list = nullptr;
    if (doc.is_object())
      if (auto it = doc.find("quizzes"); it != doc.end() && it->is_array()) list = &*it;
    if (list == nullptr) {
      problem("quizzes", core::makeError(ErrorKind::Permanent,
                                         "mod_quiz_get_quizzes_by_courses answered without a "
                                         "quizzes list"));
      return true;
    }
    if (auto w = doc.find("warnings"); w != doc.end() && w->is_array() && !w->empty()) {
      problem("quizzes",
              core::makeError(ErrorKind::Permanent,
                              "mod_quiz_get_quizzes_by_courses warned: " +
                                  excerpt(stringOf((*w)[0], "message"), 160),
                              "", "check that the web service user is enrolled in or may view "
                                  "the course"));
      return true;
    }
    for (const Json& q : *list) {
      Quiz quiz;
      const auto id = intOf(q, "id");
      const auto cmid = intOf(q, "coursemodule");
      const auto qc = intOf(q, "course");
      if (!id || !cmid || (qc && *qc != course)) continue;
      quiz.id = *id;
      quiz.cmid = *cmid;
      quiz.sumgrades = numberOf(q, "sumgrades").value_or(0);
      quiz.grade = numberOf(q, "grade").value_or(0);
      quiz.name = stringOf(q, "name");
      quizzes.push_back(std::move(quiz));
    }
  }

  std::unordered_set<std::int64_t> seen;  // users enrolled twice, or shifted across pages
  for (std::size_t page = 0;; ++page) {
    const std::size_t from = page * cfg_.page_size;
    const std::string at = "users " + std::to_string(from + 1) + "-" +
                           std::to_string(from + cfg_.page_size);
    Params params = {{"courseid", cs},
                     {"options[0][name]", "limitfrom"},
                     {"options[0][value]", std::to_string(from)},
                     {"options[1][name]", "limitnumber"},
                     {"options[1][value]", std::to_string(cfg_.page_size)},
                     {"options[2][name]", "userfields"},
                     {"options[2][value]", "id,fullname,email,idnumber"}};
    if (cfg_.only_active) {
      params.push_back({"options[3][name]", "onlyactive"});
      params.push_back({"options[3][value]", "1"});
    }
    auto r = call("core_enrol_get_enrolled_users", params);
    if (auto* ce = std::get_if<CallError>(&r)) return failed(at, std::move(*ce));
    Answer users = std::move(std::get<Answer>(r));
    if (!users.doc.is_array()) {
      problem(at, core::makeError(ErrorKind::Permanent,
                                  "core_enrol_get_enrolled_users answered " +
                                      excerpt(users.body, 120) + ", not a list of users"));
      return true;
    }
    const std::size_t got = users.doc.size();
    // Every fetch lists the enrolled users whole: their number feeds the collapse guard.
    st.out.full_records += static_cast<std::int64_t>(got);

    // Read every user's answers first: the unit's key is the hash of all of them.
    std::string key_material = users.body;
    std::vector<UserAnswers> page_users;
    bool page_whole = true;
    bool halt = false;  // the site is failing: store what this page read, then stop
    for (const Json& u : users.doc) {
      const auto uid = intOf(u, "id");
      if (!uid) continue;  // quarantined inside the unit below
      if (!seen.insert(*uid).second) continue;
      UserAnswers ua;
      ua.user.id = *uid;
      ua.user.idnumber = trimmed(stringOf(u, "idnumber"));
      ua.user.email = trimmed(stringOf(u, "email"));
      ua.user.fullname = stringOf(u, "fullname");
      const std::string who = "user " + std::to_string(*uid);
      if (cfg_.completion) {
        auto c = call("core_completion_get_activities_completion_status",
                      {{"courseid", cs}, {"userid", std::to_string(*uid)}});
        if (auto* ce = std::get_if<CallError>(&c)) {
          page_whole = false;
          halt = !failed(who + " completion", std::move(*ce));
        } else {
          Answer& a = std::get<Answer>(c);
          if (!a.doc.is_object() || !a.doc.contains("statuses") || !a.doc["statuses"].is_array()) {
            page_whole = false;
            problem(who + " completion",
                    core::makeError(ErrorKind::Permanent,
                                    "core_completion_get_activities_completion_status answered "
                                    "without a statuses list"));
          } else {
            key_material += a.body;
            ua.completion = std::move(a);
          }
        }
      }
      for (const Quiz& quiz : quizzes) {
        if (halt) break;
        auto c = call("mod_quiz_get_user_attempts", {{"quizid", std::to_string(quiz.id)},
                                                     {"userid", std::to_string(*uid)},
                                                     {"status", "finished"},
                                                     {"includepreviews", "0"}});
        const std::string qat = who + " quiz " + std::to_string(quiz.id);
        if (auto* ce = std::get_if<CallError>(&c)) {
          page_whole = false;
          halt = !failed(qat, std::move(*ce));
          continue;
        }
        Answer& a = std::get<Answer>(c);
        if (!a.doc.is_object() || !a.doc.contains("attempts") || !a.doc["attempts"].is_array()) {
          page_whole = false;
          problem(qat, core::makeError(ErrorKind::Permanent,
                                       "mod_quiz_get_user_attempts answered without an attempts "
                                       "list"));
          continue;
        }
        key_material += a.body;
        ua.attempts.emplace_back(&quiz, std::move(a));
      }
      page_users.push_back(std::move(ua));
      if (halt) break;
    }
    if (fatal) return false;

    if (got > 0) {
      ports::UnitInfo unit;
      unit.key = "sha256:" + encoding::sha256Hex(key_material);
      unit.name = "course " + cs + " " + at;
      unit.bytes = static_cast<std::int64_t>(key_material.size());
      unit.incremental = true;
      ++st.out.units_seen;
      // A page with failed calls is never skipped later: its key covers only what was read.
      if (page_whole && sink.alreadyProcessed(unit)) {
        ++st.out.units_skipped;
      } else {
        sink.beginUnit(unit);
        std::int64_t records = 0, quarantined = 0;
        std::size_t index = 0;
        for (const Json& u : users.doc) {
          ++index;
          if (intOf(u, "id")) continue;
          ports::QuarantinedRecord q;
          q.location = "course " + cs + " " + at + " #" + std::to_string(index);
          q.reason = "an enrolled user without a numeric id";
          q.raw = excerpt(u.dump(), 300);
          sink.quarantine(std::move(q));
          ++quarantined;
        }
        for (const UserAnswers& ua : page_users) emitUser(course, ua, sink, records, quarantined);
        sink.endUnit(unit, page_whole, page_whole ? "" : "some calls of this page failed");
        st.out.records += records;
        st.out.quarantined += quarantined;
      }
    }
    if (halt) return false;
    // A short page is the last one (limitnumber is the only paging the function offers).
    if (got < cfg_.page_size) return true;
  }
}

core::Result<ports::FetchOutcome> MoodleSource::fetchAll(ports::RecordSink& sink) {
  FetchState st;
  st.out.full_records = 0;
  std::optional<core::Error> fatal;
  for (const std::int64_t course : cfg_.courses) {
    const bool go_on = readCourse(course, st, sink, fatal);
    if (fatal) return *fatal;
    if (!go_on) break;
  }
  ports::FetchOutcome& out = st.out;
  out.complete = st.problems.empty();
  if (!out.complete) {
    out.problem = st.problems.front();
    if (st.problems.size() > 1) {
      out.problem += "; " + std::to_string(st.problems.size() - 1) + " more problem(s)";
      for (std::size_t i = 1; i < st.problems.size() && i <= kMaxProblemsListed; ++i)
        out.problem += "; " + st.problems[i];
    }
  }
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

core::Result<std::unique_ptr<ports::LmsSource>> build(const std::string& name,
                                                     const ports::Options& options,
                                                     const std::string& base_dir,
                                                     const ports::SecretReader& secrets,
                                                     std::shared_ptr<http::Redactor> redactor,
                                                     http::ClientOptions client_options) {
  const OptionReader opts("source '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;

  auto root = options::siteRoot(opts, "url", "/webservice/", "https://moodle.example.com");
  if (!root) return root.error();
  cfg.url = root->url;
  auto token = options::tokenSecret(opts, "token", secrets, "/etc/certgate/moodle-token");
  if (!token) return token.error();
  cfg.token = *token;
  if (redactor) redactor->add(cfg.token);

  auto courses = options::idList(opts, "courses", true, "course id", "[12, 31]");
  if (!courses) return courses.error();
  for (const auto& c : *courses) cfg.courses.push_back(std::stoll(c));

  auto page = opts.integer("page_size", 1, 1000, "a whole number from 1 to 1000",
                           "e.g. page_size: 50");
  if (!page) return page.error();
  if (page->has_value()) cfg.page_size = static_cast<std::size_t>(**page);
  auto completion = opts.flag("completion", true);
  if (!completion) return completion.error();
  cfg.completion = *completion;
  auto quizzes = opts.flag("quizzes", true);
  if (!quizzes) return quizzes.error();
  cfg.quizzes = *quizzes;
  if (!cfg.completion && !cfg.quizzes)
    return opts.error("quizzes", "completion and quizzes are both off: nothing would be read",
                      "turn on at least one of them", opts.find("quizzes"));
  auto active = opts.flag("only_active", true);
  if (!active) return active.error();
  cfg.only_active = *active;

  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;
  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 60s");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  return std::unique_ptr<ports::LmsSource>(std::make_unique<MoodleSource>(
      name, std::move(cfg), std::move(redactor), std::move(client_options)));
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "moodle";
    s.description =
        "Reads activity completions and quiz attempts of the listed courses through Moodle's "
        "REST web services (token auth; every course read whole on each fetch)";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The Moodle site's root address (calls go to {url}/webservice/rest/server.php)"},
        {"token", ValueType::Secret, true, "",
         "Web service token of certgate's Moodle user (sent in the POST body, never in a URL)"},
        {"courses", ValueType::StringList, true, "",
         "Ids of the courses to read (the id in course/view.php?id=N)"},
        {"page_size", ValueType::Int, false, "50",
         "Enrolled users per core_enrol_get_enrolled_users call (limitnumber)"},
        {"completion", ValueType::Bool, false, "true",
         "Read activity completion (lms items cm:<course module id>)"},
        {"quizzes", ValueType::Bool, false, "true",
         "Read finished quiz attempts (lms items quiz:<course module id>)"},
        {"only_active", ValueType::Bool, false, "true",
         "Read only users with an active enrolment (suspended enrolments are skipped)"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for the site instead of the system's"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    return build(name, options, base_dir, secrets, std::move(redactor), std::move(client_options));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::moodle
