// Throughput of the graph connector against the loopback fake: 100k membership adds, a full
// listing, 100k removals. Hidden from the default run; run it with
//   graph_tests "[bench]"
#include <catch2/catch.hpp>
#include <chrono>
#include <iostream>

#include "graph_test_support.hpp"

using certgate::testing::GraphFakeOptions;
using certgate::testing::GraphGroup;
using certgate::testing::graph_support::Env;
using certgate::testing::graph_support::gid;
using certgate::testing::graph_support::person;
using certgate::testing::graph_support::scalar;
using certgate::testing::graph_support::uid;
namespace ports = certgate::ports;

TEST_CASE("bench: 100k membership adds, a listing and 100k removals", "[.][bench][graph]") {
  constexpr int kPeople = 100'000;
  GraphFakeOptions o;
  o.record_requests = false;
  Env env(o);
  GraphGroup g;
  g.id = gid(1);
  g.display_name = "Certified";
  env.fake.addGroup(g);
  std::vector<std::string> ids;
  for (int i = 0; i < kPeople; ++i) {
    env.fake.addUser(person(i));
    ids.push_back(uid(i));
  }
  auto dir = env.make();
  auto group = dir->resolveGroup(gid(1));
  REQUIRE(group.ok());
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };

  const auto http0 = env.fake.httpRequestCount();
  auto t0 = Clock::now();
  auto added = dir->addMembers(*group, ids);
  const double add_s = seconds(Clock::now() - t0);
  REQUIRE(added.ok());
  for (const auto& out : *added) REQUIRE(out.status.ok());
  const auto http_add = env.fake.httpRequestCount() - http0;

  t0 = Clock::now();
  std::size_t listed = 0;
  REQUIRE(dir->listMembers(*group, [&](ports::DirectoryUser&&) { ++listed; }).ok());
  const double list_s = seconds(Clock::now() - t0);
  CHECK(listed == static_cast<std::size_t>(kPeople));
  const auto http_list = env.fake.httpRequestCount() - http0 - http_add;

  t0 = Clock::now();
  auto removed = dir->removeMembers(*group, ids);
  const double remove_s = seconds(Clock::now() - t0);
  REQUIRE(removed.ok());
  for (const auto& out : *removed) REQUIRE(out.status.ok());
  const auto http_remove = env.fake.httpRequestCount() - http0 - http_add - http_list;
  CHECK(env.fake.memberIds(gid(1)).empty());

  std::cout << "graph bench (" << kPeople << " people, loopback fake)\n"
            << "  add    " << add_s << " s, " << http_add << " HTTP requests, "
            << kPeople / add_s << " members/s\n"
            << "  list   " << list_s << " s, " << http_list << " HTTP requests\n"
            << "  remove " << remove_s << " s, " << http_remove << " HTTP requests, "
            << kPeople / remove_s << " members/s\n";
  CHECK(http_add == 250);
  CHECK(http_list == 101);
  CHECK(http_remove == 5000);
}
