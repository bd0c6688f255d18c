// The canvas source against the loopback Canvas REST API fake (tests/fakes/canvas): Link-header
// paging, the graded_since cursor, throttling (403 and 429, X-Rate-Limit-Remaining), auth,
// failures mid-way, malformed records, score scales, configuration errors.
#include <catch2/catch.hpp>

#include <algorithm>

#include "connectors/canvas/canvas_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::canvas_support;
using certgate::testing::RecordingSink;
using certgate::testing::canvas::CanvasFake;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");

const ports::SourceRecord* byId(const RecordingSink& sink, const std::string& id) {
  for (const auto& r : sink.records)
    if (r.external_id == id) return &r;
  return nullptr;
}

struct Site {
  CanvasFake fake;
  Sleeps sleeps;
  Site() {
    fake.load(fixture("site.json"));
    fake.start();
  }
};

std::vector<testing::canvas::LoggedRequest> submissionRequests(const CanvasFake& f) {
  std::vector<testing::canvas::LoggedRequest> out;
  for (const auto& r : f.requests())
    if (r.path.find("/students/submissions") != std::string::npos) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("canvas follows the Link header through every list and normalises progress and "
          "graded attempts on every scale", "[connector][canvas]") {
  Site s;
  auto src = makeSource(options(s.fake, {{"per_page", "2"}}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  INFO(out->problem);
  CHECK(out->complete);
  CHECK(sink.protocol_errors == 0);
  CHECK(sink.quarantined.empty());
  CHECK(out->records == 8);
  CHECK(s.fake.requestCount() == 9);  // 2+2+2 pages in course 1234, 1+1+1 in course 1240
  CHECK(out->units_seen == 6);        // the student lists are read for identity only
  for (const auto& u : sink.begun) CHECK(u.incremental);
  for (const auto& r : s.fake.requests()) {
    CHECK(r.authorization == "Bearer " + kToken);
    CHECK(r.status == 200);
    CHECK(r.param("per_page") == "2");
  }
  const auto subs = submissionRequests(s.fake);
  REQUIRE(!subs.empty());
  CHECK(subs[0].param("student_ids[]") == "all");
  CHECK(subs[0].param("graded_since").empty());  // first fetch, no start: everything
  CHECK(subs[0].params.at("include[]") == std::vector<std::string>{"assignment", "submission_history"});
  CHECK(subs[1].param("page") == "2");  // followed from the Link header

  const auto* done = byId(sink, "progress:1234:501");
  REQUIRE(done);
  CHECK(done->lms_item == "course:1234");
  CHECK(done->at == *core::parseIso("2026-11-20T09:00:00Z"));
  CHECK(done->employee_id == "E0001");
  CHECK(done->email == "ada@example.org");
  CHECK(done->source_user == "501");
  CHECK(done->display_name == "Ada Lovelace");
  CHECK(byId(sink, "progress:1234:503") == nullptr);  // requirements not all met
  CHECK(byId(sink, "progress:1240:501") != nullptr);

  // Every attempt of the history, raw points out of points_possible.
  const auto* first = byId(sink, "submission:55:501:1");
  REQUIRE(first);
  CHECK(first->lms_item == "assignment:55");
  CHECK(first->attempt == 1);
  CHECK(first->score == Approx(12));
  CHECK(first->max_score == Approx(20));
  CHECK(first->at == *core::parseIso("2026-11-21T10:00:00Z"));
  CHECK(first->lms_pass == -1);
  const auto* second = byId(sink, "submission:55:501:2");
  REQUIRE(second);
  CHECK(second->score == Approx(18));
  // Fractional points.
  const auto* fraction = byId(sink, "submission:60:502:1");
  REQUIRE(fraction);
  CHECK(fraction->score == Approx(11.25));
  CHECK(fraction->max_score == Approx(12.5));
  // Complete/incomplete grading carries Canvas's own pass flag.
  const auto* passfail = byId(sink, "submission:56:501:1");
  REQUIRE(passfail);
  CHECK(passfail->lms_pass == 1);
  CHECK(passfail->max_score == Approx(1));
  CHECK(byId(sink, "submission:55:503:1") == nullptr);  // submitted, not graded

  // The cursor is the latest graded_at seen.
  CHECK(out->next_cursor.rfind("2026-11-23T10:05:00Z;q=", 0) == 0);
}

TEST_CASE("the next canvas fetch reads submissions graded since the cursor minus the overlap, "
          "and catches late grading and regrades", "[connector][canvas]") {
  Site s;
  auto src = makeSource(options(s.fake, {{"overlap", "1h"}}), s.sleeps);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  // A late grade for Linus and a regrade of Grace's attempt, both after the cursor.
  for (auto& sub : s.fake.site()["submissions"]) {
    if (sub["id"] == 9005) {
      sub["workflow_state"] = "graded";
      sub["score"] = 17.0;
      sub["graded_at"] = "2026-11-25T09:00:00Z";
      sub["submission_history"][0]["score"] = 17.0;
      sub["submission_history"][0]["workflow_state"] = "graded";
    }
    if (sub["id"] == 9002) {
      sub["score"] = 14.0;
      sub["graded_at"] = "2026-11-25T08:00:00Z";
      sub["submission_history"][0]["score"] = 14.0;
    }
  }
  RecordingSink second;
  auto two = src->fetch(one->next_cursor, kNow, second);
  REQUIRE(two.ok());
  CHECK(two->complete);
  const auto subs = submissionRequests(s.fake);
  CHECK(subs.back().param("graded_since") == "2026-11-23T09:05:00Z");  // cursor - 1h
  const auto* late = byId(second, "submission:55:503:1");
  REQUIRE(late);
  CHECK(late->score == Approx(17));
  const auto* regraded = byId(second, "submission:55:502:1");
  REQUIRE(regraded);
  CHECK(regraded->score == Approx(14));
  CHECK(byId(second, "submission:60:502:1") != nullptr);  // in the overlap: read again
  CHECK(byId(second, "submission:55:501:2") == nullptr);  // graded long before
  CHECK(two->next_cursor.rfind("2026-11-25T09:00:00Z;q=", 0) == 0);

  // A cursor for another course list starts over.
  auto other = makeSource(options(s.fake, {}, {"1234"}), s.sleeps);
  RecordingSink third;
  auto three = other->fetch(two->next_cursor, kNow, third);
  REQUIRE(three.ok());
  CHECK(submissionRequests(s.fake).back().param("graded_since").empty());
}

TEST_CASE("an empty canvas page with a next link is followed", "[connector][canvas]") {
  Site s;
  s.fake.emptyPage(3);  // course 1234's first progress page
  auto src = makeSource(options(s.fake, {{"per_page", "2"}}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 8);
  CHECK(s.fake.requestCount() == 10);
}

TEST_CASE("canvas throttling: 403 Rate Limit Exceeded and 429 are waited out, a low "
          "X-Rate-Limit-Remaining paces the requests", "[connector][canvas]") {
  Site s;
  s.fake.throttle(2, 2, 403);
  auto src = makeSource(options(s.fake, {}, {"1234"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 6);
  REQUIRE(s.sleeps.waits.size() == 2);
  CHECK(s.sleeps.waits[0] == std::chrono::seconds(1));
  CHECK(s.sleeps.waits[1] == std::chrono::seconds(2));

  Site t;
  t.fake.throttle(1, 2, 429);
  auto src2 = makeSource(options(t.fake, {}, {"1234"}), t.sleeps);
  RecordingSink sink2;
  auto out2 = src2->fetch("", kNow, sink2);
  REQUIRE(out2.ok());
  CHECK(out2->complete);
  CHECK(t.sleeps.waits.size() == 2);

  // Throttled for good: incomplete, not an auth error.
  Site u;
  u.fake.throttle(1, 100, 403);
  auto src3 = makeSource(options(u.fake, {}, {"1234"}), u.sleeps);
  RecordingSink sink3;
  auto out3 = src3->fetch("", kNow, sink3);
  REQUIRE(out3.ok());
  CHECK_FALSE(out3->complete);
  CHECK_THAT(out3->problem, Catch::Contains("course 1234 students page 1"));
  CHECK_THAT(out3->problem, Catch::Contains("Rate Limit Exceeded"));
  CHECK(out3->next_cursor.empty());

  Site v;
  v.fake.setRateLimitRemaining(40);
  auto src4 = makeSource(options(v.fake, {{"pace", "2s"}, {"min_rate_remaining", "50"}}, {"1240"}),
                         v.sleeps);
  RecordingSink sink4;
  auto out4 = src4->fetch("", kNow, sink4);
  REQUIRE(out4.ok());
  CHECK(out4->complete);
  // Three requests: every one after the first waits `pace`.
  REQUIRE(v.sleeps.waits.size() == 2);
  for (const auto& w : v.sleeps.waits) CHECK(w == std::chrono::seconds(2));
}

TEST_CASE("a refused canvas token is an auth error with a hint, never showing the token",
          "[connector][canvas]") {
  Site s;
  auto redactor = std::make_shared<connectors::http::Redactor>();
  auto src = makeSource(options(s.fake), s.sleeps, secrets("stale-token-0042"), redactor);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("HTTP 401"));
  CHECK_THAT(out.error().message, Catch::Contains("Invalid access token."));
  CHECK_THAT(out.error().hint, Catch::Contains("generate a new one"));
  CHECK(out.error().describe().find("stale-token-0042") == std::string::npos);
  CHECK(s.fake.requestCount() == 1);
  CHECK(s.sleeps.waits.empty());
}

TEST_CASE("a 500 on canvas page 3 leaves the fetch incomplete, keeps the cursor and delivers "
          "pages 1 and 2", "[connector][canvas]") {
  Site s;
  // per_page 1, progress only: requests 1-4 list the students, 5-8 would be the progress pages.
  s.fake.failRequests(7, 100, 500);
  auto src = makeSource(options(s.fake, {{"per_page", "1"}, {"submissions", "false"}}, {"1234"}),
                        s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("2026-11-01T00:00:00Z;q=old", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("course 1234 progress page 3"));
  CHECK_THAT(out->problem, Catch::Contains("HTTP 500"));
  CHECK(sink.records.size() == 2);
  CHECK(sink.ended.size() == 2);
  CHECK(out->next_cursor.empty());  // the stored cursor stays
  CHECK(s.sleeps.waits.size() == 3);
}

TEST_CASE("malformed canvas records are quarantined with their ids, the rest count",
          "[connector][canvas]") {
  Site s;
  const Json bad = fixture("malformed.json");
  for (auto& p : s.fake.site()["progress"])
    if (p["user_id"] == 503) p["completed_at"] = bad["progress"][0]["completed_at"];
  for (const auto& m : bad["submissions"]) {
    s.fake.site()["submissions"].push_back(m["submission"]);
    if (m.contains("assignment")) s.fake.site()["assignments"].push_back(m["assignment"]);
  }
  auto src = makeSource(options(s.fake, {}, {"1234"}), s.sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 6);
  const std::size_t expected = bad["progress"].size() + bad["submissions"].size();
  CHECK(sink.quarantined.size() == expected);
  for (const auto* group : {&bad["progress"], &bad["submissions"]})
    for (const auto& m : *group) {
      const std::string id = m["id"];
      INFO(id);
      auto it = std::find_if(sink.quarantined.begin(), sink.quarantined.end(),
                             [&](const auto& q) { return q.external_id == id; });
      REQUIRE(it != sink.quarantined.end());
      CHECK_THAT(it->reason, Catch::Contains(m["expect"].get<std::string>()));
      CHECK_THAT(it->location, Catch::Contains("course 1234"));
      CHECK_FALSE(it->raw.empty());
    }
}

TEST_CASE("canvas configuration errors name the key and what to write", "[connector][canvas]") {
  Site s;
  struct Row {
    std::vector<std::pair<std::string, std::string>> extra;
    std::vector<std::string> courses;
    std::string message;
    const char* reason;
  };
  const std::vector<Row> rows = {
      {{{"per_page", "500"}}, {"1234"}, "per_page", "per_page above Canvas's maximum"},
      {{}, {"sis_course_id:X"}, "is not a Canvas id", "courses are numeric ids"},
      {{{"progress", "false"}, {"submissions", "false"}}, {"1234"}, "nothing would be read",
       "nothing to read"},
      {{{"start", "last week"}}, {"1234"}, "is not an ISO 8601", "start must be a time"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    auto made = connectors::canvas::makeSource("canvas", options(s.fake, row.extra, row.courses),
                                               "/etc/certgate", secrets(), nullptr);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == core::ErrorKind::Invalid);
    CHECK_THAT(made.error().message, Catch::Contains(row.message));
  }
}
