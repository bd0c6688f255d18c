// Gateway tokens on the command line (see token_commands.hpp).
#include "cli/token_commands.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "cli/alert_commands.hpp"
#include "cli/lms_secrets.hpp"
#include "cli/render.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "connectors/delivery/email_delivery.hpp"
#include "connectors/delivery/webhook_delivery.hpp"
#include "connectors/registry.hpp"

namespace certgate::cli::detail {
namespace {

using nlohmann::json;

bool anyTokenGrant(const settings::Settings& s) {
  for (const auto& tg : s.policy->grants)
    if (!tg.tokens.empty()) return true;
  return false;
}

std::string day(const std::optional<core::Instant>& at) {
  return at ? core::formatIso(*at).substr(0, 10) : "-";
}

}  // namespace

std::optional<Gateways> buildGateways(Io& io, const settings::Settings& s, store::Store& store,
                                      std::shared_ptr<connectors::http::Redactor> redactor,
                                      int& code) {
  Gateways g;
  if (s.gateways.empty() && !anyTokenGrant(s)) return g;
  const ports::SecretReader secrets = lmsSecretReader(s, redactor);
  for (const auto& gs : s.gateways) {
    if (!gs.enabled) continue;
    auto made = connectors::makeGateway(gs.kind, gs.name, gs.options, s.base_dir, secrets,
                                        redactor, {}, &store);
    if (!made) {
      io.err << "error: gateway " << gs.name << ": " << made.error().describe() << '\n';
      code = made.error().kind == core::ErrorKind::Invalid ? kConfigInvalid : kFailure;
      return std::nullopt;
    }
    g.handles.push_back({&gs, made->get()});
    g.owned.push_back(std::move(made).value());
  }
  engine::Deliveries deliveries;
  if (s.delivery.webhook) {
    const settings::WebhookDelivery& w = *s.delivery.webhook;
    auto secret = settings::readSecret(w.signing_secret, s.base_dir);
    if (!secret) {
      io.err << "error: delivery.webhook.signing_secret: " << secret.error().describe() << '\n';
      code = kConfigInvalid;
      return std::nullopt;
    }
    redactor->add(*secret);
    auto key = connectors::webhook::decodeSecret(*secret);
    if (!key) {
      io.err << "error: delivery.webhook.signing_secret (" << w.signing_secret.describe()
             << "): " << key.error().describe() << '\n';
      code = kConfigInvalid;
      return std::nullopt;
    }
    connectors::delivery::WebhookOptions o;
    o.url = w.url;
    o.key = *key;
    o.client.total_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(w.timeout);
    o.client.ca_file = w.ca_file;
    o.client.redactor = redactor;
    o.retry.max_attempts = 3;
    auto d = std::make_unique<connectors::delivery::WebhookDelivery>(std::move(o));
    deliveries["webhook"] = d.get();
    g.deliveries.push_back(std::move(d));
  }
  if (s.delivery.email) {
    const settings::EmailDelivery& m = *s.delivery.email;
    auto key_text = settings::readSecret(m.encryption_key, s.base_dir);
    if (!key_text) {
      io.err << "error: delivery.email.encryption_key: " << key_text.error().describe() << '\n';
      code = kConfigInvalid;
      return std::nullopt;
    }
    redactor->add(*key_text);
    auto key = connectors::delivery::decodePickupKey(*key_text);
    if (!key) {
      io.err << "error: delivery.email.encryption_key (" << m.encryption_key.describe()
             << "): " << key.error().describe() << '\n';
      code = kConfigInvalid;
      return std::nullopt;
    }
    connectors::delivery::EmailOptions o;
    o.smtp.url = m.smtp_url;
    o.smtp.from = m.from;
    o.smtp.username = m.username;
    if (!m.password.empty()) {
      auto password = settings::readSecret(m.password, s.base_dir);
      if (!password) {
        io.err << "error: delivery.email.password: " << password.error().describe() << '\n';
        code = kConfigInvalid;
        return std::nullopt;
      }
      redactor->add(*password);
      o.smtp.password = std::move(*password);
    }
    o.smtp.ca_file = m.ca_file;
    o.smtp.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(m.timeout);
    o.pickup_base_url = m.pickup_base_url;
    o.pickup_ttl = m.pickup_ttl;
    o.subject = m.subject;
    o.key = std::move(*key);
    auto d = std::make_unique<connectors::delivery::EmailDelivery>(std::move(o), store);
    deliveries["email"] = d.get();
    g.deliveries.push_back(std::move(d));
  }
  g.reconciler =
      std::make_unique<engine::TokenReconciler>(store, s, g.handles, std::move(deliveries));
  return g;
}

bool connectGateways(Io& io, Gateways& g, store::Store& store, std::int64_t run_id,
                     const settings::Settings& s) {
  bool all = true;
  std::vector<engine::GatewayHandle> kept;
  for (auto& h : g.handles) {
    auto c = h.gateway->connect();
    if (c) {
      kept.push_back(h);
      continue;
    }
    all = false;
    io.err << "error: gateway " << h.settings->name << " is QUARANTINED for this run: "
           << c.error().describe() << '\n';
    store::AuditRow a;
    a.at = io.now();
    a.actor = "certgate";
    a.action = "gateway.quarantined";
    a.subject = h.settings->name;
    a.details_json = json{{"error", c.error().describe()}}.dump();
    a.run_id = run_id;
    (void)store.appendAudit(a);
  }
  if (!all && g.reconciler) {
    g.handles = kept;
    engine::Deliveries deliveries;
    for (auto& d : g.deliveries) deliveries[d->method()] = d.get();
    g.reconciler =
        std::make_unique<engine::TokenReconciler>(store, s, g.handles, std::move(deliveries));
  }
  return all;
}

std::function<void(const char*)> crashHookFromEnvironment() {
  const char* at = std::getenv("CERTGATE_TEST_CRASH_AT");
  if (!at || !*at) return {};
  const std::string point = at;
  return [point](const char* here) {
    if (point == here) ::_exit(86);
  };
}

void printTokenPlan(Io& io, const engine::TokenPlanResult& t, const core::SymbolTable& symbols) {
  std::size_t issues = 0, revokes = 0;
  for (const auto& a : t.plan.actions)
    ++(a.kind == core::TokenActionKind::Issue ? issues : revokes);
  io.out << "\ntokens: " << issues << " to issue, " << revokes << " to revoke";
  if (!t.plan.skipped.empty())
    io.out << ", " << t.plan.skipped.size() << " revocation(s) skipped";
  io.out << "  [" << t.live_tokens << " live]\n";
  if (!t.plan.actions.empty()) {
    Table tab({"GATEWAY", "SCOPE", "ACTION", "PERSON", "TRACK", "WHY"});
    for (const auto& a : t.plan.actions) {
      std::string why = core::toString(a.reason);
      std::replace(why.begin(), why.end(), '_', ' ');
      if (a.kind == core::TokenActionKind::Issue) {
        why += std::string(", ") + core::toString(a.state);
        if (a.expires_at) why += ", expires " + day(a.expires_at);
      } else if (a.reason == core::TokenReason::NotEntitled) {
        std::string cause = core::toString(a.cause);
        std::replace(cause.begin(), cause.end(), '_', ' ');
        why += " (" + cause + ")";
      }
      tab.add({a.gateway, a.scope, core::toString(a.kind),
               a.person.empty() ? "token " + a.token_id : a.person,
               a.track == core::kNoSym ? "-" : std::string(symbols.name(a.track)), why});
    }
    tab.print(io.out);
  }
  for (const auto& a : t.plan.skipped)
    io.out << "  skipped: revoke " << a.person << " " << a.gateway << "/" << a.scope
           << " (the data behind it is incomplete)\n";
  if (t.held)
    io.out << "\nHELD by the blast-radius brake: " << t.revocations << " token revocation(s), "
           << "threshold " << t.threshold << " of " << t.live_tokens << " live token(s)\n"
           << "  no token is revoked until an operator approves this plan; issues still go "
              "ahead.\n";
  if (!t.gone.empty())
    io.out << "  " << t.gone.size()
           << " ledger token(s) are no longer at their gateway (expired or deleted there): the "
              "ledger follows\n";
  for (const auto& p : t.problems) io.out << "  problem: " << p << '\n';
}

void printTokenApply(Io& io, const engine::TokenApplyResult& t) {
  io.out << "tokens: " << t.issued << " issued, " << t.revoked << " revoked";
  if (t.adopted) io.out << ", " << t.adopted << " adopted";
  if (t.no_op) io.out << " (" << t.no_op << " already gone)";
  if (t.failed) io.out << ", " << t.failed << " FAILED";
  if (t.withheld) io.out << ", " << t.withheld << " revocation(s) held for approval";
  if (t.already_done) io.out << ", " << t.already_done << " done before";
  if (t.pending_enforcement)
    io.out << "; " << t.pending_enforcement
           << " revocation(s) pending enforcement (the gateway caches keys; verified later)";
  io.out << '\n';
  for (const auto& f : t.failures) io.out << "  failed: " << f << '\n';
}

json tokenApplyJson(const engine::TokenApplyResult& t) {
  return json{{"issued", t.issued},
              {"adopted", t.adopted},
              {"revoked", t.revoked},
              {"no_op", t.no_op},
              {"failed", t.failed},
              {"withheld", t.withheld},
              {"already_done", t.already_done},
              {"pending_enforcement", t.pending_enforcement},
              {"failures", t.failures},
              {"requests", t.requests}};
}

void printTokenVerify(Io& io, const engine::TokenVerifyResult& v) {
  if (v.enforced + v.not_enforced + v.unknown == 0) return;
  io.out << "revocations verified: " << v.enforced << " enforced";
  if (v.not_enforced) io.out << ", " << v.not_enforced << " NOT ENFORCED";
  if (v.unknown) io.out << ", " << v.unknown << " cannot be checked";
  if (v.still_pending) io.out << ", " << v.still_pending << " still pending";
  io.out << '\n';
  for (const auto& a : v.alerts) io.out << "ALERT: " << a << '\n';
}

int cmdTokensRevoke(Io& io, const std::string& config, const std::string& alias,
                    const std::string& by, const std::string& reason, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  settings::Settings& s = opened->settings;
  store::Store& st = *opened->store;
  auto redactor = std::make_shared<connectors::http::Redactor>();
  auto gws = buildGateways(io, s, st, redactor, code);
  if (!gws) return code;
  if (!gws->reconciler) {
    io.err << "error: no gateways are configured\n";
    return kNotFound;
  }
  auto run = st.beginRun("tokens revoke", io.now());
  if (!run) return failWith(io, run.error(), kStoreUnavailable);
  if (!connectGateways(io, *gws, st, *run, s)) {
    (void)st.finishRun(*run, "failed", json{{"error", "a gateway is unavailable"}}.dump(), io.now());
    return kFailure;
  }
  engine::TokenOptions to;
  to.actor = by;
  to.run_id = *run;
  to.crash_point = crashHookFromEnvironment();
  auto done = gws->reconciler->revokeByOperator(alias, reason, io.now(), to);
  if (!done) {
    (void)st.finishRun(*run, "failed", json{{"error", done.error().describe()}}.dump(), io.now());
    const auto kind = done.error().kind;
    if (kind == core::ErrorKind::Conflict) {  // revoking a revoked token: nothing to do
      io.out << done.error().message << "; nothing to do\n";
      return kOk;
    }
    return failWith(io, done.error(), kind == core::ErrorKind::NotFound ? kNotFound : kFailure);
  }
  (void)st.finishRun(*run, done->failed ? "failed" : "ok", tokenApplyJson(*done).dump(), io.now());
  syncAlerts(io, s, st);  // security hears of an operator's revocation now, not at the next sync
  if (format == "json") {
    io.out << tokenApplyJson(*done).dump(2) << '\n';
  } else {
    printTokenApply(io, *done);
    if (!done->failed)
      io.out << "token " << alias << " revoked; if its person is still entitled, the next sync "
             << "issues a new one\n";
  }
  return done->failed ? kFailure : kOk;
}

int cmdTokensList(Io& io, const std::string& config, bool all, const std::string& person,
                  const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  store::Store& st = *opened->store;
  auto persons = st.persons();
  if (!persons) return failWith(io, persons.error(), kFailure);
  std::unordered_map<std::int64_t, const store::PersonRow*> by_id;
  for (const auto& p : *persons) by_id[p.id] = &p;
  std::int64_t only = 0;
  if (!person.empty()) {
    auto found = st.findPerson(person);
    if (!found) return failWith(io, found.error(), kFailure);
    if (!found->has_value()) {
      io.err << "error: no person '" << person << "' is known\n"
             << "  check the key, employee id or email (certgate status --all)\n";
      return kNotFound;
    }
    only = (*found)->id;
  }
  auto rows = st.tokens(!all);
  if (!rows) return failWith(io, rows.error(), kFailure);
  std::erase_if(*rows, [&](const store::TokenRow& r) { return only && r.person_id != only; });
  auto keyOf = [&](std::int64_t id) {
    auto p = by_id.find(id);
    return p == by_id.end() ? std::to_string(id) : p->second->key;
  };
  if (format == "json") {
    json out = json::array();
    for (const auto& r : *rows) {
      auto p = by_id.find(r.person_id);
      out.push_back({{"person", keyOf(r.person_id)},
                     {"email", p == by_id.end() ? "" : p->second->email},
                     {"track", r.track},
                     {"gateway", r.gateway},
                     {"scope", r.scope},
                     {"alias", r.alias},
                     {"token_id", r.token_id},
                     {"issued_at", core::formatIso(r.issued_at)},
                     {"expires_at", r.expires_at ? json(core::formatIso(*r.expires_at)) : json()},
                     {"live", !r.revoked_at.has_value()},
                     {"revoked_at", r.revoked_at ? json(core::formatIso(*r.revoked_at)) : json()},
                     {"revoke_reason", r.revoke_reason},
                     {"enforcement", r.enforcement},
                     {"verify_after",
                      r.verify_after ? json(core::formatIso(*r.verify_after)) : json()}});
    }
    io.out << out.dump(2) << '\n';
    return kOk;
  }
  if (rows->empty()) {
    io.out << (all ? "no tokens have been issued\n" : "no live tokens\n");
    return kOk;
  }
  Table t({"PERSON", "TRACK", "GATEWAY", "SCOPE", "TOKEN ID", "ISSUED", "EXPIRES", "STATE",
           "ENFORCEMENT"});
  for (const auto& r : *rows) {
    std::string state = r.revoked_at ? "revoked " + day(r.revoked_at) : "live";
    t.add({keyOf(r.person_id), r.track, r.gateway, r.scope, r.token_id, day(r.issued_at),
           day(r.expires_at), state, r.revoked_at ? r.enforcement : "-"});
  }
  t.print(io.out);
  std::size_t pending = 0, not_enforced = 0;
  for (const auto& r : *rows) {
    pending += r.enforcement == "pending" ? 1 : 0;
    not_enforced += r.enforcement == "not_enforced" ? 1 : 0;
  }
  if (pending)
    io.out << pending << " revocation(s) pending enforcement: the next sync verifies them\n";
  if (not_enforced)
    io.out << "ALERT: " << not_enforced
           << " revoked token(s) are still accepted by their gateway: revoke them there by hand "
              "and check the gateway's key cache\n";
  return kOk;
}

}  // namespace certgate::cli::detail
