#pragma once
// A loopback fake of a Moodle site's REST web service server, for the moodle connector tests and
// the end-to-end sync test. It follows Moodle's own definitions (summarised with sources in
// ../shared/reference/lms.md section 1):
//  - webservice/rest/server.php and webservice/rest/locallib.php: one endpoint,
//    /webservice/rest/server.php, GET or POST; wstoken, wsfunction, moodlewsrestformat and the
//    function's parameters are read from the query string and the form body alike; array
//    parameters in form encoding (courseids[0]=12, options[0][name]=limitfrom ...). Errors are
//    answered with HTTP 200 and {"exception": class, "errorcode": code, "message": text}
//    (send_error sets no status); with moodlewsrestformat other than json the error is XML
//    (<EXCEPTION class=...><ERRORCODE>..<MESSAGE>..). A site whose REST protocol is off answers
//    403 with an empty body.
//  - Token checks as webservice/lib.php: an unknown token is moodle_exception invalidtoken
//    ("Invalid token - token not found"); a function outside the token's service is
//    webservice_access_exception accessexception ("Access control exception"); an unknown
//    function is dml_missing_record_exception invalidrecord; a missing parameter is
//    invalid_parameter_exception invalidparameter.
//  - core_enrol_get_enrolled_users (enrol/externallib.php): courseid and options[] name/value
//    pairs limitfrom, limitnumber, onlyactive, userfields; an array of users ordered by id.
//  - mod_quiz_get_quizzes_by_courses (mod/quiz/classes/external.php): {quizzes[], warnings[]};
//    a course the user cannot access gives a warning, not a quiz.
//  - mod_quiz_get_user_attempts: quizid, userid, status (all|finished|unfinished, default
//    finished), includepreviews; {attempts[], warnings[]}.
//  - core_completion_get_activities_completion_status (completion/classes/external.php):
//    courseid, userid; {statuses[], warnings[]}; completionnotenabled when the course does not
//    track completion.
// The site's data comes from a JSON document shaped like tests/fixtures/moodle/site.json.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace certgate::testing::moodle {

struct LoggedCall {
  std::string method;
  std::string function;                          // wsfunction
  std::map<std::string, std::string> params;     // every parameter, query and body merged
  bool token_in_query = false;                   // wstoken was in the URL
  std::string content_type;
  int status = 0;
  std::string answer;                            // the body sent
};

struct MoodleFakeOptions {
  std::string token = "moodle-ws-token-5f2e";
  // Functions of the token's external service; empty = every function the fake knows.
  std::set<std::string> service_functions;
  bool rest_enabled = true;
};

class MoodleFake {
 public:
  explicit MoodleFake(MoodleFakeOptions options = {});
  ~MoodleFake();
  MoodleFake(const MoodleFake&) = delete;
  MoodleFake& operator=(const MoodleFake&) = delete;

  void start();  // 127.0.0.1, kernel-chosen port, own threads
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT (the site root)

  // ---- data (site.json shape) ----
  void load(const nlohmann::json& site);
  nlohmann::json& site();  // edit between fetches (not while a fetch runs)

  // ---- faults (calls counted from 1 across every function) ----
  // Calls nth .. nth+count-1 answer `status` (with Retry-After when >= 0) and a text body.
  void failCalls(int nth, int count, int status, long retry_after = -1);
  // Every call of `function` (for `userid`, or any user when 0) answers this exception body.
  void exceptionFor(const std::string& function, std::int64_t userid, const std::string& exception,
                    const std::string& errorcode, const std::string& message);
  void setToken(const std::string& token);
  void clearFaults();  // drops failCalls and exceptionFor rules

  // ---- observation ----
  std::vector<LoggedCall> calls() const;
  int callCount() const;
  void clearCalls();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::moodle
