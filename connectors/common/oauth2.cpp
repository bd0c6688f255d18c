#include "connectors/common/oauth2.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
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
  expires_at_ = 0;
}

core::Result<std::string> TokenSource::token() {
  std::lock_guard lock(mutex_);
  const std::int64_t now = now_();
  if (!token_.empty() && now + config_.refresh_margin.count() < expires_at_) return token_;

  const std::string where = config_.where.empty() ? config_.token_url : config_.where;
  http::Request req;
  req.method = http::Method::Post;
  req.url = config_.token_url;
  req.idempotent = true;  // a token request has no side effect worth guarding
  req.headers.set("Content-Type", "application/x-www-form-urlencoded");
  req.headers.set("Accept", "application/json");
  std::string body = "grant_type=client_credentials";
  if (!config_.scope.empty()) body += "&scope=" + formEncode(config_.scope);
  switch (config_.auth) {
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
      body += "&client_id=" + formEncode(config_.client_id) +
              "&client_assertion_type=" +
              formEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
              "&client_assertion=" + formEncode(*assertion);
      break;
    }
  }
  req.body = std::move(body);
  ++fetches_;
  auto resp = client_.sendWithRetry(req, http::RetryPolicy{});
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
    if (redactor_) err.message = redactor_->redact(err.message);
    err.where = where;
    if (err.kind == core::ErrorKind::Auth)
      err.hint = "check the client id, the secret or key, and the app's grants in the identity "
                 "provider";
    return err;
  }
  if (!doc.is_object() || !doc.contains("access_token") || !doc["access_token"].is_string())
    return core::makeError(core::ErrorKind::Permanent,
                           "token response from " + config_.token_url +
                               " has no access_token (RFC 6749 5.1)",
                           where);
  token_ = doc["access_token"].get<std::string>();
  if (redactor_) redactor_->add(token_);
  std::int64_t lifetime = 3600;
  if (doc.contains("expires_in")) {
    if (doc["expires_in"].is_number_integer()) lifetime = doc["expires_in"].get<std::int64_t>();
    else if (doc["expires_in"].is_string()) {
      try {
        lifetime = std::stoll(doc["expires_in"].get<std::string>());
      } catch (...) {
        lifetime = 3600;
      }
    }
  }
  expires_at_ = now + lifetime;
  return token_;
}

}  // namespace certgate::connectors::oauth2
