// The moodle source against the loopback Moodle web services fake (tests/fakes/moodle): user
// paging, the calls and their parameters, score scales, HTTP-200 exception bodies, auth,
// throttling, failures mid-way, malformed records, configuration errors.
#include <catch2/catch.hpp>

#include <algorithm>

#include "connectors/moodle/moodle_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::moodle_support;
using certgate::testing::RecordingSink;
using certgate::testing::moodle::MoodleFake;
using certgate::testing::moodle::MoodleFakeOptions;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");

const ports::SourceRecord* byId(const RecordingSink& sink, const std::string& id) {
  for (const auto& r : sink.records)
    if (r.external_id == id) return &r;
  return nullptr;
}

int callsOf(const MoodleFake& site, const std::string& function) {
  const auto calls = site.calls();
  return static_cast<int>(std::count_if(calls.begin(), calls.end(),
                                        [&](const auto& c) { return c.function == function; }));
}

struct Site {
  MoodleFake fake;
  Sleeps sleeps;
  explicit Site(MoodleFakeOptions o = {}) : fake(std::move(o)) {
    fake.load(fixture("site.json"));
    fake.start();
  }
};

}  // namespace

TEST_CASE("moodle reads completions and finished attempts of every course, page by page, and "
          "scales quiz marks to the quiz grade", "[connector][moodle]") {
  Site s;
  auto src = makeSource(options(s.fake, {{"page_size", "2"}}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  INFO(out->problem);
  CHECK(out->complete);
  CHECK(out->next_cursor.empty());  // Moodle has no `since`
  CHECK(sink.protocol_errors == 0);
  CHECK(sink.quarantined.empty());
  CHECK(out->records == 11);
  CHECK(sink.records.size() == 11);
  // Course 12: active users 101, 102, 103, 105 in pages of 2, then an empty page; course 31:
  // 101, 102, then an empty page. Pages with users are units.
  CHECK(callsOf(s.fake, "core_enrol_get_enrolled_users") == 5);
  CHECK(out->units_seen == 3);
  for (const auto& u : sink.begun) CHECK(u.incremental);

  // Every call is a POST with the token in the form body only, JSON format, and answered 200.
  for (const auto& c : s.fake.calls()) {
    CHECK(c.method == "POST");
    CHECK_FALSE(c.token_in_query);
    CHECK(c.params.at("moodlewsrestformat") == "json");
    CHECK(c.content_type.rfind("application/x-www-form-urlencoded", 0) == 0);
    CHECK(c.answer.find("\"exception\"") == std::string::npos);
  }
  // Paging parameters and the finished-only attempt filter.
  const auto calls = s.fake.calls();
  const auto enrol = std::find_if(calls.begin(), calls.end(), [](const auto& c) {
    return c.function == "core_enrol_get_enrolled_users" && c.params.at("options[0][value]") == "2";
  });
  REQUIRE(enrol != calls.end());
  CHECK(enrol->params.at("options[0][name]") == "limitfrom");
  CHECK(enrol->params.at("options[1][name]") == "limitnumber");
  CHECK(enrol->params.at("options[1][value]") == "2");
  CHECK(enrol->params.at("options[3][name]") == "onlyactive");
  for (const auto& c : calls)
    if (c.function == "mod_quiz_get_user_attempts") {
      CHECK(c.params.at("status") == "finished");
      CHECK(c.params.at("includepreviews") == "0");
    }

  // Completion states: 1 complete, 2 complete pass, 3 complete fail; 0 is no record.
  const auto* done = byId(sink, "completion:12:44:101");
  REQUIRE(done);
  CHECK(done->lms_item == "cm:44");
  CHECK(done->status == core::FactStatus::Completed);
  CHECK(done->lms_pass == -1);
  CHECK(done->at == *core::parseIso("2026-11-20T09:00:00Z"));
  CHECK(done->employee_id == "E0001");
  CHECK(done->email == "ada@example.org");
  CHECK(done->source_user == "101");
  CHECK(done->display_name == "Ada Lovelace");
  const auto* pass = byId(sink, "completion:12:45:101");
  REQUIRE(pass);
  CHECK(pass->status == core::FactStatus::Passed);
  CHECK(pass->lms_pass == 1);
  const auto* fail = byId(sink, "completion:12:45:102");
  REQUIRE(fail);
  CHECK(fail->status == core::FactStatus::Failed);
  CHECK(fail->lms_pass == 0);
  CHECK(byId(sink, "completion:12:44:103") == nullptr);
  CHECK(byId(sink, "completion:12:44:104") == nullptr);  // suspended enrolment: not read
  const auto* manual = byId(sink, "completion:12:44:105");
  REQUIRE(manual);
  CHECK(manual->employee_id.empty());  // no ID number in Moodle: the email is the claim
  CHECK(manual->email == "alan@example.org");

  // Quiz 7: 10 marks scaled to a grade of 100.
  const auto* first = byId(sink, "attempt:501");
  REQUIRE(first);
  CHECK(first->lms_item == "quiz:45");
  CHECK(first->kind == core::FactKind::QuizAttempt);
  CHECK(first->attempt == 1);
  CHECK(first->score == Approx(60));
  CHECK(first->max_score == Approx(100));
  CHECK(first->at == *core::parseIso("2026-11-21T10:00:00Z"));
  const auto* second = byId(sink, "attempt:502");
  REQUIRE(second);
  CHECK(second->attempt == 2);
  CHECK(second->score == Approx(90));
  CHECK(byId(sink, "attempt:503") == nullptr);  // in progress
  CHECK(byId(sink, "attempt:505") == nullptr);  // a preview
  const auto* half = byId(sink, "attempt:504");
  REQUIRE(half);
  CHECK(half->score == Approx(45));
  // Quiz 8: 20 marks scaled to a grade of 10.
  const auto* scaled_down = byId(sink, "attempt:601");
  REQUIRE(scaled_down);
  CHECK(scaled_down->lms_item == "quiz:52");
  CHECK(scaled_down->score == Approx(8.5));
  CHECK(scaled_down->max_score == Approx(10));
  // Quiz 9 has grade 0 (not graded): the raw marks out of its sumgrades.
  const auto* raw = byId(sink, "attempt:701");
  REQUIRE(raw);
  CHECK(raw->score == Approx(8.5));
  CHECK(raw->max_score == Approx(8.5));
}

TEST_CASE("a second moodle fetch skips pages whose answers did not change", "[connector][moodle]") {
  Site s;
  auto src = makeSource(options(s.fake, {{"page_size", "2"}}), s.sleeps);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  RecordingSink again;
  for (const auto& u : first.ended) again.processed.insert(u.unit.key);
  // A regraded attempt changes one page; the other two are skipped.
  for (auto& a : s.fake.site()["attempts"])
    if (a["id"] == 504) a["sumgrades"] = 8.0;
  auto two = src->fetch("", kNow, again);
  REQUIRE(two.ok());
  CHECK(two->complete);
  CHECK(two->units_seen == 3);
  CHECK(two->units_skipped == 2);
  const auto* regraded = byId(again, "attempt:504");
  REQUIRE(regraded);
  CHECK(regraded->score == Approx(80));
}

TEST_CASE("a course with nobody enrolled is a complete fetch that reads nothing",
          "[connector][moodle]") {
  Site s;
  s.fake.site()["courses"].push_back({{"id", 77}, {"shortname", "EMPTY"}, {"enablecompletion", 1}});
  auto src = makeSource(options(s.fake, {}, {"77"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 0);
  CHECK(out->units_seen == 0);
  CHECK(sink.begun.empty());
  CHECK(callsOf(s.fake, "core_enrol_get_enrolled_users") == 1);
}

TEST_CASE("an exception answered with HTTP 200 is an error: the fetch is incomplete and names "
          "the call, the other users still count", "[connector][moodle]") {
  Site s;
  s.fake.exceptionFor("core_completion_get_activities_completion_status", 102, "moodle_exception",
                      "cannotviewreport", "You cannot view this report");
  auto src = makeSource(options(s.fake, {{"page_size", "10"}}, {"12"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("course 12 user 102 completion"));
  CHECK_THAT(out->problem, Catch::Contains("moodle_exception (cannotviewreport)"));
  CHECK_THAT(out->problem, Catch::Contains("You cannot view this report"));
  // The page with the failed call is stored but not marked complete, so it is read again.
  REQUIRE(sink.ended.size() == 1);
  CHECK_FALSE(sink.ended[0].complete);
  CHECK(byId(sink, "completion:12:44:101") != nullptr);
  CHECK(byId(sink, "completion:12:44:102") == nullptr);
  CHECK(byId(sink, "attempt:504") != nullptr);  // 102's attempts were read
  CHECK(byId(sink, "completion:12:44:105") != nullptr);
  CHECK(s.sleeps.waits.empty());  // an exception is an answer, not retried
}

TEST_CASE("an invalid token is an auth error with a hint, and the token never shows",
          "[connector][moodle]") {
  Site s;
  auto redactor = std::make_shared<connectors::http::Redactor>();
  auto src = makeSource(options(s.fake), s.sleeps, secrets("wrong-token-0042"), redactor);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("invalidtoken"));
  CHECK_THAT(out.error().message, Catch::Contains("Invalid token - token not found"));
  CHECK_THAT(out.error().hint, Catch::Contains("Manage tokens"));
  CHECK(out.error().describe().find("wrong-token-0042") == std::string::npos);
  CHECK(redactor->redact("POST /x?wstoken=wrong-token-0042") == "POST /x?wstoken=[redacted]");
  CHECK(s.fake.callCount() == 1);  // nothing more is tried with a refused token
  CHECK(sink.records.empty());
}

TEST_CASE("a function missing from the token's service, or a capability the user lacks, is an "
          "auth error naming what to fix", "[connector][moodle]") {
  MoodleFakeOptions o;
  o.service_functions = {"core_enrol_get_enrolled_users", "mod_quiz_get_quizzes_by_courses",
                         "mod_quiz_get_user_attempts"};
  Site s(o);
  auto src = makeSource(options(s.fake, {}, {"12"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("accessexception"));
  CHECK_THAT(out.error().hint,
             Catch::Contains("does not offer core_completion_get_activities_completion_status"));

  Site caps;
  caps.fake.exceptionFor("mod_quiz_get_user_attempts", 0, "required_capability_exception",
                         "nopermissions",
                         "Sorry, but you do not currently have permissions to do that (View quiz "
                         "reports).");
  auto src2 = makeSource(options(caps.fake, {}, {"12"}), caps.sleeps);
  RecordingSink sink2;
  auto out2 = src2->fetch("", kNow, sink2);
  REQUIRE_FALSE(out2.ok());
  CHECK(out2.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out2.error().hint, Catch::Contains("lacks a capability"));

  MoodleFakeOptions off;
  off.rest_enabled = false;
  Site disabled(off);
  auto src3 = makeSource(options(disabled.fake), disabled.sleeps);
  RecordingSink sink3;
  auto out3 = src3->fetch("", kNow, sink3);
  REQUIRE_FALSE(out3.ok());
  CHECK(out3.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out3.error().message, Catch::Contains("HTTP 403"));
  CHECK_THAT(out3.error().hint, Catch::Contains("REST protocol"));
}

TEST_CASE("a 503 with Retry-After from the site's proxy is waited out and the fetch completes",
          "[connector][moodle]") {
  Site s;
  s.fake.failCalls(2, 2, 503, 7);
  auto src = makeSource(options(s.fake, {}, {"12"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 8);
  REQUIRE(s.sleeps.waits.size() == 2);
  CHECK(s.sleeps.waits[0] == std::chrono::seconds(7));
  CHECK(s.sleeps.waits[1] == std::chrono::seconds(7));

  // Throttling that outlasts the retries: incomplete, not an error.
  Site busy;
  busy.fake.failCalls(1, 100, 429, 1);
  auto src2 = makeSource(options(busy.fake, {}, {"12"}), busy.sleeps);
  RecordingSink sink2;
  auto out2 = src2->fetch("", kNow, sink2);
  REQUIRE(out2.ok());
  CHECK_FALSE(out2->complete);
  CHECK_THAT(out2->problem, Catch::Contains("course 12 quizzes"));
  CHECK_THAT(out2->problem, Catch::Contains("429"));
}

TEST_CASE("a 500 on the third page of users leaves the fetch incomplete and delivers the first "
          "two pages", "[connector][moodle]") {
  Site s;
  // page_size 1, completion only: call 1 users page 1, 2 its completion, 3 page 2, 4 its
  // completion, 5 page 3.
  s.fake.failCalls(5, 100, 500);
  auto src = makeSource(options(s.fake, {{"page_size", "1"}, {"quizzes", "false"}}, {"12", "31"}),
                        s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("course 12 users 3-3"));
  CHECK_THAT(out->problem, Catch::Contains("HTTP 500"));
  CHECK(out->problem.find(kToken) == std::string::npos);
  CHECK(sink.records.size() == 4);  // users 101 and 102, two completions each
  CHECK(sink.ended.size() == 2);
  for (const auto& e : sink.ended) CHECK(e.complete);
  CHECK(s.sleeps.waits.size() == 3);  // retried, then given up
  // The site is failing: course 31 is not tried.
  for (const auto& c : s.fake.calls()) CHECK((c.params.count("courseid") == 0 || c.params.at("courseid") == "12"));
}

TEST_CASE("malformed completion statuses and attempts are quarantined with their ids, the rest "
          "count", "[connector][moodle]") {
  Site s;
  const Json bad = fixture("malformed.json");
  for (auto& entry : s.fake.site()["completion"])
    if (entry["userid"] == 103 && entry["courseid"] == 12)
      for (const auto& m : bad["completion"]) entry["statuses"].push_back(m["status"]);
  for (const auto& m : bad["attempts"]) s.fake.site()["attempts"].push_back(m["attempt"]);
  auto src = makeSource(options(s.fake, {}, {"12"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 8);
  const std::size_t expected = bad["completion"].size() + bad["attempts"].size();
  CHECK(sink.quarantined.size() == expected);
  CHECK(out->quarantined == static_cast<std::int64_t>(expected));
  for (const auto* group : {&bad["completion"], &bad["attempts"]})
    for (const auto& m : *group) {
      const std::string id = m["id"];
      INFO(id);
      auto it = std::find_if(sink.quarantined.begin(), sink.quarantined.end(),
                             [&](const auto& q) { return q.external_id == id; });
      REQUIRE(it != sink.quarantined.end());
      CHECK_THAT(it->reason, Catch::Contains(m["expect"].get<std::string>()));
      CHECK_THAT(it->location, Catch::Contains("course 12 user 103"));
      CHECK_FALSE(it->raw.empty());
    }
}

TEST_CASE("a course without completion tracking makes the fetch incomplete with what to do",
          "[connector][moodle]") {
  Site s;
  s.fake.site()["courses"][1]["enablecompletion"] = 0;
  auto src = makeSource(options(s.fake), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("course 31 user 101 completion"));
  CHECK_THAT(out->problem, Catch::Contains("completion: false"));
  CHECK(byId(sink, "attempt:601") != nullptr);

  auto quizzes_only = makeSource(options(s.fake, {{"completion", "false"}}, {"31"}), s.sleeps);
  RecordingSink sink2;
  auto out2 = quizzes_only->fetch("", kNow, sink2);
  REQUIRE(out2.ok());
  CHECK(out2->complete);
  CHECK(out2->records == 2);
}

TEST_CASE("moodle configuration errors name the key and what to write", "[connector][moodle]") {
  Site s;
  struct Row {
    std::vector<std::pair<std::string, std::string>> extra;
    std::vector<std::string> courses;
    std::string key, message;
    const char* reason;
  };
  const std::vector<Row> rows = {
      {{{"page_size", "0"}}, {"12"}, "page_size", "is not a whole number from 1 to 1000",
       "page size out of range"},
      {{}, {"12", "abc"}, "courses", "'abc' is not a course id", "course ids are numbers"},
      {{}, {"12", "12"}, "courses", "listed twice", "a course twice"},
      {{{"completion", "false"}, {"quizzes", "false"}}, {"12"}, "quizzes", "nothing would be read",
       "nothing to read"},
      {{{"colour", "blue"}}, {"12"}, "colour", "unknown", "unknown keys are refused"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    auto made = connectors::moodle::makeSource("moodle", options(s.fake, row.extra, row.courses),
                                               "/etc/certgate", secrets(), nullptr);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == core::ErrorKind::Invalid);
    CHECK_THAT(made.error().message, Catch::Contains(row.key));
    CHECK_THAT(made.error().message, Catch::Contains(row.message));
  }
  // A remote site over plain http would send the token in clear.
  ports::Options remote = options(s.fake);
  for (auto& [k, v] : remote.values)
    if (k == "url") v.scalar = "http://moodle.example.com";
  auto made = connectors::moodle::makeSource("moodle", remote, "/etc/certgate", secrets(), nullptr);
  REQUIRE_FALSE(made.ok());
  CHECK_THAT(made.error().message, Catch::Contains("must use https"));
  // The token is never written inline.
  ports::Options inline_token = options(s.fake);
  for (auto& [k, v] : inline_token.values)
    if (k == "token") {
      v.shape = ports::OptionValue::Shape::Scalar;
      v.scalar = "abc123";
    }
  made = connectors::moodle::makeSource("moodle", inline_token, "/etc/certgate", secrets(), nullptr);
  REQUIRE_FALSE(made.ok());
  CHECK(made.error().describe().find("abc123") == std::string::npos);
}
