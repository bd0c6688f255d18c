// The token planning table: issue, rotate, supersede, revoke, orphans, the stale-source guard.
// Semantics: src/core/token_plan.hpp and docs/design.md, "Planning (tokens)".
#include "core/token_plan.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace certgate::core;

namespace {

const Instant kNow = *parseIso("2026-11-25T12:00:00Z");
Instant daysFromNow(int d) { return kNow + days(d); }

struct World {
  SymbolTable symbols;
  Sym track = symbols.intern("AI");
  std::vector<TokenGrant> mappings;
  std::vector<PersonVerdicts> people;
  std::vector<LedgerToken> ledger;
  std::vector<ObservedTokens> observed{{"litellm", {}, {}}};

  World() {
    TokenGrant g;
    g.track = track;
    g.gateway = "litellm";
    g.scope = "basic";
    g.rotate_before = days(7);
    g.overlap = days(1);
    mappings.push_back(g);
  }
  void entitled(const std::string& who, int cycle, std::optional<Instant> access_ends,
                bool complete = true) {
    Verdict v;
    v.track = track;
    v.state = State::Certified;
    v.entitled = true;
    v.cycle = cycle;
    v.access_ends_at = access_ends;
    people.push_back({who, {v}, complete});
  }
  void expired(const std::string& who) {
    Verdict v;
    v.track = track;
    v.state = State::Expired;
    Evidence e;
    e.finding = Finding::Expired;
    e.requirement = Requirement::Expiry;
    e.item = track;
    e.at = daysFromNow(-1);
    v.evidence.push_back(e);
    people.push_back({who, {v}, true});
  }
  void notStarted(const std::string& who, bool complete) {
    Verdict v;
    v.track = track;
    v.state = State::NotStarted;
    people.push_back({who, {v}, complete});
  }
  // A live token (observed on the gateway) in the ledger.
  void token(const std::string& who, const std::string& id, int cycle, int rotation,
             Instant issued, std::optional<Instant> expires, bool live = true) {
    ledger.push_back({who, track, "litellm", "basic", id, tokenAlias(who, "AI", "basic", cycle, rotation),
                      issued, expires});
    if (live) observed[0].token_ids.push_back(id);
  }
  TokenPlan plan() {
    TokenPlanInput in;
    in.people = people;
    in.mappings = mappings;
    in.ledger = ledger;
    in.observed = observed;
    in.now = kNow;
    in.symbols = &symbols;
    return planTokens(in);
  }
};

}  // namespace

TEST_CASE("an entitled person without a token gets one, capped at the end of access",
          "[unit][core][tokens]") {
  World w;
  w.mappings[0].lifetime = days(90);
  w.entitled("alice", 1, daysFromNow(30));
  w.entitled("bob", 0, daysFromNow(400));
  auto p = w.plan();
  REQUIRE(p.actions.size() == 2);
  CHECK(p.actions[0].kind == TokenActionKind::Issue);
  CHECK(p.actions[0].person == "alice");
  CHECK(p.actions[0].reason == TokenReason::Entitled);
  CHECK(p.actions[0].alias == "certgate:alice:AI:basic:c1:r0");
  CHECK(p.actions[0].expires_at == daysFromNow(30));  // access ends first
  CHECK(p.actions[1].expires_at == daysFromNow(90));  // the lifetime ends first
}

TEST_CASE("a live token that is not near its expiry means nothing to do", "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(200));
  w.token("alice", "k1", 0, 0, daysFromNow(-10), daysFromNow(100));
  CHECK(w.plan().actions.empty());
}

TEST_CASE("rotation issues the successor before expiry and revokes the predecessor after the "
          "overlap", "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(200));
  w.token("alice", "k1", 0, 0, daysFromNow(-85), daysFromNow(5));  // expires in 5 < 7 days
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].kind == TokenActionKind::Issue);
  CHECK(p.actions[0].reason == TokenReason::Rotation);
  CHECK(p.actions[0].alias == "certgate:alice:AI:basic:c0:r1");

  // The successor was issued 12 hours ago: both live, the overlap (1 day) is not over.
  w.token("alice", "k2", 0, 1, kNow - Seconds{12 * 3600}, daysFromNow(85));
  CHECK(w.plan().actions.empty());
  // Two days later the overlap is over: the predecessor goes.
  w.ledger[1].issued_at = daysFromNow(-2);
  auto later = w.plan();
  REQUIRE(later.actions.size() == 1);
  CHECK(later.actions[0].kind == TokenActionKind::Revoke);
  CHECK(later.actions[0].token_id == "k1");
  CHECK(later.actions[0].reason == TokenReason::Superseded);
}

TEST_CASE("a token is not rotated when access ends before it would expire",
          "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(3));
  w.token("alice", "k1", 0, 0, daysFromNow(-85), daysFromNow(5));
  CHECK(w.plan().actions.empty());
}

TEST_CASE("recertification (a new cycle) issues a token under the new cycle's alias",
          "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 2, daysFromNow(360));
  w.token("alice", "k1", 1, 0, daysFromNow(-300), daysFromNow(20));
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].reason == TokenReason::Recertified);
  CHECK(p.actions[0].alias == "certgate:alice:AI:basic:c2:r1");
}

TEST_CASE("loss of entitlement revokes at once, with the reason", "[unit][core][tokens]") {
  World w;
  w.expired("alice");
  w.token("alice", "k1", 0, 0, daysFromNow(-300), daysFromNow(60));
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].kind == TokenActionKind::Revoke);
  CHECK(p.actions[0].reason == TokenReason::NotEntitled);
  CHECK(p.actions[0].cause == Reason::Expired);
  CHECK_FALSE(p.actions[0].source_dependent);
}

TEST_CASE("the stale-source guard holds back revocations that missing data could explain",
          "[unit][core][tokens]") {
  World w;
  w.notStarted("alice", /*complete=*/false);
  w.token("alice", "k1", 0, 0, daysFromNow(-30), daysFromNow(60));
  w.expired("bob");  // time-based: goes ahead even with incomplete sources
  w.people.back().sources_complete = false;
  w.token("bob", "k2", 0, 0, daysFromNow(-300), daysFromNow(60));
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].token_id == "k2");
  REQUIRE(p.skipped.size() == 1);
  CHECK(p.skipped[0].token_id == "k1");
  CHECK(p.skipped[0].cause == Reason::NotCertified);
}

TEST_CASE("a token deleted at the gateway is re-issued under a new alias",
          "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(200));
  w.token("alice", "k1", 0, 0, daysFromNow(-10), daysFromNow(100), /*live=*/false);
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].reason == TokenReason::Missing);
  CHECK(p.actions[0].alias == "certgate:alice:AI:basic:c0:r1");  // never the old alias
}

TEST_CASE("orphans are revoked, unmapped ledger tokens are left alone, unobserved gateways get "
          "nothing", "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(200));
  w.observed[0].orphan_ids.push_back("stray");
  LedgerToken unmapped{"alice", w.track, "kong", "basic", "kx", "certgate:alice:AI:basic:c0:r0",
                       daysFromNow(-1), std::nullopt};
  w.ledger.push_back(unmapped);
  auto p = w.plan();
  REQUIRE(p.actions.size() == 2);
  CHECK(p.actions[0].kind == TokenActionKind::Revoke);  // revocations first
  CHECK(p.actions[0].reason == TokenReason::Orphan);
  CHECK(p.actions[0].token_id == "stray");
  CHECK(p.actions[1].kind == TokenActionKind::Issue);
  REQUIRE(p.outside_allow_list.size() == 1);
  CHECK(p.outside_allow_list[0].token_id == "kx");

  w.observed.clear();
  auto blind = w.plan();
  CHECK(blind.actions.empty());
  REQUIRE(blind.unobserved.size() == 1);
  CHECK(blind.unobserved[0] == "litellm");
}

TEST_CASE("tokens of people no longer known are revoked as source-dependent",
          "[unit][core][tokens]") {
  World w;
  w.token("ghost", "k9", 0, 0, daysFromNow(-10), daysFromNow(100));
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].person == "ghost");
  CHECK(p.actions[0].cause == Reason::NoVerdict);
  CHECK(p.actions[0].source_dependent);
}

TEST_CASE("a token the ledger records as revoked is nobody's live token, but keeps its alias "
          "number", "[unit][core][tokens]") {
  World w;
  w.entitled("alice", 0, daysFromNow(200));
  // Revoked in the ledger, still listed by the gateway (its cache, or a revocation not yet
  // enforced): alice has no live token, and the next one takes the next rotation number.
  w.token("alice", "k1", 0, 0, daysFromNow(-10), daysFromNow(100));
  w.ledger.back().live = false;
  auto p = w.plan();
  REQUIRE(p.actions.size() == 1);
  CHECK(p.actions[0].kind == TokenActionKind::Issue);
  CHECK(p.actions[0].reason == TokenReason::Missing);
  CHECK(p.actions[0].alias == "certgate:alice:AI:basic:c0:r1");
  CHECK(p.outside_allow_list.empty());
}
