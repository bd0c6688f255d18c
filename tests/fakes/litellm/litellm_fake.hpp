#pragma once
// A loopback fake of a LiteLLM proxy's virtual-key management API, for connector tests. It
// follows ../shared/reference/gateway-alerts.md section 1 ("LiteLLM proxy virtual keys") and
// the documents cited there:
//  - https://docs.litellm.ai/docs/proxy/virtual_keys
//    (https://github.com/BerriAI/litellm/blob/main/docs/my-website/docs/proxy/virtual_keys.md):
//    the master key starts with sk- and is sent as `Authorization: Bearer <master key>`; a key
//    is shown once ("sk-" + 22 URL-safe characters) and stored as the hex SHA-256 of the key;
//  - litellm/proxy/management_endpoints/key_management_endpoints.py (the endpoint docstrings
//    and handlers):
//    POST /key/generate (key_alias, duration "<n>s|m|h|d|w", models, max_budget,
//      budget_duration, metadata, user_id, team_id, blocked, key; answers key, key_name
//      "sk-...abcd", token and token_id = the hash, expires, the echoed fields; an alias already
//      on another key is refused: 400 "Key with alias '<a>' already exists. Unique key aliases
//      across all keys are required.", type bad_request_error, param key_alias);
//    POST /key/delete ({"keys": [key or hash]} or {"key_aliases": [...]}; answers
//      {"deleted_keys": [as passed]}; none found: 404 with message "{'error': 'No keys found'}");
//    POST /key/block and /key/unblock ({"key": key or hash}; answer the key's row; an unknown
//      key: 404 "Key <key> not found" as with audit logs on; a malformed one: 400 "Invalid key
//      format.");
//    GET /key/info?key= (key or hash; {"key": ..., "info": {row without token}}; unknown: 404
//      "Key not found in database", type not_found_error, param key);
//    GET /key/list (page >= 1, size 1..100 else 422; user_id, team_id, key_alias, key_hash
//      exact filters; return_full_object; status=deleted lists deleted keys with deleted_at;
//      newest first by created_at then token; {keys, total_count, current_page, total_pages});
//  - errors as LiteLLM's ProxyException handler writes them:
//    {"error": {"message", "type", "param", "code": "<status as text>"}}; a wrong or missing
//    master key: 401 "Authentication Error, Invalid proxy server token passed. ..." (type
//    auth_error); malformed bodies and query values: 422 {"detail": [{loc, msg, type}]}.
//  - caching: each proxy instance caches keys in memory for 60 s
//    (UserAPIKeyCacheTTLEnum.in_memory_cache_ttl; issues #9820, #2149), so another instance may
//    accept a deleted or blocked key until the entry expires. POST /chat/completions (and
//    /v1/chat/completions) simulates such an instance: a revoked key is accepted until
//    revoked_at + cache_window, then refused with 401; a blocked key with 401 "Key is blocked";
//    an expired key with 400 type expired_key.
//
// The fake keeps its own clock (injectable, shared with the connector in tests) and answers
// from one mutex-guarded state in its own thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::litellm {

struct LiteLlmFakeOptions {
  std::function<std::int64_t()> clock;  // unix seconds; default: the system clock
  std::int64_t clock_skew = 0;          // added to the clock for everything the proxy dates
  std::string master_key = "sk-certgate-fake-master-0001";
  std::int64_t cache_window = 60;   // seconds a revoked key stays usable on /chat/completions
  bool unique_aliases = true;       // false: like proxies before the alias check existed
  bool honour_alias_filter = true;  // false: /key/list ignores key_alias (older proxies)
};

// A key as the fake stores it.
struct FakeKey {
  std::string token;  // the hash; computed from `key` when seeding with a key
  std::string key;    // only when seeding (the fake forgets generated keys)
  std::string key_alias;
  std::optional<std::int64_t> expires;  // unix seconds (fake clock)
  std::vector<std::string> models;
  std::optional<double> max_budget;
  std::string budget_duration;
  std::string user_id;
  std::string team_id;
  std::string metadata_json = "{}";
  bool blocked = false;
  std::int64_t created_at = 0;  // 0: now
  std::int64_t updated_at = 0;
};

// One request as the fake received it.
struct LoggedRequest {
  std::string method;
  std::string path;
  std::string target;                              // path and raw query as sent
  std::multimap<std::string, std::string> params;  // decoded query parameters
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;        // 0 when the answer was dropped
  std::string response;  // the body sent ("" when dropped)
  std::int64_t at = 0;

  std::string header(std::string_view name) const;   // first value, case-insensitive; "" if none
  std::string param(const std::string& name) const;  // first value; "" if none
};

class LiteLlmFake {
 public:
  explicit LiteLlmFake(LiteLlmFakeOptions options = {});
  ~LiteLlmFake();
  LiteLlmFake(const LiteLlmFake&) = delete;
  LiteLlmFake& operator=(const LiteLlmFake&) = delete;

  // Listens on 127.0.0.1 and a kernel-chosen port, in the fake's own thread.
  void start();
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT
  const std::string& masterKey() const;

  // ---- state ----
  std::string addKey(FakeKey key);  // returns the hash
  std::optional<FakeKey> key(const std::string& token) const;
  std::optional<FakeKey> keyByAlias(const std::string& alias) const;  // newest
  std::vector<FakeKey> keys() const;  // live (not deleted) keys, any state
  std::size_t keyCount() const;
  bool deleted(const std::string& token) const;
  void removeKey(const std::string& token);  // as POST /key/delete would
  void setCacheWindow(std::int64_t seconds);

  // ---- faults ----
  // Requests `nth` .. `nth + count - 1` (1-based, counted per method and path) answer `status`
  // with a LiteLLM error body (and Retry-After when retry_after >= 0), without being processed.
  void failRequests(const std::string& method, const std::string& path, int nth, int count,
                    int status, int retry_after = -1);
  // Requests `nth` .. `nth + count - 1` are processed, then the answer is dropped mid-response
  // (the client sees a truncated body): a crash between mint and answer.
  void dropResponses(const std::string& method, const std::string& path, int nth, int count);
  // Runs `action` (e.g. keys created or deleted behind certgate's back) just before request
  // `nth` (1-based, per method and path) is processed.
  void onRequest(const std::string& method, const std::string& path, int nth,
                 std::function<void(LiteLlmFake&)> action);

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;
  std::vector<LoggedRequest> requests(const std::string& method, const std::string& path) const;
  void clearRequests();

  // The hash LiteLLM stores for a key.
  static std::string hashOf(std::string_view key);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::litellm
