// The whole pipeline against the Okta and Microsoft Graph loopback fakes (tests/fakes/okta,
// tests/fakes/graph; each names the vendor documents it follows): LMS export -> rules -> plan ->
// apply through the real connectors, configured in certgate.yaml as an operator would.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "fakes/graph/graph_fake.hpp"
#include "fakes/okta/okta_fake.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* kNow = "2026-11-25T12:00:00Z";

struct Run {
  int code;
  std::string out, err;
};

struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / ("certgate-itf-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir);
    fs::create_directories(dir / "exports");
  }
  ~Scratch() { fs::remove_all(dir); }
  void write(const std::string& rel, const std::string& text, bool secret = false) const {
    std::ofstream(dir / rel) << text;
    if (secret) fs::permissions(dir / rel, fs::perms::owner_read | fs::perms::owner_write);
  }
  // People E1..En on the roster, the first `certified` of them certified on 2026-11-01.
  void scenario(int n, int certified, const std::string& directory_block) const {
    write("tracks.yaml",
          "modules:\n  - id: M1\ntracks:\n  - id: AI_BASICS\n    modules: [M1]\n"
          "    recertifyDays: 365\n");
    write("items.yaml", "items:\n  - { lms_item: course-1, module: M1 }\n");
    write("grants.yaml",
          "grants:\n  - track: AI_BASICS\n    groups:\n      - { group: AI Users }\n");
    std::ostringstream roster, exp;
    roster << "Employee ID,Work Email,Name\n";
    exp << "Employee ID,Course ID,Completed\n";
    for (int i = 1; i <= n; ++i) {
      roster << "E" << i << ",p" << i << "@example.org,Person " << i << "\n";
      if (i <= certified) exp << "E" << i << ",course-1,2026-11-01T09:00:00Z\n";
    }
    write("roster.csv", roster.str());
    write("exports/a.csv", exp.str());
    write("certgate.yaml",
          "store: { path: certgate.db }\ntracks: [tracks.yaml]\n"
          "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
          "identity:\n  roster:\n    path: roster.csv\n"
          "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
          "sources:\n  - name: lms\n    kind: csv\n    min_record_ratio: 0\n    directory: exports\n"
          "    columns: { employee_id: Employee ID, item: Course ID, completed_at: Completed }\n"
          "directories:\n" +
              directory_block);
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
};

#define REQUIRE_RUN(run, expected)                                                  \
  do {                                                                              \
    const Run& r_ = (run);                                                          \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err); \
    REQUIRE(r_.code == (expected));                                                 \
  } while (0)

std::string guid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

}  // namespace

TEST_CASE("sync against the Okta fake: private_key_jwt, one PUT per change, then nothing",
          "[integration][okta]") {
  namespace ok = certgate::testing::okta;
  const auto keys = ok::generateRsaKeyPair();
  ok::OktaFake okta;
  okta.setPublicKey(keys.public_pem);
  okta.start();
  std::vector<std::string> ids;
  for (int i = 1; i <= 6; ++i) {
    ok::FakeUser u;
    u.login = "p" + std::to_string(i) + "@example.org";
    u.email = u.login;
    u.employee_number = "E" + std::to_string(i);
    ids.push_back(okta.addUser(u));
  }
  ok::FakeGroup g;
  g.name = "AI Users";
  const std::string gid = okta.addGroup(g);
  // Someone added person 6 by hand: managed mode leaves them alone.
  okta.addMember(gid, ids[5]);

  Scratch s;
  s.write("okta-key.pem", keys.private_pem, true);
  s.scenario(6, 4,
             "  - name: okta\n    kind: okta\n    url: " + okta.url() +
                 "\n    auth: oauth\n    client_id: 0oacertgatefake00000\n"
                 "    private_key: { file: okta-key.pem }\n"
                 "    match: [{ person: employee_id, attribute: employee_id }]\n");
  auto r = s.certgate({"sync", "--once"});
  REQUIRE_RUN(r, 0);
  CHECK(r.out.find("4 to add, 0 to remove") != std::string::npos);
  for (int i = 0; i < 4; ++i) CHECK(okta.isMember(gid, ids[static_cast<std::size_t>(i)]));
  CHECK_FALSE(okta.isMember(gid, ids[4]));
  CHECK(okta.isMember(gid, ids[5]));
  std::size_t puts = 0;
  for (const auto& q : okta.requests()) puts += q.method == "PUT" ? 1 : 0;
  CHECK(puts == 4);  // Okta's minimum: one request per change

  okta.clearRequests();
  auto again = s.certgate({"sync", "--once"});
  REQUIRE_RUN(again, 0);
  CHECK(again.out.find("nothing to change") != std::string::npos);
  for (const auto& q : okta.requests()) {
    CHECK(q.method != "PUT");  // reads and a token request only
    CHECK(q.method != "DELETE");
  }
}

TEST_CASE("sync against the Graph fake: $batch of 20-member PATCHes, removals only via $ref",
          "[integration][graph]") {
  certgate::testing::GraphFake graph;
  graph.start();
  for (int i = 1; i <= 50; ++i) {
    certgate::testing::GraphUser u;
    u.id = guid(i);
    u.user_principal_name = "p" + std::to_string(i) + "@example.org";
    u.mail = u.user_principal_name;
    u.employee_id = "E" + std::to_string(i);
    graph.addUser(u);
  }
  certgate::testing::GraphGroup g;
  g.id = guid(900);
  g.display_name = "AI Users";
  graph.addGroup(g);

  Scratch s;
  s.write("graph-secret", graph.options().client_secret + "\n", true);
  s.scenario(50, 45,
             "  - name: entra\n    kind: graph\n    url: " + graph.baseUrl() +
                 "\n    tenant: " + graph.options().tenant +
                 "\n    client_id: " + graph.options().client_id +
                 "\n    client_secret: { file: graph-secret }\n    token_url: " +
                 graph.tokenUrl() +
                 "\n    match: [{ person: employee_id, attribute: employee_id }]\n");
  auto r = s.certgate({"sync", "--once"});
  REQUIRE_RUN(r, 0);
  CHECK(r.out.find("45 to add") != std::string::npos);
  CHECK(graph.memberIds(g.id).size() == 45);
  std::size_t batches = 0;
  for (const auto& q : graph.requests())
    batches += (!q.in_batch && q.method == "POST" && q.path.find("$batch") != std::string::npos) ? 1 : 0;
  CHECK(batches == 1);  // 45 members: one $batch of three PATCHes

  // A year and a half later nobody is certified: 45 removals > the brake (25): held, and
  // removed once approved, every one through DELETE .../members/{id}/$ref.
  const std::string later = "2028-06-01T00:00:00Z";
  auto held = s.certgate({"sync", "--once", "--no-fetch", "--format", "json"}, later);
  REQUIRE_RUN(held, 7);
  const auto j = nlohmann::json::parse(held.out);
  const std::string id = j["plan"]["id"];
  CHECK(graph.memberIds(g.id).size() == 45);
  REQUIRE_RUN(s.certgate({"plans", "approve", id, "--by", "iam", "--reason", "expiry wave"}, later), 0);
  auto applied = s.certgate({"apply", id}, later);
  REQUIRE_RUN(applied, 0);
  CHECK(applied.out.find("45 removed") != std::string::npos);
  CHECK(graph.memberIds(g.id).empty());
  CHECK(graph.unsafeDeleteCount() == 0);  // never DELETE .../members/{id} without /$ref
  CHECK(graph.deletedObjects().empty());
  for (int i = 1; i <= 50; ++i) CHECK(graph.userExists(guid(i)));
  std::size_t refs = 0;
  for (const auto& q : graph.requests())
    if (q.method == "DELETE") {
      CHECK(q.path.size() > 5);
      CHECK(q.path.substr(q.path.size() - 5) == "/$ref");
      ++refs;
    }
  CHECK(refs == 45);
}
