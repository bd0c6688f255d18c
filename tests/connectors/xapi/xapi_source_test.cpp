// The xapi source against the loopback LRS fake (tests/fakes/xapi): paging, headers, the
// cursor and consistent-through, throttling, auth, failures mid-way, malformed statements,
// voiding, configuration errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "connectors/common/loopback_server.hpp"
#include "connectors/lms/xapi/statement.hpp"
#include "connectors/xapi/xapi_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::xapi_support;
using certgate::testing::RecordingSink;
using certgate::testing::xapi::XapiFake;
using certgate::testing::xapi::XapiFakeOptions;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
const std::string kCompleted = "http://adlnet.gov/expapi/verbs/completed";

// n completions of AI basics by person0..person{n-1}, stored 1 ms apart from the fake's clock.
void addCompletions(XapiFake& lrs, int n, int first = 0) {
  for (int i = first; i < first + n; ++i)
    lrs.add({{"actor", {{"objectType", "Agent"}, {"mbox", "mailto:person" + std::to_string(i) + "@example.org"}}},
             {"verb", {{"id", kCompleted}, {"display", {{"en-US", "completed"}}}}},
             {"object", {{"id", "https://lms.example.com/xapi/activities/ai-basics"}, {"objectType", "Activity"}}},
             {"timestamp", "2026-11-20T09:00:00Z"}});
}

const ports::SourceRecord* byId(const RecordingSink& sink, const std::string& id) {
  for (const auto& r : sink.records)
    if (r.external_id == id) return &r;
  return nullptr;
}

std::vector<certgate::testing::xapi::LoggedRequest> statementRequests(const XapiFake& lrs) {
  std::vector<certgate::testing::xapi::LoggedRequest> out;
  for (auto& r : lrs.requests())
    if (r.path.find("/statements") != std::string::npos) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("xapi reads every verb's pages, follows more to the end and normalises the spec's "
          "statements", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  for (const auto& s : fixture("statements.json")) lrs.add(s);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "1"}, {"attempt_extension", kAttemptIri},
                                      {"account_as", "employee_id"}}),
                        sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->problem.empty());
  CHECK(sink.protocol_errors == 0);
  // Five statements with the four verbs; "experienced" is never asked for.
  CHECK(out->records == 5);
  CHECK(sink.records.size() == 5);
  CHECK(sink.quarantined.empty());
  CHECK(out->units_seen == 5);  // limit 1: one statement per page, one unit per page
  for (const auto& u : sink.begun) CHECK(u.incremental);

  // One query per verb, ascending, with limit; every request with the xAPI version header.
  const auto reqs = statementRequests(lrs);
  REQUIRE(!reqs.empty());
  std::vector<std::string> verbs;
  for (const auto& r : reqs) {
    CHECK(r.header("X-Experience-API-Version") == "1.0.3");
    CHECK(r.header("Authorization").rfind("Basic ", 0) == 0);
    CHECK(r.status == 200);
    if (!r.param("verb").empty()) {
      verbs.push_back(r.param("verb"));
      CHECK(r.param("ascending") == "true");
      CHECK(r.param("limit") == "1");
      CHECK(r.param("since").empty());  // first fetch, no start: everything
    }
  }
  CHECK(verbs == std::vector<std::string>{kCompleted, "http://adlnet.gov/expapi/verbs/passed",
                                          "http://adlnet.gov/expapi/verbs/failed",
                                          "http://adlnet.gov/expapi/verbs/scored"});
  // scored has two statements: its second page came through `more`.
  CHECK(std::count_if(reqs.begin(), reqs.end(), [](const auto& r) {
          return r.path.find("/statements/more/") != std::string::npos;
        }) >= 1);

  const auto* completion = byId(sink, "7ccd3322-e1a5-411a-a67d-6a735c76f119");
  REQUIRE(completion);
  CHECK(completion->email == "ada@example.org");
  CHECK(completion->lms_item == "https://lms.example.com/xapi/activities/ai-basics");
  CHECK(completion->at == *core::parseIso("2026-11-20T08:15:00Z"));
  CHECK(completion->status == core::FactStatus::Completed);
  CHECK(completion->attempt == 0);
  const auto* passed = byId(sink, "2f0c7c1e-58a1-4c4f-9d3e-0b1f3b3a9a01");
  REQUIRE(passed);
  CHECK(passed->score == Approx(95));
  CHECK(passed->max_score == Approx(100));
  CHECK(passed->lms_pass == 1);
  CHECK(passed->attempt == 2);
  const auto* failed = byId(sink, "9b6a3a52-0f7e-4d58-8a0c-3c1d1f0e2b02");
  REQUIRE(failed);
  CHECK(failed->employee_id == "E0002");
  CHECK(failed->score == Approx(12));
  CHECK(failed->max_score == Approx(20));
  CHECK(failed->lms_pass == 0);
  CHECK(failed->attempt == 1);
  const auto* negative = byId(sink, "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f04");
  REQUIRE(negative);
  CHECK(negative->score == Approx(0));
  CHECK(negative->max_score == Approx(100));

  // Cursor: the last stored time (the fake's consistent-through is its clock, later still).
  CHECK(out->next_cursor.rfind("2026-11-25T12:00:00.004000Z;q=", 0) == 0);
}

TEST_CASE("an LRS with no statements is a complete fetch that reads nothing", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  Sleeps sleeps;
  auto src = makeSource(options(lrs), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(out->records == 0);
  CHECK(out->units_seen == 0);
  CHECK(sink.begun.empty());
  // Nothing was stored before consistent-through (the fake's clock): the cursor moves up to it.
  CHECK(out->next_cursor.rfind("2026-11-25T11:59:59.999999Z;q=", 0) == 0);
  CHECK(lrs.statementRequests() == 4);

  // A cursor never moves back, and never past the last statement while it is consistent.
  addCompletions(lrs, 1);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  REQUIRE(!one->next_cursor.empty());
  RecordingSink again;
  lrs.setClock(lrs.clock() + 3'600'000'000);  // an hour later, nothing new
  auto two = src->fetch(one->next_cursor, kNow, again);
  REQUIRE(two.ok());
  CHECK(two->complete);
  CHECK(two->next_cursor == one->next_cursor);
}

TEST_CASE("a 429 with Retry-After is waited out and the fetch completes", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 3);
  lrs.failRequests(2, 2, 429, 7);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "1"}}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records.size() == 3);
  REQUIRE(sleeps.waits.size() == 2);
  CHECK(sleeps.waits[0] == std::chrono::seconds(7));
  CHECK(sleeps.waits[1] == std::chrono::seconds(7));
}

TEST_CASE("throttling that outlasts the retries makes the fetch incomplete, not an error",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 2);
  lrs.failRequests(1, 100, 429, 1);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("completed page 1"));
  CHECK_THAT(out->problem, Catch::Contains("429"));
  CHECK(out->next_cursor.empty());
}

TEST_CASE("refused credentials fail the whole fetch as an auth error without leaking the secret",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 1);
  Sleeps sleeps;
  auto redactor = std::make_shared<connectors::http::Redactor>();
  auto src = makeSource(options(lrs), sleeps, secrets({{"/etc/certgate/lrs-password", "wrong-secret"}}),
                        redactor);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == core::ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("401"));
  CHECK_THAT(out.error().message, Catch::Contains("the credentials were refused"));
  CHECK(out.error().describe().find("wrong-secret") == std::string::npos);
  CHECK(redactor->redact("pw wrong-secret") == "pw [redacted]");
  CHECK(lrs.requests().size() == 1);  // 401 is never retried
  CHECK(sleeps.waits.empty());

  // The LRS refusing everyone after the first pages: the records read so far are delivered.
  XapiFake later;
  later.start();
  addCompletions(later, 3);
  auto src2 = makeSource(options(later, {{"limit", "1"}}, {"completed"}), sleeps);
  later.failRequests(2, 1, 401);
  RecordingSink sink2;
  auto out2 = src2->fetch("", kNow, sink2);
  REQUIRE_FALSE(out2.ok());
  CHECK(out2.error().kind == core::ErrorKind::Auth);
  CHECK(sink2.records.size() == 1);
}

TEST_CASE("OAuth 2.0 client credentials: one token for the whole fetch", "[connector][xapi]") {
  XapiFakeOptions o;
  o.username = "";
  o.client_id = "certgate";
  o.client_secret = "oauth-secret";
  XapiFake lrs(o);
  lrs.start();
  addCompletions(lrs, 3);
  ports::Options opts;
  opts.where = "certgate.yaml:1:1";
  auto scalar = [&](const std::string& k, const std::string& v) {
    ports::OptionValue value;
    value.scalar = v;
    opts.values.emplace_back(k, value);
  };
  scalar("endpoint", lrs.endpoint());
  scalar("auth", "oauth2");
  scalar("client_id", "certgate");
  scalar("token_url", lrs.tokenUrl());
  scalar("limit", "1");
  ports::OptionValue secret;
  secret.shape = ports::OptionValue::Shape::Map;
  secret.map = {{"file", "/etc/certgate/lrs-client-secret"}};
  opts.values.emplace_back("client_secret", secret);
  Sleeps sleeps;
  auto src = makeSource(opts, sleeps, secrets({{"/etc/certgate/lrs-client-secret", "oauth-secret"}}));
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records.size() == 3);
  CHECK(lrs.tokensIssued() == 1);
  for (const auto& r : statementRequests(lrs)) CHECK(r.header("Authorization") == "Bearer xapi-token-1");

  auto bad = makeSource(opts, sleeps, secrets({{"/etc/certgate/lrs-client-secret", "nope"}}));
  RecordingSink sink2;
  auto refused = bad->fetch("", kNow, sink2);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == core::ErrorKind::Auth);
}

TEST_CASE("a 500 on page 3 leaves the fetch incomplete and delivers pages 1 and 2",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 5);
  lrs.failRequests(3, 100, 500);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "1"}}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("completed page 3"));
  CHECK_THAT(out->problem, Catch::Contains("500"));
  CHECK_THAT(out->problem, Catch::Contains("injected failure"));
  CHECK(sink.records.size() == 2);
  CHECK(out->records == 2);
  CHECK(sink.ended.size() == 2);
  for (const auto& e : sink.ended) CHECK(e.complete);
  CHECK(out->next_cursor.empty());     // the previous cursor stays
  CHECK(sleeps.waits.size() == 3);     // 5xx retried (4 attempts) before giving up
  CHECK(lrs.statementRequests() == 6);
}

TEST_CASE("a cut-off page is a problem of that page, not a crash", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 3);
  lrs.truncatePage(2);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "1"}}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("completed page 2: the answer is not a StatementResult"));
  CHECK(sink.records.size() == 1);
}

TEST_CASE("an empty page with a more link is followed to the statements after it",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 3);
  lrs.emptyPage(2);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "1"}}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records.size() == 3);
  CHECK(out->units_seen == 3);  // the empty page is no unit
}

TEST_CASE("malformed statements are quarantined with their statement id — the rest count",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  for (const auto& entry : fixture("malformed.json"))
    lrs.addRaw(entry["statement"], entry["stored"].get<std::string>());
  addCompletions(lrs, 2);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"limit", "5"}, {"attempt_extension", kAttemptIri}}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records.size() == 2);
  const auto malformed = fixture("malformed.json");
  CHECK(sink.quarantined.size() == malformed.size());
  CHECK(out->quarantined == static_cast<std::int64_t>(malformed.size()));
  for (const auto& entry : malformed) {
    const std::string id = entry["statement"]["id"];
    INFO(id);
    auto it = std::find_if(sink.quarantined.begin(), sink.quarantined.end(),
                           [&](const auto& q) { return q.external_id == id; });
    REQUIRE(it != sink.quarantined.end());
    CHECK_THAT(it->reason, Catch::Contains(entry["expect"].get<std::string>()));
    CHECK_THAT(it->location, Catch::Contains(id));
    CHECK_THAT(it->raw, Catch::Contains(id));
  }
}

TEST_CASE("the cursor is the last stored time seen, never past consistent-through, and the "
          "next fetch starts an overlap earlier", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  lrs.setClock(us("2026-11-25T10:00:00Z"));
  addCompletions(lrs, 5);  // stored 10:00:00.000 .. 10:00:00.004
  lrs.setConsistentThrough(us("2026-11-25T10:00:00.002Z"));
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"overlap", "10m"}}, {"completed"}), sleeps);
  RecordingSink sink;
  auto first = src->fetch("", kNow, sink);
  REQUIRE(first.ok());
  CHECK(sink.records.size() == 5);
  // Consistent through .002: a statement stored at .002 exactly may still appear.
  CHECK(first->next_cursor.rfind("2026-11-25T10:00:00.001999Z;q=", 0) == 0);

  // A statement that becomes visible late, stored before the last one seen.
  lrs.add({{"actor", {{"objectType", "Agent"}, {"mbox", "mailto:late@example.org"}}},
           {"verb", {{"id", kCompleted}}},
           {"object", {{"id", "https://lms.example.com/xapi/activities/ai-basics"}}}},
          "2026-11-25T10:00:00.003500Z");
  lrs.setConsistentThrough(std::nullopt);
  lrs.clearRequests();
  RecordingSink sink2;
  auto second = src->fetch(first->next_cursor, kNow, sink2);
  REQUIRE(second.ok());
  const auto reqs = statementRequests(lrs);
  REQUIRE(!reqs.empty());
  CHECK(reqs[0].param("since") == "2026-11-25T09:50:00.001999Z");  // cursor - 10m
  CHECK(std::any_of(sink2.records.begin(), sink2.records.end(),
                    [](const auto& r) { return r.email == "late@example.org"; }));
  // Re-read statements come again (the overlap) and upsert harmlessly downstream.
  CHECK(sink2.records.size() == 6);
  CHECK(second->next_cursor.rfind("2026-11-25T10:00:00.004000Z;q=", 0) == 0);

  // An LRS that omits the header: the cursor is capped at the fetch's own time.
  lrs.omitConsistentThrough(true);
  RecordingSink sink3;
  auto third = src->fetch("", *core::parseIso("2026-11-25T10:00:00Z"), sink3);
  REQUIRE(third.ok());
  CHECK(third->next_cursor.rfind("2026-11-25T09:59:59.999999Z;q=", 0) == 0);
}

TEST_CASE("a cursor written for another query (endpoint or verbs) starts over",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 2);
  Sleeps sleeps;
  auto completed_only = makeSource(options(lrs, {}, {"completed"}), sleeps);
  RecordingSink sink;
  auto first = completed_only->fetch("", kNow, sink);
  REQUIRE(first.ok());
  auto all_verbs = makeSource(options(lrs, {{"start", "2026-01-01T00:00:00Z"}}), sleeps);
  lrs.clearRequests();
  RecordingSink sink2;
  auto second = all_verbs->fetch(first->next_cursor, kNow, sink2);
  REQUIRE(second.ok());
  CHECK(statementRequests(lrs)[0].param("since") == "2026-01-01T00:00:00.000000Z");
  CHECK(sink2.records.size() == 2);
}

TEST_CASE("voided statements are not returned — their voiding statements are listed as notices",
          "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  addCompletions(lrs, 2);
  Json target = fixture("statements.json")[0];
  target["id"] = "e05aa883-acaf-40ad-bf54-02c8ce485fb0";
  lrs.add(target);
  Json voiding = fixture("voiding.json");
  voiding["id"] = "0e5a4c9f-0000-4000-8000-000000000001";
  lrs.add(voiding);
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {}, {"completed"}), sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK(out->complete);
  CHECK(sink.records.size() == 2);
  CHECK_FALSE(byId(sink, "e05aa883-acaf-40ad-bf54-02c8ce485fb0"));
  REQUIRE(sink.quarantined.size() == 1);
  CHECK(sink.quarantined[0].external_id == "e05aa883-acaf-40ad-bf54-02c8ce485fb0");
  CHECK_THAT(sink.quarantined[0].reason, Catch::Contains("voided in the LRS"));

  auto quiet = makeSource(options(lrs, {{"voided", "ignore"}}, {"completed"}), sleeps);
  RecordingSink sink2;
  REQUIRE(quiet->fetch("", kNow, sink2).ok());
  CHECK(sink2.quarantined.empty());
}

TEST_CASE("a more link to another origin is not followed", "[connector][xapi]") {
  testing::LoopbackServer server;
  server.server.Get("/xapi/statements", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Experience-API-Version", "1.0.3");
    res.set_content(R"({"statements":[],"more":"https://evil.example.com/xapi/statements?page=2"})",
                    "application/json");
  });
  server.start();
  ports::Options o;
  ports::OptionValue v;
  v.scalar = server.url("/xapi");
  o.values.emplace_back("endpoint", v);
  v.scalar = "k";
  o.values.emplace_back("username", v);
  ports::OptionValue secret;
  secret.shape = ports::OptionValue::Shape::Map;
  secret.map = {{"file", "/etc/certgate/lrs-password"}};
  o.values.emplace_back("password", secret);
  Sleeps sleeps;
  auto src = makeSource(o, sleeps);
  RecordingSink sink;
  auto out = src->fetch("", kNow, sink);
  REQUIRE(out.ok());
  CHECK_FALSE(out->complete);
  CHECK_THAT(out->problem, Catch::Contains("does not follow it"));
}

TEST_CASE("xapi options are checked before anything runs", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  Sleeps sleeps;
  auto fails = [&](ports::Options o, const std::string& expect) {
    auto made = connectors::xapi::makeSource("lrs", o, "/etc/certgate", secrets(), nullptr,
                                             sleeps.clientOptions());
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == core::ErrorKind::Invalid);
    CHECK_THAT(made.error().describe(), Catch::Contains(expect));
  };
  fails(options(lrs, {{"endpoint", "http://lrs.example.com/xapi"}}), "must use https");
  fails(options(lrs, {{"endpoint", "lrs.example.com"}}), "not an absolute http(s) URL");
  fails(options(lrs, {{"limit", "0"}}), "limit");
  fails(options(lrs, {{"overlap", "soon"}}), "overlap");
  fails(options(lrs, {{"start", "last week"}}), "start");
  fails(options(lrs, {{"client_id", "x"}}), "applies only with auth oauth2");
  fails(options(lrs, {{"colour", "blue"}}), "colour");
  fails(options(lrs, {}, {"completed", "attended"}), "'attended' is not one of");
  fails(options(lrs, {{"account_as", "name"}}), "account_as");
  auto inline_password = options(lrs);
  for (auto& [k, v] : inline_password.values)
    if (k == "password") {
      v.shape = ports::OptionValue::Shape::Scalar;
      v.scalar = "lrs-secret";
    }
  fails(inline_password, "never inline");
  auto made = connectors::xapi::makeSource("lrs", options(lrs, {}, {"http://adlnet.gov/expapi/verbs/passed"}),
                                           "/etc/certgate", secrets(), nullptr, sleeps.clientOptions());
  CHECK(made.ok());
  CHECK(lrs.statementRequests() == 0);
}

TEST_CASE("a statement stored exactly at consistent-through is read by the next fetch, even "
          "without overlap", "[connector][xapi]") {
  XapiFake lrs;
  lrs.start();
  lrs.setClock(us("2026-11-25T10:00:00Z"));
  addCompletions(lrs, 2);  // .000 and .001; the clock (consistent-through) is now .002
  Sleeps sleeps;
  auto src = makeSource(options(lrs, {{"overlap", "0s"}}, {"completed"}), sleeps);
  RecordingSink first;
  auto one = src->fetch("", kNow, first);
  REQUIRE(one.ok());
  RecordingSink nothing;
  auto two = src->fetch(one->next_cursor, kNow, nothing);  // nothing new: the cursor moves on
  REQUIRE(two.ok());
  CHECK(nothing.records.empty());
  addCompletions(lrs, 1, 7);  // stored at .002, the consistent-through time of the last answer
  RecordingSink late;
  auto three = src->fetch(two->next_cursor, kNow, late);
  REQUIRE(three.ok());
  REQUIRE(late.records.size() == 1);
  CHECK(late.records[0].email == "person7@example.org");
}

TEST_CASE("a forwarded statement push names its actors, and other bodies fall back to the "
          "generic shape", "[connector][xapi][push]") {
  XapiFake lrs;
  lrs.start();
  Sleeps sleeps;
  auto src = makeSource(options(lrs), sleeps);
  const nlohmann::json completed = {
      {"id", "6f1f7d5e-8a3c-4f8e-9d61-2b0c1d2e3f40"},
      {"actor", {{"objectType", "Agent"}, {"mbox", "mailto:alice@example.org"}}},
      {"verb", {{"id", kCompleted}}},
      {"object", {{"id", "https://lms.example.com/xapi/activities/ai-basics"}}},
      {"timestamp", "2026-11-20T09:00:00Z"}};
  nlohmann::json experienced = completed;
  experienced["id"] = "6f1f7d5e-8a3c-4f8e-9d61-2b0c1d2e3f41";
  experienced["verb"]["id"] = "http://adlnet.gov/expapi/verbs/experienced";
  experienced["actor"]["mbox"] = "mailto:bob@example.org";

  auto one = src->parsePush(completed.dump(), kNow);
  REQUIRE(one.ok());
  CHECK(one->kind == "statements");
  REQUIRE(one->people.size() == 1);
  CHECK(one->people[0].email == "alice@example.org");

  // An array: only the statements certgate would use name people.
  auto many = src->parsePush(nlohmann::json::array({completed, experienced}).dump(), kNow);
  REQUIRE(many.ok());
  REQUIRE(many->people.size() == 1);
  CHECK(many->people[0].email == "alice@example.org");

  auto generic = src->parsePush(R"({"person": {"employee_id": "E1"}})", kNow);
  REQUIRE_FALSE(generic.ok());
  CHECK(generic.error().kind == core::ErrorKind::Permanent);
  auto garbage = src->parsePush("{not json", kNow);
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().kind == core::ErrorKind::Invalid);
}
