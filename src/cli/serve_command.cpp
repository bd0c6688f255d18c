#include "cli/serve_command.hpp"

#include <pthread.h>

#include <csignal>
#include <mutex>
#include <utility>

#include "connectors/delivery/pickup_box.hpp"
#include "connectors/delivery/pickup_endpoint.hpp"
#include "connectors/gateway/builtin/token_authority.hpp"
#include "http/token_endpoints.hpp"
#include "store/store.hpp"

namespace certgate::cli {

struct AuthorityServer::Impl {
  std::unique_ptr<connectors::builtin::TokenAuthority> authority;
  std::unique_ptr<connectors::delivery::PickupEndpoint> pickups;
  std::unique_ptr<http::Server> server;
};

AuthorityServer::AuthorityServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuthorityServer::~AuthorityServer() { stop(); }

core::Result<std::unique_ptr<AuthorityServer>> AuthorityServer::start(
    AuthorityServerOptions options) {
  auto store = store::Store::open(options.store_path);
  if (!store) return store.error();
  std::unique_ptr<connectors::delivery::PickupEndpoint> pickups;
  if (!options.pickup_key.empty()) {
    auto pickup_store = store::Store::open(options.store_path);
    if (!pickup_store) return pickup_store.error();
    connectors::delivery::PickupEndpointOptions po;
    po.key = std::move(options.pickup_key);
    po.clock = options.clock;
    po.log = options.log;
    pickups = std::make_unique<connectors::delivery::PickupEndpoint>(std::move(*pickup_store),
                                                                     std::move(po));
  }
  auto authority =
      connectors::builtin::TokenAuthority::create(std::move(*store), std::move(options.clock));
  if (!authority) return authority.error();
  auto impl = std::make_unique<Impl>();
  impl->authority = std::move(*authority);
  impl->server = std::make_unique<http::Server>(std::move(options.server));
  http::TokenEndpointOptions endpoints;
  endpoints.introspection_secret = std::move(options.introspection_secret);
  endpoints.accept_api_key_header = options.accept_api_key_header;
  http::mountTokenEndpoints(*impl->server, *impl->authority, std::move(endpoints));
  if (pickups) {
    impl->pickups = std::move(pickups);
    impl->pickups->mount(*impl->server);
  }
  if (options.mount) options.mount(*impl->server);
  if (auto started = impl->server->start(); !started) return started.error();
  return std::unique_ptr<AuthorityServer>(new AuthorityServer(std::move(impl)));
}

int AuthorityServer::port() const { return impl_->server->port(); }

std::string AuthorityServer::address() const { return impl_->server->address(); }

std::string AuthorityServer::baseUrl() const { return "http://" + address(); }

std::size_t AuthorityServer::liveTokens() const { return impl_->authority->size(); }

void AuthorityServer::stop() {
  if (impl_ && impl_->server) impl_->server->stop();
}

namespace detail {

std::optional<AuthorityServerOptions> authorityOptions(Io& io, const settings::Settings& s,
                                                       const std::string& listen_override,
                                                       bool access_log,
                                                       std::function<void(std::string_view)> log,
                                                       int& code) {
  AuthorityServerOptions options;
  options.store_path = s.store_path;
  options.server.listen = listen_override.empty() ? s.http.listen : listen_override;
  options.server.threads = static_cast<std::size_t>(s.http.threads);
  options.server.max_body_bytes = static_cast<std::size_t>(s.http.max_body_bytes);
  if (access_log) options.server.log = log;
  options.log = log;
  if (!s.http.introspection_secret.empty()) {
    auto secret = settings::readSecret(s.http.introspection_secret, s.base_dir);
    if (!secret) {
      code = failWith(io, secret.error(), kConfigInvalid);
      return std::nullopt;
    }
    options.introspection_secret = std::move(*secret);
  }
  if (s.delivery.email) {
    auto key_text = settings::readSecret(s.delivery.email->encryption_key, s.base_dir);
    if (!key_text) {
      code = failWith(io, key_text.error(), kConfigInvalid);
      return std::nullopt;
    }
    auto key = connectors::delivery::decodePickupKey(*key_text);
    if (!key) {
      code = failWith(io, key.error(), kConfigInvalid);
      return std::nullopt;
    }
    options.pickup_key = std::move(*key);
  }
  return options;
}

int cmdServe(Io& io, const std::string& config, const std::string& listen_override,
             bool access_log) {
  auto s = loadConfig(io, config);
  if (!s) return kConfigInvalid;

  auto log_mutex = std::make_shared<std::mutex>();
  std::ostream& err = io.err;
  auto log = [log_mutex, &err](std::string_view line) {
    std::lock_guard lock(*log_mutex);
    err << line << '\n';
  };
  int code = kOk;
  auto made = authorityOptions(io, *s, listen_override, access_log, log, code);
  if (!made) return code;
  AuthorityServerOptions options = std::move(*made);

  // SIGTERM / SIGINT are blocked before any thread starts (threads inherit the mask) and
  // taken with sigwait() below: no handler runs inside a worker.
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);

  const bool introspection = !options.introspection_secret.empty();
  const bool pickups = !options.pickup_key.empty();
  auto server = AuthorityServer::start(std::move(options));
  if (!server) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    const auto kind = server.error().kind;
    return failWith(io, server.error(),
                    kind == core::ErrorKind::Corrupt || kind == core::ErrorKind::Transient
                        ? kStoreUnavailable
                        : kFailure);
  }
  log("certgate serve: listening on " + (*server)->address() + " (" +
      std::to_string((*server)->liveTokens()) + " live tokens; introspection " +
      (introspection ? "enabled" : "disabled: set http.introspection_secret") +
      (pickups ? "; pickup links /pickup/ enabled" : "") + ")");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log(std::string("certgate serve: ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
      ", stopping");
  (*server)->stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return kOk;
}

}  // namespace detail
}  // namespace certgate::cli
