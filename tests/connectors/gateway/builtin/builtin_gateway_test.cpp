// The builtin gateway (certgate's own token authority) over a real store file, and the
// TokenAuthority that checks its tokens.
#include "connectors/gateway/builtin/builtin_gateway.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <vector>

#include "authority_test_support.hpp"
#include "connectors/gateway/builtin/token_authority.hpp"
#include "connectors/gateway/builtin/token_format.hpp"
#include "connectors/registry.hpp"

using certgate::core::ErrorKind;
using certgate::core::Seconds;
namespace builtin = certgate::connectors::builtin;
namespace ports = certgate::ports;
using namespace certgate::testing::authority;

namespace {

std::string fileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Fixture {
  TempDir dir;
  std::string db = dir.file("certgate.db");
  std::shared_ptr<TestClock> clock = std::make_shared<TestClock>();
  std::unique_ptr<certgate::store::Store> store = openStore(db);
  std::unique_ptr<ports::Gateway> gateway = makeGateway(*store, clock);

  std::unique_ptr<builtin::TokenAuthority> authority() {
    auto made = builtin::TokenAuthority::create(openStore(db), clock);
    if (!made) FAIL("TokenAuthority::create failed: " << made.error().describe());
    return std::move(made).value();
  }
};

}  // namespace

TEST_CASE("a builtin gateway mints a well-formed cgt_ token and reports it once",
          "[connector][builtin]") {
  Fixture f;
  REQUIRE(f.gateway->connect().ok());
  CHECK(std::string(f.gateway->kind()) == "builtin");
  const auto caps = f.gateway->capabilities();
  CHECK(caps.cache_window == Seconds{0});
  CHECK(caps.can_verify);

  auto issued = valueOf(f.gateway->issue(request("e1001", "genai/e1001/c1", at(kStart + 86400))));
  CHECK(builtin::wellFormed(issued.secret));
  CHECK_FALSE(issued.adopted);
  CHECK(issued.secret_digest == builtin::digest(issued.secret));
  CHECK(issued.token_id.rfind("cgt-id-", 0) == 0);
  CHECK(issued.token_id.find(issued.secret) == std::string::npos);
  REQUIRE(issued.expires_at);
  CHECK(*issued.expires_at == at(kStart + 86400));

  auto seen = valueOf(f.gateway->findByAlias("genai/e1001/c1"));
  REQUIRE(seen);
  CHECK(seen->token_id == issued.token_id);
  CHECK(seen->person_key == "e1001");
  CHECK(seen->scope == "genai-basic");
  CHECK(seen->active);
}

TEST_CASE("issuing the same alias twice adopts the live token instead of minting a second",
          "[connector][builtin]") {
  Fixture f;
  auto first = valueOf(f.gateway->issue(request("e1001", "genai/e1001/c1", at(kStart + 86400))));
  f.clock->advance(60);
  auto again = valueOf(f.gateway->issue(request("e1001", "genai/e1001/c1", at(kStart + 86400))));
  CHECK(again.adopted);
  CHECK(again.secret.empty());
  CHECK(again.token_id == first.token_id);
  CHECK(again.secret_digest == first.secret_digest);

  int listed = 0;
  REQUIRE(f.gateway->observe([&](ports::ObservedToken&&) { ++listed; }).ok());
  CHECK(listed == 1);
}

TEST_CASE("the expiry is the earliest of end of access, the scope's lifetime and max_lifetime",
          "[connector][builtin]") {
  struct Case {
    const char* reason;
    std::int64_t expires_in;  // IssueRequest::expires_at - now; -1: core::kNever
    std::int64_t lifetime;    // TokenScope::lifetime; 0: none
    const char* max_lifetime;
    std::int64_t want;        // expiry - now; -1: none
  };
  const Case cases[] = {
      {"end of access only", 86400, 0, "", 86400},
      {"a shorter scope lifetime caps it", 86400, 3600, "", 3600},
      {"max_lifetime caps a longer end of access", 400 * 86400, 0, "90d", 90 * 86400},
      {"end of access before max_lifetime wins", 86400, 0, "90d", 86400},
      {"no end of access and no lifetime: no expiry", -1, 0, "", -1},
      {"no end of access: max_lifetime applies", -1, 0, "30d", 30 * 86400},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    Fixture f;
    std::vector<std::pair<std::string, std::string>> options;
    if (*c.max_lifetime) options.emplace_back("max_lifetime", c.max_lifetime);
    auto gateway = makeGateway(*f.store, f.clock, options);
    auto r = request("e1", "alias-1",
                     c.expires_in < 0 ? certgate::core::kNever : at(kStart + c.expires_in));
    r.scope.lifetime = Seconds{c.lifetime};
    auto issued = valueOf(gateway->issue(r));
    if (c.want < 0) {
      CHECK_FALSE(issued.expires_at);
    } else {
      REQUIRE(issued.expires_at);
      CHECK(*issued.expires_at == at(kStart + c.want));
    }
  }
}

TEST_CASE("a token whose end of access has passed is refused, not minted",
          "[connector][builtin]") {
  Fixture f;
  auto refused = f.gateway->issue(request("e1", "a1", at(kStart)));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::Invalid);
  auto unset = f.gateway->issue(request("e1", "a1", certgate::core::Instant{}));
  REQUIRE_FALSE(unset);
  CHECK(unset.error().kind == ErrorKind::Invalid);
}

TEST_CASE("an expired token with the alias is retired and a new one minted",
          "[connector][builtin]") {
  Fixture f;
  auto first = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 100))));
  f.clock->advance(200);
  auto second = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 86400))));
  CHECK_FALSE(second.adopted);
  CHECK(second.token_id != first.token_id);
  CHECK(valueOf(f.gateway->verifyRevoked(first.token_id)) == ports::Enforcement::Enforced);
  auto seen = valueOf(f.gateway->findByAlias("a1"));
  REQUIRE(seen);
  CHECK(seen->token_id == second.token_id);
}

TEST_CASE("revoke is idempotent and verifyRevoked reports Enforced at once",
          "[connector][builtin]") {
  Fixture f;
  auto issued = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 86400))));
  CHECK(valueOf(f.gateway->verifyRevoked(issued.token_id)) == ports::Enforcement::NotEnforced);
  CHECK_FALSE(valueOf(f.gateway->revoke(issued.token_id)).no_op);
  CHECK(valueOf(f.gateway->revoke(issued.token_id)).no_op);
  CHECK(valueOf(f.gateway->revoke("cgt-id-000000000000000000000000")).no_op);
  CHECK(valueOf(f.gateway->verifyRevoked(issued.token_id)) == ports::Enforcement::Enforced);

  auto seen = valueOf(f.gateway->findByAlias("a1"));
  REQUIRE(seen);
  CHECK_FALSE(seen->active);
  int listed = 0;
  REQUIRE(f.gateway->observe([&](ports::ObservedToken&&) { ++listed; }).ok());
  CHECK(listed == 0);

  // A revoked alias may be issued again (a new grant in the same cycle): a new token.
  auto reissued = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 86400))));
  CHECK_FALSE(reissued.adopted);
  CHECK(reissued.token_id != issued.token_id);
}

TEST_CASE("two builtin gateways on one store keep their tokens apart", "[connector][builtin]") {
  Fixture f;
  auto other = makeGateway(*f.store, f.clock, {}, "lab-gateway");
  auto mine = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 86400))));
  auto theirs = valueOf(other->issue(request("e1", "a1", at(kStart + 86400))));
  CHECK_FALSE(theirs.adopted);
  CHECK(valueOf(other->revoke(mine.token_id)).no_op);
  CHECK(valueOf(f.gateway->verifyRevoked(mine.token_id)) == ports::Enforcement::NotEnforced);
  std::vector<std::string> listed;
  REQUIRE(other->observe([&](ports::ObservedToken&& t) { listed.push_back(t.token_id); }).ok());
  CHECK(listed == std::vector<std::string>{theirs.token_id});
}

TEST_CASE("the store file holds the digest of a token, never the token", "[connector][builtin]") {
  Fixture f;
  std::vector<std::string> secrets;
  for (int i = 0; i < 20; ++i) {
    auto issued = valueOf(f.gateway->issue(
        request("e" + std::to_string(i), "alias-" + std::to_string(i), at(kStart + 86400))));
    REQUIRE(builtin::wellFormed(issued.secret));
    secrets.push_back(issued.secret);
  }
  f.store.reset();  // closes the connection: the WAL is checkpointed into the file
  std::string bytes = fileBytes(f.db);
  for (const char* suffix : {"-wal", "-shm"}) bytes += fileBytes(f.db + suffix);
  REQUIRE(bytes.size() > 4096);
  for (const auto& secret : secrets) {
    CHECK(bytes.find(secret) == std::string::npos);
    // Not even the random part without its prefix.
    CHECK(bytes.find(secret.substr(4, 20)) == std::string::npos);
    // The digest is there: the check above looks at the right bytes.
    const std::string d = builtin::digest(secret);
    CHECK(bytes.find(d.substr(7)) != std::string::npos);
  }
  CHECK(bytes.find("cgt_") == std::string::npos);
}

TEST_CASE("scope values with white space and unknown options are refused", "[connector][builtin]") {
  Fixture f;
  auto r = request("e1", "a1", at(kStart + 86400));
  r.scope.models = {"two words"};
  auto refused = f.gateway->issue(r);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::Invalid);

  auto bad = builtin::makeGateway("gw", optionsOf({{"lifetime", "30d"}}), f.store.get());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("lifetime") != std::string::npos);
  auto no_store = builtin::makeGateway("gw", optionsOf({}), nullptr);
  REQUIRE_FALSE(no_store);
  auto bad_duration =
      builtin::makeGateway("gw", optionsOf({{"max_lifetime", "soon"}}), f.store.get());
  REQUIRE_FALSE(bad_duration);
  CHECK(bad_duration.error().where == "certgate.yaml:21:7");
}

TEST_CASE("the registry builds the builtin gateway with the store it is given",
          "[connector][builtin]") {
  Fixture f;
  REQUIRE(certgate::connectors::gatewaySpec("builtin") != nullptr);
  auto made = certgate::connectors::makeGateway("builtin", "ai-gateway", optionsOf({}), "/etc",
                                                {}, nullptr, {}, f.store.get());
  REQUIRE(made);
  auto issued = valueOf((*made)->issue(request("e1", "a1", certgate::core::kNever)));
  CHECK(builtin::wellFormed(issued.secret));
  auto without_store =
      certgate::connectors::makeGateway("builtin", "ai-gateway", optionsOf({}), "/etc", {}, nullptr);
  CHECK_FALSE(without_store);
}

TEST_CASE("the token authority answers for active tokens only", "[connector][builtin]") {
  Fixture f;
  auto gw = makeGateway(*f.store, f.clock, {{"client_id", "llm-proxy"}});
  auto live = valueOf(gw->issue(request("e1", "a1", at(kStart + 3600))));
  auto revoked = valueOf(gw->issue(request("e2", "a2", at(kStart + 3600))));
  REQUIRE_FALSE(valueOf(gw->revoke(revoked.token_id)).no_op);
  auto authority = f.authority();
  CHECK(authority->size() == 1);

  auto found = valueOf(authority->check(live.secret));
  REQUIRE(found);
  CHECK(found->subject == "e1");
  CHECK(found->client_id == "llm-proxy");
  CHECK(found->scope == "genai-basic gpt-4o-mini claude-haiku");
  CHECK(found->token_id == live.token_id);
  CHECK(found->issued_at == at(kStart));
  CHECK(found->expires_at == at(kStart + 3600));

  CHECK_FALSE(valueOf(authority->check(revoked.secret)));
  auto unknown = valueOf(builtin::mintToken());
  CHECK_FALSE(valueOf(authority->check(unknown)));
  std::string broken = live.secret;
  broken[10] = broken[10] == 'a' ? 'b' : 'a';  // checksum no longer matches
  CHECK_FALSE(valueOf(authority->check(broken)));
  CHECK_FALSE(valueOf(authority->check("")));
  CHECK_FALSE(valueOf(authority->check(std::string(100000, 'x'))));
  CHECK_FALSE(valueOf(authority->check(std::string("cgt_\0\xff", 6))));

  f.clock->set(kStart + 3600);  // expiry is exclusive
  CHECK_FALSE(valueOf(authority->check(live.secret)));
}

TEST_CASE("a revocation through another connection is seen by the very next check",
          "[connector][builtin]") {
  Fixture f;
  auto authority = f.authority();
  auto issued = valueOf(f.gateway->issue(request("e1", "a1", at(kStart + 3600))));
  REQUIRE(valueOf(authority->check(issued.secret)));  // issued after the load: caught up
  const auto catch_ups = authority->catchUps();
  REQUIRE(valueOf(authority->check(issued.secret)));
  CHECK(authority->catchUps() == catch_ups);  // nothing changed: no catch-up
  REQUIRE_FALSE(valueOf(f.gateway->revoke(issued.token_id)).no_op);
  CHECK_FALSE(valueOf(authority->check(issued.secret)));
  CHECK(authority->size() == 0);
}

TEST_CASE("concurrent checks while tokens are issued and revoked stay consistent",
          "[connector][builtin]") {
  Fixture f;
  std::vector<std::string> secrets;
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    auto issued = valueOf(f.gateway->issue(
        request("e" + std::to_string(i), "a" + std::to_string(i), at(kStart + 3600))));
    secrets.push_back(issued.secret);
    ids.push_back(issued.token_id);
  }
  auto authority = f.authority();
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&] {
      while (!done)
        for (const auto& s : secrets)
          if (!authority->check(s)) ++errors;
    });
  for (int i = 0; i < 25; ++i) REQUIRE_FALSE(valueOf(f.gateway->revoke(ids[i])).no_op);
  done = true;
  for (auto& r : readers) r.join();
  CHECK(errors == 0);
  for (int i = 0; i < 50; ++i) CHECK(valueOf(authority->check(secrets[i])).has_value() == (i >= 25));
}
