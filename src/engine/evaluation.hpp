#pragma once
// Evaluation over the store: streams each person's facts out of SQLite, hands them to the pure
// rule engine (core::evaluatePerson) and gives the caller one person's verdicts at a time.
// Memory is O(people) for the person list and O(one person's facts) for facts.
// Read-only: never writes the store.

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::engine {

struct PersonVerdicts {
  const store::PersonRow* person = nullptr;
  std::span<const core::Verdict> verdicts;  // one per track, policy order
  std::span<const store::FactRow> facts;    // the person's facts, by time (for evidence)
};

struct SourceHealth {
  std::string name;
  std::string kind;
  bool ever_fetched = false;
  bool complete = false;  // the last fetch was complete: revocations may use this source
  core::Instant last_fetch{};
  std::string problem;
  std::int64_t records = 0;
  std::int64_t quarantined = 0;
};

class Evaluation {
 public:
  // Loads people and exceptions. `policy` must outlive the Evaluation.
  static core::Result<Evaluation> load(store::Store& store, const settings::LoadedPolicy& policy);

  // Evaluates everybody (or those `want` accepts) as of `now`, in person-id order.
  core::Status forEach(core::Instant now, const std::function<bool(const store::PersonRow&)>& want,
                       const std::function<void(const PersonVerdicts&)>& fn);

  // Finds a person by key, employee id or email (normalised here).
  const store::PersonRow* findPerson(const std::string& query) const;

  const std::vector<store::PersonRow>& people() const { return people_; }
  const settings::LoadedPolicy& policy() const { return *policy_; }
  const store::ExceptionRow* exceptionRow(std::int64_t id) const;

 private:
  Evaluation(store::Store& store, const settings::LoadedPolicy& policy)
      : store_(&store), policy_(&policy) {}
  void evaluateOne(const store::PersonRow& person, std::vector<store::FactRow>& facts,
                   core::Instant now, const std::function<void(const PersonVerdicts&)>& fn);

  store::Store* store_;
  const settings::LoadedPolicy* policy_;
  std::vector<store::PersonRow> people_;
  std::unordered_map<std::int64_t, std::size_t> index_;  // person id -> people_ position
  std::unordered_map<std::int64_t, std::vector<core::Exception>> exceptions_;
  std::vector<store::ExceptionRow> exception_rows_;
  std::unordered_map<std::int64_t, core::Sym> populations_;
};

core::Result<std::vector<SourceHealth>> sourceHealth(store::Store& store,
                                                     const settings::Settings& settings);

}  // namespace certgate::engine
