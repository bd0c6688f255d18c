// gateways:, delivery: and token grants (mappings/ grants[].tokens, track grants.tokens).

#include <catch2/catch.hpp>

#include "settings/settings.hpp"
#include "settings_test_support.hpp"

namespace certgate::settings {
namespace {

using testing::findError;

const ports::ConfigSpec* gatewaySpecs(const std::string& kind) {
  static const ports::ConfigSpec spec{
      "litellm",
      "test gateway",
      {{"base_url", ports::ValueType::String, true, "", "the proxy's URL"},
       {"master_key", ports::ValueType::Secret, true, "", "the master key"}}};
  return kind == "litellm" ? &spec : nullptr;
}

constexpr const char* kTracks =
    "modules: [M1]\n"
    "tracks:\n"
    "  - id: GENAI_USER\n"
    "    modules: [M1]\n"
    "    recertifyDays: 365\n"
    "    graceDays: 14\n"
    "    grants:\n"
    "      tokens:\n"
    "        - { scope: genai-basic, models: [gpt-4o-mini], lifetime: 90d }\n"
    "  - id: GENAI_BUILDER\n"
    "    modules: [M1]\n";

struct GatewayConfig {
  testing::TempDir dir;
  std::string config;
  GatewayConfig(const std::string& body, const std::string& grants) {
    dir.write("tracks.yaml", kTracks);
    dir.write("grants.yaml", grants);
    config = dir.write("certgate.yaml",
                       "store: { path: certgate.db }\ntracks: [tracks.yaml]\n"
                       "mappings: { grants: [grants.yaml] }\n" +
                           body);
  }
  core::Result<Settings> load(std::vector<core::Error>& errors) const {
    SpecLookups specs;
    specs.sources = &testing::fakeSpecs;
    specs.gateways = &gatewaySpecs;
    return loadSettings(config, specs, &errors);
  }
};

constexpr const char* kGateway =
    "gateways:\n"
    "  - name: litellm\n"
    "    kind: litellm\n"
    "    base_url: http://127.0.0.1:4000\n"
    "    master_key: { file: /etc/certgate/litellm-master-key }\n"
    "    verify_after: 90s\n";

const TrackGrants* grantsOf(const Settings& s, const std::string& track) {
  for (const auto& g : s.policy->grants)
    if (g.track == track) return &g;
  return nullptr;
}

TEST_CASE("Gateways and token grants load from certgate.yaml, mappings and track files",
          "[unit][settings]") {
  GatewayConfig c(std::string(kGateway) +
                      "delivery:\n"
                      "  webhook:\n"
                      "    url: https://vault.example.org/certgate\n"
                      "    signing_secret: { credential: delivery-signing }\n"
                      "    timeout: 5s\n",
                  "grants:\n"
                  "  - track: GENAI_BUILDER\n"
                  "    tokens:\n"
                  "      - gateway: litellm\n"
                  "        scope: genai-builder\n"
                  "        models: [gpt-4o, claude-sonnet]\n"
                  "        max_budget: 50\n"
                  "        budget_duration: 30d\n"
                  "        rotate_before: 3d\n"
                  "        overlap: 12h\n"
                  "        delivery: webhook\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  REQUIRE(s->gateways.size() == 1);
  CHECK(s->gateways[0].name == "litellm");
  CHECK(s->gateways[0].kind == "litellm");
  REQUIRE(s->gateways[0].verify_after);
  CHECK(s->gateways[0].verify_after->count() == 90);
  CHECK(s->gateways[0].options.find("base_url")->scalar == "http://127.0.0.1:4000");
  CHECK(findGateway(*s, "") == &s->gateways[0]);
  CHECK(findGateway(*s, "kong") == nullptr);

  REQUIRE(s->delivery.webhook);
  CHECK(s->delivery.webhook->url == "https://vault.example.org/certgate");
  CHECK(s->delivery.webhook->signing_secret.credential == "delivery-signing");
  CHECK(s->delivery.webhook->timeout.count() == 5);

  const TrackGrants* user = grantsOf(*s, "GENAI_USER");
  REQUIRE(user);
  REQUIRE(user->tokens.size() == 1);
  CHECK(user->tokens[0].gateway.empty());
  CHECK(user->tokens[0].scope == "genai-basic");
  CHECK(user->tokens[0].models == std::vector<std::string>{"gpt-4o-mini"});
  CHECK(user->tokens[0].lifetime.count() == 90 * 86400);
  CHECK(user->tokens[0].rotate_before.count() == 7 * 86400);  // default
  CHECK(user->tokens[0].delivery == Delivery::None);

  const TrackGrants* builder = grantsOf(*s, "GENAI_BUILDER");
  REQUIRE(builder);
  CHECK(builder->groups.empty());
  REQUIRE(builder->tokens.size() == 1);
  const TokenGrantSettings& t = builder->tokens[0];
  CHECK(t.gateway == "litellm");
  REQUIRE(t.max_budget);
  CHECK(*t.max_budget == Approx(50));
  CHECK(t.budget_duration == "30d");
  CHECK(t.rotate_before.count() == 3 * 86400);
  CHECK(t.overlap.count() == 12 * 3600);
  CHECK(t.delivery == Delivery::Webhook);
  CHECK(t.lifetime.count() == 0);
}

TEST_CASE("Gateway and token grant mistakes say where and what to do", "[unit][settings]") {
  std::vector<core::Error> errors;
  SECTION("a grant naming an unknown gateway") {
    GatewayConfig c(kGateway,
                    "grants:\n  - track: GENAI_BUILDER\n"
                    "    tokens: [{ gateway: kong, scope: b }]\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* e = findError(errors, "names gateway 'kong', which is not configured");
    REQUIRE(e);
    CHECK(e->message.find("gateways: litellm") != std::string::npos);
    CHECK(e->where.find("grants.yaml:3") != std::string::npos);
  }
  SECTION("webhook delivery without delivery.webhook") {
    GatewayConfig c(kGateway,
                    "grants:\n  - track: GENAI_BUILDER\n"
                    "    tokens: [{ scope: b, delivery: webhook }]\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "delivers by webhook but delivery.webhook is not configured"));
  }
  SECTION("a plain-http webhook off loopback") {
    GatewayConfig c(std::string(kGateway) +
                        "delivery: { webhook: { url: 'http://vault.example.org/x', "
                        "signing_secret: { file: s } } }\n",
                    "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b }]\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "delivery.webhook.url must be https://"));
  }
  SECTION("an unknown key in a token grant, a bad delivery, a scope with a space") {
    GatewayConfig c(kGateway,
                    "grants:\n  - track: GENAI_BUILDER\n"
                    "    tokens:\n"
                    "      - { scope: b, modles: [x] }\n"
                    "      - { scope: c, delivery: sms }\n"
                    "      - { scope: 'd e' }\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* unknown = findError(errors, "unknown key 'modles'");
    REQUIRE(unknown);
    CHECK(unknown->message.find("did you mean 'models'") != std::string::npos);
    CHECK(findError(errors, "must be none, webhook or email, got 'sms'"));
    CHECK(findError(errors, "may not be empty or contain spaces"));
  }
  SECTION("rotate_before not shorter than lifetime; a scope granted twice") {
    GatewayConfig c(kGateway,
                    "grants:\n  - track: GENAI_BUILDER\n"
                    "    tokens:\n"
                    "      - { scope: b, lifetime: 7d, rotate_before: 7d }\n"
                    "      - { scope: c }\n"
                    "      - { scope: c }\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "rotate_before (604800s) must be shorter than lifetime"));
    CHECK(findError(errors, "track GENAI_BUILDER grants scope c twice"));
  }
  SECTION("a grant entry with neither groups nor tokens") {
    GatewayConfig c(kGateway, "grants:\n  - track: GENAI_BUILDER\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "grants nothing: it has neither groups nor tokens"));
  }
  SECTION("an unknown gateway kind and a missing required key") {
    GatewayConfig c("gateways:\n  - { name: g, kind: litelm, base_url: x }\n"
                    "  - { name: h, kind: litellm, base_url: x }\n",
                    "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ gateway: h, scope: b }]\n");
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* kind = findError(errors, "unknown gateway kind 'litelm'");
    REQUIRE(kind);
    CHECK(kind->message.find("did you mean 'litellm'") != std::string::npos);
    CHECK(findError(errors, "missing required key 'master_key'"));
  }
}

constexpr const char* kEmailDelivery =
    "delivery:\n"
    "  email:\n"
    "    smtp_url: smtp://smtp.example.org:587\n"
    "    from: certgate@example.org\n"
    "    username: certgate\n"
    "    password: { credential: smtp-password }\n"
    "    pickup_base_url: https://certgate.example.org/\n"
    "    pickup_ttl: 48h\n"
    "    encryption_key: { credential: pickup-key }\n"
    "    subject: Your token\n"
    "    timeout: 20s\n";

TEST_CASE("delivery.email loads, and token grants may then deliver by email", "[unit][settings]") {
  GatewayConfig c(std::string(kGateway) + kEmailDelivery,
                  "grants:\n  - track: GENAI_BUILDER\n"
                  "    tokens: [{ scope: b, delivery: email }]\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  REQUIRE(s->delivery.email);
  const EmailDelivery& m = *s->delivery.email;
  CHECK(m.smtp_url == "smtp://smtp.example.org:587");
  CHECK(m.from == "certgate@example.org");
  CHECK(m.username == "certgate");
  CHECK(m.password.credential == "smtp-password");
  CHECK(m.pickup_base_url == "https://certgate.example.org");  // trailing '/' dropped
  CHECK(m.pickup_ttl.count() == 48 * 3600);
  CHECK(m.encryption_key.credential == "pickup-key");
  CHECK(m.subject == "Your token");
  CHECK(m.timeout.count() == 20);
  const TrackGrants* builder = grantsOf(*s, "GENAI_BUILDER");
  REQUIRE(builder);
  REQUIRE(builder->tokens.size() == 1);
  CHECK(builder->tokens[0].delivery == Delivery::Email);
}

TEST_CASE("delivery.email defaults: a 24h pickup, a 30s timeout, no SMTP login",
          "[unit][settings]") {
  GatewayConfig c(std::string(kGateway) +
                      "delivery: { email: { smtps_url_is_not_a_key: 1 } }\n",
                  "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b }]\n");
  std::vector<core::Error> errors;
  REQUIRE_FALSE(c.load(errors).ok());
  CHECK(findError(errors, "smtps_url_is_not_a_key"));

  GatewayConfig ok(std::string(kGateway) +
                       "delivery: { email: { smtp_url: 'smtps://smtp.example.org', from: "
                       "a@example.org, pickup_base_url: 'https://c.example.org', "
                       "encryption_key: { file: key } } }\n",
                   "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b }]\n");
  std::vector<core::Error> none;
  auto s = ok.load(none);
  INFO(testing::allMessages(none));
  REQUIRE(s.ok());
  REQUIRE(s->delivery.email);
  CHECK(s->delivery.email->pickup_ttl.count() == 86400);
  CHECK(s->delivery.email->timeout.count() == 30);
  CHECK(s->delivery.email->username.empty());
  CHECK(s->delivery.email->password.empty());
}

TEST_CASE("delivery.email mistakes say where and what to do", "[unit][settings]") {
  struct Case {
    const char* reason;
    const char* email;
    const char* expected;
  };
  const Case cases[] = {
      {"a grant delivers by email but delivery.email is missing", nullptr,
       "delivers by email but delivery.email is not configured"},
      {"another scheme than smtp or smtps",
       "{ smtp_url: 'http://smtp.example.org', from: a@example.org, pickup_base_url: "
       "'https://c.example.org', encryption_key: { file: k } }",
       "delivery.email.smtp_url must be smtps:// or smtp://"},
      {"a pickup link over plain http off loopback",
       "{ smtp_url: 'smtps://smtp.example.org', from: a@example.org, pickup_base_url: "
       "'http://c.example.org', encryption_key: { file: k } }",
       "delivery.email.pickup_base_url must be https://"},
      {"a sender that is not an address",
       "{ smtp_url: 'smtps://smtp.example.org', from: certgate, pickup_base_url: "
       "'https://c.example.org', encryption_key: { file: k } }",
       "delivery.email.from 'certgate' is not an email address"},
      {"the key written inline (a secret in the config file)",
       "{ smtp_url: 'smtps://smtp.example.org', from: a@example.org, pickup_base_url: "
       "'https://c.example.org', encryption_key: c2VjcmV0 }",
       "delivery.email.encryption_key"},
      {"no encryption key at all",
       "{ smtp_url: 'smtps://smtp.example.org', from: a@example.org, pickup_base_url: "
       "'https://c.example.org' }",
       "encryption_key"},
      {"a login without a password",
       "{ smtp_url: 'smtps://smtp.example.org', from: a@example.org, username: u, "
       "pickup_base_url: 'https://c.example.org', encryption_key: { file: k } }",
       "delivery.email.username is set but password is not"},
      {"a pickup ttl of one minute",
       "{ smtp_url: 'smtps://smtp.example.org', from: a@example.org, pickup_ttl: 1m, "
       "pickup_base_url: 'https://c.example.org', encryption_key: { file: k } }",
       "delivery.email.pickup_ttl must be between 10m and 30d"},
      {"an smtp url without a host",
       "{ smtp_url: 'smtp://:25', from: a@example.org, "
       "pickup_base_url: 'https://c.example.org', encryption_key: { file: k } }",
       "delivery.email.smtp_url names no host"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    GatewayConfig config(
        std::string(kGateway) +
            (c.email ? std::string("delivery:\n  email: ") + c.email + "\n" : std::string()),
        "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b, delivery: email }]\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(config.load(errors).ok());
    INFO(testing::allMessages(errors));
    const core::Error* e = findError(errors, c.expected);
    REQUIRE(e);
    CHECK(e->where.find(c.email ? "certgate.yaml:" : "grants.yaml:") != std::string::npos);
  }
}

TEST_CASE("delivery.email accepts plain smtp:// and http:// pickup links to loopback only",
          "[unit][settings]") {
  GatewayConfig c(std::string(kGateway) +
                      "delivery: { email: { smtp_url: 'smtp://127.0.0.1:2525', from: "
                      "a@example.org, pickup_base_url: 'http://127.0.0.1:9464', "
                      "encryption_key: { file: key } } }\n",
                  "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b, delivery: email }]\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  CHECK(s->delivery.email->pickup_base_url == "http://127.0.0.1:9464");

  GatewayConfig lookalike(std::string(kGateway) +
                              "delivery: { email: { smtp_url: 'smtps://smtp.example.org', from: "
                              "a@example.org, pickup_base_url: 'http://127.0.0.1.example.org', "
                              "encryption_key: { file: key } } }\n",
                          "grants:\n  - track: GENAI_BUILDER\n    tokens: [{ scope: b }]\n");
  std::vector<core::Error> refused;
  REQUIRE_FALSE(lookalike.load(refused).ok());
  CHECK(findError(refused, "delivery.email.pickup_base_url must be https://"));
}

}  // namespace
}  // namespace certgate::settings
