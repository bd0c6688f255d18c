#pragma once
// Verifying signed JSON Web Tokens (RFC 7519) against a JSON Web Key Set (RFC 7517 section 5),
// RS256 only (RFC 7518 section 3.3). Used for pushes a learning system signs with rotating keys
// it publishes as a JWKS, such as Canvas Live Events delivered over HTTPS with "Sign Payload"
// (developerdocs.instructure.com/services/canvas/data-services/live-events/overview/
// file.data_service_setup: the POST body is a signed JWT carrying the event in its claims; the
// JWKS holds the previous, current and next key; the JWT header's `kid` names the key).
//
// Contract:
//  - Pure apart from OpenSSL; never throws; thread-safe.
//  - Only RS256 is accepted: a token whose header says `none`, HS256 or anything else is refused
//    before any key is looked at, so a public key can never be used as an HMAC secret.
//  - Errors never contain key material or the token.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace certgate::connectors::jwt {

struct Jwk {
  std::string kid;         // may be empty when the set has a single key without one
  std::string public_pem;  // SubjectPublicKeyInfo PEM built from the JWK's `n` and `e`
};

// The PEM public key of an RSA JWK's modulus `n` and exponent `e` (base64url, RFC 7518 6.3.1).
core::Result<std::string> rsaPublicKeyPem(std::string_view n, std::string_view e);

// The RSA signing keys of a JWKS document ({"keys": [...]}): keys with kty RSA whose `use` is
// absent or "sig" and whose `alg` is absent or "RS256". Other keys are skipped. Invalid, naming
// `where` (a file or URL), when the text is not a JWKS or holds no usable key.
core::Result<std::vector<Jwk>> parseJwks(std::string_view json, std::string_view where);

struct JwtRules {
  std::int64_t now = 0;         // unix seconds
  std::int64_t leeway_s = 60;   // allowed clock difference for exp, nbf and iat
  std::string issuer;           // when set, the `iss` claim must equal it
};

struct VerifiedJwt {
  std::string claims_json;  // the payload, byte for byte as signed
  std::string kid;
  std::string jti;          // the `jti` claim, "" when absent
};

// Verifies a compact JWS (header.payload.signature) whose header says "alg":"RS256":
//  - the key is the one whose `kid` matches the header's; a header without `kid` is accepted
//    only when the set holds exactly one key. No matching key: NotFound (the caller may fetch
//    the set again, keys rotate);
//  - the signature must verify; the claims must be a JSON object;
//  - `exp` (when present) must not be more than leeway_s in the past, `nbf` and `iat` (when
//    present) not more than leeway_s in the future, and `iss` must match rules.issuer when set.
// Every other failure is Invalid, saying which check failed.
core::Result<VerifiedJwt> verifyJwt(std::string_view token, const std::vector<Jwk>& keys,
                                    const JwtRules& rules);

}  // namespace certgate::connectors::jwt
