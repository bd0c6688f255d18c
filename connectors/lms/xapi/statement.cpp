#include "connectors/lms/xapi/statement.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/time.hpp"

namespace certgate::connectors::xapi {

namespace {

using Json = nlohmann::json;
using Outcome = Normalised::Outcome;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

const Json* member(const Json& obj, const char* name) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

// A string member; nullptr when absent; `bad` set when present but not a string.
const std::string* stringMember(const Json& obj, const char* name, bool& bad) {
  const Json* v = member(obj, name);
  if (v == nullptr) return nullptr;
  if (!v->is_string()) {
    bad = true;
    return nullptr;
  }
  return v->get_ptr<const std::string*>();
}

std::string inQuotes(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, 120));
  if (s.size() > 120) out += "...";
  return out + "'";
}

std::string numberText(double v) {
  std::string s = Json(v).dump();
  return s;
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool isSha1Hex(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

double round6(double v) { return std::round(v * 1e6) / 1e6; }

struct Quarantine {
  std::string reason;
};

// The attempt number from the configured extension: nullopt when absent, an error text when the
// value is not a whole number in 1..65535.
std::optional<std::uint16_t> readAttempt(const Json& statement, const std::string& iri,
                                         std::string& error) {
  for (const char* part : {"context", "result"}) {
    const Json* holder = member(statement, part);
    if (holder == nullptr) continue;
    const Json* ext = member(*holder, "extensions");
    if (ext == nullptr || !ext->is_object()) continue;
    const auto it = ext->find(iri);
    if (it == ext->end()) continue;
    std::int64_t n = -1;
    if (it->is_number_integer()) {
      n = it->get<std::int64_t>();
    } else if (it->is_number_float()) {
      const double d = it->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && d >= 0 && d <= 1e6) n = static_cast<std::int64_t>(d);
    } else if (it->is_string()) {
      const std::string& s = it->get_ref<const std::string&>();
      if (!s.empty() && s.size() <= 6 &&
          std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        n = std::stoll(s);
    }
    if (n < 1 || n > 65535) {
      error = std::string(part) + ".extensions[" + inQuotes(iri) + "] value " + it->dump() +
              " is not an attempt number (a whole number from 1 to 65535); fix the content "
              "that sends it, or the source's attempt_extension";
      return std::nullopt;
    }
    return static_cast<std::uint16_t>(n);
  }
  return std::nullopt;
}

// Fills the identity claims from the actor; returns a reason when the actor cannot be used.
std::optional<std::string> readActor(const Json& statement, const NormaliseOptions& opt,
                                     ports::SourceRecord& rec) {
  const Json* actor = member(statement, "actor");
  if (actor == nullptr || !actor->is_object())
    return std::string("no actor object; the LRS returned a statement that is not valid xAPI");
  bool bad = false;
  if (const std::string* type = stringMember(*actor, "objectType", bad); type && *type == "Group")
    return std::string(
        "the actor is a Group; certgate credits individual learners only: have the content send "
        "one statement per learner (an Agent actor)");
  if (const std::string* name = stringMember(*actor, "name", bad)) rec.display_name = *name;
  bad = false;

  int identifiers = 0;
  for (const char* ifi : {"mbox", "mbox_sha1sum", "openid", "account"})
    if (member(*actor, ifi) != nullptr) ++identifiers;
  if (identifiers == 0)
    return std::string(
        "the actor has no identifier (mbox, mbox_sha1sum, openid or account); the statement "
        "cannot be matched to a person");
  if (identifiers > 1)
    return std::string(
        "the actor has more than one identifier (xAPI allows exactly one of mbox, "
        "mbox_sha1sum, openid, account); fix the content that sends it");

  if (const Json* mbox = member(*actor, "mbox")) {
    if (!mbox->is_string() || !startsWithNoCase(mbox->get_ref<const std::string&>(), "mailto:"))
      return "actor.mbox " + mbox->dump() + " is not a mailto: IRI";
    std::string email = mbox->get<std::string>().substr(7);
    if (email.find('@') == std::string::npos || email.front() == '@' || email.back() == '@')
      return "actor.mbox " + inQuotes(mbox->get<std::string>()) + " holds no email address";
    rec.email = std::move(email);
    return std::nullopt;
  }
  if (const Json* sha1 = member(*actor, "mbox_sha1sum")) {
    if (!sha1->is_string() || !isSha1Hex(sha1->get_ref<const std::string&>()))
      return "actor.mbox_sha1sum " + sha1->dump() + " is not a SHA-1 hex digest";
    if (opt.mbox_sha1sum == Sha1As::Quarantine)
      return "the actor is identified only by mbox_sha1sum (a hash of the email), which certgate "
             "cannot match to a person: have the LMS send mbox or an account, or set "
             "mbox_sha1sum: user on the source and map the hash with an override in "
             "mappings/identity.yaml";
    rec.source_user = lower(sha1->get_ref<const std::string&>());
    return std::nullopt;
  }
  if (member(*actor, "openid") != nullptr)
    return std::string(
        "the actor is identified by openid, which certgate does not match; have the LMS send "
        "mbox or an account");
  const Json* account = member(*actor, "account");
  if (!account->is_object()) return std::string("actor.account is not an object");
  const std::string* name = stringMember(*account, "name", bad);
  const std::string* home = stringMember(*account, "homePage", bad);
  if (bad || name == nullptr || name->empty() || home == nullptr)
    return std::string("actor.account needs a homePage and a non-empty name (both strings)");
  switch (opt.account_as) {
    case AccountAs::User: rec.source_user = *name; break;
    case AccountAs::EmployeeId: rec.employee_id = *name; break;
    case AccountAs::Email: rec.email = *name; break;
  }
  return std::nullopt;
}

struct Score {
  double score = core::kNoScore;
  double max = core::kNoScore;
};

// Reads result.score; returns a reason when it is unusable.
std::optional<std::string> readScore(const Json& score, Score& out) {
  if (!score.is_object()) return "result.score " + score.dump() + " is not an object";
  auto number = [&](const char* key, std::optional<double>& v) -> std::optional<std::string> {
    const Json* n = member(score, key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_number() || !std::isfinite(n->get<double>()))
      return "result.score." + std::string(key) + " " + n->dump() + " is not a number";
    v = n->get<double>();
    return std::nullopt;
  };
  std::optional<double> scaled, raw, min, max;
  for (auto [key, v] : {std::pair{"scaled", &scaled}, {"raw", &raw}, {"min", &min}, {"max", &max}})
    if (auto e = number(key, *v)) return e;
  if (scaled && (*scaled < -1 || *scaled > 1))
    return "result.score.scaled " + numberText(*scaled) +
           " is outside -1..1: an impossible score; fix the content that sends it";
  if (min && max && *min >= *max)
    return "result.score.min " + numberText(*min) + " is not below max " + numberText(*max);
  if (raw && max && *raw > *max)
    return "result.score.raw " + numberText(*raw) + " is greater than max " + numberText(*max) +
           ": an impossible score; fix the content that sends it";
  if (raw && min && *raw < *min)
    return "result.score.raw " + numberText(*raw) + " is below min " + numberText(*min) +
           ": an impossible score; fix the content that sends it";
  if (raw && max) {
    if (*max <= 0)
      return "result.score.max " + numberText(*max) +
             " is not positive, so no percentage can be computed; send scaled, or a positive max";
    out.score = std::max(*raw, 0.0);
    out.max = *max;
  } else if (scaled) {
    out.score = round6(std::max(*scaled, 0.0) * 100);
    out.max = 100;
  }
  return std::nullopt;
}

}  // namespace

const char* toString(Verb verb) {
  switch (verb) {
    case Verb::Completed: return "completed";
    case Verb::Passed: return "passed";
    case Verb::Failed: return "failed";
    case Verb::Scored: return "scored";
  }
  return "?";
}

std::string verbIri(Verb verb) { return std::string(kAdlVerbPrefix) + toString(verb); }

std::optional<Verb> parseVerb(std::string_view text) {
  for (const Verb v : kAllVerbs)
    if (text == toString(v) || text == verbIri(v)) return v;
  return std::nullopt;
}

std::optional<std::int64_t> parseMicros(std::string_view text) {
  const auto seconds = core::parseIso(text);
  if (!seconds) return std::nullopt;
  std::int64_t us = seconds->time_since_epoch().count() * 1'000'000;
  const auto t = text.find_first_of("Tt");
  if (t != std::string_view::npos && t + 9 < text.size() && text[t + 3] == ':' &&
      text[t + 6] == ':') {
    std::size_t p = t + 9;
    if (text[p] == '.' || text[p] == ',') {
      ++p;
      std::int64_t scale = 100'000;
      while (p < text.size() && std::isdigit(static_cast<unsigned char>(text[p]))) {
        us += (text[p] - '0') * scale;
        scale /= 10;
        ++p;
      }
    }
  }
  return us;
}

std::string formatMicros(std::int64_t us) {
  std::int64_t s = us / 1'000'000;
  std::int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --s;
  }
  std::string iso = core::formatIso(core::Instant{core::Seconds{s}});  // ...SSZ
  char buf[8];
  std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
  iso.insert(iso.size() - 1, buf);
  return iso;
}

Normalised normalise(const Json& statement, const NormaliseOptions& options,
                     const std::string& location) {
  Normalised out;
  auto reject = [&](std::string reason) {
    out.outcome = Outcome::Quarantine;
    out.reason = std::move(reason);
    return out;
  };
  if (!statement.is_object()) return reject("not a statement object: " + statement.dump().substr(0, 80));

  bool bad = false;
  const std::string* id = stringMember(statement, "id", bad);
  if (id != nullptr && isUuid(*id)) out.statement_id = lower(*id);
  if (const std::string* stored = stringMember(statement, "stored", bad))
    out.stored_us = parseMicros(*stored);
  if (out.statement_id.empty())
    return reject(id == nullptr ? "no statement id; the LRS returned a statement that is not valid xAPI"
                                : "statement id " + inQuotes(*id) + " is not a UUID");

  const Json* verb = member(statement, "verb");
  bad = false;
  const std::string* verb_id = verb ? stringMember(*verb, "id", bad) : nullptr;
  if (verb_id == nullptr) return reject("no verb id; the LRS returned a statement that is not valid xAPI");
  const Json* object = member(statement, "object");
  if (object == nullptr || !object->is_object()) return reject("no object");
  const std::string* object_type = stringMember(*object, "objectType", bad);

  if (*verb_id == kVoidedVerb) {
    const std::string* target = stringMember(*object, "id", bad);
    if (object_type == nullptr || *object_type != "StatementRef" || target == nullptr || !isUuid(*target))
      return reject("a voiding statement whose object is not a StatementRef with a statement id");
    out.outcome = Outcome::Voiding;
    out.voided_id = lower(*target);
    return out;
  }
  out.verb = parseVerb(*verb_id);
  if (!out.verb) return out;  // Ignore: not a verb certgate reads
  if (object_type != nullptr && *object_type == "StatementRef") return out;  // Ignore
  if (object_type != nullptr && *object_type != "Activity")
    return reject("the object is a " + *object_type +
                  ", not an Activity; certgate reads completions of activities");
  const std::string* item = stringMember(*object, "id", bad);
  if (item == nullptr || item->empty())
    return reject("the object has no activity id (object.id); the item cannot be known");

  ports::SourceRecord& rec = out.record;
  rec.external_id = out.statement_id;
  rec.location = location;
  rec.lms_item = *item;
  if (auto why = readActor(statement, options, rec)) return reject(*why);

  // When it happened: the statement's timestamp, else when the LRS stored it.
  bad = false;
  const std::string* ts = stringMember(statement, "timestamp", bad);
  if (bad) return reject("timestamp is not a string");
  const char* ts_name = "timestamp";
  if (ts == nullptr) {
    ts = stringMember(statement, "stored", bad);
    ts_name = "stored";
  }
  if (ts == nullptr) return reject("neither timestamp nor stored is set; the statement has no date");
  const auto at = core::parseIso(*ts);
  if (!at) return reject(std::string(ts_name) + " " + inQuotes(*ts) + " is not an ISO 8601 timestamp");
  rec.at = *at;

  // Outcome: the verb, cross-checked with result.success and result.completion.
  std::optional<bool> success, completion;
  Score score;
  if (const Json* result = member(statement, "result")) {
    if (!result->is_object()) return reject("result " + result->dump().substr(0, 80) + " is not an object");
    for (auto [key, v] : {std::pair{"success", &success}, {"completion", &completion}}) {
      const Json* b = member(*result, key);
      if (b == nullptr) continue;
      if (!b->is_boolean()) return reject("result." + std::string(key) + " " + b->dump() + " is not true or false");
      *v = b->get<bool>();
    }
    if (const Json* s = member(*result, "score"))
      if (auto why = readScore(*s, score)) return reject(*why);
  }
  const Verb v = *out.verb;
  if (v == Verb::Passed && success == false)
    return reject("verb passed with result.success false: the statement contradicts itself; fix the content that sends it");
  if (v == Verb::Failed && success == true)
    return reject("verb failed with result.success true: the statement contradicts itself; fix the content that sends it");
  if (v == Verb::Completed && completion == false)
    return reject("verb completed with result.completion false: the statement contradicts itself; fix the content that sends it");
  if (v == Verb::Scored && std::isnan(score.score))
    return reject("verb scored without a usable score (result.score needs scaled, or raw with max)");

  switch (v) {
    case Verb::Completed: rec.status = core::FactStatus::Completed; break;
    case Verb::Passed: rec.status = core::FactStatus::Passed; break;
    case Verb::Failed: rec.status = core::FactStatus::Failed; break;
    case Verb::Scored:
      rec.status = success ? (*success ? core::FactStatus::Passed : core::FactStatus::Failed)
                           : core::FactStatus::Unknown;
      break;
  }
  if (success) {
    rec.lms_pass = *success ? 1 : 0;
  } else if (v == Verb::Passed) {
    rec.lms_pass = 1;
  } else if (v == Verb::Failed) {
    rec.lms_pass = 0;
  }
  rec.kind = (v == Verb::Completed && std::isnan(score.score)) ? core::FactKind::Completion
                                                               : core::FactKind::QuizAttempt;
  rec.score = score.score;
  rec.max_score = score.max;

  if (!options.attempt_extension.empty()) {
    std::string error;
    const auto attempt = readAttempt(statement, options.attempt_extension, error);
    if (!error.empty()) return reject(error);
    if (attempt) rec.attempt = *attempt;
  }
  out.outcome = Outcome::Record;
  return out;
}

}  // namespace certgate::connectors::xapi
