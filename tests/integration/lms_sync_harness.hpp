#pragma once
// The deployment the LMS end-to-end tests share: a scimmy SCIM 2.0 peer holding people 1..N
// (ids u-E0001 ..., employee numbers E0001 ...) and the group "AI Users" (g-ai), a roster of the
// same people, one track AI_BASICS granting that group, and certgate's CLI run in-process against
// a certgate.yaml whose `sources:` block the test supplies. Each test adds its LMS fake.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "support/scim_peer.hpp"

namespace certgate::testing::lms_sync {

namespace fs = std::filesystem;
using Json = nlohmann::json;

inline constexpr const char* kNow = "2026-11-25T12:00:00Z";
inline constexpr const char* kGroup = "g-ai";

struct Run {
  int code;
  std::string out, err;
};

inline std::string employee(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "E%04d", i);
  return buf;
}
inline std::string email(int i) { return "person" + std::to_string(i) + "@example.org"; }

inline ScimPeerOptions peerOptions(const std::string& token, int people) {
  ScimPeerOptions o;
  o.token = token;
  Json users = Json::array();
  for (int i = 1; i <= people; ++i)
    users.push_back({{"id", "u-" + employee(i)}, {"userName", email(i)}, {"email", email(i)},
                     {"displayName", "Person " + std::to_string(i)}, {"employeeNumber", employee(i)}});
  o.seed = {{"users", users},
            {"groups", Json::array({{{"id", kGroup}, {"displayName", "AI Users"}, {"members", Json::array()}}})}};
  o.extra_args = {"--bulk", "off"};
  return o;
}

inline std::set<std::string> userIds(std::initializer_list<int> people) {
  std::set<std::string> out;
  for (int i : people) out.insert("u-" + employee(i));
  return out;
}

class Deployment {
 public:
  // `tracks` and `items` are the YAML of tracks.yaml and items.yaml.
  Deployment(const std::string& scim_token, int people, const std::string& tracks,
             const std::string& items)
      : peer_(peerOptions(scim_token, people)), scim_token_(scim_token) {
    dir_ = fs::temp_directory_path() / ("certgate-lms-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write("tracks.yaml", tracks);
    write("items.yaml", items);
    write("grants.yaml",
          "grants:\n  - track: AI_BASICS\n    groups:\n      - { directory: scim, group: AI Users }\n");
    std::ostringstream roster;
    roster << "Employee ID,Work Email,Name\n";
    for (int i = 1; i <= people; ++i) roster << employee(i) << "," << email(i) << ",Person " << i << "\n";
    write("roster.csv", roster.str());
    write("scim-token", scim_token + "\n", true);
  }
  ~Deployment() { fs::remove_all(dir_); }
  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;

  // Writes certgate.yaml with `sources` (the whole `sources:` block) and the SCIM directory.
  void configure(const std::string& sources) const {
    std::ostringstream c;
    c << "store: { path: certgate.db }\n"
         "tracks: [tracks.yaml]\n"
         "mappings: { items: [items.yaml], grants: [grants.yaml] }\n"
         "identity:\n  keys: [employee_id, email]\n"
         "  roster:\n    path: roster.csv\n"
         "    columns: { employee_id: Employee ID, email: Work Email, display_name: Name }\n"
      << sources
      << "directories:\n  - name: scim\n    kind: scim\n"
      << "    url: " << peer_.base_url() << "\n"
      << "    token: { file: scim-token }\n"
         "    match:\n      - { person: employee_id, attribute: employee_id }\n"
         "limits: { max_removals: 3, max_removal_pct: 10 }\n";
    write("certgate.yaml", c.str());
  }
  void write(const std::string& rel, const std::string& text, bool secret = false) const {
    std::ofstream(dir_ / rel) << text;
    if (secret) fs::permissions(dir_ / rel, fs::perms::owner_read | fs::perms::owner_write);
  }
  Run certgate(std::vector<std::string> args) const {
    std::vector<std::string> all{"certgate", "--config", (dir_ / "certgate.yaml").string(), "--now", kNow};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<const char*> argv;
    for (const auto& a : all) argv.push_back(a.c_str());
    std::ostringstream out, err;
    ports::FixedClock clock(*core::parseIso(kNow));
    const int code = cli::run(static_cast<int>(argv.size()), argv.data(), out, err, clock);
    return {code, out.str(), err.str()};
  }
  std::set<std::string> members() const {
    std::set<std::string> out;
    const Json g = peer_.group(kGroup);
    for (const auto& m : g["members"]) out.insert(m["value"].get<std::string>());
    return out;
  }
  const ScimPeer& peer() const { return peer_; }

 private:
  fs::path dir_;
  ScimPeer peer_;
  std::string scim_token_;
};

}  // namespace certgate::testing::lms_sync

// Evaluates `run` once (it may be a certgate invocation) and requires its exit code.
#define REQUIRE_RUN(run, expected)                                                  \
  do {                                                                              \
    const auto& r_ = (run);                                                         \
    INFO("exit " << r_.code << "\nstdout:\n" << r_.out << "\nstderr:\n" << r_.err); \
    REQUIRE(r_.code == (expected));                                                 \
  } while (0)
