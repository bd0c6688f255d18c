// The YAML helpers behind every settings loader: UTF-8 checks, key suggestions, paths.

#include "settings/yaml_support.hpp"

#include <catch2/catch.hpp>
#include <string_view>

namespace certgate::settings::detail {
namespace {

TEST_CASE("UTF-8 text passes and the first bad byte is located", "[unit][settings]") {
  CHECK_FALSE(findInvalidUtf8("plain ascii\nline two\n"));
  CHECK_FALSE(
      findInvalidUtf8("Gr\xC3\xBC\xC3\x9F"
                      "e \xE2\x82\xAC \xF0\x9F\x98\x80\n"));

  struct Case {
    const char* reason;
    std::string_view bytes;
    int line;
    int column;
    unsigned byte;
  };
  const Case cases[] = {
      {"a Latin-1 byte", "a: 1\nb: f\xFCr\n", 2, 5, 0xFC},
      {"a truncated sequence at the end", "x\xE2\x82", 1, 2, 0xE2},
      {"an overlong encoding of '/'", "\xC0\xAF", 1, 1, 0xC0},
      {"a UTF-16 surrogate", "ab\xED\xA0\x80", 1, 3, 0xED},
      {"a code point beyond U+10FFFF", "\xF4\x90\x80\x80", 1, 1, 0xF4},
      {"a UTF-16 byte-order mark", "\xFF\xFEt\0r", 1, 1, 0xFF},
      {"columns count characters, not bytes", "\xC3\xA9\xC3\xA9\x80", 1, 3, 0x80},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    const auto problem = findInvalidUtf8(c.bytes);
    REQUIRE(problem);
    CHECK(problem->line == c.line);
    CHECK(problem->column == c.column);
    CHECK(problem->byte == c.byte);
  }
}

TEST_CASE("The closest key is suggested within two edits or a case/underscore change",
          "[unit][settings]") {
  constexpr std::string_view keys[] = {"recertifyDays", "graceDays", "renewWindowDays", "modules"};
  CHECK(closestKey("recertifyDay", keys) == "recertifyDays");
  CHECK(closestKey("modlues", keys) == "modules");
  CHECK(closestKey("recertify_days", keys) == "recertifyDays");
  CHECK(closestKey("expiry", keys).empty());
  CHECK(closestKey("grace", keys).empty());  // four edits away
}

TEST_CASE("Relative paths resolve against the base directory", "[unit][settings]") {
  CHECK(resolvePath("/etc/certgate", "tracks/genai.yaml") == "/etc/certgate/tracks/genai.yaml");
  CHECK(resolvePath("/etc/certgate", "../mappings/items.yaml") == "/etc/mappings/items.yaml");
  CHECK(resolvePath("/etc/certgate", "/var/lib/certgate/db") == "/var/lib/certgate/db");
}

TEST_CASE("Scalars convert strictly", "[unit][settings]") {
  CHECK(parseInteger("42") == 42);
  CHECK(parseInteger(" -7 ") == -7);
  CHECK_FALSE(parseInteger("4.5"));
  CHECK_FALSE(parseInteger("12abc"));
  CHECK(parseNumber("75.5") == Approx(75.5));
  CHECK_FALSE(parseNumber("nan"));
  CHECK_FALSE(parseNumber("inf"));
  CHECK(parseBool("Yes") == true);
  CHECK(parseBool("off") == false);
  CHECK_FALSE(parseBool("maybe"));
}

}  // namespace
}  // namespace certgate::settings::detail
