// The exceptions workflow (engine/exceptions.hpp) over a temporary store: every rule of the
// request and approval steps, rejection, revocation, the state at each instant, the automatic
// end and the audit rows each step writes. The policy is the docs/rules.md example track:
// maxDurationDays 5, TeamLead + Security, justification partnerName + changeTicket.
#include <catch2/catch.hpp>
#include <filesystem>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/evaluate.hpp"
#include "engine/evaluation.hpp"
#include "engine/exceptions.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using engine::ExceptionState;

namespace {

const core::Instant kNow = *core::parseIso("2026-03-20T08:00:00Z");
core::Instant at(const char* iso) { return *core::parseIso(iso); }

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<engine::ExceptionService> service;

  explicit Fixture(bool allowed = true) {
    dir = fs::temp_directory_path() / ("certgate-exceptions-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("T");
    t.modules = {sym.intern("M1")};
    t.exceptions.allowed = allowed;
    t.exceptions.max_duration_days = 5;
    t.exceptions.required_roles = {"TeamLead", "Security"};
    t.exceptions.justification_fields = {"partnerName", "changeTicket"};
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"T", "", "test", {}});
    settings.policy = policy;
    settings.exceptions.approvers["TeamLead"] = {"tom@example.org", "una@example.org",
                                                 "both@example.org"};
    settings.exceptions.approvers["Security"] = {"sam@example.org", "both@example.org",
                                                 "rita@example.org", "alex@example.org"};
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    store::PersonRow alex;
    alex.key = "alex@example.org";
    alex.email = "alex@example.org";
    alex.first_seen = alex.updated_at = kNow;
    REQUIRE(store->upsertPerson(alex).ok());
    service = std::make_unique<engine::ExceptionService>(*store, settings);
  }
  ~Fixture() {
    service.reset();
    store.reset();
    fs::remove_all(dir);
  }

  engine::ExceptionRequest request() const {
    engine::ExceptionRequest r;
    r.person = "alex@example.org";
    r.track = "T";
    r.requester = "rita@example.org";
    r.starts_at = kNow;
    r.days = 5;
    r.justification = {{"partnerName", "Acme"}, {"changeTicket", "CHG-1"}};
    return r;
  }

  std::int64_t requested() {
    auto v = service->request(request(), kNow);
    REQUIRE(v.ok());
    return v->row.id;
  }

  std::vector<std::string> actions() {
    auto rows = store->audit(-1);
    REQUIRE(rows.ok());
    std::vector<std::string> out;
    for (auto it = rows->rbegin(); it != rows->rend(); ++it) out.push_back(it->action);
    return out;
  }
};

void requireError(const core::Error& e, core::ErrorKind kind, const std::string& text) {
  INFO(e.describe());
  CHECK(e.kind == kind);
  CHECK_THAT(e.describe(), Catch::Contains(text));
}

}  // namespace

TEST_CASE("an exception is requested, approved by both roles, active and then ends by itself", "[unit][exceptions]") {
  Fixture f;
  auto v = f.service->request(f.request(), kNow);
  REQUIRE(v.ok());
  CHECK(v->state == ExceptionState::Pending);
  CHECK(v->person == "alex@example.org");
  CHECK(v->missing_roles == std::vector<std::string>{"TeamLead", "Security"});
  const auto id = v->row.id;

  auto a1 = f.service->approve(id, "tom@example.org", "TeamLead", kNow + core::Seconds{60});
  REQUIRE(a1.ok());
  CHECK(a1->recorded);
  CHECK_FALSE(a1->became_active);
  CHECK(a1->view.state == ExceptionState::Pending);
  CHECK(a1->view.missing_roles == std::vector<std::string>{"Security"});

  const auto second = kNow + core::Seconds{120};
  auto a2 = f.service->approve(id, "sam@example.org", "Security", second);
  REQUIRE(a2.ok());
  CHECK(a2->became_active);
  CHECK(a2->view.state == ExceptionState::Active);
  REQUIRE(a2->view.active_from);
  CHECK(*a2->view.active_from == second);  // active from the completing approval
  CHECK(a2->view.missing_roles.empty());

  CHECK(f.service->get(id, at("2026-03-25T07:59:59Z"))->state == ExceptionState::Active);
  CHECK(f.service->get(id, at("2026-03-25T08:00:00Z"))->state == ExceptionState::Ended);

  auto none = f.service->sweep(at("2026-03-25T07:59:59Z"));
  REQUIRE(none.ok());
  CHECK(none->ended.empty());
  auto swept = f.service->sweep(at("2026-03-25T08:00:00Z"));
  REQUIRE(swept.ok());
  CHECK(swept->ended == std::vector<std::int64_t>{id});
  auto again = f.service->sweep(at("2026-03-26T00:00:00Z"));
  REQUIRE(again.ok());
  CHECK(again->ended.empty());  // written once

  CHECK(f.actions() == std::vector<std::string>{"exception.request", "exception.approve",
                                                "exception.approve", "exception.active",
                                                "exception.end"});
  auto audit = f.store->audit(1);
  REQUIRE(audit.ok());
  auto details = nlohmann::json::parse(audit->front().details_json);
  CHECK(audit->front().subject == "exception/" + std::to_string(id));
  CHECK(details["ended_at"] == "2026-03-25T08:00:00Z");
  CHECK(details["approved"] == true);
}

TEST_CASE("the audit rows name the actor and the details of each step", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow, "ok for CHG-1").ok());
  auto rows = f.store->audit(-1);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2);
  const auto& request = rows->back();
  CHECK(request.actor == "rita@example.org");
  CHECK(request.action == "exception.request");
  auto rd = nlohmann::json::parse(request.details_json);
  CHECK(rd["justification"]["changeTicket"] == "CHG-1");
  CHECK(rd["ends_at"] == "2026-03-25T08:00:00Z");
  const auto& approve = rows->front();
  CHECK(approve.actor == "tom@example.org");
  auto ad = nlohmann::json::parse(approve.details_json);
  CHECK(ad["role"] == "TeamLead");
  CHECK(ad["comment"] == "ok for CHG-1");
}

TEST_CASE("a request is refused when the track allows no exceptions", "[unit][exceptions]") {
  Fixture f(false);
  auto v = f.service->request(f.request(), kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "allows no exceptions");
  CHECK(f.actions().empty());
}

TEST_CASE("a request longer than maxDurationDays is refused and names the maximum", "[unit][exceptions]") {
  Fixture f;
  auto r = f.request();
  r.days = 6;
  auto v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "at most 5 days");
  r.days = 0;
  r.ends_at = kNow + core::days(5) + core::Seconds{1};  // one second too long: not capped
  v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "maxDurationDays");
  r.ends_at = kNow + core::days(5);  // exactly the maximum
  CHECK(f.service->request(r, kNow).ok());
}

TEST_CASE("a request needs an end after its start", "[unit][exceptions]") {
  Fixture f;
  auto r = f.request();
  r.days = 0;
  auto v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "needs an end");
  r.ends_at = kNow;
  v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "before or when it starts");
}

TEST_CASE("every justification field is required and not blank", "[unit][exceptions]") {
  Fixture f;
  auto r = f.request();
  r.justification.erase("changeTicket");
  auto v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "missing justification: changeTicket");
  r.justification["changeTicket"] = " \t ";
  v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "missing justification: changeTicket");
  r.justification["changeTicket"] = "CHG-1";
  r.justification["partnerNmae"] = "typo";
  v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::Invalid, "unknown justification field 'partnerNmae'");
}

TEST_CASE("a request for an unknown person or track is not found", "[unit][exceptions]") {
  Fixture f;
  auto r = f.request();
  r.person = "nobody@example.org";
  auto v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::NotFound, "no person matches");
  r = f.request();
  r.track = "NOPE";
  v = f.service->request(r, kNow);
  REQUIRE_FALSE(v.ok());
  requireError(v.error(), core::ErrorKind::NotFound, "unknown track 'NOPE'");
}

TEST_CASE("the requester cannot approve even when holding the role", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();  // rita requests and holds Security
  auto a = f.service->approve(id, "Rita@Example.org ", "Security", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Auth, "cannot approve it");
  CHECK(f.service->get(id, kNow)->row.approvals.empty());
}

TEST_CASE("the person the exception is for cannot approve it", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();  // alex holds Security
  auto a = f.service->approve(id, "alex@example.org", "Security", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Auth, "is the person exception #1 is for");
}

TEST_CASE("an approval by someone not holding the role is refused with the holders named", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  auto a = f.service->approve(id, "tom@example.org", "Security", kNow);  // tom is a TeamLead
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Auth, "does not hold approver role Security");
  CHECK_THAT(a.error().hint, Catch::Contains("sam@example.org"));
  f.settings.exceptions.approvers.erase("Security");
  a = f.service->approve(id, "sam@example.org", "Security", kNow);
  REQUIRE_FALSE(a.ok());
  CHECK_THAT(a.error().hint, Catch::Contains("exceptions.approvers.Security"));
}

TEST_CASE("an approval in a role the track does not require is refused", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  auto a = f.service->approve(id, "tom@example.org", "Manager", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Invalid, "required roles: TeamLead, Security");
}

TEST_CASE("one person cannot fill two roles of one exception", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "both@example.org", "TeamLead", kNow).ok());
  auto a = f.service->approve(id, "both@example.org", "Security", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Conflict, "cannot approve two roles");
  CHECK(f.service->get(id, kNow)->state == ExceptionState::Pending);
}

TEST_CASE("a role approved by one person is not approved again by another", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  auto a = f.service->approve(id, "una@example.org", "TeamLead", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Conflict, "was approved by tom@example.org already");
  CHECK_THAT(a.error().hint, Catch::Contains("Security"));
}

TEST_CASE("repeating an approval or approving an active exception changes nothing", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  auto repeat = f.service->approve(id, "tom@example.org", "TeamLead", kNow + core::Seconds{5});
  REQUIRE(repeat.ok());
  CHECK_FALSE(repeat->recorded);
  REQUIRE(f.service->approve(id, "sam@example.org", "Security", kNow).ok());
  const auto before = f.actions().size();
  auto active = f.service->approve(id, "una@example.org", "TeamLead", kNow + core::Seconds{9});
  REQUIRE(active.ok());
  CHECK_FALSE(active->recorded);
  CHECK_FALSE(active->became_active);
  CHECK(active->view.state == ExceptionState::Active);
  CHECK(active->view.row.approvals.size() == 2);
  CHECK(f.actions().size() == before);
}

TEST_CASE("approvals before the start make it approved, then active at the start", "[unit][exceptions]") {
  Fixture f;
  auto r = f.request();
  r.starts_at = kNow + core::days(1);
  auto v = f.service->request(r, kNow);
  REQUIRE(v.ok());
  REQUIRE(f.service->approve(v->row.id, "tom@example.org", "TeamLead", kNow).ok());
  auto a = f.service->approve(v->row.id, "sam@example.org", "Security", kNow);
  REQUIRE(a.ok());
  CHECK(a->view.state == ExceptionState::Approved);
  CHECK(*a->view.active_from == kNow + core::days(1));
  CHECK(f.service->get(v->row.id, kNow + core::days(1))->state == ExceptionState::Active);
}

TEST_CASE("a rejected exception cannot be approved and never grants", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  auto rej = f.service->reject(id, "sam@example.org", "no change ticket on file", kNow);
  REQUIRE(rej.ok());
  CHECK(rej->state == ExceptionState::Rejected);
  CHECK(rej->row.rejected_reason == "no change ticket on file");
  auto a = f.service->approve(id, "sam@example.org", "Security", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Conflict, "was rejected by sam@example.org");
  // Rejecting again keeps the first rejection.
  auto again = f.service->reject(id, "both@example.org", "other", kNow + core::Seconds{1});
  REQUIRE(again.ok());
  CHECK(again->row.rejected_by == "sam@example.org");
  CHECK(f.actions() == std::vector<std::string>{"exception.request", "exception.approve",
                                                "exception.reject"});
  // Ended by time, a rejected one is not swept as "ended".
  auto swept = f.service->sweep(kNow + core::days(6));
  REQUIRE(swept.ok());
  CHECK(swept->ended.empty());
}

TEST_CASE("a rejection needs a reason and a holder of one of the roles", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  auto r = f.service->reject(id, "sam@example.org", "  ", kNow);
  REQUIRE_FALSE(r.ok());
  requireError(r.error(), core::ErrorKind::Invalid, "needs a reason");
  r = f.service->reject(id, "mallory@example.org", "no", kNow);
  REQUIRE_FALSE(r.ok());
  requireError(r.error(), core::ErrorKind::Auth, "holds none of the roles");
}

TEST_CASE("an approved exception is revoked, not rejected", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  REQUIRE(f.service->approve(id, "sam@example.org", "Security", kNow).ok());
  auto r = f.service->reject(id, "sam@example.org", "changed my mind", kNow);
  REQUIRE_FALSE(r.ok());
  requireError(r.error(), core::ErrorKind::Conflict, "revoke it instead");
}

TEST_CASE("a revoked exception cannot be approved and its access ends at the revocation", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  const auto when = kNow + core::days(1);
  auto rv = f.service->revoke(id, "iam-oncall", "partner contract ended", when);
  REQUIRE(rv.ok());
  CHECK(rv->state == ExceptionState::Revoked);
  CHECK(rv->access_ends == when);
  auto a = f.service->approve(id, "sam@example.org", "Security", when);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Conflict, "was revoked by iam-oncall");
  auto j = engine::toJson(*f.service->get(id, when));
  CHECK(j["state"] == "revoked");
  CHECK(j["revoked"]["reason"] == "partner contract ended");
  CHECK(f.service->sweep(kNow + core::days(6))->ended.empty());
  CHECK(f.actions().back() == "exception.revoke");
}

TEST_CASE("an ended exception can be neither approved nor revoked", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  const auto later = kNow + core::days(5);
  auto a = f.service->approve(id, "tom@example.org", "TeamLead", later);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::Conflict, "ended at 2026-03-25T08:00:00Z");
  auto r = f.service->revoke(id, "iam-oncall", "", later);
  REQUIRE_FALSE(r.ok());
  requireError(r.error(), core::ErrorKind::Conflict, "nothing to revoke");
  // A request that lapsed without approval is swept with approved: false.
  REQUIRE(f.service->sweep(later)->ended.size() == 1);
  auto audit = f.store->audit(1);
  CHECK(nlohmann::json::parse(audit->front().details_json)["approved"] == false);
}

TEST_CASE("approving an unknown exception is not found", "[unit][exceptions]") {
  Fixture f;
  auto a = f.service->approve(42, "tom@example.org", "TeamLead", kNow);
  REQUIRE_FALSE(a.ok());
  requireError(a.error(), core::ErrorKind::NotFound, "no exception #42");
}

TEST_CASE("the JSON view lists state, approvals, missing roles and the window", "[unit][exceptions]") {
  Fixture f;
  const auto id = f.requested();
  REQUIRE(f.service->approve(id, "tom@example.org", "TeamLead", kNow).ok());
  auto j = engine::toJson(*f.service->get(id, kNow));
  CHECK(j["id"] == id);
  CHECK(j["person"] == "alex@example.org");
  CHECK(j["track"] == "T");
  CHECK(j["state"] == "pending");
  CHECK(j["starts_at"] == "2026-03-20T08:00:00Z");
  CHECK(j["ends_at"] == "2026-03-25T08:00:00Z");
  CHECK(j["active_from"].is_null());
  CHECK(j["missing_roles"] == nlohmann::json::array({"Security"}));
  CHECK(j["required_roles"] == nlohmann::json::array({"TeamLead", "Security"}));
  CHECK(j["approvals"][0]["approver"] == "tom@example.org");
  CHECK(j["approvals"][0]["role"] == "TeamLead");
  CHECK(j["justification"]["partnerName"] == "Acme");
  CHECK(j["rejected"].is_null());
  CHECK(j["revoked"].is_null());
}

TEST_CASE("the rule engine grants through an approved exception and not through a rejected one", "[unit][exceptions]") {
  Fixture f;
  const auto granted = f.requested();
  REQUIRE(f.service->approve(granted, "tom@example.org", "TeamLead", kNow).ok());
  REQUIRE(f.service->approve(granted, "sam@example.org", "Security", kNow).ok());
  auto stateOn = [&](core::Instant when) {
    auto ev = engine::Evaluation::load(*f.store, *f.settings.policy);
    REQUIRE(ev.ok());
    core::State state = core::State::NotStarted;
    auto done = ev->forEach(when, [](const store::PersonRow&) { return true; },
                            [&](const engine::PersonVerdicts& pv) {
      state = pv.verdicts.front().state;
    });
    REQUIRE(done.ok());
    return state;
  };
  CHECK(stateOn(kNow + core::days(1)) == core::State::Exception);
  CHECK(stateOn(kNow + core::days(5)) == core::State::NotStarted);
  REQUIRE(f.service->revoke(granted, "iam-oncall", "", kNow + core::days(1)).ok());
  CHECK(stateOn(kNow + core::days(2)) == core::State::NotStarted);

  // A rejected row never grants, even with both roles approved in the store directly.
  auto r = f.request();
  auto v = f.service->request(r, kNow);
  REQUIRE(v.ok());
  REQUIRE(f.service->reject(v->row.id, "sam@example.org", "no", kNow).ok());
  for (auto [who, role] : {std::pair{"tom@example.org", "TeamLead"}, {"sam@example.org", "Security"}}) {
    store::ApprovalRow a;
    a.exception_id = v->row.id;
    a.approver = who;
    a.role = role;
    a.at = kNow;
    REQUIRE(f.store->addApproval(a).ok());
  }
  CHECK(stateOn(kNow + core::days(3)) == core::State::NotStarted);
}
