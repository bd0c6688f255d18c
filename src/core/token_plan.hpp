#pragma once
// Token planning: which gateway tokens to issue, rotate and revoke, from verdicts, the token
// mappings, the token ledger and the tokens the gateways report. Pure: no I/O, no clock (now is
// an input), no logging; same inputs, same plan, same order. Shares PersonVerdicts and the
// removal reasons with the group planner (core/plan.hpp).
//
// Lifecycle rules (docs/design.md, "Planning (tokens)"):
//  - An entitled person holds exactly one live token per (track, gateway, scope) mapping.
//    Its expiry is capped at the verdict's end of access (certification + grace, or the
//    exception's end), and at issue time + the mapping's lifetime when one is set.
//  - Rotation: when the newest token expires within `rotate_before` of now and access goes on
//    past it, a new token is issued (a new alias: the rotation number is part of it). The older
//    token is revoked once the newer one has been live for `overlap`, or when it expires.
//  - Recertification (a new cycle) changes the alias, so it rotates the same way.
//  - Loss of entitlement revokes every live token of the mapping at once, with the reason; the
//    stale-source guard holds back revocations that depend on data an incomplete source lacks.
//  - A token the gateway reports under certgate's alias prefix that the ledger does not know is
//    an orphan and is revoked (after crash recovery has had its chance to adopt it).
//  - A ledger token the gateway no longer reports is re-issued while the person is entitled.
//  - Gateways that were not observed get no actions.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/plan.hpp"
#include "core/symbols.hpp"
#include "core/time.hpp"

namespace certgate::core {

// One mapping: an entitled verdict for `track` grants a token for `scope` on `gateway`.
struct TokenGrant {
  Sym track = kNoSym;
  std::string gateway;
  std::string scope;
  Seconds lifetime{0};       // 0: until the end of access
  Seconds rotate_before{Seconds{7 * 86400}};  // issue the successor this long before expiry
  Seconds overlap{Seconds{86400}};            // keep the predecessor this long after rotation
};

// A token certgate issued (from the ledger). Revoked tokens (live == false) only count for the
// rotation numbering, so that a new token never reuses the alias of an old one.
struct LedgerToken {
  std::string person_key;
  Sym track = kNoSym;
  std::string gateway;
  std::string scope;
  std::string token_id;
  std::string alias;
  Instant issued_at{};
  std::optional<Instant> expires_at;
  bool live = true;
};

// What one gateway reports (certgate-owned tokens only). `observed == false`: the gateway could
// not be read, so it gets no actions.
struct ObservedTokens {
  std::string gateway;
  std::vector<std::string> token_ids;  // live tokens
  std::vector<std::string> orphan_ids; // live tokens under certgate's prefix the ledger lacks
};

enum class TokenActionKind : std::uint8_t { Revoke, Issue };

enum class TokenReason : std::uint8_t {
  Entitled,     // issue: no live token yet
  Rotation,     // issue: the newest token expires soon and access goes on
  Recertified,  // issue: a new certification cycle
  Missing,      // issue: the gateway no longer has the ledger's token
  Superseded,   // revoke: a newer token has been live for the overlap
  NotEntitled,  // revoke: see `cause` for why (expired, exception ended, ...)
  Orphan,       // revoke: a certgate-prefixed token the ledger does not know
  Operator,     // revoke: an operator revoked it by hand (a leaked token, an incident)
};

struct TokenAction {
  TokenActionKind kind = TokenActionKind::Issue;
  std::string person;   // person key ("" for an orphan)
  Sym track = kNoSym;
  std::string gateway;
  std::string scope;
  TokenReason reason = TokenReason::Entitled;
  Reason cause = Reason::Entitled;   // for NotEntitled: the group planner's removal reason
  State state = State::NotStarted;
  bool source_dependent = false;     // revoke: could change with data a source lacks
  std::string alias;                 // issue: the new alias; revoke: the token's alias
  std::string token_id;              // revoke: the token
  std::optional<Instant> expires_at; // issue: the capped expiry
  int cycle = 0;
  int rotation = 0;
};

struct TokenPlan {
  std::vector<TokenAction> actions;  // revocations first, then issues; each by (gateway, person)
  std::vector<TokenAction> skipped;  // revocations held back by the stale-source guard
  std::vector<LedgerToken> outside_allow_list;  // ledger tokens no mapping names: left alone
  std::vector<std::string> unobserved;          // mapped gateways without an observation
};

struct TokenPlanInput {
  std::span<const PersonVerdicts> people;
  std::span<const TokenGrant> mappings;
  std::span<const LedgerToken> ledger;
  std::span<const ObservedTokens> observed;
  Instant now{};
  const SymbolTable* symbols = nullptr;  // for aliases (track names); required
};

TokenPlan planTokens(const TokenPlanInput& in);

// The alias (idempotency key) of a token: stable for person, track, scope, cycle and rotation,
// e.g. "certgate:E1001:AI_SAFETY:genai-basic:c2:r0".
std::string tokenAlias(const std::string& person, std::string_view track, const std::string& scope,
                       int cycle, int rotation);

const char* toString(TokenActionKind k);
const char* toString(TokenReason r);

}  // namespace certgate::core
