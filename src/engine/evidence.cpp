#include "engine/evidence.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/time.hpp"
#include "engine/evaluation.hpp"

namespace certgate::engine {

using json = nlohmann::json;

// ---------------------------------------------------------------- configuration changes

std::vector<std::string> configFiles(const settings::Settings& s) {
  std::vector<std::string> files;
  auto add = [&](const std::string& f) {
    if (!f.empty() && std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
  };
  add(s.config_file);
  for (const auto& f : s.track_files) add(f);
  for (const auto& f : s.policy_files) add(f);
  for (const auto& f : s.item_mapping_files) add(f);
  for (const auto& f : s.grant_mapping_files) add(f);
  add(s.identity_mapping_file);
  std::sort(files.begin(), files.end());
  return files;
}

core::Result<ConfigChange> recordConfigChange(store::Store& store,
                                              const settings::Settings& settings,
                                              core::Instant now, const std::string& actor) {
  ConfigChange out;
  std::map<std::string, std::string> files;
  std::string lines;
  for (const auto& path : configFiles(settings)) {
    std::ifstream in(path, std::ios::binary);
    std::string digest = "unreadable";
    if (in) {
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      if (!in.bad()) digest = store::sha256Hex(bytes);
    }
    files[path] = digest;
    lines += path + '\t' + digest + '\n';
  }
  out.digest = store::sha256Hex(lines);
  auto last = store.lastAudit("config.change");
  if (!last) return last.error();
  std::map<std::string, std::string> before;
  if (*last) {
    const json d = json::parse((*last)->details_json, nullptr, false);
    if (d.is_object() && d.value("digest", "") == out.digest) return out;
    if (d.is_object() && d.contains("files") && d["files"].is_object())
      for (auto it = d["files"].begin(); it != d["files"].end(); ++it)
        if (it->is_string()) before[it.key()] = it->get<std::string>();
  }
  for (const auto& [path, digest] : files) {
    auto it = before.find(path);
    if (it == before.end()) {
      out.added.push_back(path);
    } else if (it->second != digest) {
      out.changed.push_back(path);
    }
  }
  for (const auto& [path, digest] : before)
    if (!files.count(path)) out.removed.push_back(path);
  json details = {{"digest", out.digest}, {"files", files},   {"changed", out.changed},
                  {"added", out.added},   {"removed", out.removed}, {"first", !last->has_value()}};
  store::AuditRow row;
  row.at = now;
  row.actor = actor;
  row.action = "config.change";
  row.subject = "configuration";
  row.details_json = details.dump();
  auto id = store.appendAudit(row);
  if (!id) return id.error();
  out.recorded = true;
  out.audit_id = *id;
  return out;
}

// ---------------------------------------------------------------- evidence export

const std::vector<std::string> kEvidenceColumns = {
    "record_type", "person",       "track",      "at",        "item",        "status",
    "attempt",     "score",        "max_score",  "pct",       "lms_pass",    "source",
    "external_id", "state",        "certified_at", "expires_at", "exception_id", "actor",
    "role",        "starts_at",    "ends_at",    "revoked_at", "action",     "audit_id",
    "details"};

namespace {

// One evidence record. Empty strings, nullopt and 0 ids are absent (an empty CSV cell, no key
// in JSON).
struct Record {
  std::string record_type, person, track;
  std::optional<core::Instant> at;
  std::string item, status;
  std::int64_t attempt = 0;
  std::optional<double> score, max_score, pct;
  std::optional<bool> lms_pass;
  std::string source, external_id, state;
  std::optional<core::Instant> certified_at, expires_at;
  std::int64_t exception_id = 0;
  std::string actor, role;
  std::optional<core::Instant> starts_at, ends_at, revoked_at;
  std::string action;
  std::int64_t audit_id = 0;
  std::string details;  // JSON text
};

std::string iso(const std::optional<core::Instant>& t) {
  return t ? core::formatIso(*t) : std::string();
}

std::string number(const std::optional<double>& v) {
  if (!v) return {};
  std::ostringstream s;
  s.precision(15);
  s << *v;
  return s.str();
}

std::vector<std::string> cells(const Record& r) {
  return {r.record_type,
          r.person,
          r.track,
          iso(r.at),
          r.item,
          r.status,
          r.attempt ? std::to_string(r.attempt) : "",
          number(r.score),
          number(r.max_score),
          number(r.pct),
          r.lms_pass ? (*r.lms_pass ? "true" : "false") : "",
          r.source,
          r.external_id,
          r.state,
          iso(r.certified_at),
          iso(r.expires_at),
          r.exception_id ? std::to_string(r.exception_id) : "",
          r.actor,
          r.role,
          iso(r.starts_at),
          iso(r.ends_at),
          iso(r.revoked_at),
          r.action,
          r.audit_id ? std::to_string(r.audit_id) : "",
          r.details};
}

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string csvField(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

json recordJson(const Record& r) {
  json j = json::object();
  const auto values = cells(r);
  for (std::size_t i = 2; i < kEvidenceColumns.size(); ++i) {  // record_type, person: grouping
    if (values[i].empty()) continue;
    const std::string& key = kEvidenceColumns[i];
    if (key == "details") {
      j[key] = json::parse(values[i], nullptr, false);
    } else if (key == "attempt" || key == "exception_id" || key == "audit_id") {
      j[key] = std::stoll(values[i]);
    } else if (key == "score" || key == "max_score" || key == "pct") {
      j[key] = key == "score" ? *r.score : key == "max_score" ? *r.max_score : *r.pct;
    } else if (key == "lms_pass") {
      j[key] = *r.lms_pass;
    } else {
      j[key] = values[i];
    }
  }
  return j;
}

// The JSON document's list each record type goes to.
const char* jsonList(const std::string& type) {
  if (type == "completion") return "completions";
  if (type == "attempt" || type == "attempt_reset") return "attempts";
  if (type == "certification") return "certifications";
  if (type == "exception") return "exceptions";
  if (type == "approval") return "approvals";
  if (type == "alert") return "alerts";
  return "actions";
}

struct PersonEvidence {
  const store::PersonRow* person = nullptr;
  std::vector<Record> records;
};

}  // namespace

core::Result<EvidenceExport> exportEvidence(store::Store& store,
                                            const settings::LoadedPolicy& policy,
                                            const EvidenceOptions& options) {
  auto evaluation = Evaluation::load(store, policy);
  if (!evaluation) return evaluation.error();
  const store::PersonRow* only = nullptr;
  if (!options.person.empty()) {
    only = evaluation->findPerson(options.person);
    if (!only)
      return core::makeError(core::ErrorKind::NotFound,
                             "no person matches '" + options.person + "'", store.path(),
                             "give a person key, employee id or email as `certgate status` shows");
  }
  auto source_rows = store.sources();
  if (!source_rows) return source_rows.error();
  std::unordered_map<std::int64_t, std::string> source_names;
  for (const auto& s : *source_rows) source_names[s.id] = s.name;

  // Read the head first: every row the export shows is at or before it.
  auto head = store.auditHead();
  if (!head) return head.error();

  std::vector<PersonEvidence> people;
  std::unordered_map<std::int64_t, std::size_t> by_id;
  std::unordered_map<std::string, std::size_t> by_key;
  auto st = evaluation->forEach(
      options.now, [&](const store::PersonRow& p) { return !only || p.id == only->id; },
      [&](const PersonVerdicts& pv) {
        PersonEvidence pe;
        pe.person = pv.person;
        for (const auto& f : pv.facts) {
          if (f.at < options.since) continue;
          Record r;
          r.record_type = f.kind == core::FactKind::QuizAttempt ? "attempt" : store::toString(f.kind);
          r.at = f.at;
          r.item = f.item;
          r.status = store::toString(f.status);
          r.attempt = f.attempt;
          if (!std::isnan(f.score)) r.score = f.score;
          if (!std::isnan(f.max_score)) r.max_score = f.max_score;
          if (r.score && r.max_score && *r.max_score > 0) r.pct = *r.score / *r.max_score * 100.0;
          if (f.lms_pass >= 0) r.lms_pass = f.lms_pass == 1;
          auto sn = source_names.find(f.source_id);
          r.source = sn != source_names.end() ? sn->second : std::to_string(f.source_id);
          r.external_id = f.external_id;
          json d = json::object();
          if (!f.lms_item.empty() && f.lms_item != f.item) d["lms_item"] = f.lms_item;
          if (!f.location.empty()) d["location"] = f.location;
          if (f.lms_expiry) d["lms_expiry"] = core::formatIso(*f.lms_expiry);
          if (!d.empty()) r.details = d.dump();
          pe.records.push_back(std::move(r));
        }
        for (const auto& v : pv.verdicts) {
          if (v.state == core::State::OutOfScope) continue;
          Record r;
          r.record_type = "certification";
          r.track = std::string(policy.symbols.name(v.track));
          r.at = options.now;
          r.state = core::toString(v.state);
          r.certified_at = v.certified_at;
          r.expires_at = v.expires_at;
          r.exception_id = v.exception_id;
          json d = {{"entitled", v.entitled}};
          if (v.grace_ends_at) d["grace_ends_at"] = core::formatIso(*v.grace_ends_at);
          if (v.access_ends_at) d["access_ends_at"] = core::formatIso(*v.access_ends_at);
          if (v.attempts_allowed) {
            d["attempts_used"] = v.attempts_used;
            d["attempts_allowed"] = *v.attempts_allowed;
          }
          r.details = d.dump();
          pe.records.push_back(std::move(r));
        }
        by_id[pv.person->id] = people.size();
        by_key[pv.person->key] = people.size();
        people.push_back(std::move(pe));
      });
  if (!st) return st.error();

  auto exceptions = store.exceptions();
  if (!exceptions) return exceptions.error();
  for (const auto& x : *exceptions) {
    auto it = by_id.find(x.person_id);
    if (it == by_id.end()) continue;
    bool any_approval = false;
    for (const auto& a : x.approvals) any_approval = any_approval || a.at >= options.since;
    const core::Instant ended = x.revoked_at ? std::min(*x.revoked_at, x.ends_at) : x.ends_at;
    if (x.requested_at < options.since && ended < options.since && !any_approval) continue;
    auto& records = people[it->second].records;
    Record r;
    r.record_type = "exception";
    r.track = x.track;
    r.at = x.requested_at;
    r.exception_id = x.id;
    r.actor = x.requester;
    r.starts_at = x.starts_at;
    r.ends_at = x.ends_at;
    r.revoked_at = x.revoked_at;
    if (!x.revoked_by.empty()) r.details = json({{"revoked_by", x.revoked_by}}).dump();
    json justification = json::parse(x.justification_json, nullptr, false);
    if (justification.is_object() && !justification.empty()) {
      json d = r.details.empty() ? json::object() : json::parse(r.details);
      d["justification"] = justification;
      r.details = d.dump();
    }
    records.push_back(std::move(r));
    for (const auto& a : x.approvals) {
      Record ar;
      ar.record_type = "approval";
      ar.track = x.track;
      ar.at = a.at;
      ar.exception_id = x.id;
      ar.actor = a.approver;
      ar.role = a.role;
      if (!a.comment.empty()) ar.details = json({{"comment", a.comment}}).dump();
      records.push_back(std::move(ar));
    }
  }

  // Actions: the audit rows about a person (subject "KEY" or "KEY/..." or details.person).
  store::AuditFilter filter;
  filter.since = options.since;
  auto audited = store.forEachAudit(filter, [&](const store::AuditRow& a) {
    if (a.id > head->id) return;
    if (a.action == "ingest" || a.action == "config.change" || a.action == "plan.held") return;
    const json d = json::parse(a.details_json, nullptr, false);
    std::string key = a.subject.substr(0, a.subject.find('/'));
    auto it = by_key.find(key);
    if (it == by_key.end() && d.is_object() && d.contains("person") && d["person"].is_string())
      it = by_key.find(d["person"].get<std::string>());
    if (it == by_key.end()) return;
    Record r;
    r.record_type = "action";
    r.at = a.at;
    r.action = a.action;
    r.actor = a.actor;
    r.audit_id = a.id;
    if (d.is_object() && d.contains("track") && d["track"].is_string())
      r.track = d["track"].get<std::string>();
    else if (const auto slash = a.subject.find('/'); slash != std::string::npos)
      r.track = a.subject.substr(slash + 1);
    r.details = a.details_json;
    people[it->second].records.push_back(std::move(r));
  });
  if (!audited) return audited.error();

  // Alerts about a person (the document's person key): one record per alert and sink, with its
  // delivery state, so an auditor sees that security was told of each revocation.
  auto outbox = store.alertOutbox("", -1);
  if (!outbox) return outbox.error();
  for (const auto& row : *outbox) {
    if (row.created_at < options.since) continue;
    const json d = json::parse(row.payload_json, nullptr, false);
    if (!d.is_object() || !d.contains("person")) continue;
    const json& who = d["person"];
    std::string key;
    if (who.is_string()) key = who.get<std::string>();
    else if (who.is_object() && who.contains("key") && who["key"].is_string())
      key = who["key"].get<std::string>();
    auto it = by_key.find(key);
    if (it == by_key.end()) continue;
    Record r;
    r.record_type = "alert";
    r.at = row.created_at;
    r.action = row.kind;
    r.status = row.state;
    r.source = row.sink;
    r.external_id = row.dedup_id;
    if (d.contains("rule") && d["rule"].is_object() && d["rule"].contains("track") &&
        d["rule"]["track"].is_string())
      r.track = d["rule"]["track"].get<std::string>();
    else if (d.contains("track") && d["track"].is_string())
      r.track = d["track"].get<std::string>();
    json details{{"severity", row.severity}, {"title", d.value("title", "")},
                 {"attempts", row.attempts}};
    if (row.delivered_at) details["delivered_at"] = core::formatIso(*row.delivered_at);
    if (d.contains("evidence")) details["evidence"] = d["evidence"];
    r.details = details.dump();
    people[it->second].records.push_back(std::move(r));
  }

  EvidenceExport out;
  out.head = *head;
  out.persons = static_cast<std::int64_t>(people.size());
  for (auto& pe : people) {
    std::stable_sort(pe.records.begin(), pe.records.end(), [](const Record& a, const Record& b) {
      auto rank = [](const std::string& t) {
        static const std::vector<std::string> order = {
            "completion", "attempt",  "attempt_reset", "certification",
            "exception",  "approval", "action",        "alert"};
        return std::find(order.begin(), order.end(), t) - order.begin();
      };
      if (rank(a.record_type) != rank(b.record_type))
        return rank(a.record_type) < rank(b.record_type);
      return a.at.value_or(core::kBeginning) < b.at.value_or(core::kBeginning);
    });
    out.records += static_cast<std::int64_t>(pe.records.size());
  }

  const std::string generated = core::formatIso(options.now);
  const std::string since = core::formatIso(options.since);
  if (options.format == EvidenceFormat::Csv) {
    std::string text;
    auto line = [&](const std::vector<std::string>& values) {
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) text += ',';
        text += csvField(values[i]);
      }
      text += "\r\n";
    };
    line(kEvidenceColumns);
    Record meta;
    meta.record_type = "audit_head";
    meta.at = options.now;
    meta.audit_id = out.head.id;
    meta.starts_at = options.since;
    meta.ends_at = options.now;
    meta.details = json({{"hash", out.head.hash}, {"head", out.head.str()}}).dump();
    line(cells(meta));
    for (const auto& pe : people) {
      Record who;
      who.record_type = "person";
      who.person = pe.person->key;
      who.details = json({{"employee_id", pe.person->employee_id},
                          {"email", pe.person->email},
                          {"display_name", pe.person->display_name},
                          {"population", pe.person->population}})
                        .dump();
      line(cells(who));
      for (auto r : pe.records) {
        r.person = pe.person->key;
        line(cells(r));
      }
    }
    out.text = std::move(text);
    return out;
  }
  json doc = {{"generated_at", generated},
              {"since", since},
              {"audit_head", {{"id", out.head.id}, {"hash", out.head.hash}, {"head", out.head.str()}}},
              {"persons", json::array()}};
  for (const auto& pe : people) {
    json p = {{"key", pe.person->key},
              {"employee_id", pe.person->employee_id},
              {"email", pe.person->email},
              {"display_name", pe.person->display_name},
              {"population", pe.person->population}};
    for (const char* list : {"completions", "attempts", "certifications", "exceptions",
                             "approvals", "actions", "alerts"})
      p[list] = json::array();
    for (const auto& r : pe.records) {
      json j = recordJson(r);
      if (r.record_type == "attempt_reset") j["reset"] = true;
      p[jsonList(r.record_type)].push_back(std::move(j));
    }
    doc["persons"].push_back(std::move(p));
  }
  out.text = doc.dump(2) + "\n";
  return out;
}

}  // namespace certgate::engine
