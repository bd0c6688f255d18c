#pragma once
// TokenAuthority: answers token checks for the `builtin` gateway's tokens (ports::TokenVerifier)
// from an in-memory index digest -> token, kept in step with the authority_tokens table.
//
// Contract:
//  - create() takes its own Store connection (it reads only) and loads every token: O(tokens)
//    once, about 0.1 s per 100k tokens.
//  - check(token): a token that fails token_format's wellFormed() (prefix, length, alphabet,
//    checksum) is refused before anything is looked up. Otherwise the index first catches up
//    with the table when another connection or process committed a write since the last check
//    (PRAGMA data_version, then only the rows whose seq moved), so a revocation committed
//    before check() starts is honoured by that check. Then one hash lookup of the token's
//    SHA-256 digest; expiry is compared with the clock.
//  - Thread-safe: checks run concurrently; the catch-up and the lookup are serialised by one
//    mutex (a few microseconds each).
//  - The token is never logged or stored; the index holds digests only.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"
#include "ports/clock.hpp"
#include "ports/token_verifier.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors::builtin {

class TokenAuthority final : public ports::TokenVerifier {
 public:
  // `store` is a connection of the authority's own (not shared with other threads).
  // `clock` defaults to the system clock. Errors: the store's (e.g. Transient when locked).
  static core::Result<std::unique_ptr<TokenAuthority>> create(
      std::unique_ptr<store::Store> store, std::shared_ptr<const ports::Clock> clock = nullptr);
  ~TokenAuthority() override;
  TokenAuthority(const TokenAuthority&) = delete;
  TokenAuthority& operator=(const TokenAuthority&) = delete;

  core::Result<std::optional<ports::ActiveToken>> check(std::string_view token) override;

  // Unrevoked tokens in the index (expired ones included until they are revoked).
  std::size_t size() const;
  // How many times the index caught up with the table (for tests and metrics).
  std::uint64_t catchUps() const;

 private:
  TokenAuthority(std::unique_ptr<store::Store> store, std::shared_ptr<const ports::Clock> clock);
  core::Status catchUpLocked();

  mutable std::mutex mutex_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const ports::Clock> clock_;
  std::unordered_map<std::string, ports::ActiveToken> by_digest_;
  std::int64_t seq_ = 0;
  std::int64_t data_version_ = -1;
  std::uint64_t catch_ups_ = 0;
};

}  // namespace certgate::connectors::builtin
