// Reading a Workday RaaS JSON answer: Workday's date forms, the Report_Entry stream (entry by
// entry, cut-off and malformed documents), and one entry's normalisation.
#include <catch2/catch.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "connectors/lms/workday/report.hpp"

using namespace certgate;
using namespace certgate::connectors::workday;
using Json = nlohmann::json;

namespace {

struct Doc {
  std::FILE* f = std::tmpfile();
  explicit Doc(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::rewind(f);
  }
  ~Doc() { std::fclose(f); }
};

std::pair<ReportRead, std::vector<Json>> read(const std::string& text) {
  Doc d(text);
  std::vector<Json> got;
  const ReportRead r = readReport(d.f, [&](Json&& e, std::size_t i) {
    CHECK(i == got.size() + 1);
    got.push_back(std::move(e));
    return true;
  });
  return {r, got};
}

}  // namespace

TEST_CASE("Workday dates are read with their zone, and dates without one as UTC", "[unit][workday]") {
  struct Case {
    const char* text;
    const char* utc;  // nullptr: not a date
    const char* reason;
  };
  const Case cases[] = {
      {"2026-03-01", "2026-03-01T00:00:00Z", "a plain date is UTC midnight"},
      {"2026-03-01-08:00", "2026-03-01T08:00:00Z", "a date in a zone is midnight there"},
      {"2026-03-01+05:30", "2026-02-28T18:30:00Z", "a zone east of UTC moves back a day"},
      {"2026-03-01Z", "2026-03-01T00:00:00Z", "Z is UTC"},
      {"2026-03-02T10:15:00.000-08:00", "2026-03-02T18:15:00Z", "a date-time with fraction and offset"},
      {"2026-03-02T10:15:00", "2026-03-02T10:15:00Z", "a date-time without offset is UTC"},
      {" 2026-03-01 ", "2026-03-01T00:00:00Z", "blanks around are ignored"},
      {"03/05/2026", nullptr, "a US-style date is not what Workday writes"},
      {"2026-02-30", nullptr, "an impossible day"},
      {"2026-03-01-8:00", nullptr, "an offset without two-digit hours"},
      {"", nullptr, "nothing"},
  };
  for (const auto& c : cases) {
    INFO(c.reason << ": " << c.text);
    const auto t = parseDate(c.text);
    if (c.utc == nullptr) {
      CHECK_FALSE(t.has_value());
    } else {
      REQUIRE(t.has_value());
      CHECK(core::formatIso(*t) == c.utc);
    }
  }
}

TEST_CASE("the report is read entry by entry and other top-level members are skipped", "[unit][workday]") {
  auto [r, got] = read(R"({"Report_Meta": {"rows": [1, 2]}, "Report_Entry": [
      {"A": "1", "Nested_group": [{"B": "x"}, {"B": "y"}]}, {"A": "2", "Empty": {}}, "not an object", []
    ], "After": [[1], {"k": [2]}]})");
  CHECK(r.parsed);
  CHECK(r.has_entries);
  CHECK(r.entries == 4);
  REQUIRE(got.size() == 4);
  CHECK(got[0] == Json::parse(R"({"A": "1", "Nested_group": [{"B": "x"}, {"B": "y"}]})"));
  CHECK(got[1] == Json::parse(R"({"A": "2", "Empty": {}})"));
  CHECK(got[2] == "not an object");
  CHECK(got[3] == Json::array());
  CHECK(r.top_keys == "Report_Meta, Report_Entry, After");
}

TEST_CASE("an empty report is well-formed and has its entries", "[unit][workday]") {
  auto [r, got] = read(R"({"Report_Entry": []})");
  CHECK(r.parsed);
  CHECK(r.has_entries);
  CHECK(got.empty());
}

TEST_CASE("a cut-off report hands over the whole entries before the break only", "[unit][workday]") {
  const std::string whole = R"({"Report_Entry": [{"A": "1"}, {"A": "2"}, {"A": "3", "B": "long value"}]})";
  auto [r, got] = read(whole.substr(0, whole.size() - 20));
  CHECK_FALSE(r.parsed);
  CHECK_FALSE(r.has_entries);
  CHECK(got.size() == 2);
  CHECK(r.error_byte >= whole.size() - 20);
}

TEST_CASE("documents without a Report_Entry array say so", "[unit][workday]") {
  for (const char* text : {R"({"Report_Data": {"x": 1}})", R"({"Report_Entry": {"A": "1"}})", "[1, 2]",
                           "<html><body>Sign in</body></html>"}) {
    INFO(text);
    auto [r, got] = read(text);
    CHECK_FALSE(r.has_entries);
    CHECK(got.empty());
  }
}

TEST_CASE("an entry normalises through the field mapping", "[unit][workday]") {
  NormaliseOptions o;
  o.fields.worker_id = "Worker_group.Employee_ID";
  o.fields.course_id = "Course";
  o.fields.completed_at = "Done";
  o.fields.status = "Status";
  o.fields.score = "Score";
  o.fields.pass = "Passed";
  o.status_values = {{"bestanden", StatusMeaning::Passed}};
  o.default_max_score = 50;

  Normalised n = normaliseEntry(Json::parse(R"({"Worker_group": [{"Employee_ID": "E1"}], "Course": "C1",
      "Done": "2026-03-01-08:00", "Status": "Bestanden", "Score": 40, "Passed": "Yes"})"),
                                o, "report row 1");
  REQUIRE(n.outcome == Normalised::Outcome::Record);
  CHECK(n.record.employee_id == "E1");
  CHECK(n.record.status == core::FactStatus::Passed);
  CHECK(n.record.lms_pass == 1);
  CHECK(n.record.score == Approx(40));
  CHECK(n.record.max_score == Approx(50));
  CHECK(n.record.external_id == "E1|C1|2026-03-01");
  CHECK(n.record.location == "report row 1");

  // A number where text was expected, a pass flag that says no, a structure where a value belongs.
  n = normaliseEntry(Json::parse(R"({"Worker_group": [{"Employee_ID": 1234}], "Course": "C1",
      "Done": "2026-03-01", "Status": "Completed", "Passed": "maybe"})"), o, "report row 2");
  REQUIRE(n.outcome == Normalised::Outcome::Quarantine);
  CHECK_THAT(n.reason, Catch::Contains("pass flag 'maybe'"));
  CHECK(n.identity == "worker 1234, course C1");

  n = normaliseEntry(Json::parse(R"({"Worker_group": [{"Employee_ID": "E1"}], "Course": {"ID": "C1"},
      "Done": "2026-03-01", "Status": "Completed"})"), o, "report row 3");
  REQUIRE(n.outcome == Normalised::Outcome::Quarantine);
  CHECK_THAT(n.reason, Catch::Contains("'Course' holds a structure"));

  // fraction scale: 0.8 is 80 of 100; above 1 is impossible
  o.score_scale = ScoreScale::Fraction;
  n = normaliseEntry(Json::parse(R"({"Worker_group": [{"Employee_ID": "E1"}], "Course": "C1",
      "Done": "2026-03-01", "Status": "Failed", "Score": "0.8"})"), o, "report row 4");
  REQUIRE(n.outcome == Normalised::Outcome::Record);
  CHECK(n.record.score == Approx(80));
  CHECK(n.record.max_score == Approx(100));
  CHECK(n.record.lms_pass == 0);
  n = normaliseEntry(Json::parse(R"({"Worker_group": [{"Employee_ID": "E1"}], "Course": "C1",
      "Done": "2026-03-01", "Status": "Failed", "Score": "8"})"), o, "report row 5");
  CHECK(n.outcome == Normalised::Outcome::Quarantine);
}
