// The whole pipeline against a real third-party SCIM 2.0 service provider: the scimmy-based peer
// (tests/peers/scim, RFC 7643/7644) on loopback, and certgate's CLI (in-process, and the real
// binary where a process must be killed). LMS exports -> rules -> plan -> apply -> groups.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli/cli.hpp"
#include "support/scim_peer.hpp"

namespace fs = std::filesystem;
using certgate::testing::ScimPeer;
using certgate::testing::ScimPeerOptions;
using Json = nlohmann::json;

extern char** environ;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";
constexpr const char* kToken = "itest-scim-token-5d1f";
constexpr const char* kGroup = "g-ai";

struct Run {
  int code;
  std::string out, err;
};

std::string employee(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "E%04d", i);
  return buf;
}
std::string email(int i) { return "person" + std::to_string(i) + "@example.org"; }

// A scratch deployment: certgate.yaml, a track, mappings, an HR roster, an export directory and
// a SCIM peer seeded with one user per person and the groups "AI Users" and "Finance".
struct Deployment {
  fs::path dir;
  int people;
  ScimPeer peer;
  std::string directory_extra;  // more keys for the directory entry, each line indented 4

  static ScimPeerOptions peerOptions(int people, std::vector<Json> faults) {
    ScimPeerOptions o;
    o.token = kToken;
    Json users = Json::array();
    for (int i = 1; i <= people; ++i)
      users.push_back({{"id", "u-" + employee(i)},
                       {"userName", email(i)},
                       {"email", email(i)},
                       {"displayName", "Person " + std::to_string(i)},
                       {"employeeNumber", employee(i)},
                       {"userType", i == 5 ? "contractor" : "employee"}});
    Json groups = Json::array({{{"id", kGroup}, {"displayName", "AI Users"}, {"members", Json::array()}},
                               {{"id", "g-fin"}, {"displayName", "Finance"}, {"members", Json::array()}}});
    o.seed = {{"users", users}, {"groups", groups}};
    o.faults = std::move(faults);
    // Plain PATCHes (no Bulk), so that faults and request counts address one kind of write.
    o.extra_args = {"--bulk", "off"};
    return o;
  }

  explicit Deployment(int n, std::vector<Json> faults = {}, std::string token = kToken)
      : people(n), peer(peerOptions(n, std::move(faults))) {
    dir = fs::temp_directory_path() / ("certgate-it-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir / "exports");
    write("tracks.yaml",
          "modules:\n  - id: M1\n"
          "tracks:\n  - id: AI_BASICS\n    modules: [M1]\n    recertifyDays: 365\n"
          "    populations: [employee]\n");
    write("items.yaml", "items:\n  - { lms_item: course-1, module: M1 }\n");
    grants("AI Users");
    std::ostringstream roster;
    roster << "Employee ID,Work Email,Name,Worker Type\n";
    for (int i = 1; i <= n; ++i)
      roster << employee(i) << "," << email(i) << ",Person " << i << ",employee\n";
    write("roster.csv", roster.str());
    write("scim-token", token + "\n");
    fs::permissions(dir / "scim-token", fs::perms::owner_read | fs::perms::owner_write);
    config(3, 10);
  }
  ~Deployment() { fs::remove_all(dir); }

  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(dir / rel) << text;
  }
  void grants(const std::string& group) const {
    write("grants.yaml", "grants:\n  - track: AI_BASICS\n    groups:\n      - { directory: scim, group: " +
                             group + " }\n");
  }
  void config(int max_removals, double pct) const {
    std::ostringstream c;
    c << "store: { path: certgate.db }\n"
         "tracks: [tracks.yaml]\n"
         "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
         "identity:\n  keys: [employee_id, email]\n"
         "  roster:\n    path: roster.csv\n"
         "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name, population: Worker Type }\n"
         "sources:\n  - name: lms\n    kind: csv\n    min_record_ratio: 0\n    directory: exports\n"
         "    columns: { employee_id: Employee ID, item: Course ID, completed_at: Completed }\n"
         "directories:\n  - name: scim\n    kind: scim\n"
      << "    url: " << peer.base_url() << "\n"
      << "    token: { file: scim-token }\n"
         "    max_members_per_patch: 10\n"
      << directory_extra <<
         "    match:\n      - { person: employee_id, attribute: employee_id }\n"
         "limits: { max_removals: "
      << max_removals << ", max_removal_pct: " << pct << " }\n";
    write("certgate.yaml", c.str());
  }
  // One export file certifying people [from, to] on `date`.
  void exportCompletions(const std::string& name, int from, int to, const std::string& date) const {
    std::ostringstream e;
    e << "Employee ID,Course ID,Completed\n";
    for (int i = from; i <= to; ++i) e << employee(i) << ",course-1," << date << "\n";
    write("exports/" + name, e.str());
  }
  std::string configPath() const { return (dir / "certgate.yaml").string(); }

  Run certgate(std::vector<std::string> args, const std::string& now = kNow) const {
    std::vector<std::string> all{"certgate", "--config", configPath(), "--now", now};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    std::ostringstream out, err;
    certgate::ports::FixedClock clock(*certgate::core::parseIso(now));
    const int code =
        certgate::cli::run(static_cast<int>(argv.size()), argv.data(), out, err, clock);
    return {code, out.str(), err.str()};
  }

  std::set<std::string> members(const std::string& group = kGroup) const {
    std::set<std::string> out;
    const Json g = peer.group(group);  // kept alive for the loop
    for (const auto& m : g["members"]) out.insert(m["value"].get<std::string>());
    return out;
  }
  // Requests that changed a group (PATCH or Bulk), from the peer's own log.
  std::vector<Json> writes() const {
    std::vector<Json> out;
    for (const auto& r : peer.requests()) {
      const std::string m = r["method"];
      if (m == "PATCH" || m == "POST") out.push_back(r);
    }
    return out;
  }
};

std::set<std::string> userIds(int from, int to) {
  std::set<std::string> out;
  for (int i = from; i <= to; ++i) out.insert("u-" + employee(i));
  return out;
}

// Evaluates `run` once (it may be a certgate invocation) and requires its exit code.
#define REQUIRE_RUN(run, expected)                                                       \
  do {                                                                                   \
    const Run& r_ = (run);                                                               \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err);      \
    REQUIRE(r_.code == (expected));                                                      \
  } while (0)

}  // namespace

TEST_CASE("sync grants the certified people's group in the SCIM server and a second sync plans "
          "nothing", "[integration][scim]") {
  Deployment d(12);
  d.exportCompletions("2026-11-01.csv", 1, 8, "2026-11-01T09:00:00Z");

  auto plan = d.certgate({"plan", "--format", "json"});
  REQUIRE_RUN(plan, 0);
  auto j = Json::parse(plan.out);
  CHECK(j["actions"].size() == 0);  // nothing fetched yet: nobody is certified
  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("8 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds(1, 8));
  CHECK(d.members("g-fin").empty());  // a group no mapping names is never touched
  // Batches: 8 adds at 10 members per PATCH is one write.
  CHECK(d.writes().size() == 1);

  d.peer.clearRequests();
  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);
  CHECK(d.writes().empty());

  // The dry run prints and stores the plan but changes nothing.
  d.exportCompletions("2026-11-20.csv", 9, 10, "2026-11-20T09:00:00Z");
  REQUIRE_RUN(d.certgate({"ingest"}), 0);
  auto dry = d.certgate({"plan"});
  REQUIRE_RUN(dry, 0);
  CHECK(dry.out.find("2 to add") != std::string::npos);
  CHECK(d.members() == userIds(1, 8));
  // `apply` applies exactly that stored plan.
  auto applied = d.certgate({"apply"});
  REQUIRE_RUN(applied, 0);
  CHECK(applied.out.find("2 added") != std::string::npos);
  CHECK(d.members() == userIds(1, 10));
}

TEST_CASE("an empty or truncated export removes nobody and marks the source stale, while "
          "expiry by date still removes", "[integration][scim]") {
  Deployment d(6);
  d.exportCompletions("2026-01-01.csv", 1, 3, "2026-01-10T09:00:00Z");  // expire 2027-01-10
  d.exportCompletions("2026-11-01.csv", 4, 6, "2025-11-01T09:00:00Z");  // expire 2026-11-01
  // As of 2026-10-01 everybody is certified.
  REQUIRE_RUN(d.certgate({"sync", "--once"}, "2026-10-01T00:00:00Z"), 0);
  REQUIRE(d.members() == userIds(1, 6));

  // The next export is empty (header only), and another is cut off in the middle of a row.
  d.write("exports/2026-11-24.csv", "Employee ID,Course ID,Completed\n");
  d.write("exports/2026-11-25.csv", "Employee ID,Course ID,Completed\nE0001,course-1,2026-11-2");
  d.peer.clearRequests();
  auto r = d.certgate({"sync", "--once"});
  REQUIRE_RUN(r, 5);  // done, but a source is incomplete
  CHECK(r.out.find("INCOMPLETE") != std::string::npos);
  CHECK(r.out.find("sources incomplete") != std::string::npos);
  // People 4-6 expired on 2026-11-01: a removal by date, which goes ahead even now.
  // People 1-3 keep their access: nothing is removed because data is missing.
  CHECK(d.members() == userIds(1, 3));
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("NO") != std::string::npos);
}

TEST_CASE("a removal over the blast-radius threshold is held and applies exactly once after "
          "approval", "[integration][scim]") {
  Deployment d(10);
  d.exportCompletions("2025.csv", 1, 10, "2025-06-01T09:00:00Z");
  REQUIRE_RUN(d.certgate({"sync", "--once"}, "2025-12-01T00:00:00Z"), 0);
  REQUIRE(d.members() == userIds(1, 10));

  // A year later all ten have expired: 10 removals > max(3, 10% of 10).
  d.peer.clearRequests();
  auto held = d.certgate({"sync", "--once", "--format", "json"});
  REQUIRE_RUN(held, 7);
  auto j = Json::parse(held.out);
  CHECK(j["plan"]["state"] == "held");
  CHECK(j["plan"]["brake"]["removals"] == 10);
  CHECK(j["plan"]["brake"]["threshold"] == 3);
  CHECK(j["apply"]["withheld"] == 10);
  CHECK(d.members() == userIds(1, 10));
  CHECK(d.writes().empty());
  const std::string id = j["plan"]["id"];

  auto list = d.certgate({"plans", "list"});
  CHECK(list.out.find(id) != std::string::npos);
  CHECK(list.out.find("held") != std::string::npos);
  auto show = d.certgate({"plans", "show", id});
  REQUIRE_RUN(show, 0);
  CHECK(show.out.find("HELD by the blast-radius brake") != std::string::npos);

  // Applying before approval still removes nothing.
  auto early = d.certgate({"apply", id});
  CHECK(early.code == 7);
  CHECK(d.members() == userIds(1, 10));

  REQUIRE_RUN(d.certgate({"plans", "approve", id, "--by", "iam-oncall", "--reason",
                          "annual expiry wave, confirmed with PeopleOps"}),
              0);
  auto applied = d.certgate({"apply", id});
  REQUIRE_RUN(applied, 0);
  CHECK(applied.out.find("10 removed") != std::string::npos);
  CHECK(d.members().empty());
  const auto writes = d.writes().size();

  auto again = d.certgate({"apply", id});
  CHECK(again.code != 0);
  CHECK(again.err.find("is applied") != std::string::npos);
  CHECK(d.writes().size() == writes);
  auto resync = d.certgate({"sync", "--once"});
  REQUIRE_RUN(resync, 0);
  CHECK(resync.out.find("nothing to change") != std::string::npos);
}

TEST_CASE("a group outside the allow-list is refused and left alone", "[integration][scim]") {
  Deployment d(4);
  d.exportCompletions("a.csv", 1, 4, "2026-11-01T09:00:00Z");
  REQUIRE_RUN(d.certgate({"sync", "--once"}), 0);
  REQUIRE(d.members() == userIds(1, 4));
  // The mapping moves to the Finance group: the old group is no longer allow-listed. certgate
  // neither removes its members (not its business any more) nor keeps planning for it.
  d.grants("Finance");
  d.peer.clearRequests();
  auto r = d.certgate({"sync", "--once"});
  REQUIRE_RUN(r, 0);
  CHECK(r.out.find("outside the allow-list") != std::string::npos);
  CHECK(d.members() == userIds(1, 4));           // untouched
  CHECK(d.members("g-fin") == userIds(1, 4));    // the newly mapped group is granted
  for (const auto& w : d.writes())
    CHECK(w["path"].get<std::string>().find(kGroup) == std::string::npos);
}

TEST_CASE("a 429 storm slows certgate down without failing the run", "[integration][scim]") {
  // The peer answers the first three membership writes with 429 and Retry-After: 1.
  Deployment d(25, {{{"method", "PATCH"}, {"path", "^/Groups/"}, {"status", 429},
                     {"retryAfter", 1}, {"times", 3}}});
  d.exportCompletions("a.csv", 1, 25, "2026-11-01T09:00:00Z");
  const auto start = std::chrono::steady_clock::now();
  auto r = d.certgate({"sync", "--once"});
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_RUN(r, 0);
  CHECK(d.members() == userIds(1, 25));
  CHECK(took >= std::chrono::seconds(3));  // it waited as told, three times
  int throttled = 0;
  for (const auto& w : d.writes()) throttled += w["status"] == 429 ? 1 : 0;
  CHECK(throttled == 3);
}

TEST_CASE("a 401 quarantines the directory: nothing is written and the run says so",
          "[integration][scim]") {
  Deployment d(5, {}, "a-wrong-token-value");
  d.exportCompletions("a.csv", 1, 5, "2026-11-01T09:00:00Z");
  auto r = d.certgate({"sync", "--once"});
  CHECK(r.code == 1);
  CHECK(r.err.find("QUARANTINED") != std::string::npos);
  CHECK(r.err.find("401") != std::string::npos);
  CHECK(r.err.find("a-wrong-token-value") == std::string::npos);
  CHECK(r.out.find("not changed: scim/AI Users") != std::string::npos);
  CHECK(d.writes().empty());
  CHECK(d.members().empty());
  // Exactly one refused request (discovery): certgate did not hammer the directory.
  std::size_t refused = 0;
  for (const auto& q : d.peer.requests()) refused += q["status"] == 401 ? 1 : 0;
  CHECK(refused == 1);
}

TEST_CASE("a kill during apply followed by a restart converges with no duplicate calls",
          "[integration][scim]") {
  // Every group PATCH is held for 1.5 s before the peer applies it; certgate is killed while
  // the first one is in flight. The peer still applies it, like a server that received the
  // request just before the client died.
  Deployment d(30, {{{"method", "PATCH"}, {"path", "^/Groups/"}, {"delayMs", 1500}, {"times", 0}}});
  d.exportCompletions("a.csv", 1, 30, "2026-11-01T09:00:00Z");
  REQUIRE_RUN(d.certgate({"ingest"}), 0);

  std::vector<std::string> args{CERTGATE_BIN, "--config", d.configPath(), "--now", kNow, "sync",
                                "--once", "--no-fetch"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  REQUIRE(posix_spawn(&pid, CERTGATE_BIN, &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  // Wait until the first PATCH has reached the peer, then kill certgate hard.
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    for (const auto& q : d.peer.requests()) seen = seen || q["method"] == "PATCH";
  }
  REQUIRE(seen);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));  // the held PATCH lands

  // Restart: recovery reads the group, records what happened, and the sync finishes the rest.
  d.peer.setFaults(Json::array());
  auto r = d.certgate({"sync", "--once", "--no-fetch"});
  REQUIRE_RUN(r, 0);
  CHECK(r.out.find("recovered") != std::string::npos);
  CHECK(d.members() == userIds(1, 30));

  // No member was sent twice in an add.
  std::map<std::string, int> adds;
  for (const auto& w : d.writes()) {
    if (w["status"].get<int>() >= 300 || !w["body"].is_object()) continue;
    for (const auto& op : w["body"].value("Operations", Json::array()))
      if (op.value("op", "") == "add")
        for (const auto& m : op.value("value", Json::array()))
          ++adds[m.value("value", "")];
  }
  CHECK(adds.size() == 30);
  for (const auto& [user, n] : adds) {
    INFO(user);
    CHECK(n == 1);
  }
  auto again = d.certgate({"sync", "--once", "--no-fetch"});
  REQUIRE_RUN(again, 0);
  CHECK(again.out.find("nothing to change") != std::string::npos);
}

TEST_CASE("a directory roster makes people who never started known, with their population",
          "[integration][scim]") {
  Deployment d(6);
  // The HR roster lists people 1-4 only; the directory knows all six.
  std::ostringstream roster;
  roster << "Employee ID,Work Email,Name,Worker Type\n";
  for (int i = 1; i <= 4; ++i) roster << employee(i) << "," << email(i) << ",Person " << i << ",employee\n";
  d.write("roster.csv", roster.str());
  d.directory_extra =
      "    roster: true\n    roster_filter: active eq true\n"
      "    population_from_directory: true\n    population_attribute: userType\n";
  d.config(3, 10);
  d.exportCompletions("a.csv", 1, 2, "2026-11-01T09:00:00Z");
  auto r = d.certgate({"sync", "--once"});
  REQUIRE_RUN(r, 0);
  CHECK(r.out.find("6 in-scope user(s) read as roster") != std::string::npos);
  auto status = d.certgate({"status", "--all", "--format", "csv"});
  REQUIRE_RUN(status, 0);
  INFO(status.out);
  // Person 6 is only in the directory: known, not started. Person 5's population comes from
  // the directory (contractor), so the employee track does not apply.
  CHECK(status.out.find("E0006,") != std::string::npos);
  CHECK(status.out.find("not_started") != std::string::npos);
  bool five_out_of_scope = false;
  std::istringstream lines(status.out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("E0005,", 0) == 0)
      five_out_of_scope = line.find("contractor") != std::string::npos &&
                          line.find("out_of_scope") != std::string::npos;
  CHECK(five_out_of_scope);
  CHECK(d.members() == userIds(1, 2));
}

TEST_CASE("validate-config --online connects and resolves every mapped group",
          "[integration][scim]") {
  Deployment d(2);
  auto ok = d.certgate({"validate-config", "--online"});
  REQUIRE_RUN(ok, 0);
  CHECK(ok.out.find("online scim: connected; AI Users -> g-ai") != std::string::npos);
  d.grants("No Such Group");
  auto missing = d.certgate({"validate-config", "--online", "--format", "json"});
  CHECK(missing.code == 1);
  const auto j = Json::parse(missing.out);
  CHECK(j["ok"] == false);
  CHECK(j["online"][0]["groups"][0]["error"].get<std::string>().find("No Such Group") !=
        std::string::npos);
  CHECK(d.writes().empty());
}
