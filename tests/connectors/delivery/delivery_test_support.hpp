#pragma once
// Helpers for the email delivery tests: a temporary directory, a clock the test moves while
// server threads read it, a store, the file bytes of a store (for canary searches).

#include <stdlib.h>  // mkdtemp

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "core/time.hpp"
#include "ports/clock.hpp"
#include "store/store.hpp"

namespace certgate::testing::delivery {

constexpr std::int64_t kStart = 1'800'000'000;

inline core::Instant at(std::int64_t unix_seconds) {
  return core::Instant{core::Seconds{unix_seconds}};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "certgate-delivery-test-XXXXXX").string();
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

  // Every byte of every file in the directory (the store, its -wal and -shm).
  std::string allBytes() const {
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::ostringstream b;
      b << in.rdbuf();
      out += b.str();
    }
    return out;
  }

 private:
  std::filesystem::path path_;
};

class TestClock final : public ports::Clock {
 public:
  explicit TestClock(std::int64_t unix_seconds = kStart) : now_(unix_seconds) {}
  core::Instant now() const override { return at(now_.load()); }
  void advance(std::int64_t seconds) { now_ += seconds; }

 private:
  std::atomic<std::int64_t> now_;
};

inline std::unique_ptr<store::Store> openStore(const std::string& path) {
  auto opened = store::Store::open(path);
  if (!opened) FAIL("store open failed: " << opened.error().describe());
  return std::move(opened).value();
}

// 32 bytes, base64 (what `openssl rand -base64 32` prints).
constexpr const char* kKeyBase64 = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
constexpr const char* kOtherKeyBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

}  // namespace certgate::testing::delivery
