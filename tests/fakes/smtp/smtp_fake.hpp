#pragma once
// A loopback SMTP server for tests: 127.0.0.1 on a kernel-chosen port, one connection at a time,
// speaking the part of RFC 5321 that a plain submission uses (EHLO/HELO, AUTH PLAIN/LOGIN
// accepted when `accept_login`, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT).
// No STARTTLS: certgate allows plain smtp:// to loopback only. Every accepted message is
// recorded; tests can make it refuse recipients (550) or the message (554).

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace certgate::testing {

struct SmtpMessage {
  std::string helo;
  std::string mail_from;            // the MAIL FROM path, without < >
  std::vector<std::string> rcpt_to; // likewise
  std::string data;                 // the message as received, CRLF line ends, unstuffed
  std::string auth;                 // the AUTH command line, when the client logged in
};

class SmtpFake {
 public:
  SmtpFake();
  ~SmtpFake();
  SmtpFake(const SmtpFake&) = delete;
  SmtpFake& operator=(const SmtpFake&) = delete;

  void start();  // binds and starts the accept thread; throws std::runtime_error on failure
  void stop();   // idempotent
  int port() const { return port_; }
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

  std::vector<SmtpMessage> messages() const;
  // Waits until at least `n` messages arrived or `timeout_ms` passed; returns the count.
  std::size_t waitFor(std::size_t n, int timeout_ms = 5000) const;

  // Behaviour switches (set before the client connects).
  std::atomic<bool> refuse_recipients{false};  // RCPT TO -> 550
  std::atomic<bool> refuse_data{false};        // end of DATA -> 554
  std::atomic<bool> offer_auth{true};          // advertise AUTH PLAIN

 private:
  void run();
  void serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<SmtpMessage> messages_;
};

}  // namespace certgate::testing
