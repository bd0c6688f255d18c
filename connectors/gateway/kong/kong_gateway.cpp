#include "connectors/gateway/kong/kong_gateway.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "connectors/common/options.hpp"
#include "connectors/gateway/builtin/token_format.hpp"

namespace certgate::connectors::kong {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;

// Tags certgate writes on Kong entities. Kong filters only on tags of [A-Za-z0-9._~-]
// (kong/api/endpoints.lua), so values are tag-encoded.
constexpr std::string_view kOwnerTag = "certgate";
constexpr std::string_view kAliasTag = "cg-alias.";
constexpr std::string_view kPersonTag = "cg-person.";
constexpr std::string_view kScopeTag = "cg-scope.";
constexpr std::string_view kGroupTag = "cg-group.";

constexpr std::int64_t kMaxTtl = 100000000;     // kong/db/dao/init.lua: ttl 0..100000000
constexpr std::size_t kMaxPageSize = 1000;      // kong/api/endpoints.lua: max_page_size
constexpr std::int64_t kDefaultCacheWindow = 10;  // db_update_frequency (5 s) + margin
constexpr int kMaxAttempts = 4;                 // 5xx / transport: attempts per request
constexpr int kMaxRateLimitWaits = 5;           // 429: waits per request before giving up
constexpr std::int64_t kMaxWaitSeconds = 120;
constexpr std::size_t kMaxPages = 1'000'000;

// ---- small helpers -----------------------------------------------------------------------------

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string urlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
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

bool isBase62(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Masks anything shaped like a certgate token (cgt_ and base62 characters), whatever its length.
std::string maskTokens(std::string text) {
  const std::string_view prefix = builtin::kTokenPrefix;
  std::size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    std::size_t end = pos + prefix.size();
    while (end < text.size() && isBase62(text[end])) ++end;
    if (end == pos + prefix.size()) {
      pos = end;
      continue;
    }
    text.replace(pos, end - pos, http::kRedacted);
    pos += http::kRedacted.size();
  }
  return text;
}

std::string text(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return {};
}

// RFC 9110 token characters, for a header name.
bool isHeaderName(std::string_view s) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

bool hasTag(const std::vector<std::string>& tags, std::string_view tag) {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

// A key-auth credential as the Admin API returned it, with certgate's tags decoded.
struct Credential {
  std::string id;
  std::string consumer_id;
  std::string key;  // the secret (Kong OSS returns it): never logged, only digested
  std::vector<std::string> tags;
  std::optional<std::int64_t> ttl;  // seconds left, when the credential has a ttl
  bool certgate = false;
  std::string alias;
  std::string person;
  std::string scope;
  std::string group;
};

Credential parseCredential(const Json& j) {
  Credential c;
  c.id = text(j, "id");
  if (const auto consumer = j.find("consumer"); consumer != j.end() && consumer->is_object())
    c.consumer_id = text(*consumer, "id");
  c.key = text(j, "key");
  if (const auto ttl = j.find("ttl"); ttl != j.end() && ttl->is_number()) c.ttl = ttl->get<std::int64_t>();
  if (const auto tags = j.find("tags"); tags != j.end() && tags->is_array()) {
    for (const auto& t : *tags) {
      if (!t.is_string()) continue;
      const std::string tag = t.get<std::string>();
      c.tags.push_back(tag);
      auto field = [&](std::string_view prefix, std::string& out) {
        if (tag.size() > prefix.size() && tag.compare(0, prefix.size(), prefix) == 0) {
          if (auto v = decodeTagValue(std::string_view(tag).substr(prefix.size()))) out = std::move(*v);
        }
      };
      if (tag == kOwnerTag) c.certgate = true;
      field(kAliasTag, c.alias);
      field(kPersonTag, c.person);
      field(kScopeTag, c.scope);
      field(kGroupTag, c.group);
    }
  }
  return c;
}

struct Config {
  std::string base;  // the Admin API root, without a trailing '/'
  std::string admin_token;
  std::string admin_token_header = "Kong-Admin-Token";
  std::string consumer_prefix = "certgate-";
  bool acl_from_models = false;
  std::chrono::seconds cache_window{kDefaultCacheWindow};
  std::size_t page_size = kMaxPageSize;
};

// ---- the gateway -------------------------------------------------------------------------------

class KongGateway final : public ports::Gateway {
 public:
  KongGateway(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
              http::ClientOptions client_options)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        redactor_(std::move(redactor)),
        client_(std::make_unique<http::Client>(std::move(client_options))),
        where_("gateway '" + name_ + "'") {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "kong"; }

  core::Status connect() override;
  ports::GatewayCapabilities capabilities() const override {
    ports::GatewayCapabilities caps;
    caps.cache_window = cfg_.cache_window;
    caps.can_verify = true;
    caps.supplies_secret = true;
    return caps;
  }

  core::Result<ports::IssuedToken> issue(const ports::IssueRequest& request) override;
  core::Result<ports::RevokeOutcome> revoke(const std::string& token_id) override;
  core::Result<std::optional<ports::ObservedToken>> findByAlias(const std::string& alias) override;
  core::Status observe(const std::function<void(ports::ObservedToken&&)>& sink) override;
  core::Result<ports::Enforcement> verifyRevoked(const std::string& token_id) override;
  std::uint64_t requestCount() const override { return requests_; }

 private:
  std::int64_t now() const { return client_->options().now_unix_s(); }
  http::Millis backoff(int failures, const http::Response* resp) const;

  // One Admin API request with retries (5xx, 408 and transport failures with backoff; 429
  // after Retry-After). Returns the final response, whatever its status.
  core::Result<http::Response> call(http::Method method, const std::string& path,
                                    const std::optional<Json>& body, const std::string& what);
  // The classified error for a non-2xx response, with Kong's error fields.
  core::Error apiError(const http::Response& resp, const std::string& what) const;
  core::Error annotate(core::Error error) const {
    if (error.where.empty()) error.where = where_;
    error.message = sanitize(error.message);
    error.hint = sanitize(error.hint);
    return error;
  }
  std::string sanitize(std::string_view s) const {
    std::string out(s);
    if (!minted_.empty()) {
      for (std::size_t pos = 0; (pos = out.find(minted_, pos)) != std::string::npos;)
        out.replace(pos, minted_.size(), http::kRedacted);
    }
    out = maskTokens(std::move(out));
    return redactor_ ? redactor_->redact(out) : http::redact(out);
  }
  core::Error invalid(std::string message, std::string hint) const {
    return core::makeError(ErrorKind::Invalid, std::move(message), where_, std::move(hint));
  }
  static core::Result<Json> parseBody(const http::Response& resp, const std::string& what);

  // Streams every element of a paged collection at `path` (query in `query`, without offset).
  core::Status pages(const std::string& path, const std::string& query, const std::string& what,
                     const std::function<bool(const Json&)>& each);
  core::Result<std::optional<Credential>> credentialByAlias(const std::string& alias);
  core::Result<std::string> ensureConsumer(const std::string& person_key);
  core::Status ensureAcl(const std::string& consumer_id, const std::string& group);
  core::Status releaseAcl(const std::string& consumer_id, const std::string& group,
                          const std::string& except_credential);
  core::Result<std::optional<std::string>> consumerOf(const std::string& token_id,
                                                      const std::string& what);
  ports::IssuedToken adopted(const Credential& c, const std::string& alias) const;
  ports::ObservedToken observed(const Credential& c) const;

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::string where_;
  std::uint64_t requests_ = 0;
  std::string minted_;  // the key being issued, masked in every error while it is in flight
  std::map<std::string, std::string> consumer_ids_;     // person key -> consumer id
  std::map<std::string, std::int64_t> gone_since_;       // token id -> revoked (or seen gone) at
};

http::Millis KongGateway::backoff(int failures, const http::Response* resp) const {
  if (resp != nullptr) {
    if (const auto retry_after = resp->headers.get("Retry-After")) {
      if (const auto s = http::parseRetryAfter(*retry_after, now()))
        return http::Millis(std::clamp<std::int64_t>(*s, 0, kMaxWaitSeconds) * 1000);
    }
  }
  // Full jitter: uniform in [0, min(30 s, 500 ms * 2^(failures-1))].
  const long long cap = std::min<long long>(30'000, 500LL << std::min(failures - 1, 10));
  const double r = std::clamp(client_->options().random01(), 0.0, 1.0);
  return http::Millis(static_cast<long long>(r * static_cast<double>(cap)));
}

core::Result<http::Response> KongGateway::call(http::Method method, const std::string& path,
                                               const std::optional<Json>& body,
                                               const std::string& what) {
  http::Request req;
  req.method = method;
  req.url = cfg_.base + path;
  req.headers.set("Accept", "application/json");
  if (body) {
    req.headers.set("Content-Type", "application/json");
    req.body = body->dump();
  }
  if (!cfg_.admin_token.empty()) req.headers.set(cfg_.admin_token_header, cfg_.admin_token);
  int failures = 0;
  int waits = 0;
  for (;;) {
    ++requests_;
    auto resp = client_->send(req);
    if (!resp) {
      if (resp.error().kind == ErrorKind::Transient && ++failures < kMaxAttempts) {
        client_->options().sleep(backoff(failures, nullptr));
        continue;
      }
      core::Error e = resp.error();
      e.message = what + ": " + e.message;
      return annotate(std::move(e));
    }
    const long status = resp->status;
    if (status == 429) {
      if (++waits > kMaxRateLimitWaits) return resp;
      std::int64_t wait = std::int64_t{5} << std::min(waits - 1, 4);
      if (const auto retry_after = resp->headers.get("Retry-After")) {
        if (const auto s = http::parseRetryAfter(*retry_after, now())) wait = *s;
      }
      client_->options().sleep(std::chrono::seconds(std::clamp<std::int64_t>(wait, 1, kMaxWaitSeconds)));
      continue;
    }
    if ((status >= 500 || status == 408) && ++failures < kMaxAttempts) {
      client_->options().sleep(backoff(failures, &*resp));
      continue;
    }
    return resp;
  }
}

core::Error KongGateway::apiError(const http::Response& resp, const std::string& what) const {
  const core::Status classified = http::classify(resp, what, now(), redactor_.get());
  core::Error error = classified ? core::makeError(ErrorKind::Permanent, "") : classified.error();
  error.where = where_;

  // kong/db/errors.lua: {"code", "name", "message", "fields"} ("options" for invalid options).
  std::string detail;
  const Json doc = Json::parse(resp.body, nullptr, false);
  if (doc.is_object()) {
    const std::string name = text(doc, "name");
    const std::string code = text(doc, "code");
    const std::string message = text(doc, "message");
    if (!name.empty()) detail += " " + name;
    if (!code.empty()) detail += " (code " + code + ")";
    if (!message.empty()) detail += ": " + message;
    for (const char* member : {"fields", "options"}) {
      const auto f = doc.find(member);
      if (f == doc.end() || !f->is_object() || f->empty()) continue;
      std::string joined;
      for (const auto& [k, v] : f->items()) {
        // A unique violation on `key` quotes the key itself.
        const std::string value = k == "key" ? std::string(http::kRedacted)
                                             : (v.is_string() ? v.get<std::string>() : v.dump());
        joined += (joined.empty() ? "" : "; ") + k + ": " + value;
      }
      detail += std::string(" [") + member + ": " + joined + "]";
    }
  }
  error.message = sanitize(what + ": HTTP " + std::to_string(resp.status) + detail);

  switch (error.kind) {
    case ErrorKind::Auth:
      error.hint =
          resp.status == 401
              ? (cfg_.admin_token.empty()
                     ? "the Admin API asks for credentials: set admin_token (Kong Enterprise RBAC "
                       "user token, sent in " + cfg_.admin_token_header +
                           "), or the credential the reverse proxy in front of it expects"
                     : "the Admin API refused admin_token: check the token and admin_token_header "
                       "(" + cfg_.admin_token_header + ")")
              : "the Admin API user lacks permission: it needs read, create and delete on "
                "/consumers, /consumers/*/key-auth and /consumers/*/acls, and read on /key-auths";
      break;
    case ErrorKind::Transient:
      error.hint = "Kong's Admin API did not answer successfully after retries; certgate tries again later";
      break;
    case ErrorKind::RateLimited:
      error.hint = "the Admin API (or the proxy in front of it) kept answering 429; certgate "
                   "tries again on the next run";
      break;
    default:
      break;
  }
  return error;
}

core::Result<Json> KongGateway::parseBody(const http::Response& resp, const std::string& what) {
  Json doc = Json::parse(resp.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return core::makeError(ErrorKind::Permanent, what + ": the answer is not a JSON object", {},
                           "is url the Kong Admin API root?");
  return doc;
}

core::Status KongGateway::pages(const std::string& path, const std::string& query,
                                const std::string& what,
                                const std::function<bool(const Json&)>& each) {
  std::string offset;
  std::set<std::string> seen;
  for (std::size_t page = 0; page < kMaxPages; ++page) {
    // `next` repeats the tags but not the size, so certgate builds each page's URL itself.
    std::string target = path + "?size=" + std::to_string(cfg_.page_size);
    if (!query.empty()) target += "&" + query;
    if (!offset.empty()) target += "&offset=" + urlEncode(offset);
    auto resp = call(http::Method::Get, target, std::nullopt, what);
    if (!resp) return resp.error();
    if (resp->status != 200) return apiError(*resp, what);
    auto doc = parseBody(*resp, what);
    if (!doc) return annotate(doc.error());
    const auto data = doc->find("data");
    if (data == doc->end() || !data->is_array())
      return annotate(core::makeError(ErrorKind::Permanent, what + ": the page has no data array"));
    for (const auto& item : *data)
      if (!each(item)) return {};
    const std::string next = text(*doc, "offset");
    if (next.empty()) return {};
    if (!seen.insert(next).second)
      return annotate(core::makeError(ErrorKind::Permanent, what + ": the Admin API repeated a page offset"));
    offset = next;
  }
  return annotate(core::makeError(ErrorKind::Permanent, what + ": too many pages"));
}

core::Result<std::optional<Credential>> KongGateway::credentialByAlias(const std::string& alias) {
  std::optional<Credential> found;
  const std::string tags = std::string(kOwnerTag) + "," + std::string(kAliasTag) + encodeTagValue(alias);
  auto st = pages("/key-auths", "tags=" + tags, "GET /key-auths (alias)", [&](const Json& item) {
    Credential c = parseCredential(item);
    if (c.alias != alias) return true;
    found = std::move(c);
    return false;
  });
  if (!st) return st.error();
  return found;
}

core::Result<std::string> KongGateway::ensureConsumer(const std::string& person_key) {
  if (const auto it = consumer_ids_.find(person_key); it != consumer_ids_.end()) return it->second;
  const std::string username = cfg_.consumer_prefix + person_key;
  const std::string path = "/consumers/" + urlEncode(username);
  auto lookup = [&]() -> core::Result<std::optional<std::string>> {
    auto resp = call(http::Method::Get, path, std::nullopt, "GET /consumers/{username}");
    if (!resp) return resp.error();
    if (resp->status == 404) return std::optional<std::string>{};
    if (resp->status != 200) return apiError(*resp, "GET /consumers/{username}");
    auto doc = parseBody(*resp, "GET /consumers/{username}");
    if (!doc) return annotate(doc.error());
    const std::string id = text(*doc, "id");
    if (id.empty()) return annotate(core::makeError(ErrorKind::Permanent, "the consumer has no id"));
    return std::optional<std::string>{id};
  };
  auto existing = lookup();
  if (!existing) return existing.error();
  if (*existing) return consumer_ids_[person_key] = **existing;

  const Json body = {{"username", username}, {"custom_id", person_key}, {"tags", {kOwnerTag}}};
  auto resp = call(http::Method::Post, "/consumers", body, "POST /consumers");
  if (!resp) return resp.error();
  if (resp->status == 201 || resp->status == 200) {
    auto doc = parseBody(*resp, "POST /consumers");
    if (!doc) return annotate(doc.error());
    return consumer_ids_[person_key] = text(*doc, "id");
  }
  if (resp->status == 409) {
    // Created meanwhile (a retried POST), or the custom_id belongs to another consumer.
    auto again = lookup();
    if (!again) return again.error();
    if (*again) return consumer_ids_[person_key] = **again;
    core::Error e = apiError(*resp, "POST /consumers");
    e.hint = "another Kong consumer already has custom_id '" + person_key +
             "': rename it, or set consumer_prefix so that certgate's consumer is that one";
    return e;
  }
  return apiError(*resp, "POST /consumers");
}

core::Status KongGateway::ensureAcl(const std::string& consumer_id, const std::string& group) {
  const Json body = {{"group", group}, {"tags", {kOwnerTag}}};
  const std::string what = "POST /consumers/{id}/acls";
  auto resp = call(http::Method::Post, "/consumers/" + urlEncode(consumer_id) + "/acls", body, what);
  if (!resp) return resp.error();
  // 409: the consumer already has the group (unique on consumer and group).
  if (resp->status == 201 || resp->status == 200 || resp->status == 409) return {};
  return apiError(*resp, what);
}

core::Status KongGateway::releaseAcl(const std::string& consumer_id, const std::string& group,
                                     const std::string& except_credential) {
  const std::string base = "/consumers/" + urlEncode(consumer_id);
  bool still_needed = false;
  auto st = pages(base + "/key-auth", "", "GET /consumers/{id}/key-auth", [&](const Json& item) {
    const Credential c = parseCredential(item);
    if (c.id != except_credential && c.certgate && c.group == group) {
      still_needed = true;
      return false;
    }
    return true;
  });
  if (!st) return st;
  if (still_needed) return {};

  std::optional<std::pair<std::string, bool>> acl;  // id, certgate-tagged
  st = pages(base + "/acls", "", "GET /consumers/{id}/acls", [&](const Json& item) {
    if (text(item, "group") != group) return true;
    std::vector<std::string> tags;
    if (const auto t = item.find("tags"); t != item.end() && t->is_array())
      for (const auto& v : *t)
        if (v.is_string()) tags.push_back(v.get<std::string>());
    acl = std::make_pair(text(item, "id"), hasTag(tags, kOwnerTag));
    return false;
  });
  if (!st) return st;
  // A group certgate did not add was granted by someone else: it stays.
  if (!acl || !acl->second || acl->first.empty()) return {};
  const std::string what = "DELETE /consumers/{id}/acls/{id}";
  auto resp = call(http::Method::Delete, base + "/acls/" + urlEncode(acl->first), std::nullopt, what);
  if (!resp) return resp.error();
  if (resp->status == 204 || resp->status == 200 || resp->status == 404) return {};
  return apiError(*resp, what);
}

core::Result<std::optional<std::string>> KongGateway::consumerOf(const std::string& token_id,
                                                                 const std::string& what) {
  auto resp = call(http::Method::Get, "/key-auths/" + urlEncode(token_id) + "/consumer",
                   std::nullopt, what);
  if (!resp) return resp.error();
  if (resp->status == 404) return std::optional<std::string>{};
  if (resp->status != 200) return apiError(*resp, what);
  auto doc = parseBody(*resp, what);
  if (!doc) return annotate(doc.error());
  const std::string id = text(*doc, "id");
  if (id.empty()) return annotate(core::makeError(ErrorKind::Permanent, what + ": the consumer has no id"));
  return std::optional<std::string>{id};
}

ports::IssuedToken KongGateway::adopted(const Credential& c, const std::string& alias) const {
  ports::IssuedToken t;
  t.token_id = c.id;
  t.alias = alias;
  if (c.ttl) t.expires_at = core::Instant{std::chrono::seconds(now() + *c.ttl)};
  if (!c.key.empty()) t.secret_digest = builtin::digest(c.key);
  t.adopted = true;
  return t;
}

ports::ObservedToken KongGateway::observed(const Credential& c) const {
  ports::ObservedToken t;
  t.token_id = c.id;
  t.alias = c.alias;
  t.person_key = c.person;
  t.scope = c.scope;
  if (c.ttl) t.expires_at = core::Instant{std::chrono::seconds(now() + *c.ttl)};
  t.active = true;  // Kong has no disabled state: a listed key is accepted
  return t;
}

core::Status KongGateway::connect() {
  auto resp = call(http::Method::Get, "/", std::nullopt, "GET /");
  if (!resp) return resp.error();
  if (resp->status != 200) return apiError(*resp, "GET /");
  auto doc = parseBody(*resp, "GET /");
  if (!doc) return annotate(doc.error());
  if (const auto plugins = doc->find("plugins"); plugins != doc->end() && plugins->is_object()) {
    const auto available = plugins->find("available_on_server");
    if (available != plugins->end() && available->is_object()) {
      for (const char* plugin : {"key-auth", "acl"}) {
        if (!available->contains(plugin))
          return invalid(std::string("the Kong node does not load the ") + plugin + " plugin",
                         "add it to `plugins` in kong.conf (it is part of `bundled`)");
      }
    }
  }
  resp = call(http::Method::Get, "/key-auths?size=1&tags=" + std::string(kOwnerTag), std::nullopt,
              "GET /key-auths");
  if (!resp) return resp.error();
  if (resp->status != 200) {
    core::Error e = apiError(*resp, "GET /key-auths");
    if (e.kind == ErrorKind::NotFound)
      e.hint = "the Admin API has no /key-auths: is url the Admin API root (not the proxy)?";
    return e;
  }
  return {};
}

core::Result<ports::IssuedToken> KongGateway::issue(const ports::IssueRequest& request) {
  if (request.alias.empty()) return invalid("issue: the request has no alias", "this is a defect in certgate");
  if (request.person_key.empty())
    return invalid("issue " + request.alias + ": the request has no person key", "this is a defect in certgate");
  std::string group;
  if (cfg_.acl_from_models) {
    if (request.scope.models.size() != 1)
      return invalid("issue " + request.alias + ": scope '" + request.scope.scope + "' lists " +
                         std::to_string(request.scope.models.size()) +
                         " models; with acl_from: models a Kong token carries exactly one ACL group",
                     "give the mapping one model (the Kong ACL group), or use acl_from: scope");
    group = request.scope.models.front();
  } else {
    group = request.scope.scope;
  }
  if (group.empty())
    return invalid("issue " + request.alias + ": the scope names no ACL group",
                   "set the mapping's scope (the Kong ACL group the route allows)");

  const std::int64_t t = now();
  std::int64_t expires = request.expires_at.time_since_epoch().count();
  if (request.scope.lifetime.count() > 0) expires = std::min(expires, t + request.scope.lifetime.count());
  if (expires - t < 1)
    return invalid("issue " + request.alias + ": the end of access " +
                       core::formatIso(core::Instant{std::chrono::seconds(expires)}) + " is not in the future",
                   "a token is issued only while access lasts");
  const std::int64_t ttl = std::min(expires - t, kMaxTtl);

  auto existing = credentialByAlias(request.alias);
  if (!existing) return existing.error();
  if (*existing) {
    const Credential& c = **existing;
    // The group may be missing when an earlier issue() stopped between its steps.
    if (!c.consumer_id.empty()) {
      if (auto st = ensureAcl(c.consumer_id, c.group.empty() ? group : c.group); !st) return st.error();
    }
    return adopted(c, request.alias);
  }

  std::string consumer_id;
  for (int attempt = 0;; ++attempt) {
    auto id = ensureConsumer(request.person_key);
    if (!id) return id.error();
    consumer_id = *id;
    auto st = ensureAcl(consumer_id, group);
    if (st) break;
    // A consumer deleted behind certgate's back: look it up (or create it) once more.
    if (st.error().kind != ErrorKind::NotFound || attempt > 0) return st.error();
    consumer_ids_.erase(request.person_key);
  }

  auto key = builtin::mintToken();
  if (!key) return annotate(key.error());
  minted_ = *key;
  struct Forget {
    std::string& s;
    ~Forget() { s.clear(); }
  } forget{minted_};

  std::vector<std::string> tags = {std::string(kOwnerTag),
                                   std::string(kAliasTag) + encodeTagValue(request.alias),
                                   std::string(kPersonTag) + encodeTagValue(request.person_key),
                                   std::string(kGroupTag) + encodeTagValue(group)};
  if (!request.scope.scope.empty())
    tags.push_back(std::string(kScopeTag) + encodeTagValue(request.scope.scope));
  const Json body = {{"key", *key}, {"ttl", ttl}, {"tags", tags}};
  const std::string what = "POST /consumers/{id}/key-auth";
  // Repeating this POST is safe: the key is unique, so a second copy answers 409.
  auto resp = call(http::Method::Post, "/consumers/" + urlEncode(consumer_id) + "/key-auth", body, what);
  if (!resp) return resp.error();

  ports::IssuedToken token;
  token.alias = request.alias;
  token.secret = *key;
  token.secret_digest = builtin::digest(*key);
  token.expires_at = core::Instant{std::chrono::seconds(t + ttl)};
  if (resp->status == 201 || resp->status == 200) {
    auto doc = parseBody(*resp, what);
    if (!doc) return annotate(doc.error());
    token.token_id = text(*doc, "id");
    if (token.token_id.empty())
      return annotate(core::makeError(ErrorKind::Permanent, what + ": the credential has no id"));
    return token;
  }
  if (resp->status == 409) {
    // The key exists: our own POST went through before a broken connection, or (in principle)
    // another credential holds the same key. The alias tells which.
    auto again = credentialByAlias(request.alias);
    if (!again) return again.error();
    if (*again) {
      if ((*again)->key == *key) {
        token.token_id = (*again)->id;
        return token;
      }
      return adopted(**again, request.alias);
    }
    core::Error e = apiError(*resp, what);
    e.hint = "Kong already holds this key under a credential without the alias; certgate tries "
             "again with a new key on the next run";
    return e;
  }
  return apiError(*resp, what);
}

core::Result<ports::RevokeOutcome> KongGateway::revoke(const std::string& token_id) {
  if (token_id.empty()) return invalid("revoke: no token id", "this is a defect in certgate");
  ports::RevokeOutcome outcome;
  auto gone = [&]() -> core::Result<ports::RevokeOutcome> {
    gone_since_.emplace(token_id, now());
    outcome.no_op = true;
    return outcome;
  };

  auto consumer_id = consumerOf(token_id, "GET /key-auths/{id}/consumer");
  if (!consumer_id) return consumer_id.error();
  if (!*consumer_id) return gone();
  const std::string base = "/consumers/" + urlEncode(**consumer_id) + "/key-auth/" + urlEncode(token_id);

  auto resp = call(http::Method::Get, base, std::nullopt, "GET /consumers/{id}/key-auth/{id}");
  if (!resp) return resp.error();
  if (resp->status == 404) return gone();
  if (resp->status != 200) return apiError(*resp, "GET /consumers/{id}/key-auth/{id}");
  auto doc = parseBody(*resp, "GET /consumers/{id}/key-auth/{id}");
  if (!doc) return annotate(doc.error());
  const Credential c = parseCredential(*doc);
  if (!c.certgate)
    return annotate(core::makeError(
        ErrorKind::Permanent, "revoke " + token_id + ": the key-auth credential is not tagged certgate",
        {}, "certgate deletes only the keys it issued; remove this one in Kong if it must go"));

  // The group goes first: if the delete then fails, the key is already refused by the ACL
  // plugin, and a retry finds the credential again and finishes the job.
  if (c.certgate && !c.group.empty()) {
    if (auto st = releaseAcl(**consumer_id, c.group, token_id); !st) return st.error();
  }
  resp = call(http::Method::Delete, base, std::nullopt, "DELETE /consumers/{id}/key-auth/{id}");
  if (!resp) return resp.error();
  if (resp->status == 404) return gone();
  if (resp->status != 204 && resp->status != 200)
    return apiError(*resp, "DELETE /consumers/{id}/key-auth/{id}");
  gone_since_[token_id] = now();
  return outcome;
}

core::Result<std::optional<ports::ObservedToken>> KongGateway::findByAlias(const std::string& alias) {
  auto c = credentialByAlias(alias);
  if (!c) return c.error();
  if (!*c) return std::optional<ports::ObservedToken>{};
  return std::optional<ports::ObservedToken>{observed(**c)};
}

core::Status KongGateway::observe(const std::function<void(ports::ObservedToken&&)>& sink) {
  // Collected first: a failing page must not leave the caller with half a listing.
  std::vector<ports::ObservedToken> all;
  auto st = pages("/key-auths", "tags=" + std::string(kOwnerTag), "GET /key-auths",
                  [&](const Json& item) {
                    const Credential c = parseCredential(item);
                    if (c.certgate && !c.alias.empty()) all.push_back(observed(c));
                    return true;
                  });
  if (!st) return st;
  for (auto& t : all) sink(std::move(t));
  return {};
}

core::Result<ports::Enforcement> KongGateway::verifyRevoked(const std::string& token_id) {
  if (token_id.empty()) return invalid("verify: no token id", "this is a defect in certgate");
  auto consumer_id = consumerOf(token_id, "GET /key-auths/{id}/consumer");
  if (!consumer_id) return consumer_id.error();
  if (*consumer_id) return ports::Enforcement::NotEnforced;
  const std::int64_t t = now();
  const std::int64_t since = gone_since_.emplace(token_id, t).first->second;
  return t - since >= cfg_.cache_window.count() ? ports::Enforcement::Enforced
                                                : ports::Enforcement::Pending;
}

// ---- configuration -----------------------------------------------------------------------------

using options::OptionReader;

}  // namespace

// ---- tag values --------------------------------------------------------------------------------

std::string encodeTagValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      out += '~';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> decodeTagValue(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '~') {
      out += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    const int hi = hex(encoded[i + 1]);
    const int lo = hex(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// ---- spec and factory --------------------------------------------------------------------------

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "kong";
    s.description = "Kong Gateway key-auth keys and ACL groups through the Kong Admin API";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The Admin API root, e.g. https://kong-admin.internal:8444 (https, or http to the "
         "loopback; may carry a path when a reverse proxy serves it)"},
        {"admin_token", ValueType::Secret, false, "",
         "Token sent with every Admin API request in admin_token_header (Kong Enterprise RBAC "
         "user token, or what the reverse proxy in front of an OSS Admin API expects)"},
        {"admin_token_header", ValueType::String, false, "Kong-Admin-Token",
         "Header that carries admin_token (the value is sent as it is, e.g. \"Bearer ...\" in "
         "the secret for Authorization)"},
        {"consumer_prefix", ValueType::String, false, "certgate-",
         "Kong consumer username = this prefix + the person key (custom_id = the person key)"},
        {"acl_from", ValueType::String, false, "scope",
         "scope (the ACL group is the mapping's scope) | models (its single model)"},
        {"cache_window", ValueType::Duration, false, std::to_string(kDefaultCacheWindow) + "s",
         "How long Kong nodes may still accept a deleted key: at least db_update_frequency "
         "(default 5s) + db_update_propagation; verifyRevoked reports Pending until it passes"},
        {"page_size", ValueType::Int, false, std::to_string(kMaxPageSize),
         "Credentials per Admin API page when listing (1-1000)"},
        {"ca_file", ValueType::Path, false, "",
         "PEM CA bundle replacing the system CAs (relative to the config file)"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::Gateway>> makeGateway(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    const OptionReader opts("gateway '" + name + "'", options);
    Config cfg;
    if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();

    auto url = opts.required("url", "the Kong Admin API root, e.g. https://kong-admin.internal:8444");
    if (!url) return url.error();
    {
      std::string u = *url;
      while (!u.empty() && u.back() == '/') u.pop_back();
      auto origin = opts.url("url", u,
                             {.not_url = "'" + u + "' is not an http(s) URL",
                              .not_url_hint = "e.g. url: https://kong-admin.internal:8444",
                              .plain_http = "must use https",
                              .plain_http_hint = "the admin token and the keys certgate sends only "
                                                 "travel over TLS (plain http is allowed to "
                                                 "localhost only); serve the Admin API with "
                                                 "admin_listen ... ssl, or behind a TLS proxy"});
      if (!origin) return origin.error();
      if (u.find_first_of("?#") != std::string::npos)
        return opts.error("url", "must not have a query or fragment",
                          "give the Admin API root, e.g. https://kong-admin.internal:8444",
                          opts.find("url"));
      // Keep a path (an Admin API served under a reverse proxy's prefix).
      const std::size_t authority = u.find("://") + 3;
      const std::size_t path = u.find('/', authority);
      cfg.base = *origin + (path == std::string::npos ? std::string() : u.substr(path));
    }

    auto header = opts.scalar("admin_token_header");
    if (!header) return header.error();
    if (header->has_value()) {
      if (!isHeaderName(**header))
        return opts.error("admin_token_header", "'" + **header + "' is not an HTTP header name",
                          "e.g. Kong-Admin-Token", opts.find("admin_token_header"));
      if (opts.find("admin_token") == nullptr)
        return opts.error("admin_token_header", "is set without admin_token",
                          "add admin_token, or remove admin_token_header",
                          opts.find("admin_token_header"));
      cfg.admin_token_header = **header;
    }
    if (opts.find("admin_token") != nullptr) {
      auto token = opts.secret(
          "admin_token", secrets,
          {.missing_message = "is required",
           .missing_hint = {},
           .inline_message = "must be a secret reference, not an inline value",
           .inline_hint = "write it as `admin_token: {file: PATH}` or `admin_token: {credential: "
                          "NAME}`; secrets never appear in the configuration file",
           .no_reader_hint = "this is a defect in certgate",
           .empty_hint = "check the file or credential",
           .reader_errors_name_what = false,
           .strip = "\n\r "});
      if (!token) return token.error();
      cfg.admin_token = std::move(*token);
      if (redactor) redactor->add(cfg.admin_token);
    }

    auto prefix = opts.scalar("consumer_prefix");
    if (!prefix) return prefix.error();
    if (prefix->has_value()) {
      const std::string& p = **prefix;
      if (std::any_of(p.begin(), p.end(),
                      [](char c) { return std::iscntrl(static_cast<unsigned char>(c)) != 0; }))
        return opts.error("consumer_prefix", "contains control characters", "e.g. certgate-",
                          opts.find("consumer_prefix"));
      cfg.consumer_prefix = p;
    }

    auto acl_from = opts.choice("acl_from", "scope", {"scope", "models"},
                                OptionReader::Echo::AsWritten,
                                "scope: the mapping's scope is the ACL group; models: its single model");
    if (!acl_from) return acl_from.error();
    cfg.acl_from_models = *acl_from == "models";

    auto window = opts.duration("cache_window", core::Seconds{0}, core::Seconds{3600},
                                "a duration from 0s to 1h",
                                "e.g. cache_window: 10s (Kong's db_update_frequency is 5s by default)");
    if (!window) return window.error();
    if (window->has_value()) cfg.cache_window = **window;

    auto page_size = opts.integer("page_size", 1, static_cast<std::int64_t>(kMaxPageSize),
                                  "a whole number from 1 to 1000",
                                  "Kong pages hold at most 1000 entities");
    if (!page_size) return page_size.error();
    if (page_size->has_value()) cfg.page_size = static_cast<std::size_t>(**page_size);

    auto ca_file = opts.readableFile(
        "ca_file", base_dir, "give a PEM bundle of the CAs that issue the Admin API's certificate");
    if (!ca_file) return ca_file.error();
    if (ca_file->has_value()) client_options.ca_file = **ca_file;

    auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{600},
                                 "a duration between 1s and 10m", "e.g. timeout: 30s");
    if (!timeout) return timeout.error();
    if (timeout->has_value())
      client_options.total_timeout = std::chrono::duration_cast<http::Millis>(**timeout);

    if (!client_options.redactor) client_options.redactor = redactor;
    return std::unique_ptr<ports::Gateway>(std::make_unique<KongGateway>(
        name, std::move(cfg), std::move(redactor), std::move(client_options)));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure while reading the options: ") + e.what(),
                           "gateway '" + name + "'");
  }
}

}  // namespace certgate::connectors::kong
