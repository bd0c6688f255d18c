#include "connectors/lms/csv/time_zone.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

#include "connectors/lms/csv/date_format.hpp"
#include "core/time.hpp"

using certgate::connectors::csv::DateFormat;
using certgate::connectors::csv::TimeZone;
using certgate::core::Instant;
using certgate::core::parseIso;

namespace {

TimeZone zone(const std::string& name) {
  auto tz = TimeZone::load(name);
  REQUIRE(tz.ok());
  return *tz;
}

Instant utc(const char* iso) {
  const auto t = parseIso(iso);
  REQUIRE(t.has_value());
  return *t;
}

std::optional<Instant> read(const std::string& format, const std::string& value,
                            const TimeZone& tz) {
  auto f = DateFormat::parse(format);
  REQUIRE(f.ok());
  return f->read(value, tz);
}

}  // namespace

TEST_CASE("csv time zone: Europe/Berlin local times map to exact UTC instants",
          "[connector][csv]") {
  const TimeZone berlin = zone("Europe/Berlin");
  const std::string fmt = "%d/%m/%Y %H:%M";
  CHECK(read(fmt, "15/01/2026 10:30", berlin) == utc("2026-01-15T09:30:00Z"));  // CET, +1
  CHECK(read(fmt, "15/07/2026 10:30", berlin) == utc("2026-07-15T08:30:00Z"));  // CEST, +2
  // Clocks went forward at 02:00 on 29 March 2026: 02:30 did not exist. Read with the offset
  // before the change (+1).
  CHECK(read(fmt, "29/03/2026 02:30", berlin) == utc("2026-03-29T01:30:00Z"));
  CHECK(read(fmt, "29/03/2026 03:00", berlin) == utc("2026-03-29T01:00:00Z"));
  // Clocks went back at 03:00 on 25 October 2026: 02:30 happened twice; the first (+2) wins.
  CHECK(read(fmt, "25/10/2026 02:30", berlin) == utc("2026-10-25T00:30:00Z"));
  CHECK(read(fmt, "25/10/2026 03:00", berlin) == utc("2026-10-25T02:00:00Z"));
  // After the file's last transition (2037) the POSIX footer rule applies.
  CHECK(read(fmt, "01/07/2050 12:00", berlin) == utc("2050-07-01T10:00:00Z"));
  CHECK(read(fmt, "01/01/2050 12:00", berlin) == utc("2050-01-01T11:00:00Z"));
}

TEST_CASE("csv time zone: America/New_York via iso8601 without offset", "[connector][csv]") {
  const TimeZone ny = zone("America/New_York");
  CHECK(read("iso8601", "2026-01-15T09:00:00", ny) == utc("2026-01-15T14:00:00Z"));  // EST
  CHECK(read("iso8601", "2026-07-15 09:00", ny) == utc("2026-07-15T13:00:00Z"));     // EDT
  CHECK(read("iso8601", "2026-07-15", ny) == utc("2026-07-15T04:00:00Z"));           // midnight
  // An explicit offset wins over the zone.
  CHECK(read("iso8601", "2026-07-15T09:00:00+02:00", ny) == utc("2026-07-15T07:00:00Z"));
  CHECK(read("iso8601", "2026-07-15T09:00:00.250Z", ny) == utc("2026-07-15T09:00:00Z"));
  CHECK(read("%m/%d/%Y %I:%M %p", "1/15/2026 2:05 PM", ny) == utc("2026-01-15T19:05:00Z"));
  CHECK(read("%m/%d/%Y %I:%M %p", "1/15/2026 12:05 am", ny) == utc("2026-01-15T05:05:00Z"));
}

TEST_CASE("csv time zone: unix and unix_ms ignore the zone", "[connector][csv]") {
  const TimeZone berlin = zone("Europe/Berlin");
  CHECK(read("unix", "1767225600", berlin) == utc("2026-01-01T00:00:00Z"));
  CHECK(read("unix", "1767225600.9", berlin) == utc("2026-01-01T00:00:00Z"));
  CHECK(read("unix_ms", "1767225600123", berlin) == utc("2026-01-01T00:00:00Z"));
  CHECK(read("unix", "-1", berlin) == utc("1969-12-31T23:59:59Z"));
  CHECK_FALSE(read("unix", "1767225600x", berlin).has_value());
  CHECK_FALSE(read("unix", "", berlin).has_value());
  CHECK_FALSE(read("unix_ms", "2026-01-01", berlin).has_value());
}

TEST_CASE("csv time zone: patterns with month names and two-digit years and seconds and offsets",
          "[connector][csv]") {
  const TimeZone utc_zone;
  CHECK(read("%d-%b-%Y", "02-Mar-2026", utc_zone) == utc("2026-03-02T00:00:00Z"));
  CHECK(read("%d %b %Y %H:%M:%S", "2 september 2026 07:08:09", utc_zone) ==
        utc("2026-09-02T07:08:09Z"));
  CHECK(read("%b %d, %Y", "Sep. 2, 2026", utc_zone) == utc("2026-09-02T00:00:00Z"));
  CHECK(read("%d.%m.%y", "02.03.26", utc_zone) == utc("2026-03-02T00:00:00Z"));
  CHECK(read("%d.%m.%y", "02.03.99", utc_zone) == utc("1999-03-02T00:00:00Z"));
  CHECK(read("%Y%m%d%H%M", "202603021405", utc_zone) == utc("2026-03-02T14:05:00Z"));
  CHECK(read("%Y-%m-%d %H:%M %z", "2026-03-02 14:05 -0500", utc_zone) ==
        utc("2026-03-02T19:05:00Z"));
  CHECK(read("%Y-%m-%dT%H:%M%%", "2026-03-02T14:05%", utc_zone) == utc("2026-03-02T14:05:00Z"));
  // Impossible or mismatching values do not parse.
  CHECK_FALSE(read("%d/%m/%Y", "31/02/2026", utc_zone).has_value());
  CHECK_FALSE(read("%d/%m/%Y", "2026-03-02", utc_zone).has_value());
  CHECK_FALSE(read("%d/%m/%Y %H:%M", "02/03/2026 24:00", utc_zone).has_value());
  CHECK_FALSE(read("%d/%m/%Y", "02/03/2026 extra", utc_zone).has_value());
  CHECK_FALSE(read("%d-%b-%Y", "02-Foo-2026", utc_zone).has_value());
}

TEST_CASE("csv time zone: bad date formats are refused with the reason", "[connector][csv]") {
  CHECK(DateFormat::parse("%d/%m/%Y %H:%M").ok());
  auto check = [](const char* format, const char* why) {
    const auto f = DateFormat::parse(format);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().message == std::string("date format '") + format + "' " + why);
  };
  check("%d/%m/%Q", "uses %Q, which is not supported");
  check("%d/%m", "has no year (%Y or %y)");
  check("%Y-%d", "has no month (%m or %b)");
  check("%Y-%m", "has no day (%d)");
  check("%Y-%m-%d %I:%M", "must use %I and %p together");
  check("%Y-%m-%d %", "ends with a lone %");
  check("%Y-%m-%d %d", "uses %d twice");
}

TEST_CASE("csv time zone: fixed offsets and unknown names", "[connector][csv]") {
  const TimeZone plus2 = zone("+02:00");
  CHECK(plus2.offsetAt(0) == 7200);
  CHECK(read("iso8601", "2026-01-15T10:00:00", plus2) == utc("2026-01-15T08:00:00Z"));
  CHECK(zone("-0530").offsetAt(0) == -(5 * 3600 + 30 * 60));
  CHECK(zone("UTC").offsetAt(1767225600) == 0);

  const auto unknown = TimeZone::load("Europe/Berln");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().kind == certgate::core::ErrorKind::NotFound);
  CHECK(unknown.error().message.find("unknown time zone 'Europe/Berln'") != std::string::npos);
  CHECK_FALSE(TimeZone::load("../../etc/passwd").ok());
  CHECK_FALSE(TimeZone::load("+25:00").ok());
  CHECK_FALSE(TimeZone::fromTzif("x", "TZif2 not really").ok());
}

TEST_CASE("csv time zone: POSIX rules for both hemispheres", "[connector][csv]") {
  auto sydney = TimeZone::fromPosix("Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3");
  REQUIRE(sydney.ok());
  CHECK(sydney->offsetAt(utc("2026-01-15T00:00:00Z").time_since_epoch().count()) == 11LL * 3600);
  CHECK(sydney->offsetAt(utc("2026-07-15T00:00:00Z").time_since_epoch().count()) == 10LL * 3600);
  // DST ends 5 April 2026 at 03:00 AEDT = 16:00 UTC the day before.
  CHECK(sydney->offsetAt(utc("2026-04-04T15:59:59Z").time_since_epoch().count()) == 11LL * 3600);
  CHECK(sydney->offsetAt(utc("2026-04-04T16:00:00Z").time_since_epoch().count()) == 10LL * 3600);

  auto ny = TimeZone::fromPosix("NY", "EST5EDT,M3.2.0,M11.1.0");
  REQUIRE(ny.ok());
  // 8 March 2026, 02:00 EST = 07:00 UTC.
  CHECK(ny->offsetAt(utc("2026-03-08T06:59:59Z").time_since_epoch().count()) == -5LL * 3600);
  CHECK(ny->offsetAt(utc("2026-03-08T07:00:00Z").time_since_epoch().count()) == -4LL * 3600);

  auto india = TimeZone::fromPosix("IST", "<+0530>-5:30");
  REQUIRE(india.ok());
  CHECK(india->offsetAt(0) == 5 * 3600 + 1800);
  CHECK_FALSE(TimeZone::fromPosix("bad", "CET-1CEST,M3.5.0").ok());
}

TEST_CASE("csv time zone: offsets agree with the C library for real zones 1980-2080",
          "[connector][csv]") {
  for (const char* name :
       {"Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Sao_Paulo",
        "Asia/Kolkata", "Pacific/Auckland", "Europe/London", "America/Santiago"}) {
    const TimeZone tz = zone(name);
    ::setenv("TZ", (std::string(":") + name).c_str(), 1);
    ::tzset();
    int mismatches = 0;
    // Every 6h 17m, so that samples drift across all hours of the day.
    for (std::int64_t t = 315532800; t < 3471292800; t += 6 * 3600 + 17 * 60) {
      const auto tt = static_cast<std::time_t>(t);
      std::tm tm{};
      ::localtime_r(&tt, &tm);
      if (tm.tm_gmtoff != tz.offsetAt(t)) {
        if (mismatches++ < 3)
          FAIL_CHECK(name << " at " << t << ": libc " << tm.tm_gmtoff << ", certgate "
                          << tz.offsetAt(t));
      }
    }
    CHECK(mismatches == 0);
  }
  ::unsetenv("TZ");
  ::tzset();
}

TEST_CASE("csv time zone: damaged TZif files are refused without crashing", "[connector][csv]") {
  std::ifstream in("/usr/share/zoneinfo/Europe/Berlin", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(good.size() > 100);
  REQUIRE(TimeZone::fromTzif("Europe/Berlin", good).ok());
  std::uint32_t state = 7;
  auto rnd = [&] {
    state = state * 1664525U + 1013904223U;
    return state >> 8;
  };
  int refused = 0;
  for (int i = 0; i < 500; ++i) {
    std::string bytes = good;
    if (i % 2 == 0) {
      bytes.resize(rnd() % good.size());  // cut short
    } else {
      for (int k = 0; k < 4; ++k) bytes[rnd() % bytes.size()] = static_cast<char>(rnd() & 0xFF);
    }
    const auto tz = TimeZone::fromTzif("damaged", bytes);
    if (!tz.ok()) {
      ++refused;
      continue;
    }
    // Whatever was accepted must still answer.
    for (std::int64_t t : {-4000000000LL, 0LL, 1767225600LL, 4102444800LL}) {
      (void)tz->offsetAt(t);
      (void)tz->localToUtc(t);
    }
  }
  CHECK(refused > 0);
}
