#include "connectors/lms/xapi/xapi_source.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "connectors/common/encoding.hpp"
#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "connectors/lms/xapi/statement.hpp"

namespace certgate::connectors::xapi {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;
using encoding::base64;
using encoding::excerpt;
using encoding::sha256Hex;
using encoding::urlEncode;
using options::OptionReader;

constexpr std::int64_t kMicros = 1'000'000;
constexpr std::size_t kMaxPagesPerQuery = 10'000'000;  // a loop guard, never a real limit

// ---- small helpers -----------------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

enum class Auth { Basic, OAuth2 };

struct Config {
  std::string endpoint;  // without a trailing '/'
  std::string origin;    // scheme://host[:port]
  Auth auth = Auth::Basic;
  std::string basic;     // "Basic <base64>"
  oauth2::ClientCredentialsConfig oauth;
  std::vector<Verb> verbs;
  std::size_t limit = 500;
  core::Seconds overlap{600};
  std::optional<std::int64_t> start_us;
  NormaliseOptions normalise;
  bool report_voided = true;
  std::string ca_file;
  core::Seconds timeout{60};
};

// The cursor: "<stored, microseconds ISO>;q=<query fingerprint>".
struct Cursor {
  std::optional<std::int64_t> stored_us;
  std::string query;
};

Cursor parseCursor(const std::string& text) {
  Cursor c;
  const auto semi = text.find(";q=");
  if (semi == std::string::npos) return c;
  c.stored_us = parseMicros(std::string_view(text).substr(0, semi));
  c.query = text.substr(semi + 3);
  return c;
}

// ---- the source --------------------------------------------------------------------------------

class XapiSource final : public ports::LmsSource {
 public:
  XapiSource(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
             http::ClientOptions client_options)
      : name_(std::move(name)), cfg_(std::move(cfg)), redactor_(std::move(redactor)) {
    if (!cfg_.ca_file.empty()) client_options.ca_file = cfg_.ca_file;
    client_options.total_timeout = std::chrono::duration_cast<http::Millis>(cfg_.timeout);
    client_options.connect_timeout =
        std::min(client_options.connect_timeout, client_options.total_timeout);
    if (redactor_) client_options.redactor = redactor_;
    client_ = std::make_unique<http::Client>(std::move(client_options));
    if (cfg_.auth == Auth::OAuth2) {
      cfg_.oauth.where = where();
      token_source_ = std::make_unique<oauth2::TokenSource>(*client_, cfg_.oauth, redactor_);
    }
    std::string q = cfg_.endpoint;
    for (const Verb v : cfg_.verbs) q += "\n" + verbIri(v);
    query_ = sha256Hex(q).substr(0, 16);
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "xapi"; }

  // An LRS forwarding statements (a statement forwarding / webhook feature): one Statement or
  // an array of them. The people are the actors of the statements certgate would use; the
  // statements themselves are fetched through the API like any others.
  core::Result<ports::PushEvent> parsePush(std::string_view body,
                                           core::Instant now) const override {
    (void)now;
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded())
      return core::makeError(ErrorKind::Invalid, "the push body is not JSON", where(),
                             "forward xAPI Statements (one, or an array) as JSON");
    if (doc.is_object() && doc.contains("statements")) doc = doc["statements"];
    if (!doc.is_array()) doc = nlohmann::json::array({doc});
    ports::PushEvent ev;
    ev.kind = "statements";
    for (std::size_t i = 0; i < doc.size(); ++i) {
      if (!doc[i].is_object() || !doc[i].contains("actor")) {
        // Not a Statement: let the receiver read certgate's generic push shape instead.
        if (i == 0 && doc.size() == 1) break;
        continue;
      }
      Normalised n = normalise(doc[i], cfg_.normalise, "push #" + std::to_string(i + 1));
      if (n.outcome != Normalised::Outcome::Record) continue;
      ports::PushPerson p;
      p.employee_id = n.record.employee_id;
      p.email = n.record.email;
      p.source_user = n.record.source_user;
      ev.people.push_back(std::move(p));
    }
    if (ev.people.empty() && !(doc.size() >= 1 && doc[0].is_object() && doc[0].contains("actor")))
      return core::makeError(ErrorKind::Permanent, "not a Statement forward", where(),
                             "the generic push shape applies");
    return ev;
  }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    try {
      return fetchAll(cursor, now, sink);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure while reading statements: ") + e.what(),
                             where());
    }
  }

 private:
  // How one query (one verb) ended.
  struct QueryState {
    bool complete = false;
    std::string problem;
  };
  struct FetchState {
    ports::FetchOutcome out;
    std::optional<std::int64_t> max_stored_us;
    std::optional<std::int64_t> consistent_us;  // lowest Consistent-Through answered
    std::int64_t now_us = 0;
  };

  std::string where() const { return "source '" + name_ + "'"; }
  core::Result<http::Response> get(const std::string& url);
  core::Error failure(const http::Response& response, const std::string& url) const;
  core::Result<QueryState> runQuery(Verb verb, std::optional<std::int64_t> since_us,
                                    FetchState& st, ports::RecordSink& sink);
  void readPage(const Json& statements, Verb verb, std::size_t page, FetchState& st,
                ports::RecordSink& sink, std::int64_t& records, std::int64_t& quarantined) const;
  core::Result<ports::FetchOutcome> fetchAll(const std::string& cursor, core::Instant now,
                                             ports::RecordSink& sink);

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<oauth2::TokenSource> token_source_;
  std::string query_;
};

core::Result<http::Response> XapiSource::get(const std::string& url) {
  http::Request req;
  req.method = http::Method::Get;
  req.url = url;
  req.headers.set("X-Experience-API-Version", kXapiVersion);
  req.headers.set("Accept", "application/json");
  for (int attempt = 0;; ++attempt) {
    if (cfg_.auth == Auth::Basic) {
      req.headers.set("Authorization", cfg_.basic);
    } else {
      auto token = token_source_->token();
      if (!token) return token.error();
      req.headers.set("Authorization", "Bearer " + *token);
    }
    auto resp = client_->sendWithRetry(req, http::RetryPolicy{});
    if (!resp) {
      core::Error e = resp.error();
      e.where = where();
      return e;
    }
    // An OAuth token may be revoked or expire early: fetch a new one once.
    if (resp->status == 401 && cfg_.auth == Auth::OAuth2 && attempt == 0) {
      token_source_->invalidate();
      continue;
    }
    return resp;
  }
}

core::Error XapiSource::failure(const http::Response& response, const std::string& url) const {
  const std::string request_line = "GET " + url;
  core::Status st = http::classify(response, request_line, -1, redactor_.get());
  core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
  std::string detail;
  const Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    for (const char* k : {"message", "error_description", "error"}) {
      const auto it = doc.find(k);
      if (it != doc.end() && it->is_string()) {
        detail = it->get<std::string>();
        break;
      }
    }
  } else if (!trim(response.body).empty()) {
    detail = excerpt(trim(response.body));
  }
  std::string message = request_line + " answered HTTP " + std::to_string(response.status);
  if (!detail.empty()) message += ": " + detail;
  if (e.retry_after_s > 0) message += " (Retry-After " + std::to_string(e.retry_after_s) + " s)";
  e.message = redactor_ ? redactor_->redact(message) : http::redact(message);
  e.where = where();
  if (e.kind == ErrorKind::Auth)
    e.hint = response.status == 403
                 ? "the LRS accepted the credentials but refuses to read statements: give them "
                   "read access to all statements (e.g. scope statements/read or all/read)"
                 : "check username and password (or the OAuth client) of the source";
  return e;
}

void XapiSource::readPage(const Json& statements, Verb verb, std::size_t page, FetchState& st,
                          ports::RecordSink& sink, std::int64_t& records,
                          std::int64_t& quarantined) const {
  std::size_t index = 0;
  for (const Json& s : statements) {
    ++index;
    const std::string location = std::string(toString(verb)) + " page " + std::to_string(page) +
                                 " #" + std::to_string(index);
    Normalised n = normalise(s, cfg_.normalise, location);
    if (n.stored_us && (!st.max_stored_us || *n.stored_us > *st.max_stored_us))
      st.max_stored_us = n.stored_us;
    switch (n.outcome) {
      case Normalised::Outcome::Record:
        sink.record(std::move(n.record));
        ++records;
        break;
      case Normalised::Outcome::Quarantine: {
        ports::QuarantinedRecord q;
        q.external_id = n.statement_id;
        q.location = location + (n.statement_id.empty() ? "" : " (statement " + n.statement_id + ")");
        q.reason = std::move(n.reason);
        q.raw = excerpt(s.dump(), 300);
        sink.quarantine(std::move(q));
        ++quarantined;
        break;
      }
      case Normalised::Outcome::Voiding: {
        if (!cfg_.report_voided) break;
        ports::QuarantinedRecord q;
        q.external_id = n.voided_id;
        q.location = location + " (voiding statement " + n.statement_id + ")";
        q.reason = "statement " + n.voided_id + " was voided in the LRS by statement " +
                   n.statement_id +
                   ": the LRS no longer returns it, so certgate does not store it from now on; a "
                   "fact certgate already stored from it stays: review that person's evidence";
        q.raw = excerpt(s.dump(), 300);
        sink.quarantine(std::move(q));
        ++quarantined;
        break;
      }
      case Normalised::Outcome::Ignore:
        break;
    }
  }
}

core::Result<XapiSource::QueryState> XapiSource::runQuery(Verb verb,
                                                          std::optional<std::int64_t> since_us,
                                                          FetchState& st, ports::RecordSink& sink) {
  QueryState q;
  std::string url = cfg_.endpoint + "/statements?verb=" + urlEncode(verbIri(verb)) +
                    "&limit=" + std::to_string(cfg_.limit) + "&ascending=true";
  if (since_us) url += "&since=" + urlEncode(formatMicros(*since_us));
  const std::string label = toString(verb);
  for (std::size_t page = 1; page <= kMaxPagesPerQuery; ++page) {
    const std::string at = label + " page " + std::to_string(page);
    auto resp = get(url);
    if (!resp) {
      if (resp.error().kind == ErrorKind::Auth) return resp.error();
      q.problem = at + ": " + resp.error().message;
      return q;
    }
    if (resp->status != 200) {
      core::Error e = failure(*resp, url);
      if (e.kind == ErrorKind::Auth) return e;
      q.problem = at + ": " + e.message;
      return q;
    }
    const Json doc = Json::parse(resp->body, nullptr, false);
    const Json* statements = nullptr;
    if (doc.is_object())
      if (auto it = doc.find("statements"); it != doc.end() && it->is_array()) statements = &*it;
    if (statements == nullptr) {
      q.problem = at + ": the answer is not a StatementResult (" +
                  (doc.is_discarded() ? std::string("not JSON, or cut off")
                                      : std::string("no statements array")) +
                  ")";
      return q;
    }
    std::int64_t consistent = st.now_us;
    if (auto h = resp->headers.get("X-Experience-API-Consistent-Through"))
      if (auto v = parseMicros(trim(*h))) consistent = *v;
    if (!st.consistent_us || consistent < *st.consistent_us) st.consistent_us = consistent;

    if (!statements->empty()) {
      ports::UnitInfo unit;
      unit.key = "sha256:" + sha256Hex(resp->body);
      unit.name = at;
      unit.bytes = static_cast<std::int64_t>(resp->body.size());
      unit.incremental = true;
      ++st.out.units_seen;
      if (sink.alreadyProcessed(unit)) {
        ++st.out.units_skipped;
        for (const Json& s : *statements) {
          if (!s.is_object()) continue;
          const auto it = s.find("stored");
          if (it == s.end() || !it->is_string()) continue;
          if (auto v = parseMicros(it->get_ref<const std::string&>()))
            if (!st.max_stored_us || *v > *st.max_stored_us) st.max_stored_us = v;
        }
      } else {
        sink.beginUnit(unit);
        std::int64_t records = 0, quarantined = 0;
        readPage(*statements, verb, page, st, sink, records, quarantined);
        sink.endUnit(unit, true, "");
        st.out.records += records;
        st.out.quarantined += quarantined;
      }
    }

    std::string more;
    if (auto it = doc.find("more"); it != doc.end() && it->is_string()) more = it->get<std::string>();
    more = std::string(trim(more));
    if (more.empty()) {
      q.complete = true;
      return q;
    }
    std::string next;
    if (more.front() == '/') {
      next = cfg_.origin + more;
    } else if (auto origin = options::originOf(more); origin && *origin == cfg_.origin) {
      next = more;
    } else {
      q.problem = at + ": the `more` link " + excerpt(more, 120) +
                  " is neither a path nor on the endpoint's origin; certgate does not follow it";
      return q;
    }
    if (next == url) {
      q.problem = at + ": the LRS answered the same `more` link again; stopped to avoid a loop";
      return q;
    }
    url = std::move(next);
  }
  q.problem = label + ": more than " + std::to_string(kMaxPagesPerQuery) + " pages";
  return q;
}

core::Result<ports::FetchOutcome> XapiSource::fetchAll(const std::string& cursor_text,
                                                       core::Instant now,
                                                       ports::RecordSink& sink) {
  FetchState st;
  st.now_us = now.time_since_epoch().count() * kMicros;
  Cursor cursor = parseCursor(cursor_text);
  if (cursor.query != query_) cursor.stored_us.reset();  // another endpoint or verb list
  std::optional<std::int64_t> since = cfg_.start_us;
  if (cursor.stored_us) {
    since = *cursor.stored_us - cfg_.overlap.count() * kMicros;
    if (cfg_.start_us && *since < *cfg_.start_us) since = cfg_.start_us;
  }

  std::vector<std::string> problems;
  for (const Verb v : cfg_.verbs) {
    auto q = runQuery(v, since, st, sink);
    if (!q) return q.error();
    if (!q->complete) {
      problems.push_back(q->problem);
      // The LRS is failing: the remaining queries would fail the same way, after retries.
      break;
    }
  }
  ports::FetchOutcome& out = st.out;
  out.complete = problems.empty();
  if (!out.complete) {
    out.problem = problems.front();
    return out;  // the previous cursor stays
  }
  // Every statement stored *before* consistent-through was readable, and the queries returned
  // each one stored after `since`: nothing up to min(last stored seen, consistent-through) can
  // be missing, and with no statement at all nothing up to consistent-through. `since` is
  // exclusive and a statement stored exactly at consistent-through may still appear, so the
  // cursor stays one microsecond before it.
  std::optional<std::int64_t> next = cursor.stored_us;
  std::optional<std::int64_t> candidate = st.max_stored_us;
  if (st.consistent_us) {
    const std::int64_t bound = *st.consistent_us - 1;
    if (!candidate || bound < *candidate) candidate = bound;
  }
  if (candidate && (!next || *candidate > *next)) next = candidate;
  if (next) out.next_cursor = formatMicros(*next) + ";q=" + query_;
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

core::Result<std::string> readSecret(const OptionReader& opts, const std::string& key,
                                     const ports::SecretReader& secrets) {
  return opts.secret(
      key, secrets,
      {.inline_message = "a secret is given as {file: PATH} or {credential: NAME}, never inline",
       .inline_hint = "e.g. " + key + ": {file: /etc/certgate/lrs-" + key + "}",
       .no_reader_hint = "secrets are read by certgate's configuration loader",
       .empty_hint = "put the value in the secret file"});
}

core::Result<std::unique_ptr<ports::LmsSource>> build(const std::string& name,
                                                     const ports::Options& options,
                                                     const std::string& base_dir,
                                                     const ports::SecretReader& secrets,
                                                     std::shared_ptr<http::Redactor> redactor,
                                                     http::ClientOptions client_options) {
  const OptionReader opts("source '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;

  auto endpoint = opts.required(
      "endpoint", "the LRS's xAPI base URL, the one /statements hangs off, e.g. "
                  "https://lrs.example.com/data/xAPI");
  if (!endpoint) return endpoint.error();
  cfg.endpoint = *endpoint;
  while (!cfg.endpoint.empty() && cfg.endpoint.back() == '/') cfg.endpoint.pop_back();
  if (cfg.endpoint.find('?') != std::string::npos || cfg.endpoint.find('#') != std::string::npos)
    return opts.error("endpoint", "'" + cfg.endpoint + "' carries a query or fragment",
                      "give the base URL only, e.g. https://lrs.example.com/data/xAPI",
                      opts.find("endpoint"));
  auto origin = opts.url("endpoint", cfg.endpoint,
                         {.not_url = "'" + cfg.endpoint + "' is not an absolute http(s) URL",
                          .not_url_hint = "e.g. https://lrs.example.com/data/xAPI",
                          .plain_http = "'" + cfg.endpoint +
                                        "' must use https (plain http only to 127.0.0.1, "
                                        "localhost or [::1])",
                          .plain_http_hint = "use the LRS's https URL"});
  if (!origin) return origin.error();
  cfg.origin = *origin;
  // The origin is lower-cased; keep the endpoint's path as written after it.
  cfg.endpoint = cfg.origin + cfg.endpoint.substr(cfg.origin.size());

  auto auth = opts.choice("auth", "basic", {"basic", "oauth2"});
  if (!auth) return auth.error();
  cfg.auth = *auth == "oauth2" ? Auth::OAuth2 : Auth::Basic;
  if (cfg.auth == Auth::Basic) {
    for (const char* k : {"client_id", "client_secret", "token_url", "scope", "client_auth"})
      if (opts.find(k) != nullptr)
        return opts.error(k, "applies only with auth oauth2", "remove it or set auth: oauth2",
                          opts.find(k));
    auto username = opts.required("username", "the LRS credentials' key or user name",
                                  "is required with auth basic");
    if (!username) return username.error();
    if (opts.find("password") == nullptr)
      return opts.error("password", "is required with auth basic",
                        "password: {file: PATH} or {credential: NAME} holding the LRS secret");
    auto password = readSecret(opts, "password", secrets);
    if (!password) return password.error();
    if (username->find(':') != std::string::npos)
      return opts.error("username", "contains ':', which HTTP Basic cannot carry",
                        "use the LRS key without ':'", opts.find("username"));
    cfg.basic = "Basic " + base64(*username + ":" + *password);
    if (redactor) {
      redactor->add(*password);
      redactor->add(cfg.basic.substr(6));
    }
  } else {
    for (const char* k : {"username", "password"})
      if (opts.find(k) != nullptr)
        return opts.error(k, "applies only with auth basic",
                          "with auth oauth2 give client_id, client_secret and token_url",
                          opts.find(k));
    auto client_id = opts.required("client_id", "the OAuth client id the LRS issued",
                                   "is required with auth oauth2");
    if (!client_id) return client_id.error();
    cfg.oauth.client_id = *client_id;
    auto token_url = opts.required("token_url", "the authorization server's token endpoint",
                                   "is required with auth oauth2");
    if (!token_url) return token_url.error();
    auto token_origin = opts.url(
        "token_url", *token_url,
        {.not_url = "'" + *token_url + "' is not an absolute http(s) URL",
         .not_url_hint = "e.g. https://lrs.example.com/oauth/token",
         .plain_http = "'" + *token_url + "' must use https (plain http only to the loopback)",
         .plain_http_hint = "use the token endpoint's https URL"});
    if (!token_origin) return token_origin.error();
    cfg.oauth.token_url = *token_url;
    if (opts.find("client_secret") == nullptr)
      return opts.error("client_secret", "is required with auth oauth2",
                        "client_secret: {file: PATH} or {credential: NAME}");
    auto secret = readSecret(opts, "client_secret", secrets);
    if (!secret) return secret.error();
    cfg.oauth.client_secret = *secret;
    if (redactor) redactor->add(cfg.oauth.client_secret);
    auto scope = opts.scalar("scope");
    if (!scope) return scope.error();
    cfg.oauth.scope = scope->value_or("");
    auto client_auth = opts.choice("client_auth", "client_secret_basic",
                                   {"client_secret_basic", "client_secret_post"});
    if (!client_auth) return client_auth.error();
    cfg.oauth.auth = *client_auth == "client_secret_post" ? oauth2::ClientAuth::SecretPost
                                                          : oauth2::ClientAuth::SecretBasic;
  }

  // verbs
  if (const ports::OptionValue* verbs = opts.find("verbs")) {
    std::vector<std::string> items = verbs->list;
    if (verbs->shape == ports::OptionValue::Shape::Scalar) items = {verbs->scalar};
    if (verbs->shape == ports::OptionValue::Shape::Map || items.empty())
      return opts.error("verbs", "must list at least one verb",
                        "e.g. verbs: [completed, passed, failed, scored]", verbs);
    for (const auto& item : items) {
      const auto v = parseVerb(trim(item));
      if (!v)
        return opts.error("verbs", "'" + item + "' is not one of completed, passed, failed, scored",
                          "give the short names or the ADL verb IRIs "
                          "(http://adlnet.gov/expapi/verbs/completed ...)",
                          verbs);
      if (std::find(cfg.verbs.begin(), cfg.verbs.end(), *v) != cfg.verbs.end())
        return opts.error("verbs", "'" + item + "' is listed twice", "keep one", verbs);
      cfg.verbs.push_back(*v);
    }
  } else {
    cfg.verbs.assign(std::begin(kAllVerbs), std::end(kAllVerbs));
  }

  auto limit = opts.integer("limit", 1, 10000, "a whole number from 1 to 10000", "e.g. limit: 500");
  if (!limit) return limit.error();
  if (limit->has_value()) cfg.limit = static_cast<std::size_t>(**limit);

  auto overlap = opts.duration("overlap", core::Seconds{0}, core::Seconds{7 * 86400},
                               "a duration from 0s to 7d", "e.g. overlap: 10m");
  if (!overlap) return overlap.error();
  if (overlap->has_value()) cfg.overlap = **overlap;

  auto start = opts.scalar("start");
  if (!start) return start.error();
  if (start->has_value() && !trim(**start).empty()) {
    cfg.start_us = parseMicros(trim(**start));
    if (!cfg.start_us)
      return opts.error("start", "'" + **start + "' is not an ISO 8601 date or timestamp",
                        "e.g. start: 2025-01-01T00:00:00Z", opts.find("start"));
  }

  auto attempt = opts.scalar("attempt_extension");
  if (!attempt) return attempt.error();
  cfg.normalise.attempt_extension = std::string(trim(attempt->value_or("")));
  if (!cfg.normalise.attempt_extension.empty() &&
      !options::originOf(cfg.normalise.attempt_extension) &&
      cfg.normalise.attempt_extension.find(':') == std::string::npos)
    return opts.error("attempt_extension", "is not an IRI",
                      "give the extension key the content uses, e.g. "
                      "https://w3id.org/xapi/cmi5/context/extensions/sessionid",
                      opts.find("attempt_extension"));

  auto account_as = opts.choice("account_as", "user", {"user", "employee_id", "email"});
  if (!account_as) return account_as.error();
  cfg.normalise.account_as = *account_as == "employee_id" ? AccountAs::EmployeeId
                             : *account_as == "email"     ? AccountAs::Email
                                                          : AccountAs::User;
  auto sha1 = opts.choice("mbox_sha1sum", "quarantine", {"quarantine", "user"});
  if (!sha1) return sha1.error();
  cfg.normalise.mbox_sha1sum = *sha1 == "user" ? Sha1As::User : Sha1As::Quarantine;
  auto voided = opts.choice("voided", "report", {"report", "ignore"});
  if (!voided) return voided.error();
  cfg.report_voided = *voided == "report";

  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;
  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 60s");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  return std::unique_ptr<ports::LmsSource>(std::make_unique<XapiSource>(
      name, std::move(cfg), std::move(redactor), std::move(client_options)));
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "xapi";
    s.description =
        "Reads completions and quiz results from an xAPI 1.0.3 Learning Record Store "
        "(GET /statements, incremental on `stored`)";
    s.keys = {
        {"endpoint", ValueType::String, true, "",
         "The LRS's xAPI base URL (statements are read from {endpoint}/statements)"},
        {"auth", ValueType::String, false, "basic",
         "basic (LRS key and secret) | oauth2 (client credentials grant)"},
        {"username", ValueType::String, false, "", "LRS key / user name (auth basic)"},
        {"password", ValueType::Secret, false, "", "LRS secret / password (auth basic)"},
        {"client_id", ValueType::String, false, "", "OAuth client id (auth oauth2)"},
        {"client_secret", ValueType::Secret, false, "", "OAuth client secret (auth oauth2)"},
        {"token_url", ValueType::String, false, "", "OAuth token endpoint (auth oauth2)"},
        {"scope", ValueType::String, false, "", "OAuth scope(s), space-separated (auth oauth2)"},
        {"client_auth", ValueType::String, false, "client_secret_basic",
         "How the OAuth client authenticates: client_secret_basic | client_secret_post"},
        {"verbs", ValueType::StringList, false, "[completed, passed, failed, scored]",
         "ADL verbs read, one query each: completed, passed, failed, scored (or their IRIs)"},
        {"limit", ValueType::Int, false, "500", "Statements per page (the LRS may send fewer)"},
        {"overlap", ValueType::Duration, false, "10m",
         "Each fetch starts this long before the cursor, so late-visible statements are not "
         "missed (re-read statements update the same facts)"},
        {"start", ValueType::String, false, "",
         "Read statements stored after this ISO 8601 time on the first fetch (default: all)"},
        {"attempt_extension", ValueType::String, false, "",
         "Extension IRI (in context or result extensions) holding the attempt number; "
         "attempts are 0 without it"},
        {"account_as", ValueType::String, false, "user",
         "What an account actor's name is: user (the LMS user key) | employee_id | email"},
        {"mbox_sha1sum", ValueType::String, false, "quarantine",
         "Actors known only by mbox_sha1sum: quarantine | user (the hash is the LMS user key, "
         "matched through mappings/identity.yaml overrides)"},
        {"voided", ValueType::String, false, "report",
         "report (each voiding statement is listed in the quarantine) | ignore"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for the LRS instead of the system's"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    return build(name, options, base_dir, secrets, std::move(redactor), std::move(client_options));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::xapi
