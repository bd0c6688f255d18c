#pragma once
// ScimPeer: runs the SCIM 2.0 test peer (tests/peers/scim/server.js, a real service provider built
// on the npm packages scimmy and scimmy-routers) as a child process on 127.0.0.1 and a
// kernel-chosen port, for one test or one demo.
//
// Contract:
//  - The constructor starts `node server.js --port 0 --watch-stdin ...` with posix_spawnp (no
//    shell), waits until it prints "listening <port>", and throws std::runtime_error when node or
//    the peer's node_modules are missing (the message says to run scripts/setup) or when the peer
//    does not come up (the message carries its stderr). A test that builds a ScimPeer therefore
//    fails loudly instead of skipping.
//  - The destructor ends the child (SIGTERM, then SIGKILL after 2 s), reaps it and removes its
//    temporary directory. The child also exits by itself when this process dies, because it
//    watches the pipe on its standard input.
//  - The control calls (requests, setFaults, state) use the peer's /_control endpoints, which are
//    outside the SCIM base path and need no token.
// Needs cpp-httplib and nlohmann/json; CERTGATE_SOURCE_DIR (set by certgate_test) locates the
// peer unless ScimPeerOptions::source_dir is given.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace certgate::testing {

struct ScimPeerOptions {
  std::string token;                    // --token: required bearer token ("" = no auth)
  nlohmann::json seed;                  // {"users": [...], "groups": [...]}; null = none
  std::string state_file;               // --state-file (kept after the peer stops)
  std::vector<std::string> clients;     // --client ID:SECRET (OAuth 2.0 client credentials)
  std::vector<nlohmann::json> faults;   // --fault JSON, see server.js
  std::vector<std::string> extra_args;  // e.g. {"--bulk", "off", "--max-results", "50"}
  std::string source_dir;               // repository root; default CERTGATE_SOURCE_DIR
};

class ScimPeer {
 public:
  explicit ScimPeer(ScimPeerOptions options = {}) : options_(std::move(options)) { start(); }
  ~ScimPeer() { stop(); }
  ScimPeer(const ScimPeer&) = delete;
  ScimPeer& operator=(const ScimPeer&) = delete;

  int port() const { return port_; }
  // The SCIM base URL, e.g. http://127.0.0.1:41234/scim/v2
  std::string base_url() const { return root_url() + "/scim/v2"; }
  std::string root_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string token_url() const { return root_url() + "/oauth/token"; }

  // Every SCIM request the peer received, oldest first: method, path, query, headers, body, status.
  nlohmann::json requests() const { return getJson("/_control/requests"); }
  void clearRequests() const {
    httplib::Client c("127.0.0.1", port_);
    auto res = c.Delete("/_control/requests");
    if (!res || res->status != 204) throw std::runtime_error("scim peer: cannot clear the request log");
  }
  // Replaces the peer's fault list (see server.js for the fields).
  void setFaults(const nlohmann::json& faults) const {
    httplib::Client c("127.0.0.1", port_);
    auto res = c.Put("/_control/faults", faults.dump(), "application/json");
    if (!res || res->status != 204) throw std::runtime_error("scim peer: cannot set faults");
  }
  // The store as the peer holds it: {"users": [...], "groups": [...]}.
  nlohmann::json state() const { return getJson("/_control/state"); }
  nlohmann::json group(const std::string& id) const {
    const nlohmann::json all = state();
    for (const auto& g : all["groups"])
      if (g["id"] == id) return g;
    return nullptr;
  }

  // "" when node and the peer's packages are present, else what is missing and what to do.
  static std::string problem(const std::string& source_dir) {
    if (findOnPath("node").empty())
      return "node is not on PATH; the SCIM connector tests need the scimmy test peer: run "
             "scripts/setup";
    const std::filesystem::path modules =
        std::filesystem::path(source_dir) / "tests/peers/scim/node_modules";
    if (!std::filesystem::exists(modules / "scimmy") ||
        !std::filesystem::exists(modules / "scimmy-routers") ||
        !std::filesystem::exists(modules / "express"))
      return modules.string() +
             " lacks scimmy, scimmy-routers or express; run scripts/setup (npm ci in "
             "tests/peers/scim)";
    return {};
  }

 private:
  static std::string findOnPath(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
  }

  nlohmann::json getJson(const std::string& path) const {
    httplib::Client c("127.0.0.1", port_);
    auto res = c.Get(path);
    if (!res || res->status != 200) throw std::runtime_error("scim peer: GET " + path + " failed");
    return nlohmann::json::parse(res->body);
  }

  std::string stderrText() const {
    std::ifstream in(dir_ + "/stderr.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void start() {
    std::string source = options_.source_dir;
#ifdef CERTGATE_SOURCE_DIR
    if (source.empty()) source = CERTGATE_SOURCE_DIR;
#endif
    if (source.empty()) throw std::runtime_error("scim peer: no source directory given");
    if (const std::string p = problem(source); !p.empty()) throw std::runtime_error("scim peer: " + p);

    std::string tmpl = (std::filesystem::temp_directory_path() / "certgate-scim-peer-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("scim peer: mkdtemp failed");
    dir_ = tmpl;

    std::vector<std::string> args = {"node", source + "/tests/peers/scim/server.js", "--port", "0",
                                     "--watch-stdin"};
    if (!options_.token.empty()) args.insert(args.end(), {"--token", options_.token});
    if (!options_.seed.is_null()) {
      const std::string seed_path = dir_ + "/seed.json";
      std::ofstream(seed_path) << options_.seed.dump();
      args.insert(args.end(), {"--seed", seed_path});
    }
    if (!options_.state_file.empty()) args.insert(args.end(), {"--state-file", options_.state_file});
    for (const auto& c : options_.clients) args.insert(args.end(), {"--client", c});
    for (const auto& f : options_.faults) args.insert(args.end(), {"--fault", f.dump()});
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());

    int out_pipe[2];
    int in_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0)
      throw std::runtime_error("scim peer: pipe failed");
    const std::string err_path = dir_ + "/stderr.log";

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, "node", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(in_pipe[0]);
    stdin_fd_ = in_pipe[1];
    stdout_fd_ = out_pipe[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("scim peer: cannot start node: " + std::string(std::strerror(rc)) +
                               "; run scripts/setup");
    }

    // Read "listening <port>\n" with a deadline.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        stop();
        throw std::runtime_error("scim peer: no 'listening' line within 20 s; stderr: " +
                                 stderrText());
      }
      pollfd p{stdout_fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;
      char buf[256];
      const ssize_t got = ::read(stdout_fd_, buf, sizeof buf);
      if (got <= 0) {
        const std::string err = stderrText();
        stop();
        throw std::runtime_error("scim peer exited before listening; stderr: " + err);
      }
      line.append(buf, static_cast<std::size_t>(got));
    }
    if (line.rfind("listening ", 0) != 0) {
      stop();
      throw std::runtime_error("scim peer: unexpected first line: " + line);
    }
    port_ = std::atoi(line.c_str() + 10);
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("scim peer: bad port in: " + line);
    }
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      pid_ = -1;
    }
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    stdin_fd_ = stdout_fd_ = -1;
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  ScimPeerOptions options_;
  pid_t pid_ = -1;
  int port_ = 0;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string dir_;
};

}  // namespace certgate::testing
