#pragma once
// The rule engine. Pure: no I/O, no clock, no logging. Same inputs, same verdicts.
// Semantics are specified in docs/rules.md; every row there has a case in
// tests/unit/core/evaluate_test.cpp.

#include <span>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/result.hpp"

namespace certgate::core {

struct EvaluationInput {
  std::span<const Fact> facts;          // any order; quarantined facts are skipped and reported
  std::span<const Person> people;       // indexed by Fact::person / Exception::person
  const Policy* policy = nullptr;
  std::span<const Exception> exceptions;
  Instant now{};
};

// One verdict per (person, track), people in index order, tracks in policy order.
std::vector<Verdict> evaluate(const EvaluationInput& in);

// Evaluates one person. `facts` must all belong to `person` (any order); `exceptions` likewise.
// Appends one verdict per track to `out`. Used by evaluate() and by callers that stream people.
void evaluatePerson(PersonIndex person, const Person& info, std::span<const Fact> facts,
                    std::span<const Exception> exceptions, const Policy& policy, Instant now,
                    std::vector<Verdict>& out);

// The indices (into policy.required_roles) of the roles an exception's approvals do not cover at
// `now`: approvals dated after `now` and approvals by the requester do not count, and one person
// covers at most one role (docs/rules.md R16). Empty when every required role is covered. When
// every role has an approval but one person holds several of them, the last role is reported.
std::vector<std::size_t> missingApprovals(const Exception& x, const ExceptionPolicy& policy,
                                          Instant now);

// Checks a fact for impossible values. Returns the reason it must be quarantined, or "" if usable.
// Impossible: score > max, negative score or max, NaN/inf, max of 0, a date later than
// now + skew, an attempt reset with no item.
std::string impossibleFactReason(const Fact& fact, Instant now, Seconds skew);

// Checks the policy itself: unknown prerequisite tracks, prerequisite cycles, renew window not
// shorter than the validity period, negative numbers. Settings call this after loading.
Status validatePolicy(const Policy& policy, const SymbolTable& symbols);

}  // namespace certgate::core
