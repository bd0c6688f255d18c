// The whole pipeline from an xAPI LRS to a real SCIM 2.0 server: the xapi source reads the
// loopback LRS fake (tests/fakes/xapi, xAPI 1.0.3), certgate's CLI evaluates the track and
// writes the group in the scimmy peer (tests/peers/scim), configured as an operator would.
#include <catch2/catch.hpp>

#include "fakes/xapi/xapi_fake.hpp"
#include "integration/lms_sync_harness.hpp"

using certgate::testing::lms_sync::Deployment;
using certgate::testing::lms_sync::email;
using certgate::testing::lms_sync::userIds;
using certgate::testing::xapi::XapiFake;

namespace {

constexpr const char* kToken = "itest-xapi-scim-token-77c1";
constexpr const char* kBasics = "https://lms.example.com/xapi/activities/ai-basics";

struct XapiDeployment : Deployment {
  XapiFake lrs;

  explicit XapiDeployment(int people)
      : Deployment(kToken, people,
                   "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
                   "    recertifyDays: 365\n",
                   std::string("items:\n  - { lms_item: \"") + kBasics + "\", module: M1 }\n") {
    lrs.start();
    write("lrs-password", "lrs-secret\n", true);
    configure("sources:\n  - name: lrs\n    kind: xapi\n    endpoint: " + lrs.endpoint() +
              "\n    username: lrs-key\n    password: { file: lrs-password }\n"
              "    verbs: [completed, passed]\n    limit: 1\n    overlap: 0s\n");
  }
  void complete(int i) {
    lrs.add({{"actor", {{"objectType", "Agent"}, {"name", "Person " + std::to_string(i)},
                        {"mbox", "mailto:" + email(i)}}},
             {"verb", {{"id", "http://adlnet.gov/expapi/verbs/completed"}, {"display", {{"en-US", "completed"}}}}},
             {"object", {{"id", kBasics}, {"objectType", "Activity"}}},
             {"result", {{"completion", true}}},
             {"timestamp", "2026-11-20T09:00:00Z"}});
  }
};

}  // namespace

TEST_CASE("sync grants the group to people whose completions the LRS holds, and an LRS page "
          "that fails removes nobody", "[integration][xapi][scim]") {
  XapiDeployment d(6);
  for (int i : {1, 2, 3, 4}) d.complete(i);

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  for (const auto& r : d.lrs.requests()) CHECK(r.header("X-Experience-API-Version") == "1.0.3");

  // Nothing new: nothing to change, and the cursor kept the LRS from sending old statements.
  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);

  // Two more completions; the LRS answers the second page with a cut-off body. Person 5 (page 1)
  // is granted, the source is incomplete, and nobody loses access.
  d.complete(5);
  d.complete(6);
  const int before = static_cast<int>(d.lrs.statementRequests());
  d.lrs.truncatePage(before + 2);
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5}));
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("completed page 2") != std::string::npos);

  // The next sync reads from the old cursor again and completes.
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5, 6}));
}
