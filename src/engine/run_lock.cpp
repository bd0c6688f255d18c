#include "engine/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "core/time.hpp"

namespace certgate::engine {

namespace {

std::string readAll(int fd) {
  std::string text;
  char buf[256];
  if (lseek(fd, 0, SEEK_SET) < 0) return text;
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 1024) break;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

}  // namespace

std::string runLockPath(const std::string& store_path) { return store_path + ".run.lock"; }
std::string daemonLockPath(const std::string& store_path) { return store_path + ".daemon.lock"; }

RunLock::RunLock(RunLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}

RunLock& RunLock::operator=(RunLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
  }
  return *this;
}

RunLock::~RunLock() { release(); }

void RunLock::release() {
  if (fd_ < 0) return;
  // Emptied first: a reader that opens the file after we let go sees no stale holder.
  static_cast<void>(ftruncate(fd_, 0));
  flock(fd_, LOCK_UN);
  close(fd_);
  fd_ = -1;
}

std::string RunLock::holder(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);  // nobody holds it
  } else {
    text = readAll(fd);
  }
  close(fd);
  return text;
}

core::Result<RunLock> RunLock::acquire(const std::string& path, const std::string& what,
                                       std::chrono::milliseconds wait) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return core::makeError(core::ErrorKind::Transient,
                           std::string("cannot open the run lock: ") + std::strerror(errno), path,
                           "check that the state directory exists and is writable by certgate");
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const int e = errno;
      close(fd);
      return core::makeError(core::ErrorKind::Transient,
                             std::string("cannot lock: ") + std::strerror(e), path, "");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string who = readAll(fd);
      close(fd);
      return core::makeError(
          core::ErrorKind::Conflict,
          "another certgate run holds the lock" + (who.empty() ? std::string() : " (" + who + ")"),
          path, "wait for it to finish (it is never overlapped), or give --wait a longer time");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  const std::string text = "pid " + std::to_string(getpid()) + " " + what + " since " +
                           core::formatIso(std::chrono::floor<core::Seconds>(std::chrono::system_clock::now())) +
                           "\n";
  if (ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
    const ssize_t n = write(fd, text.data(), text.size());
    (void)n;
  }
  return RunLock(fd, path);
}

}  // namespace certgate::engine
