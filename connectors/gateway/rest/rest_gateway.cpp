#include "connectors/gateway/rest/rest_gateway.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/common/link_header.hpp"
#include "connectors/common/options.hpp"
#include "connectors/gateway/builtin/token_format.hpp"
#include "connectors/gateway/rest/rest_template.hpp"
#include "core/time.hpp"

namespace certgate::connectors::rest {

namespace {

using Json = nlohmann::json;
using Pointer = Json::json_pointer;
using core::ErrorKind;

constexpr std::string_view kDefaultAliasPrefix = "certgate:";
constexpr std::int64_t kDefaultMaxPages = 1000;
constexpr int kMaxAttempts = 4;                   // per HTTP exchange
constexpr int kMaxMintRounds = 3;                 // issue answers lost in a row
constexpr std::int64_t kExpiryMarginSeconds = 2;  // request latency, for ttl_seconds
constexpr std::size_t kMaxDetailChars = 300;      // of a server's error body in a message
constexpr http::Millis kBaseDelay{500};
constexpr http::Millis kMaxDelay{30'000};
constexpr std::int64_t kMaxRetryAfterSeconds = 120;

const Placeholders& issuePlaceholders() {
  static const Placeholders kIssue{{"alias", "person", "user_id", "track", "scope", "models",
                                    "max_budget", "budget_duration", "expires_at", "expires_unix",
                                    "ttl_seconds"},
                                   true};
  return kIssue;
}
const Placeholders& tokenPlaceholders() {
  static const Placeholders kToken{{"token_id"}, false};
  return kToken;
}
const Placeholders& aliasPlaceholders() {
  static const Placeholders kAlias{{"alias"}, false};
  return kAlias;
}

// The value at `ptr`, or nullptr when the document has none there.
const Json* at(const Json& doc, const Pointer& ptr) {
  try {
    if (!doc.contains(ptr)) return nullptr;
    const Json& v = doc.at(ptr);
    return v.is_null() ? nullptr : &v;
  } catch (const std::exception&) {
    return nullptr;  // e.g. a member name used on an array
  }
}

std::string textAt(const Json& doc, const std::optional<Pointer>& ptr) {
  if (!ptr) return {};
  const Json* v = at(doc, *ptr);
  if (v == nullptr) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number_integer() || v->is_number_unsigned()) return v->dump();
  return {};
}

// ISO 8601 text or unix seconds (a number, or digits in a string).
std::optional<core::Instant> instantAt(const Json& doc, const std::optional<Pointer>& ptr) {
  if (!ptr) return std::nullopt;
  const Json* v = at(doc, *ptr);
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) {
    const double s = v->get<double>();
    if (!std::isfinite(s)) return std::nullopt;
    return core::Instant{core::Seconds{static_cast<std::int64_t>(s)}};
  }
  if (!v->is_string()) return std::nullopt;
  const std::string s = v->get<std::string>();
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      s.size() <= 12)
    return core::Instant{core::Seconds{std::stoll(s)}};
  return core::parseIso(s);
}

std::string basicCredentials(const std::string& user, const std::string& password) {
  const std::string plain = user + ":" + password;
  std::string out(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(plain.data()),
                                static_cast<int>(plain.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

// The member names of every object in `doc` whose value must never be quoted.
void maskMembers(Json& doc, const std::set<std::string>& names) {
  if (doc.is_object()) {
    for (auto& [k, v] : doc.items()) {
      if (names.count(k) != 0 && v.is_string()) {
        v = std::string(http::kRedacted);
      } else {
        maskMembers(v, names);
      }
    }
  } else if (doc.is_array()) {
    for (auto& v : doc) maskMembers(v, names);
  }
}

struct ItemPointers {
  Pointer id;
  Pointer alias;
  std::optional<Pointer> active;
  std::optional<Pointer> revoked;
  std::optional<Pointer> expires;
  std::optional<Pointer> person;
  std::optional<Pointer> scope;
};

struct Config {
  std::string base;    // the API's base URL, without a trailing '/'
  std::string origin;  // scheme://authority of base
  std::string auth_header = "Authorization";
  std::string auth_value;  // the whole header value
  std::string secret_member;  // last reference token of secret_pointer

  http::Method issue_method = http::Method::Post;
  PathTemplate issue_path;
  JsonTemplate issue_body;
  Pointer id_pointer;
  Pointer secret_pointer;
  std::optional<Pointer> expires_pointer;
  bool idempotency_header = true;

  http::Method revoke_method = http::Method::Delete;
  PathTemplate revoke_path;
  JsonTemplate revoke_body;  // empty: no body

  std::string list_path;
  PathTemplate alias_query;  // empty: lookups list everything
  std::optional<Pointer> items;  // nullopt: the answer is the array
  ItemPointers item;
  std::optional<Pointer> next_pointer;
  std::string cursor_param;
  std::int64_t max_pages = kDefaultMaxPages;

  PathTemplate verify_path;  // empty: verifyRevoked() answers Unknown
  std::string alias_prefix{kDefaultAliasPrefix};
  core::Seconds cache_window{0};
};

struct Item {
  std::string id;
  std::string alias;
  std::string person;
  std::string scope;
  std::optional<core::Instant> expires;
  bool flagged_inactive = false;

  bool active(core::Instant now) const { return !flagged_inactive && !(expires && *expires <= now); }
};

// ---- the gateway -------------------------------------------------------------------------------

class RestGateway final : public ports::Gateway {
 public:
  RestGateway(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
              http::ClientOptions client_options)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        redactor_(std::move(redactor)),
        client_(std::make_unique<http::Client>(std::move(client_options))),
        where_("gateway '" + name_ + "'") {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "rest"; }

  core::Status connect() override;
  ports::GatewayCapabilities capabilities() const override {
    ports::GatewayCapabilities caps;
    caps.cache_window = cfg_.cache_window;
    caps.can_verify = !cfg_.verify_path.empty();
    caps.supplies_secret = false;
    return caps;
  }

  core::Result<ports::IssuedToken> issue(const ports::IssueRequest& request) override;
  core::Result<ports::RevokeOutcome> revoke(const std::string& token_id) override;
  core::Result<std::optional<ports::ObservedToken>> findByAlias(const std::string& alias) override;
  core::Status observe(const std::function<void(ports::ObservedToken&&)>& sink) override;
  core::Result<ports::Enforcement> verifyRevoked(const std::string& token_id) override;
  std::uint64_t requestCount() const override { return requests_; }

 private:
  enum class Repeat {
    Always,           // reads and idempotent writes: 5xx, 408, 429 and transport failures
    OnlyRateLimited,  // the issue request: only a 429 is known not to have been processed
  };

  core::Instant now() const {
    return core::Instant{core::Seconds{client_->options().now_unix_s()}};
  }
  std::string redact(std::string_view s) const {
    return redactor_ ? redactor_->redact(s) : http::redact(s);
  }
  core::Error annotate(core::Error error) const {
    if (error.where.empty()) error.where = where_;
    error.message = redact(error.message);
    error.hint = redact(error.hint);
    return error;
  }
  core::Error fail(ErrorKind kind, const std::string& message, const std::string& hint = {}) const {
    return annotate(core::makeError(kind, message, where_, hint));
  }
  http::Millis backoff(int failures) const;
  std::optional<http::Millis> retryAfter(const http::Response& resp) const;

  core::Result<http::Response> exchange(http::Method method, const std::string& url,
                                        const Json* body, Repeat repeat,
                                        const std::string& idempotency_key = {});
  core::Error apiError(const http::Response& resp, const std::string& what) const;
  std::string errorDetail(const std::string& body) const;

  // The absolute URL of a next-page link or path, refused when it leaves the API's origin.
  core::Result<std::string> resolve(const std::string& link, const std::string& what) const;
  // Every item of the listing starting at `first` (all pages), or an error.
  core::Result<std::vector<Item>> list(const std::string& first, const std::string& what);
  core::Result<std::optional<Item>> lookupAlias(const std::string& alias);
  core::Result<Item> toItem(const Json& item, const std::string& what) const;
  core::Status checkTokenId(const std::string& token_id) const;

  ports::ObservedToken toObserved(const Item& item) const;
  core::Result<ports::IssuedToken> adoptOrRefuse(const Item& item) const;
  core::Result<TemplateValues> issueValues(const ports::IssueRequest& request,
                                           std::optional<core::Instant>& end) const;

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::string where_;
  std::uint64_t requests_ = 0;
  std::map<std::string, core::Instant> revoked_at_;  // revocations made by this instance
};

http::Millis RestGateway::backoff(int failures) const {
  const int shift = std::min(failures - 1, 16);
  const auto cap = std::min<std::int64_t>(kMaxDelay.count(), kBaseDelay.count() << shift);
  const double r = std::clamp(client_->options().random01(), 0.0, 1.0);
  return http::Millis(static_cast<std::int64_t>(std::llround(static_cast<double>(cap) * r)));
}

std::optional<http::Millis> RestGateway::retryAfter(const http::Response& resp) const {
  const auto header = resp.headers.get("Retry-After");
  if (!header) return std::nullopt;
  const auto seconds = http::parseRetryAfter(*header, client_->options().now_unix_s());
  if (!seconds) return std::nullopt;
  return http::Millis(std::chrono::seconds(std::min<long>(*seconds, kMaxRetryAfterSeconds)));
}

core::Result<http::Response> RestGateway::exchange(http::Method method, const std::string& url,
                                                   const Json* body, Repeat repeat,
                                                   const std::string& idempotency_key) {
  http::Request req;
  req.method = method;
  req.url = url;
  req.headers.add(cfg_.auth_header, cfg_.auth_value);
  req.headers.add("Accept", "application/json");
  if (!idempotency_key.empty()) req.headers.add("Idempotency-Key", idempotency_key);
  if (body != nullptr) {
    req.headers.add("Content-Type", "application/json");
    req.body = body->dump();
  }
  for (int attempt = 1;; ++attempt) {
    ++requests_;
    auto resp = client_->send(req);
    const bool last = attempt >= kMaxAttempts;
    if (!resp) {
      core::Error e = annotate(resp.error());
      if (repeat == Repeat::Always && e.kind == ErrorKind::Transient && !last) {
        client_->options().sleep(backoff(attempt));
        continue;
      }
      return e;
    }
    const long status = resp->status;
    if (status == 429 && !last) {
      client_->options().sleep(retryAfter(*resp).value_or(backoff(attempt)));
      continue;
    }
    if ((status >= 500 || status == 408) && repeat == Repeat::Always && !last) {
      client_->options().sleep(retryAfter(*resp).value_or(backoff(attempt)));
      continue;
    }
    return std::move(*resp);
  }
}

std::string RestGateway::errorDetail(const std::string& body) const {
  Json doc = Json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    std::string raw = body;
    for (char& c : raw)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return raw;
  }
  if (!cfg_.secret_member.empty()) maskMembers(doc, {cfg_.secret_member});
  // The usual shapes: {"error": "..."}, {"error": {"message", "code"}}, {"message"},
  // {"detail"}, {"errors": [{"message"}]}, {"error_description"}.
  const auto str = [](const Json& obj, const char* key) -> std::string {
    if (!obj.is_object()) return {};
    const auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (doc.is_object()) {
    const auto err = doc.find("error");
    if (err != doc.end() && err->is_object()) {
      std::string m = str(*err, "message");
      const std::string code = str(*err, "code");
      if (!m.empty()) return code.empty() ? m : m + " (code " + code + ")";
    }
    std::string m = str(doc, "message");
    if (m.empty()) m = str(doc, "detail");
    if (m.empty()) m = str(doc, "error_description");
    if (!m.empty()) {
      const std::string e = str(doc, "error");
      return e.empty() ? m : e + ": " + m;
    }
    if (err != doc.end() && err->is_string()) return err->get<std::string>();
    const auto errs = doc.find("errors");
    if (errs != doc.end() && errs->is_array()) {
      std::string joined;
      for (const auto& e : *errs) {
        const std::string one = e.is_string() ? e.get<std::string>() : str(e, "message");
        if (!one.empty()) joined += (joined.empty() ? "" : "; ") + one;
      }
      if (!joined.empty()) return joined;
    }
  }
  return doc.dump();
}

core::Error RestGateway::apiError(const http::Response& resp, const std::string& what) const {
  const core::Status classified =
      http::classify(resp, what, client_->options().now_unix_s(), redactor_.get());
  core::Error e =
      classified ? core::makeError(ErrorKind::Permanent, "unexpected answer") : classified.error();
  std::string detail = resp.body.empty() ? std::string() : errorDetail(resp.body);
  // Mask before cutting, so that a cut never leaves half a secret unmasked.
  detail = redact(detail);
  if (detail.size() > kMaxDetailChars) detail = detail.substr(0, kMaxDetailChars) + "...";
  std::string message = what + ": HTTP " + std::to_string(resp.status);
  if (!detail.empty()) message += ": " + detail;
  e.message = redact(message);
  e.where = where_;
  switch (e.kind) {
    case ErrorKind::Auth:
      e.hint = resp.status == 401
                   ? "the API refused the credential: check token (or username and password), "
                     "auth_header and auth_scheme"
                   : "the credential lacks a permission the API requires for this request";
      break;
    case ErrorKind::RateLimited:
      e.hint = "the API kept answering 429; certgate tries again later";
      break;
    case ErrorKind::Transient:
      e.hint = "the API failed to answer after retries; certgate tries again later";
      break;
    case ErrorKind::NotFound:
      e.hint = "check url and the *_path options: the API has no such resource";
      break;
    default:
      break;
  }
  e.hint = redact(e.hint);
  return e;
}

core::Result<std::string> RestGateway::resolve(const std::string& link,
                                               const std::string& what) const {
  std::string url;
  if (link.rfind("http://", 0) == 0 || link.rfind("https://", 0) == 0) {
    const auto origin = options::originOf(link);
    if (!origin || *origin != cfg_.origin)
      return fail(ErrorKind::Permanent,
                  what + ": the next page is on another origin (" + link + ")",
                  "certgate sends its credential only to " + cfg_.origin);
    url = link;
  } else if (!link.empty() && link.front() == '/') {
    url = cfg_.origin + link;
  } else {
    return fail(ErrorKind::Permanent, what + ": '" + link + "' is not a next-page URL",
                "with a cursor in the answer, set cursor_param to the query parameter that "
                "carries it back");
  }
  return url;
}

core::Result<Item> RestGateway::toItem(const Json& item, const std::string& what) const {
  Item out;
  out.id = textAt(item, cfg_.item.id);
  out.alias = textAt(item, cfg_.item.alias);
  out.person = textAt(item, cfg_.item.person);
  out.scope = textAt(item, cfg_.item.scope);
  out.expires = instantAt(item, cfg_.item.expires);
  if (cfg_.item.active) {
    const Json* v = at(item, *cfg_.item.active);
    if (v != nullptr && !v->is_boolean())
      return fail(ErrorKind::Permanent,
                  what + ": item_active_pointer does not point at true or false",
                  "point item_active_pointer at a boolean member of each listed token");
    out.flagged_inactive = v != nullptr && !v->get<bool>();
  }
  if (cfg_.item.revoked) {
    const Json* v = at(item, *cfg_.item.revoked);
    if (v != nullptr && !v->is_boolean())
      return fail(ErrorKind::Permanent,
                  what + ": item_revoked_pointer does not point at true or false",
                  "point item_revoked_pointer at a boolean member of each listed token");
    if (v != nullptr && v->get<bool>()) out.flagged_inactive = true;
  }
  return out;
}

core::Result<std::vector<Item>> RestGateway::list(const std::string& first,
                                                  const std::string& what) {
  std::vector<Item> out;
  std::set<std::string> visited;
  std::string url = first;
  for (std::int64_t page = 1;; ++page) {
    if (page > cfg_.max_pages)
      return fail(ErrorKind::Permanent,
                  what + ": more than " + std::to_string(cfg_.max_pages) + " pages",
                  "raise max_pages, or check next_pointer: the API may keep answering with a next "
                  "page");
    if (!visited.insert(url).second)
      return fail(ErrorKind::Permanent, what + ": the API sent the same page twice (" + url + ")",
                  "check next_pointer and cursor_param");
    const std::string page_what = what + (page > 1 ? " (page " + std::to_string(page) + ")" : "");
    auto resp = exchange(http::Method::Get, url, nullptr, Repeat::Always);
    if (!resp) return resp.error();
    if (resp->status < 200 || resp->status >= 300) return apiError(*resp, page_what);
    const Json doc = Json::parse(resp->body, nullptr, false);
    if (doc.is_discarded())
      return fail(ErrorKind::Permanent, page_what + ": the answer is not JSON",
                  "check url and list_path");
    const Json* items = cfg_.items ? at(doc, *cfg_.items) : &doc;
    if (items == nullptr || !items->is_array())
      return fail(ErrorKind::Permanent,
                  page_what + ": no array of tokens at items_pointer '" +
                      (cfg_.items ? cfg_.items->to_string() : std::string()) + "'",
                  "set items_pointer to where the answer lists the tokens (omit it when the "
                  "answer is the array itself)");
    for (const auto& it : *items) {
      auto item = toItem(it, page_what);
      if (!item) return item.error();
      out.push_back(std::move(*item));
    }

    std::string next;
    if (cfg_.next_pointer) {
      const Json* v = at(doc, *cfg_.next_pointer);
      if (v != nullptr && v->is_string()) next = v->get<std::string>();
      if (v != nullptr && v->is_number_integer()) next = v->dump();
      if (next.empty()) break;
      if (!cfg_.cursor_param.empty()) {
        next = first + (first.find('?') == std::string::npos ? "?" : "&") + cfg_.cursor_param +
               "=" + percentEncode(next);
      } else {
        auto resolved = resolve(next, page_what);
        if (!resolved) return resolved.error();
        next = std::move(*resolved);
      }
    } else {
      std::string links;
      for (const auto& h : resp->headers.getAll("Link")) links += (links.empty() ? "" : ", ") + h;
      const auto link = http::nextLink(links);
      if (!link) break;
      auto resolved = resolve(*link, page_what);
      if (!resolved) return resolved.error();
      next = std::move(*resolved);
    }
    if (items->empty()) break;  // an empty page ends the listing whatever it says
    url = std::move(next);
  }
  return out;
}

core::Result<std::optional<Item>> RestGateway::lookupAlias(const std::string& alias) {
  std::string url = cfg_.base + cfg_.list_path;
  if (!cfg_.alias_query.empty())
    url += (url.find('?') == std::string::npos ? "?" : "&") +
           cfg_.alias_query.render({{"alias", alias}});
  auto items = list(url, "GET " + cfg_.list_path + " (alias '" + alias + "')");
  if (!items) return items.error();
  const core::Instant t = now();
  std::optional<Item> best_active;
  std::optional<Item> best_inactive;
  for (auto& item : *items) {
    if (item.alias != alias || item.id.empty()) continue;  // filters may be partial or absent
    auto& slot = item.active(t) ? best_active : best_inactive;
    if (!slot) slot = std::move(item);
  }
  if (best_active) return best_active;
  return best_inactive;
}

core::Status RestGateway::checkTokenId(const std::string& token_id) const {
  if (token_id.empty() || token_id == "." || token_id == "..")
    return fail(ErrorKind::Invalid, "'" + token_id + "' is not a token id",
                "use the token_id that issue() or observe() reported");
  return {};
}

ports::ObservedToken RestGateway::toObserved(const Item& item) const {
  ports::ObservedToken o;
  o.token_id = item.id;
  o.alias = item.alias;
  o.person_key = item.person;
  o.scope = item.scope;
  o.expires_at = item.expires;
  o.active = item.active(now());
  return o;
}

core::Result<ports::IssuedToken> RestGateway::adoptOrRefuse(const Item& item) const {
  if (item.active(now())) {
    ports::IssuedToken t;
    t.token_id = item.id;
    t.alias = item.alias;
    t.expires_at = item.expires;
    t.adopted = true;
    return t;
  }
  return fail(ErrorKind::Conflict,
              "a token with alias '" + item.alias + "' already exists but is revoked or expired "
              "(token " + item.id + ")",
              "certgate never revives a revoked or expired token; a new rotation gets a new "
              "alias. Delete the token on the gateway if this alias must be issued again");
}

core::Result<TemplateValues> RestGateway::issueValues(const ports::IssueRequest& request,
                                                       std::optional<core::Instant>& end) const {
  const core::Instant t = now();
  core::Instant until = request.expires_at;
  bool unbounded = until >= core::kNever;
  if (request.scope.lifetime.count() > 0) {
    const core::Instant by_lifetime = t + request.scope.lifetime;
    if (unbounded || by_lifetime < until) until = by_lifetime;
    unbounded = false;
  }
  std::int64_t ttl = 0;
  if (!unbounded) {
    ttl = (until - t).count() - kExpiryMarginSeconds;
    if (ttl < 1)
      return fail(ErrorKind::Invalid,
                  "alias '" + request.alias + "': the token would expire at " +
                      core::formatIso(until) + ", which is not in the future",
                  "a token is issued only while access lasts");
    end = until;
  }
  const auto textOrNull = [](const std::string& s) { return s.empty() ? Json() : Json(s); };
  TemplateValues v;
  v["alias"] = request.alias;
  v["person"] = textOrNull(request.person_key);
  v["user_id"] = textOrNull(request.user_id);
  v["track"] = textOrNull(request.track);
  v["scope"] = textOrNull(request.scope.scope);
  v["models"] = request.scope.models;
  v["max_budget"] = request.scope.max_budget ? Json(*request.scope.max_budget) : Json();
  v["budget_duration"] = textOrNull(request.scope.budget_duration);
  v["expires_at"] = unbounded ? Json() : Json(core::formatIso(until));
  v["expires_unix"] =
      unbounded ? Json() : Json(std::chrono::duration_cast<core::Seconds>(until.time_since_epoch()).count());
  v["ttl_seconds"] = unbounded ? Json() : Json(ttl);
  for (const auto& [k, value] : request.metadata) v["metadata." + k] = value;
  return v;
}

core::Result<ports::IssuedToken> RestGateway::issue(const ports::IssueRequest& request) {
  if (request.alias.empty())
    return fail(ErrorKind::Invalid, "the token has no alias", "this is a defect in certgate");
  if (request.alias.rfind(cfg_.alias_prefix, 0) != 0)
    return fail(ErrorKind::Invalid,
                "alias '" + request.alias + "' does not start with alias_prefix '" +
                    cfg_.alias_prefix + "'",
                "observe() finds certgate's tokens by that prefix; make alias_prefix match the "
                "aliases certgate issues");

  // A retry after a crash finds the token minted before it.
  auto existing = lookupAlias(request.alias);
  if (!existing) return existing.error();
  if (*existing) return adoptOrRefuse(**existing);

  std::optional<core::Instant> end;
  auto values = issueValues(request, end);
  if (!values) return values.error();
  const std::string url = cfg_.base + cfg_.issue_path.render(*values);
  const Json body = cfg_.issue_body.render(*values);
  const std::string what = std::string(http::toString(cfg_.issue_method)) + " " +
                           cfg_.issue_path.render(*values) + " (alias '" + request.alias + "')";
  const std::string key = cfg_.idempotency_header ? request.alias : std::string();

  std::optional<core::Error> last;
  for (int round = 1; round <= kMaxMintRounds; ++round) {
    auto resp = exchange(cfg_.issue_method, url, &body, Repeat::OnlyRateLimited, key);
    // Unless answered otherwise below, the token may exist although no answer said so.
    if (!resp) {
      // A refused certificate or a bad URL never reached the API.
      if (resp.error().kind != ErrorKind::Transient) return resp.error();
      last = resp.error();
    } else if (resp->status >= 200 && resp->status < 300) {
      const Json doc = Json::parse(resp->body, nullptr, false);
      const std::string secret = doc.is_discarded() ? std::string() : textAt(doc, cfg_.secret_pointer);
      if (!secret.empty() && redactor_) redactor_->add(secret);
      const std::string id = doc.is_discarded() ? std::string() : textAt(doc, cfg_.id_pointer);
      // Never quote this body: it may hold the secret.
      if (secret.empty())
        return fail(ErrorKind::Permanent,
                    what + ": HTTP " + std::to_string(resp->status) + ": no secret at secret_pointer '" +
                        cfg_.secret_pointer.to_string() + "'",
                    "set secret_pointer to where the answer carries the new token (shown once)");
      if (id.empty())
        return fail(ErrorKind::Permanent,
                    what + ": HTTP " + std::to_string(resp->status) + ": no token id at id_pointer '" +
                        cfg_.id_pointer.to_string() + "'",
                    "set id_pointer to where the answer carries the token's id; the token was "
                    "created, find it on the gateway by its alias");
      ports::IssuedToken t;
      t.token_id = id;
      t.secret = secret;
      t.secret_digest = builtin::digest(secret);
      t.alias = request.alias;
      t.expires_at = end;
      if (auto reported = instantAt(doc, cfg_.expires_pointer)) t.expires_at = reported;
      return t;
    } else if (resp->status >= 500 || resp->status == 408 || resp->status == 409) {
      // A 409: an earlier attempt (or another writer) created the alias first.
      last = apiError(*resp, what);
    } else {
      return apiError(*resp, what);
    }
    auto found = lookupAlias(request.alias);
    if (!found) return found.error();
    if (*found) return adoptOrRefuse(**found);
    if (last && last->kind == ErrorKind::Conflict) return *last;
    if (round < kMaxMintRounds) client_->options().sleep(backoff(round));
  }
  return *last;
}

core::Result<ports::RevokeOutcome> RestGateway::revoke(const std::string& token_id) {
  if (auto ok = checkTokenId(token_id); !ok) return ok.error();
  const TemplateValues values{{"token_id", token_id}};
  const std::string path = cfg_.revoke_path.render(values);
  const std::string what =
      std::string(http::toString(cfg_.revoke_method)) + " " + path + " (token " + token_id + ")";
  std::optional<Json> body;
  if (!cfg_.revoke_body.empty()) body = cfg_.revoke_body.render(values);
  auto resp = exchange(cfg_.revoke_method, cfg_.base + path, body ? &*body : nullptr,
                       Repeat::Always);
  if (!resp) return resp.error();
  ports::RevokeOutcome out;
  if (resp->status == 404 || resp->status == 410) {
    out.no_op = true;
  } else if (resp->status < 200 || resp->status >= 300) {
    return apiError(*resp, what);
  }
  revoked_at_.emplace(token_id, now());
  return out;
}

core::Result<std::optional<ports::ObservedToken>> RestGateway::findByAlias(
    const std::string& alias) {
  if (alias.empty()) return fail(ErrorKind::Invalid, "findByAlias: the alias is empty");
  auto item = lookupAlias(alias);
  if (!item) return item.error();
  if (!*item) return std::optional<ports::ObservedToken>{};
  return std::optional<ports::ObservedToken>{toObserved(**item)};
}

core::Status RestGateway::observe(const std::function<void(ports::ObservedToken&&)>& sink) {
  auto items = list(cfg_.base + cfg_.list_path, "GET " + cfg_.list_path);
  if (!items) return items.error();
  std::vector<ports::ObservedToken> out;
  for (const auto& item : *items) {
    if (item.alias.rfind(cfg_.alias_prefix, 0) != 0) continue;
    if (item.id.empty())
      return fail(ErrorKind::Permanent,
                  "GET " + cfg_.list_path + ": token '" + item.alias +
                      "' has no id at item_id_pointer '" + cfg_.item.id.to_string() + "'",
                  "set item_id_pointer to where each listed token carries its id");
    out.push_back(toObserved(item));
  }
  for (auto& o : out) sink(std::move(o));
  return {};
}

core::Result<ports::Enforcement> RestGateway::verifyRevoked(const std::string& token_id) {
  if (cfg_.verify_path.empty()) return ports::Enforcement::Unknown;
  if (auto ok = checkTokenId(token_id); !ok) return ok.error();
  const core::Instant t = now();
  const std::string path = cfg_.verify_path.render({{"token_id", token_id}});
  const std::string what = "GET " + path;
  auto resp = exchange(http::Method::Get, cfg_.base + path, nullptr, Repeat::Always);
  if (!resp) return resp.error();
  bool refused = false;
  if (resp->status == 404 || resp->status == 410) {
    refused = true;
  } else if (resp->status < 200 || resp->status >= 300) {
    return apiError(*resp, what);
  } else {
    const Json doc = Json::parse(resp->body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return fail(ErrorKind::Permanent, what + ": the answer is not a JSON object",
                  "verify_path must name the API's resource for one token");
    auto item = toItem(doc, what);
    if (!item) return item.error();
    refused = !item->active(t);
  }
  if (!refused) return ports::Enforcement::NotEnforced;
  const auto own = revoked_at_.find(token_id);
  if (own != revoked_at_.end() && t < own->second + cfg_.cache_window)
    return ports::Enforcement::Pending;
  return ports::Enforcement::Enforced;
}

core::Status RestGateway::connect() {
  const std::string what = "GET " + cfg_.list_path;
  auto resp = exchange(http::Method::Get, cfg_.base + cfg_.list_path, nullptr, Repeat::Always);
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return apiError(*resp, what);
  const Json doc = Json::parse(resp->body, nullptr, false);
  const Json* items = doc.is_discarded() ? nullptr : (cfg_.items ? at(doc, *cfg_.items) : &doc);
  if (items == nullptr || !items->is_array())
    return fail(ErrorKind::Permanent,
                what + ": no array of tokens at items_pointer '" +
                    (cfg_.items ? cfg_.items->to_string() : std::string()) + "'",
                "check url, list_path and items_pointer");
  return {};
}

// ---- configuration -----------------------------------------------------------------------------

using options::OptionReader;

core::Result<std::optional<Pointer>> pointerOption(const OptionReader& opts, const std::string& key,
                                                   bool required) {
  auto v = opts.scalar(key);
  if (!v) return v.error();
  if (!v->has_value() || (*v)->empty()) {
    if (required)
      return opts.error(key, "is required",
                        "a JSON pointer (RFC 6901) to the value in the API's answer, e.g. /id");
    return std::optional<Pointer>{};
  }
  try {
    return std::optional<Pointer>{Pointer(**v)};
  } catch (const std::exception&) {
    return opts.error(key, "'" + **v + "' is not a JSON pointer",
                      "a JSON pointer starts with '/', e.g. /id or /data/token", opts.find(key));
  }
}

core::Result<http::Method> methodOption(const OptionReader& opts, const std::string& key,
                                        const std::string& fallback) {
  auto m = opts.choice(key, fallback, {"post", "put", "patch", "delete", "get"},
                       OptionReader::Echo::AsWritten);
  if (!m) return m.error();
  if (*m == "post") return http::Method::Post;
  if (*m == "put") return http::Method::Put;
  if (*m == "patch") return http::Method::Patch;
  if (*m == "get") return http::Method::Get;
  return http::Method::Delete;
}

core::Result<PathTemplate> pathOption(const OptionReader& opts, const std::string& key,
                                      const Placeholders& allowed, const std::string& example) {
  auto v = opts.required(key, "e.g. " + key + ": " + example);
  if (!v) return v.error();
  if (v->front() != '/' && key != "alias_query")
    return opts.error(key, "must start with '/'", "a path under url, e.g. " + example,
                      opts.find(key));
  auto t = PathTemplate::parse(*v, allowed);
  if (!t) return opts.error(key, t.error().message, "placeholders here: " + allowed.list(),
                            opts.find(key));
  return t;
}

core::Result<JsonTemplate> bodyOption(const OptionReader& opts, const std::string& key,
                                      const Placeholders& allowed) {
  auto v = opts.scalar(key);
  if (!v) return v.error();
  if (!v->has_value()) return JsonTemplate{};
  auto t = JsonTemplate::parse(**v, allowed);
  if (!t)
    return opts.error(key, t.error().message,
                      "write JSON with placeholders in strings, e.g. {\"name\": \"{{alias}}\", "
                      "\"expires_at\": \"{{expires_at}}\"}; placeholders here: " +
                          allowed.list(),
                      opts.find(key));
  return t;
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "rest";
    s.description = "API tokens on any gateway with a token REST API, described by templates";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The API's base URL, e.g. https://api.example.com (https; http only to localhost)"},
        {"token", ValueType::Secret, false, "",
         "API credential sent in auth_header (or use username and password)"},
        {"auth_header", ValueType::String, false, "Authorization", "Header that carries token"},
        {"auth_scheme", ValueType::String, false, "Bearer",
         "Written before token in auth_header; none: the token alone"},
        {"username", ValueType::String, false, "", "HTTP Basic user (with password)"},
        {"password", ValueType::Secret, false, "", "HTTP Basic password (with username)"},
        {"issue_method", ValueType::String, false, "POST", "POST, PUT or PATCH"},
        {"issue_path", ValueType::String, true, "",
         "Path template of the issue request, e.g. /v1/tokens"},
        {"issue_body", ValueType::String, true, "",
         "JSON template of the issue request, e.g. {\"name\": \"{{alias}}\", \"expires_at\": "
         "\"{{expires_at}}\"}"},
        {"id_pointer", ValueType::String, true, "",
         "JSON pointer to the token's id in the issue answer, e.g. /id"},
        {"secret_pointer", ValueType::String, true, "",
         "JSON pointer to the new token (shown once) in the issue answer, e.g. /token"},
        {"expires_pointer", ValueType::String, false, "",
         "JSON pointer to the expiry in the issue answer (ISO 8601 or unix seconds)"},
        {"idempotency_header", ValueType::Bool, false, "true",
         "Send Idempotency-Key: <alias> with the issue request"},
        {"revoke_method", ValueType::String, false, "DELETE", "DELETE, POST, PUT or PATCH"},
        {"revoke_path", ValueType::String, true, "",
         "Path template of the revoke request, e.g. /v1/tokens/{{token_id}}"},
        {"revoke_body", ValueType::String, false, "",
         "JSON template of the revoke request's body ({{token_id}})"},
        {"list_path", ValueType::String, true, "", "Path of the token listing (GET), e.g. /v1/tokens"},
        {"alias_query", ValueType::String, false, "",
         "Query added to list_path to look one alias up, e.g. name={{alias}}"},
        {"items_pointer", ValueType::String, false, "",
         "JSON pointer to the array of tokens in a listing; absent: the answer is the array"},
        {"item_id_pointer", ValueType::String, false, "id_pointer",
         "JSON pointer to a listed token's id"},
        {"item_alias_pointer", ValueType::String, true, "",
         "JSON pointer to a listed token's alias, e.g. /name"},
        {"item_active_pointer", ValueType::String, false, "",
         "JSON pointer to a listed token's active flag (true/false)"},
        {"item_revoked_pointer", ValueType::String, false, "",
         "JSON pointer to a listed token's revoked flag (true/false)"},
        {"item_expires_pointer", ValueType::String, false, "expires_pointer",
         "JSON pointer to a listed token's expiry (ISO 8601 or unix seconds)"},
        {"item_person_pointer", ValueType::String, false, "",
         "JSON pointer to a listed token's person key"},
        {"item_scope_pointer", ValueType::String, false, "",
         "JSON pointer to a listed token's scope"},
        {"next_pointer", ValueType::String, false, "",
         "JSON pointer to the next page (a URL, or a cursor with cursor_param); absent: the "
         "Link header"},
        {"cursor_param", ValueType::String, false, "",
         "Query parameter that sends the cursor at next_pointer back"},
        {"max_pages", ValueType::Int, false, std::to_string(kDefaultMaxPages),
         "Upper bound of pages in one listing"},
        {"verify_path", ValueType::String, false, "",
         "Path template reading one token (GET), e.g. /v1/tokens/{{token_id}}; enables "
         "verification"},
        {"alias_prefix", ValueType::String, false, std::string(kDefaultAliasPrefix),
         "Alias prefix of the tokens certgate owns; observe() lists only those"},
        {"cache_window", ValueType::Duration, false, "0s",
         "How long the gateway may still accept a revoked token"},
        {"ca_file", ValueType::Path, false, "",
         "PEM CA bundle replacing the system CAs (relative to the config file)"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::Gateway>> makeGateway(const std::string& name,
                                                          const ports::Options& options,
                                                          const std::string& base_dir,
                                                          const ports::SecretReader& secrets,
                                                          std::shared_ptr<http::Redactor> redactor,
                                                          http::ClientOptions client_options) {
  try {
    const OptionReader opts("gateway '" + name + "'", options);
    Config cfg;
    if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();

    auto url = opts.required("url", "the token API's base URL, e.g. https://api.example.com");
    if (!url) return url.error();
    {
      std::string u = *url;
      while (!u.empty() && u.back() == '/') u.pop_back();
      auto origin = opts.url("url", u,
                             {.not_url = "'" + u + "' is not an http(s) URL",
                              .not_url_hint = "e.g. url: https://api.example.com",
                              .plain_http = "must use https",
                              .plain_http_hint = "the credential only travels over TLS (plain "
                                                 "http is allowed to localhost only)"});
      if (!origin) return origin.error();
      if (u.find_first_of("?#") != std::string::npos)
        return opts.error("url", "must not have a query or fragment",
                          "give the API's base URL; paths go in issue_path, list_path ...",
                          opts.find("url"));
      const std::size_t authority = u.find("://") + 3;
      const std::size_t path = u.find('/', authority);
      cfg.origin = *origin;
      cfg.base = *origin + (path == std::string::npos ? std::string() : u.substr(path));
    }

    // ---- credential
    const options::SecretWording wording{
        .missing_message = "is required",
        .missing_hint = "write it as `token: {file: /etc/certgate/token-api}` or `{credential: NAME}`",
        .inline_message = "must be a secret reference, not an inline value",
        .inline_hint = "write it as {file: PATH} or {credential: NAME}; secrets never appear in "
                       "the configuration file",
        .no_reader_hint = "this is a defect in certgate",
        .empty_hint = "check the file or credential",
        .reader_errors_name_what = false,
        .strip = "\n\r "};
    const bool has_token = opts.find("token") != nullptr;
    const bool has_user = opts.find("username") != nullptr;
    const bool has_password = opts.find("password") != nullptr;
    if (has_token && (has_user || has_password))
      return opts.error(has_user ? "username" : "password", "cannot be combined with token",
                        "use either token (bearer or a header) or username and password (Basic)",
                        opts.find(has_user ? "username" : "password"));
    if (has_token) {
      auto token = opts.secret("token", secrets, wording);
      if (!token) return token.error();
      if (redactor) redactor->add(*token);
      auto header = opts.scalar("auth_header");
      if (!header) return header.error();
      if (header->has_value()) {
        const std::string& h = **header;
        const bool valid = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
        });
        if (!valid)
          return opts.error("auth_header", "'" + h + "' is not a header name",
                            "e.g. auth_header: X-Api-Key", opts.find("auth_header"));
        cfg.auth_header = h;
      }
      auto scheme = opts.scalar("auth_scheme");
      if (!scheme) return scheme.error();
      const std::string s = scheme->value_or("Bearer");
      cfg.auth_value = (s == "none" || s.empty()) ? *token : s + " " + *token;
    } else if (has_user || has_password) {
      if (!has_user)
        return opts.error("username", "is required with password", "e.g. username: certgate");
      auto user = opts.required("username", "e.g. username: certgate");
      if (!user) return user.error();
      if (user->find(':') != std::string::npos)
        return opts.error("username", "must not contain ':'", "HTTP Basic cannot carry it",
                          opts.find("username"));
      auto password = opts.secret("password", secrets, wording);
      if (!password) return password.error();
      if (redactor) redactor->add(*password);
      cfg.auth_value = "Basic " + basicCredentials(*user, *password);
      if (redactor) redactor->add(cfg.auth_value.substr(6));
      for (const char* key : {"auth_header", "auth_scheme"})
        if (opts.find(key) != nullptr)
          return opts.error(key, "applies to token only", "Basic goes in Authorization",
                            opts.find(key));
    } else {
      return opts.error("token", "is required (or username and password)",
                        "write `token: {file: /etc/certgate/token-api}` or `{credential: NAME}`");
    }

    // ---- issue
    auto issue_method = methodOption(opts, "issue_method", "post");
    if (!issue_method) return issue_method.error();
    if (*issue_method == http::Method::Get || *issue_method == http::Method::Delete)
      return opts.error("issue_method", "must be POST, PUT or PATCH", "e.g. issue_method: POST",
                        opts.find("issue_method"));
    cfg.issue_method = *issue_method;
    auto issue_path = pathOption(opts, "issue_path", issuePlaceholders(), "/v1/tokens");
    if (!issue_path) return issue_path.error();
    cfg.issue_path = std::move(*issue_path);
    if (opts.find("issue_body") == nullptr)
      return opts.error("issue_body", "is required",
                        "the JSON the API expects, e.g. issue_body: '{\"name\": \"{{alias}}\", "
                        "\"expires_at\": \"{{expires_at}}\"}'");
    auto issue_body = bodyOption(opts, "issue_body", issuePlaceholders());
    if (!issue_body) return issue_body.error();
    cfg.issue_body = std::move(*issue_body);
    auto id_pointer = pointerOption(opts, "id_pointer", true);
    if (!id_pointer) return id_pointer.error();
    cfg.id_pointer = **id_pointer;
    auto secret_pointer = pointerOption(opts, "secret_pointer", true);
    if (!secret_pointer) return secret_pointer.error();
    cfg.secret_pointer = **secret_pointer;
    if (!cfg.secret_pointer.empty()) cfg.secret_member = cfg.secret_pointer.back();
    auto expires_pointer = pointerOption(opts, "expires_pointer", false);
    if (!expires_pointer) return expires_pointer.error();
    cfg.expires_pointer = *expires_pointer;
    auto idem = opts.flag("idempotency_header", true);
    if (!idem) return idem.error();
    cfg.idempotency_header = *idem;

    // ---- revoke
    auto revoke_method = methodOption(opts, "revoke_method", "delete");
    if (!revoke_method) return revoke_method.error();
    if (*revoke_method == http::Method::Get)
      return opts.error("revoke_method", "must be DELETE, POST, PUT or PATCH",
                        "e.g. revoke_method: DELETE", opts.find("revoke_method"));
    cfg.revoke_method = *revoke_method;
    auto revoke_path =
        pathOption(opts, "revoke_path", tokenPlaceholders(), "/v1/tokens/{{token_id}}");
    if (!revoke_path) return revoke_path.error();
    cfg.revoke_path = std::move(*revoke_path);
    auto revoke_body = bodyOption(opts, "revoke_body", tokenPlaceholders());
    if (!revoke_body) return revoke_body.error();
    cfg.revoke_body = std::move(*revoke_body);
    if (!cfg.revoke_path.uses("token_id") && !cfg.revoke_body.uses("token_id"))
      return opts.error("revoke_path", "names no token: use {{token_id}} here or in revoke_body",
                        "e.g. revoke_path: /v1/tokens/{{token_id}}", opts.find("revoke_path"));

    // ---- listing
    auto list_path = opts.required("list_path", "e.g. list_path: /v1/tokens");
    if (!list_path) return list_path.error();
    if (list_path->front() != '/')
      return opts.error("list_path", "must start with '/'", "e.g. list_path: /v1/tokens",
                        opts.find("list_path"));
    if (list_path->find("{{") != std::string::npos)
      return opts.error("list_path", "takes no placeholders",
                        "put the alias filter in alias_query, e.g. alias_query: name={{alias}}",
                        opts.find("list_path"));
    cfg.list_path = *list_path;
    if (opts.find("alias_query") != nullptr) {
      auto q = pathOption(opts, "alias_query", aliasPlaceholders(), "name={{alias}}");
      if (!q) return q.error();
      if (!q->uses("alias"))
        return opts.error("alias_query", "does not use {{alias}}", "e.g. alias_query: name={{alias}}",
                          opts.find("alias_query"));
      cfg.alias_query = std::move(*q);
    }
    auto items = pointerOption(opts, "items_pointer", false);
    if (!items) return items.error();
    cfg.items = *items;
    auto item_id = pointerOption(opts, "item_id_pointer", false);
    if (!item_id) return item_id.error();
    cfg.item.id = item_id->value_or(cfg.id_pointer);
    auto item_alias = pointerOption(opts, "item_alias_pointer", true);
    if (!item_alias) return item_alias.error();
    cfg.item.alias = **item_alias;
    auto item_active = pointerOption(opts, "item_active_pointer", false);
    if (!item_active) return item_active.error();
    auto item_revoked = pointerOption(opts, "item_revoked_pointer", false);
    if (!item_revoked) return item_revoked.error();
    if (*item_active && *item_revoked)
      return opts.error("item_revoked_pointer", "cannot be combined with item_active_pointer",
                        "set the one the API's listing has", opts.find("item_revoked_pointer"));
    cfg.item.active = *item_active;
    cfg.item.revoked = *item_revoked;
    auto item_expires = pointerOption(opts, "item_expires_pointer", false);
    if (!item_expires) return item_expires.error();
    cfg.item.expires = *item_expires ? *item_expires : cfg.expires_pointer;
    auto item_person = pointerOption(opts, "item_person_pointer", false);
    if (!item_person) return item_person.error();
    cfg.item.person = *item_person;
    auto item_scope = pointerOption(opts, "item_scope_pointer", false);
    if (!item_scope) return item_scope.error();
    cfg.item.scope = *item_scope;
    auto next = pointerOption(opts, "next_pointer", false);
    if (!next) return next.error();
    cfg.next_pointer = *next;
    auto cursor = opts.scalar("cursor_param");
    if (!cursor) return cursor.error();
    if (cursor->has_value()) {
      if (!cfg.next_pointer)
        return opts.error("cursor_param", "needs next_pointer",
                          "next_pointer says where the answer carries the cursor, e.g. "
                          "next_pointer: /next_cursor",
                          opts.find("cursor_param"));
      cfg.cursor_param = percentEncode(**cursor);
    }
    auto pages = opts.integer("max_pages", 1, 1'000'000, "a whole number from 1 to 1000000",
                              "e.g. max_pages: 1000");
    if (!pages) return pages.error();
    if (pages->has_value()) cfg.max_pages = **pages;

    // ---- verification and ownership
    if (opts.find("verify_path") != nullptr) {
      auto verify = pathOption(opts, "verify_path", tokenPlaceholders(), "/v1/tokens/{{token_id}}");
      if (!verify) return verify.error();
      if (!verify->uses("token_id"))
        return opts.error("verify_path", "does not use {{token_id}}",
                          "e.g. verify_path: /v1/tokens/{{token_id}}", opts.find("verify_path"));
      cfg.verify_path = std::move(*verify);
    }
    auto prefix = opts.scalar("alias_prefix");
    if (!prefix) return prefix.error();
    if (prefix->has_value()) {
      if ((*prefix)->empty())
        return opts.error("alias_prefix", "is empty",
                          "an empty prefix would make every token on the gateway certgate's; e.g. "
                          "alias_prefix: \"certgate:\"",
                          opts.find("alias_prefix"));
      cfg.alias_prefix = **prefix;
    }
    auto window = opts.duration("cache_window", core::Seconds{0}, core::Seconds{86400},
                                "a duration from 0s to 24h", "e.g. cache_window: 30s");
    if (!window) return window.error();
    if (window->has_value()) cfg.cache_window = **window;

    auto ca_file = opts.readableFile(
        "ca_file", base_dir, "give a PEM bundle of the CAs that issue the API's certificate");
    if (!ca_file) return ca_file.error();
    if (ca_file->has_value()) client_options.ca_file = **ca_file;
    auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{600},
                                 "a duration between 1s and 10m", "e.g. timeout: 30s");
    if (!timeout) return timeout.error();
    if (timeout->has_value())
      client_options.total_timeout = std::chrono::duration_cast<http::Millis>(**timeout);

    if (!client_options.redactor) client_options.redactor = redactor;
    return std::unique_ptr<ports::Gateway>(std::make_unique<RestGateway>(
        name, std::move(cfg), std::move(redactor), std::move(client_options)));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure while reading the options: ") + e.what(),
                           "gateway '" + name + "'");
  }
}

}  // namespace certgate::connectors::rest
