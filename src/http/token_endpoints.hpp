#pragma once
// The token authority's HTTP endpoints, answered by a ports::TokenVerifier (certgate's `builtin`
// gateway: connectors/gateway/builtin/token_authority.hpp). See docs/operations.md, "Putting
// nginx or Caddy in front".
//
// POST /oauth2/introspect — OAuth 2.0 Token Introspection (RFC 7662)
//  - The caller (the protected resource) authenticates with `Authorization: Bearer <secret>` or
//    HTTP Basic with the secret as password (the user name is not checked). The secret is
//    compared in constant time. Missing or wrong: 401 {"error":"invalid_client"} with
//    `WWW-Authenticate: Bearer realm=...` and `Basic realm=...`. No secret configured: every
//    caller gets that 401.
//  - Body: application/x-www-form-urlencoded, `token` (required, once), `token_type_hint`
//    (optional, ignored). Anything else: 400 {"error":"invalid_request"}.
//  - Answer 200: {"active":true,"scope","client_id","sub","exp" (when the token expires),"iat",
//    "token_type":"Bearer"}, or exactly {"active":false} for a malformed, unknown, revoked or
//    expired token. `Cache-Control: no-store`.
//
// ANY /auth/verify — for nginx auth_request, Caddy forward_auth and the like (any method: nginx
// sends the subrequest with the client's method)
//  - The token: `Authorization: Bearer <token>`, else (when accept_api_key_header) `X-Api-Key`.
//  - Valid: 204 with X-Certgate-Subject, X-Certgate-Scope, X-Certgate-Client-Id,
//    X-Certgate-Token-Id and, when the token expires, X-Certgate-Expires (RFC 3339, UTC).
//  - No token: 401 with `WWW-Authenticate: Bearer realm="..."`; a malformed, unknown, revoked
//    or expired one: 401 with `WWW-Authenticate: Bearer realm="...", error="invalid_token"`.
//  - Required scope: the `scope` query parameter or the `X-Certgate-Required-Scope` header
//    (space-separated; every value must be in the token's scope). Missing from the token: 403
//    with `WWW-Authenticate: Bearer ..., error="insufficient_scope", scope="..."`.
//  - The verifier failing (store unreadable): 503. Proxies read that as an error and refuse
//    the request (fail closed).
//
// Neither endpoint logs, echoes or stores a token.

#include <string>

#include "http/server.hpp"
#include "ports/token_verifier.hpp"

namespace certgate::http {

inline constexpr const char* kIntrospectPath = "/oauth2/introspect";
inline constexpr const char* kVerifyPath = "/auth/verify";

struct TokenEndpointOptions {
  std::string introspection_secret;  // empty: introspection refuses every caller
  bool accept_api_key_header = true;
  std::string realm = "certgate";
};

// Registers both endpoints on `server` (before start()). `verifier` must outlive the server.
void mountTokenEndpoints(Server& server, ports::TokenVerifier& verifier,
                         TokenEndpointOptions options);

}  // namespace certgate::http
