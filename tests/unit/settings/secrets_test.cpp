// readSecret(), SecretRef::describe() and Location::str().

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>

#include "settings/settings.hpp"
#include "settings_test_support.hpp"

namespace certgate::settings {
namespace {

constexpr const char* kValue = "tok-3f9a-never-in-messages";

// Sets an environment variable for the scope of a test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string privateFile(const testing::TempDir& dir, const std::string& name,
                        const std::string& content) {
  const std::string path = dir.write(name, content);
  ::chmod(path.c_str(), 0600);
  return path;
}

TEST_CASE("A secret is read from a file with one trailing newline trimmed", "[unit][settings]") {
  testing::TempDir dir;
  privateFile(dir, "token", std::string(kValue) + "\n");
  SecretRef ref;
  ref.file = "token";  // relative: resolved against the base directory
  auto value = readSecret(ref, dir.path());
  REQUIRE(value.ok());
  CHECK(*value == kValue);

  privateFile(dir, "crlf", "abc\r\n");
  ref.file = dir.path() + "/crlf";
  CHECK(*readSecret(ref, "/nonexistent") == "abc");

  privateFile(dir, "two-newlines", "abc\n\n");
  ref.file = dir.path() + "/two-newlines";
  CHECK(*readSecret(ref, "/") == "abc\n");
}

TEST_CASE("A secret is read from $CREDENTIALS_DIRECTORY by credential name", "[unit][settings]") {
  testing::TempDir dir;
  privateFile(dir, "admin-token", kValue);
  ScopedEnv env("CREDENTIALS_DIRECTORY", dir.path());
  SecretRef ref;
  ref.credential = "admin-token";
  auto value = readSecret(ref, "/unused");
  REQUIRE(value.ok());
  CHECK(*value == kValue);
}

TEST_CASE("Secret errors name the reference and never the value", "[unit][settings]") {
  testing::TempDir dir;
  SecretRef ref;

  SECTION("a missing file") {
    ref.file = dir.path() + "/absent";
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("file " + dir.path() + "/absent"));
  }
  SECTION("a world-readable file") {
    const std::string path = dir.write("open-token", kValue);
    ::chmod(path.c_str(), 0644);
    ref.file = path;
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("readable by every user"));
    CHECK_THAT(r.error().hint, Catch::Contains("chmod 600"));
    CHECK_THAT(r.error().describe(), !Catch::Contains(kValue));
  }
  SECTION("an empty file") {
    ref.file = privateFile(dir, "empty", "\n");
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("is empty"));
  }
  SECTION("a credential without $CREDENTIALS_DIRECTORY") {
    ScopedEnv env("CREDENTIALS_DIRECTORY", std::nullopt);
    ref.credential = "admin-token";
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "secret credential admin-token: $CREDENTIALS_DIRECTORY is not set");
    CHECK_THAT(r.error().hint, Catch::Contains("LoadCredential=admin-token"));
  }
  SECTION("a credential that is not there") {
    privateFile(dir, "other", kValue);
    ScopedEnv env("CREDENTIALS_DIRECTORY", dir.path());
    ref.credential = "admin-token";
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("credential admin-token"));
  }
  SECTION("a credential name that tries to leave the directory") {
    ref.credential = "../etc/shadow";
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == core::ErrorKind::Invalid);
  }
  SECTION("a reference with both file and credential") {
    ref.file = "a";
    ref.credential = "b";
    auto r = readSecret(ref, "/");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == core::ErrorKind::Invalid);
  }
}

TEST_CASE("A secret reference describes itself without its value", "[unit][settings]") {
  SecretRef file_ref;
  file_ref.file = "/etc/certgate/admin-token";
  CHECK(file_ref.describe() == "file /etc/certgate/admin-token");
  SecretRef credential_ref;
  credential_ref.credential = "admin-token";
  CHECK(credential_ref.describe() == "credential admin-token");
  CHECK(SecretRef{}.empty());
  CHECK_FALSE(credential_ref.empty());
}

TEST_CASE("A location prints as file:line:column", "[unit][settings]") {
  CHECK(Location{"certgate.yaml", 12, 5}.str() == "certgate.yaml:12:5");
  CHECK(Location{"certgate.yaml", 0, 0}.str() == "certgate.yaml");
  CHECK(Location{}.str().empty());
}

}  // namespace
}  // namespace certgate::settings
