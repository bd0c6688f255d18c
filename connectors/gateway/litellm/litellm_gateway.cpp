#include "connectors/gateway/litellm/litellm_gateway.hpp"

#include <algorithm>
#include <cctype>
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

#include "connectors/common/options.hpp"
#include "connectors/gateway/builtin/token_format.hpp"
#include "core/time.hpp"

namespace certgate::connectors::litellm {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;

constexpr std::string_view kDefaultAliasPrefix = "certgate:";
constexpr core::Seconds kDefaultCacheWindow{60};  // LiteLLM's in-memory key cache TTL
constexpr int kPageSize = 100;                    // the largest page /key/list serves
constexpr int kMaxPages = 100'000;                // a listing never legitimately gets here
constexpr int kMaxAttempts = 4;                   // per HTTP exchange
constexpr int kMaxMintRounds = 3;                 // /key/generate answers lost in a row
constexpr int kMaxListingRestarts = 3;            // the key list changed while it was paged
constexpr std::int64_t kExpiryMarginSeconds = 2;  // request latency and sub-second rounding
constexpr http::Millis kBaseDelay{500};
constexpr http::Millis kMaxDelay{30'000};
constexpr std::int64_t kMaxRetryAfterSeconds = 120;
constexpr const char* kChangedBy = "certgate";

// ---- small helpers -----------------------------------------------------------------------------

std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool isKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// Masks everything shaped like a LiteLLM key ("sk-" and what follows, including the "sk-...abcd"
// abbreviations LiteLLM writes into its own error messages).
std::string maskKeys(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const bool starts = text.compare(i, 3, "sk-") == 0 &&
                        (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])));
    if (!starts) {
      out += text[i++];
      continue;
    }
    std::size_t end = i + 3;
    while (end < text.size() && isKeyChar(text[end])) ++end;
    out += "sk-";
    out += http::kRedacted;
    i = end;
  }
  return out;
}

bool looksLikeSecret(std::string_view token_id) {
  return token_id.rfind("sk-", 0) == 0;
}

// LiteLLM stores a key as the lower-case hex SHA-256 of the key.
bool isKeyHash(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string text(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return {};
}

std::optional<core::Instant> instant(const Json& obj, std::string_view key) {
  const std::string s = text(obj, key);
  if (s.empty()) return std::nullopt;
  return core::parseIso(s);
}

bool flagSet(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return false;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// A budget reset period as LiteLLM's duration parser reads it: digits and s, m, h, d, w or mo.
bool isLiteLlmDuration(std::string_view s) {
  std::size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) return false;
  const std::string_view unit = s.substr(digits);
  return unit == "s" || unit == "m" || unit == "h" || unit == "d" || unit == "w" || unit == "mo";
}

std::string describeInstant(core::Instant t) {
  return core::formatIso(t);
}

enum class RevokeMode { Delete, Block };

struct Config {
  std::string base;  // the proxy's base URL, without a trailing '/'
  std::string master_key;
  RevokeMode revoke_mode = RevokeMode::Delete;
  std::string alias_prefix{kDefaultAliasPrefix};
  core::Seconds cache_window = kDefaultCacheWindow;
  std::string team_id;
};

// One key as /key/list (return_full_object), /key/info or /key/generate describe it.
struct KeyRecord {
  std::string token;  // the key's hash
  std::string alias;
  std::optional<core::Instant> expires;
  std::optional<core::Instant> created_at;
  std::optional<core::Instant> updated_at;
  bool blocked = false;
  Json metadata;

  bool expired(core::Instant now) const { return expires && *expires <= now; }
  bool active(core::Instant now) const { return !blocked && !expired(now); }
};

KeyRecord toRecord(const Json& key) {
  KeyRecord r;
  r.token = text(key, "token");
  r.alias = text(key, "key_alias");
  r.expires = instant(key, "expires");
  r.created_at = instant(key, "created_at");
  r.updated_at = instant(key, "updated_at");
  r.blocked = flagSet(key, "blocked");
  if (key.is_object()) {
    const auto m = key.find("metadata");
    if (m != key.end() && m->is_object()) r.metadata = *m;
  }
  return r;
}

// Newest first (created_at, then token), so a choice among duplicates is deterministic.
bool newerThan(const KeyRecord& a, const KeyRecord& b) {
  const auto ca = a.created_at.value_or(core::kBeginning);
  const auto cb = b.created_at.value_or(core::kBeginning);
  if (ca != cb) return ca > cb;
  return a.token > b.token;
}

// ---- the gateway -------------------------------------------------------------------------------

class LiteLlmGateway final : public ports::Gateway {
 public:
  LiteLlmGateway(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
                 http::ClientOptions client_options)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        redactor_(std::move(redactor)),
        client_(std::make_unique<http::Client>(std::move(client_options))),
        where_("gateway '" + name_ + "'") {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "litellm"; }

  core::Status connect() override;
  ports::GatewayCapabilities capabilities() const override {
    ports::GatewayCapabilities caps;
    caps.cache_window = cfg_.cache_window;
    caps.can_verify = true;
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
  // Which failures an exchange may repeat by itself.
  enum class Repeat {
    Always,           // reads and idempotent writes: 5xx, 408, 429 and transport failures
    OnlyRateLimited,  // /key/generate: only a 429 is known not to have been processed
  };

  core::Instant now() const {
    return core::Instant{core::Seconds{client_->options().now_unix_s()}};
  }
  std::string redact(std::string_view s) const {
    const std::string masked = maskKeys(s);
    return redactor_ ? redactor_->redact(masked) : http::redact(masked);
  }
  core::Error annotate(core::Error error) const {
    if (error.where.empty()) error.where = where_;
    error.message = redact(error.message);
    error.hint = redact(error.hint);
    return error;
  }
  core::Error invalid(std::string message, std::string hint = {}) const {
    return core::makeError(ErrorKind::Invalid, redact(message), where_, redact(hint));
  }
  http::Millis backoff(int failures) const;
  std::optional<http::Millis> retryAfter(const http::Response& resp) const;

  core::Result<http::Response> exchange(http::Method method, const std::string& path,
                                        const Json* body, Repeat repeat);
  core::Error apiError(const http::Response& resp, const std::string& what) const;

  // Every key of a /key/list query (`query` without page/size), all pages, or an error.
  core::Result<std::vector<KeyRecord>> listKeys(const std::string& query, const std::string& what);
  // The key with this alias: the newest active one, else the newest inactive one.
  core::Result<std::optional<KeyRecord>> lookupAlias(const std::string& alias);
  // GET /key/info: the key, or nullopt when LiteLLM does not know it (404).
  core::Result<std::optional<KeyRecord>> keyInfo(const std::string& token_id);
  // When the deleted key was deleted, from LiteLLM's table of deleted keys (newer proxies).
  core::Result<std::optional<core::Instant>> deletedAt(const std::string& token_id);

  core::Status checkTokenId(const std::string& token_id) const;
  ports::ObservedToken toObserved(const KeyRecord& key) const;
  ports::IssuedToken adopted(const KeyRecord& key) const;
  core::Result<ports::IssuedToken> adoptOrRefuse(const KeyRecord& key) const;
  core::Result<Json> generateBody(const ports::IssueRequest& request, std::int64_t& duration_s,
                                  bool& unbounded) const;
  void noteRevoked(const std::string& token_id) {
    revoked_at_.emplace(token_id, now());  // keeps the first (earliest) revocation
  }

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::string where_;
  std::uint64_t requests_ = 0;
  std::map<std::string, core::Instant> revoked_at_;  // revocations made by this instance
};

http::Millis LiteLlmGateway::backoff(int failures) const {
  const int shift = std::min(failures - 1, 16);
  const auto cap = std::min<std::int64_t>(kMaxDelay.count(), kBaseDelay.count() << shift);
  const double r = std::clamp(client_->options().random01(), 0.0, 1.0);
  return http::Millis(static_cast<std::int64_t>(std::llround(static_cast<double>(cap) * r)));
}

std::optional<http::Millis> LiteLlmGateway::retryAfter(const http::Response& resp) const {
  const auto header = resp.headers.get("Retry-After");
  if (!header) return std::nullopt;
  const auto seconds = http::parseRetryAfter(*header, client_->options().now_unix_s());
  if (!seconds) return std::nullopt;
  return http::Millis(std::chrono::seconds(std::min<long>(*seconds, kMaxRetryAfterSeconds)));
}

core::Result<http::Response> LiteLlmGateway::exchange(http::Method method, const std::string& path,
                                                      const Json* body, Repeat repeat) {
  http::Request req;
  req.method = method;
  req.url = cfg_.base + path;
  req.headers.add("Authorization", "Bearer " + cfg_.master_key);
  req.headers.add("Accept", "application/json");
  if (body != nullptr) {
    req.headers.add("Content-Type", "application/json");
    req.headers.add("litellm-changed-by", kChangedBy);
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

core::Error LiteLlmGateway::apiError(const http::Response& resp, const std::string& what) const {
  const core::Status classified =
      http::classify(resp, what, client_->options().now_unix_s(), redactor_.get());
  core::Error e =
      classified ? core::makeError(ErrorKind::Permanent, "unexpected answer") : classified.error();
  std::string detail;
  std::string type;
  std::string param;
  const Json doc = Json::parse(resp.body, nullptr, false);
  if (doc.is_object()) {
    const auto err = doc.find("error");
    const auto det = doc.find("detail");
    if (err != doc.end() && err->is_object()) {
      detail = text(*err, "message");
      type = text(*err, "type");
      param = text(*err, "param");
    } else if (err != doc.end() && err->is_string()) {
      detail = err->get<std::string>();
    } else if (det != doc.end() && det->is_string()) {
      detail = det->get<std::string>();
    } else if (det != doc.end() && det->is_array()) {
      // FastAPI request validation: [{"loc": [...], "msg": "...", "type": "..."}]
      for (const auto& item : *det) {
        if (!detail.empty()) detail += "; ";
        std::string loc;
        if (item.is_object() && item.contains("loc") && item["loc"].is_array()) {
          for (const auto& part : item["loc"]) {
            if (!loc.empty()) loc += '.';
            loc += part.is_string() ? part.get<std::string>() : part.dump();
          }
        }
        detail += (loc.empty() ? "" : loc + ": ") + text(item, "msg");
      }
    } else if (det != doc.end() && det->is_object()) {
      detail = text(*det, "error");
      if (detail.empty()) detail = det->dump();
    }
  }
  std::string message = what + ": HTTP " + std::to_string(resp.status);
  if (!detail.empty()) message += ": " + detail;
  std::string extra;
  if (!type.empty() && type != "None") extra += "type " + type;
  if (!param.empty() && param != "None") extra += (extra.empty() ? "" : ", ") + ("param " + param);
  if (!extra.empty()) message += " (" + extra + ")";
  e.message = redact(message);
  e.where = where_;

  if (e.kind == ErrorKind::Auth) {
    e.hint =
        "check master_key: it must be the proxy's master key (general_settings.master_key or "
        "LITELLM_MASTER_KEY) or a proxy-admin key";
  } else if (resp.status == 404 && (detail.empty() || detail == "Not Found")) {
    // FastAPI's answer for a route it does not have: the URL is not the proxy's base.
    e.hint = "check url: it must be the LiteLLM proxy's base URL (certgate adds /key/...)";
  } else if (e.kind == ErrorKind::RateLimited) {
    e.hint = "the proxy (or something in front of it) is rate limiting certgate; it retries later";
  } else if (e.kind == ErrorKind::Transient) {
    e.hint = "LiteLLM failed to answer; its log has the cause (is its Postgres database up?)";
  } else if (detail.find("key_alias format") != std::string::npos) {
    e.hint =
        "the proxy validates key aliases (enable_key_alias_format_validation: letters, digits "
        "and _-/.@ only); turn that check off for certgate's aliases";
  } else if (detail.find("premium") != std::string::npos ||
             detail.find("Enterprise") != std::string::npos) {
    e.hint = "the proxy refuses a field that needs a LiteLLM Enterprise licence";
  }
  e.hint = redact(e.hint);
  return e;
}

core::Status LiteLlmGateway::checkTokenId(const std::string& token_id) const {
  if (looksLikeSecret(token_id))
    return invalid("a token id must be LiteLLM's key hash, not the key itself",
                   "certgate's ledger stores the hash (token_id); the key is shown once only");
  if (!isKeyHash(token_id))
    return invalid("'" + token_id + "' is not a LiteLLM key hash (64 lower-case hex digits)",
                   "use the token_id that issue() or observe() reported");
  return {};
}

core::Status LiteLlmGateway::connect() {
  const std::string what = "GET /key/list";
  auto resp = exchange(http::Method::Get, "/key/list?page=1&size=1", nullptr, Repeat::Always);
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return apiError(*resp, what);
  const Json doc = Json::parse(resp->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys"))
    return annotate(core::makeError(ErrorKind::Permanent,
                                    what + ": the answer is not a LiteLLM key list", {},
                                    "check url: it must be the LiteLLM proxy's base URL"));
  return {};
}

core::Result<std::vector<KeyRecord>> LiteLlmGateway::listKeys(const std::string& query,
                                                              const std::string& what) {
  for (int restart = 0; restart < kMaxListingRestarts; ++restart) {
    std::vector<KeyRecord> keys;
    std::set<std::string> seen;
    std::optional<long long> total;
    std::size_t without_token = 0;
    bool changed = false;
    for (int page = 1; page <= kMaxPages; ++page) {
      const std::string path = "/key/list?" + query + (query.empty() ? "" : "&") +
                               "return_full_object=true&size=" + std::to_string(kPageSize) +
                               "&page=" + std::to_string(page);
      auto resp = exchange(http::Method::Get, path, nullptr, Repeat::Always);
      if (!resp) return resp.error();
      if (resp->status < 200 || resp->status >= 300) return apiError(*resp, what);
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
        return annotate(core::makeError(
            ErrorKind::Permanent,
            what + " (page " + std::to_string(page) + "): the answer is not a LiteLLM key list", {},
            "check url: it must be the LiteLLM proxy's base URL"));
      const Json& items = doc["keys"];
      long long page_total = -1;
      if (doc.contains("total_count") && doc["total_count"].is_number_integer())
        page_total = doc["total_count"].get<long long>();
      if (!total) {
        total = page_total;
      } else if (page_total != *total) {
        changed = true;  // keys were added or removed while paging: offsets shifted
        break;
      }
      for (const auto& item : items) {
        if (item.is_string()) {
          return annotate(core::makeError(
              ErrorKind::Permanent, what + ": the proxy listed key hashes only", {},
              "this LiteLLM version ignores return_full_object; upgrade the proxy"));
        }
        KeyRecord r = toRecord(item);
        if (r.token.empty()) {
          ++without_token;
          continue;
        }
        if (seen.insert(r.token).second) keys.push_back(std::move(r));
      }
      long long total_pages = -1;
      if (doc.contains("total_pages") && doc["total_pages"].is_number_integer())
        total_pages = doc["total_pages"].get<long long>();
      const bool more = total_pages >= 0 ? page < total_pages
                                         : items.size() >= static_cast<std::size_t>(kPageSize);
      if (!more || items.empty()) break;
    }
    if (!changed) {
      // Fewer distinct keys than announced: a key moved across a page boundary and was missed.
      if (total && *total >= 0 && keys.size() + without_token < static_cast<std::size_t>(*total)) {
        changed = true;
      } else {
        return keys;
      }
    }
  }
  return annotate(core::makeError(
      ErrorKind::Transient,
      what + ": the key list kept changing while certgate read it (" +
          std::to_string(kMaxListingRestarts) + " tries)",
      {}, "keys are being created or deleted right now; the next run reads the list again"));
}

core::Result<std::optional<KeyRecord>> LiteLlmGateway::lookupAlias(const std::string& alias) {
  auto keys = listKeys("key_alias=" + urlEncode(alias), "GET /key/list?key_alias=" + alias);
  if (!keys) return keys.error();
  const core::Instant t = now();
  std::optional<KeyRecord> best_active;
  std::optional<KeyRecord> best_inactive;
  for (auto& k : *keys) {
    if (k.alias != alias) continue;  // older proxies ignore the key_alias filter
    auto& slot = k.active(t) ? best_active : best_inactive;
    if (!slot || newerThan(k, *slot)) slot = std::move(k);
  }
  if (best_active) return best_active;
  return best_inactive;
}

core::Result<std::optional<KeyRecord>> LiteLlmGateway::keyInfo(const std::string& token_id) {
  const std::string what = "GET /key/info?key=" + token_id;
  auto resp = exchange(http::Method::Get, "/key/info?key=" + token_id, nullptr, Repeat::Always);
  if (!resp) return resp.error();
  if (resp->status == 404) return std::optional<KeyRecord>{};
  if (resp->status < 200 || resp->status >= 300) return apiError(*resp, what);
  const Json doc = Json::parse(resp->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("info") || !doc["info"].is_object())
    return annotate(core::makeError(ErrorKind::Permanent, what + ": the answer has no key info"));
  KeyRecord r = toRecord(doc["info"]);
  r.token = token_id;  // /key/info leaves the hash out of `info`
  return std::optional<KeyRecord>{std::move(r)};
}

core::Result<std::optional<core::Instant>> LiteLlmGateway::deletedAt(const std::string& token_id) {
  const std::string what = "GET /key/list?status=deleted&key_hash=" + token_id;
  const std::string path =
      "/key/list?status=deleted&key_hash=" + token_id + "&return_full_object=true&page=1&size=1";
  auto resp = exchange(http::Method::Get, path, nullptr, Repeat::Always);
  if (!resp) return resp.error();
  if (resp->status == 401 || resp->status == 403) return apiError(*resp, what);
  if (resp->status < 200 || resp->status >= 300) return std::optional<core::Instant>{};
  const Json doc = Json::parse(resp->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return std::optional<core::Instant>{};
  for (const auto& k : doc["keys"]) {
    // Older proxies ignore status=deleted and list live keys: only a deleted record counts.
    if (text(k, "token") == token_id) {
      if (auto at = instant(k, "deleted_at")) return std::optional<core::Instant>{*at};
    }
  }
  return std::optional<core::Instant>{};
}

ports::ObservedToken LiteLlmGateway::toObserved(const KeyRecord& key) const {
  ports::ObservedToken o;
  o.token_id = key.token;
  o.alias = key.alias;
  if (key.metadata.is_object()) {
    const auto c = key.metadata.find("certgate");
    if (c != key.metadata.end() && c->is_object()) {
      o.person_key = text(*c, "person");
      o.scope = text(*c, "scope");
    }
  }
  o.expires_at = key.expires;
  o.active = key.active(now());
  return o;
}

ports::IssuedToken LiteLlmGateway::adopted(const KeyRecord& key) const {
  ports::IssuedToken t;
  t.token_id = key.token;
  t.alias = key.alias;
  t.expires_at = key.expires;
  t.adopted = true;
  return t;
}

core::Result<ports::IssuedToken> LiteLlmGateway::adoptOrRefuse(const KeyRecord& key) const {
  if (key.active(now())) return adopted(key);
  const std::string state = key.blocked ? "blocked" : "expired";
  return annotate(core::makeError(
      ErrorKind::Conflict,
      "a key with alias '" + key.alias + "' already exists on the proxy but is " + state +
          " (token " + key.token + ")",
      {},
      "certgate never revives a revoked or expired key; a new rotation gets a new alias. "
      "Delete the key in LiteLLM if this alias must be issued again"));
}

core::Result<Json> LiteLlmGateway::generateBody(const ports::IssueRequest& request,
                                                std::int64_t& duration_s, bool& unbounded) const {
  const core::Instant t = now();
  core::Instant end = request.expires_at;
  unbounded = end >= core::kNever;
  if (request.scope.lifetime.count() > 0) {
    const core::Instant by_lifetime = t + request.scope.lifetime;
    if (unbounded || by_lifetime < end) end = by_lifetime;
    unbounded = false;
  }
  duration_s = 0;
  if (!unbounded) {
    duration_s = (end - t).count() - kExpiryMarginSeconds;
    if (duration_s < 1)
      return invalid("alias '" + request.alias + "': the token would expire at " +
                         describeInstant(end) + ", which is not in the future",
                     "a token is issued only while access lasts");
  }

  Json body = Json::object();
  body["key_alias"] = request.alias;
  if (!unbounded) body["duration"] = std::to_string(duration_s) + "s";
  body["models"] = request.scope.models;
  if (request.scope.max_budget) body["max_budget"] = *request.scope.max_budget;
  if (!request.scope.budget_duration.empty())
    body["budget_duration"] = request.scope.budget_duration;
  if (!request.user_id.empty()) body["user_id"] = request.user_id;
  if (!cfg_.team_id.empty()) body["team_id"] = cfg_.team_id;
  Json certgate = Json::object();
  for (const auto& [k, v] : request.metadata) certgate[k] = v;
  certgate["person"] = request.person_key;
  certgate["track"] = request.track;
  certgate["scope"] = request.scope.scope;
  certgate["alias"] = request.alias;
  body["metadata"] = Json{{"certgate", std::move(certgate)}};
  return body;
}

core::Result<ports::IssuedToken> LiteLlmGateway::issue(const ports::IssueRequest& request) {
  if (request.alias.empty())
    return invalid("the token has no alias", "this is a defect in certgate");
  if (request.alias.rfind(cfg_.alias_prefix, 0) != 0)
    return invalid("alias '" + request.alias + "' does not start with alias_prefix '" +
                       cfg_.alias_prefix + "'",
                   "observe() finds certgate's keys by that prefix; make alias_prefix match the "
                   "aliases certgate issues");
  if (request.scope.models.empty() && cfg_.team_id.empty())
    return invalid("scope '" + request.scope.scope + "' names no models",
                   "LiteLLM lets a key without models call every model; list the scope's models, "
                   "or set team_id so the team's models bound the key");
  if (request.scope.max_budget && !(*request.scope.max_budget >= 0.0))
    return invalid("scope '" + request.scope.scope + "': max_budget must be zero or more");
  if (!request.scope.budget_duration.empty() && !isLiteLlmDuration(request.scope.budget_duration))
    return invalid("scope '" + request.scope.scope + "': budget_duration '" +
                       request.scope.budget_duration + "' is not a LiteLLM duration",
                   "e.g. 30d, 7d, 24h or 1mo");

  // A retry after a crash finds the key minted before it.
  auto existing = lookupAlias(request.alias);
  if (!existing) return existing.error();
  if (*existing) return adoptOrRefuse(**existing);

  std::int64_t duration_s = 0;
  bool unbounded = false;
  auto body = generateBody(request, duration_s, unbounded);
  if (!body) return body.error();

  const std::string what = "POST /key/generate (alias '" + request.alias + "')";
  std::optional<core::Error> last;
  for (int round = 1; round <= kMaxMintRounds; ++round) {
    const core::Instant sent_at = now();
    auto resp = exchange(http::Method::Post, "/key/generate", &*body, Repeat::OnlyRateLimited);
    // Unless answered otherwise below, the key may have been minted although no answer said so.
    if (!resp) {
      last = resp.error();
    } else if (resp->status >= 200 && resp->status < 300) {
      const Json doc = Json::parse(resp->body, nullptr, false);
      const std::string secret = text(doc, "key");
      if (doc.is_object() && secret.rfind("sk-", 0) == 0) {
        ports::IssuedToken t;
        t.secret = secret;
        t.secret_digest = builtin::digest(secret);
        t.token_id = text(doc, "token_id");
        if (t.token_id.empty()) t.token_id = text(doc, "token");
        if (!isKeyHash(t.token_id))
          t.token_id = t.secret_digest.substr(std::string_view("sha256:").size());
        t.alias = request.alias;
        if (!unbounded) t.expires_at = sent_at + core::Seconds{duration_s};
        return t;
      }
      // Never quote this body: it may hold the key.
      last = annotate(core::makeError(
          ErrorKind::Permanent,
          what + ": HTTP " + std::to_string(resp->status) + ": the answer carries no key"));
    } else if (resp->status >= 500 || resp->status == 408) {
      last = apiError(*resp, what);
    } else {
      core::Error e = apiError(*resp, what);
      if (resp->status == 400 && e.message.find("already exists") != std::string::npos) {
        // Another writer (or our own lost answer) minted the alias first.
        auto found = lookupAlias(request.alias);
        if (!found) return found.error();
        if (*found) return adoptOrRefuse(**found);
        e.kind = ErrorKind::Conflict;
      }
      return e;
    }
    auto found = lookupAlias(request.alias);
    if (!found) return found.error();
    if (*found) return adoptOrRefuse(**found);
    if (round < kMaxMintRounds) client_->options().sleep(backoff(round));
  }
  return *last;
}

core::Result<ports::RevokeOutcome> LiteLlmGateway::revoke(const std::string& token_id) {
  if (auto ok = checkTokenId(token_id); !ok) return ok.error();
  ports::RevokeOutcome out;
  if (cfg_.revoke_mode == RevokeMode::Delete) {
    const std::string what = "POST /key/delete (token " + token_id + ")";
    const Json body = {{"keys", Json::array({token_id})}};
    auto resp = exchange(http::Method::Post, "/key/delete", &body, Repeat::Always);
    if (!resp) return resp.error();
    if (resp->status == 404) {
      out.no_op = true;  // "No keys found": already deleted, or never existed
    } else if (resp->status < 200 || resp->status >= 300) {
      return apiError(*resp, what);
    }
    noteRevoked(token_id);
    return out;
  }

  auto info = keyInfo(token_id);
  if (!info) return info.error();
  if (!*info) {
    out.no_op = true;
    return out;
  }
  if ((*info)->blocked) {
    out.no_op = true;
    noteRevoked(token_id);
    return out;
  }
  const std::string what = "POST /key/block (token " + token_id + ")";
  const Json body = {{"key", token_id}};
  auto resp = exchange(http::Method::Post, "/key/block", &body, Repeat::Always);
  if (!resp) return resp.error();
  if (resp->status == 404) {
    out.no_op = true;  // deleted in the meantime
  } else if (resp->status < 200 || resp->status >= 300) {
    return apiError(*resp, what);
  }
  noteRevoked(token_id);
  return out;
}

core::Result<std::optional<ports::ObservedToken>> LiteLlmGateway::findByAlias(
    const std::string& alias) {
  if (alias.empty()) return invalid("findByAlias: the alias is empty");
  auto key = lookupAlias(alias);
  if (!key) return key.error();
  if (!*key) return std::optional<ports::ObservedToken>{};
  return std::optional<ports::ObservedToken>{toObserved(**key)};
}

core::Status LiteLlmGateway::observe(const std::function<void(ports::ObservedToken&&)>& sink) {
  std::string query;
  if (!cfg_.team_id.empty()) query = "team_id=" + urlEncode(cfg_.team_id);
  auto keys = listKeys(query, "GET /key/list");
  if (!keys) return keys.error();
  for (const auto& k : *keys) {
    if (k.alias.rfind(cfg_.alias_prefix, 0) != 0) continue;
    sink(toObserved(k));
  }
  return {};
}

core::Result<ports::Enforcement> LiteLlmGateway::verifyRevoked(const std::string& token_id) {
  if (auto ok = checkTokenId(token_id); !ok) return ok.error();
  const core::Instant t = now();
  auto info = keyInfo(token_id);
  if (!info) return info.error();

  std::optional<core::Instant> revoked_at;
  if (const auto own = revoked_at_.find(token_id); own != revoked_at_.end())
    revoked_at = own->second;
  if (*info) {
    const KeyRecord& key = **info;
    if (!key.blocked) {
      // LiteLLM checks a key's expiry on every request, cached or not.
      return key.expired(t) ? ports::Enforcement::Enforced : ports::Enforcement::NotEnforced;
    }
    if (key.updated_at && (!revoked_at || *key.updated_at > *revoked_at))
      revoked_at = key.updated_at;
  } else if (!revoked_at) {
    auto deleted = deletedAt(token_id);
    if (!deleted) return deleted.error();
    revoked_at = *deleted;
  }
  // Without a known revocation time the caller has already waited the cache window.
  if (revoked_at && t < *revoked_at + cfg_.cache_window) return ports::Enforcement::Pending;
  return ports::Enforcement::Enforced;
}

// ---- configuration -----------------------------------------------------------------------------

using options::OptionReader;

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "litellm";
    s.description = "Virtual keys on a LiteLLM proxy through its key management API";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The LiteLLM proxy's base URL, e.g. https://llm.example.com (https; http only to "
         "localhost)"},
        {"master_key", ValueType::Secret, true, "",
         "The proxy's master key (general_settings.master_key / LITELLM_MASTER_KEY, starts with "
         "sk-) or another proxy-admin key"},
        {"revoke_mode", ValueType::String, false, "delete",
         "delete (POST /key/delete: the key is gone) | block (POST /key/block: reversible)"},
        {"alias_prefix", ValueType::String, false, std::string(kDefaultAliasPrefix),
         "key_alias prefix of the keys certgate owns; observe() lists only those"},
        {"cache_window", ValueType::Duration, false, "60s",
         "How long a proxy instance may still accept a revoked key from its in-memory cache"},
        {"team_id", ValueType::String, false, "",
         "LiteLLM team the keys belong to (also limits observe() to that team)"},
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

    auto url = opts.required("url", "the LiteLLM proxy's base URL, e.g. https://llm.example.com");
    if (!url) return url.error();
    {
      std::string u = *url;
      while (!u.empty() && u.back() == '/') u.pop_back();
      auto origin = opts.url("url", u,
                             {.not_url = "'" + u + "' is not an http(s) URL",
                              .not_url_hint = "e.g. url: https://llm.example.com",
                              .plain_http = "must use https",
                              .plain_http_hint = "the master key only travels over TLS (plain "
                                                 "http is allowed to localhost only)"});
      if (!origin) return origin.error();
      if (u.find_first_of("?#") != std::string::npos)
        return opts.error("url", "must not have a query or fragment",
                          "give the proxy's base URL, e.g. https://llm.example.com",
                          opts.find("url"));
      // Keep a path (a proxy served under SERVER_ROOT_PATH); scheme and host as originOf gives
      // them.
      const std::size_t authority = u.find("://") + 3;
      const std::size_t path = u.find('/', authority);
      cfg.base = *origin + (path == std::string::npos ? std::string() : u.substr(path));
    }

    auto master = opts.secret(
        "master_key", secrets,
        {.missing_message = "is required",
         .missing_hint = "write it as `master_key: {file: /etc/certgate/litellm-master-key}` or "
                         "`{credential: NAME}`",
         .inline_message = "must be a secret reference, not an inline value",
         .inline_hint = "write it as `master_key: {file: PATH}` or `master_key: {credential: "
                        "NAME}`; secrets never appear in the configuration file",
         .no_reader_hint = "this is a defect in certgate",
         .empty_hint = "check the file or credential",
         .reader_errors_name_what = false,
         .strip = "\n\r "});
    if (!master) return master.error();
    cfg.master_key = std::move(*master);
    if (redactor) redactor->add(cfg.master_key);
    if (cfg.master_key.rfind("sk-", 0) != 0 ||
        !std::all_of(cfg.master_key.begin(), cfg.master_key.end(),
                     [](char c) { return std::isgraph(static_cast<unsigned char>(c)) != 0; }))
      return opts.error("master_key", "is not a LiteLLM key (it must start with sk-, no spaces)",
                        "LiteLLM requires the master key to start with sk-; check the file",
                        opts.find("master_key"));

    auto mode =
        opts.choice("revoke_mode", "delete", {"delete", "block"}, OptionReader::Echo::AsWritten,
                    "delete removes the key for good; block keeps it, reversibly");
    if (!mode) return mode.error();
    cfg.revoke_mode = *mode == "block" ? RevokeMode::Block : RevokeMode::Delete;

    auto prefix = opts.scalar("alias_prefix");
    if (!prefix) return prefix.error();
    if (prefix->has_value()) {
      if ((*prefix)->empty())
        return opts.error("alias_prefix", "is empty",
                          "an empty prefix would make every key on the proxy certgate's; e.g. "
                          "alias_prefix: \"certgate:\"",
                          opts.find("alias_prefix"));
      cfg.alias_prefix = **prefix;
    }

    auto window = opts.duration("cache_window", core::Seconds{0}, core::Seconds{86400},
                                "a duration from 0s to 24h", "e.g. cache_window: 60s");
    if (!window) return window.error();
    if (window->has_value()) cfg.cache_window = **window;

    auto team = opts.scalar("team_id");
    if (!team) return team.error();
    cfg.team_id = team->value_or("");

    auto ca_file = opts.readableFile(
        "ca_file", base_dir, "give a PEM bundle of the CAs that issue the proxy's certificate");
    if (!ca_file) return ca_file.error();
    if (ca_file->has_value()) client_options.ca_file = **ca_file;

    auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{600},
                                 "a duration between 1s and 10m", "e.g. timeout: 30s");
    if (!timeout) return timeout.error();
    if (timeout->has_value())
      client_options.total_timeout = std::chrono::duration_cast<http::Millis>(**timeout);

    if (!client_options.redactor) client_options.redactor = redactor;
    return std::unique_ptr<ports::Gateway>(std::make_unique<LiteLlmGateway>(
        name, std::move(cfg), std::move(redactor), std::move(client_options)));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure while reading the options: ") + e.what(),
                           "gateway '" + name + "'");
  }
}

}  // namespace certgate::connectors::litellm
