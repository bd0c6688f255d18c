// Canvas Live Events (Canvas format, tests/fixtures/canvas/live_events.json, shaped like the Data
// Services event-format examples) read by the canvas source's parsePush.
#include <catch2/catch.hpp>

#include "connectors/canvas/canvas_test_support.hpp"

using namespace certgate;
using namespace certgate::testing::canvas_support;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");

std::unique_ptr<ports::LmsSource> source() {
  certgate::testing::OptionsBuilder b;
  b.set("url", "https://canvas.example.com");
  b.map("token", {{"file", "/etc/certgate/canvas-token"}});
  b.set("courses", "1234");
  auto made = connectors::canvas::makeSource("canvas", b.build(), "/etc/certgate", secrets(), nullptr);
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

}  // namespace

TEST_CASE("canvas live events name the people they concern, and a course completion carries "
          "its record", "[connector][canvas]") {
  auto src = source();
  for (const auto& sample : fixture("live_events.json")) {
    INFO(sample["name"].get<std::string>());
    auto ev = src->parsePush(sample["event"].dump(), kNow);
    REQUIRE(ev.ok());
    CHECK(ev->kind == sample["event"]["metadata"]["event_name"].get<std::string>());
    REQUIRE(ev->people.size() == sample["people"].size());
    for (std::size_t i = 0; i < ev->people.size(); ++i) {
      const auto& want = sample["people"][i];
      CHECK(ev->people[i].source_user == want["source_user"].get<std::string>());
      CHECK(ev->people[i].employee_id == want["employee_id"].get<std::string>());
      CHECK(ev->people[i].email == want["email"].get<std::string>());
    }
    REQUIRE(ev->records.size() == sample["records"].get<std::size_t>());
    CHECK(ev->quarantined.empty());
    if (!ev->records.empty()) {
      const auto& r = ev->records[0];
      CHECK(r.external_id == sample["record"]["external_id"].get<std::string>());
      CHECK(r.lms_item == sample["record"]["lms_item"].get<std::string>());
      CHECK(r.at == *core::parseIso(sample["record"]["at"].get<std::string>()));
      CHECK(r.source_user == "501");
      CHECK(r.status == core::FactStatus::Completed);
    }
  }
}

TEST_CASE("a grade_change names the student, never the grader who sent it", "[connector][canvas]") {
  auto src = source();
  const Json sample = fixture("live_events.json")[0]["event"];
  REQUIRE(sample["metadata"]["user_sis_id"] == "T0009");
  auto ev = src->parsePush(sample.dump(), kNow);
  REQUIRE(ev.ok());
  REQUIRE(ev->people.size() == 1);
  CHECK(ev->people[0].employee_id == "E0002");
  CHECK(ev->people[0].source_user == "502");
}

TEST_CASE("pushes that are not Canvas-format Live Events are refused with what to change",
          "[connector][canvas]") {
  auto src = source();
  auto junk = src->parsePush("not json", kNow);
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.error().kind == core::ErrorKind::Invalid);
  const Json caliper = {{"sensor", "https://canvas.example.com/"},
                        {"sendTime", "2026-11-24T10:00:00.000Z"},
                        {"dataVersion", "http://purl.imsglobal.org/ctx/caliper/v1p1"},
                        {"data", Json::array()}};
  auto cal = src->parsePush(caliper.dump(), kNow);
  REQUIRE_FALSE(cal.ok());
  CHECK_THAT(cal.error().hint, Catch::Contains("Canvas format"));
  // A submission event without a user is kept aside, not guessed.
  Json nouser = fixture("live_events.json")[1]["event"];
  nouser["body"].erase("user_id");
  auto ev = src->parsePush(nouser.dump(), kNow);
  REQUIRE(ev.ok());
  CHECK(ev->people.empty());
  REQUIRE(ev->quarantined.size() == 1);
  CHECK_THAT(ev->quarantined[0].reason, Catch::Contains("names no user"));
}
