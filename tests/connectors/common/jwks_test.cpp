// connectors/common/jwks: RS256 JWTs verified against a JWK Set, as Canvas Live Events signed
// over HTTPS arrive (a compact JWS body whose header's kid names a key of the published JWKS).
#include "connectors/common/jwks.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "connectors/common/jwt.hpp"
#include "support/jwt_signer.hpp"

using certgate::core::ErrorKind;
using certgate::testing::JwtSigner;
using Json = nlohmann::json;
namespace jwt = certgate::connectors::jwt;

namespace {

constexpr std::int64_t kNow = 1795000000;

const JwtSigner& current() {
  static const JwtSigner s("2026-11");
  return s;
}
const JwtSigner& next() {
  static const JwtSigner s("2026-12");
  return s;
}
const JwtSigner& stranger() {
  static const JwtSigner s("2026-11");  // same kid, another key
  return s;
}

std::vector<jwt::Jwk> keySet() {
  auto keys = jwt::parseJwks(certgate::testing::jwks(current(), next()).dump(), "jwks.json");
  REQUIRE(keys.ok());
  return *keys;
}

Json event() {
  return {{"metadata", {{"event_name", "grade_change"}, {"event_time", "2026-11-24T10:00:00Z"}}},
          {"body", {{"student_sis_id", "E0004"}}},
          {"iat", kNow - 5},
          {"exp", kNow + 300},
          {"jti", "evt-1"}};
}

jwt::JwtRules rules() {
  jwt::JwtRules r;
  r.now = kNow;
  return r;
}

}  // namespace

TEST_CASE("a JWT signed by a key of the set verifies and gives its claims, kid and jti",
          "[unit][jwt]") {
  auto v = jwt::verifyJwt(next().sign(event()), keySet(), rules());
  REQUIRE(v.ok());
  CHECK(v->kid == "2026-12");
  CHECK(v->jti == "evt-1");
  CHECK(Json::parse(v->claims_json)["body"]["student_sis_id"] == "E0004");
}

TEST_CASE("a JWT is refused when any part of it was changed or signed by another key",
          "[unit][jwt]") {
  struct Case {
    const char* reason;
    std::string token;
    ErrorKind kind;
    const char* says;
  };
  const std::string good = current().sign(event());
  const auto dot = good.find('.');
  std::string flipped = good;
  flipped[dot + 5] = flipped[dot + 5] == 'A' ? 'B' : 'A';  // one payload character
  Json other = event();
  other["body"]["student_sis_id"] = "E0666";
  const std::string swapped =
      good.substr(0, dot) + "." + jwt::base64UrlEncode(other.dump()) + good.substr(good.rfind('.'));
  const Case cases[] = {
      {"a payload byte flipped", flipped, ErrorKind::Invalid, "signature does not verify"},
      {"the payload replaced", swapped, ErrorKind::Invalid, "signature does not verify"},
      {"signed by another key under a known kid", stranger().sign(event()), ErrorKind::Invalid,
       "signature does not verify"},
      {"a kid the set does not hold", current().sign(event(), {{"kid", "2025-01"}}),
       ErrorKind::NotFound, "kid '2025-01' is not in the key set"},
      {"no kid while the set holds two keys", current().sign(event(), {{"kid", nullptr}}),
       ErrorKind::NotFound, "no kid"},
      {"alg none", certgate::testing::unsignedJwt(event()), ErrorKind::Invalid,
       "alg 'none' is refused"},
      {"alg HS256", current().sign(event(), {{"alg", "HS256"}}), ErrorKind::Invalid,
       "alg 'HS256' is refused"},
      {"not a JWT at all", "{\"metadata\": {}}", ErrorKind::Invalid, "not compact"},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    auto v = jwt::verifyJwt(c.token, keySet(), rules());
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().kind == c.kind);
    CHECK_THAT(v.error().message, Catch::Contains(c.says));
  }
}

TEST_CASE("exp, nbf, iat and iss are checked with a small leeway", "[unit][jwt]") {
  struct Case {
    const char* reason;
    Json change;
    bool ok;
  };
  const Case cases[] = {
      {"expired beyond the leeway", {{"exp", kNow - 61}}, false},
      {"expired within the leeway", {{"exp", kNow - 30}}, true},
      {"issued in the future", {{"iat", kNow + 120}}, false},
      {"not valid before a future time", {{"nbf", kNow + 120}}, false},
      {"exp that is not a number", {{"exp", "tomorrow"}}, false},
      {"no exp, iat or jti at all", {{"exp", nullptr}, {"iat", nullptr}, {"jti", nullptr}}, true},
      {"the expected issuer", {{"iss", "https://live-events.example"}}, true},
      {"another issuer", {{"iss", "https://evil.example"}}, false},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    Json claims = event();
    for (const auto& [k, v] : c.change.items()) {
      if (v.is_null())
        claims.erase(k);
      else
        claims[k] = v;
    }
    jwt::JwtRules r = rules();
    if (c.change.contains("iss")) r.issuer = "https://live-events.example";
    auto v = jwt::verifyJwt(current().sign(claims), keySet(), r);
    CHECK(v.ok() == c.ok);
  }
  // Without an issuer rule, iss is not looked at.
  Json with_iss = event();
  with_iss["iss"] = "anything";
  CHECK(jwt::verifyJwt(current().sign(with_iss), keySet(), rules()).ok());
}

TEST_CASE("a single-key set verifies a token without kid, and bad key sets say what is wrong",
          "[unit][jwt]") {
  auto one = jwt::parseJwks(certgate::testing::jwks(current()).dump(), "one.json");
  REQUIRE(one.ok());
  CHECK(jwt::verifyJwt(current().sign(event(), {{"kid", nullptr}}), *one, rules()).ok());

  auto not_jwks = jwt::parseJwks("[1, 2]", "/etc/certgate/canvas-jwks.json");
  REQUIRE_FALSE(not_jwks.ok());
  CHECK(not_jwks.error().where == "/etc/certgate/canvas-jwks.json");
  CHECK_THAT(not_jwks.error().message, Catch::Contains("not a JWK Set"));

  // Only RSA signing keys count; a set of an EC key and an encryption key holds none.
  Json others = {{"keys",
                  {{{"kty", "EC"}, {"crv", "P-256"}, {"x", "AA"}, {"y", "AA"}},
                   {{"kty", "RSA"}, {"use", "enc"}, {"n", current().jwk()["n"]}, {"e", "AQAB"}}}}};
  auto none = jwt::parseJwks(others.dump(), "x.json");
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error().message, Catch::Contains("no RSA signing key"));

  const JwtSigner small("small", 1024);
  auto weak = jwt::parseJwks(certgate::testing::jwks(small).dump(), "weak.json");
  REQUIRE_FALSE(weak.ok());
  CHECK_THAT(weak.error().message, Catch::Contains("1024 bits"));
}
