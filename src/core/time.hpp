#pragma once
// Instants are UTC seconds since the Unix epoch. Civil-date conversions are pure arithmetic
// (Howard Hinnant's days_from_civil); no time zone database, no clock.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certgate::core {

using Instant = std::chrono::sys_seconds;
using Seconds = std::chrono::seconds;

constexpr Seconds kDay{86400};
constexpr Instant kNever = Instant{Seconds{INT64_MAX / 4}};
constexpr Instant kBeginning = Instant{Seconds{INT64_MIN / 4}};

inline Seconds days(std::int64_t n) { return Seconds{n * 86400}; }

std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d);
void civilFromDays(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d);

// "2026-11-25T19:02:00Z" (always UTC, no fractional seconds).
std::string formatIso(Instant t);
// "2026-11-25"
std::string formatDate(Instant t);
// Parses RFC 3339 / ISO 8601: "2026-11-25", "2026-11-25T10:00:00Z", "...+02:00", "...T10:00",
// optional fractional seconds (dropped). A value without offset is taken as UTC.
std::optional<Instant> parseIso(std::string_view text);
// "30d", "12h", "90m", "45s", "2w" -> seconds.
std::optional<Seconds> parseDuration(std::string_view text);

}  // namespace certgate::core
