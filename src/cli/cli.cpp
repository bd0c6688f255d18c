#include "cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/alert_commands.hpp"
#include "cli/audit_commands.hpp"
#include "cli/context.hpp"
#include "cli/daemon.hpp"
#include "cli/exception_commands.hpp"
#include "cli/lms_secrets.hpp"
#include "cli/render.hpp"
#include "cli/roster_file.hpp"
#include "cli/serve_command.hpp"
#include "cli/store_commands.hpp"
#include "cli/sync_commands.hpp"
#include "cli/token_commands.hpp"
#include "connectors/registry.hpp"
#include "core/evaluate.hpp"
#include "core/identity.hpp"
#include "engine/evaluation.hpp"
#include "engine/evidence.hpp"
#include "engine/ingest.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

#ifndef CERTGATE_VERSION
#define CERTGATE_VERSION "0.0.0"
#endif

namespace certgate::cli {

namespace {

using nlohmann::json;

using namespace detail;

// ---------------------------------------------------------------- validate-config

std::string trackSummary(const settings::LoadedPolicy& p, const core::Track& t) {
  std::ostringstream s;
  s << "modules " << t.modules.size();
  if (t.quiz) {
    s << ", quiz >= " << t.quiz->min_score_pct << "%";
    if (t.quiz->attempts_allowed) s << " in " << *t.quiz->attempts_allowed << " attempt(s)";
  }
  s << ", " << (t.recertify_days ? "recertify every " + std::to_string(*t.recertify_days) + "d"
                                 : std::string("no expiry"));
  if (t.grace_days) s << ", grace " << t.grace_days << "d";
  if (!t.populations.empty()) {
    s << ", populations ";
    for (std::size_t i = 0; i < t.populations.size(); ++i)
      s << (i ? "/" : "") << p.symbols.name(t.populations[i]);
  }
  if (!t.requires_tracks.empty()) {
    s << ", requires ";
    for (std::size_t i = 0; i < t.requires_tracks.size(); ++i)
      s << (i ? "/" : "") << p.symbols.name(t.requires_tracks[i]);
  }
  if (t.exceptions.allowed) {
    s << ", exceptions <= " << t.exceptions.max_duration_days << "d approved by ";
    for (std::size_t i = 0; i < t.exceptions.required_roles.size(); ++i)
      s << (i ? "+" : "") << t.exceptions.required_roles[i];
  }
  return s.str();
}

json policyJson(const settings::LoadedPolicy& p) {
  json j;
  j["policy_ids"] = p.policy_ids;
  j["tracks"] = json::array();
  for (std::size_t i = 0; i < p.policy.tracks.size(); ++i) {
    const auto& t = p.policy.tracks[i];
    json x;
    x["id"] = std::string(p.symbols.name(t.id));
    x["origin"] = i < p.tracks.size() ? p.tracks[i].origin : "";
    x["modules"] = json::array();
    for (auto m : t.modules) x["modules"].push_back(std::string(p.symbols.name(m)));
    if (t.quiz) {
      x["quiz"] = {{"id", std::string(p.symbols.name(t.quiz->item))},
                   {"min_score_pct", t.quiz->min_score_pct},
                   {"attempts_allowed", t.quiz->attempts_allowed ? json(*t.quiz->attempts_allowed) : json(nullptr)}};
    }
    x["recertify_days"] = t.recertify_days ? json(*t.recertify_days) : json(nullptr);
    x["grace_days"] = t.grace_days;
    x["renew_window_days"] = t.renew_window_days;
    x["remind_before_days"] = t.remind_before_days;
    x["populations"] = json::array();
    for (auto s : t.populations) x["populations"].push_back(std::string(p.symbols.name(s)));
    x["requires"] = json::array();
    for (auto s : t.requires_tracks) x["requires"].push_back(std::string(p.symbols.name(s)));
    x["exceptions"] = {{"allowed", t.exceptions.allowed},
                       {"max_duration_days", t.exceptions.max_duration_days},
                       {"required_roles", t.exceptions.required_roles},
                       {"justification_fields", t.exceptions.justification_fields}};
    j["tracks"].push_back(x);
  }
  j["groups"] = json::array();
  for (const auto& g : p.grants)
    for (const auto& gr : g.groups)
      j["groups"].push_back({{"track", g.track},
                             {"directory", gr.directory},
                             {"group", gr.group},
                             {"mode", gr.mode == settings::GroupGrant::Mode::Exclusive ? "exclusive" : "additive"}});
  j["alerts"] = json::array();
  for (const auto& a : p.alerts)
    j["alerts"].push_back({{"name", a.name}, {"threshold", a.threshold}, {"limit", a.limit}, {"per", a.per}, {"notify", a.notify}});
  j["enforced"] = json::array();
  for (const auto& e : p.enforced) j["enforced"].push_back({{"path", e.path}, {"how", e.how}, {"where", e.where.str()}});
  j["policy_warnings"] = p.warnings;
  j["not_enforced"] = json::array();
  for (const auto& n : p.not_enforced)
    j["not_enforced"].push_back({{"path", n.path}, {"why", n.why}, {"where", n.where.str()}});
  return j;
}

void printPolicyText(Io& io, const settings::LoadedPolicy& p) {
  io.out << "  tracks (" << p.policy.tracks.size() << ")\n";
  for (const auto& t : p.policy.tracks)
    io.out << "    " << p.symbols.name(t.id) << ": " << trackSummary(p, t) << '\n';
  std::size_t groups = 0;
  for (const auto& g : p.grants) groups += g.groups.size();
  io.out << "  groups (" << groups << ")\n";
  for (const auto& g : p.grants)
    for (const auto& gr : g.groups)
      io.out << "    " << g.track << " -> " << (gr.directory.empty() ? "" : gr.directory + "/")
             << gr.group
             << (gr.mode == settings::GroupGrant::Mode::Exclusive ? " (exclusive)" : " (additive)")
             << '\n';
  if (!p.alerts.empty()) {
    io.out << "  alert thresholds (" << p.alerts.size() << ")\n";
    for (const auto& a : p.alerts) io.out << "    " << a.name << ": " << a.threshold << '\n';
  }
  if (!p.enforced.empty()) {
    io.out << "  enforced by certgate (" << p.enforced.size() << ")\n";
    for (const auto& e : p.enforced) io.out << "    " << e.path << ": " << e.how << '\n';
  }
  io.out << "  not enforced by certgate (" << p.not_enforced.size() << ")\n";
  for (const auto& n : p.not_enforced)
    io.out << "    " << n.path << " (" << n.where.str() << "): " << n.why << '\n';
  for (const auto& w : p.warnings) io.err << "warning: " << w << '\n';
}

int cmdValidate(Io& io, const std::string& config, const std::vector<std::string>& policies,
                const std::vector<std::string>& tracks, bool config_given, const std::string& format,
                bool online) {
  const bool as_json = format == "json";
  if (!policies.empty() || !tracks.empty()) {
    std::map<std::string, std::string> bindings;
    std::vector<std::string> grant_files;
    if (config_given) {
      auto s = loadConfig(io, config);
      if (!s) return kConfigInvalid;
      bindings = s->group_bindings;
    }
    std::vector<core::Error> errors;
    auto p = settings::loadPolicyFiles(tracks, policies, bindings, grant_files, &errors);
    if (!p.ok()) {
      printErrors(io, errors, p.error());
      return kConfigInvalid;
    }
    if (as_json) {
      json j = policyJson(**p);
      j["ok"] = true;
      io.out << j.dump(2) << '\n';
    } else {
      io.out << "ok: policy";
      for (const auto& f : policies) io.out << ' ' << f;
      for (const auto& f : tracks) io.out << ' ' << f;
      io.out << '\n';
      printPolicyText(io, **p);
    }
    return kOk;
  }
  auto s = loadConfig(io, config);
  if (!s) return kConfigInvalid;
  // Building each source validates its options the way a real run would.
  int code = kOk;
  auto source_redactor = std::make_shared<connectors::http::Redactor>();
  for (const auto& src : s->sources) {
    auto made = connectors::makeLmsSource(src.kind, src.name, src.options, s->base_dir,
                                          lmsSecretReader(*s, source_redactor), source_redactor);
    if (!made.ok()) {
      io.err << "error: " << made.error().describe() << '\n';
      code = kConfigInvalid;
    }
  }
  if (code != kOk) return code;
  json online_report;
  if (online) code = checkDirectoriesOnline(io, *s, as_json, online_report);
  if (as_json) {
    json j = policyJson(*s->policy);
    j["ok"] = code == kOk;
    j["config"] = s->config_file;
    j["store"] = s->store_path;
    j["sources"] = json::array();
    for (const auto& src : s->sources)
      j["sources"].push_back({{"name", src.name}, {"kind", src.kind}, {"enabled", src.enabled}});
    j["directories"] = json::array();
    for (const auto& d : s->directories)
      j["directories"].push_back({{"name", d.name}, {"kind", d.kind}, {"enabled", d.enabled},
                                  {"aliases", d.aliases}, {"roster", d.roster}});
    if (online) j["online"] = online_report;
    j["warnings"] = s->warnings;
    io.out << j.dump(2) << '\n';
    return code;
  }
  if (code != kOk) return code;
  io.out << "ok: " << s->config_file << '\n';
  io.out << "  store: " << s->store_path << '\n';
  io.out << "  sources (" << s->sources.size() << ")\n";
  for (const auto& src : s->sources)
    io.out << "    " << src.name << ": " << src.kind << (src.enabled ? "" : " (disabled)") << '\n';
  io.out << "  directories (" << s->directories.size() << ")\n";
  for (const auto& d : s->directories) {
    io.out << "    " << d.name << ": " << d.kind << (d.enabled ? "" : " (disabled)");
    if (!d.aliases.empty()) {
      io.out << ", also called";
      for (const auto& a : d.aliases) io.out << ' ' << a;
    }
    if (d.roster) io.out << ", roster";
    io.out << '\n';
  }
  if (online) {
    for (const auto& d : online_report) {
      io.out << "    online " << d["name"].get<std::string>() << ": connected";
      for (const auto& g : d["groups"])
        io.out << "; " << g["group"].get<std::string>() << " -> " << g["id"].get<std::string>();
      io.out << '\n';
    }
  }
  if (!s->policy->policy_ids.empty()) {
    io.out << "  policy documents:";
    for (const auto& id : s->policy->policy_ids) io.out << ' ' << id;
    io.out << '\n';
  }
  printPolicyText(io, *s->policy);
  return kOk;
}

// ---------------------------------------------------------------- ingest

int cmdIngest(Io& io, const std::string& config, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  settings::Settings* s = &opened->settings;
  store::Store* st = opened->store.get();
  if (auto cc = engine::recordConfigChange(*st, *s, io.now(), "certgate"); !cc)
    return failWith(io, cc.error(), kStoreUnavailable);
  ports::FixedClock clock(io.now());
  engine::Ingestor ingestor(*st, *s, io.now_override ? static_cast<const ports::Clock&>(clock) : io.clock);

  if (!s->identity.roster_path.empty()) {
    auto roster = readRoster(s->identity);
    if (!roster.ok()) {
      io.err << "error: roster: " << roster.error().describe() << '\n';
      return kFailure;
    }
    auto loaded = ingestor.loadRoster(*roster);
    if (!loaded.ok()) {
      io.err << "error: roster: " << loaded.error().describe() << '\n';
      return kFailure;
    }
  }

  std::vector<engine::SourceHandle> handles;
  auto source_redactor = std::make_shared<connectors::http::Redactor>();
  for (const auto& src : s->sources) {
    if (!src.enabled) continue;
    auto made = connectors::makeLmsSource(src.kind, src.name, src.options, s->base_dir,
                                          lmsSecretReader(*s, source_redactor), source_redactor);
    if (!made.ok()) {
      io.err << "error: " << made.error().describe() << '\n';
      return kConfigInvalid;
    }
    handles.push_back({&src, std::move(made).value()});
  }
  auto report = ingestor.run(handles);
  if (!report.ok()) {
    io.err << "error: ingest: " << report.error().describe() << '\n';
    return report.error().kind == core::ErrorKind::Corrupt ? kStoreUnavailable : kFailure;
  }
  if (format == "json") {
    json j;
    j["run_id"] = report->run_id;
    j["complete"] = report->complete();
    j["sources"] = json::array();
    for (const auto& r : report->sources)
      j["sources"].push_back({{"source", r.source}, {"kind", r.kind}, {"complete", r.complete},
                              {"problem", r.problem}, {"files_read", r.units_seen - r.units_skipped},
                              {"files_skipped", r.units_skipped}, {"inserted", r.inserted},
                              {"updated", r.updated}, {"unchanged", r.unchanged},
                              {"quarantined", r.quarantined}, {"people_created", r.people_created},
                              {"unmapped_items", r.unmapped_items}});
    io.out << j.dump(2) << '\n';
  } else {
    Table t({"SOURCE", "KIND", "FILES", "SKIPPED", "NEW", "UPDATED", "SAME", "QUARANTINED", "COMPLETE"});
    for (const auto& r : report->sources)
      t.add({r.source, r.kind, std::to_string(r.units_seen - r.units_skipped),
             std::to_string(r.units_skipped), std::to_string(r.inserted), std::to_string(r.updated),
             std::to_string(r.unchanged), std::to_string(r.quarantined), r.complete ? "yes" : "NO"});
    io.out << "ingest run " << report->run_id << '\n';
    t.print(io.out);
    for (const auto& r : report->sources) {
      if (!r.complete)
        io.out << "\n" << r.source << " is INCOMPLETE: " << r.problem
               << "\n  certgate will not revoke anything because of data from this source until a complete fetch.\n";
      if (r.quarantined)
        io.out << "\n" << r.quarantined << " record(s) from " << r.source
               << " set aside: see `certgate quarantine`.\n";
      if (r.unmapped_items)
        io.out << "\n" << r.unmapped_items << " record(s) from " << r.source
               << " are for items no track uses (kept, not evaluated): map them in mappings/items.yaml if they matter.\n";
    }
  }
  return report->complete() ? kOk : kIncomplete;
}

// ---------------------------------------------------------------- status

struct StatusFilter {
  std::string person;
  std::vector<std::string> tracks;
  std::set<core::State> states;
  std::optional<core::Seconds> expiring_within;
  bool entitled_only = false;
  bool all = false;  // include out_of_scope rows
};

bool expiringWithin(const core::Verdict& v, core::Instant now, core::Seconds within) {
  std::optional<core::Instant> end;
  if (v.state == core::State::Certified || v.state == core::State::Expiring)
    end = v.expires_at;
  else if (v.state == core::State::Grace || v.state == core::State::Exception)
    end = v.access_ends_at;
  return end && *end <= now + within;
}

int cmdStatus(Io& io, const std::string& config, const StatusFilter& filter, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  settings::Settings* s = &opened->settings;
  store::Store* st = opened->store.get();
  auto ev = engine::Evaluation::load(*st, *s->policy);
  if (!ev.ok()) return failWith(io, ev.error(), kFailure);
  const core::Instant now = io.now();
  for (const auto& t : filter.tracks)
    if (!s->policy->symbols.find(t) || !findTrack(*s->policy, *s->policy->symbols.find(t))) {
      io.err << "error: unknown track '" << t << "'; known tracks:";
      for (const auto& tr : s->policy->policy.tracks) io.err << ' ' << s->policy->symbols.name(tr.id);
      io.err << '\n';
      return kNotFound;
    }
  const store::PersonRow* only = nullptr;
  if (!filter.person.empty()) {
    only = ev->findPerson(filter.person);
    if (!only) {
      io.err << "error: no person matches '" << filter.person << "' (by key, employee id or email)\n";
      return kNotFound;
    }
  }
  auto health = engine::sourceHealth(*st, *s);
  if (!health.ok()) return failWith(io, health.error(), kFailure);

  struct Row {
    const store::PersonRow* person;
    core::Verdict verdict;
  };
  std::vector<Row> rows;
  std::map<std::string, int> counts;
  std::int64_t people = 0;
  std::int64_t hidden_out_of_scope = 0;
  auto status = ev->forEach(
      now, [&](const store::PersonRow& p) { return !only || p.id == only->id; },
      [&](const engine::PersonVerdicts& pv) {
        ++people;
        for (const auto& v : pv.verdicts) {
          const std::string track(s->policy->symbols.name(v.track));
          if (!filter.tracks.empty() &&
              std::find(filter.tracks.begin(), filter.tracks.end(), track) == filter.tracks.end())
            continue;
          if (!filter.states.empty() && !filter.states.count(v.state)) continue;
          if (filter.states.empty() && !filter.all && v.state == core::State::OutOfScope) {
            ++hidden_out_of_scope;
            continue;
          }
          if (filter.expiring_within && !expiringWithin(v, now, *filter.expiring_within)) continue;
          if (filter.entitled_only && !v.entitled) continue;
          ++counts[core::toString(v.state)];
          core::Verdict copy = v;
          copy.evidence.clear();
          copy.evidence.insert(copy.evidence.end(), v.evidence.begin(), v.evidence.end());
          rows.push_back({pv.person, std::move(copy)});
        }
      });
  if (!status.ok()) return failWith(io, status.error(), kFailure);
  bool stale = false;
  for (const auto& h : *health) stale = stale || !h.complete;

  RenderContext ctx{*s->policy, now, {}, nullptr};
  if (format == "json") {
    json j;
    j["as_of"] = core::formatIso(now);
    j["sources"] = json::array();
    for (const auto& h : *health)
      j["sources"].push_back({{"name", h.name}, {"kind", h.kind}, {"complete", h.complete},
                              {"last_fetch", h.ever_fetched ? json(core::formatIso(h.last_fetch)) : json(nullptr)},
                              {"problem", h.problem}});
    j["summary"] = counts;
    j["rows"] = json::array();
    for (const auto& r : rows) {
      json x = personJson(*r.person);
      x.update(verdictJson(r.verdict, ctx, false));
      j["rows"].push_back(std::move(x));
    }
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  if (format == "csv") {
    io.out << "person,employee_id,email,name,population,track,state,entitled,certified_at,expires_at,access_ends_at,next_step\n";
    for (const auto& r : rows) {
      const core::Track* t = findTrack(*s->policy, r.verdict.track);
      auto iso = [](const std::optional<core::Instant>& t2) { return t2 ? core::formatIso(*t2) : std::string(); };
      io.out << csvField(r.person->key) << ',' << csvField(r.person->employee_id) << ','
             << csvField(r.person->email) << ',' << csvField(r.person->display_name) << ','
             << csvField(r.person->population) << ','
             << csvField(std::string(s->policy->symbols.name(r.verdict.track))) << ','
             << core::toString(r.verdict.state) << ',' << (r.verdict.entitled ? "true" : "false") << ','
             << iso(r.verdict.certified_at) << ',' << iso(r.verdict.expires_at) << ','
             << iso(r.verdict.access_ends_at) << ','
             << csvField(t ? nextStep(r.verdict, *t, ctx) : "") << '\n';
    }
    return kOk;
  }
  io.out << "as of " << core::formatIso(now) << "\n";
  for (const auto& h : *health) {
    io.out << "source " << h.name << " (" << h.kind << "): ";
    if (!h.ever_fetched)
      io.out << h.problem;
    else
      io.out << (h.complete ? "complete" : "INCOMPLETE") << ", last fetch "
             << core::formatIso(h.last_fetch) << (h.complete ? "" : ": " + h.problem);
    io.out << '\n';
  }
  io.out << '\n';
  Table t({"PERSON", "NAME", "POPULATION", "TRACK", "STATE", "ACCESS", "CERTIFIED", "EXPIRES", "ACCESS ENDS", "NEXT"});
  for (const auto& r : rows) {
    const core::Track* tr = findTrack(*s->policy, r.verdict.track);
    auto date = [](const std::optional<core::Instant>& x) { return x ? core::formatDate(*x) : std::string("-"); };
    t.add({r.person->key, r.person->display_name, r.person->population.empty() ? "-" : r.person->population,
           std::string(s->policy->symbols.name(r.verdict.track)), core::toString(r.verdict.state),
           r.verdict.entitled ? "yes" : "no", date(r.verdict.certified_at), date(r.verdict.expires_at),
           date(r.verdict.access_ends_at), tr ? nextStep(r.verdict, *tr, ctx) : ""});
  }
  t.print(io.out);
  io.out << '\n' << people << (people == 1 ? " person, " : " people, ") << rows.size() << " row(s):";
  bool first = true;
  for (const auto& [state, n] : counts) {
    io.out << (first ? " " : ", ") << n << ' ' << state;
    first = false;
  }
  io.out << '\n';
  if (hidden_out_of_scope)
    io.out << hidden_out_of_scope << " out-of-scope row(s) not shown (--all shows them)\n";
  if (stale)
    io.out << "warning: a source is incomplete; states that depend on its missing data may be out of date "
              "(see the source lines above)\n";
  return kOk;
}

// ---------------------------------------------------------------- explain

int cmdExplain(Io& io, const std::string& config, const std::string& who, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  settings::Settings* s = &opened->settings;
  store::Store* st = opened->store.get();
  auto ev = engine::Evaluation::load(*st, *s->policy);
  if (!ev.ok()) return failWith(io, ev.error(), kFailure);
  const store::PersonRow* person = ev->findPerson(who);
  if (!person) {
    io.err << "error: no person matches '" << who << "' (by key, employee id or email); "
           << "check `certgate status` or `certgate quarantine` for unmatched records\n";
    return kNotFound;
  }
  const core::Instant now = io.now();
  std::vector<core::Verdict> verdicts;
  std::vector<store::FactRow> facts;
  auto status = ev->forEach(
      now, [&](const store::PersonRow& p) { return p.id == person->id; },
      [&](const engine::PersonVerdicts& pv) {
        verdicts.assign(pv.verdicts.begin(), pv.verdicts.end());
        facts.assign(pv.facts.begin(), pv.facts.end());
      });
  if (!status.ok()) return failWith(io, status.error(), kFailure);
  RenderContext ctx{*s->policy, now, facts, nullptr};
  if (format == "json") {
    json j;
    j["as_of"] = core::formatIso(now);
    j["person"] = personJson(*person);
    j["tracks"] = json::array();
    for (const auto& v : verdicts) j["tracks"].push_back(verdictJson(v, ctx, true));
    j["facts"] = json::array();
    for (const auto& f : facts)
      j["facts"].push_back({{"id", f.id}, {"item", f.item}, {"lms_item", f.lms_item},
                            {"at", core::formatIso(f.at)}, {"location", f.location},
                            {"score", std::isnan(f.score) ? json(nullptr) : json(f.score)},
                            {"max_score", std::isnan(f.max_score) ? json(nullptr) : json(f.max_score)}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  io.out << (person->display_name.empty() ? person->key : person->display_name);
  if (!person->email.empty()) io.out << " <" << person->email << ">";
  if (!person->employee_id.empty()) io.out << " (" << person->employee_id << ")";
  io.out << ", population " << (person->population.empty() ? "unknown" : person->population) << '\n';
  io.out << "as of " << core::formatIso(now) << "\n";
  for (const auto& v : verdicts) {
    const core::Track* t = findTrack(*s->policy, v.track);
    if (!t) continue;
    io.out << "\n" << s->policy->symbols.name(v.track) << ": " << core::toString(v.state)
           << " — access " << (v.entitled ? "yes" : "no");
    if (v.access_ends_at && v.entitled)
      io.out << " until " << core::formatIso(*v.access_ends_at) << " (" << relative(*v.access_ends_at, now) << ")";
    io.out << '\n';
    if (v.certified_at) {
      io.out << "  certified " << core::formatIso(*v.certified_at);
      if (v.expires_at) io.out << ", expires " << core::formatIso(*v.expires_at) << " (" << relative(*v.expires_at, now) << ")";
      if (v.grace_ends_at) io.out << ", grace until " << core::formatIso(*v.grace_ends_at);
      io.out << '\n';
    }
    if (v.attempts_allowed && v.state != core::State::OutOfScope &&
        (v.attempts_used > 0 || v.state == core::State::LockedOut))
      io.out << "  quiz attempts used in the current window: " << v.attempts_used << " of "
             << *v.attempts_allowed << '\n';
    int shown_cycle = -1;
    for (const auto& e : v.evidence) {
      if (e.cycle != shown_cycle && e.requirement != core::Requirement::Population) {
        if (e.cycle > v.cycle || (e.cycle != shown_cycle && shown_cycle >= 0))
          io.out << "  " << (e.cycle > v.cycle ? "renewal (next cycle):" : "cycle " + std::to_string(e.cycle) + ":") << '\n';
        shown_cycle = e.cycle;
      }
      io.out << "    " << (e.met ? "✓ " : "✗ ") << describe(e, *t, ctx) << '\n';
    }
    io.out << "  next: " << nextStep(v, *t, ctx) << '\n';
  }
  return kOk;
}

// ---------------------------------------------------------------- quarantine, sources, runs

int cmdQuarantine(Io& io, const std::string& config, std::int64_t limit, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  store::Store* st = opened->store.get();
  auto rows = st->quarantine(limit);
  if (!rows.ok()) return failWith(io, rows.error(), kFailure);
  auto total = st->countQuarantine();
  if (format == "json") {
    json j = json::array();
    for (const auto& q : *rows)
      j.push_back({{"id", q.id}, {"at", core::formatIso(q.at)}, {"source", q.source_name},
                   {"external_id", q.external_id}, {"location", q.location}, {"reason", q.reason},
                   {"raw", q.raw}, {"run_id", q.run_id}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  Table t({"ID", "WHEN", "SOURCE", "WHERE", "REASON"});
  for (const auto& q : *rows)
    t.add({std::to_string(q.id), core::formatIso(q.at), q.source_name.empty() ? "-" : q.source_name,
           q.location, q.reason});
  t.print(io.out);
  io.out << '\n' << (total.ok() ? *total : static_cast<std::int64_t>(rows->size()))
         << " record(s) set aside. They are never used to grant or revoke; fix them at the source and "
            "re-export.\n";
  return kOk;
}

int cmdSources(Io& io, const std::string& config, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  settings::Settings* s = &opened->settings;
  store::Store* st = opened->store.get();
  auto health = engine::sourceHealth(*st, *s);
  if (!health.ok()) return failWith(io, health.error(), kFailure);
  if (format == "json") {
    json j = json::array();
    for (const auto& h : *health)
      j.push_back({{"name", h.name}, {"kind", h.kind}, {"complete", h.complete},
                   {"last_fetch", h.ever_fetched ? json(core::formatIso(h.last_fetch)) : json(nullptr)},
                   {"records", h.records}, {"quarantined", h.quarantined}, {"problem", h.problem}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  Table t({"SOURCE", "KIND", "COMPLETE", "LAST FETCH", "READ", "QUARANTINED", "PROBLEM"});
  for (const auto& h : *health)
    t.add({h.name, h.kind, h.complete ? "yes" : "NO", h.ever_fetched ? core::formatIso(h.last_fetch) : "never",
           std::to_string(h.records), std::to_string(h.quarantined), h.problem});
  t.print(io.out);
  return kOk;
}

int cmdRuns(Io& io, const std::string& config, std::int64_t limit, const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  store::Store* st = opened->store.get();
  auto runs = st->runs(limit);
  if (!runs.ok()) return failWith(io, runs.error(), kFailure);
  if (format == "json") {
    json j = json::array();
    for (const auto& r : *runs)
      j.push_back({{"id", r.id}, {"kind", r.kind}, {"started_at", core::formatIso(r.started_at)},
                   {"finished_at", r.finished_at ? json(core::formatIso(*r.finished_at)) : json(nullptr)},
                   {"outcome", r.outcome}, {"summary", json::parse(r.summary_json.empty() ? "{}" : r.summary_json, nullptr, false)}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  Table t({"RUN", "KIND", "STARTED", "FINISHED", "OUTCOME"});
  for (const auto& r : *runs)
    t.add({std::to_string(r.id), r.kind, core::formatIso(r.started_at),
           r.finished_at ? core::formatIso(*r.finished_at) : "-", r.outcome});
  t.print(io.out);
  return kOk;
}

// ---------------------------------------------------------------- attempts reset

int cmdAttemptsReset(Io& io, const std::string& config, const std::string& who, const std::string& track,
                     const std::string& by, const std::string& reason) {
  auto s = loadConfig(io, config);
  if (!s) return kConfigInvalid;
  auto sym = s->policy->symbols.find(track);
  const core::Track* t = sym ? findTrack(*s->policy, *sym) : nullptr;
  if (!t) {
    io.err << "error: unknown track '" << track << "'\n";
    return kNotFound;
  }
  if (!t->quiz) {
    io.err << "error: track " << track << " has no quiz; there are no attempts to reset\n";
    return kUsage;
  }
  int code = kOk;
  auto st = openStore(io, *s, false, code);
  if (!st) return code;
  auto person = st->findPerson(core::normaliseEmail(who).empty() ? core::normaliseEmployeeId(who)
                                                                  : core::normaliseEmail(who));
  if (!person.ok() || !person->has_value()) {
    io.err << "error: no person matches '" << who << "'\n";
    return kNotFound;
  }
  const core::Instant now = io.now();
  auto tx = st->begin();
  if (!tx.ok()) return failWith(io, tx.error(), kStoreUnavailable);
  auto source = st->ensureSource("certgate", "internal");
  if (!source.ok()) return failWith(io, source.error(), kFailure);
  store::FactRow f;
  f.source_id = *source;
  f.external_id = "reset:" + (*person)->key + ":" + track + ":" + std::to_string(now.time_since_epoch().count());
  f.person_id = (*person)->id;
  f.item = std::string(s->policy->symbols.name(t->quiz->item));
  f.lms_item = f.item;
  f.kind = core::FactKind::AttemptReset;
  f.at = now;
  f.location = "certgate attempts reset by " + by;
  auto up = st->upsertFact(f, now);
  store::AuditRow a;
  a.at = now;
  a.actor = by;
  a.action = "attempts.reset";
  a.subject = (*person)->key + "/" + track;
  a.details_json = json({{"reason", reason}, {"track", track}}).dump();
  auto au = st->appendAudit(a);
  if (!up.ok() || !au.ok()) {
    io.err << "error: " << (!up.ok() ? up.error() : au.error()).describe() << '\n';
    return kFailure;
  }
  if (auto c = tx->commit(); !c.ok()) {
    io.err << "error: " << c.error().describe() << '\n';
    return kFailure;
  }
  io.out << "attempts for " << track << " reset for " << (*person)->key << " at " << core::formatIso(now)
         << " (audited)\n";
  return kOk;
}

// ---------------------------------------------------------------- connectors

int cmdConnectors(Io& io, const std::string& describe_kind) {
  if (describe_kind.empty()) {
    Table t({"KIND", "ROLE", "DESCRIPTION"});
    for (const auto& c : connectors::all())
      t.add({c.spec->kind, connectors::toString(c.role), c.spec->description});
    t.print(io.out);
    return kOk;
  }
  const ports::ConfigSpec* spec = connectors::lmsSpec(describe_kind);
  if (!spec) spec = connectors::directorySpec(describe_kind);
  if (!spec) spec = connectors::gatewaySpec(describe_kind);
  if (!spec) {
    io.err << "error: no connector kind '" << describe_kind << "'\n";
    return kNotFound;
  }
  io.out << spec->kind << ": " << spec->description << "\n\n";
  Table t({"KEY", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"});
  for (const auto& k : spec->keys)
    t.add({k.key, ports::toString(k.type), k.required ? "yes" : "no", k.default_value, k.description});
  t.print(io.out);
  return kOk;
}

std::optional<core::Instant> parseWhen(const std::string& text) { return core::parseIso(text); }

}  // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
        const ports::Clock& clock) {
  Io io{out, err, clock, std::nullopt};
  CLI::App app{"certgate: certification-gated access. Pulls learning records, applies certification "
               "rules, and reports who is entitled to what.",
               "certgate"};
  app.set_version_flag("--version", std::string("certgate ") + CERTGATE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  std::string config = defaultConfigPath();
  std::string now_text;
  auto* config_opt = app.add_option("-c,--config", config, "certgate.yaml (default: $CERTGATE_CONFIG or /etc/certgate/certgate.yaml)");
  app.add_option("--now", now_text, "evaluate as of this ISO 8601 instant instead of the current time (what-if, reproducible output)");
  std::string format = "table";

  auto* validate = app.add_subcommand("validate-config", "check configuration, tracks, policy documents and mappings");
  std::vector<std::string> v_policies, v_tracks;
  validate->add_option("--policy", v_policies, "check this policy document on its own (repeatable)");
  validate->add_option("--tracks", v_tracks, "check this track file on its own (repeatable)");
  std::string v_format = "text";
  validate->add_option("--format", v_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  bool v_online = false;
  validate->add_flag("--online", v_online, "also connect to every directory and resolve every mapped group (reads the secrets)");

  auto* ingest = app.add_subcommand("ingest", "fetch every enabled source and store its records");
  std::string i_format = "table";
  ingest->add_option("--format", i_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* status = app.add_subcommand("status", "who is certified, expiring, locked out, ... per track");
  StatusFilter filter;
  std::vector<std::string> states;
  std::string within;
  status->add_option("--person", filter.person, "one person: key, employee id or email");
  status->add_option("--track", filter.tracks, "only these tracks (repeatable)");
  status->add_option("--state", states, "only these states (repeatable): out_of_scope, not_started, in_progress, locked_out, certified, expiring, grace, expired, exception")->delimiter(',');
  status->add_option("--expiring-within", within, "only access that ends within this duration, e.g. 30d");
  status->add_flag("--entitled", filter.entitled_only, "only rows that grant access");
  status->add_flag("--all", filter.all, "include tracks that do not apply to the person (out_of_scope)");
  status->add_option("--format", format, "table, json or csv")->check(CLI::IsMember({"table", "json", "csv"}));

  auto* explain = app.add_subcommand("explain", "every requirement of every track for one person, with evidence");
  std::string who;
  explain->add_option("person", who, "key, employee id or email")->required();
  std::string e_format = "text";
  explain->add_option("--format", e_format, "text or json")->check(CLI::IsMember({"text", "json"}));

  auto* quarantine = app.add_subcommand("quarantine", "records set aside and why");
  std::int64_t q_limit = 200;
  quarantine->add_option("--limit", q_limit, "at most this many (newest first)");
  std::string q_format = "table";
  quarantine->add_option("--format", q_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* sources = app.add_subcommand("sources", "each source's last fetch: complete or not, and why");
  std::string s_format = "table";
  sources->add_option("--format", s_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* runs = app.add_subcommand("runs", "recent runs and their outcome");
  std::int64_t r_limit = 20;
  runs->add_option("--limit", r_limit, "at most this many");
  std::string r_format = "table";
  runs->add_option("--format", r_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* attempts = app.add_subcommand("attempts", "quiz attempts");
  attempts->require_subcommand(1);
  auto* reset = attempts->add_subcommand("reset", "give a locked-out person a fresh set of attempts (audited)");
  std::string a_person, a_track, a_by, a_reason;
  reset->add_option("person", a_person, "key, employee id or email")->required();
  reset->add_option("track", a_track, "track id")->required();
  reset->add_option("--by", a_by, "who authorises the reset")->required();
  reset->add_option("--reason", a_reason, "why (kept in the audit trail)")->required();

  auto* excs = app.add_subcommand("exceptions", "time-limited exceptions: request, approve, reject, revoke, list, show");
  excs->require_subcommand(1);
  std::string x_format = "table";
  auto formatOption = [&](CLI::App* cmd) {
    cmd->add_option("--format", x_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  };
  auto* x_request = excs->add_subcommand("request", "ask for access without certification for a bounded time");
  ExceptionRequestArgs xr;
  x_request->add_option("person", xr.person, "key, employee id or email")->required();
  x_request->add_option("track", xr.track, "track id")->required();
  x_request->add_option("--requester", xr.requester, "who asks (cannot approve it)")->required();
  x_request->add_option("--start", xr.start, "ISO 8601 start (default: now)");
  x_request->add_option("--days", xr.days, "duration in days (at most the track's maxDurationDays)");
  x_request->add_option("--end", xr.end, "ISO 8601 end, instead of --days");
  x_request->add_option("--field", xr.fields, "justification NAME=VALUE (repeatable; every field the policy names)");
  formatOption(x_request);
  auto* x_approve = excs->add_subcommand("approve", "approve an exception in one required role (the approver must hold it: exceptions.approvers)");
  std::int64_t x_id = 0;
  std::string x_who, x_role, x_reason, x_comment;
  x_approve->add_option("id", x_id, "exception id")->required();
  x_approve->add_option("--approver", x_who, "who approves")->required();
  x_approve->add_option("--role", x_role, "the required role approved in")->required();
  x_approve->add_option("--comment", x_comment, "a note kept with the approval");
  formatOption(x_approve);
  auto* x_reject = excs->add_subcommand("reject", "refuse a pending exception for good (by a holder of one of its roles)");
  x_reject->add_option("id", x_id, "exception id")->required();
  x_reject->add_option("--by", x_who, "who rejects")->required();
  x_reject->add_option("--reason", x_reason, "why (kept in the audit trail)")->required();
  formatOption(x_reject);
  auto* x_revoke = excs->add_subcommand("revoke", "end an exception now");
  x_revoke->add_option("id", x_id, "exception id")->required();
  x_revoke->add_option("--by", x_who, "who revokes")->required();
  x_revoke->add_option("--reason", x_reason, "why (kept in the audit trail)");
  formatOption(x_revoke);
  auto* x_list = excs->add_subcommand("list", "every exception and its state");
  formatOption(x_list);
  auto* x_show = excs->add_subcommand("show", "one exception: state, approvals, missing roles, window");
  x_show->add_option("id", x_id, "exception id")->required();
  formatOption(x_show);

  auto* plan_cmd = app.add_subcommand("plan", "the dry run: who would be added to and removed from which group, and why");
  std::string p_person, p_format = "table";
  plan_cmd->add_option("--person", p_person, "plan for one person only: key, employee id or email");
  plan_cmd->add_option("--format", p_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* apply_cmd = app.add_subcommand("apply", "apply a stored plan (default: the newest one not yet applied)");
  std::string ap_id, ap_format = "table";
  apply_cmd->add_option("plan", ap_id, "plan id (certgate plans list)");
  apply_cmd->add_option("--format", ap_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* sync_cmd = app.add_subcommand("sync", "fetch, evaluate, plan and apply, once");
  std::string y_person, y_format = "table";
  bool y_once = false, y_no_fetch = false;
  double y_wait = 600;
  sync_cmd->add_flag("--once", y_once, "run one reconcile and exit (the default outside the daemon)");
  sync_cmd->add_option("--person", y_person, "reconcile one person only (provision on demand)");
  sync_cmd->add_flag("--no-fetch", y_no_fetch, "use the facts already stored; do not read the sources");
  sync_cmd->add_option("--format", y_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  sync_cmd->add_option("--wait", y_wait,
                       "seconds to wait for a run in progress (the daemon's, another sync's) before giving up; 0: do not wait")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  auto* plans = app.add_subcommand("plans", "stored plans: list, show, approve a held one");
  plans->require_subcommand(1);
  auto* pl_list = plans->add_subcommand("list", "recent plans and their state");
  std::int64_t pl_limit = 20;
  std::string pl_format = "table", pl_id, pl_by, pl_reason;
  pl_list->add_option("--limit", pl_limit, "at most this many");
  pl_list->add_option("--format", pl_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* pl_show = plans->add_subcommand("show", "one plan, action by action");
  pl_show->add_option("plan", pl_id, "plan id")->required();
  pl_show->add_option("--format", pl_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* pl_approve = plans->add_subcommand("approve", "release a held plan's removals (audited); then run certgate apply ID");
  pl_approve->add_option("plan", pl_id, "plan id")->required();
  pl_approve->add_option("--by", pl_by, "who approves")->required();
  pl_approve->add_option("--reason", pl_reason, "why the removals are right (kept in the audit trail)")->required();

  auto* serve_cmd = app.add_subcommand("serve", "serve the token authority's HTTP endpoints (/auth/verify, /oauth2/introspect, /healthz, and /pickup/ with delivery.email) until SIGTERM or SIGINT");
  std::string sv_listen;
  bool sv_access_log = false;
  serve_cmd->add_option("--listen", sv_listen, "HOST:PORT instead of http.listen");
  serve_cmd->add_flag("--access-log", sv_access_log, "print one line per request to stderr (method, path, status; never a token)");

  auto* daemon_cmd = app.add_subcommand("daemon", "run as the service: scheduled reconciles, pushes, the admin API, /metrics and /readyz, sd_notify; SIGHUP reloads, SIGTERM stops");
  DaemonOptions dm;
  daemon_cmd->add_option("--listen", dm.listen_override, "HOST:PORT instead of http.listen");
  daemon_cmd->add_flag("--access-log", dm.access_log, "log one line per HTTP request (method, path, status; never a token)");
  auto* tokens_cmd = app.add_subcommand("tokens", "gateway tokens certgate issued: who holds one, since and until when, and whether each revocation is enforced");
  tokens_cmd->require_subcommand(1);
  auto* tk_list = tokens_cmd->add_subcommand("list", "live tokens (--all: revoked ones too)");
  bool tk_all = false;
  std::string tk_person, tk_format = "table";
  tk_list->add_flag("--all", tk_all, "include revoked and expired tokens");
  tk_list->add_option("--person", tk_person, "one person (key, employee id or email)");
  tk_list->add_option("--format", tk_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* tk_revoke = tokens_cmd->add_subcommand("revoke", "revoke one live token now (a leaked key, an incident); audited, alerted, enforcement verified like any revocation");
  std::string tk_alias, tk_by, tk_reason;
  tk_revoke->add_option("alias", tk_alias, "the token's alias (certgate tokens list)")->required();
  tk_revoke->add_option("--by", tk_by, "who revokes it (kept in the audit trail)")->required();
  tk_revoke->add_option("--reason", tk_reason, "why (kept in the audit trail)")->required();
  tk_revoke->add_option("--format", tk_format, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* alerts_cmd = app.add_subcommand("alerts", "the alert outbox: list it, deliver what is due, send a test alert");
  alerts_cmd->require_subcommand(1);
  auto* al_list = alerts_cmd->add_subcommand("list", "alerts in the outbox and their delivery state, with counts per sink");
  std::string al_state, al_format = "table", al_sink;
  std::int64_t al_limit = 50;
  al_list->add_option("--state", al_state, "pending, delivered or dead")
      ->check(CLI::IsMember({"pending", "delivered", "dead"}));
  al_list->add_option("--limit", al_limit, "at most this many (newest first)");
  al_list->add_option("--format", al_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* al_deliver = alerts_cmd->add_subcommand("deliver", "collect new alerts and deliver every due one now");
  al_deliver->add_option("--format", al_format, "table or json")->check(CLI::IsMember({"table", "json"}));
  auto* al_test = alerts_cmd->add_subcommand("test", "send a test alert to one sink (not recorded)");
  al_test->add_option("sink", al_sink, "sink name (alerts.sinks)")->required();

  auto* conns = app.add_subcommand("connectors", "built-in connectors and their configuration keys");
  conns->require_subcommand(1);
  conns->add_subcommand("list", "every built-in connector");
  auto* describe_cmd = conns->add_subcommand("describe", "the configuration keys of one connector kind");
  std::string describe_kind;
  describe_cmd->add_option("kind", describe_kind, "connector kind, e.g. csv")->required();

  AuditCommands audit_commands(app);
  StoreCommands store_commands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e, out, err);
    return rc == 0 ? kOk : kUsage;
  }
  if (!now_text.empty()) {
    io.now_override = parseWhen(now_text);
    if (!io.now_override) {
      err << "error: --now '" << now_text << "' is not an ISO 8601 instant (e.g. 2026-11-25T12:00:00Z)\n";
      return kUsage;
    }
  }
  try {
    if (validate->parsed())
      return cmdValidate(io, config, v_policies, v_tracks, config_opt->count() > 0 || std::getenv("CERTGATE_CONFIG"), v_format,
                         v_online);
    if (ingest->parsed()) return cmdIngest(io, config, i_format);
    if (status->parsed()) {
      for (const auto& s : states) {
        auto st = core::parseState(s);
        if (!st) {
          err << "error: unknown state '" << s << "'; known: out_of_scope, not_started, in_progress, "
                 "locked_out, certified, expiring, grace, expired, exception\n";
          return kUsage;
        }
        filter.states.insert(*st);
      }
      if (!within.empty()) {
        filter.expiring_within = core::parseDuration(within);
        if (!filter.expiring_within) {
          err << "error: --expiring-within '" << within << "' is not a duration (e.g. 30d, 12h)\n";
          return kUsage;
        }
      }
      return cmdStatus(io, config, filter, format);
    }
    if (explain->parsed()) return cmdExplain(io, config, who, e_format);
    if (quarantine->parsed()) return cmdQuarantine(io, config, q_limit, q_format);
    if (sources->parsed()) return cmdSources(io, config, s_format);
    if (runs->parsed()) return cmdRuns(io, config, r_limit, r_format);
    if (reset->parsed()) return cmdAttemptsReset(io, config, a_person, a_track, a_by, a_reason);
    if (x_request->parsed()) return cmdExceptionRequest(io, config, xr, x_format);
    if (x_approve->parsed()) return cmdExceptionApprove(io, config, x_id, x_who, x_role, x_comment, x_format);
    if (x_reject->parsed()) return cmdExceptionReject(io, config, x_id, x_who, x_reason, x_format);
    if (x_revoke->parsed()) return cmdExceptionRevoke(io, config, x_id, x_who, x_reason, x_format);
    if (x_list->parsed()) return cmdExceptionList(io, config, x_format);
    if (x_show->parsed()) return cmdExceptionShow(io, config, x_id, x_format);
    if (plan_cmd->parsed()) return cmdPlan(io, config, p_person, p_format);
    if (apply_cmd->parsed()) return cmdApply(io, config, ap_id, ap_format);
    if (sync_cmd->parsed())
      return cmdSync(io, config, y_person, !y_no_fetch, y_format,
                     std::chrono::milliseconds(std::llround(y_wait * 1000.0)));
    if (pl_list->parsed()) return cmdPlansList(io, config, pl_limit, pl_format);
    if (pl_show->parsed()) return cmdPlansShow(io, config, pl_id, pl_format);
    if (pl_approve->parsed()) return cmdPlansApprove(io, config, pl_id, pl_by, pl_reason);
    if (serve_cmd->parsed()) return cmdServe(io, config, sv_listen, sv_access_log);
    if (daemon_cmd->parsed()) {
      dm.config = config;
      return cmdDaemon(io, dm);
    }
    if (tk_list->parsed()) return cmdTokensList(io, config, tk_all, tk_person, tk_format);
    if (tk_revoke->parsed()) return cmdTokensRevoke(io, config, tk_alias, tk_by, tk_reason, tk_format);
    if (al_list->parsed()) return cmdAlertsList(io, config, al_state, al_limit, al_format);
    if (al_deliver->parsed()) return cmdAlertsDeliver(io, config, al_format);
    if (al_test->parsed()) return cmdAlertsTest(io, config, al_sink);
    if (conns->parsed()) return cmdConnectors(io, describe_cmd->parsed() ? describe_kind : "");
    if (auto rc = audit_commands.run(io, config)) return *rc;
    if (auto rc = store_commands.run(io, config)) return *rc;
  } catch (const std::exception& e) {
    // A defect, not an expected failure: say so plainly rather than abort.
    err << "internal error: " << e.what() << '\n';
    return kFailure;
  }
  err << app.help();
  return kUsage;
}

}  // namespace certgate::cli
