#pragma once
// A loopback fake of a hosted gateway token API, for the `rest` gateway's tests. It follows the
// shape of the hosted `/v1/tokens` APIs in ../shared/reference/gateway-alerts.md section 3
// (Keeptrusts: `POST /v1/tokens` and `GET /v1/tokens`, a token name, a gateway binding,
// scopes, an expiry, the secret shown once; Portkey: `{id, key}` answers). It is not any one
// vendor's API: the `rest` connector knows nothing of it and is configured for it only through
// its options (paths, body template, JSON pointers), as an operator would for a real service.
//
//   Authorization: Bearer <admin token> on every request; otherwise
//     401 {"error": {"code": "unauthorized", "message": "..."}}.
//   POST /v1/tokens {"gateway_id": str (required), "name": str (required), "scopes": [str],
//     "expires_at": ISO 8601 (optional, in the future), "metadata": {str: str}}
//     -> 201 {"id": "tok_<hex>", "token": "gk_<random>" (shown once), "name", "gateway_id",
//        "scopes", "expires_at" (ISO 8601 or null), "created_at", "active": true, "metadata"}
//     400 {"error": {"code": "invalid_request", "message"}} for a missing or malformed field;
//     409 {"error": {"code": "conflict", ...}} when an unrevoked token has that name.
//   GET /v1/tokens?name=&gateway_id=&cursor=&limit= -> 200 {"items": [token without secret],
//     "next_cursor": str or null}, oldest first; `name` and `gateway_id` are exact filters;
//     `limit` 1..100 (default page_size); an unknown cursor is a 400. With link_header, the
//     next page's URL also comes in a Link header.
//   GET /v1/tokens/{id} -> 200 token, 404 {"error": {"code": "not_found", ...}}.
//   DELETE /v1/tokens/{id} -> 204; 404 when unknown or already revoked (revoked tokens are
//     gone from the API).
//   `active` is false once expires_at has passed (or when seeded so).
//
// Faults: an answer replaced by a status and body (500, 429 with Retry-After, anything) without
// processing the request; an answer dropped after processing (a token minted, the client sees a
// truncated response). The fake keeps an injectable clock and logs every request.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::token_api {

struct TokenApiFakeOptions {
  std::function<std::int64_t()> clock;  // unix seconds; default: the system clock
  std::string admin_token = "adm_fake_token_api_0001";
  int page_size = 50;                   // default `limit`
  bool honour_name_filter = true;       // false: ?name= is ignored
  // true: the next page is also announced as `Link: <absolute URL>; rel="next"` (RFC 8288).
  bool link_header = false;
};

struct FakeToken {
  std::string id;      // "tok_..." assigned when empty
  std::string secret;  // only when seeding; the fake keeps only the digest
  std::string name;
  std::string gateway_id;
  std::vector<std::string> scopes;
  std::optional<std::int64_t> expires_at;  // unix seconds
  std::map<std::string, std::string> metadata;
  bool disabled = false;  // listed with "active": false
  std::int64_t created_at = 0;
};

struct LoggedRequest {
  std::string method;
  std::string path;
  std::string target;  // path and raw query as sent
  std::multimap<std::string, std::string> params;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;  // 0 when the answer was dropped

  std::string header(std::string_view name) const;   // first value, case-insensitive; "" if none
  std::string param(const std::string& name) const;  // first value; "" if none
};

class TokenApiFake {
 public:
  explicit TokenApiFake(TokenApiFakeOptions options = {});
  ~TokenApiFake();
  TokenApiFake(const TokenApiFake&) = delete;
  TokenApiFake& operator=(const TokenApiFake&) = delete;

  // Listens on 127.0.0.1 and a kernel-chosen port, in the fake's own thread.
  void start();
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT
  const std::string& adminToken() const;

  // ---- state ----
  std::string addToken(FakeToken token);  // returns the id
  std::optional<FakeToken> token(const std::string& id) const;  // live tokens only
  std::vector<FakeToken> tokens() const;                        // live tokens, oldest first
  bool revoked(const std::string& id) const;
  void revoke(const std::string& id);  // as DELETE would

  // ---- faults (requests counted per method and path; a path ending in '*' is a prefix) ----
  // Requests nth .. nth + count - 1 answer `status` with `body` (an error body when empty) and
  // Retry-After when retry_after >= 0, without being processed.
  void failRequests(const std::string& method, const std::string& path, int nth, int count,
                    int status, int retry_after = -1, std::string body = {});
  // Requests nth .. nth + count - 1 are processed, then the answer is dropped mid-response.
  void dropResponses(const std::string& method, const std::string& path, int nth, int count);

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;
  std::vector<LoggedRequest> requests(const std::string& method, const std::string& path) const;
  void clearRequests();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::token_api
