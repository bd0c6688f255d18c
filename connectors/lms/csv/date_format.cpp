#include "connectors/lms/csv/date_format.hpp"

#include <array>
#include <cctype>
#include <cstdint>

namespace certgate::connectors::csv {

namespace {

bool isBlank(char c) {
  return c == ' ' || c == '\t';
}
bool isDigit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool validDay(std::int64_t y, int m, int d) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= ((m == 2 && leap) ? 29 : kDays[m - 1]);
}

constexpr std::array<const char*, 12> kMonths = {"january",   "february", "march",    "april",
                                                 "may",       "june",     "july",     "august",
                                                 "september", "october",  "november", "december"};

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// "[-]digits[.digits]" -> integer part (floored); nullopt for anything else.
std::optional<std::int64_t> readEpoch(std::string_view s, std::size_t max_digits) {
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    s.remove_prefix(1);
  }
  std::size_t i = 0;
  std::int64_t v = 0;
  while (i < s.size() && isDigit(s[i])) {
    v = v * 10 + (s[i] - '0');
    if (++i > max_digits) return std::nullopt;
  }
  if (i == 0) return std::nullopt;
  bool fraction = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t start = i;
    while (i < s.size() && isDigit(s[i])) {
      fraction = fraction || s[i] != '0';
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (neg) return fraction ? -v - 1 : -v;
  return v;
}

}  // namespace

core::Result<DateFormat> DateFormat::parse(std::string_view spec) {
  DateFormat f;
  f.text_ = std::string(spec);
  if (spec == "iso8601") return f;
  if (spec == "unix") {
    f.kind_ = Kind::Unix;
    return f;
  }
  if (spec == "unix_ms") {
    f.kind_ = Kind::UnixMs;
    return f;
  }
  auto bad = [&](const std::string& why) {
    return core::makeError(core::ErrorKind::Invalid,
                           "date format '" + std::string(spec) + "' " + why, {},
                           "use iso8601, unix, unix_ms, or a pattern with %Y %y %m %b %d %H %I "
                           "%M %S %p %z, e.g. %d/%m/%Y %H:%M");
  };
  if (spec.empty()) return bad("is empty");
  f.kind_ = Kind::Pattern;
  std::array<int, 13> seen{};
  for (std::size_t i = 0; i < spec.size(); ++i) {
    const char c = spec[i];
    if (c != '%') {
      if (isBlank(c)) {
        if (f.tokens_.empty() || f.tokens_.back().tok != Tok::Blank)
          f.tokens_.push_back({Tok::Blank, ' '});
      } else {
        f.tokens_.push_back({Tok::Literal, c});
      }
      continue;
    }
    if (++i >= spec.size()) return bad("ends with a lone %");
    Tok t = Tok::Literal;
    switch (spec[i]) {
      case 'Y':
        t = Tok::Year4;
        break;
      case 'y':
        t = Tok::Year2;
        break;
      case 'm':
        t = Tok::Month;
        break;
      case 'b':
        t = Tok::MonthName;
        break;
      case 'd':
        t = Tok::Day;
        break;
      case 'H':
        t = Tok::Hour24;
        break;
      case 'I':
        t = Tok::Hour12;
        break;
      case 'M':
        t = Tok::Minute;
        break;
      case 'S':
        t = Tok::Second;
        break;
      case 'p':
        t = Tok::AmPm;
        break;
      case 'z':
        t = Tok::Offset;
        break;
      case '%':
        f.tokens_.push_back({Tok::Literal, '%'});
        continue;
      default:
        return bad(std::string("uses %") + spec[i] + ", which is not supported");
    }
    if (seen[static_cast<std::size_t>(t)]++ > 0)
      return bad(std::string("uses %") + spec[i] + " twice");
    f.tokens_.push_back({t, 0});
  }
  auto has = [&](Tok t) { return seen[static_cast<std::size_t>(t)] > 0; };
  if (!has(Tok::Year4) && !has(Tok::Year2)) return bad("has no year (%Y or %y)");
  if (has(Tok::Year4) && has(Tok::Year2)) return bad("has both %Y and %y");
  if (!has(Tok::Month) && !has(Tok::MonthName)) return bad("has no month (%m or %b)");
  if (has(Tok::Month) && has(Tok::MonthName)) return bad("has both %m and %b");
  if (!has(Tok::Day)) return bad("has no day (%d)");
  if (has(Tok::Hour12) != has(Tok::AmPm)) return bad("must use %I and %p together");
  if (has(Tok::Hour12) && has(Tok::Hour24)) return bad("has both %H and %I");
  return f;
}

std::optional<core::Instant> DateFormat::read(std::string_view value, const TimeZone& tz) const {
  const std::string_view s = trim(value);
  if (s.empty()) return std::nullopt;
  switch (kind_) {
    case Kind::Iso8601: {
      const auto t = core::parseIso(s);
      if (!t) return std::nullopt;
      // parseIso reads a value without offset as UTC; such a value is local time here.
      const bool has_offset =
          s.size() > 10 && s.find_first_of("Zz+-", 10) != std::string_view::npos;
      if (has_offset) return t;
      return core::Instant{core::Seconds{tz.localToUtc(t->time_since_epoch().count())}};
    }
    case Kind::Unix: {
      const auto v = readEpoch(s, 12);
      if (!v) return std::nullopt;
      return core::Instant{core::Seconds{*v}};
    }
    case Kind::UnixMs: {
      const auto v = readEpoch(s, 15);
      if (!v) return std::nullopt;
      return core::Instant{core::Seconds{floorDiv(*v, 1000)}};
    }
    case Kind::Pattern:
      break;
  }

  std::int64_t year = 0;
  int month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int pm = -1;
  bool has_offset = false;
  std::int64_t offset = 0;
  std::size_t pos = 0;
  auto number = [&](std::size_t min_digits, std::size_t max_digits, int& out) {
    std::size_t n = 0;
    int v = 0;
    while (pos < s.size() && n < max_digits && isDigit(s[pos])) {
      v = v * 10 + (s[pos] - '0');
      ++pos;
      ++n;
    }
    out = v;
    return n >= min_digits;
  };
  for (const Token& t : tokens_) {
    int v = 0;
    switch (t.tok) {
      case Tok::Literal:
        if (pos >= s.size() || s[pos] != t.ch) return std::nullopt;
        ++pos;
        break;
      case Tok::Blank:
        if (pos >= s.size() || !isBlank(s[pos])) return std::nullopt;
        while (pos < s.size() && isBlank(s[pos])) ++pos;
        break;
      case Tok::Year4:
        if (!number(4, 4, v)) return std::nullopt;
        year = v;
        break;
      case Tok::Year2:
        if (!number(2, 2, v)) return std::nullopt;
        year = v < 69 ? 2000 + v : 1900 + v;  // POSIX strptime pivot
        break;
      case Tok::Month:
        if (!number(1, 2, month)) return std::nullopt;
        break;
      case Tok::Day:
        if (!number(1, 2, day)) return std::nullopt;
        break;
      case Tok::Hour24:
        if (!number(1, 2, hour) || hour > 23) return std::nullopt;
        break;
      case Tok::Hour12:
        if (!number(1, 2, hour) || hour < 1 || hour > 12) return std::nullopt;
        break;
      case Tok::Minute:
        if (!number(1, 2, minute) || minute > 59) return std::nullopt;
        break;
      case Tok::Second:
        if (!number(1, 2, second) || second > 60) return std::nullopt;
        if (second == 60) second = 59;  // leap second: clamp
        break;
      case Tok::MonthName: {
        if (pos + 3 > s.size()) return std::nullopt;
        month = 0;
        for (std::size_t m = 0; m < kMonths.size() && month == 0; ++m) {
          const std::string_view full = kMonths[m];
          bool abbrev = true;
          for (std::size_t k = 0; k < 3; ++k) abbrev = abbrev && lower(s[pos + k]) == full[k];
          if (!abbrev) continue;
          month = static_cast<int>(m) + 1;
          std::size_t k = 3;  // accept the full name too ("September")
          while (k < full.size() && pos + k < s.size() && lower(s[pos + k]) == full[k]) ++k;
          pos += (k == full.size()) ? k : 3;
          if (k != full.size() && pos < s.size() && s[pos] == '.') ++pos;  // "Sep."
        }
        if (month == 0) return std::nullopt;
        break;
      }
      case Tok::AmPm: {
        if (pos + 2 > s.size()) return std::nullopt;
        const char a = lower(s[pos]);
        if ((a != 'a' && a != 'p') || lower(s[pos + 1]) != 'm') return std::nullopt;
        pm = a == 'p' ? 1 : 0;
        pos += 2;
        break;
      }
      case Tok::Offset: {
        std::size_t end = pos;
        if (end < s.size() && (s[end] == 'Z' || s[end] == 'z')) {
          ++end;
        } else {
          if (end < s.size() && (s[end] == '+' || s[end] == '-')) ++end;
          while (end < s.size() && (isDigit(s[end]) || s[end] == ':') && end - pos < 6) ++end;
        }
        if (!parseUtcOffset(s.substr(pos, end - pos), offset)) return std::nullopt;
        has_offset = true;
        pos = end;
        break;
      }
    }
  }
  if (pos != s.size()) return std::nullopt;
  if (pm >= 0) hour = (hour % 12) + (pm == 1 ? 12 : 0);
  if (!validDay(year, month, day)) return std::nullopt;
  const std::int64_t local =
      core::daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second;
  const std::int64_t utc = has_offset ? local - offset : tz.localToUtc(local);
  return core::Instant{core::Seconds{utc}};
}

}  // namespace certgate::connectors::csv
