#pragma once
// Token secrets sealed in the store until their person picks them up through a single-use link
// (delivery: email; see email_delivery.hpp and pickup_endpoint.hpp).
//
// Contract:
//  - The store holds only AES-256-GCM ciphertext: a fresh random 96-bit nonce per secret, the
//    pickup id as associated data (a ciphertext moved to another row does not open). The key
//    (32 bytes, delivery.email.encryption_key) lives outside the store.
//  - Pickup ids are 128 bits from the OpenSSL CSPRNG, base64url (22 characters).
//  - take() opens the secret and wipes its ciphertext in one store transaction: it succeeds for
//    exactly one caller. A pickup that cannot be opened (another key sealed it) is left as it
//    was, and the error says so; nothing is consumed.
//  - A pickup expires at created + ttl, or when its token expires if that is sooner. Expired
//    pickups are deleted by purge(), which take() and peek() also run (after reading the one
//    asked for, so its first request after the expiry still says Expired).
//  - No method logs; no error message contains a secret or a pickup id.
//  - Not thread-safe (one Store connection): serialise calls.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors::delivery {

inline constexpr std::size_t kPickupKeyBytes = 32;

// Decodes delivery.email.encryption_key: base64 of exactly 32 bytes. Invalid otherwise (the
// message names neither the value nor its bytes).
core::Result<std::string> decodePickupKey(std::string_view base64);

// True for a well-formed pickup id (22 base64url characters).
bool isPickupId(std::string_view id);

struct PickupTicket {
  std::string id;
  core::Instant expires_at{};
};

enum class PickupState {
  Waiting,  // sealed, not fetched, not expired
  Fetched,  // picked up already
  Expired,  // past its expiry (and deleted by the same call)
  Unknown,  // no such pickup (never existed, or purged)
};
const char* toString(PickupState state);

struct TakenPickup {
  PickupState state = PickupState::Unknown;
  std::string secret;  // set only when state was Waiting: the pickup is Fetched now
  std::optional<core::Instant> expires_at;
};

class PickupBox {
 public:
  // `key`: the decoded 32-byte key. The store must outlive the box.
  PickupBox(store::Store& store, std::string key, core::Seconds ttl);
  ~PickupBox();
  PickupBox(const PickupBox&) = delete;
  PickupBox& operator=(const PickupBox&) = delete;

  // Seals `secret` for `person` under a new pickup id. token_expires_at bounds the expiry.
  core::Result<PickupTicket> seal(const std::string& person, const std::string& token_alias,
                                  std::string_view secret, core::Instant now,
                                  std::optional<core::Instant> token_expires_at = {});
  // The pickup's state, consuming nothing.
  core::Result<TakenPickup> peek(const std::string& id, core::Instant now);
  // Opens and consumes a waiting pickup. Errors: Corrupt when it cannot be opened with this
  // key (nothing is consumed), the store's errors otherwise.
  core::Result<TakenPickup> take(const std::string& id, core::Instant now);
  // Wipes a waiting pickup without opening it (a message that could not be sent).
  core::Status discard(const std::string& id, core::Instant now);
  // Deletes expired pickups; returns how many.
  core::Result<std::int64_t> purge(core::Instant now);

 private:
  store::Store& store_;
  std::string key_;
  core::Seconds ttl_;
};

}  // namespace certgate::connectors::delivery
