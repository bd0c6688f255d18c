#pragma once
// A loopback fake of the parts of the Canvas LMS REST API certgate reads, for the canvas connector
// tests and the end-to-end sync test. It follows the Canvas API documentation
// (developerdocs.instructure.com/services/canvas, summarised with sources in
// ../shared/reference/lms.md section 2):
//  - basics/file.pagination: `per_page` (default 10, at most 100) and `page`; a Link header with
//    absolute URLs and rel="current", "next" (while there is more), "first" and "last";
//  - basics/file.throttling: X-Request-Cost and X-Rate-Limit-Remaining on every answer; a
//    throttled request answers 403 "403 Forbidden (Rate Limit Exceeded)" (older Canvas) or 429;
//  - OAuth2 bearer tokens: a missing or unknown token answers 401 with
//    {"errors":[{"message":"Invalid access token."}]} and WWW-Authenticate; an unknown course
//    404 {"errors":[{"message":"The specified resource does not exist."}]};
//  - GET /api/v1/courses/:id/users (Courses API "List users in course": enrollment_type[],
//    include[]=email) answering User objects (id, name, sortable_name, short_name, sis_user_id,
//    login_id, email);
//  - GET /api/v1/courses/:id/bulk_user_progress (Courses API "Get bulk user progress"): users with
//    a `progress` CourseProgress (requirement_count, requirement_completed_count,
//    next_requirement_url, completed_at);
//  - GET /api/v1/courses/:id/students/submissions (Submissions API "List submissions for multiple
//    assignments"): student_ids[]=all, assignment_ids[], workflow_state, graded_since (graded_at
//    strictly after), include[]=assignment and include[]=submission_history.
// The data comes from a JSON document shaped like tests/fixtures/canvas/site.json.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace certgate::testing::canvas {

struct LoggedRequest {
  std::string path;
  std::map<std::string, std::vector<std::string>> params;
  std::string authorization;
  int status = 0;

  std::string param(const std::string& name) const {
    const auto it = params.find(name);
    return it == params.end() || it->second.empty() ? std::string() : it->second.front();
  }
};

class CanvasFake {
 public:
  explicit CanvasFake(std::string token = "canvas-token-8c1e");
  ~CanvasFake();
  CanvasFake(const CanvasFake&) = delete;
  CanvasFake& operator=(const CanvasFake&) = delete;

  void start();  // 127.0.0.1, kernel-chosen port
  void stop();
  std::string url() const;  // http://127.0.0.1:PORT

  void load(const nlohmann::json& site);
  nlohmann::json& site();  // edit between fetches

  // ---- faults (requests counted from 1) ----
  void failRequests(int nth, int count, int status);
  // Requests nth .. nth+count-1 are throttled: 403 "Rate Limit Exceeded" (or `status` 429).
  void throttle(int nth, int count, int status = 403);
  // Request nth answers an empty page whose next link continues where it was.
  void emptyPage(int nth);
  void setRateLimitRemaining(double remaining);  // X-Rate-Limit-Remaining on every answer
  void clearFaults();

  std::vector<LoggedRequest> requests() const;
  int requestCount() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace certgate::testing::canvas
