#pragma once
// `certgate daemon`: the long-running service (docs/operations.md, "The daemon").
//
//  - A scheduler runs a full reconcile every schedule.interval (plus a random share of
//    schedule.jitter), and fetches a source with its own `interval` when that falls due.
//  - Runs never overlap: each takes the store's run lock (engine/run_lock.hpp), which a manual
//    `certgate sync` takes too; a second daemon on the same store is refused at start.
//  - Pushes (POST /hooks/lms/<source>) and the admin API (POST /v1/sync) queue an early run,
//    of one person when they name one. The periodic full reconcile still runs: a lost push is
//    healed by it.
//  - sd_notify: READY=1 once the HTTP server listens, STATUS= after every run, WATCHDOG=1 at
//    half of WatchdogSec, RELOADING=1 / READY=1 around a reload, STOPPING=1 on SIGTERM.
//  - SIGHUP reloads the configuration after validating it; a file with errors is refused and
//    the configuration in use stays (the errors are logged).
//  - SIGTERM / SIGINT: the change in flight is finished and recorded, the rest of the plan is
//    left for the next run, and the process exits within schedule.stop_timeout.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/context.hpp"
#include "core/time.hpp"

namespace certgate::cli {

// When runs are due. Pure: monotonic time in, decisions out (tested as a table).
class RunSchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // `source_intervals`: sources with an interval of their own (the others are fetched at
  // every full reconcile). `random01` gives [0, 1) for the jitter.
  RunSchedule(core::Seconds full_interval, core::Seconds jitter,
              std::map<std::string, core::Seconds> source_intervals,
              std::function<double()> random01);

  // The first full reconcile is due at `now`; each source's first fetch with it.
  void start(TimePoint now);
  // New intervals (after a reload): what was due keeps its time unless the new interval
  // brings it earlier.
  void reconfigure(core::Seconds full_interval, core::Seconds jitter,
                   std::map<std::string, core::Seconds> source_intervals, TimePoint now);

  TimePoint nextDue() const;

  struct Due {
    bool full = false;                 // a full reconcile
    std::vector<std::string> sources;  // sources with their own interval that are due
  };
  // What is due at `now`; each returned item is rescheduled from `now`.
  Due take(TimePoint now);

 private:
  TimePoint after(TimePoint now, core::Seconds interval, core::Seconds jitter) const;

  core::Seconds full_interval_;
  core::Seconds jitter_;
  std::map<std::string, core::Seconds> source_intervals_;
  std::function<double()> random01_;
  TimePoint next_full_{};
  std::map<std::string, TimePoint> next_source_;
};

struct DaemonOptions {
  std::string config;
  std::string listen_override;  // HOST:PORT instead of http.listen
  bool access_log = false;
};

namespace detail {
int cmdDaemon(Io& io, const DaemonOptions& options);
}  // namespace detail

}  // namespace certgate::cli
