#pragma once
// A loopback fake of Cornerstone OnDemand's Reporting API, for the cornerstone connector tests
// and the end-to-end sync test. It follows Cornerstone's published material (summarised in
// shared/reference/lms.md section 4.1):
//  - csod.dev "Pagination": the page size is asked for with the header
//    Prefer: odata.maxpagesize=N, and the result set is paged through with @odata.nextLink;
//  - help.csod.com "Reporting API" and csod.dev "OData Queries": OData v4 views under
//    /services/api/x/odata/api/views/{view}, $select and $filter; answers
//    {"@odata.context": ..., "value": [...], "@odata.nextLink": ...}; no joins between views;
//  - csod.dev "Throttling": 429 with a JSON body {"error": {"errorId", "message", "code"}}
//    when over the limit (the fake counts nothing itself; tests script 429s);
//  - Cornerstone's API sample (cornerstoneedge, EdgeApiClient): POST /services/api/oauth2/token
//    with a JSON body {clientId, clientSecret, grantType: client_credentials, scope}, answered
//    {access_token, expires_in, scope, token_type}; every API call carries the bearer token.
//  - the view columns of vw_rpt_transcript and vw_rpt_user as a public client documents them
//    (digitregroup/cornerstone-client, src/models).
// $filter supports what the connector sends: `_last_touched_dt_utc ge <DateTimeOffset>` on
// the transcript view and `user_id eq N or user_id eq M ...` on the user view; anything else is
// refused with 400 (the real API supports more). Rows are served in insertion order.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::cornerstone {

struct LoggedRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> params;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;
  std::int64_t at_ms = 0;  // the test clock's time when the request arrived

  std::string header(std::string_view name) const;
  std::string param(const std::string& name) const;
};

struct CornerstoneFakeOptions {
  std::string client_id = "csod-client";
  std::string client_secret = "csod-secret";
  std::int64_t token_lifetime_s = 3600;
  std::size_t default_page_size = 1000;
  std::function<std::int64_t()> clock_ms{};  // stamps logged requests; default 0
};

class CornerstoneFake {
 public:
  explicit CornerstoneFake(CornerstoneFakeOptions options = {});
  ~CornerstoneFake();
  CornerstoneFake(const CornerstoneFake&) = delete;
  CornerstoneFake& operator=(const CornerstoneFake&) = delete;

  void start();
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT (the portal's base URL)

  void addTranscript(nlohmann::json row);  // a vw_rpt_transcript row
  void addUser(nlohmann::json row);        // a vw_rpt_user row

  // ---- faults (view requests, transcript and user, counted from 1) ----
  void failRequests(int nth, int count, int status, long retry_after = -1);
  void truncateRequest(int nth);  // the body cut in half
  void emptyPage(int nth);        // an empty value array whose nextLink continues where it was
  void revokeTokens();            // issued tokens stop working (401)

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;  // view and token requests, in order
  std::uint64_t viewRequests() const;
  std::uint64_t tokensIssued() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::cornerstone
