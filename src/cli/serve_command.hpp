#pragma once
// `certgate serve`: certgate's HTTP server in the foreground (the token authority's endpoints
// /oauth2/introspect and /auth/verify, /healthz, and the pickup links of delivery: email,
// GET/POST /pickup/<id>, when delivery.email is configured) until SIGTERM or SIGINT.
// AuthorityServer is the same server for tests and benchmarks, started in-process.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/context.hpp"
#include "core/result.hpp"
#include "http/server.hpp"
#include "ports/clock.hpp"

namespace certgate::cli {

struct AuthorityServerOptions {
  std::string store_path;            // certgate's store (created and migrated when missing)
  http::ServerOptions server;        // listen (port 0: any free port), threads, limits, log
  std::string introspection_secret;  // empty: /oauth2/introspect refuses every caller
  bool accept_api_key_header = true;
  std::shared_ptr<const ports::Clock> clock;  // null: the system clock
  // The decoded delivery.email.encryption_key: /pickup/<id> is served (over a store connection
  // of its own). Empty: no pickup endpoint.
  std::string pickup_key;
  std::function<void(std::string_view)> log;  // operational errors (a pickup that cannot open)
  // More routes on the same server (the daemon's health, metrics, admin API and webhooks),
  // registered before it starts.
  std::function<void(http::Server&)> mount;
};

// The token authority over its own store connection (TokenAuthority) behind an http::Server
// with the token endpoints (and, with a pickup_key, the pickup endpoint) mounted. Thread-safe to query; stop() (or the destructor) ends it.
class AuthorityServer {
 public:
  // Opens the store, loads the token index, binds and starts serving. Errors: the store's
  // (Corrupt, Transient, ...), the server's (Invalid listen address, Permanent bind failure).
  static core::Result<std::unique_ptr<AuthorityServer>> start(AuthorityServerOptions options);
  ~AuthorityServer();
  AuthorityServer(const AuthorityServer&) = delete;
  AuthorityServer& operator=(const AuthorityServer&) = delete;

  int port() const;
  std::string address() const;   // "127.0.0.1:PORT"
  std::string baseUrl() const;    // "http://127.0.0.1:PORT"
  std::size_t liveTokens() const;  // unrevoked tokens in the index
  void stop();

 private:
  struct Impl;
  explicit AuthorityServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace detail {
// The server options `certgate serve` and `certgate daemon` take from the configuration
// (listen, threads, body cap, introspection secret, pickup key). Prints errors; nullopt and
// `code` set when a secret cannot be read.
std::optional<AuthorityServerOptions> authorityOptions(Io& io, const settings::Settings& s,
                                                       const std::string& listen_override,
                                                       bool access_log,
                                                       std::function<void(std::string_view)> log,
                                                       int& code);

// certgate serve [--listen HOST:PORT] [--access-log]: serves until SIGTERM / SIGINT.
int cmdServe(Io& io, const std::string& config, const std::string& listen_override,
             bool access_log);
}  // namespace detail

}  // namespace certgate::cli
