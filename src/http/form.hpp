#pragma once
// application/x-www-form-urlencoded (HTML forms, RFC 7662 requests, query strings).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace certgate::http {

// The fields of `text` in order ("a=1&b=x+y%21" -> {a: 1}, {b: "x y!"}); a field without '='
// has an empty value; empty fields ("a=1&&b=2") are skipped. Invalid (a '%' not followed by two
// hex digits) when the text is malformed.
core::Result<std::vector<std::pair<std::string, std::string>>> parseForm(std::string_view text);

// Percent-decoding with '+' as a space; Invalid on a bad escape.
core::Result<std::string> formDecode(std::string_view text);

}  // namespace certgate::http
