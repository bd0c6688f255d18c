#include "connectors/lms/cornerstone/transcript.hpp"

#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

namespace certgate::connectors::cornerstone {

namespace {

using Json = nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string idText(const Json& row, const char* key) {
  if (!row.is_object()) return {};
  const auto it = row.find(key);
  if (it == row.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer() || it->is_number_unsigned()) return it->dump();
  return {};
}

std::optional<StatusMeaning> builtin(const std::string& v) {
  if (v == "completed" || v == "complete") return StatusMeaning::Completed;
  if (v == "passed") return StatusMeaning::Passed;
  if (v == "failed") return StatusMeaning::Failed;
  if (v == "registered" || v == "in progress" || v == "pending" || v == "pending approval" ||
      v == "approved" || v == "not started" || v == "cancelled" || v == "withdrawn" ||
      v == "denied" || v == "exempt" || v == "incomplete" || v == "pending completion" ||
      v == "past due" || v == "wait listed" || v == "waitlisted" || v == "no show" ||
      v == "removed" || v == "inactive" || v == "pending acknowledgment" ||
      v == "pending evaluation")
    return StatusMeaning::Skip;
  return std::nullopt;
}

bool truthy(const Json& row, const char* key) {
  const auto it = row.find(key);
  if (it == row.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_string()) {
    const std::string v = lower(it->get<std::string>());
    return v == "true" || v == "1";
  }
  return false;
}

}  // namespace

std::optional<StatusMeaning> parseStatusMeaning(std::string_view text) {
  const std::string v = lower(text);
  if (v == "completed") return StatusMeaning::Completed;
  if (v == "passed") return StatusMeaning::Passed;
  if (v == "failed") return StatusMeaning::Failed;
  if (v == "ignore") return StatusMeaning::Skip;
  return std::nullopt;
}

std::string userIdOf(const Json& row) { return idText(row, "transc_user_id"); }

std::optional<core::Instant> parseTime(std::string_view text) { return core::parseIso(text); }

Normalised normaliseRow(const Json& row, const NormaliseOptions& options, const Identity* identity,
                        const std::string& location) {
  Normalised n;
  auto quarantine = [&](std::string reason) {
    n.outcome = Normalised::Outcome::Quarantine;
    n.reason = std::move(reason);
    return n;
  };
  if (!row.is_object()) return quarantine("the row is not a JSON object");
  n.user_id = userIdOf(row);
  n.object_id = idText(row, "transc_object_id");
  if (const auto it = row.find("_last_touched_dt_utc"); it != row.end() && it->is_string())
    n.touched = parseTime(it->get<std::string>());
  const std::string reg = idText(row, "reg_num");
  std::string attempts_text = idText(row, "user_lo_num_attempts");
  if (!n.user_id.empty() && !n.object_id.empty())
    n.external_id = n.user_id + ":" + lower(n.object_id) + ":" + (reg.empty() ? "1" : reg) + ":" +
                    (attempts_text.empty() ? "0" : attempts_text);

  if (n.user_id.empty())
    return quarantine("transc_user_id is missing or not a number: the row names no learner");
  if (n.object_id.empty())
    return quarantine("transc_object_id is missing: the row names no learning object");
  if (truthy(row, "is_removed") || truthy(row, "is_archive")) {
    n.outcome = Normalised::Outcome::Skip;
    return n;
  }

  const auto st = row.find("user_lo_status");
  if (st == row.end() || !st->is_string() || st->get<std::string>().empty())
    return quarantine("user_lo_status is missing");
  const std::string status = lower(st->get<std::string>());
  std::optional<StatusMeaning> meaning;
  for (const auto& [text, m] : options.status_values)
    if (text == status) meaning = m;
  if (!meaning) meaning = builtin(status);
  if (!meaning)
    return quarantine("status '" + st->get<std::string>() +
                      "' is not known: map it under status_values (completed, passed, failed or "
                      "ignore)");
  if (*meaning == StatusMeaning::Skip) {
    n.outcome = Normalised::Outcome::Skip;
    return n;
  }

  ports::SourceRecord& r = n.record;
  r.location = location;
  r.source_user = n.user_id;
  if (identity != nullptr) {
    r.employee_id = identity->employee_id;
    r.email = identity->email;
  }
  r.lms_item = lower(n.object_id);  // a GUID: the same in any case
  r.external_id = n.external_id;
  r.status = *meaning == StatusMeaning::Passed   ? core::FactStatus::Passed
             : *meaning == StatusMeaning::Failed ? core::FactStatus::Failed
                                                 : core::FactStatus::Completed;
  if (*meaning == StatusMeaning::Passed) r.lms_pass = 1;
  if (*meaning == StatusMeaning::Failed) r.lms_pass = 0;

  const auto comp = row.find("user_lo_comp_dt");
  if (comp == row.end() || !comp->is_string())
    return quarantine("user_lo_comp_dt is missing on a row with status '" + st->get<std::string>() +
                      "'");
  const auto at = parseTime(comp->get<std::string>());
  if (!at)
    return quarantine("user_lo_comp_dt '" + comp->get<std::string>() +
                      "' is not an ISO 8601 date-time");
  r.at = *at;

  if (const auto p = row.find("user_lo_pass"); p != row.end() && !p->is_null()) {
    if (!p->is_boolean()) return quarantine("user_lo_pass is not true or false");
    r.lms_pass = p->get<bool>() ? 1 : 0;
  }
  if (!attempts_text.empty()) {
    const auto a = row.find("user_lo_num_attempts");
    if (!a->is_number_integer() && !a->is_number_unsigned())
      return quarantine("user_lo_num_attempts '" + attempts_text + "' is not a whole number");
    const auto v = a->get<std::int64_t>();
    if (v < 0 || v > 65535)
      return quarantine("user_lo_num_attempts " + attempts_text + " is outside 0..65535");
    r.attempt = static_cast<std::uint16_t>(v);
  }
  if (const auto s = row.find("user_lo_score"); s != row.end() && !s->is_null()) {
    if (!s->is_number()) return quarantine("user_lo_score is not a number");
    const double v = s->get<double>();
    if (!std::isfinite(v) || v < 0 || v > options.max_score)
      return quarantine("user_lo_score " + s->dump() + " is outside 0.." +
                        Json(options.max_score).dump() +
                        " (set max_score if the portal scores on another scale)");
    r.score = v;
    r.max_score = options.max_score;
    r.kind = core::FactKind::QuizAttempt;
  }
  n.outcome = Normalised::Outcome::Record;
  return n;
}

}  // namespace certgate::connectors::cornerstone
