// The whole pipeline from an xAPI LRS to a real SCIM 2.0 server: the xapi source reads the
// loopback LRS fake (tests/fakes/xapi, xAPI 1.0.3), certgate's CLI evaluates the track and
// writes the group in the scimmy peer (tests/peers/scim), configured as an operator would.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "fakes/xapi/xapi_fake.hpp"
#include "support/scim_peer.hpp"

namespace fs = std::filesystem;
using certgate::testing::ScimPeer;
using certgate::testing::ScimPeerOptions;
using certgate::testing::xapi::XapiFake;
using Json = nlohmann::json;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";
constexpr const char* kToken = "itest-xapi-scim-token-77c1";
constexpr const char* kGroup = "g-ai";
constexpr const char* kBasics = "https://lms.example.com/xapi/activities/ai-basics";

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
  XapiFake lrs;

  explicit Deployment(int people) : peer(peerOptions(people)) {
    lrs.start();
    dir = fs::temp_directory_path() / ("certgate-itx-" + std::to_string(::getpid()) + "-" +
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
    write("lrs-password", "lrs-secret\n", true);
    std::ostringstream c;
    c << "store: { path: certgate.db }\n"
         "tracks: [tracks.yaml]\n"
         "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
         "identity:\n  keys: [employee_id, email]\n"
         "  roster:\n    path: roster.csv\n"
         "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
         "sources:\n  - name: lrs\n    kind: xapi\n"
      << "    endpoint: " << lrs.endpoint() << "\n"
      << "    username: lrs-key\n"
         "    password: { file: lrs-password }\n"
         "    verbs: [completed, passed]\n"
         "    limit: 1\n"
         "    overlap: 0s\n"
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
  void complete(int i) {
    lrs.add({{"actor", {{"objectType", "Agent"}, {"name", "Person " + std::to_string(i)},
                        {"mbox", "mailto:" + email(i)}}},
             {"verb", {{"id", "http://adlnet.gov/expapi/verbs/completed"}, {"display", {{"en-US", "completed"}}}}},
             {"object", {{"id", kBasics}, {"objectType", "Activity"}}},
             {"result", {{"completion", true}}},
             {"timestamp", "2026-11-20T09:00:00Z"}});
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

TEST_CASE("sync grants the group to people whose completions the LRS holds, and an LRS page "
          "that fails removes nobody", "[integration][xapi][scim]") {
  Deployment d(6);
  for (int i : {1, 2, 3, 4}) d.complete(i);

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  for (const auto& r : d.lrs.requests()) CHECK(r.header("X-Experience-API-Version") == "1.0.3");

  // Nothing new: nothing to change, and the cursor kept the LRS from sending old statements.
  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);

  // Two more completions; the LRS answers the second page with a cut-off body. Person 5 (page 1)
  // is granted, the source is incomplete, and nobody loses access.
  d.complete(5);
  d.complete(6);
  const int before = static_cast<int>(d.lrs.statementRequests());
  d.lrs.truncatePage(before + 2);
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5}));
  auto sources = d.certgate({"sources"});
  CHECK(sources.out.find("completed page 2") != std::string::npos);

  // The next sync reads from the old cursor again and completes.
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5, 6}));
}
