#pragma once
// Compact JSON Web Signatures (RFC 7515) with RS256 (RFC 7518 section 3.3), for OAuth 2.0
// client assertions (RFC 7523, private_key_jwt) such as the Okta service-app token request.
//
// Contract:
//  - Pure apart from OpenSSL; never throws; thread-safe.
//  - Keys are PEM text: a private key as PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA
//    PRIVATE KEY"), a public key as SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"). Encrypted private
//    keys are refused (certgate never prompts for a passphrase).
//  - Errors are Invalid and name the configuration option the key came from; they never contain
//    key material.

#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace certgate::connectors::jwt {

// RFC 4648 section 5 alphabet, without padding.
std::string base64UrlEncode(std::string_view data);
// Accepts input with or without '=' padding; nullopt on any other character or a bad length.
std::optional<std::string> base64UrlDecode(std::string_view text);

// Checks that `pem` holds an unencrypted RSA private key of at least 2048 bits.
core::Status checkRsaPrivateKey(std::string_view pem, std::string_view option);

// base64url(header) "." base64url(claims) "." base64url(RSASSA-PKCS1-v1_5 SHA-256 signature).
// `header_json` and `claims_json` are signed byte for byte as given.
core::Result<std::string> signRs256(std::string_view header_json, std::string_view claims_json,
                                    std::string_view pem_private_key,
                                    std::string_view option = "private_key");

struct VerifiedJws {
  std::string header_json;
  std::string claims_json;
};

// Verifies a compact JWS whose header says "alg":"RS256" against `pem_public_key` and returns
// the decoded header and claims. Any malformation or a bad signature is an Invalid error saying
// which check failed. Claims (exp, aud, ...) are the caller's to check.
core::Result<VerifiedJws> verifyRs256(std::string_view jws, std::string_view pem_public_key);

// The PEM public key (SubjectPublicKeyInfo) of a PEM private key.
core::Result<std::string> publicKeyPem(std::string_view pem_private_key,
                                       std::string_view option = "private_key");

// 16 random bytes from the OpenSSL CSPRNG, base64url: a fresh `jti` claim.
std::string randomJwtId();

}  // namespace certgate::connectors::jwt
