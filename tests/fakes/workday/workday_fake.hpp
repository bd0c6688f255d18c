#pragma once
// A loopback fake of one Workday custom report served as a Reports-as-a-Service (RaaS) web
// service, for the workday connector tests and the end-to-end sync test. It follows what the
// RaaS documentation describes (summarised in shared/reference/lms.md section 3, with the
// Workato "Workday RaaS" connector guide and Workday's API client setup pages):
//  - GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json: the report as
//    {"Report_Entry": [ {...}, ... ]}, one object per row whose keys are the report's field
//    names; an empty report is {"Report_Entry": []}. Without format=json the default XML
//    (wd:Report_Data) is answered. No paging.
//  - Prompts are query parameters. The fake's date-range prompts (names configurable) filter the
//    rows on their date field, both ends inclusive; values are dates (2026-03-01, or with a
//    zone: 2026-03-01-08:00) or ISO 8601 date-times. An unknown parameter is refused with 400,
//    as a report refuses a prompt it does not define.
//  - Authentication: HTTP Basic for an Integration System User (401 otherwise), or an OAuth
//    bearer token from POST /ccx/oauth2/{tenant}/token with grant_type=refresh_token and the API
//    client's id and secret in HTTP Basic (the refresh-token grant of an API client for
//    integrations, RFC 6749 section 6).
// Error bodies of RaaS are not documented; the fake answers errors with a short JSON
// {"error": "..."} body, as Workday's REST endpoints do.
//
// Faults: statuses for the next requests, a body cut in half (the HTTP answer itself whole), an
// HTML sign-in page with 200, a document without Report_Entry. Generated reports (row i made on
// the fly, streamed with chunked transfer encoding) let tests measure memory on large reports.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::workday {

struct LoggedRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> params;
  std::vector<std::pair<std::string, std::string>> headers;
  int status = 0;

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" if none
  std::string param(const std::string& name) const;  // first value; "" if none
  bool hasParam(const std::string& name) const;
};

struct WorkdayFakeOptions {
  std::string tenant = "acme";
  std::string owner = "ISU_certgate";
  std::string report = "Learning_Completions";
  std::string username = "ISU_certgate";  // HTTP Basic; empty: Basic is refused
  std::string password = "isu-secret";
  std::string client_id{};                // OAuth API client; empty: no token endpoint
  std::string client_secret{};
  std::string refresh_token{};
  std::string from_prompt = "Completed_From";  // empty: the report has no date prompts
  std::string to_prompt = "Completed_To";
  std::string date_field = "Completion_Date";  // the rows' field the prompts filter on
  std::vector<std::string> other_prompts{};    // further prompts the report accepts

  // Generated report (memory measurements): 0 = off. Row i: Employee_ID W<i % people>,
  // Learning_Content_ID C<i % items>, Completion_Date 2026-01-01 + (i % 300) days,
  // Completion_Status Completed, Score i % 101, Max_Score 100.
  std::int64_t generated = 0;
  int generated_people = 1000;
  int generated_items = 20;
};

class WorkdayFake {
 public:
  explicit WorkdayFake(WorkdayFakeOptions options = {});
  ~WorkdayFake();
  WorkdayFake(const WorkdayFake&) = delete;
  WorkdayFake& operator=(const WorkdayFake&) = delete;

  void start();  // 127.0.0.1, a kernel-chosen port, the fake's own thread
  void stop();
  std::string url() const;        // http://127.0.0.1:PORT
  std::string reportUrl() const;  // url() + /ccx/service/customreport2/{tenant}/{owner}/{report}
  std::string tokenUrl() const;   // url() + /ccx/oauth2/{tenant}/token

  // ---- the report's rows ----
  void addRow(nlohmann::json row);
  void setRows(nlohmann::json rows);  // an array
  std::size_t rows() const;

  // ---- faults (report requests are counted from 1) ----
  void failRequests(int nth, int count, int status, long retry_after = -1);
  void truncateRequest(int nth);      // the JSON cut in half, sent as a whole HTTP answer
  void loginPageRequest(int nth);     // 200 with an HTML sign-in page
  void noReportEntryRequest(int nth); // 200 with {"Report_Data": ...} instead of Report_Entry
  void revokeTokens();                // issued bearer tokens stop working (401)

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;  // report requests only
  std::uint64_t reportRequests() const;
  std::uint64_t tokensIssued() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::workday
