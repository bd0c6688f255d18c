#include "engine/reconcile.hpp"

#include "engine/enum_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/identity.hpp"

namespace certgate::engine {
namespace {

using core::ErrorKind;
using json = nlohmann::json;

constexpr const char* kGroupKind = "group";

std::string targetName(const std::string& directory, const std::string& group) {
  return directory + "/" + group;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string defaultPlanId(core::Instant now) {
  std::random_device rd;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", static_cast<unsigned>(rd() & 0xffffu));
  std::string t = core::formatIso(now);  // 2026-11-25T12:00:00Z
  std::string compact;
  for (char c : t)
    if (c != '-' && c != ':') compact += c;
  return "p-" + compact + "-" + buf;
}

using detail::kReasons;
using detail::kStates;
using detail::parseEnum;
constexpr core::ActionKind kKinds[] = {core::ActionKind::Remove, core::ActionKind::Add};
constexpr core::GroupMode kModes[] = {core::GroupMode::Managed, core::GroupMode::Exclusive};
constexpr core::SkipReason kSkips[] = {core::SkipReason::SourceIncomplete,
                                       core::SkipReason::RosterIncomplete};

json actionJson(const core::Action& a, const core::SymbolTable& symbols) {
  json j;
  j["kind"] = core::toString(a.kind);
  j["directory"] = a.target.directory;
  j["group"] = a.target.group;
  j["mode"] = core::toString(a.target.mode);
  j["person"] = a.person;
  j["track"] = a.track == core::kNoSym ? std::string() : std::string(symbols.name(a.track));
  j["reason"] = core::toString(a.reason);
  j["state"] = core::toString(a.state);
  j["ledger_owned"] = a.ledger_owned;
  j["source_dependent"] = a.source_dependent;
  j["exception_id"] = a.exception_id;
  j["at"] = a.at ? core::formatIso(*a.at) : std::string();
  j["why"] = core::describe(a, symbols);
  return j;
}

core::Result<core::Action> actionFromJson(const json& j, core::SymbolTable& symbols) {
  core::Action a;
  auto kind = parseEnum(j.value("kind", ""), kKinds);
  auto reason = parseEnum(j.value("reason", ""), kReasons);
  auto state = parseEnum(j.value("state", ""), kStates);
  auto mode = parseEnum(j.value("mode", ""), kModes);
  if (!kind || !reason || !state || !mode)
    return core::makeError(ErrorKind::Corrupt, "stored plan has an action that cannot be read",
                           {}, "make a new plan with certgate plan");
  a.kind = *kind;
  a.reason = *reason;
  a.state = *state;
  a.target.mode = *mode;
  a.target.directory = j.value("directory", "");
  a.target.group = j.value("group", "");
  a.person = j.value("person", "");
  const std::string track = j.value("track", "");
  a.track = track.empty() ? core::kNoSym : symbols.intern(track);
  a.ledger_owned = j.value("ledger_owned", false);
  a.source_dependent = j.value("source_dependent", false);
  a.exception_id = j.value("exception_id", std::int64_t{0});
  const std::string at = j.value("at", "");
  if (!at.empty())
    if (auto t = core::parseIso(at)) a.at = *t;
  return a;
}

// Full-jitter exponential backoff, or the server's Retry-After (clamped).
std::chrono::milliseconds backoff(const ReconcileOptions& o, int attempt, long retry_after_s,
                                  double r01) {
  if (retry_after_s > 0)
    return std::min(std::chrono::milliseconds(retry_after_s * 1000), o.max_retry_after);
  const double cap = std::min<double>(static_cast<double>(o.max_delay.count()),
                                      static_cast<double>(o.base_delay.count()) *
                                          std::pow(2.0, attempt - 1));
  return std::chrono::milliseconds(static_cast<std::int64_t>(cap * r01));
}

bool retryable(ErrorKind k) { return k == ErrorKind::Transient || k == ErrorKind::RateLimited; }

}  // namespace

std::string actionKey(const core::Action& a) {
  return std::string(core::toString(a.kind)) + ":" + targetName(a.target.directory, a.target.group) +
         ":" + a.person;
}

// ---------------------------------------------------------------------------------------------

struct Reconciler::Impl {
  Impl(Reconciler& rec, core::Instant at, const ReconcileOptions& options)
      : r(rec), now(at), o(options) {}
  Reconciler& r;
  core::Instant now;
  const ReconcileOptions& o;

  std::mt19937_64 rng{std::random_device{}()};
  double random01() {
    if (o.random01) return o.random01();
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  }
  void sleep(std::chrono::milliseconds d) {
    if (d.count() <= 0) return;
    if (o.sleep) o.sleep(d);
    else std::this_thread::sleep_for(d);
  }

  DirectoryHandle* handle(const std::string& name) {
    const settings::DirectorySettings* ds = settings::findDirectory(r.settings_, name);
    if (!ds) return nullptr;
    for (auto& h : r.directories_)
      if (h.settings == ds) return &h;
    return nullptr;
  }

  // Group refs, resolved once per run.
  std::map<std::string, core::Result<ports::GroupRef>> groups;
  core::Result<ports::GroupRef> group(DirectoryHandle& h, const std::string& g) {
    const std::string key = targetName(h.settings->name, g);
    auto it = groups.find(key);
    if (it == groups.end()) it = groups.emplace(key, h.directory->resolveGroup(g)).first;
    return it->second;
  }

  // Person lookups.
  std::vector<store::PersonRow> people;
  std::unordered_map<std::string, const store::PersonRow*> by_key, by_employee, by_email;
  std::unordered_map<std::int64_t, const store::PersonRow*> by_id;
  void indexPeople() {
    for (const auto& p : people) {
      by_key[p.key] = &p;
      by_id[p.id] = &p;
      if (!p.employee_id.empty()) by_employee[p.employee_id] = &p;
      if (!p.email.empty()) by_email[p.email] = &p;
    }
  }

  // directory name -> (person id -> user id) and back.
  struct Accounts {
    std::unordered_map<std::int64_t, std::string> user_of;
    std::unordered_map<std::string, std::int64_t> person_of;
    bool loaded = false;
  };
  std::map<std::string, Accounts> accounts;
  core::Result<Accounts*> accountsOf(const std::string& directory) {
    Accounts& a = accounts[directory];
    if (!a.loaded) {
      auto rows = r.store_.accounts(directory);
      if (!rows) return rows.error();
      for (const auto& row : *rows) {
        a.user_of[row.person_id] = row.user_id;
        a.person_of[row.user_id] = row.person_id;
      }
      a.loaded = true;
    }
    return &a;
  }

  static ports::UserAttribute attributeOf(const std::string& name) {
    if (name == "user_name") return ports::UserAttribute::UserName;
    if (name == "email") return ports::UserAttribute::Email;
    if (name == "employee_id") return ports::UserAttribute::EmployeeId;
    if (name == "external_id") return ports::UserAttribute::ExternalId;
    if (name == "id") return ports::UserAttribute::Id;
    return ports::UserAttribute::Custom;
  }

  // Finds the person's account by the directory's match rules and caches it. Returns "" with a
  // problem when no rule finds exactly one user.
  core::Result<std::string> resolveAccount(DirectoryHandle& h, const store::PersonRow& p,
                                           std::string& problem) {
    auto acc = accountsOf(h.settings->name);
    if (!acc) return acc.error();
    if (auto it = (*acc)->user_of.find(p.id); it != (*acc)->user_of.end()) return it->second;
    for (const auto& rule : h.settings->match) {
      const std::string& value =
          rule.person == settings::MatchRule::Person::EmployeeId ? p.employee_id : p.email;
      if (value.empty()) continue;
      ports::UserQuery q;
      q.attribute = attributeOf(rule.attribute);
      if (q.attribute == ports::UserAttribute::Custom) q.custom = rule.attribute;
      q.value = value;
      auto found = h.directory->findUsers(q);
      if (!found) return found.error();
      if (found->size() > 1) {
        problem = "person " + p.key + ": " + std::to_string(found->size()) + " users in directory " +
                  h.settings->name + " have " + rule.attribute + " '" + value +
                  "'; fix the directory or the match rules";
        return std::string();
      }
      if (found->size() == 1) {
        const std::string id = found->front().id;
        if (auto st = r.store_.upsertAccount({h.settings->name, p.id, id, now}); !st)
          return st.error();
        (*acc)->user_of[p.id] = id;
        (*acc)->person_of[id] = p.id;
        return id;
      }
    }
    problem = "person " + p.key + " has no account in directory " + h.settings->name +
              " (match rules tried: " + std::to_string(h.settings->match.size()) + ")";
    return std::string();
  }

  // A member as the planner sees it: the person key when known, else the directory id.
  std::string memberKey(DirectoryHandle& h, Accounts& acc, const ports::DirectoryUser& u) {
    if (auto it = acc.person_of.find(u.id); it != acc.person_of.end())
      if (auto p = by_id.find(it->second); p != by_id.end()) return p->second->key;
    for (const auto& rule : h.settings->match) {
      std::string v;
      switch (attributeOf(rule.attribute)) {
        case ports::UserAttribute::UserName: v = u.user_name; break;
        case ports::UserAttribute::Email: v = u.email; break;
        case ports::UserAttribute::EmployeeId: v = u.employee_id; break;
        case ports::UserAttribute::ExternalId: v = u.external_id; break;
        default: break;
      }
      if (v.empty()) continue;
      const bool by_emp = rule.person == settings::MatchRule::Person::EmployeeId;
      const std::string norm = by_emp ? core::normaliseEmployeeId(v) : core::normaliseEmail(v);
      const auto& index = by_emp ? by_employee : by_email;
      if (auto p = index.find(norm); p != index.end()) {
        acc.person_of[u.id] = p->second->id;
        acc.user_of[p->second->id] = u.id;
        (void)r.store_.upsertAccount({h.settings->name, p->second->id, u.id, now});
        return p->second->key;
      }
    }
    return u.id;
  }

  core::Status audit(const std::string& action, const std::string& subject, json details) {
    store::AuditRow row;
    row.at = now;
    row.actor = o.actor;
    row.action = action;
    row.subject = subject;
    row.details_json = details.dump();
    row.run_id = o.run_id;
    auto id = r.store_.appendAudit(row);
    if (!id) return id.error();
    return {};
  }
};

Reconciler::Reconciler(store::Store& store, const settings::Settings& settings,
                       std::vector<DirectoryHandle> directories)
    : store_(store), settings_(settings), directories_(std::move(directories)) {}

// ---------------------------------------------------------------------------------------------
// plan

core::Result<PlanResult> Reconciler::makePlan(core::Instant now, const ReconcileOptions& options) {
  Impl im(*this, now, options);
  PlanResult out;
  auto& policy = *settings_.policy;

  auto health = sourceHealth(store_, settings_);
  if (!health) return health.error();
  out.sources = *health;
  for (const auto& s : out.sources)
    if (!s.complete) out.sources_complete = false;

  auto eval = Evaluation::load(store_, policy);
  if (!eval) return eval.error();
  im.people = eval->people();
  im.indexPeople();

  const store::PersonRow* only = nullptr;
  if (!options.person.empty()) {
    only = eval->findPerson(options.person);
    if (!only)
      return core::makeError(ErrorKind::NotFound, "no person '" + options.person + "' is known",
                             {}, "check the key, employee id or email (certgate status --all)");
  }

  // Mappings: tracks -> groups, with the directory resolved to its configured name.
  std::vector<core::TrackGrant> mappings;
  for (const auto& tg : policy.grants) {
    core::TrackGrant m;
    m.track = policy.symbols.find(tg.track).value_or(core::kNoSym);
    for (const auto& g : tg.groups) {
      const settings::DirectorySettings* ds = settings::findDirectory(settings_, g.directory);
      if (!ds) {
        out.problems.push_back("the grant of track " + tg.track + " (group " + g.group +
                               ") names no configured directory");
        continue;
      }
      if (!ds->enabled) continue;
      m.groups.push_back(core::GroupTarget{
          ds->name, g.group,
          g.mode == settings::GroupGrant::Mode::Exclusive ? core::GroupMode::Exclusive
                                                           : core::GroupMode::Managed});
    }
    mappings.push_back(std::move(m));
  }

  // Verdicts of the granting tracks, without evidence (the plan needs states and dates).
  std::vector<core::PersonVerdicts> verdicts;
  auto st = eval->forEach(
      now, [&](const store::PersonRow& p) { return !only || p.id == only->id; },
      [&](const PersonVerdicts& pv) {
        ++out.people;
        core::PersonVerdicts v;
        v.person_key = pv.person->key;
        v.sources_complete = out.sources_complete;
        for (const auto& verdict : pv.verdicts) {
          // Keep only the evidence the planner reads (why access ends), to keep memory small.
          core::Verdict copy = verdict;
          copy.evidence.clear();
          for (const auto& e : verdict.evidence)
            if (e.finding == core::Finding::Expired || e.finding == core::Finding::ExceptionEnded ||
                e.finding == core::Finding::ExceptionRevoked ||
                e.finding == core::Finding::PrerequisiteNotMet)
              copy.evidence.push_back(e);
          copy.evidence.shrink_to_fit();
          v.verdicts.push_back(std::move(copy));
        }
        verdicts.push_back(std::move(v));
      });
  if (!st) return st.error();

  core::Desired desired = core::desire(verdicts, mappings);

  // Accounts of the people who should be members. The accounts found are cached in the store;
  // those writes are grouped (up to 256 or one second per transaction) so that a first plan
  // over many people is not one fsync per lookup, and no transaction is held for long.
  std::set<std::pair<std::string, std::string>> reported;
  std::optional<store::Transaction> cache_tx;
  std::size_t cache_writes = 0;
  auto cache_started = std::chrono::steady_clock::now();
  auto flushCache = [&]() -> core::Status {
    if (!cache_tx) return {};
    auto c = cache_tx->commit();
    cache_tx.reset();
    cache_writes = 0;
    return c;
  };
  for (const auto& m : desired.members) {
    if (cache_tx && (cache_writes >= 256 ||
                     std::chrono::steady_clock::now() - cache_started > std::chrono::seconds(1)))
      if (auto c = flushCache(); !c) return c.error();
    if (!cache_tx) {
      auto tx = store_.begin();
      if (!tx) return tx.error();
      cache_tx.emplace(std::move(*tx));
      cache_started = std::chrono::steady_clock::now();
    }
    ++cache_writes;
    const auto& t = desired.targets[m.target].target;
    DirectoryHandle* h = im.handle(t.directory);
    if (!h) continue;
    auto p = im.by_key.find(m.person_key);
    if (p == im.by_key.end()) continue;
    std::string problem;
    auto id = im.resolveAccount(*h, *p->second, problem);
    if (!id) {
      if (id.error().kind == ErrorKind::Auth) break;  // reported when observing
      out.problems.push_back("directory " + t.directory + ": " + id.error().describe());
      continue;
    }
    if (!problem.empty() && reported.insert({t.directory, m.person_key}).second)
      out.problems.push_back(problem);
  }
  if (auto c = flushCache(); !c) return c.error();

  // Observe every mapped group.
  std::vector<core::ObservedGroup> observed;
  for (const auto& pt : desired.targets) {
    const auto& t = pt.target;
    DirectoryHandle* h = im.handle(t.directory);
    auto notObserved = [&](const std::string& why) {
      out.targets_not_observed.push_back({t.directory, t.group, why});
    };
    if (!h) {
      notObserved("directory " + t.directory +
                  " is not available (disabled, unreachable or quarantined for this run)");
      continue;
    }
    auto ref = im.group(*h, t.group);
    if (!ref) {
      notObserved(ref.error().describe());
      continue;
    }
    if (!ref->writable) {
      notObserved("group " + t.group + " cannot be changed by certgate: " + ref->not_writable_why);
      continue;
    }
    auto acc = im.accountsOf(h->settings->name);
    if (!acc) return acc.error();
    core::ObservedGroup og{t.directory, t.group, {}};
    auto listed = h->directory->listMembers(*ref, [&](ports::DirectoryUser&& u) {
      og.members.push_back(im.memberKey(*h, **acc, u));
    });
    if (!listed) {
      notObserved(listed.error().describe());
      continue;
    }
    if (only) {
      // A one-person plan looks at that person only.
      std::erase_if(og.members, [&](const std::string& k) { return k != only->key; });
    }
    observed.push_back(std::move(og));
  }

  // The ledger: memberships certgate added.
  auto grants = store_.activeGrants();
  if (!grants) return grants.error();
  std::vector<core::LedgerGrant> ledger;
  for (const auto& g : *grants) {
    if (g.target_kind != kGroupKind) continue;
    if (only && g.person_id != only->id) continue;
    const auto slash = g.target.find('/');
    if (slash == std::string::npos) continue;
    auto p = im.by_id.find(g.person_id);
    ledger.push_back(core::LedgerGrant{p == im.by_id.end() ? std::to_string(g.person_id)
                                                           : p->second->key,
                                       g.target.substr(0, slash), g.target.substr(slash + 1),
                                       policy.symbols.find(g.track).value_or(core::kNoSym)});
  }

  core::PlanInput in;
  in.desired = &desired;
  in.people = verdicts;
  in.observed = observed;
  in.ledger = ledger;
  in.limits.max_removals = static_cast<std::size_t>(std::max(0, settings_.limits.max_removals));
  in.limits.max_removal_pct = settings_.limits.max_removal_pct;
  in.roster_complete = out.sources_complete;
  in.id = options.make_id ? options.make_id(now) : defaultPlanId(now);
  out.plan = core::plan(in);
  if (tokens_) {
    auto tp = tokens_->plan(verdicts, only ? only->key : std::string(), now);
    if (!tp) return tp.error();
    out.tokens = std::move(*tp);
  }
  const bool tokens_held = out.tokens && out.tokens->held;
  out.state = out.plan.held() || tokens_held ? "held" : "planned";
  out.json = planToJson(out, policy.symbols);

  store::PlanRow row;
  row.id = out.plan.id;
  row.created_at = now;
  row.run_id = options.run_id;
  row.fingerprint = hex64(out.plan.fingerprint);
  row.state = out.state;
  row.adds = static_cast<std::int64_t>(core::countActions(out.plan, core::ActionKind::Add));
  row.removes = static_cast<std::int64_t>(core::countActions(out.plan, core::ActionKind::Remove));
  row.skipped = static_cast<std::int64_t>(out.plan.skipped.size());
  if (out.tokens) {
    for (const auto& a : out.tokens->plan.actions)
      ++(a.kind == core::TokenActionKind::Issue ? row.adds : row.removes);
    row.skipped += static_cast<std::int64_t>(out.tokens->plan.skipped.size());
  }
  row.scope = only ? only->key : std::string();
  row.plan_json = out.json;
  if (auto ins = store_.insertPlan(row); !ins) return ins.error();
  if (out.state == "held") {
    json d;
    d["plan"] = out.plan.id;
    d["removals"] = out.plan.brake.removals;
    d["threshold"] = out.plan.brake.threshold;
    d["current_grants"] = out.plan.brake.current_grants;
    if (out.tokens) {
      d["token_revocations"] = out.tokens->revocations;
      d["token_threshold"] = out.tokens->threshold;
      d["live_tokens"] = out.tokens->live_tokens;
    }
    if (auto a = im.audit("plan.held", out.plan.id, d); !a) return a.error();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// apply

core::Result<ApplyResult> Reconciler::apply(const core::Plan& plan, bool release_brake,
                                            core::Instant now, const ReconcileOptions& options,
                                            const TokenPlanResult* tokens) {
  Impl im(*this, now, options);
  ApplyResult out;
  out.plan_id = plan.id;
  auto& symbols = settings_.policy->symbols;
  {
    auto people = store_.persons();
    if (!people) return people.error();
    im.people = std::move(*people);
    im.indexPeople();
  }
  auto grants = store_.activeGrants();
  if (!grants) return grants.error();
  // (person id, target) -> active grant ids (one per track).
  std::map<std::pair<std::int64_t, std::string>, std::vector<std::int64_t>> ledger;
  for (const auto& g : *grants)
    if (g.target_kind == kGroupKind) ledger[{g.person_id, g.target}].push_back(g.id);

  std::vector<const core::Action*> to_apply;
  if (release_brake) {
    for (const auto& a : plan.actions) to_apply.push_back(&a);
  } else {
    to_apply = core::applicable(plan);
    out.withheld = plan.actions.size() - to_apply.size();
  }

  std::set<std::string> quarantined;
  std::map<std::string, std::pair<std::size_t, std::size_t>> tally;  // directory -> (tried, failed)

  // Batches: consecutive actions of one kind on one target (the plan is ordered that way).
  std::size_t i = 0;
  while (i < to_apply.size()) {
    const core::Action& first = *to_apply[i];
    std::size_t j = i;
    while (j < to_apply.size() && to_apply[j]->kind == first.kind &&
           to_apply[j]->target.directory == first.target.directory &&
           to_apply[j]->target.group == first.target.group)
      ++j;
    std::vector<const core::Action*> run(to_apply.begin() + static_cast<std::ptrdiff_t>(i),
                                         to_apply.begin() + static_cast<std::ptrdiff_t>(j));
    i = j;

    const std::string& dname = first.target.directory;
    const std::string target = targetName(dname, first.target.group);
    auto fail = [&](const core::Action& a, const std::string& why) {
      ++out.failed;
      ++tally[dname].second;
      out.failures.push_back(core::toString(a.kind) + std::string(" ") + a.person + " " +
                             target + ": " + why);
    };
    if (quarantined.count(dname)) {
      for (const auto* a : run) fail(*a, "directory quarantined in this run");
      continue;
    }
    DirectoryHandle* h = im.handle(dname);
    if (!h) {
      for (const auto* a : run) fail(*a, "directory " + dname + " is not configured");
      continue;
    }
    auto ref = im.group(*h, first.target.group);
    if (!ref) {
      for (const auto* a : run) fail(*a, ref.error().describe());
      continue;
    }
    if (!ref->writable) {
      for (const auto* a : run) fail(*a, "group is not writable: " + ref->not_writable_why);
      continue;
    }

    // Resolve user ids.
    struct Item {
      const core::Action* action;
      const store::PersonRow* person;  // null for an unknown member (removal by directory id)
      std::string user_id;
      std::string key;
      std::int64_t intent = 0;
    };
    std::vector<Item> items;
    for (const auto* a : run) {
      Item it{a, nullptr, {}, actionKey(*a), 0};
      if (auto p = im.by_key.find(a->person); p != im.by_key.end()) {
        it.person = p->second;
        std::string problem;
        auto id = im.resolveAccount(*h, *p->second, problem);
        if (!id) {
          fail(*a, id.error().describe());
          continue;
        }
        if (id->empty()) {
          fail(*a, problem);
          continue;
        }
        it.user_id = *id;
      } else {
        it.user_id = a->person;  // the planner names unknown members by their directory id
      }
      items.push_back(std::move(it));
    }

    const std::size_t batch = std::max<std::size_t>(
        1, first.kind == core::ActionKind::Add ? h->directory->capabilities().max_add_batch
                                               : h->directory->capabilities().max_remove_batch);
    for (std::size_t b = 0; b < items.size(); b += batch) {
      std::vector<Item*> chunk;
      for (std::size_t k = b; k < std::min(items.size(), b + batch); ++k) chunk.push_back(&items[k]);
      if (quarantined.count(dname)) {
        for (Item* it : chunk) fail(*it->action, "directory quarantined in this run");
        continue;
      }
      if (options.stop && options.stop->load()) {
        out.interrupted += chunk.size();
        continue;
      }

      // 1. Intents before the call.
      {
        auto tx = store_.begin();
        if (!tx) return tx.error();
        std::vector<Item*> fresh;
        for (Item* it : chunk) {
          json payload;
          payload["directory"] = dname;
          payload["group"] = it->action->target.group;
          payload["group_id"] = ref->id;
          payload["user_id"] = it->user_id;
          payload["person"] = it->action->person;
          payload["person_id"] = it->person ? it->person->id : 0;
          payload["track"] = it->action->track == core::kNoSym
                                 ? std::string()
                                 : std::string(symbols.name(it->action->track));
          payload["reason"] = core::toString(it->action->reason);
          payload["plan"] = plan.id;
          store::IntentRow intent;
          intent.run_id = options.run_id;
          intent.kind = it->action->kind == core::ActionKind::Add ? "group.add" : "group.remove";
          intent.target = target;
          intent.idempotency_key = plan.id + ":" + it->key;
          intent.payload_json = payload.dump();
          intent.created_at = now;
          auto id = store_.addIntent(intent);
          if (!id) {
            if (id.error().kind == ErrorKind::Conflict) {
              ++out.already_done;  // this plan applied (or tried) it before
              continue;
            }
            return id.error();
          }
          it->intent = *id;
          fresh.push_back(it);
        }
        if (auto c = tx->commit(); !c) return c.error();
        chunk = std::move(fresh);
      }
      if (chunk.empty()) continue;

      // 2. The call, retried for transient failures.
      std::vector<std::string> ids;
      for (Item* it : chunk) ids.push_back(it->user_id);
      core::Result<std::vector<ports::MemberOutcome>> result =
          core::makeError(ErrorKind::Internal, "not called");
      for (int attempt = 1;; ++attempt) {
        result = first.kind == core::ActionKind::Add ? h->directory->addMembers(*ref, ids)
                                                     : h->directory->removeMembers(*ref, ids);
        if (result || !retryable(result.error().kind) || attempt >= options.max_attempts) break;
        im.sleep(backoff(options, attempt, result.error().retry_after_s, im.random01()));
      }

      // 3. Complete intents, ledger and audit in one transaction.
      auto tx = store_.begin();
      if (!tx) return tx.error();
      if (!result) {
        const core::Error& e = result.error();
        for (Item* it : chunk) {
          if (auto c = store_.completeIntent(it->intent, "failed", e.describe(), now); !c)
            return c.error();
          fail(*it->action, e.describe());
        }
        tally[dname].first += chunk.size();
        if (e.kind == ErrorKind::Auth) {
          quarantined.insert(dname);
          out.quarantined.push_back(dname + ": " + e.describe());
          json d;
          d["error"] = e.describe();
          d["plan"] = plan.id;
          if (auto a = im.audit("directory.quarantined", dname, d); !a) return a.error();
        }
      } else {
        std::unordered_map<std::string, const ports::MemberOutcome*> by_user;
        for (const auto& m : *result) by_user[m.user_id] = &m;
        for (Item* it : chunk) {
          ++tally[dname].first;
          const core::Action& a = *it->action;
          auto found = by_user.find(it->user_id);
          if (found == by_user.end() || !found->second->status) {
            const std::string why = found == by_user.end()
                                        ? std::string("the directory gave no outcome")
                                        : found->second->status.error().describe();
            if (auto c = store_.completeIntent(it->intent, "failed", why, now); !c)
              return c.error();
            fail(a, why);
            json d;
            d["directory"] = dname;
            d["group"] = a.target.group;
            d["error"] = why;
            d["plan"] = plan.id;
            if (auto au = im.audit(a.kind == core::ActionKind::Add ? "group.add.failed"
                                                                    : "group.remove.failed",
                                   a.person, d);
                !au)
              return au.error();
            continue;
          }
          const bool no_op = found->second->no_op;
          if (auto c = store_.completeIntent(it->intent, "done", no_op ? "no-op" : "applied", now);
              !c)
            return c.error();
          if (no_op) ++out.no_op;
          const std::string track = a.track == core::kNoSym ? std::string()
                                                            : std::string(symbols.name(a.track));
          if (a.kind == core::ActionKind::Add) {
            ++out.added;
            if (it->person) {
              store::GrantRow g;
              g.person_id = it->person->id;
              g.track = track;
              g.target_kind = kGroupKind;
              g.target = target;
              g.external_ref = it->user_id;
              g.granted_at = now;
              auto rec = store_.recordGrant(g);
              if (!rec && rec.error().kind == ErrorKind::Conflict) {
                // The ledger named another account for this membership: it is replaced.
                for (auto gid : ledger[{it->person->id, target}])
                  (void)store_.markGrantRevoked(gid, now);
                rec = store_.recordGrant(g);
              }
              if (!rec) return rec.error();
              ledger[{it->person->id, target}].push_back(*rec);
            }
          } else {
            ++out.removed;
            if (it->person) {
              auto& ids_held = ledger[{it->person->id, target}];
              for (auto gid : ids_held)
                if (auto m = store_.markGrantRevoked(gid, now); !m) return m.error();
              ids_held.clear();
            }
          }
          json d;
          d["directory"] = dname;
          d["group"] = a.target.group;
          d["group_id"] = ref->id;
          d["user_id"] = it->user_id;
          d["track"] = track;
          d["reason"] = core::toString(a.reason);
          d["state"] = core::toString(a.state);
          d["why"] = core::describe(a, symbols);
          d["plan"] = plan.id;
          d["no_op"] = no_op;
          if (a.at) d["at"] = core::formatIso(*a.at);
          if (a.since) d["since"] = core::formatIso(*a.since);
          if (auto au = im.audit(a.kind == core::ActionKind::Add ? "group.add" : "group.remove",
                                 a.person, d);
              !au)
            return au.error();
        }
        // A directory failing too often is stopped for the run, not hammered.
        const auto [tried, failed] = tally[dname];
        const double ratio = tried ? static_cast<double>(failed) / static_cast<double>(tried) : 0;
        if (tried >= 10 && ratio > h->settings->max_failure_ratio) {
          quarantined.insert(dname);
          out.quarantined.push_back(dname + ": " + std::to_string(failed) + " of " +
                                    std::to_string(tried) + " changes failed");
          json d;
          d["failed"] = failed;
          d["tried"] = tried;
          d["plan"] = plan.id;
          if (auto au = im.audit("directory.quarantined", dname, d); !au) return au.error();
        }
      }
      if (auto c = tx->commit(); !c) return c.error();
    }
  }

  for (const auto& h : directories_)
    out.requests[h.settings->name] = h.directory->requestCount();
  if (tokens_ && tokens) {
    TokenOptions to;
    to.actor = options.actor;
    to.run_id = options.run_id;
    to.crash_point = options.crash_point;
    to.stop = options.stop;
    auto ta = tokens_->apply(*tokens, plan.id, release_brake, now, to);
    if (!ta) return ta.error();
    for (const auto& [g, n] : ta->requests) out.requests[g] = n;
    out.tokens = std::move(*ta);
  }
  const bool held_back = out.withheld > 0 || (out.tokens && out.tokens->withheld > 0);
  const bool token_failed = out.tokens && out.tokens->failed > 0;
  const bool interrupted =
      out.interrupted > 0 || (out.tokens && out.tokens->interrupted > 0);
  // An interrupted plan is stored as partial (its outcome says how many changes were left).
  out.state = interrupted || out.failed > 0 || token_failed || !out.quarantined.empty()
                  ? "partial"
              : held_back                                 ? "held"
                                                          : "applied";
  auto upd = store_.updatePlan(plan.id, out.state, {}, {}, out.state == "held" ? std::nullopt
                                                                               : std::optional(now),
                               std::to_string(out.added) + " added, " +
                                   std::to_string(out.removed) + " removed, " +
                                   std::to_string(out.failed) + " failed" +
                                   (out.tokens ? "; tokens: " +
                                                     std::to_string(out.tokens->issued) +
                                                     " issued, " +
                                                     std::to_string(out.tokens->revoked) +
                                                     " revoked, " +
                                                     std::to_string(out.tokens->failed) +
                                                     " failed"
                                               : std::string()) +
                                   (held_back ? ", " + std::to_string(out.withheld) +
                                                    " removals held"
                                              : std::string()) +
                                   (interrupted ? ", stopped before the rest (" +
                                                      std::to_string(out.interrupted) +
                                                      " changes left for the next run)"
                                                : std::string()));
  if (!upd && upd.error().kind != ErrorKind::NotFound) return upd.error();
  return out;
}

core::Result<ApplyResult> Reconciler::applyStored(const std::string& id, core::Instant now,
                                                  const ReconcileOptions& options) {
  auto row = store_.plan(id);
  if (!row) return row.error();
  if (!row->has_value())
    return core::makeError(ErrorKind::NotFound, "no plan '" + id + "'", {},
                           "list plans with certgate plans list");
  const store::PlanRow& stored = **row;
  if (stored.state == "applied" || stored.state == "superseded")
    return core::makeError(ErrorKind::Conflict,
                           "plan " + id + " is " + stored.state + "; it is not applied again", {},
                           "make a new plan with certgate plan");
  auto plan = planFromJson(stored.plan_json, settings_.policy->symbols);
  if (!plan) return plan.error();
  const bool approved = stored.state == "approved";

  // Only what is still needed: the stored actions a fresh plan of the same scope also has.
  ReconcileOptions fresh_options = options;
  fresh_options.person = stored.scope;
  fresh_options.make_id = [&](core::Instant at) {
    return id + "-check-" + (options.make_id ? options.make_id(at) : defaultPlanId(at));
  };
  auto fresh = makePlan(now, fresh_options);
  if (!fresh) return fresh.error();
  (void)store_.updatePlan(fresh->plan.id, "superseded", {}, {}, {},
                          "consistency check for applying " + id);
  std::set<std::string> still;
  for (const auto& a : fresh->plan.actions) still.insert(actionKey(a));
  core::Plan keep = *plan;
  keep.actions.clear();
  std::size_t dropped = 0;
  for (const auto& a : plan->actions) {
    if (still.count(actionKey(a))) keep.actions.push_back(a);
    else ++dropped;
  }
  // Token actions: likewise, only those the fresh plan still has.
  std::optional<TokenPlanResult> tokens;
  bool tokens_held = false;
  json stored_json = json::parse(stored.plan_json, nullptr, false);
  if (tokens_ && stored_json.is_object() && stored_json.contains("tokens")) {
    auto tp = tokenPlanFromJson(stored_json["tokens"].dump(), settings_.policy->symbols);
    if (!tp) return tp.error();
    tokens_held = tp->held;
    std::set<std::string> fresh_tokens;
    if (fresh->tokens)
      for (const auto& a : fresh->tokens->plan.actions) fresh_tokens.insert(tokenActionKey(a));
    tokens = std::move(*tp);
    std::erase_if(tokens->plan.actions, [&](const core::TokenAction& a) {
      if (fresh_tokens.count(tokenActionKey(a))) return false;
      ++dropped;
      return true;
    });
    if (fresh->tokens) tokens->gone = fresh->tokens->gone;
  }
  const bool held = plan->held() || tokens_held;
  auto out = apply(keep, approved || !held, now, options, tokens ? &*tokens : nullptr);
  if (!out) return out;
  out->dropped = dropped;
  return out;
}

// ---------------------------------------------------------------------------------------------
// recover

core::Result<RecoverResult> Reconciler::recover(core::Instant now, const ReconcileOptions& options) {
  Impl im(*this, now, options);
  RecoverResult out;
  auto pending = store_.pendingIntents();
  if (!pending) return pending.error();
  // group id -> live members, read once per group.
  std::map<std::string, std::optional<std::set<std::string>>> live;
  for (const auto& intent : *pending) {
    if (intent.kind != "group.add" && intent.kind != "group.remove") continue;
    json p = json::parse(intent.payload_json, nullptr, false);
    if (!p.is_object()) {
      (void)store_.completeIntent(intent.id, "abandoned", "payload unreadable", now);
      ++out.abandoned;
      continue;
    }
    const std::string dname = p.value("directory", "");
    const std::string group = p.value("group", "");
    const std::string user = p.value("user_id", "");
    DirectoryHandle* h = im.handle(dname);
    if (!h) {
      out.problems.push_back("intent " + std::to_string(intent.id) + ": directory " + dname +
                             " is no longer configured; left pending");
      continue;
    }
    auto ref = im.group(*h, group);
    if (!ref) {
      out.problems.push_back("intent " + std::to_string(intent.id) + ": " +
                             ref.error().describe() + "; left pending");
      continue;
    }
    const std::string key = targetName(dname, ref->id);
    if (!live.count(key)) {
      std::set<std::string> members;
      auto listed = h->directory->listMembers(
          *ref, [&](ports::DirectoryUser&& u) { members.insert(u.id); });
      if (listed) live[key] = std::move(members);
      else {
        live[key] = std::nullopt;
        out.problems.push_back("cannot read " + key + ": " + listed.error().describe());
      }
    }
    if (!live[key]) continue;  // left pending for the next run
    const bool present = live[key]->count(user) > 0;
    const bool add = intent.kind == "group.add";
    const bool happened = add == present;
    auto tx = store_.begin();
    if (!tx) return tx.error();
    if (auto c = store_.completeIntent(intent.id, happened ? "done" : "abandoned",
                                       happened ? "recovered: the change had happened"
                                                : "recovered: the change had not happened",
                                       now);
        !c)
      return c.error();
    const std::int64_t person_id = p.value("person_id", std::int64_t{0});
    const std::string target = targetName(dname, group);
    if (happened && person_id > 0) {
      if (add) {
        store::GrantRow g;
        g.person_id = person_id;
        g.track = p.value("track", "");
        g.target_kind = kGroupKind;
        g.target = target;
        g.external_ref = user;
        g.granted_at = now;
        if (g.track.empty()) g.track = "-";
        auto rec = store_.recordGrant(g);
        if (!rec && rec.error().kind != ErrorKind::Conflict) return rec.error();
      } else {
        auto grants = store_.activeGrants();
        if (!grants) return grants.error();
        for (const auto& g : *grants)
          if (g.person_id == person_id && g.target_kind == kGroupKind && g.target == target)
            if (auto m = store_.markGrantRevoked(g.id, now); !m) return m.error();
      }
    }
    json d = p;
    d["intent"] = intent.id;
    d["outcome"] = happened ? "done" : "abandoned";
    if (auto a = im.audit("intent.recovered", p.value("person", ""), d); !a) return a.error();
    if (auto c = tx->commit(); !c) return c.error();
    ++(happened ? out.done : out.abandoned);
  }
  if (tokens_) {
    TokenOptions to;
    to.actor = options.actor;
    to.run_id = options.run_id;
    to.crash_point = options.crash_point;
    auto tr = tokens_->recover(now, to);
    if (!tr) return tr.error();
    out.done += tr->done + tr->adopted + tr->revoked;
    out.abandoned += tr->abandoned;
    out.problems.insert(out.problems.end(), tr->problems.begin(), tr->problems.end());
    out.tokens = std::move(*tr);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON

std::string planToJson(const PlanResult& result, const core::SymbolTable& symbols) {
  const core::Plan& p = result.plan;
  json j;
  j["id"] = p.id;
  j["state"] = result.state;
  j["fingerprint"] = hex64(p.fingerprint);
  j["brake"] = {{"removals", p.brake.removals},
                {"current_grants", p.brake.current_grants},
                {"threshold", p.brake.threshold},
                {"held", p.brake.held}};
  j["actions"] = json::array();
  for (const auto& a : p.actions) j["actions"].push_back(actionJson(a, symbols));
  j["skipped"] = json::array();
  for (const auto& s : p.skipped) {
    json k = actionJson(s.action, symbols);
    k["skipped_because"] = core::toString(s.why);
    j["skipped"].push_back(std::move(k));
  }
  j["not_observed"] = json::array();
  for (const auto& t : result.targets_not_observed)
    j["not_observed"].push_back({{"directory", t.directory}, {"group", t.group}, {"problem", t.problem}});
  j["outside_allow_list"] = json::array();
  for (const auto& g : p.outside_allow_list)
    j["outside_allow_list"].push_back({{"person", g.person_key},
                                       {"directory", g.directory},
                                       {"group", g.group}});
  j["mode_conflicts"] = json::array();
  for (const auto& t : p.mode_conflicts)
    j["mode_conflicts"].push_back({{"directory", t.directory}, {"group", t.group}});
  j["problems"] = result.problems;
  j["sources"] = json::array();
  for (const auto& s : result.sources)
    j["sources"].push_back({{"name", s.name}, {"complete", s.complete}, {"problem", s.problem}});
  j["sources_complete"] = result.sources_complete;
  j["people"] = result.people;
  if (result.tokens) j["tokens"] = json::parse(tokenPlanToJson(*result.tokens, symbols));
  return j.dump(2);
}

core::Result<core::Plan> planFromJson(const std::string& text, core::SymbolTable& symbols) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("actions") || !j["actions"].is_array())
    return core::makeError(ErrorKind::Corrupt, "stored plan is not readable JSON", {},
                           "make a new plan with certgate plan");
  core::Plan p;
  p.id = j.value("id", "");
  try {
    p.fingerprint = std::stoull(j.value("fingerprint", "0"), nullptr, 16);
  } catch (...) {
    p.fingerprint = 0;
  }
  if (j.contains("brake") && j["brake"].is_object()) {
    const auto& b = j["brake"];
    p.brake.removals = b.value("removals", std::size_t{0});
    p.brake.current_grants = b.value("current_grants", std::size_t{0});
    p.brake.threshold = b.value("threshold", std::size_t{0});
    p.brake.held = b.value("held", false);
  }
  for (const auto& a : j["actions"]) {
    auto action = actionFromJson(a, symbols);
    if (!action) return action.error();
    p.actions.push_back(std::move(*action));
  }
  if (j.contains("skipped") && j["skipped"].is_array()) {
    for (const auto& s : j["skipped"]) {
      auto action = actionFromJson(s, symbols);
      if (!action) return action.error();
      auto why = parseEnum(s.value("skipped_because", ""), kSkips);
      p.skipped.push_back(core::Skipped{std::move(*action),
                                        why.value_or(core::SkipReason::SourceIncomplete)});
    }
  }
  return p;
}

}  // namespace certgate::engine
