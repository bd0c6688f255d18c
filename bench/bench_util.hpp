#pragma once
// Small helpers shared by the benchmark programs: argument parsing, timing, memory figures.

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certgate::bench {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// CPU time (user + system) of this process so far, in seconds.
// CPU seconds of the calling thread alone.
inline double threadCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

inline double cpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Peak resident set size of this process so far (getrusage ru_maxrss), in MiB.
inline double peakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Current resident set size (VmRSS from /proc/self/status), in MiB; 0 if unavailable.
inline double currentRssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  return 0;
}

// "--name value" / "--name=value" options; anything else is an error.
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
  }
  // Returns the value of --name, consuming it.
  std::optional<std::string> take(std::string_view name) {
    const std::string flag = "--" + std::string(name);
    for (std::size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] == flag && i + 1 < args_.size()) {
        std::string v = args_[i + 1];
        args_.erase(args_.begin() + static_cast<std::ptrdiff_t>(i),
                    args_.begin() + static_cast<std::ptrdiff_t>(i) + 2);
        return v;
      }
      if (args_[i].rfind(flag + "=", 0) == 0) {
        std::string v = args_[i].substr(flag.size() + 1);
        args_.erase(args_.begin() + static_cast<std::ptrdiff_t>(i));
        return v;
      }
    }
    return std::nullopt;
  }
  bool flag(std::string_view name) {
    const std::string f = "--" + std::string(name);
    for (std::size_t i = 0; i < args_.size(); ++i)
      if (args_[i] == f) {
        args_.erase(args_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    return false;
  }
  std::int64_t integer(std::string_view name, std::int64_t fallback) {
    auto v = take(name);
    if (!v) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v->c_str(), &end, 10);
    if (end == v->c_str() || *end != '\0') {
      // Accept 100k / 1M shorthands.
      if (end != v->c_str() && (*end == 'k' || *end == 'K') && end[1] == '\0') return n * 1000;
      if (end != v->c_str() && (*end == 'm' || *end == 'M') && end[1] == '\0') return n * 1000000;
      std::fprintf(stderr, "error: --%s expects a number, got '%s'\n", std::string(name).c_str(),
                   v->c_str());
      std::exit(2);
    }
    return n;
  }
  // Exits with a message when options are left over.
  void done(const char* usage) const {
    if (args_.empty()) return;
    std::fprintf(stderr, "error: unknown argument '%s'\n%s", args_.front().c_str(), usage);
    std::exit(2);
  }

 private:
  std::vector<std::string> args_;
};

inline std::string withCommas(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  std::string s(buf), out;
  const std::size_t start = (s[0] == '-') ? 1 : 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    out.push_back(s[i]);
    const std::size_t left = s.size() - i - 1;
    if (i >= start && left > 0 && left % 3 == 0) out.push_back(',');
  }
  return out;
}

}  // namespace certgate::bench
