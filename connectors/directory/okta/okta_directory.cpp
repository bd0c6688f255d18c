#include "connectors/directory/okta/okta_directory.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "connectors/common/jwt.hpp"
#include "connectors/common/link_header.hpp"
#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "core/time.hpp"

namespace certgate::connectors::okta {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;

constexpr std::string_view kDefaultScope = "okta.groups.manage okta.users.read";
constexpr std::string_view kDefaultPopulation = "profile.userType";
constexpr std::size_t kDefaultPageSize = 200;
constexpr std::size_t kMaxPageSize = 1000;
constexpr std::size_t kMaxUsersPageSize = 200;  // GET /api/v1/users pages hold at most 200
constexpr int kMaxAttempts = 4;                 // 5xx / transport: attempts per request
constexpr int kMaxRateLimitWaits = 5;           // 429: waits per request before giving up
constexpr std::int64_t kMaxWaitSeconds = 120;   // Okta windows are one minute long
constexpr std::int64_t kAssertionLifetime = 300;  // Okta accepts at most one hour

// ---- small helpers -----------------------------------------------------------------------------

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

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 3986 percent-encoding of everything but the unreserved characters.
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

// A string literal of Okta's filter/search syntax: double quotes, with \ and " escaped.
std::string searchLiteral(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Okta profile attribute names: letters, digits, '_' and '.' for the path.
bool isAttributePath(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string text(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return {};
}

// The value at a dotted path as text; arrays are joined with ",".
std::string valueAt(const Json& root, const std::vector<std::string>& path) {
  const Json* node = &root;
  for (const auto& part : path) {
    if (!node->is_object()) return {};
    const auto it = node->find(part);
    if (it == node->end()) return {};
    node = &*it;
  }
  if (node->is_string()) return node->get<std::string>();
  if (node->is_number() || node->is_boolean()) return node->dump();
  if (node->is_array()) {
    std::string out;
    for (const auto& v : *node) {
      if (!out.empty()) out += ',';
      out += v.is_string() ? v.get<std::string>() : v.dump();
    }
    return out;
  }
  return {};
}

std::optional<long long> headerInt(const http::Response& resp, std::string_view name) {
  const auto v = resp.headers.get(name);
  if (!v) return std::nullopt;
  const std::string_view s = trim(*v);
  long long n = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return n;
}

enum class Auth { OAuth, Ssws };

// Okta meters each endpoint against its own bucket; certgate tracks these families apart.
enum class Family : std::size_t { Membership = 0, Groups = 1, Users = 2 };
constexpr std::size_t kFamilies = 3;
const char* familyName(Family f) {
  switch (f) {
    case Family::Membership: return "group membership";
    case Family::Groups: return "group lookups";
    case Family::Users: return "users";
  }
  return "?";
}

struct Config {
  std::string origin;  // https://acme.okta.com
  Auth auth = Auth::OAuth;
  std::string client_id;
  std::string private_key;
  std::string key_id;
  std::string token_url;
  std::string scope{kDefaultScope};
  std::string token;
  std::size_t page_size = kDefaultPageSize;
  std::string roster_filter;
  std::vector<std::string> population_path;
  double share = 0.5;
};

// What the last response of a family said about its rate-limit window.
struct Bucket {
  bool known = false;
  long long limit = 0;
  long long remaining = 0;
  std::int64_t reset_local = 0;  // the window's reset on certgate's clock (skew-corrected)
};

// ---- the directory -----------------------------------------------------------------------------

class OktaDirectory final : public ports::Directory {
 public:
  OktaDirectory(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
                http::ClientOptions client_options)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        redactor_(std::move(redactor)),
        client_(std::make_unique<http::Client>(std::move(client_options))),
        where_("directory '" + name_ + "'") {
    if (cfg_.auth == Auth::OAuth) {
      oauth2::ClientCredentialsConfig cc;
      cc.token_url = cfg_.token_url;
      cc.client_id = cfg_.client_id;
      cc.scope = cfg_.scope;
      cc.auth = oauth2::ClientAuth::PrivateKeyJwt;
      cc.where = where_;
      cc.client_assertion = [this] { return clientAssertion(); };
      tokens_ = std::make_unique<oauth2::TokenSource>(*client_, std::move(cc), redactor_,
                                                      client_->options().now_unix_s);
    }
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "okta"; }

  core::Status connect() override;
  ports::DirectoryCapabilities capabilities() const override {
    ports::DirectoryCapabilities caps;
    caps.max_add_batch = 1;
    caps.max_remove_batch = 1;
    caps.page_size = cfg_.page_size;
    caps.bulk = false;
    caps.etag = false;
    caps.roster = !cfg_.roster_filter.empty();
    return caps;
  }

  core::Result<ports::GroupRef> resolveGroup(const std::string& id_or_name) override;
  core::Result<std::vector<ports::DirectoryUser>> findUsers(const ports::UserQuery& query) override;
  core::Status listMembers(const ports::GroupRef& group,
                           const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Status listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Result<std::vector<ports::MemberOutcome>> addMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override {
    return write(group, user_ids, true);
  }
  core::Result<std::vector<ports::MemberOutcome>> removeMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override {
    return write(group, user_ids, false);
  }
  std::uint64_t requestCount() const override {
    return requests_ + (tokens_ ? tokens_->fetches() : 0);
  }

 private:
  core::Result<std::string> clientAssertion() const;
  core::Result<std::string> authorization();
  static core::Error withTokenHint(core::Error error);
  std::int64_t now() const { return client_->options().now_unix_s(); }
  void sleepSeconds(std::int64_t seconds) const {
    client_->options().sleep(std::chrono::seconds(seconds));
  }
  void pace(Family family);
  void observeLimits(Family family, const http::Response& resp);
  std::int64_t rateLimitWait(Family family, const http::Response& resp, int waits);
  http::Millis backoff(int failures, const http::Response* resp) const;

  // One API request with pacing, 429 waits, 5xx/transport retries and (oauth) one token
  // refresh after a 401. Returns the final response, whatever its status.
  core::Result<http::Response> call(Family family, http::Method method, const std::string& url,
                                    const std::string& what);
  // The classified error for a non-2xx response, with Okta's error fields.
  core::Error apiError(const http::Response& resp, const std::string& what) const;
  core::Error annotate(core::Error error) const {
    if (error.where.empty()) error.where = where_;
    error.message = redact(error.message);
    return error;
  }
  std::string redact(std::string_view s) const {
    return redactor_ ? redactor_->redact(s) : http::redact(s);
  }

  // Streams every page starting at `url`, handing each array element to `each`.
  core::Status pages(Family family, std::string url, const std::string& what,
                     const std::function<void(const Json&)>& each);
  core::Result<std::optional<std::string>> nextPage(const http::Response& resp,
                                                    const std::string& what) const;

  ports::DirectoryUser toUser(const Json& user) const;
  ports::GroupRef toGroup(const Json& group);
  core::Result<std::vector<ports::DirectoryUser>> searchUsers(const std::string& expression,
                                                              const std::string& what);
  core::Result<std::vector<ports::MemberOutcome>> write(const ports::GroupRef& group,
                                                        const std::vector<std::string>& user_ids,
                                                        bool add);

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<oauth2::TokenSource> tokens_;
  std::string where_;
  std::uint64_t requests_ = 0;
  std::array<Bucket, kFamilies> buckets_{};
  Family last_family_ = Family::Membership;
  std::map<std::string, ports::GroupRef> groups_by_key_;  // resolveGroup cache
  std::unordered_map<std::string, ports::GroupRef> groups_by_id_;
  // Members seen by the last complete listMembers of a group, kept current by our own writes.
  std::unordered_map<std::string, std::unordered_set<std::string>> observed_;
};

core::Result<std::string> OktaDirectory::clientAssertion() const {
  const std::int64_t iat = now();
  Json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!cfg_.key_id.empty()) header["kid"] = cfg_.key_id;
  const Json claims = {{"iss", cfg_.client_id},          {"sub", cfg_.client_id},
                       {"aud", cfg_.token_url},          {"iat", iat},
                       {"exp", iat + kAssertionLifetime}, {"jti", jwt::randomJwtId()}};
  auto signed_jwt = jwt::signRs256(header.dump(), claims.dump(), cfg_.private_key, "private_key");
  if (!signed_jwt) return annotate(signed_jwt.error());
  return signed_jwt;
}

core::Result<std::string> OktaDirectory::authorization() {
  if (cfg_.auth == Auth::Ssws) return "SSWS " + cfg_.token;
  auto token = tokens_->token();
  if (!token) return annotate(withTokenHint(token.error()));
  return "Bearer " + *token;
}

core::Error OktaDirectory::withTokenHint(core::Error error) {
  // Okta turns DPoP on by default for new service apps; certgate sends plain bearer tokens.
  if (error.message.find("invalid_dpop_proof") != std::string::npos)
    error.hint = "clear \"Require Demonstrating Proof of Possession (DPoP) header in token "
                 "requests\" in the service app's General settings";
  return error;
}

void OktaDirectory::pace(Family family) {
  Bucket& b = buckets_[static_cast<std::size_t>(family)];
  if (!b.known || b.limit <= 0) return;
  const std::int64_t t = now();
  if (t >= b.reset_local) {
    b.known = false;  // a new window has begun; the next response tells its state
    return;
  }
  // Would this request leave fewer than limit * (1 - share) calls for everyone else?
  const double floor_left = static_cast<double>(b.limit) * (1.0 - cfg_.share);
  if (static_cast<double>(b.remaining - 1) >= floor_left - 1e-9) return;
  // The headers have one-second resolution: one more second makes sure the window has turned.
  sleepSeconds(std::min(b.reset_local - t + 1, kMaxWaitSeconds));
  b.known = false;
}

void OktaDirectory::observeLimits(Family family, const http::Response& resp) {
  const auto limit = headerInt(resp, "X-Rate-Limit-Limit");
  const auto remaining = headerInt(resp, "X-Rate-Limit-Remaining");
  const auto reset = headerInt(resp, "X-Rate-Limit-Reset");
  if (!limit || !remaining || !reset) return;
  Bucket& b = buckets_[static_cast<std::size_t>(family)];
  b.known = true;
  b.limit = *limit;
  b.remaining = *remaining;
  b.reset_local = *reset;
  // Reset is on Okta's clock; the Date header of the same response says what Okta's clock read,
  // so the wait does not depend on certgate's clock agreeing with Okta's.
  if (const auto date = resp.headers.get("Date")) {
    if (const auto server_now = http::parseRetryAfter(*date, 0); server_now && *server_now > 0)
      b.reset_local = *reset - *server_now + now();
  }
}

std::int64_t OktaDirectory::rateLimitWait(Family family, const http::Response& resp, int waits) {
  const Bucket& b = buckets_[static_cast<std::size_t>(family)];
  const std::int64_t t = now();
  std::int64_t wait = 0;
  if (headerInt(resp, "X-Rate-Limit-Reset") && b.known) {
    wait = b.reset_local - t + 1;
  } else if (const auto retry_after = resp.headers.get("Retry-After")) {
    wait = http::parseRetryAfter(*retry_after, t).value_or(0);
  } else {
    wait = std::int64_t{5} << std::min(waits - 1, 4);  // 5, 10, 20, 40, 80 s
  }
  return std::clamp<std::int64_t>(wait, 1, kMaxWaitSeconds);
}

http::Millis OktaDirectory::backoff(int failures, const http::Response* resp) const {
  if (resp != nullptr) {
    if (const auto retry_after = resp->headers.get("Retry-After")) {
      if (const auto s = http::parseRetryAfter(*retry_after, now()))
        return http::Millis(std::min<std::int64_t>(*s, kMaxWaitSeconds) * 1000);
    }
  }
  // Full jitter: uniform in [0, min(30 s, 500 ms * 2^(failures-1))].
  const long long cap = std::min<long long>(30'000, 500LL << std::min(failures - 1, 10));
  const double r = std::clamp(client_->options().random01(), 0.0, 1.0);
  return http::Millis(static_cast<long long>(r * static_cast<double>(cap)));
}

core::Result<http::Response> OktaDirectory::call(Family family, http::Method method,
                                                 const std::string& url, const std::string& what) {
  int failures = 0;
  int waits = 0;
  bool refreshed = false;
  last_family_ = family;
  for (;;) {
    pace(family);
    auto auth = authorization();
    if (!auth) return auth.error();
    http::Request req;
    req.method = method;
    req.url = url;
    req.headers.set("Accept", "application/json");
    req.headers.set("Authorization", *auth);
    if (method == http::Method::Put) req.headers.set("Content-Type", "application/json");
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
    observeLimits(family, *resp);
    const long status = resp->status;
    if (status == 429) {
      if (++waits > kMaxRateLimitWaits) return resp;
      sleepSeconds(rateLimitWait(family, *resp, waits));
      buckets_[static_cast<std::size_t>(family)].known = false;
      continue;
    }
    if (status == 401 && tokens_ && !refreshed) {
      // The token may have been revoked or expired early: one fresh token, then give up.
      refreshed = true;
      tokens_->invalidate();
      continue;
    }
    if ((status >= 500 || status == 408) && ++failures < kMaxAttempts) {
      client_->options().sleep(backoff(failures, &*resp));
      continue;
    }
    return resp;
  }
}

core::Error OktaDirectory::apiError(const http::Response& resp, const std::string& what) const {
  const core::Status classified = http::classify(resp, what, now(), redactor_.get());
  core::Error error = classified ? core::makeError(ErrorKind::Permanent, "") : classified.error();
  error.where = where_;

  std::string detail;
  std::string code;
  const Json doc = Json::parse(resp.body, nullptr, false);
  if (doc.is_object()) {
    code = text(doc, "errorCode");
    const std::string summary = text(doc, "errorSummary");
    if (!code.empty()) detail += " " + code;
    if (!summary.empty()) detail += (detail.empty() ? " " : ": ") + summary;
    if (const auto causes = doc.find("errorCauses"); causes != doc.end() && causes->is_array()) {
      std::string joined;
      for (const auto& cause : *causes) {
        const std::string s = text(cause, "errorSummary");
        if (s.empty()) continue;
        if (!joined.empty()) joined += "; ";
        joined += s;
      }
      if (!joined.empty()) detail += " (causes: " + joined + ")";
    }
    if (const std::string id = text(doc, "errorId"); !id.empty()) detail += " [errorId " + id + "]";
  }
  error.message = redact(what + ": HTTP " + std::to_string(resp.status) + detail);

  switch (error.kind) {
    case ErrorKind::Auth:
      if (resp.status == 401) {
        error.hint = cfg_.auth == Auth::OAuth
                         ? "Okta refused the access token: check client_id, that the public key of "
                           "private_key is registered with the service app, and that the app is "
                           "active"
                         : "Okta refused the API token: it may be revoked, expired (30 days unused) "
                           "or restricted to another network zone";
      } else {
        error.hint = "the API client lacks permission: grant the scopes " + cfg_.scope +
                     " to the app and give it an admin role covering this group (e.g. Group "
                     "Membership Administrator)";
      }
      break;
    case ErrorKind::RateLimited:
      if (const auto reset = headerInt(resp, "X-Rate-Limit-Reset")) {
        std::int64_t server_now = now();
        if (const auto date = resp.headers.get("Date")) {
          if (const auto d = http::parseRetryAfter(*date, 0); d && *d > 0) server_now = *d;
        }
        error.retry_after_s = static_cast<long>(std::clamp<std::int64_t>(*reset - server_now + 1, 1, kMaxWaitSeconds));
      }
      error.hint = std::string("Okta's rate limit for ") + familyName(last_family_) +
                   " stayed exhausted; certgate retries on the next run (lower rate_limit_share "
                   "if other clients share the org's limits)";
      break;
    case ErrorKind::Transient:
      error.hint = "Okta did not answer successfully after retries; certgate tries again later";
      break;
    default:
      break;
  }
  return error;
}

core::Result<std::optional<std::string>> OktaDirectory::nextPage(const http::Response& resp,
                                                                 const std::string& what) const {
  std::string joined;
  for (const auto& value : resp.headers.getAll("Link")) {
    if (!joined.empty()) joined += ", ";
    joined += value;
  }
  auto next = http::nextLink(joined);
  if (!next || next->empty()) return std::optional<std::string>{};
  std::string url = *next;
  if (url.front() == '/') url = cfg_.origin + url;
  const auto origin = options::originOf(url);
  if (!origin || *origin != cfg_.origin)
    return core::makeError(ErrorKind::Permanent,
                           redact(what + ": the next-page link points outside " + cfg_.origin),
                           where_, "the org URL must be the one Okta uses in its Link headers");
  return std::optional<std::string>{std::move(url)};
}

core::Status OktaDirectory::pages(Family family, std::string url, const std::string& what,
                                  const std::function<void(const Json&)>& each) {
  std::unordered_set<std::string> visited;
  for (std::size_t page = 1;; ++page) {
    if (!visited.insert(url).second)
      return core::makeError(ErrorKind::Permanent,
                             redact(what + ": paging returned to an earlier page (page " +
                                    std::to_string(page) + ")"),
                             where_);
    auto resp = call(family, http::Method::Get, url, what);
    if (!resp) return resp.error();
    if (resp->status != 200) {
      core::Error e = apiError(*resp, what);
      if (page > 1) e.message += " (page " + std::to_string(page) + "; the listing is incomplete)";
      return e;
    }
    const Json doc = Json::parse(resp->body, nullptr, false);
    if (!doc.is_array())
      return core::makeError(ErrorKind::Permanent,
                             redact(what + ": page " + std::to_string(page) +
                                    " is not a JSON array"),
                             where_, "check that url is the Okta org URL");
    for (const auto& item : doc) each(item);
    auto next = nextPage(*resp, what);
    if (!next) return next.error();
    if (!next->has_value()) return {};
    url = std::move(**next);
  }
}

ports::DirectoryUser OktaDirectory::toUser(const Json& user) const {
  ports::DirectoryUser u;
  u.id = text(user, "id");
  const Json empty = Json::object();
  const auto profile_it = user.is_object() ? user.find("profile") : user.end();
  const Json& profile =
      (user.is_object() && profile_it != user.end() && profile_it->is_object()) ? *profile_it : empty;
  u.user_name = text(profile, "login");
  u.email = text(profile, "email");
  u.employee_id = text(profile, "employeeNumber");
  u.display_name = text(profile, "displayName");
  if (u.display_name.empty()) {
    const std::string first = text(profile, "firstName");
    const std::string last = text(profile, "lastName");
    u.display_name = first.empty() ? last : (last.empty() ? first : first + " " + last);
  }
  u.population = valueAt(user, cfg_.population_path);
  const std::string status = text(user, "status");
  u.active = status != "SUSPENDED" && status != "DEPROVISIONED";
  return u;
}

ports::GroupRef OktaDirectory::toGroup(const Json& group) {
  ports::GroupRef g;
  g.id = text(group, "id");
  const auto profile = group.is_object() ? group.find("profile") : group.end();
  if (group.is_object() && profile != group.end()) g.display_name = text(*profile, "name");
  const std::string type = text(group, "type");
  if (type == "OKTA_GROUP") {
    g.writable = true;
  } else if (type == "APP_GROUP") {
    g.writable = false;
    g.not_writable_why =
        "an APP_GROUP: its members are imported from an application (such as Active Directory) "
        "and can only be changed there";
  } else if (type == "BUILT_IN") {
    g.writable = false;
    g.not_writable_why = "a BUILT_IN group (such as Everyone) whose members Okta manages itself";
  } else {
    g.writable = false;
    g.not_writable_why = "of type '" + type + "'; certgate changes only OKTA_GROUP groups";
  }
  groups_by_id_[g.id] = g;
  return g;
}

core::Status OktaDirectory::connect() {
  if (cfg_.auth == Auth::OAuth) {
    auto token = tokens_->token();
    if (!token) return annotate(withTokenHint(token.error()));
    return {};
  }
  const std::string what = "GET /api/v1/groups?limit=1";
  auto resp = call(Family::Groups, http::Method::Get, cfg_.origin + "/api/v1/groups?limit=1", what);
  if (!resp) return resp.error();
  if (resp->status != 200) return apiError(*resp, what);
  return {};
}

core::Result<ports::GroupRef> OktaDirectory::resolveGroup(const std::string& id_or_name) {
  const std::string key(trim(id_or_name));
  if (key.empty())
    return core::makeError(ErrorKind::Invalid, "empty group id or name", where_,
                           "name the Okta group by its id (00g...) or its exact name");
  if (const auto cached = groups_by_key_.find(key); cached != groups_by_key_.end())
    return cached->second;

  // Okta group ids are "00g" followed by 17 letters and digits.
  const bool looks_like_id =
      key.size() == 20 && key.compare(0, 3, "00g") == 0 &&
      std::all_of(key.begin(), key.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
  if (looks_like_id) {
    const std::string what = "GET /api/v1/groups/" + key;
    auto resp = call(Family::Groups, http::Method::Get,
                     cfg_.origin + "/api/v1/groups/" + urlEncode(key), what);
    if (!resp) return resp.error();
    if (resp->status == 200) {
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (!doc.is_object() || text(doc, "id").empty())
        return core::makeError(ErrorKind::Permanent, what + ": the answer is not a group", where_);
      ports::GroupRef g = toGroup(doc);
      groups_by_key_[key] = g;
      return g;
    }
    if (resp->status != 404) return apiError(*resp, what);
  }

  const std::string expression = "profile.name eq " + searchLiteral(key);
  const std::string what = "GET /api/v1/groups?search=" + expression;
  std::vector<Json> found;
  auto status = pages(Family::Groups,
                      cfg_.origin + "/api/v1/groups?search=" + urlEncode(expression) +
                          "&limit=" + std::to_string(kMaxUsersPageSize),
                      what, [&](const Json& g) { found.push_back(g); });
  if (!status) return status.error();

  std::vector<const Json*> exact;
  for (const auto& g : found)
    if (g.is_object() && g.contains("profile") && text(g["profile"], "name") == key) exact.push_back(&g);
  if (exact.empty()) {
    for (const auto& g : found)
      if (g.is_object() && g.contains("profile") && iequals(text(g["profile"], "name"), key))
        exact.push_back(&g);
  }
  if (exact.empty())
    return core::makeError(ErrorKind::NotFound,
                           "no Okta group " + std::string(looks_like_id ? "with id or name '" : "named '") +
                               key + "'",
                           where_, "check the group's name in the Okta Admin Console (Directory > Groups)");
  if (exact.size() > 1) {
    std::string list;
    for (const Json* g : exact) {
      if (!list.empty()) list += ", ";
      list += text(*g, "id") + " (" + text(*g, "type") + ")";
    }
    return core::makeError(ErrorKind::Conflict,
                           "group name '" + key + "' matches " + std::to_string(exact.size()) +
                               " Okta groups: " + list,
                           where_, "name the group by its id instead");
  }
  ports::GroupRef g = toGroup(*exact.front());
  groups_by_key_[key] = g;
  return g;
}

core::Result<std::vector<ports::DirectoryUser>> OktaDirectory::searchUsers(
    const std::string& expression, const std::string& what) {
  std::vector<ports::DirectoryUser> users;
  const std::size_t limit = std::min(cfg_.page_size, kMaxUsersPageSize);
  auto status = pages(Family::Users,
                      cfg_.origin + "/api/v1/users?search=" + urlEncode(expression) +
                          "&limit=" + std::to_string(limit),
                      what, [&](const Json& u) { users.push_back(toUser(u)); });
  if (!status) return status.error();
  return users;
}

core::Result<std::vector<ports::DirectoryUser>> OktaDirectory::findUsers(
    const ports::UserQuery& query) {
  if (query.value.empty())
    return core::makeError(ErrorKind::Invalid,
                           std::string("empty value for a user lookup by ") +
                               ports::toString(query.attribute),
                           where_);
  std::string attribute;
  switch (query.attribute) {
    case ports::UserAttribute::UserName: attribute = "profile.login"; break;
    case ports::UserAttribute::Email: attribute = "profile.email"; break;
    case ports::UserAttribute::EmployeeId: attribute = "profile.employeeNumber"; break;
    case ports::UserAttribute::Custom: {
      const std::string custom(trim(query.custom));
      attribute = custom.find('.') == std::string::npos ? "profile." + custom : custom;
      if (!isAttributePath(attribute))
        return core::makeError(ErrorKind::Invalid,
                               "'" + custom + "' is not an Okta user attribute name", where_,
                               "use a profile attribute such as employeeNumber or "
                               "profile.costCenter (letters, digits, '_')");
      break;
    }
    case ports::UserAttribute::ExternalId:
      return core::makeError(ErrorKind::Invalid, "Okta users have no external_id attribute",
                             where_,
                             "match on user_name (profile.login), email, employee_id "
                             "(profile.employeeNumber) or a custom profile attribute");
    case ports::UserAttribute::Id: {
      const std::string what = "GET /api/v1/users/" + query.value;
      auto resp = call(Family::Users, http::Method::Get,
                       cfg_.origin + "/api/v1/users/" + urlEncode(query.value), what);
      if (!resp) return resp.error();
      std::vector<ports::DirectoryUser> users;
      if (resp->status == 404) return users;
      if (resp->status != 200) return apiError(*resp, what);
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (!doc.is_object())
        return core::makeError(ErrorKind::Permanent, what + ": the answer is not a user", where_);
      ports::DirectoryUser u = toUser(doc);
      // GET /users/{idOrLogin} also matches a login; an id lookup wants the id only.
      if (u.id == query.value) users.push_back(std::move(u));
      return users;
    }
  }
  const std::string expression = attribute + " eq " + searchLiteral(query.value);
  return searchUsers(expression, "GET /api/v1/users?search=" + expression);
}

core::Status OktaDirectory::listMembers(const ports::GroupRef& group,
                                        const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (group.id.empty())
    return core::makeError(ErrorKind::Invalid, "listMembers: the group has no id", where_);
  const std::string what = "GET /api/v1/groups/" + group.id + "/users";
  std::unordered_set<std::string> seen;
  auto status = pages(Family::Membership,
                      cfg_.origin + "/api/v1/groups/" + urlEncode(group.id) +
                          "/users?limit=" + std::to_string(cfg_.page_size),
                      what, [&](const Json& item) {
                        ports::DirectoryUser u = toUser(item);
                        seen.insert(u.id);
                        sink(std::move(u));
                      });
  if (!status) {
    observed_.erase(group.id);
    return status;
  }
  observed_[group.id] = std::move(seen);
  return {};
}

core::Status OktaDirectory::listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (cfg_.roster_filter.empty())
    return core::makeError(ErrorKind::Invalid, "no roster_filter is configured", where_,
                           "set roster_filter to an Okta search expression, e.g. "
                           "status eq \"ACTIVE\" and profile.department eq \"Engineering\"");
  const std::size_t limit = std::min(cfg_.page_size, kMaxUsersPageSize);
  return pages(Family::Users,
               cfg_.origin + "/api/v1/users?search=" + urlEncode(cfg_.roster_filter) +
                   "&limit=" + std::to_string(limit),
               "GET /api/v1/users?search=" + cfg_.roster_filter,
               [&](const Json& u) { sink(toUser(u)); });
}

core::Result<std::vector<ports::MemberOutcome>> OktaDirectory::write(
    const ports::GroupRef& group, const std::vector<std::string>& user_ids, bool add) {
  const char* verb = add ? "add members to" : "remove members from";
  if (group.id.empty())
    return core::makeError(ErrorKind::Invalid, std::string(verb) + " a group without an id", where_);
  const ports::GroupRef* known = nullptr;
  if (const auto it = groups_by_id_.find(group.id); it != groups_by_id_.end()) known = &it->second;
  if (!group.writable || (known != nullptr && !known->writable)) {
    const std::string& why = !group.not_writable_why.empty()
                                 ? group.not_writable_why
                                 : (known != nullptr ? known->not_writable_why : group.not_writable_why);
    const std::string label = group.display_name.empty() ? group.id : group.display_name;
    return core::makeError(ErrorKind::Invalid,
                           std::string("cannot ") + verb + " Okta group '" + label + "' (" +
                               group.id + "): it is " + (why.empty() ? "not writable" : why),
                           where_,
                           "map the certification to an OKTA_GROUP; Okta changes memberships of "
                           "other group types only through their source");
  }

  auto observed = observed_.find(group.id);
  std::vector<ports::MemberOutcome> outcomes;
  outcomes.reserve(user_ids.size());
  std::optional<core::Error> stop;  // after a rate-limit or server failure, stop calling
  const http::Method method = add ? http::Method::Put : http::Method::Delete;
  for (const auto& user_id : user_ids) {
    ports::MemberOutcome outcome;
    outcome.user_id = user_id;
    if (stop) {
      core::Error e = *stop;
      e.message = "not attempted after an earlier failure: " + e.message;
      outcome.status = std::move(e);
      outcomes.push_back(std::move(outcome));
      continue;
    }
    if (user_id.empty() || user_id.find_first_of("/?#% ") != std::string::npos) {
      outcome.status = core::makeError(ErrorKind::Invalid, "'" + user_id + "' is not an Okta user id", where_);
      outcomes.push_back(std::move(outcome));
      continue;
    }
    const std::string what = std::string(add ? "PUT" : "DELETE") + " /api/v1/groups/" + group.id +
                             "/users/" + user_id;
    auto resp = call(Family::Membership, method,
                     cfg_.origin + "/api/v1/groups/" + urlEncode(group.id) + "/users/" +
                         urlEncode(user_id),
                     what);
    if (!resp) {
      if (resp.error().kind == ErrorKind::Auth) return resp.error();
      stop = resp.error();
      outcome.status = resp.error();
      outcomes.push_back(std::move(outcome));
      continue;
    }
    if (resp->status >= 200 && resp->status < 300) {
      if (observed != observed_.end()) {
        // Okta answers 204 whether or not anything changed; our observation tells which.
        if (add) {
          outcome.no_op = !observed->second.insert(user_id).second;
        } else {
          outcome.no_op = observed->second.erase(user_id) == 0;
        }
      }
      outcomes.push_back(std::move(outcome));
      continue;
    }
    core::Error error = apiError(*resp, what);
    if (error.kind == ErrorKind::Auth) return error;
    if (resp->status == 404) {
      const Json doc = Json::parse(resp->body, nullptr, false);
      const std::string summary = doc.is_object() ? text(doc, "errorSummary") : std::string();
      if (summary.find(group.id) != std::string::npos || summary.find("(UserGroup)") != std::string::npos) {
        error.message += " (the group no longer exists)";
        return error;
      }
    }
    if (error.kind == ErrorKind::RateLimited || error.kind == ErrorKind::Transient) stop = error;
    outcome.status = std::move(error);
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

// ---- configuration -----------------------------------------------------------------------------

using options::OptionReader;

core::Result<Auth> parseAuth(const OptionReader& opts) {
  auto auth = opts.choice("auth", "oauth", {"oauth", "ssws"}, OptionReader::Echo::Lowercased,
                          "oauth: an OAuth 2.0 service app with private_key_jwt (recommended); "
                          "ssws: an API token");
  if (!auth) return auth.error();
  return *auth == "ssws" ? Auth::Ssws : Auth::OAuth;
}

core::Result<std::string> readSecret(const OptionReader& opts, const std::string& key,
                                     const ports::SecretReader& secrets,
                                     const std::string& needed_for) {
  return opts.secret(
      key, secrets,
      {.missing_message = "is required " + needed_for,
       .missing_hint = "write it as `" + key + ": {file: /etc/certgate/okta-" + key +
                       "}` or `{credential: NAME}`",
       .inline_message = "must be a secret reference, not an inline value",
       .inline_hint = "write it as `" + key + ": {file: PATH}` or `" + key +
                      ": {credential: NAME}`; secrets never appear in the configuration file",
       .no_reader_hint = "this is a defect in certgate",
       .empty_hint = "check the file or credential",
       .reader_errors_name_what = false,
       .strip = "\n\r "});
}

core::Result<std::string> parseUrl(const OptionReader& opts, const std::string& key,
                                   const std::string& value) {
  return opts.url(key, value,
                  {.not_url = "'" + value + "' is not an http(s) URL",
                   .not_url_hint = "e.g. url: https://acme.okta.com",
                   .plain_http = "must use https",
                   .plain_http_hint = "Okta is only reached over TLS"});
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "okta";
    s.description = "Okta group memberships through the Okta Management API";
    s.keys = {
        {"url", ValueType::String, true, "",
         "The Okta org URL, e.g. https://acme.okta.com (https; no path)"},
        {"auth", ValueType::String, false, "oauth",
         "oauth (OAuth 2.0 service app, client credentials with private_key_jwt) | ssws (API "
         "token; discouraged)"},
        {"client_id", ValueType::String, false, "",
         "auth: oauth — the service app's client ID"},
        {"private_key", ValueType::Secret, false, "",
         "auth: oauth — PEM RSA private key (2048 bits or more) whose public key is registered "
         "with the service app"},
        {"key_id", ValueType::String, false, "",
         "auth: oauth — the key's kid in the app's JWKS, sent in the assertion header (needed "
         "when the app has several keys)"},
        {"token_url", ValueType::String, false, "<url>/oauth2/v1/token",
         "auth: oauth — the org authorization server's token endpoint"},
        {"scope", ValueType::String, false, std::string(kDefaultScope),
         "auth: oauth — scopes requested (space-separated); each must be granted to the app"},
        {"token", ValueType::Secret, false, "", "auth: ssws — the API token"},
        {"ca_file", ValueType::Path, false, "",
         "PEM CA bundle replacing the system CAs (relative to the config file)"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
        {"page_size", ValueType::Int, false, std::to_string(kDefaultPageSize),
         "Members per page when listing a group (1-1000; user searches use at most 200)"},
        {"roster_filter", ValueType::String, false, "",
         "Okta user search expression selecting the in-scope users, e.g. "
         "status eq \"ACTIVE\" and profile.department eq \"Engineering\""},
        {"population_attribute", ValueType::String, false, std::string(kDefaultPopulation),
         "User attribute (dotted path; a bare name means profile.<name>) whose value becomes the "
         "person's population"},
        {"rate_limit_share", ValueType::String, false, "0.5",
         "Fraction (0-1] of each Okta rate-limit bucket certgate may use before it waits for the "
         "window to reset"},
    };
    return s;
  }();
  return kSpec;
}

std::vector<std::string> startupWarnings(const ports::Options& options) {
  std::vector<std::string> warnings;
  const ports::OptionValue* auth = options.find("auth");
  if (auth != nullptr && auth->shape == ports::OptionValue::Shape::Scalar &&
      lower(trim(auth->scalar)) == "ssws") {
    warnings.push_back(
        "okta: auth: ssws uses an API token, which acts with every privilege of the admin who "
        "created it (and follows later changes to that admin), expires after 30 days unused and "
        "cannot be scoped; prefer auth: oauth with a service app limited to okta.groups.manage "
        "and okta.users.read");
  }
  const ports::OptionValue* share = options.find("rate_limit_share");
  if (share != nullptr && share->shape == ports::OptionValue::Shape::Scalar) {
    double v = 0;
    const std::string_view s = trim(share->scalar);
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc{} && p == s.data() + s.size() && v > 0.5 && v <= 1.0) {
      warnings.push_back(
          "okta: rate_limit_share above 0.5: by default Okta lets one API token or OAuth app use "
          "only 50% of a rate-limit bucket; raise that cap in the Admin Console first or expect "
          "429 answers");
    }
  }
  return warnings;
}

core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    const OptionReader opts("directory '" + name + "'", options);
    Config cfg;
    if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();

    auto url = opts.required("url", "the Okta org URL, e.g. https://acme.okta.com");
    if (!url) return url.error();
    {
      std::string u = *url;
      while (!u.empty() && u.back() == '/') u.pop_back();
      const auto origin = parseUrl(opts, "url", u);
      if (!origin) return origin.error();
      if (lower(u) != *origin)
        return opts.error("url", "must be the org URL without a path",
                          "e.g. https://acme.okta.com (certgate adds /api/v1/...)", opts.find("url"));
      cfg.origin = *origin;
    }

    auto auth = parseAuth(opts);
    if (!auth) return auth.error();
    cfg.auth = *auth;

    const std::array<const char*, 5> oauth_keys = {"client_id", "private_key", "key_id",
                                                   "token_url", "scope"};
    if (cfg.auth == Auth::Ssws) {
      for (const char* key : oauth_keys)
        if (const ports::OptionValue* v = opts.find(key))
          return opts.error(key, "is only used with auth: oauth",
                            "remove it, or set auth: oauth", v);
      auto token = readSecret(opts, "token", secrets, "with auth: ssws");
      if (!token) return token.error();
      cfg.token = std::move(*token);
      if (redactor) redactor->add(cfg.token);
    } else {
      if (const ports::OptionValue* v = opts.find("token"))
        return opts.error("token", "is only used with auth: ssws",
                          "remove it; auth: oauth signs in with client_id and private_key", v);
      auto client_id = opts.required("client_id", "the client ID of the Okta API service app",
                                     "is required with auth: oauth");
      if (!client_id) return client_id.error();
      cfg.client_id = *client_id;
      auto key = readSecret(opts, "private_key", secrets, "with auth: oauth");
      if (!key) return key.error();
      cfg.private_key = std::move(*key);
      if (redactor) redactor->add(cfg.private_key);
      if (auto ok = jwt::checkRsaPrivateKey(cfg.private_key, "private_key"); !ok) {
        core::Error e = ok.error();
        e.message = "directory '" + name + "': " + e.message;
        e.where = opts.find("private_key")->where.empty() ? options.where
                                                          : opts.find("private_key")->where;
        return e;
      }
      auto key_id = opts.scalar("key_id");
      if (!key_id) return key_id.error();
      cfg.key_id = key_id->value_or("");
      auto token_url = opts.scalar("token_url");
      if (!token_url) return token_url.error();
      if (token_url->has_value() && !(*token_url)->empty()) {
        auto checked = parseUrl(opts, "token_url", **token_url);
        if (!checked) return checked.error();
        cfg.token_url = **token_url;
      } else {
        cfg.token_url = cfg.origin + "/oauth2/v1/token";
      }
      auto scope = opts.scalar("scope");
      if (!scope) return scope.error();
      if (scope->has_value()) {
        if ((*scope)->empty())
          return opts.error("scope", "is empty", "e.g. scope: okta.groups.manage okta.users.read",
                            opts.find("scope"));
        cfg.scope = **scope;
      }
    }

    auto ca_file = opts.readableFile(
        "ca_file", base_dir, "give a PEM bundle of the CAs that issue the Okta org's certificate");
    if (!ca_file) return ca_file.error();
    if (ca_file->has_value()) client_options.ca_file = **ca_file;

    auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{600},
                                 "a duration between 1s and 10m", "e.g. timeout: 30s");
    if (!timeout) return timeout.error();
    if (timeout->has_value())
      client_options.total_timeout = std::chrono::duration_cast<http::Millis>(**timeout);

    auto page_size = opts.integer("page_size", 1, static_cast<std::int64_t>(kMaxPageSize),
                                  "a whole number from 1 to " + std::to_string(kMaxPageSize),
                                  "Okta recommends 200");
    if (!page_size) return page_size.error();
    if (page_size->has_value()) cfg.page_size = static_cast<std::size_t>(**page_size);

    auto roster = opts.scalar("roster_filter");
    if (!roster) return roster.error();
    cfg.roster_filter = roster->value_or("");

    auto population = opts.scalar("population_attribute");
    if (!population) return population.error();
    std::string population_attr = population->value_or(std::string(kDefaultPopulation));
    if (population_attr.find('.') == std::string::npos) population_attr = "profile." + population_attr;
    if (!isAttributePath(population_attr))
      return opts.error("population_attribute", "'" + population_attr + "' is not an attribute path",
                        "e.g. profile.userType or profile.department", opts.find("population_attribute"));
    cfg.population_path = splitPath(population_attr);

    auto share = opts.scalar("rate_limit_share");
    if (!share) return share.error();
    if (share->has_value()) {
      const std::string& s = **share;
      double v = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc{} || p != s.data() + s.size() || !(v > 0.0) || v > 1.0)
        return opts.error("rate_limit_share", "'" + s + "' is not a number above 0 and at most 1",
                          "e.g. 0.5 lets certgate use half of each bucket", opts.find("rate_limit_share"));
      cfg.share = v;
    }

    if (!client_options.redactor) client_options.redactor = redactor;
    return std::unique_ptr<ports::Directory>(std::make_unique<OktaDirectory>(
        name, std::move(cfg), std::move(redactor), std::move(client_options)));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure while reading the options: ") + e.what(),
                           "directory '" + name + "'");
  }
}

}  // namespace certgate::connectors::okta
