// The workday source against the loopback RaaS fake (tests/fakes/workday): the single document
// and its rows, the date-range prompts and the cursor, an empty report, a cut-off body, an HTML
// sign-in page, a document without Report_Entry, 401, 500, 429, OAuth renewal, configuration
// errors, and a large report read in bounded memory.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "connectors/workday/workday_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::workday_support;
using certgate::testing::RecordingSink;
using certgate::testing::workday::WorkdayFake;
using certgate::testing::workday::WorkdayFakeOptions;

namespace {

const core::Instant kNow = *core::parseIso("2026-03-10T12:00:00Z");

const ports::SourceRecord* byId(const RecordingSink& sink, const std::string& id) {
  for (const auto& r : sink.records)
    if (r.external_id == id) return &r;
  return nullptr;
}

const ports::QuarantinedRecord* quarantinedRow(const RecordingSink& sink, int row) {
  const std::string prefix = "report row " + std::to_string(row) + " ";
  for (const auto& q : sink.quarantined)
    if (q.location.rfind(prefix, 0) == 0) return &q;
  return nullptr;
}

Json row(const std::string& worker, const std::string& course, const std::string& date,
         const std::string& status = "Completed") {
  return {{"Employee_ID", worker}, {"Learning_Content_ID", course}, {"Completion_Date", date},
          {"Completion_Status", status}};
}

}  // namespace

TEST_CASE("workday reads the report document once and normalises every kind of row",
          "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.setRows(fixture("report.json")["Report_Entry"]);
  Sleeps sleeps;
  auto src = makeSource(options(wd, false), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->problem.empty());
  CHECK(sink.protocol_errors == 0);

  // One request, format=json, Basic credentials of the integration user, no prompts.
  const auto reqs = wd.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].param("format") == "json");
  CHECK(reqs[0].header("Authorization").rfind("Basic ", 0) == 0);
  CHECK(reqs[0].header("Accept") == "application/json");
  CHECK_FALSE(reqs[0].hasParam("Completed_From"));

  // A whole report is one unit, not incremental: the record-count guard applies to it.
  REQUIRE(sink.begun.size() == 1);
  CHECK_FALSE(sink.begun[0].incremental);
  CHECK(sink.begun[0].key.rfind("sha256:", 0) == 0);
  REQUIRE(sink.ended.size() == 1);
  CHECK(sink.ended[0].complete);
  CHECK(out->next_cursor.empty());  // nothing to be incremental on

  CHECK(out->records == 4);  // rows 1, 2, 3, 9
  CHECK(out->quarantined == 4);  // rows 5, 6, 7, 8; row 4 is in progress and skipped

  const auto* ada = byId(sink, "E0001|AI101|2026-03-01");
  REQUIRE(ada);
  CHECK(ada->email == "ada@example.org");
  CHECK(ada->display_name == "Ada Lovelace");
  CHECK(ada->at == *core::parseIso("2026-03-01T08:00:00Z"));
  CHECK(ada->status == core::FactStatus::Completed);
  CHECK(ada->lms_pass == -1);
  CHECK(std::isnan(ada->score));
  REQUIRE(ada->lms_expiry.has_value());
  CHECK(*ada->lms_expiry == *core::parseIso("2027-03-01T08:00:00Z"));
  CHECK(ada->location == "report row 1");

  const auto* grace = byId(sink, "E0002|AIQUIZ|a2");  // raw points with a maximum
  REQUIRE(grace);
  CHECK(grace->at == *core::parseIso("2026-03-02T18:15:00Z"));
  CHECK(grace->status == core::FactStatus::Passed);
  CHECK(grace->lms_pass == 1);
  CHECK(grace->score == Approx(18));
  CHECK(grace->max_score == Approx(20));
  CHECK(grace->attempt == 2);

  const auto* alan = byId(sink, "E0003|AIQUIZ|a1");  // a percentage
  REQUIRE(alan);
  CHECK(alan->status == core::FactStatus::Failed);
  CHECK(alan->lms_pass == 0);
  CHECK(alan->score == Approx(45));
  CHECK(alan->max_score == Approx(100));

  const auto* backus = byId(sink, "E0009|AIQUIZ|a3");  // a fraction of a maximum of 1
  REQUIRE(backus);
  CHECK(backus->score == Approx(0.9));
  CHECK(backus->max_score == Approx(1));
  CHECK(backus->at == *core::parseIso("2026-03-07T18:30:00Z"));

  // Quarantined rows carry their row, worker and course, and the reason.
  const auto* bad_date = quarantinedRow(sink, 5);
  REQUIRE(bad_date);
  CHECK(bad_date->location == "report row 5 (worker E0005, course AI101)");
  CHECK_THAT(bad_date->reason, Catch::Contains("'03/05/2026'"));
  CHECK_THAT(bad_date->raw, Catch::Contains("Barbara Liskov"));
  const auto* nobody = quarantinedRow(sink, 6);
  REQUIRE(nobody);
  CHECK_THAT(nobody->reason, Catch::Contains("no identity"));
  const auto* too_high = quarantinedRow(sink, 7);
  REQUIRE(too_high);
  CHECK(too_high->external_id == "");
  CHECK_THAT(too_high->reason, Catch::Contains("outside 0..100"));
  const auto* unknown_status = quarantinedRow(sink, 8);
  REQUIRE(unknown_status);
  CHECK_THAT(unknown_status->reason, Catch::Contains("'Pending Approval'"));
  CHECK_THAT(unknown_status->reason, Catch::Contains("status_values"));
  CHECK(quarantinedRow(sink, 4) == nullptr);
}

TEST_CASE("a status mapped in status_values is taken instead of quarantined", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.addRow(row("E0008", "AI101", "2026-03-07", "Pending Approval"));
  wd.addRow(row("E0010", "AI101", "2026-03-07", "Registered"));
  Sleeps sleeps;
  auto src = makeSource(
      options(wd, false).map("status_values", {{"pending approval", "completed"}, {"Registered", "in_progress"}}),
      sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 1);
  CHECK(out->quarantined == 0);
}

TEST_CASE("the date-range prompts are sent, and the next window starts an overlap before the "
          "last one ended", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.addRow(row("E0001", "AI101", "2026-03-01-08:00"));
  wd.addRow(row("E0002", "AI101", "2026-03-09"));
  Sleeps sleeps;
  auto src = makeSource(options(wd).scalar("start", "2026-01-01"), sleeps);

  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  CHECK(one->complete);
  CHECK(one->records == 2);
  REQUIRE(first.begun.size() == 1);
  CHECK(first.begun[0].incremental);
  CHECK(first.begun[0].name == "report Learning_Completions 2026-01-01..2026-03-10");
  auto reqs = wd.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].param("Completed_From") == "2026-01-01");
  CHECK(reqs[0].param("Completed_To") == "2026-03-10");
  CHECK(one->next_cursor.rfind("2026-03-10T12:00:00Z;q=", 0) == 0);

  // Two days later: from = cursor - 3d (default overlap). A late row dated inside the overlap
  // is read; the row of 03-09 is read again with the same external id (one fact); the row of
  // 03-01 is outside the window.
  wd.addRow(row("E0003", "AI101", "2026-03-08"));
  const core::Instant later = kNow + core::days(2);
  RecordingSink second;
  auto two = src->fetch(one->next_cursor, later, second);
  REQUIRE(two.ok());
  CHECK(two->complete);
  reqs = wd.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].param("Completed_From") == "2026-03-07");
  CHECK(reqs[1].param("Completed_To") == "2026-03-12");
  std::vector<std::string> ids;
  for (const auto& r : second.records) ids.push_back(r.external_id);
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"E0002|AI101|2026-03-09", "E0003|AI101|2026-03-08"});
  CHECK(byId(first, "E0002|AI101|2026-03-09") != nullptr);
  CHECK(two->next_cursor.rfind("2026-03-12T12:00:00Z;q=", 0) == 0);

  // datetime prompts and a changed query (the cursor names the prompts): back to `start`.
  auto dt = makeSource(options(wd).scalar("start", "2026-01-01").scalar("prompt_format", "datetime")
                           .scalar("to_prompt", "Completed_Until"),
                       sleeps);
  RecordingSink third;
  auto three = dt->fetch(two->next_cursor, later, third);
  REQUIRE(three.ok());
  reqs = wd.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[2].param("Completed_From") == "2026-01-01T00:00:00Z");
  // The fake's report has no Completed_Until prompt and refuses it, like a report would.
  CHECK(reqs[2].status == 400);
  CHECK_FALSE(three->complete);
  CHECK_THAT(three->problem, Catch::Contains("HTTP 400"));
  CHECK_THAT(three->problem, Catch::Contains("Completed_Until"));
}

TEST_CASE("an empty report is complete and reads nothing", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 0);
  REQUIRE(sink.ended.size() == 1);
  CHECK(sink.ended[0].complete);
  CHECK_FALSE(out->next_cursor.empty());
}

TEST_CASE("a cut-off report is incomplete, keeps the cursor and its whole rows still count",
          "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  for (int i = 1; i <= 6; ++i) wd.addRow(row("E000" + std::to_string(i), "AI101", "2026-03-0" + std::to_string(i)));
  wd.truncateRequest(1);
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("2026-03-01T00:00:00Z;q=old", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("report Learning_Completions"));
  CHECK_THAT(out->problem, Catch::Contains("cut off"));
  CHECK(out->next_cursor.empty());  // the stored cursor stays
  CHECK(out->records >= 1);
  CHECK(out->records < 6);
  REQUIRE(sink.ended.size() == 1);
  CHECK_FALSE(sink.ended[0].complete);
}

TEST_CASE("an HTML sign-in page answered with 200 is not a report", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.addRow(row("E0001", "AI101", "2026-03-01"));
  wd.loginPageRequest(1);
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("an HTML page"));
  CHECK_THAT(out->problem, Catch::Contains("single sign-on"));
  CHECK(sink.begun.empty());
  CHECK(out->records == 0);
}

TEST_CASE("an answer without Report_Entry is incomplete and names what it had", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.noReportEntryRequest(1);
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("no Report_Entry array (top-level keys: Report_Data)"));
}

TEST_CASE("a 401 fails the fetch as an auth error without the password", "[connector][workday]") {
  WorkdayFake wd({.password = "another-password"});
  wd.start();
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("HTTP 401"));
  CHECK_THAT(out.error().message, Catch::Contains("Invalid user name or password"));
  CHECK_THAT(out.error().describe(), !Catch::Contains("isu-secret"));
  CHECK(wd.reportRequests() == 1);  // never retried
  CHECK(sleeps.waits.empty());
}

TEST_CASE("a 500 is retried, and one that persists leaves the fetch incomplete",
          "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.addRow(row("E0001", "AI101", "2026-03-01"));
  wd.failRequests(1, 1, 500);
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 1);
  CHECK(wd.reportRequests() == 2);

  wd.failRequests(3, 100, 500);
  RecordingSink failing;
  auto bad = src->fetch(out->next_cursor, kNow, failing);
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->complete);
  CHECK_THAT(bad->problem, Catch::Contains("HTTP 500"));
  CHECK(bad->next_cursor.empty());
  CHECK(failing.begun.empty());
  CHECK(wd.reportRequests() == 6);  // 4 attempts
}

TEST_CASE("a 429 waits for Retry-After and then reads the report", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  wd.addRow(row("E0001", "AI101", "2026-03-01"));
  wd.failRequests(1, 2, 429, 7);
  Sleeps sleeps;
  auto src = makeSource(options(wd), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 1);
  CHECK(sleeps.waits == std::vector<std::chrono::milliseconds>{std::chrono::seconds(7), std::chrono::seconds(7)});
}

TEST_CASE("OAuth: a refresh-token grant, and a new token after a 401", "[connector][workday]") {
  WorkdayFake wd({.client_id = "wd-client", .client_secret = "client-secret-1", .refresh_token = "refresh-token-1"});
  wd.start();
  wd.addRow(row("E0001", "AI101", "2026-03-01"));
  Sleeps sleeps;
  auto b = options(wd).without("username").without("password");
  b.scalar("auth", "oauth2").scalar("client_id", "wd-client").scalar("token_url", wd.tokenUrl())
      .secret("client_secret", "/etc/certgate/wd-client-secret").secret("refresh_token", "/etc/certgate/wd-refresh");
  auto src = makeSource(b, sleeps);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  CHECK(one->complete);
  CHECK(wd.tokensIssued() == 1);
  CHECK(wd.requests().back().header("Authorization") == "Bearer wd-token-1");

  wd.revokeTokens();
  RecordingSink second;
  auto two = src->fetch("", kNow, second);
  REQUIRE(two.ok());
  CHECK(two->complete);
  CHECK(wd.tokensIssued() == 2);
  CHECK(wd.requests().back().header("Authorization") == "Bearer wd-token-2");
}

TEST_CASE("workday configuration errors name the key and say what to do", "[connector][workday]") {
  WorkdayFake wd;
  wd.start();
  Sleeps sleeps;
  struct Case {
    OptionsBuilder options;
    const char* key;
    const char* message;
  };
  std::vector<Case> cases;
  cases.push_back({options(wd).without("fields"), "fields", "is required"});
  cases.push_back({options(wd).without("fields").map("fields", {{"course_id", "C"}, {"completed_at", "D"}}),
                   "fields", "needs an identity"});
  cases.push_back({options(wd).without("fields").map("fields", {{"worker", "W"}}), "fields",
                   "'worker' is not a certgate field"});
  cases.push_back({options(wd).without("from_prompt"), "to_prompt", "needs from_prompt"});
  cases.push_back({options(wd, false).scalar("overlap", "1d"), "overlap", "applies only with from_prompt"});
  cases.push_back({options(wd).map("params", {{"format", "csv"}}), "params", "format is set by certgate"});
  cases.push_back({options(wd).map("params", {{"Completed_From", "2020-01-01"}}), "params", "is a date prompt"});
  cases.push_back({options(wd).scalar("url", wd.reportUrl() + "?format=json"), "url", "carries a query"});
  cases.push_back({options(wd).scalar("url", "http://workday.example.com/ccx/service/customreport2/a/b/c"), "url",
                   "must use https"});
  cases.push_back({options(wd).without("password").scalar("password", "inline"), "password", "never inline"});
  cases.push_back({options(wd).map("status_values", {{"Done", "finished"}}), "status_values",
                   "not one of completed, passed, failed, in_progress"});
  cases.push_back({options(wd).scalar("score_scale", "points"), "score_scale", "is not one of"});
  cases.push_back({options(wd).scalar("client_id", "x"), "client_id", "applies only with auth oauth2"});
  cases.push_back({options(wd).scalar("colour", "blue"), "colour", "unknown"});
  for (const auto& c : cases) {
    INFO(c.key << ": " << c.message);
    auto made = tryMake(c.options, sleeps);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == core::ErrorKind::Invalid);
    CHECK_THAT(made.error().message, Catch::Contains(std::string(c.key) + ":") && Catch::Contains(c.message));
    CHECK_FALSE(made.error().hint.empty());
  }
}

TEST_CASE("a large report is read row by row without holding it in memory", "[connector][workday]") {
  // 50,000 generated rows (about 9 MB of JSON, streamed by the fake in chunks) through a sink
  // that only counts: the source keeps one entry in memory at a time.
  WorkdayFake wd({.from_prompt = "", .to_prompt = "", .generated = 50'000});
  wd.start();
  Sleeps sleeps;
  auto src = makeSource(options(wd, false), sleeps);
  struct Counting final : ports::RecordSink {
    std::int64_t records = 0, quarantined = 0, bytes = 0;
    bool alreadyProcessed(const ports::UnitInfo&) override { return false; }
    void beginUnit(const ports::UnitInfo& u) override { bytes = u.bytes; }
    void record(ports::SourceRecord&&) override { ++records; }
    void quarantine(ports::QuarantinedRecord&&) override { ++quarantined; }
    void endUnit(const ports::UnitInfo&, bool, const std::string&) override {}
  } sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records == 50'000);
  CHECK(sink.quarantined == 0);
  CHECK(sink.bytes > 5'000'000);
}

// A measurement, run by hand (hidden tag): peak memory of the test process while one million
// generated rows (about 180 MB of JSON) stream through the source.
//   build/tests/connectors/workday/workday_tests "[.measure]"
TEST_CASE("measure: peak memory while reading a report of one million rows", "[.measure][workday]") {
  WorkdayFakeOptions o;
  o.from_prompt = "";
  o.to_prompt = "";
  o.generated = 1'000'000;
  o.generated_people = 50'000;
  WorkdayFake wd(o);
  wd.start();
  Sleeps sleeps;
  auto src = makeSource(options(wd, false).scalar("timeout", "10m"), sleeps);
  struct Counting final : ports::RecordSink {
    std::int64_t records = 0, bytes = 0;
    bool alreadyProcessed(const ports::UnitInfo&) override { return false; }
    void beginUnit(const ports::UnitInfo& u) override { bytes = u.bytes; }
    void record(ports::SourceRecord&&) override { ++records; }
    void quarantine(ports::QuarantinedRecord&&) override {}
    void endUnit(const ports::UnitInfo&, bool, const std::string&) override {}
  } sink;
  const auto started = std::chrono::steady_clock::now();
  auto out = src->fetch("", kNow, sink);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records == 1'000'000);
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  WARN("rows " << sink.records << ", body " << sink.bytes << " bytes, " << seconds
               << " s, peak RSS of the process (source and fake) " << usage.ru_maxrss / 1024 << " MiB");
}
