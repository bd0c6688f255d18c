// Directory reconciliation over a temporary store and an in-memory directory
// (tests/fakes/memory_directory.hpp): plan, apply, the brakes, the intent log and recovery.
#include <catch2/catch.hpp>
#include <filesystem>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/reconcile.hpp"
#include "fakes/memory_directory.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using testing::MemoryDirectory;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
core::Instant daysAgo(int d) { return kNow - core::days(d); }

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  MemoryDirectory directory{"idp", 20};
  std::int64_t source = 0;
  int fact_seq = 0;
  int plan_seq = 0;
  std::vector<std::chrono::milliseconds> sleeps;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-reconcile-" + std::to_string(::getpid()) + "-" +
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
    g.groups.push_back({"idp", "AI Users", settings::GroupGrant::Mode::Additive, {}});
    policy->grants.push_back(g);
    settings.policy = policy;
    settings::DirectorySettings d;
    d.name = "idp";
    d.kind = "memory";
    d.match = {{settings::MatchRule::Person::Email, "email", {}}};
    settings.directories.push_back(d);
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
    fetched(true);
    directory.addGroup("g-1", "AI Users");
    directory.addGroup("g-other", "Finance");
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  void fetched(bool complete) {
    store::FetchRow f;
    f.source_id = source;
    f.started_at = kNow - core::Seconds{60};
    f.finished_at = kNow - core::Seconds{30};
    f.complete = complete;
    f.problem = complete ? "" : "page 3 answered 500";
    REQUIRE(store->recordFetch(f).ok());
  }

  // A person with a directory account; certified `certified_days_ago` days ago (or never).
  std::int64_t person(const std::string& name, std::optional<int> certified_days_ago) {
    store::PersonRow p;
    p.key = name + "@example.org";
    p.email = p.key;
    auto id = store->upsertPerson(p);
    REQUIRE(id.ok());
    ports::DirectoryUser u;
    u.id = "u-" + name;
    u.email = p.key;
    u.user_name = p.key;
    directory.addUser(u);
    if (certified_days_ago) {
      store::FactRow f;
      f.source_id = source;
      f.external_id = "fact-" + std::to_string(++fact_seq);
      f.person_id = *id;
      f.item = "M1";
      f.lms_item = "M1";
      f.at = daysAgo(*certified_days_ago);
      REQUIRE(store->upsertFact(f, kNow).ok());
    }
    return *id;
  }

  engine::ReconcileOptions options() {
    engine::ReconcileOptions o;
    o.make_id = [this](core::Instant) { return "p" + std::to_string(++plan_seq); };
    o.sleep = [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
    o.random01 = [] { return 0.5; };
    return o;
  }
  engine::Reconciler reconciler() { return engine::Reconciler(*store, settings, {{&settings.directories[0], &directory}}); }

  engine::PlanResult plan(const std::string& only = {}) {
    auto o = options();
    o.person = only;
    auto r = reconciler().makePlan(kNow, o);
    INFO((r.ok() ? std::string() : r.error().describe()));
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  engine::ApplyResult apply(const core::Plan& p, bool release = false) {
    auto r = reconciler().apply(p, release, kNow, options());
    INFO((r.ok() ? std::string() : r.error().describe()));
    REQUIRE(r.ok());
    return std::move(r).value();
  }
  std::size_t activeGroupGrants() {
    auto grants = store->activeGrants();
    REQUIRE(grants.ok());
    const std::vector<store::GrantRow> rows = std::move(grants).value();
    std::size_t n = 0;
    for (const auto& g : rows) n += g.target_kind == "group" ? 1 : 0;
    return n;
  }
  std::size_t auditCount(const std::string& action) {
    auto audit = store->audit(-1);
    REQUIRE(audit.ok());
    const std::vector<store::AuditRow> rows = std::move(audit).value();
    std::size_t n = 0;
    for (const auto& a : rows) n += a.action == action ? 1 : 0;
    return n;
  }
  std::vector<store::FactRow> factsOf(std::int64_t id) {
    auto facts = store->factsOf(id);
    REQUIRE(facts.ok());
    return std::move(facts).value();
  }
  // Moves every fact of the person `days` into the past.
  void redate(std::int64_t id, int days) {
    for (auto fact : factsOf(id)) {
      fact.at = daysAgo(days);
      REQUIRE(store->upsertFact(fact, kNow).ok());
    }
  }
};

}  // namespace

TEST_CASE("sync grants the group to certified people and a second plan is empty",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  f.person("bob", 20);
  f.person("carol", std::nullopt);  // never certified

  auto first = f.plan();
  REQUIRE(first.plan.actions.size() == 2);
  CHECK(first.state == "planned");
  for (const auto& a : first.plan.actions) CHECK(a.kind == core::ActionKind::Add);

  auto applied = f.apply(first.plan);
  CHECK(applied.added == 2);
  CHECK(applied.failed == 0);
  CHECK(applied.state == "applied");
  CHECK(f.directory.members("g-1") == std::set<std::string>{"u-alice", "u-bob"});
  REQUIRE(f.directory.writes.size() == 1);  // one batch for both
  CHECK(f.activeGroupGrants() == 2);
  CHECK(f.auditCount("group.add") == 2);
  CHECK(f.store->pendingIntents()->empty());

  auto second = f.plan();
  CHECK(second.plan.actions.empty());
  CHECK(f.directory.writes.size() == 1);

  // Accounts are cached: the second plan looked nobody up again.
  const int lookups = f.directory.lookups;
  (void)f.plan();
  CHECK(f.directory.lookups == lookups);
}

TEST_CASE("an expired certification removes the membership certgate granted, and only that",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  f.person("dave", 10);
  f.apply(f.plan().plan);
  // Someone else put erin in the group by hand: managed mode leaves her alone.
  f.person("erin", std::nullopt);
  f.directory.members("g-1").insert("u-erin");
  // dave's certification is now old: expired (365 days, no grace).
  auto dave = *f.store->findPerson("dave@example.org");
  REQUIRE(dave.has_value());
  f.redate(dave->id, 400);
  auto p = f.plan();
  REQUIRE(p.plan.actions.size() == 1);
  CHECK(p.plan.actions[0].kind == core::ActionKind::Remove);
  CHECK(p.plan.actions[0].person == "dave@example.org");
  CHECK(p.plan.actions[0].reason == core::Reason::Expired);
  auto r = f.apply(p.plan);
  CHECK(r.removed == 1);
  CHECK(f.directory.members("g-1") == std::set<std::string>{"u-alice", "u-erin"});
  CHECK(f.activeGroupGrants() == 1);
  CHECK(f.auditCount("group.remove") == 1);
  CHECK(f.plan().plan.actions.empty());
}

TEST_CASE("an incomplete source fetch removes nobody for missing data",
          "[unit][engine][reconcile]") {
  Fixture f;
  const auto alice = f.person("alice", 10);
  f.apply(f.plan().plan);
  REQUIRE(f.directory.members("g-1").count("u-alice") == 1);
  // The export now lacks alice's record (an empty or truncated export) and the fetch was
  // incomplete.
  for (auto fact : f.factsOf(alice)) {
    fact.item = "OTHER";
    REQUIRE(f.store->upsertFact(fact, kNow).ok());
  }
  f.fetched(false);
  auto p = f.plan();
  CHECK_FALSE(p.sources_complete);
  CHECK(p.plan.actions.empty());
  REQUIRE(p.plan.skipped.size() == 1);
  CHECK(p.plan.skipped[0].why == core::SkipReason::SourceIncomplete);
  f.apply(p.plan);
  CHECK(f.directory.members("g-1").count("u-alice") == 1);

  // Once the source is whole again, the removal goes ahead.
  f.fetched(true);
  auto later = f.plan();
  REQUIRE(later.plan.actions.size() == 1);
  CHECK(later.plan.actions[0].kind == core::ActionKind::Remove);
}

TEST_CASE("a plan removing too much is held, applies its adds only, and removes exactly once "
          "after approval", "[unit][engine][reconcile]") {
  Fixture f;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(f.person("p" + std::to_string(i), 10));
  f.apply(f.plan().plan);
  REQUIRE(f.directory.members("g-1").size() == 6);
  // Five of six lose their certification by time: 5 removals > max(3, 10% of 6).
  for (int i = 0; i < 5; ++i) f.redate(ids[static_cast<std::size_t>(i)], 400);
  f.person("newbie", 1);

  auto held = f.plan();
  CHECK(held.state == "held");
  CHECK(held.plan.brake.removals == 5);
  CHECK(held.plan.brake.threshold == 3);
  CHECK(f.auditCount("plan.held") == 1);
  auto r = f.apply(held.plan);
  CHECK(r.withheld == 5);
  CHECK(r.removed == 0);
  CHECK(r.added == 1);  // grants still happen
  CHECK(r.state == "held");
  CHECK(f.directory.members("g-1").size() == 7);

  // The operator approves the stored plan; apply then removes the five, once.
  REQUIRE(f.store->updatePlan(held.plan.id, "approved", "ops@example.org", kNow).ok());
  auto applied = f.reconciler().applyStored(held.plan.id, kNow, f.options());
  REQUIRE(applied.ok());
  CHECK(applied->removed == 5);
  CHECK(applied->state == "applied");
  CHECK(f.directory.members("g-1").size() == 2);
  const auto writes = f.directory.writes.size();
  auto again = f.reconciler().applyStored(held.plan.id, kNow, f.options());
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == core::ErrorKind::Conflict);
  CHECK(f.directory.writes.size() == writes);
  CHECK(f.plan().plan.actions.empty());
}

TEST_CASE("applying a stored plan skips actions that are no longer needed",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  auto stored = f.plan();
  REQUIRE(stored.plan.actions.size() == 1);
  // Meanwhile someone added alice by hand.
  f.directory.members("g-1").insert("u-alice");
  auto r = f.reconciler().applyStored(stored.plan.id, kNow, f.options());
  REQUIRE(r.ok());
  CHECK(r->dropped == 1);
  CHECK(r->added == 0);
  CHECK(f.directory.writes.empty());
}

TEST_CASE("a crash between the intent and the call is recovered without calling twice",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  f.person("bob", 10);
  auto p = f.plan();
  // A killed process leaves its intents pending, and the directory changed or not depending on
  // where it died. Model that: write the intents as apply() does, then change the directory by
  // hand for alice only (her call went through; bob's did not).
  {
    for (const auto& a : p.plan.actions) {
      store::IntentRow intent;
      intent.kind = "group.add";
      intent.target = "idp/AI Users";
      intent.idempotency_key = p.plan.id + ":" + engine::actionKey(a);
      nlohmann::json payload;
      payload["directory"] = "idp";
      payload["group"] = "AI Users";
      payload["user_id"] = a.person == "alice@example.org" ? "u-alice" : "u-bob";
      payload["person"] = a.person;
      payload["person_id"] = (*f.store->findPerson(a.person))->id;
      payload["track"] = "T";
      intent.payload_json = payload.dump();
      intent.created_at = kNow;
      REQUIRE(f.store->addIntent(intent).ok());
    }
    f.directory.members("g-1").insert("u-alice");  // alice's call went through; bob's did not
  }
  REQUIRE(f.store->pendingIntents()->size() == 2);
  auto rec = f.reconciler().recover(kNow, f.options());
  REQUIRE(rec.ok());
  CHECK(rec->done == 1);
  CHECK(rec->abandoned == 1);
  CHECK(f.store->pendingIntents()->empty());
  CHECK(f.activeGroupGrants() == 1);  // alice's membership is now certgate's
  CHECK(f.directory.writes.empty());  // recovery only read

  // Re-applying the same plan does not call again for what it already did.
  auto r = f.apply(p.plan);
  CHECK(r.already_done == 2);
  CHECK(f.directory.writes.empty());
  // A fresh plan finishes the job: bob only.
  auto fresh = f.plan();
  REQUIRE(fresh.plan.actions.size() == 1);
  CHECK(fresh.plan.actions[0].person == "bob@example.org");
  f.apply(fresh.plan);
  CHECK(f.directory.members("g-1") == std::set<std::string>{"u-alice", "u-bob"});
  CHECK(f.plan().plan.actions.empty());
}

TEST_CASE("a 401 quarantines the directory for the run and nothing else is tried",
          "[unit][engine][reconcile]") {
  Fixture f;
  for (int i = 0; i < 45; ++i) f.person("p" + std::to_string(i), 10);
  f.directory.fail_writes = core::makeError(core::ErrorKind::Auth, "HTTP 401 invalid token", "idp");
  auto p = f.plan();
  REQUIRE(p.plan.actions.size() == 45);
  auto r = f.apply(p.plan);
  CHECK(r.added == 0);
  CHECK(r.failed == 45);
  REQUIRE(r.quarantined.size() == 1);
  CHECK(r.quarantined[0].find("401") != std::string::npos);
  CHECK(r.state == "partial");
  CHECK(f.directory.writes.empty());
  CHECK(f.auditCount("directory.quarantined") == 1);
  CHECK(f.sleeps.empty());  // an auth failure is not retried
}

TEST_CASE("transient failures and 429 are retried with backoff and Retry-After",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  f.directory.fail_writes_next = 2;
  f.directory.fail_writes_next_kind = core::ErrorKind::RateLimited;
  f.directory.fail_writes_retry_after = 7;
  auto r = f.apply(f.plan().plan);
  CHECK(r.added == 1);
  CHECK(r.failed == 0);
  REQUIRE(f.sleeps.size() == 2);
  CHECK(f.sleeps[0] == std::chrono::milliseconds(7000));
  CHECK(f.sleeps[1] == std::chrono::milliseconds(7000));

  f.sleeps.clear();
  f.person("bob", 10);
  f.directory.fail_writes_next = 2;
  f.directory.fail_writes_next_kind = core::ErrorKind::Transient;
  f.directory.fail_writes_retry_after = 0;
  r = f.apply(f.plan().plan);
  CHECK(r.added == 1);
  REQUIRE(f.sleeps.size() == 2);
  // Full jitter with random 0.5: half of 500 ms, then half of 1000 ms.
  CHECK(f.sleeps[0] == std::chrono::milliseconds(250));
  CHECK(f.sleeps[1] == std::chrono::milliseconds(500));
}

TEST_CASE("a single person is reconciled on demand without touching anybody else",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  f.person("bob", 10);
  auto p = f.plan("bob@example.org");
  REQUIRE(p.plan.actions.size() == 1);
  CHECK(p.plan.actions[0].person == "bob@example.org");
  f.apply(p.plan);
  CHECK(f.directory.members("g-1") == std::set<std::string>{"u-bob"});
  auto unknown = f.reconciler().makePlan(kNow, [&] {
    auto o = f.options();
    o.person = "nobody@example.org";
    return o;
  }());
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().kind == core::ErrorKind::NotFound);
}

TEST_CASE("people without a directory account and unreadable groups are reported, not guessed",
          "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  store::PersonRow ghost;
  ghost.key = "ghost@example.org";
  ghost.email = ghost.key;
  const auto gid = *f.store->upsertPerson(ghost);
  store::FactRow fact;
  fact.source_id = f.source;
  fact.external_id = "ghost-fact";
  fact.person_id = gid;
  fact.item = "M1";
  fact.at = daysAgo(5);
  REQUIRE(f.store->upsertFact(fact, kNow).ok());

  auto p = f.plan();
  bool reported = false;
  for (const auto& problem : p.problems)
    reported = reported || problem.find("ghost@example.org has no account") != std::string::npos;
  CHECK(reported);
  auto r = f.apply(p.plan);
  CHECK(r.added == 1);
  CHECK(r.failed == 1);

  // A group that cannot be read gets no actions at all.
  f.directory.fail_list = core::makeError(core::ErrorKind::Transient, "HTTP 500 on page 3");
  auto q = f.plan();
  CHECK(q.plan.actions.empty());
  REQUIRE(q.targets_not_observed.size() == 1);
  CHECK(q.targets_not_observed[0].problem.find("page 3") != std::string::npos);
}

TEST_CASE("a stored plan reads back as the same actions", "[unit][engine][reconcile]") {
  Fixture f;
  f.person("alice", 10);
  auto p = f.plan();
  auto row = f.store->plan(p.plan.id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  auto back = engine::planFromJson((*row)->plan_json, f.settings.policy->symbols);
  REQUIRE(back.ok());
  REQUIRE(back->actions.size() == p.plan.actions.size());
  CHECK(engine::actionKey(back->actions[0]) == engine::actionKey(p.plan.actions[0]));
  CHECK(back->actions[0].reason == p.plan.actions[0].reason);
  CHECK(back->actions[0].track == p.plan.actions[0].track);
  CHECK(back->fingerprint == p.plan.fingerprint);
}
