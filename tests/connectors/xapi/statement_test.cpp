// Normalisation of single xAPI statements: verbs, scores on every scale, identities, attempts,
// dates, and the reasons malformed statements are quarantined with.
#include <catch2/catch.hpp>

#include <cmath>

#include "connectors/lms/xapi/statement.hpp"
#include "connectors/xapi/xapi_test_support.hpp"

using namespace certgate;
using namespace certgate::connectors::xapi;
using certgate::testing::xapi_support::fixture;
using Json = nlohmann::json;
using Outcome = Normalised::Outcome;

namespace {

Json statement(const std::string& verb, Json result = nullptr) {
  Json s = {{"id", "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"},
            {"actor", {{"objectType", "Agent"}, {"name", "Ada"}, {"mbox", "mailto:ada@example.org"}}},
            {"verb", {{"id", "http://adlnet.gov/expapi/verbs/" + verb}, {"display", {{"en-US", verb}}}}},
            {"object", {{"id", "https://lms.example.com/xapi/activities/ai-quiz"}, {"objectType", "Activity"}}},
            {"timestamp", "2026-11-20T10:00:00Z"},
            {"stored", "2026-11-20T10:00:01.250Z"}};
  if (!result.is_null()) s["result"] = std::move(result);
  return s;
}

}  // namespace

TEST_CASE("scores on every xAPI scale become a raw score and a maximum", "[connector][xapi]") {
  struct Row {
    const char* reason;
    Json score;
    double score_out;
    double max_out;
  };
  const std::vector<Row> rows = {
      {"scaled is a fraction of 1: kept as a score out of 100", {{"scaled", 0.95}}, 95, 100},
      {"raw with min and max keeps the raw score and the max", {{"raw", 12}, {"min", 0}, {"max", 20}}, 12, 20},
      {"raw and max without min", {{"raw", 7.5}, {"max", 10}}, 7.5, 10},
      {"raw with max wins over scaled: SCORM defines no relation between them",
       {{"scaled", 0.1}, {"raw", 18}, {"min", 0}, {"max", 20}}, 18, 20},
      {"a negative scaled score counts as 0 of 100", {{"scaled", -0.25}}, 0, 100},
      {"a negative raw score on a range below 0 counts as 0", {{"raw", -5}, {"min", -10}, {"max", 20}}, 0, 20},
      {"scaled exactly 1 is 100 of 100", {{"scaled", 1}}, 100, 100},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    const auto n = normalise(statement("scored", {{"score", row.score}}), {}, "here");
    REQUIRE(n.outcome == Outcome::Record);
    CHECK(n.record.score == Approx(row.score_out));
    CHECK(n.record.max_score == Approx(row.max_out));
    CHECK(n.record.status == core::FactStatus::Unknown);  // scored without success
    CHECK(n.record.lms_pass == -1);
  }
}

TEST_CASE("impossible or unreadable scores are quarantined with the reason", "[connector][xapi]") {
  struct Row {
    const char* reason;
    Json score;
    const char* expect;
  };
  const std::vector<Row> rows = {
      {"scaled above 1", {{"scaled", 1.2}}, "outside -1..1"},
      {"scaled below -1", {{"scaled", -1.5}}, "outside -1..1"},
      {"raw above max", {{"raw", 21}, {"max", 20}}, "greater than max"},
      {"raw below min", {{"raw", -11}, {"min", -10}, {"max", 20}}, "below min"},
      {"min not below max", {{"raw", 5}, {"min", 20}, {"max", 20}}, "not below max"},
      {"max zero", {{"raw", 0}, {"max", 0}}, "not positive"},
      {"a string", {{"raw", "12"}, {"max", 20}}, "is not a number"},
      {"score not an object", Json(12), "is not an object"},
      {"scored with raw but no max or scaled", {{"raw", 12}}, "without a usable score"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    const auto n = normalise(statement("scored", {{"score", row.score}}), {}, "here");
    REQUIRE(n.outcome == Outcome::Quarantine);
    CHECK(n.statement_id == "6690e6c9-3ef0-4ed3-8b37-7f3964730bee");
    CHECK_THAT(n.reason, Catch::Contains(row.expect));
  }
}

TEST_CASE("verbs set the status and the LMS pass flag, and contradictions are refused",
          "[connector][xapi]") {
  auto passed = normalise(statement("passed", {{"score", {{"scaled", 0.9}}}}), {}, "here");
  REQUIRE(passed.outcome == Outcome::Record);
  CHECK(passed.record.status == core::FactStatus::Passed);
  CHECK(passed.record.lms_pass == 1);

  auto failed = normalise(statement("failed"), {}, "here");
  REQUIRE(failed.outcome == Outcome::Record);
  CHECK(failed.record.status == core::FactStatus::Failed);
  CHECK(failed.record.lms_pass == 0);
  CHECK(std::isnan(failed.record.score));

  auto completed = normalise(statement("completed", {{"completion", true}}), {}, "here");
  REQUIRE(completed.outcome == Outcome::Record);
  CHECK(completed.record.status == core::FactStatus::Completed);
  CHECK(completed.record.kind == core::FactKind::Completion);
  CHECK(completed.record.lms_pass == -1);

  // A completed statement that says it failed (Moodle's quiz attempt) keeps the LMS's verdict.
  auto completed_failed = normalise(statement("completed", {{"success", false}}), {}, "here");
  REQUIRE(completed_failed.outcome == Outcome::Record);
  CHECK(completed_failed.record.lms_pass == 0);

  auto scored_pass = normalise(statement("scored", {{"score", {{"scaled", 0.5}}}, {"success", true}}), {}, "here");
  CHECK(scored_pass.record.status == core::FactStatus::Passed);
  CHECK(scored_pass.record.lms_pass == 1);

  CHECK(normalise(statement("failed", {{"success", true}}), {}, "x").outcome == Outcome::Quarantine);
  CHECK(normalise(statement("completed", {{"completion", false}}), {}, "x").outcome == Outcome::Quarantine);
  CHECK(normalise(statement("experienced"), {}, "x").outcome == Outcome::Ignore);
}

TEST_CASE("the statement id is the external id and the timestamp the completion time",
          "[connector][xapi]") {
  Json s = statement("completed");
  s["id"] = "6690E6C9-3EF0-4ED3-8B37-7F3964730BEE";
  s["timestamp"] = "2026-11-20T09:15:00.500+01:00";
  const auto n = normalise(s, {}, "completed page 1 #1");
  REQUIRE(n.outcome == Outcome::Record);
  CHECK(n.record.external_id == "6690e6c9-3ef0-4ed3-8b37-7f3964730bee");
  CHECK(n.record.at == *core::parseIso("2026-11-20T08:15:00Z"));
  CHECK(n.record.location == "completed page 1 #1");
  CHECK(n.record.lms_item == "https://lms.example.com/xapi/activities/ai-quiz");
  CHECK(n.record.email == "ada@example.org");
  CHECK(n.record.display_name == "Ada");
  REQUIRE(n.stored_us);
  CHECK(formatMicros(*n.stored_us) == "2026-11-20T10:00:01.250000Z");

  // Without a timestamp, the time the LRS stored it.
  s.erase("timestamp");
  const auto stored = normalise(s, {}, "x");
  REQUIRE(stored.outcome == Outcome::Record);
  CHECK(stored.record.at == *core::parseIso("2026-11-20T10:00:01Z"));
}

TEST_CASE("actors: mbox, account as configured, and the identifiers certgate cannot match",
          "[connector][xapi]") {
  Json s = statement("completed");
  s["actor"] = {{"objectType", "Agent"}, {"account", {{"homePage", "https://lms.example.com"}, {"name", "E0042"}}}};
  NormaliseOptions opt;
  CHECK(normalise(s, opt, "x").record.source_user == "E0042");
  opt.account_as = AccountAs::EmployeeId;
  CHECK(normalise(s, opt, "x").record.employee_id == "E0042");
  opt.account_as = AccountAs::Email;
  s["actor"]["account"]["name"] = "grace@example.org";
  CHECK(normalise(s, opt, "x").record.email == "grace@example.org");

  s["actor"] = {{"objectType", "Agent"}, {"mbox_sha1sum", "EBD31E95054C018B10727CCFFD2EF2EC3A016EE9"}};
  auto sha = normalise(s, {}, "x");
  REQUIRE(sha.outcome == Outcome::Quarantine);
  CHECK_THAT(sha.reason, Catch::Contains("mbox_sha1sum"));
  CHECK_THAT(sha.reason, Catch::Contains("mappings/identity.yaml"));
  opt.mbox_sha1sum = Sha1As::User;
  auto as_user = normalise(s, opt, "x");
  REQUIRE(as_user.outcome == Outcome::Record);
  CHECK(as_user.record.source_user == "ebd31e95054c018b10727ccffd2ef2ec3a016ee9");

  s["actor"] = {{"objectType", "Agent"}, {"mbox", "mailto:a@example.org"}, {"account", {{"homePage", "h"}, {"name", "n"}}}};
  CHECK_THAT(normalise(s, {}, "x").reason, Catch::Contains("more than one identifier"));
  s["actor"] = {{"objectType", "Agent"}, {"name", "Nobody"}};
  CHECK_THAT(normalise(s, {}, "x").reason, Catch::Contains("no identifier"));
}

TEST_CASE("the attempt number comes from the configured extension, else 0", "[connector][xapi]") {
  NormaliseOptions opt;
  opt.attempt_extension = "https://example.org/xapi/extensions/attempt";
  Json s = statement("passed");
  CHECK(normalise(s, opt, "x").record.attempt == 0);
  s["context"] = {{"extensions", {{opt.attempt_extension, 3}}}};
  CHECK(normalise(s, opt, "x").record.attempt == 3);
  s["context"] = {{"extensions", {{opt.attempt_extension, "4"}}}};
  CHECK(normalise(s, opt, "x").record.attempt == 4);
  s.erase("context");
  s["result"] = {{"extensions", {{opt.attempt_extension, 5}}}};
  CHECK(normalise(s, opt, "x").record.attempt == 5);
  s["result"] = {{"extensions", {{opt.attempt_extension, 2.5}}}};
  CHECK(normalise(s, opt, "x").outcome == Outcome::Quarantine);
  // Not configured: the extension is not read.
  s["result"] = {{"extensions", {{opt.attempt_extension, 5}}}};
  CHECK(normalise(s, {}, "x").record.attempt == 0);
}

TEST_CASE("a voiding statement names the statement it voids", "[connector][xapi]") {
  Json v = fixture("voiding.json");
  v["id"] = "0e5a4c9f-0000-4000-8000-000000000001";
  const auto n = normalise(v, {}, "x");
  REQUIRE(n.outcome == Outcome::Voiding);
  CHECK(n.voided_id == "e05aa883-acaf-40ad-bf54-02c8ce485fb0");
  CHECK(n.statement_id == "0e5a4c9f-0000-4000-8000-000000000001");
}

TEST_CASE("every malformed fixture statement is quarantined with its id and the expected reason",
          "[connector][xapi]") {
  NormaliseOptions opt;
  opt.attempt_extension = "https://example.org/xapi/extensions/attempt";
  for (const Json& entry : fixture("malformed.json")) {
    const Json& s = entry["statement"];
    INFO(s.dump());
    const auto n = normalise(s, opt, "x");
    REQUIRE(n.outcome == Outcome::Quarantine);
    CHECK(n.statement_id == s["id"].get<std::string>());
    CHECK_THAT(n.reason, Catch::Contains(entry["expect"].get<std::string>()));
  }
  // Not even an object, or no usable id.
  CHECK(normalise(Json::array(), opt, "x").outcome == Outcome::Quarantine);
  CHECK(normalise(Json("text"), opt, "x").outcome == Outcome::Quarantine);
  Json no_id = statement("completed");
  no_id["id"] = 42;
  CHECK(normalise(no_id, opt, "x").outcome == Outcome::Quarantine);
}

TEST_CASE("microsecond timestamps round-trip and keep their offset", "[connector][xapi]") {
  CHECK(formatMicros(*parseMicros("2026-11-20T10:00:01.123456Z")) == "2026-11-20T10:00:01.123456Z");
  CHECK(formatMicros(*parseMicros("2026-11-20T11:00:01.5+01:00")) == "2026-11-20T10:00:01.500000Z");
  CHECK(formatMicros(*parseMicros("2026-11-20T10:00:01.1234567Z")) == "2026-11-20T10:00:01.123456Z");
  CHECK_FALSE(parseMicros("not a time"));
}
