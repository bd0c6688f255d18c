#include "connectors/common/rate_limiter.hpp"

#include <algorithm>
#include <thread>

namespace certgate::connectors::http {

RateLimiter::RateLimiter(int limit, Millis window, Now now, Sleep sleep)
    : limit_(std::max(1, limit)), window_(window), now_(std::move(now)), sleep_(std::move(sleep)) {
  if (!now_)
    now_ = [] {
      return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch());
    };
  if (!sleep_) sleep_ = [](Millis d) { std::this_thread::sleep_for(d); };
}

RateLimiter::Millis RateLimiter::acquire() {
  std::lock_guard lock(mutex_);
  Millis total{0};
  for (;;) {
    const Millis now = now_();
    while (!times_.empty() && times_.front() + window_ <= now) times_.pop_front();
    if (static_cast<int>(times_.size()) < limit_) {
      times_.push_back(now);
      ++acquired_;
      waited_ += total;
      return total;
    }
    const Millis wait = times_.front() + window_ - now;
    sleep_(wait);
    total += wait;
  }
}

std::uint64_t RateLimiter::acquired() const {
  std::lock_guard lock(mutex_);
  return acquired_;
}

RateLimiter::Millis RateLimiter::waited() const {
  std::lock_guard lock(mutex_);
  return waited_;
}

}  // namespace certgate::connectors::http
