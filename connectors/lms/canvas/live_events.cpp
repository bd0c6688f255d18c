// Canvas Live Events in the Canvas format: {"metadata": {...}, "body": {...}}, as documented in
// developerdocs.instructure.com/services/canvas/data-services/live-events (event-format/canvas:
// submission, grade, quiz, course) and canvas-lms lib/canvas/live_events.rb.
#include <cctype>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "connectors/common/encoding.hpp"
#include "connectors/lms/canvas/canvas_source.hpp"

namespace certgate::connectors::canvas {

namespace {

using Json = nlohmann::json;
constexpr std::uint64_t kShardFactor = 10'000'000'000'000ULL;  // Canvas global id = shard * 10^13 + local

// A Canvas id (number or digit string), reduced to its local id.
std::optional<std::string> localId(const Json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  const auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  std::uint64_t v = 0;
  if (it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() > 0)) {
    v = it->get<std::uint64_t>();
  } else if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 19) return std::nullopt;
    for (const char c : s)
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = std::stoull(s);
  } else {
    return std::nullopt;
  }
  if (v == 0) return std::nullopt;
  return std::to_string(v % kShardFactor);
}

std::string str(const Json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

core::Result<ports::PushEvent> parseLiveEvent(std::string_view text, const std::string& source) {
  const std::string where = "source '" + source + "'";
  const Json doc = Json::parse(text, nullptr, false);
  if (!doc.is_object())
    return core::makeError(core::ErrorKind::Invalid, "the push body is not a JSON object", where,
                           "send Canvas Live Events in the Canvas format (Data Services)");
  const auto m = doc.find("metadata");
  const auto b = doc.find("body");
  if (m == doc.end() || !m->is_object() || b == doc.end() || !b->is_object())
    return core::makeError(core::ErrorKind::Invalid,
                           "the push body is not a Canvas-format Live Event (no metadata and body "
                           "objects)",
                           where,
                           "in Canvas Data Services choose the Canvas format, not Caliper, for "
                           "this subscription");
  const Json& meta = *m;
  const Json& body = *b;
  ports::PushEvent ev;
  ev.kind = str(meta, "event_name");
  if (ev.kind.empty())
    return core::makeError(core::ErrorKind::Invalid, "the Live Event has no metadata.event_name",
                           where, "send the event as Canvas emits it");

  ports::PushPerson who;
  std::optional<std::string> user;
  if (ev.kind == "grade_change") {
    // The actor in metadata is the grader; the student is in the body.
    user = localId(body, "student_id");
    if (!user) user = localId(body, "user_id");
    who.employee_id = str(body, "student_sis_id");
  } else if (ev.kind == "submission_created" || ev.kind == "submission_updated") {
    user = localId(body, "user_id");
    // metadata.user_sis_id belongs to whoever acted, which is the student only when they match.
    if (user && localId(meta, "user_id") == user) who.employee_id = str(meta, "user_sis_id");
  } else if (ev.kind == "quiz_submitted") {
    user = localId(meta, "user_id");
    who.employee_id = str(meta, "user_sis_id");
  } else if (ev.kind == "course_completed" || ev.kind == "course_progress") {
    const Json u = body.contains("user") ? body["user"] : Json();
    user = localId(u, "id");
    who.email = str(u, "email");
    who.employee_id = str(u, "sis_user_id");
    // The progress may arrive as an object or as its JSON text (CourseProgress#to_json).
    Json progress = body.contains("progress") ? body["progress"] : Json();
    if (progress.is_string()) progress = Json::parse(progress.get<std::string>(), nullptr, false);
    const Json course = body.contains("course") ? body["course"] : Json();
    const auto course_id = localId(course, "id");
    const std::string completed = str(progress, "completed_at");
    if (user && course_id && !completed.empty()) {
      const auto at = core::parseIso(completed);
      if (!at) {
        ports::QuarantinedRecord q;
        q.external_id = "progress:" + *course_id + ":" + *user;
        q.location = "live event " + ev.kind;
        q.reason = "progress.completed_at '" + encoding::excerpt(completed, 40) +
                   "' is not an ISO 8601 time";
        q.raw = encoding::excerpt(body.dump(), 300);
        ev.quarantined.push_back(std::move(q));
      } else {
        ports::SourceRecord r;
        r.external_id = "progress:" + *course_id + ":" + *user;
        r.location = "live event " + ev.kind + " " + str(meta, "event_time");
        r.employee_id = who.employee_id;
        r.email = who.email;
        r.source_user = *user;
        r.display_name = str(u, "name");
        r.lms_item = "course:" + *course_id;
        r.status = core::FactStatus::Completed;
        r.at = *at;
        ev.records.push_back(std::move(r));
      }
    }
  } else {
    return ev;  // an event certgate does not read: nobody to reconcile early
  }
  if (!user) {
    ports::QuarantinedRecord q;
    q.location = "live event " + ev.kind;
    q.reason = "the event names no user certgate can read";
    q.raw = encoding::excerpt(std::string(text), 300);
    ev.quarantined.push_back(std::move(q));
    return ev;
  }
  who.source_user = *user;
  ev.people.push_back(std::move(who));
  return ev;
}

}  // namespace certgate::connectors::canvas
