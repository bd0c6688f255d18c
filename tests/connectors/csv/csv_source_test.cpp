#include "connectors/lms/csv/csv_source.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "test_support.hpp"

namespace csvc = certgate::connectors::csv;
using certgate::core::ErrorKind;
using certgate::core::FactStatus;
using certgate::core::Instant;
using certgate::core::parseIso;
using certgate::ports::FetchOutcome;
using certgate::testing::fixturesDir;
using certgate::testing::OptionsBuilder;
using certgate::testing::RecordingSink;
using certgate::testing::TempDir;

namespace {

const Instant kNow = *parseIso("2026-11-25T12:00:00Z");

Instant utc(const char* iso) {
  const auto t = parseIso(iso);
  REQUIRE(t.has_value());
  return *t;
}

// An independent SHA-256 (one-shot OpenSSL call) to pin unit keys and hashed external ids.
std::string sha256(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1);
  std::ostringstream out;
  for (unsigned int i = 0; i < len; ++i) {
    static const char* kHex = "0123456789abcdef";
    out << kHex[md[i] >> 4] << kHex[md[i] & 15];
  }
  return out.str();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<certgate::ports::LmsSource> make(const OptionsBuilder& b,
                                                 const std::string& base_dir = "") {
  auto src = csvc::makeSource("lms", b.build(), base_dir);
  if (!src.ok()) FAIL(src.error().describe());
  return std::move(src.value());
}

FetchOutcome fetch(certgate::ports::LmsSource& src, RecordingSink& sink) {
  auto out = src.fetch("", kNow, sink);
  if (!out.ok()) FAIL(out.error().describe());
  CHECK(sink.protocol_errors == 0);
  CHECK(sink.open_units == 0);
  return out.value();
}

// bad_rows.csv, multiline.csv, latin1.csv ... share this mapping.
OptionsBuilder simple(const std::string& pattern) {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", pattern)
      .map("columns",
           {{"employee_id", "employee_id"}, {"item", "course"}, {"completed_at", "completed"}});
  return b;
}

OptionsBuilder moodle(const std::string& directory, const std::string& pattern) {
  OptionsBuilder b;
  b.set("directory", directory)
      .set("pattern", pattern)
      .set("date_format", "unix")
      .map("columns", {{"employee_id", "ID number"},
                       {"email", "Email address"},
                       {"name", "Full name"},
                       {"item", "Course short name"},
                       {"completed_at", "Time completed"},
                       {"score", "Grade"},
                       {"max_score", "Grade max"},
                       {"attempt", "Attempt"}});
  return b;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("csv source: a Moodle-style export becomes normalised records", "[connector][csv]") {
  auto src = make(moodle(fixturesDir(), "moodle_completions.csv"));
  CHECK(std::string(src->kind()) == "csv");
  CHECK(src->name() == "lms");
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  CHECK(out.problem.empty());
  CHECK(out.units_seen == 1);
  CHECK(out.units_skipped == 0);
  CHECK(out.records == 3);
  CHECK(out.quarantined == 0);
  CHECK(out.next_cursor == "moodle_completions.csv");
  REQUIRE(sink.records.size() == 3);

  const auto& jane = sink.records[0];
  CHECK(jane.location == "moodle_completions.csv:2");
  CHECK(jane.employee_id == "E100");
  CHECK(jane.email == "Jane.Doe@Example.com");  // identity normalisation is the resolver's job
  CHECK(jane.display_name == "Doe, Jane");
  CHECK(jane.lms_item == "SEC-101");
  CHECK(jane.at == utc("2026-01-01T00:00:00Z"));
  CHECK(jane.score == 85.0);
  CHECK(jane.max_score == 100.0);
  CHECK(jane.attempt == 1);
  CHECK(jane.status == FactStatus::Completed);
  CHECK(jane.kind == certgate::core::FactKind::Completion);
  CHECK(jane.lms_pass == -1);
  CHECK_FALSE(jane.lms_expiry.has_value());
  // The documented id formula: first identity present (lower-cased), item, UTC seconds, attempt.
  CHECK(jane.external_id ==
        "h:" + sha256(std::string("employee_id:e100\x1fSEC-101\x1f") + "1767225600\x1f" + "1"));

  const auto& john = sink.records[1];
  CHECK(john.score == 16.0);
  CHECK(john.max_score == 20.0);
  CHECK(john.attempt == 2);

  const auto& sam = sink.records[2];
  CHECK(sam.employee_id.empty());
  CHECK(sam.email == "sam.poe@example.com");
  CHECK(std::isnan(sam.score));
  CHECK(std::isnan(sam.max_score));
  CHECK(sam.attempt == 0);
  CHECK(sam.external_id == "h:" + sha256(std::string("email:sam.poe@example.com\x1f"
                                                     "AI-201\x1f") +
                                         "1767398400\x1f" + "0"));
}

TEST_CASE("csv source: a file is processed once, keyed by its content hash", "[connector][csv]") {
  auto src = make(moodle(fixturesDir(), "moodle_completions.csv"));
  const std::string key = "sha256:" + sha256(readFile(fixturesDir() + "/moodle_completions.csv"));

  RecordingSink first;
  fetch(*src, first);
  REQUIRE(first.begun.size() == 1);
  CHECK(first.begun[0].key == key);
  CHECK(first.begun[0].name == "moodle_completions.csv");
  CHECK(first.begun[0].bytes == static_cast<std::int64_t>(std::filesystem::file_size(
                                    fixturesDir() + "/moodle_completions.csv")));
  REQUIRE(first.ended.size() == 1);
  CHECK(first.ended[0].complete);
  CHECK(first.ended[0].problem.empty());

  RecordingSink second;
  second.processed.insert(key);
  const FetchOutcome out = fetch(*src, second);
  CHECK(out.complete);
  CHECK(out.units_seen == 1);
  CHECK(out.units_skipped == 1);
  CHECK(out.records == 0);
  REQUIRE(second.asked.size() == 1);
  CHECK(second.asked[0].key == key);
  CHECK(second.begun.empty());
  CHECK(second.records.empty());
}

TEST_CASE("csv source: a file rewritten in place is keyed by its new content", "[connector][csv]") {
  TempDir dir;
  const std::string path = dir.write("a.csv", "email,item,done\na@example.com,Q1,2026-03-02\n");
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns", {{"email", "email"}, {"item", "item"}, {"completed_at", "done"}});
  auto src = make(b);
  RecordingSink first;
  fetch(*src, first);
  REQUIRE(first.begun.size() == 1);

  // Same size, and the modification time put back: only the content tells the difference.
  const auto mtime = std::filesystem::last_write_time(path);
  dir.write("a.csv", "email,item,done\nb@example.com,Q2,2026-03-02\n");
  std::filesystem::last_write_time(path, mtime);
  const std::string new_key = "sha256:" + sha256(readFile(path));

  RecordingSink second;
  second.processed.insert(first.begun[0].key);
  const FetchOutcome out = fetch(*src, second);
  CHECK(out.complete);
  REQUIRE(second.begun.size() == 1);
  CHECK(second.begun[0].key == new_key);
  REQUIRE(second.records.size() == 1);
  CHECK(second.records[0].email == "b@example.com");
}

TEST_CASE("csv source: a re-export of the same rows in a new file yields the same external ids",
          "[connector][csv]") {
  TempDir dir;
  const std::string original = readFile(fixturesDir() + "/moodle_completions.csv");
  dir.write("export-2026-01-01.csv", original);
  // The next day's export: rows in another order, CRLF line ends, a quoted value.
  dir.write("export-2026-01-02.csv",
            "ID number,Email address,Full name,Course short name,Time completed,Grade,Grade max,"
            "Attempt\r\n"
            ",sam.poe@example.com,Sam Poe,AI-201,1767398400,,,\r\n"
            "E101,john.roe@example.com,John Roe,SEC-101,1767312000,16,20,2\r\n"
            "\"E100\",jane.doe@example.com,\"Doe, Jane\",SEC-101,1767225600,85,100,1\r\n");
  auto src = make(moodle(dir.path(), "*.csv"));
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  CHECK(out.units_seen == 2);
  CHECK(out.next_cursor == "export-2026-01-02.csv");
  REQUIRE(sink.begun.size() == 2);
  CHECK(sink.begun[0].name == "export-2026-01-01.csv");  // name order
  CHECK(sink.begun[0].key != sink.begun[1].key);
  REQUIRE(sink.records.size() == 6);
  std::set<std::string> first, second;
  for (const auto& r : sink.records)
    (r.location.rfind("export-2026-01-01.csv:", 0) == 0 ? first : second).insert(r.external_id);
  CHECK(first.size() == 3);
  CHECK(first == second);
}

TEST_CASE("csv source: record_id is the external id when mapped and present", "[connector][csv]") {
  TempDir dir;
  dir.write("a.csv", "id,who,course,done\nR-1,E1,SEC-101,2026-03-02\n,E2,SEC-101,2026-03-02\n");
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns", {{"record_id", "id"},
                       {"employee_id", "who"},
                       {"item", "course"},
                       {"completed_at", "done"}});
  auto src = make(b);
  RecordingSink sink;
  fetch(*src, sink);
  REQUIRE(sink.records.size() == 2);
  CHECK(sink.records[0].external_id == "R-1");
  CHECK(sink.records[1].external_id.rfind("h:", 0) == 0);
}

TEST_CASE("csv source: bad rows are quarantined with file:line and a reason and the rest counts",
          "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "bad_rows.csv")
      .map("columns", {{"employee_id", "employee_id"},
                       {"item", "course"},
                       {"completed_at", "completed"},
                       {"score", "score"},
                       {"max_score", "max"},
                       {"attempt", "attempt"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);  // bad rows do not make the export incomplete
  CHECK(out.records == 2);
  CHECK(out.quarantined == 8);
  REQUIRE(sink.records.size() == 2);
  CHECK(sink.records[0].location == "bad_rows.csv:2");
  CHECK(sink.records[1].location == "bad_rows.csv:11");
  CHECK(sink.records[1].score == 70.0);
  REQUIRE(sink.ended.size() == 1);
  CHECK(sink.ended[0].complete);

  auto reason = [&](const char* location) {
    const auto* q = sink.quarantinedAt(location);
    if (q == nullptr) FAIL("nothing quarantined at " << location);
    return q->reason;
  };
  CHECK(reason("bad_rows.csv:3") ==
        "score 130 is greater than max_score 100 (score (column 'score')): an impossible score; "
        "fix it in the LMS, or check score_scale");
  CHECK(sink.quarantinedAt("bad_rows.csv:3")->raw == "E2,SEC-101,2026-03-02T14:00:00Z,130,100,1");
  CHECK(sink.quarantinedAt("bad_rows.csv:3")->external_id.rfind("h:", 0) == 0);
  CHECK(reason("bad_rows.csv:4") ==
        "completed_at (column 'completed') value '02.03.2026' is not a valid date in date_format "
        "'iso8601'; fix the export or the source's date_format");
  CHECK(contains(reason("bad_rows.csv:5"), "item (column 'course') is empty"));
  CHECK(contains(reason("bad_rows.csv:6"), "no identity"));
  CHECK(contains(reason("bad_rows.csv:7"), "score (column 'score') value 'abc' is not a number"));
  CHECK(contains(reason("bad_rows.csv:8"), "score (column 'score') value '-5' is negative"));
  CHECK(contains(reason("bad_rows.csv:9"),
                 "attempt (column 'attempt') value 'first' is not a whole number"));
  CHECK(contains(reason("bad_rows.csv:10"), "value '85,5' is not a number (a decimal comma"));
}

TEST_CASE(
    "csv source: line numbers count physical lines and a row with the wrong field count is "
    "quarantined",
    "[connector][csv]") {
  RecordingSink sink;
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "multiline.csv")
      .map("columns", {{"email", "email"}, {"item", "course"}, {"completed_at", "completed"}});
  auto source = make(b);
  const FetchOutcome out = fetch(*source, sink);
  CHECK(out.complete);
  CHECK(out.records == 1);
  REQUIRE(sink.records.size() == 1);
  CHECK(sink.records[0].location == "multiline.csv:2");
  REQUIRE(sink.quarantined.size() == 2);
  CHECK(sink.quarantined[0].location == "multiline.csv:4");
  CHECK(contains(sink.quarantined[0].reason, "value 'not-a-date' is not a valid date in"));
  CHECK(sink.quarantined[1].location == "multiline.csv:5");
  CHECK(contains(sink.quarantined[1].reason, "the row has 5 fields, the header has 4"));
}

TEST_CASE("csv source: a missing column sets the whole file aside and makes it incomplete",
          "[connector][csv]") {
  auto src = make(simple("missing_column.csv"));
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.records == 0);
  CHECK(out.quarantined == 1);
  REQUIRE(sink.quarantined.size() == 1);
  const auto& q = sink.quarantined[0];
  CHECK(q.location == "missing_column.csv:1");
  CHECK(q.reason ==
        "missing column(s) 'completed' (columns.completed_at); header found: 'employee_id', "
        "'course', 'score', 'max'; the whole file was set aside: fix `columns` in the source "
        "configuration or the LMS report definition");
  CHECK(q.raw == "employee_id,course,score,max");
  REQUIRE(sink.ended.size() == 1);
  CHECK_FALSE(sink.ended[0].complete);
  CHECK(sink.ended[0].problem == "missing column(s) 'completed'");
  CHECK(out.problem == "missing_column.csv: missing column(s) 'completed'");
}

TEST_CASE("csv source: headers match case-insensitively after an exact match fails",
          "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "bad_rows.csv")
      .map("columns",
           {{"employee_id", "EMPLOYEE_ID"}, {"item", "Course"}, {"completed_at", " Completed "}});
  auto source = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*source, sink);
  CHECK(out.complete);
  CHECK(out.records == 7);  // lines 4-6 lack a date, an item, an identity
}

TEST_CASE("csv source: bytes that are not UTF-8 are quarantined and the file is incomplete",
          "[connector][csv]") {
  auto src = make(simple("latin1.csv"));
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.records == 1);  // the row before; the rest of the file is not read
  REQUIRE(sink.quarantined.size() == 1);
  CHECK(sink.quarantined[0].location == "latin1.csv:3");
  CHECK(contains(sink.quarantined[0].reason, "not UTF-8"));
  CHECK(sink.quarantined[0].raw == "E2,S\\xE9C-101,2026-03-02T14:00:00Z");
  CHECK(out.problem == "latin1.csv: not UTF-8 at line 3");
}

TEST_CASE("csv source: truncated exports are incomplete", "[connector][csv]") {
  SECTION("a short last row without a line end") {
    auto src = make(simple("truncated_row.csv"));
    RecordingSink sink;
    const FetchOutcome out = fetch(*src, sink);
    CHECK_FALSE(out.complete);
    CHECK(out.records == 1);
    REQUIRE(sink.quarantined.size() == 1);
    CHECK(sink.quarantined[0].location == "truncated_row.csv:3");
    CHECK(sink.quarantined[0].reason.rfind("truncated: the last row has 2 of 3 fields", 0) == 0);
    CHECK(sink.quarantined[0].raw == "E2,SEC-1");
    CHECK(out.problem == "truncated_row.csv: truncated at line 3");
  }
  SECTION("an unterminated quoted field at the end of the file") {
    auto src = make(simple("unterminated.csv"));
    RecordingSink sink;
    const FetchOutcome out = fetch(*src, sink);
    CHECK_FALSE(out.complete);
    CHECK(out.records == 1);
    REQUIRE(sink.quarantined.size() == 1);
    CHECK(sink.quarantined[0].location == "unterminated.csv:3");
    CHECK(sink.quarantined[0].reason.rfind("truncated: the file ends inside a quoted field", 0) ==
          0);
    REQUIRE(sink.ended.size() == 1);
    CHECK_FALSE(sink.ended[0].complete);
  }
}

TEST_CASE("csv source: an export with only a header is incomplete", "[connector][csv]") {
  auto src = make(simple("header_only.csv"));
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.problem == "header_only.csv: empty export: 0 data row(s), min_rows is 1");
  REQUIRE(sink.ended.size() == 1);
  CHECK_FALSE(sink.ended[0].complete);

  // min_rows 0 accepts it.
  auto lenient = make(simple("header_only.csv").set("min_rows", "0"));
  RecordingSink sink2;
  CHECK(fetch(*lenient, sink2).complete);
}

TEST_CASE("csv source: a zero-byte file has no header and is incomplete", "[connector][csv]") {
  TempDir dir;
  dir.write("empty.csv", "");
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns", {{"email", "e"}, {"item", "i"}, {"completed_at", "c"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.problem == "empty.csv: empty file: no header row");
}

TEST_CASE("csv source: no export files at all is incomplete and never means nobody is certified",
          "[connector][csv]") {
  TempDir dir;
  dir.write("notes.txt", "not an export");
  dir.write(".hidden.csv", "email,item,completed\n");  // hidden (in-progress) files never match
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns", {{"email", "email"}, {"item", "item"}, {"completed_at", "completed"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.problem == "no export files in " + dir.path() + " (pattern '*.csv')");
  CHECK(out.units_seen == 0);
  CHECK(sink.asked.empty());
}

TEST_CASE("csv source: a missing directory fails the whole fetch", "[connector][csv]") {
  TempDir dir;
  OptionsBuilder b;
  b.set("directory", "exports/lms")
      .map("columns", {{"email", "email"}, {"item", "item"}, {"completed_at", "completed"}});
  auto src = make(b, dir.path());  // relative to base_dir
  RecordingSink sink;
  const auto out = src->fetch("", kNow, sink);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().kind == ErrorKind::NotFound);
  CHECK(out.error().message == "export directory " + dir.path() + "/exports/lms does not exist");
  CHECK(out.error().where == "source lms");
  CHECK_FALSE(out.error().hint.empty());
}

TEST_CASE(
    "csv source: day-month-year dates in Europe/Berlin with semicolon delimiter and percent scores",
    "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "berlin.csv")
      .set("delimiter", ";")
      .set("date_format", "%d/%m/%Y %H:%M")
      .set("time_zone", "Europe/Berlin")
      .set("score_scale", "percent")
      .map("columns", {{"employee_id", "Employee ID"},
                       {"item", "Course"},
                       {"completed_at", "Completed on"},
                       {"score", "Score"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  REQUIRE(sink.records.size() == 4);
  CHECK(sink.records[0].at == utc("2026-01-15T09:30:00Z"));  // winter, +01:00
  CHECK(sink.records[0].score == 85.5);                      // decimal comma with ';'
  CHECK(sink.records[0].max_score == 100.0);
  CHECK(sink.records[1].at == utc("2026-07-15T08:30:00Z"));  // summer, +02:00
  CHECK(sink.records[1].score == 90.0);                      // "90%"
  CHECK(sink.records[2].at == utc("2026-03-29T01:30:00Z"));  // skipped hour: offset before
  CHECK(sink.records[3].at == utc("2026-10-25T00:30:00Z"));  // repeated hour: first occurrence
}

TEST_CASE("csv source: score scales", "[connector][csv]") {
  struct Case {
    const char* reason;
    const char* scale;
    const char* score;
    double want_score;  // NaN: quarantined
  };
  const Case cases[] = {
      {"raw uses default_max_score", "raw", "17", 17.0},
      {"raw above the default max is impossible", "raw", "21", std::nan("")},
      {"percent accepts a % sign", "percent", "85%", 85.0},
      {"percent accepts a plain number", "percent", "85.25", 85.25},
      {"percent above 100 is impossible", "percent", "101", std::nan("")},
      {"fraction is scaled to 100", "fraction", "0.85", 85.0},
      {"fraction 1 is full marks", "fraction", "1", 100.0},
      {"fraction above 1 is impossible", "fraction", "1.3", std::nan("")},
      {"a % sign is refused outside percent", "raw", "85%", std::nan("")},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    TempDir dir;
    dir.write("s.csv",
              std::string("email,item,done,score\na@example.com,Q1,2026-03-02,") + c.score + "\n");
    OptionsBuilder b;
    b.set("directory", dir.path())
        .set("score_scale", c.scale)
        .map("columns",
             {{"email", "email"}, {"item", "item"}, {"completed_at", "done"}, {"score", "score"}});
    if (std::string(c.scale) == "raw") b.set("default_max_score", "20");
    auto src = make(b);
    RecordingSink sink;
    fetch(*src, sink);
    if (std::isnan(c.want_score)) {
      CHECK(sink.records.empty());
      REQUIRE(sink.quarantined.size() == 1);
      CHECK(sink.quarantined[0].location == "s.csv:2");
    } else {
      REQUIRE(sink.records.size() == 1);
      CHECK(sink.records[0].score == c.want_score);
      CHECK(sink.records[0].max_score == (std::string(c.scale) == "raw" ? 20.0 : 100.0));
    }
  }
}

TEST_CASE(
    "csv source: a Cornerstone-style transcript with status_values and pass flags and "
    "12-hour US dates",
    "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "cornerstone_transcript.csv")
      .set("date_format", "%m/%d/%Y %I:%M %p")
      .set("time_zone", "America/New_York")
      .set("score_scale", "percent")
      .map("columns", {{"employee_id", "transc_user_id"},
                       {"email", "user_email"},
                       {"item", "transc_object_id"},
                       {"status", "user_lo_status"},
                       {"completed_at", "user_lo_comp_dt"},
                       {"score", "user_lo_score"},
                       {"pass", "user_lo_pass"},
                       {"attempt", "user_lo_num_attempts"}})
      .map("status_values", {{"In Progress", "ignore"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  REQUIRE(sink.records.size() == 2);
  CHECK(sink.records[0].status == FactStatus::Completed);
  CHECK(sink.records[0].at == utc("2026-01-15T19:05:00Z"));  // EST
  CHECK(sink.records[0].lms_pass == 1);
  CHECK(sink.records[0].score == 92.0);
  CHECK(sink.records[1].status == FactStatus::Failed);
  CHECK(sink.records[1].at == utc("2026-07-16T13:00:00Z"));  // EDT
  CHECK(sink.records[1].lms_pass == 0);
  CHECK(sink.records[1].attempt == 2);
  // "In Progress" was ignored (line 4); "Waived" is not mapped: quarantined with a hint.
  REQUIRE(sink.quarantined.size() == 1);
  CHECK(sink.quarantined[0].location == "cornerstone_transcript.csv:5");
  CHECK(sink.quarantined[0].reason ==
        "status (column 'user_lo_status') value 'Waived' is not known; map it under "
        "status_values to completed, passed, failed or ignore");
}

TEST_CASE("csv source: status_values override and extend the built-in statuses",
          "[connector][csv]") {
  TempDir dir;
  dir.write("s.csv",
            "email,item,done,status\n"
            "a@example.com,Q1,2026-03-02,PASSED\n"
            "b@example.com,Q1,2026-03-02,Satisfied\n"
            "c@example.com,Q1,2026-03-02,incomplete\n"
            "d@example.com,Q1,2026-03-02,complete\n"
            "e@example.com,Q1,2026-03-02,Failed\n");
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns",
           {{"email", "email"}, {"item", "item"}, {"completed_at", "done"}, {"status", "status"}})
      .map("status_values", {{"satisfied", "passed"}, {"failed", "ignore"}});
  auto src = make(b);
  RecordingSink sink;
  fetch(*src, sink);
  REQUIRE(sink.records.size() == 4);
  CHECK(sink.records[0].status == FactStatus::Passed);
  CHECK(sink.records[1].status == FactStatus::Passed);
  CHECK(sink.records[2].status == FactStatus::Failed);
  CHECK(sink.records[3].status == FactStatus::Completed);
  CHECK(sink.quarantined.empty());  // "Failed" was mapped to ignore by the operator
}

TEST_CASE("csv source: a Workday-style export with date-only values and LMS expiry",
          "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("pattern", "workday_learning.csv")
      .set("time_zone", "America/Los_Angeles")
      .map("columns", {{"employee_id", "Employee ID"},
                       {"name", "Worker"},
                       {"email", "Email - Primary Work"},
                       {"item", "Learning Content"},
                       {"status", "Completion Status"},
                       {"completed_at", "Completion Date"},
                       {"expires_at", "Expiration Date"},
                       {"population", "Supervisory Organization"}})
      .map("status_values", {{"Successfully Completed", "completed"}, {"Not Started", "ignore"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  REQUIRE(sink.records.size() == 1);
  const auto& r = sink.records[0];
  CHECK(r.employee_id == "21001");
  CHECK(r.display_name == "Jane Doe");
  CHECK(r.population == "Engineering");
  CHECK(r.lms_item == "AI Acceptable Use");
  CHECK(r.at == utc("2026-02-10T08:00:00Z"));  // local midnight, PST
  REQUIRE(r.lms_expiry.has_value());
  CHECK(*r.lms_expiry == utc("2027-02-10T08:00:00Z"));
  CHECK(sink.quarantined.empty());
}

TEST_CASE("csv source: JSON Lines with nested keys and fraction scores", "[connector][csv]") {
  OptionsBuilder b;
  b.set("directory", fixturesDir())
      .set("format", "jsonl")
      .set("pattern", "good.jsonl")
      .set("score_scale", "fraction")
      .map("columns", {{"email", "user.email"},
                       {"user", "user.id"},
                       {"item", "course"},
                       {"completed_at", "completed_at"},
                       {"score", "score"},
                       {"pass", "passed"},
                       {"attempt", "attempt"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK(out.complete);
  REQUIRE(sink.records.size() == 2);
  CHECK(sink.records[0].location == "good.jsonl:1");
  CHECK(sink.records[0].email == "jane.doe@example.com");
  CHECK(sink.records[0].source_user == "u-1");
  CHECK(sink.records[0].at == utc("2026-03-02T14:00:00Z"));
  CHECK(sink.records[0].score == 85.0);
  CHECK(sink.records[0].max_score == 100.0);
  CHECK(sink.records[0].lms_pass == 1);
  CHECK(sink.records[0].attempt == 1);
  CHECK(sink.records[1].location == "good.jsonl:3");  // the blank line 2 is skipped
  CHECK(sink.records[1].score == 50.0);
  CHECK(sink.records[1].lms_pass == 0);
}

TEST_CASE(
    "csv source: JSON Lines bad lines are quarantined and a truncated last line is "
    "incomplete",
    "[connector][csv]") {
  auto options = [](const char* pattern) {
    OptionsBuilder b;
    b.set("directory", fixturesDir())
        .set("format", "jsonl")
        .set("pattern", pattern)
        .map("columns",
             {{"email", "user.email"}, {"item", "course"}, {"completed_at", "completed_at"}});
    return b;
  };
  {
    auto src = make(options("bad_line.jsonl"));
    RecordingSink sink;
    const FetchOutcome out = fetch(*src, sink);
    CHECK(out.complete);
    CHECK(out.records == 2);
    REQUIRE(sink.quarantined.size() == 2);
    CHECK(sink.quarantined[0].location == "bad_line.jsonl:2");
    CHECK(sink.quarantined[0].reason == "not valid JSON; fix the export");
    CHECK(sink.quarantined[0].raw == "{\"user\": {\"email\": ");
    CHECK(sink.quarantined[1].location == "bad_line.jsonl:3");
    CHECK(sink.quarantined[1].reason == "not a JSON object; each line must be one object");
  }
  {
    auto src = make(options("truncated.jsonl"));
    RecordingSink sink;
    const FetchOutcome out = fetch(*src, sink);
    CHECK_FALSE(out.complete);
    CHECK(out.records == 1);
    REQUIRE(sink.quarantined.size() == 1);
    CHECK(sink.quarantined[0].location == "truncated.jsonl:2");
    CHECK(sink.quarantined[0].reason.rfind("truncated:", 0) == 0);
    CHECK(out.problem == "truncated.jsonl: truncated at line 2");
  }
}

TEST_CASE("csv source: an incomplete file makes the fetch incomplete while other files still count",
          "[connector][csv]") {
  TempDir dir;
  dir.write("a.csv", "email,item,done\na@example.com,Q1,2026-03-02\n");
  dir.write("b.csv", "email,item,done\n");
  OptionsBuilder b;
  b.set("directory", dir.path())
      .map("columns", {{"email", "email"}, {"item", "item"}, {"completed_at", "done"}});
  auto src = make(b);
  RecordingSink sink;
  const FetchOutcome out = fetch(*src, sink);
  CHECK_FALSE(out.complete);
  CHECK(out.records == 1);
  CHECK(out.problem == "b.csv: empty export: 0 data row(s), min_rows is 1");
  REQUIRE(sink.ended.size() == 2);
  CHECK(sink.ended[0].complete);
  CHECK_FALSE(sink.ended[1].complete);
}

TEST_CASE("csv source: the spec declares every documented key", "[connector][csv]") {
  const auto& s = csvc::spec();
  CHECK(s.kind == "csv");
  std::vector<std::string> keys;
  for (const auto& k : s.keys) keys.push_back(k.key);
  CHECK(keys == std::vector<std::string>{"directory", "pattern", "format", "delimiter", "columns",
                                         "date_format", "time_zone", "score_scale",
                                         "default_max_score", "status_values", "min_rows"});
  CHECK(s.find("directory")->required);
  CHECK(s.find("columns")->required);
  CHECK(s.find("columns")->type == certgate::ports::ValueType::Map);
  CHECK(s.find("min_rows")->default_value == "1");
}

TEST_CASE("csv source: invalid options are refused with the key and its location",
          "[connector][csv]") {
  struct Case {
    const char* reason;
    OptionsBuilder options;
    const char* message;  // prefix
    const char* where;
  };
  auto base = [](std::vector<std::pair<std::string, std::string>> columns = {
                     {"email", "e"}, {"item", "i"}, {"completed_at", "c"}}) {
    OptionsBuilder b;
    b.set("directory", "/tmp").map("columns", std::move(columns));
    return b;
  };
  std::vector<Case> cases = {
      {"unknown format", base().set("format", "xml"),
       "source 'lms': format: 'xml' is not one of csv, jsonl", "certgate.yaml:format"},
      {"bad time zone", base().set("time_zone", "Europe/Berln"),
       "source 'lms': time_zone: unknown time zone 'Europe/Berln'", "certgate.yaml:time_zone"},
      {"missing columns.item", base({{"email", "e"}, {"completed_at", "c"}}),
       "source 'lms': columns.item: is required", "certgate.yaml:columns"},
      {"no identity column", base({{"item", "i"}, {"completed_at", "c"}}),
       "source 'lms': columns: maps no identity column", "certgate.yaml:columns"},
      {"unknown field",
       base({{"email", "e"}, {"item", "i"}, {"completed_at", "c"}, {"grade", "g"}}),
       "source 'lms': columns.grade: is not a certgate field", "certgate.yaml:columns"},
      {"bad date format", base().set("date_format", "%d/%m/%Q"),
       "source 'lms': date_format: date format '%d/%m/%Q' uses %Q", "certgate.yaml:date_format"},
      {"bad score scale", base().set("score_scale", "points"),
       "source 'lms': score_scale: 'points' is not one of raw, percent, fraction",
       "certgate.yaml:score_scale"},
      {"raw score without a max",
       base({{"email", "e"}, {"item", "i"}, {"completed_at", "c"}, {"score", "s"}}),
       "source 'lms': columns.score: with score_scale raw a score needs its maximum",
       "certgate.yaml:columns"},
      {"two-character delimiter", base().set("delimiter", ";;"),
       "source 'lms': delimiter: ';;' is not a single character", "certgate.yaml:delimiter"},
      {"bad status value", base().map("status_values", {{"Done", "finished"}}),
       "source 'lms': status_values.Done: 'finished' is not one of", "certgate.yaml:status_values"},
      {"negative min_rows", base().set("min_rows", "-1"),
       "source 'lms': min_rows: '-1' is not a whole number", "certgate.yaml:min_rows"},
      {"bad default_max_score", base().set("default_max_score", "0"),
       "source 'lms': default_max_score: '0' is not a positive number",
       "certgate.yaml:default_max_score"},
      {"unknown key", base().set("directroy", "x"), "source 'lms': directroy: unknown key",
       "certgate.yaml:directroy"},
  };
  for (auto& c : cases) {
    INFO(c.reason);
    auto src = csvc::makeSource("lms", c.options.build(), "/etc/certgate");
    REQUIRE_FALSE(src.ok());
    CHECK(src.error().kind == ErrorKind::Invalid);
    CHECK(src.error().message.rfind(c.message, 0) == 0);
    if (src.error().message.rfind(c.message, 0) != 0) UNSCOPED_INFO(src.error().message);
    CHECK(src.error().where == c.where);
    CHECK_FALSE(src.error().hint.empty());
  }

  OptionsBuilder no_dir;
  no_dir.map("columns", {{"email", "e"}, {"item", "i"}, {"completed_at", "c"}});
  auto src = csvc::makeSource("lms", no_dir.build(), "/etc/certgate");
  REQUIRE_FALSE(src.ok());
  CHECK(src.error().message == "source 'lms': directory: is required");
  CHECK(src.error().where == "certgate.yaml:10:5");  // the block, as the key is absent
}

TEST_CASE("csv source: never crashes on arbitrary bytes", "[connector][csv]") {
  // A deterministic pseudo-random corpus of CSV-ish noise.
  std::uint32_t state = 12345;
  auto rnd = [&] {
    state = state * 1664525U + 1013904223U;
    return state >> 8;
  };
  const std::string alphabet = "ab,\"\r\n;\xC3\xA9\xFF 0123456789-:T%";
  for (int file = 0; file < 60; ++file) {
    TempDir dir;
    std::string content = file % 2 == 0 ? "email,item,done\n" : "";
    const auto len = rnd() % 400;
    for (std::uint32_t i = 0; i < len; ++i) content += alphabet[rnd() % alphabet.size()];
    dir.write("x.csv", content);
    dir.write("x.jsonl", "{\"e\":" + content);
    for (const char* format : {"csv", "jsonl"}) {
      OptionsBuilder b;
      b.set("directory", dir.path())
          .set("format", format)
          .set("score_scale", "percent")
          .map("columns",
               {{"email", "email"}, {"item", "item"}, {"completed_at", "done"}, {"score", "item"}});
      auto src = make(b);
      RecordingSink sink;
      const auto out = src->fetch("", kNow, sink);
      REQUIRE(out.ok());
      CHECK(sink.protocol_errors == 0);
      for (const auto& q : sink.quarantined) CHECK(q.raw.size() <= 300);
    }
  }
}
