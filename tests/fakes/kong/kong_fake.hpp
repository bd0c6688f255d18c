#pragma once
// A loopback fake of the Kong Gateway Admin API (consumers, key-auth credentials, ACL groups)
// and of a Kong proxy node that authenticates with key-auth and authorises with the ACL plugin,
// for the `kong` gateway connector's tests.
//
// It follows /work/shared/reference/gateway-alerts.md section 2 ("Kong Gateway: consumers,
// key-auth, ACL") and the Kong sources and documents cited there:
//   https://github.com/Kong/kong/blob/master/kong/plugins/key-auth/daos.lua
//       keyauth_credentials: ttl = true, key unique (generated when omitted), tags, consumer
//       required with on_delete = cascade; admin_api_name "key-auths", nested name "key-auth"
//   https://github.com/Kong/kong/blob/master/kong/plugins/key-auth/api.lua
//       /consumers/{c}/key-auth (GET, POST), /consumers/{c}/key-auth/{id or key} (GET, DELETE:
//       404 when the consumer or the credential is missing or belongs to another consumer),
//       /key-auths (GET), /key-auths/{id or key}/consumer (GET)
//   https://github.com/Kong/kong/blob/master/kong/plugins/acl/daos.lua and acl/api.lua
//       acls: group required, cache_key {consumer, group} (a second equal group is a unique
//       violation); /consumers/{c}/acls/{id or group}
//   https://github.com/Kong/kong/blob/master/kong/api/endpoints.lua
//       201 on create, 204 on delete, {"message": "Not found"} on 404, pages of
//       {"data", "offset", "next"} with size 1..1000 (default 100), `next` a path that repeats
//       `tags` on top-level collections but not `size`; nested collections ignore `tags`
//       (kong/db/strategies/postgres/init.lua pages by foreign key before tags)
//   https://github.com/Kong/kong/blob/master/kong/db/errors.lua and kong/db/dao/init.lua
//       error bodies {"code", "name", "message", "fields"} (invalid options carry "options"):
//       code 2 schema violation (400), 5 unique constraint violation (409), 7 invalid offset,
//       9 invalid size, 11 invalid options (400): ttl an integer 0..100000000, at most 5 tags
//       in a filter, filter tags only of alphanumerics and . - _ ~, "," (and) and "/" (or)
//       not mixed; offsets are unpadded base64 of a JSON array of the last primary key
//   https://developer.konghq.com/gateway/tags (tags: printable, no "," or "/")
//   kong.conf.default: db_update_frequency = 5 (a node purges a deleted credential from its
//       cache at its next poll); the key-auth handler caches a credential under its key with
//       the credential's ttl as the cache ttl
//   Kong Gateway Enterprise RBAC: the Admin API token travels in the Kong-Admin-Token header
//       (https://developer.konghq.com/how-to/enable-rbac-with-admin-api). The 401 text below is
//       the fake's own [unconfirmed].
// Primary keys are UUID-shaped and issued in increasing order, so pages follow creation order
// (Kong orders by a random UUID).
//
// The proxy node: any request whose path starts with KongFakeOptions::proxy_prefix is treated
// as traffic through a Kong route with key-auth (key_names = apikey, header or query) and,
// when `proxy_acl_allow` is set, the ACL plugin with config.allow. The node caches every key it
// has accepted; a credential deleted (or an ACL group removed) through the Admin API reaches
// that cache only `cache_window` seconds later, so a revoked key that was in use keeps working
// until then. 401 {"message": "Unauthorized"} with WWW-Authenticate for an unknown key, 403
// {"message": "You cannot consume this service"} for a consumer outside the allowed groups.
//
// The fake keeps its own injectable clock (credential ttl, the proxy's cache window) and answers
// from one mutex-guarded state, listening on 127.0.0.1 and a kernel-chosen port.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::kong {

struct KongFakeOptions {
  std::function<std::int64_t()> clock;    // unix seconds; default: the system clock
  std::string admin_token;                // when set, every Admin API request must carry it
  std::string admin_token_header = "Kong-Admin-Token";
  std::int64_t cache_window = 5;          // the proxy node's db_update_frequency
  std::string proxy_prefix = "/_proxy";   // paths handled as proxied traffic
  std::vector<std::string> proxy_acl_allow;  // ACL plugin config.allow; empty: no ACL plugin
  std::string version = "3.9.1";          // reported by GET /
  bool record_requests = true;
};

struct FakeConsumer {
  std::string id;
  std::string username;
  std::string custom_id;
  std::vector<std::string> tags;
};

struct FakeCredential {
  std::string id;
  std::string consumer_id;
  std::string key;
  std::vector<std::string> tags;
  std::int64_t created_at = 0;
  std::int64_t expires_at = 0;  // 0: no ttl
};

struct FakeAcl {
  std::string id;
  std::string consumer_id;
  std::string group;
  std::vector<std::string> tags;
};

// One request as the fake received it.
struct LoggedRequest {
  std::string method;
  std::string path;    // decoded path
  std::string target;  // path and raw query as sent
  std::vector<std::pair<std::string, std::string>> params;  // decoded query parameters
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;
  bool dropped = false;   // the response was cut off (fault injection)
  std::int64_t at = 0;    // the fake's clock when it answered

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" if none
  std::string param(std::string_view name) const;   // first value; "" if none
};

// What the proxy node answered.
struct ProxyAnswer {
  int status = 0;
  std::string consumer_username;     // on 200
  std::vector<std::string> groups;   // on 200: the consumer's ACL groups as the node sees them
};

class KongFake {
 public:
  explicit KongFake(KongFakeOptions options = {});
  ~KongFake();
  KongFake(const KongFake&) = delete;
  KongFake& operator=(const KongFake&) = delete;

  void start();
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT (the Admin API root and the proxy)

  // ---- state (as an administrator would see it through the Admin API) ----
  std::string addConsumer(FakeConsumer consumer);  // returns the id
  // A credential for the consumer (id or username); key generated when empty; ttl 0: none.
  std::string addCredential(const std::string& consumer, std::string key,
                            std::vector<std::string> tags, std::int64_t ttl = 0);
  std::string addAcl(const std::string& consumer, const std::string& group,
                     std::vector<std::string> tags = {});
  // Deletes the consumer (id or username) with its credentials and ACL groups, as
  // DELETE /consumers/{c} does.
  void removeConsumer(const std::string& consumer);
  std::vector<FakeConsumer> consumers() const;
  // Live (unexpired) credentials of the consumer (id or username), or of all when empty.
  std::vector<FakeCredential> credentials(const std::string& consumer = {}) const;
  std::vector<FakeAcl> acls(const std::string& consumer = {}) const;  // groups of the consumer

  // ---- the proxy node ----
  // A request through Kong with `apikey: key` (also available as any request under
  // proxy_prefix with the apikey header).
  ProxyAnswer proxy(const std::string& key);

  // ---- faults ----
  // The next `count` Admin API requests with this method whose path matches `path_regex`
  // (ECMAScript, whole path) answer `status` with `body`, or with Kong's error body for that
  // status when `body` is empty: a 409 on a request that carries a "key" is Kong's unique
  // violation on that key. A 429 carries Retry-After: retry_after when it is >= 0.
  void failNext(const std::string& method, const std::string& path_regex, int count, int status,
                int retry_after = -1, std::string body = {});
  // The next `count` credential creations (POST /consumers/{c}/key-auth) are stored, but the
  // response is cut off after its headers, as if the connection broke after Kong committed.
  void dropCreateResponses(int count);
  void setAdminToken(std::string token, std::string header = "Kong-Admin-Token");

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;
  void clearRequests();
  std::uint64_t requestCount() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::kong
