// Alerts as a projection of the audit log, runs and fetches (engine/alerts.hpp): rows become
// routed outbox rows together with the cursor advance, nothing is doubled, and the dispatcher's
// backoff, pace and give-up rules, against a temporary store and an in-memory sink.
#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/alerts.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using nlohmann::json;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");

// Records every send; fails while `failures` has entries (front first).
class MemorySink final : public ports::AlertSink {
 public:
  const char* kind() const override { return "memory"; }
  core::Status send(const ports::Alert& alert, core::Instant, std::chrono::milliseconds) override {
    ++attempts;
    if (!failures.empty()) {
      core::Error e = failures.front();
      failures.erase(failures.begin());
      return e;
    }
    sent.push_back(alert);
    return {};
  }
  std::vector<ports::Alert> sent;
  std::vector<core::Error> failures;
  int attempts = 0;
};

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  MemorySink a, b;
  // A steady clock that moves only when the dispatcher sleeps (or a test says so).
  std::chrono::steady_clock::time_point steady{};
  std::chrono::milliseconds slept{0};
  double random = 0.5;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-alerts-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    settings.policy = std::make_shared<settings::LoadedPolicy>();
    settings.alerts.configured = true;
    settings::AlertSinkSettings sa;
    sa.name = "a";
    sa.kind = "webhook";
    settings::AlertSinkSettings sb;
    sb.name = "b";
    sb.kind = "pagerduty";
    settings.alerts.sinks = {sa, sb};
    settings::AlertRoute everything_to_a;
    everything_to_a.events = {"*"};
    everything_to_a.sinks = {"a"};
    settings::AlertRoute urgent_to_b;
    urgent_to_b.events = {"revocation*", "plan.held", "connector.*", "sync.failed"};
    urgent_to_b.sinks = {"b"};
    urgent_to_b.min_severity = "error";
    settings::AlertRoute revocations_to_b;
    revocations_to_b.events = {"revocation"};
    revocations_to_b.sinks = {"b"};
    settings.alerts.routes = {everything_to_a, urgent_to_b, revocations_to_b};
    reopen();
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }
  void reopen() {
    store.reset();
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
  }

  std::int64_t audit(const std::string& action, const std::string& subject, const json& details,
                     core::Instant at = kNow - core::Seconds{60}) {
    store::AuditRow r;
    r.at = at;
    r.actor = "certgate";
    r.action = action;
    r.subject = subject;
    r.details_json = details.dump();
    auto id = store->appendAudit(r);
    REQUIRE(id.ok());
    return *id;
  }

  engine::DispatchOptions options() {
    engine::DispatchOptions o;
    o.steady_now = [this] { return steady; };
    o.sleep = [this](std::chrono::milliseconds d) {
      steady += d;
      slept += d;
    };
    o.random01 = [this] { return random; };
    o.redact = [](std::string_view s) {
      std::string out(s);
      for (auto p = out.find("s3cr3t"); p != std::string::npos; p = out.find("s3cr3t"))
        out.replace(p, 6, "[redacted]");
      return out;
    };
    return o;
  }
  engine::AlertDispatcher dispatcher(double rate_a = 6000, double rate_b = 6000) {
    return engine::AlertDispatcher(*store, settings.alerts,
                                   {{"a", &a, rate_a, std::chrono::milliseconds{5000}},
                                    {"b", &b, rate_b, std::chrono::milliseconds{5000}}},
                                   options());
  }
  std::vector<store::AlertOutboxRow> outbox(const std::string& state = "") {
    auto rows = store->alertOutbox(state, -1);
    REQUIRE(rows.ok());
    return *rows;
  }
  std::set<std::string> idsFor(const std::string& sink) {
    std::set<std::string> out;
    for (const auto& r : outbox())
      if (r.sink == sink) out.insert(r.dedup_id);
    return out;
  }
};

json removal(const std::string& plan) {
  return json{{"directory", "okta"},  {"group", "AI Users"}, {"group_id", "00g1"},
              {"user_id", "00u3"},    {"track", "AI_BASICS"}, {"reason", "expired"},
              {"state", "expired"},   {"why", "certification expired on 2026-11-01"},
              {"plan", plan},         {"no_op", false}};
}

}  // namespace

TEST_CASE("audit rows, runs and fetches become routed outbox rows", "[unit][alerts]") {
  Fixture f;
  store::PersonRow p;
  p.key = "E3";
  p.email = "p3@example.org";
  p.display_name = "Person 3";
  p.updated_at = kNow;
  REQUIRE(f.store->upsertPerson(p).ok());
  const auto removed = f.audit("group.remove", "E3", removal("plan-1"));
  const auto revoked = f.audit(
      "token.revoke", "E3",
      json{{"gateway", "litellm"}, {"token_id", "key-9"}, {"alias", "cg-E3-T"}, {"person", "E3"},
           {"track", "T"}, {"scope", "genai"}, {"reason", "expired"}, {"enforcement", "pending"},
           {"plan", "plan-1"}});
  const auto held = f.audit("plan.held", "plan-2", json{{"plan", "plan-2"}, {"removals", 40}, {"threshold", 25}});
  const auto quarantined = f.audit("directory.quarantined", "okta", json{{"error", "401"}});
  const auto requested = f.audit("exception.request", "E4", json{{"track", "T"}, {"exception", 1}});
  f.audit("ingest", "lms", json::object());     // not an alert
  f.audit("group.add", "E5", removal("plan-1"));  // not an alert
  auto run = f.store->beginRun("sync", kNow - core::Seconds{120});
  REQUIRE(run.ok());
  REQUIRE(f.store->finishRun(*run, "failed", json{{"error", "boom"}}.dump(), kNow - core::Seconds{100}).ok());
  auto source = f.store->ensureSource("lms", "csv");
  REQUIRE(source.ok());
  store::FetchRow fetch;
  fetch.source_id = *source;
  fetch.started_at = kNow - core::Seconds{90};
  fetch.finished_at = kNow - core::Seconds{80};
  fetch.complete = false;
  fetch.problem = "page 3 answered 500";
  auto fetch_id = f.store->recordFetch(fetch);
  REQUIRE(fetch_id.ok());

  engine::AlertCollector collector(*f.store, f.settings);
  auto got = collector.collect(kNow);
  REQUIRE(got.ok());
  CHECK(got->alerts == 7);

  const std::string r1 = "audit-" + std::to_string(removed);
  const std::string r2 = "audit-" + std::to_string(revoked);
  const std::string h = "audit-" + std::to_string(held);
  const std::string q = "audit-" + std::to_string(quarantined);
  const std::string x = "audit-" + std::to_string(requested);
  const std::string rf = "run-" + std::to_string(*run) + "-failed";
  const std::string fi = "fetch-" + std::to_string(*fetch_id) + "-incomplete";
  // a: every alert; b: revocations (warning, own route) and error-or-worse of its kinds.
  CHECK(f.idsFor("a") == std::set<std::string>{r1, r2, h, q, x, rf, fi});
  CHECK(f.idsFor("b") == std::set<std::string>{r1, r2, h, q, rf});
  CHECK(got->enqueued == 12);

  // The revocation alert answers who, which access, which rule, when, the evidence and enforcement.
  for (const auto& row : f.outbox()) {
    if (row.dedup_id != r1 || row.sink != "a") continue;
    const json doc = json::parse(row.payload_json);
    CHECK(row.kind == "revocation");
    CHECK(row.severity == "warning");
    CHECK(doc["person"]["key"] == "E3");
    CHECK(doc["person"]["email"] == "p3@example.org");
    CHECK(doc["access"]["directory"] == "okta");
    CHECK(doc["access"]["group"] == "AI Users");
    CHECK(doc["rule"]["track"] == "AI_BASICS");
    CHECK(doc["rule"]["reason"] == "expired");
    CHECK(doc["evidence"]["audit_id"] == removed);
    CHECK(doc["evidence"]["plan_id"] == "plan-1");
    CHECK(doc["enforcement"]["verified"] == true);
    CHECK(doc["occurred_at"] == core::formatIso(kNow - core::Seconds{60}));
  }
  for (const auto& row : f.outbox()) {
    if (row.dedup_id != r2 || row.sink != "a") continue;
    const json doc = json::parse(row.payload_json);
    CHECK(doc["access"]["token_id"] == "key-9");
    CHECK(doc["enforcement"]["state"] == "pending");
    CHECK(doc["enforcement"]["verified"] == false);
  }

  // Collecting again adds nothing: the cursors moved.
  auto again = collector.collect(kNow + core::Seconds{10});
  REQUIRE(again.ok());
  CHECK(again->alerts == 0);
  CHECK(again->enqueued == 0);
  // Even with the cursors lost, the same origins give the same ids: nothing is doubled.
  REQUIRE(f.store->setAlertCursor("audit", 0).ok());
  REQUIRE(f.store->setAlertCursor("runs", 0).ok());
  REQUIRE(f.store->setAlertCursor("fetches", 0).ok());
  auto replay = collector.collect(kNow + core::Seconds{20});
  REQUIRE(replay.ok());
  CHECK(replay->alerts == 7);
  CHECK(replay->enqueued == 0);
  CHECK(f.outbox().size() == 12);
}

TEST_CASE("outbox rows and the cursor advance are written in one transaction", "[unit][alerts]") {
  Fixture f;
  f.audit("group.remove", "E3", removal("plan-1"));
  // The cursor write fails (as a full disk would): the outbox rows written before it roll back.
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open((f.dir / "certgate.db").string().c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw,
                         "CREATE TRIGGER refuse BEFORE INSERT ON alert_cursors "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  engine::AlertCollector collector(*f.store, f.settings);
  auto failed = collector.collect(kNow);
  REQUIRE_FALSE(failed.ok());
  CHECK(f.outbox().empty());
  CHECK(*f.store->alertCursor("audit") == 0);
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open((f.dir / "certgate.db").string().c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "DROP TRIGGER refuse", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  f.reopen();
  engine::AlertCollector after(*f.store, f.settings);
  auto ok = after.collect(kNow);
  REQUIRE(ok.ok());
  CHECK(ok->enqueued == 2);  // a and b
  CHECK(*f.store->alertCursor("audit") > 0);
}

TEST_CASE("without an alerts section nothing is collected or recorded", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts = settings::AlertsSettings{};
  f.audit("group.remove", "E3", removal("plan-1"));
  auto got = engine::collectAndDeliverAlerts(*f.store, f.settings, {}, kNow,
                                             std::chrono::milliseconds{1000}, f.options());
  REQUIRE(got.ok());
  CHECK(got->collected.alerts == 0);
  CHECK(f.outbox().empty());
  CHECK(*f.store->alertCursor("audit") == 0);
}

TEST_CASE("rows older than the retry max age are passed over, not replayed", "[unit][alerts]") {
  Fixture f;
  f.audit("group.remove", "E1", removal("old"), kNow - core::days(10));
  const auto fresh = f.audit("group.remove", "E2", removal("new"), kNow - core::Seconds{5});
  engine::AlertCollector collector(*f.store, f.settings);
  auto got = collector.collect(kNow);
  REQUIRE(got.ok());
  CHECK(f.idsFor("a") == std::set<std::string>{"audit-" + std::to_string(fresh)});
}

TEST_CASE("a verification follows its revocation and a not-enforced token is critical", "[unit][alerts]") {
  Fixture f;
  const json token{{"gateway", "litellm"}, {"token_id", "key-9"}, {"alias", "cg-E3-T"}};
  const auto other = f.audit("token.revoke", "E9", json{{"gateway", "litellm"}, {"token_id", "key-1"}});
  const auto revoked = f.audit("token.revoke", "E3", token);
  json v = token;
  v["enforcement"] = "enforced";
  const auto verified = f.audit("token.revoke.verified", "cg-E3-T", v);
  const auto not_enforced = f.audit("token.revoke.not_enforced", "cg-E3-T", token);
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  std::map<std::string, store::AlertOutboxRow> by_id;
  for (const auto& r : f.outbox())
    if (r.sink == "a") by_id[r.dedup_id] = r;
  const auto& ver = by_id.at("audit-" + std::to_string(verified));
  CHECK(ver.kind == "revocation.verified");
  CHECK(json::parse(ver.payload_json)["follows"] == "audit-" + std::to_string(revoked));
  CHECK(json::parse(ver.payload_json)["follows"] != "audit-" + std::to_string(other));
  const auto& ne = by_id.at("audit-" + std::to_string(not_enforced));
  CHECK(ne.kind == "token.not_enforced");
  CHECK(ne.severity == "critical");
  // critical reaches b through the error-or-worse route? token.not_enforced is not in its kinds.
  CHECK(f.idsFor("b").count("audit-" + std::to_string(not_enforced)) == 0);
}

TEST_CASE("an exception surge alerts once per window above the policy threshold", "[unit][alerts]") {
  Fixture f;
  settings::AlertThreshold t;
  t.name = "exception-surge";
  t.threshold = "> 2 exceptions/day";
  t.limit = 2;
  t.per = "day";
  t.unit = "exceptions";
  f.settings.policy->alerts.push_back(t);
  const auto day = *core::parseIso("2026-11-25T08:00:00Z");
  for (int i = 0; i < 2; ++i)
    f.audit("exception.request", "E" + std::to_string(i), json{{"track", "T"}}, day + core::Seconds{i});
  f.audit("exception.request", "E9", json{{"track", "T"}}, day - core::days(1));  // the day before
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  auto surges = [&] {
    int n = 0;
    for (const auto& r : f.outbox()) n += (r.sink == "a" && r.kind == "exception.surge") ? 1 : 0;
    return n;
  };
  CHECK(surges() == 0);  // 2 is not > 2
  f.audit("exception.request", "E3", json{{"track", "T"}}, day + core::Seconds{10});
  REQUIRE(collector.collect(kNow).ok());
  CHECK(surges() == 1);
  CHECK(f.idsFor("a").count("exception-surge-2026-11-25") == 1);
  f.audit("exception.request", "E4", json{{"track", "T"}}, day + core::Seconds{20});
  REQUIRE(collector.collect(kNow).ok());
  CHECK(surges() == 1);  // same window, same id
}

TEST_CASE("the backoff doubles from base up to max with jitter and honours Retry-After", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts.retry_base = core::Seconds{10};
  f.settings.alerts.retry_max = core::Seconds{300};
  auto d = f.dispatcher();
  f.random = 0.0;  // the fixed half
  CHECK(d.backoff(1, 0).count() == 5);
  CHECK(d.backoff(2, 0).count() == 10);
  CHECK(d.backoff(3, 0).count() == 20);
  CHECK(d.backoff(10, 0).count() == 150);  // capped at max, then halved
  f.random = 0.999999;                     // the whole of it
  CHECK(d.backoff(1, 0).count() == 10);
  CHECK(d.backoff(3, 0).count() == 40);
  CHECK(d.backoff(10, 0).count() == 300);
  CHECK(d.backoff(1, 120).count() == 120);  // the receiver asked for longer
}

TEST_CASE("delivery paces each sink to its rate and stops at the time budget", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts.routes.clear();
  f.settings.alerts.sinks.pop_back();  // only a
  for (int i = 0; i < 3; ++i) f.audit("group.remove", "E" + std::to_string(i), removal("p"));
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());

  SECTION("a budget long enough sends all three, one second apart") {
    auto d = f.dispatcher(60);  // one per second
    auto got = d.deliverDue(kNow, std::chrono::milliseconds{10'000});
    REQUIRE(got.ok());
    CHECK(got->delivered == 3);
    CHECK(f.a.sent.size() == 3);
    CHECK(f.slept == std::chrono::milliseconds{2000});
  }
  SECTION("a short budget sends what fits and leaves the rest pending") {
    auto d = f.dispatcher(60);
    auto got = d.deliverDue(kNow, std::chrono::milliseconds{1500});
    REQUIRE(got.ok());
    CHECK(got->delivered == 2);
    CHECK(got->deferred == 1);
    CHECK(f.outbox("pending").size() == 1);
    // The next call (the same process keeps the pace) sends the rest.
    f.steady += std::chrono::milliseconds{5000};
    auto rest = d.deliverDue(kNow, std::chrono::milliseconds{1500});
    REQUIRE(rest.ok());
    CHECK(rest->delivered == 1);
    CHECK(f.outbox("delivered").size() == 3);
  }
}

TEST_CASE("queued reminders never hold back a security alert within the budget", "[unit][alerts]") {
  Fixture f;
  // Ten reminders for sink a, queued first, then a revocation for sink b.
  for (int i = 0; i < 10; ++i) {
    store::AlertOutboxRow r;
    r.sink = "a";
    r.dedup_id = "reminder-E" + std::to_string(i);
    r.kind = "reminder";
    r.severity = "info";
    r.payload_json = json{{"title", "Your certification expires"}}.dump();
    r.created_at = kNow;
    r.next_attempt_at = kNow;
    REQUIRE(f.store->enqueueAlert(r).ok());
  }
  f.audit("group.remove", "E3", removal("p"));
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  // Sink a is paced at one per second; the budget is 2.5 s: the revocation goes first.
  auto d = f.dispatcher(60, 60);
  auto got = d.deliverDue(kNow, std::chrono::milliseconds{2500});
  REQUIRE(got.ok());
  REQUIRE(f.b.sent.size() == 1);
  CHECK(f.b.sent[0].kind == "revocation");
  CHECK(f.a.sent.size() == 3);  // the rest of the budget went to reminders
  CHECK(f.a.sent[0].kind != "reminder");  // a's share of the revocation came before them too
}

TEST_CASE("a failing sink is retried with backoff and given up on only after max age", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts.routes.clear();
  f.settings.alerts.sinks.pop_back();
  f.settings.alerts.max_age = core::Seconds{3600};
  f.settings.alerts.retry_base = core::Seconds{60};
  f.settings.alerts.retry_max = core::Seconds{600};
  f.random = 0.999999;
  f.audit("group.remove", "E1", removal("p"));
  f.audit("group.remove", "E2", removal("p"));
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  for (int i = 0; i < 100; ++i)
    f.a.failures.push_back(core::makeError(core::ErrorKind::Transient, "503 from s3cr3t host"));
  auto d = f.dispatcher();

  auto first = d.deliverDue(kNow, std::chrono::milliseconds{5000});
  REQUIRE(first.ok());
  CHECK(first->attempted == 1);  // the sink failed: its other row waits for the next call
  CHECK(first->retrying == 1);
  CHECK(first->deferred == 1);
  auto rows = f.outbox("pending");
  REQUIRE(rows.size() == 2);
  const auto& tried = rows[0].attempts == 1 ? rows[0] : rows[1];
  CHECK(tried.next_attempt_at == kNow + core::Seconds{60});
  CHECK(tried.last_error.find("s3cr3t") == std::string::npos);
  CHECK(tried.last_error.find("[redacted]") != std::string::npos);

  // Nothing is dead before max age, however often it fails.
  core::Instant t = kNow;
  for (int i = 0; i < 30 && t < kNow + core::Seconds{3599}; ++i) {
    t += core::Seconds{300};
    if (t >= kNow + core::Seconds{3600}) break;
    REQUIRE(d.deliverDue(t, std::chrono::milliseconds{5000}).ok());
  }
  CHECK(f.outbox("dead").empty());
  // At max age the last attempt fails: the rows go dead, and the counts say so.
  for (int i = 0; i < 3; ++i)
    REQUIRE(d.deliverDue(kNow + core::Seconds{3600 + i}, std::chrono::milliseconds{5000}).ok());
  CHECK(f.outbox("dead").size() == 2);
  auto counts = f.store->alertCounts();
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 1);
  CHECK((*counts)[0].sink == "a");
  CHECK((*counts)[0].dead == 2);
  CHECK((*counts)[0].pending == 0);
}

TEST_CASE("a payload the receiver refuses as invalid is dead at once", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts.routes.clear();
  f.settings.alerts.sinks.pop_back();
  f.audit("group.remove", "E1", removal("p"));
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  f.a.failures.push_back(core::makeError(core::ErrorKind::Invalid, "400 invalid payload"));
  auto d = f.dispatcher();
  auto got = d.deliverDue(kNow, std::chrono::milliseconds{5000});
  REQUIRE(got.ok());
  CHECK(got->dead == 1);
  CHECK(f.outbox("dead").size() == 1);
}

TEST_CASE("a 429 keeps the row for at least the receiver's Retry-After", "[unit][alerts]") {
  Fixture f;
  f.settings.alerts.routes.clear();
  f.settings.alerts.sinks.pop_back();
  f.audit("group.remove", "E1", removal("p"));
  engine::AlertCollector collector(*f.store, f.settings);
  REQUIRE(collector.collect(kNow).ok());
  core::Error limited = core::makeError(core::ErrorKind::RateLimited, "429");
  limited.retry_after_s = 900;
  f.a.failures.push_back(limited);
  auto d = f.dispatcher();
  REQUIRE(d.deliverDue(kNow, std::chrono::milliseconds{5000}).ok());
  auto rows = f.outbox("pending");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].next_attempt_at == kNow + core::Seconds{900});
  auto early = d.deliverDue(kNow + core::Seconds{899}, std::chrono::milliseconds{5000});
  REQUIRE(early.ok());
  CHECK(early->attempted == 0);
  auto later = d.deliverDue(kNow + core::Seconds{900}, std::chrono::milliseconds{5000});
  REQUIRE(later.ok());
  CHECK(later->delivered == 1);
}
