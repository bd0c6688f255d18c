// Templates of the rest gateway: typed substitution, escaping, missing values, path encoding
// and the errors a bad template gives.
#include "connectors/gateway/rest/rest_template.hpp"

#include <catch2/catch.hpp>

namespace rest = certgate::connectors::rest;
using Json = nlohmann::json;

namespace {

const rest::Placeholders kIssue{{"alias", "models", "max_budget", "expires_at", "user_id"}, true};

Json render(const std::string& text, const rest::TemplateValues& values) {
  auto t = rest::JsonTemplate::parse(text, kIssue);
  if (!t) FAIL(t.error().message);
  return t->render(values);
}

}  // namespace

TEST_CASE("a string that is exactly one placeholder becomes the typed value", "[unit][rest]") {
  const rest::TemplateValues values{{"alias", "certgate:E1:T:s:c1:r0"},
                                    {"models", Json::array({"gpt-4o-mini", "claude"})},
                                    {"max_budget", 25.5},
                                    {"expires_at", "2027-01-15T00:00:00Z"}};
  const Json out = render(
      R"({"name": "{{alias}}", "scopes": "{{ models }}", "budget": "{{max_budget}}",
          "nested": [{"until": "{{expires_at}}"}], "fixed": 7})",
      values);
  CHECK(out["name"] == "certgate:E1:T:s:c1:r0");
  CHECK(out["scopes"] == Json::array({"gpt-4o-mini", "claude"}));
  CHECK(out["budget"] == 25.5);
  CHECK(out["nested"][0]["until"] == "2027-01-15T00:00:00Z");
  CHECK(out["fixed"] == 7);
}

TEST_CASE("placeholders inside a longer string are interpolated as text", "[unit][rest]") {
  const Json out = render(R"j({"label": "certgate {{alias}} for {{models}} ({{max_budget}})"})j",
                          {{"alias", "a1"}, {"models", Json::array({"m1", "m2"})}, {"max_budget", 3}});
  CHECK(out["label"] == "certgate a1 for m1,m2 (3)");
}

TEST_CASE("missing values render as null, or as nothing inside text", "[unit][rest]") {
  const Json out = render(
      R"({"user": "{{user_id}}", "budget": "{{max_budget}}", "cycle": "{{metadata.cycle}}",
          "note": "user={{user_id}};"})",
      {{"max_budget", nullptr}});
  CHECK(out["user"].is_null());
  CHECK(out["budget"].is_null());
  CHECK(out["cycle"].is_null());
  CHECK(out["note"] == "user=;");
}

TEST_CASE("values are JSON-escaped: a value cannot change the document", "[unit][rest]") {
  const std::string evil = R"(x", "admin": true, "y": "{{alias}})";
  const Json out = render(R"({"name": "{{alias}}", "label": "n={{alias}}"})", {{"alias", evil}});
  REQUIRE(out.size() == 2);
  CHECK(out["name"] == evil);
  CHECK(out["label"] == "n=" + evil);
  CHECK_FALSE(out.contains("admin"));
}

TEST_CASE("path templates percent-encode every value", "[unit][rest]") {
  const rest::Placeholders allowed{{"token_id"}, false};
  auto t = rest::PathTemplate::parse("/v1/tokens/{{token_id}}/revoke", allowed);
  REQUIRE(t);
  CHECK(t->uses("token_id"));
  CHECK(t->render({{"token_id", "tok_1"}}) == "/v1/tokens/tok_1/revoke");
  CHECK(t->render({{"token_id", "../admin?x=1&y"}}) == "/v1/tokens/..%2Fadmin%3Fx%3D1%26y/revoke");
  CHECK(t->render({}) == "/v1/tokens//revoke");
}

TEST_CASE("bad templates are refused with what is wrong", "[unit][rest]") {
  SECTION("not JSON") {
    auto t = rest::JsonTemplate::parse(R"({"name": "{{alias}}",})", kIssue);
    REQUIRE_FALSE(t);
    CHECK(t.error().message.rfind("is not valid JSON (", 0) == 0);
  }
  SECTION("a JSON scalar") {
    auto t = rest::JsonTemplate::parse(R"("{{alias}}")", kIssue);
    REQUIRE_FALSE(t);
    CHECK(t.error().message == "must be a JSON object or array");
  }
  SECTION("an unknown placeholder") {
    auto t = rest::JsonTemplate::parse(R"({"a": {"b": "x {{secret}}"}})", kIssue);
    REQUIRE_FALSE(t);
    CHECK(t.error().message == "unknown placeholder {{secret}}");
  }
  SECTION("an unclosed placeholder") {
    auto t = rest::PathTemplate::parse("/v1/tokens/{{token_id", {{"token_id"}, false});
    REQUIRE_FALSE(t);
    CHECK(t.error().message == "'{{' without a closing '}}' in '/v1/tokens/{{token_id'");
  }
  SECTION("metadata placeholders only where metadata is allowed") {
    CHECK(rest::JsonTemplate::parse(R"({"c": "{{metadata.cycle}}"})", kIssue));
    CHECK_FALSE(rest::PathTemplate::parse("/x/{{metadata.cycle}}", {{"token_id"}, false}));
  }
}
