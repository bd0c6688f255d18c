#pragma once
// A loopback fake of the Okta Management API and the org authorization server's token endpoint,
// for connector tests and benchmarks. It follows the documents summarised in
// ../shared/reference/idp.md section 1 ("Okta Management API"):
//  - groups and membership: https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/
//    (GET /api/v1/groups, /api/v1/groups/{groupId}, /api/v1/groups/{groupId}/users;
//    PUT and DELETE /api/v1/groups/{groupId}/users/{userId} answer 204 -- also for a user who
//    already is, or is not, a member, which the documents do not spell out; only OKTA_GROUP
//    memberships can be changed, others answer 403 E0000006; an unknown group or user answers
//    404 E0000007 "Not found: Resource not found: {id} (UserGroup|User)");
//  - users: GET /api/v1/users (search, filter, q, after, limit) and /api/v1/users/{idOrLogin};
//  - paging, search syntax, errors and SSWS tokens: https://developer.okta.com/docs/reference/core-okta-api/
//    (Link headers rel="self" and rel="next" with an opaque `after` cursor; no next link on the
//    last page; error body errorCode/errorSummary/errorLink/errorId/errorCauses; search string
//    values compare case-insensitively);
//  - rate limits: https://developer.okta.com/docs/reference/rl2-monitor/ and
//    https://developer.okta.com/docs/reference/rate-limits/ (X-Rate-Limit-Limit, -Remaining,
//    -Reset in UTC epoch seconds; one-minute windows per bucket; 429 with errorCode E0000047);
//  - OAuth 2.0 service apps: https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/
//    (POST /oauth2/v1/token, client_credentials with a private_key_jwt client assertion:
//    iss = sub = client_id, aud = the token endpoint, exp at most one hour ahead; RFC 6749 5.2
//    error bodies; access tokens live 3600 s).
//
// The fake keeps its own clock (injectable, so tests share one virtual clock with the connector)
// and answers from one mutex-guarded state; it is meant to sustain benchmark volumes (100k
// membership changes) with request recording switched off.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::okta {

struct FakeUser {
  std::string id;  // assigned ("00u" + 17 characters, in creation order) when empty
  std::string status = "ACTIVE";
  std::string login;
  std::string email;
  std::string first_name;
  std::string last_name;
  std::string employee_number;
  std::string user_type;
  std::vector<std::pair<std::string, std::string>> extra;  // further profile attributes
};

struct FakeGroup {
  std::string id;  // assigned ("00g" + 17 characters) when empty
  std::string name;
  std::string type = "OKTA_GROUP";  // OKTA_GROUP | APP_GROUP | BUILT_IN
  std::string description;
};

// One request as the fake received it.
struct LoggedRequest {
  std::string method;
  std::string path;
  std::string target;  // path and raw query as sent
  std::multimap<std::string, std::string> params;  // decoded query (and form) parameters
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;
  std::string bucket;               // rate-limit bucket charged ("" when none)
  long long remaining = -1;         // X-Rate-Limit-Remaining sent (-1 when none)
  std::int64_t at = 0;              // the fake's clock when it answered

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" if none
  std::string param(const std::string& name) const;  // first value; "" if none
};

struct OktaFakeOptions {
  std::function<std::int64_t()> clock;  // unix seconds; default: the system clock
  std::int64_t clock_skew = 0;          // added to the clock in Date and X-Rate-Limit-Reset
  std::string client_id = "0oacertgatefake00000";
  std::string public_key_pem;           // verifies client assertions; empty: no OAuth
  std::string key_id;                   // when set, an assertion's kid must match
  std::vector<std::string> granted_scopes = {"okta.groups.manage", "okta.users.read"};
  std::string ssws_token;               // the one accepted API token; empty: no SSWS
  std::int64_t access_token_lifetime = 3600;
  bool require_dpop = false;            // the app setting Okta turns on for new service apps
  long long default_rate_limit = 600;   // per bucket and window; 0: no limits, no headers
  std::int64_t window_seconds = 60;
  bool record_requests = true;          // off for benchmarks (counters still run)
  std::string link_base;                // origin written into Link headers; default url()
};

// Rate-limit buckets, named as in Okta's table of management limits.
inline constexpr std::string_view kBucketGroups = "/api/v1/groups";                 // list/search
inline constexpr std::string_view kBucketGroup = "/api/v1/groups/{id}";             // get group
inline constexpr std::string_view kBucketMembers = "/api/v1/groups/{id}/users";     // list/put/delete
inline constexpr std::string_view kBucketUsers = "/api/v1/users";                   // list/search
inline constexpr std::string_view kBucketUser = "/api/v1/users/{idOrLogin}";        // get user
inline constexpr std::string_view kBucketToken = "/oauth2/v1/token";

class OktaFake {
 public:
  explicit OktaFake(OktaFakeOptions options = {});
  ~OktaFake();
  OktaFake(const OktaFake&) = delete;
  OktaFake& operator=(const OktaFake&) = delete;

  // Listens on 127.0.0.1 and a kernel-chosen port, in the fake's own threads.
  void start();
  void stop();
  std::string url() const;       // http://127.0.0.1:PORT (the org URL)
  std::string tokenUrl() const;  // url() + "/oauth2/v1/token"

  // ---- state ----
  std::string addUser(FakeUser user);     // returns the id
  std::string addGroup(FakeGroup group);  // returns the id
  void addMember(const std::string& group_id, const std::string& user_id);
  bool isMember(const std::string& group_id, const std::string& user_id) const;
  std::vector<std::string> members(const std::string& group_id) const;  // in id order
  std::size_t memberCount(const std::string& group_id) const;

  // Registers the service app's public key (replaces OktaFakeOptions::public_key_pem).
  void setPublicKey(std::string pem);

  // ---- rate limits ----
  void setRateLimit(std::string_view bucket, long long limit);  // 0: unlimited, no headers
  // Spends `calls` of the current window as another client of the org would.
  void consume(std::string_view bucket, long long calls);
  // Lowest X-Rate-Limit-Remaining the fake has sent for the bucket (-1: none sent).
  long long minRemaining(std::string_view bucket) const;
  long long rateLimitedCount() const;  // 429 answers sent

  // ---- faults ----
  // Requests `nth` .. `nth + count - 1` (1-based) with this method and exact path answer `status`
  // with an Okta error body.
  void failRequests(const std::string& method, const std::string& path, int nth, int count,
                    int status);
  void setAlways401(bool on);  // every API request answers 401 E0000011
  void revokeTokens();         // every access token issued so far becomes invalid

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;
  void clearRequests();
  std::uint64_t requestCount() const;  // every request, recorded or not
  std::uint64_t tokensIssued() const;
  std::vector<std::string> acceptedAssertionClaims() const;  // JSON claims, in order

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A fresh RSA key pair as PEM text (PKCS#8 private key, SubjectPublicKeyInfo public key).
struct RsaKeyPair {
  std::string private_pem;
  std::string public_pem;
};
RsaKeyPair generateRsaKeyPair(int bits = 2048);

}  // namespace certgate::testing::okta
