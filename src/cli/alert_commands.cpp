// certgate alerts list|deliver|test, and the alert step at the end of certgate sync.
#include "cli/alert_commands.hpp"

#include <nlohmann/json.hpp>

#include "cli/render.hpp"
#include "connectors/alert/email_sink.hpp"
#include "connectors/alert/http_sinks.hpp"
#include "connectors/alert/syslog_sink.hpp"
#include "connectors/common/webhook_signature.hpp"

namespace certgate::cli::detail {

namespace {

using nlohmann::json;

core::Result<std::string> secretOf(const settings::AlertSinkSettings& sink,
                                   const settings::SecretRef& ref, const std::string& what,
                                   const settings::Settings& s, connectors::http::Redactor& r) {
  auto value = settings::readSecret(ref, s.base_dir);
  if (!value) {
    core::Error e = value.error();
    e.message = "alert sink " + sink.name + ": " + what + ": " + e.message;
    return e;
  }
  r.add(*value);
  return value;
}

engine::DispatchOptions dispatchOptions(const AlertSinks& sinks) {
  engine::DispatchOptions o;
  auto redactor = sinks.redactor;
  o.redact = [redactor](std::string_view text) { return redactor->redact(text); };
  return o;
}

}  // namespace

core::Result<AlertSinks> buildAlertSinks(const settings::Settings& s) {
  AlertSinks out;
  for (const auto& cfg : s.alerts.sinks) {
    std::unique_ptr<ports::AlertSink> sink;
    if (cfg.kind == "email") {
      connectors::alert::EmailSinkOptions o;
      o.name = cfg.name;
      o.smtp.url = cfg.smtp_url;
      o.smtp.from = cfg.from;
      o.smtp.username = cfg.username;
      o.smtp.ca_file = cfg.ca_file;
      if (!cfg.username.empty()) {
        auto pass = secretOf(cfg, cfg.secret, "password", s, *out.redactor);
        if (!pass) return pass.error();
        o.smtp.password = *pass;
      }
      o.to = cfg.to;
      sink = std::make_unique<connectors::alert::EmailSink>(std::move(o));
    } else if (cfg.kind == "syslog") {
      connectors::alert::SyslogSinkOptions o;
      o.name = cfg.name;
      o.address = cfg.address;
      o.facility = cfg.facility;
      o.app_name = cfg.app_name;
      o.hostname = cfg.hostname;
      sink = std::make_unique<connectors::alert::SyslogSink>(std::move(o));
    } else {
      connectors::alert::HttpSinkOptions o;
      o.name = cfg.name;
      o.url = cfg.url;
      o.ca_file = cfg.ca_file;
      o.source = cfg.source;
      o.redactor = out.redactor;
      if (cfg.kind == "slack" || cfg.kind == "teams") {
        auto url = secretOf(cfg, cfg.url_secret, "url", s, *out.redactor);
        if (!url) return url.error();
        o.url = *url;
        if (o.url.rfind("https://", 0) != 0 && o.url.rfind("http://127.0.0.1", 0) != 0 &&
            o.url.rfind("http://localhost", 0) != 0)
          return core::makeError(core::ErrorKind::Invalid,
                                 "alert sink " + cfg.name + ": the URL in " +
                                     cfg.url_secret.describe() + " is not an https:// URL",
                                 cfg.where.str(), "put the webhook URL alone in that file");
      } else if (cfg.kind == "webhook") {
        auto secret = secretOf(cfg, cfg.secret, "signing_secret", s, *out.redactor);
        if (!secret) return secret.error();
        auto key = connectors::webhook::decodeSecret(*secret);
        if (!key)
          return core::makeError(core::ErrorKind::Invalid,
                                 "alert sink " + cfg.name + ": signing_secret (" +
                                     cfg.secret.describe() + ") is not a base64 secret",
                                 cfg.where.str(), "write whsec_ followed by base64 of 24-64 random bytes");
        out.redactor->add(*key);
        o.secret = *key;
      } else if (cfg.kind == "pagerduty") {
        auto key = secretOf(cfg, cfg.secret, "routing_key", s, *out.redactor);
        if (!key) return key.error();
        o.secret = *key;
      }
      sink = connectors::alert::makeHttpSink(cfg.kind, std::move(o));
    }
    if (!sink)
      return core::makeError(core::ErrorKind::Invalid, "unknown alert sink kind '" + cfg.kind + "'",
                             cfg.where.str());
    engine::AlertSinkHandle h;
    h.name = cfg.name;
    h.sink = sink.get();
    h.rate_per_minute =
        cfg.rate_per_minute > 0 ? cfg.rate_per_minute : engine::defaultRatePerMinute(cfg.kind);
    h.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeout);
    out.handles.push_back(h);
    out.owned.push_back(std::move(sink));
  }
  return out;
}

void syncAlerts(Io& io, const settings::Settings& s, store::Store& st) {
  if (!s.alerts.configured) return;
  auto sinks = buildAlertSinks(s);
  // Without its sinks the run still records the alerts: they wait in the outbox.
  std::vector<engine::AlertSinkHandle> handles;
  engine::DispatchOptions options;
  if (sinks) {
    handles = sinks->handles;
    options = dispatchOptions(*sinks);
  } else {
    io.err << "warning: alerts: " << sinks.error().describe() << "; alerts wait in the outbox\n";
  }
  auto done = engine::collectAndDeliverAlerts(
      st, s, handles, io.now(),
      std::chrono::duration_cast<std::chrono::milliseconds>(s.alerts.deliver_budget), options);
  if (!done) {
    io.err << "warning: alerts: " << done.error().describe() << '\n';
    return;
  }
  for (const auto& p : done->delivered.problems) io.err << "warning: " << p << '\n';
}

int cmdAlertsList(Io& io, const std::string& config, const std::string& state, std::int64_t limit,
                  const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto rows = opened->store->alertOutbox(state, limit);
  if (!rows) return failWith(io, rows.error(), kFailure);
  auto counts = opened->store->alertCounts();
  if (!counts) return failWith(io, counts.error(), kFailure);
  if (format == "json") {
    json j;
    j["alerts"] = json::array();
    for (const auto& r : *rows) {
      json a{{"id", r.id},
             {"sink", r.sink},
             {"dedup_id", r.dedup_id},
             {"kind", r.kind},
             {"severity", r.severity},
             {"state", r.state},
             {"attempts", r.attempts},
             {"created_at", core::formatIso(r.created_at)},
             {"next_attempt_at", core::formatIso(r.next_attempt_at)},
             {"last_error", r.last_error}};
      a["delivered_at"] = r.delivered_at ? json(core::formatIso(*r.delivered_at)) : json();
      a["alert"] = json::parse(r.payload_json, nullptr, false);
      j["alerts"].push_back(std::move(a));
    }
    j["counts"] = json::array();
    for (const auto& c : *counts)
      j["counts"].push_back(
          {{"sink", c.sink}, {"pending", c.pending}, {"delivered", c.delivered}, {"dead", c.dead}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  if (rows->empty()) {
    io.out << "no alerts" << (state.empty() ? "" : " in state " + state) << '\n';
  } else {
    Table t({"ID", "SINK", "ALERT", "KIND", "SEVERITY", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR"});
    for (const auto& r : *rows)
      t.add({std::to_string(r.id), r.sink, r.dedup_id, r.kind, r.severity, r.state,
             std::to_string(r.attempts),
             r.state == "pending" ? core::formatIso(r.next_attempt_at) : "-",
             r.last_error.empty() ? "-" : r.last_error});
    t.print(io.out);
  }
  if (!counts->empty()) {
    io.out << '\n';
    Table t({"SINK", "PENDING", "DELIVERED", "DEAD"});
    for (const auto& c : *counts)
      t.add({c.sink, std::to_string(c.pending), std::to_string(c.delivered),
             std::to_string(c.dead)});
    t.print(io.out);
  }
  return kOk;
}

int cmdAlertsDeliver(Io& io, const std::string& config, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  const settings::Settings& s = opened->settings;
  if (!s.alerts.configured) {
    io.err << "error: no alerts: section in " << s.config_file << '\n';
    return kConfigInvalid;
  }
  auto sinks = buildAlertSinks(s);
  if (!sinks) return failWith(io, sinks.error(), kConfigInvalid);
  engine::AlertCollector collector(*opened->store, s);
  auto collected = collector.collect(io.now());
  if (!collected) return failWith(io, collected.error(), kFailure);
  engine::AlertDispatcher dispatcher(*opened->store, s.alerts, sinks->handles,
                                     dispatchOptions(*sinks));
  // By hand there is no run to keep short: a minute, or the longest sink timeout if longer.
  std::chrono::milliseconds budget{60'000};
  for (const auto& h : sinks->handles) budget = std::max(budget, h.timeout);
  auto done = dispatcher.deliverDue(io.now(), budget);
  if (!done) return failWith(io, done.error(), kFailure);
  if (format == "json") {
    io.out << json{{"collected", collected->alerts},
                   {"enqueued", collected->enqueued},
                   {"attempted", done->attempted},
                   {"delivered", done->delivered},
                   {"retrying", done->retrying},
                   {"dead", done->dead},
                   {"deferred", done->deferred},
                   {"problems", done->problems}}
                  .dump(2)
           << '\n';
  } else {
    io.out << collected->enqueued << " new alert(s) queued; " << done->delivered << " delivered, "
           << done->retrying << " to retry, " << done->dead << " given up, " << done->deferred
           << " still waiting\n";
    for (const auto& p : done->problems) io.out << "  " << p << '\n';
  }
  return done->retrying + done->dead > 0 ? kFailure : kOk;
}

int cmdAlertsTest(Io& io, const std::string& config, const std::string& sink_name) {
  auto s = loadConfig(io, config);
  if (!s) return kConfigInvalid;
  auto sinks = buildAlertSinks(*s);
  if (!sinks) return failWith(io, sinks.error(), kConfigInvalid);
  for (const auto& h : sinks->handles) {
    if (h.name != sink_name) continue;
    const ports::Alert alert = engine::AlertCollector::testAlert(io.now());
    auto sent = h.sink->send(alert, io.now(), h.timeout);
    if (!sent) {
      io.err << "error: " << sinks->redactor->redact(sent.error().describe()) << '\n';
      return kFailure;
    }
    io.out << "sent test alert " << alert.id << " to " << sink_name << " (" << h.sink->kind()
           << ")\n";
    return kOk;
  }
  io.err << "error: no alert sink is named '" << sink_name << "'";
  if (!s->alerts.sinks.empty()) {
    io.err << "; configured:";
    for (const auto& c : s->alerts.sinks) io.err << ' ' << c.name;
  }
  io.err << '\n';
  return kNotFound;
}

}  // namespace certgate::cli::detail
