// The rest gateway connector against the loopback hosted token API fake (tests/fakes/token_api),
// configured for it only through options, as an operator would for a `/v1/tokens` service.
#include "connectors/gateway/rest/rest_gateway.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>

#include "connectors/gateway/builtin/token_format.hpp"
#include "fakes/token_api/token_api_fake.hpp"

using certgate::core::ErrorKind;
using certgate::core::Instant;
using certgate::core::Seconds;
namespace http = certgate::connectors::http;
namespace rest = certgate::connectors::rest;
namespace builtin = certgate::connectors::builtin;
namespace ports = certgate::ports;
namespace fake = certgate::testing::token_api;
using Json = nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'800'000'000;
constexpr const char* kAdminToken = "adm_fake_token_api_0001";
constexpr const char* kTokenFile = "/secrets/token-api";

Instant at(std::int64_t unix_s) {
  return Instant{Seconds{unix_s}};
}

// One virtual clock shared by the connector and the fake; sleeping advances it.
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
  o.where = "certgate.yaml:30:5";
  return o;
}

ports::OptionValue secretRef(std::string path) {
  ports::OptionValue o;
  o.shape = ports::OptionValue::Shape::Map;
  o.map = {{"file", std::move(path)}};
  o.where = "certgate.yaml:31:5";
  return o;
}

using Extra = std::vector<std::pair<std::string, ports::OptionValue>>;

constexpr const char* kIssueBody = R"({
  "gateway_id": "gw_123",
  "name": "{{alias}}",
  "scopes": "{{models}}",
  "expires_at": "{{expires_at}}",
  "metadata": {"person": "{{person}}", "track": "{{track}}", "scope": "{{scope}}",
               "cycle": "{{metadata.cycle}}", "note": "issued by certgate for {{person}}"}
})";

struct Env {
  VirtualTime time;
  fake::TokenApiFake fake;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  std::map<std::string, std::string> secret_files = {
      {kTokenFile, std::string(kAdminToken) + "\n"},
      {"/secrets/wrong", "adm_wrong_token_9876\n"},
      {"/secrets/password", "hunter2-basic\n"}};

  explicit Env(fake::TokenApiFakeOptions o = {}) : fake(withDefaults(std::move(o))) { fake.start(); }

  fake::TokenApiFakeOptions withDefaults(fake::TokenApiFakeOptions o) {
    o.clock = [this] { return time.now.load(); };
    o.admin_token = kAdminToken;
    return o;
  }

  ports::SecretReader secrets() {
    return [this](const ports::OptionValue& ref) -> certgate::core::Result<std::string> {
      const auto it = secret_files.find(ref.map.empty() ? "" : ref.map.front().second);
      if (it == secret_files.end())
        return certgate::core::makeError(ErrorKind::NotFound, "no such secret file");
      return it->second;
    };
  }

  ports::Options options(Extra extra = {}) const {
    ports::Options o;
    o.where = "certgate.yaml:29:3";
    o.values = {{"url", scalar(fake.url())},
                {"token", secretRef(kTokenFile)},
                {"issue_path", scalar("/v1/tokens")},
                {"issue_body", scalar(kIssueBody)},
                {"id_pointer", scalar("/id")},
                {"secret_pointer", scalar("/token")},
                {"expires_pointer", scalar("/expires_at")},
                {"revoke_path", scalar("/v1/tokens/{{token_id}}")},
                {"list_path", scalar("/v1/tokens?gateway_id=gw_123&limit=2")},
                {"alias_query", scalar("name={{alias}}")},
                {"items_pointer", scalar("/items")},
                {"item_alias_pointer", scalar("/name")},
                {"item_active_pointer", scalar("/active")},
                {"item_person_pointer", scalar("/metadata/person")},
                {"item_scope_pointer", scalar("/metadata/scope")},
                {"next_pointer", scalar("/next_cursor")},
                {"cursor_param", scalar("cursor")},
                {"verify_path", scalar("/v1/tokens/{{token_id}}")}};
    for (auto& kv : extra) {
      bool replaced = false;
      for (auto& [k, v] : o.values)
        if (k == kv.first) {
          v = kv.second;
          replaced = true;
        }
      if (!replaced) o.values.push_back(std::move(kv));
    }
    return o;
  }

  static ports::Options without(ports::Options o, const std::string& key) {
    std::erase_if(o.values, [&](const auto& kv) { return kv.first == key; });
    return o;
  }

  certgate::core::Result<std::unique_ptr<ports::Gateway>> tryMake(const ports::Options& options) {
    return rest::makeGateway("tokens", options, "/etc/certgate", secrets(), redactor,
                             time.options());
  }

  std::unique_ptr<ports::Gateway> make(Extra extra = {}) {
    auto g = tryMake(options(std::move(extra)));
    if (!g) FAIL(g.error().describe());
    return std::move(*g);
  }

  std::string seed(const std::string& name, bool disabled = false,
                   const std::string& person = "E9") {
    fake::FakeToken t;
    t.name = name;
    t.gateway_id = "gw_123";
    t.expires_at = kStart + 86400;
    t.disabled = disabled;
    t.metadata = {{"person", person}, {"scope", "genai-basic"}};
    return fake.addToken(std::move(t));
  }
};

ports::IssueRequest request(const std::string& person = "E1001", int rotation = 0) {
  ports::IssueRequest r;
  r.person_key = person;
  r.user_id = "";
  r.track = "AI_SAFETY";
  r.scope.scope = "genai-basic";
  r.scope.models = {"gpt-4o-mini", "claude-3-haiku"};
  r.scope.max_budget = 25.5;
  r.alias = "certgate:" + person + ":AI_SAFETY:genai-basic:c1:r" + std::to_string(rotation);
  r.expires_at = at(kStart) + certgate::core::days(30);
  r.metadata = {{"cycle", "1"}};
  return r;
}

std::string describe(const certgate::core::Error& e) {
  return e.message + " | " + e.hint + " | " + e.where;
}

}  // namespace

// ---- configuration -----------------------------------------------------------------------------

TEST_CASE("rest options: a valid configuration makes a gateway and sends nothing",
          "[connector][rest]") {
  Env env;
  auto g = env.tryMake(env.options());
  REQUIRE(g);
  CHECK(std::string((*g)->kind()) == "rest");
  CHECK((*g)->name() == "tokens");
  CHECK(env.fake.requests().empty());
  CHECK(env.redactor->redact(std::string("x ") + kAdminToken + " y") == "x [redacted] y");
}

TEST_CASE("rest options: errors name the key and say what to write", "[connector][rest]") {
  Env env;
  SECTION("id_pointer is required") {
    auto g = env.tryMake(Env::without(env.options(), "id_pointer"));
    REQUIRE_FALSE(g);
    CHECK(g.error().kind == ErrorKind::Invalid);
    CHECK(g.error().message == "gateway 'tokens': id_pointer: is required");
    CHECK(g.error().hint.find("JSON pointer") != std::string::npos);
  }
  SECTION("a pointer must be a JSON pointer") {
    auto g = env.tryMake(env.options({{"secret_pointer", scalar("token")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': secret_pointer: 'token' is not a JSON pointer");
    CHECK(g.error().where == "certgate.yaml:30:5");
  }
  SECTION("issue_body must be JSON") {
    auto g = env.tryMake(env.options({{"issue_body", scalar(R"({"name": {{alias}}})")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message.rfind("gateway 'tokens': issue_body: is not valid JSON (", 0) == 0);
    CHECK(g.error().hint.find("placeholders in strings") != std::string::npos);
  }
  SECTION("issue_body may only use the issue placeholders") {
    auto g = env.tryMake(env.options({{"issue_body", scalar(R"({"id": "{{token_id}}"})")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': issue_body: unknown placeholder {{token_id}}");
    CHECK(g.error().hint.find("{{expires_unix}}") != std::string::npos);
  }
  SECTION("revoke_path must name the token") {
    auto g = env.tryMake(env.options({{"revoke_path", scalar("/v1/tokens/revoke")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'tokens': revoke_path: names no token: use {{token_id}} here or in revoke_body");
  }
  SECTION("a token id in revoke_body is enough") {
    CHECK(env.tryMake(env.options({{"revoke_method", scalar("POST")},
                                   {"revoke_path", scalar("/v1/tokens/revoke")},
                                   {"revoke_body", scalar(R"({"id": "{{token_id}}"})")}})));
  }
  SECTION("token and Basic credentials exclude each other") {
    auto g = env.tryMake(env.options({{"username", scalar("certgate")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': username: cannot be combined with token");
  }
  SECTION("a credential is required") {
    auto g = env.tryMake(Env::without(env.options(), "token"));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': token: is required (or username and password)");
  }
  SECTION("the token is a secret reference, and the error does not quote it") {
    auto g = env.tryMake(env.options({{"token", scalar(kAdminToken)}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'tokens': token: must be a secret reference, not an inline value");
    CHECK(describe(g.error()).find(kAdminToken) == std::string::npos);
  }
  SECTION("an unknown key lists the valid ones") {
    auto g = env.tryMake(env.options({{"items_path", scalar("/items")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': items_path: unknown key");
    CHECK(g.error().hint.rfind("valid keys: url, token, auth_header", 0) == 0);
  }
  SECTION("cursor_param needs next_pointer") {
    auto g = env.tryMake(Env::without(env.options(), "next_pointer"));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': cursor_param: needs next_pointer");
  }
  SECTION("active and revoked flags exclude each other") {
    auto g = env.tryMake(env.options({{"item_revoked_pointer", scalar("/revoked")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'tokens': item_revoked_pointer: cannot be combined with item_active_pointer");
  }
  SECTION("plain http is refused towards anything but the loopback") {
    auto g = env.tryMake(env.options({{"url", scalar("http://tokens.example.com")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'tokens': url: must use https");
  }
}

TEST_CASE("rest capabilities: verifiable only with verify_path — cache window from the option",
          "[connector][rest]") {
  Env env;
  auto g = env.make({{"cache_window", scalar("30s")}});
  CHECK(g->capabilities().can_verify);
  CHECK(g->capabilities().cache_window == Seconds{30});
  CHECK_FALSE(g->capabilities().supplies_secret);
  auto unverifiable = env.tryMake(Env::without(env.options(), "verify_path"));
  REQUIRE(unverifiable);
  CHECK_FALSE((*unverifiable)->capabilities().can_verify);
  CHECK((*unverifiable)->capabilities().cache_window == Seconds{0});
  auto v = (*unverifiable)->verifyRevoked("tok_1");
  REQUIRE(v);
  CHECK(*v == ports::Enforcement::Unknown);
  CHECK(env.fake.requests().empty());
}

// ---- connect and auth --------------------------------------------------------------------------

TEST_CASE("rest connect reads the listing with the bearer token", "[connector][rest]") {
  Env env;
  REQUIRE(env.make()->connect());
  const auto reqs = env.fake.requests("GET", "/v1/tokens");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].header("Authorization") == std::string("Bearer ") + kAdminToken);
}

TEST_CASE("rest: a refused credential is an Auth error quoting the API, never the credential",
          "[connector][rest]") {
  Env env;
  auto g = env.make({{"token", secretRef("/secrets/wrong")}});
  auto st = g->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Auth);
  CHECK(st.error().message.find("HTTP 401: invalid or missing API token (code unauthorized)") !=
        std::string::npos);
  CHECK(st.error().hint.find("check token") != std::string::npos);
  CHECK(describe(st.error()).find("adm_wrong_token_9876") == std::string::npos);
  // Auth is not retried.
  CHECK(env.fake.requests().size() == 1);
}

TEST_CASE("rest: a custom header and scheme, or HTTP Basic, carry the credential",
          "[connector][rest]") {
  Env env;
  SECTION("auth_header and auth_scheme none") {
    auto g = env.make({{"auth_header", scalar("X-Api-Key")}, {"auth_scheme", scalar("none")}});
    (void)g->connect();
    const auto reqs = env.fake.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].header("X-Api-Key") == kAdminToken);
    CHECK(reqs[0].header("Authorization").empty());
  }
  SECTION("username and password") {
    ports::Options o = Env::without(env.options(), "token");
    o.values.emplace_back("username", scalar("certgate"));
    o.values.emplace_back("password", secretRef("/secrets/password"));
    auto g = env.tryMake(o);
    REQUIRE(g);
    auto st = (*g)->connect();
    REQUIRE_FALSE(st);  // the fake takes bearer tokens only
    const auto reqs = env.fake.requests();
    REQUIRE(reqs.size() == 1);
    // base64("certgate:hunter2-basic")
    CHECK(reqs[0].header("Authorization") == "Basic Y2VydGdhdGU6aHVudGVyMi1iYXNpYw==");
    CHECK(env.redactor->redact("hunter2-basic") == "[redacted]");
  }
}

// ---- issue -------------------------------------------------------------------------------------

TEST_CASE("rest issue: looks the alias up, then posts the rendered body once with an idempotency key",
          "[connector][rest]") {
  Env env;
  env.seed("certgate:E1:OTHER:genai-basic:c1:r0");
  auto g = env.make();
  const auto r = request();
  auto t = g->issue(r);
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  CHECK(t->secret.rfind("gk_", 0) == 0);
  CHECK(t->secret_digest == builtin::digest(t->secret));
  CHECK(t->alias == r.alias);
  CHECK(t->expires_at == r.expires_at);
  REQUIRE(env.fake.token(t->token_id));
  CHECK(env.fake.token(t->token_id)->name == r.alias);

  const auto lookups = env.fake.requests("GET", "/v1/tokens");
  REQUIRE(lookups.size() == 1);
  CHECK(lookups[0].param("name") == r.alias);
  CHECK(lookups[0].param("gateway_id") == "gw_123");

  const auto posts = env.fake.requests("POST", "/v1/tokens");
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].header("Idempotency-Key") == r.alias);
  CHECK(posts[0].header("Content-Type") == "application/json");
  const Json body = Json::parse(posts[0].body);
  CHECK(body["gateway_id"] == "gw_123");
  CHECK(body["name"] == r.alias);
  CHECK(body["scopes"] == Json::array({"gpt-4o-mini", "claude-3-haiku"}));
  CHECK(body["expires_at"] == "2027-02-14T08:00:00Z");  // kStart + 30 days
  CHECK(body["metadata"]["person"] == "E1001");
  CHECK(body["metadata"]["cycle"] == "1");
  CHECK(body["metadata"]["note"] == "issued by certgate for E1001");

  // The secret is shown once, and masked wherever it would appear afterwards.
  CHECK(env.redactor->redact("x " + t->secret) == "x [redacted]");
}

TEST_CASE("rest issue: typed values and nulls in the body, and no idempotency key when off",
          "[connector][rest]") {
  Env env;
  auto g = env.make(
      {{"idempotency_header", scalar("false")},
       {"issue_body",
        scalar(R"({"gateway_id": "gw_123", "name": "{{alias}}", "extra": {"budget": "{{max_budget}}",
           "unix": "{{expires_unix}}", "ttl": "{{ttl_seconds}}", "user": "{{user_id}}",
           "missing": "{{metadata.absent}}", "period": "{{budget_duration}}"}})")}});
  auto t = g->issue(request());
  REQUIRE(t);
  const auto posts = env.fake.requests("POST", "/v1/tokens");
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].header("Idempotency-Key").empty());
  const Json extra = Json::parse(posts[0].body)["extra"];
  CHECK(extra["budget"] == 25.5);
  CHECK(extra["unix"] == kStart + 30 * 86400);
  CHECK(extra["ttl"] == 30 * 86400 - 2);
  CHECK(extra["user"].is_null());
  CHECK(extra["missing"].is_null());
  CHECK(extra["period"].is_null());
  // Without expires_at in the answer, the requested end is the token's expiry.
  CHECK(t->expires_at == request().expires_at);
}

TEST_CASE("rest issue: an active token under the alias is adopted without minting",
          "[connector][rest]") {
  Env env;
  const auto r = request();
  const std::string id = env.seed(r.alias);
  auto g = env.make();
  auto t = g->issue(r);
  REQUIRE(t);
  CHECK(t->adopted);
  CHECK(t->token_id == id);
  CHECK(t->secret.empty());
  CHECK(t->secret_digest.empty());
  CHECK(t->expires_at == at(kStart + 86400));
  CHECK(env.fake.requests("POST", "/v1/tokens").empty());
}

TEST_CASE("rest issue: an inactive token under the alias is a Conflict", "[connector][rest]") {
  Env env;
  const auto r = request();
  env.seed(r.alias, /*disabled=*/true);
  auto t = env.make()->issue(r);
  REQUIRE_FALSE(t);
  CHECK(t.error().kind == ErrorKind::Conflict);
  CHECK(t.error().message.find("revoked or expired") != std::string::npos);
  CHECK(env.fake.requests("POST", "/v1/tokens").empty());
}

TEST_CASE("rest issue: a lost answer is resolved by adopting the minted token, never minting twice",
          "[connector][rest]") {
  Env env;
  env.fake.dropResponses("POST", "/v1/tokens", 1, 1);
  const auto r = request();
  auto t = env.make()->issue(r);
  REQUIRE(t);
  CHECK(t->adopted);
  CHECK(t->secret.empty());
  REQUIRE(env.fake.tokens().size() == 1);
  CHECK(env.fake.tokens()[0].id == t->token_id);
  CHECK(env.fake.requests("POST", "/v1/tokens").size() == 1);
  CHECK(env.fake.requests("GET", "/v1/tokens").size() == 2);  // before and after the POST
}

TEST_CASE("rest issue: a 5xx that minted nothing is retried after a lookup", "[connector][rest]") {
  Env env;
  env.fake.failRequests("POST", "/v1/tokens", 1, 1, 503);
  auto t = env.make()->issue(request());
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  CHECK_FALSE(t->secret.empty());
  CHECK(env.fake.tokens().size() == 1);
  CHECK(env.fake.requests("POST", "/v1/tokens").size() == 2);
}

TEST_CASE("rest issue: a 429 waits for Retry-After and repeats the request", "[connector][rest]") {
  Env env;
  env.fake.failRequests("POST", "/v1/tokens", 1, 1, 429, 7);
  auto t = env.make()->issue(request());
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  REQUIRE(env.time.sleeps.size() == 1);
  CHECK(env.time.sleeps[0] == http::Millis(7000));
  CHECK(env.fake.requests("POST", "/v1/tokens").size() == 2);
  CHECK(env.fake.tokens().size() == 1);
}

TEST_CASE("rest issue: persistent 429 is RateLimited with the server's Retry-After",
          "[connector][rest]") {
  Env env;
  env.fake.failRequests("GET", "/v1/tokens", 1, 10, 429, 30);
  auto t = env.make()->issue(request());
  REQUIRE_FALSE(t);
  CHECK(t.error().kind == ErrorKind::RateLimited);
  CHECK(t.error().retry_after_s == 30);
  CHECK(env.fake.requests("POST", "/v1/tokens").empty());
}

TEST_CASE("rest issue: a 4xx shows the API's message and is not retried", "[connector][rest]") {
  Env env;
  auto g = env.make({{"issue_body", scalar(R"({"name": "{{alias}}"})")}});
  auto t = g->issue(request());
  REQUIRE_FALSE(t);
  CHECK(t.error().kind == ErrorKind::Invalid);
  CHECK(t.error().message.find("POST /v1/tokens (alias 'certgate:E1001:AI_SAFETY:genai-basic:c1:r0'): "
                               "HTTP 400: gateway_id is required (code invalid_request)") !=
        std::string::npos);
  CHECK(env.fake.requests("POST", "/v1/tokens").size() == 1);
}

TEST_CASE("rest issue: secrets never reach an error", "[connector][rest]") {
  Env env;
  const std::string canary = "gk_canary_5ecret_0000000000000000000000";
  auto g = env.make();
  SECTION("an answer without an id is not quoted, and the secret is masked from then on") {
    env.fake.failRequests("POST", "/v1/tokens", 1, 1, 201, -1,
                          Json{{"token", canary}, {"created", true}}.dump());
    auto t = g->issue(request());
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::Permanent);
    CHECK(t.error().message.find("no token id at id_pointer '/id'") != std::string::npos);
    CHECK(describe(t.error()).find(canary) == std::string::npos);
    CHECK(env.redactor->redact("leaked " + canary) == "leaked [redacted]");
  }
  SECTION("an error body echoing a secret and the credential is masked") {
    auto first = g->issue(request("E2"));
    REQUIRE(first);
    const std::string body =
        Json{{"error",
              {{"message", "token " + first->secret + " rejected for " + kAdminToken + " and " +
                               canary},
               {"code", "bad"}}},
             {"token", canary}}
            .dump();
    env.fake.failRequests("POST", "/v1/tokens", 2, 1, 422, -1, body);
    auto t = g->issue(request("E3"));
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::Invalid);
    const std::string all = describe(t.error());
    CHECK(all.find(first->secret) == std::string::npos);
    CHECK(all.find(kAdminToken) == std::string::npos);
    CHECK(all.find("rejected for [redacted]") != std::string::npos);
  }
  SECTION("an error body is masked at the secret member (wherever it is) and truncated") {
    auto custom = env.make({{"secret_pointer", scalar("/credential/plaintext")}});
    const std::string body = "{\"echo\": {\"plaintext\": \"" + canary + "\"}, \"trace\": \"" +
                             std::string(2000, 'x') + "\"}";
    env.fake.failRequests("POST", "/v1/tokens", 1, 1, 418, -1, body);
    auto t = custom->issue(request());
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::Permanent);
    CHECK(describe(t.error()).find(canary) == std::string::npos);
    CHECK(t.error().message.size() < 600);
  }
}

// ---- revoke ------------------------------------------------------------------------------------

TEST_CASE("rest revoke deletes the token — an unknown one is a no-op", "[connector][rest]") {
  Env env;
  const std::string id = env.seed("certgate:E1:T:s:c1:r0");
  auto g = env.make();
  auto out = g->revoke(id);
  REQUIRE(out);
  CHECK_FALSE(out->no_op);
  CHECK(env.fake.revoked(id));
  auto again = g->revoke(id);
  REQUIRE(again);
  CHECK(again->no_op);
  CHECK(env.fake.requests("DELETE", "/v1/tokens/" + id).size() == 2);
}

TEST_CASE("rest revoke: the token id is percent-encoded into the path", "[connector][rest]") {
  Env env;
  auto out = env.make()->revoke("tok/../x?y");
  REQUIRE(out);
  CHECK(out->no_op);
  const auto reqs = env.fake.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].target == "/v1/tokens/tok%2F..%2Fx%3Fy");
}

TEST_CASE("rest revoke retries a 5xx, and fails when it persists", "[connector][rest]") {
  Env env;
  const std::string id = env.seed("certgate:E1:T:s:c1:r0");
  SECTION("a passing 500") {
    env.fake.failRequests("DELETE", "/v1/tokens/*", 1, 1, 500);
    auto out = env.make()->revoke(id);
    REQUIRE(out);
    CHECK_FALSE(out->no_op);
    CHECK(env.fake.revoked(id));
  }
  SECTION("a lasting 500") {
    env.fake.failRequests("DELETE", "/v1/tokens/*", 1, 10, 500);
    auto out = env.make()->revoke(id);
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::Transient);
    CHECK(out.error().message.find("HTTP 500: injected fault") != std::string::npos);
  }
}

// ---- observe -----------------------------------------------------------------------------------

TEST_CASE("rest observe pages through the listing and keeps certgate's tokens",
          "[connector][rest]") {
  Env env;
  std::vector<std::string> ours;
  for (int i = 0; i < 4; ++i) ours.push_back(env.seed("certgate:E" + std::to_string(i) + ":T:s:c1:r0"));
  env.seed("ci-pipeline");
  env.seed("certgate:E9:T:s:c1:r0", /*disabled=*/true, "E9");
  auto g = env.make();
  std::vector<ports::ObservedToken> seen;
  REQUIRE(g->observe([&](ports::ObservedToken&& t) { seen.push_back(std::move(t)); }));
  REQUIRE(seen.size() == 5);
  for (int i = 0; i < 4; ++i) {
    CHECK(seen[static_cast<std::size_t>(i)].token_id == ours[static_cast<std::size_t>(i)]);
    CHECK(seen[static_cast<std::size_t>(i)].active);
  }
  CHECK(seen[0].person_key == "E9");
  CHECK(seen[0].scope == "genai-basic");
  CHECK(seen[0].expires_at == at(kStart + 86400));
  CHECK_FALSE(seen[4].active);
  const auto pages = env.fake.requests("GET", "/v1/tokens");
  REQUIRE(pages.size() == 3);  // 6 tokens, 2 a page
  CHECK(pages[0].param("cursor").empty());
  CHECK_FALSE(pages[1].param("cursor").empty());
  CHECK(pages[2].param("gateway_id") == "gw_123");
}

TEST_CASE("rest observe follows the Link header when no next_pointer is set", "[connector][rest]") {
  fake::TokenApiFakeOptions o;
  o.link_header = true;
  Env env(o);
  for (int i = 0; i < 5; ++i) env.seed("certgate:E" + std::to_string(i) + ":T:s:c1:r0");
  ports::Options opts = Env::without(Env::without(env.options(), "next_pointer"), "cursor_param");
  auto g = env.tryMake(opts);
  REQUIRE(g);
  std::size_t seen = 0;
  REQUIRE((*g)->observe([&](ports::ObservedToken&&) { ++seen; }));
  CHECK(seen == 5);
  const auto pages = env.fake.requests("GET", "/v1/tokens");
  REQUIRE(pages.size() == 3);
  CHECK(pages[2].param("gateway_id") == "gw_123");
  CHECK_FALSE(pages[2].param("cursor").empty());
}

TEST_CASE("rest observe refuses a next page on another origin", "[connector][rest]") {
  Env env;
  env.fake.failRequests(
      "GET", "/v1/tokens", 1, 1, 200, -1,
      Json{{"items", Json::array({{{"id", "tok_1"}, {"name", "certgate:E1:T:s:c1:r0"}}})},
           {"next", "https://elsewhere.example.com/v1/tokens?page=2"}}
          .dump());
  ports::Options opts = Env::without(env.options({{"next_pointer", scalar("/next")}}), "cursor_param");
  auto url_paged = env.tryMake(opts);
  REQUIRE(url_paged);
  std::size_t seen = 0;
  auto st = (*url_paged)->observe([&](ports::ObservedToken&&) { ++seen; });
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Permanent);
  CHECK(st.error().message.find("the next page is on another origin") != std::string::npos);
  CHECK(seen == 0);
  CHECK(env.fake.requests().size() == 1);
}

TEST_CASE("rest observe: a failing page fails the whole listing", "[connector][rest]") {
  Env env;
  for (int i = 0; i < 5; ++i) env.seed("certgate:E" + std::to_string(i) + ":T:s:c1:r0");
  env.fake.failRequests("GET", "/v1/tokens", 2, 10, 502);
  std::size_t seen = 0;
  auto st = env.make()->observe([&](ports::ObservedToken&&) { ++seen; });
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Transient);
  CHECK(st.error().message.find("(page 2): HTTP 502") != std::string::npos);
  CHECK(seen == 0);
}

TEST_CASE("rest observe: an answer without the array says to check items_pointer",
          "[connector][rest]") {
  Env env;
  auto st = env.make({{"items_pointer", scalar("/data")}})->observe([](ports::ObservedToken&&) {});
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Permanent);
  CHECK(st.error().message.find("no array of tokens at items_pointer '/data'") != std::string::npos);
}

TEST_CASE("rest lookups filter by alias themselves when the API ignores the filter",
          "[connector][rest]") {
  fake::TokenApiFakeOptions o;
  o.honour_name_filter = false;
  Env env(o);
  for (int i = 0; i < 4; ++i) env.seed("certgate:E" + std::to_string(i) + ":T:s:c1:r0");
  auto g = env.make();
  auto found = g->findByAlias("certgate:E3:T:s:c1:r0");
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->alias == "certgate:E3:T:s:c1:r0");
  auto none = g->findByAlias("certgate:E7:T:s:c1:r0");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

// ---- verify ------------------------------------------------------------------------------------

TEST_CASE("rest verifyRevoked reads the token: gone is enforced, active is not",
          "[connector][rest]") {
  Env env;
  const std::string live = env.seed("certgate:E1:T:s:c1:r0");
  const std::string disabled = env.seed("certgate:E2:T:s:c1:r0", true);
  const std::string revoked = env.seed("certgate:E3:T:s:c1:r0");
  SECTION("without a cache window") {
    auto g = env.make();
    REQUIRE(g->revoke(revoked));
    CHECK(*g->verifyRevoked(revoked) == ports::Enforcement::Enforced);
    CHECK(*g->verifyRevoked(disabled) == ports::Enforcement::Enforced);
    CHECK(*g->verifyRevoked(live) == ports::Enforcement::NotEnforced);
  }
  SECTION("inside the cache window a fresh revocation is pending") {
    auto g = env.make({{"cache_window", scalar("30s")}});
    REQUIRE(g->revoke(revoked));
    CHECK(*g->verifyRevoked(revoked) == ports::Enforcement::Pending);
    env.time.now += 31;
    CHECK(*g->verifyRevoked(revoked) == ports::Enforcement::Enforced);
  }
  SECTION("an error while verifying is an error, not a verdict") {
    auto g = env.make();
    env.fake.failRequests("GET", "/v1/tokens/*", 1, 10, 403);
    auto v = g->verifyRevoked(revoked);
    REQUIRE_FALSE(v);
    CHECK(v.error().kind == ErrorKind::Auth);
  }
}
