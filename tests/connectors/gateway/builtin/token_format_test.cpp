// The built-in authority's token format: prefix, entropy, checksum, digest.
#include <catch2/catch.hpp>

#include <array>
#include <set>

#include "connectors/gateway/builtin/token_format.hpp"

using namespace certgate::connectors::builtin;

TEST_CASE("CRC-32 matches the IEEE reference values", "[unit][gateway][builtin]") {
  CHECK(crc32("") == 0x00000000U);
  CHECK(crc32("123456789") == 0xCBF43926U);  // the standard check value
  CHECK(crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339U);
}

TEST_CASE("minted tokens have the prefix, the length, base62 and a valid checksum",
          "[unit][gateway][builtin]") {
  std::set<std::string> seen;
  std::array<int, 62> histogram{};
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < 2000; ++i) {
    auto t = mintToken();
    REQUIRE(t.ok());
    REQUIRE(t->size() == kTokenLength);
    CHECK(t->rfind("cgt_", 0) == 0);
    CHECK(wellFormed(*t));
    seen.insert(*t);
    for (std::size_t k = 4; k < 4 + kRandomChars; ++k)
      ++histogram[static_cast<std::size_t>(alphabet.find((*t)[k]))];
  }
  CHECK(seen.size() == 2000);  // no repeats
  // 64,000 characters over 62 symbols: about 1032 each. A biased mapping (b % 62 without
  // rejection) would give the first 8 symbols ~1.25x; allow a wide but meaningful band.
  for (int n : histogram) {
    CHECK(n > 850);
    CHECK(n < 1220);
  }
}

TEST_CASE("malformed and mistyped tokens are recognised offline", "[unit][gateway][builtin]") {
  auto t = mintToken();
  REQUIRE(t.ok());
  std::string token = *t;
  CHECK(wellFormed(token));
  std::string typo = token;
  typo[10] = typo[10] == 'a' ? 'b' : 'a';
  CHECK_FALSE(wellFormed(typo));  // one character changed: the checksum no longer matches
  CHECK_FALSE(wellFormed(token.substr(0, token.size() - 1)));
  CHECK_FALSE(wellFormed("xyz_" + token.substr(4)));
  std::string bad_char = token;
  bad_char[5] = '-';
  CHECK_FALSE(wellFormed(bad_char));
  CHECK_FALSE(wellFormed(""));
  CHECK_FALSE(wellFormed("cgt_"));
  // A well-formed token built by hand (the checksum is public, not a secret).
  const std::string body = "cgt_" + std::string(kRandomChars, 'A');
  CHECK(wellFormed(body + checksum(body)));
}

TEST_CASE("the stored digest is SHA-256 and never contains the token", "[unit][gateway][builtin]") {
  CHECK(digest("abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto t = mintToken();
  REQUIRE(t.ok());
  const std::string d = digest(*t);
  CHECK(d.size() == 7 + 64);
  CHECK(d.find(t->substr(4, 8)) == std::string::npos);
  CHECK(digest(*t) == d);  // deterministic
}
