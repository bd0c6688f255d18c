#include "connectors/common/oauth2.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopback_server.hpp"

using namespace std::chrono_literals;
using certgate::core::ErrorKind;
using certgate::testing::LoopbackServer;
namespace http = certgate::connectors::http;
namespace oauth2 = certgate::connectors::oauth2;

namespace {

// A token endpoint (RFC 6749 4.4) that records every request and answers from a script: one
// answer per request in order, the last one repeating.
struct TokenEndpoint {
  struct Answer {
    int status = 200;
    std::string body;
    std::string retry_after;
  };
  struct Seen {
    std::map<std::string, std::string> form;
    std::string authorization;
    std::string content_type;
    std::string body;
  };

  LoopbackServer srv;
  std::mutex mutex;
  std::vector<Answer> answers;
  std::vector<Seen> seen;
  int issued = 0;

  TokenEndpoint() {
    srv.server.Post("/tenant/oauth2/v2.0/token", [this](const httplib::Request& req,
                                                        httplib::Response& res) {
      std::lock_guard lock(mutex);
      Seen s;
      for (const auto& [k, v] : req.params) s.form[k] = v;
      s.authorization = req.get_header_value("Authorization");
      s.content_type = req.get_header_value("Content-Type");
      s.body = req.body;
      seen.push_back(std::move(s));
      Answer a;
      if (answers.empty()) {
        a.body = nlohmann::json{{"token_type", "Bearer"},
                                {"expires_in", 3599},
                                {"access_token", "tok-" + std::to_string(++issued)}}
                     .dump();
      } else {
        a = answers[std::min(seen.size() - 1, answers.size() - 1)];
      }
      res.status = a.status;
      if (!a.retry_after.empty()) res.set_header("Retry-After", a.retry_after);
      res.set_content(a.body, "application/json");
    });
    srv.start();
  }

  std::string url() const { return srv.url("/tenant/oauth2/v2.0/token"); }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
  Seen at(std::size_t i) {
    std::lock_guard lock(mutex);
    return seen.at(i);
  }
};

struct Harness {
  TokenEndpoint endpoint;
  std::vector<http::Millis> sleeps;
  std::int64_t now = 1'700'000'000;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  std::unique_ptr<http::Client> client;

  Harness() {
    http::ClientOptions o;
    o.sleep = [this](http::Millis d) { sleeps.push_back(d); };
    o.random01 = [] { return 0.5; };
    o.now_unix_s = [this] { return now; };
    o.connect_timeout = 2000ms;
    o.total_timeout = 5000ms;
    o.redactor = redactor;
    client = std::make_unique<http::Client>(o);
  }

  oauth2::ClientCredentialsConfig config(oauth2::ClientAuth auth = oauth2::ClientAuth::SecretPost) {
    oauth2::ClientCredentialsConfig c;
    c.token_url = endpoint.url();
    c.client_id = "app-1";
    c.client_secret = "s3cr3t value&more";
    c.scope = "https://graph.microsoft.com/.default";
    c.auth = auth;
    c.where = "directory 'entra'";
    return c;
  }

  oauth2::TokenSource source(oauth2::ClientCredentialsConfig c) {
    return oauth2::TokenSource(*client, std::move(c), redactor, [this] { return now; });
  }
};

std::string tokenBody(const std::string& token, const nlohmann::json& expires_in) {
  nlohmann::json j{{"token_type", "Bearer"}, {"access_token", token}};
  if (!expires_in.is_null()) j["expires_in"] = expires_in;
  return j.dump();
}

}  // namespace

TEST_CASE("client_secret_post sends the Microsoft identity platform's form", "[connector][oauth2]") {
  Harness h;
  auto tokens = h.source(h.config());
  auto t = tokens.token();
  REQUIRE(t.ok());
  CHECK(*t == "tok-1");
  REQUIRE(h.endpoint.count() == 1);
  const auto seen = h.endpoint.at(0);
  CHECK(seen.content_type == "application/x-www-form-urlencoded");
  CHECK(seen.authorization.empty());
  CHECK(seen.form.at("grant_type") == "client_credentials");
  CHECK(seen.form.at("client_id") == "app-1");
  CHECK(seen.form.at("client_secret") == "s3cr3t value&more");  // decoded by the server
  CHECK(seen.form.at("scope") == "https://graph.microsoft.com/.default");
  CHECK(seen.form.count("client_assertion") == 0);
  CHECK(tokens.fetches() == 1);
}

TEST_CASE("client_secret_basic sends form-encoded id and secret in HTTP Basic, not in the body",
          "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config(oauth2::ClientAuth::SecretBasic);
  cfg.client_id = "app id:1";
  cfg.client_secret = "p@ss";
  auto tokens = h.source(cfg);
  REQUIRE(tokens.token().ok());
  const auto seen = h.endpoint.at(0);
  // base64("app+id%3A1:p%40ss"), RFC 6749 2.3.1 encodes before base64.
  CHECK(seen.authorization == "Basic YXBwK2lkJTNBMTpwJTQwc3M=");
  CHECK(seen.form.count("client_secret") == 0);
  CHECK(seen.form.count("client_id") == 0);
  CHECK(seen.form.at("grant_type") == "client_credentials");
}

TEST_CASE("a cached token is reused until refresh_margin before expiry", "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config();
  cfg.refresh_margin = 60s;
  h.endpoint.answers = {{200, tokenBody("first", 3600), ""}, {200, tokenBody("second", 3600), ""}};
  auto tokens = h.source(cfg);
  REQUIRE(*tokens.token() == "first");
  h.now += 3539;  // 61 s left: still outside the margin
  REQUIRE(*tokens.token() == "first");
  CHECK(h.endpoint.count() == 1);
  h.now += 1;  // exactly 60 s left: refresh
  REQUIRE(*tokens.token() == "second");
  CHECK(h.endpoint.count() == 2);
  CHECK(tokens.fetches() == 2);
}

TEST_CASE("a lifetime shorter than the margin still caches the token for half its lifetime",
          "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config();
  cfg.refresh_margin = 300s;
  h.endpoint.answers = {{200, tokenBody("short", 100), ""}, {200, tokenBody("next", 100), ""}};
  auto tokens = h.source(cfg);
  REQUIRE(*tokens.token() == "short");
  h.now += 49;
  REQUIRE(*tokens.token() == "short");
  CHECK(h.endpoint.count() == 1);
  h.now += 1;
  REQUIRE(*tokens.token() == "next");
}

TEST_CASE("expires_in given as a string or absent is understood", "[connector][oauth2]") {
  struct Row {
    nlohmann::json expires_in;
    std::int64_t still_cached_after;
    std::int64_t refreshed_after;
    const char* reason;
  };
  const Row rows[] = {
      {"3599", 3599 - 60 - 1, 3599 - 60, "string seconds (some servers quote numbers)"},
      {nullptr, 3600 - 60 - 1, 3600 - 60, "absent: one hour assumed"},
      {1800.0, 1800 - 60 - 1, 1800 - 60, "a JSON number with a fraction part"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    Harness h;
    h.endpoint.answers = {{200, tokenBody("a", row.expires_in), ""},
                          {200, tokenBody("b", row.expires_in), ""}};
    auto tokens = h.source(h.config());
    const auto start = h.now;
    REQUIRE(*tokens.token() == "a");
    h.now = start + row.still_cached_after;
    CHECK(*tokens.token() == "a");
    h.now = start + row.refreshed_after;
    CHECK(*tokens.token() == "b");
  }
}

TEST_CASE("invalidate drops the cached token so the next call fetches a new one",
          "[connector][oauth2]") {
  Harness h;
  auto tokens = h.source(h.config());
  REQUIRE(*tokens.token() == "tok-1");
  REQUIRE(*tokens.token() == "tok-1");
  tokens.invalidate();
  REQUIRE(*tokens.token() == "tok-2");
  CHECK(h.endpoint.count() == 2);
}

TEST_CASE("RFC 6749 5.2 error answers become Auth errors that name the error code",
          "[connector][oauth2]") {
  struct Row {
    int status;
    const char* body;
    ErrorKind kind;
    const char* must_contain;
    const char* reason;
  };
  const Row rows[] = {
      {401,
       R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]})",
       ErrorKind::Auth, "invalid_client: AADSTS7000215", "Entra's answer to a wrong secret"},
      {400, R"({"error":"invalid_scope","error_description":"AADSTS70011: The provided value for scope is not valid."})",
       ErrorKind::Auth, "invalid_scope", "a 400 from the token endpoint is a credential/grant problem"},
      {400, R"({"error":"unauthorized_client"})", ErrorKind::Auth, "unauthorized_client",
       "code without a description"},
      {403, "<html>forbidden</html>", ErrorKind::Auth, "HTTP 403", "non-JSON refusal"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    Harness h;
    h.endpoint.answers = {{row.status, row.body, ""}};
    auto tokens = h.source(h.config());
    auto t = tokens.token();
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().kind == row.kind);
    CHECK_THAT(t.error().message, Catch::Contains(row.must_contain));
    CHECK_THAT(t.error().message, Catch::Contains(h.endpoint.url()));
    CHECK(t.error().where == "directory 'entra'");
    CHECK_FALSE(t.error().hint.empty());
    CHECK(t.error().message.find("s3cr3t") == std::string::npos);
    CHECK(h.endpoint.count() == 1);  // 4xx is never retried
  }
}

TEST_CASE("an error description echoing the secret is redacted", "[connector][oauth2]") {
  Harness h;
  h.endpoint.answers = {
      {401, R"({"error":"invalid_client","error_description":"secret s3cr3t value&more is wrong"})",
       ""}};
  auto tokens = h.source(h.config());
  auto t = tokens.token();
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message.find("s3cr3t") == std::string::npos);
  CHECK_THAT(t.error().message, Catch::Contains("[redacted]"));
}

TEST_CASE("a 503 from the token endpoint is retried with backoff, then succeeds",
          "[connector][oauth2]") {
  Harness h;
  h.endpoint.answers = {{503, R"({"error":"temporarily_unavailable"})", ""},
                        {503, R"({"error":"temporarily_unavailable"})", "7"},
                        {200, tokenBody("late", 3599), ""}};
  auto tokens = h.source(h.config());
  auto t = tokens.token();
  REQUIRE(t.ok());
  CHECK(*t == "late");
  CHECK(h.endpoint.count() == 3);
  // full jitter (random 0.5 of the 500 ms cap), then the server's Retry-After
  REQUIRE(h.sleeps.size() == 2);
  CHECK(h.sleeps[0] == 250ms);
  CHECK(h.sleeps[1] == 7000ms);
}

TEST_CASE("a token endpoint that keeps failing gives a Transient error after the retries",
          "[connector][oauth2]") {
  Harness h;
  h.endpoint.answers = {{500, "{}", ""}};
  auto tokens = h.source(h.config());
  auto t = tokens.token();
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().kind == ErrorKind::Transient);
  CHECK(h.endpoint.count() == 4);
}

TEST_CASE("a 200 without a usable access_token is a Permanent error", "[connector][oauth2]") {
  for (const char* body : {R"({"token_type":"Bearer"})", R"({"access_token":""})", "not json",
                           R"({"access_token":42})"}) {
    INFO(body);
    Harness h;
    h.endpoint.answers = {{200, body, ""}};
    auto tokens = h.source(h.config());
    auto t = tokens.token();
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().kind == ErrorKind::Permanent);
    CHECK_THAT(t.error().message, Catch::Contains("no access_token"));
  }
}

TEST_CASE("the issued token is registered with the redactor", "[connector][oauth2]") {
  Harness h;
  h.endpoint.answers = {{200, tokenBody("eyJ0eXAi.payload.sig", 3599), ""}};
  auto tokens = h.source(h.config());
  REQUIRE(tokens.token().ok());
  const std::string leaked = "request failed, token was eyJ0eXAi.payload.sig";
  CHECK(h.redactor->redact(leaked) == "request failed, token was [redacted]");
  CHECK(h.redactor->redact("secret: s3cr3t value&more") == "secret: [redacted]");
}

TEST_CASE("private_key_jwt sends a client assertion and signs a new one for every attempt",
          "[connector][oauth2]") {
  Harness h;
  h.endpoint.answers = {{503, "{}", ""}, {200, tokenBody("jwt-token", 3599), ""}};
  auto cfg = h.config(oauth2::ClientAuth::PrivateKeyJwt);
  cfg.client_secret.clear();
  int signed_count = 0;
  cfg.client_assertion = [&]() -> certgate::core::Result<std::string> {
    return std::string("assertion-") + std::to_string(++signed_count);
  };
  auto tokens = h.source(cfg);
  auto t = tokens.token();
  REQUIRE(t.ok());
  CHECK(*t == "jwt-token");
  REQUIRE(h.endpoint.count() == 2);
  CHECK(h.endpoint.at(0).form.at("client_assertion") == "assertion-1");
  CHECK(h.endpoint.at(1).form.at("client_assertion") == "assertion-2");
  CHECK(h.endpoint.at(1).form.at("client_assertion_type") ==
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  CHECK(h.endpoint.at(1).form.at("client_id") == "app-1");
  CHECK(h.endpoint.at(1).form.count("client_secret") == 0);
  CHECK(h.sleeps.size() == 1);
  CHECK(h.redactor->redact("x assertion-2 y") == "x [redacted] y");
}

TEST_CASE("private_key_jwt without a signer or with a failing signer sends nothing",
          "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config(oauth2::ClientAuth::PrivateKeyJwt);
  {
    auto tokens = h.source(cfg);
    auto t = tokens.token();
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().kind == ErrorKind::Internal);
  }
  cfg.client_assertion = []() -> certgate::core::Result<std::string> {
    return certgate::core::makeError(ErrorKind::Invalid, "key file unreadable");
  };
  auto tokens = h.source(cfg);
  auto t = tokens.token();
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().kind == ErrorKind::Invalid);
  CHECK(h.endpoint.count() == 0);
}

TEST_CASE("formEncode follows application/x-www-form-urlencoded", "[connector][oauth2]") {
  struct Row {
    const char* in;
    const char* out;
  };
  const Row rows[] = {
      {"abcXYZ019-._~", "abcXYZ019-._~"},
      {"a b", "a+b"},
      {"https://graph.microsoft.com/.default", "https%3A%2F%2Fgraph.microsoft.com%2F.default"},
      {"p+w&d=1%", "p%2Bw%26d%3D1%25"},
      {"\xC3\xA9", "%C3%A9"},
  };
  for (const auto& row : rows) CHECK(oauth2::formEncode(row.in) == row.out);
}

TEST_CASE("a refresh token switches the grant to refresh_token", "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config(oauth2::ClientAuth::SecretBasic);
  cfg.scope.clear();
  cfg.refresh_token = "rt-non-expiring";
  auto src = h.source(cfg);
  auto t = src.token();
  REQUIRE(t.ok());
  CHECK(*t == "tok-1");
  const auto seen = h.endpoint.at(0);
  CHECK(seen.form.at("grant_type") == "refresh_token");
  CHECK(seen.form.at("refresh_token") == "rt-non-expiring");
  CHECK(seen.authorization.rfind("Basic ", 0) == 0);
  CHECK(seen.form.count("client_secret") == 0);
}

TEST_CASE("json_body sends Cornerstone's JSON token request", "[connector][oauth2]") {
  Harness h;
  auto cfg = h.config(oauth2::ClientAuth::JsonBody);
  cfg.scope = "all";
  auto src = h.source(cfg);
  auto t = src.token();
  REQUIRE(t.ok());
  CHECK(*t == "tok-1");
  const auto seen = h.endpoint.at(0);
  CHECK(seen.content_type == "application/json");
  CHECK(seen.authorization.empty());
  const auto body = nlohmann::json::parse(seen.body);
  CHECK(body == nlohmann::json{{"clientId", "app-1"}, {"clientSecret", "s3cr3t value&more"},
                               {"grantType", "client_credentials"}, {"scope", "all"}});
}
