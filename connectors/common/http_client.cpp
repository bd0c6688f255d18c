#include "connectors/common/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <random>
#include <thread>

#ifndef CERTGATE_VERSION
#define CERTGATE_VERSION "0.0.0"
#endif

namespace certgate::connectors::http {
namespace {

using core::ErrorKind;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::int64_t systemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// curl_global_init is not guaranteed thread-safe on every build: run it exactly once, before
// the first easy handle exists.
CURLcode globalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return rc;
}

struct Sink {
  Headers headers;
  std::string body;
  std::size_t max_body = 0;
  bool too_large = false;
  CURL* easy = nullptr;
  const std::function<bool(std::string_view)>* stream = nullptr;
  bool stream_refused = false;
};

std::size_t onBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t n = size * count;
  if (sink->stream != nullptr) {
    long status = 0;
    curl_easy_getinfo(sink->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      if ((*sink->stream)(std::string_view(data, n))) return n;
      sink->stream_refused = true;
      return 0;
    }
  }
  if (sink->body.size() + n > sink->max_body) {
    sink->too_large = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t n = size * count;
  std::string_view line(data, n);
  // A new status line starts a new response (1xx interim, redirects): keep only the last.
  if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
    sink->headers = Headers{};
    return n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return n;  // blank line or obs-fold
  sink->headers.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  return n;
}

const char* hintFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Transient: return "the server could not be reached in time; certgate retries later";
    case ErrorKind::Permanent: return "retrying will not help; check the server's TLS certificate or the URL";
    case ErrorKind::Invalid: return "check the configured URL and ca_file";
    default: return "";
  }
}

}  // namespace

const char* toString(Method method) {
  switch (method) {
    case Method::Get: return "GET";
    case Method::Head: return "HEAD";
    case Method::Post: return "POST";
    case Method::Put: return "PUT";
    case Method::Patch: return "PATCH";
    case Method::Delete: return "DELETE";
  }
  return "GET";
}

bool isIdempotent(Method method) {
  return method == Method::Get || method == Method::Head || method == Method::Put ||
         method == Method::Delete;
}

// ---- Headers ----

Headers::Headers(std::initializer_list<std::pair<std::string, std::string>> entries) : entries_(entries) {}

void Headers::add(std::string name, std::string value) { entries_.emplace_back(std::move(name), std::move(value)); }

void Headers::set(std::string name, std::string value) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const auto& e) { return iequals(e.first, name); }),
                 entries_.end());
  add(std::move(name), std::move(value));
}

bool Headers::has(std::string_view name) const { return get(name).has_value(); }

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : entries_) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> Headers::getAll(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : entries_) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

// ---- classification ----

std::optional<long> parseRetryAfter(std::string_view value, std::int64_t now_unix_s) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  constexpr long long kMaxSeconds = std::numeric_limits<long>::max() / 1000;  // fits in ms
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long long secs = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec == std::errc::result_out_of_range) return static_cast<long>(kMaxSeconds);
    if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
    return static_cast<long>(std::min(secs, kMaxSeconds));
  }
  // Every HTTP-date form starts with a day name; anything else is not one.
  if (!std::isalpha(static_cast<unsigned char>(value.front()))) return std::nullopt;
  const std::string copy(value);
  const time_t when = curl_getdate(copy.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  const std::int64_t delta = static_cast<std::int64_t>(when) - now_unix_s;
  if (delta <= 0) return 0L;
  return static_cast<long>(std::min<std::int64_t>(delta, kMaxSeconds));
}

core::Status classify(const Response& response, std::string_view what, std::int64_t now_unix_s,
                      const Redactor* redactor) {
  const long s = response.status;
  if (s >= 100 && s < 400) return {};
  ErrorKind kind = ErrorKind::Permanent;
  std::string hint;
  if (s == 401 || s == 403) {
    kind = ErrorKind::Auth;
    hint = "check the connector's credentials and the permissions granted to them";
  } else if (s == 404 || s == 410) {
    kind = ErrorKind::NotFound;
  } else if (s == 409 || s == 412) {
    kind = ErrorKind::Conflict;
  } else if (s == 400 || s == 422) {
    kind = ErrorKind::Invalid;
    hint = "the server rejected the request; see the response body";
  } else if (s == 429) {
    kind = ErrorKind::RateLimited;
    hint = "rate limited by the server; certgate waits and retries";
  } else if (s == 408 || (s >= 500 && s < 600)) {
    kind = ErrorKind::Transient;
  }
  std::string message = "HTTP " + std::to_string(s);
  if (!what.empty()) message = std::string(what) + ": " + message;
  message = redactor ? redactor->redact(message) : redact(message);
  core::Error error = core::makeError(kind, std::move(message), {}, std::move(hint));
  if (kind == ErrorKind::RateLimited || kind == ErrorKind::Transient) {
    if (auto header = response.headers.get("Retry-After")) {
      const std::int64_t now = now_unix_s >= 0 ? now_unix_s : systemNow();
      if (auto secs = parseRetryAfter(*header, now)) error.retry_after_s = *secs;
    }
  }
  return error;
}

ErrorKind transportErrorKind(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:  // handshake interrupted; certificate problems have own codes
    case CURLE_AGAIN:
      return ErrorKind::Transient;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
      return ErrorKind::Invalid;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_FAILED_INIT:
      return ErrorKind::Internal;
    default:  // TLS verification failures, too many redirects, protocol violations ...
      return ErrorKind::Permanent;
  }
}

// ---- Client ----

struct Client::Impl {
  CURL* easy = nullptr;
  ~Impl() {
    if (easy) curl_easy_cleanup(easy);
  }
};

Client::Client(ClientOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (options_.user_agent.empty()) options_.user_agent = std::string("certgate/") + CERTGATE_VERSION;
  if (!options_.sleep) options_.sleep = [](Millis d) { std::this_thread::sleep_for(d); };
  if (!options_.random01) {
    options_.random01 = [] {
      thread_local std::mt19937_64 gen{std::random_device{}()};
      return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
    };
  }
  if (!options_.now_unix_s) options_.now_unix_s = systemNow;
}

Client::~Client() = default;

std::string Client::redact(std::string_view text) const {
  return options_.redactor ? options_.redactor->redact(text) : http::redact(text);
}

core::Result<Response> Client::send(const Request& request) {
  const std::string what = redact(std::string(toString(request.method)) + " " + request.url);
  auto fail = [&](ErrorKind kind, std::string detail) {
    return core::makeError(kind, redact(what + ": " + detail), {}, hintFor(kind));
  };

  if (options_.before_send) options_.before_send();
  std::lock_guard lock(mutex_);
  if (globalInit() != CURLE_OK) return fail(ErrorKind::Internal, "curl_global_init failed");
  if (!impl_->easy) impl_->easy = curl_easy_init();
  if (!impl_->easy) return fail(ErrorKind::Internal, "curl_easy_init failed");
  CURL* h = impl_->easy;
  // Reset options but keep the connection cache, so connections are reused across requests.
  curl_easy_reset(h);

  Sink sink;
  sink.max_body = options_.max_response_bytes;
  sink.easy = h;
  if (request.on_body) {
    sink.stream = &request.on_body;
    if (request.on_body_start) request.on_body_start();
  }
  char errbuf[CURL_ERROR_SIZE] = {};

  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(nullptr, curl_slist_free_all);
  auto append = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(header_list.get(), line.c_str());
    if (next) {
      (void)header_list.release();
      header_list.reset(next);
    }
    return next != nullptr;
  };
  for (const auto& [name, value] : request.headers.entries()) {
    // "Name;" is curl's spelling of a header with an empty value.
    if (!append(value.empty() ? name + ";" : name + ": " + value)) {
      return fail(ErrorKind::Internal, "out of memory building headers");
    }
  }
  // No "Expect: 100-continue" round trip for bodies.
  if (!request.headers.has("Expect")) append("Expect:");

  const auto connect_ms = request.connect_timeout.value_or(options_.connect_timeout).count();
  const auto total_ms = request.total_timeout.value_or(options_.total_timeout).count();
  const bool https = request.url.size() >= 8 && iequals(std::string_view(request.url).substr(0, 8), "https://");

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(total_ms));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_limit_bytes);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (options_.max_redirects > 0) {
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, options_.max_redirects);
    // Never downgrade an https exchange to plain http.
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
  } else {
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  }
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);

  switch (request.method) {
    case Method::Get:
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      break;
    case Method::Head:
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
      break;
    case Method::Post:
    case Method::Put:
    case Method::Patch:
    case Method::Delete:
      if (request.method != Method::Post) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, toString(request.method));
      if (request.method != Method::Delete || !request.body.empty()) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      }
      break;
  }

  const CURLcode rc = curl_easy_perform(h);
  // The handle outlives this call: do not leave pointers to locals in it.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);

  if (sink.stream_refused) {
    return fail(ErrorKind::Permanent, "the response body was refused by its reader");
  }
  if (sink.too_large) {
    return fail(ErrorKind::Permanent,
                "response body exceeds " + std::to_string(options_.max_response_bytes) + " bytes");
  }
  if (rc != CURLE_OK) {
    const ErrorKind kind = transportErrorKind(rc);
    std::string detail = curl_easy_strerror(rc);
    if (errbuf[0] != '\0') detail += std::string(" (") + std::string(trim(errbuf)) + ")";
    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
      return core::makeError(kind, redact(what + ": TLS certificate verification failed: " + detail), {},
                             "the server's certificate is not trusted for this host name; fix its "
                             "chain, or set ca_file to the CA that issued it (verification cannot be "
                             "turned off)");
    }
    return fail(kind, std::move(detail));
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return Response{status, std::move(sink.headers), std::move(sink.body)};
}

core::Result<Response> Client::sendWithRetry(const Request& request, const RetryPolicy& policy) {
  const bool may_retry = isIdempotent(request.method) || request.idempotent;
  const int attempts = std::max(1, policy.max_attempts);
  const std::string what = std::string(toString(request.method)) + " " + request.url;
  for (int attempt = 1;; ++attempt) {
    core::Result<Response> result = send(request);
    std::optional<long> retry_after_s;
    bool retryable = false;
    if (!result.ok()) {
      retryable = result.error().kind == ErrorKind::Transient;
    } else {
      const core::Status status = classify(*result, what, options_.now_unix_s(), options_.redactor.get());
      if (!status.ok()) {
        const ErrorKind kind = status.error().kind;
        retryable = kind == ErrorKind::Transient || kind == ErrorKind::RateLimited;
        if (auto header = result->headers.get("Retry-After")) {
          retry_after_s = parseRetryAfter(*header, options_.now_unix_s());
        }
      }
    }
    if (!retryable || !may_retry || attempt >= attempts) return result;

    Millis delay{0};
    if (retry_after_s) {
      delay = std::min(Millis(std::chrono::seconds(*retry_after_s)), policy.max_retry_after);
    } else {
      // Full jitter: uniform in [0, min(max_delay, base * 2^(attempt-1))].
      const int shift = std::min(attempt - 1, 30);
      const auto base = policy.base_delay.count();
      const auto cap_ms = (base > policy.max_delay.count() >> shift)
                              ? policy.max_delay.count()
                              : std::min(policy.max_delay.count(), base << shift);
      const double r = std::clamp(options_.random01(), 0.0, 1.0);
      delay = Millis(static_cast<Millis::rep>(r * static_cast<double>(cap_ms)));
    }
    options_.sleep(delay);
  }
}

}  // namespace certgate::connectors::http
