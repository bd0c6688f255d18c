#include "connectors/directory/graph/graph_odata.hpp"

#include <catch2/catch.hpp>

namespace graph = certgate::connectors::graph;

TEST_CASE("OData string literals double single quotes", "[connector][graph]") {
  struct Row {
    const char* in;
    const char* out;
    const char* reason;
  };
  const Row rows[] = {
      {"plain", "'plain'", "no quote"},
      {"O'Brien", "'O''Brien'", "one quote doubled"},
      {"''", "''''''", "only quotes"},
      {"", "''", "empty value"},
      {"R&D 'Core' team", "'R&D ''Core'' team'", "quotes among other punctuation"},
  };
  for (const auto& row : rows) {
    INFO(row.reason);
    CHECK(graph::odataString(row.in) == row.out);
  }
}

TEST_CASE("query values are percent-encoded so a $filter survives any server",
          "[connector][graph]") {
  CHECK(graph::encodeQueryValue("mail eq 'a+b@x.com'") == "mail%20eq%20%27a%2Bb%40x.com%27");
  CHECK(graph::encodeQueryValue("a&b=c#d?e/f") == "a%26b%3Dc%23d%3Fe%2Ff");
  CHECK(graph::encodeQueryValue("Az09-._~") == "Az09-._~");
  CHECK(graph::encodeQueryValue("\xC3\xA9") == "%C3%A9");
}

TEST_CASE("only GUID-shaped object ids are accepted for request paths", "[connector][graph]") {
  CHECK(graph::isObjectId("00000000-0000-4000-8000-000000000007"));
  CHECK(graph::isObjectId("ABCDEF01-2345-6789-abcd-ef0123456789"));
  CHECK_FALSE(graph::isObjectId(""));
  CHECK_FALSE(graph::isObjectId("user@contoso.example"));
  CHECK_FALSE(graph::isObjectId("00000000-0000-4000-8000-00000000000"));    // short
  CHECK_FALSE(graph::isObjectId("00000000-0000-4000-8000-0000000000000"));  // long
  CHECK_FALSE(graph::isObjectId("00000000-0000-4000-8000/../../users/x"));
  CHECK_FALSE(graph::isObjectId("0000000g-0000-4000-8000-000000000007"));
  CHECK_FALSE(graph::isObjectId("00000000000004000800000000000000007---"));
}

TEST_CASE("property paths allow one nested level and nothing injectable", "[connector][graph]") {
  CHECK(graph::isPropertyPath("employeeType"));
  CHECK(graph::isPropertyPath("extension_0a1b_costCenter"));
  CHECK(graph::isPropertyPath("onPremisesExtensionAttributes/extensionAttribute1"));
  CHECK_FALSE(graph::isPropertyPath(""));
  CHECK_FALSE(graph::isPropertyPath("a/b/c"));
  CHECK_FALSE(graph::isPropertyPath("/a"));
  CHECK_FALSE(graph::isPropertyPath("a eq 'x' or id"));
  CHECK_FALSE(graph::isPropertyPath("a,b"));
}

TEST_CASE("Graph error bodies are read, other bodies give empty fields", "[connector][graph]") {
  const auto e = graph::parseGraphError(
      R"({"error":{"code":"Request_BadRequest","message":"One or more added object references already exist for the following modified properties: 'members'.","innerError":{"date":"2026-01-01T00:00:00","request-id":"rid-1","client-request-id":"rid-1"}}})");
  CHECK(e.code == "Request_BadRequest");
  CHECK(e.request_id == "rid-1");
  CHECK(graph::isAlreadyMember(400, e));
  CHECK_FALSE(graph::isAlreadyMember(404, e));
  CHECK_FALSE(graph::isAbsentReference(400, e));

  const auto removed = graph::parseGraphError(
      R"({"error":{"code":"Request_BadRequest","message":"One or more removed object references do not exist for the following modified properties: 'members'."}})");
  CHECK(graph::isAbsentReference(400, removed));
  CHECK(graph::isAbsentReference(404, graph::GraphErrorBody{}));
  CHECK_FALSE(graph::isAbsentReference(400, graph::GraphErrorBody{"Request_BadRequest", "x", ""}));

  for (const char* body : {"", "<html>", "[]", R"({"error":"invalid_client"})"}) {
    const auto none = graph::parseGraphError(body);
    CHECK(none.code.empty());
    CHECK(none.message.empty());
  }
}
