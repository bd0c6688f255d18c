// Audit and evidence over a temporary store: config.change events, the evidence export (CSV and
// JSON, per person) and the KPI report with known certification and access times.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/evidence.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using nlohmann::json;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");  // a Wednesday, 2026-W48
const core::Instant kT0 = kNow - core::days(20);                      // everyone's first_seen
core::Instant hoursAfter(core::Instant t, int h) { return t + core::Seconds{h * 3600}; }

struct Fixture {
  fs::path dir;
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
  std::int64_t source = 0;
  std::map<std::string, std::int64_t> person;
  int fact_seq = 0;

  Fixture() {
    dir = fs::temp_directory_path() / ("certgate-evidence-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto policy = std::make_shared<settings::LoadedPolicy>();
    auto& sym = policy->symbols;
    core::Track t;
    t.id = sym.intern("T");
    t.modules = {sym.intern("M1")};
    t.quiz = core::QuizRule{sym.intern("QZ"), 80.0, 3};
    t.recertify_days = 365;
    t.exceptions.allowed = true;
    t.exceptions.max_duration_days = 30;
    t.exceptions.required_roles = {"security"};
    policy->policy.tracks.push_back(t);
    policy->tracks.push_back({"T", "", "test", {}});
    policy->slo.p95_hours_cert_to_access = 1;
    policy->slo.completion_pct_within_48h = 85;
    settings.policy = policy;
    auto opened = store::Store::open((dir / "certgate.db").string());
    REQUIRE(opened.ok());
    store = std::move(opened).value();
    source = *store->ensureSource("lms", "csv");
  }
  ~Fixture() {
    store.reset();
    fs::remove_all(dir);
  }

  void addPerson(const std::string& key, core::Instant first_seen) {
    store::PersonRow p;
    p.key = key;
    p.employee_id = key;
    p.email = key == "E1" ? "e1@example.com" : "";
    p.display_name = "Person " + key;
    p.first_seen = first_seen;
    p.updated_at = first_seen;
    auto id = store->upsertPerson(p);
    REQUIRE(id.ok());
    person[key] = *id;
  }
  void completion(const std::string& key, core::Instant when) {
    store::FactRow f;
    f.source_id = source;
    f.external_id = "c-" + std::to_string(++fact_seq);
    f.person_id = person.at(key);
    f.item = "M1";
    f.lms_item = "COURSE-1";
    f.kind = core::FactKind::Completion;
    f.status = core::FactStatus::Completed;
    f.at = when;
    f.location = "export.csv:" + std::to_string(fact_seq + 1);
    REQUIRE(store->upsertFact(f, kNow).ok());
  }
  void attempt(const std::string& key, core::Instant when, int n, double score, bool pass) {
    store::FactRow f;
    f.source_id = source;
    f.external_id = "q-" + std::to_string(++fact_seq);
    f.person_id = person.at(key);
    f.item = "QZ";
    f.lms_item = "QUIZ-1";
    f.kind = core::FactKind::QuizAttempt;
    f.status = pass ? core::FactStatus::Passed : core::FactStatus::Failed;
    f.lms_pass = pass ? 1 : 0;
    f.attempt = static_cast<std::uint16_t>(n);
    f.score = score;
    f.max_score = 100;
    f.at = when;
    REQUIRE(store->upsertFact(f, kNow).ok());
  }
  void access(const std::string& action, const std::string& key, core::Instant when) {
    store::AuditRow a{0, when, "certgate", action, key, json({{"track", "T"}}).dump(), 0};
    REQUIRE(store->appendAudit(a).ok());
  }
  std::int64_t exception(const std::string& key, const std::string& requested,
                         const std::string& starts, const std::string& ends) {
    store::ExceptionRow x;
    x.person_id = person.at(key);
    x.track = "T";
    x.requester = "manager@example.com";
    x.requested_at = *core::parseIso(requested);
    x.starts_at = *core::parseIso(starts);
    x.ends_at = *core::parseIso(ends);
    x.justification_json = R"({"reason":"pilot"})";
    auto id = store->insertException(x);
    REQUIRE(id.ok());
    return *id;
  }
  void approve(std::int64_t id, const std::string& who, const std::string& when) {
    store::ApprovalRow a;
    a.exception_id = id;
    a.approver = who;
    a.role = "security";
    a.at = *core::parseIso(when);
    a.comment = "ok";
    REQUIRE(store->addApproval(a).ok());
  }

  // P1..P5 with known certification and access times (see the KPI test for the arithmetic).
  void population() {
    for (const char* k : {"E1", "E2", "E3", "E4"}) addPerson(k, kT0);
    addPerson("E5", kNow - core::days(1));
    completion("E1", hoursAfter(kT0, 10));
    attempt("E1", hoursAfter(kT0, 20), 1, 90, true);    // certified T0+20h
    completion("E2", hoursAfter(kT0, 30));
    attempt("E2", hoursAfter(kT0, 31), 1, 50, false);
    attempt("E2", hoursAfter(kT0, 60), 2, 85, true);    // certified T0+60h
    completion("E3", hoursAfter(kT0, 5));
    attempt("E3", hoursAfter(kT0, 6), 1, 100, true);    // certified T0+6h
    completion("E5", kNow - core::Seconds{20 * 3600});
    attempt("E5", kNow - core::Seconds{19 * 3600}, 1, 80, true);
    access("group.add", "E1", hoursAfter(kT0, 1));      // before certification: not counted
    access("group.add", "E1", hoursAfter(kT0, 21));     // 1 h
    access("token.issue", "E2", hoursAfter(kT0, 63));   // 3 h
    access("group.add", "E3", hoursAfter(kT0, 16));     // 10 h
    access("token.issue", "E3", hoursAfter(kT0, 17));   // later than the first: ignored
    // Exceptions: X1 in W46, X2 (self-approved: never approved) in W47, X3 approved in W48.
    const auto x1 = exception("E4", "2026-11-10T09:00:00Z", "2026-11-11T00:00:00Z",
                              "2026-11-20T00:00:00Z");
    approve(x1, "sec1@example.com", "2026-11-11T08:00:00Z");
    const auto x2 = exception("E4", "2026-11-17T09:00:00Z", "2026-11-17T09:00:00Z",
                              "2026-11-30T00:00:00Z");
    approve(x2, "manager@example.com", "2026-11-17T10:00:00Z");
    const auto x3 = exception("E2", "2026-11-18T09:00:00Z", "2026-11-18T09:00:00Z",
                              "2026-12-10T00:00:00Z");
    approve(x3, "sec2@example.com", "2026-11-24T10:00:00Z");
  }
};

std::vector<std::vector<std::string>> parseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\r') {
    } else if (c == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
    } else {
      cell += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

}  // namespace

TEST_CASE("Percentiles are nearest-rank", "[unit][engine]") {
  CHECK(engine::percentile({}, 50) == std::nullopt);
  CHECK(engine::percentile({7}, 95) == 7);
  CHECK(engine::percentile({10, 1, 3}, 50) == 3);
  CHECK(engine::percentile({10, 1, 3}, 95) == 10);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  CHECK(engine::percentile(hundred, 50) == 50);
  CHECK(engine::percentile(hundred, 95) == 95);
}

TEST_CASE("ISO weeks start on Monday and take the year of their Thursday", "[unit][engine]") {
  CHECK(engine::isoWeek(kNow) == "2026-W48");
  CHECK(engine::isoWeekStart(kNow) == *core::parseIso("2026-11-23T00:00:00Z"));
  CHECK(engine::isoWeek(*core::parseIso("2027-01-01T12:00:00Z")) == "2026-W53");
  CHECK(engine::isoWeek(*core::parseIso("2024-12-30T00:00:00Z")) == "2025-W01");
  CHECK(engine::isoWeek(*core::parseIso("2026-11-22T23:59:59Z")) == "2026-W47");
}

TEST_CASE("The KPI report measures certification to access, 48-hour completion and exceptions per week",
          "[unit][engine]") {
  Fixture f;
  f.population();
  auto r = engine::kpiReport(*f.store, *f.settings.policy, kNow - core::days(20), kNow);
  REQUIRE(r.ok());
  // Access after certification: E1 1 h, E2 3 h, E3 10 h; E5 certified without access yet.
  CHECK(r->access_measured == 3);
  CHECK(r->access_waiting == 1);
  CHECK(r->access_p50_hours == 3.0);
  CHECK(r->access_p95_hours == 10.0);
  CHECK(r->access_target_p95_hours == 1.0);
  // Assigned at T0 (E5's 48 hours have not passed): E1 and E3 within 48 h, E2 at 60 h, E4 never.
  CHECK(r->assigned == 4);
  CHECK(r->completed_within_48h == 2);
  CHECK(r->completion_pct == 50.0);
  CHECK(r->completion_target_pct == 85.0);
  REQUIRE(r->weeks.size() == 4);
  const std::vector<std::string> names = {"2026-W45", "2026-W46", "2026-W47", "2026-W48"};
  const std::vector<std::array<std::int64_t, 3>> expected = {{0, 0, 0}, {1, 1, 1}, {2, 0, 1}, {0, 1, 1}};
  for (std::size_t i = 0; i < 4; ++i) {
    INFO(r->weeks[i].week);
    CHECK(r->weeks[i].week == names[i]);
    CHECK(r->weeks[i].requested == expected[i][0]);
    CHECK(r->weeks[i].approved == expected[i][1]);
    CHECK(r->weeks[i].active == expected[i][2]);
  }
}

TEST_CASE("The evidence export holds each person's facts, states, exceptions and actions",
          "[unit][engine]") {
  Fixture f;
  f.population();
  engine::EvidenceOptions options;
  options.since = kNow - core::days(30);
  options.now = kNow;
  options.format = engine::EvidenceFormat::Json;
  auto exported = engine::exportEvidence(*f.store, *f.settings.policy, options);
  REQUIRE(exported.ok());
  const json doc = json::parse(exported->text);
  const auto head = *f.store->auditHead();
  CHECK(doc["audit_head"]["id"] == head.id);
  CHECK(doc["audit_head"]["hash"] == head.hash);
  CHECK(doc["since"] == "2026-10-26T12:00:00Z");
  REQUIRE(doc["persons"].size() == 5);
  json e2;
  for (const auto& p : doc["persons"])
    if (p["key"] == "E2") e2 = p;
  REQUIRE(e2.is_object());
  REQUIRE(e2["attempts"].size() == 2);
  CHECK(e2["attempts"][0]["score"] == 50.0);
  CHECK(e2["attempts"][0]["max_score"] == 100.0);
  CHECK(e2["attempts"][0]["pct"] == 50.0);
  CHECK(e2["attempts"][0]["lms_pass"] == false);
  CHECK(e2["attempts"][0]["attempt"] == 1);
  CHECK(e2["attempts"][0]["source"] == "lms");
  CHECK(e2["attempts"][1]["status"] == "passed");
  CHECK(e2["attempts"][1]["pct"] == 85.0);
  REQUIRE(e2["completions"].size() == 1);
  CHECK(e2["completions"][0]["item"] == "M1");
  CHECK(e2["completions"][0]["details"]["lms_item"] == "COURSE-1");
  REQUIRE(e2["certifications"].size() == 1);
  CHECK(e2["certifications"][0]["track"] == "T");
  CHECK(e2["certifications"][0]["certified_at"] == core::formatIso(hoursAfter(kT0, 60)));
  CHECK(e2["certifications"][0]["expires_at"] ==
        core::formatIso(hoursAfter(kT0, 60) + core::days(365)));
  REQUIRE(e2["exceptions"].size() == 1);
  CHECK(e2["exceptions"][0]["actor"] == "manager@example.com");
  CHECK(e2["exceptions"][0]["details"]["justification"]["reason"] == "pilot");
  REQUIRE(e2["approvals"].size() == 1);
  CHECK(e2["approvals"][0]["actor"] == "sec2@example.com");
  CHECK(e2["approvals"][0]["role"] == "security");
  REQUIRE(e2["actions"].size() == 1);
  CHECK(e2["actions"][0]["action"] == "token.issue");
  CHECK(e2["actions"][0]["track"] == "T");
  CHECK(e2["actions"][0]["at"] == core::formatIso(hoursAfter(kT0, 63)));

  SECTION("since limits facts and actions but not the certification state") {
    options.since = hoursAfter(kT0, 40);
    auto later = engine::exportEvidence(*f.store, *f.settings.policy, options);
    REQUIRE(later.ok());
    const json d = json::parse(later->text);
    for (const auto& p : d["persons"]) {
      if (p["key"] != "E2") continue;
      CHECK(p["attempts"].size() == 1);  // only the pass at T0+60h
      CHECK(p["completions"].empty());
      CHECK(p["certifications"].size() == 1);
    }
  }
}

TEST_CASE("The evidence export joins each person's alerts with their delivery state",
          "[unit][engine]") {
  Fixture f;
  f.population();
  auto enqueue = [&](const std::string& sink, const std::string& id, const std::string& kind,
                     const json& person, core::Instant at) {
    store::AlertOutboxRow r;
    r.sink = sink;
    r.dedup_id = id;
    r.kind = kind;
    r.severity = "warning";
    r.payload_json = json{{"id", id},
                          {"kind", kind},
                          {"title", "Access revoked"},
                          {"person", person},
                          {"rule", {{"track", "T"}}},
                          {"evidence", {{"audit_id", 7}, {"run_id", 3}}}}
                         .dump();
    r.created_at = at;
    r.next_attempt_at = at;
    REQUIRE(f.store->enqueueAlert(r).ok());
  };
  const core::Instant at = kNow - core::days(2);
  enqueue("soc", "audit-7", "revocation", json{{"key", "E2"}, {"email", "e2@example.com"}}, at);
  enqueue("pager", "audit-7", "revocation", json{{"key", "E2"}}, at);
  enqueue("mail", "reminder-E1-T-1-7d", "reminder", "E1", at);
  enqueue("soc", "audit-8", "revocation", json{{"key", "NOBODY"}}, at);
  enqueue("soc", "audit-1", "revocation", json{{"key", "E2"}}, kNow - core::days(60));  // too old
  auto rows = f.store->alertOutbox("", -1);
  REQUIRE(rows.ok());
  for (const auto& r : *rows)
    if (r.sink == "soc" && r.dedup_id == "audit-7")
      REQUIRE(f.store->markAlertDelivered(r.id, at + core::Seconds{5}).ok());

  engine::EvidenceOptions options;
  options.since = kNow - core::days(30);
  options.now = kNow;
  auto exported = engine::exportEvidence(*f.store, *f.settings.policy, options);
  REQUIRE(exported.ok());
  const json doc = json::parse(exported->text);
  std::map<std::string, json> by_key;
  for (const auto& p : doc["persons"]) by_key[p["key"]] = p;
  const json& e2 = by_key.at("E2")["alerts"];
  REQUIRE(e2.size() == 2);
  std::map<std::string, json> by_sink;
  for (const auto& a : e2) by_sink[a["source"]] = a;
  CHECK(by_sink.at("soc")["status"] == "delivered");
  CHECK(by_sink.at("soc")["action"] == "revocation");
  CHECK(by_sink.at("soc")["external_id"] == "audit-7");
  CHECK(by_sink.at("soc")["track"] == "T");
  CHECK(by_sink.at("soc")["details"]["delivered_at"] == core::formatIso(at + core::Seconds{5}));
  CHECK(by_sink.at("soc")["details"]["evidence"]["audit_id"] == 7);
  CHECK(by_sink.at("pager")["status"] == "pending");
  REQUIRE(by_key.at("E1")["alerts"].size() == 1);
  CHECK(by_key.at("E1")["alerts"][0]["action"] == "reminder");
  CHECK(by_key.at("E3")["alerts"].empty());

  options.format = engine::EvidenceFormat::Csv;
  auto csv = engine::exportEvidence(*f.store, *f.settings.policy, options);
  REQUIRE(csv.ok());
  CHECK(csv->text.find("alert,E2,T,") != std::string::npos);
}

TEST_CASE("The evidence CSV has one documented row per record with a record_type", "[unit][engine]") {
  Fixture f;
  f.population();
  engine::EvidenceOptions options;
  options.since = kNow - core::days(30);
  options.now = kNow;
  options.format = engine::EvidenceFormat::Csv;
  options.person = "E2";
  auto exported = engine::exportEvidence(*f.store, *f.settings.policy, options);
  REQUIRE(exported.ok());
  const auto rows = parseCsv(exported->text);
  REQUIRE(rows.size() >= 3);
  CHECK(rows[0] == engine::kEvidenceColumns);
  auto col = [&](const std::string& name) {
    return static_cast<std::size_t>(
        std::find(engine::kEvidenceColumns.begin(), engine::kEvidenceColumns.end(), name) -
        engine::kEvidenceColumns.begin());
  };
  for (const auto& row : rows) REQUIRE(row.size() == engine::kEvidenceColumns.size());
  CHECK(rows[1][col("record_type")] == "audit_head");
  CHECK(rows[1][col("audit_id")] == std::to_string(f.store->auditHead()->id));
  std::map<std::string, int> types;
  for (std::size_t i = 2; i < rows.size(); ++i) {
    ++types[rows[i][col("record_type")]];
    CHECK(rows[i][col("person")] == "E2");
  }
  CHECK(types == std::map<std::string, int>{{"person", 1}, {"completion", 1}, {"attempt", 2},
                                            {"certification", 1}, {"exception", 1},
                                            {"approval", 1}, {"action", 1}});
  bool failed_attempt = false;
  for (const auto& row : rows) {
    if (row[col("record_type")] != "attempt" || row[col("attempt")] != "1") continue;
    failed_attempt = true;
    CHECK(row[col("score")] == "50");
    CHECK(row[col("max_score")] == "100");
    CHECK(row[col("pct")] == "50");
    CHECK(row[col("lms_pass")] == "false");
    CHECK(row[col("status")] == "failed");
    CHECK(row[col("source")] == "lms");
    CHECK(row[col("external_id")] == "q-4");
    CHECK(row[col("at")] == core::formatIso(hoursAfter(kT0, 31)));
  }
  CHECK(failed_attempt);
  CHECK(exported->persons == 1);

  SECTION("an unknown person is NotFound") {
    options.person = "nobody";
    auto none = engine::exportEvidence(*f.store, *f.settings.policy, options);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().kind == core::ErrorKind::NotFound);
  }
}

TEST_CASE("A configuration change is audited once per change with the files that changed",
          "[unit][engine]") {
  Fixture f;
  const fs::path cfg = f.dir / "certgate.yaml";
  const fs::path tracks = f.dir / "tracks.yaml";
  std::ofstream(cfg) << "store: {path: x}\n";
  std::ofstream(tracks) << "tracks: []\n";
  f.settings.config_file = cfg.string();
  f.settings.track_files = {tracks.string()};

  auto first = engine::recordConfigChange(*f.store, f.settings, kNow, "certgate");
  REQUIRE(first.ok());
  CHECK(first->recorded);
  CHECK(first->added.size() == 2);
  auto again = engine::recordConfigChange(*f.store, f.settings, kNow, "certgate");
  REQUIRE(again.ok());
  CHECK_FALSE(again->recorded);

  std::ofstream(tracks) << "tracks: [{id: X}]\n";
  auto changed = engine::recordConfigChange(*f.store, f.settings, kNow + core::Seconds{60}, "certgate");
  REQUIRE(changed.ok());
  CHECK(changed->recorded);
  CHECK(changed->changed == std::vector<std::string>{tracks.string()});
  CHECK(changed->added.empty());
  auto last = f.store->lastAudit("config.change");
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  const json d = json::parse((*last)->details_json);
  CHECK(d["changed"] == json::array({tracks.string()}));
  CHECK(d["first"] == false);
  CHECK((*last)->subject == "configuration");
  CHECK((*last)->id == changed->audit_id);

  f.settings.track_files.clear();
  auto removed = engine::recordConfigChange(*f.store, f.settings, kNow + core::Seconds{120}, "certgate");
  REQUIRE(removed.ok());
  CHECK(removed->removed == std::vector<std::string>{tracks.string()});
  CHECK_FALSE(f.store->verifyAudit()->broken.has_value());
}
