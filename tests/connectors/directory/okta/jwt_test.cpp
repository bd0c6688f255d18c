// connectors/common/jwt: base64url, RS256 signing and verification (the Okta client assertion).
#include "connectors/common/jwt.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fakes/okta/okta_fake.hpp"

using certgate::core::ErrorKind;
namespace jwt = certgate::connectors::jwt;
namespace fake = certgate::testing::okta;

namespace {

const fake::RsaKeyPair& keys() {
  static const fake::RsaKeyPair k = fake::generateRsaKeyPair();
  return k;
}

const fake::RsaKeyPair& otherKeys() {
  static const fake::RsaKeyPair k = fake::generateRsaKeyPair();
  return k;
}

}  // namespace

TEST_CASE("base64url encodes the RFC 4648 test vectors without padding", "[unit][jwt]") {
  struct Case {
    const char* plain;
    const char* encoded;
  };
  const Case cases[] = {{"", ""},         {"f", "Zg"},         {"fo", "Zm8"},
                        {"foo", "Zm9v"},  {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
                        {"foobar", "Zm9vYmFy"}};
  for (const auto& c : cases) {
    CHECK(jwt::base64UrlEncode(c.plain) == c.encoded);
    CHECK(jwt::base64UrlDecode(c.encoded) == std::optional<std::string>(c.plain));
  }
  // The URL-safe alphabet: 0xfb 0xff -> "-_8" (standard base64 would give "+/8=").
  CHECK(jwt::base64UrlEncode(std::string("\xfb\xff", 2)) == "-_8");
  CHECK(jwt::base64UrlDecode("-_8") == std::optional<std::string>(std::string("\xfb\xff", 2)));
  CHECK(jwt::base64UrlDecode("Zg==") == std::optional<std::string>("f"));
  CHECK_FALSE(jwt::base64UrlDecode("Zm9v+").has_value());
  CHECK_FALSE(jwt::base64UrlDecode("Z").has_value());
}

TEST_CASE("an RS256 JWS verifies with the public key and carries header and claims unchanged",
          "[unit][jwt]") {
  const std::string header = R"({"alg":"RS256","typ":"JWT","kid":"k1"})";
  const std::string claims = R"({"iss":"c","sub":"c","aud":"https://x/oauth2/v1/token","exp":2})";
  auto signed_jws = jwt::signRs256(header, claims, keys().private_pem);
  REQUIRE(signed_jws.ok());
  const std::string& jws = *signed_jws;
  CHECK(std::count(jws.begin(), jws.end(), '.') == 2);
  CHECK(jws.find('=') == std::string::npos);
  CHECK(jws.substr(0, jws.find('.')) == jwt::base64UrlEncode(header));

  auto verified = jwt::verifyRs256(jws, keys().public_pem);
  REQUIRE(verified.ok());
  CHECK(verified->header_json == header);
  CHECK(verified->claims_json == claims);
}

TEST_CASE("verification fails for another key, altered claims, a changed alg or a bad shape",
          "[unit][jwt]") {
  const std::string header = R"({"alg":"RS256","typ":"JWT"})";
  auto jws = jwt::signRs256(header, R"({"sub":"a"})", keys().private_pem);
  REQUIRE(jws.ok());

  SECTION("another public key") {
    auto r = jwt::verifyRs256(*jws, otherKeys().public_pem);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Invalid);
    CHECK_THAT(r.error().message, Catch::Contains("signature does not verify"));
  }
  SECTION("claims swapped after signing") {
    const auto first = jws->find('.');
    const auto second = jws->find('.', first + 1);
    const std::string forged = jws->substr(0, first + 1) + jwt::base64UrlEncode(R"({"sub":"admin"})") +
                               jws->substr(second);
    CHECK_FALSE(jwt::verifyRs256(forged, keys().public_pem).ok());
  }
  SECTION("alg none") {
    const std::string unsigned_jws =
        jwt::base64UrlEncode(R"({"alg":"none"})") + "." + jwt::base64UrlEncode(R"({"sub":"a"})") + ".";
    auto r = jwt::verifyRs256(unsigned_jws, keys().public_pem);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("alg is not RS256"));
  }
  SECTION("two parts") {
    CHECK_FALSE(jwt::verifyRs256("abc.def", keys().public_pem).ok());
  }
}

TEST_CASE("a bad private key is Invalid, names the option and never echoes the key",
          "[unit][jwt]") {
  SECTION("not PEM at all") {
    const std::string secret_text = "hunter2-not-a-key";
    auto r = jwt::signRs256("{}", "{}", secret_text, "private_key");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Invalid);
    CHECK_THAT(r.error().message, Catch::StartsWith("private_key:"));
    CHECK(r.error().message.find(secret_text) == std::string::npos);
  }
  SECTION("a public key where a private key belongs") {
    auto r = jwt::checkRsaPrivateKey(keys().public_pem, "private_key");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("not a readable PEM private key"));
    CHECK(r.error().message.find("MII") == std::string::npos);
  }
  SECTION("a mangled body") {
    std::string broken = keys().private_pem;
    broken[broken.size() / 2] = '!';
    broken[broken.size() / 2 + 1] = '!';
    auto r = jwt::checkRsaPrivateKey(broken, "private_key");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::Invalid);
  }
  SECTION("an encrypted key") {
    auto r = jwt::checkRsaPrivateKey(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        "private_key");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("encrypted"));
  }
  SECTION("a good key passes") {
    CHECK(jwt::checkRsaPrivateKey(keys().private_pem, "private_key").ok());
  }
}

TEST_CASE("randomJwtId gives distinct base64url ids", "[unit][jwt]") {
  const std::string a = jwt::randomJwtId();
  const std::string b = jwt::randomJwtId();
  CHECK(a.size() == 22);
  CHECK(a != b);
  CHECK(jwt::base64UrlDecode(a).has_value());
}
