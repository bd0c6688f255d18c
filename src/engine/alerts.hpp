#pragma once
// Alerts: a projection of the append-only audit log, the runs and the fetches, delivered through
// an outbox (docs/operations.md "Alerts", docs/design.md "Alerts are a projection").
//
// AlertCollector::collect reads the audit rows, runs and fetches after its stored cursors, maps
// each to zero or more alerts, routes every alert to the configured sinks and inserts one
// outbox row per (alert, sink), together with the cursor advance, in ONE transaction: a crash
// before the commit leaves nothing written and the next collect reads the same rows again; after
// it, the rows are never read again. Every alert's id is derived from its origin ("audit-42",
// "run-7-failed", "fetch-9-incomplete", "exception-surge-2026-11-25") and the outbox is unique on
// (sink, id), so even collecting the same origin twice adds nothing.
//
// AlertDispatcher::deliverDue sends the due outbox rows within a time budget: one attempt per
// row per call, a per-sink pace (rate_per_minute), exponential backoff with jitter (at least the
// receiver's Retry-After) between attempts, and a row goes dead only once it is older than
// alerts.retry.max_age (or at once when the receiver refuses the payload as invalid). A failed
// attempt stops that sink for the rest of the call; delivery never fails a sync.
//
// Neither class is thread-safe; both use the Store from the calling thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "ports/alert_sink.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

// info 0 < warning 1 < error 2 < critical 3; -1 for anything else.
int severityRank(const std::string& severity);
// The kind's default pace when a sink sets no rate_per_minute (Slack about 1/s, PagerDuty 120
// calls/min per integration key, per the vendors' documents).
double defaultRatePerMinute(const std::string& sink_kind);
// True when `pattern` (a kind, a prefix glob "revocation*", or "*") matches `kind`.
bool alertKindMatches(const std::string& pattern, const std::string& kind);
// The sinks (names, in configuration order, each once) an alert of `kind` and `severity` goes
// to. No routes configured: every sink.
std::vector<std::string> routeAlert(const settings::AlertsSettings& alerts, const std::string& kind,
                                    const std::string& severity);

struct CollectResult {
  std::int64_t alerts = 0;    // alerts made from the rows read
  std::int64_t enqueued = 0;  // outbox rows inserted (an alert to two sinks is two)
  std::int64_t unrouted = 0;  // alerts no route sends anywhere
};

class AlertCollector {
 public:
  // Both must outlive the collector.
  AlertCollector(store::Store& store, const settings::Settings& settings);
  // See the header comment. Without an alerts: section (or without sinks) it reads and writes
  // nothing. Rows older than alerts.retry.max_age at `now` are passed over (the cursor moves
  // past them): enabling alerts on an old database does not replay its history. A run that is
  // still running holds the runs cursor (it is read once it finished) unless it started more
  // than a day ago (an interrupted run: passed over).
  core::Result<CollectResult> collect(core::Instant now);

  // The alert a test send produces (`certgate alerts test`): kind "test", id "test-<unix now>".
  static ports::Alert testAlert(core::Instant now);

 private:
  store::Store& store_;
  const settings::Settings& settings_;
};

// A built sink and how to pace it.
struct AlertSinkHandle {
  std::string name;
  ports::AlertSink* sink = nullptr;      // not owned
  double rate_per_minute = 60;
  std::chrono::milliseconds timeout{10'000};
};

struct DispatchOptions {
  // Seams for tests; the defaults use std::chrono::steady_clock, really sleep, and a random
  // device.
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> random01;  // uniform in [0, 1)
  // Applied to every error text before it is stored or returned (the sinks' secret values).
  std::function<std::string(std::string_view)> redact;
};

struct DeliverResult {
  std::int64_t attempted = 0;
  std::int64_t delivered = 0;
  std::int64_t retrying = 0;   // failed, another attempt is scheduled
  std::int64_t dead = 0;       // given up on in this call
  std::int64_t deferred = 0;   // due but not tried in this call (budget, pace, sink failing)
  std::vector<std::string> problems;  // one line per failed attempt, redacted
};

class AlertDispatcher {
 public:
  AlertDispatcher(store::Store& store, const settings::AlertsSettings& alerts,
                  std::vector<AlertSinkHandle> sinks, DispatchOptions options = {});
  // Sends due rows until `budget` (steady time) is used up. Store failures are errors; sink
  // failures are recorded on the rows and listed in `problems`.
  core::Result<DeliverResult> deliverDue(core::Instant now, std::chrono::milliseconds budget);
  // The delay before attempt `failed_attempts + 1` (failed_attempts >= 1): min(max, base *
  // 2^(failed_attempts-1)), with "equal jitter" (half of it fixed, half random), and never less
  // than `retry_after_s`.
  core::Seconds backoff(int failed_attempts, long retry_after_s) const;

 private:
  struct Pace {
    std::chrono::steady_clock::time_point next_send{};
  };
  store::Store& store_;
  const settings::AlertsSettings& alerts_;
  std::vector<AlertSinkHandle> sinks_;
  DispatchOptions options_;
  std::map<std::string, Pace> pace_;  // per sink, kept across calls
};

struct AlertRunResult {
  CollectResult collected;
  DeliverResult delivered;
};

// What `certgate sync` calls at the end of a run: collect, then deliver within `budget`.
// Without an alerts: section it does nothing.
core::Result<AlertRunResult> collectAndDeliverAlerts(store::Store& store,
                                                     const settings::Settings& settings,
                                                     std::vector<AlertSinkHandle> sinks,
                                                     core::Instant now,
                                                     std::chrono::milliseconds budget,
                                                     DispatchOptions options = {});

// The outbox row that queues `alert` for `sink`, due at once.
store::AlertOutboxRow outboxRow(const ports::Alert& alert, const std::string& sink,
                                core::Instant now);

// Parses an outbox row's payload back into the alert a sink sends.
core::Result<ports::Alert> alertFromRow(const store::AlertOutboxRow& row);

}  // namespace certgate::engine
