#include <catch2/catch.hpp>

#include "core/time.hpp"

using namespace certgate::core;

TEST_CASE("ISO 8601 instants parse to exact UTC seconds", "[unit][core][time]") {
  struct Row {
    const char* text;
    std::int64_t epoch;
  };
  const Row rows[] = {
      {"1970-01-01", 0},
      {"2026-11-25T19:02:00Z", 1795633320},
      {"2026-11-25T20:02:00+01:00", 1795633320},
      {"2026-11-25T14:02:00-05:00", 1795633320},
      {"2026-11-25T19:02:00.123456Z", 1795633320},
      {"2026-11-25 19:02", 1795633320},
      {"2024-02-29T00:00:00Z", 1709164800},
      {"1969-12-31T23:59:59Z", -1},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto t = parseIso(r.text);
    REQUIRE(t.has_value());
    CHECK(t->time_since_epoch().count() == r.epoch);
  }
}

TEST_CASE("malformed instants are refused, not guessed", "[unit][core][time]") {
  for (const char* bad : {"", "2026-13-01", "2026-02-30", "2025-02-29", "26-11-25", "2026-11-25T25:00",
                          "2026-11-25T10:00:00X", "2026/11/25", "yesterday", "2026-11-25T10:00:00+2"}) {
    INFO(bad);
    CHECK_FALSE(parseIso(bad).has_value());
  }
}

TEST_CASE("instants format back to the same text", "[unit][core][time]") {
  for (const char* s : {"2026-11-25T19:02:00Z", "1969-12-31T23:59:59Z", "2000-02-29T12:00:00Z"}) {
    CHECK(formatIso(*parseIso(s)) == s);
  }
  CHECK(formatDate(*parseIso("2026-11-25T23:59:59Z")) == "2026-11-25");
}

TEST_CASE("durations accept s, m, h, d and w", "[unit][core][time]") {
  CHECK(parseDuration("30s")->count() == 30);
  CHECK(parseDuration("15m")->count() == 900);
  CHECK(parseDuration("12h")->count() == 43200);
  CHECK(parseDuration("30d")->count() == 2592000);
  CHECK(parseDuration("2w")->count() == 1209600);
  CHECK_FALSE(parseDuration("30").has_value());
  CHECK_FALSE(parseDuration("-1d").has_value());
  CHECK_FALSE(parseDuration("1y").has_value());
}
