#include "engine/token_reconcile.hpp"

#include "engine/enum_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

namespace certgate::engine {
namespace {

using core::ErrorKind;
using nlohmann::json;

// A token with no end of access (a certification that never expires, no lifetime set) still
// expires, and is rotated like any other.
constexpr core::Seconds kDefaultLifetime{90 * 86400};

void crash(const TokenOptions& o, const char* point) {
  if (o.crash_point) o.crash_point(point);
}

using detail::kReasons;
using detail::kStates;
using detail::parseEnum;
constexpr core::TokenActionKind kKinds[] = {core::TokenActionKind::Revoke,
                                            core::TokenActionKind::Issue};
constexpr core::TokenReason kTokenReasons[] = {
    core::TokenReason::Entitled,   core::TokenReason::Rotation,    core::TokenReason::Recertified,
    core::TokenReason::Missing,    core::TokenReason::Superseded,  core::TokenReason::NotEntitled,
    core::TokenReason::Orphan,     core::TokenReason::Operator};

// Revocations the brake counts: loss of entitlement and orphans, not routine rotation nor an
// operator's own revocation.
bool countsForBrake(const core::TokenAction& a) {
  return a.kind == core::TokenActionKind::Revoke && a.reason != core::TokenReason::Superseded &&
         a.reason != core::TokenReason::Operator;
}

std::string revokeReason(const core::TokenAction& a) {
  std::string r = core::toString(a.reason);
  if (a.reason == core::TokenReason::NotEntitled) r += " (" + std::string(core::toString(a.cause)) + ")";
  return r;
}

json actionJson(const core::TokenAction& a, const core::SymbolTable& symbols) {
  json j;
  j["kind"] = core::toString(a.kind);
  j["person"] = a.person;
  j["track"] = a.track == core::kNoSym ? "" : std::string(symbols.name(a.track));
  j["gateway"] = a.gateway;
  j["scope"] = a.scope;
  j["reason"] = core::toString(a.reason);
  j["cause"] = core::toString(a.cause);
  j["state"] = core::toString(a.state);
  j["source_dependent"] = a.source_dependent;
  j["alias"] = a.alias;
  j["token_id"] = a.token_id;
  j["expires_at"] = a.expires_at ? json(core::formatIso(*a.expires_at)) : json(nullptr);
  j["cycle"] = a.cycle;
  j["rotation"] = a.rotation;
  return j;
}

core::Result<core::TokenAction> actionFromJson(const json& j, core::SymbolTable& symbols) {
  core::TokenAction a;
  auto kind = parseEnum(j.value("kind", ""), kKinds);
  auto reason = parseEnum(j.value("reason", ""), kTokenReasons);
  auto cause = parseEnum(j.value("cause", ""), kReasons);
  auto state = parseEnum(j.value("state", ""), kStates);
  if (!kind || !reason || !cause || !state)
    return core::makeError(ErrorKind::Corrupt, "stored token action is not readable", {},
                           "make a new plan with certgate plan");
  a.kind = *kind;
  a.reason = *reason;
  a.cause = *cause;
  a.state = *state;
  a.person = j.value("person", "");
  const std::string track = j.value("track", "");
  a.track = track.empty() ? core::kNoSym : symbols.intern(track);
  a.gateway = j.value("gateway", "");
  a.scope = j.value("scope", "");
  a.source_dependent = j.value("source_dependent", false);
  a.alias = j.value("alias", "");
  a.token_id = j.value("token_id", "");
  if (j.contains("expires_at") && j["expires_at"].is_string()) {
    auto at = core::parseIso(j["expires_at"].get<std::string>());
    if (at) a.expires_at = *at;
  }
  a.cycle = j.value("cycle", 0);
  a.rotation = j.value("rotation", 0);
  return a;
}

}  // namespace

std::string tokenActionKey(const core::TokenAction& a) {
  return std::string("token.") + core::toString(a.kind) + ":" + a.gateway + ":" + a.person + ":" +
         a.scope + ":" + (a.kind == core::TokenActionKind::Issue ? a.alias : a.token_id);
}

TokenReconciler::TokenReconciler(store::Store& store, const settings::Settings& settings,
                                 std::vector<GatewayHandle> gateways, Deliveries deliveries)
    : store_(store),
      settings_(settings),
      gateways_(std::move(gateways)),
      deliveries_(std::move(deliveries)) {}

GatewayHandle* TokenReconciler::handle(const std::string& name) {
  const settings::GatewaySettings* gs = settings::findGateway(settings_, name);
  if (!gs) return nullptr;
  for (auto& h : gateways_)
    if (h.settings == gs) return &h;
  return nullptr;
}

const settings::TokenGrantSettings* TokenReconciler::grantOf(const std::string& track,
                                                             const std::string& gateway,
                                                             const std::string& scope) const {
  for (const auto& tg : settings_.policy->grants) {
    if (tg.track != track) continue;
    for (const auto& t : tg.tokens) {
      const settings::GatewaySettings* gs = settings::findGateway(settings_, t.gateway);
      if (gs && gs->name == gateway && t.scope == scope) return &t;
    }
  }
  return nullptr;
}

core::Status TokenReconciler::audit(const std::string& action, const std::string& subject,
                                    const std::string& details_json, core::Instant now,
                                    const TokenOptions& options) {
  store::AuditRow row;
  row.at = now;
  row.actor = options.actor;
  row.action = action;
  row.subject = subject;
  row.details_json = details_json;
  row.run_id = options.run_id;
  auto id = store_.appendAudit(row);
  if (!id) return id.error();
  return {};
}

// ---------------------------------------------------------------------------------------------
// plan

core::Result<TokenPlanResult> TokenReconciler::plan(std::span<const core::PersonVerdicts> people,
                                                    const std::string& scope_person,
                                                    core::Instant now) {
  TokenPlanResult out;
  const auto& policy = *settings_.policy;

  std::vector<core::TokenGrant> mappings;
  std::set<std::string> mapped;
  for (const auto& tg : policy.grants) {
    for (const auto& t : tg.tokens) {
      const settings::GatewaySettings* gs = settings::findGateway(settings_, t.gateway);
      if (!gs) {
        out.problems.push_back("the token grant of track " + tg.track + " (scope " + t.scope +
                               ") names no configured gateway");
        continue;
      }
      if (!gs->enabled) continue;
      core::TokenGrant g;
      g.track = policy.symbols.find(tg.track).value_or(core::kNoSym);
      g.gateway = gs->name;
      g.scope = t.scope;
      g.lifetime = t.lifetime.count() > 0 ? t.lifetime : core::Seconds{0};
      g.rotate_before = t.rotate_before;
      g.overlap = t.overlap;
      mappings.push_back(std::move(g));
      mapped.insert(gs->name);
    }
  }
  if (mappings.empty()) return out;

  auto persons = store_.persons();
  if (!persons) return persons.error();
  std::unordered_map<std::int64_t, std::string> key_of;
  for (const auto& p : *persons) key_of[p.id] = p.key;

  auto rows = store_.tokens(false);
  if (!rows) return rows.error();
  std::vector<core::LedgerToken> ledger;
  std::map<std::string, std::set<std::string>> ledger_live;  // gateway -> live token ids
  for (const auto& r : *rows) {
    core::LedgerToken t;
    auto k = key_of.find(r.person_id);
    t.person_key = k == key_of.end() ? std::to_string(r.person_id) : k->second;
    if (!scope_person.empty() && t.person_key != scope_person) continue;
    t.track = policy.symbols.find(r.track).value_or(core::kNoSym);
    t.gateway = r.gateway;
    t.scope = r.scope;
    t.token_id = r.token_id;
    t.alias = r.alias;
    t.issued_at = r.issued_at;
    t.expires_at = r.expires_at;
    t.live = !r.revoked_at.has_value();
    if (t.live) {
      ledger_live[r.gateway].insert(r.token_id);
      if (mapped.count(r.gateway)) ++out.live_tokens;
    }
    ledger.push_back(std::move(t));
  }

  std::vector<core::ObservedTokens> observed;
  for (const std::string& name : mapped) {
    GatewayHandle* h = handle(name);
    if (!h) {
      out.problems.push_back("gateway " + name +
                             " is not available (disabled, unreachable or quarantined for this "
                             "run): its tokens are not changed");
      continue;
    }
    core::ObservedTokens o;
    o.gateway = name;
    std::set<std::string> active;
    auto st = h->gateway->observe([&](ports::ObservedToken&& t) {
      if (t.active) active.insert(t.token_id);
    });
    if (!st) {
      out.problems.push_back("gateway " + name + " not observed: " + st.error().describe() +
                             "; its tokens are not changed");
      continue;
    }
    const auto& known = ledger_live[name];
    for (const auto& id : active) {
      o.token_ids.push_back(id);
      if (!known.count(id) && scope_person.empty()) o.orphan_ids.push_back(id);
    }
    for (const auto& r : *rows)
      if (r.gateway == name && !r.revoked_at && !active.count(r.token_id)) {
        auto k = key_of.find(r.person_id);
        if (!scope_person.empty() && (k == key_of.end() || k->second != scope_person)) continue;
        out.gone.push_back(r.id);
      }
    observed.push_back(std::move(o));
  }

  core::TokenPlanInput in;
  in.people = people;
  in.mappings = mappings;
  in.ledger = ledger;
  in.observed = observed;
  in.now = now;
  in.symbols = &policy.symbols;
  out.plan = core::planTokens(in);

  for (const auto& a : out.plan.actions) out.revocations += countsForBrake(a) ? 1 : 0;
  const auto pct = static_cast<std::size_t>(
      std::floor(settings_.limits.max_removal_pct / 100.0 * static_cast<double>(out.live_tokens)));
  out.threshold = std::max(static_cast<std::size_t>(std::max(0, settings_.limits.max_removals)), pct);
  out.held = out.revocations > out.threshold;
  return out;
}

// ---------------------------------------------------------------------------------------------
// apply

core::Status TokenReconciler::revokeMinted(GatewayHandle& h, const store::TokenRow& row,
                                           const std::string& why, core::Instant now,
                                           const TokenOptions& options) {
  auto r = h.gateway->revoke(row.token_id);
  if (!r) return r.error();
  auto stored = store_.tokenByAlias(row.alias);
  if (!stored) return stored.error();
  if (stored->has_value() && !(*stored)->revoked_at) {
    if (auto m = store_.markTokenRevoked((*stored)->id, now, why, "enforced", std::nullopt); !m)
      return m.error();
  }
  json d{{"gateway", row.gateway}, {"token_id", row.token_id}, {"alias", row.alias},
         {"reason", why}};
  return audit("token.revoke", row.alias, d.dump(), now, options);
}

core::Result<TokenApplyResult> TokenReconciler::revokeByOperator(const std::string& alias,
                                                                 const std::string& why,
                                                                 core::Instant now,
                                                                 const TokenOptions& options) {
  auto row = store_.tokenByAlias(alias);
  if (!row) return row.error();
  if (!row->has_value())
    return core::makeError(ErrorKind::NotFound, "no token with alias '" + alias + "'", "",
                           "list them with certgate tokens list --all");
  const store::TokenRow& t = **row;
  if (t.revoked_at)
    return core::makeError(ErrorKind::Conflict,
                           "token '" + alias + "' was revoked already at " +
                               core::formatIso(*t.revoked_at) + " (" + t.revoke_reason + ")",
                           "", "nothing to do");
  std::string person;
  if (auto persons = store_.persons(); persons) {
    for (const auto& p : *persons)
      if (p.id == t.person_id) person = p.key;
  } else {
    return persons.error();
  }
  json d{{"gateway", t.gateway}, {"token_id", t.token_id}, {"alias", alias}, {"person", person},
         {"by", options.actor},  {"why", why}};
  if (auto a = audit("token.revoke.requested", person.empty() ? alias : person, d.dump(), now,
                     options);
      !a)
    return a.error();
  TokenPlanResult plan;
  core::TokenAction a;
  a.kind = core::TokenActionKind::Revoke;
  a.person = person;
  a.track = settings_.policy->symbols.find(t.track).value_or(core::kNoSym);
  a.gateway = t.gateway;
  a.scope = t.scope;
  a.reason = core::TokenReason::Operator;
  a.alias = t.alias;
  a.token_id = t.token_id;
  plan.plan.actions.push_back(std::move(a));
  return apply(plan,
               "operator-" + std::to_string(now.time_since_epoch().count()) + "-" + t.token_id,
               true, now, options);
}

core::Result<TokenApplyResult> TokenReconciler::apply(const TokenPlanResult& plan,
                                                      const std::string& plan_id,
                                                      bool release_brake, core::Instant now,
                                                      const TokenOptions& options) {
  TokenApplyResult out;
  const auto& symbols = settings_.policy->symbols;
  auto persons = store_.persons();
  if (!persons) return persons.error();
  std::unordered_map<std::string, const store::PersonRow*> by_key;
  for (const auto& p : *persons) by_key[p.key] = &p;

  // Tokens gone from their gateway: the ledger follows.
  for (std::int64_t id : plan.gone) {
    auto all = store_.tokens(true);
    if (!all) return all.error();
    for (const auto& r : *all) {
      if (r.id != id) continue;
      const bool expired = r.expires_at && *r.expires_at <= now;
      const std::string why = expired ? "expired at the gateway"
                                      : "no longer at the gateway (deleted outside certgate)";
      if (auto m = store_.markTokenRevoked(id, now, why, "enforced", std::nullopt); !m)
        return m.error();
      json d{{"gateway", r.gateway}, {"token_id", r.token_id}, {"alias", r.alias}, {"why", why}};
      if (auto a = audit("token.gone", r.alias, d.dump(), now, options); !a) return a.error();
    }
  }

  auto ledgerRow = [&](const std::string& gateway,
                       const std::string& token_id) -> core::Result<std::optional<store::TokenRow>> {
    auto all = store_.tokens(true);
    if (!all) return all.error();
    for (auto& r : *all)
      if (r.gateway == gateway && r.token_id == token_id) return std::optional(std::move(r));
    return std::optional<store::TokenRow>();
  };

  for (const core::TokenAction& a : plan.plan.actions) {
    if (options.stop && options.stop->load()) {
      ++out.interrupted;
      continue;
    }
    const std::string track = a.track == core::kNoSym ? "" : std::string(symbols.name(a.track));
    auto fail = [&](const std::string& why) {
      ++out.failed;
      out.failures.push_back(std::string(core::toString(a.kind)) + " token " +
                             (a.person.empty() ? a.token_id : a.person) + " " + a.gateway + "/" +
                             a.scope + ": " + why);
    };
    if (a.kind == core::TokenActionKind::Revoke && plan.held && !release_brake &&
        countsForBrake(a)) {
      ++out.withheld;
      continue;
    }
    GatewayHandle* h = handle(a.gateway);
    if (!h) {
      fail("gateway " + a.gateway + " is not available");
      continue;
    }
    store::IntentRow intent;
    intent.run_id = options.run_id;
    intent.target = a.gateway + "/" + a.scope;
    intent.idempotency_key = plan_id + ":" + tokenActionKey(a);
    intent.created_at = now;

    if (a.kind == core::TokenActionKind::Revoke) {
      auto row = ledgerRow(a.gateway, a.token_id);
      if (!row) return row.error();
      intent.kind = "token.revoke";
      json payload{{"gateway", a.gateway}, {"token_id", a.token_id}, {"alias", a.alias},
                   {"person", a.person},   {"track", track},         {"scope", a.scope},
                   {"ledger_id", *row ? (*row)->id : 0}};
      intent.payload_json = payload.dump();
      auto iid = store_.addIntent(intent);
      if (!iid) {
        if (iid.error().kind == ErrorKind::Conflict) {
          ++out.already_done;
          continue;
        }
        return iid.error();
      }
      crash(options, "token.revoke.before_call");
      auto r = h->gateway->revoke(a.token_id);
      if (!r) {
        (void)store_.completeIntent(*iid, "failed", r.error().describe(), now);
        fail(r.error().describe());
        continue;
      }
      crash(options, "token.revoke.after_call");
      const ports::GatewayCapabilities caps = h->gateway->capabilities();
      const core::Seconds window = h->settings->verify_after.value_or(
          std::chrono::duration_cast<core::Seconds>(caps.cache_window));
      std::string enforcement = "unknown";
      std::optional<core::Instant> verify_after;
      if (r->no_op) {
        enforcement = "enforced";
      } else if (window.count() > 0) {
        enforcement = "pending";
        verify_after = now + window;
        ++out.pending_enforcement;
      } else if (caps.can_verify) {
        auto v = h->gateway->verifyRevoked(a.token_id);
        if (v && *v == ports::Enforcement::Enforced) enforcement = "enforced";
        else if (v && *v == ports::Enforcement::NotEnforced) enforcement = "not_enforced";
      }
      auto tx = store_.begin();
      if (!tx) return tx.error();
      if (*row) {
        if (auto m = store_.markTokenRevoked((*row)->id, now, revokeReason(a), enforcement,
                                             verify_after);
            !m)
          return m.error();
      }
      if (auto c = store_.completeIntent(*iid, "done", r->no_op ? "already revoked" : "revoked", now);
          !c)
        return c.error();
      json d = payload;
      d["reason"] = core::toString(a.reason);
      d["cause"] = core::toString(a.cause);
      d["state"] = core::toString(a.state);
      d["enforcement"] = enforcement;
      d["plan"] = plan_id;
      if (auto au = audit("token.revoke", a.person.empty() ? a.alias : a.person, d.dump(), now,
                          options);
          !au)
        return au.error();
      if (enforcement == "not_enforced") {
        if (auto au = audit("token.revoke.not_enforced", a.person, d.dump(), now, options); !au)
          return au.error();
      }
      if (auto c = tx->commit(); !c) return c.error();
      ++(r->no_op ? out.no_op : out.revoked);
      continue;
    }

    // Issue.
    const settings::TokenGrantSettings* grant = grantOf(track, a.gateway, a.scope);
    if (!grant) {
      fail("no token grant maps track " + track + " to " + a.gateway + "/" + a.scope);
      continue;
    }
    ports::SecretDelivery* delivery = nullptr;
    if (grant->delivery != settings::Delivery::None) {
      auto d = deliveries_.find(settings::toString(grant->delivery));
      if (d == deliveries_.end() || !d->second) {
        fail(std::string("delivery ") + settings::toString(grant->delivery) +
             " is not configured: no token is issued that nobody could receive");
        continue;
      }
      delivery = d->second;
    }
    auto p = by_key.find(a.person);
    if (p == by_key.end()) {
      fail("person " + a.person + " is not known");
      continue;
    }
    const store::PersonRow& person = *p->second;
    ports::IssueRequest req;
    req.person_key = person.key;
    req.user_id = person.key;
    req.track = track;
    req.scope.scope = grant->scope;
    req.scope.models = grant->models;
    req.scope.max_budget = grant->max_budget;
    req.scope.budget_duration = grant->budget_duration;
    req.scope.lifetime = grant->lifetime;
    req.alias = a.alias;
    req.expires_at = a.expires_at.value_or(now + kDefaultLifetime);
    req.metadata = {{"certgate_person", person.key},
                    {"certgate_track", track},
                    {"certgate_scope", grant->scope}};
    intent.kind = "token.issue";
    json payload{{"gateway", a.gateway},
                 {"alias", a.alias},
                 {"person", person.key},
                 {"person_id", person.id},
                 {"track", track},
                 {"scope", a.scope},
                 {"delivery", settings::toString(grant->delivery)},
                 {"expires_at", core::formatIso(req.expires_at)},
                 {"reason", core::toString(a.reason)}};
    intent.payload_json = payload.dump();
    auto iid = store_.addIntent(intent);
    if (!iid) {
      if (iid.error().kind == ErrorKind::Conflict) {
        ++out.already_done;
        continue;
      }
      return iid.error();
    }
    crash(options, "token.issue.before_call");
    auto issued = h->gateway->issue(req);
    if (!issued) {
      (void)store_.completeIntent(*iid, "failed", issued.error().describe(), now);
      fail(issued.error().describe());
      continue;
    }
    crash(options, "token.issue.after_call");
    store::TokenRow row;
    row.person_id = person.id;
    row.track = track;
    row.gateway = a.gateway;
    row.scope = a.scope;
    row.alias = a.alias;
    row.token_id = issued->token_id;
    row.secret_digest = issued->secret_digest;
    row.issued_at = now;
    row.expires_at = issued->expires_at ? issued->expires_at : std::optional(req.expires_at);
    auto rec = store_.recordToken(row);
    if (!rec) {
      std::fill(issued->secret.begin(), issued->secret.end(), '\0');
      (void)store_.completeIntent(*iid, "failed", rec.error().describe(), now);
      fail(rec.error().describe());
      continue;
    }
    crash(options, "token.issue.after_record");
    std::string delivered = "none";
    if (issued->adopted && delivery) {
      // A token with this alias already existed and its secret is not ours to deliver again:
      // revoke it; the next plan issues a fresh one under the next alias.
      (void)store_.completeIntent(*iid, "done", "adopted without its secret: revoked", now);
      if (auto rv = revokeMinted(*h, row, "adopted without its secret", now, options); !rv)
        fail(rv.error().describe());
      else
        fail("a token with alias " + a.alias +
             " already existed and its secret cannot be delivered again: revoked; the next "
             "sync issues a new one");
      continue;
    }
    if (delivery && !issued->adopted) {
      ports::SecretParcel parcel;
      parcel.delivery_id = a.alias;
      parcel.person_key = person.key;
      parcel.email = person.email;
      parcel.track = track;
      parcel.gateway = a.gateway;
      parcel.scope = a.scope;
      parcel.token_id = issued->token_id;
      parcel.secret = issued->secret;
      parcel.expires_at = row.expires_at;
      auto sent = delivery->deliver(parcel, now);
      std::fill(parcel.secret.begin(), parcel.secret.end(), '\0');
      std::fill(issued->secret.begin(), issued->secret.end(), '\0');
      if (!sent) {
        // Nobody holds this token: it must not stay live.
        (void)store_.completeIntent(*iid, "failed", "delivery failed: " + sent.error().describe(),
                                    now);
        auto rv = revokeMinted(*h, row, "secret delivery failed", now, options);
        fail("secret delivery (" + std::string(delivery->method()) +
             ") failed: " + sent.error().describe() +
             (rv ? "; the token was revoked" : "; revoking the token failed too: " +
                                                    rv.error().describe()));
        continue;
      }
      delivered = delivery->method();
      crash(options, "token.issue.after_delivery");
    }
    std::fill(issued->secret.begin(), issued->secret.end(), '\0');
    auto tx = store_.begin();
    if (!tx) return tx.error();
    if (auto c = store_.completeIntent(*iid, "done", issued->adopted ? "adopted" : "issued", now); !c)
      return c.error();
    json d = payload;
    d["token_id"] = issued->token_id;
    d["adopted"] = issued->adopted;
    d["delivered"] = delivered;
    d["plan"] = plan_id;
    if (auto au = audit("token.issue", person.key, d.dump(), now, options); !au) return au.error();
    if (auto c = tx->commit(); !c) return c.error();
    ++(issued->adopted ? out.adopted : out.issued);
  }
  for (const auto& h : gateways_) out.requests[h.settings->name] = h.gateway->requestCount();
  return out;
}

// ---------------------------------------------------------------------------------------------
// recover

core::Result<TokenRecoverResult> TokenReconciler::recover(core::Instant now,
                                                          const TokenOptions& options) {
  TokenRecoverResult out;
  auto pending = store_.pendingIntents();
  if (!pending) return pending.error();
  for (const auto& intent : *pending) {
    if (intent.kind != "token.issue" && intent.kind != "token.revoke") continue;
    json p = json::parse(intent.payload_json, nullptr, false);
    if (!p.is_object()) {
      (void)store_.completeIntent(intent.id, "abandoned", "payload unreadable", now);
      ++out.abandoned;
      continue;
    }
    const std::string gateway = p.value("gateway", "");
    const std::string alias = p.value("alias", "");
    GatewayHandle* h = handle(gateway);
    if (!h) {
      out.problems.push_back("intent " + std::to_string(intent.id) + ": gateway " + gateway +
                             " is not available; left pending");
      continue;
    }
    auto found = alias.empty() ? core::Result<std::optional<ports::ObservedToken>>(std::nullopt)
                               : h->gateway->findByAlias(alias);
    if (!found) {
      out.problems.push_back("intent " + std::to_string(intent.id) + ": " +
                             found.error().describe() + "; left pending");
      continue;
    }
    const bool live_there = found->has_value() && (*found)->active;
    auto stored = store_.tokenByAlias(alias);
    if (!stored) return stored.error();
    std::string outcome;

    if (intent.kind == "token.revoke") {
      const std::string token_id = p.value("token_id", "");
      const bool same = live_there && (alias.empty() || (*found)->token_id == token_id);
      if (same) {
        (void)store_.completeIntent(intent.id, "abandoned",
                                    "recovered: the token is still live; the next plan decides",
                                    now);
        ++out.abandoned;
        outcome = "abandoned";
      } else {
        if (stored->has_value() && !(*stored)->revoked_at)
          if (auto m = store_.markTokenRevoked((*stored)->id, now,
                                               "revoked (recovered after an interrupted run)",
                                               "enforced", std::nullopt);
              !m)
            return m.error();
        (void)store_.completeIntent(intent.id, "done", "recovered: the revocation had happened",
                                    now);
        ++out.done;
        outcome = "done";
      }
    } else {
      const std::string delivery = p.value("delivery", "none");
      if (!live_there) {
        (void)store_.completeIntent(intent.id, "abandoned",
                                    "recovered: no token was minted; the next plan issues it", now);
        ++out.abandoned;
        outcome = "abandoned";
      } else {
        store::TokenRow row;
        if (stored->has_value()) {
          row = **stored;
        } else {
          row.person_id = p.value("person_id", std::int64_t{0});
          row.track = p.value("track", "");
          row.gateway = gateway;
          row.scope = p.value("scope", "");
          row.alias = alias;
          row.token_id = (*found)->token_id;
          row.issued_at = now;
          row.expires_at = (*found)->expires_at;
          if (!row.expires_at)
            if (auto at = core::parseIso(p.value("expires_at", "")); at) row.expires_at = *at;
          auto rec = store_.recordToken(row);
          if (!rec) return rec.error();
        }
        if (delivery == "none") {
          (void)store_.completeIntent(intent.id, "done", "recovered: the token was adopted", now);
          ++out.adopted;
          outcome = "adopted";
        } else {
          // Whether the secret reached its person is unknown: the token must not stay live.
          if (auto rv = revokeMinted(*h, row, "secret delivery unconfirmed after an interrupted run",
                                     now, options);
              !rv) {
            out.problems.push_back("intent " + std::to_string(intent.id) + ": " +
                                   rv.error().describe() + "; left pending");
            continue;
          }
          (void)store_.completeIntent(intent.id, "done",
                                      "recovered: minted, delivery unconfirmed: revoked", now);
          ++out.revoked;
          outcome = "revoked";
        }
      }
    }
    json d = p;
    d["intent"] = intent.id;
    d["outcome"] = outcome;
    if (auto a = audit("intent.recovered", p.value("person", ""), d.dump(), now, options); !a)
      return a.error();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// verify

core::Result<TokenVerifyResult> TokenReconciler::verify(core::Instant now,
                                                        const TokenOptions& options) {
  TokenVerifyResult out;
  auto due = store_.tokensToVerify(now);
  if (!due) return due.error();
  for (const auto& t : *due) {
    GatewayHandle* h = handle(t.gateway);
    if (!h) {
      ++out.still_pending;
      continue;
    }
    auto v = h->gateway->verifyRevoked(t.token_id);
    if (!v || *v == ports::Enforcement::Pending) {
      ++out.still_pending;
      continue;
    }
    std::string state = "unknown";
    if (*v == ports::Enforcement::Enforced) state = "enforced";
    if (*v == ports::Enforcement::NotEnforced) state = "not_enforced";
    if (auto s = store_.setTokenEnforcement(t.id, state); !s) return s.error();
    json d{{"gateway", t.gateway}, {"token_id", t.token_id}, {"alias", t.alias},
           {"scope", t.scope},     {"track", t.track},       {"enforcement", state}};
    if (state == "not_enforced") {
      ++out.not_enforced;
      out.alerts.push_back("token " + t.alias + " on " + t.gateway +
                           " is still accepted after its revocation");
      if (auto a = audit("token.revoke.not_enforced", t.alias, d.dump(), now, options); !a)
        return a.error();
    } else {
      ++(state == "enforced" ? out.enforced : out.unknown);
      if (auto a = audit("token.revoke.verified", t.alias, d.dump(), now, options); !a)
        return a.error();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON

std::string tokenPlanToJson(const TokenPlanResult& r, const core::SymbolTable& symbols) {
  json j;
  j["held"] = r.held;
  j["revocations"] = r.revocations;
  j["live_tokens"] = r.live_tokens;
  j["threshold"] = r.threshold;
  j["actions"] = json::array();
  for (const auto& a : r.plan.actions) j["actions"].push_back(actionJson(a, symbols));
  j["skipped"] = json::array();
  for (const auto& a : r.plan.skipped) j["skipped"].push_back(actionJson(a, symbols));
  j["unobserved"] = r.plan.unobserved;
  j["problems"] = r.problems;
  j["gone"] = r.gone;
  return j.dump();
}

core::Result<TokenPlanResult> tokenPlanFromJson(const std::string& text,
                                                core::SymbolTable& symbols) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return core::makeError(ErrorKind::Corrupt, "stored token plan is not readable JSON", {},
                           "make a new plan with certgate plan");
  TokenPlanResult r;
  r.held = j.value("held", false);
  r.revocations = j.value("revocations", std::size_t{0});
  r.live_tokens = j.value("live_tokens", std::size_t{0});
  r.threshold = j.value("threshold", std::size_t{0});
  for (const auto& a : j.value("actions", json::array())) {
    auto action = actionFromJson(a, symbols);
    if (!action) return action.error();
    r.plan.actions.push_back(std::move(*action));
  }
  for (const auto& a : j.value("skipped", json::array())) {
    auto action = actionFromJson(a, symbols);
    if (!action) return action.error();
    r.plan.skipped.push_back(std::move(*action));
  }
  r.plan.unobserved = j.value("unobserved", std::vector<std::string>{});
  r.problems = j.value("problems", std::vector<std::string>{});
  r.gone = j.value("gone", std::vector<std::int64_t>{});
  return r;
}

}  // namespace certgate::engine
