// Reminders before expiry and the expiring-soon digest (engine/reminders.hpp) over a temporary
// store: which window is due, once per cycle, grace escalation, people without an address, the
// digest's period, content and routing.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/alerts.hpp"
#include "engine/reminders.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using nlohmann::json;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");  // a Wednesday

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  std::int64_t source = 0;
  int fact_seq = 0;
  std::map<std::string, std::int64_t> ids;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-reminders-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("T");
    t.modules = {sym.intern("M1")};
    t.recertify_days = 365;
    t.grace_days = 14;
    t.remind_before_days = {30, 7, 1};
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"T", "Safe AI use", "test", {}});
    settings.policy = policy;

    settings.alerts.configured = true;
    settings::AlertSinkSettings mail;
    mail.name = "people-mail";
    mail.kind = "email";
    settings::AlertSinkSettings peopleops;
    peopleops.name = "peopleops";
    peopleops.kind = "email";
    settings::AlertSinkSettings security;
    security.name = "security";
    security.kind = "webhook";
    settings.alerts.sinks = {mail, peopleops, security};
    settings::AlertRoute digest;
    digest.events = {"expiring.digest"};
    digest.sinks = {"peopleops"};
    settings::AlertRoute rest;
    rest.events = {"revocation*"};
    rest.sinks = {"security"};
    settings.alerts.routes = {digest, rest};
    settings.reminders.configured = true;
    settings.reminders.sink = "people-mail";
    settings.reminders.escalate_to = {"peopleops@example.org"};
    settings.reminders.learn_url = "https://lms.example.org/renew";
    settings.reminders.digest_every = "monday";

    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    source = *store->ensureSource("lms", "csv");
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  // A person certified so that their certification expires `days_left` days after kNow
  // (negative: expired that many days ago).
  void certified(const std::string& key, int days_left, bool with_email = true) {
    store::PersonRow p;
    p.key = key;
    p.employee_id = key;
    p.email = with_email ? key + "@example.org" : "";
    p.display_name = "Person " + key;
    p.first_seen = kNow - core::days(800);
    p.updated_at = p.first_seen;
    auto id = store->upsertPerson(p);
    REQUIRE(id.ok());
    ids[key] = *id;
    store::FactRow f;
    f.source_id = source;
    f.external_id = "c-" + std::to_string(++fact_seq);
    f.person_id = *id;
    f.item = "M1";
    f.lms_item = "COURSE-1";
    f.kind = core::FactKind::Completion;
    f.status = core::FactStatus::Completed;
    f.at = kNow - core::days(365) + core::days(days_left);
    REQUIRE(store->upsertFact(f, kNow).ok());
  }

  engine::ReminderResult collect(core::Instant now = kNow) {
    auto r = engine::collectReminders(*store, settings, now);
    INFO((r ? "" : r.error().describe()));
    REQUIRE(r.ok());
    return *r;
  }
  std::map<std::string, store::AlertOutboxRow> rows(const std::string& sink) {
    auto all = store->alertOutbox("", -1);
    REQUIRE(all.ok());
    std::map<std::string, store::AlertOutboxRow> out;
    for (auto& r : *all)
      if (r.sink == sink) out[r.dedup_id] = r;
    return out;
  }
};

std::set<std::string> keys(const std::map<std::string, store::AlertOutboxRow>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

std::string expiryOf(int days_left) {
  return std::to_string((kNow + core::days(days_left)).time_since_epoch().count());
}

}  // namespace

TEST_CASE("digestDay is the latest such weekday (UTC), today for daily, none when off",
          "[unit][engine][reminders]") {
  CHECK(core::formatDate(*engine::digestDay("monday", kNow)) == "2026-11-23");
  CHECK(core::formatDate(*engine::digestDay("wednesday", kNow)) == "2026-11-25");
  CHECK(core::formatDate(*engine::digestDay("thursday", kNow)) == "2026-11-19");
  CHECK(core::formatDate(*engine::digestDay("sunday", kNow)) == "2026-11-22");
  CHECK(core::formatDate(*engine::digestDay("daily", kNow)) == "2026-11-25");
  // The first second of a Monday already belongs to the new week.
  CHECK(core::formatDate(*engine::digestDay("monday", *core::parseIso("2026-11-30T00:00:00Z"))) ==
        "2026-11-30");
  CHECK(core::formatDate(*engine::digestDay("monday", *core::parseIso("2026-11-29T23:59:59Z"))) ==
        "2026-11-23");
  CHECK_FALSE(engine::digestDay("off", kNow).has_value());
  CHECK_FALSE(engine::digestDay("someday", kNow).has_value());
}

TEST_CASE("Each reminder window is sent once per cycle, for the narrowest window reached",
          "[unit][engine][reminders]") {
  Fixture f;
  f.certified("E1", 20);          // inside 30
  f.certified("E2", 5);           // inside 7 (and 30): only the 7-day one
  f.certified("E3", -3);          // expired 3 days ago, 14 days of grace
  f.certified("E4", 60);          // no window yet
  f.certified("E5", 10, false);   // due, but no address
  f.certified("E6", -20);         // past grace: expired, no reminder
  auto r = f.collect();
  CHECK(r.due == 4);
  CHECK(r.no_address == 1);
  CHECK(r.enqueued == 3);
  const auto mail = f.rows("people-mail");
  CHECK(keys(mail) == std::set<std::string>{"reminder-E1-T-" + expiryOf(20) + "-30d",
                                            "reminder-E2-T-" + expiryOf(5) + "-7d",
                                            "reminder-E3-T-" + expiryOf(-3) + "-grace"});
  // Personal reminders go only to the reminders sink, never through the alert routes.
  for (const auto& [id, row] : f.rows("security")) CHECK(row.kind != "reminder");

  // The same day again, and an hour later: nothing new.
  CHECK(f.collect().enqueued == 0);
  CHECK(f.collect(kNow + core::Seconds{3600}).enqueued == 0);

  // 15 days later E1 has 5 days left: the 7-day reminder, once. E2 is in grace now.
  auto later = f.collect(kNow + core::days(15));
  CHECK(later.enqueued == 2);
  const auto mail2 = f.rows("people-mail");
  CHECK(mail2.count("reminder-E1-T-" + expiryOf(20) + "-7d") == 1);
  CHECK(mail2.count("reminder-E2-T-" + expiryOf(5) + "-grace") == 1);
  CHECK(mail2.count("reminder-E1-T-" + expiryOf(20) + "-1d") == 0);
}

TEST_CASE("A renewal starts a new cycle with its own reminders", "[unit][engine][reminders]") {
  Fixture f;
  f.certified("E1", 5);
  REQUIRE(f.collect().enqueued == 1);
  // E1 renews today: the new expiry is a year after the old one (early renewal keeps the date).
  store::FactRow renew;
  renew.source_id = f.source;
  renew.external_id = "renew-1";
  renew.person_id = f.ids.at("E1");
  renew.item = "M1";
  renew.lms_item = "COURSE-1";
  renew.kind = core::FactKind::Completion;
  renew.status = core::FactStatus::Completed;
  renew.at = kNow;
  REQUIRE(f.store->upsertFact(renew, kNow).ok());
  CHECK(f.collect().enqueued == 0);  // a year away: no window
  auto r = f.collect(kNow + core::days(5 + 365 - 29));
  CHECK(r.enqueued == 1);
  CHECK(f.rows("people-mail").count("reminder-E1-T-" + expiryOf(5 + 365) + "-30d") == 1);
}

TEST_CASE("A reminder is a mail to the person, the grace one copied to escalate_to",
          "[unit][engine][reminders]") {
  Fixture f;
  f.certified("E2", 5);
  f.certified("E3", -3);
  f.collect();
  const auto mail = f.rows("people-mail");
  auto expiring = engine::alertFromRow(mail.at("reminder-E2-T-" + expiryOf(5) + "-7d"));
  REQUIRE(expiring.ok());
  CHECK(expiring->to == std::vector<std::string>{"E2@example.org"});
  CHECK(expiring->cc.empty());
  CHECK(expiring->severity == "info");
  CHECK(expiring->title == "Your Safe AI use certification expires on 2026-11-30");
  CHECK_THAT(expiring->text, Catch::Contains("Hello Person E2"));
  CHECK_THAT(expiring->text, Catch::Contains("expires on 2026-11-30 (in 5 days)"));
  CHECK_THAT(expiring->text, Catch::Contains("14 more days of grace"));
  CHECK_THAT(expiring->text, Catch::Contains("Renewing now costs you nothing"));
  CHECK_THAT(expiring->text, Catch::Contains("complete: module M1"));
  CHECK_THAT(expiring->text, Catch::Contains("https://lms.example.org/renew"));

  auto grace = engine::alertFromRow(mail.at("reminder-E3-T-" + expiryOf(-3) + "-grace"));
  REQUIRE(grace.ok());
  CHECK(grace->to == std::vector<std::string>{"E3@example.org"});
  CHECK(grace->cc == std::vector<std::string>{"peopleops@example.org"});
  CHECK(grace->severity == "warning");
  CHECK(grace->title == "Your Safe AI use certification has expired: access ends on 2026-12-06");
  CHECK_THAT(grace->text, Catch::Contains("expired on 2026-11-22"));
  CHECK_THAT(grace->text, Catch::Contains("(in 11 days)"));
}

TEST_CASE("The digest lists who expires within the horizon and who is in grace, once per period",
          "[unit][engine][reminders]") {
  Fixture f;
  f.certified("E1", 20);
  f.certified("E2", 5);
  f.certified("E3", -3);
  f.certified("E4", 60);        // beyond the 30-day horizon
  f.certified("E5", 10, false);
  auto r = f.collect();
  CHECK(r.digest_id == "expiring-digest-2026-11-23");
  CHECK(r.digest_rows == 1);
  CHECK(r.expiring == 3);
  CHECK(r.in_grace == 1);
  const auto po = f.rows("peopleops");
  REQUIRE(keys(po) == std::set<std::string>{"expiring-digest-2026-11-23"});
  CHECK(f.rows("security").empty());  // the route sends digests to peopleops only
  const auto doc = json::parse(po.begin()->second.payload_json);
  std::vector<std::string> expiring, grace;
  for (const auto& e : doc["expiring"]) expiring.push_back(e["person"]);
  for (const auto& e : doc["grace"]) grace.push_back(e["person"]);
  CHECK(expiring == std::vector<std::string>{"E2", "E5", "E1"});  // soonest first
  CHECK(grace == std::vector<std::string>{"E3"});
  CHECK(doc["no_address_count"] == 1);
  CHECK(doc["truncated"] == false);
  auto alert = engine::alertFromRow(po.begin()->second);
  REQUIRE(alert.ok());
  CHECK(alert->to.empty());  // to the sink's own addresses
  CHECK_THAT(alert->summary, Catch::Contains("3 people expire within 30 days, 1 in grace"));
  CHECK_THAT(alert->summary, Catch::Contains("1 person has no email address"));
  CHECK_THAT(alert->text, Catch::Contains("2026-11-30  T  Person E2"));
  CHECK_THAT(alert->text, Catch::Contains("Person E5  (no email address)"));

  // Later the same week: the same digest, not a second one. Next Monday: a new one.
  CHECK(f.collect(kNow + core::days(2)).digest_rows == 0);
  auto next = f.collect(kNow + core::days(5));
  CHECK(next.digest_id == "expiring-digest-2026-11-30");
  CHECK(next.digest_rows == 1);
}

TEST_CASE("The digest lists at most max_people and says how many more there are",
          "[unit][engine][reminders]") {
  Fixture f;
  f.settings.reminders.digest_max_people = 2;
  f.settings.reminders.sink.clear();  // digest only: no personal reminders
  for (int i = 1; i <= 5; ++i) f.certified("E" + std::to_string(i), i);
  auto r = f.collect();
  CHECK(r.enqueued == 0);
  CHECK(f.rows("people-mail").empty());
  const auto doc = json::parse(f.rows("peopleops").begin()->second.payload_json);
  CHECK(doc["expiring"].size() == 2);
  CHECK(doc["expiring_count"] == 5);
  CHECK(doc["truncated"] == true);
  CHECK_THAT(doc["text"].get<std::string>(), Catch::Contains("and 3 more"));
}

TEST_CASE("Without a reminders section nothing is queued", "[unit][engine][reminders]") {
  Fixture f;
  f.settings.reminders = {};
  f.certified("E1", 5);
  auto r = f.collect();
  CHECK(r.due == 0);
  CHECK(f.rows("people-mail").empty());
  CHECK(f.rows("peopleops").empty());
}
