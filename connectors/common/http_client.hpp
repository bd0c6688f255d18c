#pragma once
// certgate's shared HTTP client on libcurl, used by every directory, gateway and LMS connector.
//
// Contract:
// - Constructors do no I/O. Client::send performs exactly one HTTP exchange; sendWithRetry
//   performs up to RetryPolicy::max_attempts, sleeping through the injected sleeper between them.
// - Any HTTP status is a Response value; only transport failures are Errors (classified:
//   cannot connect / timeout / connection reset -> Transient, TLS certificate failure ->
//   Permanent, malformed URL or unreadable CA file -> Invalid). Use classify() to turn a
//   status into an Error class.
// - TLS peer and host verification are always on; there is deliberately no option to disable
//   them. A custom CA bundle may be given (ca_file).
// - Every error message and `where` the client produces passes through the Redactor, so URLs
//   with access_token=... or known secret values never leak into logs or run records.
// - Thread-safety: a Client keeps one curl easy handle (so TCP/TLS connections are reused) and
//   serialises calls on it with a mutex. Use one Client per worker thread for parallelism.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/common/redact.hpp"
#include "core/result.hpp"

namespace certgate::connectors::http {

using Millis = std::chrono::milliseconds;

enum class Method { Get, Head, Post, Put, Patch, Delete };
const char* toString(Method method);

// GET, HEAD, PUT and DELETE are idempotent by definition (RFC 9110 9.2.2).
bool isIdempotent(Method method);

// Ordered header list with case-insensitive name lookup. Names keep their original spelling.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> entries);

  void add(std::string name, std::string value);
  // Replaces every header of that name with one value.
  void set(std::string name, std::string value);
  bool has(std::string_view name) const;
  // First value of that name.
  std::optional<std::string> get(std::string_view name) const;
  std::vector<std::string> getAll(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

struct Request {
  Method method = Method::Get;
  std::string url;
  Headers headers;
  std::string body;
  std::optional<Millis> connect_timeout;  // overrides ClientOptions::connect_timeout
  std::optional<Millis> total_timeout;    // overrides ClientOptions::total_timeout
  // Set when a non-idempotent method (POST, PATCH) is safe to repeat, e.g. it carries an
  // idempotency key. Only then does sendWithRetry retry it.
  bool idempotent = false;
  // Streaming: when on_body is set, the body of a 2xx answer is handed to it piece by piece
  // instead of being kept in Response::body (which then stays empty), and max_response_bytes
  // does not apply to it; on_body returning false aborts the exchange (a Permanent error).
  // Bodies of other statuses are kept as usual. on_body_start, when set, is called before each
  // exchange, so a consumer starts over when sendWithRetry repeats the request.
  std::function<bool(std::string_view)> on_body{};
  std::function<void()> on_body_start{};
};

struct Response {
  long status = 0;
  Headers headers;  // of the final response (after redirects, without 1xx)
  std::string body;
};

// Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate,
// RFC 850 or asctime). A date in the past gives 0. nullopt when absent or unparseable.
std::optional<long> parseRetryAfter(std::string_view value, std::int64_t now_unix_s);

// Maps an HTTP status to an error class; 1xx-3xx are ok.
//   401, 403 -> Auth; 404, 410 -> NotFound; 409, 412 -> Conflict; 400, 422 -> Invalid;
//   429 -> RateLimited (retry_after_s from Retry-After); 408, 5xx -> Transient (retry_after_s
//   set when the server sent Retry-After); any other 4xx -> Permanent.
// The message names the status and `what` (e.g. "GET https://..."), redacted by the caller's
// redactor when one is given.
core::Status classify(const Response& response, std::string_view what = {},
                      std::int64_t now_unix_s = -1, const Redactor* redactor = nullptr);

// Class of a libcurl error code (CURLcode as int), exposed for tests and diagnostics.
core::ErrorKind transportErrorKind(int curl_code);

struct RetryPolicy {
  int max_attempts = 4;                 // total attempts including the first
  Millis base_delay{500};               // backoff cap for the first retry: base * 2^(n-1)
  Millis max_delay{30'000};             // backoff cap
  Millis max_retry_after{120'000};      // a longer Retry-After is clamped to this
};

struct ClientOptions {
  Millis connect_timeout{10'000};       // DNS + TCP + TLS handshake
  Millis total_timeout{60'000};         // the whole exchange
  long low_speed_limit_bytes = 1;       // abort when slower than this ...
  std::chrono::seconds low_speed_time{30};  // ... for this long
  std::string ca_file;                  // PEM bundle replacing the system CAs when set
  long max_redirects = 0;               // 0: 3xx are returned, never followed
  std::size_t max_response_bytes = 64u * 1024u * 1024u;  // larger bodies fail (Permanent)
  std::string user_agent;               // default "certgate/<version>"
  std::shared_ptr<const Redactor> redactor;  // default: pattern-only redaction

  // Injection seams for sendWithRetry; defaults really sleep / use a random device / the clock.
  std::function<void(Millis)> sleep;
  std::function<double()> random01;     // uniform in [0, 1)
  std::function<std::int64_t()> now_unix_s;
  // Called before every exchange, retries and token requests included: a client-side rate
  // limiter waits here (RateLimiter::acquire).
  std::function<void()> before_send{};
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One exchange. Any HTTP status is a value; transport failures are classified Errors.
  core::Result<Response> send(const Request& request);

  // Up to policy.max_attempts exchanges. Retries Transient (transport or 408/5xx) and
  // RateLimited (429) outcomes with full-jitter exponential backoff, or the server's
  // Retry-After (clamped to max_retry_after) when it sent one; never retries other classes;
  // retries only idempotent requests (isIdempotent(method) or request.idempotent).
  // Returns the last Response (check it with classify) or the last transport Error.
  core::Result<Response> sendWithRetry(const Request& request, const RetryPolicy& policy);

  const ClientOptions& options() const { return options_; }
  std::string redact(std::string_view text) const;

 private:
  struct Impl;
  ClientOptions options_;
  std::mutex mutex_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace certgate::connectors::http
