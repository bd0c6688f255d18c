// The Kong Admin API and proxy fake: see kong_fake.hpp for the documents it follows.
#include "fakes/kong/kong_fake.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

namespace certgate::testing::kong {
namespace {

using Json = nlohmann::json;

constexpr const char* kJson = "application/json; charset=utf-8";
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr std::int64_t kMaxTtl = 100000000;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// ngx.escape_uri as Kong uses it for `next`: everything but unreserved characters.
std::string escapeUri(std::string_view s) {
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

constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Unpadded, as ngx.encode_base64(s, true).
std::string base64(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16) |
                   (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
  }
  if (i + 1 == in.size()) {
    const auto n = static_cast<unsigned char>(in[i]) << 16;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> unbase64(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : in) {
    const auto pos = kB64.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (hexValue(s[i]) < 0) {
      return false;
    }
  }
  return true;
}

// kong/db/schema/typedefs.lua validate_tag: printable ASCII except ',' and '/', or UTF-8.
bool validTag(std::string_view tag) {
  if (tag.empty()) return false;
  return std::all_of(tag.begin(), tag.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c >= 33 && c <= 126 && c != ',' && c != '/') || c >= 128;
  });
}

// kong/api/endpoints.lua: tags usable in a filter.
bool filterTag(std::string_view tag) {
  return !tag.empty() && std::all_of(tag.begin(), tag.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~';
  });
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Json tagsJson(const std::vector<std::string>& tags) {
  if (tags.empty()) return nullptr;
  return tags;
}

bool hasTag(const std::vector<std::string>& tags, const std::string& tag) {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

struct TagFilter {
  std::vector<std::string> tags;
  bool any = false;  // "/": or; ",": and

  bool matches(const std::vector<std::string>& have) const {
    if (tags.empty()) return true;
    if (any)
      return std::any_of(tags.begin(), tags.end(), [&](const std::string& t) { return hasTag(have, t); });
    return std::all_of(tags.begin(), tags.end(), [&](const std::string& t) { return hasTag(have, t); });
  }
};

struct ApiError {
  int status;
  Json body;
};

ApiError notFound() { return {404, Json{{"message", "Not found"}}}; }

ApiError schemaViolation(const Json& fields) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : fields.items())
    parts.push_back(k + ": " + (v.is_string() ? v.get<std::string>() : v.dump()));
  const std::string message =
      parts.size() == 1 ? "schema violation (" + parts[0] + ")"
                        : std::to_string(parts.size()) + " schema violations (" + [&] {
                            std::string joined;
                            for (const auto& p : parts) joined += (joined.empty() ? "" : "; ") + p;
                            return joined;
                          }() + ")";
  return {400, Json{{"code", 2}, {"name", "schema violation"}, {"message", message}, {"fields", fields}}};
}

ApiError invalidOption(const std::string& option, const std::string& what) {
  return {400, Json{{"code", 11},
                    {"name", "invalid options"},
                    {"message", "invalid option (" + option + ": " + what + ")"},
                    {"options", {{option, what}}}}};
}

// kong/db/errors.lua unique_violation: the message quotes the offending value.
ApiError uniqueViolation(const Json& fields, const std::string& pretty) {
  return {409, Json{{"code", 5},
                    {"name", "unique constraint violation"},
                    {"message", "UNIQUE violation detected on '" + pretty + "'"},
                    {"fields", fields}}};
}

struct FailRule {
  std::string method;
  std::regex path;
  int remaining = 0;
  int status = 500;
  int retry_after = -1;
  std::string body;
};

struct Tombstone {
  FakeCredential cred;
  std::int64_t deleted_at = 0;
};

struct RemovedAcl {
  FakeAcl acl;
  std::int64_t removed_at = 0;
};

}  // namespace

std::string LoggedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string LoggedRequest::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

struct KongFake::State {
  KongFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  std::uint64_t next_id = 1;
  std::map<std::string, FakeConsumer> consumers;    // by id
  std::map<std::string, FakeCredential> creds;      // by id
  std::map<std::string, std::int64_t> consumer_created;  // consumer created_at, by id
  std::map<std::string, FakeAcl> acls;              // by id
  std::vector<Tombstone> tombstones;
  std::vector<RemovedAcl> removed_acls;
  std::map<std::string, std::int64_t> proxy_cache;  // key -> first accepted by the proxy node
  std::vector<FailRule> fail_rules;
  int drop_creates = 0;
  std::vector<LoggedRequest> log;
  std::uint64_t request_count = 0;
  std::mt19937_64 rng{0x6b6f6e67};

  std::int64_t now() const { return opt.clock(); }

  std::string newId() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08llx-0000-4000-8000-%012llx",
                  static_cast<unsigned long long>(0x4b000000 + (next_id >> 48)),
                  static_cast<unsigned long long>(next_id & 0xFFFFFFFFFFFFULL));
    ++next_id;
    return buf;
  }

  std::string generatedKey() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string key;
    for (int i = 0; i < 32; ++i) key += kHex[rng() & 15];
    return key;
  }

  bool expired(const FakeCredential& c) const { return c.expires_at != 0 && c.expires_at < now(); }

  FakeConsumer* consumer(const std::string& id_or_username) {
    if (isUuid(id_or_username)) {
      const auto it = consumers.find(id_or_username);
      return it == consumers.end() ? nullptr : &it->second;
    }
    for (auto& [id, c] : consumers)
      if (c.username == id_or_username) return &c;
    return nullptr;
  }

  FakeCredential* credential(const std::string& id_or_key) {
    FakeCredential* found = nullptr;
    if (isUuid(id_or_key)) {
      const auto it = creds.find(id_or_key);
      if (it != creds.end()) found = &it->second;
    } else {
      for (auto& [id, c] : creds)
        if (c.key == id_or_key) found = &c;
    }
    return found != nullptr && !expired(*found) ? found : nullptr;
  }

  FakeCredential* credentialByKey(const std::string& key) {
    for (auto& [id, c] : creds)
      if (c.key == key) return &c;
    return nullptr;
  }

  FakeAcl* acl(const std::string& consumer_id, const std::string& id_or_group) {
    for (auto& [id, a] : acls) {
      if (a.consumer_id != consumer_id) continue;
      if (isUuid(id_or_group) ? id == id_or_group : a.group == id_or_group) return &a;
    }
    return nullptr;
  }

  Json consumerJson(const FakeConsumer& c) const {
    const auto created = consumer_created.count(c.id) ? consumer_created.at(c.id) : 0;
    return Json{{"id", c.id},
                {"created_at", created},
                {"updated_at", created},
                {"username", c.username.empty() ? Json(nullptr) : Json(c.username)},
                {"custom_id", c.custom_id.empty() ? Json(nullptr) : Json(c.custom_id)},
                {"tags", tagsJson(c.tags)}};
  }

  Json credentialJson(const FakeCredential& c) const {
    return Json{{"id", c.id},
                {"created_at", c.created_at},
                {"consumer", {{"id", c.consumer_id}}},
                {"key", c.key},
                {"ttl", c.expires_at == 0 ? Json(nullptr) : Json(std::max<std::int64_t>(0, c.expires_at - now()))},
                {"tags", tagsJson(c.tags)}};
  }

  Json aclJson(const FakeAcl& a) const {
    return Json{{"id", a.id},
                {"created_at", 0},
                {"consumer", {{"id", a.consumer_id}}},
                {"group", a.group},
                {"tags", tagsJson(a.tags)}};
  }

  void deleteCredential(const std::string& id) {
    const auto it = creds.find(id);
    if (it == creds.end()) return;
    tombstones.push_back({it->second, now()});
    creds.erase(it);
  }

  void deleteAcl(const std::string& id) {
    const auto it = acls.find(id);
    if (it == acls.end()) return;
    removed_acls.push_back({it->second, now()});
    acls.erase(it);
  }

  // on_delete = "cascade": credentials and ACL groups go with the consumer.
  void removeConsumer(const std::string& id) {
    std::vector<std::string> cred_ids, acl_ids;
    for (const auto& [cid, cr] : creds)
      if (cr.consumer_id == id) cred_ids.push_back(cid);
    for (const auto& [aid, a] : acls)
      if (a.consumer_id == id) acl_ids.push_back(aid);
    for (const auto& cid : cred_ids) deleteCredential(cid);
    for (const auto& aid : acl_ids) deleteAcl(aid);
    consumers.erase(id);
  }

  // ---- request parsing ----

  static std::optional<Json> body(const httplib::Request& req, ApiError& err) {
    if (req.body.empty()) return Json::object();
    Json doc = Json::parse(req.body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      err = {400, Json{{"message", "Cannot parse JSON body"}}};
      return std::nullopt;
    }
    return doc;
  }

  static std::optional<std::vector<std::string>> tagsField(const Json& doc, ApiError& err) {
    std::vector<std::string> tags;
    const auto it = doc.find("tags");
    if (it == doc.end() || it->is_null()) return tags;
    if (!it->is_array()) {
      err = schemaViolation(Json{{"tags", "expected a set"}});
      return std::nullopt;
    }
    for (const auto& t : *it) {
      if (!t.is_string() || !validTag(t.get<std::string>())) {
        err = schemaViolation(Json{{"tags", "invalid tag '" + (t.is_string() ? t.get<std::string>() : t.dump()) +
                                                "': expected printable ascii (except `,` and `/`) or "
                                                "valid utf-8 sequences"}});
        return std::nullopt;
      }
      if (!hasTag(tags, t.get<std::string>())) tags.push_back(t.get<std::string>());
    }
    return tags;
  }

  static std::optional<TagFilter> tagFilter(const httplib::Request& req, ApiError& err) {
    TagFilter f;
    if (!req.has_param("tags")) return f;
    const std::string raw = req.get_param_value("tags");
    const bool has_and = raw.find(',') != std::string::npos;
    const bool has_or = raw.find('/') != std::string::npos;
    if (has_and && has_or) {
      err = invalidOption("tags", "invalid filter syntax");
      return std::nullopt;
    }
    f.any = has_or;
    f.tags = split(raw, has_or ? '/' : ',');
    for (const auto& t : f.tags) {
      if (!filterTag(t)) {
        err = invalidOption("tags", "invalid filter syntax");
        return std::nullopt;
      }
    }
    if (f.tags.size() > 5) {
      err = invalidOption("tags", "cannot query more than 5 tags");
      return std::nullopt;
    }
    return f;
  }

  // One page of `items` (ids in ascending order) after the request's offset.
  template <typename T, typename ToJson>
  std::optional<Json> page(const httplib::Request& req, const std::vector<const T*>& items,
                           const std::string& next_path, const std::string& next_tags,
                           ToJson&& to_json, ApiError& err) const {
    int size = kDefaultPageSize;
    if (req.has_param("size")) {
      const std::string s = req.get_param_value("size");
      int n = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc{} || p != s.data() + s.size()) {
        err = {400, Json{{"code", 9}, {"name", "invalid size"}, {"message", "size must be a number"}}};
        return std::nullopt;
      }
      if (n < 1 || n > kMaxPageSize) {
        err = {400, Json{{"code", 9},
                         {"name", "invalid size"},
                         {"message", "size must be an integer between 1 and 1000"}}};
        return std::nullopt;
      }
      size = n;
    }
    std::string after;
    if (req.has_param("offset")) {
      const std::string token = req.get_param_value("offset");
      const auto decoded = unbase64(token);
      const Json key = decoded ? Json::parse(*decoded, nullptr, false) : Json();
      if (!decoded || key.is_discarded() || !key.is_array() || key.empty() || !key[0].is_string()) {
        err = {400, Json{{"code", 7},
                         {"name", "invalid offset"},
                         {"message", "'" + token + "' is not a valid offset: " +
                                         (decoded ? "bad json encoding" : "bad base64 encoding")}}};
        return std::nullopt;
      }
      after = key[0].get<std::string>();
    }
    Json data = Json::array();
    std::string last;
    bool more = false;
    for (const T* item : items) {
      if (!after.empty() && item->id <= after) continue;
      if (static_cast<int>(data.size()) == size) {
        more = true;
        break;
      }
      data.push_back(to_json(*item));
      last = item->id;
    }
    Json out{{"data", data}};
    if (more) {
      const std::string offset = base64(Json::array({last}).dump());
      out["offset"] = offset;
      out["next"] = next_path + "?offset=" + escapeUri(offset) + next_tags;
    } else {
      out["offset"] = nullptr;
      out["next"] = nullptr;
    }
    return out;
  }

  void handle(const httplib::Request& req, httplib::Response& res);
  void route(const httplib::Request& req, httplib::Response& res,
             const std::vector<std::string>& seg);
  void proxyRequest(const httplib::Request& req, httplib::Response& res);
  ProxyAnswer proxyCheck(const std::string& key);
};

namespace {

void send(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), kJson);
}

void send(httplib::Response& res, const ApiError& e) { send(res, e.status, e.body); }

}  // namespace

ProxyAnswer KongFake::State::proxyCheck(const std::string& key) {
  ProxyAnswer answer;
  const std::int64_t t = now();
  const FakeCredential* cred = nullptr;
  FakeCredential* live = credentialByKey(key);
  if (live != nullptr && !expired(*live)) {
    cred = live;
    proxy_cache.emplace(key, t);
  } else if (live == nullptr) {
    // A deleted credential stays in the node's cache until its next poll, if it was cached.
    const auto cached = proxy_cache.find(key);
    for (auto it = tombstones.rbegin(); it != tombstones.rend() && cached != proxy_cache.end(); ++it) {
      if (it->cred.key == key && cached->second <= it->deleted_at &&
          t < it->deleted_at + opt.cache_window && !expired(it->cred)) {
        cred = &it->cred;
        break;
      }
    }
  }
  if (cred == nullptr) {
    answer.status = 401;
    return answer;
  }
  const auto cit = consumers.find(cred->consumer_id);
  answer.consumer_username = cit == consumers.end() ? std::string() : cit->second.username;
  std::set<std::string> groups;
  for (const auto& [id, a] : acls)
    if (a.consumer_id == cred->consumer_id) groups.insert(a.group);
  for (const auto& r : removed_acls)
    if (r.acl.consumer_id == cred->consumer_id && t < r.removed_at + opt.cache_window)
      groups.insert(r.acl.group);
  answer.groups.assign(groups.begin(), groups.end());
  if (!opt.proxy_acl_allow.empty()) {
    const bool allowed = std::any_of(opt.proxy_acl_allow.begin(), opt.proxy_acl_allow.end(),
                                     [&](const std::string& g) { return groups.count(g) > 0; });
    if (!allowed) {
      answer.status = 403;
      return answer;
    }
  }
  answer.status = 200;
  return answer;
}

void KongFake::State::proxyRequest(const httplib::Request& req, httplib::Response& res) {
  std::string key = req.get_header_value("apikey");
  if (key.empty()) key = req.get_param_value("apikey");
  if (key.empty()) {
    res.set_header("WWW-Authenticate", "Key realm=\"kong\"");
    return send(res, 401, Json{{"message", "No API key found in request"}});
  }
  const ProxyAnswer a = proxyCheck(key);
  if (a.status == 401) {
    res.set_header("WWW-Authenticate", "Key realm=\"kong\"");
    return send(res, 401, Json{{"message", "Unauthorized"}});
  }
  if (a.status == 403) return send(res, 403, Json{{"message", "You cannot consume this service"}});
  res.set_header("X-Consumer-Username", a.consumer_username);
  std::string groups;
  for (const auto& g : a.groups) groups += (groups.empty() ? "" : ", ") + g;
  res.set_header("X-Consumer-Groups", groups);
  send(res, 200, Json{{"consumer", a.consumer_username}, {"groups", a.groups}});
}

void KongFake::State::handle(const httplib::Request& req, httplib::Response& res) {
  std::unique_lock lock(mu);
  ++request_count;
  const std::string raw_path = req.target.substr(0, req.target.find('?'));
  std::vector<std::string> seg;
  for (const auto& part : split(raw_path, '/'))
    if (!part.empty()) seg.push_back(percentDecode(part));

  LoggedRequest entry;
  entry.method = req.method;
  entry.path = percentDecode(raw_path);
  entry.target = req.target;
  for (const auto& [k, v] : req.params) entry.params.emplace_back(k, v);
  for (const auto& [k, v] : req.headers) entry.headers.emplace_back(k, v);
  entry.body = req.body;
  entry.at = now();

  const bool is_proxy = !opt.proxy_prefix.empty() && raw_path.rfind(opt.proxy_prefix, 0) == 0;
  bool dropped = false;
  if (is_proxy) {
    proxyRequest(req, res);
  } else if (!opt.admin_token.empty() &&
             req.get_header_value(opt.admin_token_header.c_str()) != opt.admin_token) {
    send(res, 401, Json{{"message", "Invalid credentials. Token or User credentials required"}});
  } else {
    bool failed = false;
    for (auto& rule : fail_rules) {
      if (rule.remaining > 0 && rule.method == req.method &&
          std::regex_match(entry.path, rule.path)) {
        --rule.remaining;
        failed = true;
        if (rule.status == 429 && rule.retry_after >= 0)
          res.set_header("Retry-After", std::to_string(rule.retry_after));
        if (!rule.body.empty()) {
          res.status = rule.status;
          res.set_content(rule.body, kJson);
          break;
        }
        const Json doc = Json::parse(req.body, nullptr, false);
        if (rule.status == 409 && doc.is_object() && doc.contains("key") && doc["key"].is_string()) {
          const std::string key = doc["key"].get<std::string>();
          send(res, uniqueViolation(Json{{"key", key}}, "{key=\"" + key + "\"}"));
        } else {
          send(res, rule.status,
               Json{{"message", rule.status == 429 ? "API rate limit exceeded"
                                                   : "An unexpected error occurred"}});
        }
        break;
      }
    }
    if (!failed) {
      route(req, res, seg);
      if (drop_creates > 0 && req.method == "POST" && seg.size() == 3 && seg[0] == "consumers" &&
          seg[2] == "key-auth" && res.status == 201) {
        --drop_creates;
        dropped = true;
      }
    }
  }

  entry.status = res.status;
  entry.dropped = dropped;
  if (opt.record_requests) log.push_back(std::move(entry));
  if (dropped) {
    // Headers announce the body, then the connection breaks: the client sees a partial answer.
    const std::size_t length = res.body.size();
    res.body.clear();
    res.headers.erase("Content-Type");
    res.set_content_provider(
        length, kJson, [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
  }
}

void KongFake::State::route(const httplib::Request& req, httplib::Response& res,
                            const std::vector<std::string>& seg) {
  const std::string& m = req.method;
  ApiError err{0, {}};
  auto methodNotAllowed = [&] { send(res, 405, Json{{"message", "Method not allowed"}}); };

  // GET /
  if (seg.empty()) {
    if (m != "GET") return methodNotAllowed();
    return send(res, 200,
                Json{{"tagline", "Welcome to kong"},
                     {"version", opt.version},
                     {"plugins",
                      {{"available_on_server",
                        {{"key-auth", {{"version", opt.version}, {"priority", 1250}}},
                         {"acl", {{"version", opt.version}, {"priority", 950}}}}},
                       {"enabled_in_cluster", Json::array({"key-auth", "acl"})}}}});
  }

  // /consumers
  if (seg[0] == "consumers" && seg.size() == 1) {
    if (m == "GET") {
      auto filter = tagFilter(req, err);
      if (!filter) return send(res, err);
      std::vector<const FakeConsumer*> items;
      for (const auto& [id, c] : consumers)
        if (filter->matches(c.tags)) items.push_back(&c);
      const std::string tags = req.has_param("tags") ? "&tags=" + req.get_param_value("tags") : "";
      auto out = page(req, items, "/consumers", tags, [&](const FakeConsumer& c) { return consumerJson(c); }, err);
      if (!out) return send(res, err);
      return send(res, 200, *out);
    }
    if (m != "POST") return methodNotAllowed();
    auto doc = body(req, err);
    if (!doc) return send(res, err);
    auto tags = tagsField(*doc, err);
    if (!tags) return send(res, err);
    FakeConsumer c;
    c.username = doc->value("username", std::string());
    c.custom_id = doc->value("custom_id", std::string());
    c.tags = *tags;
    if (c.username.empty() && c.custom_id.empty())
      return send(res, schemaViolation(Json{{"@entity", Json::array({"at least one of these fields must be non-empty: 'custom_id', 'username'"})}}));
    for (const auto& [id, other] : consumers) {
      if (!c.username.empty() && other.username == c.username)
        return send(res, uniqueViolation(Json{{"username", c.username}}, "{username=\"" + c.username + "\"}"));
      if (!c.custom_id.empty() && other.custom_id == c.custom_id)
        return send(res, uniqueViolation(Json{{"custom_id", c.custom_id}}, "{custom_id=\"" + c.custom_id + "\"}"));
    }
    c.id = newId();
    consumer_created[c.id] = now();
    consumers[c.id] = c;
    return send(res, 201, consumerJson(c));
  }

  // /consumers/{c}
  if (seg[0] == "consumers" && seg.size() == 2) {
    FakeConsumer* c = consumer(seg[1]);
    if (m == "GET") {
      if (c == nullptr) return send(res, notFound());
      return send(res, 200, consumerJson(*c));
    }
    if (m == "DELETE") {
      if (c != nullptr) removeConsumer(c->id);
      res.status = 204;
      return;
    }
    if (m == "PUT") {
      auto doc = body(req, err);
      if (!doc) return send(res, err);
      auto tags = tagsField(*doc, err);
      if (!tags) return send(res, err);
      FakeConsumer next;
      next.id = c != nullptr ? c->id : (isUuid(seg[1]) ? seg[1] : newId());
      next.username = isUuid(seg[1]) ? doc->value("username", std::string()) : seg[1];
      next.custom_id = doc->value("custom_id", std::string());
      next.tags = *tags;
      for (const auto& [id, other] : consumers) {
        if (id == next.id) continue;
        if (!next.username.empty() && other.username == next.username)
          return send(res, uniqueViolation(Json{{"username", next.username}}, "{username=\"" + next.username + "\"}"));
        if (!next.custom_id.empty() && other.custom_id == next.custom_id)
          return send(res, uniqueViolation(Json{{"custom_id", next.custom_id}}, "{custom_id=\"" + next.custom_id + "\"}"));
      }
      if (!consumer_created.count(next.id)) consumer_created[next.id] = now();
      consumers[next.id] = next;
      return send(res, 200, consumerJson(next));
    }
    return methodNotAllowed();
  }

  // /consumers/{c}/key-auth[/{id or key}]
  if (seg[0] == "consumers" && seg.size() >= 3 && seg[2] == "key-auth" && seg.size() <= 4) {
    FakeConsumer* c = consumer(seg[1]);
    if (c == nullptr) return send(res, notFound());
    if (seg.size() == 3) {
      if (m == "GET") {
        std::vector<const FakeCredential*> items;
        for (const auto& [id, cr] : creds)
          if (cr.consumer_id == c->id && !expired(cr)) items.push_back(&cr);
        auto out = page(req, items, "/consumers/" + c->id + "/key-auth", "",
                        [&](const FakeCredential& cr) { return credentialJson(cr); }, err);
        if (!out) return send(res, err);
        return send(res, 200, *out);
      }
      if (m != "POST") return methodNotAllowed();
      auto doc = body(req, err);
      if (!doc) return send(res, err);
      auto tags = tagsField(*doc, err);
      if (!tags) return send(res, err);
      FakeCredential cr;
      if (const auto k = doc->find("key"); k != doc->end() && !k->is_null()) {
        if (!k->is_string() || k->get<std::string>().empty())
          return send(res, schemaViolation(Json{{"key", "expected a string"}}));
        cr.key = k->get<std::string>();
      } else {
        cr.key = generatedKey();
      }
      std::int64_t ttl = 0;
      if (const auto t = doc->find("ttl"); t != doc->end() && !t->is_null()) {
        if (!t->is_number_integer() || t->get<std::int64_t>() < 0 || t->get<std::int64_t>() > kMaxTtl)
          return send(res, invalidOption("ttl", "must be an integer between 0 and 100000000"));
        ttl = t->get<std::int64_t>();
      }
      if (FakeCredential* existing = credentialByKey(cr.key); existing != nullptr) {
        if (expired(*existing)) {
          creds.erase(existing->id);
        } else {
          return send(res, uniqueViolation(Json{{"key", cr.key}}, "{key=\"" + cr.key + "\"}"));
        }
      }
      cr.id = newId();
      cr.consumer_id = c->id;
      cr.tags = *tags;
      cr.created_at = now();
      cr.expires_at = ttl > 0 ? cr.created_at + ttl : 0;
      creds[cr.id] = cr;
      return send(res, 201, credentialJson(cr));
    }
    FakeCredential* cr = credential(seg[3]);
    if (cr == nullptr || cr->consumer_id != c->id) return send(res, notFound());
    if (m == "GET") return send(res, 200, credentialJson(*cr));
    if (m == "DELETE") {
      deleteCredential(cr->id);
      res.status = 204;
      return;
    }
    return methodNotAllowed();
  }

  // /consumers/{c}/acls[/{id or group}]
  if (seg[0] == "consumers" && seg.size() >= 3 && seg[2] == "acls" && seg.size() <= 4) {
    FakeConsumer* c = consumer(seg[1]);
    if (c == nullptr) return send(res, notFound());
    if (seg.size() == 3) {
      if (m == "GET") {
        std::vector<const FakeAcl*> items;
        for (const auto& [id, a] : acls)
          if (a.consumer_id == c->id) items.push_back(&a);
        auto out = page(req, items, "/consumers/" + c->id + "/acls", "",
                        [&](const FakeAcl& a) { return aclJson(a); }, err);
        if (!out) return send(res, err);
        return send(res, 200, *out);
      }
      if (m != "POST") return methodNotAllowed();
      auto doc = body(req, err);
      if (!doc) return send(res, err);
      auto tags = tagsField(*doc, err);
      if (!tags) return send(res, err);
      const auto g = doc->find("group");
      if (g == doc->end() || g->is_null())
        return send(res, schemaViolation(Json{{"group", "required field missing"}}));
      if (!g->is_string() || g->get<std::string>().empty())
        return send(res, schemaViolation(Json{{"group", "expected a string"}}));
      const std::string group = g->get<std::string>();
      if (acl(c->id, group) != nullptr)
        return send(res, uniqueViolation(Json{{"consumer", {{"id", c->id}}}, {"group", group}},
                                         "{consumer={id=\"" + c->id + "\"},group=\"" + group + "\"}"));
      FakeAcl a{newId(), c->id, group, *tags};
      acls[a.id] = a;
      return send(res, 201, aclJson(a));
    }
    FakeAcl* a = acl(c->id, seg[3]);
    if (a == nullptr) return send(res, notFound());
    if (m == "GET") return send(res, 200, aclJson(*a));
    if (m == "DELETE") {
      deleteAcl(a->id);
      res.status = 204;
      return;
    }
    return methodNotAllowed();
  }

  // /key-auths, /key-auths/{id or key}, /key-auths/{id or key}/consumer
  if (seg[0] == "key-auths") {
    if (seg.size() == 1) {
      if (m != "GET") return methodNotAllowed();
      auto filter = tagFilter(req, err);
      if (!filter) return send(res, err);
      std::vector<const FakeCredential*> items;
      for (const auto& [id, cr] : creds)
        if (!expired(cr) && filter->matches(cr.tags)) items.push_back(&cr);
      const std::string tags = req.has_param("tags") ? "&tags=" + req.get_param_value("tags") : "";
      auto out = page(req, items, "/key-auths", tags,
                      [&](const FakeCredential& cr) { return credentialJson(cr); }, err);
      if (!out) return send(res, err);
      return send(res, 200, *out);
    }
    FakeCredential* cr = credential(seg[1]);
    if (seg.size() == 2) {
      if (m == "GET") {
        if (cr == nullptr) return send(res, notFound());
        return send(res, 200, credentialJson(*cr));
      }
      if (m == "DELETE") {
        if (cr != nullptr) deleteCredential(cr->id);
        res.status = 204;
        return;
      }
      return methodNotAllowed();
    }
    if (seg.size() == 3 && seg[2] == "consumer") {
      if (m != "GET") return methodNotAllowed();
      if (cr == nullptr) return send(res, notFound());
      const auto it = consumers.find(cr->consumer_id);
      if (it == consumers.end()) return send(res, notFound());
      return send(res, 200, consumerJson(it->second));
    }
  }

  // /acls
  if (seg[0] == "acls" && seg.size() == 1) {
    if (m != "GET") return methodNotAllowed();
    auto filter = tagFilter(req, err);
    if (!filter) return send(res, err);
    std::vector<const FakeAcl*> items;
    for (const auto& [id, a] : acls)
      if (filter->matches(a.tags)) items.push_back(&a);
    const std::string tags = req.has_param("tags") ? "&tags=" + req.get_param_value("tags") : "";
    auto out = page(req, items, "/acls", tags, [&](const FakeAcl& a) { return aclJson(a); }, err);
    if (!out) return send(res, err);
    return send(res, 200, *out);
  }

  send(res, notFound());
}

// ---- KongFake ------------------------------------------------------------------------------------

KongFake::KongFake(KongFakeOptions options) : state_(std::make_unique<State>()) {
  state_->opt = std::move(options);
  if (!state_->opt.clock) {
    state_->opt.clock = [] {
      return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
    };
  }
  State* s = state_.get();
  auto handler = [s](const httplib::Request& req, httplib::Response& res) { s->handle(req, res); };
  s->server.Get(".*", handler);
  s->server.Post(".*", handler);
  s->server.Put(".*", handler);
  s->server.Patch(".*", handler);
  s->server.Delete(".*", handler);
}

KongFake::~KongFake() { stop(); }

void KongFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("kong fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("kong fake: server did not start");
    std::this_thread::yield();
  }
}

void KongFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string KongFake::url() const { return state_->base; }

std::string KongFake::addConsumer(FakeConsumer consumer) {
  std::lock_guard lock(state_->mu);
  if (consumer.id.empty()) consumer.id = state_->newId();
  state_->consumer_created[consumer.id] = state_->now();
  state_->consumers[consumer.id] = consumer;
  return consumer.id;
}

std::string KongFake::addCredential(const std::string& consumer, std::string key,
                                    std::vector<std::string> tags, std::int64_t ttl) {
  std::lock_guard lock(state_->mu);
  FakeConsumer* c = state_->consumer(consumer);
  if (c == nullptr) throw std::invalid_argument("kong fake: no consumer " + consumer);
  FakeCredential cr;
  cr.id = state_->newId();
  cr.consumer_id = c->id;
  cr.key = key.empty() ? state_->generatedKey() : std::move(key);
  cr.tags = std::move(tags);
  cr.created_at = state_->now();
  cr.expires_at = ttl > 0 ? cr.created_at + ttl : 0;
  state_->creds[cr.id] = cr;
  return cr.id;
}

std::string KongFake::addAcl(const std::string& consumer, const std::string& group,
                             std::vector<std::string> tags) {
  std::lock_guard lock(state_->mu);
  FakeConsumer* c = state_->consumer(consumer);
  if (c == nullptr) throw std::invalid_argument("kong fake: no consumer " + consumer);
  FakeAcl a{state_->newId(), c->id, group, std::move(tags)};
  state_->acls[a.id] = a;
  return a.id;
}

void KongFake::removeConsumer(const std::string& consumer) {
  std::lock_guard lock(state_->mu);
  FakeConsumer* c = state_->consumer(consumer);
  if (c != nullptr) state_->removeConsumer(c->id);
}

std::vector<FakeConsumer> KongFake::consumers() const {
  std::lock_guard lock(state_->mu);
  std::vector<FakeConsumer> out;
  for (const auto& [id, c] : state_->consumers) out.push_back(c);
  return out;
}

std::vector<FakeCredential> KongFake::credentials(const std::string& consumer) const {
  std::lock_guard lock(state_->mu);
  std::string cid;
  if (!consumer.empty()) {
    const FakeConsumer* c = state_->consumer(consumer);
    if (c == nullptr) return {};
    cid = c->id;
  }
  std::vector<FakeCredential> out;
  for (const auto& [id, cr] : state_->creds)
    if ((cid.empty() || cr.consumer_id == cid) && !state_->expired(cr)) out.push_back(cr);
  return out;
}

std::vector<FakeAcl> KongFake::acls(const std::string& consumer) const {
  std::lock_guard lock(state_->mu);
  std::string cid;
  if (!consumer.empty()) {
    const FakeConsumer* c = state_->consumer(consumer);
    if (c == nullptr) return {};
    cid = c->id;
  }
  std::vector<FakeAcl> out;
  for (const auto& [id, a] : state_->acls)
    if (cid.empty() || a.consumer_id == cid) out.push_back(a);
  return out;
}

ProxyAnswer KongFake::proxy(const std::string& key) {
  std::lock_guard lock(state_->mu);
  return state_->proxyCheck(key);
}

void KongFake::failNext(const std::string& method, const std::string& path_regex, int count,
                        int status, int retry_after, std::string body) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back(
      {method, std::regex(path_regex), count, status, retry_after, std::move(body)});
}

void KongFake::dropCreateResponses(int count) {
  std::lock_guard lock(state_->mu);
  state_->drop_creates = count;
}

void KongFake::setAdminToken(std::string token, std::string header) {
  std::lock_guard lock(state_->mu);
  state_->opt.admin_token = std::move(token);
  state_->opt.admin_token_header = std::move(header);
}

std::vector<LoggedRequest> KongFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}

void KongFake::clearRequests() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}

std::uint64_t KongFake::requestCount() const {
  std::lock_guard lock(state_->mu);
  return state_->request_count;
}

}  // namespace certgate::testing::kong
