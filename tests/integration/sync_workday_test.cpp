// The whole pipeline from a Workday custom report to a real SCIM 2.0 server: the workday source
// reads the loopback RaaS fake (tests/fakes/workday), certgate's CLI evaluates the track and
// writes the group in the scimmy peer (tests/peers/scim), configured as an operator would.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "fakes/workday/workday_fake.hpp"
#include "support/scim_peer.hpp"

namespace fs = std::filesystem;
using certgate::testing::ScimPeer;
using certgate::testing::ScimPeerOptions;
using certgate::testing::workday::WorkdayFake;
using Json = nlohmann::json;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";
constexpr const char* kToken = "itest-workday-scim-token-4e2a";
constexpr const char* kGroup = "g-ai";
constexpr const char* kBasics = "AI_BASICS_101";

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

ScimPeerOptions peerOptions(int people) {
  ScimPeerOptions o;
  o.token = kToken;
  Json users = Json::array();
  for (int i = 1; i <= people; ++i)
    users.push_back({{"id", "u-" + employee(i)}, {"userName", email(i)}, {"email", email(i)},
                     {"displayName", "Person " + std::to_string(i)}, {"employeeNumber", employee(i)}});
  o.seed = {{"users", users},
            {"groups", Json::array({{{"id", kGroup}, {"displayName", "AI Users"}, {"members", Json::array()}}})}};
  o.extra_args = {"--bulk", "off"};
  return o;
}

struct Deployment {
  fs::path dir;
  ScimPeer peer;
  WorkdayFake wd;

  explicit Deployment(int people) : peer(peerOptions(people)) {
    wd.start();
    dir = fs::temp_directory_path() / ("certgate-itw-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir);
    write("tracks.yaml",
          "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n    recertifyDays: 365\n");
    write("items.yaml", std::string("items:\n  - { lms_item: \"") + kBasics + "\", module: M1 }\n");
    write("grants.yaml",
          "grants:\n  - track: AI_BASICS\n    groups:\n      - { directory: scim, group: AI Users }\n");
    std::ostringstream roster;
    roster << "Employee ID,Work Email,Name\n";
    for (int i = 1; i <= people; ++i) roster << employee(i) << "," << email(i) << ",Person " << i << "\n";
    write("roster.csv", roster.str());
    write("scim-token", std::string(kToken) + "\n", true);
    write("isu-password", "isu-secret\n", true);
    std::ostringstream c;
    c << "store: { path: certgate.db }\n"
         "tracks: [tracks.yaml]\n"
         "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
         "identity:\n  keys: [employee_id, email]\n"
         "  roster:\n    path: roster.csv\n"
         "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
         "sources:\n  - name: workday\n    kind: workday\n"
      << "    url: " << wd.reportUrl() << "\n"
      << "    username: ISU_certgate\n"
         "    password: { file: isu-password }\n"
         "    fields: { worker_id: Employee_ID, course_id: Learning_Content_ID,\n"
         "              completed_at: Completion_Date, status: Completion_Status }\n"
         "    from_prompt: Completed_From\n"
         "    to_prompt: Completed_To\n"
         "    start: 2026-01-01\n"
         "directories:\n  - name: scim\n    kind: scim\n"
      << "    url: " << peer.base_url() << "\n"
      << "    token: { file: scim-token }\n"
         "    match:\n      - { person: employee_id, attribute: employee_id }\n"
         "limits: { max_removals: 3, max_removal_pct: 10 }\n";
    write("certgate.yaml", c.str());
  }
  ~Deployment() { fs::remove_all(dir); }

  void write(const std::string& rel, const std::string& text, bool secret = false) const {
    std::ofstream(dir / rel) << text;
    if (secret) fs::permissions(dir / rel, fs::perms::owner_read | fs::perms::owner_write);
  }
  void complete(int i, const std::string& status = "Successfully Completed",
                const std::string& date = "2026-11-20-08:00") {
    wd.addRow({{"Employee_ID", employee(i)}, {"Worker", "Person " + std::to_string(i)},
               {"Learning_Content_ID", kBasics}, {"Completion_Date", date},
               {"Completion_Status", status}});
  }
  Run certgate(std::vector<std::string> args) const {
    std::vector<std::string> all{"certgate", "--config", (dir / "certgate.yaml").string(), "--now", kNow};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    std::ostringstream out, err;
    certgate::ports::FixedClock clock(*certgate::core::parseIso(kNow));
    const int code = certgate::cli::run(static_cast<int>(argv.size()), argv.data(), out, err, clock);
    return {code, out.str(), err.str()};
  }
  std::set<std::string> members() const {
    std::set<std::string> out;
    const Json g = peer.group(kGroup);
    for (const auto& m : g["members"]) out.insert(m["value"].get<std::string>());
    return out;
  }
};

std::set<std::string> userIds(std::initializer_list<int> people) {
  std::set<std::string> out;
  for (int i : people) out.insert("u-" + employee(i));
  return out;
}

#define REQUIRE_RUN(run, expected)                                                  \
  do {                                                                              \
    const Run& r_ = (run);                                                          \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err); \
    REQUIRE(r_.code == (expected));                                                 \
  } while (0)

}  // namespace

TEST_CASE("sync grants the group to people whose completions the Workday report holds, and a "
          "cut-off report removes nobody", "[integration][workday][scim]") {
  Deployment d(6);
  for (int i : {1, 2, 3, 4}) d.complete(i);
  d.complete(5, "In Progress");

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  auto reqs = d.wd.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].param("format") == "json");
  CHECK(reqs[0].param("Completed_From") == "2026-01-01");
  CHECK(reqs[0].param("Completed_To") == "2026-11-25");

  // The same report again: nothing to change; the window now starts 3 days before the last end.
  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);
  CHECK(d.wd.requests().back().param("Completed_From") == "2026-11-22");

  // Person 6 completes (inside the window); the report answers with a cut-off body. The source is incomplete (stale)
  // and nobody loses access.
  d.complete(6, "Successfully Completed", "2026-11-24-08:00");
  d.wd.truncateRequest(static_cast<int>(d.wd.reportRequests()) + 1);
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members().size() >= 4);
  for (const auto& id : userIds({1, 2, 3, 4})) CHECK(d.members().count(id) == 1);
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("cut off") != std::string::npos);

  // An HTML sign-in page instead of the report: incomplete again, nobody removed.
  d.wd.loginPageRequest(static_cast<int>(d.wd.reportRequests()) + 1);
  auto login = d.certgate({"sync", "--once"});
  REQUIRE_RUN(login, 5);
  for (const auto& id : userIds({1, 2, 3, 4})) CHECK(d.members().count(id) == 1);

  // The next sync reads the whole report and completes.
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 6}));
}
