// alerts: in certgate.yaml: sinks of every kind, routes, retry, and mistakes reported with
// file:line and what to do.

#include <catch2/catch.hpp>

#include "settings/settings.hpp"
#include "settings_test_support.hpp"

namespace certgate::settings {
namespace {

using testing::findError;

struct AlertsConfig {
  testing::TempDir dir;
  std::string config;
  explicit AlertsConfig(const std::string& alerts) {
    dir.write("tracks.yaml", "modules: [M1]\ntracks:\n  - id: T\n    modules: [M1]\n");
    config = dir.write("certgate.yaml",
                       "store: { path: certgate.db }\ntracks: [tracks.yaml]\n" + alerts);
  }
  core::Result<Settings> load(std::vector<core::Error>& errors) const {
    SpecLookups specs;
    specs.sources = &testing::fakeSpecs;
    return loadSettings(config, specs, &errors);
  }
};

constexpr const char* kFull =
    "alerts:\n"
    "  sinks:\n"
    "    - name: soc\n"
    "      kind: webhook\n"
    "      url: https://soar.example.org/hooks/certgate\n"
    "      signing_secret: { file: /etc/certgate/alert-signing-secret }\n"
    "      timeout: 20s\n"
    "    - { name: chat, kind: slack, url: { credential: slack-url }, rate_per_minute: 30 }\n"
    "    - { name: teams, kind: teams, url: { file: teams-url } }\n"
    "    - { name: pager, kind: pagerduty, routing_key: { file: pd-key }, source: iam-prod }\n"
    "    - name: mail\n"
    "      kind: email\n"
    "      smtp_url: smtps://smtp.example.org\n"
    "      from: certgate@example.org\n"
    "      to: [security@example.org, iam@example.org]\n"
    "      username: certgate\n"
    "      password: { file: smtp-password }\n"
    "    - { name: siem, kind: syslog, address: 'tcp://siem.example.org:601', facility: authpriv,"
    " hostname: iam-1 }\n"
    "  routes:\n"
    "    - { events: ['*'], sinks: [soc, siem] }\n"
    "    - { events: [revocation, plan.held, 'connector.*'], sinks: [chat, teams] }\n"
    "    - { events: ['*'], sinks: [pager], min_severity: error }\n"
    "    - { events: [exception.requested, exception.surge], sinks: [mail] }\n"
    "  retry: { max_age: 2d, base: 10s, max: 30m }\n"
    "  deliver_budget: 3s\n";

}  // namespace

TEST_CASE("alerts: every sink kind, routes and retry load", "[unit][settings]") {
  AlertsConfig c(kFull);
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  const AlertsSettings& a = s->alerts;
  CHECK(a.configured);
  REQUIRE(a.sinks.size() == 6);
  CHECK(a.sinks[0].kind == "webhook");
  CHECK(a.sinks[0].url == "https://soar.example.org/hooks/certgate");
  CHECK(a.sinks[0].secret.file == "/etc/certgate/alert-signing-secret");
  CHECK(a.sinks[0].timeout.count() == 20);
  CHECK(a.sinks[1].url_secret.credential == "slack-url");
  CHECK(a.sinks[1].rate_per_minute == 30);
  CHECK(a.sinks[2].url_secret.file == c.dir.path() + "/teams-url");
  CHECK(a.sinks[3].url == "https://events.pagerduty.com/v2/enqueue");
  CHECK(a.sinks[3].source == "iam-prod");
  CHECK(a.sinks[4].to == std::vector<std::string>{"security@example.org", "iam@example.org"});
  CHECK(a.sinks[4].secret.file == c.dir.path() + "/smtp-password");
  CHECK(a.sinks[5].address == "tcp://siem.example.org:601");
  CHECK(a.sinks[5].facility == 10);
  CHECK(a.sinks[5].hostname == "iam-1");
  REQUIRE(a.routes.size() == 4);
  CHECK(a.routes[1].events == std::vector<std::string>{"revocation", "plan.held", "connector.*"});
  CHECK(a.routes[2].min_severity == "error");
  CHECK(a.max_age.count() == 2 * 86400);
  CHECK(a.retry_base.count() == 10);
  CHECK(a.retry_max.count() == 1800);
  CHECK(a.deliver_budget.count() == 3);
}

TEST_CASE("without alerts: nothing is configured", "[unit][settings]") {
  AlertsConfig c("");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  REQUIRE(s.ok());
  CHECK_FALSE(s->alerts.configured);
  CHECK(s->alerts.sinks.empty());
}

TEST_CASE("alerts mistakes say where and what to do", "[unit][settings]") {
  struct Case {
    const char* reason;
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"a Slack URL written inline (it carries a token)",
       "alerts:\n  sinks:\n    - { name: c, kind: slack, url: 'https://hooks.slack.com/services/T/B/X' }\n",
       "alerts.sinks[0].url: secrets are never written inline"},
      {"an unknown sink kind", "alerts:\n  sinks:\n    - { name: c, kind: carrier-pigeon }\n",
       "unknown alert sink kind 'carrier-pigeon'"},
      {"a key of another kind",
       "alerts:\n  sinks:\n    - { name: c, kind: syslog, address: 'udp://h:514', routing_key: { file: k } }\n",
       "unknown key 'routing_key' in alerts.sinks[0]"},
      {"a webhook over plain http off loopback",
       "alerts:\n  sinks:\n    - { name: w, kind: webhook, url: 'http://soar.example.org/x', "
       "signing_secret: { file: s } }\n",
       "alerts.sinks[0].url must be https://"},
      {"a webhook without a signing secret",
       "alerts:\n  sinks:\n    - { name: w, kind: webhook, url: 'https://soar.example.org/x' }\n",
       "missing required key 'signing_secret'"},
      {"a route naming a sink that does not exist",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h:514' }\n"
       "  routes:\n    - { events: [revocation], sinks: [nope] }\n",
       "no alert sink is named 'nope'"},
      {"a route naming an alert kind that does not exist",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h:514' }\n"
       "  routes:\n    - { events: [revokation], sinks: [s] }\n",
       "'revokation' names no alert kind"},
      {"an unknown severity",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h:514' }\n"
       "  routes:\n    - { events: ['*'], sinks: [s], min_severity: panic }\n",
       "unknown severity 'panic'"},
      {"a syslog address without a port",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h' }\n",
       "must be udp://HOST:PORT or tcp://HOST:PORT"},
      {"two sinks with one name",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h:514' }\n"
       "    - { name: s, kind: syslog, address: 'udp://h:515' }\n",
       "alert sink name 's' is used twice"},
      {"a max age shorter than the longest delay",
       "alerts:\n  sinks:\n    - { name: s, kind: syslog, address: 'udp://h:514' }\n"
       "  retry: { max_age: 10m, max: 1h }\n",
       "alerts.retry.max_age must not be shorter than alerts.retry.max"},
      {"an email recipient that is not an address",
       "alerts:\n  sinks:\n    - { name: m, kind: email, smtp_url: 'smtps://s', from: a@example.org, "
       "to: [security] }\n",
       "'security' is not an email address"},
  };
  for (const auto& k : cases) {
    INFO(k.reason);
    AlertsConfig c(k.yaml);
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* e = findError(errors, k.expected);
    REQUIRE(e != nullptr);
    CHECK(e->where.find("certgate.yaml:") != std::string::npos);
    CHECK_FALSE(e->hint.empty());
    // The inline Slack URL is never echoed.
    CHECK(testing::allMessages(errors).find("hooks.slack.com/services/T/B/X") == std::string::npos);
  }
}

namespace {

constexpr const char* kMailSinks =
    "alerts:\n"
    "  sinks:\n"
    "    - { name: people, kind: email, smtp_url: 'smtps://smtp.example.org', from: "
    "training@example.org, to: [peopleops@example.org] }\n"
    "    - { name: siem, kind: syslog, address: 'udp://siem.example.org:514' }\n";

}  // namespace

TEST_CASE("reminders: the sink, escalation, learn_url and the digest load", "[unit][settings]") {
  AlertsConfig c(std::string(kMailSinks) +
                 "  routes:\n    - { events: [expiring.digest], sinks: [people] }\n"
                 "reminders:\n"
                 "  sink: people\n"
                 "  escalate_to: [peopleops@example.org]\n"
                 "  learn_url: https://lms.example.org/my\n"
                 "  digest: { every: friday, horizon_days: 21, max_people: 100 }\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  const RemindersSettings& r = s->reminders;
  CHECK(r.configured);
  CHECK(r.sink == "people");
  CHECK(r.escalate_to == std::vector<std::string>{"peopleops@example.org"});
  CHECK(r.learn_url == "https://lms.example.org/my");
  CHECK(r.digest_every == "friday");
  CHECK(r.digest_horizon_days == 21);
  CHECK(r.digest_max_people == 100);
  // Routes are set, so the people sink gets only what they send it: no warning about that.
  for (const auto& w : s->warnings) CHECK(w.find("every alert also goes") == std::string::npos);
}

TEST_CASE("reminders: defaults, and a warning when every alert would reach the people sink",
          "[unit][settings]") {
  AlertsConfig c(std::string(kMailSinks) + "reminders: { sink: people }\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  CHECK(s->reminders.digest_every == "monday");
  CHECK(s->reminders.digest_horizon_days == 30);
  bool warned = false;
  for (const auto& w : s->warnings)
    warned = warned || w.find("every alert also goes to sink 'people'") != std::string::npos;
  CHECK(warned);
}

TEST_CASE("reminders mistakes say where and what to do", "[unit][settings]") {
  struct Case {
    const char* reason;
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"a sink that does not exist", "reminders: { sink: nope }\n",
       "reminders.sink 'nope' is not a sink in alerts.sinks"},
      {"a sink that is not email", "reminders: { sink: siem }\n",
       "reminders.sink 'siem' is a syslog sink; reminders are emails"},
      {"an unknown digest day", "reminders: { digest: { every: fortnightly } }\n",
       "reminders.digest.every: unknown value 'fortnightly'"},
      {"an escalation address that is not one", "reminders: { escalate_to: [peopleops] }\n",
       "reminders.escalate_to: 'peopleops' is not an email address"},
      {"a learn_url that is not a URL", "reminders: { learn_url: lms.example.org }\n",
       "reminders.learn_url must be an http(s) URL"},
      {"a horizon of zero days", "reminders: { digest: { horizon_days: 0 } }\n",
       "reminders.digest.horizon_days"},
      {"an unknown key", "reminders: { sink: people, remind_before: 7 }\n",
       "unknown key 'remind_before' in reminders"},
  };
  for (const auto& k : cases) {
    INFO(k.reason);
    AlertsConfig c(std::string(kMailSinks) + k.yaml);
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* e = findError(errors, k.expected);
    REQUIRE(e != nullptr);
    CHECK(e->where.find("certgate.yaml:") != std::string::npos);
  }
}

}  // namespace certgate::settings
