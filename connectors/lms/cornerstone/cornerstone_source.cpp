#include "connectors/lms/cornerstone/cornerstone_source.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "connectors/common/encoding.hpp"
#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "connectors/common/rate_limiter.hpp"
#include "connectors/lms/cornerstone/transcript.hpp"

namespace certgate::connectors::cornerstone {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;
using encoding::excerpt;
using options::OptionReader;

constexpr const char* kViews = "/services/api/x/odata/api/views/";
constexpr std::size_t kMaxPages = 10'000'000;  // a loop guard, never a real limit
constexpr std::size_t kUsersPerLookup = 40;    // ids per $filter, keeping URLs short

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Config {
  std::string base;    // origin, e.g. https://acme.csod.com
  oauth2::ClientCredentialsConfig oauth;
  NormaliseOptions normalise;
  bool user_view = true;
  int requests_per_minute = 400;
  int page_size = 1000;
  core::Seconds overlap{3600};
  std::optional<core::Instant> start;
  std::string ca_file;
  core::Seconds timeout{120};
};

struct Cursor {
  std::optional<core::Instant> touched;
  std::string query;
};

Cursor parseCursor(const std::string& text) {
  Cursor c;
  const auto semi = text.find(";q=");
  if (semi == std::string::npos) return c;
  c.touched = core::parseIso(std::string_view(text).substr(0, semi));
  c.query = text.substr(semi + 3);
  return c;
}

// An OData collection answer: its rows and its next link.
struct Page {
  const Json* rows = nullptr;
  std::string next;
};

class CornerstoneSource final : public ports::LmsSource {
 public:
  CornerstoneSource(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
                    http::ClientOptions client_options,
                    std::function<std::chrono::milliseconds()> monotonic)
      : name_(std::move(name)), cfg_(std::move(cfg)), redactor_(std::move(redactor)) {
    if (!cfg_.ca_file.empty()) client_options.ca_file = cfg_.ca_file;
    client_options.total_timeout = std::chrono::duration_cast<http::Millis>(cfg_.timeout);
    client_options.connect_timeout =
        std::min(client_options.connect_timeout, client_options.total_timeout);
    if (redactor_) client_options.redactor = redactor_;
    limiter_ = std::make_shared<http::RateLimiter>(cfg_.requests_per_minute, std::chrono::minutes(1),
                                                   std::move(monotonic), client_options.sleep);
    client_options.before_send = [limiter = limiter_] { limiter->acquire(); };
    client_ = std::make_unique<http::Client>(std::move(client_options));
    cfg_.oauth.where = where();
    token_source_ = std::make_unique<oauth2::TokenSource>(*client_, cfg_.oauth, redactor_);
    query_ = encoding::sha256Hex(cfg_.base + "\n" + kTranscriptColumns).substr(0, 16);
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "cornerstone"; }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    try {
      (void)now;
      return fetchAll(cursor, sink);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure while reading the transcript: ") +
                                 e.what(),
                             where());
    }
  }

 private:
  std::string where() const { return "source '" + name_ + "'"; }
  core::Result<http::Response> get(const std::string& url);
  core::Error failure(const http::Response& response, const std::string& url) const;
  // One page: an Auth error, or a problem text ("" when the page is fine).
  core::Result<std::string> readPage(const std::string& url, http::Response& resp, Json& doc,
                                     Page& page);
  core::Result<std::string> lookupUsers(const std::vector<std::string>& ids);
  core::Result<ports::FetchOutcome> fetchAll(const std::string& cursor, ports::RecordSink& sink);

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::shared_ptr<http::RateLimiter> limiter_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<oauth2::TokenSource> token_source_;
  std::string query_;
  std::map<std::string, Identity> users_;  // transc_user_id -> identity, for one fetch
};

core::Result<http::Response> CornerstoneSource::get(const std::string& url) {
  http::Request req;
  req.method = http::Method::Get;
  req.url = url;
  req.headers.set("Accept", "application/json");
  req.headers.set("Prefer", "odata.maxpagesize=" + std::to_string(cfg_.page_size));
  for (int attempt = 0;; ++attempt) {
    auto token = token_source_->token();
    if (!token) return token.error();
    req.headers.set("Authorization", "Bearer " + *token);
    auto resp = client_->sendWithRetry(req, http::RetryPolicy{});
    if (!resp) {
      core::Error e = resp.error();
      e.where = where();
      return e;
    }
    if (resp->status == 401 && attempt == 0) {
      token_source_->invalidate();  // expired or revoked early: one new token
      continue;
    }
    return resp;
  }
}

core::Error CornerstoneSource::failure(const http::Response& response,
                                       const std::string& url) const {
  const std::string request_line = "GET " + url;
  core::Status st = http::classify(response, request_line, -1, redactor_.get());
  core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
  std::string detail;
  const Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    // Cornerstone's error body: {"error": {"errorId", "message", "code"}}, OData's
    // {"error": {"code", "message"}}, or a plain {"message"}.
    const Json* err = &doc;
    if (auto it = doc.find("error"); it != doc.end() && it->is_object()) err = &*it;
    for (const char* k : {"message", "code", "errorId"}) {
      const auto it = err->find(k);
      if (it != err->end() && it->is_string()) {
        detail = it->get<std::string>();
        break;
      }
    }
  } else if (!response.body.empty()) {
    detail = excerpt(response.body);
  }
  std::string message = request_line + " answered HTTP " + std::to_string(response.status);
  if (!detail.empty()) message += ": " + detail;
  if (e.retry_after_s > 0) message += " (Retry-After " + std::to_string(e.retry_after_s) + " s)";
  e.message = redactor_ ? redactor_->redact(message) : http::redact(message);
  e.where = where();
  if (e.kind == ErrorKind::Auth)
    e.hint = response.status == 403
                 ? "the OAuth client may not read this view: grant its scope the Reporting API "
                   "views vw_rpt_transcript and vw_rpt_user"
                 : "check client_id and client_secret of the source";
  return e;
}

core::Result<std::string> CornerstoneSource::readPage(const std::string& url, http::Response& resp,
                                                      Json& doc, Page& page) {
  auto r = get(url);
  if (!r) {
    if (r.error().kind == ErrorKind::Auth) return r.error();
    return r.error().message;
  }
  resp = std::move(*r);
  if (resp.status != 200) {
    core::Error e = failure(resp, url);
    if (e.kind == ErrorKind::Auth) return e;
    return e.message;
  }
  doc = Json::parse(resp.body, nullptr, false);
  if (doc.is_object())
    if (auto it = doc.find("value"); it != doc.end() && it->is_array()) page.rows = &*it;
  if (page.rows == nullptr)
    return std::string("the answer is not an OData collection (") +
           (doc.is_discarded() ? "not JSON, or cut off" : "no value array") + ")";
  page.next.clear();
  if (auto it = doc.find("@odata.nextLink"); it != doc.end() && it->is_string())
    page.next = it->get<std::string>();
  if (!page.next.empty() && page.next.front() == '/') page.next = cfg_.base + page.next;
  if (!page.next.empty()) {
    const auto origin = options::originOf(page.next);
    if (!origin || *origin != cfg_.base)
      return "the @odata.nextLink " + excerpt(page.next, 120) +
             " is not on the portal's origin; certgate does not follow it";
    if (page.next == url) return std::string("the same @odata.nextLink again; stopped to avoid a loop");
  }
  return std::string();
}

core::Result<std::string> CornerstoneSource::lookupUsers(const std::vector<std::string>& ids) {
  for (std::size_t from = 0; from < ids.size(); from += kUsersPerLookup) {
    std::string filter;
    const std::size_t to = std::min(ids.size(), from + kUsersPerLookup);
    for (std::size_t i = from; i < to; ++i) {
      if (!filter.empty()) filter += " or ";
      filter += "user_id eq " + ids[i];
      users_[ids[i]];  // known from now on, even when the view has no row for it
    }
    std::string url = cfg_.base + kViews + "vw_rpt_user?$select=" +
                      encoding::urlEncode("user_id,user_ref,user_email") +
                      "&$filter=" + encoding::urlEncode(filter);
    for (std::size_t n = 1; n <= kMaxPages; ++n) {
      http::Response resp;
      Json doc;
      Page page;
      auto problem = readPage(url, resp, doc, page);
      if (!problem) return problem.error();
      if (!problem->empty()) return "vw_rpt_user page " + std::to_string(n) + ": " + *problem;
      for (const Json& u : *page.rows) {
        if (!u.is_object()) continue;
        std::string id;
        if (auto it = u.find("user_id"); it != u.end() && (it->is_number_integer() || it->is_number_unsigned()))
          id = it->dump();
        else if (it != u.end() && it->is_string())
          id = it->get<std::string>();
        if (id.empty()) continue;
        Identity& who = users_[id];
        if (auto it = u.find("user_ref"); it != u.end() && it->is_string()) who.employee_id = it->get<std::string>();
        if (auto it = u.find("user_email"); it != u.end() && it->is_string()) who.email = it->get<std::string>();
      }
      if (page.next.empty()) break;
      url = page.next;
    }
  }
  return std::string();
}

core::Result<ports::FetchOutcome> CornerstoneSource::fetchAll(const std::string& cursor_text,
                                                              ports::RecordSink& sink) {
  ports::FetchOutcome out;
  users_.clear();
  Cursor cursor = parseCursor(cursor_text);
  if (cursor.query != query_) cursor.touched.reset();
  std::optional<core::Instant> since = cfg_.start;
  if (cursor.touched) {
    since = *cursor.touched - cfg_.overlap;
    if (cfg_.start && *since < *cfg_.start) since = cfg_.start;
  }
  std::string url = cfg_.base + kViews + "vw_rpt_transcript?$select=" +
                    encoding::urlEncode(kTranscriptColumns);
  if (since)
    url += "&$filter=" + encoding::urlEncode("_last_touched_dt_utc ge " + core::formatIso(*since));

  std::optional<core::Instant> max_touched = cursor.touched;
  auto note_touched = [&](const std::optional<core::Instant>& t) {
    if (t && (!max_touched || *t > *max_touched)) max_touched = t;
  };
  for (std::size_t n = 1; n <= kMaxPages; ++n) {
    const std::string at = "transcript page " + std::to_string(n);
    http::Response resp;
    Json doc;
    Page page;
    auto problem = readPage(url, resp, doc, page);
    if (!problem) return problem.error();
    if (!problem->empty()) {
      out.problem = at + ": " + *problem;
      return out;  // the previous cursor stays
    }
    if (!page.rows->empty()) {
      ports::UnitInfo unit;
      unit.key = "sha256:" + encoding::sha256Hex(resp.body);
      unit.name = at;
      unit.bytes = static_cast<std::int64_t>(resp.body.size());
      unit.incremental = true;
      ++out.units_seen;
      if (sink.alreadyProcessed(unit)) {
        ++out.units_skipped;
        for (const Json& row : *page.rows)
          if (row.is_object())
            if (auto it = row.find("_last_touched_dt_utc"); it != row.end() && it->is_string())
              note_touched(parseTime(it->get<std::string>()));
      } else {
        if (cfg_.user_view) {
          std::vector<std::string> unknown;
          std::set<std::string> seen;
          for (const Json& row : *page.rows) {
            const std::string id = userIdOf(row);
            if (id.empty() || users_.count(id) || !seen.insert(id).second) continue;
            if (std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
              unknown.push_back(id);
          }
          auto looked = lookupUsers(unknown);
          if (!looked) return looked.error();
          if (!looked->empty()) {
            out.problem = at + ": " + *looked;
            return out;
          }
        }
        sink.beginUnit(unit);
        std::size_t index = 0;
        for (const Json& row : *page.rows) {
          ++index;
          const std::string location = at + " #" + std::to_string(index);
          const std::string uid = userIdOf(row);
          const auto known = users_.find(uid);
          Normalised r = normaliseRow(row, cfg_.normalise,
                                      known == users_.end() ? nullptr : &known->second, location);
          note_touched(r.touched);
          switch (r.outcome) {
            case Normalised::Outcome::Record:
              sink.record(std::move(r.record));
              ++out.records;
              break;
            case Normalised::Outcome::Quarantine: {
              ports::QuarantinedRecord q;
              q.external_id = r.external_id;
              q.location = location + " (user " + (r.user_id.empty() ? "?" : r.user_id) +
                           ", learning object " + (r.object_id.empty() ? "?" : r.object_id) + ")";
              q.reason = std::move(r.reason);
              q.raw = excerpt(row.dump(), 300);
              sink.quarantine(std::move(q));
              ++out.quarantined;
              break;
            }
            case Normalised::Outcome::Skip:
              break;
          }
        }
        sink.endUnit(unit, true, "");
      }
    }
    if (page.next.empty()) {
      out.complete = true;
      if (max_touched) out.next_cursor = core::formatIso(*max_touched) + ";q=" + query_;
      return out;
    }
    url = page.next;
  }
  out.problem = "more than " + std::to_string(kMaxPages) + " transcript pages";
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

core::Result<std::unique_ptr<ports::LmsSource>> build(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options, std::function<std::chrono::milliseconds()> monotonic) {
  const OptionReader opts("source '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;

  auto base = opts.required("base_url", "the portal's address, e.g. https://acme.csod.com");
  if (!base) return base.error();
  std::string base_url(*base);
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  auto origin = opts.url("base_url", base_url,
                         {.not_url = "'" + base_url + "' is not an absolute http(s) URL",
                          .not_url_hint = "e.g. https://acme.csod.com",
                          .plain_http = "'" + base_url +
                                        "' must use https (plain http only to 127.0.0.1, "
                                        "localhost or [::1])",
                          .plain_http_hint = "use the portal's https address"});
  if (!origin) return origin.error();
  if (base_url.size() != origin->size())
    return opts.error("base_url", "'" + base_url + "' has a path",
                      "give the portal's address only, e.g. https://acme.csod.com; certgate adds "
                      "/services/api/...",
                      opts.find("base_url"));
  cfg.base = *origin;

  auto client_id = opts.required("client_id", "the OAuth 2.0 client id registered in Cornerstone");
  if (!client_id) return client_id.error();
  cfg.oauth.client_id = *client_id;
  auto secret = opts.secret(
      "client_secret", secrets,
      {.missing_message = "is required",
       .missing_hint = "client_secret: {file: PATH} or {credential: NAME}",
       .inline_message = "a secret is given as {file: PATH} or {credential: NAME}, never inline",
       .inline_hint = "e.g. client_secret: {file: /etc/certgate/cornerstone-client-secret}",
       .no_reader_hint = "secrets are read by certgate's configuration loader",
       .empty_hint = "put the client secret in the file"});
  if (!secret) return secret.error();
  cfg.oauth.client_secret = *secret;
  if (redactor) redactor->add(cfg.oauth.client_secret);
  cfg.oauth.auth = oauth2::ClientAuth::JsonBody;
  auto scope = opts.scalar("scope");
  if (!scope) return scope.error();
  cfg.oauth.scope = scope->value_or("all");
  auto token_url = opts.scalar("token_url");
  if (!token_url) return token_url.error();
  cfg.oauth.token_url = token_url->value_or(cfg.base + "/services/api/oauth2/token");
  if (token_url->has_value()) {
    auto token_origin = opts.url(
        "token_url", cfg.oauth.token_url,
        {.not_url = "'" + cfg.oauth.token_url + "' is not an absolute http(s) URL",
         .not_url_hint = "e.g. https://acme.csod.com/services/api/oauth2/token",
         .plain_http = "'" + cfg.oauth.token_url + "' must use https (plain http only to the loopback)",
         .plain_http_hint = "use the token endpoint's https URL"});
    if (!token_origin) return token_origin.error();
  }

  auto rpm = opts.integer("requests_per_minute", 1, 100000, "a whole number from 1 to 100000",
                          "Cornerstone's default limit is 400 requests per minute");
  if (!rpm) return rpm.error();
  if (rpm->has_value()) cfg.requests_per_minute = static_cast<int>(**rpm);
  auto page_size = opts.integer("page_size", 1, 10000, "a whole number from 1 to 10000",
                                "e.g. page_size: 1000");
  if (!page_size) return page_size.error();
  if (page_size->has_value()) cfg.page_size = static_cast<int>(**page_size);
  auto overlap = opts.duration("overlap", core::Seconds{0}, core::Seconds{7 * 86400},
                               "a duration from 0s to 7d", "e.g. overlap: 1h");
  if (!overlap) return overlap.error();
  if (overlap->has_value()) cfg.overlap = **overlap;
  auto start = opts.scalar("start");
  if (!start) return start.error();
  if (start->has_value() && !start->value().empty()) {
    cfg.start = core::parseIso(**start);
    if (!cfg.start)
      return opts.error("start", "'" + **start + "' is not an ISO 8601 date or time",
                        "e.g. start: 2025-01-01", opts.find("start"));
  }
  auto identity = opts.choice("identity", "user_view", {"user_view", "user_id"});
  if (!identity) return identity.error();
  cfg.user_view = *identity == "user_view";
  auto max_score = opts.scalar("max_score");
  if (!max_score) return max_score.error();
  if (max_score->has_value()) {
    const std::string s = **max_score;
    try {
      std::size_t used = 0;
      cfg.normalise.max_score = std::stod(s, &used);
      if (used != s.size() || !(cfg.normalise.max_score > 0)) throw std::invalid_argument("range");
    } catch (const std::exception&) {
      return opts.error("max_score", "'" + s + "' is not a number above 0",
                        "e.g. max_score: 100", opts.find("max_score"));
    }
  }
  if (const ports::OptionValue* sv = opts.find("status_values")) {
    if (sv->shape != ports::OptionValue::Shape::Map)
      return opts.error("status_values", "must be a map of transcript status to meaning",
                        "e.g. status_values: { Pending Completion: completed, Exempt: ignore }", sv);
    for (const auto& [text, meaning] : sv->map) {
      const auto m = parseStatusMeaning(meaning);
      if (!m)
        return opts.error("status_values",
                          "'" + meaning + "' (for '" + text +
                              "') is not one of completed, passed, failed, ignore",
                          "ignore skips rows with that status", sv);
      cfg.normalise.status_values.emplace_back(lower(text), *m);
    }
  }
  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;
  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 2m");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  return std::unique_ptr<ports::LmsSource>(std::make_unique<CornerstoneSource>(
      name, std::move(cfg), std::move(redactor), std::move(client_options), std::move(monotonic)));
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "cornerstone";
    s.description =
        "Reads completions and scores from Cornerstone OnDemand's Reporting API "
        "(vw_rpt_transcript, OData), incremental on _last_touched_dt_utc";
    s.keys = {
        {"base_url", ValueType::String, true, "", "The portal's address, e.g. https://acme.csod.com"},
        {"client_id", ValueType::String, true, "", "OAuth 2.0 client id (client credentials)"},
        {"client_secret", ValueType::Secret, true, "", "OAuth 2.0 client secret"},
        {"scope", ValueType::String, false, "all", "OAuth scope(s) requested with the token"},
        {"token_url", ValueType::String, false, "{base_url}/services/api/oauth2/token",
         "Token endpoint"},
        {"requests_per_minute", ValueType::Int, false, "400",
         "Client-side limit on requests in any 60 s (token and user lookups included)"},
        {"page_size", ValueType::Int, false, "1000",
         "Rows per page asked for (Prefer: odata.maxpagesize)"},
        {"overlap", ValueType::Duration, false, "1h",
         "Each fetch starts this long before the cursor (the latest _last_touched_dt_utc)"},
        {"start", ValueType::String, false, "",
         "First fetch: rows touched at or after this ISO 8601 time only (default: all)"},
        {"identity", ValueType::String, false, "user_view",
         "user_view (employee id = user_ref and email from vw_rpt_user) | user_id (the "
         "Reporting user id only, matched through mappings/identity.yaml)"},
        {"max_score", ValueType::String, false, "100", "The maximum of user_lo_score"},
        {"status_values", ValueType::Map, false, "",
         "Transcript status -> completed | passed | failed | ignore, on top of the built-in "
         "names"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for the portal instead of the system's"},
        {"timeout", ValueType::Duration, false, "2m", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options, std::function<std::chrono::milliseconds()> monotonic) {
  try {
    return build(name, options, base_dir, secrets, std::move(redactor), std::move(client_options),
                 std::move(monotonic));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::cornerstone
