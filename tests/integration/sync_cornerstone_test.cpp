// The whole pipeline from Cornerstone's Reporting API to a real SCIM 2.0 server: the cornerstone
// source reads the loopback Reporting API fake (tests/fakes/cornerstone), certgate's CLI
// evaluates the track and writes the group in the scimmy peer (tests/peers/scim), configured as
// an operator would.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "fakes/cornerstone/cornerstone_fake.hpp"
#include "support/scim_peer.hpp"

namespace fs = std::filesystem;
using certgate::testing::ScimPeer;
using certgate::testing::ScimPeerOptions;
using certgate::testing::cornerstone::CornerstoneFake;
using Json = nlohmann::json;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";
constexpr const char* kToken = "itest-cornerstone-scim-token-91b0";
constexpr const char* kGroup = "g-ai";
constexpr const char* kBasics = "0f3c2a51-7d4e-4b8a-9c1e-5a6b7c8d9e01";

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
  CornerstoneFake csod;

  explicit Deployment(int people) : peer(peerOptions(people)) {
    csod.start();
    for (int i = 1; i <= people; ++i)
      csod.addUser({{"user_id", 100 + i}, {"user_ref", employee(i)}, {"user_email", email(i)}});
    dir = fs::temp_directory_path() / ("certgate-itc-" + std::to_string(::getpid()) + "-" +
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
    write("csod-secret", "csod-secret\n", true);
    std::ostringstream c;
    c << "store: { path: certgate.db }\n"
         "tracks: [tracks.yaml]\n"
         "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
         "identity:\n  keys: [employee_id, email]\n"
         "  roster:\n    path: roster.csv\n"
         "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
         "sources:\n  - name: csod\n    kind: cornerstone\n"
      << "    base_url: " << csod.url() << "\n"
      << "    client_id: csod-client\n"
         "    client_secret: { file: csod-secret }\n"
         "    page_size: 1\n"
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
  void complete(int i, const std::string& touched, const std::string& status = "Completed") {
    csod.addTranscript({{"transc_user_id", 100 + i}, {"transc_object_id", kBasics}, {"reg_num", 1},
                        {"user_lo_status", status}, {"user_lo_comp_dt", touched},
                        {"user_lo_score", nullptr}, {"user_lo_num_attempts", 1}, {"user_lo_pass", true},
                        {"is_removed", false}, {"is_archive", 0}, {"_last_touched_dt_utc", touched}});
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

TEST_CASE("sync grants the group to people whose transcripts Cornerstone holds, and a 500 on "
          "page 3 removes nobody", "[integration][cornerstone][scim]") {
  Deployment d(6);
  for (int i : {1, 2, 3, 4}) d.complete(i, "2026-11-20T09:00:0" + std::to_string(i) + "Z");
  d.complete(5, "2026-11-20T09:00:05Z", "In Progress");

  auto first = d.certgate({"sync", "--once"});
  REQUIRE_RUN(first, 0);
  CHECK(first.out.find("4 to add, 0 to remove") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  CHECK(d.csod.tokensIssued() == 1);

  // Nothing new: nothing to change; the filter starts an hour before the last row touched.
  auto second = d.certgate({"sync", "--once"});
  REQUIRE_RUN(second, 0);
  CHECK(second.out.find("nothing to change") != std::string::npos);
  bool filtered = false;
  for (const auto& r : d.csod.requests())
    if (r.param("$filter") == "_last_touched_dt_utc ge 2026-11-20T08:00:05Z") filtered = true;
  CHECK(filtered);

  // Persons 5 and 6 complete; transcript page 3 answers 500 on every attempt (Retry-After 0, so
  // the retries do not wait). Each page holds one row; pages 1 and 2 are the same as in the last
  // fetch (already stored, so no user lookup follows them): view requests T1 T2 T3. The source
  // is incomplete (stale) and nobody loses access.
  d.complete(5, "2026-11-24T10:00:00Z");
  d.complete(6, "2026-11-24T10:00:01Z");
  d.csod.failRequests(static_cast<int>(d.csod.viewRequests()) + 3, 4, 500, 0);
  auto partial = d.certgate({"sync", "--once"});
  REQUIRE_RUN(partial, 5);
  CHECK(partial.out.find("INCOMPLETE") != std::string::npos);
  CHECK(d.members() == userIds({1, 2, 3, 4}));
  auto sources = d.certgate({"sources"});
  INFO(sources.out);
  CHECK(sources.out.find("transcript page 3") != std::string::npos);

  // The next sync reads from the stored cursor again and completes.
  auto healed = d.certgate({"sync", "--once"});
  REQUIRE_RUN(healed, 0);
  CHECK(d.members() == userIds({1, 2, 3, 4, 5, 6}));
}
