#pragma once
// A cpp-httplib server on 127.0.0.1 and a kernel-chosen port, run in a thread for one test.
// Register handlers on `server` before start(); the destructor stops and joins.

#include <httplib.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace certgate::testing {

class LoopbackServer {
 public:
  LoopbackServer() = default;
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;
  ~LoopbackServer() { stop(); }

  void start() {
    port_ = server.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot bind 127.0.0.1:0");
    thread_ = std::thread([this] { server.listen_after_bind(); });
    // The socket already listens (connections queue); wait only so that stop() cannot race
    // the start of the accept loop.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server.is_running()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("server did not start");
      std::this_thread::yield();
    }
  }

  void stop() {
    if (thread_.joinable()) {
      server.stop();
      thread_.join();
    }
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  httplib::Server server;

 private:
  int port_ = 0;
  std::thread thread_;
};

}  // namespace certgate::testing
