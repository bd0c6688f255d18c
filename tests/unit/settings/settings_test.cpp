// certgate.yaml and the mapping files it names, loaded through loadSettings().

#include "settings/settings.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "settings_test_support.hpp"

namespace certgate::settings {
namespace {

using testing::findError;
using testing::fixture;

std::string normal(const std::string& p) {
  return std::filesystem::path(p).lexically_normal().string();
}

Settings loadOk(const std::string& file) {
  std::vector<core::Error> errors;
  auto r = loadSettings(file, &testing::fakeSpecs, &errors);
  INFO(testing::allMessages(errors));
  REQUIRE(r.ok());
  REQUIRE(errors.empty());
  return std::move(r).value();
}

std::vector<core::Error> loadErrors(const std::string& file) {
  std::vector<core::Error> errors;
  auto r = loadSettings(file, &testing::fakeSpecs, &errors);
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(errors.empty());
  CHECK(r.error().message == errors.front().message);
  CHECK(r.error().where == errors.front().where);
  return errors;
}

// A config directory with the policy example next to certgate.yaml.
struct ConfigDir {
  testing::TempDir dir;
  std::string config;
  explicit ConfigDir(const std::string& body) {
    std::filesystem::copy_file(fixture("policy-example.yaml"), dir.path() + "/policy.yaml");
    config = dir.write("certgate.yaml",
                       "store: { path: certgate.db }\npolicies: [policy.yaml]\n" + body);
  }
};

TEST_CASE("The complete example configuration loads every section", "[unit][settings]") {
  const std::string file = fixture("good/certgate.yaml");
  const Settings s = loadOk(file);
  const std::string dir = normal(fixture("good"));

  CHECK(s.config_file == normal(file));
  CHECK(s.base_dir == dir);
  CHECK(s.store_path == dir + "/state/certgate.db");
  CHECK(s.track_files == std::vector<std::string>{dir + "/tracks/genai.yaml"});
  CHECK(s.policy_files == std::vector<std::string>{normal(fixture("policy-example.yaml"))});
  CHECK(s.group_bindings.at("certifiedAutomationGroup") == "GENAI_AUTOMATION_PARTNER");
  CHECK(s.item_mapping_files == std::vector<std::string>{dir + "/mappings/items.yaml"});
  CHECK(s.grant_mapping_files == std::vector<std::string>{dir + "/mappings/grants.yaml"});
  CHECK(s.identity_mapping_file == dir + "/mappings/identity.yaml");

  CHECK(s.identity.keys ==
        std::vector<core::IdentityKey>{core::IdentityKey::Email, core::IdentityKey::EmployeeId});
  CHECK(s.identity.default_population == "employee");
  CHECK(s.identity.roster_path == dir + "/roster.csv");
  CHECK(s.identity.roster_columns.at("employee_id") == "Employee ID");
  CHECK(s.identity.roster_columns.at("population") == "Worker Type");

  REQUIRE(s.sources.size() == 2);
  const SourceSettings& lms = s.sources[0];
  CHECK(lms.name == "lms-exports");
  CHECK(lms.kind == "csv");
  CHECK(lms.enabled);
  CHECK_FALSE(lms.trust_lms_expiry);
  CHECK(lms.min_record_ratio == Approx(0.8));
  CHECK(lms.where.line == 18);
  REQUIRE(lms.options.find("directory"));
  CHECK(lms.options.find("directory")->scalar == dir + "/exports");
  CHECK(lms.options.find("delimiter")->scalar == ";");
  CHECK(lms.options.find("date_format")->scalar == "%d/%m/%Y %H:%M");
  CHECK(lms.options.find("min_rows")->scalar == "5");
  const ports::OptionValue* columns = lms.options.find("columns");
  REQUIRE(columns);
  CHECK(columns->shape == ports::OptionValue::Shape::Map);
  CHECK(columns->map.size() == 5);
  CHECK(columns->map[1] == std::pair<std::string, std::string>{"completed_at", "Completed At"});
  CHECK(columns->where == file + ":26:14");
  CHECK_FALSE(lms.options.find("pattern"));  // defaults are the connector's business
  CHECK_FALSE(s.sources[1].enabled);
  CHECK(s.sources[1].min_record_ratio == Approx(0.5));

  CHECK(s.limits.max_removals == 20);
  CHECK(s.limits.max_removal_pct == Approx(2.5));
  CHECK(s.limits.clock_skew == core::Seconds{600});
  CHECK(s.schedule.interval == core::Seconds{1800});
  CHECK(s.schedule.jitter == core::Seconds{120});
  CHECK(s.http.listen == "127.0.0.1:0");
  CHECK(s.http.admin_token.credential == "admin-token");
  CHECK(s.http.admin_token.describe() == "credential admin-token");
  CHECK(s.logging.level == "debug");
  CHECK(s.logging.format == "json");

  REQUIRE(s.policy);
  CHECK(s.policy->policy.tracks.size() == 4);
  CHECK(s.policy->policy.clock_skew == core::Seconds{600});
  CHECK(s.policy->policy_ids == std::vector<std::string>{"partner-ai-cert-gate-v3"});

  REQUIRE(s.items.size() == 5);
  CHECK(s.items[0].source == "lms-exports");
  CHECK(s.items[0].lms_item == "course-110");
  CHECK(s.items[0].item == "SAFE-110-sensitive-data");
  CHECK(s.items[1].source.empty());
  CHECK(s.items[3].item == "GENAI_USER_PARTNER/quiz");
  CHECK(s.items[4].item == "GENAI_USER/quiz");

  REQUIRE(s.identity.overrides.size() == 2);
  CHECK(s.identity.overrides[0].source == "lms-exports");
  CHECK(s.identity.overrides[0].match == "jdoe@old.example.org");
  CHECK(s.identity.overrides[0].person_key == "E1001");
  CHECK(s.identity.overrides[1].person_key == "bob@example.org");
  CHECK(s.identity.populations.at("E1001") == "contractor");
  CHECK(s.identity.populations.at("E1002") == "employee");
  CHECK(s.identity.populations.at("bob@example.org") == "agency");
}

TEST_CASE("Group grants from track files, grant mappings and groupMapping are merged per track",
          "[unit][settings]") {
  const Settings s = loadOk(fixture("good/certgate.yaml"));
  const auto& grants = s.policy->grants;
  auto of = [&](const std::string& track) -> const TrackGrants* {
    for (const auto& g : grants)
      if (g.track == track) return &g;
    return nullptr;
  };
  REQUIRE(of("GENAI_USER"));
  REQUIRE(of("GENAI_USER")->groups.size() == 2);
  CHECK(of("GENAI_USER")->groups[0].group == "AAD-SG-GENAI-USERS");
  CHECK(of("GENAI_USER")->groups[1].group == "genai-users");
  REQUIRE(of("GENAI_USER_PARTNER"));
  CHECK(of("GENAI_USER_PARTNER")->groups.size() == 1);
  REQUIRE(of("GENAI_AUTOMATION_PARTNER"));
  CHECK(of("GENAI_AUTOMATION_PARTNER")->groups[0].group == "AAD-SG-GENAI-PARTNER-AUTOMATION");
  CHECK_FALSE(of("DATA_BASICS"));
}

TEST_CASE("Defaults apply when optional sections are absent", "[unit][settings]") {
  ConfigDir c("");
  const Settings s = loadOk(c.config);
  CHECK(s.limits.max_removals == 25);
  CHECK(s.limits.max_removal_pct == Approx(10.0));
  CHECK(s.limits.clock_skew == core::Seconds{300});
  CHECK(s.schedule.interval == core::Seconds{900});
  CHECK(s.schedule.jitter == core::Seconds{60});
  CHECK(s.http.listen == "127.0.0.1:9464");
  CHECK(s.http.admin_token.empty());
  CHECK(s.logging.level == "info");
  CHECK(s.logging.format == "text");
  CHECK(s.identity.keys ==
        std::vector<core::IdentityKey>{core::IdentityKey::EmployeeId, core::IdentityKey::Email});
  CHECK(s.sources.empty());
  CHECK_FALSE(s.warnings.empty());  // "no sources are configured"
}

TEST_CASE("An inline secret is rejected without echoing its value", "[unit][settings]") {
  const std::string file = fixture("bad/inline-secret/certgate.yaml");
  const auto errors = loadErrors(file);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].where == file + ":5:16");
  CHECK(errors[0].message ==
        "http.admin_token: secrets are never written inline; put it in a file (mode 0600) or a "
        "systemd credential and reference it");
  CHECK(errors[1].where == file + ":10:16");
  CHECK_THAT(errors[1].message,
             Catch::StartsWith("sources[0].api_token: secrets are never written inline"));
  for (const auto& e : errors) {
    CHECK_THAT(e.describe(), !Catch::Contains("s3cr3t") && !Catch::Contains("another-inline"));
  }
}

TEST_CASE("A secret reference is a file or a credential, resolved against the config dir",
          "[unit][settings]") {
  ConfigDir c(
      "sources:\n"
      "  - name: graded\n"
      "    kind: graded\n"
      "    base_url: https://lms.example.org\n"
      "    api_token: { file: secrets/lms-token }\n"
      "    courses: [c1, c2]\n"
      "    timeout: 45s\n"
      "    verify_tls: no\n"
      "http: { admin_token: { file: /etc/certgate/admin-token } }\n");
  const Settings s = loadOk(c.config);
  const ports::OptionValue* token = s.sources.at(0).options.find("api_token");
  REQUIRE(token);
  CHECK(token->shape == ports::OptionValue::Shape::Map);
  REQUIRE(token->map.size() == 1);
  CHECK(token->map[0].first == "file");
  CHECK(token->map[0].second == normal(c.dir.path() + "/secrets/lms-token"));
  CHECK(s.sources[0].options.find("courses")->list == std::vector<std::string>{"c1", "c2"});
  CHECK(s.sources[0].options.find("timeout")->scalar == "45s");
  CHECK(s.sources[0].options.find("verify_tls")->scalar == "false");
  CHECK(s.http.admin_token.file == "/etc/certgate/admin-token");
  CHECK(s.http.admin_token.describe() == "file /etc/certgate/admin-token");

  ConfigDir both("http: { admin_token: { file: a, credential: b } }\n");
  const auto errors = loadErrors(both.config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].message, Catch::Contains("exactly one of 'file' or 'credential'"));
}

TEST_CASE("An unknown source kind lists the known kinds", "[unit][settings]") {
  const std::string file = fixture("bad/unknown-kind/certgate.yaml");
  const auto errors = loadErrors(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == file + ":5:11");
  CHECK(errors[0].message ==
        "sources[0].kind: unknown source kind 'cvs'; known kinds: csv; did you mean 'csv'?");

  std::vector<core::Error> listed;
  auto r = loadSettings(file, &testing::fakeSpecs, {"csv", "graded"}, &listed);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("known kinds: csv, graded"));
}

TEST_CASE("Connector keys are checked against the connector's spec", "[unit][settings]") {
  ConfigDir c(
      "sources:\n"
      "  - name: lms\n"
      "    kind: csv\n"
      "    colums: { item: Course, completed_at: Date, email: Email }\n"
      "    min_rows: many\n"
      "  - name: graded\n"
      "    kind: graded\n"
      "    api_token: { credential: lms-token }\n"
      "    timeout: soon\n");
  const auto errors = loadErrors(c.config);
  INFO(testing::allMessages(errors));
  const core::Error* unknown = findError(errors, "unknown key 'colums' in sources[0] (kind csv)");
  REQUIRE(unknown);
  CHECK(unknown->where == c.config + ":6:5");
  CHECK_THAT(unknown->message,
             Catch::Contains("valid keys: name, kind, enabled, trust_lms_expiry, "
                             "min_record_ratio, interval, push_secret, push_auth, push_jwks, "
                             "push_jwt_issuer, directory, pattern") &&
                                   Catch::Contains("did you mean 'columns'?"));
  REQUIRE(findError(errors, "sources[0].min_rows must be a whole number"));
  const core::Error* missing_dir =
      findError(errors, "missing required key 'directory' in sources[0]");
  REQUIRE(missing_dir);
  CHECK(missing_dir->where == c.config + ":4:5");
  REQUIRE(findError(errors, "missing required key 'columns' in sources[0]"));
  REQUIRE(findError(errors, "missing required key 'base_url' in sources[1]"));
  REQUIRE(findError(errors, "sources[1].timeout must be a duration"));
  CHECK(errors.size() == 6);
}

TEST_CASE("Source names are unique and lower-case", "[unit][settings]") {
  ConfigDir c(
      "sources:\n"
      "  - { name: lms, kind: csv, directory: d, columns: { item: a, completed_at: b, email: c } "
      "}\n"
      "  - { name: lms, kind: csv, directory: d, columns: { item: a, completed_at: b, email: c } "
      "}\n"
      "  - { name: My LMS, kind: csv, directory: d, columns: { item: a, completed_at: b, email: c "
      "} }\n");
  const auto errors = loadErrors(c.config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].message == "duplicate source name 'lms'");
  CHECK(errors[0].where == c.config + ":5:13");
  CHECK_THAT(errors[1].message, Catch::Contains("'My LMS' may only contain a-z, 0-9, '-' and '_'"));
}

TEST_CASE("Every error of a broken configuration is reported, not just the first",
          "[unit][settings]") {
  const std::string file = fixture("bad/multiple-errors/certgate.yaml");
  const std::string tracks = fixture("bad/multiple-errors/tracks.yaml");
  const auto errors = loadErrors(file);
  INFO(testing::allMessages(errors));
  REQUIRE(errors.size() == 6);
  // In file order: certgate.yaml line by line, then the track file it names.
  CHECK(errors[0].where == file + ":4:19");
  CHECK(errors[1].where == file + ":5:1");
  CHECK(errors[1].message ==
        "unknown top-level key 'schedulee'; valid keys: version, store, tracks, policies, "
        "group_bindings, mappings, identity, sources, directories, gateways, delivery, limits, "
        "schedule, http, logging, alerts, reminders, exceptions; did you mean 'schedule'?");
  REQUIRE(findError(errors, "'Bad Name' may only contain"));
  CHECK(findError(errors, "'Bad Name' may only contain")->where == file + ":7:11");
  REQUIRE(findError(errors, "missing required key 'directory' in sources[0]"));
  REQUIRE(findError(errors,
                    "logging.level must be one of trace, debug, info, warn, error; got 'verbose'"));
  CHECK(findError(errors, "logging.level")->where == file + ":4:19");
  REQUIRE(findError(errors, "tracks[0].quiz.minScorePct must be a number from 0 to 100, got 130"));
  CHECK(findError(errors, "minScorePct")->where == tracks + ":4:26");
  REQUIRE(findError(errors, "tracks[0].graceDays must be a whole number from 0"));
  CHECK(findError(errors, "graceDays")->where == tracks + ":5:16");
}

TEST_CASE("Main configuration values are range-checked", "[unit][settings]") {
  struct Case {
    const char* reason;
    const char* body;
    const char* expected;
  };
  const Case cases[] = {
      {"version must be 1", "version: 2\n", "version must be a whole number from 1 to 1"},
      {"store is required", "", "missing required key 'store' at the top level"},
      {"durations need a unit", "limits: { clock_skew: 5 }\n",
       "limits.clock_skew must be a duration like 30s"},
      {"removal percentage is 0..100", "limits: { max_removal_pct: 150 }\n",
       "limits.max_removal_pct must be a number from 0 to 100"},
      {"jitter shorter than interval", "schedule: { interval: 1m, jitter: 5m }\n",
       "schedule.jitter (300s) must be shorter than schedule.interval (60s)"},
      {"listen needs a port", "http: { listen: localhost }\n", "http.listen must be HOST:PORT"},
      {"log format", "logging: { format: xml }\n", "logging.format must be text or json"},
      {"identity keys", "identity: { keys: [employee_id, upn] }\n",
       "identity.keys: unknown identity key 'upn'"},
      {"roster columns", "identity: { roster: { path: r.csv, columns: { display_name: Name } } }\n",
       "identity.roster.columns must name the employee_id or the email column"},
      {"min_record_ratio is a share",
       "sources:\n  - { name: s, kind: csv, min_record_ratio: 2, directory: d, columns: {item: a, "
       "completed_at: b, email: c} }\n",
       "sources[0].min_record_ratio must be a number from 0 to 1"},
      {"binding to an unknown track", "group_bindings: { certifiedUserGroup: GENAI_NOPE }\n",
       "group_bindings.certifiedUserGroup names unknown track 'GENAI_NOPE'"},
  };
  for (const auto& c : cases) {
    SECTION(c.reason) {
      testing::TempDir dir;
      std::filesystem::copy_file(fixture("policy-example.yaml"), dir.path() + "/policy.yaml");
      std::string body = c.body;
      if (std::string(c.reason) != "store is required") body = "store: { path: s.db }\n" + body;
      const std::string file = dir.write("certgate.yaml", "policies: [policy.yaml]\n" + body);
      const auto errors = loadErrors(file);
      INFO(testing::allMessages(errors));
      const core::Error* e = findError(errors, c.expected);
      REQUIRE(e);
      CHECK_THAT(e->where, Catch::StartsWith(file + ":"));
    }
  }
}

TEST_CASE("A configuration without any track is refused", "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("certgate.yaml", "store: { path: s.db }\n");
  const auto errors = loadErrors(file);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "no certification tracks are defined");
}

TEST_CASE("Item mappings are checked against modules, quizzes and sources", "[unit][settings]") {
  ConfigDir c(
      "mappings: { items: [items.yaml] }\n"
      "sources:\n"
      "  - { name: lms, kind: csv, directory: d, columns: { item: a, completed_at: b, email: c } "
      "}\n");
  c.dir.write("items.yaml",
              "items:\n"
              "  - { lms_item: c1, module: SAFE-110-sensitive-data }\n"
              "  - { lms_item: c1, module: SAFE-120-reviewing-outputs }\n"
              "  - { lms_item: c2, module: SAFE-999 }\n"
              "  - { lms_item: c3, quiz: NO_TRACK }\n"
              "  - { lms_item: c4, module: SAFE-110-sensitive-data, quiz: GENAI_USER_PARTNER }\n"
              "  - { lms_item: c5, module: SAFE-110-sensitive-data, source: other }\n"
              "  - { lms_item: c1, module: SAFE-110-sensitive-data, source: lms }\n");
  const auto errors = loadErrors(c.config);
  INFO(testing::allMessages(errors));
  const std::string items = c.dir.path() + "/items.yaml";
  REQUIRE(errors.size() == 5);
  CHECK(errors[0].where == items + ":3:5");
  CHECK_THAT(
      errors[0].message,
      Catch::StartsWith("duplicate mapping of lms_item 'c1' (all sources); first mapped at " +
                        items + ":2:5"));
  CHECK(errors[1].where == items + ":4:29");
  CHECK_THAT(errors[1].message, Catch::StartsWith("items[2].module: unknown module 'SAFE-999'"));
  CHECK_THAT(errors[2].message, Catch::StartsWith("items[3].quiz names unknown track 'NO_TRACK'"));
  CHECK_THAT(errors[3].message,
             Catch::StartsWith("items[4] must set exactly one of 'module' or 'quiz'"));
  CHECK_THAT(
      errors[4].message,
      Catch::StartsWith("items[5].source names unknown source 'other'; configured sources: lms"));
}

TEST_CASE("An item mapped to the quiz of a track without a quiz is an error", "[unit][settings]") {
  ConfigDir c("tracks: [t.yaml]\nmappings: { items: [items.yaml] }\n");
  c.dir.write("t.yaml", "tracks:\n  - { id: NO_QUIZ, modules: [M1] }\n");
  c.dir.write("items.yaml", "items:\n  - { lms_item: q, quiz: NO_QUIZ }\n");
  const auto errors = loadErrors(c.config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "items[0].quiz: track NO_QUIZ has no quiz");
}

TEST_CASE("Item mappings must use catalogue modules once a catalogue is loaded",
          "[unit][settings]") {
  ConfigDir c("tracks: [t.yaml]\nmappings: { items: [items.yaml] }\n");
  c.dir.write("t.yaml",
              "modules: [M1, SAFE-110-sensitive-data, SAFE-120-reviewing-outputs,\n"
              "  SAFE-130-reporting-incidents, SAFE-210-automation-limits,\n"
              "  SAFE-220-redaction-in-prompts]\n"
              "tracks:\n  - { id: T, modules: [M1] }\n");
  c.dir.write("items.yaml", "items:\n  - { lms_item: x, module: M2 }\n");
  const auto errors = loadErrors(c.config);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(
      errors[0].message,
      Catch::StartsWith("items[0].module: unknown module 'M2'; known modules: M1, SAFE-110"));
}

TEST_CASE("Identity mappings normalise person keys and reject bad ones", "[unit][settings]") {
  ConfigDir c("mappings: { identity: identity.yaml }\n");
  c.dir.write("identity.yaml",
              "overrides:\n"
              "  - { source: nowhere, match: x, person: E1 }\n"
              "  - { match: y, person: \"not@\" }\n"
              "populations:\n"
              "  \"A@Example.org\": contractor\n"
              "  \"a@example.org \": agency\n");
  const auto errors = loadErrors(c.config);
  INFO(testing::allMessages(errors));
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0].message,
             Catch::StartsWith("overrides[0].source names unknown source 'nowhere'"));
  CHECK_THAT(errors[1].message, Catch::Contains("'not@' is not a valid email address"));
  CHECK_THAT(errors[2].message, Catch::Contains("is listed twice (as a@example.org)"));
}

TEST_CASE("A missing file named in certgate.yaml is reported where it is named",
          "[unit][settings]") {
  ConfigDir c("tracks: [missing.yaml]\n");
  const auto errors = loadErrors(c.config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == c.config + ":3:10");
  CHECK_THAT(errors[0].message,
             Catch::Contains("cannot read track file") && Catch::Contains("missing.yaml"));
}

TEST_CASE("A missing or malformed certgate.yaml is an error, not an exception",
          "[unit][settings]") {
  testing::TempDir dir;
  std::vector<core::Error> errors;
  auto missing = loadSettings(dir.path() + "/nope.yaml", &testing::fakeSpecs, &errors);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("cannot read config file"));

  const std::string bad = dir.write("certgate.yaml", "store: { path: x\nsources: [\n");
  auto malformed = loadSettings(bad, &testing::fakeSpecs, &errors);
  REQUIRE_FALSE(malformed.ok());
  CHECK_THAT(malformed.error().message, Catch::StartsWith("malformed YAML in config file"));
  CHECK_THAT(malformed.error().where, Catch::StartsWith(bad + ":"));
}

TEST_CASE("Without a connector registry options are kept unchecked with a warning",
          "[unit][settings]") {
  ConfigDir c("sources:\n  - { name: s, kind: anything, foo: bar, list: [a, b] }\n");
  std::vector<core::Error> errors;
  auto r = loadSettings(c.config, nullptr, &errors);
  REQUIRE(r.ok());
  REQUIRE(r->sources.size() == 1);
  CHECK(r->sources[0].options.find("foo")->scalar == "bar");
  CHECK(r->sources[0].options.find("list")->list == std::vector<std::string>{"a", "b"});
  CHECK(std::any_of(r->warnings.begin(), r->warnings.end(), [](const std::string& w) {
    return w.find("not checked") != std::string::npos;
  }));
}


TEST_CASE("Daemon keys: a source's own fetch interval and push secret, the stop timeout",
          "[unit][settings]") {
  ConfigDir c(
      "sources:\n"
      "  - name: lrs\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    interval: 2m\n    push_secret: { credential: lrs-push }\n"
      "  - name: csv2\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "schedule: { interval: 15m, jitter: 1m, stop_timeout: 45s }\n");
  const Settings s = loadOk(c.config);
  REQUIRE(s.sources.size() == 2);
  CHECK(s.sources[0].interval == core::Seconds{120});
  CHECK(s.sources[0].push_secret.credential == "lrs-push");
  CHECK(s.sources[1].interval == core::Seconds{0});
  CHECK(s.sources[1].push_secret.empty());
  CHECK(s.schedule.stop_timeout == core::Seconds{45});

  ConfigDir bad(
      "sources:\n"
      "  - name: lrs\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    interval: 0s\n    push_secret: whsec_inline\n"
      "schedule: { stop_timeout: 0s }\n");
  const auto errors = loadErrors(bad.config);
  INFO(testing::allMessages(errors));
  CHECK(testing::findError(errors, "sources[0].interval must be at least 1s"));
  CHECK(testing::findError(errors, "secrets are never written inline"));
  CHECK(testing::findError(errors, "schedule.stop_timeout must be at least 1s"));
}

TEST_CASE("Push keys: push_auth jwt with a JWKS file, and the keys of the other mode refused",
          "[unit][settings]") {
  ConfigDir c(
      "sources:\n"
      "  - name: canvas\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_auth: jwt\n    push_jwks: keys/canvas-jwks.json\n"
      "    push_jwt_issuer: https://live-events.example\n"
      "  - name: lrs\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_auth: standard-webhooks\n    push_secret: { credential: lrs-push }\n"
      "  - name: quiet\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n");
  const Settings s = loadOk(c.config);
  REQUIRE(s.sources.size() == 3);
  CHECK(s.sources[0].push_auth == SourceSettings::PushAuth::Jwt);
  CHECK(s.sources[0].push_jwks == c.dir.path() + "/keys/canvas-jwks.json");
  CHECK(s.sources[0].push_jwt_issuer == "https://live-events.example");
  CHECK(s.sources[0].acceptsPushes());
  CHECK(s.sources[1].push_auth == SourceSettings::PushAuth::StandardWebhooks);
  CHECK(s.sources[1].acceptsPushes());
  CHECK_FALSE(s.sources[2].acceptsPushes());

  ConfigDir bad(
      "sources:\n"
      "  - name: a\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_auth: jwt\n"
      "  - name: b\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_auth: jwt\n    push_jwks: k.json\n    push_secret: { file: s }\n"
      "  - name: c\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_jwks: k.json\n"
      "  - name: d\n    kind: csv\n    directory: exports\n    columns: { item: Course }\n"
      "    push_auth: hmac\n");
  const auto errors = loadErrors(bad.config);
  INFO(testing::allMessages(errors));
  CHECK(testing::findError(errors, "sources[0]: push_auth jwt needs push_jwks"));
  CHECK(testing::findError(errors, "sources[1]: push_secret is not used with push_auth jwt"));
  CHECK(testing::findError(errors,
                           "sources[2]: push_jwks and push_jwt_issuer are read only with push_auth jwt"));
  CHECK(testing::findError(errors, "sources[3].push_auth: unknown push authentication 'hmac'"));
}

}  // namespace
}  // namespace certgate::settings

namespace certgate::settings {
namespace {

const ports::ConfigSpec* directorySpecs(const std::string& kind) {
  static const ports::ConfigSpec spec{
      "scim",
      "test directory",
      {{"url", ports::ValueType::String, true, "", "the SCIM base URL"},
       {"token", ports::ValueType::Secret, false, "", "bearer token"}}};
  return kind == "scim" ? &spec : nullptr;
}

struct DirectoryConfig {
  testing::TempDir dir;
  std::string config;
  explicit DirectoryConfig(const std::string& body) {
    std::filesystem::copy_file(testing::fixture("policy-example.yaml"), dir.path() + "/policy.yaml");
    config = dir.write("certgate.yaml",
                       "store: { path: certgate.db }\npolicies: [policy.yaml]\n" + body);
  }
  core::Result<Settings> load(std::vector<core::Error>& errors) const {
    return loadSettings(config, &testing::fakeSpecs, &directorySpecs, &errors);
  }
};

TEST_CASE("Directories load with their match rules, aliases and connector keys",
          "[unit][settings]") {
  DirectoryConfig c(
      "directories:\n"
      "  - name: entra\n"
      "    kind: scim\n"
      "    aliases: [azuread]\n"
      "    url: https://scim.example.org/v2\n"
      "    token: { file: /etc/certgate/scim-token }\n"
      "    max_failure_ratio: 0.2\n"
      "    match:\n"
      "      - { person: employee_id, attribute: employee_id }\n"
      "      - { person: email, attribute: user_name }\n");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  INFO(testing::allMessages(errors));
  REQUIRE(s.ok());
  REQUIRE(s->directories.size() == 1);
  const DirectorySettings& d = s->directories[0];
  CHECK(d.name == "entra");
  CHECK(d.kind == "scim");
  CHECK(d.aliases == std::vector<std::string>{"azuread"});
  CHECK(d.max_failure_ratio == Approx(0.2));
  REQUIRE(d.match.size() == 2);
  CHECK(d.match[0].person == MatchRule::Person::EmployeeId);
  CHECK(d.match[1].attribute == "user_name");
  REQUIRE(d.options.find("url"));
  CHECK(d.options.find("url")->scalar == "https://scim.example.org/v2");
  REQUIRE(d.options.find("token"));
  // The policy document's groups (identityProvider.type azuread) resolve through the alias.
  CHECK(findDirectory(*s, "azuread") == &s->directories[0]);
  CHECK(findDirectory(*s, "") == &s->directories[0]);  // the only one is the default
  CHECK(findDirectory(*s, "okta") == nullptr);
}

TEST_CASE("Directory mistakes are reported with where and what to do", "[unit][settings]") {
  SECTION("an unknown connector key lists the valid ones") {
    DirectoryConfig c("directories:\n  - { name: d, kind: scim, url: x, tokn: y }\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    auto e = findError(errors, "unknown key 'tokn'");
    REQUIRE(e);
    CHECK(e->message.find("did you mean 'token'") != std::string::npos);
  }
  SECTION("a missing required key quotes its description") {
    DirectoryConfig c("directories:\n  - { name: d, kind: scim, aliases: [azuread] }\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "missing required key 'url' in directories[0] (kind scim): the SCIM base URL"));
  }
  SECTION("an unknown kind lists the known kinds") {
    DirectoryConfig c("directories:\n  - { name: d, kind: scm, url: x, aliases: [azuread] }\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    auto e = findError(errors, "unknown directory kind 'scm'");
    REQUIRE(e);
    CHECK(e->message.find("did you mean 'scim'") != std::string::npos);
  }
  SECTION("a grant naming a directory that is not configured") {
    DirectoryConfig c("directories:\n  - { name: okta, kind: scim, url: x }\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    auto e = findError(errors, "names directory 'azuread', which is not configured");
    REQUIRE(e);
    CHECK(e->hint.find("aliases") != std::string::npos);
    CHECK(e->where.find("policy.yaml:") != std::string::npos);
  }
  SECTION("a match rule on an unknown person identifier") {
    DirectoryConfig c(
        "directories:\n  - name: d\n    kind: scim\n    url: x\n    aliases: [azuread]\n"
        "    match: [{ person: phone, attribute: user_name }]\n");
    std::vector<core::Error> errors;
    REQUIRE_FALSE(c.load(errors).ok());
    INFO(testing::allMessages(errors));
    CHECK(findError(errors, "'phone' is not a person identifier"));
  }
}

TEST_CASE("Without directories, group grants are a warning, not an error", "[unit][settings]") {
  DirectoryConfig c("");
  std::vector<core::Error> errors;
  auto s = c.load(errors);
  REQUIRE(s.ok());
  bool warned = false;
  for (const auto& w : s->warnings)
    warned = warned || w.find("no directories are configured") != std::string::npos;
  CHECK(warned);
}

}  // namespace
}  // namespace certgate::settings

namespace certgate::settings {
namespace {

bool hasWarning(const Settings& s, const std::string& text) {
  return std::any_of(s.warnings.begin(), s.warnings.end(),
                     [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("exceptions.approvers lists who holds each approver role", "[unit][settings]") {
  ConfigDir c(
      "exceptions:\n  approvers:\n    TeamLead: [Tom@Example.org, una@example.org]\n"
      "    Security: sam@example.org\n");
  const Settings s = loadOk(c.config);
  CHECK(s.exceptions.approvers.at("TeamLead") ==
        std::vector<std::string>{"tom@example.org", "una@example.org"});
  CHECK(s.exceptions.approvers.at("Security") == std::vector<std::string>{"sam@example.org"});
  CHECK(s.exceptions.approvers_file.empty());
  CHECK_FALSE(hasWarning(s, "nobody holds approver role"));
}

TEST_CASE("exceptions.approvers may name a file of roles", "[unit][settings]") {
  ConfigDir c("exceptions:\n  approvers: approvers.yaml\n");
  c.dir.write("approvers.yaml", "TeamLead: [tom@example.org]\nSecurity: [sam@example.org]\n");
  const Settings s = loadOk(c.config);
  CHECK(s.exceptions.approvers_file == c.dir.path() + "/approvers.yaml");
  CHECK(s.exceptions.approvers.at("Security") == std::vector<std::string>{"sam@example.org"});
}

TEST_CASE("exceptions.approvers errors name the file, line and role", "[unit][settings]") {
  ConfigDir c("exceptions:\n  approvers: approvers.yaml\n");
  const std::string file = c.dir.write("approvers.yaml", "TeamLead: [tom@example.org, tom@example.org]\nSecurity: []\n");
  const auto errors = loadErrors(c.config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].where == file + ":1:29");
  CHECK(errors[0].message == "TeamLead lists 'tom@example.org' twice");
  CHECK(errors[1].where == file + ":2:11");
  CHECK(errors[1].message == "Security lists nobody");

  ConfigDir missing("exceptions:\n  approvers: nowhere.yaml\n");
  const auto e2 = loadErrors(missing.config);
  CHECK_THAT(e2[0].message, Catch::Contains("nowhere.yaml"));

  ConfigDir unknown("exceptions:\n  approver: {}\n");
  const auto e3 = loadErrors(unknown.config);
  CHECK_THAT(e3[0].message, Catch::Contains("approvers"));
}

TEST_CASE("a required approver role nobody holds and a role no track requires are warned about", "[unit][settings]") {
  ConfigDir c("exceptions:\n  approvers:\n    TeamLead: [tom@example.org]\n    Securty: [sam@example.org]\n");
  const Settings s = loadOk(c.config);
  CHECK(hasWarning(s, "nobody holds approver role 'Security'"));
  CHECK(hasWarning(s, "exceptions.approvers.Securty: no track requires this role"));
}

}  // namespace certgate::settings
