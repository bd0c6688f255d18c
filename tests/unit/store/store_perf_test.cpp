// Throughput of the fact upsert hot path. Hidden ([.perf]); run by hand on an optimised build:
//   store_tests "[.perf]"
// It reports rates instead of asserting them, so it never makes CI flaky.

#include <chrono>
#include <iostream>
#include <vector>

#include "store_test_support.hpp"

namespace certgate::store {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

void measure(int count) {
  constexpr int kPersons = 10'000;
  TempDir dir;
  const auto path = dir.file("perf.db");
  auto store = openOk(path);
  const auto source = valueOf(store->ensureSource("lms", "csv"));
  {
    auto tx = valueOf(store->begin());
    for (int p = 0; p < kPersons; ++p) {
      const auto key = "e" + std::to_string(p);
      valueOf(store->upsertPerson(makePerson(key, key, "")));
    }
    requireOk(tx.commit());
  }
  std::vector<FactRow> facts;
  facts.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    // Keys arrive in LMS order, persons scattered.
    facts.push_back(makeFact(source, "attempt-" + std::to_string(i),
                             1 + (std::int64_t{i} * 7919) % kPersons, 1'600'000'000 + i % 100'000,
                             i % 101));
  }

  auto pass = [&](const char* label, UpsertOutcome expected, auto&& tweak) {
    for (auto& fact : facts) tweak(fact);
    const auto start = Clock::now();
    auto tx = valueOf(store->begin());
    std::int64_t wrong = 0;
    for (const auto& fact : facts) {
      if (valueOf(store->upsertFact(fact, at(1'700'000'000))) != expected) ++wrong;
    }
    const auto looped = Clock::now();
    requireOk(tx.commit());
    const auto committed = Clock::now();
    std::cout << "  " << label << static_cast<long>(count / seconds(looped - start))
              << " upserts/s (loop " << seconds(looped - start) << " s, commit "
              << seconds(committed - looped) << " s)\n";
    CHECK(wrong == 0);
  };
  std::cout << count << " facts, one transaction each pass:\n";
  pass("new        ", UpsertOutcome::Inserted, [](FactRow&) {});
  pass("unchanged  ", UpsertOutcome::Unchanged, [](FactRow&) {});
  pass("new score  ", UpsertOutcome::Updated, [](FactRow& f) { f.score += 1; });

  store.reset();
  store = openOk(path);
  const auto start = Clock::now();
  std::int64_t seen = 0;
  requireOk(store->forEachFact([&](const FactRow&) { ++seen; }));
  std::cout << "  forEachFact "
            << static_cast<long>(static_cast<double>(seen) / seconds(Clock::now() - start))
            << " facts/s (freshly opened store)\n";
  CHECK(seen == count);
}

TEST_CASE("Upserting facts in one transaction is fast", "[.perf][store]") {
  measure(200'000);
  measure(1'000'000);
}

}  // namespace
}  // namespace certgate::store
