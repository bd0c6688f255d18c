// The scim directory connector against a real third-party SCIM 2.0 service provider: the peer in
// tests/peers/scim (scimmy + scimmy-routers), which follows RFC 7643 / RFC 7644 as summarised in
// shared/reference/idp.md section 4 (https://www.rfc-editor.org/rfc/rfc7644). Faults (5xx, 429
// with Retry-After, SCIM error bodies, concurrent version changes) are injected by the peer's
// --fault rules; every assertion on the wire reads the peer's own request log.

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "connectors/directory/scim/scim_directory.hpp"
#include "support/scim_peer.hpp"

namespace {

using certgate::connectors::http::Millis;
using certgate::core::ErrorKind;
using certgate::testing::ScimPeer;
using certgate::testing::ScimPeerOptions;
using Json = nlohmann::json;
namespace ports = certgate::ports;
namespace http = certgate::connectors::http;
namespace scim = certgate::connectors::scim;

const std::string kToken = "tok-7f3a9c1e5d-scim";
const std::string kEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

std::string percentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Users user1..userN: userName userN@example.com, employeeNumber 1000+N, externalId ext-N,
// department "dept-(N % 3)", active unless N is a multiple of 5.
Json users(int n) {
  Json list = Json::array();
  for (int i = 1; i <= n; ++i) {
    const std::string id = "user" + std::to_string(i);
    list.push_back({{"id", id},
                    {"userName", id + "@example.com"},
                    {"displayName", "User " + std::to_string(i)},
                    {"email", id + "@example.com"},
                    {"externalId", "ext-" + std::to_string(i)},
                    {"active", i % 5 != 0},
                    {kEnterprise,
                     {{"employeeNumber", std::to_string(1000 + i)},
                      {"department", "dept-" + std::to_string(i % 3)}}}});
  }
  return list;
}

Json group(const std::string& id, const std::string& name, std::vector<std::string> members = {}) {
  return {{"id", id}, {"displayName", name}, {"members", members}};
}

ports::Options optionsFrom(const std::vector<std::pair<std::string, std::string>>& scalars) {
  ports::Options o;
  o.where = "test.yaml:1:1";
  for (const auto& [k, v] : scalars) {
    ports::OptionValue value;
    if (k == "token" || k == "client_secret") {
      value.shape = ports::OptionValue::Shape::Map;
      value.map = {{"credential", v}};
    } else {
      value.scalar = v;
    }
    value.where = "test.yaml:" + k;
    o.values.emplace_back(k, std::move(value));
  }
  return o;
}

// Secrets by systemd credential name.
ports::SecretReader secrets(std::map<std::string, std::string> values) {
  return [values](const ports::OptionValue& ref) -> certgate::core::Result<std::string> {
    for (const auto& [k, v] : ref.map)
      if (k == "credential")
        if (auto it = values.find(v); it != values.end()) return it->second;
    return certgate::core::makeError(ErrorKind::NotFound, "no such credential");
  };
}

struct Harness {
  explicit Harness(ScimPeerOptions peer_options,
                   std::vector<std::pair<std::string, std::string>> extra = {},
                   std::string token = kToken)
      : peer(withToken(std::move(peer_options))) {
    std::vector<std::pair<std::string, std::string>> scalars = {{"url", peer.base_url()},
                                                                {"token", "scim-token"}};
    for (auto& e : extra) {
      bool replaced = false;
      for (auto& s : scalars)
        if (s.first == e.first) {
          s.second = e.second;
          replaced = true;
        }
      if (!replaced) scalars.push_back(e);
    }
    http::ClientOptions client;
    client.sleep = [this](Millis d) { sleeps.push_back(d); };
    client.random01 = [] { return 0.5; };
    auto made = scim::makeDirectory("hr-scim", optionsFrom(scalars), "/etc/certgate",
                                    secrets({{"scim-token", token}, {"oauth-secret", "s3cr3t"}}),
                                    redactor, client);
    if (!made) FAIL(made.error().describe());
    dir = std::move(*made);
  }

  static ScimPeerOptions withToken(ScimPeerOptions o) {
    if (o.token.empty()) o.token = kToken;
    return o;
  }

  // SCIM requests since the last clear, as the peer received them.
  Json requests() const { return peer.requests(); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const auto& r : requests()) {
      std::string q = percentDecode(r["query"].get<std::string>());
      out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>() +
                    (q.empty() ? "" : "?" + q) + " -> " + std::to_string(r["status"].get<int>()));
    }
    return out;
  }
  std::vector<std::string> members(const std::string& group_id) const {
    std::vector<std::string> out;
    const Json g = peer.group(group_id);
    for (const auto& m : g["members"]) out.push_back(m["value"]);
    return out;
  }
  ports::GroupRef resolve(const std::string& id_or_name) {
    auto g = dir->resolveGroup(id_or_name);
    if (!g) FAIL(g.error().describe());
    return *g;
  }
  void connect() {
    auto st = dir->connect();
    if (!st) FAIL(st.error().describe());
  }

  ScimPeer peer;
  std::vector<Millis> sleeps;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  std::unique_ptr<ports::Directory> dir;
};

ScimPeerOptions seeded(Json user_list, Json groups = Json::array(),
                       std::vector<std::string> extra_args = {}) {
  ScimPeerOptions o;
  o.seed = {{"users", std::move(user_list)}, {"groups", std::move(groups)}};
  o.extra_args = std::move(extra_args);
  return o;
}

ports::GroupRef groupRef(const std::string& id, const std::string& name) {
  ports::GroupRef g;
  g.id = id;
  g.display_name = name;
  return g;
}

std::vector<std::string> ids(const std::vector<ports::DirectoryUser>& list) {
  std::vector<std::string> out;
  for (const auto& u : list) out.push_back(u.id);
  return out;
}

std::vector<std::string> range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back("user" + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("connect reads the ServiceProviderConfig and adopts its limits", "[connector][scim]") {
  SECTION("bulk, etag and filter.maxResults as the peer advertises them") {
    Harness h(seeded(users(1), Json::array(), {"--max-results", "50", "--bulk-max-operations", "7"}),
              {{"page_size", "80"}});
    h.connect();
    const auto caps = h.dir->capabilities();
    CHECK(caps.bulk);
    CHECK(caps.etag);
    CHECK(caps.page_size == 50);  // lowered to filter.maxResults
    CHECK(caps.max_add_batch == 100);
    CHECK_FALSE(caps.roster);
    const Json reqs = h.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0]["method"] == "GET");
    CHECK(reqs[0]["path"] == "/ServiceProviderConfig");
    CHECK(reqs[0]["headers"]["authorization"] == "present");
    CHECK(reqs[0]["headers"]["accept"].get<std::string>().find("application/scim+json") == 0);
    CHECK(h.dir->requestCount() == 1);
  }
  SECTION("a provider without Bulk and ETags") {
    Harness h(seeded(users(1), Json::array(), {"--bulk", "off", "--etag", "off"}),
              {{"roster_filter", "active eq true"}});
    h.connect();
    CHECK_FALSE(h.dir->capabilities().bulk);
    CHECK_FALSE(h.dir->capabilities().etag);
    CHECK(h.dir->capabilities().roster);
  }
}

TEST_CASE("a refused bearer token is an Auth error that says so and hides the token",
          "[connector][scim]") {
  Harness h(seeded(users(1)), {}, "tok-wrong-value-123");
  auto st = h.dir->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Auth);
  CHECK_THAT(st.error().message, Catch::Contains("HTTP 401"));
  CHECK_THAT(st.error().message, Catch::Contains("token not accepted"));  // the SCIM detail
  CHECK_THAT(st.error().where, Catch::Contains("hr-scim"));
  CHECK_THAT(st.error().hint, Catch::Contains("token"));
  CHECK_THAT(st.error().describe(), !Catch::Contains("tok-wrong-value-123"));
  // Calls other than connect() connect first and fail the same way.
  auto users_found = h.dir->findUsers({ports::UserAttribute::UserName, "", "x@example.com"});
  REQUIRE_FALSE(users_found);
  CHECK(users_found.error().kind == ErrorKind::Auth);
}

TEST_CASE("findUsers builds exact SCIM filters and userName matches case-insensitively",
          "[connector][scim]") {
  Json list = users(3);
  list.push_back({{"id", "odd"}, {"userName", "o\"brien\\x@example.com"}, {"email", "ob@example.com"}});
  Harness h(seeded(list), {{"population_attribute", kEnterprise + ":department"}});
  h.connect();
  h.peer.clearRequests();

  SECTION("userName differs only in case") {
    auto found = h.dir->findUsers({ports::UserAttribute::UserName, "", "USER2@Example.COM"});
    REQUIRE(found);
    REQUIRE(found->size() == 1);
    const auto& u = found->front();
    CHECK(u.id == "user2");
    CHECK(u.user_name == "user2@example.com");
    CHECK(u.email == "user2@example.com");
    CHECK(u.employee_id == "1002");
    CHECK(u.external_id == "ext-2");
    CHECK(u.display_name == "User 2");
    CHECK(u.population == "dept-2");
    CHECK(u.active);
    REQUIRE(h.lines().size() == 1);
    CHECK_THAT(h.lines()[0], Catch::StartsWith("GET /Users?filter=userName eq \"USER2@Example.COM\"&startIndex=1&count=100"));
  }
  SECTION("a value with a quote and a backslash is escaped as a JSON string") {
    auto found = h.dir->findUsers({ports::UserAttribute::UserName, "", "O\"Brien\\X@example.com"});
    REQUIRE(found);
    CHECK(ids(*found) == std::vector<std::string>{"odd"});
    CHECK_THAT(h.lines()[0], Catch::Contains(R"(filter=userName eq "O\"Brien\\X@example.com")"));
  }
  SECTION("email, employee number, externalId, id and a custom attribute") {
    auto by_email = h.dir->findUsers({ports::UserAttribute::Email, "", "USER1@example.com"});
    REQUIRE(by_email);
    CHECK(ids(*by_email) == std::vector<std::string>{"user1"});
    auto by_employee = h.dir->findUsers({ports::UserAttribute::EmployeeId, "", "1003"});
    REQUIRE(by_employee);
    CHECK(ids(*by_employee) == std::vector<std::string>{"user3"});
    auto by_external = h.dir->findUsers({ports::UserAttribute::ExternalId, "", "ext-1"});
    REQUIRE(by_external);
    CHECK(ids(*by_external) == std::vector<std::string>{"user1"});
    auto by_id = h.dir->findUsers({ports::UserAttribute::Id, "", "user3"});
    REQUIRE(by_id);
    CHECK(ids(*by_id) == std::vector<std::string>{"user3"});
    auto custom = h.dir->findUsers({ports::UserAttribute::Custom, "displayName", "user 1"});
    REQUIRE(custom);
    CHECK(ids(*custom) == std::vector<std::string>{"user1"});
    const auto l = h.lines();
    REQUIRE(l.size() == 5);
    CHECK_THAT(l[0], Catch::Contains("filter=emails.value eq \"USER1@example.com\""));
    CHECK_THAT(l[1], Catch::Contains("filter=" + kEnterprise + ":employeeNumber eq \"1003\""));
    CHECK_THAT(l[2], Catch::Contains("filter=externalId eq \"ext-1\""));
    CHECK_THAT(l[3], Catch::StartsWith("GET /Users/user3 -> 200"));
    CHECK_THAT(l[4], Catch::Contains("filter=displayName eq \"user 1\""));
  }
  SECTION("no match is an empty list, also for an unknown id") {
    auto none = h.dir->findUsers({ports::UserAttribute::UserName, "", "nobody@example.com"});
    REQUIRE(none);
    CHECK(none->empty());
    auto no_id = h.dir->findUsers({ports::UserAttribute::Id, "", "no-such-id"});
    REQUIRE(no_id);
    CHECK(no_id->empty());
  }
}

TEST_CASE("resolveGroup takes an id or a displayName and names the group when it cannot",
          "[connector][scim]") {
  Harness h(seeded(users(2), Json::array({group("g-eng", "Engineers", {"user1"}),
                                          group("g-d1", "Duplicate"), group("g-d2", "Duplicate")})));
  h.connect();
  h.peer.clearRequests();

  SECTION("by id, with the ETag, and without reading the members") {
    const auto g = h.resolve("g-eng");
    CHECK(g.id == "g-eng");
    CHECK(g.display_name == "Engineers");
    CHECK(g.etag == "W/\"1\"");
    CHECK(g.writable);
    CHECK(h.lines() == std::vector<std::string>{"GET /Groups/g-eng?excludedAttributes=members -> 200"});
  }
  SECTION("by displayName, case-insensitively, cached afterwards") {
    const auto g = h.resolve("engineers");
    CHECK(g.id == "g-eng");
    const auto again = h.resolve("engineers");
    CHECK(again.id == "g-eng");
    const auto l = h.lines();
    REQUIRE(l.size() == 2);
    CHECK(l[0] == "GET /Groups/engineers?excludedAttributes=members -> 404");
    CHECK_THAT(l[1], Catch::StartsWith("GET /Groups?filter=displayName eq \"engineers\""));
  }
  SECTION("a name no group has is NotFound naming it") {
    auto g = h.dir->resolveGroup("Auditors");
    REQUIRE_FALSE(g);
    CHECK(g.error().kind == ErrorKind::NotFound);
    CHECK_THAT(g.error().message, Catch::Contains("'Auditors'"));
  }
  SECTION("a name two groups share is a Conflict naming the group and both ids") {
    auto g = h.dir->resolveGroup("Duplicate");
    REQUIRE_FALSE(g);
    CHECK(g.error().kind == ErrorKind::Conflict);
    CHECK_THAT(g.error().message, Catch::Contains("'Duplicate'"));
    CHECK_THAT(g.error().message, Catch::Contains("g-d1"));
    CHECK_THAT(g.error().message, Catch::Contains("g-d2"));
    CHECK_THAT(g.error().hint, Catch::Contains("id"));
  }
}

TEST_CASE("listRoster pages with startIndex and count until totalResults", "[connector][scim]") {
  // 25 users, 20 of them active; 7 per page: startIndex 1, 8, 15 (7 + 7 + 6).
  Harness h(seeded(users(25)), {{"roster_filter", "active eq true"},
                                {"page_size", "7"},
                                {"population_attribute", kEnterprise + ":department"}});
  h.connect();
  h.peer.clearRequests();
  std::vector<ports::DirectoryUser> got;
  auto st = h.dir->listRoster([&](ports::DirectoryUser&& u) { got.push_back(std::move(u)); });
  REQUIRE(st);
  REQUIRE(got.size() == 20);
  for (const auto& u : got) {
    CHECK(u.active);
    CHECK_THAT(u.population, Catch::StartsWith("dept-"));
  }
  CHECK(got.front().id == "user1");
  CHECK(got.back().id == "user24");
  const auto l = h.lines();
  REQUIRE(l.size() == 3);
  CHECK_THAT(l[0], Catch::Contains("filter=active eq true&startIndex=1&count=7"));
  CHECK_THAT(l[1], Catch::Contains("startIndex=8&count=7"));
  CHECK_THAT(l[2], Catch::Contains("startIndex=15&count=7"));
  CHECK(h.dir->requestCount() == 4);
}

TEST_CASE("listRoster without roster_filter is Invalid and sends nothing", "[connector][scim]") {
  Harness h(seeded(users(1)));
  auto st = h.dir->listRoster([](ports::DirectoryUser&&) {});
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Invalid);
  CHECK_THAT(st.error().message, Catch::Contains("roster_filter"));
  CHECK(h.requests().empty());
}

TEST_CASE("a failing page fails the whole listing, never a short list", "[connector][scim]") {
  SECTION("a 500 that persists on page 2 of the roster") {
    ScimPeerOptions o = seeded(users(25));
    o.faults = {{{"method", "GET"}, {"path", "^/Users$"}, {"query", "startIndex=8"},
                 {"status", 500}, {"times", 0}, {"detail", "database unavailable"}}};
    Harness h(o, {{"roster_filter", "active eq true"}, {"page_size", "7"}});
    std::size_t streamed = 0;
    auto st = h.dir->listRoster([&](ports::DirectoryUser&&) { ++streamed; });
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::Transient);
    CHECK_THAT(st.error().message, Catch::Contains("database unavailable"));
    CHECK_THAT(st.error().message, Catch::Contains("after 7 of 20"));
    CHECK_THAT(st.error().message, Catch::Contains("incomplete"));
    CHECK(streamed == 7);
    CHECK(h.sleeps.size() == 3);  // four attempts at page 2 (RetryPolicy default)
  }
  SECTION("a single 500 is retried and the listing completes") {
    ScimPeerOptions o = seeded(users(25));
    o.faults = {{{"method", "GET"}, {"path", "^/Users$"}, {"query", "startIndex=8"}, {"status", 503}}};
    Harness h(o, {{"roster_filter", "active eq true"}, {"page_size", "7"}});
    std::size_t streamed = 0;
    auto st = h.dir->listRoster([&](ports::DirectoryUser&&) { ++streamed; });
    REQUIRE(st);
    CHECK(streamed == 20);
    CHECK(h.sleeps.size() == 1);
  }
  SECTION("a 500 reading the group's members fails listMembers") {
    ScimPeerOptions o = seeded(users(3), Json::array({group("g1", "G", {"user1", "user2"})}));
    o.faults = {{{"method", "GET"}, {"path", "^/Groups/g1$"}, {"status", 500}, {"times", 0}}};
    Harness h(o);
    std::size_t streamed = 0;
    auto st = h.dir->listMembers(groupRef("g1", "G"), [&](ports::DirectoryUser&&) { ++streamed; });
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::Transient);
    CHECK_THAT(st.error().message, Catch::Contains("group 'G' (g1)"));
    CHECK(streamed == 0);
  }
  SECTION("members_source user_filter: a 500 on page 2") {
    ScimPeerOptions o = seeded(users(12), Json::array({group("g1", "G", range(1, 12))}));
    o.faults = {{{"method", "GET"}, {"path", "^/Users$"}, {"query", "startIndex=6"},
                 {"status", 500}, {"times", 0}}};
    Harness h(o, {{"members_source", "user_filter"}, {"page_size", "5"}});
    auto st = h.dir->listMembers(groupRef("g1", "G"), [](ports::DirectoryUser&&) {});
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::Transient);
    CHECK_THAT(st.error().message, Catch::Contains("after 5 of 12"));
  }
}

TEST_CASE("listMembers streams the group's members", "[connector][scim]") {
  SECTION("from the members attribute in one request") {
    Harness h(seeded(users(4), Json::array({group("g1", "G", {"user1", "user3", "user4"})})));
    h.connect();
    h.peer.clearRequests();
    std::vector<ports::DirectoryUser> got;
    auto st = h.dir->listMembers(groupRef("g1", "G"), [&](ports::DirectoryUser&& u) { got.push_back(u); });
    REQUIRE(st);
    CHECK(ids(got) == std::vector<std::string>{"user1", "user3", "user4"});
    CHECK(got[0].display_name == "User 1");
    CHECK(h.lines() == std::vector<std::string>{"GET /Groups/g1?attributes=members -> 200"});
  }
  SECTION("from a paged Users query on groups.value, with full user records") {
    Harness h(seeded(users(12), Json::array({group("g1", "G", range(3, 11))})),
              {{"members_source", "user_filter"}, {"page_size", "4"}});
    h.connect();
    h.peer.clearRequests();
    std::vector<ports::DirectoryUser> got;
    auto st = h.dir->listMembers(groupRef("g1", "G"), [&](ports::DirectoryUser&& u) { got.push_back(u); });
    REQUIRE(st);
    CHECK(ids(got) == range(3, 11));
    CHECK(got[0].email == "user3@example.com");
    const auto l = h.lines();
    REQUIRE(l.size() == 4);  // the group exists (1) + pages of 4, 4, 1
    CHECK(l[0] == "GET /Groups/g1?excludedAttributes=members -> 200");
    CHECK_THAT(l[1], Catch::Contains("filter=groups.value eq \"g1\"&startIndex=1&count=4"));
    CHECK_THAT(l[3], Catch::Contains("startIndex=9&count=4"));
  }
  SECTION("a group that does not exist is NotFound") {
    Harness h(seeded(users(1)));
    auto st = h.dir->listMembers(groupRef("gone", "Gone"), [](ports::DirectoryUser&&) {});
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::NotFound);
    CHECK_THAT(st.error().message, Catch::Contains("group 'Gone' (gone)"));
  }
}

TEST_CASE("addMembers puts many members in one PATCH add operation", "[connector][scim]") {
  SECTION("250 members, 100 per PATCH, no Bulk: one read and three PATCHes with If-Match") {
    Harness h(seeded(users(250), Json::array({group("g1", "Big")})), {{"use_bulk", "never"}});
    const auto g = h.resolve("g1");
    h.peer.clearRequests();
    const auto before = h.dir->requestCount();
    auto out = h.dir->addMembers(g, range(1, 250));
    REQUIRE(out);
    REQUIRE(out->size() == 250);
    for (const auto& o : *out) {
      CHECK(o.status.ok());
      CHECK_FALSE(o.no_op);
    }
    CHECK((*out)[17].user_id == "user18");
    CHECK(h.dir->requestCount() - before == 4);
    const Json reqs = h.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[0]["method"] == "GET");
    const std::vector<std::string> if_match = {"W/\"1\"", "W/\"2\"", "W/\"3\""};
    for (int i = 1; i <= 3; ++i) {
      const Json& r = reqs[i];
      CHECK(r["method"] == "PATCH");
      CHECK(r["path"] == "/Groups/g1");
      CHECK(r["headers"]["content-type"] == "application/scim+json");
      CHECK(r["headers"]["if-match"] == if_match[i - 1]);
      REQUIRE(r["body"]["Operations"].size() == 1);
      const Json& op = r["body"]["Operations"][0];
      CHECK(op["op"] == "add");
      CHECK(op["path"] == "members");
      CHECK(op["value"].size() == (i < 3 ? 100u : 50u));
    }
    CHECK(reqs[1]["body"]["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:PatchOp");
    CHECK(h.members("g1").size() == 250);
  }
  SECTION("with Bulk offered, the three PATCHes travel in one POST /Bulk") {
    Harness h(seeded(users(250), Json::array({group("g1", "Big")})));
    const auto g = h.resolve("g1");
    h.peer.clearRequests();
    auto out = h.dir->addMembers(g, range(1, 250));
    REQUIRE(out);
    for (const auto& o : *out) CHECK(o.status.ok());
    const Json reqs = h.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[1]["method"] == "POST");
    CHECK(reqs[1]["path"] == "/Bulk");
    const Json& ops = reqs[1]["body"]["Operations"];
    REQUIRE(ops.size() == 3);
    CHECK(ops[0]["method"] == "PATCH");
    CHECK(ops[0]["path"] == "/Groups/g1");
    CHECK(ops[2]["data"]["Operations"][0]["value"].size() == 50);
    CHECK(h.members("g1").size() == 250);
  }
  SECTION("Bulk requests stay within maxOperations") {
    Harness h(seeded(users(250), Json::array({group("g1", "Big")}), {"--bulk-max-operations", "2"}),
              {{"max_members_per_patch", "50"}});
    const auto g = h.resolve("g1");
    h.peer.clearRequests();
    auto out = h.dir->addMembers(g, range(1, 250));
    REQUIRE(out);
    const auto l = h.lines();
    REQUIRE(l.size() == 4);  // read + 5 PATCH operations in Bulk requests of 2, 2, 1
    CHECK(l[1] == "POST /Bulk -> 200");
    CHECK(l[3] == "POST /Bulk -> 200");
    CHECK(h.members("g1").size() == 250);
  }
}

TEST_CASE("present members (add) and absent members (remove) are no-op successes",
          "[connector][scim]") {
  Harness h(seeded(users(5), Json::array({group("g1", "G", {"user1", "user2"})})));
  const auto g = h.resolve("g1");
  h.peer.clearRequests();

  SECTION("adding members who are all present writes nothing") {
    auto out = h.dir->addMembers(g, {"user1", "user2", "user1"});
    REQUIRE(out);
    REQUIRE(out->size() == 3);
    for (const auto& o : *out) {
      CHECK(o.status.ok());
      CHECK(o.no_op);
    }
    CHECK(h.lines() == std::vector<std::string>{"GET /Groups/g1?attributes=members -> 200"});
  }
  SECTION("removing absent members writes nothing") {
    auto out = h.dir->removeMembers(g, {"user4", "user5"});
    REQUIRE(out);
    for (const auto& o : *out) CHECK(o.no_op);
    CHECK(h.lines().size() == 1);
  }
  SECTION("a mix: only the missing member is sent") {
    auto out = h.dir->addMembers(g, {"user1", "user3"});
    REQUIRE(out);
    CHECK((*out)[0].no_op);
    CHECK((*out)[1].status.ok());
    CHECK_FALSE((*out)[1].no_op);
    const Json reqs = h.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[1]["body"]["Operations"][0]["value"] == Json::parse(R"([{"value":"user3"}])"));
    CHECK(h.members("g1") == std::vector<std::string>{"user1", "user2", "user3"});
  }
}

TEST_CASE("without read_before_write the provider's 204 marks a no-op", "[connector][scim]") {
  Harness h(seeded(users(3), Json::array({group("g1", "G", {"user1"})})),
            {{"read_before_write", "false"}});
  const auto g = h.resolve("g1");
  h.peer.clearRequests();
  auto present = h.dir->addMembers(g, {"user1"});
  REQUIRE(present);
  CHECK((*present)[0].no_op);
  auto added = h.dir->addMembers(g, {"user2"});
  REQUIRE(added);
  CHECK_FALSE((*added)[0].no_op);
  const auto l = h.lines();
  REQUIRE(l.size() == 2);
  CHECK(l[0] == "PATCH /Groups/g1 -> 204");
  CHECK(l[1] == "PATCH /Groups/g1 -> 200");
}

TEST_CASE("removeMembers sends remove operations with members[value eq] paths",
          "[connector][scim]") {
  Harness h(seeded(users(5), Json::array({group("g1", "G", range(1, 5))})),
            {{"max_removes_per_patch", "2"}, {"use_bulk", "never"}});
  const auto g = h.resolve("g1");
  h.peer.clearRequests();
  auto out = h.dir->removeMembers(g, {"user1", "user2", "user3"});
  REQUIRE(out);
  for (const auto& o : *out) {
    CHECK(o.status.ok());
    CHECK_FALSE(o.no_op);
  }
  const Json reqs = h.requests();
  REQUIRE(reqs.size() == 3);  // read + 2 PATCHes (2 + 1 operations)
  const Json& ops = reqs[1]["body"]["Operations"];
  REQUIRE(ops.size() == 2);
  CHECK(ops[0] == Json::parse(R"({"op":"remove","path":"members[value eq \"user1\"]"})"));
  CHECK(ops[1]["path"] == "members[value eq \"user2\"]");
  CHECK(reqs[2]["body"]["Operations"].size() == 1);
  CHECK(h.members("g1") == std::vector<std::string>{"user4", "user5"});
}

TEST_CASE("a 412 re-reads the group and retries the PATCH once", "[connector][scim]") {
  SECTION("a concurrent change before the first PATCH") {
    ScimPeerOptions o = seeded(users(3), Json::array({group("g1", "G", {"user1"})}));
    o.faults = {{{"method", "PATCH"}, {"path", "^/Groups/g1$"}, {"bumpVersion", true}}};
    Harness h(o);
    const auto g = h.resolve("g1");
    h.peer.clearRequests();
    auto out = h.dir->addMembers(g, {"user2"});
    REQUIRE(out);
    CHECK((*out)[0].status.ok());
    const Json reqs = h.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[1]["status"] == 412);
    CHECK(reqs[1]["headers"]["if-match"] == "W/\"1\"");
    CHECK(reqs[2]["method"] == "GET");
    CHECK(reqs[3]["status"] == 200);
    CHECK(reqs[3]["headers"]["if-match"] == "W/\"2\"");
    CHECK(h.members("g1") == std::vector<std::string>{"user1", "user2"});
  }
  SECTION("a group that keeps changing is a Conflict") {
    ScimPeerOptions o = seeded(users(3), Json::array({group("g1", "G", {"user1"})}));
    o.faults = {{{"method", "PATCH"}, {"path", "^/Groups/g1$"}, {"bumpVersion", true}, {"times", 0}}};
    Harness h(o);
    auto out = h.dir->addMembers(h.resolve("g1"), {"user2"});
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::Conflict);
    CHECK_THAT(out.error().message, Catch::Contains("HTTP 412"));
  }
}

TEST_CASE("a member the provider refuses gets its own error and the others are written",
          "[connector][scim]") {
  Harness h(seeded(users(4), Json::array({group("g1", "G")})), {{"use_bulk", "never"}});
  const auto g = h.resolve("g1");
  auto out = h.dir->addMembers(g, {"user1", "ghost", "user3", "user4"});
  REQUIRE(out);
  REQUIRE(out->size() == 4);
  CHECK((*out)[0].status.ok());
  REQUIRE_FALSE((*out)[1].status.ok());
  CHECK((*out)[1].status.error().kind == ErrorKind::Invalid);
  CHECK_THAT((*out)[1].status.error().message, Catch::Contains("add user 'ghost' to group 'G' (g1)"));
  CHECK_THAT((*out)[1].status.error().message, Catch::Contains("invalidValue"));
  CHECK_THAT((*out)[1].status.error().message, Catch::Contains("member value 'ghost' is not the id"));
  CHECK((*out)[2].status.ok());
  CHECK((*out)[3].status.ok());
  CHECK(h.members("g1") == std::vector<std::string>{"user1", "user3", "user4"});
}

TEST_CASE("a Bulk operation the provider refuses is sorted out with plain PATCHes",
          "[connector][scim]") {
  Harness h(seeded(users(6), Json::array({group("g1", "G")})), {{"max_members_per_patch", "2"}});
  const auto g = h.resolve("g1");
  h.peer.clearRequests();
  auto out = h.dir->addMembers(g, {"user1", "user2", "user3", "ghost", "user5", "user6"});
  REQUIRE(out);
  for (std::size_t i = 0; i < out->size(); ++i) CHECK((*out)[i].status.ok() == (i != 3));
  CHECK((*out)[3].status.error().kind == ErrorKind::Invalid);
  const auto l = h.lines();
  // read, one Bulk of 3 PATCHes (the second refused), then that batch alone: version, PATCH of
  // both (400), and one PATCH per half.
  REQUIRE(l.size() == 6);
  CHECK(l[1] == "POST /Bulk -> 200");
  CHECK(l[2] == "GET /Groups/g1?excludedAttributes=members -> 200");
  CHECK(l[3] == "PATCH /Groups/g1 -> 400");
  CHECK(l[4] == "PATCH /Groups/g1 -> 200");
  CHECK(l[5] == "PATCH /Groups/g1 -> 400");
  CHECK(h.members("g1") == std::vector<std::string>{"user1", "user2", "user5", "user6", "user3"});
}

TEST_CASE("429 with Retry-After is waited out through the injected sleeper", "[connector][scim]") {
  SECTION("once: the lookup succeeds after the requested wait") {
    ScimPeerOptions o = seeded(users(2));
    o.faults = {{{"method", "GET"}, {"path", "^/Users$"}, {"status", 429}, {"retryAfter", 7}}};
    Harness h(o);
    h.connect();
    auto found = h.dir->findUsers({ports::UserAttribute::UserName, "", "user1@example.com"});
    REQUIRE(found);
    CHECK(ids(*found) == std::vector<std::string>{"user1"});
    CHECK(h.sleeps == std::vector<Millis>{Millis(7000)});
    CHECK(h.dir->requestCount() == 3);  // discovery + the 429 + the retry
  }
  SECTION("persistently: RateLimited with retry_after_s and the SCIM detail") {
    ScimPeerOptions o = seeded(users(2), Json::array({group("g1", "G")}));
    o.faults = {{{"method", "PATCH"}, {"path", "^/Groups/g1$"}, {"status", 429},
                 {"retryAfter", 3}, {"times", 0}, {"detail", "too many requests for this tenant"}}};
    Harness h(o);
    auto out = h.dir->addMembers(h.resolve("g1"), {"user1"});
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::RateLimited);
    CHECK(out.error().retry_after_s == 3);
    CHECK_THAT(out.error().message, Catch::Contains("too many requests for this tenant"));
    CHECK(h.sleeps == std::vector<Millis>(3, Millis(3000)));
  }
}

TEST_CASE("SCIM error bodies are surfaced and classified", "[connector][scim]") {
  SECTION("400 invalidFilter from a bad roster_filter is Invalid with the provider's detail") {
    Harness h(seeded(users(2)), {{"roster_filter", "nosuchattr eq \"x\""}});
    auto st = h.dir->listRoster([](ports::DirectoryUser&&) {});
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::Invalid);
    CHECK_THAT(st.error().message, Catch::Contains("HTTP 400 invalidFilter"));
    CHECK_THAT(st.error().message, Catch::Contains("unknown attribute 'nosuchattr'"));
    CHECK_THAT(st.error().hint, Catch::Contains("roster_filter"));
  }
  SECTION("409 uniqueness on one member is that member's Conflict") {
    ScimPeerOptions o = seeded(users(2), Json::array({group("g1", "G")}));
    o.faults = {{{"method", "PATCH"}, {"path", "^/Groups/g1$"}, {"status", 409},
                 {"scimType", "uniqueness"}, {"detail", "membership is locked"}}};
    Harness h(o);
    auto out = h.dir->addMembers(h.resolve("g1"), {"user1"});
    REQUIRE(out);
    REQUIRE_FALSE((*out)[0].status.ok());
    CHECK((*out)[0].status.error().kind == ErrorKind::Conflict);
    CHECK_THAT((*out)[0].status.error().message, Catch::Contains("HTTP 409 uniqueness: membership is locked"));
  }
  SECTION("403 is Auth and fails the whole call") {
    ScimPeerOptions o = seeded(users(2), Json::array({group("g1", "G")}));
    o.faults = {{{"method", "PATCH"}, {"path", "^/Groups/g1$"}, {"status", 403},
                 {"detail", "the token may not write groups"}}};
    Harness h(o);
    auto out = h.dir->addMembers(h.resolve("g1"), {"user1"});
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::Auth);
    CHECK_THAT(out.error().message, Catch::Contains("the token may not write groups"));
  }
  SECTION("a group deleted since it was resolved is NotFound") {
    Harness h(seeded(users(2)));
    auto out = h.dir->addMembers(groupRef("gone", "Gone"), {"user1"});
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::NotFound);
    CHECK_THAT(out.error().message, Catch::Contains("group 'Gone' (gone)"));
  }
}

TEST_CASE("auth oauth2 obtains a client-credentials token and uses it", "[connector][scim]") {
  ScimPeerOptions o = seeded(users(2));
  o.token = kToken;
  o.clients = {"certgate-app:s3cr3t"};
  ScimPeer peer(o);
  auto make = [&](const std::string& secret_name) {
    return scim::makeDirectory(
        "hr-scim",
        optionsFrom({{"url", peer.base_url()}, {"auth", "oauth2"}, {"client_id", "certgate-app"},
                     {"client_secret", secret_name}, {"token_url", peer.token_url()}}),
        "", secrets({{"good", "s3cr3t"}, {"bad", "not-the-secret"}}),
        std::make_shared<http::Redactor>(), {});
  };
  auto good = make("good");
  REQUIRE(good);
  REQUIRE((*good)->connect());
  auto found = (*good)->findUsers({ports::UserAttribute::UserName, "", "user2@example.com"});
  REQUIRE(found);
  CHECK(ids(*found) == std::vector<std::string>{"user2"});
  CHECK((*good)->requestCount() == 3);  // token + discovery + lookup

  auto bad = make("bad");
  REQUIRE(bad);
  auto st = (*bad)->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Auth);
  CHECK_THAT(st.error().message, Catch::Contains("invalid_client"));
  CHECK_THAT(st.error().describe(), !Catch::Contains("not-the-secret"));
}

TEST_CASE("makeDirectory validates options without touching the network", "[connector][scim]") {
  auto make = [](std::vector<std::pair<std::string, std::string>> o) {
    return scim::makeDirectory("hr-scim", optionsFrom(o), "/etc/certgate",
                               secrets({{"t", "value"}}), std::make_shared<http::Redactor>(), {});
  };
  SECTION("a complete bearer configuration") {
    auto d = make({{"url", "https://idp.example.com/scim/v2/"}, {"token", "t"}});
    REQUIRE(d);
    CHECK(std::string((*d)->kind()) == "scim");
    CHECK((*d)->name() == "hr-scim");
    CHECK((*d)->requestCount() == 0);
  }
  SECTION("an unknown key lists the valid ones") {
    auto d = make({{"url", "https://x/scim"}, {"token", "t"}, {"pagesize", "10"}});
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::Invalid);
    CHECK_THAT(d.error().message, Catch::Contains("pagesize"));
    CHECK_THAT(d.error().hint, Catch::Contains("max_members_per_patch"));
    CHECK(d.error().where == "test.yaml:pagesize");
  }
  SECTION("missing url, missing token, a bad number, a bad choice, an inline secret") {
    CHECK_FALSE(make({{"token", "t"}}));
    CHECK_FALSE(make({{"url", "https://x/scim"}}));
    CHECK_FALSE(make({{"url", "ftp://x/scim"}, {"token", "t"}}));
    // A bearer token never crosses a network in clear: http only to the loopback.
    auto plain = make({{"url", "http://idp.example.com/scim/v2"}, {"token", "t"}});
    REQUIRE_FALSE(plain);
    CHECK_THAT(plain.error().message, Catch::Contains("must use https"));
    CHECK(make({{"url", "http://127.0.0.1:8080/scim/v2"}, {"token", "t"}}));
    CHECK_FALSE(make({{"url", "https://x/scim"}, {"token", "t"}, {"page_size", "0"}}));
    CHECK_FALSE(make({{"url", "https://x/scim"}, {"token", "t"}, {"use_bulk", "always"}}));
    CHECK_FALSE(make({{"url", "https://x/scim"}, {"token", "t"}, {"timeout", "soon"}}));
    CHECK_FALSE(make({{"url", "https://x/scim"}, {"auth", "oauth2"}, {"client_id", "a"}}));
    ports::Options inline_secret = optionsFrom({{"url", "https://x/scim"}});
    ports::OptionValue v;
    v.scalar = "plain-text-token";
    inline_secret.values.emplace_back("token", v);
    auto d = scim::makeDirectory("hr-scim", inline_secret, "", secrets({}), nullptr, {});
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error().message, Catch::Contains("never inline"));
  }
}

TEST_CASE("filter values are JSON strings (RFC 7644 3.4.2.2)", "[unit][scim]") {
  CHECK(scim::filterString("plain") == "\"plain\"");
  CHECK(scim::filterString("o\"brien") == R"("o\"brien")");
  CHECK(scim::filterString("back\\slash") == R"("back\\slash")");
  CHECK(scim::filterString(std::string("tab\there\x01", 9)) == R"("tab\there\u0001")");
  CHECK(scim::urlEncode("a b/\"c\"&=") == "a%20b%2F%22c%22%26%3D");
}
