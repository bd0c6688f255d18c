#include "connectors/lms/csv/csv_parser.hpp"

#include <algorithm>
#include <cctype>

namespace certgate::connectors::csv {

namespace {

std::string_view trimView(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string joinHeader(const std::vector<std::string>& header) {
  std::string out;
  for (const auto& h : header) {
    if (!out.empty()) out += ", ";
    out += h;
  }
  return out;
}

}  // namespace

core::Status CsvReader::open(const std::string& path) {
  if (auto st = in_.open(path); !st) return st;
  in_.skipBom();
  return {};
}

CsvReader::Status CsvReader::finish(CsvRecord& rec, Status ok) {
  const std::size_t bad = firstInvalidUtf8(rec.raw);
  if (bad == std::string_view::npos) return ok;
  bad_line_ =
      rec.line + static_cast<std::size_t>(std::count(
                     rec.raw.begin(), rec.raw.begin() + static_cast<std::ptrdiff_t>(bad), '\n'));
  return Status::NotUtf8;
}

CsvReader::Status CsvReader::next(CsvRecord& rec) {
  enum class State { Start, Unquoted, Quoted, AfterQuote };
  rec.raw.clear();
  rec.line = line_;
  rec.terminated = true;
  // Fields are written into rec.fields in place, reusing the strings (and their allocations) of
  // the previous record; `n` counts the finished ones and rec.fields is cut to n on return.
  std::vector<std::string>& fields = rec.fields;
  std::size_t n = 0;
  auto openField = [&]() -> std::string& {
    if (n == fields.size()) {
      fields.emplace_back();
    } else {
      fields[n].clear();
    }
    return fields[n];
  };
  auto done = [&](Status status) {
    fields.resize(n);
    return status;
  };
  std::string* field = &openField();
  State st = State::Start;
  bool any = false;
  for (;;) {
    const int c = in_.get();
    if (c < 0) {
      if (in_.failed()) return done(Status::ReadError);
      rec.terminated = false;
      if (st == State::Quoted) {
        ++n;
        return finish(rec, done(Status::Unterminated));
      }
      if (!any) return done(Status::End);
      ++n;
      return finish(rec, done(Status::Record));
    }
    const auto ch = static_cast<char>(c);
    if (rec.raw.size() >= kMaxRecordBytes) return done(Status::TooLong);
    if (st == State::Quoted) {
      rec.raw += ch;
      if (ch == '"') {
        if (in_.peek() == '"') {
          in_.get();
          rec.raw += '"';
          *field += '"';
        } else {
          st = State::AfterQuote;
        }
        continue;
      }
      if (ch == '\n' || (ch == '\r' && in_.peek() != '\n')) ++line_;
      *field += ch;
      continue;
    }
    if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && in_.peek() == '\n') in_.get();
      ++line_;
      if (st == State::Start && n == 0) {  // a blank line
        rec.line = line_;
        any = false;
        continue;
      }
      ++n;
      return finish(rec, done(Status::Record));
    }
    any = true;
    rec.raw += ch;
    if (ch == delimiter_) {
      ++n;
      field = &openField();
      st = State::Start;
      continue;
    }
    if (st == State::Start && ch == '"') {
      st = State::Quoted;
      continue;
    }
    *field += ch;
    st = State::Unquoted;
    // The rest of an unquoted field, as far as it is buffered: taken in one piece. It stops
    // before a delimiter or line end, and never takes the record past kMaxRecordBytes (the byte
    // by byte path above reports TooLong at the same byte as before).
    const std::string_view ahead = in_.buffered();
    const std::size_t room = kMaxRecordBytes - std::min(rec.raw.size(), kMaxRecordBytes);
    const std::size_t limit = std::min(ahead.size(), room);
    std::size_t k = 0;
    while (k < limit && ahead[k] != delimiter_ && ahead[k] != '\n' && ahead[k] != '\r') ++k;
    if (k > 0) {
      rec.raw.append(ahead.data(), k);
      field->append(ahead.data(), k);
      in_.skip(k);
    }
  }
}

std::size_t findColumn(const std::vector<std::string>& header, std::string_view column) {
  column = trimView(column);
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == column) return i;
  for (std::size_t i = 0; i < header.size(); ++i)
    if (equalsIgnoreCase(header[i], column)) return i;
  return std::string::npos;
}

const std::string* Row::get(std::string_view column) const {
  if (header == nullptr) return nullptr;
  const std::size_t i = findColumn(*header, column);
  if (i == std::string::npos || i >= fields.size()) return nullptr;
  return &fields[i];
}

core::Result<std::size_t> readCsvFile(const std::string& path, char delimiter,
                                      const std::vector<std::string>& required_columns,
                                      const std::function<void(const Row&)>& fn) {
  CsvReader reader(delimiter);
  if (auto st = reader.open(path); !st) return st.error();
  auto fail = [&](std::size_t line, const std::string& message, const std::string& hint) {
    return core::makeError(core::ErrorKind::Invalid, message, path + ":" + std::to_string(line),
                           hint);
  };
  auto problem = [&](CsvReader::Status st, const CsvRecord& rec) -> core::Error {
    switch (st) {
      case CsvReader::Status::NotUtf8:
        return fail(reader.badLine(), "not UTF-8 text", "export the file as UTF-8");
      case CsvReader::Status::Unterminated:
        return fail(rec.line, "truncated: the file ends inside a quoted field",
                    "the file is incomplete or has an unbalanced quote; export it again");
      case CsvReader::Status::TooLong:
        return fail(rec.line, "a record is longer than 1 MiB (an unbalanced quote?)",
                    "check the quoting of the file");
      case CsvReader::Status::ReadError:
        return core::makeError(core::ErrorKind::Permanent, "read error",
                               path + ":" + std::to_string(rec.line));
      default:
        return core::makeError(core::ErrorKind::Internal, "unexpected reader state", path);
    }
  };

  CsvRecord rec;
  CsvReader::Status st = reader.next(rec);
  if (st == CsvReader::Status::End)
    return fail(1, "empty file: no header row", "the first line must name the columns");
  if (st != CsvReader::Status::Record) return problem(st, rec);
  std::vector<std::string> header;
  header.reserve(rec.fields.size());
  for (const auto& f : rec.fields) header.emplace_back(trimView(f));
  const std::size_t header_line = rec.line;
  std::string missing;
  for (const auto& col : required_columns) {
    if (findColumn(header, col) != std::string::npos) continue;
    if (!missing.empty()) missing += ", ";
    missing += "'" + col + "'";
  }
  if (!missing.empty())
    return fail(header_line,
                "missing column(s) " + missing + "; header found: " + joinHeader(header),
                "export the missing columns or fix the configured column names");

  std::size_t rows = 0;
  Row row;
  row.header = &header;
  for (;;) {
    st = reader.next(rec);
    if (st == CsvReader::Status::End) break;
    if (st != CsvReader::Status::Record) return problem(st, rec);
    if (!rec.terminated && rec.fields.size() < header.size())
      return fail(rec.line,
                  "truncated: the last row has " + std::to_string(rec.fields.size()) + " of " +
                      std::to_string(header.size()) + " fields and no line end",
                  "the file is incomplete; export it again");
    ++rows;
    row.line = rec.line;
    row.fields = std::move(rec.fields);
    row.raw = excerpt(rec.raw);
    fn(row);
    rec.fields = std::move(row.fields);  // reuse the allocation
  }
  return rows;
}

}  // namespace certgate::connectors::csv
