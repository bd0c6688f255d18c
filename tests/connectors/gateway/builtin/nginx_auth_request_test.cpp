// Debian's nginx in front of a loopback upstream, with auth_request pointed at certgate's
// /auth/verify (the AuthorityServer that `certgate serve` runs). nginx is a test peer installed
// by scripts/setup; the test fails (never skips) when it is missing.
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "authority_test_support.hpp"
#include "cli/serve_command.hpp"

extern char** environ;

namespace fs = std::filesystem;
namespace cli = certgate::cli;
namespace ports = certgate::ports;
using namespace certgate::testing::authority;

namespace {

std::string nginxBinary() {
  if (const char* env = std::getenv("CERTGATE_NGINX"); env && *env) return env;
  return "/usr/sbin/nginx";
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A port that was free a moment ago (nginx needs a number in its configuration).
int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// What the upstream behind nginx received.
struct Upstream {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mutex;
  std::vector<httplib::Headers> requests;

  Upstream() {
    server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex);
        requests.push_back(req.headers);
      }
      res.set_content("upstream ok", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server.is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    REQUIRE(server.is_running());
  }
  ~Upstream() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return requests.size();
  }
  httplib::Headers last() {
    std::lock_guard lock(mutex);
    REQUIRE_FALSE(requests.empty());
    return requests.back();
  }
};

std::string header(const httplib::Headers& h, const std::string& name) {
  auto it = h.find(name);
  return it == h.end() ? std::string() : it->second;
}

// nginx run as the current user from a generated configuration in `dir`.
class Nginx {
 public:
  Nginx(const fs::path& dir, int certgate_port, int upstream_port) : dir_(dir) {
    const std::string binary = nginxBinary();
    if (::access(binary.c_str(), X_OK) != 0)
      FAIL(binary << " is missing: the nginx auth_request test needs Debian's nginx (run "
                     "scripts/setup, or set CERTGATE_NGINX to an nginx binary)");
    for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
      port_ = freeLoopbackPort();
      writeConfig(certgate_port, upstream_port);
      start(binary);
      if (!waitUntilListening()) stop();
    }
    if (pid_ <= 0) FAIL("nginx did not start; its error log:\n" << readFile(dir_ / "error.log"));
  }
  ~Nginx() { stop(); }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  int port() const { return port_; }
  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string errorLog() const { return readFile(dir_ / "error.log"); }

 private:
  void writeConfig(int certgate_port, int upstream_port) {
    for (const char* sub : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      fs::create_directories(dir_ / sub);
    const std::string d = dir_.string();
    std::ofstream conf(dir_ / "nginx.conf", std::ios::trunc);
    conf << "daemon off;\n"
         << "worker_processes 1;\n"
         << "pid " << d << "/nginx.pid;\n"
         << "error_log " << d << "/error.log warn;\n"
         // Run as root (CI), nginx would switch its workers to www-data/nobody, which cannot
         // enter the test's temporary directory.
         << (::geteuid() == 0 ? "user root;\n" : "")
         << "events { worker_connections 64; }\n"
         << "http {\n"
         << "  access_log " << d << "/access.log;\n"
         << "  client_body_temp_path " << d << "/client_body;\n"
         << "  proxy_temp_path " << d << "/proxy;\n"
         << "  fastcgi_temp_path " << d << "/fastcgi;\n"
         << "  uwsgi_temp_path " << d << "/uwsgi;\n"
         << "  scgi_temp_path " << d << "/scgi;\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << ";\n"
         << "    location / {\n"
         << "      auth_request /_certgate/verify;\n"
         << "      auth_request_set $certgate_subject $upstream_http_x_certgate_subject;\n"
         << "      auth_request_set $certgate_scope $upstream_http_x_certgate_scope;\n"
         << "      auth_request_set $certgate_expires $upstream_http_x_certgate_expires;\n"
         << "      proxy_set_header X-Certgate-Subject $certgate_subject;\n"
         << "      proxy_set_header X-Certgate-Scope $certgate_scope;\n"
         << "      proxy_set_header X-Certgate-Expires $certgate_expires;\n"
         << "      proxy_set_header Authorization \"\";\n"
         << "      proxy_pass http://127.0.0.1:" << upstream_port << ";\n"
         << "    }\n"
         << "    location /admin/ {\n"
         << "      auth_request /_certgate/verify-admin;\n"
         << "      proxy_set_header Authorization \"\";\n"
         << "      proxy_pass http://127.0.0.1:" << upstream_port << ";\n"
         << "    }\n"
         << "    location = /_certgate/verify {\n"
         << "      internal;\n"
         << "      proxy_pass http://127.0.0.1:" << certgate_port << "/auth/verify;\n"
         << "      proxy_pass_request_body off;\n"
         << "      proxy_set_header Content-Length \"\";\n"
         << "      proxy_set_header X-Original-URI $request_uri;\n"
         << "    }\n"
         << "    location = /_certgate/verify-admin {\n"
         << "      internal;\n"
         << "      proxy_pass http://127.0.0.1:" << certgate_port << "/auth/verify;\n"
         << "      proxy_pass_request_body off;\n"
         << "      proxy_set_header Content-Length \"\";\n"
         << "      proxy_set_header X-Certgate-Required-Scope genai-admin;\n"
         << "    }\n"
         << "  }\n"
         << "}\n";
  }

  void start(const std::string& binary) {
    const std::string prefix = dir_.string() + "/";
    const std::string conf = (dir_ / "nginx.conf").string();
    const std::string early_log = (dir_ / "error.log").string();
    std::vector<std::string> args{binary, "-p", prefix, "-c", conf, "-e", early_log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = (dir_ / "nginx.out").string();
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    pid_ = pid;
  }

  bool waitUntilListening() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) != 0) {
        pid_ = -1;  // exited: port taken or configuration refused
        return false;
      }
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(0, 200000);
      if (auto res = c.Get("/_probe")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("nginx auth_request in front of an upstream honours certgate's token authority",
          "[integration][nginx][builtin]") {
  TempDir dir;
  const std::string db = dir.file("certgate.db");
  auto clock = std::make_shared<TestClock>();
  auto store = openStore(db);
  auto gateway = makeGateway(*store, clock);

  cli::AuthorityServerOptions options;
  options.store_path = db;
  options.server.listen = "127.0.0.1:0";
  options.server.threads = 4;
  options.clock = clock;
  auto certgate_server = cli::AuthorityServer::start(options);
  if (!certgate_server) FAIL(certgate_server.error().describe());
  Upstream upstream;
  fs::create_directories(dir.path() / "nginx");
  Nginx nginx(dir.path() / "nginx", (*certgate_server)->port(), upstream.port);

  auto issued = valueOf(gateway->issue(request("e1001", "genai/e1001/c1", at(kStart + 3600))));
  auto expiring = valueOf(gateway->issue(request("e2002", "genai/e2002/c1", at(kStart + 60))));

  httplib::Client client("127.0.0.1", nginx.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto get = [&](const std::string& path, const std::string& token) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    auto res = client.Get(path.c_str(), h);
    if (!res) FAIL("no answer from nginx; its error log:\n" << nginx.errorLog());
    return res;
  };

  // A valid token passes; the upstream sees who it is (auth_request_set), not the token.
  auto ok = get("/v1/chat/completions", issued.secret);
  CHECK(ok->status == 200);
  CHECK(ok->body == "upstream ok");
  REQUIRE(upstream.count() == 1);
  const auto seen = upstream.last();
  CHECK(header(seen, "X-Certgate-Subject") == "e1001");
  CHECK(header(seen, "X-Certgate-Scope") == "genai-basic gpt-4o-mini claude-haiku");
  CHECK(header(seen, "X-Certgate-Expires") == "2027-01-15T09:00:00Z");
  CHECK(header(seen, "Authorization").empty());

  // No token: 401 and certgate's challenge reaches the client.
  auto none = get("/v1/models", "");
  CHECK(none->status == 401);
  CHECK(none->get_header_value("WWW-Authenticate") == R"(Bearer realm="certgate")");

  // Malformed and unknown tokens: 401, and nobody crashed.
  for (const std::string& bad : {std::string("cgt_123"), std::string("cgt_") + std::string(38, 'A'),
                                 std::string(2000, 'z'), std::string("%00%ff\"")}) {
    auto refused = get("/v1/models", bad);
    CHECK(refused->status == 401);
  }
  CHECK(nginx.alive());
  CHECK(upstream.count() == 1);

  // A token without the scope a location requires: 403.
  auto admin = get("/admin/keys", issued.secret);
  CHECK(admin->status == 403);

  // Expired: refused once the clock passes its expiry.
  CHECK(get("/v1/models", expiring.secret)->status == 200);
  clock->advance(60);
  CHECK(get("/v1/models", expiring.secret)->status == 401);

  // Revoked: refused on the first request after the revocation.
  CHECK(get("/v1/models", issued.secret)->status == 200);
  REQUIRE_FALSE(valueOf(gateway->revoke(issued.token_id)).no_op);
  auto after = get("/v1/models", issued.secret);
  CHECK(after->status == 401);
  CHECK(after->get_header_value("WWW-Authenticate").find(R"(error="invalid_token")") !=
        std::string::npos);

  CHECK(nginx.alive());
  // nginx's own logs never saw a token either (it logs the request line, not headers).
  const std::string access = readFile(dir.path() / "nginx" / "access.log");
  CHECK(access.find(issued.secret) == std::string::npos);
}
