// bench_sync: the directory sync over the real engine path, against three identity providers.
//
//   per backend (scim | okta | okta-paced | graph) and per N people:
//     a fresh SQLite store with N people, each certified (one completed module fact)   untimed
//     settings: one track granting one group in that directory                          untimed
//     the backend seeded with N users and the empty group                               untimed
//     Directory::connect                                                               reported
//     engine::Reconciler::makePlan   <- plan 1: evaluation, N account lookups, group listing
//     engine::Reconciler::apply      <- the N adds: intents, the calls, ledger and audit
//     engine::Reconciler::makePlan   <- plan 2: must be empty (checked)
//   with --remove, at a date where every certification has expired:
//     makePlan (N removals, held by the blast-radius brake), apply with the brake released,
//     and a last makePlan that must be empty.
//
// Backends: `scim` is the scimmy SCIM 2.0 server (tests/peers/scim, a node process, started
// through tests/support/scim_peer.hpp). `okta` and `graph` are the loopback fakes in
// tests/fakes, run in a forked child process so that certgate's CPU time (getrusage of this
// process) and the identity provider's (/proc/PID/stat of the child) are measured apart.
// `okta` runs the fake without rate limits (throughput); `okta-paced` runs it with Okta's
// per-minute buckets on a virtual clock shared with the connector (ClientOptions sleep/now), so
// the time Okta's limits impose is reported in virtual seconds while the real run stays short.
//
// Every directory call is timed through a decorator (TimingDirectory), so each phase splits
// into time spent in directory calls (HTTP round trips, the connector and the IdP) and the rest
// (the engine and the store).
//
// Where a fake answers a lookup by scanning every user (the Graph fake, the SCIM peer), N
// lookups cost O(N^2) in the fake; --lookups K then looks up K people and puts the others'
// accounts in the store first, as an earlier sync leaves them, so the per-lookup figure is
// still measured against a directory of N users. Results and commands: docs/benchmarks.md.

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "connectors/common/http_client.hpp"
#include "connectors/common/redact.hpp"
#include "connectors/registry.hpp"
#include "core/time.hpp"
#include "engine/reconcile.hpp"
#include "fakes/graph/graph_fake.hpp"
#include "fakes/okta/okta_fake.hpp"
#include "ports/directory.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"
#include "support/scim_peer.hpp"

namespace {

using namespace certgate;
namespace fs = std::filesystem;
namespace http = connectors::http;

constexpr const char* kUsage =
    "usage: bench_sync [--people LIST] [--backend scim|okta|okta-paced|graph|all] [--remove]\n"
    "                  [--lookups K] [--rate-limit R] [--dir DIR] [--okta-nagle]\n"
    "  LIST is one or more sizes separated by commas, with 10k / 1M shorthands (default\n"
    "  10k,100k). --backend takes one name or a comma list (default all = scim, okta,\n"
    "  okta-paced, graph). --remove also measures removing every membership again.\n"
    "  --lookups K looks up only K accounts in the first plan; the accounts of the others are\n"
    "  put in the store first, as an earlier sync leaves them (default: all N are looked up).\n"
    "  --rate-limit R is the okta-paced bucket per minute (default 600; the connector uses\n"
    "  rate_limit_share 0.5 of it). DIR holds the temporary stores (default /tmp).\n"
    "  --okta-nagle leaves the Okta fake's sockets without TCP_NODELAY: every lookup then\n"
    "  waits about 40 ms for a delayed ACK on loopback (see noDelayOnListeners).\n";

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
constexpr const char* kDirectoryName = "idp";
constexpr const char* kGroupName = "Certified AI Users";
constexpr const char* kToken = "bench-token-0123456789abcdef";

std::string emailOf(std::size_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "user%07zu@example.org", i);
  return buf;
}

std::string guid(unsigned kind, std::size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012zu", kind, i);
  return buf;
}

std::string commas(double v) { return bench::withCommas(v); }

// ---- CPU and memory of another process ---------------------------------------------------------

// utime + stime of every thread of `pid`, in seconds; -1 when unreadable.
double processCpuSeconds(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  // Fields after the command: state(3) ppid(4) ... utime(14) stime(15).
  long long utime = 0, stime = 0;
  for (int n = 3; n <= 15 && (rest >> field); ++n) {
    if (n == 14) utime = std::atoll(field.c_str());
    if (n == 15) stime = std::atoll(field.c_str());
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Peak resident set (VmHWM) of `pid` in MiB; 0 when unreadable.
double processPeakRssMiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

// A child of this process whose command name is `comm` (the node process ScimPeer spawns).
pid_t findChild(const std::string& comm) {
  const pid_t self = getpid();
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::string state;
    long long ppid = 0;
    rest >> state >> ppid;
    if (ppid == self && text.substr(open + 1, close - open - 1) == comm)
      return static_cast<pid_t>(std::atoll(name.c_str()));
  }
  return -1;
}

// ---- a virtual clock shared with a forked fake (okta-paced) -------------------------------------

struct SharedClock {
  std::atomic<std::int64_t> now{0};        // unix seconds
  std::atomic<std::int64_t> slept_ms{0};   // total of the sleeps requested
  std::atomic<std::int64_t> sleeps{0};
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

SharedClock* sharedClock() {
  static SharedClock* clock = [] {
    void* p = mmap(nullptr, sizeof(SharedClock), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    return new (p) SharedClock();
  }();
  return clock;
}

void advance(SharedClock* clock, http::Millis d) {
  clock->now += (d.count() + 999) / 1000;
  clock->slept_ms += d.count();
  ++clock->sleeps;
}

// ---- a fake identity provider in a forked child process ---------------------------------------

// Sets TCP_NODELAY on every listening socket of this process; Linux hands it on to the sockets
// accept() returns. The Okta fake's server writes a response's header and body in two send()
// calls without TCP_NODELAY, so on loopback each small body waits for the client's delayed ACK
// (about 40 ms per request). Real identity providers do not add that wait, and the Graph fake
// and the node SCIM server already send without Nagle's delay. Returns the number of sockets.
int noDelayOnListeners() {
  int n = 0;
  for (int fd = 3; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    const int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) ++n;
  }
  return n;
}

// What the child's setup hands back: an object that keeps the server alive, its origin, and the
// directory ids of the N users in order.
struct Served {
  std::shared_ptr<void> keep;
  std::string origin;
  std::vector<std::string> user_ids;
};

class FakeProcess {
 public:
  // Forks; the child runs `setup`, reports origin and ids through a pipe and serves until this
  // object goes away (the control pipe closes). Call before this process starts threads.
  explicit FakeProcess(const std::function<Served()>& setup) {
    int ready[2];
    int ctl[2];
    if (pipe(ready) != 0 || pipe(ctl) != 0) throw std::runtime_error("pipe failed");
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::close(ready[0]);
      ::close(ctl[1]);
      try {
        Served s = setup();
        std::string out = s.origin + "\n";
        for (const auto& id : s.user_ids) out += id + "\n";
        out += "\n";
        std::size_t off = 0;
        while (off < out.size()) {
          const ssize_t n = ::write(ready[1], out.data() + off, out.size() - off);
          if (n <= 0) _exit(3);
          off += static_cast<std::size_t>(n);
        }
        ::close(ready[1]);
        char c;
        while (::read(ctl[0], &c, 1) > 0) {
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fake: %s\n", e.what());
        _exit(2);
      }
      _exit(0);  // the server's threads and sockets end with the process
    }
    ::close(ready[1]);
    ::close(ctl[0]);
    ctl_ = ctl[1];
    std::string text;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(ready[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\n\n") == 0) break;
    }
    ::close(ready[0]);
    std::istringstream lines(text);
    std::getline(lines, origin_);
    std::string id;
    while (std::getline(lines, id) && !id.empty()) user_ids_.push_back(id);
    if (origin_.empty()) throw std::runtime_error("the fake did not start (see its stderr)");
  }
  ~FakeProcess() {
    if (ctl_ >= 0) ::close(ctl_);
    int status = 0;
    if (pid_ > 0) waitpid(pid_, &status, 0);
  }
  FakeProcess(const FakeProcess&) = delete;
  FakeProcess& operator=(const FakeProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& origin() const { return origin_; }
  const std::vector<std::string>& userIds() const { return user_ids_; }

 private:
  pid_t pid_ = -1;
  int ctl_ = -1;
  std::string origin_;
  std::vector<std::string> user_ids_;
};

// ---- a directory decorator that times every call ----------------------------------------------

struct CallStat {
  std::uint64_t calls = 0;
  std::uint64_t requests = 0;
  double seconds = 0;
};

class TimingDirectory final : public ports::Directory {
 public:
  explicit TimingDirectory(ports::Directory& inner) : inner_(inner) {}

  // Runs one call of the wrapped directory, adding its time and requests to `s`.
  template <typename F>
  auto timed(CallStat& s, F&& f) {
    const auto r0 = inner_.requestCount();
    bench::Stopwatch sw;
    auto r = f();
    s.seconds += sw.seconds();
    s.requests += inner_.requestCount() - r0;
    ++s.calls;
    return r;
  }

  CallStat connect_, resolve_, find_, list_, add_, remove_;
  CallStat total() const {
    CallStat t;
    for (const CallStat* s : {&connect_, &resolve_, &find_, &list_, &add_, &remove_}) {
      t.calls += s->calls;
      t.requests += s->requests;
      t.seconds += s->seconds;
    }
    return t;
  }

  const std::string& name() const override { return inner_.name(); }
  const char* kind() const override { return inner_.kind(); }
  core::Status connect() override {
    return timed(connect_, [&] { return inner_.connect(); });
  }
  ports::DirectoryCapabilities capabilities() const override { return inner_.capabilities(); }
  core::Result<ports::GroupRef> resolveGroup(const std::string& id_or_name) override {
    return timed(resolve_, [&] { return inner_.resolveGroup(id_or_name); });
  }
  core::Result<std::vector<ports::DirectoryUser>> findUsers(const ports::UserQuery& q) override {
    return timed(find_, [&] { return inner_.findUsers(q); });
  }
  core::Status listMembers(const ports::GroupRef& group,
                           const std::function<void(ports::DirectoryUser&&)>& sink) override {
    return timed(list_, [&] { return inner_.listMembers(group, sink); });
  }
  core::Status listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) override {
    return inner_.listRoster(sink);
  }
  core::Result<std::vector<ports::MemberOutcome>> addMembers(
      const ports::GroupRef& group, const std::vector<std::string>& ids) override {
    return timed(add_, [&] { return inner_.addMembers(group, ids); });
  }
  core::Result<std::vector<ports::MemberOutcome>> removeMembers(
      const ports::GroupRef& group, const std::vector<std::string>& ids) override {
    return timed(remove_, [&] { return inner_.removeMembers(group, ids); });
  }
  std::uint64_t requestCount() const override { return inner_.requestCount(); }

 private:
  ports::Directory& inner_;
};

// ---- one measured phase -----------------------------------------------------------------------

struct Phase {
  double wall = 0;
  double cpu = 0;       // certgate: this process
  double idp_cpu = -1;  // the identity provider's process; -1 unknown
  std::uint64_t requests = 0;
  CallStat dir;         // time in directory calls, all kinds
  CallStat find;        // of which account lookups
  CallStat list;        // of which group listings
  double virtual_s = 0;  // okta-paced: virtual seconds that passed (sleeps for Okta's limits)
  std::size_t actions = 0;
};

CallStat minus(const CallStat& a, const CallStat& b) {
  return {a.calls - b.calls, a.requests - b.requests, a.seconds - b.seconds};
}

template <typename F>
Phase measure(TimingDirectory& dir, pid_t idp, SharedClock* clock, F&& body) {
  Phase p;
  const CallStat t0 = dir.total(), f0 = dir.find_, l0 = dir.list_;
  const auto r0 = dir.requestCount();
  const double idp0 = processCpuSeconds(idp);
  const std::int64_t v0 = clock ? clock->now.load() : 0;
  const double cpu0 = bench::cpuSeconds();
  bench::Stopwatch sw;
  p.actions = body();
  p.wall = sw.seconds();
  p.cpu = bench::cpuSeconds() - cpu0;
  const double idp1 = processCpuSeconds(idp);
  p.idp_cpu = idp0 >= 0 && idp1 >= 0 ? idp1 - idp0 : -1;
  p.requests = dir.requestCount() - r0;
  p.dir = minus(dir.total(), t0);
  p.find = minus(dir.find_, f0);
  p.list = minus(dir.list_, l0);
  p.virtual_s = clock ? static_cast<double>(clock->now.load() - v0) : 0;
  return p;
}

std::string pct(double part, double whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

std::string hours(double s) {
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%.2f h", s / 3600.0);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%.1f min", s / 60.0);
  else
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  return buf;
}

void printPhase(const char* what, const Phase& p, std::size_t changes) {
  std::printf("  %-26s wall %9.3f s  certgate cpu %8.3f s (%s of wall)", what, p.wall, p.cpu,
              pct(p.cpu, p.wall).c_str());
  if (p.idp_cpu >= 0) std::printf("  idp cpu %8.3f s", p.idp_cpu);
  std::printf("  requests %s  actions %s\n", commas(static_cast<double>(p.requests)).c_str(),
              commas(static_cast<double>(p.actions)).c_str());
  std::printf("    in directory calls %8.3f s (%s calls); engine and store %8.3f s\n", p.dir.seconds,
              commas(static_cast<double>(p.dir.calls)).c_str(), p.wall - p.dir.seconds);
  if (p.find.calls > 0)
    std::printf("    account lookups: %s findUsers, %s requests, %.3f s (%.3f ms each)\n",
                commas(static_cast<double>(p.find.calls)).c_str(),
                commas(static_cast<double>(p.find.requests)).c_str(), p.find.seconds,
                1000.0 * p.find.seconds / static_cast<double>(p.find.calls));
  if (p.list.calls > 0)
    std::printf("    group listing: %s requests, %.3f s\n",
                commas(static_cast<double>(p.list.requests)).c_str(), p.list.seconds);
  if (changes > 0)
    std::printf("    per change: %.4f requests, %.3f ms wall, %.3f ms certgate cpu\n",
                static_cast<double>(p.requests) / static_cast<double>(changes),
                1000.0 * p.wall / static_cast<double>(changes),
                1000.0 * p.cpu / static_cast<double>(changes));
  if (p.virtual_s > 0)
    std::printf("    paced: %s of virtual time waiting for Okta's rate-limit windows\n",
                hours(p.virtual_s).c_str());
}

// ---- the scenario -----------------------------------------------------------------------------

struct Row {
  std::string backend;
  std::size_t people = 0;
  std::size_t lookups = 0;
  Phase connect, plan1, apply1, plan2, plan3, apply3, plan4;
  bool removed = false;
  bool ok = true;
  std::string problem;
  double idp_peak_rss = 0;
};

ports::OptionValue scalar(std::string v) {
  ports::OptionValue o;
  o.scalar = std::move(v);
  o.where = "bench_sync";
  return o;
}

ports::OptionValue secretRef() {
  ports::OptionValue o;
  o.shape = ports::OptionValue::Shape::Map;
  o.map = {{"file", "/run/secrets/bench"}};
  o.where = "bench_sync";
  return o;
}

settings::Settings makeSettings(const std::string& kind, ports::Options options) {
  settings::Settings s;
  auto policy = std::make_shared<settings::LoadedPolicy>();
  auto& sym = policy->symbols;
  core::Track t;
  t.id = sym.intern("GENAI_USER");
  t.modules = {sym.intern("M1")};
  t.recertify_days = 365;
  policy->policy.tracks.push_back(t);
  policy->tracks.push_back({"GENAI_USER", "", "bench_sync", {}});
  settings::TrackGrants g;
  g.track = "GENAI_USER";
  g.groups.push_back({kDirectoryName, kGroupName, settings::GroupGrant::Mode::Additive, {}});
  policy->grants.push_back(g);
  s.policy = policy;
  settings::DirectorySettings d;
  d.name = kDirectoryName;
  d.kind = kind;
  d.match = {{settings::MatchRule::Person::Email, "email", {}}};
  d.options = std::move(options);
  s.directories.push_back(d);
  settings::SourceSettings src;
  src.name = "lms";
  src.kind = "csv";
  s.sources.push_back(src);
  return s;
}

// A fresh store with `n` certified people; accounts of people [lookups, n) are filled in as an
// earlier sync leaves them (ids[i] is person i's directory id).
std::unique_ptr<store::Store> makeStore(const std::string& path, std::size_t n,
                                        std::size_t lookups, const std::vector<std::string>& ids) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(path + suffix, ec);
  }
  auto opened = store::Store::open(path);
  if (!opened.ok()) throw std::runtime_error(opened.error().describe());
  auto st = std::move(opened).value();
  auto source = st->ensureSource("lms", "csv");
  if (!source.ok()) throw std::runtime_error(source.error().describe());
  store::FetchRow f;
  f.source_id = *source;
  f.started_at = kNow - core::Seconds{600};
  f.finished_at = kNow - core::Seconds{540};
  f.complete = true;
  f.records = static_cast<std::int64_t>(n);
  if (auto r = st->recordFetch(f); !r.ok()) throw std::runtime_error(r.error().describe());
  auto tx = st->begin();
  if (!tx.ok()) throw std::runtime_error(tx.error().describe());
  for (std::size_t i = 0; i < n; ++i) {
    store::PersonRow p;
    p.email = emailOf(i);
    p.key = p.email;
    p.display_name = "User " + std::to_string(i);
    auto id = st->upsertPerson(p);
    if (!id.ok()) throw std::runtime_error(id.error().describe());
    store::FactRow fact;
    fact.source_id = *source;
    fact.external_id = "completion-" + std::to_string(i);
    fact.person_id = *id;
    fact.item = "M1";
    fact.lms_item = "M1";
    fact.at = kNow - core::days(10 + static_cast<std::int64_t>(i % 200));
    if (auto r = st->upsertFact(fact, kNow); !r.ok()) throw std::runtime_error(r.error().describe());
    if (i >= lookups) {
      if (auto r = st->upsertAccount({kDirectoryName, *id, ids.at(i), kNow - core::days(1)}); !r.ok())
        throw std::runtime_error(r.error().describe());
    }
  }
  if (auto c = tx->commit(); !c.ok()) throw std::runtime_error(c.error().describe());
  return st;
}

struct Config {
  std::string dir = "/tmp";
  bool remove = false;
  std::optional<std::size_t> lookups;
  long long rate_limit = 600;
  bool okta_nagle = false;  // leave the Okta fake's sockets as they are (see noDelayOnListeners)
};

Row runScenario(const std::string& backend, std::size_t n, const Config& cfg) {
  Row row;
  row.backend = backend;
  row.people = n;
  row.lookups = cfg.lookups ? std::min(*cfg.lookups, n) : n;
  std::printf("\n== %s, %s people ==\n", backend.c_str(), commas(static_cast<double>(n)).c_str());

  const bool paced = backend == "okta-paced";
  SharedClock* clock = paced ? sharedClock() : nullptr;
  if (clock) {
    clock->now = 1'800'000'000;
    clock->slept_ms = 0;
    clock->sleeps = 0;
  }

  // ---- the identity provider (untimed)
  bench::Stopwatch seed_sw;
  std::unique_ptr<FakeProcess> fake;
  std::unique_ptr<testing::ScimPeer> peer;
  pid_t idp_pid = -1;
  ports::Options options;
  options.where = "bench_sync";
  std::string kind;
  std::vector<std::string> ids;
  if (backend == "scim") {
    kind = "scim";
    testing::ScimPeerOptions po;
    po.token = kToken;
    nlohmann::json users = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i) {
      ids.push_back(guid(0xa0000000u, i));
      users.push_back({{"id", ids.back()},
                       {"userName", emailOf(i)},
                       {"email", emailOf(i)},
                       {"displayName", "User " + std::to_string(i)}});
    }
    po.seed = {{"users", std::move(users)},
               {"groups", nlohmann::json::array({{{"id", guid(0xb0000000u, 1)},
                                                  {"displayName", kGroupName},
                                                  {"members", nlohmann::json::array()}}})}};
    peer = std::make_unique<testing::ScimPeer>(std::move(po));
    idp_pid = findChild("node");
    options.values = {{"url", scalar(peer->base_url())}, {"token", secretRef()}};
  } else if (backend == "okta" || paced) {
    kind = "okta";
    const long long limit = paced ? cfg.rate_limit : 0;
    const bool nagle_fix = !cfg.okta_nagle;
    fake = std::make_unique<FakeProcess>([n, limit, clock, nagle_fix]() {
      testing::okta::OktaFakeOptions o;
      o.ssws_token = kToken;
      o.default_rate_limit = limit;
      o.record_requests = false;
      if (clock) o.clock = [clock] { return clock->now.load(); };
      auto f = std::make_shared<testing::okta::OktaFake>(o);
      Served s;
      for (std::size_t i = 0; i < n; ++i) {
        testing::okta::FakeUser u;
        u.login = emailOf(i);
        u.email = u.login;
        u.first_name = "User";
        u.last_name = std::to_string(i);
        s.user_ids.push_back(f->addUser(u));
      }
      f->addGroup({"", kGroupName, "OKTA_GROUP", ""});
      f->start();
      if (nagle_fix && noDelayOnListeners() == 0)
        throw std::runtime_error("no listening socket found for TCP_NODELAY");
      s.origin = f->url();
      s.keep = f;
      return s;
    });
    idp_pid = fake->pid();
    ids = fake->userIds();
    options.values = {
        {"url", scalar(fake->origin())}, {"auth", scalar("ssws")}, {"token", secretRef()}};
  } else if (backend == "graph") {
    kind = "graph";
    fake = std::make_unique<FakeProcess>([n]() {
      testing::GraphFakeOptions o;
      o.record_requests = false;
      auto f = std::make_shared<testing::GraphFake>(o);
      Served s;
      for (std::size_t i = 0; i < n; ++i) {
        testing::GraphUser u;
        u.id = guid(0, i);
        u.user_principal_name = emailOf(i);
        u.mail = emailOf(i);
        u.display_name = "User " + std::to_string(i);
        f->addUser(u);
        s.user_ids.push_back(u.id);
      }
      testing::GraphGroup g;
      g.id = guid(0x90000000u, 1);
      g.display_name = kGroupName;
      f->addGroup(g);
      f->start();
      s.origin = f->origin();
      s.keep = f;
      return s;
    });
    idp_pid = fake->pid();
    ids = fake->userIds();
    const testing::GraphFakeOptions defaults;
    options.values = {{"url", scalar(fake->origin() + "/v1.0")},
                      {"tenant", scalar(defaults.tenant)},
                      {"client_id", scalar(defaults.client_id)},
                      {"client_secret", secretRef()},
                      {"token_url", scalar(fake->origin() + "/" + defaults.tenant +
                                           "/oauth2/v2.0/token")}};
  } else {
    throw std::runtime_error("unknown backend " + backend);
  }
  if (ids.size() != n) throw std::runtime_error("the identity provider reported the wrong users");
  std::printf("  identity provider: %s users and the empty group \"%s\", pid %d (%.1f s, untimed)\n",
              commas(static_cast<double>(n)).c_str(), kGroupName, static_cast<int>(idp_pid),
              seed_sw.seconds());

  // ---- the store (untimed)
  bench::Stopwatch store_sw;
  const std::string db = (fs::path(cfg.dir) / ("certgate-bench-sync-" + std::to_string(getpid()) +
                                               ".db"))
                             .string();
  auto st = makeStore(db, n, row.lookups, ids);
  std::printf("  store: %s people, each certified, %s accounts known beforehand (%.1f s, untimed)\n",
              commas(static_cast<double>(n)).c_str(),
              commas(static_cast<double>(n - row.lookups)).c_str(), store_sw.seconds());

  // ---- settings, connector, engine
  const settings::Settings settings = makeSettings(kind, options);
  const std::string secret = backend == "graph" ? testing::GraphFakeOptions{}.client_secret
                                                : std::string(kToken);
  ports::SecretReader secrets = [secret](const ports::OptionValue&) -> core::Result<std::string> {
    return secret;
  };
  http::ClientOptions co;
  if (clock) {
    co.sleep = [clock](http::Millis d) { advance(clock, d); };
    co.now_unix_s = [clock] { return clock->now.load(); };
    co.random01 = [] { return 0.5; };
  }
  auto made = connectors::makeDirectory(kind, kDirectoryName, settings.directories[0].options,
                                        cfg.dir, secrets, std::make_shared<http::Redactor>(), co);
  if (!made.ok()) throw std::runtime_error(made.error().describe());
  TimingDirectory dir(**made);
  engine::Reconciler rec(*st, settings, {{&settings.directories[0], &dir}});
  int plan_seq = 0;
  engine::ReconcileOptions ro;
  ro.make_id = [&](core::Instant) {
    return "bench-" + backend + "-" + std::to_string(n) + "-" + std::to_string(++plan_seq);
  };
  if (clock) {
    ro.sleep = [clock](std::chrono::milliseconds d) { advance(clock, d); };
    ro.random01 = [] { return 0.5; };
  }

  auto fail = [&](const std::string& why) {
    row.ok = false;
    row.problem = why;
    std::printf("  FAILED: %s\n", why.c_str());
  };

  row.connect = measure(dir, idp_pid, clock, [&]() -> std::size_t {
    if (auto c = dir.connect(); !c.ok()) throw std::runtime_error(c.error().describe());
    return 0;
  });
  const auto caps = dir.capabilities();
  std::printf("  connect %.3f s, %s request(s); capabilities: add batch %zu, remove batch %zu, "
              "page %zu, bulk %s\n",
              row.connect.wall, commas(static_cast<double>(row.connect.requests)).c_str(),
              caps.max_add_batch, caps.max_remove_batch, caps.page_size, caps.bulk ? "yes" : "no");

  auto plan = [&](core::Instant at) -> engine::PlanResult {
    auto r = rec.makePlan(at, ro);
    if (!r.ok()) throw std::runtime_error("makePlan: " + r.error().describe());
    return std::move(r).value();
  };
  auto report = [&](const engine::PlanResult& p) {
    for (std::size_t i = 0; i < p.problems.size() && i < 3; ++i)
      std::printf("    problem: %s\n", p.problems[i].c_str());
    if (p.problems.size() > 3) std::printf("    ... %zu problems\n", p.problems.size());
    for (const auto& t : p.targets_not_observed)
      std::printf("    not observed: %s/%s: %s\n", t.directory.c_str(), t.group.c_str(),
                  t.problem.c_str());
  };
  auto applyPlan = [&](const engine::PlanResult& p, bool release, core::Instant at,
                       engine::ApplyResult& out) -> std::size_t {
    auto r = rec.apply(p.plan, release, at, ro);
    if (!r.ok()) throw std::runtime_error("apply: " + r.error().describe());
    out = std::move(r).value();
    return out.added + out.removed + out.failed;
  };
  auto checkApply = [&](const engine::ApplyResult& a, std::size_t added, std::size_t removed) {
    std::printf("    applied: %zu added, %zu removed, %zu no-op, %zu failed, state %s\n", a.added,
                a.removed, a.no_op, a.failed, a.state.c_str());
    for (std::size_t i = 0; i < a.failures.size() && i < 3; ++i)
      std::printf("    failure: %s\n", a.failures[i].c_str());
    for (const auto& q : a.quarantined) std::printf("    quarantined: %s\n", q.c_str());
    if (a.added != added || a.removed != removed || !a.ok())
      fail("apply did " + std::to_string(a.added) + " adds and " + std::to_string(a.removed) +
           " removals, " + std::to_string(a.failed) + " failed; expected " + std::to_string(added) +
           " and " + std::to_string(removed));
  };

  // ---- plan 1: everybody certified, the group empty
  engine::PlanResult p1;
  row.plan1 = measure(dir, idp_pid, clock, [&] {
    p1 = plan(kNow);
    return p1.plan.actions.size();
  });
  printPhase("plan 1 (all adds)", row.plan1, 0);
  report(p1);
  if (p1.plan.actions.size() != n || core::countActions(p1.plan, core::ActionKind::Add) != n)
    fail("plan 1 has " + std::to_string(p1.plan.actions.size()) + " actions, expected " +
         std::to_string(n) + " adds");

  // ---- apply
  engine::ApplyResult a1;
  row.apply1 = measure(dir, idp_pid, clock, [&] { return applyPlan(p1, false, kNow, a1); });
  printPhase("apply (adds)", row.apply1, a1.added);
  checkApply(a1, n, 0);

  // ---- plan 2: nothing to do
  engine::PlanResult p2;
  row.plan2 = measure(dir, idp_pid, clock, [&] {
    p2 = plan(kNow);
    return p2.plan.actions.size();
  });
  printPhase("plan 2 (must be empty)", row.plan2, 0);
  report(p2);
  if (!p2.plan.actions.empty())
    fail("plan 2 has " + std::to_string(p2.plan.actions.size()) + " actions, expected none");
  else
    std::printf("    plan 2 is empty, as required\n");

  if (cfg.remove) {
    row.removed = true;
    const core::Instant later = kNow + core::days(600);  // every certification has expired
    engine::PlanResult p3;
    row.plan3 = measure(dir, idp_pid, clock, [&] {
      p3 = plan(later);
      return p3.plan.actions.size();
    });
    printPhase("plan 3 (all removals)", row.plan3, 0);
    report(p3);
    std::printf("    plan 3 state %s (brake: %zu removals, threshold %zu)\n", p3.state.c_str(),
                p3.plan.brake.removals, p3.plan.brake.threshold);
    if (core::countActions(p3.plan, core::ActionKind::Remove) != n)
      fail("plan 3 has " + std::to_string(p3.plan.actions.size()) + " actions, expected " +
           std::to_string(n) + " removals");
    engine::ApplyResult a3;
    row.apply3 = measure(dir, idp_pid, clock, [&] { return applyPlan(p3, true, later, a3); });
    printPhase("apply (removals)", row.apply3, a3.removed);
    checkApply(a3, 0, n);
    engine::PlanResult p4;
    row.plan4 = measure(dir, idp_pid, clock, [&] {
      p4 = plan(later);
      return p4.plan.actions.size();
    });
    printPhase("plan 4 (must be empty)", row.plan4, 0);
    if (!p4.plan.actions.empty())
      fail("plan 4 has " + std::to_string(p4.plan.actions.size()) + " actions, expected none");
    else
      std::printf("    plan 4 is empty, as required\n");
  }

  if (clock)
    std::printf("  paced: %s sleeps, %s of virtual time in all\n",
                commas(static_cast<double>(clock->sleeps.load())).c_str(),
                hours(static_cast<double>(clock->slept_ms.load()) / 1000.0).c_str());
  row.idp_peak_rss = processPeakRssMiB(idp_pid);
  std::printf("  peak RSS: bench_sync %.0f MiB, identity provider %.0f MiB\n", bench::peakRssMiB(),
              row.idp_peak_rss);
  st.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    fs::remove(db + suffix, ec);
  }
  return row;
}

std::vector<std::size_t> parseSizes(const std::string& text) {
  std::vector<std::size_t> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    char* end = nullptr;
    double v = std::strtod(part.c_str(), &end);
    if (end == part.c_str()) return {};
    if (*end == 'k' || *end == 'K') {
      v *= 1e3;
      ++end;
    } else if (*end == 'm' || *end == 'M') {
      v *= 1e6;
      ++end;
    }
    if (*end != '\0' || v < 1 || v > 10e6) return {};
    out.push_back(static_cast<std::size_t>(v));
  }
  return out;
}

void printSummary(const std::vector<Row>& rows) {
  std::printf("\nsummary (markdown)\n\n");
  std::printf("| Backend | N | Plan 1 incl. lookups | Lookups (count, ms each) | Apply | Requests "
              "(apply) | Requests/change | Time/change | certgate CPU/change | certgate CPU / wall "
              "(plan 1, apply) | IdP CPU (plan 1, apply) | Plan 2 (no change) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    const double changes = static_cast<double>(r.people);
    const double per_lookup =
        r.plan1.find.calls ? 1000.0 * r.plan1.find.seconds / static_cast<double>(r.plan1.find.calls)
                           : 0.0;
    std::printf("| %s | %s | %.2f s | %s%s, %.2f ms | %.2f s | %s | %.4f | %.3f ms | %.3f ms | %s, %s "
                "| %.1f s, %.1f s | %.2f s |%s\n",
                r.backend.c_str(), commas(changes).c_str(), r.plan1.wall,
                commas(static_cast<double>(r.plan1.find.calls)).c_str(),
                r.lookups < r.people ? (" of " + commas(changes)).c_str() : "", per_lookup,
                r.apply1.wall, commas(static_cast<double>(r.apply1.requests)).c_str(),
                static_cast<double>(r.apply1.requests) / changes, 1000.0 * r.apply1.wall / changes,
                1000.0 * r.apply1.cpu / changes, pct(r.plan1.cpu, r.plan1.wall).c_str(),
                pct(r.apply1.cpu, r.apply1.wall).c_str(), r.plan1.idp_cpu, r.apply1.idp_cpu,
                r.plan2.wall, r.ok ? "" : " FAILED");
  }
  bool any_remove = false, any_paced = false;
  for (const auto& r : rows) {
    any_remove = any_remove || r.removed;
    any_paced = any_paced || r.plan1.virtual_s + r.apply1.virtual_s > 0;
  }
  if (any_remove) {
    std::printf("\n| Backend | N | Plan (removals) | Apply (removals) | Requests | Requests/change | "
                "Time/change | certgate CPU/change | certgate CPU / wall (apply) | IdP CPU (apply) "
                "| Plan after |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& r : rows) {
      if (!r.removed) continue;
      const double changes = static_cast<double>(r.people);
      std::printf("| %s | %s | %.2f s | %.2f s | %s | %.4f | %.3f ms | %.3f ms | %s | %.1f s | %.2f s "
                  "|\n",
                  r.backend.c_str(), commas(changes).c_str(), r.plan3.wall, r.apply3.wall,
                  commas(static_cast<double>(r.apply3.requests)).c_str(),
                  static_cast<double>(r.apply3.requests) / changes,
                  1000.0 * r.apply3.wall / changes, 1000.0 * r.apply3.cpu / changes,
                  pct(r.apply3.cpu, r.apply3.wall).c_str(), r.apply3.idp_cpu, r.plan4.wall);
    }
  }
  if (any_paced) {
    std::printf("\n| Backend | N | Plan 1 (virtual) | Apply (virtual) | Removals (virtual) |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const auto& r : rows) {
      if (r.plan1.virtual_s + r.apply1.virtual_s <= 0) continue;
      std::printf("| %s | %s | %s | %s | %s |\n", r.backend.c_str(),
                  commas(static_cast<double>(r.people)).c_str(),
                  hours(r.plan1.virtual_s + r.plan1.wall).c_str(),
                  hours(r.apply1.virtual_s + r.apply1.wall).c_str(),
                  r.removed ? hours(r.plan3.virtual_s + r.apply3.virtual_s + r.plan3.wall +
                                    r.apply3.wall)
                                  .c_str()
                            : "-");
    }
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
  const auto sizes = parseSizes(args.take("people").value_or("10k,100k"));
  std::string backends = args.take("backend").value_or("all");
  Config cfg;
  cfg.remove = args.flag("remove");
  if (auto l = args.take("lookups")) {
    const auto v = parseSizes(*l);
    if (v.size() != 1) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    cfg.lookups = v[0];
  }
  cfg.rate_limit = args.integer("rate-limit", 600);
  cfg.okta_nagle = args.flag("okta-nagle");
  cfg.dir = args.take("dir").value_or("/tmp");
  args.done(kUsage);
  if (sizes.empty() || cfg.rate_limit < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (backends == "all") backends = "scim,okta,okta-paced,graph";
  std::vector<std::string> list;
  {
    std::stringstream ss(backends);
    std::string b;
    while (std::getline(ss, b, ','))
      if (!b.empty()) list.push_back(b);
  }
  for (const auto& b : list)
    if (b != "scim" && b != "okta" && b != "okta-paced" && b != "graph") {
      std::fprintf(stderr, "error: unknown backend '%s'\n%s", b.c_str(), kUsage);
      return 2;
    }

  std::printf("bench_sync: backends %s; people", backends.c_str());
  for (auto n : sizes) std::printf(" %s", commas(static_cast<double>(n)).c_str());
  std::printf("%s\n", cfg.remove ? "; with removals" : "");
  std::vector<Row> rows;
  int status = 0;
  for (const auto n : sizes)
    for (const auto& b : list) {
      try {
        rows.push_back(runScenario(b, n, cfg));
        if (!rows.back().ok) status = 1;
      } catch (const std::exception& e) {
        std::printf("  FAILED: %s\n", e.what());
        status = 1;
      }
    }
  printSummary(rows);
  return status;
}
