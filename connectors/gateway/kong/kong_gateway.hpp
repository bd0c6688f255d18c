#pragma once
// The `kong` gateway: API keys for Kong Gateway's key-auth plugin, authorised with the ACL
// plugin, managed through the Kong Admin API
// (https://developer.konghq.com/plugins/key-auth/, https://developer.konghq.com/plugins/acl/).
//
// Contract (see docs/connectors.md, section "kong"; src/ports/gateway.hpp):
//  - makeGateway() validates the options, reads admin_token (and registers it with the
//    redactor); no network I/O. connect() reads GET / (the key-auth and acl plugins must be
//    available) and one page of /key-auths, so bad Admin API credentials fail early (Auth).
//  - One Kong consumer per person: username = consumer_prefix + person key, custom_id = the
//    person key, tagged "certgate". It is looked up by username and created when missing; an
//    existing consumer is used as it is (never overwritten).
//  - certgate supplies the key (Kong OSS keeps keys in plain text and returns them on GET): a
//    cgt_ token from builtin::mintToken(), POSTed to /consumers/{id}/key-auth with
//    ttl = seconds until IssueRequest::expires_at (and at most TokenScope::lifetime), so Kong
//    itself refuses the key once access ends. The credential's tags carry "certgate" and the
//    alias, person, scope and ACL group (tag-encoded, see kong_gateway.cpp), which is how
//    findByAlias() and observe() find certgate's keys with GET /key-auths?tags=...
//  - The ACL group (TokenScope::scope, or its single model with acl_from: models) is added to
//    the consumer before the key, tagged "certgate"; an existing group is kept.
//  - issue() is idempotent by alias: an existing credential with the alias is adopted (no
//    secret). A 409 on the POST (the same key sent twice after a broken connection) is resolved
//    by looking the alias up: the credential carrying our key is returned as issued, any other
//    is adopted. Never two credentials for one alias from one connector.
//  - revoke(token_id) removes the consumer's ACL group when it is tagged "certgate" and no
//    other certgate credential of the consumer carries that group, then deletes the credential
//    (404 at any step: no_op). A credential without the "certgate" tag is never deleted.
//  - verifyRevoked(): a credential still listed is NotEnforced; a deleted one is Pending until
//    `cache_window` has passed since the revocation (or since this instance first saw it gone),
//    then Enforced. Kong nodes drop a deleted key from their cache at their next database poll
//    (db_update_frequency, default 5 s); certgate never holds the key, so it cannot probe the
//    proxy itself.
//  - Requests are retried on 5xx and transport failures (jittered backoff) and on 429 (after
//    Retry-After), through ClientOptions::sleep. Errors carry Kong's name, code, message and
//    fields, classified as 401/403 Auth, 404 NotFound, 409 Conflict, 400 Invalid, 429
//    RateLimited, 5xx Transient; a key never appears in an error.
//  - One instance is used by one thread at a time.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/gateway.hpp"

namespace certgate::connectors::kong {

// The declared configuration of kind "kong".
const ports::ConfigSpec& spec();

// Validates `options`, reads `admin_token` through `secrets` (when given) and registers it with
// `redactor`. Errors are Invalid, name the key and carry the option's `where`. A relative
// `ca_file` resolves against `base_dir`. `client_options` carries test seams (sleep, clock,
// random); the `ca_file` and `timeout` options override it.
core::Result<std::unique_ptr<ports::Gateway>> makeGateway(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

// The tag form of a value (an alias, person key, scope or group) inside a certgate tag: Kong
// filters only on tags made of letters, digits and . - _ ~, so every other byte (and '~') is
// written as ~XX (upper-case hex). Reversible with decodeTagValue().
std::string encodeTagValue(std::string_view value);
std::optional<std::string> decodeTagValue(std::string_view encoded);

}  // namespace certgate::connectors::kong
