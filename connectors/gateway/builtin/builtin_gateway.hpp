#pragma once
// The `builtin` gateway: certgate's own token authority. Tokens live in certgate's SQLite store
// (table authority_tokens); reverse proxies and gateways ask certgate about them on every
// request through the HTTP endpoints in src/http/token_endpoints.hpp (RFC 7662 introspection,
// nginx auth_request, Caddy forward_auth), answered by TokenAuthority (token_authority.hpp).
//
// Contract (see docs/connectors.md, section "builtin"; src/ports/gateway.hpp):
//  - makeGateway() validates the options; no I/O. connect() checks that the store holds the
//    authority table (schema 4 or later).
//  - issue(): mints a cgt_ token (token_format.hpp) and stores only its digest
//    ("sha256:<hex>"), with subject = IssueRequest::person_key, client_id = the `client_id`
//    option (default: the gateway's name), scope = TokenScope::scope followed by its models,
//    space-separated (each value must be free of white space). Expiry: the earliest of
//    IssueRequest::expires_at, now + TokenScope::lifetime and now + the `max_lifetime` option
//    (none when all three are unset); an expiry that is not in the future is Invalid.
//    Idempotent by alias: an unrevoked, unexpired token with the alias is returned with
//    `adopted` set and no secret (its digest is filled in); an expired one is retired
//    (revoked) and a new token minted. token_id is "cgt-id-" + 24 hex digits of the digest.
//  - revoke(token_id): sets revoked_at; unknown or revoked already: no_op. The next request to
//    the HTTP endpoints refuses the token (cache window 0).
//  - findByAlias(): the unrevoked token with the alias, else the latest revoked one
//    (active = false); expired tokens are reported with active = false.
//  - observe(): every unrevoked token of this gateway (expired ones with active = false);
//    revoked tokens are gone, like a deleted key.
//  - verifyRevoked(): Enforced when the token is revoked, expired or unknown (the authority
//    refuses it on the next request), NotEnforced when it is still active.
//  - Store errors keep their class (Transient: database busy, ...). The secret never appears
//    in an error or a log line.
//  - The Store is borrowed (it must outlive the gateway) and used from the caller's thread:
//    one thread at a time, like the Store itself.

#include <chrono>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "ports/clock.hpp"
#include "ports/config_spec.hpp"
#include "ports/gateway.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors::builtin {

// The declared configuration of kind "builtin".
const ports::ConfigSpec& spec();

// Validates `options` (errors are Invalid, name the key and carry the option's `where`).
// `store` is certgate's store (borrowed; must outlive the gateway; null is Invalid).
// `clock` defaults to the system clock.
core::Result<std::unique_ptr<ports::Gateway>> makeGateway(
    const std::string& name, const ports::Options& options, store::Store* store,
    std::shared_ptr<const ports::Clock> clock = nullptr);

}  // namespace certgate::connectors::builtin
