#include "connectors/lms/workday/report.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>

namespace certgate::connectors::workday {

namespace {

using Json = nlohmann::json;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// ---- streaming reader ---------------------------------------------------------------------------

// SAX events of the whole document; the elements of the top-level Report_Entry array are built
// one at a time (the way nlohmann's own DOM parser builds a value) and handed on.
class EntrySax {
 public:
  EntrySax(const std::function<bool(Json&&, std::size_t)>& on_entry, ReportRead& out)
      : on_entry_(on_entry), out_(out) {}

  bool null() { return scalar(Json(nullptr)); }
  bool boolean(bool v) { return scalar(Json(v)); }
  bool number_integer(Json::number_integer_t v) { return scalar(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return scalar(Json(v)); }
  bool number_float(Json::number_float_t v, const std::string&) { return scalar(Json(v)); }
  bool string(std::string& v) { return scalar(Json(std::move(v))); }
  bool binary(Json::binary_t&) { return scalar(Json()); }

  bool start_object(std::size_t) { return open(Json::object()); }
  bool start_array(std::size_t) {
    if (depth_ == 1 && top_key_ == "Report_Entry" && !in_entries_ && !entries_done_) {
      ++depth_;
      in_entries_ = true;
      return true;
    }
    return open(Json::array());
  }
  bool key(std::string& k) {
    if (!stack_.empty()) {
      key_ = std::move(k);
    } else if (depth_ == 1) {
      top_key_ = k;
      if (out_.top_keys.size() < 200) {
        if (!out_.top_keys.empty()) out_.top_keys += ", ";
        out_.top_keys += k;
      }
    }
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() {
    if (stack_.empty() && in_entries_ && depth_ == 2) {
      --depth_;
      in_entries_ = false;
      entries_done_ = true;
      return true;
    }
    return close();
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    out_.error_byte = position;
    out_.error = e.what();
    return false;
  }

  bool entriesDone() const { return entries_done_; }
  bool stopped() const { return stopped_; }

 private:
  bool building() const { return !stack_.empty(); }

  // Where a new value goes inside the entry being built.
  Json* place(Json&& v) {
    Json* top = stack_.back();
    if (top->is_object()) {
      Json& slot = (*top)[key_];
      slot = std::move(v);
      return &slot;
    }
    top->push_back(std::move(v));
    return &top->back();
  }

  bool deliver() {
    ++out_.entries;
    if (!on_entry_(std::move(current_), out_.entries)) {
      stopped_ = true;
      return false;
    }
    current_ = Json();
    return true;
  }

  bool scalar(Json&& v) {
    if (building()) {
      place(std::move(v));
      return true;
    }
    if (in_entries_ && depth_ == 2) {
      current_ = std::move(v);
      return deliver();
    }
    return true;  // a value outside Report_Entry: not ours
  }

  bool open(Json&& container) {
    if (building()) {
      stack_.push_back(place(std::move(container)));
      return true;
    }
    if (in_entries_ && depth_ == 2) {
      current_ = std::move(container);
      stack_.push_back(&current_);
      return true;
    }
    ++depth_;
    return true;
  }

  bool close() {
    if (building()) {
      stack_.pop_back();
      if (stack_.empty()) return deliver();
      return true;
    }
    --depth_;
    return true;
  }

  const std::function<bool(Json&&, std::size_t)>& on_entry_;
  ReportRead& out_;
  int depth_ = 0;  // nesting outside the entry being built
  std::string top_key_;
  bool in_entries_ = false;
  bool entries_done_ = false;
  bool stopped_ = false;
  Json current_;
  std::vector<Json*> stack_;
  std::string key_;
};

// ---- field access -------------------------------------------------------------------------------

// The value under a field name; "a.b" descends into objects, taking an array's first element.
const Json* lookup(const Json& entry, const std::string& field) {
  if (field.empty() || !entry.is_object()) return nullptr;
  if (auto it = entry.find(field); it != entry.end()) return &*it;  // a key with a dot in it
  const Json* at = &entry;
  std::size_t start = 0;
  while (start <= field.size()) {
    const std::size_t dot = std::min(field.find('.', start), field.size());
    const std::string part = field.substr(start, dot - start);
    while (at->is_array() && !at->empty()) at = &(*at)[0];
    if (!at->is_object()) return nullptr;
    auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
    start = dot + 1;
  }
  while (at->is_array() && !at->empty()) at = &(*at)[0];
  return at;
}

// A field's text: strings as they are, numbers and booleans written out; nullopt when absent,
// null or an empty string.
std::optional<std::string> text(const Json& entry, const std::string& field) {
  const Json* v = lookup(entry, field);
  if (v == nullptr || v->is_null()) return std::nullopt;
  std::string s;
  if (v->is_string()) {
    s = std::string(trim(v->get_ref<const std::string&>()));
  } else if (v->is_number_integer() || v->is_number_unsigned()) {
    s = v->dump();
  } else if (v->is_number_float()) {
    s = v->dump();
  } else if (v->is_boolean()) {
    s = v->get<bool>() ? "true" : "false";
  } else {
    return std::string("\x01");  // an object or array where a value belongs
  }
  if (s.empty()) return std::nullopt;
  return s;
}

std::optional<double> number(std::string_view s) {
  s = trim(s);
  std::string copy;
  for (char c : s)
    if (c != ',') copy += c;  // "1,250.5" as some reports format numbers
  if (copy.empty()) return std::nullopt;
  double v = 0;
  const auto [p, ec] = std::from_chars(copy.data(), copy.data() + copy.size(), v);
  if (ec != std::errc{} || p != copy.data() + copy.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<bool> passFlag(std::string_view s) {
  const std::string v = lower(trim(s));
  if (v == "1" || v == "true" || v == "yes" || v == "y" || v == "passed" || v == "pass") return true;
  if (v == "0" || v == "false" || v == "no" || v == "n" || v == "failed" || v == "fail" ||
      v == "not passed")
    return false;
  return std::nullopt;
}

std::optional<StatusMeaning> builtinStatus(const std::string& v) {
  if (v == "completed" || v == "complete" || v == "successfully completed" || v == "finished")
    return StatusMeaning::Completed;
  if (v == "passed" || v == "pass") return StatusMeaning::Passed;
  if (v == "failed" || v == "fail" || v == "not passed" || v == "unsuccessfully completed")
    return StatusMeaning::Failed;
  if (v == "in progress" || v == "not started" || v == "registered" || v == "enrolled" ||
      v == "assigned" || v == "waitlisted" || v == "dropped" || v == "withdrawn" ||
      v == "cancelled" || v == "canceled")
    return StatusMeaning::InProgress;
  return std::nullopt;
}

std::string shown(std::string_view s) {
  std::string out(s.substr(0, 80));
  if (s.size() > 80) out += "...";
  return "'" + out + "'";
}

}  // namespace

std::optional<core::Instant> parseDate(std::string_view s) {
  s = trim(s);
  if (s.size() < 10) return std::nullopt;
  const std::string_view date = s.substr(0, 10);
  const std::string_view rest = s.substr(10);
  if (rest.empty()) return core::parseIso(date);
  if (rest == "Z" || rest == "z") return core::parseIso(std::string(date) + "T00:00:00Z");
  // xs:date with a zone, as Workday writes dates: 2026-03-01-08:00, 2026-03-01+05:30
  if ((rest.front() == '+' || rest.front() == '-') && rest.size() == 6 && rest[3] == ':' &&
      isDigits(rest.substr(1, 2)) && isDigits(rest.substr(4, 2)))
    return core::parseIso(std::string(date) + "T00:00:00" + std::string(rest));
  return core::parseIso(s);
}

ReportRead readReport(std::FILE* file, const std::function<bool(Json&&, std::size_t)>& on_entry) {
  ReportRead out;
  EntrySax sax(on_entry, out);
  try {
    out.parsed = Json::sax_parse(file, &sax);
  } catch (const std::exception& e) {
    out.parsed = false;
    out.error = e.what();
  }
  if (sax.stopped()) {
    out.parsed = false;
    out.error = "stopped";
  }
  out.has_entries = out.parsed && sax.entriesDone();
  return out;
}

std::optional<StatusMeaning> parseStatusMeaning(std::string_view text) {
  const std::string v = lower(trim(text));
  if (v == "completed") return StatusMeaning::Completed;
  if (v == "passed") return StatusMeaning::Passed;
  if (v == "failed") return StatusMeaning::Failed;
  if (v == "in_progress" || v == "in progress" || v == "ignore") return StatusMeaning::InProgress;
  return std::nullopt;
}

Normalised normaliseEntry(const Json& entry, const NormaliseOptions& options,
                          const std::string& location) {
  Normalised n;
  const FieldMap& f = options.fields;
  auto quarantine = [&](std::string reason) {
    n.outcome = Normalised::Outcome::Quarantine;
    n.reason = std::move(reason);
    return n;
  };
  if (!entry.is_object()) return quarantine("the entry is not a JSON object");

  auto field = [&](const std::string& name) -> std::optional<std::string> {
    return text(entry, name);
  };
  auto structured = [](const std::optional<std::string>& v) { return v && *v == "\x01"; };
  for (const std::string* name : {&f.worker_id, &f.email, &f.user, &f.course_id, &f.completed_at,
                                  &f.status, &f.score, &f.max_score, &f.pass, &f.attempt,
                                  &f.expires_at, &f.record_id, &f.name})
    if (!name->empty() && structured(field(*name)))
      return quarantine("field '" + *name +
                        "' holds a structure, not a value: map the sub-field that holds the "
                        "value (e.g. '" + *name + ".ID') in `fields`");

  ports::SourceRecord& r = n.record;
  r.location = location;
  r.employee_id = field(f.worker_id).value_or("");
  r.email = field(f.email).value_or("");
  r.source_user = field(f.user).value_or("");
  r.display_name = field(f.name).value_or("");
  r.lms_item = field(f.course_id).value_or("");
  const std::string who = !r.employee_id.empty() ? "worker " + r.employee_id
                          : !r.email.empty()     ? "email " + r.email
                          : !r.source_user.empty() ? "user " + r.source_user
                                                   : std::string("no identity");
  n.identity = who + ", course " + (r.lms_item.empty() ? std::string("(none)") : r.lms_item);
  const std::string key_person =
      !r.employee_id.empty() ? r.employee_id : !r.email.empty() ? lower(r.email) : r.source_user;

  if (key_person.empty())
    return quarantine("no identity: the fields mapped as worker_id, email and user are all empty "
                      "or absent; check the report's columns and the `fields` mapping");
  if (r.lms_item.empty())
    return quarantine("field '" + f.course_id +
                      "' (course_id) is empty or absent; the report must name the learning "
                      "content of every row");

  // status first: a row that is not a result yet needs no date
  StatusMeaning meaning = StatusMeaning::Completed;
  if (!f.status.empty()) {
    const auto st = field(f.status);
    if (!st)
      return quarantine("field '" + f.status + "' (status) is empty or absent");
    const std::string v = lower(*st);
    std::optional<StatusMeaning> m;
    for (const auto& [text_value, mapped] : options.status_values)
      if (text_value == v) m = mapped;
    if (!m) m = builtinStatus(v);
    if (!m)
      return quarantine("status " + shown(*st) +
                        " is not known: map it under status_values (completed, passed, failed or "
                        "in_progress)");
    meaning = *m;
  }
  if (meaning == StatusMeaning::InProgress) {
    n.outcome = Normalised::Outcome::Skip;
    return n;
  }
  r.status = meaning == StatusMeaning::Passed   ? core::FactStatus::Passed
             : meaning == StatusMeaning::Failed ? core::FactStatus::Failed
                                                : core::FactStatus::Completed;
  if (meaning == StatusMeaning::Passed) r.lms_pass = 1;
  if (meaning == StatusMeaning::Failed) r.lms_pass = 0;

  const auto when = field(f.completed_at);
  if (!when)
    return quarantine("field '" + f.completed_at +
                      "' (completed_at) is empty or absent on a finished row");
  const auto at = parseDate(*when);
  if (!at)
    return quarantine("completion date " + shown(*when) + " in field '" + f.completed_at +
                      "' is not a date Workday writes (2026-03-01, 2026-03-01-08:00 or "
                      "2026-03-01T10:15:00.000-08:00)");
  r.at = *at;

  if (!f.pass.empty())
    if (const auto p = field(f.pass)) {
      const auto flag = passFlag(*p);
      if (!flag)
        return quarantine("pass flag " + shown(*p) + " in field '" + f.pass +
                          "' is not a yes/no value (1/0, true/false, yes/no, passed/failed)");
      r.lms_pass = *flag ? 1 : 0;
      if (r.status == core::FactStatus::Completed && f.status.empty())
        r.status = *flag ? core::FactStatus::Passed : core::FactStatus::Failed;
    }

  if (!f.attempt.empty())
    if (const auto a = field(f.attempt)) {
      const auto v = number(*a);
      if (!v || *v < 0 || *v > 65535 || std::floor(*v) != *v)
        return quarantine("attempt " + shown(*a) + " in field '" + f.attempt +
                          "' is not a whole number from 0 to 65535");
      r.attempt = static_cast<std::uint16_t>(*v);
    }

  if (!f.score.empty())
    if (const auto s = field(f.score)) {
      std::string sv = *s;
      ScoreScale scale = options.score_scale;
      if (!sv.empty() && sv.back() == '%') {
        sv.pop_back();
        scale = ScoreScale::Percent;
      }
      const auto v = number(sv);
      if (!v)
        return quarantine("score " + shown(*s) + " in field '" + f.score + "' is not a number");
      std::optional<double> max;
      if (scale == ScoreScale::Percent) {
        r.score = *v;
        max = 100;
      } else if (scale == ScoreScale::Fraction) {
        r.score = *v * 100;
        max = 100;
        if (*v > 1)
          return quarantine("score " + shown(*s) + " is above 1 with score_scale fraction");
      } else {
        r.score = *v;
        if (!f.max_score.empty())
          if (const auto m = field(f.max_score)) {
            max = number(*m);
            if (!max || *max <= 0)
              return quarantine("maximum score " + shown(*m) + " in field '" + f.max_score +
                                "' is not a number above 0");
          }
        if (!max) max = options.default_max_score;
        if (!max)
          return quarantine("score " + shown(*s) +
                            " has no maximum: map max_score, set default_max_score, or set "
                            "score_scale percent");
      }
      r.max_score = *max;
      if (r.score < 0 || r.score > r.max_score)
        return quarantine("score " + shown(*s) + " is outside 0.." +
                          Json(r.max_score).dump() + "; correct it in Workday");
      r.kind = core::FactKind::QuizAttempt;
    }

  if (!f.expires_at.empty())
    if (const auto e = field(f.expires_at)) {
      const auto exp = parseDate(*e);
      if (!exp)
        return quarantine("expiry date " + shown(*e) + " in field '" + f.expires_at +
                          "' is not a date Workday writes");
      r.lms_expiry = *exp;
    }

  // Upsert key: (person, item, attempt); without an attempt number the completion date tells
  // the cycles of a recurring course apart.
  if (!f.record_id.empty())
    if (const auto id = field(f.record_id)) n.external_id = *id;
  if (n.external_id.empty())
    n.external_id = key_person + "|" + r.lms_item + "|" +
                    (r.attempt > 0 ? "a" + std::to_string(r.attempt) : core::formatDate(r.at));
  r.external_id = n.external_id;
  n.outcome = Normalised::Outcome::Record;
  return n;
}

}  // namespace certgate::connectors::workday
