#include "http/token_endpoints.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "core/time.hpp"
#include "http/form.hpp"

namespace certgate::http {
namespace {

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The credentials after "<scheme> " in an Authorization value, nullopt for another scheme.
std::optional<std::string_view> credentialsOf(std::string_view authorization,
                                              std::string_view scheme) {
  authorization = trim(authorization);
  if (!startsWithNoCase(authorization, scheme) || authorization.size() == scheme.size() ||
      (authorization[scheme.size()] != ' ' && authorization[scheme.size()] != '\t'))
    return std::nullopt;
  return trim(authorization.substr(scheme.size()));
}

std::optional<std::string> base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;
Digest sha256(std::string_view s) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// Equal in time independent of where the values differ (and of their lengths: the digests of
// both are compared).
bool sameSecret(std::string_view presented, const Digest& expected) {
  const Digest got = sha256(presented);
  return CRYPTO_memcmp(got.data(), expected.data(), got.size()) == 0;
}

// Header values from stored data: control characters dropped, so nothing can split a header.
std::string headerSafe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  return out;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Response noStore(Response r) {
  r.header("Cache-Control", "no-store");
  r.header("Pragma", "no-cache");
  return r;
}

struct Endpoints {
  ports::TokenVerifier& verifier;
  TokenEndpointOptions options;
  std::optional<Digest> secret_digest;

  std::string challenge(std::string_view scheme, std::string_view extra = {}) const {
    std::string v = std::string(scheme) + " realm=\"" + options.realm + "\"";
    if (!extra.empty()) v += ", " + std::string(extra);
    return v;
  }

  bool callerAuthenticated(const Request& req) const {
    if (!secret_digest || req.headerCount("Authorization") != 1) return false;
    const std::string authorization = req.header("Authorization");
    if (auto bearer = credentialsOf(authorization, "Bearer"))
      return !bearer->empty() && sameSecret(*bearer, *secret_digest);
    if (auto basic = credentialsOf(authorization, "Basic")) {
      auto decoded = base64Decode(*basic);
      if (!decoded) return false;
      const auto colon = decoded->find(':');
      if (colon == std::string::npos) return false;
      return sameSecret(std::string_view(*decoded).substr(colon + 1), *secret_digest);
    }
    return false;
  }

  Response introspect(const Request& req) const {
    if (!callerAuthenticated(req)) {
      Response r = jsonError(401, "invalid_client",
                             secret_digest ? "authenticate with the introspection credential"
                                           : "introspection is not enabled on this server "
                                             "(http.introspection_secret)");
      r.header("WWW-Authenticate", challenge("Bearer"));
      r.header("WWW-Authenticate", challenge("Basic"));
      return noStore(std::move(r));
    }
    if (!startsWithNoCase(req.header("Content-Type"), "application/x-www-form-urlencoded"))
      return noStore(jsonError(400, "invalid_request",
                               "the body must be application/x-www-form-urlencoded"));
    auto fields = parseForm(req.body());
    if (!fields) return noStore(jsonError(400, "invalid_request", "the form body is malformed"));
    const std::string* token = nullptr;
    for (const auto& [key, value] : *fields) {
      if (key != "token") continue;
      if (token != nullptr)
        return noStore(jsonError(400, "invalid_request", "token is given more than once"));
      token = &value;
    }
    if (token == nullptr || token->empty())
      return noStore(jsonError(400, "invalid_request", "the token parameter is required"));

    auto checked = verifier.check(*token);
    if (!checked)
      return noStore(jsonError(503, "temporarily_unavailable", "the token store is unavailable"));
    Response r;
    if (!checked->has_value()) {
      r.body = R"({"active":false})";
      return noStore(std::move(r));
    }
    const ports::ActiveToken& t = **checked;
    nlohmann::json body = {{"active", true},
                           {"scope", t.scope},
                           {"client_id", t.client_id},
                           {"sub", t.subject},
                           {"iat", t.issued_at.time_since_epoch().count()},
                           {"token_type", "Bearer"}};
    if (t.expires_at) body["exp"] = t.expires_at->time_since_epoch().count();
    r.body = body.dump();
    return noStore(std::move(r));
  }

  // The presented token, "" when there is none.
  std::string presentedToken(const Request& req) const {
    if (req.headerCount("Authorization") > 0) {
      const std::string authorization = req.header("Authorization");
      if (auto bearer = credentialsOf(authorization, "Bearer")) return std::string(*bearer);
    }
    if (options.accept_api_key_header) return std::string(trim(req.header("X-Api-Key")));
    return {};
  }

  Response verify(const Request& req) const {
    const std::string token = presentedToken(req);
    if (token.empty()) {
      Response r = jsonError(401, "invalid_request", "no bearer token");
      r.header("WWW-Authenticate", challenge("Bearer"));
      return noStore(std::move(r));
    }
    auto checked = verifier.check(token);
    if (!checked)
      return noStore(jsonError(503, "temporarily_unavailable", "the token store is unavailable"));
    if (!checked->has_value()) {
      Response r = jsonError(401, "invalid_token");
      r.header("WWW-Authenticate", challenge("Bearer", R"(error="invalid_token")"));
      return noStore(std::move(r));
    }
    const ports::ActiveToken& t = **checked;

    std::string required = req.query("scope");
    if (required.empty()) required = req.header("X-Certgate-Required-Scope");
    const auto held = words(t.scope);
    for (std::string_view want : words(required)) {
      if (std::find(held.begin(), held.end(), want) != held.end()) continue;
      Response r = jsonError(403, "insufficient_scope");
      r.header("WWW-Authenticate",
               challenge("Bearer", "error=\"insufficient_scope\", scope=\"" +
                                       headerSafe(required) + "\""));
      return noStore(std::move(r));
    }

    Response r;
    r.status = 204;
    r.header("X-Certgate-Subject", headerSafe(t.subject));
    r.header("X-Certgate-Scope", headerSafe(t.scope));
    r.header("X-Certgate-Client-Id", headerSafe(t.client_id));
    r.header("X-Certgate-Token-Id", headerSafe(t.token_id));
    if (t.expires_at) r.header("X-Certgate-Expires", core::formatIso(*t.expires_at));
    return noStore(std::move(r));
  }
};

}  // namespace

void mountTokenEndpoints(Server& server, ports::TokenVerifier& verifier,
                         TokenEndpointOptions options) {
  auto endpoints = std::make_shared<Endpoints>(Endpoints{verifier, std::move(options), {}});
  if (!endpoints->options.introspection_secret.empty())
    endpoints->secret_digest = sha256(endpoints->options.introspection_secret);
  server.route(Method::Post, kIntrospectPath,
               [endpoints](const Request& req) { return endpoints->introspect(req); });
  for (Method m : kAllMethods)
    server.route(m, kVerifyPath, [endpoints](const Request& req) { return endpoints->verify(req); });
}

}  // namespace certgate::http
