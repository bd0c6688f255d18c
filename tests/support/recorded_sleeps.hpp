#pragma once
// Client options for connector tests whose HTTP client must never really sleep: every backoff or
// Retry-After wait is recorded instead, and jitter is zero, so tests assert the waits exactly.

#include <chrono>
#include <mutex>
#include <vector>

#include "connectors/common/http_client.hpp"

namespace certgate::testing {

struct RecordedSleeps {
  std::mutex mu;
  std::vector<std::chrono::milliseconds> waits;
  connectors::http::ClientOptions clientOptions() {
    connectors::http::ClientOptions c;
    c.sleep = [this](connectors::http::Millis d) {
      std::lock_guard lock(mu);
      waits.push_back(d);
    };
    c.random01 = [] { return 0.0; };
    return c;
  }
};

}  // namespace certgate::testing
