#include "cli/daemon.hpp"

#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/admin_api.hpp"
#include "cli/alert_commands.hpp"
#include "cli/serve_command.hpp"
#include "cli/sync_commands.hpp"
#include "engine/run_lock.hpp"
#include "store/store.hpp"

namespace certgate::cli {

using nlohmann::json;
using std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// RunSchedule

RunSchedule::RunSchedule(core::Seconds full_interval, core::Seconds jitter,
                         std::map<std::string, core::Seconds> source_intervals,
                         std::function<double()> random01)
    : full_interval_(full_interval),
      jitter_(jitter),
      source_intervals_(std::move(source_intervals)),
      random01_(std::move(random01)) {}

RunSchedule::TimePoint RunSchedule::after(TimePoint now, core::Seconds interval,
                                          core::Seconds jitter) const {
  const double share = random01_ ? std::clamp(random01_(), 0.0, 0.999999) : 0.0;
  const auto extra = std::chrono::milliseconds(
      static_cast<std::int64_t>(share * static_cast<double>(jitter.count()) * 1000.0));
  return now + interval + extra;
}

void RunSchedule::start(TimePoint now) {
  next_full_ = now;
  next_source_.clear();
  for (const auto& [name, interval] : source_intervals_) next_source_[name] = now;
}

void RunSchedule::reconfigure(core::Seconds full_interval, core::Seconds jitter,
                              std::map<std::string, core::Seconds> source_intervals,
                              TimePoint now) {
  full_interval_ = full_interval;
  jitter_ = jitter;
  next_full_ = std::min(next_full_, now + full_interval + jitter);
  std::map<std::string, TimePoint> next;
  for (const auto& [name, interval] : source_intervals) {
    auto it = next_source_.find(name);
    next[name] = it == next_source_.end() ? now : std::min(it->second, now + interval);
  }
  source_intervals_ = std::move(source_intervals);
  next_source_ = std::move(next);
}

RunSchedule::TimePoint RunSchedule::nextDue() const {
  TimePoint t = next_full_;
  for (const auto& [name, at] : next_source_) t = std::min(t, at);
  return t;
}

RunSchedule::Due RunSchedule::take(TimePoint now) {
  Due due;
  if (now >= next_full_) {
    due.full = true;
    next_full_ = after(now, full_interval_, jitter_);
  }
  for (auto& [name, at] : next_source_) {
    if (now < at) continue;
    due.sources.push_back(name);
    // Sources get a little jitter too (a tenth of their interval at most), so that many
    // daemons do not fetch a shared LMS in step.
    const auto interval = source_intervals_.at(name);
    at = after(now, interval, std::min(jitter_, core::Seconds(interval.count() / 10)));
  }
  return due;
}

// ---------------------------------------------------------------------------------------------

namespace detail {
namespace {

// A streambuf that hands every complete line to a sink (the journal).
class LineBuf : public std::streambuf {
 public:
  explicit LineBuf(std::function<void(std::string_view)> sink) : sink_(std::move(sink)) {}
  ~LineBuf() override {
    if (!line_.empty()) sink_(line_);
  }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return 0;
    if (c == '\n') {
      sink_(line_);
      line_.clear();
    } else {
      line_.push_back(static_cast<char>(c));
    }
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    for (std::streamsize i = 0; i < n; ++i) overflow(static_cast<unsigned char>(s[i]));
    return n;
  }

 private:
  std::function<void(std::string_view)> sink_;
  std::string line_;
};

// Log lines to stderr; under systemd (JOURNAL_STREAM set) with the sd-daemon priority prefix
// journald reads.
class Log {
 public:
  explicit Log(std::ostream& err) : err_(err), journal_(std::getenv("JOURNAL_STREAM") != nullptr) {}
  void info(std::string_view line) { write(SD_INFO, line); }
  void warn(std::string_view line) { write(SD_WARNING, line); }
  void error(std::string_view line) { write(SD_ERR, line); }

 private:
  void write(const char* prefix, std::string_view line) {
    std::lock_guard lock(mu_);
    if (journal_) err_ << prefix;
    err_ << line << '\n';
    err_.flush();
  }
  std::mutex mu_;
  std::ostream& err_;
  bool journal_;
};

std::map<std::string, core::Seconds> sourceIntervals(const settings::Settings& s) {
  std::map<std::string, core::Seconds> out;
  for (const auto& src : s.sources)
    if (src.enabled && src.interval.count() > 0) out[src.name] = src.interval;
  return out;
}

std::string isoNow(const Io& io) { return core::formatIso(io.now()); }

class Daemon {
 public:
  Daemon(Io& io, DaemonOptions options, settings::Settings loaded)
      : io_(io),
        options_(std::move(options)),
        log_(io.err),
        settings_(std::make_shared<const settings::Settings>(std::move(loaded))),
        schedule_(settings_->schedule.interval, settings_->schedule.jitter,
                  sourceIntervals(*settings_), [this] { return random01(); }) {}

  int main();

 private:
  double random01() {
    std::uniform_real_distribution<double> d(0.0, 1.0);
    return d(rng_);
  }
  std::shared_ptr<const settings::Settings> settings() {
    std::lock_guard lock(mu_);
    return settings_;
  }
  std::uint64_t enqueue(DaemonJob job);
  void worker();
  void execute(const DaemonJob& job, bool scheduled);
  void deliverAlerts();
  void reload();
  json state();
  Readiness readiness();
  void notifyStatus();
  std::string statusLine();

  Io& io_;
  DaemonOptions options_;
  Log log_;
  std::mt19937_64 rng_{std::random_device{}()};

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::shared_ptr<const settings::Settings> settings_;
  RunSchedule schedule_;
  std::deque<std::pair<std::uint64_t, DaemonJob>> queue_;
  std::uint64_t next_job_ = 1;
  bool running_job_ = false;
  std::string current_;  // what the worker does now
  std::int64_t last_run_id_ = 0;
  std::string last_outcome_;  // "" before the first run
  std::string last_run_at_;
  std::string last_why_;
  bool last_quarantined_ = false;
  std::uint64_t runs_done_ = 0;
  std::uint64_t runs_failed_ = 0;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_refused_ = 0;
  std::string last_reload_;
  std::string started_at_;

  std::atomic<bool> stop_{false};
  // Between runs the alert outbox is worked every kAlertTick, so an alert whose receiver was
  // down goes out soon after it is back, not at the next run.
  static constexpr std::chrono::seconds kAlertTick{30};
  steady_clock::time_point next_alert_tick_ = steady_clock::now() + kAlertTick;
};

void Daemon::deliverAlerts() {
  auto s = settings();
  if (!s->alerts.configured) return;
  // Only between runs: a run delivers its own alerts, and two dispatchers never work the
  // outbox at once.
  auto lock = engine::RunLock::acquire(engine::runLockPath(s->store_path), "certgate daemon alerts",
                                       std::chrono::milliseconds(0));
  if (!lock) return;
  LineBuf err_buf([this](std::string_view l) { log_.warn(l); });
  std::ostream err(&err_buf);
  std::ostringstream quiet;
  Io tick_io{quiet, err, io_.clock, io_.now_override};
  int code = kOk;
  auto st = openStore(tick_io, *s, false, code);
  if (st) syncAlerts(tick_io, *s, *st);
  err.flush();
}

std::uint64_t Daemon::enqueue(DaemonJob job) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    // The same person (or everybody) already waiting: that run will see this change too.
    for (auto& [qid, q] : queue_) {
      if (q.person == job.person) {
        for (auto& s : job.sources)
          if (std::find(q.sources.begin(), q.sources.end(), s) == q.sources.end())
            q.sources.push_back(s);
        q.fetch_all = q.fetch_all || job.fetch_all;
        return qid;
      }
    }
    id = next_job_++;
    queue_.emplace_back(id, std::move(job));
  }
  cv_.notify_all();
  return id;
}

std::string Daemon::statusLine() {
  // mu_ held by the caller.
  std::ostringstream s;
  if (running_job_) {
    s << "running: " << current_;
  } else if (last_outcome_.empty()) {
    s << "waiting for the first run";
  } else {
    s << "last run " << last_run_at_ << " " << last_outcome_;
    const auto in = std::chrono::duration_cast<std::chrono::seconds>(schedule_.nextDue() -
                                                                     steady_clock::now());
    s << "; next in " << std::max<std::int64_t>(0, in.count()) << "s";
  }
  if (!queue_.empty()) s << "; " << queue_.size() << " queued";
  return s.str();
}

void Daemon::notifyStatus() {
  std::string line;
  {
    std::lock_guard lock(mu_);
    line = statusLine();
  }
  sd_notify(0, ("STATUS=" + line).c_str());
}

json Daemon::state() {
  std::lock_guard lock(mu_);
  json j;
  j["started_at"] = started_at_;
  j["status"] = statusLine();
  j["running"] = running_job_;
  j["current"] = current_;
  j["queued"] = queue_.size();
  j["last_run"] = last_run_id_;
  j["last_outcome"] = last_outcome_;
  j["last_run_at"] = last_run_at_;
  j["last_trigger"] = last_why_;
  j["runs"] = runs_done_;
  j["runs_failed"] = runs_failed_;
  j["reloads_ok"] = reloads_ok_;
  j["reloads_refused"] = reloads_refused_;
  j["last_reload"] = last_reload_;
  j["config"] = settings_->config_file;
  return j;
}

Readiness Daemon::readiness() {
  std::lock_guard lock(mu_);
  Readiness r;
  if (last_outcome_.empty()) r.reasons.push_back("no run has finished yet");
  if (last_outcome_ == "failed") r.reasons.push_back("the last run failed (certgate runs)");
  if (last_quarantined_)
    r.reasons.push_back("a connector was quarantined in the last run (certgate runs)");
  r.ready = r.reasons.empty();
  return r;
}

void Daemon::reload() {
  sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
  std::ostringstream errors;
  Io quiet{errors, errors, io_.clock, io_.now_override};
  auto loaded = loadConfig(quiet, options_.config);
  if (!loaded) {
    std::string text = errors.str();
    log_.error("reload refused: the configuration has errors; the configuration loaded before "
               "stays in use. Fix these and send SIGHUP again:");
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) log_.error("  " + l);
    std::lock_guard lock(mu_);
    ++reloads_refused_;
    last_reload_ = isoNow(io_) + " refused";
  } else {
    const std::string old_listen = settings()->http.listen;
    if (loaded->http.listen != old_listen && options_.listen_override.empty())
      log_.warn("reload: http.listen changed; the server keeps " + old_listen +
                " until the daemon restarts");
    if (loaded->store_path != settings()->store_path)
      log_.warn("reload: store.path changed; runs use the new store from now on");
    auto next = std::make_shared<const settings::Settings>(std::move(*loaded));
    {
      std::lock_guard lock(mu_);
      schedule_.reconfigure(next->schedule.interval, next->schedule.jitter,
                            sourceIntervals(*next), steady_clock::now());
      settings_ = std::move(next);
      ++reloads_ok_;
      last_reload_ = isoNow(io_) + " ok";
    }
    log_.info("configuration reloaded from " + options_.config);
    cv_.notify_all();
  }
  sd_notify(0, "READY=1");
  notifyStatus();
}

void Daemon::execute(const DaemonJob& job, bool scheduled) {
  auto s = settings();
  const std::string what = (job.person.empty() ? std::string("everybody") : job.person) +
                           (job.why.empty() ? "" : " (" + job.why + ")");
  {
    std::lock_guard lock(mu_);
    running_job_ = true;
    current_ = what;
  }
  notifyStatus();

  // The run lock: a manual sync in progress is waited for, never overlapped.
  std::optional<engine::RunLock> lock;
  bool said = false;
  while (!stop_) {
    auto got = engine::RunLock::acquire(engine::runLockPath(s->store_path), "certgate daemon",
                                        std::chrono::milliseconds(1000));
    if (got) {
      lock.emplace(std::move(*got));
      break;
    }
    if (!said) {
      log_.info("waiting for the run lock: " + got.error().describe());
      said = true;
    }
  }
  SyncSummary summary;
  int code = kFailure;
  if (lock) {
    LineBuf out_buf([this](std::string_view l) { log_.info(l); });
    LineBuf err_buf([this](std::string_view l) { log_.warn(l); });
    std::ostream out(&out_buf), err(&err_buf);
    Io run_io{out, err, io_.clock, io_.now_override};
    settings::Settings copy = *s;
    int open_code = kOk;
    auto st = openStore(run_io, copy, false, open_code);
    if (st) {
      SyncRequest req;
      req.person = job.person;
      req.actor = "certgate";
      req.kind = scheduled ? "daemon" : job.person.empty() ? "daemon:trigger" : "daemon:person";
      req.stop = &stop_;
      if (job.fetch_all) {
        req.fetch = true;
      } else if (!job.sources.empty()) {
        req.fetch = true;
        req.only_sources = job.sources;
      } else {
        req.fetch = false;
      }
      log_.info("run: " + what);
      try {
        code = runSync(run_io, copy, *st, req, &summary);
      } catch (const std::exception& e) {
        log_.error(std::string("run failed: ") + e.what());
        summary.outcome = "failed";
        code = kFailure;
      }
    } else {
      summary.outcome = "failed";
    }
    out.flush();
    err.flush();
  }
  {
    std::lock_guard guard(mu_);
    running_job_ = false;
    current_.clear();
    if (lock) {
      ++runs_done_;
      if (summary.outcome == "failed") ++runs_failed_;
      // A person's run says little about the whole: readiness follows everybody's runs.
      if (job.person.empty() || last_outcome_.empty()) {
        last_outcome_ = summary.outcome;
        last_quarantined_ = summary.quarantined;
      }
      last_run_id_ = summary.run_id;
      last_run_at_ = isoNow(io_);
      last_why_ = job.why.empty() ? "schedule" : job.why;
    }
  }
  if (lock)
    log_.info("run " + std::to_string(summary.run_id) + " " + summary.outcome + ": +" +
              std::to_string(summary.added) + " -" + std::to_string(summary.removed) +
              (summary.failed ? ", " + std::to_string(summary.failed) + " failed" : "") +
              (summary.held ? ", removals held by the brake" : "") +
              (summary.interrupted
                   ? ", " + std::to_string(summary.interrupted) + " left for the next run"
                   : "") +
              " (exit " + std::to_string(code) + ")");
  notifyStatus();
}

void Daemon::worker() {
  for (;;) {
    DaemonJob job;
    bool scheduled = false;
    {
      std::unique_lock lock(mu_);
      const auto until = std::min(schedule_.nextDue(), next_alert_tick_);
      cv_.wait_until(lock, until, [&] {
        return stop_.load() || !queue_.empty() || steady_clock::now() >= until;
      });
      if (stop_) return;
      if (queue_.empty() && steady_clock::now() >= next_alert_tick_ &&
          steady_clock::now() < schedule_.nextDue()) {
        next_alert_tick_ = steady_clock::now() + kAlertTick;
        lock.unlock();
        deliverAlerts();
        continue;
      }
      if (!queue_.empty()) {
        job = std::move(queue_.front().second);
        queue_.pop_front();
      } else if (steady_clock::now() >= schedule_.nextDue()) {
        auto due = schedule_.take(steady_clock::now());
        scheduled = true;
        job.why = due.full ? "schedule" : "source interval";
        if (due.full) {
          // Sources without an interval of their own are fetched at every full reconcile.
          for (const auto& src : settings_->sources)
            if (src.enabled && src.interval.count() == 0) job.sources.push_back(src.name);
        }
        for (auto& name : due.sources)
          if (std::find(job.sources.begin(), job.sources.end(), name) == job.sources.end())
            job.sources.push_back(std::move(name));
      } else {
        continue;
      }
    }
    execute(job, scheduled);
  }
}

int Daemon::main() {
  started_at_ = isoNow(io_);
  auto s = settings();

  // One daemon per store.
  auto instance = engine::RunLock::acquire(engine::daemonLockPath(s->store_path),
                                           "certgate daemon", std::chrono::milliseconds(0));
  if (!instance) {
    core::Error e = instance.error();
    if (e.kind == core::ErrorKind::Conflict) {
      e.message = "another certgate daemon runs on this store" +
                  (engine::RunLock::holder(e.where).empty()
                       ? std::string()
                       : " (" + engine::RunLock::holder(e.where) + ")");
      e.hint = "stop it first (systemctl stop certgate), or point this one at another store";
    }
    return failWith(io_, e, kFailure);
  }

  // The store must open (and migrate) before we say READY.
  {
    int code = kOk;
    auto st = openStore(io_, *s, false, code);
    if (!st) return code;
  }

  // Signals are blocked before any thread starts (threads inherit the mask) and taken with
  // sigtimedwait() below: no handler ever runs inside a worker.
  sigset_t signals, previous;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  auto log_line = [this](std::string_view l) { log_.info(l); };
  int code = kOk;
  auto made = authorityOptions(io_, *s, options_.listen_override, options_.access_log, log_line,
                               code);
  if (!made) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return code;
  }
  auto ctx = std::make_shared<AdminApiContext>();
  ctx->config_path = options_.config;
  ctx->settings = [this] { return settings(); };
  if (!s->http.admin_token.empty()) {
    auto token = settings::readSecret(s->http.admin_token, s->base_dir);
    if (!token) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      return failWith(io_, token.error(), kConfigInvalid);
    }
    ctx->admin_token = *token;
    ctx->secrets.push_back(*token);
  } else {
    log_.warn("http.admin_token is not set: the admin API (/v1) refuses every request");
  }
  for (const auto& src : s->sources) {
    if (src.enabled && src.push_auth == settings::SourceSettings::PushAuth::Jwt) {
      // A key set that cannot be read would refuse every push: say so now, not at the first one.
      if (auto keys = readPushJwks(src); !keys) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        return failWith(io_, keys.error(), kConfigInvalid);
      }
    }
    if (src.push_secret.empty()) continue;
    auto secret = settings::readSecret(src.push_secret, s->base_dir);
    if (!secret) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      return failWith(io_, secret.error(), kConfigInvalid);
    }
    ctx->secrets.push_back(*secret);
  }
  if (!made->introspection_secret.empty()) ctx->secrets.push_back(made->introspection_secret);
  ctx->enqueue = [this](DaemonJob j) { return enqueue(std::move(j)); };
  ctx->state = [this] { return state(); };
  ctx->readiness = [this] { return readiness(); };
  ctx->clock = &io_.clock;
  ctx->log = log_line;
  made->mount = [ctx](http::Server& server) { mountAdminApi(server, ctx); };

  auto server = AuthorityServer::start(std::move(*made));
  if (!server) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return failWith(io_, server.error(), kFailure);
  }
  {
    std::lock_guard lock(mu_);
    schedule_.start(steady_clock::now());
  }
  std::thread worker_thread([this] { worker(); });
  log_.info("certgate daemon: listening on " + (*server)->address() + "; full reconcile every " +
            std::to_string(s->schedule.interval.count()) + "s (+ up to " +
            std::to_string(s->schedule.jitter.count()) + "s jitter); config " + options_.config);
  sd_notify(0, ("READY=1\nMAINPID=" + std::to_string(getpid())).c_str());
  notifyStatus();

  std::uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  const auto tick = watchdog ? std::chrono::microseconds(watchdog_usec / 2)
                             : std::chrono::microseconds(std::chrono::seconds(5));
  for (;;) {
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    timespec ts{};
    const auto us = tick.count();
    ts.tv_sec = static_cast<time_t>(us / 1'000'000);
    ts.tv_nsec = static_cast<long>((us % 1'000'000) * 1000);
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig == SIGHUP) {
      log_.info("SIGHUP: reloading " + options_.config);
      reload();
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      log_.info(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                ": finishing the change in flight, then stopping");
      break;
    }
  }

  sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the change in flight");
  stop_ = true;
  cv_.notify_all();
  // The worker finishes the change in flight and records it; past the stop timeout we go
  // anyway (whatever was cut off is an intent the next start recovers).
  auto done = std::async(std::launch::async, [&] { worker_thread.join(); });
  const auto limit = settings()->schedule.stop_timeout;
  if (done.wait_for(limit) != std::future_status::ready) {
    log_.error("the run in progress did not stop within schedule.stop_timeout (" +
               std::to_string(limit.count()) +
               "s); exiting now — the next start recovers its unfinished change");
    (*server)->stop();
    std::_Exit(kFailure);
  }
  (*server)->stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  log_.info("certgate daemon: stopped");
  return kOk;
}

}  // namespace

int cmdDaemon(Io& io, const DaemonOptions& options) {
  auto s = loadConfig(io, options.config);
  if (!s) return kConfigInvalid;
  Daemon d(io, options, std::move(*s));
  return d.main();
}

}  // namespace detail
}  // namespace certgate::cli
