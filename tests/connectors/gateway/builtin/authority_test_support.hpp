#pragma once
// Helpers for the token authority tests: a temporary directory, a clock the test moves while
// server threads read it, and a builtin gateway over a fresh store.

#include <stdlib.h>  // mkdtemp

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "connectors/gateway/builtin/builtin_gateway.hpp"
#include "core/time.hpp"
#include "ports/clock.hpp"
#include "ports/config_spec.hpp"
#include "store/store.hpp"

namespace certgate::testing::authority {

constexpr std::int64_t kStart = 1'800'000'000;

inline core::Instant at(std::int64_t unix_seconds) {
  return core::Instant{core::Seconds{unix_seconds}};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "certgate-authority-test-XXXXXX").string();
    const char* made = mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A clock shared with server threads.
class TestClock final : public ports::Clock {
 public:
  explicit TestClock(std::int64_t unix_seconds = kStart) : now_(unix_seconds) {}
  core::Instant now() const override { return at(now_.load()); }
  void set(std::int64_t unix_seconds) { now_ = unix_seconds; }
  void advance(std::int64_t seconds) { now_ += seconds; }

 private:
  std::atomic<std::int64_t> now_;
};

inline std::unique_ptr<store::Store> openStore(const std::string& path) {
  auto opened = store::Store::open(path);
  if (!opened) FAIL("store open failed: " << opened.error().describe());
  return std::move(opened).value();
}

inline ports::Options optionsOf(std::vector<std::pair<std::string, std::string>> scalars) {
  ports::Options o;
  o.where = "certgate.yaml:20:5";
  for (auto& [k, v] : scalars) {
    ports::OptionValue value;
    value.scalar = v;
    value.where = "certgate.yaml:21:7";
    o.values.emplace_back(k, std::move(value));
  }
  return o;
}

inline std::unique_ptr<ports::Gateway> makeGateway(
    store::Store& store, std::shared_ptr<const ports::Clock> clock,
    std::vector<std::pair<std::string, std::string>> options = {},
    const std::string& name = "ai-gateway") {
  auto made = connectors::builtin::makeGateway(name, optionsOf(std::move(options)), &store,
                                               std::move(clock));
  if (!made) FAIL("makeGateway failed: " << made.error().describe());
  return std::move(made).value();
}

inline ports::IssueRequest request(const std::string& person, const std::string& alias,
                                   core::Instant expires_at) {
  ports::IssueRequest r;
  r.person_key = person;
  r.track = "genai";
  r.scope.scope = "genai-basic";
  r.scope.models = {"gpt-4o-mini", "claude-haiku"};
  r.alias = alias;
  r.expires_at = expires_at;
  return r;
}

template <typename T>
T valueOf(core::Result<T> result) {
  if (!result) FAIL("call failed: " << result.error().describe());
  return std::move(result).value();
}

}  // namespace certgate::testing::authority
