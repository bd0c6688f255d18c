// The kong gateway connector against the loopback Kong Admin API fake (tests/fakes/kong), which
// follows ../shared/reference/gateway-alerts.md section 2 and the Kong sources it cites.
#include "connectors/gateway/kong/kong_gateway.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <map>
#include <regex>
#include <set>
#include <nlohmann/json.hpp>

#include "connectors/gateway/builtin/token_format.hpp"
#include "fakes/kong/kong_fake.hpp"

using certgate::core::ErrorKind;
namespace core = certgate::core;
namespace http = certgate::connectors::http;
namespace kong = certgate::connectors::kong;
namespace builtin = certgate::connectors::builtin;
namespace ports = certgate::ports;
namespace fake = certgate::testing::kong;
using Json = nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'800'000'000;
constexpr const char* kAdminToken = "kong-rbac-TOKEN-7f3a9c";

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
  o.where = "certgate.yaml:20:7";
  return o;
}

ports::OptionValue secretRef(std::string path) {
  ports::OptionValue o;
  o.shape = ports::OptionValue::Shape::Map;
  o.map = {{"file", std::move(path)}};
  o.where = "certgate.yaml:21:7";
  return o;
}

struct Env {
  VirtualTime time;
  fake::KongFake fake;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();

  explicit Env(fake::KongFakeOptions o = {}) : fake(withClock(std::move(o))) { fake.start(); }

  fake::KongFakeOptions withClock(fake::KongFakeOptions o) {
    o.clock = [this] { return time.now.load(); };
    return o;
  }

  static ports::SecretReader secrets() {
    return [](const ports::OptionValue& ref) -> core::Result<std::string> {
      if (!ref.map.empty() && ref.map.front().second == "/secrets/kong-admin")
        return std::string(kAdminToken) + "\n";
      return core::makeError(ErrorKind::NotFound, "no such secret file");
    };
  }

  ports::Options options(std::vector<std::pair<std::string, ports::OptionValue>> extra = {}) const {
    ports::Options o;
    o.where = "certgate.yaml:19:5";
    o.values = {{"url", scalar(fake.url())}};
    for (auto& kv : extra) o.values.push_back(std::move(kv));
    return o;
  }

  core::Result<std::unique_ptr<ports::Gateway>> tryMake(const ports::Options& o) {
    return kong::makeGateway("kong-prod", o, "/etc/certgate", secrets(), redactor, time.options());
  }

  std::unique_ptr<ports::Gateway> make(const ports::Options& o) {
    auto g = tryMake(o);
    if (!g) FAIL(g.error().describe());
    return std::move(*g);
  }
  std::unique_ptr<ports::Gateway> make() { return make(options()); }

  // Admin API requests (the proxy excluded) with this method and path pattern, in order.
  std::vector<fake::LoggedRequest> api(const std::string& method = "", const std::string& path = "") const {
    std::vector<fake::LoggedRequest> out;
    for (auto& r : fake.requests()) {
      if (r.path.rfind("/_proxy", 0) == 0) continue;
      if (!method.empty() && r.method != method) continue;
      if (!path.empty() && !std::regex_match(r.path, std::regex(path))) continue;
      out.push_back(r);
    }
    return out;
  }

  ports::IssueRequest request(const std::string& person = "E1001", int rotation = 0,
                              const std::string& scope = "genai-basic") const {
    ports::IssueRequest r;
    r.person_key = person;
    r.track = "AI_SAFETY";
    r.scope.scope = scope;
    r.alias = "certgate:" + person + ":AI_SAFETY:" + scope + ":c1:r" + std::to_string(rotation);
    r.expires_at = core::Instant{std::chrono::seconds(time.now.load() + 3 * 86400)};
    return r;
  }
};

Json body(const fake::LoggedRequest& r) { return Json::parse(r.body); }

std::vector<std::string> tagsOf(const Json& j) { return j.at("tags").get<std::vector<std::string>>(); }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

// ---- options -----------------------------------------------------------------------------------

TEST_CASE("kong: the spec declares every option and the factory does no I/O", "[connector][kong]") {
  const auto& s = kong::spec();
  CHECK(s.kind == "kong");
  std::vector<std::string> keys;
  for (const auto& k : s.keys) keys.push_back(k.key);
  CHECK(keys == std::vector<std::string>{"url", "admin_token", "admin_token_header", "consumer_prefix",
                                         "acl_from", "cache_window", "page_size", "ca_file", "timeout"});
  CHECK(s.find("url")->required);
  CHECK(s.find("admin_token")->type == ports::ValueType::Secret);
  CHECK(s.find("admin_token_header")->default_value == "Kong-Admin-Token");
  CHECK(s.find("consumer_prefix")->default_value == "certgate-");
  CHECK(s.find("cache_window")->default_value == "10s");

  Env env;
  ports::Options o = env.options({{"admin_token", secretRef("/secrets/kong-admin")}});
  o.values[0].second.scalar += "/";  // a trailing slash is dropped
  auto g = env.make(o);
  CHECK(std::string(g->kind()) == "kong");
  CHECK(g->name() == "kong-prod");
  CHECK(env.fake.requestCount() == 0);
  const auto caps = g->capabilities();
  CHECK(caps.cache_window == std::chrono::seconds(10));
  CHECK(caps.can_verify);
  CHECK(caps.supplies_secret);
  // The token read from the secret file is masked wherever certgate logs.
  CHECK(env.redactor->redact(std::string("token ") + kAdminToken).find(kAdminToken) == std::string::npos);
  REQUIRE(g->connect().ok());
  CHECK(env.api().at(0).target == "/");
}

TEST_CASE("kong: invalid options are refused with the key, the place and a hint", "[connector][kong]") {
  Env env;
  struct Case {
    const char* reason;
    std::vector<std::pair<std::string, ports::OptionValue>> values;
    std::string message;
  };
  auto url = [&] { return std::make_pair(std::string("url"), scalar(env.fake.url())); };
  const std::vector<Case> cases = {
      {"an unknown key lists the valid ones", {url(), {"master_key", scalar("x")}}, "master_key: unknown key"},
      {"url is required", {}, "url: is required"},
      {"plain http leaves the machine only over TLS", {{"url", scalar("http://kong.example.com:8001")}}, "url: must use https"},
      {"not a URL", {{"url", scalar("kong-admin:8001")}}, "is not an http(s) URL"},
      {"a secret is never inline", {url(), {"admin_token", scalar("abc")}}, "admin_token: must be a secret reference"},
      {"a header without a token", {url(), {"admin_token_header", scalar("X-Admin")}}, "is set without admin_token"},
      {"a header name must be a token", {url(), {"admin_token", secretRef("/secrets/kong-admin")}, {"admin_token_header", scalar("Bad Header")}}, "is not an HTTP header name"},
      {"acl_from is scope or models", {url(), {"acl_from", scalar("routes")}}, "acl_from: 'routes' is not one of scope, models"},
      {"cache_window is a duration", {url(), {"cache_window", scalar("soon")}}, "cache_window: 'soon' is not a duration"},
      {"page_size is at most Kong's 1000", {url(), {"page_size", scalar("5000")}}, "page_size: '5000' is not a whole number from 1 to 1000"},
      {"ca_file must exist", {url(), {"ca_file", scalar("missing-ca.pem")}}, "/etc/certgate/missing-ca.pem is not a readable file"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    ports::Options o;
    o.where = "certgate.yaml:19:5";
    o.values = c.values;
    auto g = env.tryMake(o);
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().kind == ErrorKind::Invalid);
    CHECK(g.error().message.rfind("gateway 'kong-prod': ", 0) == 0);
    CHECK(g.error().message.find(c.message) != std::string::npos);
    CHECK_FALSE(g.error().where.empty());
  }
  ports::Options o = env.options({{"master_key", scalar("x")}});
  auto g = env.tryMake(o);
  REQUIRE_FALSE(g.ok());
  CHECK(g.error().hint.find("url, admin_token, admin_token_header") != std::string::npos);
  CHECK(g.error().where == "certgate.yaml:20:7");
  CHECK(env.fake.requestCount() == 0);
}

TEST_CASE("kong: tag values round-trip and use only characters Kong can filter on", "[connector][kong]") {
  for (const std::string v : {"certgate:E1001:AI_SAFETY:genai-basic:c1:r0", "ann@example.com",
                              "a~b/c,d e", "", "ü"}) {
    const std::string enc = kong::encodeTagValue(v);
    for (const char c : enc)
      CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '~'));
    CHECK(kong::decodeTagValue(enc) == v);
  }
  CHECK(kong::encodeTagValue("certgate:E1") == "certgate~3AE1");
  CHECK_FALSE(kong::decodeTagValue("abc~4").has_value());
  CHECK_FALSE(kong::decodeTagValue("abc~ZZ").has_value());
}

// ---- connect -----------------------------------------------------------------------------------

TEST_CASE("kong: the admin token travels in Kong-Admin-Token and without it connect() is Auth",
          "[connector][kong]") {
  fake::KongFakeOptions fo;
  fo.admin_token = kAdminToken;
  Env env(fo);

  auto bare = env.make();
  auto refused = bare->connect();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Auth);
  CHECK(refused.error().message.find("HTTP 401") != std::string::npos);
  CHECK(refused.error().hint.find("admin_token") != std::string::npos);
  CHECK(refused.error().where == "gateway 'kong-prod'");

  env.fake.clearRequests();
  auto g = env.make(env.options({{"admin_token", secretRef("/secrets/kong-admin")}}));
  REQUIRE(g->connect().ok());
  auto issued = g->issue(env.request());
  REQUIRE(issued.ok());
  const auto reqs = env.api();
  REQUIRE(reqs.size() >= 6);
  for (const auto& r : reqs) {
    INFO(r.method << " " << r.target);
    CHECK(r.header("Kong-Admin-Token") == kAdminToken);
    CHECK(r.status != 401);
  }
  CHECK(env.api("GET", "/")[0].status == 200);
  CHECK(env.api("GET", "/key-auths")[0].param("tags") == "certgate");
}

TEST_CASE("kong: a custom admin_token_header carries the token instead", "[connector][kong]") {
  fake::KongFakeOptions fo;
  fo.admin_token = kAdminToken;
  fo.admin_token_header = "X-Admin-Key";
  Env env(fo);
  auto g = env.make(env.options({{"admin_token", secretRef("/secrets/kong-admin")},
                                 {"admin_token_header", scalar("X-Admin-Key")}}));
  REQUIRE(g->connect().ok());
  for (const auto& r : env.api()) {
    CHECK(r.header("X-Admin-Key") == kAdminToken);
    CHECK(r.header("Kong-Admin-Token").empty());
  }

  // A wrong token: Auth, and the token never shows in the error.
  env.fake.setAdminToken("another-token", "X-Admin-Key");
  auto refused = g->connect();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Auth);
  CHECK(refused.error().describe().find(kAdminToken) == std::string::npos);
  CHECK(refused.error().hint.find("X-Admin-Key") != std::string::npos);
}

// ---- issue -------------------------------------------------------------------------------------

TEST_CASE("kong: issue creates the consumer, the ACL group and a credential with certgate's own "
          "key and a ttl capped at the end of access",
          "[connector][kong]") {
  Env env;
  auto g = env.make();
  const auto req = env.request();
  auto token = g->issue(req);
  REQUIRE(token.ok());

  // The key is certgate's own token, returned once, and only its digest is for the ledger.
  CHECK(builtin::wellFormed(token->secret));
  CHECK(token->secret_digest == builtin::digest(token->secret));
  CHECK_FALSE(token->adopted);
  CHECK(token->alias == req.alias);
  REQUIRE(token->expires_at.has_value());
  CHECK(*token->expires_at == req.expires_at);

  // Kong's state: one consumer per person, one credential, the group.
  const auto consumers = env.fake.consumers();
  REQUIRE(consumers.size() == 1);
  CHECK(consumers[0].username == "certgate-E1001");
  CHECK(consumers[0].custom_id == "E1001");
  CHECK(consumers[0].tags == std::vector<std::string>{"certgate"});
  const auto creds = env.fake.credentials("certgate-E1001");
  REQUIRE(creds.size() == 1);
  CHECK(creds[0].id == token->token_id);
  CHECK(creds[0].key == token->secret);
  CHECK(creds[0].expires_at == req.expires_at.time_since_epoch().count());
  const auto acls = env.fake.acls("certgate-E1001");
  REQUIRE(acls.size() == 1);
  CHECK(acls[0].group == "genai-basic");
  CHECK(acls[0].tags == std::vector<std::string>{"certgate"});

  // The requests, in order: alias lookup, consumer lookup and creation, group, credential.
  const auto reqs = env.api();
  std::vector<std::string> seen;
  for (const auto& r : reqs) seen.push_back(r.method + " " + r.path);
  const std::string cid = consumers[0].id;
  CHECK(seen == std::vector<std::string>{"GET /key-auths", "GET /consumers/certgate-E1001", "POST /consumers",
                                         "POST /consumers/" + cid + "/acls",
                                         "POST /consumers/" + cid + "/key-auth"});
  CHECK(reqs[0].param("tags") == "certgate,cg-alias.certgate~3AE1001~3AAI_SAFETY~3Agenai-basic~3Ac1~3Ar0");
  const Json post = body(reqs[4]);
  CHECK(post.at("key") == token->secret);
  CHECK(post.at("ttl") == 3 * 86400);
  const auto tags = tagsOf(post);
  CHECK(contains(tags, "certgate"));
  CHECK(contains(tags, "cg-alias.certgate~3AE1001~3AAI_SAFETY~3Agenai-basic~3Ac1~3Ar0"));
  CHECK(contains(tags, "cg-person.E1001"));
  CHECK(contains(tags, "cg-scope.genai-basic"));
  CHECK(contains(tags, "cg-group.genai-basic"));
  CHECK(reqs[4].header("Content-Type") == "application/json");

  // Kong refuses the key by itself once access ends.
  CHECK(env.fake.proxy(token->secret).status == 200);
  env.time.now = req.expires_at.time_since_epoch().count() + 1;
  CHECK(env.fake.proxy(token->secret).status == 401);
  CHECK(env.fake.credentials().empty());
}

TEST_CASE("kong: a mapping lifetime shorter than the access caps the ttl", "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto req = env.request();
  req.scope.lifetime = std::chrono::hours(24);
  auto token = g->issue(req);
  REQUIRE(token.ok());
  CHECK(body(env.api("POST", ".*/key-auth").at(0)).at("ttl") == 86400);
  CHECK(*token->expires_at == core::Instant{std::chrono::seconds(kStart + 86400)});
}

TEST_CASE("kong: an end of access that has passed issues nothing", "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto req = env.request();
  req.expires_at = core::Instant{std::chrono::seconds(kStart - 60)};
  auto token = g->issue(req);
  REQUIRE_FALSE(token.ok());
  CHECK(token.error().kind == ErrorKind::Invalid);
  CHECK(token.error().message.find("is not in the future") != std::string::npos);
  CHECK(env.fake.requestCount() == 0);
}

TEST_CASE("kong: with acl_from: models the group is the mapping's single model", "[connector][kong]") {
  Env env;
  auto g = env.make(env.options({{"acl_from", scalar("models")}}));
  auto req = env.request();
  req.scope.models = {"gpt-route-group"};
  REQUIRE(g->issue(req).ok());
  REQUIRE(env.fake.acls("certgate-E1001").size() == 1);
  CHECK(env.fake.acls("certgate-E1001")[0].group == "gpt-route-group");

  req.alias += "-two";
  req.scope.models = {"a", "b"};
  auto refused = g->issue(req);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Invalid);
  CHECK(refused.error().message.find("lists 2 models") != std::string::npos);
}

TEST_CASE("kong: re-issuing an alias adopts the credential: one key, no secret", "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto first = g->issue(env.request());
  REQUIRE(first.ok());

  env.fake.clearRequests();
  auto again = g->issue(env.request());
  REQUIRE(again.ok());
  CHECK(again->adopted);
  CHECK(again->secret.empty());
  CHECK(again->token_id == first->token_id);
  CHECK(again->secret_digest == first->secret_digest);
  CHECK(again->expires_at == first->expires_at);
  CHECK(env.fake.credentials().size() == 1);
  CHECK(env.api("POST", ".*/key-auth").empty());
}

TEST_CASE("kong: a connection broken after Kong stored the key: the retried POST answers 409 and "
          "the same key is returned",
          "[connector][kong]") {
  Env env;
  auto g = env.make();
  env.fake.dropCreateResponses(1);
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  CHECK_FALSE(token->adopted);
  const auto creds = env.fake.credentials();
  REQUIRE(creds.size() == 1);
  CHECK(token->secret == creds[0].key);
  CHECK(token->token_id == creds[0].id);

  const auto posts = env.api("POST", ".*/key-auth");
  REQUIRE(posts.size() == 2);
  CHECK(posts[0].dropped);
  CHECK(posts[1].status == 409);
  CHECK(body(posts[0]).at("key") == body(posts[1]).at("key"));
  REQUIRE(env.time.sleeps.size() == 1);  // one backoff before the repeat
}

TEST_CASE("kong: a crash after Kong stored the key, then re-issue: adopted, never two",
          "[connector][kong]") {
  Env env;
  {
    auto g = env.make();
    env.fake.dropCreateResponses(1);
    env.fake.failNext("POST", "/consumers/[^/]+/key-auth", 3, 503);
    auto lost = g->issue(env.request());
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.error().kind == ErrorKind::Transient);
    REQUIRE(env.fake.credentials().size() == 1);
  }
  // A new process: nothing in memory.
  auto g = env.make();
  auto again = g->issue(env.request());
  REQUIRE(again.ok());
  CHECK(again->adopted);
  CHECK(again->secret.empty());
  const auto creds = env.fake.credentials();
  REQUIRE(creds.size() == 1);
  CHECK(again->token_id == creds[0].id);
  CHECK(again->secret_digest == builtin::digest(creds[0].key));
}

TEST_CASE("kong: an existing consumer is used as it is, never overwritten", "[connector][kong]") {
  Env env;
  fake::FakeConsumer c;
  c.username = "certgate-E1001";
  c.custom_id = "legacy-1001";
  c.tags = {"team-ai"};
  const std::string id = env.fake.addConsumer(c);
  auto g = env.make();
  REQUIRE(g->issue(env.request()).ok());
  const auto consumers = env.fake.consumers();
  REQUIRE(consumers.size() == 1);
  CHECK(consumers[0].custom_id == "legacy-1001");
  CHECK(consumers[0].tags == std::vector<std::string>{"team-ai"});
  CHECK(env.api("POST", "/consumers").empty());
  CHECK(env.api("PUT").empty());
  CHECK(env.fake.credentials("certgate-E1001").size() == 1);
  CHECK(env.fake.credentials()[0].consumer_id == id);
}

TEST_CASE("kong: a custom_id held by another consumer is a Conflict with a hint", "[connector][kong]") {
  Env env;
  fake::FakeConsumer c;
  c.username = "alice";
  c.custom_id = "E1001";
  env.fake.addConsumer(c);
  auto g = env.make();
  auto token = g->issue(env.request());
  REQUIRE_FALSE(token.ok());
  CHECK(token.error().kind == ErrorKind::Conflict);
  CHECK(token.error().message.find("HTTP 409 unique constraint violation (code 5)") != std::string::npos);
  CHECK(token.error().message.find("custom_id: E1001") != std::string::npos);
  CHECK(token.error().hint.find("consumer_prefix") != std::string::npos);
  CHECK(env.fake.credentials().empty());
}

TEST_CASE("kong: a consumer deleted behind certgate's back is created again", "[connector][kong]") {
  Env env;
  auto g = env.make();
  REQUIRE(g->issue(env.request()).ok());
  env.fake.removeConsumer("certgate-E1001");
  auto token = g->issue(env.request("E1001", 1));
  REQUIRE(token.ok());
  CHECK_FALSE(token->adopted);
  CHECK(env.fake.credentials("certgate-E1001").size() == 1);
  CHECK(env.fake.acls("certgate-E1001").size() == 1);
}

// ---- revoke ------------------------------------------------------------------------------------

TEST_CASE("kong: revoke deletes the credential (204) and revoking again is a no-op (404)",
          "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  env.fake.clearRequests();

  auto first = g->revoke(token->token_id);
  REQUIRE(first.ok());
  CHECK_FALSE(first->no_op);
  CHECK(env.fake.credentials().empty());
  const auto deletes = env.api("DELETE", ".*/key-auth/.*");
  REQUIRE(deletes.size() == 1);
  CHECK(deletes[0].status == 204);
  CHECK(deletes[0].path == "/consumers/" + env.fake.consumers()[0].id + "/key-auth/" + token->token_id);

  env.fake.clearRequests();
  auto second = g->revoke(token->token_id);
  REQUIRE(second.ok());
  CHECK(second->no_op);
  CHECK(env.api("DELETE").empty());
  REQUIRE(env.api().size() == 1);
  CHECK(env.api()[0].path == "/key-auths/" + token->token_id + "/consumer");
  CHECK(env.api()[0].status == 404);

  auto unknown = g->revoke("4b000000-0000-4000-8000-00000000ffff");
  REQUIRE(unknown.ok());
  CHECK(unknown->no_op);
}

TEST_CASE("kong: a key certgate did not issue is never deleted", "[connector][kong]") {
  Env env;
  env.fake.addConsumer({"", "partner-app", "", {}});
  const std::string id = env.fake.addCredential("partner-app", "partner-key", {"partner"});
  auto g = env.make();
  auto refused = g->revoke(id);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Permanent);
  CHECK(refused.error().message.find("not tagged certgate") != std::string::npos);
  CHECK(env.fake.credentials("partner-app").size() == 1);
  CHECK(env.api("DELETE").empty());
}

TEST_CASE("kong: the ACL group goes only with the consumer's last certgate credential for it",
          "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto r0 = g->issue(env.request("E1001", 0));
  auto r1 = g->issue(env.request("E1001", 1));
  auto other = g->issue(env.request("E1001", 0, "genai-pro"));
  REQUIRE(r0.ok());
  REQUIRE(r1.ok());
  REQUIRE(other.ok());
  auto groups = [&] {
    std::vector<std::string> out;
    for (const auto& a : env.fake.acls("certgate-E1001")) out.push_back(a.group);
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(groups() == std::vector<std::string>{"genai-basic", "genai-pro"});

  REQUIRE(g->revoke(r0->token_id).ok());
  CHECK(groups() == std::vector<std::string>{"genai-basic", "genai-pro"});  // r1 still needs it

  REQUIRE(g->revoke(r1->token_id).ok());
  CHECK(groups() == std::vector<std::string>{"genai-pro"});
  CHECK(env.api("DELETE", ".*/acls/.*").size() == 1);

  REQUIRE(g->revoke(other->token_id).ok());
  CHECK(groups().empty());
}

TEST_CASE("kong: a group certgate did not grant stays when certgate's key goes", "[connector][kong]") {
  Env env;
  fake::FakeConsumer c;
  c.username = "certgate-E1001";
  c.custom_id = "E1001";
  env.fake.addConsumer(c);
  env.fake.addAcl("certgate-E1001", "genai-basic");  // granted by an administrator, untagged
  auto g = env.make();
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  CHECK(env.api("POST", ".*/acls").at(0).status == 409);
  REQUIRE(g->revoke(token->token_id).ok());
  REQUIRE(env.fake.acls("certgate-E1001").size() == 1);
  CHECK(env.api("DELETE", ".*/acls/.*").empty());
}

// ---- find and observe --------------------------------------------------------------------------

TEST_CASE("kong: findByAlias filters /key-auths by tags", "[connector][kong]") {
  Env env;
  auto g = env.make();
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  env.fake.clearRequests();
  auto found = g->findByAlias(env.request().alias);
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->token_id == token->token_id);
  CHECK((*found)->alias == env.request().alias);
  CHECK((*found)->person_key == "E1001");
  CHECK((*found)->scope == "genai-basic");
  CHECK((*found)->expires_at == token->expires_at);
  CHECK((*found)->active);
  REQUIRE(env.api().size() == 1);
  CHECK(env.api()[0].path == "/key-auths");

  auto missing = g->findByAlias("certgate:E9999:AI_SAFETY:genai-basic:c1:r0");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("kong: observe pages through every certgate credential and nothing else",
          "[connector][kong]") {
  Env env;
  auto g = env.make(env.options({{"page_size", scalar("2")}}));
  std::set<std::string> issued;
  for (int i = 0; i < 5; ++i) {
    auto t = g->issue(env.request("E10" + std::to_string(i)));
    REQUIRE(t.ok());
    issued.insert(t->token_id);
  }
  // Someone else's key on a certgate consumer, and a certgate-tagged key without an alias.
  env.fake.addCredential("certgate-E100", "", {"partner"});
  env.fake.addCredential("certgate-E101", "", {"certgate"});
  env.fake.clearRequests();

  std::vector<ports::ObservedToken> seen;
  REQUIRE(g->observe([&](ports::ObservedToken&& t) { seen.push_back(std::move(t)); }).ok());
  std::set<std::string> ids;
  for (const auto& t : seen) {
    ids.insert(t.token_id);
    CHECK(t.alias.rfind("certgate:E10", 0) == 0);
    CHECK(t.person_key.rfind("E10", 0) == 0);
    CHECK(t.scope == "genai-basic");
    CHECK(t.expires_at.has_value());
  }
  CHECK(ids == issued);

  const auto pages = env.api("GET", "/key-auths");
  REQUIRE(pages.size() == 3);  // 6 certgate-tagged credentials, 2 per page
  CHECK(pages[0].param("offset").empty());
  for (const auto& p : pages) {
    CHECK(p.param("size") == "2");
    CHECK(p.param("tags") == "certgate");
  }
  CHECK_FALSE(pages[1].param("offset").empty());
  CHECK_FALSE(pages[2].param("offset").empty());
}

TEST_CASE("kong: a failing page fails observe and hands out nothing", "[connector][kong]") {
  Env env;
  auto g = env.make(env.options({{"page_size", scalar("1")}}));
  REQUIRE(g->issue(env.request("E1")).ok());
  REQUIRE(g->issue(env.request("E2")).ok());
  env.fake.failNext("GET", "/key-auths", 4, 500);
  env.fake.clearRequests();
  int seen = 0;
  // The first page answers 500 four times: the connector gives up after its attempts.
  auto st = g->observe([&](ports::ObservedToken&&) { ++seen; });
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().kind == ErrorKind::Transient);
  CHECK(seen == 0);
  CHECK(env.api("GET", "/key-auths").size() == 4);
}

// ---- verification ------------------------------------------------------------------------------

TEST_CASE("kong: verifyRevoked is Pending within the cache window and Enforced after it, as the "
          "proxy shows",
          "[connector][kong]") {
  Env env;  // the fake's nodes poll every 5 s; the connector waits 10 s by default
  auto g = env.make();
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  CHECK(env.fake.proxy(token->secret).status == 200);  // the key is in use and cached

  auto live = g->verifyRevoked(token->token_id);
  REQUIRE(live.ok());
  CHECK(*live == ports::Enforcement::NotEnforced);

  REQUIRE(g->revoke(token->token_id).ok());
  CHECK(env.fake.proxy(token->secret).status == 200);  // still accepted from the node's cache
  CHECK(*g->verifyRevoked(token->token_id) == ports::Enforcement::Pending);

  env.time.now += 6;
  CHECK(env.fake.proxy(token->secret).status == 401);  // the node has polled
  CHECK(*g->verifyRevoked(token->token_id) == ports::Enforcement::Pending);

  env.time.now += 4;
  CHECK(*g->verifyRevoked(token->token_id) == ports::Enforcement::Enforced);
}

TEST_CASE("kong: a revocation this instance did not see counts from when it first saw the key gone",
          "[connector][kong]") {
  Env env;
  auto token = env.make()->issue(env.request());
  REQUIRE(token.ok());
  auto other = env.make(env.options({{"cache_window", scalar("30s")}}));
  CHECK(other->capabilities().cache_window == std::chrono::seconds(30));
  env.fake.removeConsumer("certgate-E1001");
  CHECK(*other->verifyRevoked(token->token_id) == ports::Enforcement::Pending);
  env.time.now += 29;
  CHECK(*other->verifyRevoked(token->token_id) == ports::Enforcement::Pending);
  env.time.now += 1;
  CHECK(*other->verifyRevoked(token->token_id) == ports::Enforcement::Enforced);

  auto immediate = env.make(env.options({{"cache_window", scalar("0s")}}));
  CHECK(*immediate->verifyRevoked(token->token_id) == ports::Enforcement::Enforced);
}

// ---- errors ------------------------------------------------------------------------------------

TEST_CASE("kong: Kong's error bodies are surfaced and classified", "[connector][kong]") {
  struct Case {
    const char* reason;
    int status;
    std::string body;
    ErrorKind kind;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"401 is Auth", 401, R"({"message":"Invalid credentials. Token or User credentials required"})",
       ErrorKind::Auth, "HTTP 401: Invalid credentials"},
      {"403 is Auth", 403, R"({"message":"You do not have permissions to create this resource"})",
       ErrorKind::Auth, "HTTP 403: You do not have permissions"},
      {"400 is Invalid, with the fields", 400,
       R"j({"code":2,"name":"schema violation","message":"schema violation (group: required field missing)","fields":{"group":"required field missing"}})j",
       ErrorKind::Invalid, "HTTP 400 schema violation (code 2): schema violation (group: required field missing) [fields: group: required field missing]"},
      {"404 is NotFound", 404, R"({"message":"Not found"})", ErrorKind::NotFound, "HTTP 404: Not found"},
      {"429 is RateLimited after the waits", 429, R"({"message":"API rate limit exceeded"})",
       ErrorKind::RateLimited, "HTTP 429"},
      {"5xx is Transient after the attempts", 502, R"({"message":"An invalid response was received from the upstream server"})",
       ErrorKind::Transient, "HTTP 502"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    Env env;
    auto g = env.make();
    env.fake.failNext("POST", "/consumers/[^/]+/acls", 10, c.status, -1, c.body);
    auto token = g->issue(env.request());
    REQUIRE_FALSE(token.ok());
    CHECK(token.error().kind == c.kind);
    CHECK(token.error().message.find("POST /consumers/{id}/acls: " + c.text) != std::string::npos);
    CHECK(token.error().where == "gateway 'kong-prod'");
    CHECK(env.fake.credentials().empty());  // no key before its group
  }
}

TEST_CASE("kong: 429 waits Retry-After and 5xx backs off, through the injected sleep",
          "[connector][kong]") {
  Env env;
  auto g = env.make();
  env.fake.failNext("GET", "/key-auths", 1, 429, 7);
  env.fake.failNext("GET", "/consumers/.*", 2, 503);
  auto token = g->issue(env.request());
  REQUIRE(token.ok());
  // 7 s for the 429, then full-jitter backoff (random 0.5) of 500 ms and 1000 ms caps.
  CHECK(env.time.sleeps == std::vector<http::Millis>{http::Millis(7000), http::Millis(250), http::Millis(500)});
  CHECK(g->requestCount() == env.fake.requestCount());
}

TEST_CASE("kong: the key never appears in an error", "[connector][kong]") {
  Env env;
  auto g = env.make();
  // Kong's 409 on a key quotes the key in its message and fields.
  env.fake.failNext("POST", "/consumers/[^/]+/key-auth", 1, 409);
  auto refused = g->issue(env.request());
  REQUIRE_FALSE(refused.ok());
  const auto posts = env.api("POST", ".*/key-auth");
  REQUIRE(posts.size() == 1);
  const std::string key = body(posts[0]).at("key");
  REQUIRE(builtin::wellFormed(key));
  CHECK(posts[0].body.find(key) != std::string::npos);  // the fake did see it
  const std::string described = refused.error().describe();
  CHECK(refused.error().kind == ErrorKind::Conflict);
  CHECK(described.find(key) == std::string::npos);
  CHECK(described.find("cgt_") == std::string::npos);
  CHECK(described.find("UNIQUE violation detected on '{key=\"[redacted]\"}'") != std::string::npos);
  CHECK(described.find("[fields: key: [redacted]]") != std::string::npos);
  CHECK(env.fake.credentials().empty());

  // A transport failure while the key is in flight.
  env.fake.clearRequests();
  env.fake.dropCreateResponses(1);
  env.fake.failNext("POST", "/consumers/[^/]+/key-auth", 3, 500);
  auto lost = g->issue(env.request("E2002"));
  REQUIRE_FALSE(lost.ok());
  const std::string key2 = body(env.api("POST", ".*/key-auth").at(0)).at("key");
  CHECK(lost.error().describe().find(key2) == std::string::npos);
  // Keys are not piled into the shared redactor one by one: its cgt_ pattern masks them all.
  CHECK(env.redactor->redact(key2) == "cgt_[redacted]");
  CHECK(env.redactor->redact("cgt_short") == "cgt_short");
}
