// The CLI in-process: exit codes, error messages and machine output.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unistd.h>

#include "cli/cli.hpp"
#include "engine/run_lock.hpp"
#include "fakes/smtp/smtp_fake.hpp"

namespace fs = std::filesystem;
using certgate::ports::FixedClock;

namespace {

struct Run {
  int code;
  std::string out, err;
};

Run runCertgate(std::vector<std::string> args) {
  std::vector<const char*> argv{"certgate"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  FixedClock clock(*certgate::core::parseIso("2026-11-25T12:00:00Z"));
  const int code = certgate::cli::run(static_cast<int>(argv.size()), argv.data(), out, err, clock);
  return {code, out.str(), err.str()};
}

// A scratch copy of the example configuration, so tests never touch the repository's files.
struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / ("certgate-cli-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir / "config");
    fs::create_directories(dir / "out/demo");
    fs::copy(fs::path(CERTGATE_SOURCE_DIR) / "config/example", dir / "config/example",
             fs::copy_options::recursive);
    fs::copy(fs::path(CERTGATE_SOURCE_DIR) / "mappings", dir / "mappings", fs::copy_options::recursive);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string config() const { return (dir / "config/example/certgate.yaml").string(); }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(dir / rel) << text;
  }
};

}  // namespace

TEST_CASE("the example configuration validates with a summary", "[cli]") {
  Scratch s;
  auto r = runCertgate({"validate-config", "--config", s.config(), "--format", "json"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["ok"] == true);
  CHECK(j["tracks"].size() == 3);
  CHECK(j["sources"][0]["kind"] == "csv");
  bool regions = false;
  for (const auto& n : j["not_enforced"]) regions = regions || n["path"] == "scope.regionsAllowed";
  CHECK(regions);
}

TEST_CASE("an invalid configuration exits 3 and names file, line and key", "[cli]") {
  Scratch s;
  s.write("config/example/tracks/employees.yaml",
          "tracks:\n  - id: X\n    modules: [A]\n    recertifyDay: 365\n");
  auto r = runCertgate({"validate-config", "--config", s.config()});
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains("employees.yaml:4"));
  CHECK_THAT(r.err, Catch::Contains("recertifyDay"));
  CHECK_THAT(r.err, Catch::Contains("recertifyDays"));
}

TEST_CASE("status before any ingest says how to fix it and exits 4", "[cli]") {
  Scratch s;
  auto r = runCertgate({"status", "--config", s.config()});
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Catch::Contains("certgate ingest"));
}

TEST_CASE("ingest, status and explain agree on the example data", "[cli][integration]") {
  Scratch s;
  auto ingest = runCertgate({"ingest", "--config", s.config(), "--format", "json"});
  INFO(ingest.err);
  REQUIRE(ingest.code == 0);
  auto report = nlohmann::json::parse(ingest.out);
  CHECK(report["complete"] == true);
  CHECK(report["sources"][0]["quarantined"].get<int>() >= 3);

  auto status = runCertgate({"status", "--config", s.config(), "--format", "json", "--state", "locked_out"});
  REQUIRE(status.code == 0);
  auto j = nlohmann::json::parse(status.out);
  std::set<std::string> locked;
  for (const auto& row : j["rows"]) locked.insert(row["key"].get<std::string>() + "/" + row["track"].get<std::string>());
  CHECK(locked == std::set<std::string>{"E1005/AI_SAFETY_EMPLOYEE", "C2002/GENAI_AUTOMATION_PARTNER",
                                        "C2006/GENAI_USER_PARTNER"});

  auto explain = runCertgate({"explain", "--config", s.config(), "--format", "json", "E1009"});
  REQUIRE(explain.code == 0);
  auto e = nlohmann::json::parse(explain.out);
  nlohmann::json track;
  for (const auto& t : e["tracks"])
    if (t["track"] == "AI_SAFETY_EMPLOYEE") track = t;
  REQUIRE(track.is_object());
  CHECK(track["track"] == "AI_SAFETY_EMPLOYEE");
  CHECK(track["state"] == "certified");
  bool exact_minimum = false;
  for (const auto& ev : track["evidence"])
    if (ev["finding"] == "quiz_passed") exact_minimum = ev["value"] == 75.0 && ev["limit"] == 75.0;
  CHECK(exact_minimum);

  auto soon = runCertgate({"status", "--config", s.config(), "--format", "csv", "--expiring-within", "30d"});
  REQUIRE(soon.code == 0);
  CHECK_THAT(soon.out, Catch::Contains("E1002"));   // expires 2026-12-10
  CHECK_THAT(soon.out, Catch::Contains("E1003"));   // grace ends 2026-12-04
  CHECK_THAT(soon.out, !Catch::Contains("E1001"));  // valid until 2027-06-10
}

TEST_CASE("a truncated export marks the source incomplete: exit 5", "[cli][integration]") {
  Scratch s;
  s.write("config/example/exports/zz-truncated.csv",
          "Employee ID,Email,Full name,Course ID,Completed,Score,Max,Attempt,Status\r\n"
          "E1007,gus.gray@example.org,Gus Gray,mdl-course-110,\"20/11/2026 10:00");
  auto r = runCertgate({"ingest", "--config", s.config()});
  CHECK(r.code == 5);
  CHECK_THAT(r.out, Catch::Contains("INCOMPLETE"));
  CHECK_THAT(r.out, Catch::Contains("zz-truncated.csv"));
  // Still incomplete on the next run while the broken file is there.
  auto again = runCertgate({"ingest", "--config", s.config()});
  CHECK(again.code == 5);
}

TEST_CASE("usage errors exit 2 with a reason", "[cli]") {
  CHECK(runCertgate({"status", "--now", "yesterday"}).code == 2);
  CHECK(runCertgate({"status", "--state", "happy", "--config", "/nonexistent.yaml"}).code == 2);
  auto r = runCertgate({"frobnicate"});
  CHECK(r.code == 2);
}

TEST_CASE("connectors describe lists the csv keys", "[cli]") {
  auto r = runCertgate({"connectors", "describe", "csv"});
  REQUIRE(r.code == 0);
  for (const char* key : {"directory", "columns", "date_format", "time_zone", "score_scale", "min_rows"})
    CHECK_THAT(r.out, Catch::Contains(key));
}

namespace {

// The example data ingested, then an exception for C2005 (a contractor not certified on
// GENAI_USER_PARTNER) requested by rita; approvers as config/example/certgate.yaml names them.
struct ExceptionScratch : Scratch {
  ExceptionScratch() {
    auto ingest = runCertgate({"ingest", "--config", config()});
    INFO(ingest.err);
    REQUIRE(ingest.code == 0);
  }
  Run cg(std::vector<std::string> args, const char* now = nullptr) const {
    args.insert(args.begin(), {"--config", config()});
    if (now) args.insert(args.begin(), {"--now", now});
    return runCertgate(args);
  }
  Run request(const char* now = "2026-11-25T12:00:00Z") const {
    return cg({"exceptions", "request", "C2005", "GENAI_USER_PARTNER", "--requester",
               "rita.ross@example.org", "--days", "5", "--field", "partnerName=Acme", "--field",
               "changeTicket=CHG-1", "--field", "dataClass=internal"},
              now);
  }
  std::string stateOf(const std::string& now) const {
    auto r = cg({"exceptions", "show", "1", "--format", "json"}, now.c_str());
    INFO(r.err);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out)["state"];
  }
  std::string personState(const std::string& now) const {
    auto r = cg({"status", "--person", "C2005", "--track", "GENAI_USER_PARTNER", "--format", "json"},
                now.c_str());
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out)["rows"][0]["state"];
  }
};

}  // namespace

TEST_CASE("an exception is requested, approved by both roles, active and ends by itself", "[cli][exceptions]") {
  ExceptionScratch s;
  const std::string before = s.personState("2026-11-25T12:00:00Z");
  REQUIRE(before != "exception");
  auto req = s.request();
  INFO(req.err);
  REQUIRE(req.code == 0);
  CHECK_THAT(req.out, Catch::Contains("exception #1 requested for C2005"));
  CHECK_THAT(req.out, Catch::Contains("TeamLead Security"));
  CHECK(s.stateOf("2026-11-25T12:00:00Z") == "pending");

  auto a1 = s.cg({"exceptions", "approve", "1", "--approver", "tom.lead@example.org", "--role", "TeamLead"},
                 "2026-11-25T12:10:00Z");
  INFO(a1.err);
  REQUIRE(a1.code == 0);
  CHECK_THAT(a1.out, Catch::Contains("still needed: Security"));
  CHECK(s.personState("2026-11-25T12:15:00Z") == before);

  auto a2 = s.cg({"exceptions", "approve", "1", "--approver", "sam.sec@example.org", "--role", "Security"},
                 "2026-11-25T12:20:00Z");
  INFO(a2.err);
  REQUIRE(a2.code == 0);
  CHECK_THAT(a2.out, Catch::Contains("access for C2005 on GENAI_USER_PARTNER from 2026-11-25T12:20:00Z to 2026-11-30T12:00:00Z"));

  CHECK(s.stateOf("2026-11-25T12:20:00Z") == "active");
  CHECK(s.personState("2026-11-25T12:20:00Z") == "exception");
  CHECK(s.stateOf("2026-11-30T11:59:59Z") == "active");
  CHECK(s.personState("2026-11-30T11:59:59Z") == "exception");
  // Ends by itself: nobody did anything.
  CHECK(s.stateOf("2026-11-30T12:00:00Z") == "ended");
  CHECK(s.personState("2026-11-30T12:00:00Z") == before);

  auto show = s.cg({"exceptions", "show", "1"}, "2026-11-26T00:00:00Z");
  REQUIRE(show.code == 0);
  CHECK_THAT(show.out, Catch::Contains("state:       active"));
  CHECK_THAT(show.out, Catch::Contains("approved:    TeamLead by tom.lead@example.org"));
  CHECK_THAT(show.out, Catch::Contains("partnerName: Acme"));

  auto list = s.cg({"exceptions", "list", "--format", "json"}, "2026-11-26T00:00:00Z");
  REQUIRE(list.code == 0);
  auto j = nlohmann::json::parse(list.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["missing_roles"].empty());
  CHECK(j[0]["approvals"].size() == 2);
}

TEST_CASE("refused approvals say why and record nothing", "[cli][exceptions]") {
  ExceptionScratch s;
  REQUIRE(s.request().code == 0);
  auto self = s.cg({"exceptions", "approve", "1", "--approver", "rita.ross@example.org", "--role", "Security"});
  CHECK(self.code == 2);
  CHECK_THAT(self.err, Catch::Contains("requested exception #1 and cannot approve it"));
  auto not_holder = s.cg({"exceptions", "approve", "1", "--approver", "tom.lead@example.org", "--role", "Security"});
  CHECK(not_holder.code == 2);
  CHECK_THAT(not_holder.err, Catch::Contains("does not hold approver role Security"));
  CHECK_THAT(not_holder.err, Catch::Contains("sam.sec@example.org"));
  auto no_role = s.cg({"exceptions", "approve", "1", "--approver", "tom.lead@example.org", "--role", "Boss"});
  CHECK(no_role.code == 2);
  CHECK_THAT(no_role.err, Catch::Contains("required roles: TeamLead, Security"));
  auto missing = s.cg({"exceptions", "approve", "9", "--approver", "tom.lead@example.org", "--role", "TeamLead"});
  CHECK(missing.code == 6);
  auto show = s.cg({"exceptions", "show", "1", "--format", "json"});
  REQUIRE(show.code == 0);
  CHECK(nlohmann::json::parse(show.out)["approvals"].empty());

  auto too_long = s.cg({"exceptions", "request", "C2005", "GENAI_USER_PARTNER", "--requester", "rita.ross@example.org",
                        "--days", "6", "--field", "partnerName=Acme", "--field", "changeTicket=CHG-1",
                        "--field", "dataClass=internal"});
  CHECK(too_long.code == 2);
  CHECK_THAT(too_long.err, Catch::Contains("allows at most 5 days"));
  auto no_field = s.cg({"exceptions", "request", "C2005", "GENAI_USER_PARTNER", "--requester", "rita.ross@example.org",
                        "--days", "2", "--field", "partnerName=Acme", "--field", "dataClass=internal"});
  CHECK(no_field.code == 2);
  CHECK_THAT(no_field.err, Catch::Contains("missing justification: changeTicket"));
}

TEST_CASE("a rejected exception cannot be approved", "[cli][exceptions]") {
  ExceptionScratch s;
  REQUIRE(s.request().code == 0);
  auto rej = s.cg({"exceptions", "reject", "1", "--by", "sam.sec@example.org", "--reason", "no contract on file"});
  INFO(rej.err);
  REQUIRE(rej.code == 0);
  CHECK_THAT(rej.out, Catch::Contains("exception #1 rejected by sam.sec@example.org: no contract on file"));
  auto a = s.cg({"exceptions", "approve", "1", "--approver", "tom.lead@example.org", "--role", "TeamLead"});
  CHECK(a.code == 2);
  CHECK_THAT(a.err, Catch::Contains("was rejected by sam.sec@example.org"));
  CHECK(s.stateOf("2026-11-25T12:00:00Z") == "rejected");
  auto no_reason = s.cg({"exceptions", "reject", "1", "--by", "sam.sec@example.org"});
  CHECK(no_reason.code == 2);  // --reason is required
}

// ---------------------------------------------------------------- audit, evidence, KPI

namespace {

// Runs the real sqlite3 shell on the store file, as someone with access to the host would.
// Returns false when the shell is not installed (scripts/setup installs it).
bool sqliteShell(const Scratch& s, const std::string& sql) {
  const std::string shell = CERTGATE_SQLITE3;
  if (shell.empty()) return false;
  const fs::path script = s.dir / "tamper.sql";
  std::ofstream(script) << sql << '\n';
  const std::string cmd = shell + " " + (s.dir / "out/demo/certgate.db").string() + " < " +
                          script.string() + " > /dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return true;
}

constexpr const char kDropAuditTriggers[] =
    "DROP TRIGGER audit_no_delete; DROP TRIGGER audit_no_rewrite; DROP TRIGGER audit_hash_once;";

}  // namespace

TEST_CASE("audit verify passes on a fresh store and names the entry the sqlite3 shell changed",
          "[cli][integration]") {
  if (std::string(CERTGATE_SQLITE3).empty()) {
    WARN("the sqlite3 shell is not installed (scripts/setup installs it): audit tampering not tested");
    return;
  }
  Scratch s;
  for (int i = 0; i < 3; ++i) REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  REQUIRE(runCertgate({"attempts", "reset", "E1005", "AI_SAFETY_EMPLOYEE", "--config", s.config(),
                       "--by", "lead@example.org", "--reason", "retake"}).code == 0);
  auto ok = runCertgate({"audit", "verify", "--config", s.config(), "--format", "json"});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  const auto v = nlohmann::json::parse(ok.out);
  CHECK(v["ok"] == true);
  const std::int64_t entries = v["entries"].get<std::int64_t>();
  REQUIRE(entries >= 5);  // config.change, three ingests, attempts.reset
  const std::string anchor = v["head"]["anchor"];
  auto text = runCertgate({"audit", "verify", "--config", s.config()});
  CHECK(text.code == 0);
  CHECK_THAT(text.out, Catch::StartsWith("ok: " + std::to_string(entries) + " entries, head " +
                                         std::to_string(entries) + " "));

  SECTION("an edited row") {
    REQUIRE(sqliteShell(s, std::string(kDropAuditTriggers) +
                               "UPDATE audit SET actor = 'mallory' WHERE id = 3;"));
    auto r = runCertgate({"audit", "verify", "--config", s.config()});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("audit chain broken at entry 3 (changed)"));
    CHECK_THAT(r.err, Catch::Contains("what to do"));
  }
  SECTION("a deleted row") {
    REQUIRE(sqliteShell(s, std::string(kDropAuditTriggers) + "DELETE FROM audit WHERE id = 2;"));
    auto r = runCertgate({"audit", "verify", "--config", s.config(), "--format", "json"});
    CHECK(r.code == 1);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["broken"]["id"] == 2);
    CHECK(j["broken"]["kind"] == "missing");
  }
  SECTION("two rows swapped") {
    REQUIRE(sqliteShell(s, std::string(kDropAuditTriggers) +
                               "UPDATE audit SET id = -1 WHERE id = 2;"
                               "UPDATE audit SET id = 2 WHERE id = 4;"
                               "UPDATE audit SET id = 4 WHERE id = -1;"));
    auto r = runCertgate({"audit", "verify", "--config", s.config()});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("entry 2 (reordered)"));
    CHECK_THAT(r.err, Catch::Contains("written as row 4"));
  }
  SECTION("the newest rows deleted: caught by the anchored head") {
    REQUIRE(sqliteShell(s, std::string(kDropAuditTriggers) + "DELETE FROM audit WHERE id = " +
                               std::to_string(entries) + ";"));
    CHECK(runCertgate({"audit", "verify", "--config", s.config()}).code == 0);
    auto r = runCertgate({"audit", "verify", "--config", s.config(), "--expect-head", anchor});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("(head_missing)"));
    CHECK_THAT(r.err, Catch::Contains("truncated"));
  }
}

TEST_CASE("audit verify refuses a malformed --expect-head", "[cli]") {
  Scratch s;
  auto r = runCertgate({"audit", "verify", "--config", s.config(), "--expect-head", "12"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("ID:HASH"));
}

TEST_CASE("audit list, export evidence and report kpi read the example store", "[cli][integration]") {
  Scratch s;
  REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  auto list = runCertgate({"audit", "list", "--config", s.config(), "--format", "json",
                           "--action", "config.change"});
  REQUIRE(list.code == 0);
  const auto events = nlohmann::json::parse(list.out);
  REQUIRE(events.size() == 1);
  CHECK(events[0]["details"]["first"] == true);
  CHECK(events[0]["hash"].get<std::string>().size() == 64);

  const std::string json_out = (s.dir / "evidence.json").string();
  auto ev = runCertgate({"export", "evidence", "--config", s.config(), "--since", "365d",
                         "--format", "json", "--output", json_out});
  INFO(ev.err);
  REQUIRE(ev.code == 0);
  CHECK((fs::status(json_out).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  std::ifstream in(json_out);
  const auto doc = nlohmann::json::parse(in);
  CHECK(doc["audit_head"]["id"].get<std::int64_t>() >= 2);
  bool certified = false;
  for (const auto& p : doc["persons"])
    if (p["key"] == "E1009")
      for (const auto& c : p["certifications"])
        certified = certified || (c["track"] == "AI_SAFETY_EMPLOYEE" && c["state"] == "certified");
  CHECK(certified);
  CHECK_THAT(ev.out, Catch::Contains("audit head " + doc["audit_head"]["head"].get<std::string>()));

  const std::string csv_out = (s.dir / "evidence.csv").string();
  auto csv = runCertgate({"export", "evidence", "--config", s.config(), "--format", "csv",
                          "--output", csv_out, "--person", "E1009"});
  REQUIRE(csv.code == 0);
  std::ifstream csv_in(csv_out);
  std::string header;
  std::getline(csv_in, header);
  CHECK_THAT(header, Catch::StartsWith("record_type,person,track,at,item,status,attempt,score"));

  auto kpi = runCertgate({"report", "kpi", "--config", s.config(), "--format", "json"});
  REQUIRE(kpi.code == 0);
  const auto k = nlohmann::json::parse(kpi.out);
  CHECK(k["cert_to_access"]["target_p95_hours"] == 1.0);  // config/example/policy.yaml sloTargets
  CHECK(k["completion_within_48h"]["target_pct"] == 85.0);
  CHECK(k["exceptions_per_week"].size() >= 13);
  auto text = runCertgate({"report", "kpi", "--config", s.config()});
  CHECK(text.code == 0);
  CHECK_THAT(text.out, Catch::Contains("completion within 48 h of assignment"));
}

TEST_CASE("sync queues reminders and the digest and mails them through the SMTP server",
          "[cli][reminders]") {
  certgate::testing::SmtpFake smtp;
  smtp.start();
  Scratch s;
  // The directory is switched off: reminders do not need one.
  std::ifstream in(s.config());
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto kind = yaml.find("    kind: scim\n");
  REQUIRE(kind != std::string::npos);
  yaml.insert(kind, "    enabled: false\n");
  yaml += "alerts:\n"
          "  sinks:\n"
          "    - { name: people, kind: email, smtp_url: '" + smtp.url() +
          "', from: training@example.org, to: [peopleops@example.org] }\n"
          "  routes:\n"
          "    - { events: [expiring.digest], sinks: [people] }\n"
          "reminders:\n"
          "  sink: people\n"
          "  learn_url: https://lms.example.org/renew\n"
          "  digest: { every: daily }\n";
  s.write("config/example/certgate.yaml", yaml);
  auto first = runCertgate({"--config", s.config(), "sync"});
  INFO(first.out << first.err);
  CHECK_THAT(first.out, Catch::Contains("reminders: "));
  CHECK_THAT(first.out, Catch::Contains("digest expiring-digest-2026-11-25 queued"));
  const auto messages = smtp.messages();
  REQUIRE(messages.size() >= 2);
  bool bruno = false, digest = false;
  for (const auto& m : messages) {
    if (m.rcpt_to == std::vector<std::string>{"bruno.berg@example.org"}) {
      bruno = true;
      CHECK(m.data.find("Subject: Your Safe use of AI assistants (employees) certification expires on") !=
            std::string::npos);
      CHECK(m.data.find("https://lms.example.org/renew") != std::string::npos);
    }
    if (m.rcpt_to == std::vector<std::string>{"peopleops@example.org"}) {
      digest = true;
      CHECK(m.data.find("X-Certgate-Alert-Id: expiring-digest-2026-11-25") != std::string::npos);
      CHECK(m.data.find("Bruno Berg") != std::string::npos);
    }
  }
  CHECK(bruno);
  CHECK(digest);
  // A second run the same day sends nothing again.
  auto second = runCertgate({"--config", s.config(), "sync"});
  INFO(second.out << second.err);
  CHECK(smtp.messages().size() == messages.size());
  auto listed = runCertgate({"--config", s.config(), "alerts", "list", "--format", "json"});
  REQUIRE(listed.code == 0);
  CHECK_THAT(listed.out, Catch::Contains("reminder-E1002-AI_SAFETY_EMPLOYEE-"));
}

namespace {

fs::perms groupOther(const fs::path& p) {
  return fs::status(p).permissions() & (fs::perms::group_all | fs::perms::others_all);
}

std::string statusOf(const Scratch& s, const std::string& person) {
  auto r = runCertgate({"status", "--config", s.config(), "--person", person, "--format", "json"});
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out)["rows"][0]["state"];
}

}  // namespace

TEST_CASE("backup writes a verified 0600 copy online and restore puts it back, audited",
          "[cli][backup]") {
  Scratch s;
  REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  const std::string before = statusOf(s, "E1005");
  const auto backup = (s.dir / "backups/certgate-1.db").string();
  fs::create_directories(s.dir / "backups");

  auto b = runCertgate({"backup", "--config", s.config(), "--output", backup, "--format", "json"});
  INFO(b.err);
  REQUIRE(b.code == 0);
  const auto info = nlohmann::json::parse(b.out);
  CHECK(info["path"] == backup);
  CHECK(info["bytes"].get<std::int64_t>() == static_cast<std::int64_t>(fs::file_size(backup)));
  CHECK(groupOther(backup) == fs::perms::none);
  const std::string head = info["audit_head"];

  // A second backup to the same name is refused and leaves the first alone.
  auto again = runCertgate({"backup", "--config", s.config(), "--output", backup});
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Catch::Contains("already exists"));

  // The store moves on after the backup: an attempt reset changes E1005.
  REQUIRE(runCertgate({"attempts", "reset", "E1005", "AI_SAFETY_EMPLOYEE", "--config", s.config(),
                       "--by", "lead@example.org", "--reason", "retake"}).code == 0);
  auto moved = runCertgate({"audit", "list", "--config", s.config(), "--action", "attempts.reset",
                            "--format", "json"});
  REQUIRE(moved.code == 0);
  REQUIRE(nlohmann::json::parse(moved.out).size() == 1);

  auto r = runCertgate({"restore", "--config", s.config(), "--from", backup, "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto restored = nlohmann::json::parse(r.out);
  CHECK(restored["audit_chain_ok"] == true);
  CHECK(restored["audit_head"] == head);
  const std::string previous = restored["previous"];
  CHECK(fs::exists(previous));
  CHECK(groupOther(s.dir / "out/demo/certgate.db") == fs::perms::none);
  CHECK_FALSE(fs::exists(s.dir / "out/demo/certgate.db.restoring"));

  // The restored store is the backed-up one: no attempts.reset, the same state, and the
  // backup's head is part of its chain, followed by the store.restore event.
  auto list = runCertgate({"audit", "list", "--config", s.config(), "--format", "json"});
  REQUIRE(list.code == 0);
  const auto events = nlohmann::json::parse(list.out);
  bool reset = false;
  for (const auto& e : events) reset = reset || e["action"] == "attempts.reset";
  CHECK_FALSE(reset);
  CHECK(events.back()["action"] == "store.restore");
  CHECK(statusOf(s, "E1005") == before);
  auto verify = runCertgate({"audit", "verify", "--config", s.config(), "--expect-head", head});
  INFO(verify.err);
  CHECK(verify.code == 0);
}

TEST_CASE("restore refuses while certgate runs, and refuses a damaged or foreign file",
          "[cli][backup]") {
  Scratch s;
  REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  const auto backup = (s.dir / "good.db").string();
  REQUIRE(runCertgate({"backup", "--config", s.config(), "--output", backup}).code == 0);
  const auto live = s.dir / "out/demo/certgate.db";
  const auto live_size = fs::file_size(live);

  SECTION("the daemon holds its lock") {
    auto lock = certgate::engine::RunLock::acquire(
        certgate::engine::daemonLockPath(live.string()), "certgate daemon (test)",
        std::chrono::milliseconds{0});
    REQUIRE(lock.ok());
    auto r = runCertgate({"restore", "--config", s.config(), "--from", backup});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("the daemon is running on this store"));
    CHECK_THAT(r.err, Catch::Contains("systemctl stop certgate.service"));
  }
  SECTION("a damaged backup") {
    const auto damaged = (s.dir / "damaged.db").string();
    fs::copy_file(backup, damaged);
    {
      std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(fs::file_size(damaged) / 2));
      const std::string junk(4096, '\x5a');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto r = runCertgate({"restore", "--config", s.config(), "--from", damaged});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("damaged.db"));
  }
  SECTION("not a certgate store") {
    const auto other = (s.dir / "notes.txt").string();
    std::ofstream(other) << "not a database\n";
    auto r = runCertgate({"restore", "--config", s.config(), "--from", other});
    CHECK(r.code == 1);
  }
  SECTION("a file that does not exist") {
    auto r = runCertgate({"restore", "--config", s.config(), "--from", (s.dir / "nope.db").string()});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("no such file"));
  }
  // Whatever was refused, the live store is untouched and nothing was staged.
  CHECK(fs::file_size(live) == live_size);
  CHECK_FALSE(fs::exists(live.string() + ".restoring"));
  for (const auto& e : fs::directory_iterator(s.dir / "out/demo"))
    CHECK(e.path().filename().string().find("before-restore") == std::string::npos);
}

TEST_CASE("restore refuses a backup whose audit chain was altered, unless forced",
          "[cli][backup]") {
  if (std::string(CERTGATE_SQLITE3).empty()) {
    WARN("the sqlite3 shell is not installed (scripts/setup installs it): not tested");
    return;
  }
  Scratch s;
  REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  REQUIRE(runCertgate({"ingest", "--config", s.config()}).code == 0);
  const auto backup = (s.dir / "b.db").string();
  REQUIRE(runCertgate({"backup", "--config", s.config(), "--output", backup}).code == 0);
  const fs::path script = s.dir / "tamper.sql";
  std::ofstream(script) << kDropAuditTriggers << "UPDATE audit SET actor = 'mallory' WHERE id = 2;\n";
  const std::string cmd = std::string(CERTGATE_SQLITE3) + " " + backup + " < " + script.string() +
                          " > /dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);

  auto r = runCertgate({"restore", "--config", s.config(), "--from", backup});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("audit chain in " + backup + " is broken at entry 2"));
  CHECK_THAT(r.err, Catch::Contains("restore an older backup"));

  auto forced = runCertgate({"restore", "--config", s.config(), "--from", backup, "--force"});
  INFO(forced.err);
  REQUIRE(forced.code == 0);
  CHECK_THAT(forced.out, Catch::Contains("audit chain BROKEN: restored with --force"));
  auto list = runCertgate({"audit", "list", "--config", s.config(), "--action", "store.restore",
                           "--format", "json"});
  REQUIRE(list.code == 0);
  const auto events = nlohmann::json::parse(list.out);
  REQUIRE(events.size() == 1);
  CHECK(events[0]["details"]["forced"] == true);
  CHECK(events[0]["details"]["audit_chain_ok"] == false);
}
