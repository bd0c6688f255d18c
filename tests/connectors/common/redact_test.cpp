#include "connectors/common/redact.hpp"

#include <catch2/catch.hpp>

namespace http = certgate::connectors::http;

TEST_CASE("redact masks every secret form and keeps the rest", "[connector][http]") {
  struct Row {
    const char* input;
    const char* expected;
    const char* reason;
  };
  const Row rows[] = {
      {"Authorization: Bearer eyJhbGciOi.abc.def\r\nAccept: */*",
       "Authorization: [redacted]\r\nAccept: */*", "authorization header value, other headers kept"},
      {"authorization:SSWS 00abcDEF", "authorization:[redacted]", "header name case-insensitive"},
      {"Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: [redacted]", "proxy header"},
      {"sent bearer abc.DEF-123_x to the API", "sent bearer [redacted] to the API", "bearer token in prose"},
      {"okta said: SSWS 00Xyz-token rejected", "okta said: SSWS [redacted] rejected", "Okta SSWS token"},
      {"GET https://h/cb?code=1&access_token=tok123&page=2",
       "GET https://h/cb?code=1&access_token=[redacted]&page=2", "access_token in a query string"},
      {"grant_type=client_credentials&client_secret=s3cr3t&scope=a",
       "grant_type=client_credentials&client_secret=[redacted]&scope=a", "client_secret in a form body"},
      {"username=ann&password=hunter2", "username=ann&password=[redacted]", "password in a form body"},
      {"POST https://moodle.example.com/webservice/rest/server.php?wstoken=0a1b2c&wsfunction=f",
       "POST https://moodle.example.com/webservice/rest/server.php?wstoken=[redacted]&wsfunction=f",
       "Moodle wstoken in a query string"},
      {R"({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})",
       R"({"access_token": "[redacted]", "token_type": "Bearer", "expires_in": 3600})",
       "JSON access_token; token_type value is a scheme name, not a secret"},
      {R"({"client_secret":"a\"b","name":"x"})", R"({"client_secret":"[redacted]","name":"x"})",
       "JSON client_secret with an escaped quote"},
      {R"({"password" : "pw", "key": "k-1", "keys": "visible"})",
       R"({"password" : "[redacted]", "key": "[redacted]", "keys": "visible"})", "JSON password and key"},
      {"GET https://api.example.com/users?page=2&limit=200", "GET https://api.example.com/users?page=2&limit=200",
       "no secrets: unchanged"},
      {"passwordless=true&tokens=3", "passwordless=true&tokens=3", "similar names are not secrets"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    CHECK(http::redact(row.input) == row.expected);
  }
}

TEST_CASE("Redactor::add masks known secret values anywhere", "[connector][http]") {
  http::Redactor r;
  r.add("canary-7f3a9");
  r.add("p@ss word");
  r.add("");  // ignored
  CHECK(r.redact("failed for canary-7f3a9 at /x/canary-7f3a9") == "failed for [redacted] at /x/[redacted]");
  CHECK(r.redact("q=p%40ss%20word") == "q=[redacted]");
  CHECK(r.redact("user p@ss word") == "user [redacted]");
  CHECK(r.redact("Authorization: Bearer zzz") == "Authorization: [redacted]");  // patterns still apply
  CHECK(r.redact("nothing secret here") == "nothing secret here");
}

TEST_CASE("redact masks recognisable token formats wherever they appear", "[connector][http]") {
  using certgate::connectors::http::redact;
  const std::string cgt = "cgt_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0AbCdE";
  CHECK(redact("issued " + cgt + " to alice") == "issued cgt_[redacted] to alice");
  CHECK(redact("key sk-1234567890abcdefXYZ refused") == "key sk-[redacted] refused");
  // Short look-alikes and ordinary words stay.
  CHECK(redact("task-list cgt_short sk-x") == "task-list cgt_short sk-x");
}
