// bench_authority: certgate's own token authority under load. Seeds N live tokens through the
// builtin gateway into a fresh store, starts the AuthorityServer (what `certgate serve` runs)
// in this process, and drives /auth/verify and /oauth2/introspect with wrk (Debian package
// `wrk`) from a second process on the loopback, each request carrying a random valid token
// from a token file. Prints requests/s and latency percentiles as wrk reports them.
//
//   bench_authority [--tokens 100k] [--threads 16] [--connections 16] [--wrk-threads 2]
//                   [--duration 10] [--dir /tmp/certgate-bench-authority] [--revoke-per-s 0]
//
// --revoke-per-s R: during an extra /auth/verify pass, another store connection revokes R
// tokens per second (tokens not in the request file), so every check also pays the index
// catch-up that a concurrent `certgate sync` causes.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "cli/serve_command.hpp"
#include "connectors/gateway/builtin/builtin_gateway.hpp"
#include "store/store.hpp"

extern char** environ;

namespace bench = certgate::bench;
namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: bench_authority [--tokens 100k] [--threads 16] [--connections 16] [--wrk-threads 2]\n"
    "                       [--duration 10] [--dir DIR] [--revoke-per-s 0]\n";
constexpr const char* kIntrospectionSecret = "bench-introspection-secret-0123456789";

struct Pass {
  std::string name;
  double requests_per_s = 0;
  std::string p50, p90, p99, max;
  long long requests = 0;
  long long non_2xx = 0;
  long long socket_errors = 0;
  double server_cpu_us = 0;  // this process's CPU time per request during the pass
};

std::string runWrk(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "wrk", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::waitpid(pid, nullptr, 0);
  }
  ::close(pipe_fds[0]);
  if (rc != 0) {
    std::fprintf(stderr, "error: cannot run wrk (apt-get install wrk)\n");
    std::exit(1);
  }
  return out;
}

Pass parseWrk(const std::string& name, const std::string& out) {
  Pass p;
  p.name = name;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
    p.requests_per_s = std::stod(m[1]);
  auto pct = [&](const char* label) {
    std::smatch x;
    if (std::regex_search(out, x, std::regex(std::string(R"(\s)") + label + R"(%\s+([0-9.]+\w+))")))
      return x[1].str();
    return std::string("?");
  };
  p.p50 = pct("50");
  p.p90 = pct("90");
  p.p99 = pct("99");
  if (std::regex_search(out, m, std::regex(R"(Latency\s+\S+\s+\S+\s+(\S+))"))) p.max = m[1];
  if (std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) p.requests = std::stoll(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Non-2xx or 3xx responses:\s+(\d+))")))
    p.non_2xx = std::stoll(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+))")))
    p.socket_errors = std::stoll(m[1]) + std::stoll(m[2]) + std::stoll(m[3]) + std::stoll(m[4]);
  return p;
}

void writeScript(const fs::path& path, const fs::path& tokens, bool introspect) {
  std::ofstream lua(path, std::ios::trunc);
  lua << "local tokens = {}\n"
      << "local counter = 0\n"
      << "function setup(thread)\n"
      << "  counter = counter + 1\n"
      << "  thread:set(\"seed\", counter)\n"
      << "end\n"
      << "function init(args)\n"
      << "  for line in io.lines(\"" << tokens.string() << "\") do tokens[#tokens + 1] = line end\n"
      << "  math.randomseed(os.time() * 1000 + seed)\n"
      << "end\n";
  if (introspect) {
    lua << "local headers = {[\"Authorization\"] = \"Bearer " << kIntrospectionSecret << "\",\n"
        << "  [\"Content-Type\"] = \"application/x-www-form-urlencoded\"}\n"
        << "function request()\n"
        << "  return wrk.format(\"POST\", \"/oauth2/introspect\", headers,\n"
        << "                    \"token=\" .. tokens[math.random(#tokens)])\n"
        << "end\n";
  } else {
    lua << "function request()\n"
        << "  return wrk.format(\"GET\", \"/auth/verify\",\n"
        << "    {[\"Authorization\"] = \"Bearer \" .. tokens[math.random(#tokens)]})\n"
        << "end\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::signal(SIGPIPE, SIG_IGN);
  bench::Args args(argc, argv);
  if (args.flag("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const auto tokens = args.integer("tokens", 100000);
  const auto threads = args.integer("threads", 16);
  const auto connections = args.integer("connections", 16);
  const auto wrk_threads = args.integer("wrk-threads", 2);
  const auto duration = args.integer("duration", 10);
  const auto revoke_per_s = args.integer("revoke-per-s", 0);
  const fs::path dir = args.take("dir").value_or("/tmp/certgate-bench-authority");
  args.done(kUsage);
  if (tokens < 1 || threads < 1 || connections < 1 || duration < 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }

  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
  const std::string db = (dir / "certgate.db").string();
  const fs::path token_file = dir / "tokens.txt";

  // 1. Seed: N live tokens (one Transaction), plus spares to revoke during the load pass.
  const std::int64_t spares = revoke_per_s > 0 ? revoke_per_s * (duration + 5) : 0;
  std::vector<std::string> spare_ids;
  {
    auto opened = certgate::store::Store::open(db);
    if (!opened) {
      std::fprintf(stderr, "error: %s\n", opened.error().describe().c_str());
      return 1;
    }
    auto store = std::move(*opened);
    auto clock = std::make_shared<certgate::ports::SystemClock>();
    auto gateway = certgate::connectors::builtin::makeGateway("ai-gateway", {}, store.get(), clock);
    if (!gateway) {
      std::fprintf(stderr, "error: %s\n", gateway.error().describe().c_str());
      return 1;
    }
    std::ofstream out(token_file, std::ios::trunc);
    fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    bench::Stopwatch sw;
    auto tx = store->begin();
    if (!tx) return 1;
    for (std::int64_t i = 0; i < tokens + spares; ++i) {
      certgate::ports::IssueRequest r;
      r.person_key = "p" + std::to_string(i);
      r.track = "genai";
      r.scope.scope = "genai-basic";
      r.scope.models = {"gpt-4o-mini"};
      r.alias = "genai/p" + std::to_string(i) + "/c1";
      r.expires_at = clock->now() + std::chrono::hours(24 * 30);
      auto issued = (*gateway)->issue(r);
      if (!issued) {
        std::fprintf(stderr, "error: %s\n", issued.error().describe().c_str());
        return 1;
      }
      if (i < tokens)
        out << issued->secret << '\n';
      else
        spare_ids.push_back(issued->token_id);
    }
    if (!tx->commit()) return 1;
    std::printf("seeded %s live tokens in %.2f s (one transaction)\n",
                bench::withCommas(static_cast<double>(tokens + spares)).c_str(), sw.seconds());
  }

  // 2. The server, in this process.
  certgate::cli::AuthorityServerOptions options;
  options.store_path = db;
  options.server.listen = "127.0.0.1:0";
  options.server.threads = static_cast<std::size_t>(threads);
  options.introspection_secret = kIntrospectionSecret;
  bench::Stopwatch load;
  const double rss_before = bench::currentRssMiB();
  auto server = certgate::cli::AuthorityServer::start(options);
  if (!server) {
    std::fprintf(stderr, "error: %s\n", server.error().describe().c_str());
    return 1;
  }
  std::printf("server up on %s in %.2f s: %s tokens indexed, +%.0f MiB RSS; %lld worker threads\n",
              (*server)->address().c_str(), load.seconds(),
              bench::withCommas(static_cast<double>((*server)->liveTokens())).c_str(),
              bench::currentRssMiB() - rss_before, static_cast<long long>(threads));

  // Sanity: the first tokens of the file are active through both endpoints.
  {
    std::ifstream in(token_file);
    std::string token;
    httplib::Client c("127.0.0.1", (*server)->port());
    for (int i = 0; i < 20 && std::getline(in, token); ++i) {
      auto v = c.Get("/auth/verify", {{"Authorization", "Bearer " + token}});
      auto x = c.Post("/oauth2/introspect",
                      {{"Authorization", std::string("Bearer ") + kIntrospectionSecret}},
                      "token=" + token, "application/x-www-form-urlencoded");
      if (!v || v->status != 204 || !x || nlohmann::json::parse(x->body)["active"] != true) {
        std::fprintf(stderr, "error: sanity check failed for token %d\n", i);
        return 1;
      }
    }
  }

  // 3. wrk from a second process.
  const std::string url = (*server)->baseUrl();
  writeScript(dir / "verify.lua", token_file, false);
  writeScript(dir / "introspect.lua", token_file, true);
  auto wrk = [&](const std::string& name, const fs::path& script) {
    std::vector<std::string> a{"wrk",
                               "-t" + std::to_string(wrk_threads),
                               "-c" + std::to_string(connections),
                               "-d" + std::to_string(duration) + "s",
                               "--latency",
                               "-s",
                               script.string(),
                               url};
    std::printf("running: wrk %s %s %s --latency -s %s %s\n", a[1].c_str(), a[2].c_str(),
                a[3].c_str(), script.filename().c_str(), url.c_str());
    const double cpu_before = bench::cpuSeconds();
    Pass p = parseWrk(name, runWrk(a));
    if (p.requests > 0)
      p.server_cpu_us = (bench::cpuSeconds() - cpu_before) * 1e6 / static_cast<double>(p.requests);
    return p;
  };
  std::vector<Pass> passes;
  passes.push_back(wrk("GET /auth/verify", dir / "verify.lua"));
  passes.push_back(wrk("POST /oauth2/introspect", dir / "introspect.lua"));

  if (revoke_per_s > 0) {
    std::atomic<bool> stop{false};
    std::atomic<long long> revoked{0};
    std::thread revoker([&] {
      auto opened = certgate::store::Store::open(db);
      if (!opened) return;
      auto store = std::move(*opened);
      auto clock = std::make_shared<certgate::ports::SystemClock>();
      auto gateway = certgate::connectors::builtin::makeGateway("ai-gateway", {}, store.get(), clock);
      if (!gateway) return;
      const auto gap = std::chrono::microseconds(1000000 / revoke_per_s);
      auto next = std::chrono::steady_clock::now();
      for (const auto& id : spare_ids) {
        if (stop) break;
        std::this_thread::sleep_until(next);
        next += gap;
        if ((*gateway)->revoke(id)) ++revoked;
      }
    });
    passes.push_back(wrk("GET /auth/verify, " + std::to_string(revoke_per_s) +
                             " revocations/s by another connection",
                         dir / "verify.lua"));
    stop = true;
    revoker.join();
    std::printf("revoked %lld tokens during the last pass\n", revoked.load());
  }

  std::printf("\n| Endpoint | Requests/s | p50 | p90 | p99 | Max | Requests | Non-2xx | Socket errors | Server CPU/request |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& p : passes)
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %lld | %lld | %.0f us |\n", p.name.c_str(),
                bench::withCommas(p.requests_per_s).c_str(), p.p50.c_str(), p.p90.c_str(),
                p.p99.c_str(), p.max.c_str(),
                bench::withCommas(static_cast<double>(p.requests)).c_str(), p.non_2xx,
                p.socket_errors, p.server_cpu_us);
  (*server)->stop();
  fs::remove(token_file, ec);
  return 0;
}
