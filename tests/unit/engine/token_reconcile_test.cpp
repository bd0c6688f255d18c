// Gateway tokens through the Reconciler over a temporary store, an in-memory gateway and an
// in-memory secret delivery (tests/fakes/memory_gateway.hpp): issue, revoke, the brake, the
// enforcement check, secret handling, and recovery from a crash at every step.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "engine/reconcile.hpp"
#include "fakes/memory_gateway.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using testing::MemoryDelivery;
using testing::MemoryGateway;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
core::Instant daysAgo(int d) { return kNow - core::days(d); }

struct Crash {
  std::string point;
};

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  MemoryGateway gateway{"llm"};
  MemoryDelivery delivery;
  std::int64_t source = 0;
  int fact_seq = 0;
  int plan_seq = 0;
  std::string crash_at;

  explicit Fixture(settings::Delivery method = settings::Delivery::None) {
    dir = fs::temp_directory_path() / ("certgate-tokens-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("T");
    t.modules = {sym.intern("M1")};
    t.recertify_days = 365;
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"T", "", "test", {}});
    settings::TrackGrants g;
    g.track = "T";
    settings::TokenGrantSettings tg;
    tg.gateway = "llm";
    tg.scope = "genai";
    tg.models = {"gpt-4o-mini"};
    tg.delivery = method;
    g.tokens.push_back(tg);
    policy->grants.push_back(g);
    settings.policy = policy;
    settings::GatewaySettings gw;
    gw.name = "llm";
    gw.kind = "memory";
    settings.gateways.push_back(gw);
    settings.limits.max_removals = 3;
    settings.limits.max_removal_pct = 10;
    settings::SourceSettings s;
    s.name = "lms";
    s.kind = "csv";
    settings.sources.push_back(s);

    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    source = *store->ensureSource("lms", "csv");
    store::FetchRow f;
    f.source_id = source;
    f.started_at = kNow - core::Seconds{60};
    f.finished_at = kNow - core::Seconds{30};
    f.complete = true;
    REQUIRE(store->recordFetch(f).ok());
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  std::int64_t person(const std::string& name, std::optional<int> certified_days_ago) {
    store::PersonRow p;
    p.key = name + "@example.org";
    p.email = p.key;
    auto id = store->upsertPerson(p);
    REQUIRE(id.ok());
    if (certified_days_ago) certify(*id, *certified_days_ago);
    return *id;
  }
  void certify(std::int64_t id, int days_ago) {
    store::FactRow f;
    f.source_id = source;
    f.external_id = "fact-" + std::to_string(++fact_seq);
    f.person_id = id;
    f.item = "M1";
    f.lms_item = "M1";
    f.at = daysAgo(days_ago);
    REQUIRE(store->upsertFact(f, kNow).ok());
  }
  void redate(std::int64_t id, int days) {
    auto facts = store->factsOf(id);
    REQUIRE(facts.ok());
    for (auto fact : *facts) {
      fact.at = daysAgo(days);
      REQUIRE(store->upsertFact(fact, kNow).ok());
    }
  }

  engine::ReconcileOptions options() {
    engine::ReconcileOptions o;
    o.make_id = [this](core::Instant) { return "p" + std::to_string(++plan_seq); };
    o.sleep = [](std::chrono::milliseconds) {};
    o.random01 = [] { return 0.5; };
    o.crash_point = [this](const char* point) {
      if (crash_at == point) {
        crash_at.clear();
        throw Crash{point};
      }
    };
    return o;
  }
  engine::TokenReconciler tokens() {
    engine::Deliveries d;
    d["webhook"] = &delivery;
    return engine::TokenReconciler(*store, settings, {{&settings.gateways[0], &gateway}}, d);
  }

  engine::PlanResult plan(core::Instant at = kNow) {
    auto t = tokens();
    engine::Reconciler rec(*store, settings, {});
    rec.attachTokens(&t);
    auto r = rec.makePlan(at, options());
    INFO((r.ok() ? std::string() : r.error().describe()));
    REQUIRE(r.ok());
    REQUIRE(r->tokens);
    return std::move(r).value();
  }
  engine::ApplyResult apply(const engine::PlanResult& p, bool release = false,
                            core::Instant at = kNow) {
    auto t = tokens();
    engine::Reconciler rec(*store, settings, {});
    rec.attachTokens(&t);
    auto r = rec.apply(p.plan, release, at, options(), &*p.tokens);
    INFO((r.ok() ? std::string() : r.error().describe()));
    REQUIRE(r.ok());
    REQUIRE(r->tokens);
    return std::move(r).value();
  }
  engine::RecoverResult recover() {
    auto t = tokens();
    engine::Reconciler rec(*store, settings, {});
    rec.attachTokens(&t);
    auto r = rec.recover(kNow, options());
    INFO((r.ok() ? std::string() : r.error().describe()));
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  engine::ApplyResult sync() { return apply(plan()); }

  std::vector<store::TokenRow> ledger(bool live_only = true) {
    auto rows = store->tokens(live_only);
    REQUIRE(rows.ok());
    return std::move(rows).value();
  }
  std::size_t auditCount(const std::string& action) {
    auto audit = store->audit(-1);
    REQUIRE(audit.ok());
    std::size_t n = 0;
    for (const auto& a : *audit) n += a.action == action ? 1 : 0;
    return n;
  }
  // The gateway's live tokens are exactly the ledger's live tokens, one per person.
  void requireConverged(std::size_t people) {
    std::set<std::string> gw, led;
    std::set<std::string> persons;
    for (const auto* t : gateway.live()) {
      gw.insert(t->id);
      CHECK(persons.insert(t->person).second);  // one live token per grant
    }
    for (const auto& r : ledger()) led.insert(r.token_id);
    CHECK(gw == led);
    CHECK(gw.size() == people);
    CHECK(store->pendingIntents()->empty());
  }
  std::string fileBytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

}  // namespace

TEST_CASE("entitled people get one token each — the ledger keeps the digest — a second plan is empty",
          "[unit][engine][tokens]") {
  Fixture f;
  f.person("alice", 10);
  f.person("bob", 20);
  f.person("carol", std::nullopt);

  auto first = f.plan();
  REQUIRE(first.tokens->plan.actions.size() == 2);
  for (const auto& a : first.tokens->plan.actions) {
    CHECK(a.kind == core::TokenActionKind::Issue);
    CHECK(a.reason == core::TokenReason::Entitled);
    REQUIRE(a.expires_at);
    // Capped at the end of access: certified 10 or 20 days ago, valid 365 days.
    CHECK(*a.expires_at <= daysAgo(10) + core::days(365));
  }
  // The stored plan carries the token actions.
  auto row = f.store->plan(first.plan.id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->plan_json.find("\"tokens\"") != std::string::npos);
  CHECK((*row)->adds == 2);

  auto applied = f.apply(first);
  CHECK(applied.tokens->issued == 2);
  CHECK(applied.tokens->failed == 0);
  CHECK(applied.state == "applied");
  CHECK(f.gateway.live().size() == 2);
  auto led = f.ledger();
  REQUIRE(led.size() == 2);
  for (const auto& r : led) {
    CHECK(r.secret_digest.rfind("sha256:", 0) == 0);
    CHECK(r.alias.rfind("certgate:", 0) == 0);
  }
  CHECK(f.auditCount("token.issue") == 2);
  f.requireConverged(2);

  auto second = f.plan();
  CHECK(second.tokens->plan.actions.empty());
  CHECK(f.gateway.issue_calls == 2);
}

TEST_CASE("loss of entitlement revokes at once — enforcement is verified after the cache window",
          "[unit][engine][tokens]") {
  Fixture f;
  f.gateway.cache_window = std::chrono::seconds(60);
  const auto alice = f.person("alice", 10);
  f.person("bob", 10);
  f.sync();
  REQUIRE(f.ledger().size() == 2);

  f.redate(alice, 400);  // expired past its 365 days, no grace
  auto p = f.plan();
  REQUIRE(p.tokens->plan.actions.size() == 1);
  const auto& a = p.tokens->plan.actions[0];
  CHECK(a.kind == core::TokenActionKind::Revoke);
  CHECK(a.reason == core::TokenReason::NotEntitled);
  CHECK(a.cause == core::Reason::Expired);
  CHECK(a.person == "alice@example.org");

  auto applied = f.apply(p);
  CHECK(applied.tokens->revoked == 1);
  CHECK(applied.tokens->pending_enforcement == 1);
  auto all = f.ledger(false);
  auto revoked = std::find_if(all.begin(), all.end(), [](const store::TokenRow& r) {
    return r.revoked_at.has_value();
  });
  REQUIRE(revoked != all.end());
  CHECK(revoked->enforcement == "pending");
  REQUIRE(revoked->verify_after);
  CHECK(*revoked->verify_after == kNow + core::Seconds{60});
  CHECK(revoked->revoke_reason.find("expired") != std::string::npos);

  auto t = f.tokens();
  engine::TokenOptions o;
  // Before the window: nothing to verify yet.
  auto early = t.verify(kNow + core::Seconds{30}, o);
  REQUIRE(early.ok());
  CHECK(early->enforced + early->not_enforced == 0);

  SECTION("the gateway refuses it after the window: enforced") {
    auto v = t.verify(kNow + core::Seconds{61}, o);
    REQUIRE(v.ok());
    CHECK(v->enforced == 1);
    CHECK(f.store->tokenByAlias(revoked->alias)->value().enforcement == "enforced");
    CHECK(f.auditCount("token.revoke.verified") == 1);
  }
  SECTION("the gateway still accepts it after the window: not enforced, alerted") {
    f.gateway.still_accepted.insert(revoked->token_id);
    auto v = t.verify(kNow + core::Seconds{61}, o);
    REQUIRE(v.ok());
    CHECK(v->not_enforced == 1);
    REQUIRE(v->alerts.size() == 1);
    CHECK(v->alerts[0].find(revoked->alias) != std::string::npos);
    CHECK(f.store->tokenByAlias(revoked->alias)->value().enforcement == "not_enforced");
    CHECK(f.auditCount("token.revoke.not_enforced") == 1);
  }
}

TEST_CASE("mass token revocation is held by the brake until released",
          "[unit][engine][tokens]") {
  Fixture f;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(f.person("p" + std::to_string(i), 10));
  f.sync();
  REQUIRE(f.ledger().size() == 6);
  for (auto id : ids) f.redate(id, 400);

  auto p = f.plan();
  CHECK(p.tokens->held);
  CHECK(p.state == "held");
  CHECK(p.tokens->revocations == 6);
  CHECK(p.tokens->threshold == 3);
  auto held = f.apply(p);
  CHECK(held.tokens->withheld == 6);
  CHECK(held.tokens->revoked == 0);
  CHECK(held.state == "held");
  CHECK(f.gateway.live().size() == 6);

  auto released = f.apply(f.plan(), true);
  CHECK(released.tokens->revoked == 6);
  CHECK(f.gateway.live().empty());
  CHECK(f.ledger().empty());
}

TEST_CASE("an orphan token under certgate's prefix is revoked — a token gone from the gateway "
          "is re-issued",
          "[unit][engine][tokens]") {
  Fixture f;
  f.person("alice", 10);
  f.sync();
  const std::string orphan = f.gateway.plant("certgate:mallory@example.org:T:genai:c1:r0", "m");
  const std::string foreign = f.gateway.plant("someone-else", "x");  // not certgate's: untouched
  auto p = f.plan();
  REQUIRE(p.tokens->plan.actions.size() == 1);
  CHECK(p.tokens->plan.actions[0].reason == core::TokenReason::Orphan);
  CHECK(p.tokens->plan.actions[0].token_id == orphan);
  f.apply(p);
  CHECK_FALSE(f.gateway.tokens[orphan].active);
  CHECK(f.gateway.tokens[foreign].active);

  // Someone deletes alice's token at the gateway: the ledger follows, a new one is issued.
  const std::string old_id = f.ledger().at(0).token_id;
  f.gateway.tokens[old_id].active = false;
  auto again = f.plan();
  CHECK(again.tokens->gone.size() == 1);
  REQUIRE(again.tokens->plan.actions.size() == 1);
  CHECK(again.tokens->plan.actions[0].reason == core::TokenReason::Missing);
  CHECK(again.tokens->plan.actions[0].alias.find(":r1") != std::string::npos);
  f.apply(again);
  auto live = f.ledger();
  REQUIRE(live.size() == 1);
  CHECK(live[0].token_id != old_id);
  CHECK(f.auditCount("token.gone") == 1);
}

TEST_CASE("a secret is delivered once and never stored — a failed delivery leaves no live token",
          "[unit][engine][tokens]") {
  Fixture f(settings::Delivery::Webhook);
  f.person("alice", 10);

  SECTION("delivered") {
    auto applied = f.sync();
    CHECK(applied.tokens->issued == 1);
    REQUIRE(f.delivery.parcels.size() == 1);
    const auto& parcel = f.delivery.parcels[0];
    CHECK(parcel.secret.rfind("cgt_canary_", 0) == 0);
    CHECK(parcel.email == "alice@example.org");
    CHECK(parcel.delivery_id == f.ledger().at(0).alias);
    // The canary secret is nowhere in what certgate wrote.
    const std::string secret = f.gateway.live().at(0)->secret;
    f.store.reset();
    for (const auto& entry : fs::directory_iterator(f.dir))
      CHECK(f.fileBytes(entry.path()).find(secret) == std::string::npos);
    auto reopened = store::Store::open((f.dir / "certgate.db").string());
    REQUIRE(reopened.ok());
    f.store = std::move(reopened).value();
  }
  SECTION("the delivery fails: the token is revoked and the next sync tries again") {
    f.delivery.fail = core::makeError(core::ErrorKind::Transient, "vault down");
    auto applied = f.sync();
    CHECK(applied.tokens->failed == 1);
    CHECK(applied.state == "partial");
    CHECK(f.gateway.live().empty());
    CHECK(f.ledger().empty());
    f.delivery.fail.reset();
    auto retried = f.sync();
    CHECK(retried.tokens->issued == 1);
    REQUIRE(f.delivery.parcels.size() == 1);
    CHECK(f.delivery.parcels[0].delivery_id.find(":r1") != std::string::npos);
    f.requireConverged(1);
  }
  SECTION("no delivery method configured: nothing is minted") {
    auto t = engine::TokenReconciler(*f.store, f.settings, {{&f.settings.gateways[0], &f.gateway}});
    engine::Reconciler rec(*f.store, f.settings, {});
    rec.attachTokens(&t);
    auto p = rec.makePlan(kNow, f.options());
    REQUIRE(p.ok());
    auto a = rec.apply(p->plan, false, kNow, f.options(), &*p->tokens);
    REQUIRE(a.ok());
    CHECK(a->tokens->failed == 1);
    CHECK(a->tokens->failures.at(0).find("delivery webhook is not configured") !=
          std::string::npos);
    CHECK(f.gateway.issue_calls == 0);
  }
}

TEST_CASE("a crash at any issue step converges after recovery: one live token per grant, all "
          "known",
          "[unit][engine][tokens][crash]") {
  const auto method = GENERATE(settings::Delivery::None, settings::Delivery::Webhook);
  const std::vector<std::string> points =
      method == settings::Delivery::None
          ? std::vector<std::string>{"token.issue.before_call", "token.issue.after_call",
                                     "token.issue.after_record"}
          : std::vector<std::string>{"token.issue.before_call", "token.issue.after_call",
                                     "token.issue.after_record", "token.issue.after_delivery"};
  for (const auto& point : points) {
    DYNAMIC_SECTION("crash at " << point << " with delivery " << settings::toString(method)) {
      Fixture f(method);
      f.person("alice", 10);
      f.person("bob", 10);
      f.crash_at = point;
      auto p = f.plan();
      CHECK_THROWS_AS(f.apply(p), Crash);
      REQUIRE(f.store->pendingIntents()->size() == 1);

      auto rec = f.recover();
      REQUIRE(rec.tokens);
      CHECK(rec.tokens->problems.empty());
      CHECK(f.store->pendingIntents()->empty());
      if (point == "token.issue.before_call") CHECK(rec.tokens->abandoned == 1);
      else if (method == settings::Delivery::None) CHECK(rec.tokens->adopted == 1);
      else CHECK(rec.tokens->revoked == 1);  // the secret may never have arrived

      f.sync();
      f.requireConverged(2);
      CHECK(f.plan().tokens->plan.actions.empty());
      if (method == settings::Delivery::Webhook) {
        // Whoever holds a live token received its secret.
        std::set<std::string> delivered;
        for (const auto& parcel : f.delivery.parcels) delivered.insert(parcel.token_id);
        for (const auto* t : f.gateway.live()) CHECK(delivered.count(t->id) == 1);
      }
    }
  }
}

TEST_CASE("a crash at a revoke step converges after recovery", "[unit][engine][tokens][crash]") {
  for (const std::string point : {"token.revoke.before_call", "token.revoke.after_call"}) {
    DYNAMIC_SECTION("crash at " << point) {
      Fixture f;
      const auto alice = f.person("alice", 10);
      f.person("bob", 10);
      f.sync();
      f.redate(alice, 400);
      f.crash_at = point;
      CHECK_THROWS_AS(f.apply(f.plan()), Crash);
      auto rec = f.recover();
      REQUIRE(rec.tokens);
      if (point == "token.revoke.before_call") CHECK(rec.tokens->abandoned == 1);
      else CHECK(rec.tokens->done == 1);
      f.sync();
      f.requireConverged(1);
      CHECK(f.gateway.live().at(0)->person == "bob@example.org");
    }
  }
}

TEST_CASE("an unobservable gateway gets no token actions", "[unit][engine][tokens]") {
  Fixture f;
  f.person("alice", 10);
  f.gateway.fail_observe = core::makeError(core::ErrorKind::Auth, "401 from the gateway");
  auto p = f.plan();
  CHECK(p.tokens->plan.actions.empty());
  REQUIRE(p.tokens->problems.size() == 1);
  CHECK(p.tokens->problems[0].find("gateway llm not observed") != std::string::npos);
  CHECK(f.gateway.issue_calls == 0);
}
