// plan, apply, sync and plans: directory reconciliation from the command line.
#include "cli/sync_commands.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

#include "cli/alert_commands.hpp"
#include "cli/lms_secrets.hpp"
#include "cli/render.hpp"
#include "cli/roster_file.hpp"
#include "cli/token_commands.hpp"
#include "connectors/common/redact.hpp"
#include "engine/exceptions.hpp"
#include "engine/evidence.hpp"
#include "engine/ingest.hpp"
#include "engine/reconcile.hpp"
#include "engine/reminders.hpp"
#include "engine/run_lock.hpp"

namespace certgate::cli::detail {
namespace {

using nlohmann::json;

// The configured, enabled directories, built and ready (no I/O yet).
struct Directories {
  std::shared_ptr<connectors::http::Redactor> redactor =
      std::make_shared<connectors::http::Redactor>();
  std::vector<std::unique_ptr<ports::Directory>> owned;
  std::vector<engine::DirectoryHandle> handles;
};

std::optional<Directories> buildDirectories(Io& io, const settings::Settings& s, int& code) {
  Directories d;
  auto redactor = d.redactor;
  const std::string base = s.base_dir;
  ports::SecretReader secrets = [redactor, base](const ports::OptionValue& ref)
      -> core::Result<std::string> {
    settings::SecretRef r;
    for (const auto& [k, v] : ref.map) {
      if (k == "file") r.file = v;
      if (k == "credential") r.credential = v;
    }
    auto value = settings::readSecret(r, base);
    if (value) redactor->add(*value);
    return value;
  };
  for (const auto& ds : s.directories) {
    if (!ds.enabled) continue;
    for (const auto& w : connectors::directoryWarnings(ds.kind, ds.options))
      io.err << "warning: directory " << ds.name << ": " << w << '\n';
    auto made = connectors::makeDirectory(ds.kind, ds.name, ds.options, s.base_dir, secrets,
                                          redactor);
    if (!made) {
      io.err << "error: directory " << ds.name << ": " << made.error().describe() << '\n';
      code = made.error().kind == core::ErrorKind::Invalid ? kConfigInvalid : kFailure;
      return std::nullopt;
    }
    d.handles.push_back({&ds, made->get()});
    d.owned.push_back(std::move(made).value());
  }
  return d;
}

std::string shortWhy(const core::Action& a) {
  std::string why = core::toString(a.reason);
  std::replace(why.begin(), why.end(), '_', ' ');
  if (a.kind == core::ActionKind::Add) {
    why = core::toString(a.state);
    if (a.at) why += ", access until " + core::formatIso(*a.at).substr(0, 10);
  } else {
    if (a.at) why += " " + core::formatIso(*a.at).substr(0, 10);
    if (a.ledger_owned) why += ", granted by certgate";
  }
  return why;
}

void printPlan(Io& io, const engine::PlanResult& r, const core::SymbolTable& symbols) {
  const core::Plan& p = r.plan;
  const auto adds = core::countActions(p, core::ActionKind::Add);
  const auto removes = core::countActions(p, core::ActionKind::Remove);
  io.out << "plan " << p.id << " (" << r.state << "): " << adds << " to add, " << removes
         << " to remove";
  if (!p.skipped.empty()) io.out << ", " << p.skipped.size() << " removal(s) skipped";
  io.out << "  [" << r.people << (r.people == 1 ? " person" : " people") << " evaluated]\n";
  if (p.actions.empty()) {
    io.out << "nothing to change: every mapped group already matches the rules.\n";
  } else {
    Table t({"DIRECTORY", "GROUP", "ACTION", "PERSON", "TRACK", "WHY"});
    for (const auto& a : p.actions)
      t.add({a.target.directory, a.target.group, core::toString(a.kind), a.person,
             a.track == core::kNoSym ? "-" : std::string(symbols.name(a.track)), shortWhy(a)});
    t.print(io.out);
  }
  if (!p.skipped.empty()) {
    io.out << "\nskipped (not removed while the data behind them is incomplete):\n";
    for (const auto& s : p.skipped) io.out << "  " << core::describe(s, symbols) << '\n';
  }
  if (p.held()) {
    io.out << "\nHELD by the blast-radius brake: " << core::describe(p.brake)
           << "\n  nothing will be removed until an operator approves this plan:\n"
           << "    certgate plans show " << p.id << "\n    certgate plans approve " << p.id
           << " --by NAME --reason TEXT\n    certgate apply " << p.id
           << "\n  grants in this plan still go ahead.\n";
  }
  for (const auto& t : r.targets_not_observed)
    io.out << "\nnot changed: " << t.directory << "/" << t.group << ": " << t.problem << '\n';
  for (const auto& g : p.outside_allow_list)
    io.out << "\nrefused: the ledger names " << g.person_key << " in " << g.directory << "/"
           << g.group << ", which no mapping lists (outside the allow-list): left alone\n";
  for (const auto& m : p.mode_conflicts)
    io.out << "\nnote: mappings disagree on the mode of " << m.directory << "/" << m.group
           << "; managed is used\n";
  if (!r.sources_complete) {
    io.out << "\nsources incomplete:";
    for (const auto& s : r.sources)
      if (!s.complete) io.out << " " << s.name << " (" << s.problem << ")";
    io.out << "\n  removals that depend on missing data are skipped until a complete fetch.\n";
  }
  if (!r.problems.empty()) {
    io.out << "\nproblems:\n";
    for (const auto& pr : r.problems) io.out << "  " << pr << '\n';
  }
  if (r.tokens) printTokenPlan(io, *r.tokens, symbols);
}

json applyJson(const engine::ApplyResult& a) {
  json j;
  j["plan"] = a.plan_id;
  j["state"] = a.state;
  j["added"] = a.added;
  j["removed"] = a.removed;
  j["no_op"] = a.no_op;
  j["failed"] = a.failed;
  j["withheld"] = a.withheld;
  j["dropped"] = a.dropped;
  j["already_done"] = a.already_done;
  j["failures"] = a.failures;
  j["quarantined"] = a.quarantined;
  j["requests"] = a.requests;
  if (a.tokens) j["tokens"] = tokenApplyJson(*a.tokens);
  return j;
}

void printApply(Io& io, const engine::ApplyResult& a) {
  io.out << "applied plan " << a.plan_id << ": " << a.added << " added, " << a.removed
         << " removed";
  if (a.no_op) io.out << " (" << a.no_op << " already so)";
  if (a.failed) io.out << ", " << a.failed << " FAILED";
  if (a.withheld) io.out << ", " << a.withheld << " removal(s) held for approval";
  if (a.dropped) io.out << ", " << a.dropped << " no longer needed";
  if (a.already_done) io.out << ", " << a.already_done << " done before";
  io.out << " -> " << a.state << '\n';
  for (const auto& q : a.quarantined)
    io.out << "QUARANTINED for this run: " << q
           << "\n  fix the credentials or the directory, then run certgate sync again.\n";
  for (const auto& f : a.failures) io.out << "  failed: " << f << '\n';
  if (a.tokens) printTokenApply(io, *a.tokens);
}

int exitFor(const engine::ApplyResult& a, bool sources_complete) {
  if (!a.ok()) return kFailure;
  if (a.state == "held") return kHeld;
  return sources_complete ? kOk : kIncomplete;
}

engine::ReconcileOptions reconcileOptions(const std::string& person, const std::string& actor) {
  engine::ReconcileOptions o;
  o.person = person;
  o.actor = actor;
  o.crash_point = crashHookFromEnvironment();
  return o;
}

std::string operatorName() {
  if (const char* u = std::getenv("SUDO_USER"); u && *u) return u;
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "operator";
}

}  // namespace

int checkDirectoriesOnline(Io& io, const settings::Settings& s, bool as_json, json& report) {
  int code = kOk;
  auto dirs = buildDirectories(io, s, code);
  if (!dirs) return code;
  report = json::array();
  for (auto& h : dirs->handles) {
    json d;
    d["name"] = h.settings->name;
    d["kind"] = h.settings->kind;
    auto c = h.directory->connect();
    d["connected"] = c.ok();
    if (!c) {
      d["error"] = c.error().describe();
      if (!as_json)
        io.err << "error: directory " << h.settings->name << ": " << c.error().describe() << '\n';
      code = kFailure;
      report.push_back(d);
      continue;
    }
    d["groups"] = json::array();
    for (const auto& tg : s.policy->grants)
      for (const auto& g : tg.groups) {
        if (settings::findDirectory(s, g.directory) != h.settings) continue;
        auto ref = h.directory->resolveGroup(g.group);
        json jg{{"group", g.group}, {"track", tg.track}};
        if (!ref) {
          jg["error"] = ref.error().describe();
          if (!as_json)
            io.err << "error: directory " << h.settings->name << ", group " << g.group << ": "
                   << ref.error().describe() << '\n';
          code = kFailure;
        } else {
          jg["id"] = ref->id;
          jg["writable"] = ref->writable;
          if (!ref->writable) {
            jg["error"] = ref->not_writable_why;
            if (!as_json)
              io.err << "error: directory " << h.settings->name << ", group " << g.group
                     << " cannot be changed by certgate: " << ref->not_writable_why << '\n';
            code = kFailure;
          }
        }
        d["groups"].push_back(jg);
      }
    report.push_back(d);
  }
  return code;
}

int cmdPlan(Io& io, const std::string& config, const std::string& person,
            const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  auto dirs = buildDirectories(io, opened->settings, code);
  if (!dirs) return code;
  auto gws = buildGateways(io, opened->settings, *opened->store, dirs->redactor, code);
  if (!gws) return code;
  (void)connectGateways(io, *gws, *opened->store, 0, opened->settings);
  engine::Reconciler rec(*opened->store, opened->settings, dirs->handles);
  rec.attachTokens(gws->reconciler.get());
  auto r = rec.makePlan(io.now(), reconcileOptions(person, operatorName()));
  if (!r) return failWith(io, r.error(), r.error().kind == core::ErrorKind::NotFound ? kNotFound : kFailure);
  if (format == "json")
    io.out << r->json << '\n';
  else
    printPlan(io, *r, opened->settings.policy->symbols);
  return r->state == "held" ? kHeld : kOk;
}

int cmdApply(Io& io, const std::string& config, const std::string& plan_id,
             const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  std::string id = plan_id;
  if (id.empty()) {
    auto plans = opened->store->plans(20);
    if (!plans) return failWith(io, plans.error(), kFailure);
    for (const auto& p : *plans)
      if (p.state == "planned" || p.state == "approved" || p.state == "held") {
        id = p.id;
        break;
      }
    if (id.empty()) {
      io.err << "error: no plan waits to be applied\n  make one with certgate plan\n";
      return kNotFound;
    }
  }
  auto dirs = buildDirectories(io, opened->settings, code);
  if (!dirs) return code;
  auto gws = buildGateways(io, opened->settings, *opened->store, dirs->redactor, code);
  if (!gws) return code;
  (void)connectGateways(io, *gws, *opened->store, 0, opened->settings);
  engine::Reconciler rec(*opened->store, opened->settings, dirs->handles);
  rec.attachTokens(gws->reconciler.get());
  const auto options = reconcileOptions({}, operatorName());
  auto recovered = rec.recover(io.now(), options);
  if (!recovered) return failWith(io, recovered.error(), kFailure);
  auto a = rec.applyStored(id, io.now(), options);
  if (!a) {
    const auto k = a.error().kind;
    return failWith(io, a.error(), k == core::ErrorKind::NotFound ? kNotFound : kFailure);
  }
  if (format == "json")
    io.out << applyJson(*a).dump(2) << '\n';
  else
    printApply(io, *a);
  return exitFor(*a, true);
}

int cmdSync(Io& io, const std::string& config, const std::string& person, bool fetch,
            const std::string& format, std::chrono::milliseconds wait) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  // Never overlaps another run on this store (the daemon's, a timer's, another operator's).
  const std::string lock_path = engine::runLockPath(opened->settings.store_path);
  if (wait.count() > 0) {
    if (auto holder = engine::RunLock::holder(lock_path); !holder.empty())
      io.err << "waiting for the run in progress to finish (" << holder << ")\n";
  }
  auto lock = engine::RunLock::acquire(lock_path, "certgate sync", wait);
  if (!lock) return failWith(io, lock.error(), kFailure);
  SyncRequest request;
  request.person = person;
  request.fetch = fetch;
  request.format = format;
  return runSync(io, opened->settings, *opened->store, request);
}

int runSync(Io& io, settings::Settings& s, store::Store& st, const SyncRequest& request,
            SyncSummary* summary) {
  int code = kOk;
  const std::string& person = request.person;
  const bool fetch = request.fetch;
  const std::string& format = request.format;
  SyncSummary local;
  SyncSummary& sum = summary ? *summary : local;
  if (auto cc = engine::recordConfigChange(st, s, io.now(), "certgate"); !cc) return failWith(io, cc.error(), kStoreUnavailable);
  auto dirs = buildDirectories(io, s, code);
  if (!dirs) return code;
  auto run = st.beginRun(request.kind, io.now());
  if (!run) return failWith(io, run.error(), kStoreUnavailable);
  sum.run_id = *run;
  // A directory that cannot be reached or refuses the credentials sits this run out: its
  // groups are reported as not observed and get no actions. The others go ahead.
  bool directory_down = false;
  std::erase_if(dirs->handles, [&](const engine::DirectoryHandle& h) {
    auto c = h.directory->connect();
    if (c) return false;
    directory_down = true;
    io.err << "error: directory " << h.settings->name << " is QUARANTINED for this run: "
           << c.error().describe() << '\n';
    store::AuditRow a;
    a.at = io.now();
    a.actor = "certgate";
    a.action = "directory.quarantined";
    a.subject = h.settings->name;
    a.details_json = json{{"error", c.error().describe()}}.dump();
    a.run_id = *run;
    (void)st.appendAudit(a);
    return true;
  });
  auto gws = buildGateways(io, s, st, dirs->redactor, code);
  if (!gws) return code;
  const bool gateway_down = !connectGateways(io, *gws, st, *run, s);
  auto options = reconcileOptions(person, request.actor);
  options.run_id = *run;
  options.stop = request.stop;
  engine::Reconciler rec(st, s, dirs->handles);
  rec.attachTokens(gws->reconciler.get());
  json report;

  // 1. Finish what a crash left pending.
  auto recovered = rec.recover(io.now(), options);
  if (!recovered) return failWith(io, recovered.error(), kFailure);
  if (recovered->done + recovered->abandoned > 0 && format != "json")
    io.out << "recovered " << recovered->done + recovered->abandoned
           << " unfinished change(s) from an interrupted run: " << recovered->done
           << " had happened, " << recovered->abandoned << " had not\n";

  // 2. Fetch.
  if (fetch) {
    ports::FixedClock clock(io.now());
    engine::Ingestor ingestor(st, s, clock);
    if (!s.identity.roster_path.empty()) {
      auto roster = readRoster(s.identity);
      if (!roster) return failWith(io, roster.error(), kFailure);
      if (auto loaded = ingestor.loadRoster(*roster); !loaded)
        return failWith(io, loaded.error(), kFailure);
    }
    // Directory rosters: the in-scope users of directories configured with roster: true.
    for (auto& h : dirs->handles) {
      if (!h.settings->roster) continue;
      std::vector<engine::RosterEntry> entries;
      const bool with_population = h.settings->population_from_directory;
      auto listed = h.directory->listRoster([&](ports::DirectoryUser&& u) {
        if (!u.active) return;
        engine::RosterEntry e;
        e.employee_id = u.employee_id;
        e.email = u.email.empty() ? u.user_name : u.email;
        e.display_name = u.display_name;
        if (with_population) e.population = u.population;
        e.location = "directory " + h.settings->name + " user " + u.id;
        entries.push_back(std::move(e));
      });
      if (!listed) {
        // A partial roster adds nobody: people are never inferred from half a list.
        io.err << "warning: directory " << h.settings->name
               << ": roster not read: " << listed.error().describe() << '\n';
        continue;
      }
      auto loaded = ingestor.loadRoster(entries);
      if (!loaded) return failWith(io, loaded.error(), kFailure);
      if (format != "json")
        io.out << "directory " << h.settings->name << ": " << entries.size()
               << " in-scope user(s) read as roster\n";
    }
    std::vector<engine::SourceHandle> handles;
    for (const auto& src : s.sources) {
      if (!src.enabled) continue;
      if (!request.only_sources.empty() &&
          std::find(request.only_sources.begin(), request.only_sources.end(), src.name) ==
              request.only_sources.end())
        continue;
      auto made = connectors::makeLmsSource(src.kind, src.name, src.options, s.base_dir,
                                            lmsSecretReader(s, dirs->redactor), dirs->redactor);
      if (!made) return failWith(io, made.error(), kConfigInvalid);
      handles.push_back({&src, std::move(made).value()});
    }
    auto ingested = ingestor.run(handles);
    if (!ingested) {
      (void)st.finishRun(*run, "failed", json{{"error", ingested.error().describe()}}.dump(),
                         io.now());
      syncAlerts(io, s, st);
      sum.outcome = "failed";
      return failWith(io, ingested.error(), kFailure);
    }
    for (const auto& r : ingested->sources) sum.sources[r.source] = r.complete;
    if (format != "json") {
      std::int64_t fresh = 0, quarantined = 0;
      for (const auto& r : ingested->sources) {
        fresh += r.inserted + r.updated;
        quarantined += r.quarantined;
      }
      io.out << "fetched " << ingested->sources.size() << " source(s): " << fresh
             << " new or changed record(s), " << quarantined << " set aside"
             << (ingested->complete() ? "" : " (INCOMPLETE: see certgate sources)") << '\n';
    }
  }

  // Exceptions whose window has closed: their end goes to the audit trail (access already
  // follows from the window itself; this only records it).
  engine::ExceptionService exceptions(st, s);
  if (auto swept = exceptions.sweep(io.now()); !swept) {
    io.err << "warning: the ends of exceptions were not recorded this run: "
           << swept.error().describe() << '\n';
  } else {
    report["exceptions_ended"] = swept->ended;
    if (format != "json" && !swept->ended.empty())
      io.out << swept->ended.size() << " exception(s) ended by themselves (audited)\n";
  }

  // 3. Plan and apply.
  auto planned = rec.makePlan(io.now(), options);
  if (!planned) {
    (void)st.finishRun(*run, "failed", json{{"error", planned.error().describe()}}.dump(), io.now());
    syncAlerts(io, s, st);
    sum.outcome = "failed";
    return failWith(io, planned.error(),
                    planned.error().kind == core::ErrorKind::NotFound ? kNotFound : kFailure);
  }
  if (format != "json") printPlan(io, *planned, s.policy->symbols);
  auto applied = rec.apply(planned->plan, false, io.now(), options,
                           planned->tokens ? &*planned->tokens : nullptr);
  if (!applied) {
    (void)st.finishRun(*run, "failed", json{{"error", applied.error().describe()}}.dump(), io.now());
    syncAlerts(io, s, st);
    sum.outcome = "failed";
    return failWith(io, applied.error(), kFailure);
  }
  // 4. Revocations whose gateway cache window has passed: are they refused now?
  std::optional<engine::TokenVerifyResult> verified;
  if (gws->reconciler) {
    engine::TokenOptions to;
    to.run_id = *run;
    auto v = gws->reconciler->verify(io.now(), to);
    if (!v) {
      (void)st.finishRun(*run, "failed", json{{"error", v.error().describe()}}.dump(), io.now());
      syncAlerts(io, s, st);
      sum.outcome = "failed";
      return failWith(io, v.error(), kFailure);
    }
    verified = std::move(*v);
  }
  const bool token_actions = planned->tokens && !planned->tokens->plan.actions.empty();
  if (format == "json") {
    report["plan"] = json::parse(planned->json);
    report["apply"] = applyJson(*applied);
    if (verified)
      report["verified"] = {{"enforced", verified->enforced},
                            {"not_enforced", verified->not_enforced},
                            {"unknown", verified->unknown},
                            {"still_pending", verified->still_pending},
                            {"alerts", verified->alerts}};
    report["run"] = *run;
    io.out << report.dump(2) << '\n';
  } else {
    if (!planned->plan.actions.empty() || token_actions) printApply(io, *applied);
    if (verified) printTokenVerify(io, *verified);
  }
  const bool not_enforced = verified && verified->not_enforced > 0;
  const bool clean = applied->ok() && !directory_down && !gateway_down && !not_enforced;
  const bool interrupted =
      applied->interrupted > 0 || (applied->tokens && applied->tokens->interrupted > 0);
  const std::string outcome = interrupted                                    ? "interrupted"
                              : clean && planned->sources_complete ? "ok"
                                                                             : "partial";
  (void)st.finishRun(*run, outcome, applyJson(*applied).dump(), io.now());
  // Reminders and the digest: time-based, so once per full run is enough (a run of one person,
  // after a push, changes nobody's expiry date).
  if (person.empty() && s.reminders.configured) {
    auto reminded = engine::collectReminders(st, s, io.now());
    if (!reminded)
      io.err << "warning: reminders: " << reminded.error().describe() << '\n';
    else if (format != "json" && (reminded->enqueued > 0 || reminded->digest_rows > 0))
      io.out << "reminders: " << reminded->enqueued << " queued"
             << (reminded->no_address > 0
                     ? " (" + std::to_string(reminded->no_address) + " due without an email address)"
                     : std::string())
             << (reminded->digest_rows > 0 ? "; digest " + reminded->digest_id + " queued" : "")
             << '\n';
  }
  syncAlerts(io, s, st);
  sum.outcome = outcome;
  sum.quarantined = directory_down || gateway_down || !applied->quarantined.empty();
  sum.plan_id = planned->plan.id;
  sum.held = applied->state == "held";
  sum.sources_complete = planned->sources_complete;
  sum.added = applied->added;
  sum.removed = applied->removed;
  sum.failed = applied->failed;
  sum.interrupted = applied->interrupted;
  if (applied->tokens) {
    sum.tokens_issued = applied->tokens->issued;
    sum.tokens_revoked = applied->tokens->revoked;
    sum.failed += applied->tokens->failed;
    sum.interrupted += applied->tokens->interrupted;
  }
  if (interrupted) {
    io.err << "stopped on request after the change in flight: " << sum.interrupted
           << " change(s) left for the next run\n";
    return kFailure;
  }
  if (directory_down || gateway_down || not_enforced) return kFailure;
  return exitFor(*applied, planned->sources_complete);
}

int cmdPlansList(Io& io, const std::string& config, std::int64_t limit,
                 const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto plans = opened->store->plans(limit);
  if (!plans) return failWith(io, plans.error(), kFailure);
  if (format == "json") {
    json j = json::array();
    for (const auto& p : *plans)
      j.push_back({{"id", p.id}, {"created_at", core::formatIso(p.created_at)}, {"state", p.state},
                   {"adds", p.adds}, {"removes", p.removes}, {"skipped", p.skipped},
                   {"scope", p.scope}, {"approved_by", p.approved_by}, {"outcome", p.outcome}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  Table t({"PLAN", "CREATED", "STATE", "ADD", "REMOVE", "SKIPPED", "SCOPE", "APPROVED BY", "OUTCOME"});
  for (const auto& p : *plans)
    t.add({p.id, core::formatIso(p.created_at), p.state, std::to_string(p.adds),
           std::to_string(p.removes), std::to_string(p.skipped), p.scope.empty() ? "all" : p.scope,
           p.approved_by.empty() ? "-" : p.approved_by, p.outcome});
  t.print(io.out);
  return kOk;
}

int cmdPlansShow(Io& io, const std::string& config, const std::string& id,
                 const std::string& format) {
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto row = opened->store->plan(id);
  if (!row) return failWith(io, row.error(), kFailure);
  if (!row->has_value()) {
    io.err << "error: no plan '" << id << "'\n  list them with certgate plans list\n";
    return kNotFound;
  }
  const store::PlanRow& p = **row;
  if (format == "json") {
    io.out << p.plan_json << '\n';
    return kOk;
  }
  auto parsed = engine::planFromJson(p.plan_json, opened->settings.policy->symbols);
  if (!parsed) return failWith(io, parsed.error(), kFailure);
  engine::PlanResult r;
  r.plan = std::move(*parsed);
  r.state = p.state;
  json j = json::parse(p.plan_json, nullptr, false);
  if (j.is_object()) {
    r.people = j.value("people", std::size_t{0});
    r.sources_complete = j.value("sources_complete", true);
    if (j.contains("problems")) r.problems = j["problems"].get<std::vector<std::string>>();
    for (const auto& t : j.value("not_observed", json::array()))
      r.targets_not_observed.push_back(
          {t.value("directory", ""), t.value("group", ""), t.value("problem", "")});
    if (j.contains("tokens")) {
      auto tp = engine::tokenPlanFromJson(j["tokens"].dump(), opened->settings.policy->symbols);
      if (!tp) return failWith(io, tp.error(), kFailure);
      r.tokens = std::move(*tp);
    }
  }
  io.out << "created " << core::formatIso(p.created_at)
         << (p.scope.empty() ? "" : ", for " + p.scope)
         << (p.approved_by.empty() ? "" : ", approved by " + p.approved_by)
         << (p.outcome.empty() ? "" : ", " + p.outcome) << '\n';
  printPlan(io, r, opened->settings.policy->symbols);
  return kOk;
}

int cmdPlansApprove(Io& io, const std::string& config, const std::string& id,
                    const std::string& by, const std::string& reason) {
  int code = kOk;
  auto opened = openAll(io, config, false, code);
  if (!opened) return code;
  store::Store& st = *opened->store;
  auto row = st.plan(id);
  if (!row) return failWith(io, row.error(), kFailure);
  if (!row->has_value()) {
    io.err << "error: no plan '" << id << "'\n  list them with certgate plans list\n";
    return kNotFound;
  }
  const std::string state = (*row)->state;
  if (state != "held") {
    io.err << "error: plan " << id << " is " << state
           << "; only a held plan needs approval\n";
    return kUsage;
  }
  auto tx = st.begin();
  if (!tx) return failWith(io, tx.error(), kStoreUnavailable);
  if (auto u = st.updatePlan(id, "approved", by, io.now()); !u) return failWith(io, u.error(), kFailure);
  store::AuditRow a;
  a.at = io.now();
  a.actor = by;
  a.action = "plan.approve";
  a.subject = id;
  a.details_json = json{{"reason", reason}, {"removes", (*row)->removes}, {"adds", (*row)->adds}}.dump();
  if (auto ins = st.appendAudit(a); !ins) return failWith(io, ins.error(), kFailure);
  if (auto c = tx->commit(); !c) return failWith(io, c.error(), kStoreUnavailable);
  io.out << "plan " << id << " approved by " << by << " (" << (*row)->removes
         << " removal(s)). Apply it with: certgate apply " << id << '\n';
  return kOk;
}

}  // namespace certgate::cli::detail
