#include "core/time.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace certgate::core {

// Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms".
std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civilFromDays(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

namespace {

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

bool validDay(std::int64_t y, int m, int d) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  const int max = (m == 2 && leap) ? 29 : kDays[m - 1];
  return d <= max;
}

}  // namespace

std::string formatIso(Instant t) {
  const std::int64_t secs = t.time_since_epoch().count();
  const std::int64_t day = floorDiv(secs, 86400);
  const std::int64_t rem = secs - day * 86400;
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civilFromDays(day, y, m, d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  return buf;
}

std::string formatDate(Instant t) { return formatIso(t).substr(0, 10); }

std::optional<Instant> parseIso(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (s.size() < 10 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
      s[7] != '-' || !digits(s, 8, 2, d))
    return std::nullopt;
  if (!validDay(y, mo, d)) return std::nullopt;
  std::size_t pos = 10;
  std::int64_t offset = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!digits(s, pos, 2, h) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !digits(s, pos + 3, 2, mi))
      return std::nullopt;
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, sec)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        const std::size_t start = pos;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
        if (pos == start) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (sec == 60) sec = 59;  // leap second: clamp
    if (pos < s.size()) {
      const char c = s[pos];
      if (c == 'Z' || c == 'z') {
        ++pos;
      } else if (c == '+' || c == '-') {
        int oh = 0, om = 0;
        if (!digits(s, pos + 1, 2, oh)) return std::nullopt;
        std::size_t p2 = pos + 3;
        if (p2 < s.size() && s[p2] == ':') ++p2;
        if (!digits(s, p2, 2, om)) return std::nullopt;
        if (oh > 23 || om > 59) return std::nullopt;
        offset = (oh * 3600 + om * 60) * (c == '-' ? -1 : 1);
        pos = p2 + 2;
      } else {
        return std::nullopt;
      }
    }
    if (pos != s.size()) return std::nullopt;
  }
  const std::int64_t total = daysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                             h * 3600 + mi * 60 + sec - offset;
  return Instant{Seconds{total}};
}

std::optional<Seconds> parseDuration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t n = 0;
  const char unit = text.back();
  const auto num = text.substr(0, text.size() - 1);
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc{} || p != num.data() + num.size() || n < 0) return std::nullopt;
  switch (unit) {
    case 's': return Seconds{n};
    case 'm': return Seconds{n * 60};
    case 'h': return Seconds{n * 3600};
    case 'd': return Seconds{n * 86400};
    case 'w': return Seconds{n * 7 * 86400};
    default: return std::nullopt;
  }
}

}  // namespace certgate::core
