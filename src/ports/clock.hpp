#pragma once
#include <chrono>

#include "core/time.hpp"

namespace certgate::ports {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual core::Instant now() const = 0;
};

class SystemClock final : public Clock {
 public:
  core::Instant now() const override {
    return std::chrono::time_point_cast<core::Seconds>(std::chrono::system_clock::now());
  }
};

class FixedClock final : public Clock {
 public:
  explicit FixedClock(core::Instant t) : t_(t) {}
  core::Instant now() const override { return t_; }
  void set(core::Instant t) { t_ = t; }

 private:
  core::Instant t_;
};

}  // namespace certgate::ports
