#pragma once
// The `litellm` gateway: virtual keys on a LiteLLM proxy, through its key management API
// (https://docs.litellm.ai/docs/proxy/virtual_keys; ../shared/reference/gateway-alerts.md §1).
//
// Contract (see docs/connectors.md, section "litellm"):
//  - makeGateway() validates the options, reads `master_key` (and registers it with the
//    redactor); no network I/O. connect() lists one key, so a wrong URL or master key fails
//    early (Auth on 401/403).
//  - Every call sends `Authorization: Bearer <master key>`; writes also send
//    `litellm-changed-by: certgate` for LiteLLM's audit trail.
//  - issue(): the alias is the key's `key_alias` (LiteLLM keeps aliases unique). The alias is
//    looked up first (GET /key/list?key_alias=...; the newest active key when older proxies
//    hold duplicates): an active key is adopted (no secret), a blocked or expired one is a
//    Conflict. Otherwise POST /key/generate with `duration` in
//    seconds (relative, so the proxy's clock does not matter), ending 2 s before
//    IssueRequest::expires_at or now + TokenScope::lifetime, whichever comes first (no duration
//    when expires_at is core::kNever and there is no lifetime), `models`, `max_budget`,
//    `budget_duration`, `user_id`, `team_id` (option) and `metadata.certgate` {person, track,
//    scope, alias, and IssueRequest::metadata}. IssuedToken::expires_at is on certgate's clock.
//    When the answer is lost (transport failure, 5xx) or LiteLLM answers that the alias exists,
//    the alias is looked up again and the key adopted, so a retry never mints a second key.
//    An empty model list is refused without `team_id` (LiteLLM reads it as "every model").
//  - token_id is LiteLLM's key hash (`token`, SHA-256 hex of the key); the `sk-...` secret is
//    returned only in IssuedToken::secret and never appears in an error. A token_id that looks
//    like a secret (`sk-...`) is refused without being sent.
//  - revoke(): revoke_mode delete (POST /key/delete; 404 "No keys found" is a no-op) or block
//    (GET /key/info, then POST /key/block unless already blocked; unknown keys are a no-op).
//  - observe(): pages GET /key/list (return_full_object, 100 per page, filtered by team_id when
//    set) and keeps keys whose alias starts with alias_prefix; if the total changes while paging
//    the listing restarts, and after three tries it is a Transient error (never a partial list).
//  - verifyRevoked(): GET /key/info. Still active: NotEnforced. Expired: Enforced (LiteLLM
//    checks expiry on every request, cached or not). Deleted or blocked: Pending while the
//    revocation is younger than cache_window (each LiteLLM instance keeps keys in an in-memory
//    cache, 60 s by default), Enforced after it. The revocation time is this
//    instance's own revoke(), the key's updated_at (block) or deleted_at (delete, from
//    /key/list?status=deleted); when none is known the caller has waited the window already.
//  - Retries: GETs, deletes and blocks are retried on 5xx/transport failures with jittered
//    backoff and on 429 after Retry-After; /key/generate only on 429 (otherwise it is resolved
//    through the alias as above). All waits go through ClientOptions::sleep.
//  - Errors carry LiteLLM's {"error": {message, type, param, code}} (or FastAPI's "detail");
//    anything shaped like a LiteLLM key (`sk-...`) is masked in them.
//  - One instance is used by one thread at a time.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/gateway.hpp"

namespace certgate::connectors::litellm {

// The declared configuration of kind "litellm".
const ports::ConfigSpec& spec();

// Validates `options`, reads `master_key` through `secrets` and registers it with `redactor`.
// Errors are Invalid, name the key and carry the option's `where`. A relative `ca_file`
// resolves against `base_dir`. `client_options` carries test seams (sleep, clock, random); the
// `ca_file` and `timeout` options override it.
core::Result<std::unique_ptr<ports::Gateway>> makeGateway(const std::string& name,
                                                          const ports::Options& options,
                                                          const std::string& base_dir,
                                                          const ports::SecretReader& secrets,
                                                          std::shared_ptr<http::Redactor> redactor,
                                                          http::ClientOptions client_options = {});

}  // namespace certgate::connectors::litellm
