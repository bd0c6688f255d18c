#pragma once
// Reading completion dates as LMS exports write them.
//
//  - "iso8601": RFC 3339 / ISO 8601 ("2026-03-01", "2026-03-01T10:00:00Z", "...+02:00",
//    "2026-03-01 10:00"); a value without an offset is local time in the configured zone.
//  - "unix" / "unix_ms": seconds / milliseconds since the epoch (the zone does not apply).
//  - a pattern with %Y %y %m %d %b %H %I %M %S %p %z %% and literal characters, e.g.
//    "%d/%m/%Y %H:%M". A space matches one or more blanks. Missing time fields are 0 (midnight).
// Pure; immutable after parse().

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/lms/csv/time_zone.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::connectors::csv {

class DateFormat {
 public:
  enum class Kind { Iso8601, Unix, UnixMs, Pattern };

  DateFormat() = default;  // iso8601
  // Error (Invalid) describes what is wrong with the pattern; the caller adds the key.
  static core::Result<DateFormat> parse(std::string_view spec);

  Kind kind() const { return kind_; }
  const std::string& text() const { return text_; }

  // nullopt when `value` does not match the format or names an impossible date.
  std::optional<core::Instant> read(std::string_view value, const TimeZone& tz) const;

 private:
  enum class Tok {
    Literal,
    Blank,
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    AmPm,
    Offset
  };
  struct Token {
    Tok tok = Tok::Literal;
    char ch = 0;
  };

  Kind kind_ = Kind::Iso8601;
  std::string text_ = "iso8601";
  std::vector<Token> tokens_;
};

}  // namespace certgate::connectors::csv
