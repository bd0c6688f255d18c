#include "connectors/lms/csv/csv_parser.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "connectors/lms/csv/file_reader.hpp"
#include "test_support.hpp"

using certgate::connectors::csv::CsvReader;
using certgate::connectors::csv::CsvRecord;
using certgate::connectors::csv::excerpt;
using certgate::connectors::csv::firstInvalidUtf8;
using certgate::connectors::csv::readCsvFile;
using certgate::connectors::csv::Row;
using certgate::testing::fixturesDir;
using certgate::testing::TempDir;

namespace {

struct Collected {
  std::vector<std::size_t> lines;
  std::vector<std::vector<std::string>> fields;
  std::vector<std::string> header;
};

certgate::core::Result<std::size_t> collect(const std::string& path, Collected& out,
                                            const std::vector<std::string>& required = {},
                                            char delimiter = ',') {
  return readCsvFile(path, delimiter, required, [&](const Row& row) {
    out.header = *row.header;
    out.lines.push_back(row.line);
    out.fields.push_back(row.fields);
  });
}

}  // namespace

TEST_CASE(
    "csv parser: BOM and CRLF and a quoted comma and embedded newline and doubled quote parse "
    "exactly",
    "[connector][csv]") {
  Collected got;
  const auto rows = collect(fixturesDir() + "/rfc4180.csv", got, {"ID", "note"});
  REQUIRE(rows.ok());
  CHECK(*rows == 2);
  CHECK(got.header == std::vector<std::string>{"id", "name", "note"});  // BOM gone, trimmed
  REQUIRE(got.fields.size() == 2);
  CHECK(got.fields[0] == std::vector<std::string>{"1", "Doe, Jane", "said \"hi\"\r\nthen left"});
  CHECK(got.fields[1] == std::vector<std::string>{"2", "plain", ""});
  // The second row starts on physical line 4: the first spans lines 2 and 3.
  CHECK(got.lines == std::vector<std::size_t>{2, 4});
}

TEST_CASE("csv parser: Row::get finds columns exactly and then case-insensitively",
          "[connector][csv]") {
  std::string name, note;
  bool missing_is_null = false;
  const auto rows = readCsvFile(fixturesDir() + "/rfc4180.csv", ',', {}, [&](const Row& row) {
    if (row.line != 2) return;
    name = *row.get("NAME");
    note = *row.get(" note ");
    missing_is_null = row.get("nope") == nullptr;
    CHECK(row.complete());
  });
  REQUIRE(rows.ok());
  CHECK(name == "Doe, Jane");
  CHECK(note == "said \"hi\"\r\nthen left");
  CHECK(missing_is_null);
}

TEST_CASE("csv parser: readCsvFile reports a missing required column with the header found",
          "[connector][csv]") {
  Collected got;
  const auto rows = collect(fixturesDir() + "/rfc4180.csv", got, {"id", "email"});
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.error().where == fixturesDir() + "/rfc4180.csv:1");
  CHECK(rows.error().message == "missing column(s) 'email'; header found: id, name, note");
  CHECK(got.fields.empty());
}

TEST_CASE("csv parser: readCsvFile refuses bytes that are not UTF-8 and names the line",
          "[connector][csv]") {
  Collected got;
  const auto rows = collect(fixturesDir() + "/latin1.csv", got);
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.error().where == fixturesDir() + "/latin1.csv:3");
  CHECK(rows.error().message == "not UTF-8 text");
  CHECK(got.lines == std::vector<std::size_t>{2});  // the good row before was delivered
}

TEST_CASE("csv parser: readCsvFile refuses truncated files", "[connector][csv]") {
  SECTION("a last row shorter than the header without a line end") {
    Collected got;
    const auto rows = collect(fixturesDir() + "/truncated_row.csv", got);
    REQUIRE_FALSE(rows.ok());
    CHECK(rows.error().where == fixturesDir() + "/truncated_row.csv:3");
    CHECK(rows.error().message.rfind("truncated", 0) == 0);
  }
  SECTION("end of file inside a quoted field") {
    Collected got;
    const auto rows = collect(fixturesDir() + "/unterminated.csv", got);
    REQUIRE_FALSE(rows.ok());
    CHECK(rows.error().where == fixturesDir() + "/unterminated.csv:3");
    CHECK(rows.error().message == "truncated: the file ends inside a quoted field");
  }
}

TEST_CASE("csv parser: unreadable and empty files are errors", "[connector][csv]") {
  Collected got;
  const auto missing = collect(fixturesDir() + "/does-not-exist.csv", got);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == certgate::core::ErrorKind::NotFound);

  TempDir dir;
  const auto empty = collect(dir.write("empty.csv", ""), got);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message == "empty file: no header row");
}

TEST_CASE(
    "csv parser: a full last row without line end is fine and a lone CR ends a record and "
    "blank lines are skipped",
    "[connector][csv]") {
  TempDir dir;
  Collected got;
  const auto rows = collect(dir.write("x.csv", "a;b\r\r1;\"x;y\"\r2;3"), got, {}, ';');
  REQUIRE(rows.ok());
  CHECK(*rows == 2);
  CHECK(got.fields[0] == std::vector<std::string>{"1", "x;y"});
  CHECK(got.fields[1] == std::vector<std::string>{"2", "3"});
  CHECK(got.lines == std::vector<std::size_t>{3, 4});
}

TEST_CASE("csv parser: stray quotes are kept literally and empty fields are kept",
          "[connector][csv]") {
  TempDir dir;
  CsvReader reader(',');
  REQUIRE(reader.open(dir.write("x.csv", "a\"b,\"c\"d,,\"\"\n")).ok());
  CsvRecord rec;
  REQUIRE(reader.next(rec) == CsvReader::Status::Record);
  CHECK(rec.fields == std::vector<std::string>{"a\"b", "cd", "", ""});
  CHECK(rec.raw == "a\"b,\"c\"d,,\"\"");
  CHECK(rec.terminated);
  CHECK(reader.next(rec) == CsvReader::Status::End);
}

TEST_CASE("csv parser: UTF-8 validation rejects overlong forms and surrogates and cut sequences",
          "[connector][csv]") {
  CHECK(firstInvalidUtf8("plain ascii") == std::string::npos);
  CHECK(firstInvalidUtf8("Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == std::string::npos);
  CHECK(firstInvalidUtf8("ab\xC0\xAF") == 2);         // overlong '/'
  CHECK(firstInvalidUtf8("\xED\xA0\x80") == 0);       // UTF-16 surrogate
  CHECK(firstInvalidUtf8("x\xE2\x82") == 1);          // cut short
  CHECK(firstInvalidUtf8("x\xF4\x90\x80\x80") == 1);  // above U+10FFFF
}

TEST_CASE("csv parser: excerpts are cut on a character boundary and escape invalid bytes",
          "[connector][csv]") {
  CHECK(excerpt("S\xE9"
                "C",
                300) == "S\\xE9C");
  CHECK(excerpt("ab\xC3\xA9", 3) == "ab");  // does not split é
  CHECK(excerpt(std::string(400, 'x')).size() == 300);
}
