#include "cli/admin_api.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <cctype>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "cli/cli.hpp"
#include "cli/context.hpp"
#include "cli/lms_secrets.hpp"
#include "connectors/common/encoding.hpp"
#include "connectors/common/jwks.hpp"
#include "connectors/common/redact.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "connectors/registry.hpp"
#include "store/store.hpp"

namespace certgate::cli {

using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition format 0.0.4.

std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}

class PromText {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escapeLabel(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Time from certification to access, kept across scrapes: each scrape reads only the audit
// rows written since the previous one.
class LatencyHistogram {
 public:
  static constexpr double kBounds[] = {60,    300,    900,    1800,   3600,
                                       14400, 86400,  259200, 604800};
  void observe(double seconds) {
    for (std::size_t i = 0; i < std::size(kBounds); ++i)
      if (seconds <= kBounds[i]) ++buckets_[i];
    ++count_;
    sum_ += seconds;
  }
  core::Status catchUp(store::Store& st) {
    for (;;) {
      auto rows = st.accessLatencies(after_);
      if (!rows) return rows.error();
      for (const auto& r : *rows) {
        observe(static_cast<double>(std::max<std::int64_t>(0, r.seconds)));
        after_ = r.audit_id;
      }
      if (rows->size() < 10000) break;
    }
    auto head = st.lastAuditId();
    if (head && *head > after_) after_ = *head;  // rows that were not accesses
    return {};
  }
  void write(PromText& p) const {
    static constexpr char kName[] = "certgate_certification_to_access_seconds";
    p.family(kName, "histogram",
             "Time from a person's certification to the directory group change that gave "
             "them access.");
    for (std::size_t i = 0; i < std::size(kBounds); ++i) {
      const std::string le = number(kBounds[i]);
      p.sample("certgate_certification_to_access_seconds_bucket", {{"le", le}},
               static_cast<double>(buckets_[i]));
    }
    p.sample("certgate_certification_to_access_seconds_bucket", {{"le", "+Inf"}},
             static_cast<double>(count_));
    p.sample("certgate_certification_to_access_seconds_sum", {}, sum_);
    p.sample("certgate_certification_to_access_seconds_count", {}, static_cast<double>(count_));
  }

 private:
  std::int64_t after_ = 0;
  std::uint64_t buckets_[std::size(kBounds)] = {};
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// ---------------------------------------------------------------------------------------------

struct Shared {
  std::shared_ptr<AdminApiContext> ctx;
  std::mutex metrics_mu;
  LatencyHistogram latency;
  std::mutex replay_mu;
  // source -> webhook id -> seen at; and the order they came in (for the memory cap).
  std::map<std::string, std::unordered_map<std::string, std::int64_t>> seen;
  std::map<std::string, std::deque<std::string>> seen_order;
};

std::string scrub(const Shared& sh, std::string body) {
  for (const auto& secret : sh.ctx->secrets) {
    if (secret.size() < 4) continue;
    for (std::size_t at = body.find(secret); at != std::string::npos;
         at = body.find(secret, at)) {
      body.replace(at, secret.size(), "[redacted]");
      at += 10;
    }
  }
  return body;
}

http::Response jsonResponse(const Shared& sh, int status, const json& body) {
  http::Response r;
  r.status = status;
  r.body = scrub(sh, body.dump(2) + "\n");
  r.header("Cache-Control", "no-store");
  return r;
}

int statusForExit(int code) {
  switch (code) {
    case kOk:
    case kIncomplete:
    case kHeld:
      return 200;
    case kNotFound:
      return 404;
    case kUsage:
    case kConfigInvalid:
      return 400;
    case kStoreUnavailable:
      return 503;
    default:
      return 500;
  }
}

// Runs `certgate <args>` in-process with the daemon's configuration and answers with its JSON.
http::Response runCommand(const Shared& sh, std::vector<std::string> args) {
  auto settings = sh.ctx->settings();
  std::vector<std::string> argv{"certgate", "--config", sh.ctx->config_path};
  for (auto& a : args) argv.push_back(std::move(a));
  std::vector<const char*> raw;
  for (const auto& a : argv) raw.push_back(a.c_str());
  std::ostringstream out, err;
  int code = kFailure;
  {
    detail::t_running_settings = settings.get();
    struct Reset {
      ~Reset() { detail::t_running_settings = nullptr; }
    } reset;
    code = run(static_cast<int>(raw.size()), raw.data(), out, err, *sh.ctx->clock);
  }
  const int status = statusForExit(code);
  json body;
  const std::string text = out.str();
  auto parsed = json::parse(text, nullptr, false);
  if (!parsed.is_discarded() && !text.empty()) {
    body = std::move(parsed);
  } else if (!text.empty()) {
    body = json{{"output", text}};
  }
  std::string problems = err.str();
  while (!problems.empty() && problems.back() == '\n') problems.pop_back();
  if (status >= 400) {
    json e{{"error", status == 404 ? "not_found" : status == 400 ? "invalid_request"
                                                                 : "failed"},
           {"error_description", problems.empty() ? std::string("exit code ") +
                                                        std::to_string(code)
                                                  : problems}};
    if (!body.is_null()) e["output"] = body;
    body = std::move(e);
  } else if (!problems.empty()) {
    if (!body.is_object()) body = json{{"result", body}};
    body["warnings"] = problems;
  }
  auto r = jsonResponse(sh, status, body);
  r.header("X-Certgate-Exit-Code", std::to_string(code));
  return r;
}

// After an exception changed (approved, revoked): a run of just that person now, so that access
// follows within seconds rather than at the next scheduled run. Only on success; the answer is
// passed on unchanged.
http::Response reconcilePersonAfter(const Shared& sh, http::Response r, const std::string& why) {
  if (r.status != 200) return r;
  const auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("person") || !j["person"].is_string()) return r;
  DaemonJob job;
  job.person = j["person"].get<std::string>();
  job.why = why + " #" + (j.contains("id") ? j["id"].dump() : std::string("?"));
  sh.ctx->enqueue(std::move(job));
  return r;
}

std::optional<json> jsonBody(const http::Request& req, http::Response& error) {
  auto body = json::parse(req.body().empty() ? std::string("{}") : req.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    error = http::jsonError(400, "invalid_request", "the body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

std::string field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// ---------------------------------------------------------------------------------------------
// Pushes.

// Clock difference allowed for a pushed JWT's exp, nbf and iat.
constexpr std::int64_t kJwtLeewaySeconds = 60;

// The people named by a body in certgate's generic push shape:
//   {"person": "alice@example.org"} | {"person": {"employee_id": "E1", "email": "..."}}
//   | {"people": [ ...either form... ]}
core::Result<std::vector<std::string>> genericPushPeople(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return core::makeError(core::ErrorKind::Invalid, "the push body is not a JSON object", "",
                           "send {\"person\": {\"employee_id\": ...}} or {\"people\": [...]}");
  std::vector<std::string> out;
  auto one = [&](const json& p) {
    if (p.is_string()) {
      if (!p.get<std::string>().empty()) out.push_back(p.get<std::string>());
      return;
    }
    if (!p.is_object()) return;
    for (const char* k : {"employee_id", "email", "key"}) {
      auto it = p.find(k);
      if (it != p.end() && it->is_string() && !it->get<std::string>().empty()) {
        out.push_back(it->get<std::string>());
        return;
      }
    }
  };
  if (auto it = j.find("person"); it != j.end()) one(*it);
  if (auto it = j.find("people"); it != j.end() && it->is_array())
    for (const auto& p : *it) one(p);
  if (out.empty())
    return core::makeError(core::ErrorKind::Invalid, "the push names nobody", "",
                           "give \"person\" as an employee id or email, or an object with "
                           "employee_id or email");
  return out;
}


// A refusal (or a 503 when the source's own configuration cannot be read), or the value.
template <typename T>
class PushCheck {
 public:
  PushCheck(T value) : value_(std::move(value)) {}  // NOLINT: implicit, like Result
  PushCheck(http::Response refusal) : refusal_(std::move(refusal)) {}  // NOLINT
  explicit operator bool() const { return value_.has_value(); }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }
  http::Response error() const { return *refusal_; }

 private:
  std::optional<T> value_;
  std::optional<http::Response> refusal_;
};

http::Response refusePush(const Shared& sh, const std::string& source, std::string_view why) {
  if (sh.ctx->log) sh.ctx->log("push to " + source + " refused: " + std::string(why));
  return http::jsonError(401, "invalid_signature", why);
}

http::Response pushUnavailable(const Shared& sh, const std::string& source,
                               const core::Error& cause, std::string_view what) {
  if (sh.ctx->log) sh.ctx->log("push to " + source + ": " + cause.describe());
  return http::jsonError(503, "unavailable", what);
}

// Standard Webhooks (https://www.standardwebhooks.com): the webhook-id once the signature over
// "id.timestamp.body" matches and the timestamp is within the tolerance.
PushCheck<std::string> verifyStandardWebhook(const Shared& sh,
                                             const settings::SourceSettings& src,
                                             const settings::Settings& settings,
                                             const http::Request& req, std::int64_t now) {
  const std::string id = req.header("webhook-id");
  const std::string ts_text = req.header("webhook-timestamp");
  const std::string signature = req.header("webhook-signature");
  if (id.empty() || ts_text.empty() || signature.empty())
    return refusePush(sh, src.name,
                      "webhook-id, webhook-timestamp and webhook-signature are required");
  std::int64_t ts = 0;
  try {
    std::size_t used = 0;
    ts = std::stoll(ts_text, &used);
    if (used != ts_text.size())
      return refusePush(sh, src.name, "webhook-timestamp is not unix seconds");
  } catch (const std::exception&) {
    return refusePush(sh, src.name, "webhook-timestamp is not unix seconds");
  }
  if (std::llabs(now - ts) > sh.ctx->timestamp_tolerance_s)
    return refusePush(sh, src.name,
                      "webhook-timestamp is more than " +
                          std::to_string(sh.ctx->timestamp_tolerance_s) + " s away from now");
  auto secret = settings::readSecret(src.push_secret, settings.base_dir);
  if (!secret)
    return pushUnavailable(sh, src.name, secret.error(), "the source's push secret cannot be read");
  auto key = connectors::webhook::decodeSecret(*secret);
  if (!key)
    return pushUnavailable(sh, src.name, key.error(),
                           "the source's push secret is not valid base64");
  if (!connectors::webhook::verify(*key, id, ts, req.body(), signature))
    return refusePush(sh, src.name, "the signature does not match the body");
  return id;
}

// A body that is itself a JWT signed RS256 (Canvas Live Events over HTTPS with "Sign Payload":
// developerdocs.instructure.com/services/canvas/data-services/live-events/overview/
// file.data_service_setup). The key set is read from push_jwks at every push, so replacing the
// file rotates keys without a restart. Answers (replay id, claims): the id is "jti:<jti>" when
// the token has one, else the digest of the token.
PushCheck<std::pair<std::string, std::string>> verifyJwtPush(const Shared& sh,
                                                             const settings::SourceSettings& src,
                                                             std::string_view body,
                                                             std::int64_t now) {
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back())))
    body.remove_suffix(1);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front())))
    body.remove_prefix(1);
  auto keys = readPushJwks(src);
  if (!keys)
    return pushUnavailable(sh, src.name, keys.error(),
                           "the source's JWK Set (push_jwks) cannot be read or is not valid");
  connectors::jwt::JwtRules rules;
  rules.now = now;
  rules.leeway_s = kJwtLeewaySeconds;
  rules.issuer = src.push_jwt_issuer;
  auto jwt = connectors::jwt::verifyJwt(body, *keys, rules);
  if (!jwt) return refusePush(sh, src.name, jwt.error().message);
  std::string id = jwt->jti.empty() ? "sha256:" + connectors::encoding::sha256Hex(body)
                                    : "jti:" + jwt->jti;
  return std::make_pair(std::move(id), std::move(jwt->claims_json));
}

http::Response handlePush(Shared& sh, const http::Request& req) {
  const std::string prefix = "/hooks/lms/";
  const std::string source = req.path().substr(prefix.size());
  auto settings = sh.ctx->settings();
  const settings::SourceSettings* src = nullptr;
  for (const auto& s : settings->sources)
    if (s.name == source && s.enabled) src = &s;
  if (!src || !src->acceptsPushes())
    return http::jsonError(404, "not_found",
                           "no enabled source by this name accepts pushes (set push_secret, or "
                           "push_auth: jwt with push_jwks)");
  if (req.method() != "POST") return http::jsonError(405, "method_not_allowed", "use POST");

  const std::int64_t now =
      std::chrono::duration_cast<core::Seconds>(sh.ctx->clock->now().time_since_epoch()).count();
  // The message's id for the replay check, and the text the source reads.
  std::string id;
  std::string payload;
  if (src->push_auth == settings::SourceSettings::PushAuth::Jwt) {
    auto verified = verifyJwtPush(sh, *src, req.body(), now);
    if (!verified) return verified.error();
    id = std::move(verified->first);
    payload = std::move(verified->second);
  } else {
    auto checked = verifyStandardWebhook(sh, *src, *settings, req, now);
    if (!checked) return checked.error();
    id = std::move(*checked);
    payload = req.body();
  }

  {
    std::lock_guard lock(sh.replay_mu);
    auto& seen = sh.seen[source];
    auto& order = sh.seen_order[source];
    // Forget ids older than the tolerance window: their timestamps are refused anyway (a JWT
    // without exp is refused by its id only as long as it is remembered here).
    while (!order.empty()) {
      auto it = seen.find(order.front());
      if (it != seen.end() && now - it->second <= 2 * sh.ctx->timestamp_tolerance_s &&
          order.size() <= sh.ctx->replay_memory)
        break;
      if (it != seen.end()) seen.erase(it);
      order.pop_front();
    }
    if (seen.count(id))
      return http::jsonError(409, "replayed",
                             "this message (its webhook-id, or the JWT's jti or digest) was "
                             "accepted before; nothing was done again");
    seen.emplace(id, now);
    order.push_back(id);
  }

  // Who it concerns: the source's own push format first, else the generic shape.
  std::vector<std::string> people;
  std::string kind = "push";
  auto made = connectors::makeLmsSource(src->kind, src->name, src->options, settings->base_dir,
                                        detail::lmsSecretReader(*settings, nullptr), nullptr);
  bool read = false;
  bool unnamed = false;  // someone only the LMS's own user key names
  if (made) {
    auto ev = (*made)->parsePush(payload, sh.ctx->clock->now());
    if (ev) {
      read = true;
      kind = ev->kind.empty() ? kind : ev->kind;
      for (const auto& p : ev->people) {
        if (!p.employee_id.empty())
          people.push_back(p.employee_id);
        else if (!p.email.empty())
          people.push_back(p.email);
        else
          unnamed = true;
      }
    } else if (ev.error().kind != core::ErrorKind::Permanent) {
      return http::jsonError(400, "invalid_request", ev.error().describe());
    }
  }
  if (!read) {
    auto generic = genericPushPeople(payload);
    if (!generic) return http::jsonError(400, "invalid_request", generic.error().describe());
    people = std::move(*generic);
  }
  std::sort(people.begin(), people.end());
  people.erase(std::unique(people.begin(), people.end()), people.end());

  json jobs = json::array();
  constexpr std::size_t kMaxPeople = 50;
  if (people.size() > kMaxPeople || people.empty() || unnamed) {
    // Many people (or none we could name): one run for everybody after fetching the source.
    DaemonJob job;
    job.sources = {source};
    job.why = "push " + source + "/" + id;
    jobs.push_back(sh.ctx->enqueue(std::move(job)));
  } else {
    for (const auto& p : people) {
      DaemonJob job;
      job.person = p;
      job.sources = {source};
      job.why = "push " + source + "/" + id;
      jobs.push_back(sh.ctx->enqueue(std::move(job)));
    }
  }
  if (sh.ctx->log)
    sh.ctx->log("push " + source + "/" + id + " (" + kind + "): " +
                std::to_string(people.size()) + " person(s), run queued");
  return jsonResponse(sh, 202,
                      json{{"accepted", true}, {"event", kind}, {"people", people.size()},
                           {"jobs", jobs}});
}

}  // namespace

core::Result<std::vector<connectors::jwt::Jwk>> readPushJwks(const settings::SourceSettings& src) {
  std::ifstream in(src.push_jwks, std::ios::binary);
  std::ostringstream all;
  if (in) all << in.rdbuf();
  if (!in)
    return core::makeError(core::ErrorKind::Invalid,
                           "push_jwks of source '" + src.name + "': the JWK Set file cannot be read",
                           src.push_jwks,
                           "write the learning system's JWKS there (docs/connectors.md, canvas, "
                           "\"Live Events signed as JWTs\") and make it readable by certgate");
  auto keys = connectors::jwt::parseJwks(all.str(), src.push_jwks);
  if (!keys) {
    core::Error e = keys.error();
    e.message = "push_jwks of source '" + src.name + "': " + e.message;
    return e;
  }
  return keys;
}

bool bearerMatches(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty() || header.size() < kScheme.size()) return false;
  std::string scheme(header.substr(0, kScheme.size()));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer ") return false;
  const std::string_view given = header.substr(kScheme.size());
  // Digests first: the comparison takes the same time whatever the lengths.
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

void mountAdminApi(http::Server& server, std::shared_ptr<AdminApiContext> context) {
  auto sh = std::make_shared<Shared>();
  sh->ctx = std::move(context);

  server.route(http::Method::Get, "/readyz", [sh](const http::Request&) {
    Readiness r = sh->ctx->readiness();
    {
      store::OpenOptions o;
      o.read_only = true;
      auto st = store::Store::open(sh->ctx->settings()->store_path, o);
      if (!st) {
        r.ready = false;
        r.reasons.push_back("store: " + st.error().describe());
      }
    }
    return jsonResponse(*sh, r.ready ? 200 : 503,
                        json{{"status", r.ready ? "ready" : "not_ready"}, {"reasons", r.reasons}});
  });

  server.route(http::Method::Get, "/metrics", [sh](const http::Request&) {
    store::OpenOptions o;
    o.read_only = true;
    auto st = store::Store::open(sh->ctx->settings()->store_path, o);
    if (!st) return http::jsonError(503, "unavailable", "the store cannot be opened");
    auto m = (*st)->metricsSnapshot();
    if (!m) return http::jsonError(503, "unavailable", "the store cannot be read");
    PromText p;
    p.family("certgate_up", "gauge", "1 while the daemon serves.");
    p.sample("certgate_up", {}, 1);
    p.family("certgate_runs_total", "counter", "Runs by kind and outcome.");
    for (const auto& r : m->runs)
      p.sample("certgate_runs_total", {{"kind", r.kind}, {"outcome", r.outcome}},
               static_cast<double>(r.count));
    p.family("certgate_run_last_timestamp_seconds", "gauge",
             "When the newest run of each kind and outcome finished.");
    for (const auto& r : m->runs)
      p.sample("certgate_run_last_timestamp_seconds", {{"kind", r.kind}, {"outcome", r.outcome}},
               static_cast<double>(r.last_at));
    p.family("certgate_actions_total", "counter",
             "External changes (group and token) by kind and outcome.");
    for (const auto& a : m->actions)
      p.sample("certgate_actions_total", {{"kind", a.kind}, {"outcome", a.state}},
               static_cast<double>(a.count));
    p.family("certgate_source_complete", "gauge",
             "1 when the source's last fetch was complete (revocations may follow from it).");
    for (const auto& s : m->sources)
      p.sample("certgate_source_complete", {{"source", s.source}}, s.complete ? 1 : 0);
    p.family("certgate_source_last_fetch_timestamp_seconds", "gauge",
             "When the source's last fetch finished.");
    for (const auto& s : m->sources)
      p.sample("certgate_source_last_fetch_timestamp_seconds", {{"source", s.source}},
               static_cast<double>(s.last_fetch));
    p.family("certgate_source_last_complete_fetch_timestamp_seconds", "gauge",
             "When the source's last complete fetch finished (0: never).");
    for (const auto& s : m->sources)
      p.sample("certgate_source_last_complete_fetch_timestamp_seconds", {{"source", s.source}},
               static_cast<double>(s.last_complete_fetch));
    p.family("certgate_source_records", "gauge", "Records read by the source's last fetch.");
    for (const auto& s : m->sources)
      p.sample("certgate_source_records", {{"source", s.source}},
               static_cast<double>(s.records));
    p.family("certgate_quarantined_records", "gauge",
             "Records set aside (certgate quarantine), by source.");
    for (const auto& [source, n] : m->quarantined)
      p.sample("certgate_quarantined_records", {{"source", source}}, static_cast<double>(n));
    p.family("certgate_plans_held", "gauge",
             "Plans held by the blast-radius brake, waiting for an operator.");
    p.sample("certgate_plans_held", {}, static_cast<double>(m->held_plans));
    p.family("certgate_intents_pending", "gauge",
             "Changes begun and not yet completed (recovered by the next run).");
    p.sample("certgate_intents_pending", {}, static_cast<double>(m->pending_intents));
    p.family("certgate_tokens_live", "gauge", "Gateway tokens issued and not revoked.");
    for (const auto& [gw, n] : m->live_tokens)
      p.sample("certgate_tokens_live", {{"gateway", gw}}, static_cast<double>(n));
    if (auto alerts = (*st)->alertCounts(); alerts) {
      p.family("certgate_alerts", "gauge",
               "Alerts in the outbox by sink and state (pending, delivered, dead).");
      for (const auto& c : *alerts) {
        p.sample("certgate_alerts", {{"sink", c.sink}, {"state", "pending"}},
                 static_cast<double>(c.pending));
        p.sample("certgate_alerts", {{"sink", c.sink}, {"state", "delivered"}},
                 static_cast<double>(c.delivered));
        p.sample("certgate_alerts", {{"sink", c.sink}, {"state", "dead"}},
                 static_cast<double>(c.dead));
      }
    }
    {
      std::lock_guard lock(sh->metrics_mu);
      if (auto c = sh->latency.catchUp(**st); !c && sh->ctx->log)
        sh->ctx->log("metrics: " + c.error().describe());
      sh->latency.write(p);
    }
    const json state = sh->ctx->state();
    p.family("certgate_daemon_queue_length", "gauge", "Runs queued ahead of the schedule.");
    p.sample("certgate_daemon_queue_length", {}, state.value("queued", 0.0));
    p.family("certgate_daemon_last_run_success", "gauge",
             "1 when the daemon's last run did not fail.");
    p.sample("certgate_daemon_last_run_success", {},
             state.value("last_outcome", std::string()) == "failed" ? 0 : 1);
    p.family("certgate_config_reloads_total", "counter", "Configuration reloads by result.");
    p.sample("certgate_config_reloads_total", {{"result", "ok"}}, state.value("reloads_ok", 0.0));
    p.sample("certgate_config_reloads_total", {{"result", "refused"}},
             state.value("reloads_refused", 0.0));
    http::Response r;
    r.body = scrub(*sh, p.take());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });

  // The admin API: every /v1 route checks the bearer token first.
  auto guarded = [sh](auto fn) {
    return [sh, fn](const http::Request& req) -> http::Response {
      if (!bearerMatches(req.header("Authorization"), sh->ctx->admin_token)) {
        auto r = http::jsonError(401, "unauthorized",
                                 sh->ctx->admin_token.empty()
                                     ? "the admin API is off: set http.admin_token"
                                     : "send Authorization: Bearer <admin token>");
        r.header("WWW-Authenticate", "Bearer realm=\"certgate\"");
        return r;
      }
      return fn(req);
    };
  };
  using M = http::Method;
  auto get = [&](const std::string& path, auto fn) { server.route(M::Get, path, guarded(fn)); };
  auto post = [&](const std::string& path, auto fn) { server.route(M::Post, path, guarded(fn)); };

  get("/v1/status", [sh](const http::Request& req) {
    std::vector<std::string> a{"status", "--format", "json"};
    if (req.hasQuery("person")) a.insert(a.end(), {"--person", req.query("person")});
    if (req.hasQuery("track")) a.insert(a.end(), {"--track", req.query("track")});
    if (req.hasQuery("state")) a.insert(a.end(), {"--state", req.query("state")});
    if (req.hasQuery("expiring_within"))
      a.insert(a.end(), {"--expiring-within", req.query("expiring_within")});
    return runCommand(*sh, std::move(a));
  });
  get("/v1/explain", [sh](const http::Request& req) {
    if (req.query("person").empty())
      return http::jsonError(400, "invalid_request", "give ?person=KEY|EMPLOYEE_ID|EMAIL");
    return runCommand(*sh, {"explain", req.query("person"), "--format", "json"});
  });
  get("/v1/runs", [sh](const http::Request& req) {
    std::vector<std::string> a{"runs", "--format", "json"};
    if (req.hasQuery("limit")) a.insert(a.end(), {"--limit", req.query("limit")});
    return runCommand(*sh, std::move(a));
  });
  get("/v1/sources", [sh](const http::Request&) {
    return runCommand(*sh, {"sources", "--format", "json"});
  });
  get("/v1/quarantine", [sh](const http::Request& req) {
    std::vector<std::string> a{"quarantine", "--format", "json"};
    if (req.hasQuery("limit")) a.insert(a.end(), {"--limit", req.query("limit")});
    return runCommand(*sh, std::move(a));
  });
  get("/v1/plans", [sh](const http::Request& req) {
    if (req.hasQuery("id")) return runCommand(*sh, {"plans", "show", req.query("id"), "--format", "json"});
    return runCommand(*sh, {"plans", "list", "--format", "json"});
  });
  post("/v1/plans/approve", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    if (field(*b, "id").empty() || field(*b, "by").empty() || field(*b, "reason").empty())
      return http::jsonError(400, "invalid_request", "give id, by and reason");
    return runCommand(*sh, {"plans", "approve", field(*b, "id"), "--by", field(*b, "by"),
                            "--reason", field(*b, "reason")});
  });
  get("/v1/tokens", [sh](const http::Request& req) {
    std::vector<std::string> a{"tokens", "list", "--format", "json"};
    if (req.query("all") == "true" || req.query("all") == "1") a.push_back("--all");
    if (req.hasQuery("person")) a.insert(a.end(), {"--person", req.query("person")});
    return runCommand(*sh, std::move(a));
  });
  get("/v1/exceptions", [sh](const http::Request& req) {
    if (req.hasQuery("id"))
      return runCommand(*sh, {"exceptions", "show", req.query("id"), "--format", "json"});
    return runCommand(*sh, {"exceptions", "list", "--format", "json"});
  });
  post("/v1/exceptions", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    std::vector<std::string> a{"exceptions", "request", field(*b, "person"), field(*b, "track"),
                               "--requester", field(*b, "requester")};
    if (!field(*b, "start").empty()) a.insert(a.end(), {"--start", field(*b, "start")});
    if (!field(*b, "end").empty()) a.insert(a.end(), {"--end", field(*b, "end")});
    if (!field(*b, "days").empty()) a.insert(a.end(), {"--days", field(*b, "days")});
    if (auto j = b->find("justification"); j != b->end() && j->is_object())
      for (const auto& [k, v] : j->items())
        a.insert(a.end(), {"--field", k + "=" + (v.is_string() ? v.get<std::string>() : v.dump())});
    a.insert(a.end(), {"--format", "json"});
    return runCommand(*sh, std::move(a));
  });
  post("/v1/exceptions/approve", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    std::vector<std::string> a{"exceptions", "approve", field(*b, "id"), "--approver",
                               field(*b, "approver"), "--role", field(*b, "role"),
                               "--format", "json"};
    if (!field(*b, "comment").empty()) a.insert(a.end(), {"--comment", field(*b, "comment")});
    return reconcilePersonAfter(*sh, runCommand(*sh, std::move(a)), "exception approved");
  });
  post("/v1/exceptions/reject", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    return runCommand(*sh, {"exceptions", "reject", field(*b, "id"), "--by", field(*b, "by"),
                            "--reason", field(*b, "reason"), "--format", "json"});
  });
  post("/v1/exceptions/revoke", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    std::vector<std::string> a{"exceptions", "revoke", field(*b, "id"), "--by", field(*b, "by"),
                               "--format", "json"};
    if (!field(*b, "reason").empty()) a.insert(a.end(), {"--reason", field(*b, "reason")});
    return reconcilePersonAfter(*sh, runCommand(*sh, std::move(a)), "exception revoked");
  });
  post("/v1/sync", [sh](const http::Request& req) {
    http::Response error;
    auto b = jsonBody(req, error);
    if (!b) return error;
    DaemonJob job;
    job.person = field(*b, "person");
    job.fetch_all = b->value("fetch", true);
    job.why = "api";
    const std::uint64_t id = sh->ctx->enqueue(std::move(job));
    return jsonResponse(*sh, 202, json{{"queued", true}, {"job", id}});
  });
  get("/v1/daemon", [sh](const http::Request&) { return jsonResponse(*sh, 200, sh->ctx->state()); });

  server.routePrefix(M::Post, "/hooks/lms/", [sh](const http::Request& req) {
    return handlePush(*sh, req);
  });
}

}  // namespace certgate::cli
