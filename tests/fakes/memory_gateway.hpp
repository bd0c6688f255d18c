#pragma once
// An in-memory ports::Gateway and ports::SecretDelivery for engine tests. The gateway follows
// the port's contract (src/ports/gateway.hpp) literally: issue is idempotent by alias (an
// existing live token comes back adopted, without its secret), revoke is idempotent (no_op),
// a revoked token stays accepted for `cache_window` unless verified otherwise.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ports/gateway.hpp"
#include "ports/secret_delivery.hpp"

namespace certgate::testing {

class MemoryGateway final : public ports::Gateway {
 public:
  explicit MemoryGateway(std::string name) : name_(std::move(name)) {}

  struct Token {
    std::string id;
    std::string alias;
    std::string person;
    std::string scope;
    std::string secret;
    core::Instant expires_at{};
    bool active = true;
  };
  std::map<std::string, Token> tokens;  // by id

  // --- behaviour
  std::chrono::seconds cache_window{0};
  bool can_verify = true;
  std::set<std::string> still_accepted;     // revoked ids the gateway keeps accepting
  std::optional<core::Error> fail_issue;
  std::optional<core::Error> fail_revoke;
  std::optional<core::Error> fail_observe;
  std::string secret_prefix = "cgt_canary_";

  // --- what happened
  int issue_calls = 0;
  int revoke_calls = 0;

  std::vector<const Token*> live() const {
    std::vector<const Token*> out;
    for (const auto& [id, t] : tokens)
      if (t.active) out.push_back(&t);
    return out;
  }
  // Adds a token as if someone (a crashed run, an admin) had minted it.
  std::string plant(const std::string& alias, const std::string& person) {
    Token t;
    t.id = "tok-" + std::to_string(++seq_);
    t.alias = alias;
    t.person = person;
    t.secret = secret_prefix + std::to_string(seq_);
    tokens[t.id] = t;
    return t.id;
  }

  // --- ports::Gateway
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "memory"; }
  core::Status connect() override { return {}; }
  ports::GatewayCapabilities capabilities() const override {
    ports::GatewayCapabilities c;
    c.cache_window = cache_window;
    c.can_verify = can_verify;
    return c;
  }
  core::Result<ports::IssuedToken> issue(const ports::IssueRequest& r) override {
    ++issue_calls;
    if (fail_issue) return *fail_issue;
    for (auto& [id, t] : tokens)
      if (t.alias == r.alias && t.active) {
        ports::IssuedToken out;
        out.token_id = id;
        out.alias = t.alias;
        out.expires_at = t.expires_at;
        out.adopted = true;
        return out;
      }
    Token t;
    t.id = "tok-" + std::to_string(++seq_);
    t.alias = r.alias;
    t.person = r.person_key;
    t.scope = r.scope.scope;
    t.secret = secret_prefix + std::to_string(seq_) + "_" + r.person_key;
    t.expires_at = r.expires_at;
    tokens[t.id] = t;
    ports::IssuedToken out;
    out.token_id = t.id;
    out.secret = t.secret;
    out.alias = t.alias;
    out.expires_at = t.expires_at;
    out.secret_digest = "sha256:" + std::string(64, 'a');
    return out;
  }
  core::Result<ports::RevokeOutcome> revoke(const std::string& token_id) override {
    ++revoke_calls;
    if (fail_revoke) return *fail_revoke;
    ports::RevokeOutcome out;
    auto it = tokens.find(token_id);
    if (it == tokens.end() || !it->second.active) {
      out.no_op = true;
      return out;
    }
    it->second.active = false;
    return out;
  }
  core::Result<std::optional<ports::ObservedToken>> findByAlias(const std::string& alias) override {
    for (const auto& [id, t] : tokens)
      if (t.alias == alias && t.active) return std::optional(observed(t));
    return std::optional<ports::ObservedToken>();
  }
  core::Status observe(const std::function<void(ports::ObservedToken&&)>& sink) override {
    if (fail_observe) return *fail_observe;
    for (const auto& [id, t] : tokens)
      if (t.alias.rfind("certgate:", 0) == 0) sink(observed(t));
    return {};
  }
  core::Result<ports::Enforcement> verifyRevoked(const std::string& token_id) override {
    if (!can_verify) return ports::Enforcement::Unknown;
    auto it = tokens.find(token_id);
    if (it != tokens.end() && it->second.active) return ports::Enforcement::NotEnforced;
    if (still_accepted.count(token_id)) return ports::Enforcement::NotEnforced;
    return ports::Enforcement::Enforced;
  }
  std::uint64_t requestCount() const override {
    return static_cast<std::uint64_t>(issue_calls + revoke_calls);
  }

 private:
  static ports::ObservedToken observed(const Token& t) {
    ports::ObservedToken o;
    o.token_id = t.id;
    o.alias = t.alias;
    o.person_key = t.person;
    o.scope = t.scope;
    o.expires_at = t.expires_at;
    o.active = t.active;
    return o;
  }
  std::string name_;
  int seq_ = 0;
};

// Keeps what it was handed, or fails while `fail` is set.
class MemoryDelivery final : public ports::SecretDelivery {
 public:
  std::vector<ports::SecretParcel> parcels;
  std::optional<core::Error> fail;
  const char* method() const override { return "webhook"; }
  core::Status deliver(const ports::SecretParcel& p, core::Instant) override {
    if (fail) return *fail;
    parcels.push_back(p);
    return {};
  }
};

}  // namespace certgate::testing
