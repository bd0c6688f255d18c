#include "connectors/common/oauth2.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

namespace certgate::connectors::oauth2 {
namespace {

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16) |
                   (static_cast<unsigned char>(in[i + 1]) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::int64_t systemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string formEncode(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

TokenSource::TokenSource(http::Client& client, ClientCredentialsConfig config,
                         std::shared_ptr<http::Redactor> redactor,
                         std::function<std::int64_t()> now_unix_s)
    : client_(client),
      config_(std::move(config)),
      redactor_(std::move(redactor)),
      now_(now_unix_s ? std::move(now_unix_s) : std::function<std::int64_t()>(systemNow)) {
  if (redactor_) redactor_->add(config_.client_secret);
}

void TokenSource::invalidate() {
  std::lock_guard lock(mutex_);
  token_.clear();
  refresh_at_ = 0;
}

core::Result<http::Response> TokenSource::post(const std::string& where) {
  auto build = [&]() -> core::Result<http::Request> {
    http::Request req;
    req.method = http::Method::Post;
    req.url = config_.token_url;
    req.idempotent = true;  // a token request has no side effect worth guarding
    req.headers.set("Content-Type", "application/x-www-form-urlencoded");
    req.headers.set("Accept", "application/json");
    std::string body = config_.refresh_token.empty()
                           ? std::string("grant_type=client_credentials")
                           : "grant_type=refresh_token&refresh_token=" +
                                 formEncode(config_.refresh_token);
    if (!config_.scope.empty()) body += "&scope=" + formEncode(config_.scope);
    switch (config_.auth) {
      case ClientAuth::JsonBody: {
        nlohmann::json doc = {{"clientId", config_.client_id},
                              {"clientSecret", config_.client_secret},
                              {"grantType", "client_credentials"}};
        if (!config_.scope.empty()) doc["scope"] = config_.scope;
        req.headers.set("Content-Type", "application/json");
        body = doc.dump();
        break;
      }
      case ClientAuth::SecretPost:
        body += "&client_id=" + formEncode(config_.client_id) +
                "&client_secret=" + formEncode(config_.client_secret);
        break;
      case ClientAuth::SecretBasic:
        req.headers.set("Authorization",
                        "Basic " + base64(formEncode(config_.client_id) + ":" +
                                          formEncode(config_.client_secret)));
        break;
      case ClientAuth::PrivateKeyJwt: {
        if (!config_.client_assertion)
          return core::makeError(core::ErrorKind::Internal,
                                 "private_key_jwt configured without an assertion signer", where);
        auto assertion = config_.client_assertion();
        if (!assertion) return assertion.error();
        if (redactor_) redactor_->add(*assertion);
        body += "&client_id=" + formEncode(config_.client_id) + "&client_assertion_type=" +
                formEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
                "&client_assertion=" + formEncode(*assertion);
        break;
      }
    }
    req.body = std::move(body);
    return req;
  };

  const http::RetryPolicy policy;
  if (config_.auth != ClientAuth::PrivateKeyJwt) {
    auto req = build();
    if (!req) return req.error();
    return client_.sendWithRetry(*req, policy);
  }

  // An assertion is single-use (RFC 7523 3, jti): every attempt signs a new one, so the retry
  // loop lives here instead of in sendWithRetry.
  const auto& opts = client_.options();
  for (int attempt = 1;; ++attempt) {
    auto req = build();
    if (!req) return req.error();
    http::RetryPolicy once = policy;
    once.max_attempts = 1;
    auto resp = client_.sendWithRetry(*req, once);
    bool retryable = false;
    std::optional<long> retry_after_s;
    if (!resp) {
      retryable = resp.error().kind == core::ErrorKind::Transient;
    } else {
      const auto status = http::classify(*resp, {}, opts.now_unix_s());
      if (!status) {
        retryable = status.error().kind == core::ErrorKind::Transient ||
                    status.error().kind == core::ErrorKind::RateLimited;
        if (auto header = resp->headers.get("Retry-After"))
          retry_after_s = http::parseRetryAfter(*header, opts.now_unix_s());
      }
    }
    if (!retryable || attempt >= policy.max_attempts) return resp;
    http::Millis delay{0};
    if (retry_after_s) {
      delay = std::min(http::Millis(std::chrono::seconds(*retry_after_s)), policy.max_retry_after);
    } else {
      const auto cap = std::min(policy.max_delay.count(),
                                policy.base_delay.count() << std::min(attempt - 1, 20));
      const double r = std::clamp(opts.random01(), 0.0, 1.0);
      delay = http::Millis(static_cast<http::Millis::rep>(r * static_cast<double>(cap)));
    }
    opts.sleep(delay);
  }
}

core::Result<std::string> TokenSource::token() {
  std::lock_guard lock(mutex_);
  const std::int64_t now = now_();
  if (!token_.empty() && now < refresh_at_) return token_;

  const std::string where = config_.where.empty() ? config_.token_url : config_.where;
  ++fetches_;
  auto resp = post(where);
  if (!resp) return resp.error();

  nlohmann::json doc = nlohmann::json::parse(resp->body, nullptr, false);
  if (resp->status != 200) {
    std::string code, description;
    if (doc.is_object()) {
      if (doc.contains("error") && doc["error"].is_string()) code = doc["error"].get<std::string>();
      if (doc.contains("error_description") && doc["error_description"].is_string())
        description = doc["error_description"].get<std::string>();
    }
    auto status = http::classify(*resp, "POST " + config_.token_url, now, redactor_.get());
    core::Error err = status ? core::makeError(core::ErrorKind::Permanent, "") : status.error();
    // RFC 6749 5.2: a 400 with invalid_client / unauthorized_client / invalid_grant is a
    // credential problem, not a malformed request of ours.
    if (resp->status == 400 || resp->status == 401) err.kind = core::ErrorKind::Auth;
    err.message = "token request to " + config_.token_url + " refused (HTTP " +
                  std::to_string(resp->status) + (code.empty() ? "" : ", " + code) +
                  (description.empty() ? "" : ": " + description) + ")";
    err.message = redactor_ ? redactor_->redact(err.message) : http::redact(err.message);
    err.where = where;
    if (err.kind == core::ErrorKind::Auth)
      err.hint = "check the client id, the secret or key, and the app's grants in the identity "
                 "provider";
    return err;
  }
  if (!doc.is_object() || !doc.contains("access_token") || !doc["access_token"].is_string() ||
      doc["access_token"].get<std::string>().empty())
    return core::makeError(core::ErrorKind::Permanent,
                           "token response from " + config_.token_url +
                               " has no access_token (RFC 6749 5.1)",
                           where);
  token_ = doc["access_token"].get<std::string>();
  if (redactor_) redactor_->add(token_);
  std::int64_t lifetime = 3600;
  if (doc.contains("expires_in")) {
    const auto& e = doc["expires_in"];
    if (e.is_number_integer()) {
      lifetime = e.get<std::int64_t>();
    } else if (e.is_number()) {
      lifetime = static_cast<std::int64_t>(e.get<double>());
    } else if (e.is_string()) {
      try {
        lifetime = std::stoll(e.get<std::string>());
      } catch (...) {
        lifetime = 3600;
      }
    }
  }
  lifetime = std::max<std::int64_t>(lifetime, 0);
  // A lifetime shorter than the margin would make every call fetch a new token.
  const std::int64_t margin =
      std::clamp<std::int64_t>(config_.refresh_margin.count(), 0, lifetime / 2);
  refresh_at_ = now + lifetime - margin;
  return token_;
}

}  // namespace certgate::connectors::oauth2
