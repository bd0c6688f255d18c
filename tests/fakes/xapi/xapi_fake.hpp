#pragma once
// A loopback fake of an xAPI 1.0.3 Learning Record Store's Statement Resource, for the xapi
// connector tests, the end-to-end sync test and the benchmark. It follows the xAPI 1.0.3
// specification (https://github.com/adlnet/xAPI-Spec, summarised in ../shared/reference/lms.md
// section 5):
//  - xAPI-Communication.md 2.1.3 "GET Statements": GET {endpoint}/statements with the filters
//    verb, activity, registration, since (stored, exclusive), until (stored, inclusive), limit
//    (0 = the server's maximum; larger values are lowered to it), ascending, format,
//    attachments, statementId, voidedStatementId; a StatementResult answer, newest first unless
//    ascending=true; 400 for a parameter the LRS does not recognise (also one that differs only
//    in case) and for statementId/voidedStatementId combined with a filter; "Filter Conditions
//    for StatementRefs": a statement targeting another (StatementRef object) matches the
//    non-time filters when its target does;
//  - 2.1.4 "Voided Statements": a voided statement is never returned except by
//    voidedStatementId; the voiding statement is;
//  - xAPI-Data.md 2.5 "Retrieval of Statements": `more` is a relative IRL (full path, no scheme,
//    host or port), the empty string when there is nothing more;
//  - the X-Experience-API-Consistent-Through header on every Statement Resource answer;
//  - 3.2 "Error Codes" (400, 401, 403, 404, 429, 500 with a message; JSON when the client
//    accepts it, plain text otherwise) and 3.3 "Versioning": X-Experience-API-Version on every
//    answer; a request without it, or with a version outside 1.0.x, is refused with 400;
//  - 4.0 "Authentication": HTTP Basic (RFC 7235, 401 with WWW-Authenticate). OAuth 2.0 client
//    credentials (RFC 6749 4.4, POST /oauth/token) stands in for the LRS products that offer it.
//
// `stored` and the consistent-through time come from the fake's own clock (microseconds),
// which tests set. For benchmarks the fake can generate statements on the fly (deterministic,
// O(1) memory): statement i is stored at generated_start_us + i ms and cycles through the verbs
// completed, passed, failed, scored; only ascending queries are served in that mode.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certgate::testing::xapi {

struct LoggedRequest {
  std::string method;
  std::string path;
  std::string target;  // path and raw query as sent
  std::multimap<std::string, std::string> params;
  std::vector<std::pair<std::string, std::string>> headers;
  int status = 0;

  std::string header(std::string_view name) const;  // first value, case-insensitive; "" if none
  std::string param(const std::string& name) const;  // first value; "" if none
};

struct XapiFakeOptions {
  std::string base_path = "/xapi";     // the endpoint's path
  std::string username = "lrs-key";    // HTTP Basic credentials; empty: Basic is refused
  std::string password = "lrs-secret";
  std::string client_id;               // OAuth 2.0 client credentials; empty: no token endpoint
  std::string client_secret;
  std::size_t max_limit = 1000;        // the server's page size maximum
  bool record_requests = true;         // off for benchmarks
  std::int64_t clock_us = 1'795'608'000'000'000;  // 2026-11-25T12:00:00Z

  // Generated statements (benchmarks): 0 = off.
  std::int64_t generated = 0;
  std::int64_t generated_start_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  int generated_people = 1000;
  int generated_items = 20;
};

class XapiFake {
 public:
  explicit XapiFake(XapiFakeOptions options = {});
  ~XapiFake();
  XapiFake(const XapiFake&) = delete;
  XapiFake& operator=(const XapiFake&) = delete;

  // Listens on 127.0.0.1 and a kernel-chosen port, in the fake's own threads.
  void start();
  void stop();
  std::string url() const;       // http://127.0.0.1:PORT
  std::string endpoint() const;  // url() + base_path
  std::string tokenUrl() const;  // url() + "/oauth/token"

  // ---- statements ----
  // Stores a statement as an LRS would: `id` assigned when absent, `stored` set from the clock
  // (which then moves on by 1 ms) unless `stored` is given, `version` and `authority` added. A
  // voiding statement voids its target. Returns the id.
  std::string add(nlohmann::json statement, std::optional<std::string> stored = std::nullopt);
  // Stores a statement exactly as given (malformed ones included); it needs `stored` and may
  // lack anything else. For fixtures.
  void addRaw(nlohmann::json statement, const std::string& stored);
  std::size_t size() const;

  // ---- clock and consistency ----
  void setClock(std::int64_t us);
  std::int64_t clock() const;
  // The X-Experience-API-Consistent-Through value; default (nullopt) is the clock.
  void setConsistentThrough(std::optional<std::int64_t> us);
  void omitConsistentThrough(bool omit);

  // ---- faults (statement requests are counted from 1, `more` pages included) ----
  // Requests nth .. nth+count-1 answer `status` with a message; Retry-After when >= 0.
  void failRequests(int nth, int count, int status, long retry_after = -1);
  void setAlways401(bool on);
  // Request nth answers an empty page whose `more` continues where it was.
  void emptyPage(int nth);
  // Request nth answers the first half of its body only.
  void truncatePage(int nth);

  // ---- observation ----
  std::vector<LoggedRequest> requests() const;
  void clearRequests();
  std::uint64_t statementRequests() const;  // every statement request, recorded or not
  std::uint64_t tokensIssued() const;

  // Deterministic id and fields of generated statement i (for benchmarks' checks).
  static std::string generatedId(std::int64_t i);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ISO 8601 with microseconds: "2026-11-25T12:00:00.000000Z".
std::string isoMicros(std::int64_t us);

}  // namespace certgate::testing::xapi
