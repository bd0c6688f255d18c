#include "connectors/lms/csv/time_zone.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

#include "core/time.hpp"

namespace certgate::connectors::csv {

namespace {

constexpr std::int64_t kDaySeconds = 86400;
constexpr std::size_t kMaxTzifBytes = 1 << 20;

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

bool isLeap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned daysInMonth(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && isLeap(y)) ? 29U : kDays[m - 1];
}

// 0 = Sunday. 1970-01-01 was a Thursday.
int weekdayOf(std::int64_t days) {
  return static_cast<int>(((days % 7) + 11) % 7);
}

// ---- POSIX TZ strings --------------------------------------------------------------------------

class PosixScanner {
 public:
  explicit PosixScanner(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  bool name() {
    if (eat('<')) {
      const std::size_t end = s_.find('>', pos_);
      if (end == std::string_view::npos || end == pos_) return false;
      pos_ = end + 1;
      return true;
    }
    const std::size_t start = pos_;
    while (!done() && std::isalpha(static_cast<unsigned char>(peek()))) ++pos_;
    return pos_ - start >= 3;
  }

  bool number(int max_digits, std::int64_t& out) {
    const std::size_t start = pos_;
    std::int64_t v = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(peek())) &&
           pos_ - start < static_cast<std::size_t>(max_digits)) {
      v = v * 10 + (peek() - '0');
      ++pos_;
    }
    out = v;
    return pos_ > start;
  }

  // [+-]hh[:mm[:ss]] in seconds (sign as written).
  bool hms(std::int64_t& out) {
    std::int64_t sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    std::int64_t h = 0, m = 0, sec = 0;
    if (!number(3, h) || h > 167) return false;
    if (eat(':')) {
      if (!number(2, m) || m > 59) return false;
      if (eat(':')) {
        if (!number(2, sec) || sec > 59) return false;
      }
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }

  bool when(PosixRule::When& w) {
    std::int64_t a = 0, b = 0, c = 0;
    if (eat('M')) {
      if (!number(2, a) || !eat('.') || !number(1, b) || !eat('.') || !number(1, c)) return false;
      if (a < 1 || a > 12 || b < 1 || b > 5 || c > 6) return false;
      w.kind = PosixRule::When::Kind::MonthWeekDay;
      w.month = static_cast<int>(a);
      w.week = static_cast<int>(b);
      w.weekday = static_cast<int>(c);
    } else if (eat('J')) {
      if (!number(3, a) || a < 1 || a > 365) return false;
      w.kind = PosixRule::When::Kind::Julian1;
      w.day = static_cast<int>(a);
    } else {
      if (!number(3, a) || a > 365) return false;
      w.kind = PosixRule::When::Kind::Julian0;
      w.day = static_cast<int>(a);
    }
    w.time = 7200;
    if (eat('/')) return hms(w.time);
    return true;
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

// Days since the epoch of the local date a rule names in year `y`.
std::int64_t ruleDay(std::int64_t y, const PosixRule::When& w) {
  switch (w.kind) {
    case PosixRule::When::Kind::Julian1: {
      std::int64_t d = core::daysFromCivil(y, 1, 1) + w.day - 1;
      if (isLeap(y) && w.day >= 60) ++d;  // Jn never counts February 29
      return d;
    }
    case PosixRule::When::Kind::Julian0:
      return core::daysFromCivil(y, 1, 1) + w.day;
    case PosixRule::When::Kind::MonthWeekDay:
      break;
  }
  const auto month = static_cast<unsigned>(w.month);
  const std::int64_t first = core::daysFromCivil(y, month, 1);
  const int first_wd = weekdayOf(first);
  std::int64_t dom = 1 + (w.weekday - first_wd + 7) % 7 + (w.week - 1) * 7;
  while (dom > static_cast<std::int64_t>(daysInMonth(y, month))) dom -= 7;
  return first + dom - 1;
}

std::uint32_t be32(std::string_view b, std::size_t pos) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[pos])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[pos + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[pos + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[pos + 3]));
}

std::int64_t be64(std::string_view b, std::size_t pos) {
  const std::uint64_t v = (static_cast<std::uint64_t>(be32(b, pos)) << 32) | be32(b, pos + 4);
  return static_cast<std::int64_t>(v);
}

struct TzifCounts {
  std::uint64_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
  std::uint64_t dataSize(std::uint64_t time_size) const {
    return time * time_size + time + type * 6 + chars + leap * (time_size + 4) + isstd + isut;
  }
};

bool readCounts(std::string_view b, std::size_t pos, TzifCounts& c) {
  if (b.size() < pos + 44 || b.substr(pos, 4) != "TZif") return false;
  c.isut = be32(b, pos + 20);
  c.isstd = be32(b, pos + 24);
  c.leap = be32(b, pos + 28);
  c.time = be32(b, pos + 32);
  c.type = be32(b, pos + 36);
  c.chars = be32(b, pos + 40);
  // Bounds that no real zone comes near; they keep the size arithmetic far from overflow.
  return c.type >= 1 && c.type <= 256 && c.time <= 1000000 && c.leap <= 100000 &&
         c.chars <= 100000 && c.isut <= 256 && c.isstd <= 256;
}

bool validName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.front() == '.') return false;
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return std::isalnum(u) || ch == '/' || ch == '_' || ch == '-' || ch == '+' || ch == '.';
  });
}

}  // namespace

bool parseUtcOffset(std::string_view text, std::int64_t& seconds) {
  if (text == "Z" || text == "z") {
    seconds = 0;
    return true;
  }
  if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) return false;
  auto digit = [&](std::size_t i) {
    return i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
  };
  if (!digit(1) || !digit(2)) return false;
  const int h = (text[1] - '0') * 10 + (text[2] - '0');
  int m = 0;
  std::size_t pos = 3;
  if (pos < text.size()) {
    if (text[pos] == ':') ++pos;
    if (!digit(pos) || !digit(pos + 1) || pos + 2 != text.size()) return false;
    m = (text[pos] - '0') * 10 + (text[pos + 1] - '0');
  }
  if (h > 23 || m > 59) return false;
  seconds = (std::int64_t{h} * 3600 + std::int64_t{m} * 60) * (text[0] == '-' ? -1 : 1);
  return true;
}

bool parsePosixRule(std::string_view text, PosixRule& out) {
  PosixScanner s(text);
  PosixRule r;
  std::int64_t v = 0;
  if (!s.name() || !s.hms(v)) return false;
  r.std_offset = -v;  // POSIX offsets are west of Greenwich
  if (s.done()) {
    out = r;
    return true;
  }
  if (!s.name()) return false;
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (!s.done() && s.peek() != ',') {
    if (!s.hms(v)) return false;
    r.dst_offset = -v;
  }
  if (s.done()) {
    // No rule given: POSIX leaves it to the implementation; glibc uses the US rules.
    r.start = {PosixRule::When::Kind::MonthWeekDay, 3, 2, 0, 0, 7200};
    r.end = {PosixRule::When::Kind::MonthWeekDay, 11, 1, 0, 0, 7200};
    out = r;
    return true;
  }
  if (!s.eat(',') || !s.when(r.start) || !s.eat(',') || !s.when(r.end) || !s.done()) return false;
  out = r;
  return true;
}

std::int64_t PosixRule::offsetAt(std::int64_t utc) const {
  if (!has_dst) return std_offset;
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  core::civilFromDays(floorDiv(utc + std_offset, kDaySeconds), y, m, d);
  // Transition times are local wall-clock times in the offset in force before the change.
  const std::int64_t begins = ruleDay(y, start) * kDaySeconds + start.time - std_offset;
  const std::int64_t ends = ruleDay(y, end) * kDaySeconds + end.time - dst_offset;
  bool in_dst = false;
  if (begins < ends) {
    in_dst = utc >= begins && utc < ends;
  } else {
    in_dst = !(utc >= ends && utc < begins);  // southern hemisphere: DST spans the new year
  }
  return in_dst ? dst_offset : std_offset;
}

core::Result<TimeZone> TimeZone::fromPosix(const std::string& name, std::string_view rule) {
  TimeZone tz;
  tz.name_ = name;
  if (!parsePosixRule(rule, tz.footer_))
    return core::makeError(core::ErrorKind::Invalid,
                           "cannot read POSIX TZ rule '" + std::string(rule) + "'");
  tz.has_footer_ = true;
  return tz;
}

core::Result<TimeZone> TimeZone::fromTzif(const std::string& name, std::string_view b) {
  auto bad = [&](const std::string& why) {
    return core::makeError(core::ErrorKind::Invalid,
                           "time zone file for '" + name + "' is not a valid TZif file: " + why, {},
                           "reinstall the tzdata package");
  };
  TzifCounts c;
  if (!readCounts(b, 0, c)) return bad("bad header");
  const char version = b[4];
  std::size_t pos = 44;
  std::uint64_t time_size = 4;
  if (version >= '2') {
    const std::uint64_t skip = c.dataSize(4);
    if (skip > b.size() - pos) return bad("version 1 block is cut short");
    pos += static_cast<std::size_t>(skip);
    if (!readCounts(b, pos, c)) return bad("bad version 2 header");
    pos += 44;
    time_size = 8;
  }
  const std::uint64_t need = c.dataSize(time_size);
  if (need > b.size() - pos) return bad("data block is cut short");

  TimeZone tz;
  tz.name_ = name;
  tz.transitions_.reserve(static_cast<std::size_t>(c.time));
  for (std::uint64_t i = 0; i < c.time; ++i) {
    const std::int64_t t = time_size == 8 ? be64(b, pos) : static_cast<std::int32_t>(be32(b, pos));
    if (!tz.transitions_.empty() && t <= tz.transitions_.back()) return bad("unsorted transitions");
    tz.transitions_.push_back(t);
    pos += static_cast<std::size_t>(time_size);
  }
  for (std::uint64_t i = 0; i < c.time; ++i) {
    const auto idx = static_cast<std::uint8_t>(b[pos++]);
    if (idx >= c.type) return bad("transition names an unknown type");
    tz.transition_type_.push_back(idx);
  }
  for (std::uint64_t i = 0; i < c.type; ++i) {
    Type t;
    t.offset = static_cast<std::int32_t>(be32(b, pos));
    t.dst = b[pos + 4] != 0;
    if (t.offset < -25LL * 3600 || t.offset > 26LL * 3600) return bad("offset out of range");
    tz.types_.push_back(t);
    pos += 6;
  }
  pos += static_cast<std::size_t>(c.chars + c.leap * (time_size + 4) + c.isstd + c.isut);
  if (version >= '2' && pos < b.size() && b[pos] == '\n') {
    const std::size_t end = b.find('\n', pos + 1);
    if (end == std::string_view::npos) return bad("footer is not terminated");
    const std::string_view footer = b.substr(pos + 1, end - pos - 1);
    if (!footer.empty()) {
      if (!parsePosixRule(footer, tz.footer_))
        return bad("footer TZ rule '" + std::string(footer) + "' is not understood");
      tz.has_footer_ = true;
    }
  }
  return tz;
}

core::Result<TimeZone> TimeZone::load(const std::string& name, const std::string& zoneinfo_dir) {
  if (name == "UTC" || name == "utc" || name == "Z") {
    TimeZone tz;
    tz.name_ = "UTC";
    return tz;
  }
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    std::int64_t off = 0;
    if (!parseUtcOffset(name, off))
      return core::makeError(core::ErrorKind::Invalid, "'" + name + "' is not a UTC offset", {},
                             "write a fixed offset as +HH:MM, e.g. +02:00");
    TimeZone tz;
    tz.name_ = name;
    tz.fixed_offset_ = off;
    return tz;
  }
  if (!validName(name))
    return core::makeError(core::ErrorKind::Invalid, "'" + name + "' is not a time zone name", {},
                           "use an IANA name such as Europe/Berlin, UTC, or an offset like +02:00");
  const std::string path = zoneinfo_dir + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return core::makeError(core::ErrorKind::NotFound,
                           "unknown time zone '" + name + "' (no file " + path + ")", {},
                           "use an IANA name such as Europe/Berlin or America/New_York "
                           "(see `timedatectl list-timezones`), UTC, or an offset like +02:00");
  std::string bytes;
  char buf[8192];
  while (in) {
    in.read(buf, sizeof buf);
    bytes.append(buf, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > kMaxTzifBytes)
      return core::makeError(core::ErrorKind::Invalid, "time zone file " + path + " is too large");
  }
  if (in.bad())
    return core::makeError(core::ErrorKind::Invalid, "cannot read time zone file " + path);
  return fromTzif(name, bytes);
}

std::int64_t TimeZone::offsetAt(std::int64_t utc) const {
  if (transitions_.empty()) {
    if (has_footer_) return footer_.offsetAt(utc);
    if (!types_.empty()) return types_.front().offset;
    return fixed_offset_;
  }
  if (utc < transitions_.front()) return types_.front().offset;  // RFC 8536: type 0
  if (utc >= transitions_.back() && has_footer_) return footer_.offsetAt(utc);
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc);
  const auto idx = static_cast<std::size_t>(std::distance(transitions_.begin(), it)) - 1;
  return types_[transition_type_[idx]].offset;
}

std::int64_t TimeZone::localToUtc(std::int64_t local) const {
  if (transitions_.empty() && !has_footer_ && types_.empty()) return local - fixed_offset_;
  // Offsets two days either side; real zones never change twice within four days.
  const std::int64_t before = offsetAt(local - 2 * kDaySeconds);
  const std::int64_t after = offsetAt(local + 2 * kDaySeconds);
  const std::int64_t u_before = local - before;
  if (before == after) return u_before;
  if (offsetAt(u_before) == before) return u_before;  // also the first of two occurrences
  const std::int64_t u_after = local - after;
  if (offsetAt(u_after) == after) return u_after;
  return u_before;  // skipped local time: read with the offset before the change
}

}  // namespace certgate::connectors::csv
