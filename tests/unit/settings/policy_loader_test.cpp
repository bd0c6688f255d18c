// Track files and PeopleOps policy documents, loaded through loadPolicyFiles().

#include "settings/policy_loader.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "settings/settings.hpp"
#include "settings_test_support.hpp"

namespace certgate::settings {
namespace {

using core::Track;
using testing::findError;
using testing::fixture;

const Track* trackNamed(const LoadedPolicy& p, const std::string& id) {
  for (const auto& t : p.policy.tracks)
    if (p.symbols.name(t.id) == id) return &t;
  return nullptr;
}

std::vector<std::string> names(const LoadedPolicy& p, const std::vector<core::Sym>& syms) {
  std::vector<std::string> out;
  for (auto s : syms) out.emplace_back(p.symbols.name(s));
  return out;
}

const TrackGrants* grantsOf(const LoadedPolicy& p, const std::string& track) {
  for (const auto& g : p.grants)
    if (g.track == track) return &g;
  return nullptr;
}

bool hasPathStartingWith(const std::vector<NotEnforced>& list, const std::string& prefix) {
  return std::any_of(list.begin(), list.end(),
                     [&](const NotEnforced& n) { return n.path.rfind(prefix, 0) == 0; });
}

// Loads a policy from files, failing the test with every error when it does not load.
std::shared_ptr<LoadedPolicy> loadOk(const std::vector<std::string>& tracks,
                                     const std::vector<std::string>& policies,
                                     const std::map<std::string, std::string>& bindings = {},
                                     const std::vector<std::string>& grants = {}) {
  std::vector<core::Error> errors;
  auto r = loadPolicyFiles(tracks, policies, bindings, grants, &errors);
  INFO(testing::allMessages(errors));
  REQUIRE(r.ok());
  return r.value();
}

std::vector<core::Error> loadErrors(const std::vector<std::string>& tracks,
                                    const std::vector<std::string>& policies,
                                    const std::map<std::string, std::string>& bindings = {}) {
  std::vector<core::Error> errors;
  auto r = loadPolicyFiles(tracks, policies, bindings, {}, &errors);
  REQUIRE_FALSE(r.ok());
  REQUIRE_FALSE(errors.empty());
  CHECK(r.error().message == errors.front().message);
  for (const auto& e : errors) CHECK(e.kind == core::ErrorKind::Invalid);
  return errors;
}

void checkExamplePolicy(const LoadedPolicy& p, const std::string& file) {
  REQUIRE(p.policy.tracks.size() == 2);
  REQUIRE(p.policy_ids == std::vector<std::string>{"partner-ai-cert-gate-v3"});

  const Track* user = trackNamed(p, "GENAI_USER_PARTNER");
  const Track* automation = trackNamed(p, "GENAI_AUTOMATION_PARTNER");
  REQUIRE(user);
  REQUIRE(automation);
  CHECK(names(p, user->modules) == std::vector<std::string>{"SAFE-110-sensitive-data",
                                                            "SAFE-120-reviewing-outputs",
                                                            "SAFE-130-reporting-incidents"});
  CHECK(names(p, automation->modules) ==
        std::vector<std::string>{"SAFE-210-automation-limits", "SAFE-220-redaction-in-prompts"});
  REQUIRE(user->quiz);
  CHECK(user->quiz->min_score_pct == 80);
  CHECK(user->quiz->attempts_allowed == 3);
  CHECK(p.symbols.name(user->quiz->item) == "GENAI_USER_PARTNER/quiz");
  REQUIRE(automation->quiz);
  CHECK(automation->quiz->min_score_pct == 90);
  CHECK(automation->quiz->attempts_allowed == 1);
  CHECK(user->recertify_days == 365);
  CHECK(automation->recertify_days == 120);
  CHECK(user->renew_window_days == 30);
  CHECK(user->grace_days == 0);

  const std::vector<std::string> populations{"contractor", "agency", "vendor_support"};
  CHECK(names(p, user->populations) == populations);
  CHECK(names(p, automation->populations) == populations);
  CHECK(p.scope_populations == populations);

  for (const Track* t : {user, automation}) {
    CHECK(t->exceptions.allowed);
    CHECK(t->exceptions.max_duration_days == 5);
    CHECK(t->exceptions.required_roles == std::vector<std::string>{"TeamLead", "Security"});
    CHECK(t->exceptions.justification_fields ==
          std::vector<std::string>{"partnerName", "changeTicket", "dataClass"});
  }

  const TrackGrants* user_grants = grantsOf(p, "GENAI_USER_PARTNER");
  const TrackGrants* automation_grants = grantsOf(p, "GENAI_AUTOMATION_PARTNER");
  REQUIRE(user_grants);
  REQUIRE(automation_grants);
  REQUIRE(user_grants->groups.size() == 1);
  CHECK(user_grants->groups[0].group == "AAD-SG-GENAI-PARTNER-USERS");
  CHECK(user_grants->groups[0].directory == "azuread");
  CHECK(user_grants->groups[0].mode == GroupGrant::Mode::Additive);
  CHECK(user_grants->groups[0].where.file == file);
  CHECK(user_grants->groups[0].where.line == 46);
  REQUIRE(automation_grants->groups.size() == 1);
  CHECK(automation_grants->groups[0].group == "AAD-SG-GENAI-PARTNER-AUTOMATION");

  REQUIRE(p.alerts.size() == 1);
  CHECK(p.alerts[0].name == "exception-surge");
  CHECK(p.alerts[0].threshold == "> 10 exceptions/day");
  CHECK(p.alerts[0].limit == 10);
  CHECK(p.alerts[0].per == "day");
  CHECK(p.alerts[0].unit == "exceptions");
  CHECK_FALSE(p.alerts[0].inclusive);
  CHECK(p.alerts[0].notify ==
        std::vector<std::string>{"enablement@example.org", "iam-platform@example.org"});

  CHECK(hasPathStartingWith(p.not_enforced, "scope.regionsAllowed"));
  CHECK(hasPathStartingWith(p.not_enforced, "scope.tools"));
  CHECK(hasPathStartingWith(p.not_enforced, "accessGating.conditions[managedDevice]"));
  CHECK(hasPathStartingWith(p.not_enforced, "sloTargets"));
  // Not enforced, but read: certgate report kpi compares its figures with them.
  CHECK(p.slo.p95_hours_cert_to_access == 1.0);
  CHECK(p.slo.completion_pct_within_48h == 85.0);
  CHECK(p.slo.p95_where.line == 70);
  CHECK(hasPathStartingWith(p.not_enforced, "loggingAndEvidence"));
  CHECK(hasPathStartingWith(p.not_enforced, "owners"));
  CHECK(hasPathStartingWith(p.not_enforced, "trainingRequirements.lmsProvider"));
  CHECK_FALSE(hasPathStartingWith(p.not_enforced, "accessGating.conditions[requireCertification]"));
  CHECK(std::any_of(p.enforced.begin(), p.enforced.end(), [](const EnforcedRule& e) {
    return e.path == "accessGating.conditions[requireCertification]";
  }));
  for (const auto& n : p.not_enforced) {
    INFO(n.path);
    CHECK(n.where.file == file);
    CHECK(n.where.line > 0);
    CHECK_FALSE(n.why.empty());
  }
  const auto region =
      std::find_if(p.not_enforced.begin(), p.not_enforced.end(),
                   [](const NotEnforced& n) { return n.path == "scope.regionsAllowed"; });
  REQUIRE(region != p.not_enforced.end());
  CHECK(region->where.line == 15);
  CHECK(p.tracks[0].origin == "policy document partner-ai-cert-gate-v3");
}

TEST_CASE("The PeopleOps policy example in the shared directory loads as-is", "[unit][settings]") {
  const std::string file = CERTGATE_SOURCE_DIR "/../shared/examples/policy-example.yaml";
  if (!std::filesystem::exists(file)) {
    WARN("shared example not present next to the repository; the fixture copy is tested below");
    return;
  }
  auto p = loadOk({}, {file});
  checkExamplePolicy(*p, file);
  // The fixture copy must stay the same document, so that the copy's test means something.
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  CHECK(slurp(file) == slurp(fixture("policy-example.yaml")));
}

TEST_CASE("The fixture copy of the policy example loads with every rule in place",
          "[unit][settings]") {
  const std::string file = fixture("policy-example.yaml");
  auto p = loadOk({}, {file});
  checkExamplePolicy(*p, file);
}

TEST_CASE("A track file fills tracks, catalogue, exceptions and grants", "[unit][settings]") {
  auto p = loadOk({fixture("good/tracks/genai.yaml")}, {});
  REQUIRE(p->policy.tracks.size() == 2);
  const Track* basics = trackNamed(*p, "DATA_BASICS");
  const Track* user = trackNamed(*p, "GENAI_USER");
  REQUIRE(basics);
  REQUIRE(user);
  CHECK_FALSE(basics->quiz);
  CHECK_FALSE(basics->recertify_days);
  REQUIRE(user->quiz);
  CHECK(user->quiz->min_score_pct == Approx(75.5));
  CHECK(user->quiz->attempts_allowed == 2);
  CHECK(p->symbols.name(user->quiz->item) == "GENAI_USER/quiz");
  CHECK(user->recertify_days == 365);
  CHECK(user->grace_days == 14);
  CHECK(user->renew_window_days == 45);
  CHECK(user->remind_before_days == std::vector<int>{30, 7, 1});
  CHECK(names(*p, user->populations) == std::vector<std::string>{"employee"});
  CHECK(names(*p, user->requires_tracks) == std::vector<std::string>{"DATA_BASICS"});
  CHECK(user->exceptions.allowed);
  CHECK(user->exceptions.max_duration_days == 3);
  CHECK(user->exceptions.required_roles == std::vector<std::string>{"TeamLead", "Security"});
  const TrackGrants* g = grantsOf(*p, "GENAI_USER");
  REQUIRE(g);
  REQUIRE(g->groups.size() == 1);
  CHECK(g->groups[0].directory == "entra");
  CHECK(g->groups[0].mode == GroupGrant::Mode::Exclusive);
  CHECK(p->tracks[1].title == "Generative AI for employees");
  CHECK(p->tracks[1].origin == "track file");
  CHECK(p->tracks[1].where.line == 13);
}

TEST_CASE("A malformed YAML file is reported with yaml-cpp's line and column", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/malformed.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/malformed.yaml") + ":5:4");
  CHECK_THAT(errors[0].message, Catch::Contains("malformed YAML"));
  CHECK_FALSE(errors[0].hint.empty());
}

TEST_CASE("An unknown key lists the valid keys and suggests the closest one", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/unknown-key.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/unknown-key.yaml") + ":6:5");
  CHECK_THAT(errors[0].message, Catch::StartsWith("unknown key 'recertifyDay' in tracks[1]; "
                                                  "valid keys: id, title, modules, quiz, "
                                                  "recertifyDays,"));
  CHECK_THAT(errors[0].message, Catch::Contains("did you mean 'recertifyDays'?"));
  CHECK(errors[0].hint == "rename 'recertifyDay' to 'recertifyDays'");
}

TEST_CASE("A track referencing a module missing from the catalogue is located at the module",
          "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/unknown-module.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/unknown-module.yaml") + ":8:9");
  CHECK(errors[0].message ==
        "track GENAI_USER references unknown module SAFE-999; known modules: "
        "SAFE-110-sensitive-data, SAFE-120-reviewing-outputs");
}

TEST_CASE("A negative minScorePct is rejected at its line", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/min-score-negative.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/min-score-negative.yaml") + ":5:20");
  CHECK_THAT(errors[0].message, Catch::StartsWith("tracks[0].quiz.minScorePct must be a number "
                                                  "from 0 to 100, got -5"));
}

TEST_CASE("A minScorePct above 100 is rejected at its line", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/min-score-130.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/min-score-130.yaml") + ":5:20");
  CHECK_THAT(errors[0].message, Catch::Contains("minScorePct") && Catch::Contains("got 130"));
}

TEST_CASE("A renewal window not shorter than the validity period is rejected", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/renew-window.yaml")}, {});
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].where == fixture("bad/renew-window.yaml") + ":5:22");
  CHECK(errors[0].message == "tracks[0].renewWindowDays (90) must be less than recertifyDays (90)");
  // The default window (30 days) applies when renewWindowDays is not written.
  CHECK(errors[1].where == fixture("bad/renew-window.yaml") + ":8:20");
  CHECK_THAT(errors[1].message, Catch::Contains("SHORT_TRACK") && Catch::Contains("default 30"));
}

TEST_CASE("Ambiguous and unmatched groupMapping keys are errors naming the key and candidates",
          "[unit][settings]") {
  const std::string file = fixture("bad/group-mapping.yaml");
  const auto errors = loadErrors({}, {file});
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].where == file + ":12:7");
  CHECK_THAT(errors[0].message, Catch::Contains("'certifiedUserAdminGroup'") &&
                                    Catch::Contains("ambiguous") &&
                                    Catch::Contains("GENAI_USER, GENAI_ADMIN"));
  CHECK_THAT(errors[0].hint, Catch::Contains("group_bindings: {certifiedUserAdminGroup:"));
  CHECK(errors[1].where == file + ":13:7");
  CHECK_THAT(errors[1].message, Catch::Contains("'certifiedReviewerGroup'") &&
                                    Catch::Contains("matches no track") &&
                                    Catch::Contains("reviewer"));
  CHECK_THAT(errors[1].hint, Catch::Contains("group_bindings"));
}

TEST_CASE("group_bindings settle groupMapping keys the words cannot", "[unit][settings]") {
  auto p = loadOk(
      {}, {fixture("bad/group-mapping.yaml")},
      {{"certifiedUserAdminGroup", "GENAI_ADMIN"}, {"certifiedReviewerGroup", "GENAI_USER"}});
  const TrackGrants* admin = grantsOf(*p, "GENAI_ADMIN");
  REQUIRE(admin);
  REQUIRE(admin->groups.size() == 1);
  CHECK(admin->groups[0].group == "OKTA-USER-ADMINS");
  CHECK(admin->groups[0].directory == "okta");
}

TEST_CASE("A group binding to an unknown track or an unknown key is an error", "[unit][settings]") {
  const auto errors =
      loadErrors({}, {fixture("policy-example.yaml")},
                 {{"certifiedUserGroup", "NO_SUCH_TRACK"}, {"typoGroup", "GENAI_USER_PARTNER"}});
  REQUIRE(
      findError(errors, "group_bindings.certifiedUserGroup names unknown track 'NO_SUCH_TRACK'"));
  REQUIRE(findError(errors, "group_bindings key 'typoGroup' matches no groupMapping key"));
}

TEST_CASE("Duplicate track ids across files point at both definitions", "[unit][settings]") {
  const auto errors =
      loadErrors({fixture("bad/duplicate-a.yaml"), fixture("bad/duplicate-b.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/duplicate-b.yaml") + ":5:5");
  CHECK(errors[0].message == "duplicate track id 'GENAI_USER'; first defined at " +
                                 fixture("bad/duplicate-a.yaml") + ":2:5");
}

TEST_CASE("A file that is not UTF-8 is rejected with the line of the bad byte",
          "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/latin1.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == fixture("bad/latin1.yaml") + ":3:25");
  CHECK_THAT(errors[0].message, Catch::Contains("not valid UTF-8") && Catch::Contains("0xFC") &&
                                    Catch::Contains("line 3"));
  CHECK_THAT(errors[0].hint, Catch::Contains("UTF-8"));
}

TEST_CASE("A missing track file is reported with its path", "[unit][settings]") {
  const auto errors = loadErrors({fixture("bad/does-not-exist.yaml")}, {});
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].message,
             Catch::Contains("does-not-exist.yaml") && Catch::Contains("no such file"));
}

TEST_CASE("Track rules are validated one by one", "[unit][settings]") {
  struct Case {
    const char* reason;
    const char* track;  // YAML of one track entry, indented as a list item
    const char* expected;
    int line;
  };
  const Case cases[] = {
      {"a track must require something", "  - id: EMPTY\n    title: nothing to do\n",
       "track EMPTY has no requirements", 2},
      {"attemptsAllowed must be at least 1",
       "  - id: T\n    modules: [M]\n    quiz: { minScorePct: 50, attemptsAllowed: 0 }\n",
       "tracks[0].quiz.attemptsAllowed must be a whole number from 1", 4},
      {"a quiz needs a pass mark",
       "  - id: T\n    modules: [M]\n    quiz: { attemptsAllowed: 2 }\n",
       "missing required key 'minScorePct' in tracks[0].quiz", 4},
      {"recertifyDays must be positive", "  - id: T\n    modules: [M]\n    recertifyDays: 0\n",
       "tracks[0].recertifyDays must be a whole number from 1", 4},
      {"graceDays must not be negative",
       "  - id: T\n    modules: [M]\n    recertifyDays: 90\n    graceDays: -2\n",
       "tracks[0].graceDays must be a whole number from 0", 5},
      {"allowed exceptions need approvers",
       "  - id: T\n    modules: [M]\n    exceptions: { allowed: true, maxDurationDays: 2 }\n",
       "tracks[0].exceptions.requiredApprovers must name at least one role", 4},
      {"allowed exceptions need a maximum duration",
       "  - id: T\n    modules: [M]\n    exceptions: { allowed: true, requiredApprovers: [A] }\n",
       "tracks[0].exceptions.maxDurationDays is required", 4},
      {"a group mode is additive or exclusive",
       "  - id: T\n    modules: [M]\n    grants: { groups: [ { group: G, mode: sometimes } ] }\n",
       "tracks[0].grants.groups[0].mode must be additive or exclusive, got 'sometimes'", 4},
      {"a prerequisite must exist", "  - id: T\n    modules: [M]\n    requires: [NOPE]\n",
       "track T requires unknown track 'NOPE'", 4},
      {"a track cannot require itself", "  - id: T\n    modules: [M]\n    requires: [T]\n",
       "prerequisite cycle: T -> T", 4},
      {"a module is listed once", "  - id: T\n    modules: [M, M]\n", "module 'M' is listed twice",
       3},
      {"booleans are true or false",
       "  - id: T\n    modules: [M]\n    exceptions: { allowed: maybe }\n",
       "tracks[0].exceptions.allowed must be true or false, got 'maybe'", 4},
  };
  for (const auto& c : cases) {
    SECTION(c.reason) {
      testing::TempDir dir;
      const std::string file = dir.write("t.yaml", std::string("tracks:\n") + c.track);
      const auto errors = loadErrors({file}, {});
      INFO(testing::allMessages(errors));
      const core::Error* e = findError(errors, c.expected);
      REQUIRE(e);
      CHECK_THAT(e->where, Catch::StartsWith(file + ":" + std::to_string(c.line) + ":"));
    }
  }
}

TEST_CASE("A prerequisite cycle across tracks is reported once", "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("t.yaml",
                                     "tracks:\n"
                                     "  - { id: A, modules: [M1], requires: [B] }\n"
                                     "  - { id: B, modules: [M2], requires: [A] }\n");
  const auto errors = loadErrors({file}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "prerequisite cycle: A -> B -> A");
}

TEST_CASE("A track entry of a policy document rejects keys certgate would otherwise ignore",
          "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("policy.yaml",
                                     "policyId: p\n"
                                     "trainingRequirements:\n"
                                     "  certificationTracks:\n"
                                     "    - id: T\n"
                                     "      modules: [M]\n"
                                     "      maxAttemptsPerDay: 2\n");
  const auto errors = loadErrors({}, {file});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == file + ":6:7");
  CHECK_THAT(errors[0].message,
             Catch::StartsWith("unknown key 'maxAttemptsPerDay' in "
                               "trainingRequirements.certificationTracks[0]; valid keys: id, "
                               "title, modules, quiz, recertifyDays, graceDays, renewWindowDays, "
                               "remindBeforeDays, requires"));
}

TEST_CASE("Unknown policy sections are reported as not enforced, never dropped",
          "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("policy.yaml",
                                     "policyId: p\n"
                                     "trainingRequirements:\n"
                                     "  certificationTracks:\n"
                                     "    - { id: T, modules: [M] }\n"
                                     "  deadlineDays: 14\n"
                                     "dlp:\n"
                                     "  blockPii: true\n"
                                     "accessGating:\n"
                                     "  approvals:\n"
                                     "    escalation: manager\n");
  auto p = loadOk({}, {file});
  CHECK(hasPathStartingWith(p->not_enforced, "dlp"));
  CHECK(hasPathStartingWith(p->not_enforced, "trainingRequirements.deadlineDays"));
  CHECK(hasPathStartingWith(p->not_enforced, "accessGating.approvals.escalation"));
  CHECK_FALSE(p->policy.tracks[0].exceptions.allowed);
}

TEST_CASE("An unparsable alert threshold is an error at its line", "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("policy.yaml",
                                     "policyId: p\n"
                                     "trainingRequirements:\n"
                                     "  certificationTracks:\n"
                                     "    - { id: T, modules: [M] }\n"
                                     "monitoring:\n"
                                     "  alerts:\n"
                                     "    - name: surge\n"
                                     "      threshold: \"lots of exceptions\"\n");
  const auto errors = loadErrors({}, {file});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == file + ":8:18");
  CHECK_THAT(errors[0].message, Catch::Contains("monitoring.alerts[surge].threshold"));
}

TEST_CASE("Alert thresholds are parsed into number, unit and period", "[unit][settings]") {
  struct Case {
    const char* text;
    bool ok;
    double limit;
    const char* per;
    const char* unit;
    bool inclusive;
  };
  const Case cases[] = {
      {"> 10 exceptions/day", true, 10, "day", "exceptions", false},
      {">= 3 revocations per hour", true, 3, "hour", "revocations", true},
      {">2.5/week", true, 2.5, "week", "", false},
      {"> 5 exceptions / Days", true, 5, "day", "exceptions", false},
      {"10 exceptions/day", false, 0, "", "", false},
      {"> ten exceptions/day", false, 0, "", "", false},
      {"> 10 exceptions", false, 0, "", "", false},
      {"> 10 exceptions/fortnight", false, 0, "", "", false},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    AlertThreshold a;
    REQUIRE(detail::parseThreshold(c.text, a) == c.ok);
    if (!c.ok) continue;
    CHECK(a.limit == Approx(c.limit));
    CHECK(a.per == c.per);
    CHECK(a.unit == c.unit);
    CHECK(a.inclusive == c.inclusive);
  }
}

TEST_CASE("Only a condition that checks certification alone counts as enforced",
          "[unit][settings]") {
  CHECK(detail::ruleOnlyChecksCertification(
      "user.certifications.contains(trackId) && user.certifications[trackId].status == 'passed'"));
  CHECK(detail::ruleOnlyChecksCertification("user.certifications[trackId].valid == true"));
  CHECK_FALSE(detail::ruleOnlyChecksCertification("device.managed == true"));
  CHECK_FALSE(detail::ruleOnlyChecksCertification(
      "user.certifications.contains(trackId) && device.managed == true"));
  CHECK_FALSE(detail::ruleOnlyChecksCertification("user.department == 'sales'"));
  CHECK_FALSE(detail::ruleOnlyChecksCertification("true"));
}

TEST_CASE("Group-mapping keys and track ids split into lower-case words", "[unit][settings]") {
  CHECK(detail::splitWords("certifiedUserGroup") ==
        std::vector<std::string>{"certified", "user", "group"});
  CHECK(detail::splitWords("GENAI_USER_PARTNER") ==
        std::vector<std::string>{"genai", "user", "partner"});
  CHECK(detail::splitWords("AADUser-group") == std::vector<std::string>{"aad", "user", "group"});
}

TEST_CASE("Grant mapping files merge with track grants and reject unknown tracks",
          "[unit][settings]") {
  testing::TempDir dir;
  const std::string grants =
      dir.write("grants.yaml",
                "grants:\n"
                "  - track: GENAI_USER_PARTNER\n"
                "    groups:\n"
                "      - { directory: okta, group: partner-ai }\n"
                "      - { directory: azuread, group: AAD-SG-GENAI-PARTNER-USERS }\n"
                "  - track: NOT_A_TRACK\n"
                "    groups: [ { group: X } ]\n");
  std::vector<core::Error> errors;
  auto r = loadPolicyFiles({}, {fixture("policy-example.yaml")}, {}, {grants}, &errors);
  REQUIRE_FALSE(r.ok());
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == grants + ":6:12");
  CHECK_THAT(errors[0].message, Catch::Contains("unknown track 'NOT_A_TRACK'"));

  const std::string good =
      dir.write("grants-ok.yaml",
                "grants:\n"
                "  - track: GENAI_USER_PARTNER\n"
                "    groups:\n"
                "      - { directory: okta, group: partner-ai }\n"
                "      - { directory: azuread, group: AAD-SG-GENAI-PARTNER-USERS }\n");
  auto p = loadOk({}, {fixture("policy-example.yaml")}, {}, {good});
  const TrackGrants* g = grantsOf(*p, "GENAI_USER_PARTNER");
  REQUIRE(g);
  REQUIRE(g->groups.size() == 2);  // the duplicate azuread group is merged
  CHECK(g->groups[0].group == "partner-ai");
  CHECK(g->groups[1].group == "AAD-SG-GENAI-PARTNER-USERS");
}

TEST_CASE("One group declared additive and exclusive is an error", "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write(
      "t.yaml",
      "tracks:\n"
      "  - { id: A, modules: [M1], grants: { groups: [ { group: G, mode: exclusive } ] } }\n"
      "  - { id: B, modules: [M2], grants: { groups: [ { group: G } ] } }\n");
  const auto errors = loadErrors({file}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == file + ":3:49");
  CHECK_THAT(errors[0].message, Catch::Contains("declared additive here but exclusive"));
}

TEST_CASE("Duplicate keys in a mapping are errors, not silently overwritten", "[unit][settings]") {
  testing::TempDir dir;
  const std::string file = dir.write("t.yaml",
                                     "tracks:\n"
                                     "  - id: T\n"
                                     "    modules: [M]\n"
                                     "    recertifyDays: 365\n"
                                     "    recertifyDays: 30\n");
  const auto errors = loadErrors({file}, {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == file + ":5:5");
  CHECK_THAT(errors[0].message, Catch::StartsWith("duplicate key 'recertifyDays' in tracks[0]"));
}

TEST_CASE("Hostile or odd YAML never throws out of the loader", "[unit][settings]") {
  const char* inputs[] = {
      "tracks: [\n",
      "tracks: {a: [}\n",
      "\t- tab\n",
      "tracks: 5\n",
      "tracks:\n  - [nested, list]\n",
      "? [complex, key]\n: value\n",
      "tracks: &a [*a]\n",
      "--- a\n--- b\n",
      "",
      "tracks:\n  - id: T\n    modules: {a: b}\n    quiz: [1]\n    remindBeforeDays: {x: 1}\n",
  };
  for (const char* text : inputs) {
    INFO(text);
    testing::TempDir dir;
    const std::string file = dir.write("t.yaml", text);
    std::vector<core::Error> errors;
    REQUIRE_NOTHROW([&] {
      auto r = loadPolicyFiles({file}, {}, {}, {}, &errors);
      CHECK_FALSE(r.ok());
    }());
    CHECK_FALSE(errors.empty());
  }
}

}  // namespace
}  // namespace certgate::settings

namespace certgate::settings {
namespace {

TEST_CASE("A core policy-check failure is located at the track it names", "[unit][settings]") {
  LoadedPolicy loaded;
  core::Track ok_track;
  ok_track.id = loaded.symbols.intern("GENAI_USER");
  ok_track.modules.push_back(loaded.symbols.intern("M1"));
  core::Track bad_track = ok_track;
  bad_track.id = loaded.symbols.intern("GENAI_USER_PARTNER");
  bad_track.grace_days = -1;  // settings never produce this; core must still refuse it
  loaded.policy.tracks = {ok_track, bad_track};
  loaded.tracks = {TrackInfo{"GENAI_USER", "", "track file", Location{"a.yaml", 2, 5}},
                   TrackInfo{"GENAI_USER_PARTNER", "", "track file", Location{"a.yaml", 9, 5}}};
  detail::Diagnostics diag;
  detail::validateBuiltPolicy(loaded, diag);
  REQUIRE(diag.count() == 1);
  const auto errors = diag.errors();
  CHECK(errors[0].where == "a.yaml:9:5");
  CHECK_THAT(errors[0].message,
             Catch::StartsWith("policy check failed: ") && Catch::Contains("graceDays"));

  loaded.policy.tracks[1].grace_days = 0;
  detail::Diagnostics clean;
  detail::validateBuiltPolicy(loaded, clean);
  CHECK(clean.count() == 0);
}

}  // namespace
}  // namespace certgate::settings
