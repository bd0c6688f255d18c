#include <catch2/catch.hpp>

#include "core/identity.hpp"

using namespace certgate::core;

namespace {
IdentityResolver roster(std::vector<IdentityOverride> overrides = {}) {
  IdentityResolver r({IdentityKey::EmployeeId, IdentityKey::Email}, std::move(overrides));
  r.add({1, "E1001", "alice@example.org"});
  r.add({2, "E1002", "bob@example.org"});
  r.add({3, "", "shared@example.org"});
  r.add({4, "", "shared@example.org"});
  return r;
}
}  // namespace

TEST_CASE("emails are normalised by trimming and lower-casing", "[unit][core][identity]") {
  CHECK(normaliseEmail("  Alice@Example.ORG \t") == "alice@example.org");
  CHECK(normaliseEmail("not-an-email").empty());
  CHECK(normaliseEmail("@example.org").empty());
  CHECK(normaliseEmail("a@b@c").empty());
  CHECK(normaliseEmployeeId(" E1001 ") == "E1001");
}

TEST_CASE("identities resolve by key priority, conflicts are never guessed", "[unit][core][identity]") {
  const auto r = roster();
  SECTION("employee id first") {
    auto res = r.resolve("lms", {"E1001", "", ""});
    CHECK(res.outcome == Resolution::Outcome::Matched);
    CHECK(res.person_id == 1);
  }
  SECTION("email when no employee id, case and spaces ignored") {
    auto res = r.resolve("lms", {"", " BOB@example.org", ""});
    CHECK(res.outcome == Resolution::Outcome::Matched);
    CHECK(res.person_id == 2);
  }
  SECTION("an unknown employee id falls through to the email") {
    auto res = r.resolve("lms", {"E9999", "alice@example.org", ""});
    CHECK(res.outcome == Resolution::Outcome::Matched);
    CHECK(res.person_id == 1);
  }
  SECTION("keys pointing at different people are ambiguous") {
    auto res = r.resolve("lms", {"E1001", "bob@example.org", ""});
    CHECK(res.outcome == Resolution::Outcome::Ambiguous);
    CHECK_THAT(res.reason, Catch::Contains("different people"));
  }
  SECTION("a key shared by two people is ambiguous") {
    auto res = r.resolve("lms", {"", "shared@example.org", ""});
    CHECK(res.outcome == Resolution::Outcome::Ambiguous);
    CHECK_THAT(res.reason, Catch::Contains("2 people"));
  }
  SECTION("nobody known is unmatched, with what was tried") {
    auto res = r.resolve("lms", {"E7", "x@example.org", ""});
    CHECK(res.outcome == Resolution::Outcome::Unmatched);
    CHECK_THAT(res.reason, Catch::Contains("E7"));
    CHECK_THAT(res.reason, Catch::Contains("x@example.org"));
  }
  SECTION("a record without any key is unmatched") {
    auto res = r.resolve("lms", {"", "", "u42"});
    CHECK(res.outcome == Resolution::Outcome::Unmatched);
    CHECK_THAT(res.reason, Catch::Contains("none of the identity keys"));
  }
}

TEST_CASE("overrides tie a source's user to a person before the keys", "[unit][core][identity]") {
  const auto r = roster({{"lms", "jdoe@old.example.org", "E1002"}, {"", "u-77", "alice@example.org"}});
  auto a = r.resolve("lms", {"", "JDoe@old.example.org", ""});
  CHECK(a.outcome == Resolution::Outcome::Matched);
  CHECK(a.person_id == 2);
  auto b = r.resolve("other", {"", "jdoe@old.example.org", ""});
  CHECK(b.outcome == Resolution::Outcome::Unmatched);  // override is for source "lms" only
  auto c = r.resolve("any", {"", "", "u-77"});
  CHECK(c.outcome == Resolution::Outcome::Matched);
  CHECK(c.person_id == 1);
}

TEST_CASE("emails are lowered in ASCII only", "[unit][core][identity]") {
  CHECK(lowerAscii('A') == 'a');
  CHECK(lowerAscii('Z') == 'z');
  CHECK(lowerAscii('@') == '@');
  CHECK(lowerAscii('[') == '[');
  CHECK(lowerAscii('z') == 'z');
  // UTF-8 bytes pass unchanged, as std::tolower leaves them in the "C" locale.
  CHECK(normaliseEmail("\xC3\x89MILE@Example.org") == "\xC3\x89mile@example.org");
}

TEST_CASE("an identity index sized ahead finds what was added before and after", "[unit][core][identity]") {
  IdentityIndex index;
  index.add("before", 1);
  index.reserve(10'000, 100'000);
  for (int i = 0; i < 10'000; ++i) index.add("v" + std::to_string(i), i + 10);
  index.reserve(10, 10);  // already room: nothing moves
  auto ids = [&](std::string_view v) {
    std::vector<std::int64_t> out;
    index.forEach(v, [&](std::int64_t id) { out.push_back(id); });
    return out;
  };
  CHECK(ids("before") == std::vector<std::int64_t>{1});
  CHECK(ids("v0") == std::vector<std::int64_t>{10});
  CHECK(ids("v9999") == std::vector<std::int64_t>{10'009});
  CHECK(ids("v10000").empty());
  CHECK(index.size() == 10'001);
  IdentityResolver r({IdentityKey::EmployeeId, IdentityKey::Email}, {});
  r.reserve(3);
  r.add(7, "E7", "seven@example.org");
  r.add(8, "", "eight@example.org");
  CHECK(r.size() == 2);
  CHECK(r.resolve("lms", {"", "SEVEN@example.org", ""}).person_id == 7);
  CHECK(r.resolve("lms", {"E7", "eight@example.org", ""}).outcome == Resolution::Outcome::Ambiguous);
}

TEST_CASE("the identity index finds each of many people and keeps shared values apart",
          "[unit][core][identity]") {
  IdentityResolver r({IdentityKey::EmployeeId, IdentityKey::Email}, {});
  constexpr int kPeople = 5000;  // enough to grow the index several times
  for (int i = 1; i <= kPeople; ++i)
    r.add({i, "E" + std::to_string(i), "p" + std::to_string(i) + "@example.org"});
  r.add({kPeople + 1, "", "p7@example.org"});  // shares an email with person 7
  r.add({kPeople + 2, "E9", ""});              // shares an employee id with person 9
  r.add({kPeople + 3, "X1", ""});
  r.add({kPeople + 3, "X1", ""});  // the same person added twice: still one person
  CHECK(r.size() == kPeople + 4);
  int matched = 0;
  for (int i = 1; i <= kPeople; ++i) {
    if (i == 7 || i == 9) continue;
    const auto by_id = r.resolve("lms", {"E" + std::to_string(i), "", ""});
    const auto by_email = r.resolve("lms", {"", "P" + std::to_string(i) + "@Example.org", ""});
    if (by_id.outcome == Resolution::Outcome::Matched && by_id.person_id == i &&
        by_email.outcome == Resolution::Outcome::Matched && by_email.person_id == i)
      ++matched;
  }
  CHECK(matched == kPeople - 2);
  CHECK(r.resolve("lms", {"", "p7@example.org", ""}).outcome == Resolution::Outcome::Ambiguous);
  CHECK(r.resolve("lms", {"E9", "", ""}).outcome == Resolution::Outcome::Ambiguous);
  const auto twice = r.resolve("lms", {"X1", "", ""});
  CHECK(twice.outcome == Resolution::Outcome::Matched);
  CHECK(twice.person_id == kPeople + 3);
  CHECK(r.resolve("lms", {"E" + std::to_string(kPeople + 1), "", ""}).outcome ==
        Resolution::Outcome::Unmatched);
  CHECK(r.resolve("lms", {"", "p0@example.org", ""}).outcome == Resolution::Outcome::Unmatched);
}
