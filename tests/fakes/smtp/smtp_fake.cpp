#include "fakes/smtp/smtp_fake.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <stdexcept>

namespace certgate::testing {

namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The path inside "<...>" of a MAIL FROM / RCPT TO argument.
std::string pathOf(const std::string& line) {
  const auto open = line.find('<');
  const auto close = line.find('>', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return {};
  return line.substr(open + 1, close - open - 1);
}

class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}
  bool send(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // One line without its CRLF; false when the peer closed or went silent for 10 s.
  bool line(std::string& out) {
    for (;;) {
      const auto eol = buf_.find("\r\n");
      if (eol != std::string::npos) {
        out = buf_.substr(0, eol);
        buf_.erase(0, eol + 2);
        return true;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10'000) <= 0) return false;
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

}  // namespace

SmtpFake::SmtpFake() = default;

SmtpFake::~SmtpFake() { stop(); }

void SmtpFake::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0) throw std::runtime_error("smtp fake: socket failed");
  int yes = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 8) != 0)
    throw std::runtime_error("smtp fake: cannot listen on 127.0.0.1:0");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

void SmtpFake::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

std::vector<SmtpMessage> SmtpFake::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

std::size_t SmtpFake::waitFor(std::size_t n, int timeout_ms) const {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return messages_.size() >= n; });
  return messages_.size();
}

void SmtpFake::run() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    serve(fd);
    ::close(fd);
  }
}

void SmtpFake::serve(int fd) {
  Conn c(fd);
  if (!c.send("220 fake.smtp.test ESMTP certgate-test\r\n")) return;
  SmtpMessage current;
  std::string auth;
  std::string line;
  while (!stopping_ && c.line(line)) {
    const std::string verb = upper(line.substr(0, line.find(' ')));
    if (verb == "EHLO") {
      current.helo = line.size() > 5 ? line.substr(5) : "";
      std::string reply = "250-fake.smtp.test\r\n250-8BITMIME\r\n";
      if (offer_auth) reply += "250-AUTH PLAIN\r\n";
      reply += "250 SIZE 10485760\r\n";
      if (!c.send(reply)) return;
    } else if (verb == "HELO") {
      current.helo = line.size() > 5 ? line.substr(5) : "";
      if (!c.send("250 fake.smtp.test\r\n")) return;
    } else if (verb == "AUTH") {
      auth = line;
      const std::string mech = upper(line.size() > 5 ? line.substr(5, 5) : "");
      if (mech.rfind("LOGIN", 0) == 0) {
        std::string user, pass;
        if (!c.send("334 VXNlcm5hbWU6\r\n") || !c.line(user)) return;
        if (!c.send("334 UGFzc3dvcmQ6\r\n") || !c.line(pass)) return;
        auth += " " + user + " " + pass;
      } else if (line.find(' ', 5) == std::string::npos) {
        std::string creds;
        if (!c.send("334 \r\n") || !c.line(creds)) return;
        auth += " " + creds;
      }
      if (!c.send("235 2.7.0 accepted\r\n")) return;
    } else if (verb == "MAIL") {
      current.mail_from = pathOf(line);
      current.rcpt_to.clear();
      if (!c.send("250 2.1.0 ok\r\n")) return;
    } else if (verb == "RCPT") {
      if (refuse_recipients) {
        if (!c.send("550 5.1.1 no such user\r\n")) return;
        continue;
      }
      current.rcpt_to.push_back(pathOf(line));
      if (!c.send("250 2.1.5 ok\r\n")) return;
    } else if (verb == "DATA") {
      if (!c.send("354 end with .\r\n")) return;
      std::string data;
      for (;;) {
        if (!c.line(line)) return;
        if (line == ".") break;
        if (!line.empty() && line[0] == '.') line.erase(0, 1);
        data += line + "\r\n";
      }
      if (refuse_data) {
        if (!c.send("554 5.7.1 rejected\r\n")) return;
        continue;
      }
      current.data = std::move(data);
      current.auth = auth;
      {
        std::lock_guard lock(mutex_);
        messages_.push_back(current);
      }
      arrived_.notify_all();
      if (!c.send("250 2.0.0 queued\r\n")) return;
    } else if (verb == "RSET") {
      current.mail_from.clear();
      current.rcpt_to.clear();
      if (!c.send("250 ok\r\n")) return;
    } else if (verb == "NOOP") {
      if (!c.send("250 ok\r\n")) return;
    } else if (verb == "QUIT") {
      c.send("221 bye\r\n");
      return;
    } else {
      if (!c.send("502 5.5.1 command not supported by this test server\r\n")) return;
    }
  }
}

}  // namespace certgate::testing
