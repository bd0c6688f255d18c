// Gateway tokens through the whole pipeline: LMS export -> rules -> plan -> the real LiteLLM
// connector against the LiteLLM loopback fake (tests/fakes/litellm, which names the LiteLLM
// documents it follows), with secrets delivered by a Standard Webhooks-signed POST to a loopback
// receiver. Also: crashes at every issuing step of the real binary, and a canary secret
// searched for in everything certgate wrote.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "store/store.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "fakes/litellm/litellm_fake.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";
constexpr const char* kSigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Run {
  int code;
  std::string out, err;
};

#define REQUIRE_RUN(run, expected)                                                  \
  do {                                                                              \
    const Run& r_ = (run);                                                          \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err); \
    REQUIRE(r_.code == (expected));                                                 \
  } while (0)

// A loopback HTTPS-less receiver standing in for a secrets vault: keeps every delivery and
// checks its Standard Webhooks signature.
struct Receiver {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<json> deliveries;
  std::vector<std::string> alert_bodies;  // raw, as received (alerts: the webhook sink)
  int bad_signatures = 0;
  int fail_next = 0;

  Receiver() {
    server.Post("/alerts", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      alert_bodies.push_back(req.body);
      res.status = 204;
    });
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      if (fail_next > 0) {
        --fail_next;
        res.status = 503;
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
      deliveries.push_back(j);
      res.status = 204;
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
    return deliveries;
  }
  std::vector<std::string> alerts() {
    std::lock_guard<std::mutex> lock(mu);
    return alert_bodies;
  }
};

struct Scratch {
  fs::path dir;
  certgate::testing::litellm::LiteLlmFake fake;
  Receiver receiver;

  static certgate::testing::litellm::LiteLlmFakeOptions fakeOptions() {
    certgate::testing::litellm::LiteLlmFakeOptions o;
    o.clock_skew = -600;  // revocations look ten minutes old: past the 60 s cache window
    return o;
  }
  Scratch() : fake(fakeOptions()) {
    dir = fs::temp_directory_path() / ("certgate-itt-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir / "exports");
    fake.start();
  }
  ~Scratch() {
    fake.stop();
    fs::remove_all(dir);
  }
  void write(const std::string& rel, const std::string& text, bool secret = false) const {
    std::ofstream(dir / rel) << text;
    if (secret) fs::permissions(dir / rel, fs::perms::owner_read | fs::perms::owner_write);
  }
  // People E1..En on the roster, the first `certified` of them certified on 2026-11-01.
  void scenario(int n, int certified, const std::string& delivery) const {
    write("tracks.yaml",
          "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
          "    recertifyDays: 365\n");
    write("items.yaml", "items:\n  - { lms_item: course-1, module: M1 }\n");
    write("grants.yaml",
          "grants:\n  - track: AI_BASICS\n    tokens:\n"
          "      - { gateway: litellm, scope: genai, models: [gpt-4o-mini], max_budget: 25,\n"
          "          budget_duration: 30d, delivery: " +
              delivery + " }\n");
    std::ostringstream roster, exp;
    roster << "Employee ID,Work Email,Name\n";
    exp << "Employee ID,Course ID,Completed\n";
    for (int i = 1; i <= n; ++i) {
      roster << "E" << i << ",p" << i << "@example.org,Person " << i << "\n";
      if (i <= certified) exp << "E" << i << ",course-1,2026-11-01T09:00:00Z\n";
    }
    write("roster.csv", roster.str());
    write("exports/a.csv", exp.str());
    write("master.key", fake.masterKey() + "\n", true);
    write("signing.key", std::string(kSigningSecret) + "\n", true);
    write("certgate.yaml",
          "store: { path: certgate.db }\ntracks: [tracks.yaml]\n"
          "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
          "identity:\n  roster:\n    path: roster.csv\n"
          "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
          "sources:\n  - name: lms\n    kind: csv\n    min_record_ratio: 0\n    directory: exports\n"
          "    columns: { employee_id: Employee ID, item: Course ID, completed_at: Completed }\n"
          "gateways:\n  - name: litellm\n    kind: litellm\n    url: " +
              fake.url() +
              "\n    master_key: { file: master.key }\n"
              "delivery:\n  webhook:\n    url: http://127.0.0.1:" +
              std::to_string(receiver.port) +
              "/hook\n    signing_secret: { file: signing.key }\n"
              "alerts:\n  sinks:\n    - { name: soc, kind: webhook, url: 'http://127.0.0.1:" +
              std::to_string(receiver.port) +
              "/alerts', signing_secret: { file: signing.key } }\n"
              "logging: { level: debug }\n");
  }
  Run certgate(std::vector<std::string> args, const std::string& now = kNow) const {
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
  // The real binary, with CERTGATE_TEST_CRASH_AT set; returns its exit status.
  int crashAt(const std::string& point, const std::string& now = kNow) const {
    std::vector<std::string> args{CERTGATE_BIN, "--config", (dir / "certgate.yaml").string(),
                                  "--now",      now,        "sync",
                                  "--once"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("CERTGATE_TEST_CRASH_AT=", 0) != 0) env_strings.push_back(*e);
    env_strings.push_back("CERTGATE_TEST_CRASH_AT=" + point);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, CERTGATE_BIN, &actions, nullptr, argv.data(), envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  json tokens(bool all = false) const {
    std::vector<std::string> args{"tokens", "list", "--format", "json"};
    if (all) args.push_back("--all");
    Run r = certgate(args);
    REQUIRE_RUN(r, 0);
    return json::parse(r.out);
  }
  std::set<std::string> liveFakeAliases() const {
    std::set<std::string> out;
    for (const auto& k : fake.keys())
      if (!k.blocked && k.key_alias.rfind("certgate:", 0) == 0) out.insert(k.key_alias);
    return out;
  }
  std::set<std::string> liveLedgerAliases() const {
    std::set<std::string> out;
    for (const auto& t : tokens()) out.insert(t["alias"].get<std::string>());
    return out;
  }
  std::string bytesOf(const fs::path& p) const {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

}  // namespace

TEST_CASE("tokens follow certification on LiteLLM — secrets reach only the vault — revocations "
          "are verified",
          "[integration][tokens]") {
  Scratch s;
  s.scenario(3, 2, "webhook");

  Run first = s.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("tokens: 2 to issue, 0 to revoke") != std::string::npos);
  CHECK(first.out.find("tokens: 2 issued, 0 revoked") != std::string::npos);

  // LiteLLM holds two keys, one per certified person, under certgate's aliases.
  const auto aliases = s.liveFakeAliases();
  REQUIRE(aliases.size() == 2);
  CHECK(aliases.count("certgate:E1:AI_BASICS:genai:c0:r0") == 1);
  CHECK(aliases.count("certgate:E2:AI_BASICS:genai:c0:r0") == 1);
  auto gen = s.fake.requests("POST", "/key/generate");
  REQUIRE(gen.size() == 2);
  json body = json::parse(gen[0].body);
  CHECK(body["models"] == json::array({"gpt-4o-mini"}));
  CHECK(body["max_budget"] == 25);
  CHECK(body["budget_duration"] == "30d");

  // Each secret went to the vault once, signed; nowhere else.
  const auto deliveries = s.receiver.all();
  REQUIRE(deliveries.size() == 2);
  CHECK(s.receiver.bad_signatures == 0);
  std::vector<std::string> secrets;
  for (const auto& d : deliveries) {
    CHECK(d["type"] == "certgate.token.issued");
    const std::string secret = d["data"]["token"].get<std::string>();
    CHECK(secret.rfind("sk-", 0) == 0);
    CHECK(certgate::testing::litellm::LiteLlmFake::hashOf(secret) ==
          d["data"]["token_id"].get<std::string>());
    secrets.push_back(secret);
  }
  CHECK(secrets[0] != secrets[1]);

  json live = s.tokens();
  REQUIRE(live.size() == 2);
  for (const auto& t : live) {
    CHECK(t["live"] == true);
    CHECK(t["gateway"] == "litellm");
    CHECK(t["scope"] == "genai");
    CHECK(t["expires_at"].get<std::string>().rfind("2027-11-01", 0) == 0);  // capped at access end
  }

  // A second sync changes nothing.
  Run second = s.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("tokens: 0 to issue, 0 to revoke") != std::string::npos);
  CHECK(s.fake.requests("POST", "/key/generate").size() == 2);

  // A year later both certifications have expired: both keys are revoked at once, pending
  // enforcement for LiteLLM's 60 s key cache, then verified.
  const std::string later = "2027-11-20T12:00:00Z";
  Run revoke = s.certgate({"sync", "--once"}, later);
  REQUIRE_RUN(revoke, 0);
  CHECK(revoke.out.find("tokens: 0 issued, 2 revoked") != std::string::npos);
  CHECK(revoke.out.find("2 revocation(s) pending enforcement") != std::string::npos);
  CHECK(s.liveFakeAliases().empty());
  Run verify = s.certgate({"sync", "--once"}, "2027-11-20T12:02:00Z");
  REQUIRE_RUN(verify, 0);
  CHECK(verify.out.find("revocations verified: 2 enforced") != std::string::npos);
  json all = s.tokens(true);
  REQUIRE(all.size() == 2);
  for (const auto& t : all) {
    CHECK(t["live"] == false);
    CHECK(t["enforcement"] == "enforced");
    CHECK(t["revoke_reason"].get<std::string>().find("expired") != std::string::npos);
  }

  // The canary: no secret in anything certgate wrote (database, WAL, logs at debug level, the
  // alert payloads security received: two revocations and their verification, at least).
  const auto alert_bodies = s.receiver.alerts();
  std::size_t revocation_alerts = 0;
  for (const auto& b : alert_bodies)
    if (b.find("\"certgate.alert.revocation\"") != std::string::npos) ++revocation_alerts;
  CHECK(revocation_alerts == 2);
  std::string written = first.out + first.err + second.out + second.err + revoke.out +
                        revoke.err + verify.out + verify.err;
  for (const auto& b : alert_bodies) written += b;
  for (const auto& entry : fs::directory_iterator(s.dir))
    if (entry.is_regular_file() && entry.path().filename().string().rfind("certgate.db", 0) == 0)
      written += s.bytesOf(entry.path());
  for (const auto& secret : secrets) CHECK(written.find(secret) == std::string::npos);
  CHECK(written.find(s.fake.masterKey()) == std::string::npos);
}

TEST_CASE("a failed secret delivery leaves no live key — the next sync delivers a new one",
          "[integration][tokens]") {
  Scratch s;
  s.scenario(1, 1, "webhook");
  s.receiver.fail_next = 10;  // more than the delivery's retries
  Run r = s.certgate({"sync", "--once"});
  CHECK(r.code != 0);
  CHECK(r.out.find("secret delivery (webhook) failed") != std::string::npos);
  CHECK(s.liveFakeAliases().empty());
  CHECK(s.tokens().empty());
  s.receiver.fail_next = 0;
  REQUIRE_RUN(s.certgate({"sync", "--once"}), 0);
  REQUIRE(s.receiver.all().size() == 1);
  CHECK(s.liveFakeAliases() == std::set<std::string>{"certgate:E1:AI_BASICS:genai:c0:r1"});
  CHECK(s.liveLedgerAliases() == s.liveFakeAliases());
}

TEST_CASE("kill/restart cycles during issuing: LiteLLM's live keys equal the ledger, one per "
          "grant",
          "[integration][tokens][crash]") {
  const std::string delivery = GENERATE(std::string("none"), std::string("webhook"));
  Scratch s;
  s.scenario(6, 6, delivery);
  // Each run dies at the next step boundary, part-way through the six issues.
  std::vector<std::string> points{"token.issue.after_call", "token.issue.after_record",
                                  "token.issue.before_call", "token.issue.after_call",
                                  "token.issue.after_record"};
  if (delivery == "webhook") points.push_back("token.issue.after_delivery");
  for (const auto& point : points) {
    const int status = s.crashAt(point);
    INFO("crash point " << point << ", delivery " << delivery << ", live keys "
                        << s.liveFakeAliases().size());
    CHECK(status == 86);  // each run still had tokens to issue when it died
  }
  Run last = s.certgate({"sync", "--once"});
  REQUIRE_RUN(last, 0);
  Run again = s.certgate({"sync", "--once"});
  REQUIRE_RUN(again, 0);
  CHECK(again.out.find("tokens: 0 to issue, 0 to revoke") != std::string::npos);

  const auto fake_live = s.liveFakeAliases();
  CHECK(fake_live.size() == 6);
  CHECK(s.liveLedgerAliases() == fake_live);
  std::set<std::string> people;
  for (const auto& alias : fake_live) {
    const auto person = alias.substr(0, alias.find(":AI_BASICS"));
    CHECK(people.insert(person).second);  // one live key per grant
  }
  if (delivery == "webhook") {
    // Every live key's secret reached the vault.
    std::set<std::string> delivered;
    for (const auto& d : s.receiver.all()) delivered.insert(d["data"]["token_id"].get<std::string>());
    for (const auto& t : s.tokens()) CHECK(delivered.count(t["token_id"].get<std::string>()) == 1);
  }
}

TEST_CASE("an operator revokes a leaked token at once — audited — and the next sync issues a new "
          "one", "[integration][tokens]") {
  Scratch s;
  s.scenario(1, 1, "webhook");
  REQUIRE_RUN(s.certgate({"sync", "--once"}), 0);
  const std::string alias = "certgate:E1:AI_BASICS:genai:c0:r0";
  REQUIRE(s.liveFakeAliases() == std::set<std::string>{alias});

  Run revoke = s.certgate({"tokens", "revoke", alias, "--by", "sec-oncall", "--reason",
                           "key pasted in a public channel"});
  REQUIRE_RUN(revoke, 0);
  CHECK(revoke.out.find("1 revoked") != std::string::npos);
  CHECK(s.liveFakeAliases().empty());  // deleted at LiteLLM
  json all = s.tokens(true);
  REQUIRE(all.size() == 1);
  CHECK(all[0]["live"] == false);
  CHECK(all[0]["revoke_reason"] == "operator");
  CHECK(all[0]["enforcement"] == "pending");  // LiteLLM's key cache window

  // Who and why are in the audit trail; the revocation itself is a token.revoke like any other.
  {
    auto st = certgate::store::Store::open((s.dir / "certgate.db").string());
    REQUIRE(st.ok());
    auto rows = (*st)->audit(100);
    REQUIRE(rows.ok());
    int requested = 0, revoked = 0;
    for (const auto& a : *rows) {
      if (a.action == "token.revoke.requested") {
        ++requested;
        CHECK(a.actor == "sec-oncall");
        CHECK(a.details_json.find("key pasted in a public channel") != std::string::npos);
      }
      if (a.action == "token.revoke" && a.details_json.find("\"operator\"") != std::string::npos)
        ++revoked;
    }
    CHECK(requested == 1);
    CHECK(revoked == 1);
  }
  Run again = s.certgate({"tokens", "revoke", alias, "--by", "sec-oncall", "--reason", "twice"});
  REQUIRE_RUN(again, 0);
  CHECK(again.out.find("revoked already") != std::string::npos);
  Run unknown = s.certgate({"tokens", "revoke", "certgate:nobody", "--by", "x", "--reason", "y"});
  REQUIRE_RUN(unknown, 6);

  // Still certified: the next sync issues a new token with a new secret.
  REQUIRE_RUN(s.certgate({"sync", "--once"}), 0);
  CHECK(s.liveFakeAliases() == std::set<std::string>{"certgate:E1:AI_BASICS:genai:c0:r1"});
  CHECK(s.receiver.all().size() == 2);
}
