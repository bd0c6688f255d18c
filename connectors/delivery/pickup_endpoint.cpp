#include "connectors/delivery/pickup_endpoint.hpp"

#include <openssl/crypto.h>

#include "store/store.hpp"

namespace certgate::connectors::delivery {

namespace {

const char kStyle[] =
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}pre{background:#f3f3f3;padding:1rem;white-space:pre-wrap;"
    "word-break:break-all}button{font-size:1rem;padding:.5rem 1rem}";

std::string escapeHtml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

certgate::http::Response htmlPage(int status, const std::string& title, const std::string& body) {
  certgate::http::Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
           "<meta name=\"robots\" content=\"noindex\"><title>" +
           escapeHtml(title) + "</title><style>" + kStyle + "</style></head><body><h1>" +
           escapeHtml(title) + "</h1>\n" + body + "\n</body></html>\n";
  return r;
}

certgate::http::Response& privateHeaders(certgate::http::Response& r) {
  r.header("Cache-Control", "no-store");
  r.header("Pragma", "no-cache");
  r.header("Referrer-Policy", "no-referrer");
  r.header("X-Content-Type-Options", "nosniff");
  r.header("X-Frame-Options", "DENY");
  r.header("X-Robots-Tag", "noindex, nofollow");
  r.header("Content-Security-Policy",
           "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
           "frame-ancestors 'none'; base-uri 'none'");
  return r;
}

certgate::http::Response gone(PickupState state) {
  auto r = htmlPage(state == PickupState::Unknown ? 404 : 410, "This link is not valid",
                    "<p>This pickup link has been used, has expired, or does not exist. Each "
                    "link works once and for a limited time.</p><p>If you did not pick up your "
                    "token yourself, tell your administrator: the token can be revoked and a new "
                    "one issued.</p>");
  return privateHeaders(r);
}

certgate::http::Response unavailable() {
  auto r = htmlPage(500, "Pickup unavailable",
                    "<p>The token cannot be shown right now; nothing was used up. Try again "
                    "later or tell your administrator.</p>");
  return privateHeaders(r);
}

std::string idOf(const certgate::http::Request& req) {
  const std::string& path = req.path();
  const std::string_view prefix = kPickupPrefix;
  return path.size() > prefix.size() ? path.substr(prefix.size()) : std::string{};
}

}  // namespace

PickupEndpoint::PickupEndpoint(std::unique_ptr<store::Store> store, PickupEndpointOptions options)
    : store_(std::move(store)), options_(std::move(options)) {
  box_ = std::make_unique<PickupBox>(*store_, options_.key, core::Seconds{86400});
  OPENSSL_cleanse(options_.key.data(), options_.key.size());
  options_.key.clear();
  if (!options_.clock) options_.clock = std::make_shared<ports::SystemClock>();
}

PickupEndpoint::~PickupEndpoint() = default;

void PickupEndpoint::mount(certgate::http::Server& server) {
  server.routePrefix(certgate::http::Method::Get, kPickupPrefix,
                     [this](const certgate::http::Request& req) { return page(idOf(req)); });
  server.routePrefix(certgate::http::Method::Post, kPickupPrefix, [this](const certgate::http::Request& req) {
    return take(idOf(req), req.header("Accept").find("text/html") != std::string::npos);
  });
}

certgate::http::Response PickupEndpoint::page(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto state = box_->peek(id, options_.clock->now());
  if (!state) {
    if (options_.log) options_.log("pickup: " + state.error().describe());
    return unavailable();
  }
  if (state->state != PickupState::Waiting) return gone(state->state);
  // No action attribute: the form posts back to this very URL, whatever prefix a proxy adds.
  auto r = htmlPage(200, "Your API token",
                    "<p>Press the button to show your new API token. It is shown <strong>once"
                    "</strong>: copy it right away.</p><p>This link expires " +
                        (state->expires_at ? escapeHtml(core::formatIso(*state->expires_at))
                                           : std::string("soon")) +
                        ".</p><form method=\"post\"><button type=\"submit\">Show my token"
                        "</button></form>");
  return privateHeaders(r);
}

certgate::http::Response PickupEndpoint::take(const std::string& id, bool html) {
  std::lock_guard lock(mutex_);
  auto taken = box_->take(id, options_.clock->now());
  if (!taken) {
    if (options_.log) options_.log("pickup: " + taken.error().describe());
    return unavailable();
  }
  if (taken->state != PickupState::Waiting) return gone(taken->state);
  certgate::http::Response r;
  if (html) {
    r = htmlPage(200, "Your API token",
                 "<p>Copy it now: this page cannot be shown again.</p><pre>" +
                     escapeHtml(taken->secret) + "</pre>");
  } else {
    r.content_type = "text/plain; charset=utf-8";
    r.body = taken->secret + "\n";
  }
  OPENSSL_cleanse(taken->secret.data(), taken->secret.size());
  return privateHeaders(r);
}

}  // namespace certgate::connectors::delivery
