#include "connectors/lms/csv/csv_source.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/common/options.hpp"
#include "core/identity.hpp"
#include "connectors/lms/csv/date_format.hpp"
#include "connectors/lms/csv/file_reader.hpp"
#include "connectors/lms/csv/time_zone.hpp"

namespace certgate::connectors::csv {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- fields ------------------------------------------------------------------------------------

// certgate fields a `columns:` map can name, in the order they are documented.
constexpr std::size_t kItem = 0, kCompletedAt = 1, kEmployeeId = 2, kEmail = 3, kUser = 4,
                      kName = 5, kPopulation = 6, kStatus = 7, kScore = 8, kMaxScore = 9,
                      kPass = 10, kAttempt = 11, kRecordId = 12, kExpiresAt = 13, kFieldCount = 14;
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "item",   "completed_at", "employee_id", "email", "user",    "name",      "population",
    "status", "score",        "max_score",   "pass",  "attempt", "record_id", "expires_at"};

std::optional<std::size_t> fieldIndex(std::string_view name) {
  for (std::size_t i = 0; i < kFieldCount; ++i)
    if (kFieldNames[i] == name) return i;
  return std::nullopt;
}

std::string fieldList() {
  std::string out;
  for (const auto f : kFieldNames) {
    if (!out.empty()) out += ", ";
    out += f;
  }
  return out;
}

enum class Format { Csv, Jsonl };
enum class ScoreScale { Raw, Percent, Fraction };
enum class StatusOutcome { Completed, Passed, Failed, Ignore };

struct Config {
  std::string directory;  // resolved
  std::string pattern;
  Format format = Format::Csv;
  char delimiter = ',';
  std::array<std::string, kFieldCount> columns;  // "" = not mapped
  DateFormat date_format;
  TimeZone time_zone;
  ScoreScale scale = ScoreScale::Raw;
  std::optional<double> default_max;
  std::vector<std::pair<std::string, StatusOutcome>> status_values;  // lower-case keys
  std::int64_t min_rows = 1;
};

// ---- small text helpers ------------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string inQuotes(std::string_view s) {
  return "'" + excerpt(s, 80) + "'";
}

std::string formatNumber(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc{}) return "?";
  return std::string(buf, end);
}

double round6(double v) {
  return std::round(v * 1e6) / 1e6;
}

// A decimal number; "+" allowed; NaN and infinities are not numbers here.
std::optional<double> parseDecimal(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

const std::vector<std::pair<std::string, StatusOutcome>>& builtinStatuses() {
  static const std::vector<std::pair<std::string, StatusOutcome>> kBuiltin = {
      {"completed", StatusOutcome::Completed}, {"complete", StatusOutcome::Completed},
      {"finished", StatusOutcome::Completed},  {"passed", StatusOutcome::Passed},
      {"pass", StatusOutcome::Passed},         {"failed", StatusOutcome::Failed},
      {"fail", StatusOutcome::Failed},         {"not passed", StatusOutcome::Failed},
      {"incomplete", StatusOutcome::Failed},
  };
  return kBuiltin;
}

std::optional<StatusOutcome> parseStatusOutcome(std::string_view s) {
  if (s == "completed") return StatusOutcome::Completed;
  if (s == "passed") return StatusOutcome::Passed;
  if (s == "failed") return StatusOutcome::Failed;
  if (s == "ignore") return StatusOutcome::Ignore;
  return std::nullopt;
}

// ---- the source --------------------------------------------------------------------------------

struct UnitResult {
  bool complete = true;
  std::vector<std::string> problems;
  std::int64_t records = 0;
  std::int64_t quarantined = 0;

  void fail(std::string problem) {
    complete = false;
    problems.push_back(std::move(problem));
  }
};

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

class CsvSource final : public ports::LmsSource {
 public:
  CsvSource(std::string name, Config cfg) : name_(std::move(name)), cfg_(std::move(cfg)) {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "csv"; }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    try {
      return fetchFiles(cursor, now, sink);
    } catch (const std::exception& e) {
      return core::makeError(core::ErrorKind::Internal,
                             std::string("unexpected failure while reading exports: ") + e.what(),
                             "source " + name_);
    }
  }

 private:
  core::Result<ports::FetchOutcome> fetchFiles(const std::string& cursor, core::Instant now,
                                               ports::RecordSink& sink);
  void readCsv(const std::string& path, const std::string& file, const std::string& digest,
               ports::RecordSink& sink, UnitResult& unit);
  void readJsonl(const std::string& path, const std::string& file, const std::string& digest,
                 ports::RecordSink& sink, UnitResult& unit);

  // One row's values by field ("" when the field is not mapped or the cell is empty).
  struct Values {
    std::array<std::string, kFieldCount> v;
  };
  enum class Emitted { Recorded, Quarantined, Ignored };
  Emitted emit(const Values& values, const std::string& location, std::string_view raw,
               ports::RecordSink& sink, UnitResult& unit) const;
  void quarantine(ports::RecordSink& sink, UnitResult& unit, std::string location,
                  std::string reason, std::string_view raw, std::string external_id = {}) const;
  std::string describe(std::size_t field) const;

  std::string name_;
  Config cfg_;
};

std::string CsvSource::describe(std::size_t field) const {
  return std::string(kFieldNames[field]) + (cfg_.format == Format::Csv ? " (column " : " (key ") +
         inQuotes(cfg_.columns[field]) + ")";
}

void CsvSource::quarantine(ports::RecordSink& sink, UnitResult& unit, std::string location,
                           std::string reason, std::string_view raw,
                           std::string external_id) const {
  ports::QuarantinedRecord q;
  q.external_id = std::move(external_id);
  q.location = std::move(location);
  q.reason = std::move(reason);
  q.raw = excerpt(raw, 300);
  sink.quarantine(std::move(q));
  ++unit.quarantined;
}

CsvSource::Emitted CsvSource::emit(const Values& values, const std::string& location,
                                   std::string_view raw, ports::RecordSink& sink,
                                   UnitResult& unit) const {
  auto get = [&](std::size_t f) { return trim(values.v[f]); };
  auto reject = [&](std::string reason, std::string external_id = {}) {
    quarantine(sink, unit, location, std::move(reason), raw, std::move(external_id));
    return Emitted::Quarantined;
  };

  // Rows the operator chose to ignore (e.g. "In Progress") are dropped before any check.
  std::optional<core::FactStatus> status;
  bool status_unknown = false;
  if (!cfg_.columns[kStatus].empty()) {
    const std::string text = lower(get(kStatus));
    status_unknown = true;
    for (const auto& [known, outcome] : cfg_.status_values) {
      if (known != text) continue;
      status_unknown = false;
      switch (outcome) {
        case StatusOutcome::Completed:
          status = core::FactStatus::Completed;
          break;
        case StatusOutcome::Passed:
          status = core::FactStatus::Passed;
          break;
        case StatusOutcome::Failed:
          status = core::FactStatus::Failed;
          break;
        case StatusOutcome::Ignore:
          return Emitted::Ignored;
      }
      break;
    }
  }

  ports::SourceRecord rec;
  rec.location = location;
  rec.lms_item = std::string(get(kItem));
  if (rec.lms_item.empty())
    return reject(describe(kItem) +
                  " is empty; every record needs the LMS item id: fix the export");
  rec.employee_id = std::string(get(kEmployeeId));
  rec.email = std::string(get(kEmail));
  rec.source_user = std::string(get(kUser));
  if (rec.employee_id.empty() && rec.email.empty() && rec.source_user.empty())
    return reject(
        "no identity: employee_id, email and user are all empty, so the record cannot "
        "be matched to a person; add an identity column to the export");
  rec.display_name = std::string(get(kName));
  rec.population = std::string(get(kPopulation));

  const std::string_view completed = get(kCompletedAt);
  if (completed.empty())
    return reject(describe(kCompletedAt) +
                  " is empty; a completion needs its date: fix the export "
                  "or filter unfinished records out of the report");
  const auto at = cfg_.date_format.read(completed, cfg_.time_zone);
  if (!at)
    return reject(describe(kCompletedAt) + " value " + inQuotes(completed) +
                  " is not a valid date in date_format '" + cfg_.date_format.text() +
                  "'; fix the export or the source's date_format");
  rec.at = *at;

  const std::string_view attempt = get(kAttempt);
  if (!attempt.empty()) {
    unsigned long v = 0;
    const auto [end, ec] = std::from_chars(attempt.data(), attempt.data() + attempt.size(), v);
    if (ec != std::errc{} || end != attempt.data() + attempt.size())
      return reject(describe(kAttempt) + " value " + inQuotes(attempt) +
                    " is not a whole number; fix the export");
    if (v < 1 || v > 65535)
      return reject(describe(kAttempt) + " value " + inQuotes(attempt) +
                    " is outside 1..65535; fix the export");
    rec.attempt = static_cast<std::uint16_t>(v);
  }

  const std::string_view record_id = get(kRecordId);
  if (!record_id.empty()) {
    rec.external_id = std::string(record_id);
  } else {
    // The first identity the row carries, so that an added column does not change the id.
    // key = "<kind>:<identity, lower-cased>" US item US <completed, unix s> US attempt
    std::string_view kind = "user:";
    std::string_view who = rec.source_user;
    if (!rec.employee_id.empty()) {
      kind = "employee_id:";
      who = rec.employee_id;
    } else if (!rec.email.empty()) {
      kind = "email:";
      who = rec.email;
    }
    std::string key;
    key.reserve(kind.size() + who.size() + rec.lms_item.size() + 32);
    key.append(kind);
    for (const char c : who) key += core::lowerAscii(c);
    key += '\x1f';
    key.append(rec.lms_item);
    key += '\x1f';
    key.append(std::to_string(rec.at.time_since_epoch().count()));
    key += '\x1f';
    key.append(std::to_string(rec.attempt));
    rec.external_id = "h:";
    rec.external_id.append(sha256Hex(key));
  }

  if (status_unknown) {
    if (get(kStatus).empty())
      return reject(describe(kStatus) + " is empty; fix the export", rec.external_id);
    return reject(describe(kStatus) + " value " + inQuotes(get(kStatus)) +
                      " is not known; map it under status_values to completed, passed, failed "
                      "or ignore",
                  rec.external_id);
  }
  if (status) rec.status = *status;

  const std::string_view pass = get(kPass);
  if (!pass.empty()) {
    const std::string p = lower(pass);
    if (p == "true" || p == "yes" || p == "y" || p == "1" || p == "passed" || p == "pass") {
      rec.lms_pass = 1;
    } else if (p == "false" || p == "no" || p == "n" || p == "0" || p == "failed" || p == "fail") {
      rec.lms_pass = 0;
    } else {
      return reject(describe(kPass) + " value " + inQuotes(pass) +
                        " is not a pass flag (true/false, yes/no, 1/0, passed/failed)",
                    rec.external_id);
    }
  }

  const std::string_view score_text = get(kScore);
  if (!score_text.empty()) {
    auto number = [&](std::string_view text, bool percent_sign) -> std::optional<double> {
      std::string t(text);
      if (percent_sign && !t.empty() && t.back() == '%')
        t = std::string(trim(t.substr(0, t.size() - 1)));
      if (t.find(',') != std::string::npos) {
        if (cfg_.delimiter == ',' || t.find('.') != std::string::npos ||
            std::count(t.begin(), t.end(), ',') != 1)
          return std::nullopt;
        std::replace(t.begin(), t.end(), ',', '.');
      }
      return parseDecimal(t);
    };
    auto notANumber = [&](std::size_t field, std::string_view text) {
      std::string why = describe(field) + " value " + inQuotes(text) + " is not a number";
      if (text.find(',') != std::string_view::npos && cfg_.delimiter == ',')
        why +=
            " (a decimal comma is read only when the delimiter is not ','; export with a "
            "decimal point or use delimiter ';')";
      else if (!text.empty() && text.back() == '%' && cfg_.scale != ScoreScale::Percent)
        why += " (for percentages set score_scale: percent)";
      return why + "; fix the export";
    };
    const auto value = number(score_text, cfg_.scale == ScoreScale::Percent);
    if (!value) return reject(notANumber(kScore, score_text), rec.external_id);
    if (*value < 0)
      return reject(describe(kScore) + " value " + inQuotes(score_text) +
                        " is negative; scores are never below 0: fix it in the LMS",
                    rec.external_id);
    switch (cfg_.scale) {
      case ScoreScale::Raw: {
        double max = 0;
        const std::string_view max_text = get(kMaxScore);
        if (!max_text.empty()) {
          const auto m = number(max_text, false);
          if (!m) return reject(notANumber(kMaxScore, max_text), rec.external_id);
          max = *m;
        } else if (cfg_.default_max) {
          max = *cfg_.default_max;
        } else {
          return reject(describe(kMaxScore) +
                            " is empty and no default_max_score is set, so the score cannot be "
                            "read; fill it in the export or set default_max_score",
                        rec.external_id);
        }
        if (max <= 0)
          return reject("max_score " + formatNumber(max) + " is not positive; fix the export",
                        rec.external_id);
        if (*value > max)
          return reject("score " + formatNumber(*value) + " is greater than max_score " +
                            formatNumber(max) + " (" + describe(kScore) +
                            "): an impossible score; fix it in the LMS, or check score_scale",
                        rec.external_id);
        rec.score = *value;
        rec.max_score = max;
        break;
      }
      case ScoreScale::Percent:
        if (*value > 100)
          return reject("score " + formatNumber(*value) + "% is greater than 100% (" +
                            describe(kScore) +
                            ", score_scale percent): an impossible score; fix "
                            "it in the LMS, or check score_scale",
                        rec.external_id);
        rec.score = *value;
        rec.max_score = 100;
        break;
      case ScoreScale::Fraction:
        if (*value > 1)
          return reject("score " + formatNumber(*value) + " is greater than 1 (" +
                            describe(kScore) +
                            ", score_scale fraction): an impossible score; "
                            "fix it in the LMS, or check score_scale",
                        rec.external_id);
        rec.score = round6(*value * 100);
        rec.max_score = 100;
        break;
    }
  }

  const std::string_view expires = get(kExpiresAt);
  if (!expires.empty()) {
    const auto e = cfg_.date_format.read(expires, cfg_.time_zone);
    if (!e)
      return reject(describe(kExpiresAt) + " value " + inQuotes(expires) +
                        " is not a valid date in date_format '" + cfg_.date_format.text() +
                        "'; fix the export or the source's date_format",
                    rec.external_id);
    rec.lms_expiry = *e;
  }

  sink.record(std::move(rec));
  ++unit.records;
  return Emitted::Recorded;
}

void CsvSource::readCsv(const std::string& path, const std::string& file, const std::string& digest,
                        ports::RecordSink& sink, UnitResult& unit) {
  CsvReader reader(cfg_.delimiter);
  if (auto st = reader.open(path); !st) {
    unit.fail("cannot open: " + st.error().message);
    return;
  }
  auto at = [&](std::size_t line) { return file + ":" + std::to_string(line); };
  auto notUtf8 = [&](const CsvRecord& rec) {
    quarantine(sink, unit, at(reader.badLine()),
               "bytes that are not UTF-8 text; the rest of the file was not read: export the "
               "report as UTF-8",
               rec.raw);
    unit.fail("not UTF-8 at line " + std::to_string(reader.badLine()));
  };
  auto tooLong = [&](const CsvRecord& rec) {
    quarantine(sink, unit, at(rec.line),
               "a record longer than 1 MiB (an unbalanced quote?); the rest of the file was not "
               "read: check the export's quoting",
               rec.raw);
    unit.fail("record too long at line " + std::to_string(rec.line));
  };
  auto truncated = [&](const CsvRecord& rec, const std::string& detail) {
    quarantine(sink, unit, at(rec.line),
               "truncated: " + detail +
                   "; the export is incomplete: let the LMS finish writing "
                   "it (or export it again)",
               rec.raw);
    unit.fail("truncated at line " + std::to_string(rec.line));
  };

  CsvRecord rec;
  CsvReader::Status st = reader.next(rec);
  switch (st) {
    case CsvReader::Status::Record:
      break;
    case CsvReader::Status::End:
      unit.fail("empty file: no header row");
      return;
    case CsvReader::Status::NotUtf8:
      notUtf8(rec);
      return;
    case CsvReader::Status::TooLong:
      tooLong(rec);
      return;
    case CsvReader::Status::Unterminated:
      truncated(rec, "the header ends inside a quoted field");
      return;
    case CsvReader::Status::ReadError:
      unit.fail("read error");
      return;
  }
  std::vector<std::string> header;
  header.reserve(rec.fields.size());
  for (const auto& f : rec.fields) header.emplace_back(trim(f));
  std::array<std::size_t, kFieldCount> index{};
  std::string missing, missing_short;
  for (std::size_t f = 0; f < kFieldCount; ++f) {
    index[f] = std::string::npos;
    if (cfg_.columns[f].empty()) continue;
    index[f] = findColumn(header, cfg_.columns[f]);
    if (index[f] != std::string::npos) continue;
    if (!missing.empty()) {
      missing += ", ";
      missing_short += ", ";
    }
    missing += inQuotes(cfg_.columns[f]) + " (columns." + std::string(kFieldNames[f]) + ")";
    missing_short += inQuotes(cfg_.columns[f]);
  }
  if (!missing.empty()) {
    std::string found;
    for (const auto& h : header) found += (found.empty() ? "" : ", ") + inQuotes(h);
    const bool one_column =
        header.size() == 1 && header[0].find_first_of(",;\t|") != std::string::npos;
    quarantine(sink, unit, at(rec.line),
               "missing column(s) " + missing + "; header found: " + found +
                   (one_column ? " (a single column: is `delimiter` right?)" : "") +
                   "; the whole file was set aside: fix `columns` in the source configuration "
                   "or the LMS report definition",
               rec.raw);
    unit.fail("missing column(s) " + missing_short);
    return;
  }

  std::int64_t rows = 0;
  bool at_end = false;
  Values values;
  while (!at_end) {
    st = reader.next(rec);
    switch (st) {
      case CsvReader::Status::End:
        at_end = true;
        continue;
      case CsvReader::Status::NotUtf8:
        notUtf8(rec);
        return;
      case CsvReader::Status::TooLong:
        tooLong(rec);
        return;
      case CsvReader::Status::ReadError:
        unit.fail("read error");
        return;
      case CsvReader::Status::Unterminated:
        ++rows;
        truncated(rec, "the file ends inside a quoted field");
        at_end = true;
        continue;
      case CsvReader::Status::Record:
        break;
    }
    ++rows;
    if (!rec.terminated && rec.fields.size() < header.size()) {
      truncated(rec, "the last row has " + std::to_string(rec.fields.size()) + " of " +
                         std::to_string(header.size()) + " fields and no line end");
      at_end = true;
      continue;
    }
    if (rec.fields.size() != header.size()) {
      quarantine(sink, unit, at(rec.line),
                 "the row has " + std::to_string(rec.fields.size()) + " fields, the header has " +
                     std::to_string(header.size()) +
                     "; a value probably contains an unquoted delimiter or line break: quote it "
                     "in the export",
                 rec.raw);
      continue;
    }
    for (std::size_t f = 0; f < kFieldCount; ++f) {
      if (index[f] == std::string::npos) {
        values.v[f].clear();
      } else {
        values.v[f] = rec.fields[index[f]];  // two fields may share a column
      }
    }
    emit(values, at(rec.line), rec.raw, sink, unit);
  }
  if (reader.digestHex() != digest)
    unit.fail("the file changed while it was read; it will be read again next time");
  if (rows < cfg_.min_rows)
    unit.fail("empty export: " + std::to_string(rows) + " data row(s), min_rows is " +
              std::to_string(cfg_.min_rows));
}

// The text of a JSON value as a CSV cell would hold it; "" for null and absent values.
std::string jsonText(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return v.get_ref<const std::string&>();
    case Json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return std::to_string(v.get<std::int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(v.get<std::uint64_t>());
    case Json::value_t::null:
    case Json::value_t::discarded:
      return {};
    default:
      return v.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

const Json* jsonLookup(const Json& obj, const std::string& key) {
  if (const auto it = obj.find(key); it != obj.end()) return &*it;
  const Json* cur = &obj;
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t dot = std::min(key.find('.', start), key.size());
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(key.substr(start, dot - start));
    if (it == cur->end()) return nullptr;
    cur = &*it;
    start = dot + 1;
  }
  return cur;
}

void CsvSource::readJsonl(const std::string& path, const std::string& file,
                          const std::string& digest, ports::RecordSink& sink, UnitResult& unit) {
  FileReader in;
  if (auto st = in.open(path); !st) {
    unit.fail("cannot open: " + st.error().message);
    return;
  }
  in.skipBom();
  std::string line;
  bool terminated = false, too_long = false;
  std::size_t line_no = 0;
  std::int64_t rows = 0;
  Values values;
  while (in.readLine(line, terminated, kMaxRecordBytes, too_long)) {
    ++line_no;
    const std::string location = file + ":" + std::to_string(line_no);
    if (too_long) {
      quarantine(sink, unit, location,
                 "a line longer than 1 MiB; the rest of the file was not read: check the export",
                 line);
      unit.fail("line too long at line " + std::to_string(line_no));
      return;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    ++rows;
    if (const std::size_t bad = firstInvalidUtf8(line); bad != std::string::npos) {
      quarantine(sink, unit, location,
                 "bytes that are not UTF-8 text; the rest of the file was not read: export the "
                 "report as UTF-8",
                 line);
      unit.fail("not UTF-8 at line " + std::to_string(line_no));
      return;
    }
    const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      if (!terminated) {
        quarantine(sink, unit, location,
                   "truncated: the last line is not complete JSON and has no line end; the export "
                   "is incomplete: let the LMS finish writing it (or export it again)",
                   line);
        unit.fail("truncated at line " + std::to_string(line_no));
        break;
      }
      quarantine(sink, unit, location, "not valid JSON; fix the export", line);
      continue;
    }
    if (!j.is_object()) {
      quarantine(sink, unit, location, "not a JSON object; each line must be one object", line);
      continue;
    }
    for (std::size_t f = 0; f < kFieldCount; ++f) {
      values.v[f].clear();
      if (cfg_.columns[f].empty()) continue;
      if (const Json* v = jsonLookup(j, cfg_.columns[f])) values.v[f] = jsonText(*v);
    }
    emit(values, location, line, sink, unit);
  }
  if (in.failed()) {
    unit.fail("read error");
    return;
  }
  if (in.digestHex() != digest)
    unit.fail("the file changed while it was read; it will be read again next time");
  if (rows < cfg_.min_rows)
    unit.fail("empty export: " + std::to_string(rows) + " data row(s), min_rows is " +
              std::to_string(cfg_.min_rows));
}

core::Result<ports::FetchOutcome> CsvSource::fetchFiles(const std::string& /*cursor*/,
                                                        core::Instant /*now*/,
                                                        ports::RecordSink& sink) {
  const std::string where = "source " + name_;
  std::error_code ec;
  const fs::file_status status = fs::status(cfg_.directory, ec);
  if (!fs::exists(status))
    return core::makeError(core::ErrorKind::NotFound,
                           "export directory " + cfg_.directory + " does not exist", where,
                           "create it and point the LMS's scheduled report export at it, or fix "
                           "`directory` in the source configuration");
  if (!fs::is_directory(status))
    return core::makeError(core::ErrorKind::Invalid, cfg_.directory + " is not a directory", where,
                           "`directory` must name the directory the LMS exports into");

  std::vector<std::string> names;
  fs::directory_iterator it(cfg_.directory, ec);
  if (ec)
    return core::makeError(core::ErrorKind::Permanent,
                           "cannot list " + cfg_.directory + ": " + ec.message(), where,
                           "check that certgate may read the directory");
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string file = it->path().filename().string();
    if (::fnmatch(cfg_.pattern.c_str(), file.c_str(), FNM_PERIOD) != 0) continue;
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    names.push_back(file);
  }
  if (ec)
    return core::makeError(core::ErrorKind::Permanent,
                           "cannot list " + cfg_.directory + ": " + ec.message(), where,
                           "check that certgate may read the directory");
  std::sort(names.begin(), names.end());

  ports::FetchOutcome out;
  if (names.empty()) {
    out.complete = false;
    out.problem = "no export files in " + cfg_.directory + " (pattern '" + cfg_.pattern + "')";
    return out;
  }
  std::vector<std::string> problems;
  for (const auto& file : names) {
    const std::string path = (fs::path(cfg_.directory) / file).string();
    ports::UnitInfo unit_info;
    // Every file is hashed on every run (the ledger key is the content, never name or mtime);
    // the documentation asks operators to archive old exports.
    auto digest = sha256File(path, &unit_info.bytes);
    if (!digest) {
      problems.push_back(file + ": " + digest.error().message);
      continue;
    }
    unit_info.key = "sha256:" + *digest;
    unit_info.name = file;
    ++out.units_seen;
    if (sink.alreadyProcessed(unit_info)) {
      ++out.units_skipped;
      continue;
    }
    sink.beginUnit(unit_info);
    UnitResult unit;
    if (cfg_.format == Format::Csv) {
      readCsv(path, file, *digest, sink, unit);
    } else {
      readJsonl(path, file, *digest, sink, unit);
    }
    const std::string problem = join(unit.problems, "; ");
    sink.endUnit(unit_info, unit.complete, problem);
    out.records += unit.records;
    out.quarantined += unit.quarantined;
    if (!unit.complete) {
      std::string p = file;
      p += ": ";
      p += problem;
      problems.push_back(std::move(p));
    }
  }
  out.next_cursor = names.back();
  out.complete = problems.empty();
  out.problem = join(problems, "; ");
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

// Options are read as written (each check trims what it needs) and shown in messages as
// inQuotes() shows them.
options::OptionReader optionReader(const std::string& name, const ports::Options& options) {
  return options::OptionReader(
      "source '" + name + "'", options,
      {.trim = false, .quote = [](std::string_view v) { return inQuotes(v); }});
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "csv";
    s.description =
        "Reads LMS report exports (CSV or JSON Lines) dropped into a directory on a schedule";
    s.keys = {
        {"directory", ValueType::Path, true, "",
         "Directory the LMS's scheduled export writes into (relative to the config file)"},
        {"pattern", ValueType::String, false, "*.csv",
         "Glob selecting export files, in name order (*.jsonl by default with format jsonl); "
         "hidden files never match"},
        {"format", ValueType::String, false, "csv", "csv | jsonl (one JSON object per line)"},
        {"delimiter", ValueType::String, false, ",",
         "CSV field delimiter: one character, or `tab`"},
        {"columns", ValueType::Map, true, "",
         "certgate field -> column header (or JSON key, dotted for nested): item and "
         "completed_at required; at least one of employee_id, email, user; optional name, "
         "population, status, score, max_score, pass, attempt, record_id, expires_at"},
        {"date_format", ValueType::String, false, "iso8601",
         "iso8601 | unix | unix_ms | a pattern such as %d/%m/%Y %H:%M "
         "(%Y %y %m %b %d %H %I %M %S %p %z)"},
        {"time_zone", ValueType::String, false, "UTC",
         "Zone of dates written without an offset: an IANA name (Europe/Berlin), UTC, or +02:00"},
        {"score_scale", ValueType::String, false, "raw",
         "raw (score out of max_score) | percent (0-100, \"85%\" accepted) | fraction (0-1)"},
        {"default_max_score", ValueType::String, false, "",
         "Maximum score (a number) when score_scale is raw and the export has no max_score"},
        {"status_values", ValueType::Map, false, "",
         "LMS status text (case-insensitive) -> completed | passed | failed | ignore, on top of "
         "the built-in completed/complete/finished/passed/pass/failed/fail/not passed/incomplete"},
        {"min_rows", ValueType::Int, false, "1",
         "An export file with fewer data rows is incomplete (guards against empty exports)"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeSource(const std::string& name,
                                                           const ports::Options& options,
                                                           const std::string& base_dir) {
  try {
    const options::OptionReader opts = optionReader(name, options);
    Config cfg;

    if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();

    // directory
    auto directory =
        opts.required("directory", "name the directory the LMS's scheduled export writes into");
    if (!directory) return directory.error();
    fs::path dir(std::string(trim(*directory)));
    if (dir.is_relative() && !base_dir.empty()) dir = fs::path(base_dir) / dir;
    cfg.directory = dir.lexically_normal().string();
    if (cfg.directory.size() > 1 && cfg.directory.back() == '/') cfg.directory.pop_back();

    // format
    auto format =
        opts.choice("format", "csv", {"csv", "jsonl"}, options::OptionReader::Echo::Lowercased,
                    "use csv for comma-separated exports, jsonl for one JSON object per line");
    if (!format) return format.error();
    cfg.format = *format == "jsonl" ? Format::Jsonl : Format::Csv;

    // pattern
    auto pattern = opts.scalar("pattern");
    if (!pattern) return pattern.error();
    cfg.pattern =
        std::string(trim(pattern->value_or(cfg.format == Format::Csv ? "*.csv" : "*.jsonl")));
    if (cfg.pattern.empty() || cfg.pattern.find('/') != std::string::npos)
      return opts.error("pattern", "must be a file name glob without '/'",
                        "e.g. *.csv or completions-*.csv", opts.find("pattern"));

    // delimiter
    auto delimiter = opts.scalar("delimiter");
    if (!delimiter) return delimiter.error();
    if (delimiter->has_value()) {
      const std::string& d = **delimiter;
      if (d == "tab" || d == "\\t") {
        cfg.delimiter = '\t';
      } else if (d.size() == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r') {
        cfg.delimiter = d[0];
      } else {
        return opts.error("delimiter", inQuotes(d) + " is not a single character",
                          "use one character such as , or ; or |, or `tab`",
                          opts.find("delimiter"));
      }
    }

    // columns
    const ports::OptionValue* columns = opts.find("columns");
    if (columns == nullptr)
      return opts.error("columns", "is required",
                        "map certgate fields to the export's columns, at least item, "
                        "completed_at and one of employee_id/email/user");
    if (columns->shape != ports::OptionValue::Shape::Map)
      return opts.error("columns", "must be a map of certgate field -> column name",
                        "e.g. columns: {item: Course ID, completed_at: Completed, email: Email}",
                        columns);
    for (const auto& [field, column] : columns->map) {
      const auto f = fieldIndex(trim(field));
      if (!f)
        return opts.error("columns." + field, "is not a certgate field",
                          "valid fields: " + fieldList(), columns);
      if (!cfg.columns[*f].empty())
        return opts.error("columns." + field, "is given twice", "keep one", columns);
      if (trim(column).empty())
        return opts.error("columns." + field, "names no column",
                          "give the column header (or JSON key) holding " + field, columns);
      cfg.columns[*f] = std::string(trim(column));
    }
    for (const std::size_t f : {kItem, kCompletedAt}) {
      if (cfg.columns[f].empty())
        return opts.error("columns." + std::string(kFieldNames[f]), "is required",
                          "name the column that holds " +
                              std::string(f == kItem ? "the LMS item id (course, module or quiz)"
                                                     : "the completion date"),
                          columns);
    }
    if (cfg.columns[kEmployeeId].empty() && cfg.columns[kEmail].empty() &&
        cfg.columns[kUser].empty())
      return opts.error("columns", "maps no identity column",
                        "map at least one of employee_id, email, user", columns);

    // date_format
    auto date_format = opts.scalar("date_format");
    if (!date_format) return date_format.error();
    auto df = DateFormat::parse(std::string(trim(date_format->value_or("iso8601"))));
    if (!df)
      return opts.error("date_format", df.error().message, df.error().hint,
                        opts.find("date_format"));
    cfg.date_format = std::move(*df);

    // time_zone
    auto time_zone = opts.scalar("time_zone");
    if (!time_zone) return time_zone.error();
    auto tz = TimeZone::load(std::string(trim(time_zone->value_or("UTC"))));
    if (!tz)
      return opts.error("time_zone", tz.error().message, tz.error().hint, opts.find("time_zone"));
    cfg.time_zone = std::move(*tz);

    // score_scale
    auto scale = opts.choice("score_scale", "raw", {"raw", "percent", "fraction"},
                             options::OptionReader::Echo::Lowercased,
                             "raw: score out of max_score; percent: 0-100; fraction: 0-1");
    if (!scale) return scale.error();
    cfg.scale = *scale == "percent"    ? ScoreScale::Percent
                : *scale == "fraction" ? ScoreScale::Fraction
                                       : ScoreScale::Raw;

    // default_max_score
    auto default_max = opts.scalar("default_max_score");
    if (!default_max) return default_max.error();
    if (default_max->has_value()) {
      const auto v = parseDecimal(trim(**default_max));
      if (!v || *v <= 0)
        return opts.error("default_max_score",
                          inQuotes(**default_max) + " is not a positive number",
                          "e.g. default_max_score: 100", opts.find("default_max_score"));
      cfg.default_max = *v;
    }
    if (cfg.scale == ScoreScale::Raw && !cfg.columns[kScore].empty() &&
        cfg.columns[kMaxScore].empty() && !cfg.default_max)
      return opts.error("columns.score", "with score_scale raw a score needs its maximum",
                        "map columns.max_score, set default_max_score, or set score_scale to "
                        "percent or fraction",
                        columns);
    if (cfg.scale != ScoreScale::Raw && !cfg.columns[kMaxScore].empty())
      return opts.error("columns.max_score", "is only read with score_scale raw",
                        "remove columns.max_score, or set score_scale: raw", columns);

    // status_values
    if (const ports::OptionValue* sv = opts.find("status_values")) {
      if (sv->shape != ports::OptionValue::Shape::Map)
        return opts.error("status_values", "must be a map of LMS status -> outcome",
                          "e.g. status_values: {Satisfied: passed, In Progress: ignore}", sv);
      for (const auto& [text, outcome_text] : sv->map) {
        const auto outcome = parseStatusOutcome(lower(trim(outcome_text)));
        if (!outcome)
          return opts.error(
              "status_values." + text,
              inQuotes(outcome_text) + " is not one of completed, passed, failed, ignore",
              "map each LMS status to completed, passed, failed or ignore", sv);
        const std::string key = lower(trim(text));
        if (key.empty()) return opts.error("status_values", "has an empty status", "remove it", sv);
        cfg.status_values.emplace_back(key, *outcome);
      }
    }
    for (const auto& builtin : builtinStatuses()) cfg.status_values.push_back(builtin);

    // min_rows
    auto min_rows = opts.integer("min_rows", 0, std::numeric_limits<std::int64_t>::max(),
                                 "a whole number >= 0", "e.g. min_rows: 1");
    if (!min_rows) return min_rows.error();
    cfg.min_rows = min_rows->value_or(cfg.min_rows);

    return std::unique_ptr<ports::LmsSource>(std::make_unique<CsvSource>(name, std::move(cfg)));
  } catch (const std::exception& e) {
    return core::makeError(core::ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::csv
