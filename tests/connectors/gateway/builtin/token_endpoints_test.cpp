// The token authority's HTTP endpoints (src/http/token_endpoints.hpp) on a real loopback
// server, over tokens issued by the builtin gateway into a store file.
#include "http/token_endpoints.hpp"

#include <httplib.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>

#include "authority_test_support.hpp"
#include "connectors/gateway/builtin/token_authority.hpp"
#include "connectors/gateway/builtin/token_format.hpp"
#include "http/form.hpp"
#include "http/server.hpp"

namespace builtin = certgate::connectors::builtin;
namespace chttp = certgate::http;
namespace ports = certgate::ports;
using namespace certgate::testing::authority;
using Json = nlohmann::json;

namespace {

constexpr const char* kIntrospectionSecret = "introspect-0123456789abcdef0123456789abcdef";

struct Env {
  TempDir dir;
  std::string db = dir.file("certgate.db");
  std::shared_ptr<TestClock> clock = std::make_shared<TestClock>();
  std::unique_ptr<certgate::store::Store> store = openStore(db);
  std::unique_ptr<ports::Gateway> gateway =
      makeGateway(*store, clock, {{"client_id", "llm-proxy"}});
  std::unique_ptr<builtin::TokenAuthority> authority;
  std::unique_ptr<chttp::Server> server;
  std::mutex log_mutex;
  std::vector<std::string> log;

  explicit Env(std::string secret = kIntrospectionSecret, std::size_t max_body = 4096) {
    auto made = builtin::TokenAuthority::create(openStore(db), clock);
    if (!made) FAIL(made.error().describe());
    authority = std::move(made).value();
    chttp::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 4;
    options.max_body_bytes = max_body;
    options.keep_alive_timeout = std::chrono::seconds(1);
    options.log = [this](std::string_view line) {
      std::lock_guard lock(log_mutex);
      log.emplace_back(line);
    };
    server = std::make_unique<chttp::Server>(options);
    chttp::TokenEndpointOptions endpoints;
    endpoints.introspection_secret = std::move(secret);
    chttp::mountTokenEndpoints(*server, *authority, endpoints);
    auto started = server->start();
    if (!started) FAIL(started.error().describe());
  }

  ~Env() {
    if (server) server->stop();  // before `log` goes: workers log until they are joined
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  httplib::Client client() {
    httplib::Client c("127.0.0.1", server->port());
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    c.set_url_encode(false);  // the paths below are sent as written
    return c;
  }

  ports::IssuedToken issue(const std::string& person, const std::string& alias,
                           std::int64_t expires_in = 3600) {
    return valueOf(gateway->issue(request(person, alias, at(kStart + expires_in))));
  }

  httplib::Result introspect(const std::string& token,
                             const std::string& authorization = std::string("Bearer ") +
                                                                kIntrospectionSecret) {
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return client().Post(chttp::kIntrospectPath, headers,
                         "token=" + httplib::detail::encode_query_param(token) +
                             "&token_type_hint=access_token",
                         "application/x-www-form-urlencoded");
  }

  httplib::Result verify(const std::string& token, const std::string& path = chttp::kVerifyPath,
                         httplib::Headers headers = {}) {
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client().Get(path.c_str(), headers);
  }

  bool logMentions(const std::string& text) {
    std::lock_guard lock(log_mutex);
    for (const auto& line : log)
      if (line.find(text) != std::string::npos) return true;
    return false;
  }
};

std::string basic(const std::string& user, const std::string& password) {
  return httplib::make_basic_authentication_header(user, password).second;
}

}  // namespace

TEST_CASE("GET /healthz answers ok and unknown paths a JSON 404", "[http][builtin]") {
  Env env;
  auto health = env.client().Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(Json::parse(health->body) == Json{{"status", "ok"}});
  auto missing = env.client().Get("/nope");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(Json::parse(missing->body)["error"] == "not_found");
}

TEST_CASE("introspection describes an active token (RFC 7662)", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1001", "a1");
  auto res = env.introspect(issued.secret);
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Cache-Control") == "no-store");
  CHECK(res->get_header_value("Content-Type") == "application/json");
  const Json body = Json::parse(res->body);
  CHECK(body == Json{{"active", true},
                     {"scope", "genai-basic gpt-4o-mini claude-haiku"},
                     {"client_id", "llm-proxy"},
                     {"sub", "e1001"},
                     {"iat", kStart},
                     {"exp", kStart + 3600},
                     {"token_type", "Bearer"}});

  SECTION("with HTTP Basic client authentication") {
    auto basic_res = env.introspect(issued.secret, basic("any-client", kIntrospectionSecret));
    REQUIRE(basic_res);
    CHECK(basic_res->status == 200);
    CHECK(Json::parse(basic_res->body)["active"] == true);
  }
}

TEST_CASE("introspection answers exactly {\"active\":false} for every inactive token",
          "[http][builtin]") {
  Env env;
  auto revoked = env.issue("e1", "a1");
  auto expired = env.issue("e2", "a2", 60);
  REQUIRE_FALSE(valueOf(env.gateway->revoke(revoked.token_id)).no_op);
  env.clock->advance(60);
  std::string bad_checksum = expired.secret;
  bad_checksum.back() = bad_checksum.back() == 'A' ? 'B' : 'A';
  const std::pair<const char*, std::string> cases[] = {
      {"revoked", revoked.secret},
      {"expired", expired.secret},
      {"unknown", valueOf(builtin::mintToken())},
      {"bad checksum", bad_checksum},
      {"garbage", "not a token at all"},
      {"binary", std::string("cgt_\x01\x02\xff", 7)},
      {"very long", std::string(3000, 'c')},
  };
  for (const auto& [reason, token] : cases) {
    INFO(reason);
    auto res = env.introspect(token);
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == R"({"active":false})");
    CHECK(res->get_header_value("Cache-Control") == "no-store");
  }
}

TEST_CASE("introspection refuses callers without the right credential", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1", "a1");
  const std::pair<const char*, std::string> cases[] = {
      {"no Authorization header", ""},
      {"a wrong bearer secret", "Bearer wrong-secret"},
      {"the secret with one character changed",
       std::string("Bearer ") + std::string(kIntrospectionSecret).substr(1) + "x"},
      {"a prefix of the secret", std::string("Bearer ") + std::string(kIntrospectionSecret, 10)},
      {"basic with a wrong password", basic("client", "nope")},
      {"basic that is not base64", "Basic %%%"},
      {"the token being introspected as credential", "Bearer " + issued.secret},
      {"another scheme", std::string("Digest ") + kIntrospectionSecret},
  };
  for (const auto& [reason, authorization] : cases) {
    INFO(reason);
    auto res = env.introspect(issued.secret, authorization);
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(Json::parse(res->body)["error"] == "invalid_client");
    CHECK(res->get_header_value_count("WWW-Authenticate") == 2);
    CHECK(res->get_header_value("WWW-Authenticate").rfind("Bearer realm=", 0) == 0);
    CHECK(res->body.find("active") == std::string::npos);
  }
}

TEST_CASE("introspection without a configured secret refuses everyone", "[http][builtin]") {
  Env env("");
  auto issued = env.issue("e1", "a1");
  for (const std::string& auth : {std::string(), std::string("Bearer "), basic("x", "")}) {
    auto res = env.introspect(issued.secret, auth);
    REQUIRE(res);
    CHECK(res->status == 401);
  }
}

TEST_CASE("introspection refuses malformed requests with a JSON error", "[http][builtin]") {
  Env env;
  httplib::Headers auth{{"Authorization", std::string("Bearer ") + kIntrospectionSecret}};
  auto c = env.client();
  SECTION("no token parameter") {
    auto res = c.Post(chttp::kIntrospectPath, auth, "token_type_hint=access_token",
                      "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(Json::parse(res->body)["error"] == "invalid_request");
  }
  SECTION("two token parameters") {
    auto res = c.Post(chttp::kIntrospectPath, auth, "token=a&token=b",
                      "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 400);
  }
  SECTION("a JSON body") {
    auto res = c.Post(chttp::kIntrospectPath, auth, R"({"token":"x"})", "application/json");
    REQUIRE(res);
    CHECK(res->status == 400);
  }
  SECTION("a broken percent escape") {
    auto res =
        c.Post(chttp::kIntrospectPath, auth, "token=%zz", "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 400);
  }
  SECTION("GET is not allowed") {
    auto res = c.Get(chttp::kIntrospectPath, auth);
    REQUIRE(res);
    CHECK(res->status == 405);
    CHECK(res->get_header_value("Allow") == "POST");
    CHECK(Json::parse(res->body)["error"] == "method_not_allowed");
  }
  SECTION("a body above the size cap") {
    const std::string big = "token=" + std::string(5000, 'a');
    auto res = c.Post(chttp::kIntrospectPath, auth, big, "application/x-www-form-urlencoded");
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(Json::parse(res->body)["error"] == "request_too_large");
  }
}

TEST_CASE("auth/verify lets a valid token through with identity headers", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1001", "a1");
  auto res = env.verify(issued.secret);
  REQUIRE(res);
  CHECK(res->status == 204);
  CHECK(res->get_header_value("X-Certgate-Subject") == "e1001");
  CHECK(res->get_header_value("X-Certgate-Scope") == "genai-basic gpt-4o-mini claude-haiku");
  CHECK(res->get_header_value("X-Certgate-Client-Id") == "llm-proxy");
  CHECK(res->get_header_value("X-Certgate-Token-Id") == issued.token_id);
  CHECK(res->get_header_value("X-Certgate-Expires") == "2027-01-15T09:00:00Z");
  CHECK(res->get_header_value("Cache-Control") == "no-store");

  SECTION("whatever the method (nginx sends the client's)") {
    auto c = env.client();
    httplib::Headers h{{"Authorization", "Bearer " + issued.secret}};
    auto post = c.Post(chttp::kVerifyPath, h, "", "text/plain");
    REQUIRE(post);
    CHECK(post->status == 204);
    auto head = c.Head(chttp::kVerifyPath, h);
    REQUIRE(head);
    CHECK(head->status == 204);
    auto del = c.Delete(chttp::kVerifyPath, h);
    REQUIRE(del);
    CHECK(del->status == 204);
  }
  SECTION("from X-Api-Key") {
    auto api = env.client().Get(chttp::kVerifyPath, {{"X-Api-Key", issued.secret}});
    REQUIRE(api);
    CHECK(api->status == 204);
  }
  SECTION("with a lower-case scheme") {
    auto lower = env.client().Get(chttp::kVerifyPath, {{"Authorization", "bearer " + issued.secret}});
    REQUIRE(lower);
    CHECK(lower->status == 204);
  }
}

TEST_CASE("auth/verify refuses a revoked token on the very next request", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1", "a1");
  for (int i = 0; i < 3; ++i) {
    auto ok = env.verify(issued.secret);
    REQUIRE(ok);
    REQUIRE(ok->status == 204);
  }
  REQUIRE_FALSE(valueOf(env.gateway->revoke(issued.token_id)).no_op);
  auto refused = env.verify(issued.secret);
  REQUIRE(refused);
  CHECK(refused->status == 401);
  CHECK(refused->get_header_value("WWW-Authenticate") ==
        R"(Bearer realm="certgate", error="invalid_token")");
  CHECK_FALSE(refused->has_header("X-Certgate-Subject"));
  auto introspected = env.introspect(issued.secret);
  REQUIRE(introspected);
  CHECK(introspected->body == R"({"active":false})");
}

TEST_CASE("auth/verify refuses missing, malformed, unknown and expired tokens",
          "[http][builtin]") {
  Env env;
  auto expiring = env.issue("e1", "a1", 30);

  auto none = env.verify("");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(none->get_header_value("WWW-Authenticate") == R"(Bearer realm="certgate")");

  const std::pair<const char*, std::string> cases[] = {
      {"malformed", "cgt_short"},
      {"garbage with quotes", "\"'<>;"},
      {"unknown", valueOf(builtin::mintToken())},
      {"prefix only", "cgt_"},
  };
  for (const auto& [reason, token] : cases) {
    INFO(reason);
    auto res = env.verify(token);
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(res->get_header_value("WWW-Authenticate").find(R"(error="invalid_token")") !=
          std::string::npos);
  }
  auto basic_scheme = env.client().Get(chttp::kVerifyPath, {{"Authorization", basic("u", "p")}});
  REQUIRE(basic_scheme);
  CHECK(basic_scheme->status == 401);

  auto before = env.verify(expiring.secret);
  REQUIRE(before);
  CHECK(before->status == 204);
  env.clock->advance(30);
  auto after = env.verify(expiring.secret);
  REQUIRE(after);
  CHECK(after->status == 401);
}

TEST_CASE("auth/verify checks a required scope", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1", "a1");
  struct Case {
    const char* reason;
    std::string path;
    httplib::Headers headers;
    int want;
  };
  const Case cases[] = {
      {"scope held (query)", std::string(chttp::kVerifyPath) + "?scope=genai-basic", {}, 204},
      {"a model held (query)", std::string(chttp::kVerifyPath) + "?scope=gpt-4o-mini", {}, 204},
      {"two values held", std::string(chttp::kVerifyPath) + "?scope=genai-basic+claude-haiku",
       {}, 204},
      {"scope not held (query)", std::string(chttp::kVerifyPath) + "?scope=genai-admin", {}, 403},
      {"one of two not held", std::string(chttp::kVerifyPath) + "?scope=genai-basic%20gpt-5", {},
       403},
      {"scope held (header)", chttp::kVerifyPath, {{"X-Certgate-Required-Scope", "genai-basic"}},
       204},
      {"scope not held (header)", chttp::kVerifyPath,
       {{"X-Certgate-Required-Scope", "genai-admin"}}, 403},
      {"a prefix of a held value is not held", chttp::kVerifyPath,
       {{"X-Certgate-Required-Scope", "genai"}}, 403},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    auto res = env.verify(issued.secret, c.path, c.headers);
    REQUIRE(res);
    CHECK(res->status == c.want);
    if (c.want == 403)
      CHECK(res->get_header_value("WWW-Authenticate").find(R"(error="insufficient_scope")") !=
            std::string::npos);
  }
  // A wrong token with a required scope is still a 401, not a 403.
  auto wrong = env.verify("cgt_nope", std::string(chttp::kVerifyPath) + "?scope=genai-admin");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
}

TEST_CASE("the access log never carries a token", "[http][builtin]") {
  Env env;
  auto issued = env.issue("e1", "a1");
  REQUIRE(env.verify(issued.secret));
  REQUIRE(env.introspect(issued.secret));
  REQUIRE(env.client().Get((std::string(chttp::kVerifyPath) + "?token=" + issued.secret).c_str()));
  CHECK(env.logMentions("GET /auth/verify 204"));
  CHECK(env.logMentions("POST /oauth2/introspect 200"));
  CHECK_FALSE(env.logMentions(issued.secret));
  CHECK_FALSE(env.logMentions(kIntrospectionSecret));
}

TEST_CASE("the server refuses a port in use and a bad listen address", "[http]") {
  Env env;
  chttp::ServerOptions taken;
  taken.listen = "127.0.0.1:" + std::to_string(env.server->port());
  chttp::Server second(taken);
  auto refused = second.start();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == certgate::core::ErrorKind::Permanent);

  for (const char* bad : {"localhost", "127.0.0.1:", "::1:80", "127.0.0.1:70000", ":80"}) {
    INFO(bad);
    chttp::ServerOptions o;
    o.listen = bad;
    chttp::Server s(o);
    auto r = s.start();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == certgate::core::ErrorKind::Invalid);
  }
}

TEST_CASE("stop() ends the server and is idempotent", "[http]") {
  Env env;
  const int port = env.server->port();
  env.server->stop();
  env.server->stop();
  CHECK_FALSE(env.server->running());
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1);
  CHECK_FALSE(c.Get("/healthz"));
}

TEST_CASE("form decoding", "[http][unit]") {
  auto fields = chttp::parseForm("a=1&b=x+y%21&&c&d=%3D");
  REQUIRE(fields);
  const std::vector<std::pair<std::string, std::string>> want{
      {"a", "1"}, {"b", "x y!"}, {"c", ""}, {"d", "="}};
  CHECK(*fields == want);
  CHECK_FALSE(chttp::parseForm("a=%4"));
  CHECK_FALSE(chttp::parseForm("a=%g0"));
  CHECK(chttp::parseForm("")->empty());
}
