#include "connectors/gateway/builtin/builtin_gateway.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <utility>
#include <vector>

#include "connectors/common/options.hpp"
#include "connectors/gateway/builtin/token_format.hpp"
#include "store/store.hpp"

namespace certgate::connectors::builtin {
namespace {

using core::ErrorKind;
using core::Instant;
using core::makeError;

constexpr int kAuthoritySchemaVersion = 4;
constexpr std::string_view kTokenIdPrefix = "cgt-id-";
constexpr std::size_t kTokenIdHexDigits = 24;

struct Config {
  std::string client_id;
  std::optional<core::Seconds> max_lifetime;
};

bool hasWhiteSpace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

// The first value of a space-separated scope: certgate's scope name.
std::string scopeName(const std::string& scope) {
  return scope.substr(0, scope.find(' '));
}

class BuiltinGateway final : public ports::Gateway {
 public:
  BuiltinGateway(std::string name, Config config, store::Store* store,
                 std::shared_ptr<const ports::Clock> clock)
      : name_(std::move(name)), config_(std::move(config)), store_(store), clock_(std::move(clock)) {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "builtin"; }

  core::Status connect() override {
    ++requests_;
    if (store_->schemaVersion() < kAuthoritySchemaVersion)
      return makeError(ErrorKind::Invalid,
                       "the store has no token authority table (schema " +
                           std::to_string(store_->schemaVersion()) + ")",
                       "gateway '" + name_ + "'", "open the store read-write once to migrate it");
    return {};
  }

  ports::GatewayCapabilities capabilities() const override {
    return {.cache_window = core::Seconds{0}, .can_verify = true, .supplies_secret = false};
  }

  core::Result<ports::IssuedToken> issue(const ports::IssueRequest& request) override {
    const std::string where = "gateway '" + name_ + "'";
    if (request.person_key.empty() || request.alias.empty() || request.scope.scope.empty())
      return makeError(ErrorKind::Invalid, "a token needs a person, an alias and a scope", where);
    auto scope = scopeOf(request.scope);
    if (!scope) return scope.error();

    const Instant now = clock_->now();
    std::optional<Instant> expires;
    auto cap = [&](Instant t) { expires = expires ? std::min(*expires, t) : t; };
    if (request.expires_at < core::kNever) cap(request.expires_at);
    if (request.scope.lifetime > core::Seconds{0}) cap(now + request.scope.lifetime);
    if (config_.max_lifetime) cap(now + *config_.max_lifetime);
    if (expires && *expires <= now)
      return makeError(ErrorKind::Invalid,
                       "token '" + request.alias + "' would expire at " + core::formatIso(*expires) +
                           ", which is not in the future",
                       where, "the person's access has already ended");

    auto secret = mintToken();
    if (!secret) return secret.error();
    store::AuthorityTokenRow row;
    row.digest = digest(*secret);
    row.token_id = std::string(kTokenIdPrefix) +
                   row.digest.substr(row.digest.find(':') + 1, kTokenIdHexDigits);
    row.authority = name_;
    row.alias = request.alias;
    row.subject = request.person_key;
    row.client_id = config_.client_id;
    row.scope = std::move(*scope);
    row.issued_at = now;
    row.expires_at = expires;

    ++requests_;
    auto issued = store_->issueAuthorityToken(row, now);
    if (!issued) return issued.error();
    ports::IssuedToken out;
    out.token_id = issued->token.token_id;
    out.alias = issued->token.alias;
    out.expires_at = issued->token.expires_at;
    out.secret_digest = issued->token.digest;
    out.adopted = issued->adopted;
    if (!issued->adopted) out.secret = std::move(*secret);
    return out;
  }

  core::Result<ports::RevokeOutcome> revoke(const std::string& token_id) override {
    ++requests_;
    auto changed = store_->revokeAuthorityToken(name_, token_id, clock_->now());
    if (!changed) return changed.error();
    return ports::RevokeOutcome{.no_op = !*changed};
  }

  core::Result<std::optional<ports::ObservedToken>> findByAlias(const std::string& alias) override {
    ++requests_;
    auto found = store_->authorityTokenByAlias(name_, alias);
    if (!found) return found.error();
    if (!found->has_value()) return std::optional<ports::ObservedToken>{};
    return std::optional<ports::ObservedToken>{observed(**found, clock_->now())};
  }

  core::Status observe(const std::function<void(ports::ObservedToken&&)>& sink) override {
    ++requests_;
    const Instant now = clock_->now();
    // Collected first: `sink` may call back into this gateway (and so the store) while a
    // statement would still be stepping.
    std::vector<ports::ObservedToken> tokens;
    auto listed = store_->forEachAuthorityToken(name_, [&](const store::AuthorityTokenRow& row) {
      if (!row.revoked_at) tokens.push_back(observed(row, now));
    });
    if (!listed) return listed;
    for (auto& token : tokens) sink(std::move(token));
    return {};
  }

  core::Result<ports::Enforcement> verifyRevoked(const std::string& token_id) override {
    ++requests_;
    auto found = store_->authorityToken(name_, token_id);
    if (!found) return found.error();
    if (!found->has_value()) return ports::Enforcement::Enforced;
    return observed(**found, clock_->now()).active ? ports::Enforcement::NotEnforced
                                                   : ports::Enforcement::Enforced;
  }

  std::uint64_t requestCount() const override { return requests_.load(); }

 private:
  core::Result<std::string> scopeOf(const ports::TokenScope& scope) const {
    std::vector<std::string> values{scope.scope};
    for (const auto& model : scope.models)
      if (std::find(values.begin(), values.end(), model) == values.end()) values.push_back(model);
    std::string joined;
    for (const auto& v : values) {
      if (v.empty() || hasWhiteSpace(v))
        return makeError(ErrorKind::Invalid,
                         "scope value '" + v + "' of scope '" + scope.scope +
                             "' is empty or contains white space",
                         "gateway '" + name_ + "'",
                         "scope names and models are single words (RFC 6749 scope tokens)");
      if (!joined.empty()) joined += ' ';
      joined += v;
    }
    return joined;
  }

  static ports::ObservedToken observed(const store::AuthorityTokenRow& row, Instant now) {
    ports::ObservedToken t;
    t.token_id = row.token_id;
    t.alias = row.alias;
    t.person_key = row.subject;
    t.scope = scopeName(row.scope);
    t.expires_at = row.expires_at;
    t.active = !row.revoked_at && (!row.expires_at || *row.expires_at > now);
    return t;
  }

  std::string name_;
  Config config_;
  store::Store* store_;
  std::shared_ptr<const ports::Clock> clock_;
  std::atomic<std::uint64_t> requests_{0};
};

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "builtin";
    s.description =
        "certgate's own token authority: cgt_ tokens checked by nginx auth_request, Caddy "
        "forward_auth or RFC 7662 introspection (certgate serve)";
    s.keys = {
        {"client_id", ValueType::String, false, "",
         "client_id recorded with each token and returned by introspection (default: the "
         "gateway's name)"},
        {"max_lifetime", ValueType::Duration, false, "",
         "Upper bound of a token's lifetime, e.g. 90d (default: until the end of access)"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::Gateway>> makeGateway(const std::string& name,
                                                          const ports::Options& options,
                                                          store::Store* store,
                                                          std::shared_ptr<const ports::Clock> clock) {
  const options::OptionReader opts("gateway '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;
  auto client_id = opts.scalar("client_id");
  if (!client_id) return client_id.error();
  cfg.client_id = client_id->value_or("");
  if (cfg.client_id.empty()) cfg.client_id = name;
  if (hasWhiteSpace(cfg.client_id))
    return opts.error("client_id", "must not contain white space", "e.g. client_id: ai-gateway",
                      opts.find("client_id"));
  auto lifetime = opts.duration("max_lifetime", core::Seconds{60}, core::days(3650),
                                "a duration from 1m to 3650d", "e.g. max_lifetime: 90d");
  if (!lifetime) return lifetime.error();
  cfg.max_lifetime = *lifetime;
  if (store == nullptr)
    return makeError(ErrorKind::Invalid, "the builtin gateway needs certgate's store",
                     "gateway '" + name + "'", "this is a defect in certgate");
  if (!clock) clock = std::make_shared<ports::SystemClock>();
  return std::unique_ptr<ports::Gateway>(
      std::make_unique<BuiltinGateway>(name, std::move(cfg), store, std::move(clock)));
}

}  // namespace certgate::connectors::builtin
