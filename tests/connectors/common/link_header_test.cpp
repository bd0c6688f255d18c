#include "connectors/common/link_header.hpp"

#include <catch2/catch.hpp>

namespace http = certgate::connectors::http;

TEST_CASE("nextLink finds rel=next in RFC 8288 Link headers", "[connector][http]") {
  struct Row {
    const char* header;
    std::optional<std::string> next;
    const char* reason;
  };
  const Row rows[] = {
      {R"(<https://api.example.com/users?after=abc&limit=200>; rel="next")",
       "https://api.example.com/users?after=abc&limit=200", "single link, quoted rel"},
      {R"(<https://a/u?after=1>; rel="self", <https://a/u?after=2>; rel="next")", "https://a/u?after=2",
       "Okta style: self then next"},
      {"<https://a/p3>; rel=next, <https://a/p1>; rel=first", "https://a/p3", "unquoted rel"},
      {R"(<https://a/p2>; rel="prev next")", "https://a/p2", "several relation types in one rel"},
      {R"(<https://a/p2>; REL="NEXT")", "https://a/p2", "parameter name and value case-insensitive"},
      {R"(<https://a/x?q=a,b>; title="page, two"; rel="next")", "https://a/x?q=a,b",
       "commas inside the URL and inside a quoted parameter"},
      {R"(  <https://a/p2> ;rel = "next" ; type="application/json" )", "https://a/p2", "odd whitespace"},
      {R"(<https://a/p1>; rel="prev", <https://a/p1>; rel="first")", std::nullopt, "no next"},
      {R"(<https://a/p2>; rel="nextpage")", std::nullopt, "rel must match a whole token"},
      {R"(<https://a/p2>; rel="previous"; rel="next")", std::nullopt, "only the first rel counts"},
      {"", std::nullopt, "empty header"},
      {"garbage, <https://a/p9>; rel=next", "https://a/p9", "a malformed entry is skipped"},
      {"<https://a/p9; rel=next", std::nullopt, "unterminated target"},
  };
  for (const auto& row : rows) {
    INFO(row.reason << ": " << row.header);
    CHECK(http::nextLink(row.header) == row.next);
  }
}

TEST_CASE("parseLinks returns every link with its relation types", "[connector][http]") {
  auto links = http::parseLinks(R"(<https://a/1>; rel="first prev", <https://a/3>; rel=last)");
  REQUIRE(links.size() == 2);
  CHECK(links[0].url == "https://a/1");
  CHECK(links[0].rels == std::vector<std::string>{"first", "prev"});
  CHECK(links[1].url == "https://a/3");
  CHECK(links[1].rels == std::vector<std::string>{"last"});
}
