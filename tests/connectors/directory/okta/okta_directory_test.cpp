// The okta directory connector against the loopback Okta fake (tests/fakes/okta), which follows
// ../shared/reference/idp.md section 1 and the Okta documents it cites.
#include "connectors/directory/okta/okta_directory.hpp"

#include <atomic>
#include <functional>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "connectors/common/jwt.hpp"
#include "fakes/okta/okta_fake.hpp"

using certgate::core::ErrorKind;
namespace http = certgate::connectors::http;
namespace okta = certgate::connectors::okta;
namespace ports = certgate::ports;
namespace fake = certgate::testing::okta;
using Json = nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'800'000'000;

const fake::RsaKeyPair& keys() {
  static const fake::RsaKeyPair k = fake::generateRsaKeyPair();
  return k;
}

const fake::RsaKeyPair& strangerKeys() {
  static const fake::RsaKeyPair k = fake::generateRsaKeyPair();
  return k;
}

// One virtual clock shared by the connector (through ClientOptions) and the fake. Sleeping
// advances it instead of waiting.
struct VirtualTime {
  std::atomic<std::int64_t> now{kStart};
  std::vector<http::Millis> sleeps;

  http::ClientOptions options() {
    http::ClientOptions o;
    o.sleep = [this](http::Millis d) {
      sleeps.push_back(d);
      now += (d.count() + 999) / 1000;
    };
    o.random01 = [] { return 0.5; };
    o.now_unix_s = [this] { return now.load(); };
    o.connect_timeout = http::Millis(2000);
    o.total_timeout = http::Millis(5000);
    return o;
  }
};

ports::OptionValue scalar(std::string v) {
  ports::OptionValue o;
  o.scalar = std::move(v);
  o.where = "certgate.yaml:10:5";
  return o;
}

ports::OptionValue secretRef(std::string path) {
  ports::OptionValue o;
  o.shape = ports::OptionValue::Shape::Map;
  o.map = {{"file", std::move(path)}};
  o.where = "certgate.yaml:11:5";
  return o;
}

constexpr const char* kSswsToken = "00sswsTOKENvalue-abc123";

struct Env {
  VirtualTime time;
  fake::OktaFake fake;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  // Keys are generated on first use (a few hundred milliseconds each), once per process.
  std::map<std::string, std::function<std::string()>> secret_files = {
      {"/secrets/okta.pem", [] { return keys().private_pem; }},
      {"/secrets/stranger.pem", [] { return strangerKeys().private_pem; }},
      {"/secrets/okta-token", [] { return std::string(kSswsToken) + "\n"; }}};

  explicit Env(fake::OktaFakeOptions o = {}) : fake(withDefaults(std::move(o))) { fake.start(); }

  fake::OktaFakeOptions withDefaults(fake::OktaFakeOptions o) {
    o.clock = [this] { return time.now.load(); };
    if (o.ssws_token.empty()) o.ssws_token = kSswsToken;
    return o;
  }

  ports::SecretReader secrets() {
    return [this](const ports::OptionValue& ref) -> certgate::core::Result<std::string> {
      const auto it = secret_files.find(ref.map.empty() ? "" : ref.map.front().second);
      if (it == secret_files.end())
        return certgate::core::makeError(ErrorKind::NotFound, "no such secret file");
      return it->second();
    };
  }

  // Options for an OAuth service app whose public key the fake knows.
  ports::Options oauthOptions(std::vector<std::pair<std::string, ports::OptionValue>> extra = {}) {
    fake.setPublicKey(keys().public_pem);
    ports::Options o;
    o.where = "certgate.yaml:9:3";
    o.values = {{"url", scalar(fake.url())},
                {"client_id", scalar("0oacertgatefake00000")},
                {"private_key", secretRef("/secrets/okta.pem")}};
    for (auto& kv : extra) o.values.push_back(std::move(kv));
    return o;
  }

  ports::Options sswsOptions(std::vector<std::pair<std::string, ports::OptionValue>> extra = {}) {
    ports::Options o;
    o.where = "certgate.yaml:9:3";
    o.values = {{"url", scalar(fake.url())},
                {"auth", scalar("ssws")},
                {"token", secretRef("/secrets/okta-token")}};
    for (auto& kv : extra) o.values.push_back(std::move(kv));
    return o;
  }

  certgate::core::Result<std::unique_ptr<ports::Directory>> tryMake(const ports::Options& options) {
    return okta::makeDirectory("corp-okta", options, "/etc/certgate", secrets(), redactor,
                               time.options());
  }

  std::unique_ptr<ports::Directory> make(const ports::Options& options) {
    auto d = tryMake(options);
    if (!d) FAIL(d.error().describe());
    return std::move(*d);
  }

  // API requests (token requests excluded) with this method, in order.
  std::vector<fake::LoggedRequest> api(const std::string& method = "") const {
    std::vector<fake::LoggedRequest> out;
    for (auto& r : fake.requests())
      if (r.path.rfind("/api/", 0) == 0 && (method.empty() || r.method == method)) out.push_back(r);
    return out;
  }
};

std::vector<ports::DirectoryUser> collect(ports::Directory& d, const ports::GroupRef& g,
                                          certgate::core::Status* status) {
  std::vector<ports::DirectoryUser> users;
  *status = d.listMembers(g, [&](ports::DirectoryUser&& u) { users.push_back(std::move(u)); });
  return users;
}

ports::GroupRef resolved(ports::Directory& d, const std::string& key) {
  auto g = d.resolveGroup(key);
  if (!g) FAIL(g.error().describe());
  return *g;
}

}  // namespace

// ---- paging --------------------------------------------------------------------------------

TEST_CASE("listMembers follows the Link rel=next pages to the end and maps every member",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified Engineers", "OKTA_GROUP", ""});
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    fake::FakeUser u;
    u.login = "user" + std::to_string(i) + "@example.com";
    u.email = u.login;
    u.first_name = "First" + std::to_string(i);
    u.last_name = "Last";
    u.employee_number = "E" + std::to_string(100 + i);
    u.user_type = i % 2 == 0 ? "employee" : "contractor";
    if (i == 3) u.status = "SUSPENDED";
    ids.push_back(env.fake.addUser(u));
    env.fake.addMember(gid, ids.back());
  }
  auto dir = env.make(env.sswsOptions({{"page_size", scalar("3")}}));
  const ports::GroupRef group = resolved(*dir, gid);
  env.fake.clearRequests();

  certgate::core::Status status;
  const auto users = collect(*dir, group, &status);
  REQUIRE(status.ok());
  REQUIRE(users.size() == 7);
  for (std::size_t i = 0; i < users.size(); ++i) CHECK(users[i].id == ids[i]);
  CHECK(users[0].user_name == "user0@example.com");
  CHECK(users[0].email == "user0@example.com");
  CHECK(users[0].employee_id == "E100");
  CHECK(users[0].display_name == "First0 Last");
  CHECK(users[0].population == "employee");
  CHECK(users[1].population == "contractor");
  CHECK(users[0].active);
  CHECK_FALSE(users[3].active);

  // Three pages: the first without a cursor, then the `after` cursors the fake's Link headers gave.
  const auto reqs = env.api("GET");
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].path == "/api/v1/groups/" + gid + "/users");
  CHECK(reqs[0].param("limit") == "3");
  CHECK(reqs[0].param("after").empty());
  CHECK(reqs[1].param("after") == ids[2]);
  CHECK(reqs[2].param("after") == ids[5]);
  CHECK(dir->capabilities().page_size == 3);
}

TEST_CASE("a page that keeps failing with 500 fails listMembers instead of returning a short list",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Big", "OKTA_GROUP", ""});
  for (int i = 0; i < 10; ++i) env.fake.addMember(gid, env.fake.addUser({}));
  auto dir = env.make(env.sswsOptions({{"page_size", scalar("2")}}));
  const ports::GroupRef group = resolved(*dir, gid);
  // The third request for the members path and every retry of it.
  env.fake.failRequests("GET", "/api/v1/groups/" + gid + "/users", 3, 100, 500);

  certgate::core::Status status;
  const auto users = collect(*dir, group, &status);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Transient);
  CHECK_THAT(status.error().message, Catch::Contains("HTTP 500"));
  CHECK_THAT(status.error().message, Catch::Contains("E0000009"));
  CHECK_THAT(status.error().message, Catch::Contains("page 3"));
  CHECK(users.size() == 4);  // what the sink saw before the failure; the caller must discard it
  // Page 3 was tried four times with backoff between the attempts.
  CHECK(env.api("GET").size() == 1 + 2 + 4);
  CHECK(env.time.sleeps.size() == 3);
}

TEST_CASE("a single 500 is retried and the listing completes", "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Big", "OKTA_GROUP", ""});
  for (int i = 0; i < 5; ++i) env.fake.addMember(gid, env.fake.addUser({}));
  auto dir = env.make(env.sswsOptions({{"page_size", scalar("2")}}));
  env.fake.failRequests("GET", "/api/v1/groups/" + gid + "/users", 2, 1, 503);
  certgate::core::Status status;
  const auto users = collect(*dir, ports::GroupRef{gid, "Big", true, "", ""}, &status);
  REQUIRE(status.ok());
  CHECK(users.size() == 5);
  CHECK(env.time.sleeps.size() == 1);
}

TEST_CASE("a next link outside the org URL is refused, so the token never leaves the org",
          "[connector][okta]") {
  fake::OktaFakeOptions o;
  o.link_base = "https://attacker.example";
  Env env(o);
  const std::string gid = env.fake.addGroup({"", "Big", "OKTA_GROUP", ""});
  for (int i = 0; i < 3; ++i) env.fake.addMember(gid, env.fake.addUser({}));
  auto dir = env.make(env.sswsOptions({{"page_size", scalar("2")}}));
  certgate::core::Status status;
  (void)collect(*dir, ports::GroupRef{gid, "Big", true, "", ""}, &status);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Permanent);
  CHECK_THAT(status.error().message, Catch::Contains("outside"));
  CHECK(env.api().size() == 1);
}

// ---- writes --------------------------------------------------------------------------------

TEST_CASE("addMembers and removeMembers send one PUT or DELETE per user and are idempotent",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  const std::string b = env.fake.addUser({});
  const std::string c = env.fake.addUser({});
  env.fake.addMember(gid, c);
  auto dir = env.make(env.oauthOptions());
  const ports::GroupRef group = resolved(*dir, gid);
  CHECK(group.writable);
  CHECK(dir->capabilities().max_add_batch == 1);
  CHECK(dir->capabilities().max_remove_batch == 1);

  certgate::core::Status status;
  (void)collect(*dir, group, &status);  // observation: only c is a member
  REQUIRE(status.ok());
  env.fake.clearRequests();

  auto added = dir->addMembers(group, {a, b, c});
  REQUIRE(added.ok());
  REQUIRE(added->size() == 3);
  CHECK((*added)[0].user_id == a);
  CHECK((*added)[0].status.ok());
  CHECK_FALSE((*added)[0].no_op);
  CHECK((*added)[1].status.ok());
  CHECK_FALSE((*added)[1].no_op);
  CHECK((*added)[2].status.ok());
  CHECK((*added)[2].no_op);  // already a member when observed
  CHECK(env.fake.isMember(gid, a));
  CHECK(env.fake.isMember(gid, b));

  const auto puts = env.api("PUT");
  REQUIRE(puts.size() == 3);
  CHECK(puts[0].path == "/api/v1/groups/" + gid + "/users/" + a);
  CHECK(puts[0].status == 204);
  CHECK(puts[2].status == 204);  // Okta answers 204 for a present member too
  CHECK_THAT(puts[0].header("Authorization"), Catch::StartsWith("Bearer "));

  // Adding again: success, no change, still one call each (the observation is only a hint).
  auto again = dir->addMembers(group, {a});
  REQUIRE(again.ok());
  CHECK((*again)[0].status.ok());
  CHECK((*again)[0].no_op);

  env.fake.clearRequests();
  const std::string d = env.fake.addUser({});
  auto removed = dir->removeMembers(group, {a, d});
  REQUIRE(removed.ok());
  REQUIRE(removed->size() == 2);
  CHECK((*removed)[0].status.ok());
  CHECK_FALSE((*removed)[0].no_op);
  CHECK((*removed)[1].status.ok());
  CHECK((*removed)[1].no_op);  // never was a member
  CHECK_FALSE(env.fake.isMember(gid, a));
  const auto deletes = env.api("DELETE");
  REQUIRE(deletes.size() == 2);
  CHECK(deletes[1].path == "/api/v1/groups/" + gid + "/users/" + d);
  CHECK(deletes[1].status == 204);
}

TEST_CASE("an unknown user is a NotFound outcome for that member only", "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.sswsOptions());
  const ports::GroupRef group = resolved(*dir, gid);

  auto out = dir->addMembers(group, {"00u00000000000099999", a});
  REQUIRE(out.ok());
  REQUIRE(out->size() == 2);
  REQUIRE_FALSE((*out)[0].status.ok());
  CHECK((*out)[0].status.error().kind == ErrorKind::NotFound);
  CHECK_THAT((*out)[0].status.error().message, Catch::Contains("E0000007"));
  CHECK_THAT((*out)[0].status.error().message, Catch::Contains("(User)"));
  CHECK((*out)[1].status.ok());
  CHECK(env.fake.isMember(gid, a));
}

TEST_CASE("a write to a group that no longer exists fails the whole call", "[connector][okta]") {
  Env env;
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.sswsOptions());
  auto out = dir->removeMembers(ports::GroupRef{"00g00000000000077777", "Gone", true, "", ""}, {a, a});
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == ErrorKind::NotFound);
  CHECK_THAT(out.error().message, Catch::Contains("no longer exists"));
  CHECK(env.api("DELETE").size() == 1);
}

TEST_CASE("APP_GROUP and BUILT_IN groups are read-only and writes to them send no request",
          "[connector][okta]") {
  Env env;
  const std::string ad = env.fake.addGroup({"", "AD Engineers", "APP_GROUP", "imported"});
  const std::string everyone = env.fake.addGroup({"", "Everyone", "BUILT_IN", ""});
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.sswsOptions());

  const ports::GroupRef app = resolved(*dir, "AD Engineers");
  CHECK(app.id == ad);
  CHECK_FALSE(app.writable);
  CHECK_THAT(app.not_writable_why, Catch::Contains("APP_GROUP"));
  const ports::GroupRef builtin = resolved(*dir, everyone);
  CHECK_FALSE(builtin.writable);
  CHECK_THAT(builtin.not_writable_why, Catch::Contains("BUILT_IN"));

  env.fake.clearRequests();
  auto add = dir->addMembers(app, {a});
  REQUIRE_FALSE(add.ok());
  CHECK(add.error().kind == ErrorKind::Invalid);
  CHECK_THAT(add.error().message, Catch::Contains("AD Engineers"));
  CHECK_THAT(add.error().message, Catch::Contains("APP_GROUP"));
  auto remove = dir->removeMembers(builtin, {a});
  REQUIRE_FALSE(remove.ok());
  CHECK(remove.error().kind == ErrorKind::Invalid);
  // A caller that lost the flag is still refused: the connector remembers the type by id.
  ports::GroupRef forged = app;
  forged.writable = true;
  CHECK_FALSE(dir->addMembers(forged, {a}).ok());
  CHECK(env.fake.requests().empty());
}

// ---- groups --------------------------------------------------------------------------------

TEST_CASE("resolveGroup finds a group by id or exact name and reports missing or ambiguous names",
          "[connector][okta]") {
  Env env;
  const std::string eng = env.fake.addGroup({"", "Engineers", "OKTA_GROUP", ""});
  env.fake.addGroup({"", "Engineers Berlin", "OKTA_GROUP", ""});
  const std::string dup1 = env.fake.addGroup({"", "Sales", "OKTA_GROUP", ""});
  const std::string dup2 = env.fake.addGroup({"", "Sales", "APP_GROUP", ""});
  auto dir = env.make(env.sswsOptions());

  SECTION("by id") {
    const ports::GroupRef g = resolved(*dir, eng);
    CHECK(g.id == eng);
    CHECK(g.display_name == "Engineers");
    const auto reqs = env.api();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].path == "/api/v1/groups/" + eng);
  }
  SECTION("by name, with the search expression Okta documents, cached afterwards") {
    const ports::GroupRef g = resolved(*dir, "Engineers");
    CHECK(g.id == eng);  // not "Engineers Berlin"
    const auto reqs = env.api();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].path == "/api/v1/groups");
    CHECK(reqs[0].param("search") == "profile.name eq \"Engineers\"");
    CHECK(resolved(*dir, "Engineers").id == eng);
    CHECK(env.api().size() == 1);
  }
  SECTION("missing") {
    auto g = dir->resolveGroup("Nobody");
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().kind == ErrorKind::NotFound);
    CHECK_THAT(g.error().message, Catch::Contains("Nobody"));
  }
  SECTION("an id-shaped key that is not a group falls back to the name and is NotFound") {
    auto g = dir->resolveGroup("00g00000000000000999");
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().kind == ErrorKind::NotFound);
  }
  SECTION("ambiguous") {
    auto g = dir->resolveGroup("Sales");
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().kind == ErrorKind::Conflict);
    CHECK_THAT(g.error().message, Catch::Contains(dup1));
    CHECK_THAT(g.error().message, Catch::Contains(dup2));
    CHECK_THAT(g.error().hint, Catch::Contains("id"));
  }
}

TEST_CASE("quotes and backslashes in a group name are escaped in the search expression",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", R"(R&D "Core" \ Ops)", "OKTA_GROUP", ""});
  auto dir = env.make(env.sswsOptions());
  CHECK(resolved(*dir, R"(R&D "Core" \ Ops)").id == gid);
  const auto reqs = env.api();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].param("search") == R"(profile.name eq "R&D \"Core\" \\ Ops")");
}

// ---- users ---------------------------------------------------------------------------------

TEST_CASE("findUsers searches the Okta attribute of each certgate attribute", "[connector][okta]") {
  Env env;
  fake::FakeUser ann;
  ann.login = "ann.lee@corp.example";
  ann.email = "Ann.Lee@Corp.Example";
  ann.employee_number = "4711";
  ann.extra = {{"costCenter", "CC-9"}};
  const std::string ann_id = env.fake.addUser(ann);
  fake::FakeUser bob;
  bob.login = "bob@corp.example";
  bob.email = "bob@corp.example";
  bob.employee_number = "4712";
  bob.extra = {{"costCenter", "CC-9"}};
  const std::string bob_id = env.fake.addUser(bob);
  auto dir = env.make(env.sswsOptions());

  struct Case {
    ports::UserAttribute attribute;
    std::string custom;
    std::string value;
    std::string expected_search;
    std::vector<std::string> expected_ids;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {ports::UserAttribute::Email, "", "ann.lee@corp.example",
       R"(profile.email eq "ann.lee@corp.example")", {ann_id}, "email, matched case-insensitively"},
      {ports::UserAttribute::UserName, "", "bob@corp.example",
       R"(profile.login eq "bob@corp.example")", {bob_id}, "user_name is the Okta login"},
      {ports::UserAttribute::EmployeeId, "", "4711", R"(profile.employeeNumber eq "4711")",
       {ann_id}, "employee_id is profile.employeeNumber"},
      {ports::UserAttribute::Custom, "costCenter", "CC-9", R"(profile.costCenter eq "CC-9")",
       {ann_id, bob_id}, "a bare custom name is a profile attribute; several matches are returned"},
      {ports::UserAttribute::Email, "", "nobody@corp.example",
       R"(profile.email eq "nobody@corp.example")", {}, "no match is an empty list"},
      {ports::UserAttribute::UserName, "", R"(we"ird)", R"(profile.login eq "we\"ird")", {},
       "quotes in a value are escaped"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    env.fake.clearRequests();
    auto found = dir->findUsers({c.attribute, c.custom, c.value});
    REQUIRE(found.ok());
    std::vector<std::string> ids;
    for (const auto& u : *found) ids.push_back(u.id);
    CHECK(ids == c.expected_ids);
    const auto reqs = env.api();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].path == "/api/v1/users");
    CHECK(reqs[0].param("search") == c.expected_search);
  }

  SECTION("by id reads the user directly and treats 404 as no match") {
    env.fake.clearRequests();
    auto byId = dir->findUsers({ports::UserAttribute::Id, "", ann_id});
    REQUIRE(byId.ok());
    REQUIRE(byId->size() == 1);
    CHECK((*byId)[0].employee_id == "4711");
    auto missing = dir->findUsers({ports::UserAttribute::Id, "", "00u00000000000088888"});
    REQUIRE(missing.ok());
    CHECK(missing->empty());
    const auto reqs = env.api();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].path == "/api/v1/users/" + ann_id);
  }
  SECTION("external_id and malformed custom names are refused without a request") {
    env.fake.clearRequests();
    auto ext = dir->findUsers({ports::UserAttribute::ExternalId, "", "x"});
    REQUIRE_FALSE(ext.ok());
    CHECK(ext.error().kind == ErrorKind::Invalid);
    auto bad = dir->findUsers({ports::UserAttribute::Custom, "cost center\" or 1", "x"});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().kind == ErrorKind::Invalid);
    CHECK(env.fake.requests().empty());
  }
}

TEST_CASE("listRoster pages the users matching roster_filter with the configured population",
          "[connector][okta]") {
  Env env;
  std::vector<std::string> engineers;
  for (int i = 0; i < 5; ++i) {
    fake::FakeUser u;
    u.extra = {{"department", i < 4 ? "Engineering" : "Sales"}, {"site", "BER"}};
    if (i == 2) u.status = "DEPROVISIONED";
    const std::string id = env.fake.addUser(u);
    if (i < 4) engineers.push_back(id);
  }
  const std::string filter = R"(profile.department eq "Engineering")";
  auto dir = env.make(env.sswsOptions({{"roster_filter", scalar(filter)},
                                       {"population_attribute", scalar("site")},
                                       {"page_size", scalar("3")}}));
  CHECK(dir->capabilities().roster);
  std::vector<ports::DirectoryUser> roster;
  auto status = dir->listRoster([&](ports::DirectoryUser&& u) { roster.push_back(std::move(u)); });
  REQUIRE(status.ok());
  REQUIRE(roster.size() == 4);
  for (std::size_t i = 0; i < roster.size(); ++i) {
    CHECK(roster[i].id == engineers[i]);
    CHECK(roster[i].population == "BER");
  }
  CHECK_FALSE(roster[2].active);  // search returns DEPROVISIONED users; they are not active
  const auto reqs = env.api();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].param("search") == filter);
  CHECK(reqs[1].param("search") == filter);  // kept in the next link
  CHECK(reqs[1].param("after") == engineers[2]);

  auto plain = env.make(env.sswsOptions());
  CHECK_FALSE(plain->capabilities().roster);
  auto none = plain->listRoster([](ports::DirectoryUser&&) {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind == ErrorKind::Invalid);
}

// ---- authentication ------------------------------------------------------------------------

TEST_CASE("private_key_jwt: one token serves many calls, the assertion carries the documented "
          "claims, and the token is renewed after it expires",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.oauthOptions({{"key_id", scalar("key-2026")}}));
  REQUIRE(dir->connect().ok());
  const ports::GroupRef group = resolved(*dir, gid);
  for (int i = 0; i < 5; ++i) REQUIRE(dir->addMembers(group, {a}).ok());
  REQUIRE(dir->findUsers({ports::UserAttribute::Id, "", a}).ok());
  CHECK(env.fake.tokensIssued() == 1);
  CHECK(dir->requestCount() == 1 + 1 + 5 + 1);

  const auto all = env.fake.requests();
  REQUIRE(all[0].path == "/oauth2/v1/token");
  CHECK(all[0].method == "POST");
  CHECK(all[0].param("grant_type") == "client_credentials");
  CHECK(all[0].param("scope") == "okta.groups.manage okta.users.read");
  CHECK(all[0].param("client_assertion_type") ==
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  const std::string assertion = all[0].param("client_assertion");
  const Json header = Json::parse(*certgate::connectors::jwt::base64UrlDecode(
      assertion.substr(0, assertion.find('.'))));
  CHECK(header["alg"] == "RS256");
  CHECK(header["kid"] == "key-2026");

  const auto claims_log = env.fake.acceptedAssertionClaims();
  REQUIRE(claims_log.size() == 1);
  const Json claims = Json::parse(claims_log[0]);
  CHECK(claims["iss"] == "0oacertgatefake00000");
  CHECK(claims["sub"] == "0oacertgatefake00000");
  CHECK(claims["aud"] == env.fake.tokenUrl());
  CHECK(claims["iat"] == kStart);
  CHECK(claims["exp"].get<std::int64_t>() > kStart);
  CHECK(claims["exp"].get<std::int64_t>() - kStart <= 3600);
  CHECK_FALSE(claims["jti"].get<std::string>().empty());

  // Every API call carried the one token.
  const std::string bearer = env.api()[0].header("Authorization");
  CHECK_THAT(bearer, Catch::StartsWith("Bearer fakeAT."));
  for (const auto& r : env.api()) CHECK(r.header("Authorization") == bearer);

  // An hour later the cached token has expired: a new assertion, a new token.
  env.time.now += 3600;
  REQUIRE(dir->addMembers(group, {a}).ok());
  CHECK(env.fake.tokensIssued() == 2);
  const auto claims_after = env.fake.acceptedAssertionClaims();
  REQUIRE(claims_after.size() == 2);
  CHECK(Json::parse(claims_after[1])["jti"] != claims["jti"]);
  CHECK(env.api().back().header("Authorization") != bearer);
  // The token never reaches an error message: it is registered with the redactor.
  CHECK(env.redactor->redact(bearer) == "Bearer [redacted]");
}

TEST_CASE("a revoked access token is renewed once after a 401 and the call succeeds",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.oauthOptions());
  const ports::GroupRef group = resolved(*dir, gid);
  env.fake.revokeTokens();
  auto out = dir->addMembers(group, {a});
  REQUIRE(out.ok());
  CHECK((*out)[0].status.ok());
  CHECK(env.fake.tokensIssued() == 2);
  const auto puts = env.api("PUT");
  REQUIRE(puts.size() == 2);
  CHECK(puts[0].status == 401);
  CHECK(puts[1].status == 204);
}

TEST_CASE("a key the service app does not know is refused at connect with an Auth error",
          "[connector][okta]") {
  Env env;
  auto options = env.oauthOptions();
  options.values[2].second = secretRef("/secrets/stranger.pem");
  auto dir = env.make(options);
  auto status = dir->connect();
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Auth);
  CHECK_THAT(status.error().message, Catch::Contains("invalid_client"));
  CHECK_THAT(status.error().message, Catch::Contains("signature is invalid"));
  CHECK(status.error().describe().find("PRIVATE KEY") == std::string::npos);
  CHECK(env.api().empty());
}

TEST_CASE("a scope the app was not granted is refused at connect with an Auth error",
          "[connector][okta]") {
  fake::OktaFakeOptions o;
  o.granted_scopes = {"okta.groups.manage"};
  Env env(o);
  auto dir = env.make(env.oauthOptions());
  auto status = dir->connect();
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Auth);
  CHECK_THAT(status.error().message, Catch::Contains("invalid_scope"));
  CHECK_THAT(status.error().message, Catch::Contains("okta.users.read"));
}

TEST_CASE("an app that requires DPoP is refused at connect with a hint to turn it off",
          "[connector][okta]") {
  fake::OktaFakeOptions o;
  o.require_dpop = true;
  Env env(o);
  auto dir = env.make(env.oauthOptions());
  auto status = dir->connect();
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Auth);
  CHECK_THAT(status.error().message, Catch::Contains("invalid_dpop_proof"));
  CHECK_THAT(status.error().hint, Catch::Contains("DPoP"));
}

TEST_CASE("auth: ssws sends the API token and makes startupWarnings recommend oauth",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  auto dir = env.make(env.sswsOptions());
  REQUIRE(dir->connect().ok());
  REQUIRE(dir->resolveGroup(gid).ok());
  const auto reqs = env.api();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].path == "/api/v1/groups");  // the connect probe
  CHECK(reqs[0].param("limit") == "1");
  for (const auto& r : reqs) CHECK(r.header("Authorization") == std::string("SSWS ") + kSswsToken);
  CHECK(env.fake.tokensIssued() == 0);

  const auto warnings = okta::startupWarnings(env.sswsOptions());
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("ssws"));
  CHECK_THAT(warnings[0], Catch::Contains("auth: oauth"));
  CHECK(okta::startupWarnings(env.oauthOptions()).empty());
  CHECK(okta::startupWarnings(env.oauthOptions({{"rate_limit_share", scalar("0.9")}})).size() == 1);
}

TEST_CASE("401 from the API is an Auth error with Okta's error and a clear hint, token redacted",
          "[connector][okta]") {
  Env env;
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  env.fake.setAlways401(true);

  SECTION("ssws: no retry") {
    auto dir = env.make(env.sswsOptions());
    certgate::core::Status status;
    (void)collect(*dir, ports::GroupRef{gid, "Certified", true, "", ""}, &status);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().kind == ErrorKind::Auth);
    CHECK_THAT(status.error().message, Catch::Contains("HTTP 401"));
    CHECK_THAT(status.error().message, Catch::Contains("E0000011"));
    CHECK_THAT(status.error().message, Catch::Contains("Invalid token provided"));
    CHECK_THAT(status.error().hint, Catch::Contains("API token"));
    CHECK(status.error().where == "directory 'corp-okta'");
    CHECK(status.error().describe().find(kSswsToken) == std::string::npos);
    CHECK(env.api().size() == 1);
  }
  SECTION("oauth: one token renewal, then Auth; writes fail as a whole") {
    auto dir = env.make(env.oauthOptions());
    auto out = dir->addMembers(ports::GroupRef{gid, "Certified", true, "", ""},
                               {"00u00000000000000001", "00u00000000000000002"});
    REQUIRE_FALSE(out.ok());
    CHECK(out.error().kind == ErrorKind::Auth);
    CHECK_THAT(out.error().hint, Catch::Contains("client_id"));
    CHECK(env.api().size() == 2);
    CHECK(env.fake.tokensIssued() == 2);
  }
}

TEST_CASE("403 E0000006 is an Auth error that names the missing grants", "[connector][okta]") {
  fake::OktaFakeOptions o;
  o.granted_scopes = {"okta.groups.read", "okta.users.read"};
  Env env(o);
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  auto dir = env.make(env.oauthOptions({{"scope", scalar("okta.groups.read okta.users.read")}}));
  auto out = dir->addMembers(resolved(*dir, gid), {a});
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == ErrorKind::Auth);
  CHECK_THAT(out.error().message, Catch::Contains("E0000006"));
  CHECK_THAT(out.error().hint, Catch::Contains("okta.groups.read okta.users.read"));
}

// ---- rate limits ---------------------------------------------------------------------------

TEST_CASE("with limit 10 and share 0.5 the connector sleeps until the reset before using a 6th "
          "call of a window",
          "[connector][okta]") {
  Env env;
  env.fake.setRateLimit(fake::kBucketMembers, 10);
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(env.fake.addUser({}));
  auto dir = env.make(env.sswsOptions());
  const ports::GroupRef group = resolved(*dir, gid);
  const std::int64_t first_reset = env.time.now + 60;

  auto out = dir->addMembers(group, ids);
  REQUIRE(out.ok());
  for (const auto& o : *out) CHECK(o.status.ok());
  CHECK(env.fake.memberCount(gid) == 12);

  // 5 calls, sleep to the reset (+1 s for the headers' resolution), 5 calls, sleep, 2 calls.
  REQUIRE(env.time.sleeps.size() == 2);
  CHECK(env.time.sleeps[0] == std::chrono::seconds(first_reset - kStart + 1));
  CHECK(env.time.sleeps[1] == std::chrono::seconds(60 + 1));
  CHECK(env.fake.minRemaining(fake::kBucketMembers) == 5);
  CHECK(env.fake.rateLimitedCount() == 0);
  const auto puts = env.api("PUT");
  REQUIRE(puts.size() == 12);
  CHECK(puts[4].at == kStart);
  CHECK(puts[5].at == first_reset + 1);
  CHECK(puts[5].remaining == 9);  // a fresh window
}

TEST_CASE("pacing follows Okta's clock through the Date header when the clocks disagree",
          "[connector][okta]") {
  fake::OktaFakeOptions o;
  o.clock_skew = 5000;  // Okta's clock is 5000 s ahead of certgate's
  Env env(o);
  env.fake.setRateLimit(fake::kBucketMembers, 4);
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(env.fake.addUser({}));
  auto dir = env.make(env.sswsOptions());
  const ports::GroupRef group = resolved(*dir, gid);
  REQUIRE(dir->addMembers(group, ids).ok());
  // Two calls fit in half of 4; the wait is to the reset 60 s away, not 5060 s.
  REQUIRE(env.time.sleeps.size() == 1);
  CHECK(env.time.sleeps[0] == std::chrono::seconds(61));
}

TEST_CASE("a 429 waits until X-Rate-Limit-Reset and then the request succeeds",
          "[connector][okta]") {
  Env env;
  env.fake.setRateLimit(fake::kBucketMembers, 10);
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  const std::string b = env.fake.addUser({});
  auto dir = env.make(env.sswsOptions());
  const ports::GroupRef group = resolved(*dir, gid);
  REQUIRE(dir->addMembers(group, {a}).ok());
  env.time.now += 10;
  env.fake.consume(fake::kBucketMembers, 100);  // other clients of the org spend the window

  auto out = dir->addMembers(group, {b});
  REQUIRE(out.ok());
  CHECK((*out)[0].status.ok());
  REQUIRE(env.time.sleeps.size() == 1);
  CHECK(env.time.sleeps[0] == std::chrono::seconds(50 + 1));
  const auto puts = env.api("PUT");
  REQUIRE(puts.size() == 3);
  CHECK(puts[0].status == 204);
  CHECK(puts[1].status == 429);
  CHECK(puts[2].status == 204);
  CHECK(env.fake.isMember(gid, b));
}

TEST_CASE("a bucket that stays exhausted ends in RateLimited with retry_after and stops the batch",
          "[connector][okta]") {
  Env env;
  env.fake.setRateLimit(fake::kBucketMembers, 1);
  const std::string gid = env.fake.addGroup({"", "Certified", "OKTA_GROUP", ""});
  const std::string a = env.fake.addUser({});
  const std::string b = env.fake.addUser({});
  auto dir = env.make(env.sswsOptions({{"rate_limit_share", scalar("1")}}));
  const ports::GroupRef group = resolved(*dir, gid);
  // Other clients spend every window.
  env.fake.failRequests("PUT", "/api/v1/groups/" + gid + "/users/" + a, 1, 100, 429);
  auto out = dir->addMembers(group, {a, b});
  REQUIRE(out.ok());
  REQUIRE(out->size() == 2);
  REQUIRE_FALSE((*out)[0].status.ok());
  CHECK((*out)[0].status.error().kind == ErrorKind::RateLimited);
  CHECK((*out)[0].status.error().retry_after_s == 61);  // to the window's reset, + 1 s
  CHECK_THAT((*out)[0].status.error().message, Catch::Contains("E0000047"));
  REQUIRE_FALSE((*out)[1].status.ok());
  CHECK_THAT((*out)[1].status.error().message, Catch::Contains("not attempted"));
  CHECK(env.api("PUT").size() == 6);  // the first try and five waits; b is never sent
}

// ---- configuration -------------------------------------------------------------------------

TEST_CASE("makeDirectory validates the options before any request", "[connector][okta]") {
  Env env;
  struct Case {
    std::vector<std::pair<std::string, ports::OptionValue>> values;
    const char* key;
    const char* reason;
  };
  const std::string url = env.fake.url();
  const std::vector<Case> cases = {
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"colour", scalar("blue")}},
       "colour", "unknown keys are refused and the valid ones listed"},
      {{{"url", scalar("http://acme.okta.com")}, {"auth", scalar("ssws")},
        {"token", secretRef("/secrets/okta-token")}},
       "url", "plain http is only for loopback"},
      {{{"url", scalar("https://acme.okta.com/admin")}, {"auth", scalar("ssws")},
        {"token", secretRef("/secrets/okta-token")}},
       "url", "the org URL has no path"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", scalar(kSswsToken)}},
       "token", "secrets are references, never inline"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"client_id", scalar("x")}},
       "client_id", "oauth keys with ssws are a mistake"},
      {{{"url", scalar(url)}, {"private_key", secretRef("/secrets/okta.pem")}},
       "client_id", "oauth needs client_id"},
      {{{"url", scalar(url)}, {"client_id", scalar("c")}}, "private_key", "oauth needs a key"},
      {{{"url", scalar(url)}, {"client_id", scalar("c")}, {"private_key", secretRef("/secrets/okta-token")}},
       "private_key", "the key must be a PEM RSA private key"},
      {{{"url", scalar(url)}, {"auth", scalar("saml")}}, "auth", "auth is oauth or ssws"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"rate_limit_share", scalar("0")}},
       "rate_limit_share", "the share is above 0"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"page_size", scalar("5000")}},
       "page_size", "page_size is 1-1000"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"timeout", scalar("soon")}},
       "timeout", "timeout is a duration"},
      {{{"url", scalar(url)}, {"auth", scalar("ssws")}, {"token", secretRef("/secrets/okta-token")},
        {"ca_file", scalar("missing-ca.pem")}},
       "ca_file", "ca_file must exist"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    ports::Options options;
    options.where = "certgate.yaml:9:3";
    options.values = c.values;
    auto made = env.tryMake(options);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().kind == ErrorKind::Invalid);
    CHECK_THAT(made.error().message, Catch::Contains(c.key));
    CHECK_THAT(made.error().message, Catch::Contains("corp-okta"));
    CHECK(made.error().describe().find(kSswsToken) == std::string::npos);
    CHECK(made.error().describe().find(keys().private_pem.substr(40, 24)) == std::string::npos);
  }
  {
    ports::Options options;
    options.values = cases[0].values;
    auto made = env.tryMake(options);
    REQUIRE_FALSE(made.ok());
    CHECK_THAT(made.error().hint, Catch::Contains("rate_limit_share"));
    CHECK(made.error().where == "certgate.yaml:10:5");
  }
  CHECK(env.fake.requestCount() == 0);
  // Secrets read are registered with the redactor.
  (void)env.make(env.sswsOptions());
  CHECK(env.redactor->redact(std::string("x ") + kSswsToken) == "x [redacted]");
}

TEST_CASE("the spec declares every key with its default", "[connector][okta]") {
  const auto& s = okta::spec();
  CHECK(s.kind == "okta");
  for (const char* key : {"url", "auth", "client_id", "private_key", "key_id", "token_url", "scope",
                          "token", "ca_file", "timeout", "page_size", "roster_filter",
                          "population_attribute", "rate_limit_share"}) {
    INFO(key);
    CHECK(s.find(key) != nullptr);
  }
  CHECK(s.find("url")->required);
  CHECK(s.find("auth")->default_value == "oauth");
  CHECK(s.find("private_key")->type == ports::ValueType::Secret);
  CHECK(s.find("token")->type == ports::ValueType::Secret);
  CHECK(s.find("scope")->default_value == "okta.groups.manage okta.users.read");
  CHECK(s.find("population_attribute")->default_value == "profile.userType");
  CHECK(s.find("rate_limit_share")->default_value == "0.5");
}
