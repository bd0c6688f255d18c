#pragma once
// The pickup link's endpoint on certgate's HTTP server (certgate serve, when delivery.email is
// configured). See email_delivery.hpp for the message that carries the link.
//
//   GET  /pickup/<id>  a small HTML page with a button; consumes nothing, so mail scanners
//                      and link previews that follow the link do not spend it
//   POST /pickup/<id>  the secret, once: text/html when the client accepts it (a browser
//                      pressing the button), else text/plain (the secret and a newline). The
//                      ciphertext is wiped in the transaction that marks the pickup fetched.
//
// A used or expired pickup answers 410, an unknown one 404, both with the same neutral page;
// a pickup that cannot be opened with the key (or a store failure) answers 500 and consumes
// nothing. Every answer carries Cache-Control: no-store, Referrer-Policy: no-referrer,
// X-Content-Type-Options: nosniff, a restrictive Content-Security-Policy and
// X-Robots-Tag: noindex. Expired pickups are purged at every request.
//
// Nothing here logs a pickup id or a secret: `log` gets operational errors only, and the
// server's access log shows "/pickup/…" for these paths.
//
// Thread-safety: requests are served one at a time (a mutex around the one store connection).

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "connectors/delivery/pickup_box.hpp"
#include "http/server.hpp"
#include "ports/clock.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors::delivery {

inline constexpr const char* kPickupPrefix = "/pickup/";

struct PickupEndpointOptions {
  std::string key;                            // the decoded 32-byte encryption key
  std::shared_ptr<const ports::Clock> clock;  // null: the system clock
  std::function<void(std::string_view)> log;  // operational errors; may be empty
};

class PickupEndpoint {
 public:
  PickupEndpoint(std::unique_ptr<store::Store> store, PickupEndpointOptions options);
  ~PickupEndpoint();
  PickupEndpoint(const PickupEndpoint&) = delete;
  PickupEndpoint& operator=(const PickupEndpoint&) = delete;

  // Registers GET and POST /pickup/<id> (before start()). The endpoint must outlive the server.
  void mount(certgate::http::Server& server);

  certgate::http::Response page(const std::string& id);                 // GET
  certgate::http::Response take(const std::string& id, bool html);      // POST

 private:
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<PickupBox> box_;
  PickupEndpointOptions options_;
  std::mutex mutex_;
};

}  // namespace certgate::connectors::delivery
