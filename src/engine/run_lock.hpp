#pragma once
// Run locks: one run at a time per state store, across processes (the daemon, a manual
// `certgate sync`, a timer-started sync), and one daemon per store.
//
// A lock is an exclusive flock(2) on a file beside the store ("<store>.run.lock",
// "<store>.daemon.lock"). The kernel drops it when the holder exits, however it exits, so a
// crashed run never leaves a stale lock behind. The holder writes "pid <n> <what> since <time>"
// into the file so that a refused caller can say who holds it.

#include <chrono>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace certgate::engine {

class RunLock {
 public:
  RunLock(RunLock&&) noexcept;
  RunLock& operator=(RunLock&&) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();

  // Takes the lock at `path`, waiting up to `wait` for the current holder (0: do not wait).
  // `what` names the holder in the file ("sync", "daemon run", ...). Errors: Conflict (held by
  // someone else after `wait`, the message names the holder), Transient (the file cannot be
  // opened or locked: the message says why).
  static core::Result<RunLock> acquire(const std::string& path, const std::string& what,
                                       std::chrono::milliseconds wait);

  // Who holds the lock at `path` now, as written by the holder ("" when free or unreadable).
  static std::string holder(const std::string& path);

  const std::string& path() const { return path_; }
  void release();

 private:
  RunLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// The lock files of a store.
std::string runLockPath(const std::string& store_path);
std::string daemonLockPath(const std::string& store_path);

}  // namespace certgate::engine
