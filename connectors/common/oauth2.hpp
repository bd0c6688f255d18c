#pragma once
// OAuth 2.0 client-credentials grant (RFC 6749 section 4.4), or the refresh-token grant (section
// 6) for clients that only have that, with a cached access token, shared by the SCIM, Graph and
// Okta connectors and the API-based LMS sources.
//
// Client authentication, one of:
//  - client_secret_post: client_id and client_secret in the form body (Microsoft identity
//    platform's documented form);
//  - client_secret_basic: HTTP Basic with the form-url-encoded id and secret (RFC 6749 2.3.1);
//  - private_key_jwt: a signed client assertion (RFC 7523 section 2.2) supplied by
//    `client_assertion` (Okta service apps), sent as client_assertion_type
//    urn:ietf:params:oauth:client-assertion-type:jwt-bearer;
//  - json_body: a JSON body {"clientId", "clientSecret", "grantType": "client_credentials",
//    "scope"} (Cornerstone OnDemand's token endpoint, POST /services/api/oauth2/token, as its
//    API samples send it).
//
// The token is cached until `refresh_margin` before its expires_in (the margin is capped at half
// the lifetime, so a short-lived token is still reused); invalidate() drops it (after a 401, so
// the next call fetches a new one). A private_key_jwt request that is retried (5xx, 429) carries
// a freshly signed assertion each time, because servers reject a replayed assertion (jti).
// Error answers (RFC 6749 section 5.2: error, error_description) become Auth errors naming the
// token endpoint and the error code; the token itself never appears in an error, and it is
// registered with the client's redactor. An empty access_token is an error.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"

namespace certgate::connectors::oauth2 {

enum class ClientAuth { SecretPost, SecretBasic, PrivateKeyJwt, JsonBody };

struct ClientCredentialsConfig {
  std::string token_url;
  std::string client_id;
  std::string client_secret;  // SecretPost / SecretBasic
  std::string scope;          // space-separated; "" = none sent
  // When set, the grant is refresh_token (RFC 6749 section 6) with this token instead of
  // client_credentials: Workday's API clients for integrations hand out a non-expiring refresh
  // token and no client-credentials grant. The refresh token is a secret like client_secret.
  std::string refresh_token;
  ClientAuth auth = ClientAuth::SecretPost;
  // PrivateKeyJwt: returns a fresh signed assertion (audience = token_url).
  std::function<core::Result<std::string>()> client_assertion;
  std::chrono::seconds refresh_margin{60};
  std::string where;  // connector name, for error messages
};

class TokenSource {
 public:
  // `client` and `redactor` (may be null) must outlive the TokenSource. `now_unix_s` defaults to
  // the system clock.
  TokenSource(http::Client& client, ClientCredentialsConfig config,
              std::shared_ptr<http::Redactor> redactor = nullptr,
              std::function<std::int64_t()> now_unix_s = {});

  // A valid access token, fetching one when none is cached or it is about to expire.
  core::Result<std::string> token();
  // Forget the cached token (the resource server refused it).
  void invalidate();
  // Token requests made so far.
  std::uint64_t fetches() const { return fetches_.load(); }

 private:
  core::Result<http::Response> post(const std::string& where);

  http::Client& client_;
  ClientCredentialsConfig config_;
  std::shared_ptr<http::Redactor> redactor_;
  std::function<std::int64_t()> now_;
  std::mutex mutex_;
  std::string token_;
  std::int64_t refresh_at_ = 0;  // unix seconds from which token_ is no longer handed out
  std::atomic<std::uint64_t> fetches_{0};
};

// application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B).
std::string formEncode(const std::string& value);

}  // namespace certgate::connectors::oauth2
