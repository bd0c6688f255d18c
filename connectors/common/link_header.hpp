#pragma once
// RFC 8288 Link header parsing, for APIs that paginate with `Link: <url>; rel="next"`
// (Okta, GitHub-style REST APIs, Canvas). Pure; never throws; malformed entries are skipped.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certgate::connectors::http {

struct Link {
  std::string url;                // the target between < and >, unchanged (may be relative)
  std::vector<std::string> rels;  // relation types, lower-cased, from rel="a b" or rel=a
};

// All links of one header value (or several header values joined with ", ").
std::vector<Link> parseLinks(std::string_view header_value);

// The target of the first link whose relation types include "next", if any.
std::optional<std::string> nextLink(std::string_view header_value);

}  // namespace certgate::connectors::http
