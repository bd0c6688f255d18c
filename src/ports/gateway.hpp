#pragma once
// The gateway port: an AI gateway that accepts API tokens (LiteLLM, Kong, a generic token API,
// or certgate's own token authority). certgate issues a token to each entitled person for a
// track's scope and revokes it when entitlement ends.
//
// Contract:
//  - Constructors do no I/O; connect() checks reachability and credentials (Auth on refusal).
//  - issue() is idempotent by IssueRequest::alias: when a token with that alias already exists
//    (a retry after a crash), the connector returns it with `adopted` set and no secret, instead
//    of minting a second one. The secret of a new token is returned exactly once and is never
//    logged, stored or put in an error message by the connector.
//  - A token never outlives IssueRequest::expires_at (the verdict's end of access).
//  - revoke() is idempotent: revoking an unknown or revoked token is a success with no_op set.
//  - observe() streams every token certgate owns (by its alias prefix or metadata), whole or an
//    error, like a directory listing.
//  - verifyRevoked() asks the gateway whether a revoked token is really refused now, where the
//    gateway lets us check. Gateways that cache keys (LiteLLM about 60 s, Kong per its poll
//    interval) report their cache window through capabilities(), and certgate verifies after it.
//  - Errors are classified with core::ErrorKind like every connector.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::ports {

// What a track's grant unlocks on a gateway (from mappings/: gateway, models or routes, budget,
// lifetime).
struct TokenScope {
  std::string scope;                 // certgate's name for it, e.g. "genai-basic"
  std::vector<std::string> models;   // LiteLLM models / Kong ACL group / routes
  std::optional<double> max_budget;  // in the gateway's currency unit
  std::string budget_duration;       // e.g. "30d"
  std::chrono::seconds lifetime{0};  // 0: until the end of access
};

struct IssueRequest {
  std::string person_key;   // certgate's person key
  std::string user_id;      // the person's id at the gateway (e.g. LiteLLM user_id), may be empty
  std::string track;
  TokenScope scope;
  std::string alias;        // stable: person + track + cycle; the idempotency key
  core::Instant expires_at{};  // capped at the verdict's end of access
  std::map<std::string, std::string> metadata;  // never secrets
};

struct IssuedToken {
  std::string token_id;     // the gateway's id for the token (never the secret)
  std::string secret;       // shown once; empty when adopted
  std::string alias;
  std::optional<core::Instant> expires_at;
  std::string secret_digest;  // "sha256:<hex>" of the secret, for the ledger
  bool adopted = false;     // an existing token with this alias was found and returned
};

struct ObservedToken {
  std::string token_id;
  std::string alias;
  std::string person_key;   // from the token's metadata, when the gateway keeps it
  std::string scope;
  std::optional<core::Instant> expires_at;
  bool active = true;       // false: blocked/revoked but still listed
};

enum class Enforcement : std::uint8_t {
  Enforced,     // the gateway refuses the token now
  Pending,      // revoked, but the gateway may still accept it from its cache
  NotEnforced,  // the gateway still accepts it after the cache window: alert
  Unknown,      // the gateway offers no way to check
};

struct GatewayCapabilities {
  std::chrono::seconds cache_window{0};  // how long a revoked token may still be accepted
  bool can_verify = false;               // verifyRevoked() can answer Enforced/NotEnforced
  bool supplies_secret = false;          // certgate generates the secret (Kong), not the gateway
};

struct RevokeOutcome {
  bool no_op = false;  // it was already gone or revoked
};

class Gateway {
 public:
  virtual ~Gateway() = default;
  virtual const std::string& name() const = 0;
  virtual const char* kind() const = 0;
  virtual core::Status connect() = 0;
  virtual GatewayCapabilities capabilities() const = 0;

  virtual core::Result<IssuedToken> issue(const IssueRequest& request) = 0;
  virtual core::Result<RevokeOutcome> revoke(const std::string& token_id) = 0;
  virtual core::Result<std::optional<ObservedToken>> findByAlias(const std::string& alias) = 0;
  virtual core::Status observe(const std::function<void(ObservedToken&&)>& sink) = 0;
  virtual core::Result<Enforcement> verifyRevoked(const std::string& token_id) = 0;

  virtual std::uint64_t requestCount() const = 0;
};

}  // namespace certgate::ports
