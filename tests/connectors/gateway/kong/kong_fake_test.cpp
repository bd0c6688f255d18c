// The Kong fake itself, spoken to with plain HTTP: it must answer as the Kong sources it cites
// (kong_fake.hpp) do, or the connector tests prove nothing.
#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "connectors/common/http_client.hpp"
#include "fakes/kong/kong_fake.hpp"

namespace http = certgate::connectors::http;
namespace fake = certgate::testing::kong;
using Json = nlohmann::json;

namespace {

struct Admin {
  std::atomic<std::int64_t> now{1'800'000'000};
  fake::KongFake kong;
  http::Client client;

  explicit Admin(fake::KongFakeOptions o = {})
      : kong(withClock(std::move(o))), client(clientOptions()) {
    kong.start();
  }

  fake::KongFakeOptions withClock(fake::KongFakeOptions o) {
    o.clock = [this] { return now.load(); };
    return o;
  }

  static http::ClientOptions clientOptions() {
    http::ClientOptions o;
    o.total_timeout = http::Millis(5000);
    return o;
  }

  http::Response send(http::Method m, const std::string& target, const Json& body = nullptr) {
    http::Request r;
    r.method = m;
    r.url = kong.url() + target;
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers.set("Content-Type", "application/json");
    }
    auto res = client.send(r);
    REQUIRE(res.ok());
    return *res;
  }

  Json json(http::Method m, const std::string& target, const Json& body = nullptr, long status = 200) {
    auto res = send(m, target, body);
    INFO(res.body);
    CHECK(res.status == status);
    return Json::parse(res.body);
  }
};

}  // namespace

TEST_CASE("kong fake: credentials are created 201, unique by key, deleted 204, 404 after",
          "[connector][kong][fake]") {
  Admin a;
  const Json consumer = a.json(http::Method::Post, "/consumers", {{"username", "ann"}}, 201);
  const std::string cid = consumer.at("id");
  CHECK(a.json(http::Method::Post, "/consumers", {{"username", "ann"}}, 409).at("name") ==
        "unique constraint violation");
  const Json empty = a.json(http::Method::Post, "/consumers", Json::object(), 400);
  CHECK(empty.at("code") == 2);

  const Json cred = a.json(http::Method::Post, "/consumers/ann/key-auth",
                           {{"key", "k-1"}, {"ttl", 60}, {"tags", {"certgate", "x.y"}}}, 201);
  CHECK(cred.at("key") == "k-1");
  CHECK(cred.at("ttl") == 60);
  CHECK(cred.at("consumer").at("id") == cid);
  const Json dup = a.json(http::Method::Post, "/consumers/" + cid + "/key-auth", {{"key", "k-1"}}, 409);
  CHECK(dup.at("code") == 5);
  CHECK(dup.at("message") == "UNIQUE violation detected on '{key=\"k-1\"}'");
  CHECK(dup.at("fields").at("key") == "k-1");
  const Json bad_ttl = a.json(http::Method::Post, "/consumers/ann/key-auth", {{"ttl", -1}}, 400);
  CHECK(bad_ttl.at("code") == 11);
  CHECK(bad_ttl.at("options").at("ttl") == "must be an integer between 0 and 100000000");
  const Json generated = a.json(http::Method::Post, "/consumers/ann/key-auth", Json::object(), 201);
  CHECK(generated.at("key").get<std::string>().size() == 32);
  CHECK(generated.at("ttl").is_null());

  const std::string id = cred.at("id");
  CHECK(a.json(http::Method::Get, "/key-auths/" + id + "/consumer").at("username") == "ann");
  CHECK(a.send(http::Method::Delete, "/consumers/ann/key-auth/" + id).status == 204);
  CHECK(a.json(http::Method::Delete, "/consumers/ann/key-auth/" + id, nullptr, 404).at("message") == "Not found");
  CHECK(a.send(http::Method::Get, "/key-auths/" + id + "/consumer").status == 404);
  CHECK(a.send(http::Method::Get, "/consumers/nobody/key-auth").status == 404);
}

TEST_CASE("kong fake: a ttl hides the credential once it passes", "[connector][kong][fake]") {
  Admin a;
  a.kong.addConsumer({"", "ann", "", {}});
  const Json cred = a.json(http::Method::Post, "/consumers/ann/key-auth", {{"key", "k"}, {"ttl", 10}}, 201);
  a.now += 4;
  CHECK(a.json(http::Method::Get, "/consumers/ann/key-auth/k").at("ttl") == 6);
  a.now += 7;
  CHECK(a.send(http::Method::Get, "/consumers/ann/key-auth/k").status == 404);
  CHECK(a.json(http::Method::Get, "/key-auths").at("data").empty());
  // An expired key may be used again.
  CHECK(a.send(http::Method::Post, "/consumers/ann/key-auth", {{"key", "k"}}).status == 201);
}

TEST_CASE("kong fake: pages carry offset and next, and tags filter with and and or",
          "[connector][kong][fake]") {
  Admin a;
  a.kong.addConsumer({"", "ann", "", {}});
  for (int i = 0; i < 5; ++i)
    a.kong.addCredential("ann", "k" + std::to_string(i), {i % 2 == 0 ? "even" : "odd", "all"});
  const Json first = a.json(http::Method::Get, "/key-auths?size=2&tags=all");
  CHECK(first.at("data").size() == 2);
  const std::string offset = first.at("offset");
  // `next` repeats tags, not size (kong/api/endpoints.lua).
  CHECK(first.at("next") == "/key-auths?offset=" + offset + "&tags=all");
  const Json second = a.json(http::Method::Get, "/key-auths?size=2&tags=all&offset=" + offset);
  CHECK(second.at("data").at(0).at("key") == "k2");
  const Json last = a.json(http::Method::Get, "/key-auths?size=2&tags=all&offset=" +
                                                  second.at("offset").get<std::string>());
  CHECK(last.at("data").size() == 1);
  CHECK(last.at("next").is_null());
  CHECK(last.at("offset").is_null());

  CHECK(a.json(http::Method::Get, "/key-auths?tags=even,all").at("data").size() == 3);
  CHECK(a.json(http::Method::Get, "/key-auths?tags=even/odd").at("data").size() == 5);
  CHECK(a.json(http::Method::Get, "/key-auths?tags=a,b/c", nullptr, 400).at("code") == 11);
  CHECK(a.json(http::Method::Get, "/key-auths?tags=has%3Acolon", nullptr, 400).at("message") ==
        "invalid option (tags: invalid filter syntax)");
  CHECK(a.json(http::Method::Get, "/key-auths?tags=a,b,c,d,e,f", nullptr, 400).at("message") ==
        "invalid option (tags: cannot query more than 5 tags)");
  CHECK(a.json(http::Method::Get, "/key-auths?size=1001", nullptr, 400).at("code") == 9);
  CHECK(a.json(http::Method::Get, "/key-auths?offset=%21%21", nullptr, 400).at("code") == 7);
  // Nested collections ignore tags.
  CHECK(a.json(http::Method::Get, "/consumers/ann/key-auth?tags=even").at("data").size() == 5);
}

TEST_CASE("kong fake: ACL groups are unique per consumer and addressed by group name",
          "[connector][kong][fake]") {
  Admin a;
  a.kong.addConsumer({"", "ann", "", {}});
  a.json(http::Method::Post, "/consumers/ann/acls", {{"group", "g1"}, {"tags", {"certgate"}}}, 201);
  CHECK(a.json(http::Method::Post, "/consumers/ann/acls", {{"group", "g1"}}, 409).at("code") == 5);
  CHECK(a.json(http::Method::Post, "/consumers/ann/acls", Json::object(), 400).at("fields").at("group") ==
        "required field missing");
  CHECK(a.json(http::Method::Get, "/consumers/ann/acls/g1").at("tags") == Json::array({"certgate"}));
  CHECK(a.send(http::Method::Delete, "/consumers/ann/acls/g1").status == 204);
  CHECK(a.send(http::Method::Delete, "/consumers/ann/acls/g1").status == 404);
}

TEST_CASE("kong fake: the proxy keeps a deleted key for the cache window and the ACL plugin refuses "
          "other groups",
          "[connector][kong][fake]") {
  fake::KongFakeOptions o;
  o.proxy_acl_allow = {"g1"};
  Admin a(o);
  a.kong.addConsumer({"", "ann", "", {}});
  const std::string used = a.kong.addCredential("ann", "used-key", {});
  const std::string idle = a.kong.addCredential("ann", "idle-key", {});
  CHECK(a.kong.proxy("used-key").status == 403);  // no group yet
  a.kong.addAcl("ann", "g1");

  http::Request r;
  r.url = a.kong.url() + "/_proxy/v1/chat";
  r.headers.set("apikey", "used-key");
  auto res = a.client.send(r);
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(res->headers.get("X-Consumer-Username") == "ann");

  CHECK(a.send(http::Method::Delete, "/consumers/ann/key-auth/" + used).status == 204);
  CHECK(a.send(http::Method::Delete, "/consumers/ann/key-auth/" + idle).status == 204);
  CHECK(a.kong.proxy("used-key").status == 200);  // cached by the node
  CHECK(a.kong.proxy("idle-key").status == 401);  // never cached: looked up and missing
  a.now += 5;
  CHECK(a.kong.proxy("used-key").status == 401);

  r.headers = {};
  res = a.client.send(r);
  REQUIRE(res.ok());
  CHECK(res->status == 401);
  CHECK(res->headers.get("WWW-Authenticate") == "Key realm=\"kong\"");
}

TEST_CASE("kong fake: a dropped create stores the credential and breaks the connection",
          "[connector][kong][fake]") {
  Admin a;
  a.kong.addConsumer({"", "ann", "", {}});
  a.kong.dropCreateResponses(1);
  http::Request r;
  r.method = http::Method::Post;
  r.url = a.kong.url() + "/consumers/ann/key-auth";
  r.body = R"({"key":"k"})";
  r.headers.set("Content-Type", "application/json");
  auto res = a.client.send(r);
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == certgate::core::ErrorKind::Transient);
  CHECK(a.kong.credentials("ann").size() == 1);
  CHECK(a.kong.requests().back().dropped);
}

TEST_CASE("kong fake: an admin token guards the Admin API, not the proxy", "[connector][kong][fake]") {
  fake::KongFakeOptions o;
  o.admin_token = "t0k";
  Admin a(o);
  CHECK(a.json(http::Method::Get, "/consumers", nullptr, 401).at("message") ==
        "Invalid credentials. Token or User credentials required");
  http::Request r;
  r.url = a.kong.url() + "/consumers";
  r.headers.set("Kong-Admin-Token", "t0k");
  auto res = a.client.send(r);
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(a.send(http::Method::Get, "/_proxy/x").status == 401);
}
