// The whole pipeline from Canvas to a real SCIM 2.0 server: the canvas source reads the loopback
// Canvas REST API fake (tests/fakes/canvas), certgate's CLI evaluates a track with a course and a
// quiz, and writes the group in the scimmy peer (tests/peers/scim), configured as an operator
// would.
#include <catch2/catch.hpp>

#include "fakes/canvas/canvas_fake.hpp"
#include "integration/lms_sync_harness.hpp"

using certgate::testing::canvas::CanvasFake;
using certgate::testing::lms_sync::Deployment;
using certgate::testing::lms_sync::email;
using certgate::testing::lms_sync::employee;
using certgate::testing::lms_sync::userIds;
using Json = nlohmann::json;

namespace {

constexpr const char* kToken = "itest-canvas-scim-token-4a7b";
constexpr const char* kCanvasToken = "canvas-token-8c1e";

// Course 1234 whose completion is module M1, and quiz assignment 55 worth 20 points.
Json site(int people) {
  Json s = {{"courses", {{{"id", 1234}, {"name", "AI Safety Basics"}}}},
            {"users", Json::array()}, {"enrollments", Json::array()},
            {"assignments", {{{"id", 55}, {"course_id", 1234}, {"name", "AI quiz"},
                              {"points_possible", 20.0}, {"grading_type", "points"}}}},
            {"progress", Json::array()}, {"submissions", Json::array()}};
  for (int i = 1; i <= people; ++i) {
    s["users"].push_back({{"id", 600 + i}, {"name", "Person " + std::to_string(i)},
                          {"sis_user_id", employee(i)}, {"login_id", "p" + std::to_string(i)},
                          {"email", email(i)}});
    s["enrollments"].push_back({{"course_id", 1234}, {"user_id", 600 + i},
                                {"type", "StudentEnrollment"}, {"enrollment_state", "active"}});
  }
  return s;
}

struct CanvasDeployment : Deployment {
  CanvasFake canvas;
  int next_submission = 1;

  explicit CanvasDeployment(int people)
      : Deployment(kToken, people,
                   "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
                   "    quiz: { minScorePct: 80, attemptsAllowed: 3 }\n    recertifyDays: 365\n",
                   "items:\n  - { lms_item: \"course:1234\", module: M1 }\n"
                   "  - { lms_item: \"assignment:55\", quiz: AI_BASICS }\n") {
    canvas.load(site(people));
    canvas.start();
    write("canvas-token", std::string(kCanvasToken) + "\n", true);
    configure("sources:\n  - name: canvas\n    kind: canvas\n    url: " + canvas.url() +
              "\n    token: { file: canvas-token }\n    courses: [1234]\n    per_page: 2\n");
  }
  // Person i completes the course and is graded `points` of 20 on the quiz.
  void learn(int i, double points, const std::string& graded_at) {
    Json& s = canvas.site();
    s["progress"].push_back({{"course_id", 1234}, {"user_id", 600 + i}, {"requirement_count", 2},
                             {"requirement_completed_count", 2}, {"completed_at", "2026-11-20T09:00:00Z"}});
    s["submissions"].push_back(
        {{"id", 9000 + next_submission++}, {"assignment_id", 55}, {"user_id", 600 + i},
         {"attempt", 1}, {"score", points}, {"grade", std::to_string(points)},
         {"submitted_at", "2026-11-21T10:00:00Z"}, {"graded_at", graded_at},
         {"workflow_state", "graded"}, {"excused", false}});
  }
};

}  // namespace

TEST_CASE("sync grants the group to people who completed the Canvas course and passed its quiz, "
          "and a Canvas page that fails removes nobody", "[integration][canvas][scim]") {
  CanvasDeployment d(6);
  for (int i : {1, 2, 3, 4}) d.learn(i, 18.0, "2026-11-21T11:00:00Z");  // 90 %

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  for (const auto& r : d.canvas.requests()) CHECK(r.authorization == std::string("Bearer ") + kCanvasToken);

  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);
  // The second sync asked only for submissions graded since the cursor, less the overlap.
  CHECK(d.canvas.requests().back().param("graded_since") == "2026-11-21T10:00:00Z");

  // Person 5 completes and is graded late; the progress list then fails on its second page (a
  // 404 is not retried, which keeps the test fast). The source is incomplete: nobody is granted
  // from what was not read, and nobody loses access.
  d.learn(5, 17.0, "2026-11-24T10:00:00Z");
  d.canvas.failRequests(d.canvas.requestCount() + 5, 100, 404);
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("progress page") != std::string::npos);
  CHECK(sources.out.find(kCanvasToken) == std::string::npos);

  d.canvas.clearFaults();
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5}));
}
