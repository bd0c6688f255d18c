#include "core/token_plan.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace certgate::core {
namespace {

struct AliasParts {
  int cycle = 0;
  int rotation = 0;
};

// Reads the trailing ":c<cycle>:r<rotation>" of an alias; 0/0 when absent.
AliasParts parseAlias(std::string_view alias) {
  AliasParts out;
  const auto r = alias.rfind(":r");
  const auto c = alias.rfind(":c", r == std::string_view::npos ? alias.size() : r);
  auto num = [](std::string_view text) {
    int v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  };
  if (r != std::string_view::npos) out.rotation = num(alias.substr(r + 2));
  if (c != std::string_view::npos && (r == std::string_view::npos || c < r))
    out.cycle = num(alias.substr(c + 2, (r == std::string_view::npos ? alias.size() : r) - c - 2));
  return out;
}

const Verdict* findVerdict(const PersonVerdicts& p, Sym track) {
  for (const Verdict& v : p.verdicts)
    if (v.track == track) return &v;
  return nullptr;
}

using GrantKey = std::tuple<Sym, std::string, std::string>;  // track, gateway, scope

bool actionLess(const TokenAction& a, const TokenAction& b) {
  return std::tie(a.kind, a.gateway, a.person, a.scope, a.token_id, a.alias) <
         std::tie(b.kind, b.gateway, b.person, b.scope, b.token_id, b.alias);
}

}  // namespace

std::string tokenAlias(const std::string& person, std::string_view track, const std::string& scope,
                       int cycle, int rotation) {
  return "certgate:" + person + ":" + std::string(track) + ":" + scope + ":c" +
         std::to_string(cycle) + ":r" + std::to_string(rotation);
}

TokenPlan planTokens(const TokenPlanInput& in) {
  TokenPlan out;
  const SymbolTable& symbols = *in.symbols;

  std::map<GrantKey, const TokenGrant*> grants;
  std::set<std::string> mapped_gateways;
  for (const TokenGrant& g : in.mappings) {
    if (g.track == kNoSym || g.gateway.empty() || g.scope.empty()) continue;
    grants.emplace(GrantKey{g.track, g.gateway, g.scope}, &g);
    mapped_gateways.insert(g.gateway);
  }
  std::unordered_map<std::string, std::set<std::string>> live;  // gateway -> live token ids
  for (const ObservedTokens& o : in.observed) {
    auto& ids = live[o.gateway];
    ids.insert(o.token_ids.begin(), o.token_ids.end());
    for (const std::string& orphan : o.orphan_ids) {
      if (!mapped_gateways.count(o.gateway)) continue;
      TokenAction a;
      a.kind = TokenActionKind::Revoke;
      a.gateway = o.gateway;
      a.reason = TokenReason::Orphan;
      a.cause = Reason::UnknownMember;
      a.token_id = orphan;
      out.actions.push_back(std::move(a));
    }
  }
  for (const std::string& g : mapped_gateways)
    if (!live.count(g)) out.unobserved.push_back(g);

  // The ledger by (person, grant), live tokens only; tokens of unmapped grants are reported.
  std::map<std::pair<std::string, GrantKey>, std::vector<const LedgerToken*>> held;
  std::map<std::pair<std::string, GrantKey>, int> max_rotation;  // over every ledger token
  for (const LedgerToken& t : in.ledger) {
    const GrantKey key{t.track, t.gateway, t.scope};
    if (!grants.count(key)) {
      if (t.live) out.outside_allow_list.push_back(t);
      continue;
    }
    const auto slot = std::make_pair(t.person_key, key);
    const AliasParts parts = parseAlias(t.alias);
    auto [it, fresh] = max_rotation.emplace(slot, parts.rotation);
    if (!fresh) it->second = std::max(it->second, parts.rotation);
    if (!t.live) continue;
    auto gw = live.find(t.gateway);
    if (gw == live.end() || !gw->second.count(t.token_id)) continue;  // gone or not observed
    held[slot].push_back(&t);
  }

  std::set<std::string> known;
  for (const PersonVerdicts& p : in.people) {
    known.insert(p.person_key);
    for (const auto& [key, g] : grants) {
      if (!live.count(g->gateway)) continue;  // not observed: no actions
      const auto slot = std::make_pair(p.person_key, key);
      std::vector<const LedgerToken*> tokens;
      if (auto h = held.find(slot); h != held.end()) tokens = h->second;
      std::sort(tokens.begin(), tokens.end(), [](const LedgerToken* a, const LedgerToken* b) {
        return std::tie(a->issued_at, a->token_id) < std::tie(b->issued_at, b->token_id);
      });
      const Verdict* v = findVerdict(p, g->track);
      const std::string_view track_name = symbols.name(g->track);

      auto revoke = [&](const LedgerToken& t, TokenReason reason) {
        TokenAction a;
        a.kind = TokenActionKind::Revoke;
        a.person = p.person_key;
        a.track = g->track;
        a.gateway = g->gateway;
        a.scope = g->scope;
        a.reason = reason;
        a.token_id = t.token_id;
        a.alias = t.alias;
        a.state = v ? v->state : State::NotStarted;
        if (reason == TokenReason::NotEntitled) {
          const RemovalCause c = removalCause(p, g->track);
          a.cause = c.reason;
          a.state = c.state;
          a.source_dependent = c.source_dependent;
          if (a.source_dependent && !p.sources_complete) {
            out.skipped.push_back(std::move(a));
            return;
          }
        }
        out.actions.push_back(std::move(a));
      };

      if (!v || !v->entitled) {
        for (const LedgerToken* t : tokens) revoke(*t, TokenReason::NotEntitled);
        continue;
      }

      // Entitled: the capped expiry of a token issued now.
      std::optional<Instant> cap = v->access_ends_at;
      if (g->lifetime.count() > 0) {
        const Instant by_lifetime = in.now + g->lifetime;
        cap = cap ? std::min(*cap, by_lifetime) : by_lifetime;
      }
      auto issue = [&](TokenReason reason, int rotation) {
        TokenAction a;
        a.kind = TokenActionKind::Issue;
        a.person = p.person_key;
        a.track = g->track;
        a.gateway = g->gateway;
        a.scope = g->scope;
        a.reason = reason;
        a.cause = Reason::Entitled;
        a.state = v->state;
        a.cycle = v->cycle;
        a.rotation = rotation;
        a.alias = tokenAlias(p.person_key, track_name, g->scope, v->cycle, rotation);
        a.expires_at = cap;
        out.actions.push_back(std::move(a));
      };
      const int next_rotation = [&] {
        auto m = max_rotation.find(slot);
        return m == max_rotation.end() ? 0 : m->second + 1;
      }();

      if (tokens.empty()) {
        issue(max_rotation.count(slot) ? TokenReason::Missing : TokenReason::Entitled,
              next_rotation);
        continue;
      }
      const LedgerToken& newest = *tokens.back();
      const AliasParts parts = parseAlias(newest.alias);
      if (parts.cycle < v->cycle) {
        issue(TokenReason::Recertified, next_rotation);
      } else if (newest.expires_at && *newest.expires_at - g->rotate_before <= in.now &&
                 (!v->access_ends_at || *v->access_ends_at > *newest.expires_at)) {
        issue(TokenReason::Rotation, next_rotation);
      }
      // Older tokens go once the newest has been live for the overlap (or they expired).
      for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        const LedgerToken& older = *tokens[i];
        const bool overlap_done = newest.issued_at + g->overlap <= in.now;
        const bool expired = older.expires_at && *older.expires_at <= in.now;
        if (overlap_done || expired) revoke(older, TokenReason::Superseded);
      }
    }
  }

  // Ledger tokens of people no longer known: not entitled to anything.
  for (const auto& [slot, tokens] : held) {
    if (known.count(slot.first)) continue;
    for (const LedgerToken* t : tokens) {
      TokenAction a;
      a.kind = TokenActionKind::Revoke;
      a.person = t->person_key;
      a.track = t->track;
      a.gateway = t->gateway;
      a.scope = t->scope;
      a.reason = TokenReason::NotEntitled;
      a.cause = Reason::NoVerdict;
      a.source_dependent = true;  // the person may reappear with complete data
      a.token_id = t->token_id;
      a.alias = t->alias;
      out.actions.push_back(std::move(a));
    }
  }

  std::sort(out.actions.begin(), out.actions.end(), actionLess);
  std::sort(out.skipped.begin(), out.skipped.end(), actionLess);
  return out;
}

const char* toString(TokenActionKind k) {
  switch (k) {
    case TokenActionKind::Revoke: return "revoke";
    case TokenActionKind::Issue: return "issue";
  }
  return "?";
}

const char* toString(TokenReason r) {
  switch (r) {
    case TokenReason::Entitled: return "entitled";
    case TokenReason::Rotation: return "rotation";
    case TokenReason::Recertified: return "recertified";
    case TokenReason::Missing: return "missing";
    case TokenReason::Superseded: return "superseded";
    case TokenReason::NotEntitled: return "not_entitled";
    case TokenReason::Orphan: return "orphan";
    case TokenReason::Operator: return "operator";
  }
  return "?";
}

}  // namespace certgate::core
