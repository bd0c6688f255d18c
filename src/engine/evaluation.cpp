#include "engine/evaluation.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/evaluate.hpp"
#include "core/identity.hpp"

namespace certgate::engine {

core::Result<Evaluation> Evaluation::load(store::Store& store, const settings::LoadedPolicy& policy) {
  Evaluation ev(store, policy);
  auto people = store.persons();
  if (!people.ok()) return people.error();
  ev.people_ = std::move(people).value();
  std::sort(ev.people_.begin(), ev.people_.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (std::size_t i = 0; i < ev.people_.size(); ++i) ev.index_[ev.people_[i].id] = i;

  auto excs = store.exceptions();
  if (!excs.ok()) return excs.error();
  ev.exception_rows_ = std::move(excs).value();
  for (const auto& row : ev.exception_rows_) {
    auto track = policy.symbols.find(row.track);
    if (!track) continue;  // a track that no longer exists grants nothing
    if (row.rejected_at) continue;  // a rejected request never grants anything
    core::Exception x;
    x.id = row.id;
    x.track = *track;
    // Names compared as the exceptions workflow compares them (engine/exceptions.hpp).
    x.requester = settings::normaliseApprover(row.requester);
    x.starts_at = row.starts_at;
    x.ends_at = row.ends_at;
    x.revoked_at = row.revoked_at;
    auto j = nlohmann::json::parse(row.justification_json, nullptr, false);
    if (j.is_object())
      for (auto it = j.begin(); it != j.end(); ++it)
        x.justification.emplace_back(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
    for (const auto& a : row.approvals)
      x.approvals.push_back({settings::normaliseApprover(a.approver), a.role, a.at});
    ev.exceptions_[row.person_id].push_back(std::move(x));
  }
  return ev;
}

const store::PersonRow* Evaluation::findPerson(const std::string& query) const {
  const std::string email = core::normaliseEmail(query);
  const std::string id = core::normaliseEmployeeId(query);
  for (const auto& p : people_)
    if (p.key == id || (!p.employee_id.empty() && p.employee_id == id) ||
        (!email.empty() && p.email == email))
      return &p;
  return nullptr;
}

const store::ExceptionRow* Evaluation::exceptionRow(std::int64_t id) const {
  for (const auto& r : exception_rows_)
    if (r.id == id) return &r;
  return nullptr;
}

void Evaluation::evaluateOne(const store::PersonRow& person, std::vector<store::FactRow>& rows,
                             core::Instant now,
                             const std::function<void(const PersonVerdicts&)>& fn) {
  std::vector<core::Fact> facts;
  facts.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto item = policy_->symbols.find(r.item);
    if (!item) continue;  // an item no track uses
    core::Fact f;
    f.ref = r.id;
    f.item = *item;
    f.at = r.at;
    f.kind = r.kind;
    f.status = r.status;
    f.lms_pass = r.lms_pass;
    f.attempt = r.attempt;
    f.score = r.score;
    f.max_score = r.max_score;
    f.lms_expiry = r.lms_expiry;
    facts.push_back(f);
  }
  core::Person info;
  if (!person.population.empty())
    info.population = policy_->symbols.find(person.population).value_or(core::kNoSym - 1);
  static const std::vector<core::Exception> kNone;
  auto xit = exceptions_.find(person.id);
  const auto& excs = xit != exceptions_.end() ? xit->second : kNone;
  std::vector<core::Verdict> verdicts;
  core::evaluatePerson(0, info, facts, excs, policy_->policy, now, verdicts);
  fn(PersonVerdicts{&person, verdicts, rows});
}

core::Status Evaluation::forEach(core::Instant now,
                                 const std::function<bool(const store::PersonRow&)>& want,
                                 const std::function<void(const PersonVerdicts&)>& fn) {
  // Facts stream ordered by person id; people are sorted by id: a merge join.
  std::size_t next = 0;
  std::vector<store::FactRow> current;
  std::vector<store::FactRow> none;
  std::int64_t current_id = -1;
  auto visit = [&](const store::PersonRow& p, std::vector<store::FactRow>& facts) {
    if (!want || want(p)) evaluateOne(p, facts, now, fn);
  };
  auto emitWithoutFactsBefore = [&](std::int64_t id) {
    while (next < people_.size() && people_[next].id < id) visit(people_[next++], none);
  };
  auto finishCurrent = [&]() {
    if (current_id < 0) return;
    emitWithoutFactsBefore(current_id);
    if (next < people_.size() && people_[next].id == current_id) visit(people_[next++], current);
    current.clear();
  };
  auto st = store_->forEachFact([&](const store::FactRow& f) {
    if (f.person_id != current_id) {
      finishCurrent();
      current_id = f.person_id;
    }
    current.push_back(f);
  });
  if (!st.ok()) return st;
  finishCurrent();
  emitWithoutFactsBefore(INT64_MAX);
  return {};
}

core::Result<std::vector<SourceHealth>> sourceHealth(store::Store& store,
                                                     const settings::Settings& settings) {
  std::vector<SourceHealth> out;
  auto rows = store.sources();
  if (!rows.ok()) return rows.error();
  for (const auto& cfg : settings.sources) {
    SourceHealth h;
    h.name = cfg.name;
    h.kind = cfg.kind;
    h.problem = cfg.enabled ? "never fetched: run certgate ingest" : "disabled";
    for (const auto& r : *rows) {
      if (r.name != cfg.name) continue;
      auto last = store.lastFetch(r.id);
      if (!last.ok()) return last.error();
      if (!last->has_value()) break;
      const store::FetchRow& f = **last;
      h.ever_fetched = true;
      h.complete = f.complete;
      h.last_fetch = f.finished_at;
      h.problem = f.problem;
      h.records = f.records;
      h.quarantined = f.quarantined;
    }
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace certgate::engine
