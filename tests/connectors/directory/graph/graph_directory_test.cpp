// The graph directory connector against the loopback Graph fake (tests/fakes/graph), which
// follows /work/shared/reference/idp.md section 2 and the Microsoft Learn pages it cites.
#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "graph_test_support.hpp"

using namespace std::chrono_literals;
using certgate::core::ErrorKind;
using certgate::testing::GraphFakeOptions;
using certgate::testing::GraphGroup;
using certgate::testing::GraphLoggedRequest;
using certgate::testing::GraphUser;
using certgate::testing::graph_support::Env;
using certgate::testing::graph_support::gid;
using certgate::testing::graph_support::person;
using certgate::testing::graph_support::scalar;
using certgate::testing::graph_support::secretRef;
using certgate::testing::graph_support::uid;
namespace ports = certgate::ports;
namespace http = certgate::connectors::http;
using Json = nlohmann::json;

namespace {

GraphGroup securityGroup(int n, std::string name) {
  GraphGroup g;
  g.id = gid(n);
  g.display_name = std::move(name);
  return g;
}

void seedUsers(Env& env, int count, int from = 0) {
  for (int i = from; i < from + count; ++i) env.fake.addUser(person(i));
}

std::vector<std::string> ids(int from, int count) {
  std::vector<std::string> out;
  for (int i = from; i < from + count; ++i) out.push_back(uid(i));
  return out;
}

ports::GroupRef refOf(ports::Directory& dir, const std::string& id_or_name) {
  auto g = dir.resolveGroup(id_or_name);
  REQUIRE(g.ok());
  return *g;
}

std::vector<GraphLoggedRequest> topLevel(const std::vector<GraphLoggedRequest>& log) {
  std::vector<GraphLoggedRequest> out;
  for (const auto& r : log)
    if (!r.in_batch) out.push_back(r);
  return out;
}

std::vector<GraphLoggedRequest> inBatch(const std::vector<GraphLoggedRequest>& log) {
  std::vector<GraphLoggedRequest> out;
  for (const auto& r : log)
    if (r.in_batch) out.push_back(r);
  return out;
}

std::size_t bindCount(const GraphLoggedRequest& r) {
  const auto doc = Json::parse(r.body);
  return doc.at("members@odata.bind").size();
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// certgate never deletes a directory object: every DELETE it sends under /groups/ ends in /$ref
// and it never sends a DELETE under /users/.
void requireOnlyReferenceDeletes(const Env& env) {
  for (const auto& r : env.fake.requests()) {
    if (r.method != "DELETE") continue;
    INFO(r.method << " " << r.path);
    CHECK(r.path.rfind("/v1.0/users", 0) != 0);
    if (r.path.rfind("/v1.0/groups/", 0) == 0) CHECK(endsWith(r.path, "/$ref"));
  }
  CHECK(env.fake.unsafeDeleteCount() == 0);
  CHECK(env.fake.deletedObjects().empty());
}

}  // namespace

// ---- configuration -------------------------------------------------------------------------

TEST_CASE("makeDirectory validates options and does no network I/O", "[connector][graph]") {
  Env env;
  struct Row {
    const char* key;
    ports::OptionValue value;
    const char* must_contain;
    const char* reason;
  };
  const Row rows[] = {
      {"colour", scalar("blue"), "valid keys: url, tenant", "unknown key lists the valid ones"},
      {"client_secret", scalar("plain-text"), "never the secret itself",
       "a secret written inline is refused"},
      {"page_size", scalar("1000"), "1-999", "Graph's $top maximum"},
      {"page_size", scalar("ten"), "1-999", "not a number"},
      {"url", scalar("http://graph.example.com/v1.0"), "does not use https",
       "plain http off the loopback"},
      {"url", scalar("graph.microsoft.com"), "absolute https URL", "not absolute"},
      {"tenant", scalar("contoso/../x"), "not a tenant id", "tenant lands in the token URL"},
      {"population_attribute", scalar("a eq 'b'"), "not a user property", "injection"},
      {"timeout", scalar("soon"), "duration", "unparseable duration"},
      {"roster_filter", scalar(""), "is empty", "empty filter"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    env.extra = {{row.key, row.value}};
    auto d = env.tryMake();
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().kind == ErrorKind::Invalid);
    CHECK_THAT(d.error().message + " " + d.error().hint, Catch::Contains(row.must_contain));
    CHECK_THAT(d.error().message, Catch::Contains("directory 'entra'"));
    CHECK(d.error().where == "certgate.yaml:12:7");
  }
  env.extra.clear();
  {
    auto o = env.options();
    o.values.erase(std::remove_if(o.values.begin(), o.values.end(),
                                  [](const auto& kv) { return kv.first == "tenant"; }),
                   o.values.end());
    auto d = certgate::connectors::graph::makeDirectory("entra", o, "", env.secrets(),
                                                        env.redactor, env.clientOptions());
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.error().message, Catch::Contains("tenant: is required"));
  }
  auto d = env.tryMake();
  REQUIRE(d.ok());
  CHECK(std::string((*d)->kind()) == "graph");
  CHECK((*d)->name() == "entra");
  CHECK(env.fake.tokenRequestCount() == 0);
  CHECK(env.fake.httpRequestCount() == 0);
  CHECK(env.redactor->redact("x " + env.fake.options().client_secret) == "x [redacted]");
}

TEST_CASE("the spec lists the documented keys with Graph's defaults", "[connector][graph]") {
  const auto& s = certgate::connectors::graph::spec();
  CHECK(s.kind == "graph");
  REQUIRE(s.find("url") != nullptr);
  CHECK(s.find("url")->default_value == "https://graph.microsoft.com/v1.0");
  CHECK(s.find("token_url")->default_value ==
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token");
  CHECK(s.find("scope")->default_value == "https://graph.microsoft.com/.default");
  CHECK(s.find("page_size")->default_value == "999");
  CHECK(s.find("population_attribute")->default_value == "employeeType");
  CHECK(s.find("client_secret")->type == ports::ValueType::Secret);
  CHECK(s.find("tenant")->required);
  CHECK(s.find("client_id")->required);
  CHECK(s.find("client_secret")->required);
  CHECK_FALSE(s.find("roster_filter")->required);
}

// ---- token -----------------------------------------------------------------------------------

TEST_CASE("connect fetches a client-credentials token, and a wrong secret is an Auth error",
          "[connector][graph]") {
  SECTION("good credentials") {
    Env env;
    auto dir = env.make();
    REQUIRE(dir->connect().ok());
    CHECK(env.fake.tokenRequestCount() == 1);
    CHECK(dir->requestCount() == 1);
  }
  SECTION("wrong secret") {
    GraphFakeOptions o;
    o.client_secret = "the-real-secret";
    Env env(o);
    auto secrets = [](const ports::OptionValue&) -> certgate::core::Result<std::string> {
      return std::string("an-old-secret");
    };
    auto d = certgate::connectors::graph::makeDirectory("entra", env.options(), "", secrets,
                                                        env.redactor, env.clientOptions());
    REQUIRE(d.ok());
    auto st = (*d)->connect();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == ErrorKind::Auth);
    CHECK_THAT(st.error().message, Catch::Contains("invalid_client"));
    CHECK_THAT(st.error().message, Catch::Contains("AADSTS7000215"));
    CHECK(st.error().message.find("an-old-secret") == std::string::npos);
    CHECK(st.error().where == "directory 'entra'");
    CHECK(env.fake.httpRequestCount() == 0);
  }
}

TEST_CASE("the token is cached across calls and refreshed near expiry", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  for (int i = 0; i < 3; ++i) REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  CHECK(env.fake.tokenRequestCount() == 1);
  env.now += 3599 - 60;  // expires_in 3599, default refresh margin 60 s
  REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  CHECK(env.fake.tokenRequestCount() == 2);
  CHECK(env.fake.tokensIssued() == 2);
}

TEST_CASE("a refused token is dropped and fetched again once", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  env.fake.addUser(person(1));
  env.fake.addMember(gid(1), uid(1));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.revokeTokens();
  const std::size_t before = env.fake.httpRequestCount();
  std::vector<ports::DirectoryUser> got;
  REQUIRE(dir->listMembers(group, [&](ports::DirectoryUser&& u) { got.push_back(u); }).ok());
  CHECK(got.size() == 1);
  CHECK(env.fake.tokenRequestCount() == 2);
  CHECK(env.fake.httpRequestCount() - before == 2);  // 401, then the retry
  CHECK(env.sleeps.empty());
}

TEST_CASE("401 on every request is an Auth error after exactly one token refresh",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  auto dir = env.make();
  REQUIRE(dir->connect().ok());
  env.fake.setAlwaysUnauthorized(true);
  ports::GroupRef group{gid(1), "Certified", true, "", ""};
  auto st = dir->listMembers(group, [](ports::DirectoryUser&&) {});
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::Auth);
  CHECK_THAT(st.error().message, Catch::Contains("InvalidAuthenticationToken"));
  CHECK_THAT(st.error().message, Catch::Contains("request-id"));
  CHECK_FALSE(st.error().hint.empty());
  CHECK(env.fake.httpRequestCount() == 2);
  CHECK(env.fake.tokenRequestCount() == 2);
  auto added = dir->addMembers(group, {uid(1)});
  REQUIRE_FALSE(added.ok());
  CHECK(added.error().kind == ErrorKind::Auth);
}

// ---- reads -----------------------------------------------------------------------------------

TEST_CASE("listMembers pages with $top and follows @odata.nextLink verbatim until it ends",
          "[connector][graph]") {
  Env env;
  env.extra = {{"page_size", scalar("100")}};
  env.fake.addGroup(securityGroup(1, "Certified"));
  env.fake.addGroup(securityGroup(2, "Nested"));
  for (int i = 0; i < 250; ++i) {
    auto u = person(i, i % 2 ? "Contractor" : "Employee");
    u.account_enabled = i != 7;
    env.fake.addUser(u);
    env.fake.addMember(gid(1), u.id);
  }
  env.fake.addMember(gid(1), gid(2));  // a nested group is not a person
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  std::vector<ports::DirectoryUser> got;
  REQUIRE(dir->listMembers(group, [&](ports::DirectoryUser&& u) { got.push_back(u); }).ok());

  REQUIRE(got.size() == 250);
  std::set<std::string> seen;
  for (const auto& u : got) seen.insert(u.id);
  CHECK(seen.size() == 250);
  CHECK(seen.count(gid(2)) == 0);
  const auto it = std::find_if(got.begin(), got.end(), [](const auto& u) { return u.id == uid(7); });
  REQUIRE(it != got.end());
  CHECK(it->user_name == "user7@contoso.example");
  CHECK(it->email == "User7@Contoso.example");
  CHECK(it->employee_id == "E10007");
  CHECK(it->display_name == "User 7");
  CHECK(it->population == "Contractor");
  CHECK_FALSE(it->active);

  const auto log = env.since(from);
  REQUIRE(log.size() == 3);
  CHECK(log[0].path == "/v1.0/groups/" + gid(1) + "/members/microsoft.graph.user");
  CHECK_THAT(log[0].query, Catch::Contains("$select=id,userPrincipalName,mail,employeeId,"
                                           "displayName,accountEnabled,employeeType"));
  CHECK_THAT(log[0].query, Catch::Contains("$top=100"));
  CHECK(log[0].query.find("skiptoken") == std::string::npos);
  for (std::size_t i = 1; i < log.size(); ++i) {
    CHECK(log[i].path == log[0].path);
    CHECK_THAT(log[i].query, Catch::Contains("$skiptoken=" + std::to_string(i + 1) + "."));
    CHECK_THAT(log[i].query, Catch::Contains("$top=100"));
  }
  for (const auto& r : log) CHECK(r.consistency_level.empty());
}

TEST_CASE("a failing page makes listMembers fail instead of returning a short list",
          "[connector][graph]") {
  Env env;
  env.extra = {{"page_size", scalar("100")}};
  env.fake.addGroup(securityGroup(1, "Certified"));
  for (int i = 0; i < 350; ++i) {
    env.fake.addUser(person(i));
    env.fake.addMember(gid(1), uid(i));
  }
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.failPage(3, 500);
  std::size_t delivered = 0;
  auto st = dir->listMembers(group, [&](ports::DirectoryUser&&) { ++delivered; });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::Transient);
  CHECK_THAT(st.error().message, Catch::Contains("page 3"));
  CHECK_THAT(st.error().message, Catch::Contains("HTTP 500"));
  CHECK(delivered == 200);
}

TEST_CASE("resolveGroup by id and by name, none is NotFound, several is Conflict",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "R&D 'Core' team"));
  env.fake.addGroup(securityGroup(2, "Twins"));
  env.fake.addGroup(securityGroup(3, "Twins"));
  auto dir = env.make();

  auto by_id = dir->resolveGroup(gid(1));
  REQUIRE(by_id.ok());
  CHECK(by_id->display_name == "R&D 'Core' team");
  CHECK(by_id->writable);
  CHECK(env.fake.requests().back().query.find("$select=id,displayName,groupTypes,mailEnabled,"
                                              "securityEnabled,onPremisesSyncEnabled") !=
        std::string::npos);

  auto by_name = dir->resolveGroup("R&D 'Core' team");
  REQUIRE(by_name.ok());
  CHECK(by_name->id == gid(1));
  CHECK_THAT(env.fake.requests().back().query,
             Catch::Contains("$filter=displayName%20eq%20%27R%26D%20%27%27Core%27%27%20team%27"));

  const std::size_t before = env.fake.httpRequestCount();
  REQUIRE(dir->resolveGroup("R&D 'Core' team").ok());
  CHECK(env.fake.httpRequestCount() == before);  // cached for the life of the instance

  auto none = dir->resolveGroup("Nobody's group");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind == ErrorKind::NotFound);
  CHECK_THAT(none.error().message, Catch::Contains("Nobody's group"));

  auto missing = dir->resolveGroup(gid(99));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::NotFound);

  auto twins = dir->resolveGroup("Twins");
  REQUIRE_FALSE(twins.ok());
  CHECK(twins.error().kind == ErrorKind::Conflict);
  CHECK_THAT(twins.error().message, Catch::Contains(gid(2)));
  CHECK_THAT(twins.error().message, Catch::Contains(gid(3)));
}

TEST_CASE("groups Graph cannot change resolve as not writable, with the reason",
          "[connector][graph]") {
  struct Row {
    std::vector<std::string> types;
    bool mail_enabled;
    bool security_enabled;
    std::optional<bool> synced;
    bool writable;
    const char* why;
    const char* reason;
  };
  const Row rows[] = {
      {{}, false, true, std::nullopt, true, "", "security group"},
      {{"Unified"}, true, false, std::nullopt, true, "", "Microsoft 365 group"},
      {{"Unified"}, true, true, false, true, "", "Microsoft 365 group, cloud-only"},
      {{"DynamicMembership"}, false, true, std::nullopt, false, "DynamicMembership",
       "dynamic security group"},
      {{"Unified", "DynamicMembership"}, true, false, std::nullopt, false, "dynamic",
       "dynamic Microsoft 365 group"},
      {{}, false, true, true, false, "on-premises", "synchronised from AD"},
      {{}, true, true, std::nullopt, false, "mail-enabled security group", "read-only in Graph"},
      {{}, true, false, std::nullopt, false, "distribution group", "read-only in Graph"},
  };
  int n = 1;
  for (const auto& row : rows) {
    INFO(row.reason);
    Env env;
    GraphGroup g = securityGroup(n, "G");
    g.group_types = row.types;
    g.mail_enabled = row.mail_enabled;
    g.security_enabled = row.security_enabled;
    g.on_premises_sync_enabled = row.synced;
    env.fake.addGroup(g);
    auto dir = env.make();
    auto ref = dir->resolveGroup(gid(n));
    REQUIRE(ref.ok());
    CHECK(ref->writable == row.writable);
    CHECK_THAT(ref->not_writable_why, Catch::Contains(row.why));
    ++n;
  }
}

TEST_CASE("writes to a dynamic group are refused without sending a request",
          "[connector][graph]") {
  Env env;
  GraphGroup g = securityGroup(1, "All engineers (rule)");
  g.group_types = {"DynamicMembership"};
  env.fake.addGroup(g);
  seedUsers(env, 3);
  auto dir = env.make();
  const auto group = refOf(*dir, "All engineers (rule)");
  const std::size_t before = env.fake.httpRequestCount();
  auto added = dir->addMembers(group, ids(0, 3));
  REQUIRE_FALSE(added.ok());
  CHECK(added.error().kind == ErrorKind::Permanent);
  CHECK_THAT(added.error().message, Catch::Contains("not writable"));
  CHECK_THAT(added.error().message, Catch::Contains("DynamicMembership"));
  auto removed = dir->removeMembers(group, ids(0, 3));
  REQUIRE_FALSE(removed.ok());
  CHECK(removed.error().kind == ErrorKind::Permanent);
  CHECK(env.fake.httpRequestCount() == before);
}

TEST_CASE("findUsers filters on the mapped attribute with escaping", "[connector][graph]") {
  Env env;
  auto obrien = person(1);
  obrien.mail = "Sean.O'Brien@Contoso.example";
  obrien.extra["extension_0a1b_costCenter"] = "CC-42";
  env.fake.addUser(obrien);
  seedUsers(env, 5, 2);
  auto dir = env.make();
  REQUIRE(dir->connect().ok());

  struct Row {
    ports::UserQuery query;
    std::size_t expected;
    const char* filter;  // as sent, percent-encoded
    bool advanced;
    const char* reason;
  };
  const Row rows[] = {
      {{ports::UserAttribute::Email, "", "sean.o'brien@contoso.example"}, 1,
       "$filter=mail%20eq%20%27sean.o%27%27brien%40contoso.example%27", false,
       "email, quote doubled, matched case-insensitively by the directory"},
      {{ports::UserAttribute::UserName, "", "user3@contoso.example"}, 1,
       "$filter=userPrincipalName%20eq%20%27user3%40contoso.example%27", false, "UPN"},
      {{ports::UserAttribute::EmployeeId, "", "E10004"}, 1,
       "$filter=employeeId%20eq%20%27E10004%27", false, "employeeId"},
      {{ports::UserAttribute::Id, "", uid(5)}, 1, "$filter=id%20eq%20%27", false, "object id"},
      {{ports::UserAttribute::Custom, "extension_0a1b_costCenter", "CC-42"}, 1,
       "$filter=extension_0a1b_costCenter%20eq%20%27CC-42%27", true,
       "custom attribute as an advanced query"},
      {{ports::UserAttribute::Email, "", "nobody@contoso.example"}, 0, "$filter=mail", false,
       "no match is an empty result"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    auto users = dir->findUsers(row.query);
    REQUIRE(users.ok());
    CHECK(users->size() == row.expected);
    const auto last = env.fake.requests().back();
    CHECK(last.path == "/v1.0/users");
    CHECK_THAT(last.query, Catch::Contains(row.filter));
    CHECK_THAT(last.query, Catch::Contains("$select=id,userPrincipalName"));
    CHECK(last.consistency_level == (row.advanced ? "eventual" : ""));
    CHECK((last.query.find("$count=true") != std::string::npos) == row.advanced);
  }
  auto found = dir->findUsers({ports::UserAttribute::Email, "", "sean.o'brien@contoso.example"});
  REQUIRE(found.ok());
  REQUIRE(found->size() == 1);
  CHECK(found->front().id == uid(1));
  CHECK(found->front().email == "Sean.O'Brien@Contoso.example");

  const std::size_t before = env.fake.httpRequestCount();
  auto external = dir->findUsers({ports::UserAttribute::ExternalId, "", "x"});
  REQUIRE_FALSE(external.ok());
  CHECK(external.error().kind == ErrorKind::Invalid);
  auto not_guid = dir->findUsers({ports::UserAttribute::Id, "", "../users"});
  REQUIRE(not_guid.ok());
  CHECK(not_guid->empty());
  auto bad_custom = dir->findUsers({ports::UserAttribute::Custom, "mail eq 'x' or id", "y"});
  REQUIRE_FALSE(bad_custom.ok());
  CHECK(bad_custom.error().kind == ErrorKind::Invalid);
  CHECK(env.fake.httpRequestCount() == before);
}

TEST_CASE("listRoster pages the roster filter as an advanced query", "[connector][graph]") {
  Env env;
  env.extra = {{"roster_filter", scalar("employeeType eq 'Employee'")},
               {"page_size", scalar("10")},
               {"population_attribute",
                scalar("onPremisesExtensionAttributes/extensionAttribute1")}};
  for (int i = 0; i < 40; ++i) {
    auto u = person(i, i % 4 == 0 ? "Contractor" : "Employee");
    u.extra["onPremisesExtensionAttributes/extensionAttribute1"] = "site-" + std::to_string(i % 3);
    env.fake.addUser(u);
  }
  auto dir = env.make();
  CHECK(dir->capabilities().roster);
  std::vector<ports::DirectoryUser> roster;
  REQUIRE(dir->listRoster([&](ports::DirectoryUser&& u) { roster.push_back(u); }).ok());
  CHECK(roster.size() == 30);
  for (const auto& u : roster) CHECK(u.population.rfind("site-", 0) == 0);
  const auto log = env.fake.requests();
  REQUIRE(log.size() == 3);
  for (const auto& r : log) {
    CHECK(r.path == "/v1.0/users");
    CHECK(r.consistency_level == "eventual");
    CHECK_THAT(r.query, Catch::Contains("$count=true"));
    CHECK_THAT(r.query, Catch::Contains("$filter=employeeType%20eq%20%27Employee%27"));
    CHECK_THAT(r.query, Catch::Contains(",onPremisesExtensionAttributes"));
  }
}

TEST_CASE("listRoster without a roster filter is Invalid and sends nothing", "[connector][graph]") {
  Env env;
  auto dir = env.make();
  CHECK_FALSE(dir->capabilities().roster);
  auto st = dir->listRoster([](ports::DirectoryUser&&) {});
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::Invalid);
  CHECK(env.fake.tokenRequestCount() == 0);
}

// ---- adds ------------------------------------------------------------------------------------

TEST_CASE("adding 45 members is one HTTP request: a $batch of three members@odata.bind PATCHes",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 45);
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  const auto count_before = dir->requestCount();

  auto out = dir->addMembers(group, ids(0, 45));
  REQUIRE(out.ok());
  REQUIRE(out->size() == 45);
  for (std::size_t i = 0; i < 45; ++i) {
    CHECK((*out)[i].user_id == uid(static_cast<int>(i)));
    CHECK((*out)[i].status.ok());
    CHECK_FALSE((*out)[i].no_op);
  }
  CHECK(env.fake.memberIds(gid(1)).size() == 45);
  CHECK(dir->requestCount() - count_before == 1);

  const auto log = env.since(from);
  const auto top = topLevel(log);
  REQUIRE(top.size() == 1);
  CHECK(top[0].method == "POST");
  CHECK(top[0].path == "/v1.0/$batch");
  const auto subs = inBatch(log);
  REQUIRE(subs.size() == 3);
  std::vector<std::size_t> sizes;
  for (const auto& s : subs) {
    CHECK(s.method == "PATCH");
    CHECK(s.path == "/v1.0/groups/" + gid(1));
    CHECK(s.status == 204);
    sizes.push_back(bindCount(s));
  }
  std::sort(sizes.begin(), sizes.end());
  CHECK(sizes == std::vector<std::size_t>{5, 20, 20});
  const auto first = Json::parse(subs[0].body);
  CHECK(first["members@odata.bind"][0].get<std::string>().rfind(
            env.fake.baseUrl() + "/directoryObjects/", 0) == 0);
  // The batch body names each request's Content-Type (json-batching requires it with a body).
  const auto batch = Json::parse(top[0].body);
  for (const auto& r : batch["requests"]) CHECK(r["headers"]["Content-Type"] == "application/json");
}

TEST_CASE("adding 450 members takes two HTTP requests", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 450);
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t http_before = env.fake.httpRequestCount();
  auto out = dir->addMembers(group, ids(0, 450));
  REQUIRE(out.ok());
  CHECK(std::all_of(out->begin(), out->end(), [](const auto& o) { return o.status.ok(); }));
  CHECK(env.fake.memberIds(gid(1)).size() == 450);
  CHECK(env.fake.httpRequestCount() - http_before == 2);
  CHECK(dir->capabilities().max_add_batch == 400);
}

TEST_CASE("members already present are confirmed by reading back and reported as no_op",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 45);
  env.fake.addMember(gid(1), uid(3));
  env.fake.addMember(gid(1), uid(7));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  const std::size_t http_before = env.fake.httpRequestCount();

  auto out = dir->addMembers(group, ids(0, 45));
  REQUIRE(out.ok());
  for (std::size_t i = 0; i < 45; ++i) {
    INFO(i);
    CHECK((*out)[i].status.ok());
    CHECK((*out)[i].no_op == (i == 3 || i == 7));
  }
  CHECK(env.fake.memberIds(gid(1)).size() == 45);
  // PATCH batch; the refused chunk's 20 single adds; the read-back of the two present members.
  CHECK(env.fake.httpRequestCount() - http_before == 3);

  const auto subs = inBatch(env.since(from));
  std::size_t patches = 0, refused = 0, posts = 0, already = 0, reads = 0;
  for (const auto& s : subs) {
    if (s.method == "PATCH") {
      ++patches;
      refused += s.status == 400 ? 1 : 0;
    } else if (s.method == "POST") {
      ++posts;
      CHECK(s.path == "/v1.0/groups/" + gid(1) + "/members/$ref");
      already += s.status == 400 ? 1 : 0;
    } else if (s.method == "GET") {
      ++reads;
      CHECK(s.path == "/v1.0/groups/" + gid(1) + "/members");
      CHECK(s.consistency_level == "eventual");
      CHECK_THAT(s.query, Catch::Contains("$filter=id%20eq%20%27"));
      CHECK_THAT(s.query, Catch::Contains("$count=true"));
      CHECK(s.status == 200);
    }
  }
  CHECK(patches == 3);
  CHECK(refused == 1);  // all or nothing: one chunk of 20 refused for two present members
  CHECK(posts == 20);
  CHECK(already == 2);
  CHECK(reads == 2);
}

TEST_CASE("a missing user fails alone and the rest of its chunk is still added",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 20);
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  auto request = ids(0, 20);
  request[5] = uid(777);  // not in the directory
  request.push_back("not-a-guid");
  request.push_back(uid(2));  // duplicate
  auto out = dir->addMembers(group, request);
  REQUIRE(out.ok());
  REQUIRE(out->size() == 22);
  CHECK_FALSE((*out)[5].status.ok());
  CHECK((*out)[5].status.error().kind == ErrorKind::NotFound);
  CHECK_THAT((*out)[5].status.error().message, Catch::Contains("Request_ResourceNotFound"));
  CHECK_FALSE((*out)[20].status.ok());
  CHECK((*out)[20].status.error().kind == ErrorKind::Invalid);
  CHECK((*out)[21].status.ok());
  CHECK((*out)[21].no_op);
  for (int i = 0; i < 20; ++i)
    if (i != 5) CHECK((*out)[static_cast<std::size_t>(i)].status.ok());
  CHECK(env.fake.memberIds(gid(1)).size() == 19);
  for (const auto& r : env.fake.requests())
    CHECK(r.body.find("not-a-guid") == std::string::npos);
}

TEST_CASE("a user not yet replicated fails as Transient and the others are added",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 3);
  env.fake.notYetReplicated(uid(1));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  auto out = dir->addMembers(group, ids(0, 3));
  REQUIRE(out.ok());
  CHECK((*out)[0].status.ok());
  REQUIRE_FALSE((*out)[1].status.ok());
  CHECK((*out)[1].status.error().kind == ErrorKind::Transient);
  CHECK_THAT((*out)[1].status.error().message, Catch::Contains("do not exist"));
  CHECK((*out)[2].status.ok());
  CHECK(env.fake.memberIds(gid(1)) == std::vector<std::string>{uid(0), uid(2)});
}

TEST_CASE("Graph's refusal is surfaced per member with its code, message and request id",
          "[connector][graph]") {
  Env env;
  GraphGroup dl = securityGroup(1, "Sales DL");
  dl.mail_enabled = true;
  dl.security_enabled = false;
  env.fake.addGroup(dl);
  seedUsers(env, 2);
  auto dir = env.make();
  REQUIRE(dir->connect().ok());
  // A caller that skipped resolveGroup: the connector still does not hide Graph's answer.
  ports::GroupRef blind{gid(1), "Sales DL", true, "", ""};
  auto out = dir->addMembers(blind, ids(0, 2));
  REQUIRE(out.ok());
  for (const auto& o : *out) {
    REQUIRE_FALSE(o.status.ok());
    CHECK(o.status.error().kind == ErrorKind::Invalid);
    CHECK_THAT(o.status.error().message, Catch::Contains("Request_BadRequest"));
    CHECK_THAT(o.status.error().message, Catch::Contains("mail-enabled"));
    CHECK_THAT(o.status.error().message, Catch::Contains("request-id 00000000-0000-4000-8000-"));
    CHECK(o.status.error().where == "directory 'entra'");
  }
  CHECK(env.fake.memberIds(gid(1)).empty());
}

// ---- removals --------------------------------------------------------------------------------

TEST_CASE("removals use DELETE .../members/{id}/$ref only, 20 per $batch", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 30);
  for (int i = 0; i < 30; ++i) env.fake.addMember(gid(1), uid(i));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  auto out = dir->removeMembers(group, ids(0, 25));
  REQUIRE(out.ok());
  for (const auto& o : *out) {
    CHECK(o.status.ok());
    CHECK_FALSE(o.no_op);
  }
  CHECK(env.fake.memberIds(gid(1)).size() == 5);
  for (int i = 0; i < 30; ++i) CHECK(env.fake.userExists(uid(i)));
  const auto log = env.since(from);
  CHECK(topLevel(log).size() == 2);  // 20 + 5
  const auto subs = inBatch(log);
  REQUIRE(subs.size() == 25);
  for (const auto& s : subs) {
    CHECK(s.method == "DELETE");
    CHECK(s.path.rfind("/v1.0/groups/" + gid(1) + "/members/", 0) == 0);
    CHECK(endsWith(s.path, "/$ref"));
  }
  requireOnlyReferenceDeletes(env);
  CHECK(dir->capabilities().max_remove_batch == 20);
}

TEST_CASE("removing a non-member (404) is read back and reported as no_op", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 3);
  env.fake.addMember(gid(1), uid(0));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  auto out = dir->removeMembers(group, {uid(0), uid(1), uid(2)});
  REQUIRE(out.ok());
  CHECK((*out)[0].status.ok());
  CHECK_FALSE((*out)[0].no_op);
  for (std::size_t i : {1u, 2u}) {
    CHECK((*out)[i].status.ok());
    CHECK((*out)[i].no_op);
  }
  const auto subs = inBatch(env.since(from));
  std::size_t not_found = 0, reads = 0;
  for (const auto& s : subs) {
    not_found += s.method == "DELETE" && s.status == 404 ? 1 : 0;
    reads += s.method == "GET" ? 1 : 0;
  }
  CHECK(not_found == 2);
  CHECK(reads == 2);
  requireOnlyReferenceDeletes(env);
}

TEST_CASE("removing from a group that does not exist is NotFound per member",
          "[connector][graph]") {
  Env env;
  seedUsers(env, 1);
  auto dir = env.make();
  REQUIRE(dir->connect().ok());
  ports::GroupRef gone{gid(42), "Deleted group", true, "", ""};
  auto out = dir->removeMembers(gone, {uid(0)});
  REQUIRE(out.ok());
  REQUIRE_FALSE((*out)[0].status.ok());
  CHECK((*out)[0].status.error().kind == ErrorKind::NotFound);
  requireOnlyReferenceDeletes(env);
}

TEST_CASE("a mixed workload never deletes a directory object", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 60);
  for (int i = 0; i < 10; ++i) env.fake.addMember(gid(1), uid(i));
  auto dir = env.make();
  const auto group = refOf(*dir, "Certified");
  env.fake.throttleBatchItems(2, std::nullopt);
  REQUIRE(dir->addMembers(group, ids(0, 40)).ok());
  REQUIRE(dir->removeMembers(group, ids(20, 40)).ok());
  REQUIRE(dir->removeMembers(group, ids(20, 40)).ok());  // all absent now
  REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  CHECK(env.fake.memberIds(gid(1)).size() == 20);
  requireOnlyReferenceDeletes(env);
  for (int i = 0; i < 60; ++i) CHECK(env.fake.userExists(uid(i)));
}

// ---- throttling ------------------------------------------------------------------------------

TEST_CASE("429 with Retry-After waits what the server asked", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.throttleRequests(2, 7);
  REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  CHECK(env.sleeps == std::vector<http::Millis>{7000ms, 7000ms});
}

TEST_CASE("429 without Retry-After backs off exponentially with full jitter",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.throttleRequests(3, std::nullopt);
  REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  // random 0.5 of caps 1 s, 2 s, 4 s
  CHECK(env.sleeps == std::vector<http::Millis>{500ms, 1000ms, 2000ms});
}

TEST_CASE("503 and 504 are retried like 429", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 1);
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.failRequests(1, 503, 2);
  REQUIRE(dir->addMembers(group, {uid(0)}).ok());
  env.fake.failRequests(1, 504);
  REQUIRE(dir->listMembers(group, [](ports::DirectoryUser&&) {}).ok());
  CHECK(env.sleeps == std::vector<http::Millis>{2000ms, 500ms});
  CHECK(env.fake.isMember(gid(1), uid(0)));
}

TEST_CASE("throttling that does not end is RateLimited with the server's Retry-After",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t before = env.fake.httpRequestCount();
  env.fake.throttleRequests(100, 30);
  auto st = dir->listMembers(group, [](ports::DirectoryUser&&) {});
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::RateLimited);
  CHECK(st.error().retry_after_s == 30);
  CHECK_THAT(st.error().message, Catch::Contains("TooManyRequests"));
  CHECK(env.fake.httpRequestCount() - before == 6);
  CHECK(env.sleeps.size() == 5);
}

TEST_CASE("429 inside a $batch re-sends only the throttled requests", "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 45);
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  const std::size_t from = env.fake.requests().size();
  env.fake.throttleBatchItems(1, 3);
  auto out = dir->addMembers(group, ids(0, 45));
  REQUIRE(out.ok());
  CHECK(std::all_of(out->begin(), out->end(), [](const auto& o) { return o.status.ok(); }));
  CHECK(env.fake.memberIds(gid(1)).size() == 45);
  CHECK(env.sleeps == std::vector<http::Millis>{3000ms});

  const auto log = env.since(from);
  const auto top = topLevel(log);
  REQUIRE(top.size() == 2);
  std::vector<GraphLoggedRequest> first, second;
  for (const auto& r : log) {
    if (!r.in_batch) continue;
    (r.http_index == top[0].http_index ? first : second).push_back(r);
  }
  REQUIRE(first.size() == 3);
  REQUIRE(second.size() == 1);
  const auto throttled =
      std::find_if(first.begin(), first.end(), [](const auto& r) { return r.status == 429; });
  REQUIRE(throttled != first.end());
  CHECK(second[0].body == throttled->body);
  CHECK(second[0].status == 204);
}

TEST_CASE("429s inside a $batch without Retry-After back off on the retried requests",
          "[connector][graph]") {
  Env env;
  env.fake.addGroup(securityGroup(1, "Certified"));
  seedUsers(env, 3);
  for (int i = 0; i < 3; ++i) env.fake.addMember(gid(1), uid(i));
  auto dir = env.make();
  const auto group = refOf(*dir, gid(1));
  env.fake.throttleBatchItems(4, std::nullopt);  // 3 in the first batch, 1 in the second
  auto out = dir->removeMembers(group, ids(0, 3));
  REQUIRE(out.ok());
  CHECK(std::all_of(out->begin(), out->end(), [](const auto& o) { return o.status.ok(); }));
  CHECK(env.sleeps == std::vector<http::Millis>{500ms, 1000ms});
  CHECK(env.fake.memberIds(gid(1)).empty());
}
