// The cornerstone source against the loopback Reporting API fake (tests/fakes/cornerstone):
// OAuth token fetch and renewal, nextLink paging, an empty page, the user view lookups, the
// cursor and its overlap, 429 with Retry-After, the client-side rate limiter (an injected clock),
// a 500 on page 3, auth failure, malformed rows, scores, configuration errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "connectors/common/rate_limiter.hpp"
#include "connectors/cornerstone/cornerstone_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::cornerstone_support;
using certgate::testing::RecordingSink;
using certgate::testing::cornerstone::CornerstoneFake;
using certgate::testing::cornerstone::LoggedRequest;

namespace {

const core::Instant kNow = *core::parseIso("2026-03-10T12:00:00Z");
constexpr const char* kBasics = "0f3c2a51-7d4e-4b8a-9c1e-5a6b7c8d9e01";
constexpr const char* kQuiz = "7a9e4c22-1b3d-4f5a-8e6c-2d4f6a8b0c02";

void load(CornerstoneFake& csod) {
  for (const auto& r : fixture("transcript.json")) csod.addTranscript(r);
  for (const auto& u : fixture("users.json")) csod.addUser(u);
}

std::vector<LoggedRequest> ofView(const CornerstoneFake& csod, const std::string& view) {
  std::vector<LoggedRequest> out;
  for (const auto& r : csod.requests())
    if (r.path.size() >= view.size() && r.path.compare(r.path.size() - view.size(), view.size(), view) == 0)
      out.push_back(r);
  return out;
}

const ports::SourceRecord* byId(const RecordingSink& sink, const std::string& id) {
  for (const auto& r : sink.records)
    if (r.external_id == id) return &r;
  return nullptr;
}

Json row(int user, const std::string& object, const std::string& touched, const std::string& status = "Completed",
         int attempts = 1) {
  return {{"transc_user_id", user}, {"transc_object_id", object}, {"reg_num", 1},
          {"user_lo_status", status}, {"user_lo_comp_dt", touched}, {"user_lo_score", nullptr},
          {"user_lo_num_attempts", attempts}, {"user_lo_pass", true}, {"is_removed", false},
          {"is_archive", 0}, {"_last_touched_dt_utc", touched}};
}

}  // namespace

TEST_CASE("cornerstone follows nextLink to the end, looks learners up and normalises the "
          "transcript", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod({.clock_ms = clock.stamp()});
  csod.start();
  load(csod);
  auto src = makeSource(options(csod).scalar("page_size", "3"), clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  INFO(out->problem);
  CHECK(out->complete);
  CHECK(sink.protocol_errors == 0);

  // One token, asked for with Cornerstone's JSON body.
  const auto reqs = csod.requests();
  REQUIRE(!reqs.empty());
  CHECK(reqs[0].path == "/services/api/oauth2/token");
  const Json token_body = Json::parse(reqs[0].body);
  CHECK(token_body["clientId"] == "csod-client");
  CHECK(token_body["grantType"] == "client_credentials");
  CHECK(token_body["scope"] == "all");
  CHECK(csod.tokensIssued() == 1);

  // 10 rows, 3 per page: 4 transcript pages, the first with no filter (no cursor, no start).
  const auto pages = ofView(csod, "vw_rpt_transcript");
  REQUIRE(pages.size() == 4);
  CHECK(pages[0].header("Prefer") == "odata.maxpagesize=3");
  CHECK(pages[0].header("Authorization") == "Bearer csod-token-1");
  CHECK(pages[0].param("$filter").empty());
  CHECK(pages[0].param("$select").find("_last_touched_dt_utc") != std::string::npos);
  CHECK(pages[3].param("$skiptoken").rfind("9-", 0) == 0);
  CHECK(out->units_seen == 4);
  for (const auto& u : sink.begun) CHECK(u.incremental);

  // The learners of each page are read from vw_rpt_user, each once: the fourth page has only
  // user 101, already known.
  const auto users = ofView(csod, "vw_rpt_user");
  REQUIRE(users.size() == 3);
  CHECK(users[0].param("$filter") == "user_id eq 101 or user_id eq 102 or user_id eq 103");
  CHECK(users[0].param("$select") == "user_id,user_ref,user_email");

  CHECK(out->records == 4);
  const auto* ada = byId(sink, std::string("101:") + kBasics + ":1:1");
  REQUIRE(ada);
  CHECK(ada->employee_id == "E0001");
  CHECK(ada->email == "ada@example.org");
  CHECK(ada->source_user == "101");
  CHECK(ada->lms_item == kBasics);
  CHECK(ada->at == *core::parseIso("2026-03-01T10:15:00Z"));
  CHECK(ada->status == core::FactStatus::Completed);
  CHECK(ada->lms_pass == 1);
  CHECK(std::isnan(ada->score));

  const auto* grace = byId(sink, std::string("102:") + kQuiz + ":1:2");
  REQUIRE(grace);
  CHECK(grace->at == *core::parseIso("2026-03-02T09:00:00Z"));  // no offset: UTC
  CHECK(grace->score == Approx(85));
  CHECK(grace->max_score == Approx(100));
  CHECK(grace->attempt == 2);
  CHECK(grace->lms_pass == 1);

  const auto* alan = byId(sink, std::string("103:") + kQuiz + ":1:1");  // not in the user view
  REQUIRE(alan);
  CHECK(alan->employee_id.empty());
  CHECK(alan->source_user == "103");
  CHECK(alan->status == core::FactStatus::Failed);
  CHECK(alan->lms_pass == 0);
  CHECK(alan->score == Approx(40));

  const auto* decimal = byId(sink, std::string("101:") + kQuiz + ":1:1");  // upper-case GUID
  REQUIRE(decimal);
  CHECK(decimal->lms_item == kQuiz);
  CHECK(decimal->score == Approx(72.5));
  CHECK(decimal->lms_pass == 0);  // completed, but the LMS says not passed
  CHECK(decimal->status == core::FactStatus::Completed);

  // Malformed rows: quarantined with their ids; in-progress and removed rows skipped.
  CHECK(out->quarantined == 4);
  auto reason = [&](const std::string& needle) -> const ports::QuarantinedRecord* {
    for (const auto& q : sink.quarantined)
      if (q.reason.find(needle) != std::string::npos) return &q;
    return nullptr;
  };
  const auto* bad_date = reason("'05/03/2026'");
  REQUIRE(bad_date);
  CHECK(bad_date->external_id == std::string("105:") + kBasics + ":1:1");
  CHECK(bad_date->location == std::string("transcript page 2 #2 (user 105, learning object ") + kBasics + ")");
  const auto* too_high = reason("user_lo_score 140");
  REQUIRE(too_high);
  CHECK(too_high->external_id == std::string("106:") + kQuiz + ":1:1");
  CHECK(reason("transc_user_id is missing") != nullptr);
  CHECK(reason("'Pending Review'") != nullptr);

  CHECK(out->next_cursor.rfind("2026-03-09T14:46:00Z;q=", 0) == 0);
}

TEST_CASE("an empty page in the middle of the paging is followed on", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  load(csod);
  csod.emptyPage(2);  // the second page: no rows, a nextLink that continues where it was
  auto src = makeSource(options(csod).scalar("page_size", "5").scalar("identity", "user_id"), clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 4);
  CHECK(ofView(csod, "vw_rpt_transcript").size() == 3);
  CHECK(ofView(csod, "vw_rpt_user").empty());  // identity: user_id
}

TEST_CASE("the next fetch filters on _last_touched_dt_utc from the cursor minus the overlap",
          "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  csod.addTranscript(row(101, kBasics, "2026-03-01T10:00:00Z"));
  csod.addTranscript(row(102, kBasics, "2026-03-05T10:00:00Z"));
  auto src = makeSource(options(csod).scalar("identity", "user_id"), clock);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  CHECK(one->records == 2);
  CHECK(one->next_cursor.rfind("2026-03-05T10:00:00Z;q=", 0) == 0);

  // A late change inside the overlap, one after the cursor, and one long before (not read).
  csod.addTranscript(row(103, kBasics, "2026-03-05T09:30:00Z"));
  csod.addTranscript(row(104, kBasics, "2026-03-06T10:00:00Z"));
  RecordingSink second;
  auto two = src->fetch(one->next_cursor, kNow, second);
  REQUIRE(two.ok());
  CHECK(two->complete);
  const auto pages = ofView(csod, "vw_rpt_transcript");
  CHECK(pages.back().param("$filter") == "_last_touched_dt_utc ge 2026-03-05T09:00:00Z");
  std::vector<std::string> users;
  for (const auto& r : second.records) users.push_back(r.source_user);
  std::sort(users.begin(), users.end());
  CHECK(users == std::vector<std::string>{"102", "103", "104"});
  CHECK(two->next_cursor.rfind("2026-03-06T10:00:00Z;q=", 0) == 0);

  // Nothing new: the cursor stays.
  RecordingSink third;
  auto three = src->fetch(two->next_cursor, kNow, third);
  REQUIRE(three.ok());
  CHECK(three->next_cursor == two->next_cursor);
}

TEST_CASE("a 500 on page 3 leaves the fetch incomplete with the pages before it",
          "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  for (int i = 0; i < 9; ++i)
    csod.addTranscript(row(200 + i, kBasics, "2026-03-0" + std::to_string(i + 1) + "T10:00:00Z"));
  csod.failRequests(3, 100, 500);
  auto src = makeSource(options(csod).scalar("page_size", "3").scalar("identity", "user_id"), clock);
  RecordingSink sink;
  auto out = src->fetch("2026-03-01T00:00:00Z;q=elsewhere", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("transcript page 3"));
  CHECK_THAT(out->problem, Catch::Contains("HTTP 500"));
  CHECK(out->records == 6);
  CHECK(out->next_cursor.empty());  // the stored cursor stays
  CHECK(csod.viewRequests() == 6);  // page 3 tried 4 times
}

TEST_CASE("a 429 is retried after its Retry-After", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  csod.addTranscript(row(101, kBasics, "2026-03-01T10:00:00Z"));
  csod.failRequests(1, 2, 429, 30);
  auto src = makeSource(options(csod).scalar("identity", "user_id"), clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 1);
  CHECK(clock.sleeps == std::vector<std::chrono::milliseconds>{std::chrono::seconds(30), std::chrono::seconds(30)});

  // 429 on every attempt: incomplete, with Cornerstone's message.
  csod.failRequests(4, 100, 429, 1);
  RecordingSink again;
  auto bad = src->fetch("", kNow, again);
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->complete);
  CHECK_THAT(bad->problem, Catch::Contains("HTTP 429: API rate limit exceeded"));
}

TEST_CASE("no more than requests_per_minute requests go out in any minute", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod({.clock_ms = clock.stamp()});
  csod.start();
  for (int i = 0; i < 10; ++i) csod.addTranscript(row(300 + i, kBasics, "2026-03-01T10:00:0" + std::to_string(i) + "Z"));
  auto src = makeSource(
      options(csod).scalar("page_size", "1").scalar("requests_per_minute", "4").scalar("identity", "user_id"), clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 10);
  const auto reqs = csod.requests();
  REQUIRE(reqs.size() == 11);  // the token and 10 pages
  // Every window of 60 s holds at most 4 requests, and the limiter did wait: 11 requests need
  // at least two full minutes past the first.
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    int in_window = 0;
    for (const auto& r : reqs)
      if (r.at_ms >= reqs[i].at_ms && r.at_ms < reqs[i].at_ms + 60'000) ++in_window;
    INFO("request " << i << " at " << reqs[i].at_ms);
    CHECK(in_window <= 4);
  }
  CHECK(reqs.back().at_ms - reqs.front().at_ms >= 120'000);
  CHECK(reqs.back().at_ms - reqs.front().at_ms < 180'000);
}

TEST_CASE("the rate limiter waits exactly until the oldest request leaves the window", "[unit][cornerstone]") {
  std::int64_t now = 0;
  std::vector<std::int64_t> waits;
  connectors::http::RateLimiter limiter(
      2, std::chrono::seconds(10), [&] { return std::chrono::milliseconds(now); },
      [&](std::chrono::milliseconds d) {
        waits.push_back(d.count());
        now += d.count();
      });
  CHECK(limiter.acquire().count() == 0);  // t=0
  now = 4000;
  CHECK(limiter.acquire().count() == 0);  // t=4000
  CHECK(limiter.acquire().count() == 6000);  // waits until t=10000
  CHECK(now == 10000);
  CHECK(limiter.acquire().count() == 4000);  // until t=14000
  now = 100000;
  CHECK(limiter.acquire().count() == 0);
  CHECK(limiter.acquired() == 5);
  CHECK(limiter.waited().count() == 10000);
  CHECK(waits == std::vector<std::int64_t>{6000, 4000});
}

TEST_CASE("a revoked token is renewed once after a 401", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  csod.addTranscript(row(101, kBasics, "2026-03-01T10:00:00Z"));
  auto src = makeSource(options(csod).scalar("identity", "user_id"), clock);
  RecordingSink first;
  REQUIRE(src->fetch("", kNow, first).ok());
  CHECK(csod.tokensIssued() == 1);
  csod.revokeTokens();
  RecordingSink second;
  auto out = src->fetch("", kNow, second);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(csod.tokensIssued() == 2);
  CHECK(ofView(csod, "vw_rpt_transcript").back().header("Authorization") == "Bearer csod-token-2");
}

TEST_CASE("a refused client secret fails the fetch as an auth error without the secret",
          "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  auto src = makeSource(options(csod), clock, "wrong-secret-value");
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("HTTP 401"));
  CHECK_THAT(out.error().describe(), !Catch::Contains("wrong-secret-value"));
  CHECK(csod.viewRequests() == 0);
}

TEST_CASE("a page that is not an OData collection makes the fetch incomplete", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  for (int i = 0; i < 4; ++i) csod.addTranscript(row(400 + i, kBasics, "2026-03-01T10:00:00Z"));
  csod.truncateRequest(2);
  auto src = makeSource(options(csod).scalar("page_size", "2").scalar("identity", "user_id"), clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("transcript page 2: the answer is not an OData collection (not JSON, or cut off)"));
  CHECK(out->records == 2);
}

TEST_CASE("scores on another scale use max_score, and status_values maps statuses",
          "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  Json r = row(101, kQuiz, "2026-03-01T10:00:00Z", "Pending Review");
  r["user_lo_score"] = 8.5;
  csod.addTranscript(r);
  auto src = makeSource(options(csod).scalar("identity", "user_id").scalar("max_score", "10")
                            .map("status_values", {{"pending review", "completed"}}),
                        clock);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  REQUIRE(sink.records.size() == 1);
  CHECK(sink.records[0].score == Approx(8.5));
  CHECK(sink.records[0].max_score == Approx(10));
}

TEST_CASE("cornerstone configuration errors name the key and say what to do", "[connector][cornerstone]") {
  TestClock clock;
  CornerstoneFake csod;
  csod.start();
  struct Case {
    OptionsBuilder options;
    const char* key;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({options(csod).without("base_url"), "base_url", "is required"});
  cases.push_back({options(csod).scalar("base_url", csod.url() + "/services/api"), "base_url", "has a path"});
  cases.push_back({options(csod).scalar("base_url", "http://acme.csod.com"), "base_url", "must use https"});
  cases.push_back({options(csod).without("client_secret").scalar("client_secret", "inline"), "client_secret",
                   "never inline"});
  cases.push_back({options(csod).scalar("requests_per_minute", "0"), "requests_per_minute", "is not a whole number"});
  cases.push_back({options(csod).scalar("identity", "email"), "identity", "is not one of"});
  cases.push_back({options(csod).scalar("max_score", "-1"), "max_score", "is not a number above 0"});
  cases.push_back({options(csod).map("status_values", {{"Exempt", "skip"}}), "status_values", "is not one of"});
  cases.push_back({options(csod).scalar("verbs", "x"), "verbs", "unknown key"});
  for (const auto& c : cases) {
    INFO(c.key << ": " << c.message);
    auto made = tryMake(c.options, clock);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == core::ErrorKind::Invalid);
    CHECK_THAT(made.error().message, Catch::Contains(std::string(c.key) + ":") && Catch::Contains(c.message));
    CHECK_FALSE(made.error().hint.empty());
  }
}
