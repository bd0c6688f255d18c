// The litellm gateway connector against the loopback LiteLLM fake (tests/fakes/litellm), which
// follows ../shared/reference/gateway-alerts.md section 1 and the LiteLLM documents it cites.
#include "connectors/gateway/litellm/litellm_gateway.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "connectors/gateway/builtin/token_format.hpp"
#include "fakes/litellm/litellm_fake.hpp"

using certgate::core::ErrorKind;
using certgate::core::Instant;
using certgate::core::Seconds;
namespace http = certgate::connectors::http;
namespace litellm = certgate::connectors::litellm;
namespace builtin = certgate::connectors::builtin;
namespace ports = certgate::ports;
namespace fake = certgate::testing::litellm;
using Json = nlohmann::json;

namespace {

constexpr std::int64_t kStart = 1'800'000'000;
constexpr const char* kMasterKey = "sk-certgate-fake-master-0001";
constexpr const char* kMasterFile = "/secrets/litellm-master-key";

Instant at(std::int64_t unix_s) {
  return Instant{Seconds{unix_s}};
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
  o.where = "certgate.yaml:20:5";
  return o;
}

ports::OptionValue secretRef(std::string path) {
  ports::OptionValue o;
  o.shape = ports::OptionValue::Shape::Map;
  o.map = {{"file", std::move(path)}};
  o.where = "certgate.yaml:21:5";
  return o;
}

using Extra = std::vector<std::pair<std::string, ports::OptionValue>>;

struct Env {
  VirtualTime time;
  fake::LiteLlmFake fake;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  std::map<std::string, std::string> secret_files = {
      {kMasterFile, std::string(kMasterKey) + "\n"},
      {"/secrets/wrong-key", "sk-wrong-master-key-9876\n"},
      {"/secrets/not-a-key", "hunter2-not-a-litellm-key\n"}};

  explicit Env(fake::LiteLlmFakeOptions o = {}) : fake(withDefaults(std::move(o))) { fake.start(); }

  fake::LiteLlmFakeOptions withDefaults(fake::LiteLlmFakeOptions o) {
    o.clock = [this] { return time.now.load(); };
    o.master_key = kMasterKey;
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
    o.where = "certgate.yaml:19:3";
    o.values = {{"url", scalar(fake.url())}, {"master_key", secretRef(kMasterFile)}};
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

  certgate::core::Result<std::unique_ptr<ports::Gateway>> tryMake(const ports::Options& options) {
    return litellm::makeGateway("llm-proxy", options, "/etc/certgate", secrets(), redactor,
                                time.options());
  }

  std::unique_ptr<ports::Gateway> make(Extra extra = {}) {
    auto g = tryMake(options(std::move(extra)));
    if (!g) FAIL(g.error().describe());
    return std::move(*g);
  }

  // What a client of the proxy sees when it calls a model with `key`.
  int chat(const std::string& key) {
    http::Client client(time.options());
    http::Request req;
    req.method = http::Method::Post;
    req.url = fake.url() + "/chat/completions";
    req.headers.add("Authorization", "Bearer " + key);
    req.headers.add("Content-Type", "application/json");
    req.body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
    auto resp = client.send(req);
    REQUIRE(resp);
    return static_cast<int>(resp->status);
  }

  std::vector<fake::LoggedRequest> requests(const std::string& method,
                                            const std::string& path) const {
    return fake.requests(method, path);
  }
};

ports::IssueRequest request(const std::string& person = "E1001", int rotation = 0) {
  ports::IssueRequest r;
  r.person_key = person;
  r.user_id = "u-" + person;
  r.track = "AI_SAFETY";
  r.scope.scope = "genai-basic";
  r.scope.models = {"gpt-4o-mini", "claude-3-haiku"};
  r.scope.max_budget = 25.5;
  r.scope.budget_duration = "30d";
  r.alias = "certgate:" + person + ":AI_SAFETY:genai-basic:c1:r" + std::to_string(rotation);
  r.expires_at = at(kStart) + certgate::core::days(30);
  r.metadata = {{"cycle", "1"}};
  return r;
}

std::string describe(const certgate::core::Error& e) {
  return e.message + " | " + e.hint + " | " + e.where;
}

}  // namespace

// ---- configuration
// -------------------------------------------------------------------------------

TEST_CASE("litellm options: url and master_key are required and validated without network I/O",
          "[connector][litellm]") {
  Env env;
  SECTION("a valid configuration makes a gateway and sends nothing") {
    auto g = env.tryMake(env.options());
    REQUIRE(g);
    CHECK(std::string((*g)->kind()) == "litellm");
    CHECK((*g)->name() == "llm-proxy");
    CHECK(env.fake.requests().empty());
  }
  SECTION("an unknown key lists the valid ones") {
    auto g = env.tryMake(env.options({{"master_token", scalar("x")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().kind == ErrorKind::Invalid);
    CHECK(g.error().message == "gateway 'llm-proxy': master_token: unknown key");
    CHECK(g.error().hint ==
          "valid keys: url, master_key, revoke_mode, alias_prefix, cache_window, team_id, ca_file, "
          "timeout");
    CHECK(g.error().where == "certgate.yaml:20:5");
  }
  SECTION("url is required") {
    ports::Options o = env.options();
    o.values.erase(o.values.begin());
    auto g = env.tryMake(o);
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'llm-proxy': url: is required");
  }
  SECTION("plain http is refused towards anything but the loopback") {
    auto g = env.tryMake(env.options({{"url", scalar("http://llm.example.com")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'llm-proxy': url: must use https");
  }
  SECTION("a url with a query is refused") {
    auto g = env.tryMake(env.options({{"url", scalar("https://llm.example.com/?x=1")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'llm-proxy': url: must not have a query or fragment");
  }
  SECTION("master_key must be a secret reference") {
    auto g = env.tryMake(env.options({{"master_key", scalar(kMasterKey)}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'llm-proxy': master_key: must be a secret reference, not an inline value");
    CHECK(g.error().message.find(kMasterKey) == std::string::npos);
  }
  SECTION("master_key must look like a LiteLLM key, and the error does not quote it") {
    auto g = env.tryMake(env.options({{"master_key", secretRef("/secrets/not-a-key")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().kind == ErrorKind::Invalid);
    CHECK(g.error().message.find("must start with sk-") != std::string::npos);
    CHECK(describe(g.error()).find("hunter2") == std::string::npos);
  }
  SECTION("revoke_mode is delete or block") {
    auto g = env.tryMake(env.options({{"revoke_mode", scalar("disable")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'llm-proxy': revoke_mode: 'disable' is not one of delete, block");
  }
  SECTION("an empty alias_prefix would claim every key") {
    auto g = env.tryMake(env.options({{"alias_prefix", scalar("")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message == "gateway 'llm-proxy': alias_prefix: is empty");
  }
  SECTION("cache_window is a duration up to 24h") {
    auto g = env.tryMake(env.options({{"cache_window", scalar("2d")}}));
    REQUIRE_FALSE(g);
    CHECK(g.error().message ==
          "gateway 'llm-proxy': cache_window: '2d' is not a duration from 0s to 24h");
  }
  SECTION("the master key is registered with the redactor") {
    REQUIRE(env.tryMake(env.options()));
    CHECK(env.redactor->redact(std::string("x ") + kMasterKey + " y") == "x [redacted] y");
  }
}

TEST_CASE("litellm capabilities: cache window from the option (60 s by default), verifiable",
          "[connector][litellm]") {
  Env env;
  const auto caps = env.make()->capabilities();
  CHECK(caps.cache_window == Seconds{60});
  CHECK(caps.can_verify);
  CHECK_FALSE(caps.supplies_secret);
  CHECK(env.make({{"cache_window", scalar("5m")}})->capabilities().cache_window == Seconds{300});
  CHECK(env.make({{"cache_window", scalar("0s")}})->capabilities().cache_window == Seconds{0});
}

TEST_CASE("litellm connect lists one key with the master key as bearer", "[connector][litellm]") {
  Env env;
  auto g = env.make();
  REQUIRE(g->connect());
  const auto reqs = env.requests("GET", "/key/list");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].header("Authorization") == std::string("Bearer ") + kMasterKey);
  CHECK(reqs[0].param("size") == "1");
  CHECK(g->requestCount() == 1);
}

TEST_CASE("litellm: a refused master key is Auth, and no key appears in the error",
          "[connector][litellm]") {
  Env env;
  auto g = env.make({{"master_key", secretRef("/secrets/wrong-key")}});
  const auto st = g->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Auth);
  // LiteLLM's own message quotes an abbreviation of the key it was sent; certgate masks it.
  CHECK(st.error().message.find("Invalid proxy server token passed") != std::string::npos);
  CHECK(st.error().message.find("(type auth_error)") != std::string::npos);
  CHECK(st.error().message.find("9876") == std::string::npos);
  CHECK(st.error().message.find("sk-[redacted]") != std::string::npos);
  CHECK(st.error().hint.find("master_key") != std::string::npos);
  CHECK(describe(st.error()).find("sk-wrong-master-key-9876") == std::string::npos);
  CHECK(env.requests("GET", "/key/list").size() == 1);  // Auth is not retried
}

TEST_CASE("litellm: a url with a path is kept, and a wrong one is NotFound with a hint",
          "[connector][litellm]") {
  Env env;
  auto g = env.make({{"url", scalar(env.fake.url() + "/litellm/")}});
  const auto st = g->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::NotFound);
  CHECK(st.error().hint.find("check url") != std::string::npos);
  REQUIRE(env.fake.requests().size() == 1);
  CHECK(env.fake.requests()[0].path == "/litellm/key/list");
}

// ---- issue
// -----------------------------------------------------------------------------------------

TEST_CASE("litellm issue: looks the alias up, mints one key and returns its secret once",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  const auto req = request();
  auto t = g->issue(req);
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  CHECK(t->secret.rfind("sk-", 0) == 0);
  CHECK(t->secret.size() == 3 + 22);
  CHECK(t->secret_digest == builtin::digest(t->secret));
  CHECK(t->token_id == fake::LiteLlmFake::hashOf(t->secret));
  CHECK(t->alias == req.alias);
  REQUIRE(t->expires_at);
  CHECK(*t->expires_at <= req.expires_at);

  // The alias was looked up before anything was minted.
  const auto all = env.fake.requests();
  REQUIRE(all.size() == 2);
  CHECK(all[0].method == "GET");
  CHECK(all[0].path == "/key/list");
  CHECK(all[0].param("key_alias") == req.alias);
  CHECK(all[0].param("return_full_object") == "true");
  CHECK(all[1].path == "/key/generate");
  CHECK(all[1].header("Authorization") == std::string("Bearer ") + kMasterKey);
  CHECK(all[1].header("litellm-changed-by") == "certgate");

  const Json body = Json::parse(all[1].body);
  CHECK(body["key_alias"] == req.alias);
  CHECK(body["duration"] == std::to_string(30 * 86400 - 2) + "s");
  CHECK(body["models"] == Json::array({"gpt-4o-mini", "claude-3-haiku"}));
  CHECK(body["max_budget"] == 25.5);
  CHECK(body["budget_duration"] == "30d");
  CHECK(body["user_id"] == "u-E1001");
  CHECK_FALSE(body.contains("team_id"));
  CHECK_FALSE(body.contains("key"));  // LiteLLM generates the secret
  CHECK(body["metadata"] == Json{{"certgate",
                                  {{"person", "E1001"},
                                   {"track", "AI_SAFETY"},
                                   {"scope", "genai-basic"},
                                   {"alias", req.alias},
                                   {"cycle", "1"}}}});

  // The proxy holds exactly that key, as asked.
  REQUIRE(env.fake.keyCount() == 1);
  const auto stored = env.fake.key(t->token_id);
  REQUIRE(stored);
  CHECK(stored->key_alias == req.alias);
  CHECK(stored->models == std::vector<std::string>{"gpt-4o-mini", "claude-3-haiku"});
  REQUIRE(stored->expires);
  CHECK(*stored->expires == kStart + 30 * 86400 - 2);
  CHECK(env.chat(t->secret) == 200);
}

TEST_CASE("litellm issue: a second issue with the same alias adopts the key without a secret",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto first = g->issue(request());
  REQUIRE(first);
  env.time.now += 3600;
  auto second = g->issue(request());
  REQUIRE(second);
  CHECK(second->adopted);
  CHECK(second->secret.empty());
  CHECK(second->secret_digest.empty());
  CHECK(second->token_id == first->token_id);
  CHECK(second->alias == request().alias);
  CHECK(env.fake.keyCount() == 1);
  CHECK(env.requests("POST", "/key/generate").size() == 1);

  // Another instance (a restart) adopts it too.
  auto other = env.make()->issue(request());
  REQUIRE(other);
  CHECK(other->adopted);
  CHECK(other->token_id == first->token_id);
  CHECK(env.fake.keyCount() == 1);
}

TEST_CASE("litellm issue: a lost answer after the mint adopts the minted key, never a second one",
          "[connector][litellm]") {
  Env env;
  env.fake.dropResponses("POST", "/key/generate", 1, 1);
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  CHECK(t->adopted);
  CHECK(t->secret.empty());
  REQUIRE(env.fake.keyCount() == 1);
  const auto minted = env.fake.keyByAlias(request().alias);
  REQUIRE(minted);
  CHECK(t->token_id == minted->token);
  CHECK(env.requests("POST", "/key/generate").size() == 1);
  CHECK(env.requests("POST", "/key/generate")[0].status == 0);  // the answer never arrived

  // The next run adopts it as well.
  auto again = env.make()->issue(request());
  REQUIRE(again);
  CHECK(again->adopted);
  CHECK(again->token_id == minted->token);
  CHECK(env.fake.keyCount() == 1);
  CHECK(env.requests("POST", "/key/generate").size() == 1);
}

TEST_CASE("litellm issue: when LiteLLM answers that the alias exists, the key is adopted",
          "[connector][litellm]") {
  Env env;
  // Another writer mints the alias between certgate's lookup and its generate.
  std::string theirs;
  env.fake.onRequest("POST", "/key/generate", 1, [&](fake::LiteLlmFake& f) {
    fake::FakeKey k;
    k.key_alias = request().alias;
    k.models = {"gpt-4o-mini"};
    theirs = f.addKey(k);
  });
  auto t = env.make()->issue(request());
  REQUIRE(t);
  CHECK(t->adopted);
  CHECK(t->token_id == theirs);
  CHECK(env.fake.keyCount() == 1);
  const auto gen = env.requests("POST", "/key/generate");
  REQUIRE(gen.size() == 1);
  CHECK(gen[0].status == 400);
  CHECK(Json::parse(gen[0].response)["error"]["param"] == "key_alias");
}

TEST_CASE("litellm issue: on proxies that ignore the key_alias filter the alias is still found",
          "[connector][litellm]") {
  fake::LiteLlmFakeOptions o;
  o.honour_alias_filter = false;
  o.unique_aliases = false;
  Env env(o);
  for (int i = 0; i < 150; ++i) {
    fake::FakeKey k;
    k.key_alias = "someone-else-" + std::to_string(i);
    k.created_at = kStart - 1000 + i;
    env.fake.addKey(k);
  }
  auto g = env.make();
  auto first = g->issue(request());
  REQUIRE(first);
  CHECK_FALSE(first->adopted);
  auto second = g->issue(request());
  REQUIRE(second);
  CHECK(second->adopted);
  CHECK(second->token_id == first->token_id);
  CHECK(env.fake.keyCount() == 151);
  CHECK(env.requests("POST", "/key/generate").size() == 1);
}

TEST_CASE("litellm issue: an alias held by a blocked or expired key is a Conflict",
          "[connector][litellm]") {
  Env env;
  fake::FakeKey k;
  k.key_alias = request().alias;
  SECTION("blocked") {
    k.blocked = true;
  }
  SECTION("expired") {
    k.expires = kStart - 10;
  }
  const std::string token = env.fake.addKey(k);
  auto t = env.make()->issue(request());
  REQUIRE_FALSE(t);
  CHECK(t.error().kind == ErrorKind::Conflict);
  CHECK(t.error().message.find(token) != std::string::npos);
  CHECK(env.requests("POST", "/key/generate").empty());
  CHECK(env.fake.keyCount() == 1);
}

TEST_CASE("litellm issue: the key never outlives expires_at, even with the proxy's clock ahead",
          "[connector][litellm]") {
  fake::LiteLlmFakeOptions o;
  o.clock_skew = 300;  // the proxy's clock runs five minutes ahead
  Env env(o);
  auto g = env.make();
  SECTION("bounded by expires_at") {
    auto req = request();
    req.expires_at = at(kStart) + certgate::core::days(10);
    auto t = g->issue(req);
    REQUIRE(t);
    REQUIRE(t->expires_at);
    CHECK(*t->expires_at <= req.expires_at);
    CHECK(Json::parse(env.requests("POST", "/key/generate")[0].body)["duration"] ==
          std::to_string(10 * 86400 - 2) + "s");
    env.time.now = kStart + 10 * 86400 - 3;
    CHECK(env.chat(t->secret) == 200);
    env.time.now = kStart + 10 * 86400;  // certgate's end of access
    CHECK(env.chat(t->secret) == 400);   // the proxy answers "Expired Key"
  }
  SECTION("bounded by the scope's lifetime when that comes first") {
    auto req = request();
    req.scope.lifetime = Seconds{3600};
    auto t = g->issue(req);
    REQUIRE(t);
    CHECK(Json::parse(env.requests("POST", "/key/generate")[0].body)["duration"] == "3598s");
    REQUIRE(t->expires_at);
    CHECK(*t->expires_at <= at(kStart + 3600));
  }
  SECTION("an end of access in the past is refused and nothing is minted") {
    auto req = request();
    req.expires_at = at(kStart - 1);
    auto t = g->issue(req);
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::Invalid);
    CHECK(env.requests("POST", "/key/generate").empty());
  }
  SECTION("an unbounded end of access sends no duration") {
    auto req = request();
    req.expires_at = certgate::core::kNever;
    auto t = g->issue(req);
    REQUIRE(t);
    CHECK_FALSE(t->expires_at);
    CHECK_FALSE(Json::parse(env.requests("POST", "/key/generate")[0].body).contains("duration"));
  }
}

TEST_CASE("litellm issue: requests LiteLLM would misread are refused before anything is sent",
          "[connector][litellm]") {
  Env env;
  SECTION("no models would mean every model") {
    auto req = request();
    req.scope.models.clear();
    auto t = env.make()->issue(req);
    REQUIRE_FALSE(t);
    CHECK(t.error().kind == ErrorKind::Invalid);
    CHECK(t.error().hint.find("every model") != std::string::npos);
    CHECK(env.fake.requests().empty());
  }
  SECTION("with team_id the team's models bound a key without models") {
    auto req = request();
    req.scope.models.clear();
    auto t = env.make({{"team_id", scalar("team-ai")}})->issue(req);
    REQUIRE(t);
    const Json body = Json::parse(env.requests("POST", "/key/generate")[0].body);
    CHECK(body["team_id"] == "team-ai");
    CHECK(body["models"] == Json::array());
  }
  SECTION("an alias outside alias_prefix would never be observed") {
    auto req = request();
    req.alias = "other:E1001";
    auto t = env.make()->issue(req);
    REQUIRE_FALSE(t);
    CHECK(t.error().message.find("alias_prefix") != std::string::npos);
    CHECK(env.fake.requests().empty());
  }
  SECTION("a budget_duration LiteLLM cannot parse") {
    auto req = request();
    req.scope.budget_duration = "monthly-ish";
    auto t = env.make()->issue(req);
    REQUIRE_FALSE(t);
    CHECK(t.error().message.find("budget_duration") != std::string::npos);
    CHECK(env.fake.requests().empty());
  }
}

TEST_CASE("litellm issue: a 429 waits for Retry-After and retries the generate",
          "[connector][litellm]") {
  Env env;
  env.fake.failRequests("POST", "/key/generate", 1, 1, 429, 7);
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  CHECK(env.time.sleeps == std::vector<http::Millis>{http::Millis(7000)});
  CHECK(env.requests("POST", "/key/generate").size() == 2);
  CHECK(env.fake.keyCount() == 1);
  CHECK(g->requestCount() == 3);  // lookup + two generates
}

TEST_CASE("litellm issue: a 5xx is checked through the alias before the generate is repeated",
          "[connector][litellm]") {
  Env env;
  env.fake.failRequests("POST", "/key/generate", 1, 1, 500);
  auto t = env.make()->issue(request());
  REQUIRE(t);
  CHECK_FALSE(t->adopted);
  CHECK_FALSE(t->secret.empty());
  const auto all = env.fake.requests();
  REQUIRE(all.size() == 4);
  CHECK(all[0].path == "/key/list");
  CHECK(all[1].path == "/key/generate");
  CHECK(all[1].status == 500);
  CHECK(all[2].path == "/key/list");  // was it minted after all? no
  CHECK(all[3].path == "/key/generate");
  CHECK(env.time.sleeps == std::vector<http::Millis>{http::Millis(250)});  // 500 ms * 0.5
  CHECK(env.fake.keyCount() == 1);
}

TEST_CASE("litellm issue: a proxy that keeps failing is a Transient error after three mints",
          "[connector][litellm]") {
  Env env;
  env.fake.failRequests("POST", "/key/generate", 1, 10, 503);
  auto t = env.make()->issue(request());
  REQUIRE_FALSE(t);
  CHECK(t.error().kind == ErrorKind::Transient);
  CHECK(t.error().message.find("POST /key/generate") != std::string::npos);
  CHECK(t.error().message.find("HTTP 503") != std::string::npos);
  CHECK(env.requests("POST", "/key/generate").size() == 3);
  CHECK(env.fake.keyCount() == 0);
}

// ---- revoke
// ----------------------------------------------------------------------------------------

TEST_CASE("litellm revoke (delete): deletes by hash once, then is a no-op",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  auto r = g->revoke(t->token_id);
  REQUIRE(r);
  CHECK_FALSE(r->no_op);
  CHECK(env.fake.deleted(t->token_id));
  const auto del = env.requests("POST", "/key/delete");
  REQUIRE(del.size() == 1);
  CHECK(Json::parse(del[0].body) == Json{{"keys", Json::array({t->token_id})}});
  CHECK(del[0].header("litellm-changed-by") == "certgate");

  auto again = g->revoke(t->token_id);
  REQUIRE(again);
  CHECK(again->no_op);  // LiteLLM: 404 "No keys found"
  CHECK(env.requests("POST", "/key/delete").back().status == 404);

  auto unknown = g->revoke(std::string(64, 'a'));
  REQUIRE(unknown);
  CHECK(unknown->no_op);
}

TEST_CASE("litellm revoke (block): blocks once, then is a no-op, and an unknown key is a no-op",
          "[connector][litellm]") {
  Env env;
  auto g = env.make({{"revoke_mode", scalar("block")}});
  auto t = g->issue(request());
  REQUIRE(t);
  auto r = g->revoke(t->token_id);
  REQUIRE(r);
  CHECK_FALSE(r->no_op);
  const auto stored = env.fake.key(t->token_id);
  REQUIRE(stored);
  CHECK(stored->blocked);
  const auto blocks = env.requests("POST", "/key/block");
  REQUIRE(blocks.size() == 1);
  CHECK(Json::parse(blocks[0].body) == Json{{"key", t->token_id}});

  auto again = g->revoke(t->token_id);
  REQUIRE(again);
  CHECK(again->no_op);
  CHECK(env.requests("POST", "/key/block").size() == 1);  // already blocked: nothing sent
  CHECK(env.requests("POST", "/key/delete").empty());

  auto unknown = g->revoke(std::string(64, 'b'));
  REQUIRE(unknown);
  CHECK(unknown->no_op);
  CHECK(env.requests("POST", "/key/block").size() == 1);
}

TEST_CASE("litellm revoke: a secret or a malformed id is refused and never sent",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  env.fake.clearRequests();
  auto r = g->revoke(t->secret);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::Invalid);
  CHECK(describe(r.error()).find(t->secret) == std::string::npos);
  auto v = g->verifyRevoked(t->secret);
  REQUIRE_FALSE(v);
  CHECK(describe(v.error()).find(t->secret) == std::string::npos);
  auto bad = g->revoke("not-a-hash");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ErrorKind::Invalid);
  CHECK(env.fake.requests().empty());
}

TEST_CASE("litellm revoke: 5xx is retried with backoff, the delete being idempotent",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  env.fake.failRequests("POST", "/key/delete", 1, 2, 502);
  auto r = g->revoke(t->token_id);
  REQUIRE(r);
  CHECK(env.fake.deleted(t->token_id));
  CHECK(env.time.sleeps == std::vector<http::Millis>{http::Millis(250), http::Millis(500)});
  CHECK(env.requests("POST", "/key/delete").size() == 3);
}

// ---- observe / findByAlias ---------------------------------------------------------------------

TEST_CASE("litellm observe: pages the key list and keeps only certgate's prefix",
          "[connector][litellm]") {
  Env env;
  std::set<std::string> ours;
  std::string blocked_token;
  std::string expired_token;
  for (int i = 0; i < 180; ++i) {
    fake::FakeKey k;
    k.key_alias = "certgate:P" + std::to_string(i) + ":AI_SAFETY:genai-basic:c1:r0";
    k.metadata_json =
        Json{{"certgate", {{"person", "P" + std::to_string(i)}, {"scope", "genai-basic"}}}}.dump();
    k.created_at = kStart - 5000 + i;
    k.expires = kStart + 86400;
    if (i == 7) k.blocked = true;
    if (i == 8) k.expires = kStart - 1;
    const std::string token = env.fake.addKey(k);
    ours.insert(token);
    if (i == 7) blocked_token = token;
    if (i == 8) expired_token = token;
  }
  for (int i = 0; i < 50; ++i) {
    fake::FakeKey k;
    k.key_alias = i % 2 == 0 ? "team-app-" + std::to_string(i) : "";
    k.created_at = kStart - 6000 + i * 7;
    env.fake.addKey(k);
  }
  auto g = env.make();
  std::vector<ports::ObservedToken> seen;
  REQUIRE(g->observe([&](ports::ObservedToken&& t) { seen.push_back(std::move(t)); }));
  CHECK(seen.size() == 180);
  std::set<std::string> ids;
  for (const auto& t : seen) {
    ids.insert(t.token_id);
    CHECK(t.alias.rfind("certgate:", 0) == 0);
    CHECK(t.person_key == t.alias.substr(9, t.alias.find(':', 9) - 9));
    CHECK(t.scope == "genai-basic");
    CHECK(t.active == (t.token_id != blocked_token && t.token_id != expired_token));
    if (t.token_id != expired_token) CHECK(t.expires_at == at(kStart + 86400));
  }
  CHECK(ids == ours);

  const auto lists = env.requests("GET", "/key/list");
  REQUIRE(lists.size() == 3);  // 230 keys, 100 a page
  for (std::size_t i = 0; i < lists.size(); ++i) {
    CHECK(lists[i].param("page") == std::to_string(i + 1));
    CHECK(lists[i].param("size") == "100");
    CHECK(lists[i].param("return_full_object") == "true");
  }
}

TEST_CASE("litellm observe: with team_id only the team's keys are listed", "[connector][litellm]") {
  Env env;
  fake::FakeKey a;
  a.key_alias = "certgate:A";
  a.team_id = "team-ai";
  fake::FakeKey b;
  b.key_alias = "certgate:B";
  b.team_id = "team-other";
  const std::string ta = env.fake.addKey(a);
  env.fake.addKey(b);
  std::vector<std::string> seen;
  REQUIRE(env.make({{"team_id", scalar("team-ai")}})->observe([&](ports::ObservedToken&& t) {
    seen.push_back(t.token_id);
  }));
  CHECK(seen == std::vector<std::string>{ta});
  CHECK(env.requests("GET", "/key/list")[0].param("team_id") == "team-ai");
}

TEST_CASE("litellm observe: a list that changes while paging is read again, never half",
          "[connector][litellm]") {
  Env env;
  std::vector<std::string> tokens;
  for (int i = 0; i < 150; ++i) {
    fake::FakeKey k;
    k.key_alias = "certgate:K" + std::to_string(i);
    k.created_at = kStart - 1000 + i;
    tokens.push_back(env.fake.addKey(k));
  }
  SECTION("a key deleted between pages: the listing restarts and is complete") {
    // Deleting a key on page 1 moves the first key of page 2 onto page 1.
    env.fake.onRequest("GET", "/key/list", 2,
                       [&](fake::LiteLlmFake& f) { f.removeKey(tokens[149]); });
    std::set<std::string> seen;
    REQUIRE(env.make()->observe([&](ports::ObservedToken&& t) { seen.insert(t.token_id); }));
    CHECK(seen.size() == 149);
    CHECK(seen.count(tokens[149]) == 0);
    CHECK(seen.count(tokens[49]) == 1);  // the key that moved across the page boundary
    CHECK(env.requests("GET", "/key/list").size() == 4);
  }
  SECTION("a list that never settles is a Transient error and nothing is reported") {
    for (int n = 2; n <= 6; n += 2) {
      env.fake.onRequest("GET", "/key/list", n, [n](fake::LiteLlmFake& f) {
        fake::FakeKey k;
        k.key_alias = "certgate:new" + std::to_string(n);
        f.addKey(k);
      });
    }
    int reported = 0;
    const auto st = env.make()->observe([&](ports::ObservedToken&&) { ++reported; });
    REQUIRE_FALSE(st);
    CHECK(st.error().kind == ErrorKind::Transient);
    CHECK(reported == 0);
  }
}

TEST_CASE("litellm findByAlias: the active key, or nothing", "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto none = g->findByAlias(request().alias);
  REQUIRE(none);
  CHECK_FALSE(*none);
  auto t = g->issue(request());
  REQUIRE(t);
  auto found = g->findByAlias(request().alias);
  REQUIRE(found);
  REQUIRE(*found);
  CHECK((*found)->token_id == t->token_id);
  CHECK((*found)->person_key == "E1001");
  CHECK((*found)->scope == "genai-basic");
  CHECK((*found)->active);
  CHECK((*found)->expires_at == t->expires_at);
}

// ---- verifyRevoked
// ---------------------------------------------------------------------------------

TEST_CASE(
    "litellm verifyRevoked: NotEnforced while live, Pending inside the cache window, "
    "Enforced after it",
    "[connector][litellm]") {
  Env env;
  auto g = env.make({{"cache_window", scalar("60s")}});
  auto t = g->issue(request());
  REQUIRE(t);
  auto live = g->verifyRevoked(t->token_id);
  REQUIRE(live);
  CHECK(*live == ports::Enforcement::NotEnforced);

  SECTION("delete") {
    REQUIRE(g->revoke(t->token_id));
    env.time.now += 30;
    auto v = g->verifyRevoked(t->token_id);
    REQUIRE(v);
    CHECK(*v == ports::Enforcement::Pending);
    CHECK(env.chat(t->secret) == 200);  // another proxy instance still has it cached
    env.time.now += 30;
    v = g->verifyRevoked(t->token_id);
    REQUIRE(v);
    CHECK(*v == ports::Enforcement::Enforced);
    CHECK(env.chat(t->secret) == 401);

    // A fresh instance learns when the key was deleted from LiteLLM's deleted-keys table.
    env.time.now -= 45;
    auto fresh = env.make()->verifyRevoked(t->token_id);
    REQUIRE(fresh);
    CHECK(*fresh == ports::Enforcement::Pending);
    const auto deleted_lookup = env.requests("GET", "/key/list").back();
    CHECK(deleted_lookup.param("status") == "deleted");
    CHECK(deleted_lookup.param("key_hash") == t->token_id);
  }
  SECTION("block, with a fresh instance reading the key's updated_at") {
    auto blocker = env.make({{"revoke_mode", scalar("block")}});
    REQUIRE(blocker->revoke(t->token_id));
    env.time.now += 59;
    auto v = env.make()->verifyRevoked(t->token_id);
    REQUIRE(v);
    CHECK(*v == ports::Enforcement::Pending);
    CHECK(env.chat(t->secret) == 200);
    env.time.now += 1;
    v = env.make()->verifyRevoked(t->token_id);
    REQUIRE(v);
    CHECK(*v == ports::Enforcement::Enforced);
    CHECK(env.chat(t->secret) == 401);
  }
}

TEST_CASE("litellm verifyRevoked: an expired key is refused at once, and 401 is Auth",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto req = request();
  req.scope.lifetime = Seconds{600};
  auto t = g->issue(req);
  REQUIRE(t);
  env.time.now += 600;
  auto v = g->verifyRevoked(t->token_id);
  REQUIRE(v);
  CHECK(*v == ports::Enforcement::Enforced);

  env.fake.failRequests("GET", "/key/info", 1, 100, 401);
  auto denied = g->verifyRevoked(t->token_id);
  REQUIRE_FALSE(denied);
  CHECK(denied.error().kind == ErrorKind::Auth);
}

// ---- secrets
// ---------------------------------------------------------------------------------------

TEST_CASE(
    "litellm: the secret appears only in IssuedToken::secret, never in requests, errors or "
    "observations",
    "[connector][litellm]") {
  Env env;
  auto g = env.make();
  auto t = g->issue(request());
  REQUIRE(t);
  const std::string secret = t->secret;
  std::vector<std::string> texts;
  auto keep = [&](const certgate::core::Error& e) { texts.push_back(describe(e)); };

  texts.push_back(t->token_id + t->secret_digest + t->alias);
  auto adopted = g->issue(request());
  REQUIRE(adopted);
  texts.push_back(adopted->token_id + adopted->secret + adopted->secret_digest);
  REQUIRE(g->observe([&](ports::ObservedToken&& o) {
    texts.push_back(o.token_id + o.alias + o.person_key + o.scope);
  }));

  env.fake.failRequests("GET", "/key/list", 1, 100, 500);
  auto f = g->findByAlias(request().alias);
  REQUIRE_FALSE(f);
  keep(f.error());
  keep(g->observe([](ports::ObservedToken&&) {}).error());
  env.fake.failRequests("GET", "/key/info", 1, 100, 401);
  auto v = g->verifyRevoked(t->token_id);
  REQUIRE_FALSE(v);
  keep(v.error());
  env.fake.failRequests("POST", "/key/delete", 1, 100, 500);
  auto r = g->revoke(t->token_id);
  REQUIRE_FALSE(r);
  keep(r.error());
  auto s = g->revoke(secret);
  REQUIRE_FALSE(s);
  keep(s.error());

  for (const auto& text : texts) {
    CHECK(text.find(secret) == std::string::npos);
    CHECK(text.find(secret.substr(3)) == std::string::npos);
    CHECK(text.find(kMasterKey) == std::string::npos);
  }
  // certgate never sends the key back to the proxy: it names keys by their hash.
  const auto all = env.fake.requests();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].path == "/key/generate") continue;  // the one answer that carries it
    CHECK(all[i].target.find(secret) == std::string::npos);
    CHECK(all[i].body.find(secret) == std::string::npos);
    CHECK(all[i].response.find(secret) == std::string::npos);
  }
}

TEST_CASE("litellm: a 429 on a read waits Retry-After, and 5xx reads back off",
          "[connector][litellm]") {
  Env env;
  auto g = env.make();
  env.fake.failRequests("GET", "/key/list", 1, 1, 429, 3);
  env.fake.failRequests("GET", "/key/list", 2, 1, 503);
  REQUIRE(g->connect());
  CHECK(env.time.sleeps == std::vector<http::Millis>{http::Millis(3000), http::Millis(500)});
  CHECK(env.requests("GET", "/key/list").size() == 3);
  CHECK(g->requestCount() == 3);

  env.time.sleeps.clear();
  env.fake.failRequests("GET", "/key/list", 4, 10, 429, 2);
  const auto st = g->connect();
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::RateLimited);
  CHECK(st.error().retry_after_s == 2);
  CHECK(env.time.sleeps.size() == 3);  // four attempts
}
