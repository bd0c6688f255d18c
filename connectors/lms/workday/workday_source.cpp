#include "connectors/lms/workday/workday_source.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "connectors/common/encoding.hpp"
#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "connectors/lms/workday/report.hpp"

namespace certgate::connectors::workday {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;
using encoding::excerpt;
using options::OptionReader;

// A report larger than this on disk is refused (a runaway answer must not fill the disk).
constexpr std::uint64_t kMaxReportBytes = 8ull * 1024 * 1024 * 1024;
constexpr std::size_t kHeadBytes = 512;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

enum class Auth { Basic, OAuth2 };
enum class PromptFormat { Date, DateTime };

struct Config {
  std::string url;     // the report's URL without a query
  std::string report;  // its last path segment, for messages
  Auth auth = Auth::Basic;
  std::string basic;   // "Basic <base64>"
  oauth2::ClientCredentialsConfig oauth;
  NormaliseOptions normalise;
  std::vector<std::pair<std::string, std::string>> params;  // fixed query parameters
  std::string from_prompt, to_prompt;
  PromptFormat prompt_format = PromptFormat::Date;
  core::Seconds overlap{3 * 86400};
  core::Instant start = *core::parseIso("2000-01-01T00:00:00Z");
  std::string ca_file;
  core::Seconds timeout{600};
};

// "<end of the last complete window, ISO>;q=<query fingerprint>"
struct Cursor {
  std::optional<core::Instant> until;
  std::string query;
};

Cursor parseCursor(const std::string& text) {
  Cursor c;
  const auto semi = text.find(";q=");
  if (semi == std::string::npos) return c;
  c.until = core::parseIso(std::string_view(text).substr(0, semi));
  c.query = text.substr(semi + 3);
  return c;
}

// The anonymous temporary file a report is streamed into.
struct TempFile {
  std::FILE* f = std::tmpfile();
  ~TempFile() {
    if (f) std::fclose(f);
  }
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

// ---- the source --------------------------------------------------------------------------------

class WorkdaySource final : public ports::LmsSource {
 public:
  WorkdaySource(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
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
    std::string q = cfg_.url + "\n" + cfg_.from_prompt + "\n" + cfg_.to_prompt;
    for (const auto& [k, v] : cfg_.params) q += "\n" + k + "=" + v;
    query_ = encoding::sha256Hex(q).substr(0, 16);
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "workday"; }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    try {
      return fetchReport(cursor, now, sink);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure while reading the report: ") + e.what(),
                             where());
    }
  }

 private:
  std::string where() const { return "source '" + name_ + "'"; }
  bool windowed() const { return !cfg_.from_prompt.empty(); }
  std::string promptValue(core::Instant t) const {
    return cfg_.prompt_format == PromptFormat::Date ? core::formatDate(t) : core::formatIso(t);
  }
  core::Error failure(const http::Response& response, const std::string& url) const;
  core::Result<ports::FetchOutcome> fetchReport(const std::string& cursor, core::Instant now,
                                                ports::RecordSink& sink);

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<oauth2::TokenSource> token_source_;
  std::string query_;
};

core::Error WorkdaySource::failure(const http::Response& response, const std::string& url) const {
  const std::string request_line = "GET " + url;
  core::Status st = http::classify(response, request_line, -1, redactor_.get());
  core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
  std::string detail;
  const Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    // Workday's REST error body: {"error": "...", "errors": [{"error": "..."}]}
    for (const char* k : {"error", "message", "error_description"}) {
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
                 ? "the integration user may not run this report: give its security group "
                   "access to the report and Get access to the domains the report reads"
                 : "check the integration user's name and password (or the API client and its "
                   "refresh token) of the source";
  return e;
}

core::Result<ports::FetchOutcome> WorkdaySource::fetchReport(const std::string& cursor_text,
                                                             core::Instant now,
                                                             ports::RecordSink& sink) {
  ports::FetchOutcome out;
  Cursor cursor = parseCursor(cursor_text);
  if (cursor.query != query_) cursor.until.reset();  // another report or other prompts

  std::string url = cfg_.url + "?format=json";
  for (const auto& [k, v] : cfg_.params)
    url += "&" + encoding::urlEncode(k) + "=" + encoding::urlEncode(v);
  std::string window;
  if (windowed()) {
    core::Instant from = cfg_.start;
    if (cursor.until) from = std::max(cfg_.start, *cursor.until - cfg_.overlap);
    url += "&" + encoding::urlEncode(cfg_.from_prompt) + "=" + encoding::urlEncode(promptValue(from));
    if (!cfg_.to_prompt.empty())
      url += "&" + encoding::urlEncode(cfg_.to_prompt) + "=" + encoding::urlEncode(promptValue(now));
    window = " " + promptValue(from) + ".." + promptValue(now);
  }
  const std::string label = "report " + cfg_.report + window;

  TempFile file;
  if (file.f == nullptr)
    return core::makeError(ErrorKind::Internal, "cannot create a temporary file for the report",
                           where(), "check that the temporary directory is writable");
  encoding::Sha256 hash;
  std::uint64_t bytes = 0;
  std::string head;
  bool write_failed = false;

  http::Request req;
  req.method = http::Method::Get;
  req.url = url;
  req.headers.set("Accept", "application/json");
  req.on_body_start = [&] {
    std::rewind(file.f);
    hash.reset();
    bytes = 0;
    head.clear();
    write_failed = false;
  };
  req.on_body = [&](std::string_view chunk) {
    if (head.size() < kHeadBytes) head.append(chunk.substr(0, kHeadBytes - head.size()));
    bytes += chunk.size();
    if (bytes > kMaxReportBytes ||
        std::fwrite(chunk.data(), 1, chunk.size(), file.f) != chunk.size()) {
      write_failed = true;
      return false;
    }
    hash.update(chunk);
    return true;
  };

  http::Response resp;
  for (int attempt = 0;; ++attempt) {
    if (cfg_.auth == Auth::Basic) {
      req.headers.set("Authorization", cfg_.basic);
    } else {
      auto token = token_source_->token();
      if (!token) return token.error();
      req.headers.set("Authorization", "Bearer " + *token);
    }
    auto r = client_->sendWithRetry(req, http::RetryPolicy{});
    if (!r) {
      if (write_failed) {
        out.problem = label + ": the report could not be kept in a temporary file (" +
                      (bytes > kMaxReportBytes ? "larger than 8 GiB" : "disk full?") + ")";
        return out;
      }
      core::Error e = r.error();
      e.where = where();
      if (e.kind == ErrorKind::Auth) return e;
      out.problem = label + ": " + e.message;
      return out;
    }
    if (r->status == 401 && cfg_.auth == Auth::OAuth2 && attempt == 0) {
      token_source_->invalidate();  // the token may have been revoked or expired early
      continue;
    }
    resp = std::move(*r);
    break;
  }
  if (resp.status < 200 || resp.status >= 300) {
    core::Error e = failure(resp, url);
    if (e.kind == ErrorKind::Auth) return e;
    out.problem = label + ": " + e.message;
    return out;
  }
  std::fflush(file.f);
  const std::string_view first = trim(head);
  const std::string content_type = lower(resp.headers.get("Content-Type").value_or(""));
  if (!first.empty() && first.front() == '<') {
    const bool html = content_type.find("html") != std::string::npos ||
                      lower(first).find("<html") != std::string::npos ||
                      lower(first).find("<!doctype html") != std::string::npos;
    out.problem = label + ": Workday answered " +
                  (html ? std::string("an HTML page (a sign-in or error page), ")
                        : std::string("XML, ")) +
                  "not the JSON report: " + excerpt(first, 120) +
                  (html ? " -- check that the URL is the report's RaaS URL and that the "
                          "integration user signs in with a password (not single sign-on)"
                        : " -- the report answered in XML; certgate asks for format=json");
    return out;
  }

  ports::UnitInfo unit;
  unit.key = "sha256:" + hash.hex();
  unit.name = label;
  unit.bytes = static_cast<std::int64_t>(bytes);
  unit.incremental = windowed();
  ++out.units_seen;
  const auto advance = [&] {
    if (windowed()) out.next_cursor = core::formatIso(now) + ";q=" + query_;
  };
  if (sink.alreadyProcessed(unit)) {
    ++out.units_skipped;
    out.complete = true;
    advance();
    return out;
  }

  sink.beginUnit(unit);
  std::rewind(file.f);
  const ReportRead read = readReport(file.f, [&](Json&& entry, std::size_t row) {
    const std::string location = "report row " + std::to_string(row);
    Normalised n = normaliseEntry(entry, cfg_.normalise, location);
    switch (n.outcome) {
      case Normalised::Outcome::Record:
        sink.record(std::move(n.record));
        ++out.records;
        break;
      case Normalised::Outcome::Quarantine: {
        ports::QuarantinedRecord q;
        q.external_id = n.external_id;
        q.location = location + " (" + n.identity + ")";
        q.reason = std::move(n.reason);
        q.raw = excerpt(entry.dump(), 300);
        sink.quarantine(std::move(q));
        ++out.quarantined;
        break;
      }
      case Normalised::Outcome::Skip:
        break;
    }
    return true;
  });
  std::string problem;
  if (!read.parsed) {
    problem = read.error_byte >= bytes || bytes == 0
                  ? "the report is cut off after " + std::to_string(bytes) +
                        " bytes (an interrupted answer); the rows before the break count"
                  : "the report is not well-formed JSON at byte " +
                        std::to_string(read.error_byte) + " of " + std::to_string(bytes) + ": " +
                        excerpt(read.error, 160);
  } else if (!read.has_entries) {
    problem = "the answer has no Report_Entry array" +
              (read.top_keys.empty() ? std::string(" (not a JSON object)")
                                     : " (top-level keys: " + read.top_keys + ")") +
              " -- is the URL a RaaS custom report, asked for with format=json?";
  }
  sink.endUnit(unit, problem.empty(), problem);
  if (!problem.empty()) {
    out.problem = label + ": " + problem;
    return out;
  }
  out.complete = true;
  advance();
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

core::Result<std::string> readSecret(const OptionReader& opts, const std::string& key,
                                     const ports::SecretReader& secrets) {
  return opts.secret(
      key, secrets,
      {.inline_message = "a secret is given as {file: PATH} or {credential: NAME}, never inline",
       .inline_hint = "e.g. " + key + ": {file: /etc/certgate/workday-" + key + "}",
       .no_reader_hint = "secrets are read by certgate's configuration loader",
       .empty_hint = "put the value in the secret file"});
}

core::Result<FieldMap> readFields(const OptionReader& opts) {
  const ports::OptionValue* v = opts.find("fields");
  const std::string example =
      "e.g. fields: { worker_id: Employee_ID, course_id: Learning_Content_ID, completed_at: "
      "Completion_Date, status: Completion_Status, score: Score }";
  if (v == nullptr) return opts.error("fields", "is required", example);
  if (v->shape != ports::OptionValue::Shape::Map)
    return opts.error("fields", "must be a map of certgate field to report field", example, v);
  FieldMap f;
  const std::vector<std::pair<const char*, std::string*>> slots = {
      {"worker_id", &f.worker_id}, {"email", &f.email},         {"user", &f.user},
      {"name", &f.name},           {"course_id", &f.course_id}, {"completed_at", &f.completed_at},
      {"status", &f.status},       {"score", &f.score},         {"max_score", &f.max_score},
      {"pass", &f.pass},           {"attempt", &f.attempt},     {"expires_at", &f.expires_at},
      {"record_id", &f.record_id}};
  for (const auto& [k, report_field] : v->map) {
    std::string* slot = nullptr;
    for (const auto& [name, s] : slots)
      if (k == name) slot = s;
    if (slot == nullptr) {
      std::string known;
      for (const auto& [name, s] : slots) known += (known.empty() ? "" : ", ") + std::string(name);
      return opts.error("fields", "'" + k + "' is not a certgate field", "use one of " + known, v);
    }
    if (trim(report_field).empty())
      return opts.error("fields", "'" + k + "' names no report field",
                        "give the report's JSON key, as the JSON output of the report shows it", v);
    *slot = std::string(trim(report_field));
  }
  if (f.course_id.empty())
    return opts.error("fields", "course_id is required", "map the report field that names the "
                      "learning content, e.g. course_id: Learning_Content_ID", v);
  if (f.completed_at.empty())
    return opts.error("fields", "completed_at is required",
                      "map the report's completion date, e.g. completed_at: Completion_Date", v);
  if (f.worker_id.empty() && f.email.empty() && f.user.empty())
    return opts.error("fields", "needs an identity: worker_id, email or user",
                      "map the worker's employee id, e.g. worker_id: Employee_ID", v);
  return f;
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

  auto url = opts.required(
      "url", "the report's RaaS URL without the query, e.g. https://wd2-impl-services1.workday.com"
             "/ccx/service/customreport2/acme/ISU_certgate/Learning_Completions");
  if (!url) return url.error();
  cfg.url = std::string(trim(*url));
  if (cfg.url.find('?') != std::string::npos || cfg.url.find('#') != std::string::npos)
    return opts.error("url", "'" + cfg.url + "' carries a query or fragment",
                      "give the URL up to the report name; certgate adds format=json, prompts "
                      "go under from_prompt/to_prompt and params",
                      opts.find("url"));
  while (!cfg.url.empty() && cfg.url.back() == '/') cfg.url.pop_back();
  auto origin = opts.url("url", cfg.url,
                         {.not_url = "'" + cfg.url + "' is not an absolute http(s) URL",
                          .not_url_hint = "e.g. https://wd2-impl-services1.workday.com/ccx/"
                                          "service/customreport2/acme/ISU_certgate/Report",
                          .plain_http = "'" + cfg.url +
                                        "' must use https (plain http only to 127.0.0.1, "
                                        "localhost or [::1])",
                          .plain_http_hint = "use the report's https URL"});
  if (!origin) return origin.error();
  cfg.url = *origin + cfg.url.substr(origin->size());
  cfg.report = cfg.url.substr(cfg.url.find_last_of('/') + 1);
  if (cfg.report.empty() || cfg.url.size() <= origin->size())
    return opts.error("url", "names no report", "end the URL with the report's name",
                      opts.find("url"));

  auto auth = opts.choice("auth", "basic", {"basic", "oauth2"});
  if (!auth) return auth.error();
  cfg.auth = *auth == "oauth2" ? Auth::OAuth2 : Auth::Basic;
  if (cfg.auth == Auth::Basic) {
    for (const char* k : {"client_id", "client_secret", "refresh_token", "token_url"})
      if (opts.find(k) != nullptr)
        return opts.error(k, "applies only with auth oauth2", "remove it or set auth: oauth2",
                          opts.find(k));
    auto username = opts.required("username", "the Integration System User's name",
                                  "is required with auth basic");
    if (!username) return username.error();
    if (opts.find("password") == nullptr)
      return opts.error("password", "is required with auth basic",
                        "password: {file: PATH} or {credential: NAME} holding the ISU password");
    auto password = readSecret(opts, "password", secrets);
    if (!password) return password.error();
    if (username->find(':') != std::string::npos)
      return opts.error("username", "contains ':', which HTTP Basic cannot carry",
                        "use the integration user's name without ':'", opts.find("username"));
    cfg.basic = "Basic " + encoding::base64(*username + ":" + *password);
    if (redactor) {
      redactor->add(*password);
      redactor->add(cfg.basic.substr(6));
    }
  } else {
    for (const char* k : {"username", "password"})
      if (opts.find(k) != nullptr)
        return opts.error(k, "applies only with auth basic",
                          "with auth oauth2 give client_id, client_secret, refresh_token and "
                          "token_url",
                          opts.find(k));
    auto client_id = opts.required("client_id", "the API client for integrations' client id",
                                   "is required with auth oauth2");
    if (!client_id) return client_id.error();
    cfg.oauth.client_id = *client_id;
    auto token_url = opts.required(
        "token_url", "the tenant's token endpoint, e.g. https://wd2-impl-services1.workday.com/"
                     "ccx/oauth2/acme/token",
        "is required with auth oauth2");
    if (!token_url) return token_url.error();
    auto token_origin = opts.url(
        "token_url", *token_url,
        {.not_url = "'" + *token_url + "' is not an absolute http(s) URL",
         .not_url_hint = "e.g. https://wd2-impl-services1.workday.com/ccx/oauth2/acme/token",
         .plain_http = "'" + *token_url + "' must use https (plain http only to the loopback)",
         .plain_http_hint = "use the token endpoint's https URL"});
    if (!token_origin) return token_origin.error();
    cfg.oauth.token_url = *token_url;
    for (const char* k : {"client_secret", "refresh_token"})
      if (opts.find(k) == nullptr)
        return opts.error(k, "is required with auth oauth2",
                          std::string(k) + ": {file: PATH} or {credential: NAME}");
    auto secret = readSecret(opts, "client_secret", secrets);
    if (!secret) return secret.error();
    auto refresh = readSecret(opts, "refresh_token", secrets);
    if (!refresh) return refresh.error();
    cfg.oauth.client_secret = *secret;
    cfg.oauth.refresh_token = *refresh;
    cfg.oauth.auth = oauth2::ClientAuth::SecretBasic;
    if (redactor) {
      redactor->add(cfg.oauth.client_secret);
      redactor->add(cfg.oauth.refresh_token);
    }
  }

  auto fields = readFields(opts);
  if (!fields) return fields.error();
  cfg.normalise.fields = std::move(*fields);

  if (const ports::OptionValue* sv = opts.find("status_values")) {
    if (sv->shape != ports::OptionValue::Shape::Map)
      return opts.error("status_values", "must be a map of report status to meaning",
                        "e.g. status_values: { Successfully Completed: completed, Not Passed: "
                        "failed, Registered: in_progress }",
                        sv);
    for (const auto& [text, meaning] : sv->map) {
      const auto m = parseStatusMeaning(meaning);
      if (!m)
        return opts.error("status_values",
                          "'" + meaning + "' (for '" + text +
                              "') is not one of completed, passed, failed, in_progress",
                          "in_progress rows are skipped until they finish", sv);
      cfg.normalise.status_values.emplace_back(lower(trim(text)), *m);
    }
  }
  auto scale = opts.choice("score_scale", "raw", {"raw", "percent", "fraction"});
  if (!scale) return scale.error();
  cfg.normalise.score_scale = *scale == "percent"    ? ScoreScale::Percent
                              : *scale == "fraction" ? ScoreScale::Fraction
                                                     : ScoreScale::Raw;
  auto default_max = opts.scalar("default_max_score");
  if (!default_max) return default_max.error();
  if (default_max->has_value()) {
    double v = 0;
    const std::string s(trim(**default_max));
    try {
      std::size_t used = 0;
      v = std::stod(s, &used);
      if (used != s.size() || !(v > 0)) throw std::invalid_argument("range");
    } catch (const std::exception&) {
      return opts.error("default_max_score", "'" + s + "' is not a number above 0",
                        "e.g. default_max_score: 100", opts.find("default_max_score"));
    }
    cfg.normalise.default_max_score = v;
  }

  if (const ports::OptionValue* pv = opts.find("params")) {
    if (pv->shape != ports::OptionValue::Shape::Map)
      return opts.error("params", "must be a map of query parameter to value",
                        "e.g. params: { Learning_Content!WID: 6f1c... }", pv);
    for (const auto& [k, v] : pv->map) {
      if (lower(k) == "format")
        return opts.error("params", "format is set by certgate (json)", "remove it", pv);
      cfg.params.emplace_back(k, v);
    }
  }
  auto from_prompt = opts.scalar("from_prompt");
  if (!from_prompt) return from_prompt.error();
  cfg.from_prompt = std::string(trim(from_prompt->value_or("")));
  auto to_prompt = opts.scalar("to_prompt");
  if (!to_prompt) return to_prompt.error();
  cfg.to_prompt = std::string(trim(to_prompt->value_or("")));
  if (cfg.from_prompt.empty() && !cfg.to_prompt.empty())
    return opts.error("to_prompt", "needs from_prompt",
                      "name both prompts of the report's date range, e.g. from_prompt: "
                      "Completed_From, to_prompt: Completed_To",
                      opts.find("to_prompt"));
  for (const auto& [k, v] : cfg.params)
    if (k == cfg.from_prompt || k == cfg.to_prompt)
      return opts.error("params", "'" + k + "' is a date prompt; certgate sets its value",
                        "remove it from params", opts.find("params"));
  auto format = opts.choice("prompt_format", "date", {"date", "datetime"});
  if (!format) return format.error();
  cfg.prompt_format = *format == "datetime" ? PromptFormat::DateTime : PromptFormat::Date;
  auto overlap = opts.duration("overlap", core::Seconds{0}, core::Seconds{90 * 86400},
                               "a duration from 0s to 90d", "e.g. overlap: 3d");
  if (!overlap) return overlap.error();
  if (overlap->has_value()) cfg.overlap = **overlap;
  auto start = opts.scalar("start");
  if (!start) return start.error();
  if (start->has_value() && !trim(**start).empty()) {
    const auto t = core::parseIso(trim(**start));
    if (!t)
      return opts.error("start", "'" + **start + "' is not an ISO 8601 date or time",
                        "e.g. start: 2025-01-01", opts.find("start"));
    cfg.start = *t;
  }
  for (const char* k : {"overlap", "start", "prompt_format"})
    if (cfg.from_prompt.empty() && opts.find(k) != nullptr)
      return opts.error(k, "applies only with from_prompt",
                        "without date prompts the whole report is read every time",
                        opts.find(k));

  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;
  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 10m");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  return std::unique_ptr<ports::LmsSource>(std::make_unique<WorkdaySource>(
      name, std::move(cfg), std::move(redactor), std::move(client_options)));
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "workday";
    s.description =
        "Reads learning completions and assessment results from a Workday custom report "
        "(Reports-as-a-Service, format=json), incremental through the report's date prompts";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The report's RaaS URL up to the report name: https://HOST/ccx/service/customreport2/"
         "TENANT/OWNER/REPORT"},
        {"auth", ValueType::String, false, "basic",
         "basic (Integration System User) | oauth2 (API client for integrations, refresh token)"},
        {"username", ValueType::String, false, "", "Integration System User name (auth basic)"},
        {"password", ValueType::Secret, false, "", "Integration System User password (auth basic)"},
        {"client_id", ValueType::String, false, "", "API client id (auth oauth2)"},
        {"client_secret", ValueType::Secret, false, "", "API client secret (auth oauth2)"},
        {"refresh_token", ValueType::Secret, false, "",
         "Non-expiring refresh token of the API client for integrations (auth oauth2)"},
        {"token_url", ValueType::String, false, "",
         "Token endpoint, https://HOST/ccx/oauth2/TENANT/token (auth oauth2)"},
        {"fields", ValueType::Map, true, "",
         "certgate field -> report field: worker_id, email, user, name, course_id, completed_at "
         "(course_id, completed_at and one identity required), status, score, max_score, pass, "
         "attempt, expires_at, record_id"},
        {"status_values", ValueType::Map, false, "",
         "Report status -> completed | passed | failed | in_progress (skipped), on top of the "
         "built-in names"},
        {"score_scale", ValueType::String, false, "raw",
         "raw (with max_score or default_max_score) | percent | fraction (0..1); a value "
         "ending in % is always a percentage"},
        {"default_max_score", ValueType::String, false, "",
         "Maximum score when the report has no max_score field"},
        {"from_prompt", ValueType::String, false, "",
         "The report's prompt for the start of the completion date range (incremental fetch); "
         "without it the whole report is read every time"},
        {"to_prompt", ValueType::String, false, "",
         "The report's prompt for the end of the range (set to the fetch's time)"},
        {"prompt_format", ValueType::String, false, "date",
         "How prompt values are written: date (2026-03-01) | datetime (2026-03-01T08:00:00Z)"},
        {"overlap", ValueType::Duration, false, "3d",
         "Each window starts this long before the end of the last complete one, so late "
         "entries are read (re-read rows update the same facts)"},
        {"start", ValueType::String, false, "2000-01-01",
         "Start of the first fetch's window (ISO 8601 date or time)"},
        {"params", ValueType::Map, false, "",
         "Further query parameters sent as they are (the report's other prompts)"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for Workday instead of the system's"},
        {"timeout", ValueType::Duration, false, "10m",
         "Time limit of the report request (large reports take minutes)"},
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

}  // namespace certgate::connectors::workday
