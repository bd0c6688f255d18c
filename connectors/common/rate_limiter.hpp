#pragma once
// A client-side request rate limit: at most `limit` requests in any window of `window` length
// (a sliding log of the last `limit` request times). acquire() waits, through the injected
// sleeper, until the oldest of the last `limit` requests has left the window. Used before every
// HTTP exchange of a connector whose API publishes a rate limit (ClientOptions::before_send).
//
// The clock and the sleeper are injected (defaults: steady_clock and a real sleep), so tests
// count requests per window without sleeping. Thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace certgate::connectors::http {

class RateLimiter {
 public:
  using Millis = std::chrono::milliseconds;
  using Now = std::function<Millis()>;  // a monotonic time
  using Sleep = std::function<void(Millis)>;

  RateLimiter(int limit, Millis window, Now now = {}, Sleep sleep = {});

  // Waits until one more request fits the window, then counts it. Returns the time waited.
  Millis acquire();
  std::uint64_t acquired() const;
  Millis waited() const;  // in total

 private:
  int limit_;
  Millis window_;
  Now now_;
  Sleep sleep_;
  mutable std::mutex mutex_;
  std::deque<Millis> times_;
  std::uint64_t acquired_ = 0;
  Millis waited_{0};
};

}  // namespace certgate::connectors::http
