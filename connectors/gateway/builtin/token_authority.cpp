#include "connectors/gateway/builtin/token_authority.hpp"

#include <utility>

#include "connectors/gateway/builtin/token_format.hpp"
#include "store/store.hpp"

namespace certgate::connectors::builtin {

TokenAuthority::TokenAuthority(std::unique_ptr<store::Store> store,
                               std::shared_ptr<const ports::Clock> clock)
    : store_(std::move(store)), clock_(std::move(clock)) {}

TokenAuthority::~TokenAuthority() = default;

core::Result<std::unique_ptr<TokenAuthority>> TokenAuthority::create(
    std::unique_ptr<store::Store> store, std::shared_ptr<const ports::Clock> clock) {
  if (!store)
    return core::makeError(core::ErrorKind::Internal, "TokenAuthority: no store");
  if (!clock) clock = std::make_shared<ports::SystemClock>();
  std::unique_ptr<TokenAuthority> authority(new TokenAuthority(std::move(store), std::move(clock)));
  {
    std::lock_guard lock(authority->mutex_);
    if (auto loaded = authority->catchUpLocked(); !loaded) return loaded.error();
  }
  return authority;
}

core::Status TokenAuthority::catchUpLocked() {
  // The version is read before the rows: a commit in between is caught up with next time.
  auto version = store_->dataVersion();
  if (!version) return version.error();
  if (*version == data_version_) return {};
  auto read = store_->authorityTokensChangedSince(seq_, [this](const store::AuthorityTokenRow& row) {
    seq_ = row.seq;
    if (row.revoked_at) {
      by_digest_.erase(row.digest);
      return;
    }
    ports::ActiveToken& t = by_digest_[row.digest];
    t.token_id = row.token_id;
    t.subject = row.subject;
    t.client_id = row.client_id;
    t.scope = row.scope;
    t.issued_at = row.issued_at;
    t.expires_at = row.expires_at;
  });
  if (!read) return read;
  data_version_ = *version;
  ++catch_ups_;
  return {};
}

core::Result<std::optional<ports::ActiveToken>> TokenAuthority::check(std::string_view token) {
  if (!wellFormed(token)) return std::optional<ports::ActiveToken>{};
  const std::string key = digest(token);
  std::optional<ports::ActiveToken> found;
  {
    std::lock_guard lock(mutex_);
    if (auto caught_up = catchUpLocked(); !caught_up) return caught_up.error();
    auto it = by_digest_.find(key);
    if (it == by_digest_.end()) return std::optional<ports::ActiveToken>{};
    found = it->second;
  }
  if (found->expires_at && *found->expires_at <= clock_->now())
    return std::optional<ports::ActiveToken>{};
  return found;
}

std::size_t TokenAuthority::size() const {
  std::lock_guard lock(mutex_);
  return by_digest_.size();
}

std::uint64_t TokenAuthority::catchUps() const {
  std::lock_guard lock(mutex_);
  return catch_ups_;
}

}  // namespace certgate::connectors::builtin
