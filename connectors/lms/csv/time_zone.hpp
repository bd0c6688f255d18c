#pragma once
// Time zones for reading local date-times in LMS exports.
//
// A TimeZone is either a fixed offset ("UTC", "+02:00") or an IANA zone read from a compiled
// TZif file (RFC 8536, versions 1-4; 64-bit transitions, plus the POSIX TZ footer for instants
// after the last transition). Loading reads one file; everything else is pure arithmetic.
// Immutable after load; safe to share between threads.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace certgate::connectors::csv {

// A POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"), used after a zone's last transition.
struct PosixRule {
  struct When {
    enum class Kind { MonthWeekDay, Julian1, Julian0 } kind = Kind::MonthWeekDay;
    int month = 0, week = 0, weekday = 0;  // Mm.w.d
    int day = 0;                           // Jn (1..365, no Feb 29) or n (0..365)
    std::int64_t time = 7200;              // seconds after local midnight; may be <0 or >24h
  };
  std::int64_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  std::int64_t dst_offset = 0;
  When start, end;

  // Offset east of UTC in force at `utc`.
  std::int64_t offsetAt(std::int64_t utc) const;
};

// Parses a POSIX TZ string; false when it is not understood.
bool parsePosixRule(std::string_view text, PosixRule& out);

class TimeZone {
 public:
  TimeZone() = default;  // UTC

  // `name`: "UTC", "Z", a fixed offset "+02:00" / "-0530", or an IANA name looked up under
  // `zoneinfo_dir`. Errors: Invalid (malformed name or file), NotFound (no such zone).
  static core::Result<TimeZone> load(const std::string& name,
                                     const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  // Parses the bytes of a TZif file (exposed for tests).
  static core::Result<TimeZone> fromTzif(const std::string& name, std::string_view bytes);
  // A zone described only by a POSIX TZ rule (exposed for tests).
  static core::Result<TimeZone> fromPosix(const std::string& name, std::string_view rule);

  const std::string& name() const { return name_; }

  // Offset east of UTC, in seconds, in force at the UTC instant `utc` (seconds since epoch).
  std::int64_t offsetAt(std::int64_t utc) const;

  // Converts a local wall-clock time (seconds since the epoch, as if the wall clock were UTC)
  // to UTC. A local time that occurs twice (clocks turned back) and one that does not exist
  // (clocks turned forward) are both read with the offset in force before the change: the
  // first of two occurrences, and a skipped time as if the change had not happened yet.
  std::int64_t localToUtc(std::int64_t local) const;

 private:
  struct Type {
    std::int64_t offset = 0;
    bool dst = false;
  };

  std::string name_ = "UTC";
  std::int64_t fixed_offset_ = 0;
  std::vector<std::int64_t> transitions_;      // UTC, ascending
  std::vector<std::uint8_t> transition_type_;  // index into types_, per transition
  std::vector<Type> types_;
  bool has_footer_ = false;
  PosixRule footer_;
};

// Parses "+02:00", "-05", "+0530", "Z" (seconds east of UTC); false when malformed.
bool parseUtcOffset(std::string_view text, std::int64_t& seconds);

}  // namespace certgate::connectors::csv
