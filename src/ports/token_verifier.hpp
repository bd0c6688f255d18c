#pragma once
// The token verifier port: answers "is this bearer token active, and whose is it?" for the
// HTTP endpoints that gateways and reverse proxies call on every request (RFC 7662 token
// introspection, nginx auth_request, Caddy forward_auth). Implemented by certgate's own token
// authority (connectors/gateway/builtin); the HTTP module depends only on this interface.
//
// Contract:
//  - check() is thread-safe and called concurrently by the server's workers.
//  - A revocation committed before check() starts is honoured by that check (no cache window).
//  - Malformed, unknown, revoked and expired tokens are all nullopt: callers cannot tell them
//    apart, and neither can whoever presented the token.
//  - An error means the verifier could not answer (e.g. the store is unreadable); callers fail
//    closed.
//  - The token is never logged or put in an error.

#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::ports {

struct ActiveToken {
  std::string token_id;    // public id (never the secret)
  std::string subject;     // the person key
  std::string client_id;   // who the token was issued for (the gateway name by default)
  std::string scope;       // space-separated scope values
  core::Instant issued_at{};
  std::optional<core::Instant> expires_at;  // nullopt: no expiry
};

class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  virtual core::Result<std::optional<ActiveToken>> check(std::string_view token) = 0;
};

}  // namespace certgate::ports
