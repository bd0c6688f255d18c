// `certgate serve` as a real process: it serves the token authority from the configured store
// on http.listen, sees tokens issued by another process, and stops cleanly on SIGTERM.
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "authority_test_support.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace certgate::testing::authority;

namespace {

int pickPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("certgate serve answers from the configured store and stops on SIGTERM",
          "[integration][cli][builtin]") {
  TempDir dir;
  const int port = pickPort();
  const std::string secret = "introspection-secret-for-the-serve-test";
  { std::ofstream(dir.file("introspection-secret")) << secret << '\n'; }
  fs::permissions(dir.file("introspection-secret"), fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  {
    std::ofstream cfg(dir.file("certgate.yaml"));
    cfg << "version: 1\n"
        << "store:\n  path: certgate.db\n"
        << "tracks:\n  - " << CERTGATE_SOURCE_DIR << "/config/example/tracks/employees.yaml\n"
        << "http:\n  listen: 127.0.0.1:" << port << "\n"
        << "  introspection_secret: { file: introspection-secret }\n"
        << "  threads: 2\n";
  }
  // The store exists before serve starts, as after a first `certgate sync`.
  auto clock = std::make_shared<certgate::ports::SystemClock>();
  auto store = openStore(dir.file("certgate.db"));
  auto gateway = makeGateway(*store, clock);

  const std::string bin = CERTGATE_BIN;
  const std::string config = dir.file("certgate.yaml");
  std::vector<std::string> args{bin, "--config", config, "serve", "--access-log"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir.file("serve.log");
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);

  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(0, 200000);
  client.set_read_timeout(5);
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!up && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) != 0) FAIL("certgate serve exited:\n" << slurp(log));
    if (auto res = client.Get("/healthz")) up = res->status == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!up) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    FAIL("certgate serve did not answer /healthz:\n" << slurp(log));
  }

  auto issued = valueOf(gateway->issue(
      request("e1001", "a1", clock->now() + std::chrono::hours(1))));
  auto verified = client.Get("/auth/verify", {{"Authorization", "Bearer " + issued.secret}});
  REQUIRE(verified);
  CHECK(verified->status == 204);
  CHECK(verified->get_header_value("X-Certgate-Subject") == "e1001");
  auto introspected = client.Post("/oauth2/introspect", {{"Authorization", "Bearer " + secret}},
                                  "token=" + issued.secret, "application/x-www-form-urlencoded");
  REQUIRE(introspected);
  CHECK(nlohmann::json::parse(introspected->body)["active"] == true);
  REQUIRE_FALSE(valueOf(gateway->revoke(issued.token_id)).no_op);
  auto refused = client.Get("/auth/verify", {{"Authorization", "Bearer " + issued.secret}});
  REQUIRE(refused);
  CHECK(refused->status == 401);

  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string output = slurp(log);
  CHECK(output.find("listening on 127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(output.find("introspection enabled") != std::string::npos);
  CHECK(output.find("GET /auth/verify 204") != std::string::npos);
  CHECK(output.find("SIGTERM, stopping") != std::string::npos);
  CHECK(output.find(issued.secret) == std::string::npos);
  CHECK(output.find(secret) == std::string::npos);
}
