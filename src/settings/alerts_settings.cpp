// The alerts: section of certgate.yaml (config/README.md, "alerts"): sinks, routes, retry.
#include <algorithm>
#include <set>
#include <string_view>
#include <vector>

#include "settings/yaml_support.hpp"

namespace certgate::settings::detail {

namespace {

constexpr std::string_view kAlertsKeys[] = {"sinks", "routes", "retry", "deliver_budget"};
constexpr std::string_view kRemindersKeys[] = {"sink", "escalate_to", "learn_url", "digest"};
constexpr std::string_view kDigestKeys[] = {"every", "horizon_days", "max_people"};
constexpr std::string_view kDigestEvery[] = {"off",      "daily",  "monday",   "tuesday", "wednesday",
                                             "thursday", "friday", "saturday", "sunday"};
constexpr std::string_view kRetryKeys[] = {"max_age", "base", "max"};
constexpr std::string_view kRouteKeys[] = {"events", "sinks", "min_severity"};
constexpr std::string_view kSinkKinds[] = {"webhook", "slack",  "teams",
                                           "pagerduty", "email", "syslog"};
constexpr std::string_view kWebhookKeys[] = {"name",    "kind",    "url",           "signing_secret",
                                             "timeout", "ca_file", "rate_per_minute"};
constexpr std::string_view kChatKeys[] = {"name", "kind", "url", "timeout", "ca_file",
                                          "rate_per_minute"};
constexpr std::string_view kPagerDutyKeys[] = {"name",    "kind",    "routing_key",    "url",
                                               "source",  "timeout", "ca_file",
                                               "rate_per_minute"};
constexpr std::string_view kEmailKeys[] = {"name",     "kind",     "smtp_url", "from",
                                           "to",       "username", "password", "timeout",
                                           "ca_file",  "rate_per_minute"};
constexpr std::string_view kSyslogKeys[] = {"name",     "kind",    "address",
                                            "facility", "app_name", "hostname",
                                            "timeout",  "rate_per_minute"};
constexpr std::string_view kAnyKeys[] = {
    "name",     "kind",     "url",      "signing_secret", "routing_key",    "source",
    "smtp_url", "from",     "to",       "username",       "password",       "address",
    "facility", "app_name", "hostname", "timeout",        "ca_file",        "rate_per_minute"};

// RFC 5424 section 6.2.1 facility names (the usual syslog spellings).
constexpr std::pair<std::string_view, int> kFacilities[] = {
    {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},  {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},  {"local0", 16}, {"local1", 17}, {"local2", 18},
    {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23}};

std::span<const std::string_view> keysOf(std::string_view kind) {
  if (kind == "webhook") return kWebhookKeys;
  if (kind == "slack" || kind == "teams") return kChatKeys;
  if (kind == "pagerduty") return kPagerDutyKeys;
  if (kind == "email") return kEmailKeys;
  if (kind == "syslog") return kSyslogKeys;
  return kAnyKeys;
}

bool isLoopbackHttp(const std::string& url) {
  return url.rfind("http://127.0.0.1", 0) == 0 || url.rfind("http://localhost", 0) == 0 ||
         url.rfind("http://[::1]", 0) == 0;
}

// An https:// URL (http:// to loopback only, for tests and local relays).
void httpsUrl(const FileReader& r, const Entry& e, const std::string& path, std::string& out) {
  auto v = r.string(e.value, path);
  if (!v) return;
  if (v->rfind("https://", 0) != 0 && !isLoopbackHttp(*v)) {
    r.error(e.value, path + " must be https:// (got '" + *v + "')",
            "alerts name people and access: they travel only over TLS; plain http is accepted "
            "for loopback only");
    return;
  }
  out = *v;
}

bool knownKind(std::string_view kind) {
  return std::any_of(std::begin(kAlertKinds), std::end(kAlertKinds),
                     [&](const char* k) { return kind == k; });
}

bool globMatchesAny(const std::string& pattern) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    const std::string prefix = pattern.substr(0, pattern.size() - 1);
    return std::any_of(std::begin(kAlertKinds), std::end(kAlertKinds),
                       [&](const char* k) { return std::string_view(k).starts_with(prefix); });
  }
  return knownKind(pattern);
}

std::string kindList() {
  std::vector<std::string> kinds(std::begin(kAlertKinds), std::end(kAlertKinds));
  return joinList(kinds);
}

void sink(const FileReader& r, const YAML::Node& node, const std::string& path,
          std::set<std::string>& names, Settings& s) {
  std::string kind;
  if (node.IsMap() && node["kind"] && node["kind"].IsScalar()) kind = node["kind"].Scalar();
  auto m = r.map(node, path, keysOf(kind));
  if (!m) return;
  AlertSinkSettings out;
  out.where = r.at(node);
  if (const Entry* n = r.require(*m, "name", path, "add name: a short name routes refer to")) {
    if (auto v = r.string(n->value, joinPath(path, "name"))) {
      if (!names.insert(*v).second)
        r.error(n->value, "alert sink name '" + *v + "' is used twice",
                "give every sink its own name");
      out.name = *v;
    }
  }
  if (const Entry* k = r.require(*m, "kind", path,
                                 "add kind: one of " + joinList(kSinkKinds))) {
    if (auto v = r.string(k->value, joinPath(path, "kind"))) {
      if (std::find(std::begin(kSinkKinds), std::end(kSinkKinds), std::string_view(*v)) ==
          std::end(kSinkKinds)) {
        r.error(k->value, "unknown alert sink kind '" + *v + "'",
                "use one of " + joinList(kSinkKinds));
        return;
      }
      out.kind = *v;
    }
  }
  if (out.kind.empty()) return;
  auto secret = [&](std::string_view key, SecretRef& ref, const std::string& hint) {
    if (const Entry* e = r.require(*m, key, path, hint))
      if (auto v = parseSecretRef(r, e->value, joinPath(path, key), s.base_dir)) ref = *v;
  };
  if (out.kind == "webhook") {
    if (const Entry* u = r.require(*m, "url", path, "add url: the HTTPS endpoint"))
      httpsUrl(r, *u, joinPath(path, "url"), out.url);
    secret("signing_secret", out.secret,
           "add signing_secret: {file: PATH} (a Standard Webhooks secret, whsec_...)");
  } else if (out.kind == "slack" || out.kind == "teams") {
    // The URL itself is the credential: it is read like any other secret.
    secret("url", out.url_secret,
           "add url: {file: PATH} or {credential: NAME}: the " +
               std::string(out.kind == "slack" ? "Slack incoming webhook" : "Teams Workflows") +
               " URL, which carries a token");
  } else if (out.kind == "pagerduty") {
    secret("routing_key", out.secret,
           "add routing_key: {file: PATH}: the integration key of an Events API v2 integration");
    out.url = "https://events.pagerduty.com/v2/enqueue";
    if (const Entry* u = FileReader::optional(*m, "url"))
      httpsUrl(r, *u, joinPath(path, "url"), out.url);
    out.source = "certgate";
    if (const Entry* e = FileReader::optional(*m, "source"))
      if (auto v = r.string(e->value, joinPath(path, "source"))) out.source = *v;
  } else if (out.kind == "email") {
    if (const Entry* u = r.require(*m, "smtp_url", path, "add smtp_url: smtps://HOST or smtp://HOST")) {
      if (auto v = r.string(u->value, joinPath(path, "smtp_url"))) {
        if (v->rfind("smtps://", 0) != 0 && v->rfind("smtp://", 0) != 0)
          r.error(u->value, joinPath(path, "smtp_url") + " must be smtps:// or smtp:// (got '" +
                                *v + "')",
                  "smtp:// requires STARTTLS except to a loopback host");
        else
          out.smtp_url = *v;
      }
    }
    if (const Entry* f = r.require(*m, "from", path, "add from: the sender address"))
      if (auto v = r.string(f->value, joinPath(path, "from"))) {
        if (v->find('@') == std::string::npos || v->find_first_of("\r\n") != std::string::npos)
          r.error(f->value, joinPath(path, "from") + " '" + *v + "' is not an email address",
                  "write e.g. certgate@example.org");
        else
          out.from = *v;
      }
    if (const Entry* t = r.require(*m, "to", path, "add to: [security@example.org]")) {
      if (auto items = r.stringItems(t->value, joinPath(path, "to"))) {
        for (const auto& [addr, n] : *items) {
          if (addr.find('@') == std::string::npos ||
              addr.find_first_of("\r\n<>") != std::string::npos)
            r.error(n, joinPath(path, "to") + ": '" + addr + "' is not an email address",
                    "write plain addresses, e.g. security@example.org");
          else
            out.to.push_back(addr);
        }
      }
    }
    const Entry* user = FileReader::optional(*m, "username");
    const Entry* pass = FileReader::optional(*m, "password");
    if (user)
      if (auto v = r.string(user->value, joinPath(path, "username"))) out.username = *v;
    if (pass)
      if (auto v = parseSecretRef(r, pass->value, joinPath(path, "password"), s.base_dir))
        out.secret = *v;
    if (user && !pass)
      r.error(user->value, joinPath(path, "username") + " is set but password is not",
              "add password: {file: PATH}");
    if (pass && !user)
      r.error(pass->value, joinPath(path, "password") + " is set but username is not",
              "add username:");
  } else if (out.kind == "syslog") {
    if (const Entry* a = r.require(*m, "address", path,
                                   "add address: udp://HOST:PORT or tcp://HOST:PORT")) {
      if (auto v = r.string(a->value, joinPath(path, "address"))) {
        const bool udp = v->rfind("udp://", 0) == 0;
        const bool tcp = v->rfind("tcp://", 0) == 0;
        const auto colon = v->rfind(':');
        const auto port = colon != std::string::npos && colon > 5
                              ? parseInteger(v->substr(colon + 1)).value_or(-1)
                              : -1;
        if ((!udp && !tcp) || port <= 0 || port > 65535)
          r.error(a->value,
                  joinPath(path, "address") + " must be udp://HOST:PORT or tcp://HOST:PORT (got '" +
                      *v + "')",
                  "e.g. udp://127.0.0.1:514 or tcp://siem.example.org:601");
        else
          out.address = *v;
      }
    }
    if (const Entry* f = FileReader::optional(*m, "facility")) {
      if (auto v = r.string(f->value, joinPath(path, "facility"))) {
        auto it = std::find_if(std::begin(kFacilities), std::end(kFacilities),
                               [&](const auto& p) { return p.first == *v; });
        if (it == std::end(kFacilities)) {
          std::vector<std::string> valid;
          for (const auto& p : kFacilities) valid.emplace_back(p.first);
          r.error(f->value, "unknown syslog facility '" + *v + "'", "use one of " + joinList(valid));
        } else {
          out.facility = it->second;
        }
      }
    }
    if (const Entry* a = FileReader::optional(*m, "app_name"))
      if (auto v = r.string(a->value, joinPath(path, "app_name"))) {
        if (v->size() > 48 || v->find_first_of(" \t\r\n") != std::string::npos)
          r.error(a->value, joinPath(path, "app_name") + " must be at most 48 printable characters",
                  "RFC 5424 limits APP-NAME to 48 characters without spaces");
        else
          out.app_name = *v;
      }
    if (const Entry* h = FileReader::optional(*m, "hostname"))
      if (auto v = r.string(h->value, joinPath(path, "hostname"))) {
        if (v->size() > 255 || v->find_first_of(" \t\r\n") != std::string::npos)
          r.error(h->value, joinPath(path, "hostname") + " must be at most 255 printable characters",
                  "RFC 5424 limits HOSTNAME to 255 characters without spaces");
        else
          out.hostname = *v;
      }
  }
  if (const Entry* t = FileReader::optional(*m, "timeout"))
    if (auto d = r.duration(t->value, joinPath(path, "timeout"))) {
      if (d->count() < 1 || d->count() > 120)
        r.error(t->value, joinPath(path, "timeout") + " must be between 1s and 120s",
                "15s to 30s suits most receivers");
      else
        out.timeout = *d;
    }
  if (const Entry* c = FileReader::optional(*m, "ca_file"))
    if (auto v = r.string(c->value, joinPath(path, "ca_file")))
      out.ca_file = resolvePath(s.base_dir, *v);
  if (const Entry* rate = FileReader::optional(*m, "rate_per_minute"))
    if (auto v = r.number(rate->value, joinPath(path, "rate_per_minute"), 0.1, 60000))
      out.rate_per_minute = *v;
  s.alerts.sinks.push_back(std::move(out));
}

void route(const FileReader& r, const YAML::Node& node, const std::string& path,
           const std::set<std::string>& sink_names, Settings& s) {
  auto m = r.map(node, path, kRouteKeys);
  if (!m) return;
  AlertRoute out;
  out.where = r.at(node);
  if (const Entry* e = r.require(*m, "events", path,
                                 "add events: [revocation, plan.held] (kinds or globs, '*' for all)")) {
    if (auto items = r.stringItems(e->value, joinPath(path, "events"))) {
      for (const auto& [pattern, n] : *items) {
        if (!globMatchesAny(pattern))
          r.error(n, joinPath(path, "events") + ": '" + pattern + "' names no alert kind",
                  "use one of " + kindList() + ", a prefix glob like 'revocation*', or '*'");
        else
          out.events.push_back(pattern);
      }
    }
  }
  if (const Entry* e = r.require(*m, "sinks", path, "add sinks: [NAME] (names from alerts.sinks)")) {
    if (auto items = r.stringItems(e->value, joinPath(path, "sinks"))) {
      for (const auto& [name, n] : *items) {
        if (!sink_names.count(name)) {
          std::vector<std::string> known(sink_names.begin(), sink_names.end());
          r.error(n, joinPath(path, "sinks") + ": no alert sink is named '" + name + "'",
                  known.empty() ? "add it under alerts.sinks"
                                : "use one of " + joinList(known) + ", or add it under alerts.sinks");
        } else {
          out.sinks.push_back(name);
        }
      }
    }
  }
  if (const Entry* e = FileReader::optional(*m, "min_severity")) {
    if (auto v = r.string(e->value, joinPath(path, "min_severity"))) {
      if (std::none_of(std::begin(kAlertSeverities), std::end(kAlertSeverities),
                       [&](const char* k) { return *v == k; }))
        r.error(e->value, "unknown severity '" + *v + "'", "use info, warning, error or critical");
      else
        out.min_severity = *v;
    }
  }
  s.alerts.routes.push_back(std::move(out));
}

}  // namespace

void loadAlerts(const FileReader& r, const YAML::Node& node, Settings& s) {
  auto m = r.map(node, "alerts", kAlertsKeys);
  if (!m) return;
  s.alerts.configured = true;
  std::set<std::string> names;
  if (const Entry* e = FileReader::optional(*m, "sinks")) {
    if (auto items = r.sequence(e->value, "alerts.sinks")) {
      std::size_t i = 0;
      for (const auto& item : *items) sink(r, item, indexPath("alerts.sinks", i++), names, s);
    }
  }
  if (const Entry* e = FileReader::optional(*m, "routes")) {
    if (auto items = r.sequence(e->value, "alerts.routes")) {
      std::size_t i = 0;
      for (const auto& item : *items) route(r, item, indexPath("alerts.routes", i++), names, s);
    }
  }
  if (const Entry* e = FileReader::optional(*m, "retry")) {
    if (auto rm = r.map(e->value, "alerts.retry", kRetryKeys)) {
      if (const Entry* v = FileReader::optional(*rm, "max_age"))
        if (auto d = r.duration(v->value, "alerts.retry.max_age")) s.alerts.max_age = *d;
      if (const Entry* v = FileReader::optional(*rm, "base"))
        if (auto d = r.duration(v->value, "alerts.retry.base")) s.alerts.retry_base = *d;
      if (const Entry* v = FileReader::optional(*rm, "max"))
        if (auto d = r.duration(v->value, "alerts.retry.max")) s.alerts.retry_max = *d;
      if (s.alerts.retry_base.count() < 1)
        r.error(rm->node, "alerts.retry.base must be at least 1s", "e.g. base: 5s");
      if (s.alerts.retry_max < s.alerts.retry_base)
        r.error(rm->node, "alerts.retry.max must not be shorter than alerts.retry.base",
                "e.g. base: 5s, max: 1h");
      if (s.alerts.max_age < s.alerts.retry_max)
        r.error(rm->node, "alerts.retry.max_age must not be shorter than alerts.retry.max",
                "keep alerts for days (default 3d) so a receiver's outage loses nothing");
    }
  }
  if (const Entry* e = FileReader::optional(*m, "deliver_budget")) {
    if (auto d = r.duration(e->value, "alerts.deliver_budget")) {
      if (d->count() < 0 || d->count() > 300)
        r.error(e->value, "alerts.deliver_budget must be between 0s and 5m",
                "a few seconds: what is not sent then waits for the next run");
      else
        s.alerts.deliver_budget = *d;
    }
  }
  if (s.alerts.sinks.empty() && !s.alerts.routes.empty())
    r.error(node, "alerts.routes is set but alerts.sinks is empty", "add at least one sink");
}

void loadReminders(const FileReader& r, const YAML::Node& node, Settings& s) {
  auto m = r.map(node, "reminders", kRemindersKeys);
  if (!m) return;
  RemindersSettings& out = s.reminders;
  out.configured = true;
  out.where = r.at(node);
  if (const Entry* e = FileReader::optional(*m, "sink")) {
    if (auto v = r.string(e->value, "reminders.sink")) {
      const auto sink = std::find_if(s.alerts.sinks.begin(), s.alerts.sinks.end(),
                                     [&](const AlertSinkSettings& k) { return k.name == *v; });
      if (sink == s.alerts.sinks.end())
        r.error(e->value, "reminders.sink '" + *v + "' is not a sink in alerts.sinks",
                "add an email sink to alerts.sinks and name it here");
      else if (sink->kind != "email")
        r.error(e->value,
                "reminders.sink '" + *v + "' is a " + sink->kind + " sink; reminders are emails",
                "name a sink of kind email (its smtp_url and from are used; the recipient is the "
                "person)");
      else
        out.sink = *v;
      if (!out.sink.empty() && s.alerts.routes.empty())
        r.warn(e->value, "alerts.routes is empty, so every alert also goes to sink '" + *v +
                             "' (to its to: addresses); add routes to keep security alerts apart");
    }
  }
  if (const Entry* e = FileReader::optional(*m, "escalate_to")) {
    if (auto items = r.stringItems(e->value, "reminders.escalate_to")) {
      for (const auto& [addr, n] : *items) {
        if (addr.find('@') == std::string::npos || addr.find_first_of("\r\n<>,") != std::string::npos)
          r.error(n, "reminders.escalate_to: '" + addr + "' is not an email address",
                  "write one plain address per item, e.g. peopleops@example.org");
        else
          out.escalate_to.push_back(addr);
      }
    }
  }
  if (const Entry* e = FileReader::optional(*m, "learn_url")) {
    if (auto v = r.string(e->value, "reminders.learn_url")) {
      if (v->rfind("https://", 0) != 0 && v->rfind("http://", 0) != 0)
        r.error(e->value, "reminders.learn_url must be an http(s) URL (got '" + *v + "')",
                "e.g. learn_url: https://lms.example.org/my/courses");
      else
        out.learn_url = *v;
    }
  }
  if (const Entry* e = FileReader::optional(*m, "digest")) {
    if (auto dm = r.map(e->value, "reminders.digest", kDigestKeys)) {
      if (const Entry* v = FileReader::optional(*dm, "every")) {
        if (auto every = r.string(v->value, "reminders.digest.every")) {
          if (std::find(std::begin(kDigestEvery), std::end(kDigestEvery), *every) ==
              std::end(kDigestEvery))
            r.error(v->value, "reminders.digest.every: unknown value '" + *every + "'",
                    "use off, daily or a weekday (monday ... sunday)");
          else
            out.digest_every = *every;
        }
      }
      if (const Entry* v = FileReader::optional(*dm, "horizon_days"))
        if (auto n = r.integer(v->value, "reminders.digest.horizon_days", 1, 366))
          out.digest_horizon_days = static_cast<int>(*n);
      if (const Entry* v = FileReader::optional(*dm, "max_people"))
        if (auto n = r.integer(v->value, "reminders.digest.max_people", 1, 100000))
          out.digest_max_people = static_cast<int>(*n);
    }
  }
  if (out.digest_every != "off" && !s.alerts.configured)
    r.warn(node, "reminders.digest needs an alerts: section with a sink to go to; no digest is sent");
}

}  // namespace certgate::settings::detail
