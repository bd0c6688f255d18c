// The LiteLLM proxy fake: see litellm_fake.hpp for the documents it follows.
#include "fakes/litellm/litellm_fake.hpp"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace certgate::testing::litellm {
namespace {

using Json = nlohmann::json;

constexpr const char* kJson = "application/json; charset=utf-8";

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

// secrets.token_urlsafe(16): 16 random bytes, base64url without padding (22 characters).
std::string tokenUrlsafe16() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("litellm fake: RAND_bytes failed");
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned int acc = 0;
  int bits = 0;
  for (const unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63u];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63u];
  return out;
}

std::string isoTime(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
  return buf;
}

// LiteLLM's abbreviate_api_key: "sk-..." and the last four characters.
std::string abbreviate(std::string_view key) {
  return "sk-..." + std::string(key.substr(key.size() >= 4 ? key.size() - 4 : 0));
}

// LiteLLM's duration_in_seconds for the units a key duration uses.
std::optional<std::int64_t> durationSeconds(std::string_view d) {
  std::size_t digits = 0;
  while (digits < d.size() && std::isdigit(static_cast<unsigned char>(d[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t n = 0;
  std::from_chars(d.data(), d.data() + digits, n);
  const std::string_view unit = d.substr(digits);
  if (unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  if (unit == "w") return n * 604800;
  if (unit == "mo") return n * 30 * 86400;
  return std::nullopt;
}

bool truthy(const std::string& v) {
  const std::string l = lower(v);
  return l == "true" || l == "1" || l == "yes" || l == "on";
}

struct KeyRec {
  FakeKey k;  // k.key stays empty: the proxy keeps only the hash
  std::string key_name;
  Json metadata = Json::object();
  std::int64_t deleted_at = 0;
};

struct FailRule {
  std::string method;
  std::string path;
  int nth = 0;
  int count = 0;
  int status = 500;
  int retry_after = -1;
};

struct DropRule {
  std::string method;
  std::string path;
  int nth = 0;
  int count = 0;
};

void proxyError(httplib::Response& res, int status, const std::string& message,
                const std::string& type, const std::string& param) {
  res.status = status;
  const Json body = {
      {"error",
       {{"message", message}, {"type", type}, {"param", param}, {"code", std::to_string(status)}}}};
  res.set_content(body.dump(), kJson);
}

// FastAPI's request validation answer.
void validationError(httplib::Response& res, const std::string& where, const std::string& field,
                     const std::string& msg, const std::string& type) {
  res.status = 422;
  const Json body = {
      {"detail",
       Json::array({{{"type", type}, {"loc", Json::array({where, field})}, {"msg", msg}}})}};
  res.set_content(body.dump(), kJson);
}

}  // namespace

std::string LoggedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string LoggedRequest::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::string LiteLlmFake::hashOf(std::string_view key) {
  return sha256Hex(key);
}

struct LiteLlmFake::State {
  LiteLlmFakeOptions opt;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;

  mutable std::mutex mu;
  std::map<std::string, KeyRec> keys;              // by hash
  std::map<std::string, KeyRec> deleted;           // by hash
  std::map<std::string, std::int64_t> revoked_at;  // deleted or blocked, for the cache window
  std::map<std::pair<std::string, std::string>, int> path_counts;
  std::vector<FailRule> fail_rules;
  std::vector<DropRule> drop_rules;
  std::map<std::tuple<std::string, std::string, int>, std::function<void(LiteLlmFake&)>> actions;
  std::map<std::pair<std::string, std::string>, int> hook_counts;
  std::vector<LoggedRequest> log;

  std::int64_t now() const { return opt.clock() + opt.clock_skew; }

  Json row(const KeyRec& r, bool with_token) const {
    const FakeKey& k = r.k;
    Json j = {{"key_name", r.key_name},
              {"key_alias", k.key_alias.empty() ? Json() : Json(k.key_alias)},
              {"spend", 0.0},
              {"max_budget", k.max_budget ? Json(*k.max_budget) : Json()},
              {"expires", k.expires ? Json(isoTime(*k.expires)) : Json()},
              {"models", k.models},
              {"aliases", Json::object()},
              {"config", Json::object()},
              {"user_id", k.user_id.empty() ? Json() : Json(k.user_id)},
              {"team_id", k.team_id.empty() ? Json() : Json(k.team_id)},
              {"permissions", Json::object()},
              {"max_parallel_requests", Json()},
              {"metadata", r.metadata},
              {"blocked", k.blocked},
              {"tpm_limit", Json()},
              {"rpm_limit", Json()},
              {"budget_duration", k.budget_duration.empty() ? Json() : Json(k.budget_duration)},
              {"budget_reset_at", Json()},
              {"allowed_cache_controls", Json::array()},
              {"model_spend", Json::object()},
              {"model_max_budget", Json::object()},
              {"created_at", isoTime(k.created_at)},
              {"updated_at", isoTime(k.updated_at)},
              {"created_by", "default_user_id"},
              {"updated_by", "default_user_id"}};
    if (with_token) j["token"] = k.token;
    if (r.deleted_at != 0) {
      j["deleted_at"] = isoTime(r.deleted_at);
      j["deleted_by"] = "default_user_id";
    }
    return j;
  }

  bool authorizeMaster(const httplib::Request& req, httplib::Response& res) const {
    const std::string auth = req.get_header_value("Authorization");
    if (auth.empty()) {
      proxyError(res, 401, "Authentication Error, No api key passed in.", "auth_error", "None");
      return false;
    }
    std::string bearer = auth.compare(0, 7, "Bearer ") == 0 ? auth.substr(7) : auth;
    if (bearer == opt.master_key) return true;
    proxyError(res, 401,
               "Authentication Error, Invalid proxy server token passed. Received API Key = " +
                   abbreviate(bearer) + ", Key Hash (Token) =" + sha256Hex(bearer) +
                   ". Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
               "auth_error", "None");
    return false;
  }

  std::string hashIfNeeded(const std::string& key) const {
    return key.rfind("sk-", 0) == 0 ? sha256Hex(key) : key;
  }

  void generate(const httplib::Request& req, httplib::Response& res);
  void remove(const httplib::Request& req, httplib::Response& res);
  void block(const httplib::Request& req, httplib::Response& res, bool blocked);
  void info(const httplib::Request& req, httplib::Response& res);
  void list(const httplib::Request& req, httplib::Response& res);
  void chat(const httplib::Request& req, httplib::Response& res);
  bool parseBody(const httplib::Request& req, httplib::Response& res, Json& out) const {
    out = Json::parse(req.body, nullptr, false);
    if (out.is_discarded() || !out.is_object()) {
      validationError(res, "body", "0", "JSON decode error", "json_invalid");
      return false;
    }
    return true;
  }
};

void LiteLlmFake::State::generate(const httplib::Request& req, httplib::Response& res) {
  Json body;
  if (!parseBody(req, res, body)) return;
  const auto str = [&](const char* name) -> std::string {
    const auto it = body.find(name);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (body.contains("models") && !body["models"].is_null() && !body["models"].is_array()) {
    validationError(res, "body", "models", "Input should be a valid list", "list_type");
    return;
  }
  if (body.contains("metadata") && !body["metadata"].is_null() && !body["metadata"].is_object()) {
    validationError(res, "body", "metadata", "Input should be a valid dictionary", "dict_type");
    return;
  }
  std::optional<double> max_budget;
  if (body.contains("max_budget") && body["max_budget"].is_number()) {
    max_budget = body["max_budget"].get<double>();
    if (*max_budget < 0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f", *max_budget);
      proxyError(res, 400,
                 "{'error': 'max_budget cannot be negative. Received: " + std::string(buf) + "'}",
                 "internal_server_error", "None");
      return;
    }
  }
  const std::string alias = str("key_alias");
  if (!alias.empty() && opt.unique_aliases) {
    for (const auto& [hash, r] : keys) {
      if (r.k.key_alias == alias) {
        proxyError(res, 400,
                   "Key with alias '" + alias +
                       "' already exists. Unique key aliases across all keys are required.",
                   "bad_request_error", "key_alias");
        return;
      }
    }
  }
  std::string secret = str("key");
  if (!secret.empty() && secret.rfind("sk-", 0) != 0) {
    const std::string masked = secret.size() > 8
                                   ? secret.substr(0, 4) + "****" + secret.substr(secret.size() - 4)
                                   : "****";
    proxyError(res, 400,
               "{'error': \"Invalid key format. LiteLLM Virtual Key must start with 'sk-'. "
               "Received: " +
                   masked + "\"}",
               "internal_server_error", "None");
    return;
  }
  const std::int64_t t = now();
  std::optional<std::int64_t> expires;
  const std::string duration = str("duration");
  if (!duration.empty()) {
    const auto seconds = durationSeconds(duration);
    if (!seconds) {
      proxyError(res, 500, "Invalid duration format", "internal_server_error", "None");
      return;
    }
    expires = t + *seconds;
  }
  if (secret.empty()) secret = "sk-" + tokenUrlsafe16();

  KeyRec r;
  r.key_name = abbreviate(secret);
  r.k.token = sha256Hex(secret);
  r.k.key_alias = alias;
  r.k.expires = expires;
  if (body.contains("models") && body["models"].is_array())
    for (const auto& m : body["models"])
      if (m.is_string()) r.k.models.push_back(m.get<std::string>());
  r.k.max_budget = max_budget;
  r.k.budget_duration = str("budget_duration");
  r.k.user_id = str("user_id");
  r.k.team_id = str("team_id");
  r.k.blocked =
      body.contains("blocked") && body["blocked"].is_boolean() && body["blocked"].get<bool>();
  r.k.created_at = t;
  r.k.updated_at = t;
  if (body.contains("metadata") && body["metadata"].is_object()) r.metadata = body["metadata"];

  Json out = row(r, true);
  out["key"] = secret;
  out["token_id"] = r.k.token;
  out["soft_budget"] = Json();
  out["budget_id"] = Json();
  out["litellm_budget_table"] = Json();
  const std::string token = r.k.token;
  keys[token] = std::move(r);
  res.status = 200;
  res.set_content(out.dump(), kJson);
}

void LiteLlmFake::State::remove(const httplib::Request& req, httplib::Response& res) {
  Json body;
  if (!parseBody(req, res, body)) return;
  std::vector<std::string> hashes;
  Json passed = Json::array();
  if (body.contains("keys") && body["keys"].is_array() && !body["keys"].empty()) {
    passed = body["keys"];
    for (const auto& k : body["keys"])
      if (k.is_string()) hashes.push_back(hashIfNeeded(k.get<std::string>()));
  } else if (body.contains("key_aliases") && body["key_aliases"].is_array() &&
             !body["key_aliases"].empty()) {
    passed = body["key_aliases"];
    for (const auto& a : body["key_aliases"]) {
      if (!a.is_string()) continue;
      for (const auto& [hash, r] : keys)
        if (r.k.key_alias == a.get<std::string>()) hashes.push_back(hash);
    }
  } else {
    proxyError(res, 500, "Invalid request type", "internal_server_error", "None");
    return;
  }
  std::vector<std::string> found;
  for (const auto& h : hashes)
    if (keys.count(h) != 0) found.push_back(h);
  if (found.empty()) {
    proxyError(res, 404, "{'error': 'No keys found'}", "internal_server_error", "None");
    return;
  }
  const std::int64_t t = now();
  for (const auto& h : found) {
    auto node = keys.extract(h);
    node.mapped().deleted_at = t;
    deleted[h] = std::move(node.mapped());
    revoked_at.emplace(h, t);
  }
  res.status = 200;
  res.set_content(Json{{"deleted_keys", passed}}.dump(), kJson);
}

void LiteLlmFake::State::block(const httplib::Request& req, httplib::Response& res, bool blocked) {
  Json body;
  if (!parseBody(req, res, body)) return;
  if (!body.contains("key") || !body["key"].is_string()) {
    validationError(res, "body", "key", "Field required", "missing");
    return;
  }
  const std::string key = body["key"].get<std::string>();
  const bool hash_like = key.size() == 64 && std::all_of(key.begin(), key.end(), [](char c) {
                           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                         });
  if (key.rfind("sk-", 0) != 0 && !hash_like) {
    proxyError(res, 400, "Invalid key format.", "bad_request_error", "key");
    return;
  }
  const std::string hash = hashIfNeeded(key);
  const auto it = keys.find(hash);
  if (it == keys.end()) {
    proxyError(res, 404, "Key " + key + " not found", "bad_request_error", "key");
    return;
  }
  const std::int64_t t = now();
  it->second.k.blocked = blocked;
  it->second.k.updated_at = t;
  if (blocked) {
    revoked_at.emplace(hash, t);
  } else {
    revoked_at.erase(hash);
  }
  res.status = 200;
  res.set_content(row(it->second, true).dump(), kJson);
}

void LiteLlmFake::State::info(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.get_param_value("key");
  const auto it = keys.find(hashIfNeeded(key));
  if (key.empty() || it == keys.end()) {
    proxyError(res, 404, "Key not found in database", "not_found_error", "key");
    return;
  }
  res.status = 200;
  res.set_content(Json{{"key", key}, {"info", row(it->second, false)}}.dump(), kJson);
}

void LiteLlmFake::State::list(const httplib::Request& req, httplib::Response& res) {
  auto intParam = [&](const char* name, long long fallback, long long min, long long max,
                      long long& out) {
    if (!req.has_param(name)) {
      out = fallback;
      return true;
    }
    const std::string v = req.get_param_value(name);
    long long n = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || p != v.data() + v.size()) {
      validationError(res, "query", name,
                      "Input should be a valid integer, unable to parse string as an integer",
                      "int_parsing");
      return false;
    }
    if (n < min) {
      validationError(res, "query", name,
                      "Input should be greater than or equal to " + std::to_string(min),
                      "greater_than_equal");
      return false;
    }
    if (n > max) {
      validationError(res, "query", name,
                      "Input should be less than or equal to " + std::to_string(max),
                      "less_than_equal");
      return false;
    }
    out = n;
    return true;
  };
  long long page = 1;
  long long size = 10;
  if (!intParam("page", 1, 1, 1'000'000'000, page) || !intParam("size", 10, 1, 100, size)) return;
  const std::string status = req.get_param_value("status");
  if (req.has_param("status") && status != "deleted") {
    proxyError(res, 400,
               "{'error': \"Invalid status value. Currently only 'deleted' is supported.\"}",
               "internal_server_error", "None");
    return;
  }
  const auto& table = status == "deleted" ? deleted : keys;
  const std::string user_id = req.get_param_value("user_id");
  const std::string team_id = req.get_param_value("team_id");
  const std::string alias = opt.honour_alias_filter ? req.get_param_value("key_alias") : "";
  const std::string key_hash = req.get_param_value("key_hash");
  const bool full =
      req.has_param("return_full_object") && truthy(req.get_param_value("return_full_object"));

  std::vector<const KeyRec*> matches;
  for (const auto& [hash, r] : table) {
    if (!user_id.empty() && r.k.user_id != user_id) continue;
    if (!team_id.empty() && r.k.team_id != team_id) continue;
    if (!alias.empty() && r.k.key_alias != alias) continue;
    if (!key_hash.empty() && hash != key_hash) continue;
    matches.push_back(&r);
  }
  std::sort(matches.begin(), matches.end(), [](const KeyRec* a, const KeyRec* b) {
    if (a->k.created_at != b->k.created_at) return a->k.created_at > b->k.created_at;
    return a->k.token > b->k.token;
  });
  const long long total = static_cast<long long>(matches.size());
  Json items = Json::array();
  const long long from = (page - 1) * size;
  for (long long i = from; i < total && i < from + size; ++i) {
    const KeyRec* r = matches[static_cast<std::size_t>(i)];
    if (full) {
      Json j = row(*r, true);
      j["api_key"] = Json();
      j["user_role"] = Json();
      items.push_back(std::move(j));
    } else {
      items.push_back(r->k.token);
    }
  }
  res.status = 200;
  res.set_content(Json{{"keys", items},
                       {"total_count", total},
                       {"current_page", page},
                       {"total_pages", (total + size - 1) / size}}
                      .dump(),
                  kJson);
}

void LiteLlmFake::State::chat(const httplib::Request& req, httplib::Response& res) {
  const std::string auth = req.get_header_value("Authorization");
  const std::string bearer = auth.compare(0, 7, "Bearer ") == 0 ? auth.substr(7) : auth;
  const std::int64_t t = now();
  auto ok = [&] {
    const Json body = Json::parse(req.body, nullptr, false);
    const std::string model =
        body.is_object() && body.contains("model") && body["model"].is_string()
            ? body["model"].get<std::string>()
            : "fake-model";
    res.status = 200;
    res.set_content(
        Json{{"id", "chatcmpl-fake"},
             {"object", "chat.completion"},
             {"created", t},
             {"model", model},
             {"choices", Json::array({{{"index", 0},
                                       {"message", {{"role", "assistant"}, {"content", "ok"}}},
                                       {"finish_reason", "stop"}}})}}
            .dump(),
        kJson);
  };
  if (!bearer.empty() && bearer == opt.master_key) return ok();
  const std::string hash = sha256Hex(bearer);
  const auto revoked = revoked_at.find(hash);
  const bool cached = revoked != revoked_at.end() && t < revoked->second + opt.cache_window;
  const auto it = keys.find(hash);
  if (it != keys.end()) {
    const FakeKey& k = it->second.k;
    if (k.blocked && !cached) {
      proxyError(
          res, 401,
          "Authentication Error - Key is blocked. Update via `/key/unblock` if you're admin.",
          "auth_error", "None");
      return;
    }
    if (k.expires && *k.expires <= t) {
      proxyError(res, 400,
                 "Authentication Error - Expired Key. Key Expiry time " + isoTime(*k.expires) +
                     " and current time " + isoTime(t),
                 "expired_key", "api_key");
      return;
    }
    return ok();
  }
  if (deleted.count(hash) != 0 && cached) return ok();
  proxyError(res, 401,
             "Authentication Error, Invalid proxy server token passed. Received API Key = " +
                 abbreviate(bearer) + ", Key Hash (Token) =" + hash +
                 ". Unable to find token in cache or `LiteLLM_VerificationTokenTable`",
             "auth_error", "None");
}

LiteLlmFake::LiteLlmFake(LiteLlmFakeOptions options) : state_(std::make_unique<State>()) {
  State* s = state_.get();
  s->opt = std::move(options);
  if (!s->opt.clock) {
    s->opt.clock = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  auto handler = [s, this](const httplib::Request& req, httplib::Response& res) {
    // Changes behind certgate's back run outside the lock (they call the public API).
    {
      std::function<void(LiteLlmFake&)> action;
      {
        std::lock_guard lock(s->mu);
        const int n = ++s->hook_counts[{req.method, req.path}];
        if (auto it = s->actions.find({req.method, req.path, n}); it != s->actions.end()) {
          action = std::move(it->second);
          s->actions.erase(it);
        }
      }
      if (action) action(*this);
    }

    std::lock_guard lock(s->mu);
    LoggedRequest entry;
    entry.method = req.method;
    entry.path = req.path;
    entry.target = req.target;
    entry.params.insert(req.params.begin(), req.params.end());
    entry.headers.assign(req.headers.begin(), req.headers.end());
    entry.body = req.body;
    entry.at = s->now();

    const int n = ++s->path_counts[{req.method, req.path}];
    bool failed = false;
    for (const auto& rule : s->fail_rules) {
      if (rule.method == req.method && rule.path == req.path && n >= rule.nth &&
          n < rule.nth + rule.count) {
        if (rule.retry_after >= 0) res.set_header("Retry-After", std::to_string(rule.retry_after));
        if (rule.status == 429) {
          proxyError(res, 429, "Rate limit exceeded (injected fault)", "throttling_error", "None");
        } else if (rule.status == 401) {
          proxyError(res, 401, "Authentication Error, Invalid proxy server token passed.",
                     "auth_error", "None");
        } else {
          proxyError(res, rule.status, "Internal Server Error (injected fault)",
                     "internal_server_error", "None");
        }
        failed = true;
        break;
      }
    }
    const bool management = req.path.rfind("/key/", 0) == 0;
    if (!failed) {
      if (management && !s->authorizeMaster(req, res)) {
        // answered 401
      } else if (req.method == "POST" && req.path == "/key/generate") {
        s->generate(req, res);
      } else if (req.method == "POST" && req.path == "/key/delete") {
        s->remove(req, res);
      } else if (req.method == "POST" && req.path == "/key/block") {
        s->block(req, res, true);
      } else if (req.method == "POST" && req.path == "/key/unblock") {
        s->block(req, res, false);
      } else if (req.method == "GET" && req.path == "/key/info") {
        s->info(req, res);
      } else if (req.method == "GET" && req.path == "/key/list") {
        s->list(req, res);
      } else if (req.method == "POST" &&
                 (req.path == "/chat/completions" || req.path == "/v1/chat/completions")) {
        s->chat(req, res);
      } else {
        res.status = 404;
        res.set_content(Json{{"detail", "Not Found"}}.dump(), kJson);
      }
    }

    bool drop = false;
    for (const auto& rule : s->drop_rules)
      if (rule.method == req.method && rule.path == req.path && n >= rule.nth &&
          n < rule.nth + rule.count)
        drop = true;
    entry.status = drop ? 0 : res.status;
    entry.response = drop ? std::string() : res.body;
    s->log.push_back(std::move(entry));
    if (drop) {
      // Headers go out, the body never does: the connection closes mid-response.
      const std::size_t length = std::max<std::size_t>(res.body.size(), 1);
      res.body.clear();
      res.set_content_provider(length, kJson,
                               [](std::size_t, std::size_t, httplib::DataSink&) { return false; });
    }
  };
  s->server.Get(".*", handler);
  s->server.Post(".*", handler);
  s->server.Put(".*", handler);
  s->server.Delete(".*", handler);
}

LiteLlmFake::~LiteLlmFake() {
  stop();
}

void LiteLlmFake::start() {
  State* s = state_.get();
  s->port = s->server.bind_to_any_port("127.0.0.1");
  if (s->port <= 0) throw std::runtime_error("litellm fake: cannot bind 127.0.0.1:0");
  s->base = "http://127.0.0.1:" + std::to_string(s->port);
  s->thread = std::thread([s] { s->server.listen_after_bind(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("litellm fake: server did not start");
    std::this_thread::yield();
  }
}

void LiteLlmFake::stop() {
  if (state_ && state_->thread.joinable()) {
    state_->server.stop();
    state_->thread.join();
  }
}

std::string LiteLlmFake::url() const {
  return state_->base;
}
const std::string& LiteLlmFake::masterKey() const {
  return state_->opt.master_key;
}

std::string LiteLlmFake::addKey(FakeKey key) {
  std::lock_guard lock(state_->mu);
  KeyRec r;
  r.k = std::move(key);
  if (r.k.token.empty()) {
    if (r.k.key.empty()) r.k.key = "sk-" + tokenUrlsafe16();
    r.k.token = sha256Hex(r.k.key);
  }
  r.key_name = r.k.key.empty() ? "sk-...????" : abbreviate(r.k.key);
  r.k.key.clear();
  const std::int64_t t = state_->now();
  if (r.k.created_at == 0) r.k.created_at = t;
  if (r.k.updated_at == 0) r.k.updated_at = r.k.created_at;
  const Json m = Json::parse(r.k.metadata_json, nullptr, false);
  r.metadata = m.is_object() ? m : Json::object();
  const std::string token = r.k.token;
  state_->keys[token] = std::move(r);
  return token;
}

std::optional<FakeKey> LiteLlmFake::key(const std::string& token) const {
  std::lock_guard lock(state_->mu);
  const auto it = state_->keys.find(token);
  if (it == state_->keys.end()) return std::nullopt;
  FakeKey k = it->second.k;
  k.metadata_json = it->second.metadata.dump();
  return k;
}

std::optional<FakeKey> LiteLlmFake::keyByAlias(const std::string& alias) const {
  std::lock_guard lock(state_->mu);
  const KeyRec* best = nullptr;
  for (const auto& [hash, r] : state_->keys) {
    if (r.k.key_alias != alias) continue;
    if (best == nullptr || r.k.created_at > best->k.created_at) best = &r;
  }
  if (best == nullptr) return std::nullopt;
  FakeKey k = best->k;
  k.metadata_json = best->metadata.dump();
  return k;
}

std::vector<FakeKey> LiteLlmFake::keys() const {
  std::lock_guard lock(state_->mu);
  std::vector<FakeKey> out;
  for (const auto& [hash, r] : state_->keys) {
    FakeKey k = r.k;
    k.metadata_json = r.metadata.dump();
    out.push_back(std::move(k));
  }
  return out;
}

std::size_t LiteLlmFake::keyCount() const {
  std::lock_guard lock(state_->mu);
  return state_->keys.size();
}

bool LiteLlmFake::deleted(const std::string& token) const {
  std::lock_guard lock(state_->mu);
  return state_->deleted.count(token) != 0;
}

void LiteLlmFake::removeKey(const std::string& token) {
  std::lock_guard lock(state_->mu);
  auto node = state_->keys.extract(token);
  if (node.empty()) return;
  const std::int64_t t = state_->now();
  node.mapped().deleted_at = t;
  state_->deleted[token] = std::move(node.mapped());
  state_->revoked_at.emplace(token, t);
}

void LiteLlmFake::setCacheWindow(std::int64_t seconds) {
  std::lock_guard lock(state_->mu);
  state_->opt.cache_window = seconds;
}

void LiteLlmFake::failRequests(const std::string& method, const std::string& path, int nth,
                               int count, int status, int retry_after) {
  std::lock_guard lock(state_->mu);
  state_->fail_rules.push_back({method, path, nth, count, status, retry_after});
}

void LiteLlmFake::dropResponses(const std::string& method, const std::string& path, int nth,
                                int count) {
  std::lock_guard lock(state_->mu);
  state_->drop_rules.push_back({method, path, nth, count});
}

void LiteLlmFake::onRequest(const std::string& method, const std::string& path, int nth,
                            std::function<void(LiteLlmFake&)> action) {
  std::lock_guard lock(state_->mu);
  state_->actions[{method, path, nth}] = std::move(action);
}

std::vector<LoggedRequest> LiteLlmFake::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->log;
}

std::vector<LoggedRequest> LiteLlmFake::requests(const std::string& method,
                                                 const std::string& path) const {
  std::lock_guard lock(state_->mu);
  std::vector<LoggedRequest> out;
  for (const auto& r : state_->log)
    if (r.method == method && r.path == path) out.push_back(r);
  return out;
}

void LiteLlmFake::clearRequests() {
  std::lock_guard lock(state_->mu);
  state_->log.clear();
}

}  // namespace certgate::testing::litellm
