// Revocation alerts end to end: `certgate sync` against the Okta loopback fake
// (tests/fakes/okta) removes people whose certification expired, and security's webhook
// receiver (Standard Webhooks, signature checked) gets one alert per removal carrying the
// person, the group, the rule and the evidence. `certgate alerts list` never shows a secret.
#include <httplib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cli/cli.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "fakes/okta/okta_fake.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSlackUrlSecret = "XXSLACKTOKENXX";

struct Run {
  int code;
  std::string out, err;
};

// Security's webhook receiver: keeps every alert whose signature verifies.
struct Receiver {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<json> alerts;
  int bad_signatures = 0;
  int status = 200;

  Receiver() {
    server.Post("/alerts", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      if (status != 200) {
        res.status = status;
        return;
      }
      auto key = certgate::connectors::webhook::decodeSecret(kSigningSecret);
      const std::string id = req.get_header_value("webhook-id");
      const std::int64_t ts = std::stoll(req.get_header_value("webhook-timestamp"));
      if (!key || !certgate::connectors::webhook::verify(*key, id, ts, req.body,
                                                          req.get_header_value("webhook-signature"))) {
        ++bad_signatures;
        res.status = 401;
        return;
      }
      json j = json::parse(req.body);
      j["webhook_id"] = id;
      alerts.push_back(j);
      res.status = 200;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  std::vector<json> all() {
    std::lock_guard<std::mutex> lock(mu);
    return alerts;
  }
};

struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / ("certgate-ita-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir / "exports");
  }
  ~Scratch() { fs::remove_all(dir); }
  void write(const std::string& rel, const std::string& text, bool secret = false) const {
    std::ofstream(dir / rel) << text;
    if (secret) fs::permissions(dir / rel, fs::perms::owner_read | fs::perms::owner_write);
  }
  Run certgate(std::vector<std::string> args, const std::string& now) const {
    std::vector<std::string> all{"certgate", "--config", (dir / "certgate.yaml").string(), "--now",
                                 now};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    std::ostringstream out, err;
    certgate::ports::FixedClock clock(*certgate::core::parseIso(now));
    const int code =
        certgate::cli::run(static_cast<int>(argv.size()), argv.data(), out, err, clock);
    return {code, out.str(), err.str()};
  }
};

#define REQUIRE_RUN(run, expected)                                                  \
  do {                                                                              \
    const Run& r_ = (run);                                                          \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err); \
    REQUIRE(r_.code == (expected));                                                 \
  } while (0)

}  // namespace

TEST_CASE("a sync that revokes sends security one signed revocation alert per removal",
          "[integration][alerts]") {
  namespace ok = certgate::testing::okta;
  const auto keys = ok::generateRsaKeyPair();
  ok::OktaFake okta;
  okta.setPublicKey(keys.public_pem);
  okta.start();
  for (int i = 1; i <= 3; ++i) {
    ok::FakeUser u;
    u.login = "p" + std::to_string(i) + "@example.org";
    u.email = u.login;
    u.employee_number = "E" + std::to_string(i);
    okta.addUser(u);
  }
  ok::FakeGroup g;
  g.name = "AI Users";
  okta.addGroup(g);
  Receiver rx;

  Scratch s;
  s.write("okta-key.pem", keys.private_pem, true);
  s.write("alert-secret", std::string(kSigningSecret) + "\n", true);
  // A second sink whose URL is a secret and whose receiver is not there: its alerts wait.
  s.write("slack-url", "http://127.0.0.1:1/services/" + std::string(kSlackUrlSecret) + "\n", true);
  s.write("tracks.yaml",
          "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
          "    recertifyDays: 365\n");
  s.write("items.yaml", "items:\n  - { lms_item: course-1, module: M1 }\n");
  s.write("grants.yaml", "grants:\n  - track: AI_BASICS\n    groups:\n      - { group: AI Users }\n");
  s.write("roster.csv",
          "Employee ID,Work Email,Name\nE1,p1@example.org,Person 1\nE2,p2@example.org,Person 2\n"
          "E3,p3@example.org,Person 3\n");
  // E1 and E2 certified in January 2026 (expiring January 2027), E3 in November 2026.
  s.write("exports/a.csv",
          "Employee ID,Course ID,Completed\nE1,course-1,2026-01-10T09:00:00Z\n"
          "E2,course-1,2026-01-10T09:00:00Z\nE3,course-1,2026-11-20T09:00:00Z\n");
  s.write("certgate.yaml",
          "store: { path: certgate.db }\ntracks: [tracks.yaml]\n"
          "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
          "identity:\n  roster:\n    path: roster.csv\n"
          "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
          "sources:\n  - name: lms\n    kind: csv\n    min_record_ratio: 0\n    directory: exports\n"
          "    columns: { employee_id: Employee ID, item: Course ID, completed_at: Completed }\n"
          "directories:\n  - name: okta\n    kind: okta\n    url: " +
              okta.url() +
              "\n    auth: oauth\n    client_id: 0oacertgatefake00000\n"
              "    private_key: { file: okta-key.pem }\n"
              "    match: [{ person: employee_id, attribute: employee_id }]\n"
              "alerts:\n"
              "  sinks:\n"
              "    - name: soc\n      kind: webhook\n      url: http://127.0.0.1:" +
              std::to_string(rx.port) +
              "/alerts\n      signing_secret: { file: alert-secret }\n"
              "    - name: chat\n      kind: slack\n      url: { file: slack-url }\n"
              "      timeout: 2s\n"
              "  routes:\n"
              "    - { events: [revocation, plan.held], sinks: [soc] }\n"
              "    - { events: [revocation], sinks: [chat] }\n"
              "  deliver_budget: 5s\n");

  // 2026-12-01: everybody is certified.
  auto first = s.certgate({"sync", "--once"}, "2026-12-01T12:00:00Z");
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("3 to add, 0 to remove") != std::string::npos);
  CHECK(rx.all().empty());  // grants are not alerts

  // 2027-06-01: E1 and E2 expired on 2027-01-10; E3 stays.
  auto second = s.certgate({"sync", "--once"}, "2027-06-01T12:00:00Z");
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("0 to add, 2 to remove") != std::string::npos);
  const auto alerts = rx.all();
  CHECK(rx.bad_signatures == 0);
  REQUIRE(alerts.size() == 2);
  std::set<std::string> people;
  for (const auto& a : alerts) {
    CHECK(a["type"] == "certgate.alert.revocation");
    const json& d = a["data"];
    CHECK(a["webhook_id"] == d["id"]);
    CHECK(d["kind"] == "revocation");
    people.insert(d["person"]["key"].get<std::string>());
    CHECK(d["person"]["email"].get<std::string>().find("@example.org") != std::string::npos);
    CHECK(d["access"]["directory"] == "okta");
    CHECK(d["access"]["group"] == "AI Users");
    CHECK(d["rule"]["track"] == "AI_BASICS");
    CHECK(d["rule"]["reason"] == "expired");
    CHECK(d["evidence"]["audit_id"].is_number());
    CHECK(d["evidence"]["plan_id"].is_string());
    CHECK(d["evidence"]["run_id"].is_number());
    CHECK(d["enforcement"]["verified"] == true);
    CHECK(d["occurred_at"] == "2027-06-01T12:00:00Z");
  }
  CHECK(people == std::set<std::string>{"E1", "E2"});
  // The chat receiver is down: the sync still succeeded, with a warning that names the sink only.
  CHECK(second.err.find("alert sink chat") != std::string::npos);
  CHECK(second.err.find(kSlackUrlSecret) == std::string::npos);

  // The outbox: delivered to soc, waiting for chat; no secret anywhere.
  auto listed = s.certgate({"alerts", "list", "--format", "json"}, "2027-06-01T12:01:00Z");
  REQUIRE_RUN(listed, 0);
  CHECK(listed.out.find(kSlackUrlSecret) == std::string::npos);
  CHECK(listed.out.find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == std::string::npos);
  const json list = json::parse(listed.out);
  int delivered = 0, pending = 0;
  for (const auto& row : list["alerts"]) {
    if (row["sink"] == "soc") delivered += row["state"] == "delivered" ? 1 : 0;
    if (row["sink"] == "chat") pending += row["state"] == "pending" ? 1 : 0;
  }
  CHECK(delivered == 2);
  CHECK(pending == 2);
  auto table = s.certgate({"alerts", "list"}, "2027-06-01T12:01:00Z");
  REQUIRE_RUN(table, 0);
  CHECK(table.out.find(kSlackUrlSecret) == std::string::npos);
  CHECK(table.out.find("chat") != std::string::npos);

  // A test alert to the live sink arrives; to an unknown one, a clear error.
  auto test = s.certgate({"alerts", "test", "soc"}, "2027-06-01T12:02:00Z");
  REQUIRE_RUN(test, 0);
  REQUIRE(rx.all().size() == 3);
  CHECK(rx.all().back()["data"]["kind"] == "test");
  auto unknown = s.certgate({"alerts", "test", "nope"}, "2027-06-01T12:02:00Z");
  CHECK(unknown.code != 0);
  CHECK(unknown.err.find("no alert sink is named 'nope'") != std::string::npos);
  auto down = s.certgate({"alerts", "test", "chat"}, "2027-06-01T12:02:00Z");
  CHECK(down.code != 0);
  CHECK(down.err.find(kSlackUrlSecret) == std::string::npos);

  // Another sync changes nothing and sends nothing twice.
  auto third = s.certgate({"sync", "--once"}, "2027-06-01T13:00:00Z");
  REQUIRE_RUN(third, 0);
  CHECK(rx.all().size() == 3);
}
