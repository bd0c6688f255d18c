// The whole pipeline from Moodle to a real SCIM 2.0 server: the moodle source reads the loopback
// Moodle web services fake (tests/fakes/moodle), certgate's CLI evaluates a track with a module
// and a quiz, and writes the group in the scimmy peer (tests/peers/scim), configured as an
// operator would.
#include <catch2/catch.hpp>

#include "fakes/moodle/moodle_fake.hpp"
#include "integration/lms_sync_harness.hpp"

using certgate::testing::lms_sync::Deployment;
using certgate::testing::lms_sync::email;
using certgate::testing::lms_sync::employee;
using certgate::testing::lms_sync::userIds;
using certgate::testing::moodle::MoodleFake;
using Json = nlohmann::json;

namespace {

constexpr const char* kToken = "itest-moodle-scim-token-31d0";
constexpr const char* kWsToken = "moodle-ws-token-5f2e";
constexpr std::int64_t kDay = 1795165200;  // 2026-11-20T09:00:00Z

// Course 12 with the page "AI basics" (cm 44) and a quiz of 10 marks graded out of 100 (cm 45).
Json site(int people) {
  Json s = {{"courses", {{{"id", 12}, {"shortname", "AISAFE"}, {"enablecompletion", 1}}}},
            {"users", Json::array()}, {"enrolments", Json::array()},
            {"quizzes", {{{"id", 7}, {"course", 12}, {"coursemodule", 45}, {"name", "AI quiz"},
                          {"attempts", 3}, {"grademethod", 1}, {"sumgrades", 10.0}, {"grade", 100.0}}}},
            {"completion", Json::array()}, {"attempts", Json::array()}};
  for (int i = 1; i <= people; ++i) {
    s["users"].push_back({{"id", 100 + i}, {"username", "p" + std::to_string(i)},
                          {"fullname", "Person " + std::to_string(i)}, {"email", email(i)},
                          {"idnumber", employee(i)}});
    s["enrolments"].push_back({{"courseid", 12}, {"userid", 100 + i}, {"status", 0}});
  }
  return s;
}

struct MoodleDeployment : Deployment {
  MoodleFake moodle;
  int next_attempt = 1;

  explicit MoodleDeployment(int people)
      : Deployment(kToken, people,
                   "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
                   "    quiz: { minScorePct: 80, attemptsAllowed: 3 }\n    recertifyDays: 365\n",
                   "items:\n  - { lms_item: \"cm:44\", module: M1 }\n"
                   "  - { lms_item: \"quiz:45\", quiz: AI_BASICS }\n") {
    moodle.load(site(people));
    moodle.start();
    write("moodle-token", std::string(kWsToken) + "\n", true);
    configure("sources:\n  - name: moodle\n    kind: moodle\n    url: " + moodle.url() +
              "\n    token: { file: moodle-token }\n    courses: [12]\n    page_size: 1\n");
  }
  // Person i completes the page and finishes a quiz attempt with `marks` out of 10.
  void learn(int i, double marks, int attempt = 1) {
    Json& s = moodle.site();
    bool listed = false;
    for (auto& e : s["completion"])
      if (e["userid"] == 100 + i) listed = true;
    if (!listed)
      s["completion"].push_back(
          {{"courseid", 12}, {"userid", 100 + i},
           {"statuses", {{{"cmid", 44}, {"modname", "page"}, {"instance", 3}, {"state", 1},
                          {"timecompleted", kDay}, {"tracking", 2}}}}});
    s["attempts"].push_back({{"id", 500 + next_attempt++}, {"quiz", 7}, {"userid", 100 + i},
                             {"attempt", attempt}, {"preview", 0}, {"state", "finished"},
                             {"timestart", kDay + 3600 * attempt}, {"timefinish", kDay + 3600 * attempt + 600},
                             {"sumgrades", marks}});
  }
};

}  // namespace

TEST_CASE("sync grants the group to people who completed the Moodle course and passed its quiz, "
          "and a Moodle error answer removes nobody", "[integration][moodle][scim]") {
  MoodleDeployment d(6);
  for (int i : {1, 2, 3, 4}) d.learn(i, 9.0);  // 90 of 100
  d.learn(5, 5.0);                              // 50 of 100: not a pass

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  for (const auto& c : d.moodle.calls()) CHECK_FALSE(c.token_in_query);

  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);

  // Person 5 passes a second attempt; Moodle answers person 6's completion call with an
  // exception (HTTP 200). Person 5 is granted, the source is incomplete, nobody loses access.
  d.learn(5, 8.5, 2);
  d.moodle.exceptionFor("core_completion_get_activities_completion_status", 106, "moodle_exception",
                        "generalexceptionmessage", "Error reading from database");
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5}));
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("user 106 completion") != std::string::npos);
  CHECK(sources.out.find(kWsToken) == std::string::npos);

  d.moodle.clearFaults();
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5}));
}
