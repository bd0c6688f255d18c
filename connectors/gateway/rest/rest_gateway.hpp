#pragma once
// The `rest` gateway: API tokens on any gateway with a token REST API (a hosted
// `POST /v1/tokens` service, an in-house gateway), described entirely by options: paths are URL
// templates, the issue body is a JSON template, answers are read with JSON pointers.
//
// Contract (see docs/connectors.md, section "rest"; src/ports/gateway.hpp):
//  - makeGateway() validates every option, parses the templates and pointers (errors are
//    Invalid and name the key), reads `token` or `password` (and registers it with the
//    redactor); no network I/O. connect() reads the first page of `list_path`, so a wrong URL,
//    credential or `items_pointer` fails early (Auth on 401/403).
//  - Every request carries the credential: `token` in `auth_header` (default Authorization)
//    after `auth_scheme` (default Bearer; `none` sends the token alone), or HTTP Basic from
//    `username` and `password`.
//  - Templates: `{{name}}` placeholders. In a JSON template a string that is exactly one
//    placeholder becomes the typed value (models an array; max_budget, expires_unix and
//    ttl_seconds numbers; an absent value null); a placeholder inside a longer string is
//    interpolated as text. Substitution happens in the parsed document, so a value is always
//    JSON-escaped. In a path template every value is percent-encoded.
//  - issue(): the alias is looked up first (GET list_path, with alias_query when set, every
//    page, exact alias match): an active token is adopted (no secret), an inactive one is a
//    Conflict. Otherwise issue_method issue_path with the issue_body, and `Idempotency-Key:
//    <alias>` unless idempotency_header is off. The token ends at IssueRequest::expires_at or
//    now + TokenScope::lifetime, whichever comes first; ttl_seconds keeps 2 s of margin for
//    the request's latency. The answer gives the id (id_pointer), the secret (secret_pointer)
//    and optionally the expiry (expires_pointer: ISO 8601 or unix seconds). The secret is
//    registered with the redactor and returned once, with its sha256 digest. When the answer
//    is lost (transport failure, 5xx, a 409) the alias is looked up again and the token adopted,
//    so a retry never mints a second token. The issue request is repeated by itself only on
//    429.
//  - revoke(): revoke_method revoke_path (`{{token_id}}`), with revoke_body when set; 404/410
//    is a no-op.
//  - observe(): pages GET list_path (next_pointer as a URL or, with cursor_param, a cursor; or
//    the Link header's rel="next"), at most max_pages pages, and keeps items whose alias starts
//    with alias_prefix. Whole or an error: a failed page fails the listing. A next-page URL on
//    another origin is refused (the credential would go with it).
//  - verifyRevoked(): without verify_path, Unknown (can_verify false). Otherwise GET
//    verify_path: 404/410 or an inactive item is Enforced (Pending while the revocation made by
//    this instance is younger than cache_window), an active item NotEnforced.
//  - Requests other than the issue request are retried on 5xx, 408 and transport failures
//    (jittered backoff) and on 429 after Retry-After, through ClientOptions::sleep. Errors are
//    classified as 401/403 Auth, 429 RateLimited, 5xx Transient, 400/422 Invalid, 409
//    Conflict, other 4xx Permanent, and quote the server's error message (or its body,
//    truncated), with known secrets and the member named by secret_pointer masked.
//  - One instance is used by one thread at a time.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/gateway.hpp"

namespace certgate::connectors::rest {

// The declared configuration of kind "rest".
const ports::ConfigSpec& spec();

// Validates `options`, reads `token` or `password` through `secrets` and registers it with
// `redactor`. Errors are Invalid, name the key and carry the option's `where`. A relative
// `ca_file` resolves against `base_dir`. `client_options` carries test seams (sleep, clock,
// random); the `ca_file` and `timeout` options override it.
core::Result<std::unique_ptr<ports::Gateway>> makeGateway(const std::string& name,
                                                          const ports::Options& options,
                                                          const std::string& base_dir,
                                                          const ports::SecretReader& secrets,
                                                          std::shared_ptr<http::Redactor> redactor,
                                                          http::ClientOptions client_options = {});

}  // namespace certgate::connectors::rest
