// A token grant with delivery: email through the engine's TokenReconciler: an in-memory gateway,
// the real EmailDelivery against the loopback SMTP fake, and the pickup box over the same store.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>

#include "connectors/delivery/email_delivery.hpp"
#include "connectors/delivery/pickup_box.hpp"
#include "delivery_test_support.hpp"
#include "engine/reconcile.hpp"
#include "fakes/memory_gateway.hpp"
#include "fakes/smtp/smtp_fake.hpp"

namespace fs = std::filesystem;
using namespace certgate;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");

struct EmailFixture {
  testing::delivery::TempDir dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  testing::MemoryGateway gateway{"llm"};
  testing::SmtpFake smtp;
  std::unique_ptr<connectors::delivery::EmailDelivery> email;
  std::int64_t source = 0;
  int plan_seq = 0;

  EmailFixture() {
    smtp.start();
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
    tg.delivery = settings::Delivery::Email;
    g.tokens.push_back(tg);
    policy->grants.push_back(g);
    settings.policy = policy;
    settings::GatewaySettings gw;
    gw.name = "llm";
    gw.kind = "memory";
    settings.gateways.push_back(gw);
    settings::SourceSettings s;
    s.name = "lms";
    s.kind = "csv";
    settings.sources.push_back(s);

    store = testing::delivery::openStore(dir.file("certgate.db"));
    source = *store->ensureSource("lms", "csv");
    store::FetchRow f;
    f.source_id = source;
    f.started_at = kNow - core::Seconds{60};
    f.finished_at = kNow - core::Seconds{30};
    f.complete = true;
    REQUIRE(store->recordFetch(f).ok());

    connectors::delivery::EmailOptions o;
    o.smtp.url = smtp.url();
    o.smtp.from = "certgate@example.org";
    o.pickup_base_url = "https://certgate.example.org";
    o.key = *connectors::delivery::decodePickupKey(testing::delivery::kKeyBase64);
    email = std::make_unique<connectors::delivery::EmailDelivery>(std::move(o), *store);
  }

  void person(const std::string& key, const std::string& email_address) {
    store::PersonRow p;
    p.key = key;
    p.email = email_address;
    auto id = store->upsertPerson(p);
    REQUIRE(id.ok());
    store::FactRow f;
    f.source_id = source;
    f.external_id = "fact-" + key;
    f.person_id = *id;
    f.item = "M1";
    f.lms_item = "M1";
    f.at = kNow - core::days(10);
    REQUIRE(store->upsertFact(f, kNow).ok());
  }

  engine::ReconcileOptions options() {
    engine::ReconcileOptions o;
    o.make_id = [this](core::Instant) { return "p" + std::to_string(++plan_seq); };
    o.sleep = [](std::chrono::milliseconds) {};
    o.random01 = [] { return 0.5; };
    return o;
  }

  engine::ApplyResult sync() {
    engine::Deliveries d;
    d["email"] = email.get();
    engine::TokenReconciler t(*store, settings, {{&settings.gateways[0], &gateway}}, d);
    engine::Reconciler rec(*store, settings, {});
    rec.attachTokens(&t);
    auto p = rec.makePlan(kNow, options());
    INFO((p.ok() ? std::string() : p.error().describe()));
    REQUIRE(p.ok());
    auto a = rec.apply(p->plan, false, kNow, options(), &*p->tokens);
    INFO((a.ok() ? std::string() : a.error().describe()));
    REQUIRE(a.ok());
    REQUIRE(a->tokens);
    return std::move(a).value();
  }
};

std::string linkId(const std::string& data) {
  std::smatch m;
  static const std::regex link(R"(https://certgate\.example\.org/pickup/([A-Za-z0-9_-]{22}))");
  return std::regex_search(data, m, link) ? m[1].str() : std::string{};
}

}  // namespace

TEST_CASE("A token grant with delivery: email mails a pickup link that opens to the token's "
          "secret, once",
          "[integration][tokens]") {
  EmailFixture f;
  f.person("E1", "alice@example.org");
  auto applied = f.sync();
  CHECK(applied.tokens->issued == 1);
  CHECK(applied.tokens->failed == 0);
  REQUIRE(f.smtp.waitFor(1) == 1);
  const auto message = f.smtp.messages().at(0);
  CHECK(message.rcpt_to == std::vector<std::string>{"alice@example.org"});
  REQUIRE(f.gateway.live().size() == 1);
  const std::string secret = f.gateway.live().at(0)->secret;
  CHECK(message.data.find(secret) == std::string::npos);
  const std::string id = linkId(message.data);
  REQUIRE(connectors::delivery::isPickupId(id));

  connectors::delivery::PickupBox box(
      *f.store, *connectors::delivery::decodePickupKey(testing::delivery::kKeyBase64),
      core::Seconds{86400});
  auto taken = box.take(id, kNow + core::Seconds{60});
  REQUIRE(taken.ok());
  CHECK(taken->state == connectors::delivery::PickupState::Waiting);
  CHECK(taken->secret == secret);
  auto again = box.take(id, kNow + core::Seconds{120});
  REQUIRE(again.ok());
  CHECK(again->state == connectors::delivery::PickupState::Fetched);
  CHECK(again->secret.empty());

  // A second sync plans nothing and sends nothing.
  auto second = f.sync();
  CHECK(second.tokens->issued == 0);
  CHECK(f.smtp.messages().size() == 1);

  f.store.reset();
  CHECK(f.dir.allBytes().find(secret) == std::string::npos);
}

TEST_CASE("A person without an email gets no token: the fresh one is revoked, the issue fails",
          "[integration][tokens]") {
  EmailFixture f;
  f.person("E2", "");
  auto applied = f.sync();
  CHECK(applied.tokens->issued == 0);
  CHECK(applied.tokens->failed == 1);
  REQUIRE_FALSE(applied.tokens->failures.empty());
  CHECK(applied.tokens->failures.at(0).find("has no email address") != std::string::npos);
  CHECK(f.gateway.live().empty());
  CHECK(f.smtp.messages().empty());
}
