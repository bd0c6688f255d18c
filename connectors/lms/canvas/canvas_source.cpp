#include "connectors/lms/canvas/canvas_source.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connectors/common/encoding.hpp"
#include "connectors/common/link_header.hpp"
#include "connectors/common/options.hpp"

namespace certgate::connectors::canvas {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;
using encoding::excerpt;
using encoding::urlEncode;
using options::OptionReader;

constexpr std::size_t kMaxPages = 10'000'000;  // a loop guard, never a real limit
constexpr int kThrottleRetries = 4;

struct Config {
  std::string url;     // the site's root, without a trailing '/'
  std::string origin;  // scheme://host[:port]
  std::string token;
  std::vector<std::string> courses;
  std::vector<std::string> assignments;
  int per_page = 100;
  bool progress = true;
  bool submissions = true;
  core::Seconds overlap{3600};
  std::optional<core::Instant> start;
  double min_rate_remaining = 100;
  http::Millis pace{1000};
  std::string ca_file;
  core::Seconds timeout{60};
};

std::string str(const Json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::string> idOf(const Json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  const auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->is_number_integer() && it->get<std::int64_t>() > 0)
    return std::to_string(it->get<std::int64_t>());
  if (it->is_string() && !it->get_ref<const std::string&>().empty()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return s;
  }
  return std::nullopt;
}

std::optional<double> numberOf(const Json& o, const char* key) {
  if (!o.is_object()) return std::nullopt;
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return std::nullopt;
  const double d = it->get<double>();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

// graded_since takes YYYY-MM-DDTHH:MM:SSZ.
std::string isoSeconds(core::Instant t) { return core::formatIso(t); }

struct Student {
  std::string sis_user_id, email, name;
};

// The cursor: "<latest graded_at, ISO seconds>;q=<query fingerprint>".
struct Cursor {
  std::optional<core::Instant> graded;
  std::string query;
};

Cursor parseCursor(const std::string& text) {
  Cursor c;
  const auto semi = text.find(";q=");
  if (semi == std::string::npos) return c;
  c.graded = core::parseIso(text.substr(0, semi));
  c.query = text.substr(semi + 3);
  return c;
}

class CanvasSource final : public ports::LmsSource {
 public:
  CanvasSource(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
               http::ClientOptions client_options)
      : name_(std::move(name)), cfg_(std::move(cfg)), redactor_(std::move(redactor)) {
    if (!cfg_.ca_file.empty()) client_options.ca_file = cfg_.ca_file;
    client_options.total_timeout = std::chrono::duration_cast<http::Millis>(cfg_.timeout);
    client_options.connect_timeout =
        std::min(client_options.connect_timeout, client_options.total_timeout);
    if (redactor_) client_options.redactor = redactor_;
    client_ = std::make_unique<http::Client>(std::move(client_options));
    std::string q = cfg_.url;
    for (const auto& c : cfg_.courses) q += "\nc" + c;
    for (const auto& a : cfg_.assignments) q += "\na" + a;
    query_ = encoding::sha256Hex(q).substr(0, 16);
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "canvas"; }

  core::Result<ports::FetchOutcome> fetch(const std::string& cursor, core::Instant now,
                                          ports::RecordSink& sink) override {
    try {
      return fetchAll(cursor, now, sink);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure while reading Canvas: ") + e.what(),
                             where());
    }
  }

  core::Result<ports::PushEvent> parsePush(std::string_view body, core::Instant now) const override {
    (void)now;
    try {
      return parseLiveEvent(body, name_);
    } catch (const std::exception& e) {
      return core::makeError(ErrorKind::Internal,
                             std::string("unexpected failure reading a Live Event: ") + e.what(),
                             where());
    }
  }

 private:
  struct Walk {
    bool complete = false;
    std::string problem;
  };
  struct FetchState {
    ports::FetchOutcome out;
    std::optional<core::Instant> max_graded;
  };
  // Reads one page's items; `emit` false when the page was stored before (only state is kept).
  using PageHandler = std::function<void(const Json& items, const std::string& at, bool emit,
                                         std::int64_t& records, std::int64_t& quarantined)>;

  std::string where() const { return "source '" + name_ + "'"; }
  std::string redact(const std::string& s) const {
    return redactor_ ? redactor_->redact(s) : http::redact(s);
  }
  core::Result<http::Response> get(const std::string& url);
  core::Error failure(const http::Response& response, const std::string& url) const;
  core::Result<Walk> walk(std::string url, const std::string& label, bool units, FetchState& st,
                          ports::RecordSink& sink, const PageHandler& handler);
  core::Result<ports::FetchOutcome> fetchAll(const std::string& cursor, core::Instant now,
                                             ports::RecordSink& sink);

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::unique_ptr<http::Client> client_;
  std::string query_;
  bool pace_next_ = false;
};

bool rateLimited403(const http::Response& r) {
  return r.status == 403 && r.body.find("Rate Limit Exceeded") != std::string::npos;
}

core::Result<http::Response> CanvasSource::get(const std::string& url) {
  http::Request req;
  req.method = http::Method::Get;
  req.url = url;
  req.headers.set("Authorization", "Bearer " + cfg_.token);
  req.headers.set("Accept", "application/json");
  const auto& sleep = client_->options().sleep;
  for (int attempt = 0;; ++attempt) {
    // Canvas's leaky bucket: once little is left, space the requests out.
    if (pace_next_ && sleep) sleep(cfg_.pace);
    auto resp = client_->sendWithRetry(req, http::RetryPolicy{});
    if (!resp) {
      core::Error e = resp.error();
      e.where = where();
      e.message = redact(e.message);
      return e;
    }
    pace_next_ = false;
    if (auto remaining = resp->headers.get("X-Rate-Limit-Remaining")) {
      try {
        pace_next_ = std::stod(*remaining) < cfg_.min_rate_remaining;
      } catch (const std::exception&) {
        pace_next_ = false;
      }
    }
    // Before Canvas answered 429, throttled requests got 403 "Rate Limit Exceeded".
    if (rateLimited403(*resp) && attempt < kThrottleRetries - 1) {
      pace_next_ = false;  // the backoff below is the wait
      if (sleep) sleep(http::Millis{1000LL << attempt});
      continue;
    }
    return resp;
  }
}

core::Error CanvasSource::failure(const http::Response& response, const std::string& url) const {
  const std::string what = "GET " + url;
  core::Status st = http::classify(response, what, -1, redactor_.get());
  core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
  if (rateLimited403(response)) e.kind = ErrorKind::RateLimited;
  std::string detail;
  const Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    if (auto it = doc.find("errors"); it != doc.end()) {
      if (it->is_array() && !it->empty()) detail = str((*it)[0], "message");
      if (it->is_object()) detail = excerpt(it->dump(), 160);
    }
    if (detail.empty()) detail = str(doc, "message");
  } else {
    detail = excerpt(response.body, 160);
  }
  std::string message = what + " answered HTTP " + std::to_string(response.status);
  if (!detail.empty()) message += ": " + detail;
  e.message = redact(message);
  e.where = where();
  if (e.kind == ErrorKind::Auth)
    e.hint = response.status == 401
                 ? "the access token is invalid, expired or revoked: generate a new one for "
                   "certgate's Canvas user and put it in the token file"
                 : "the token's user may not read this: give it a role that can view course "
                   "progress, grades and SIS data in every configured course (docs/connectors.md, "
                   "canvas)";
  return e;
}

core::Result<CanvasSource::Walk> CanvasSource::walk(std::string url, const std::string& label,
                                                    bool units, FetchState& st,
                                                    ports::RecordSink& sink,
                                                    const PageHandler& handler) {
  Walk w;
  for (std::size_t page = 1; page <= kMaxPages; ++page) {
    const std::string at = label + " page " + std::to_string(page);
    auto resp = get(url);
    if (!resp) {
      if (resp.error().kind == ErrorKind::Auth) return resp.error();
      w.problem = at + ": " + resp.error().message;
      return w;
    }
    if (resp->status != 200) {
      core::Error e = failure(*resp, url);
      if (e.kind == ErrorKind::Auth) return e;
      w.problem = at + ": " + e.message;
      return w;
    }
    const Json items = Json::parse(resp->body, nullptr, false);
    if (!items.is_array()) {
      w.problem = at + ": the answer is not a JSON list (" +
                  (items.is_discarded() ? std::string("not JSON, or cut off") : excerpt(resp->body, 80)) +
                  ")";
      return w;
    }
    if (!items.empty()) {
      std::int64_t records = 0, quarantined = 0;
      if (!units) {
        handler(items, at, false, records, quarantined);
      } else {
        ports::UnitInfo unit;
        unit.key = "sha256:" + encoding::sha256Hex(resp->body);
        unit.name = at;
        unit.bytes = static_cast<std::int64_t>(resp->body.size());
        unit.incremental = true;
        ++st.out.units_seen;
        if (sink.alreadyProcessed(unit)) {
          ++st.out.units_skipped;
          handler(items, at, false, records, quarantined);
        } else {
          sink.beginUnit(unit);
          handler(items, at, true, records, quarantined);
          sink.endUnit(unit, true, "");
          st.out.records += records;
          st.out.quarantined += quarantined;
        }
      }
    }
    const auto link = resp->headers.get("Link");
    const auto next = link ? http::nextLink(*link) : std::nullopt;
    if (!next || next->empty()) {
      w.complete = true;
      return w;
    }
    std::string target;
    if (next->front() == '/') {
      target = cfg_.origin + *next;
    } else if (auto origin = options::originOf(*next); origin && *origin == cfg_.origin) {
      target = *next;
    } else {
      w.problem = at + ": the next link " + excerpt(redact(*next), 120) +
                  " is not on the configured site; certgate does not follow it";
      return w;
    }
    if (target == url) {
      w.problem = at + ": Canvas answered the same next link again; stopped to avoid a loop";
      return w;
    }
    url = std::move(target);
  }
  w.problem = label + ": more than " + std::to_string(kMaxPages) + " pages";
  return w;
}

core::Result<ports::FetchOutcome> CanvasSource::fetchAll(const std::string& cursor_text,
                                                         core::Instant now,
                                                         ports::RecordSink& sink) {
  (void)now;
  FetchState st;
  st.out.full_records = 0;  // the students and course progress lists, read whole every time
  Cursor cursor = parseCursor(cursor_text);
  if (cursor.query != query_) cursor.graded.reset();  // another site, course or assignment list
  std::optional<core::Instant> since = cfg_.start;
  if (cursor.graded) {
    since = *cursor.graded - cfg_.overlap;
    if (cfg_.start && *since < *cfg_.start) since = cfg_.start;
  }
  const std::string api = cfg_.url + "/api/v1/courses/";
  const std::string per_page = "per_page=" + std::to_string(cfg_.per_page);
  std::string problem;

  for (const std::string& course : cfg_.courses) {
    std::unordered_map<std::string, Student> students;
    const std::string lc = "course " + course;
    auto quarantine = [&](ports::QuarantinedRecord q, const Json& raw) {
      q.raw = excerpt(raw.dump(), 300);
      sink.quarantine(std::move(q));
    };
    auto identify = [&](ports::SourceRecord& r, const std::string& user) {
      r.source_user = user;
      if (auto it = students.find(user); it != students.end()) {
        r.employee_id = it->second.sis_user_id;
        r.email = it->second.email;
        r.display_name = it->second.name;
      }
    };

    // 1. The students, for identity (sis_user_id, email).
    auto w = walk(api + course + "/users?enrollment_type%5B%5D=student&include%5B%5D=email&" + per_page,
                  lc + " students", false, st, sink,
                  [&](const Json& items, const std::string&, bool, std::int64_t&, std::int64_t&) {
                    st.out.full_records += static_cast<std::int64_t>(items.size());
                    for (const Json& u : items) {
                      const auto id = idOf(u, "id");
                      if (!id) continue;
                      Student s;
                      s.sis_user_id = str(u, "sis_user_id");
                      s.email = str(u, "email");
                      s.name = str(u, "name");
                      students[*id] = std::move(s);
                    }
                  });
    if (!w) return w.error();
    if (!w->complete) {
      problem = w->problem;
      break;
    }

    // 2. Course progress: completed_at once every module requirement is met.
    if (cfg_.progress) {
      w = walk(api + course + "/bulk_user_progress?" + per_page, lc + " progress", true, st, sink,
               [&](const Json& items, const std::string& at, bool emit, std::int64_t& records,
                   std::int64_t& quarantined) {
                 // Read whole at every fetch, stored pages included: the collapse guard's count.
                 st.out.full_records += static_cast<std::int64_t>(items.size());
                 if (!emit) return;
                 std::size_t index = 0;
                 for (const Json& u : items) {
                   ++index;
                   const auto user = idOf(u, "id");
                   const std::string id = "progress:" + course + ":" + user.value_or("?");
                   const std::string location = at + " #" + std::to_string(index);
                   const Json progress = u.is_object() && u.contains("progress") ? u["progress"] : Json();
                   if (!user || !progress.is_object()) {
                     quarantine({id, location, "a progress entry without a user id or progress", ""}, u);
                     ++quarantined;
                     continue;
                   }
                   const auto c = progress.find("completed_at");
                   if (c == progress.end() || c->is_null()) continue;  // not complete yet
                   const auto done = c->is_string() ? core::parseIso(c->get<std::string>()) : std::nullopt;
                   if (!done) {
                     quarantine({id, location, "completed_at is not an ISO 8601 time", ""}, u);
                     ++quarantined;
                     continue;
                   }
                   ports::SourceRecord r;
                   r.external_id = id;
                   r.location = location + " (user " + *user + ")";
                   identify(r, *user);
                   if (r.display_name.empty()) r.display_name = str(u, "display_name");
                   r.lms_item = "course:" + course;
                   r.status = core::FactStatus::Completed;
                   r.at = *done;
                   sink.record(std::move(r));
                   ++records;
                 }
               });
      if (!w) return w.error();
      if (!w->complete) {
        problem = w->problem;
        break;
      }
    }

    // 3. Graded submissions (every assignment kind, classic and New Quizzes alike), each attempt
    // from the submission history.
    if (cfg_.submissions) {
      std::string url = api + course +
                        "/students/submissions?student_ids%5B%5D=all&workflow_state=graded"
                        "&include%5B%5D=assignment&include%5B%5D=submission_history&" +
                        per_page;
      for (const auto& a : cfg_.assignments) url += "&assignment_ids%5B%5D=" + urlEncode(a);
      if (since) url += "&graded_since=" + urlEncode(isoSeconds(*since));
      w = walk(url, lc + " submissions", true, st, sink,
               [&](const Json& items, const std::string& at, bool emit, std::int64_t& records,
                   std::int64_t& quarantined) {
                 std::size_t index = 0;
                 for (const Json& s : items) {
                   ++index;
                   if (const auto g = core::parseIso(str(s, "graded_at")))
                     if (!st.max_graded || *g > *st.max_graded) st.max_graded = g;
                   if (!emit) continue;
                   const auto assignment = idOf(s, "assignment_id");
                   const auto user = idOf(s, "user_id");
                   const std::string location = at + " #" + std::to_string(index);
                   if (!assignment || !user) {
                     quarantine({"", location, "a submission without assignment_id or user_id", ""}, s);
                     ++quarantined;
                     continue;
                   }
                   const Json assignment_obj = s.contains("assignment") ? s["assignment"] : Json();
                   const auto points = numberOf(assignment_obj, "points_possible");
                   const std::string grading = str(assignment_obj, "grading_type");
                   Json versions = s.contains("submission_history") && s["submission_history"].is_array() &&
                                           !s["submission_history"].empty()
                                       ? s["submission_history"]
                                       : Json::array({s});
                   for (const Json& v : versions) {
                     if (v.value("excused", false) == true) continue;
                     const auto score_it = v.find("score");
                     if (score_it == v.end() || score_it->is_null()) continue;  // not graded
                     const auto attempt_n = numberOf(v, "attempt");
                     const int attempt = attempt_n ? static_cast<int>(*attempt_n) : 0;
                     const std::string id = "submission:" + *assignment + ":" + *user + ":" +
                                            std::to_string(attempt);
                     const std::string loc = location + " (assignment " + *assignment + " user " +
                                             *user + " attempt " + std::to_string(attempt) + ")";
                     auto bad = [&](const std::string& reason) {
                       quarantine({id, loc, reason, ""}, v);
                       ++quarantined;
                     };
                     const auto score = numberOf(v, "score");
                     if (!score) {
                       bad("score is not a number");
                       continue;
                     }
                     if (!attempt_n || *attempt_n < 0 || *attempt_n > 65535 ||
                         *attempt_n != std::floor(*attempt_n)) {
                       if (attempt_n) {
                         bad("attempt is not a whole number from 0 to 65535");
                         continue;
                       }
                     }
                     if (!points || *points <= 0) {
                       bad("the assignment has no points_possible to score against (include[]="
                           "assignment missing, or an ungraded assignment)");
                       continue;
                     }
                     if (*score < 0 || *score > *points + 1e-9) {
                       bad("score " + excerpt(score_it->dump(), 20) + " lies outside 0.." +
                           excerpt(Json(*points).dump(), 20) +
                           " (points_possible; extra credit cannot be expressed as a percentage)");
                       continue;
                     }
                     auto when = core::parseIso(str(v, "submitted_at"));
                     if (!when) when = core::parseIso(str(v, "graded_at"));
                     if (!when) {
                       bad("the attempt has neither submitted_at nor graded_at");
                       continue;
                     }
                     ports::SourceRecord r;
                     r.external_id = id;
                     r.location = loc;
                     identify(r, *user);
                     r.lms_item = "assignment:" + *assignment;
                     r.kind = core::FactKind::QuizAttempt;
                     r.status = core::FactStatus::Completed;
                     r.attempt = static_cast<std::uint16_t>(attempt);
                     r.score = *score;
                     r.max_score = *points;
                     if (grading == "pass_fail") {
                       const std::string grade = str(v, "grade");
                       if (grade == "complete") r.lms_pass = 1;
                       if (grade == "incomplete") r.lms_pass = 0;
                     }
                     r.at = *when;
                     sink.record(std::move(r));
                     ++records;
                   }
                 }
               });
      if (!w) return w.error();
      if (!w->complete) {
        problem = w->problem;
        break;
      }
    }
  }

  ports::FetchOutcome& out = st.out;
  out.complete = problem.empty();
  if (!out.complete) {
    out.problem = problem;
    return out;  // the previous cursor stays
  }
  std::optional<core::Instant> next = cursor.graded;
  if (st.max_graded && (!next || *st.max_graded > *next)) next = st.max_graded;
  if (next) out.next_cursor = isoSeconds(*next) + ";q=" + query_;
  return out;
}

// ---- configuration -----------------------------------------------------------------------------

core::Result<std::unique_ptr<ports::LmsSource>> build(const std::string& name,
                                                     const ports::Options& options,
                                                     const std::string& base_dir,
                                                     const ports::SecretReader& secrets,
                                                     std::shared_ptr<http::Redactor> redactor,
                                                     http::ClientOptions client_options) {
  const OptionReader opts("source '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;

  auto root = options::siteRoot(opts, "url", "/api/", "https://school.instructure.com");
  if (!root) return root.error();
  cfg.url = root->url;
  cfg.origin = root->origin;
  auto token = options::tokenSecret(opts, "token", secrets, "/etc/certgate/canvas-token");
  if (!token) return token.error();
  cfg.token = *token;
  if (redactor) redactor->add(cfg.token);

  auto courses = options::idList(opts, "courses", true, "Canvas id", "[1234, 1240]");
  if (!courses) return courses.error();
  cfg.courses = std::move(*courses);
  auto assignments = options::idList(opts, "assignments", false, "Canvas id", "[55, 56]");
  if (!assignments) return assignments.error();
  cfg.assignments = std::move(*assignments);

  auto per_page = opts.integer("per_page", 1, 100, "a whole number from 1 to 100", "e.g. per_page: 100");
  if (!per_page) return per_page.error();
  if (per_page->has_value()) cfg.per_page = static_cast<int>(**per_page);
  auto progress = opts.flag("progress", true);
  if (!progress) return progress.error();
  cfg.progress = *progress;
  auto submissions = opts.flag("submissions", true);
  if (!submissions) return submissions.error();
  cfg.submissions = *submissions;
  if (!cfg.progress && !cfg.submissions)
    return opts.error("submissions", "progress and submissions are both off: nothing would be read",
                      "turn on at least one of them", opts.find("submissions"));

  auto overlap = opts.duration("overlap", core::Seconds{0}, core::Seconds{30 * 86400},
                               "a duration from 0s to 30d", "e.g. overlap: 1h");
  if (!overlap) return overlap.error();
  if (overlap->has_value()) cfg.overlap = **overlap;
  auto start = opts.scalar("start");
  if (!start) return start.error();
  if (start->has_value() && !start->value().empty()) {
    cfg.start = core::parseIso(**start);
    if (!cfg.start)
      return opts.error("start", "'" + **start + "' is not an ISO 8601 date or timestamp",
                        "e.g. start: 2025-01-01T00:00:00Z", opts.find("start"));
  }
  auto remaining = opts.integer("min_rate_remaining", 0, 100000, "a whole number from 0 to 100000",
                                "e.g. min_rate_remaining: 100");
  if (!remaining) return remaining.error();
  if (remaining->has_value()) cfg.min_rate_remaining = static_cast<double>(**remaining);
  auto pace = opts.duration("pace", core::Seconds{0}, core::Seconds{60}, "a duration from 0s to 60s",
                            "e.g. pace: 1s");
  if (!pace) return pace.error();
  if (pace->has_value()) cfg.pace = std::chrono::duration_cast<http::Millis>(**pace);

  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;
  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 60s");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  return std::unique_ptr<ports::LmsSource>(std::make_unique<CanvasSource>(
      name, std::move(cfg), std::move(redactor), std::move(client_options)));
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "canvas";
    s.description =
        "Reads course completion and graded submissions of the listed courses through the Canvas "
        "LMS REST API (incremental on graded_at); reads Canvas Live Events as pushes";
    s.keys = {
        {"url", ValueType::String, true, "", "The Canvas site's root address (the API is {url}/api/v1)"},
        {"token", ValueType::Secret, true, "", "Access token of certgate's Canvas user (Bearer)"},
        {"courses", ValueType::StringList, true, "", "Ids of the courses to read (/courses/N)"},
        {"assignments", ValueType::StringList, false, "",
         "Read only these assignments' submissions (default: every assignment of the courses)"},
        {"per_page", ValueType::Int, false, "100", "Items per page (Link-header paging)"},
        {"progress", ValueType::Bool, false, "true",
         "Read course completion (lms items course:<course id>)"},
        {"submissions", ValueType::Bool, false, "true",
         "Read graded submissions, every attempt (lms items assignment:<assignment id>)"},
        {"overlap", ValueType::Duration, false, "1h",
         "Each fetch reads submissions graded this long before the cursor again"},
        {"start", ValueType::String, false, "",
         "First fetch: submissions graded after this ISO 8601 time only (default: all)"},
        {"min_rate_remaining", ValueType::Int, false, "100",
         "When X-Rate-Limit-Remaining falls below this, wait `pace` before the next request"},
        {"pace", ValueType::Duration, false, "1s", "The wait while the rate limit bucket is low"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for the site instead of the system's"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    return build(name, options, base_dir, secrets, std::move(redactor), std::move(client_options));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::canvas
