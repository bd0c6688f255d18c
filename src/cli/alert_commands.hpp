#pragma once
// Alerts from the command line (src/cli/alert_commands.cpp): the sinks built from alerts.sinks,
// the step `certgate sync` ends with, and `certgate alerts list|deliver|test`.

#include <memory>
#include <string>
#include <vector>

#include "cli/context.hpp"
#include "connectors/common/redact.hpp"
#include "engine/alerts.hpp"
#include "ports/alert_sink.hpp"

namespace certgate::cli::detail {

// The configured sinks, built (no I/O yet); their secret values are registered with `redactor`.
struct AlertSinks {
  std::shared_ptr<connectors::http::Redactor> redactor =
      std::make_shared<connectors::http::Redactor>();
  std::vector<std::unique_ptr<ports::AlertSink>> owned;
  std::vector<engine::AlertSinkHandle> handles;
};
// Reads every sink's secrets. Errors name the sink and the secret reference, never a value.
core::Result<AlertSinks> buildAlertSinks(const settings::Settings& s);

// The end of a sync run: collect alerts from the audit log, runs and fetches, then deliver what
// is due within alerts.deliver_budget. Never fails the run: problems are warning lines on
// io.err. Does nothing without an alerts: section.
void syncAlerts(Io& io, const settings::Settings& s, store::Store& st);

int cmdAlertsList(Io& io, const std::string& config, const std::string& state, std::int64_t limit,
                  const std::string& format);
int cmdAlertsDeliver(Io& io, const std::string& config, const std::string& format);
int cmdAlertsTest(Io& io, const std::string& config, const std::string& sink);

}  // namespace certgate::cli::detail
