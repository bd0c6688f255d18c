// The Graph fake itself: the behaviours the connector tests rely on to catch mistakes.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "graph_test_support.hpp"

using certgate::testing::GraphFake;
using certgate::testing::GraphFakeOptions;
using certgate::testing::GraphGroup;
using certgate::testing::graph_support::gid;
using certgate::testing::graph_support::person;
using certgate::testing::graph_support::uid;
using Json = nlohmann::json;

namespace {

struct Raw {
  GraphFake& fake;
  httplib::Client client;
  std::string token;

  explicit Raw(GraphFake& f) : fake(f), client("127.0.0.1", std::stoi(f.origin().substr(17))) {
    const std::string form = "grant_type=client_credentials&client_id=" + f.options().client_id +
                             "&client_secret=" + f.options().client_secret +
                             "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";
    auto res = client.Post(("/" + f.options().tenant + "/oauth2/v2.0/token").c_str(), form,
                           "application/x-www-form-urlencoded");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    token = Json::parse(res->body)["access_token"].get<std::string>();
  }

  httplib::Headers auth(std::string consistency = {}) const {
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    if (!consistency.empty()) h.emplace("ConsistencyLevel", consistency);
    return h;
  }
};

}  // namespace

TEST_CASE("fake: DELETE of a member without /$ref deletes the user, as Graph warns",
          "[connector][graph][fake]") {
  GraphFake fake;
  fake.start();
  GraphGroup g;
  g.id = gid(1);
  g.display_name = "G";
  fake.addGroup(g);
  fake.addUser(person(1));
  fake.addMember(gid(1), uid(1));
  Raw raw(fake);
  auto res = raw.client.Delete(("/v1.0/groups/" + gid(1) + "/members/" + uid(1)).c_str(),
                               raw.auth());
  REQUIRE(res);
  CHECK(res->status == 204);
  CHECK_FALSE(fake.userExists(uid(1)));
  CHECK(fake.deletedObjects() == std::vector<std::string>{uid(1)});
  CHECK(fake.unsafeDeleteCount() == 1);
}

TEST_CASE("fake: without User.ReadWrite.All the same DELETE is 403 and still recorded",
          "[connector][graph][fake]") {
  GraphFakeOptions o;
  o.app_can_delete_users = false;
  GraphFake fake(o);
  fake.start();
  GraphGroup g;
  g.id = gid(1);
  fake.addGroup(g);
  fake.addUser(person(1));
  fake.addMember(gid(1), uid(1));
  Raw raw(fake);
  auto res = raw.client.Delete(("/v1.0/groups/" + gid(1) + "/members/" + uid(1)).c_str(),
                               raw.auth());
  REQUIRE(res);
  CHECK(res->status == 403);
  CHECK(Json::parse(res->body)["error"]["code"] == "Authorization_RequestDenied");
  CHECK(fake.userExists(uid(1)));
  CHECK(fake.unsafeDeleteCount() == 1);
}

TEST_CASE("fake: limits and documented errors", "[connector][graph][fake]") {
  GraphFake fake;
  fake.start();
  GraphGroup g;
  g.id = gid(1);
  fake.addGroup(g);
  for (int i = 0; i < 25; ++i) fake.addUser(person(i));
  fake.addMember(gid(1), uid(0));
  Raw raw(fake);

  SECTION("more than 20 binds in one PATCH is 400 and adds nobody") {
    Json binds = Json::array();
    for (int i = 1; i <= 21; ++i)
      binds.push_back("https://graph.microsoft.com/v1.0/directoryObjects/" + uid(i));
    auto res = raw.client.Patch(("/v1.0/groups/" + gid(1)).c_str(), raw.auth(),
                                Json{{"members@odata.bind", binds}}.dump(), "application/json");
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(fake.memberIds(gid(1)).size() == 1);
  }
  SECTION("one present member refuses the whole PATCH with the documented message") {
    Json binds = {"https://graph.microsoft.com/v1.0/directoryObjects/" + uid(1),
                  "https://graph.microsoft.com/v1.0/directoryObjects/" + uid(0)};
    auto res = raw.client.Patch(("/v1.0/groups/" + gid(1)).c_str(), raw.auth(),
                                Json{{"members@odata.bind", binds}}.dump(), "application/json");
    REQUIRE(res);
    CHECK(res->status == 400);
    const auto e = Json::parse(res->body)["error"];
    CHECK(e["code"] == "Request_BadRequest");
    CHECK(e["message"] ==
          "One or more added object references already exist for the following modified "
          "properties: 'members'.");
    CHECK(e["innerError"].contains("request-id"));
    CHECK_FALSE(fake.isMember(gid(1), uid(1)));
  }
  SECTION("a batch of 21 requests is 400") {
    Json reqs = Json::array();
    for (int i = 0; i < 21; ++i)
      reqs.push_back({{"id", std::to_string(i)}, {"method", "GET"}, {"url", "/users"}});
    auto res = raw.client.Post("/v1.0/$batch", raw.auth(), Json{{"requests", reqs}}.dump(),
                               "application/json");
    REQUIRE(res);
    CHECK(res->status == 400);
  }
  SECTION("$top above 999 is 400") {
    auto res = raw.client.Get("/v1.0/users?$top=1000", raw.auth());
    REQUIRE(res);
    CHECK(res->status == 400);
  }
  SECTION("employeeType needs the advanced query parameters") {
    auto plain = raw.client.Get("/v1.0/users?$filter=employeeType%20eq%20%27Employee%27",
                                raw.auth());
    REQUIRE(plain);
    CHECK(plain->status == 400);
    CHECK(Json::parse(plain->body)["error"]["code"] == "Request_UnsupportedQuery");
    auto advanced = raw.client.Get(
        "/v1.0/users?$filter=employeeType%20eq%20%27Employee%27&$count=true",
        raw.auth("eventual"));
    REQUIRE(advanced);
    CHECK(advanced->status == 200);
    CHECK(Json::parse(advanced->body)["@odata.count"] == 25);
  }
  SECTION("employeeId is only returned when selected") {
    auto res = raw.client.Get(("/v1.0/users/" + uid(3)).c_str(), raw.auth());
    REQUIRE(res);
    CHECK_FALSE(Json::parse(res->body).contains("employeeId"));
  }
  SECTION("batch answers come back in a different order and carry per-request 429s") {
    fake.throttleBatchItems(1, 9);
    Json reqs = {{{"id", "a"}, {"method", "GET"}, {"url", "/users/" + uid(1)}},
                 {{"id", "b"}, {"method", "GET"}, {"url", "/users/" + uid(2)}}};
    auto res = raw.client.Post("/v1.0/$batch", raw.auth(), Json{{"requests", reqs}}.dump(),
                               "application/json");
    REQUIRE(res);
    CHECK(res->status == 200);
    const auto responses = Json::parse(res->body)["responses"];
    REQUIRE(responses.size() == 2);
    CHECK(responses[0]["id"] == "b");
    CHECK(responses[1]["id"] == "a");
    CHECK(responses[1]["status"] == 429);
    CHECK(responses[1]["headers"]["Retry-After"] == "9");
    CHECK(responses[0]["status"] == 200);
  }
  SECTION("a wrong client secret is invalid_client (401)") {
    auto res = raw.client.Post(("/" + fake.options().tenant + "/oauth2/v2.0/token").c_str(),
                               "grant_type=client_credentials&client_id=" +
                                   fake.options().client_id +
                                   "&client_secret=nope&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
                               "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(Json::parse(res->body)["error"] == "invalid_client");
  }
}
