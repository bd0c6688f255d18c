// The rule table: one case per row of docs/rules.md ("R<n>" in each reason), boundaries included.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <random>

#include "core/evaluate.hpp"

using namespace certgate::core;

namespace {

const Instant T0 = *parseIso("2026-01-01T00:00:00Z");
Instant at(std::int64_t d, std::int64_t s = 0) { return T0 + days(d) + Seconds{s}; }

struct World {
  SymbolTable sym;
  Policy policy;
  Sym m1, m2, quiz, track, prereq, contractor, employee;

  World() {
    m1 = sym.intern("M1");
    m2 = sym.intern("M2");
    quiz = sym.intern("T/quiz");
    track = sym.intern("T");
    prereq = sym.intern("P");
    contractor = sym.intern("contractor");
    employee = sym.intern("employee");
    Track t;
    t.id = track;
    t.modules = {m1, m2};
    t.quiz = QuizRule{quiz, 80.0, 3};
    t.recertify_days = 365;
    t.grace_days = 14;
    t.renew_window_days = 30;
    t.remind_before_days = {30, 7};
    t.exceptions.allowed = true;
    t.exceptions.max_duration_days = 5;
    t.exceptions.required_roles = {"TeamLead", "Security"};
    t.exceptions.justification_fields = {"partnerName", "changeTicket"};
    policy.tracks.push_back(t);
  }
  Track& t() { return policy.tracks.front(); }
};

std::int64_t g_ref = 0;

Fact completion(Sym item, Instant when) {
  Fact f;
  f.ref = ++g_ref;
  f.item = item;
  f.at = when;
  return f;
}
Fact attempt(Sym item, Instant when, double score, double max = 100) {
  Fact f = completion(item, when);
  f.kind = FactKind::QuizAttempt;
  f.score = score;
  f.max_score = max;
  return f;
}
Fact reset(Sym item, Instant when) {
  Fact f = completion(item, when);
  f.kind = FactKind::AttemptReset;
  return f;
}

// Certified at day 10: modules on days 1 and 5, quiz passed (90%) on day 10.
std::vector<Fact> certifiedAtDay10(const World& w) {
  return {completion(w.m1, at(1)), completion(w.m2, at(5)), attempt(w.quiz, at(10), 90)};
}

Exception approvedException(const World& w, Instant start, Instant end) {
  Exception x;
  x.id = 7;
  x.track = w.track;
  x.requester = "rita";
  x.starts_at = start;
  x.ends_at = end;
  x.justification = {{"partnerName", "Acme"}, {"changeTicket", "CHG-1"}};
  x.approvals = {{"tom", "TeamLead", start - Seconds{60}}, {"sam", "Security", start - Seconds{30}}};
  return x;
}

struct Case {
  std::string reason;
  std::function<void(World&)> tweak;  // change the policy
  std::function<std::vector<Fact>(World&)> facts;
  std::function<std::vector<Exception>(World&)> exceptions;
  Instant now;
  State state;
  bool entitled;
  std::optional<Instant> certified_at = std::nullopt;
  std::optional<Instant> expires_at = std::nullopt;
  std::vector<Finding> findings = {};  // must all be present
  std::function<Sym(World&)> population = nullptr;
};

Verdict run(World& w, const Case& c) {
  if (c.tweak) c.tweak(w);
  std::vector<Fact> facts = c.facts ? c.facts(w) : std::vector<Fact>{};
  std::vector<Exception> excs = c.exceptions ? c.exceptions(w) : std::vector<Exception>{};
  std::vector<Person> people(1);
  people[0].population = c.population ? c.population(w) : kNoSym;
  EvaluationInput in{facts, people, &w.policy, excs, c.now};
  auto verdicts = evaluate(in);
  REQUIRE(verdicts.size() == w.policy.tracks.size());
  for (auto& v : verdicts)
    if (v.track == w.track) return v;
  FAIL("no verdict for track T");
  return {};
}

bool hasFinding(const Verdict& v, Finding f) {
  return std::any_of(v.evidence.begin(), v.evidence.end(),
                     [&](const Evidence& e) { return e.finding == f; });
}

}  // namespace

TEST_CASE("the rule table holds for every row of docs/rules.md", "[unit][core][rules]") {
  const std::vector<Case> cases = {
      // --- populations
      {"R1 a person outside the track's populations is out of scope",
       [](World& w) { w.t().populations = {w.contractor}; }, certifiedAtDay10, nullptr, at(20),
       State::OutOfScope, false, std::nullopt, std::nullopt, {Finding::PopulationNotInScope},
       [](World& w) { return w.employee; }},
      {"R1 a person whose population is unknown is out of scope of a restricted track",
       [](World& w) { w.t().populations = {w.contractor}; }, certifiedAtDay10, nullptr, at(20),
       State::OutOfScope, false, std::nullopt, std::nullopt, {Finding::PopulationUnknown}},
      {"R1 a person inside the track's populations is evaluated",
       [](World& w) { w.t().populations = {w.contractor}; }, certifiedAtDay10, nullptr, at(20),
       State::Certified, true, at(10), at(375), {Finding::InScope},
       [](World& w) { return w.contractor; }},
      // --- progress
      {"R2 nobody starts certified", nullptr, nullptr, nullptr, at(20), State::NotStarted, false},
      {"R2 one completed module is progress, not certification", nullptr,
       [](World& w) { return std::vector<Fact>{completion(w.m1, at(1))}; }, nullptr, at(20),
       State::InProgress, false, std::nullopt, std::nullopt, {Finding::ModuleMissing, Finding::QuizNotTaken}},
      {"R3 certified at is the moment the last requirement was met", nullptr, certifiedAtDay10,
       nullptr, at(20), State::Certified, true, at(10), at(375), {Finding::ModuleCompleted, Finding::QuizPassed}},
      {"R3 the quiz may come before the modules: the last module completes the cycle", nullptr,
       [](World& w) {
         return std::vector<Fact>{attempt(w.quiz, at(1), 95), completion(w.m1, at(2)),
                                  completion(w.m2, at(8))};
       },
       nullptr, at(20), State::Certified, true, at(8), at(373)},
      {"R4 a module the LMS reports as failed is not completed", nullptr,
       [](World& w) {
         Fact f = completion(w.m2, at(5));
         f.status = FactStatus::Failed;
         return std::vector<Fact>{completion(w.m1, at(1)), f, attempt(w.quiz, at(10), 90)};
       },
       nullptr, at(20), State::InProgress, false, std::nullopt, std::nullopt, {Finding::ModuleMissing}},
      // --- scores
      {"R5 a score exactly at the minimum passes (inclusive)", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 80, 100)};
       },
       nullptr, at(20), State::Certified, true, at(3)},
      {"R5 a score just below the minimum fails", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 79.99, 100)};
       },
       nullptr, at(20), State::InProgress, false, std::nullopt, std::nullopt, {Finding::QuizFailedAttempt}},
      {"R5 scores on another scale are normalised: 16 of 20 is 80%", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 16, 20)};
       },
       nullptr, at(20), State::Certified, true, at(3)},
      {"R5 without a score the LMS's pass flag decides", nullptr,
       [](World& w) {
         Fact q = completion(w.quiz, at(3));
         q.kind = FactKind::QuizAttempt;
         q.lms_pass = 1;
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)), q};
       },
       nullptr, at(20), State::Certified, true, at(3)},
      {"R5 a score below the minimum fails even when the LMS flags a pass", nullptr,
       [](World& w) {
         Fact q = attempt(w.quiz, at(3), 70);
         q.lms_pass = 1;
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)), q};
       },
       nullptr, at(20), State::InProgress, false},
      // --- attempts
      {"R6 a pass on the last allowed attempt counts", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 50), attempt(w.quiz, at(4), 60),
                                  attempt(w.quiz, at(5), 85)};
       },
       nullptr, at(20), State::Certified, true, at(5)},
      {"R6 the allowed attempts all failed: locked out", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 50), attempt(w.quiz, at(4), 60),
                                  attempt(w.quiz, at(5), 70)};
       },
       nullptr, at(20), State::LockedOut, false, std::nullopt, std::nullopt, {Finding::AttemptsExhausted}},
      {"R6 a pass after the attempts ran out does not count and is reported", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 50), attempt(w.quiz, at(4), 60),
                                  attempt(w.quiz, at(5), 70), attempt(w.quiz, at(6), 100)};
       },
       nullptr, at(20), State::LockedOut, false, std::nullopt, std::nullopt,
       {Finding::AttemptsExhausted, Finding::QuizPassNotCounted}},
      {"R6 an audited attempt reset gives a fresh allowance", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 50), attempt(w.quiz, at(4), 60),
                                  attempt(w.quiz, at(5), 70), reset(w.quiz, at(6)),
                                  attempt(w.quiz, at(7), 90)};
       },
       nullptr, at(20), State::Certified, true, at(7), at(372), {Finding::AttemptsReset}},
      {"R6 attempts delivered out of order are counted in the order they happened", nullptr,
       [](World& w) {
         // Delivered newest first; the pass (day 5) is the third attempt in time.
         return std::vector<Fact>{attempt(w.quiz, at(5), 85), attempt(w.quiz, at(4), 10),
                                  completion(w.m2, at(2)), attempt(w.quiz, at(3), 20),
                                  completion(w.m1, at(1))};
       },
       nullptr, at(20), State::Certified, true, at(5)},
      {"R6 attempts at the same instant are ordered by the LMS attempt number", nullptr,
       [](World& w) {
         std::vector<Fact> f{completion(w.m1, at(1)), completion(w.m2, at(2))};
         for (int i : {4, 2, 3, 1}) {
           Fact a = attempt(w.quiz, at(3), i == 4 ? 90 : 10);
           a.attempt = static_cast<std::uint16_t>(i);
           f.push_back(a);
         }
         return f;
       },
       nullptr, at(20), State::LockedOut, false, std::nullopt, std::nullopt, {Finding::QuizPassNotCounted}},
      {"R6 without attemptsAllowed attempts are unlimited",
       [](World& w) { w.t().quiz->attempts_allowed = std::nullopt; },
       [](World& w) {
         std::vector<Fact> f{completion(w.m1, at(1)), completion(w.m2, at(2))};
         for (int i = 0; i < 10; ++i) f.push_back(attempt(w.quiz, at(3, i), 10));
         f.push_back(attempt(w.quiz, at(4), 80));
         return f;
       },
       nullptr, at(20), State::Certified, true, at(4)},
      // --- expiry, reminders, grace
      {"R7 expires at = certified at + recertifyDays; certified before the reminder window",
       nullptr, certifiedAtDay10, nullptr, at(334, -1), State::Certified, true, at(10), at(375)},
      {"R8 inside the largest reminder window the state is expiring", nullptr, certifiedAtDay10,
       nullptr, at(345), State::Expiring, true, at(10), at(375)},
      {"R9 at the expiry instant grace begins and access stays", nullptr, certifiedAtDay10,
       nullptr, at(375), State::Grace, true},
      {"R9 the last second of grace still grants access", nullptr, certifiedAtDay10, nullptr,
       at(389, -1), State::Grace, true},
      {"R9 when grace ends the certification is expired", nullptr, certifiedAtDay10, nullptr,
       at(389), State::Expired, false, std::nullopt, std::nullopt, {Finding::Expired}},
      {"R9 without grace, the expiry instant ends access", [](World& w) { w.t().grace_days = 0; },
       certifiedAtDay10, nullptr, at(375), State::Expired, false},
      {"R7 without recertifyDays a certification never expires",
       [](World& w) { w.t().recertify_days = std::nullopt; }, certifiedAtDay10, nullptr,
       at(5000), State::Certified, true, at(10), std::nullopt},
      // --- renewal
      {"R10 a renewal one second before the window opens does not count", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         const Instant before = at(345, -1);  // window opens at day 375 - 30 = 345
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, before));
         f.push_back(attempt(w.quiz, before, 100));
         return f;
       },
       nullptr, at(376), State::Grace, true, at(10), at(375), {Finding::RenewalNotCounted}},
      {"R10 a renewal at the instant the window opens counts and extends from the old expiry",
       nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, at(345)));
         f.push_back(attempt(w.quiz, at(345), 100));
         return f;
       },
       nullptr, at(376), State::Certified, true, at(345), at(375 + 365), {Finding::RenewedEarly}},
      {"R10 a renewal one second after the window opens counts too", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, at(345, 1)));
         f.push_back(attempt(w.quiz, at(345, 1), 100));
         return f;
       },
       nullptr, at(376), State::Certified, true, at(345, 1), at(375 + 365), {Finding::RenewedEarly}},
      {"R10 a late renewal (in grace) counts from the renewal date", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, at(380)));
         f.push_back(attempt(w.quiz, at(381), 100));
         return f;
       },
       nullptr, at(382), State::Certified, true, at(381), at(381 + 365), {Finding::RenewedLate}},
      {"R10 a renewal after grace ended certifies again from the renewal date", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, at(500)));
         f.push_back(attempt(w.quiz, at(501), 100));
         return f;
       },
       nullptr, at(502), State::Certified, true, at(501), at(501 + 365)},
      {"R10 renewal attempts used up inside the window keep access until expiry", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (int d : {350, 351, 352}) f.push_back(attempt(w.quiz, at(d), 10));
         return f;
       },
       nullptr, at(360), State::Expiring, true, at(10), at(375), {Finding::AttemptsExhausted}},
      {"R10 after the old certification lapses a fresh set of attempts opens", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         for (int d : {350, 351, 352}) f.push_back(attempt(w.quiz, at(d), 10));
         for (Sym m : {w.m1, w.m2}) f.push_back(completion(m, at(353)));
         f.push_back(attempt(w.quiz, at(376), 90));
         return f;
       },
       nullptr, at(377), State::Certified, true, at(376), at(376 + 365), {Finding::RenewedLate}},
      // --- late data
      {"R11 a late-arriving completion dated in the past certifies from its own date", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 90)};
       },
       nullptr, at(300), State::Certified, true, at(3), at(368)},
      {"R11 a late-arriving completion dated long ago is already expired", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(-500)), completion(w.m2, at(-499)),
                                  attempt(w.quiz, at(-498), 90)};
       },
       nullptr, at(20), State::Expired, false, at(-498), at(-498 + 365)},
      // --- quarantine
      {"R12 an impossible score (130 of 100) is set aside and not used", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), 130, 100)};
       },
       nullptr, at(20), State::InProgress, false, std::nullopt, std::nullopt, {Finding::FactImpossible}},
      {"R12 a negative score is set aside", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(3), -5, 100)};
       },
       nullptr, at(20), State::InProgress, false, std::nullopt, std::nullopt, {Finding::FactImpossible}},
      {"R12 a fact dated in the future beyond the clock skew is set aside", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(20, 301), 90)};
       },
       nullptr, at(20), State::InProgress, false, std::nullopt, std::nullopt, {Finding::FactImpossible}},
      {"R12 a fact dated within the clock skew is used", nullptr,
       [](World& w) {
         return std::vector<Fact>{completion(w.m1, at(1)), completion(w.m2, at(2)),
                                  attempt(w.quiz, at(20, 300), 90)};
       },
       nullptr, at(20), State::Certified, true, at(20, 300)},
      // --- prerequisites
      {"R13 an entitled prerequisite lets the track grant access",
       [](World& w) {
         Track p;
         p.id = w.prereq;
         p.modules = {w.sym.intern("P1")};
         w.policy.tracks.push_back(p);
         w.t().requires_tracks = {w.prereq};
       },
       [](World& w) {
         auto f = certifiedAtDay10(w);
         f.push_back(completion(*w.sym.find("P1"), at(2)));
         return f;
       },
       nullptr, at(20), State::Certified, true, at(10), std::nullopt, {Finding::PrerequisiteMet}},
      {"R13 a missing prerequisite withholds access though the track is certified",
       [](World& w) {
         Track p;
         p.id = w.prereq;
         p.modules = {w.sym.intern("P1")};
         w.policy.tracks.push_back(p);
         w.t().requires_tracks = {w.prereq};
       },
       certifiedAtDay10, nullptr, at(20), State::Certified, false, at(10), std::nullopt,
       {Finding::PrerequisiteNotMet}},
      // --- LMS expiry
      {"R14 an LMS-computed expiry is taken when the source trusts it", nullptr,
       [](World& w) {
         auto f = certifiedAtDay10(w);
         f.back().lms_expiry = at(100);
         return f;
       },
       nullptr, at(20), State::Certified, true, at(10), at(100), {Finding::LmsExpiryTaken}},
      // --- exceptions
      {"R15 an approved exception grants access at its start instant", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; }, at(20),
       State::Exception, true, std::nullopt, std::nullopt, {Finding::ExceptionActive}},
      {"R15 one second before its start an exception grants nothing", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; },
       at(20, -1), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionNotStarted}},
      {"R15 the last second before its end an exception still grants access", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; },
       at(25, -1), State::Exception, true},
      {"R15 at its end instant an exception has ended by itself", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; },
       at(25), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionEnded}},
      {"R16 a self-approved exception does not count", nullptr, nullptr,
       [](World& w) {
         auto x = approvedException(w, at(20), at(25));
         x.approvals[0].approver = "rita";  // the requester approves as TeamLead
         return std::vector<Exception>{x};
       },
       at(21), State::NotStarted, false, std::nullopt, std::nullopt,
       {Finding::ExceptionSelfApproved, Finding::ExceptionMissingApproval}},
      {"R16 one person cannot approve for two required roles", nullptr, nullptr,
       [](World& w) {
         auto x = approvedException(w, at(20), at(25));
         x.approvals[1].approver = "tom";
         return std::vector<Exception>{x};
       },
       at(21), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionMissingApproval}},
      {"R16 an approval given after now does not count yet", nullptr, nullptr,
       [](World& w) {
         auto x = approvedException(w, at(20), at(25));
         x.approvals[1].at = at(22);
         return std::vector<Exception>{x};
       },
       at(21), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionMissingApproval}},
      {"R17 an exception longer than maxDurationDays is refused", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25, 1))}; },
       at(21), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionTooLong}},
      {"R17 an exception of exactly maxDurationDays is allowed", nullptr, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; }, at(21),
       State::Exception, true},
      {"R17 an exception with an empty justification field is refused", nullptr, nullptr,
       [](World& w) {
         auto x = approvedException(w, at(20), at(25));
         x.justification[1].second = "  ";
         return std::vector<Exception>{x};
       },
       at(21), State::NotStarted, false, std::nullopt, std::nullopt,
       {Finding::ExceptionMissingJustification}},
      {"R17 a revoked exception grants nothing", nullptr, nullptr,
       [](World& w) {
         auto x = approvedException(w, at(20), at(25));
         x.revoked_at = at(21);
         return std::vector<Exception>{x};
       },
       at(22), State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionRevoked}},
      {"R17 a track that allows no exceptions refuses them",
       [](World& w) { w.t().exceptions.allowed = false; }, nullptr,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; }, at(21),
       State::NotStarted, false, std::nullopt, std::nullopt, {Finding::ExceptionNotAllowed}},
      {"R18 an exception bridges a lock-out", nullptr,
       [](World& w) {
         return std::vector<Fact>{attempt(w.quiz, at(3), 50), attempt(w.quiz, at(4), 60),
                                  attempt(w.quiz, at(5), 70)};
       },
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; }, at(21),
       State::Exception, true},
      {"R18 certification takes precedence over an exception", nullptr, certifiedAtDay10,
       [](World& w) { return std::vector<Exception>{approvedException(w, at(20), at(25))}; }, at(21),
       State::Certified, true, at(10)},
  };

  for (const Case& c : cases) {
    SECTION(c.reason) {
      World w;
      const Verdict v = run(w, c);
      INFO("state " << toString(v.state));
      CHECK(v.state == c.state);
      CHECK(v.entitled == c.entitled);
      if (c.certified_at) {
        REQUIRE(v.certified_at.has_value());
        CHECK(formatIso(*v.certified_at) == formatIso(*c.certified_at));
      }
      if (c.expires_at) {
        REQUIRE(v.expires_at.has_value());
        CHECK(formatIso(*v.expires_at) == formatIso(*c.expires_at));
      }
      for (Finding f : c.findings) {
        INFO("expected finding " << toString(f));
        CHECK(hasFinding(v, f));
      }
    }
  }
}

TEST_CASE("evidence names the facts that satisfied each requirement", "[unit][core][rules]") {
  World w;
  auto facts = certifiedAtDay10(w);
  std::vector<Person> people(1);
  auto verdicts = evaluate({facts, people, &w.policy, {}, at(20)});
  REQUIRE(verdicts.size() == 1);
  const Verdict& v = verdicts[0];
  auto find = [&](Finding f, Sym item) {
    for (const auto& e : v.evidence)
      if (e.finding == f && e.item == item) return e;
    FAIL("finding missing");
    return Evidence{};
  };
  CHECK(find(Finding::ModuleCompleted, w.m1).fact_ref == facts[0].ref);
  CHECK(find(Finding::ModuleCompleted, w.m2).fact_ref == facts[1].ref);
  const Evidence q = find(Finding::QuizPassed, w.quiz);
  CHECK(q.fact_ref == facts[2].ref);
  CHECK(q.value == Approx(90.0));
  CHECK(q.limit == Approx(80.0));
  CHECK(v.access_ends_at.has_value());
  CHECK(formatIso(*v.access_ends_at) == formatIso(at(375 + 14)));
}

TEST_CASE("evaluation does not depend on the order facts arrive in", "[unit][core][rules]") {
  World w;
  std::vector<Fact> facts;
  std::vector<Person> people(50);
  for (PersonIndex p = 0; p < 50; ++p) {
    for (auto f : certifiedAtDay10(w)) {
      f.person = p;
      f.at += Seconds{p * 3600};
      facts.push_back(f);
    }
    Fact extra = attempt(w.quiz, at(3), p % 2 ? 10 : 95);
    extra.person = p;
    facts.push_back(extra);
  }
  const auto reference = evaluate({facts, people, &w.policy, {}, at(30)});
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(facts.begin(), facts.end(), rng);
    const auto shuffled = evaluate({facts, people, &w.policy, {}, at(30)});
    REQUIRE(shuffled.size() == reference.size());
    for (std::size_t i = 0; i < reference.size(); ++i) {
      CHECK(shuffled[i].person == reference[i].person);
      CHECK(shuffled[i].state == reference[i].state);
      CHECK(shuffled[i].certified_at == reference[i].certified_at);
    }
  }
  // Even people passed on day 3 (before the modules were done): certified once the modules were.
  CHECK(reference[0].state == State::Certified);
}

TEST_CASE("a policy with a prerequisite cycle is refused", "[unit][core][policy]") {
  World w;
  Track p;
  p.id = w.prereq;
  p.requires_tracks = {w.track};
  w.policy.tracks.push_back(p);
  w.t().requires_tracks = {w.prereq};
  const Status s = validatePolicy(w.policy, w.sym);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message, Catch::Contains("prerequisite cycle"));
  CHECK_THAT(s.error().message, Catch::Contains("T -> P -> T"));
}

TEST_CASE("a policy with bad numbers is refused with the track named", "[unit][core][policy]") {
  World w;
  SECTION("negative minScorePct") {
    w.t().quiz->min_score_pct = -1;
    const Status s = validatePolicy(w.policy, w.sym);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().where == "track T");
    CHECK_THAT(s.error().message, Catch::Contains("minScorePct"));
  }
  SECTION("renewal window as long as the validity") {
    w.t().renew_window_days = 365;
    REQUIRE_FALSE(validatePolicy(w.policy, w.sym).ok());
  }
  SECTION("unknown prerequisite") {
    w.t().requires_tracks = {w.sym.intern("NOPE")};
    const Status s = validatePolicy(w.policy, w.sym);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().message, Catch::Contains("NOPE"));
  }
  SECTION("a sound policy passes") { CHECK(validatePolicy(w.policy, w.sym).ok()); }
}

TEST_CASE("an attempt reset dated in the future unlocks nobody yet", "[unit][core][rules]") {
  World w;
  std::vector<Fact> facts{completion(w.m1, at(1)), completion(w.m2, at(2)), attempt(w.quiz, at(3), 10),
                          attempt(w.quiz, at(4), 10), attempt(w.quiz, at(5), 10), reset(w.quiz, at(40))};
  std::vector<Person> people(1);
  auto v = evaluate({facts, people, &w.policy, {}, at(20)});
  REQUIRE(v.size() == 1);
  CHECK(v[0].state == State::LockedOut);
  auto later = evaluate({facts, people, &w.policy, {}, at(41)});
  CHECK(later[0].state == State::InProgress);
}

TEST_CASE("a prerequisite's access end shows only on a track that is entitled", "[unit][core][rules]") {
  World w;
  Track p;
  p.id = w.prereq;
  p.modules = {w.sym.intern("P1")};
  p.recertify_days = 60;
  w.policy.tracks.push_back(p);
  w.t().requires_tracks = {w.prereq};
  std::vector<Person> people(1);
  // Only the prerequisite is done: T has not started, so it has no access to end.
  std::vector<Fact> facts{completion(*w.sym.find("P1"), at(1))};
  auto v = evaluate({facts, people, &w.policy, {}, at(20)});
  REQUIRE(v.size() == 2);
  CHECK(v[0].state == State::NotStarted);
  CHECK_FALSE(v[0].access_ends_at.has_value());
  // Both done: T's access ends with P's (day 61), before T's own (day 375 + 14).
  auto both = certifiedAtDay10(w);
  both.push_back(completion(*w.sym.find("P1"), at(1)));
  auto v2 = evaluate({both, people, &w.policy, {}, at(20)});
  REQUIRE(v2[0].access_ends_at.has_value());
  CHECK(formatIso(*v2[0].access_ends_at) == formatIso(at(61)));
}
