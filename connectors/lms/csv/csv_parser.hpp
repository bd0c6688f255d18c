#pragma once
// Streaming RFC 4180 CSV reading.
//
// CsvReader hands out one record at a time: a UTF-8 byte order mark is skipped; fields may be
// quoted, with the delimiter, doubled quotes and line breaks (LF or CRLF) inside; records end at
// LF, CRLF or a lone CR; blank lines are skipped. Memory is O(record) and a record is capped at
// kMaxRecordBytes. Lenient where it cannot hurt: a quote inside an unquoted field, or text after
// a closing quote, is kept literally.
//
// readCsvFile() is the simple front end for files where any problem is fatal (roster files):
// header row -> callback per data row.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/lms/csv/file_reader.hpp"
#include "core/result.hpp"

namespace certgate::connectors::csv {

constexpr std::size_t kMaxRecordBytes = 1 << 20;

struct CsvRecord {
  std::size_t line = 0;  // physical line (1-based) where the record starts
  std::vector<std::string> fields;
  std::string raw;         // the record's bytes as read (without the line end)
  bool terminated = true;  // ended with a line break (false: at end of file)
};

class CsvReader {
 public:
  enum class Status {
    Record,        // `rec` holds the next record
    End,           // no more records
    Unterminated,  // end of file inside a quoted field (a truncated file); `rec` has what was read
    NotUtf8,       // the record is not valid UTF-8; badLine() tells where
    TooLong,       // the record exceeds kMaxRecordBytes (most likely an unbalanced quote)
    ReadError,     // the operating system reported a read error
  };

  explicit CsvReader(char delimiter) : delimiter_(delimiter) {}

  core::Status open(const std::string& path);
  Status next(CsvRecord& rec);
  std::size_t badLine() const { return bad_line_; }
  // SHA-256 of every byte read so far (of the whole file once next() returned End).
  std::string digestHex() { return in_.digestHex(); }

 private:
  Status finish(CsvRecord& rec, Status ok);

  char delimiter_;
  FileReader in_;
  std::size_t line_ = 1;
  std::size_t bad_line_ = 0;
};

// Header names trimmed; a column is found by exact name first, then case-insensitively.
// Returns npos when absent.
std::size_t findColumn(const std::vector<std::string>& header, std::string_view column);

// One data row of readCsvFile().
struct Row {
  std::size_t line = 0;                              // physical line where the row starts
  const std::vector<std::string>* header = nullptr;  // trimmed header names
  std::vector<std::string> fields;                   // as read (not trimmed)
  std::string raw;                                   // the row's text, at most 300 bytes
  // The field under `column` (see findColumn), nullptr when the header has no such column or
  // the row is shorter than the header.
  const std::string* get(std::string_view column) const;
  // False when the row has a different number of fields than the header.
  bool complete() const { return header != nullptr && fields.size() == header->size(); }
};

// Reads `path` (header row, then data rows) and calls fn for each data row; returns the number
// of data rows. Errors (Invalid unless said otherwise), each with where = "path:line":
// cannot open (NotFound / Permanent), read error, no header row, a required column missing
// (the message lists the header found), bytes that are not UTF-8, a truncated file (end of file
// inside quotes, or a last row without line end that is shorter than the header), a record over
// kMaxRecordBytes. Rows before the error have been passed to fn already.
core::Result<std::size_t> readCsvFile(const std::string& path, char delimiter,
                                      const std::vector<std::string>& required_columns,
                                      const std::function<void(const Row&)>& fn);

}  // namespace certgate::connectors::csv
