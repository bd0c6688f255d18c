#include "connectors/alert/syslog_sink.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

namespace certgate::connectors::alert {

namespace {

using core::ErrorKind;
using core::makeError;

int severityCode(const std::string& s) {
  if (s == "critical") return 2;
  if (s == "error") return 3;
  if (s == "warning") return 4;
  return 6;
}

// PRINTUSASCII without spaces, at most `n` characters; "-" when empty.
std::string token(const std::string& s, std::size_t n) {
  std::string out;
  for (char c : s)
    if (c > 32 && c < 127 && out.size() < n) out += c;
  return out.empty() ? "-" : out;
}

std::string sdValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += (c == '\r' || c == '\n') ? ' ' : c;
  }
  return out;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct AddrFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};

// Waits until `fd` is ready for `events` or the deadline passes.
bool waitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

SyslogSink::SyslogSink(SyslogSinkOptions options) : options_(std::move(options)) {
  if (options_.hostname.empty()) {
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) == 0) options_.hostname = host;
  }
}

std::string syslogMessage(const ports::Alert& alert, const SyslogSinkOptions& options,
                          long procid) {
  const auto doc = nlohmann::json::parse(alert.document_json, nullptr, false);
  std::string person, evidence;
  if (doc.is_object()) {
    if (auto p = doc.find("person"); p != doc.end() && p->is_object()) person = p->value("key", "");
    if (auto e = doc.find("evidence"); e != doc.end() && e->is_object()) {
      for (const auto& [k, v] : e->items()) {
        if (k == "actor" || k == "action") continue;
        if (!evidence.empty()) evidence += " ";
        evidence += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
  }
  const int pri = options.facility * 8 + severityCode(alert.severity);
  std::string sd = "[certgate@32473 id=\"" + sdValue(alert.id) + "\" kind=\"" +
                   sdValue(alert.kind) + "\" severity=\"" + sdValue(alert.severity) + "\"";
  if (!person.empty()) sd += " person=\"" + sdValue(person) + "\"";
  if (!evidence.empty()) sd += " evidence=\"" + sdValue(evidence) + "\"";
  if (!alert.follows.empty()) sd += " follows=\"" + sdValue(alert.follows) + "\"";
  sd += "]";
  std::string msg = alert.title + ": " + alert.summary;
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return "<" + std::to_string(pri) + ">1 " + core::formatIso(alert.occurred_at) + " " +
         token(options.hostname, 255) + " " + token(options.app_name, 48) + " " +
         std::to_string(procid) + " " + token(alert.kind, 32) + " " + sd + " \xEF\xBB\xBF" + msg;
}

core::Status SyslogSink::send(const ports::Alert& alert, core::Instant /*now*/,
                              std::chrono::milliseconds timeout) {
  const std::string where = "alert sink " + options_.name + " (" + options_.address + ")";
  const bool tcp = options_.address.rfind("tcp://", 0) == 0;
  const std::string rest = options_.address.substr(6);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos)
    return makeError(ErrorKind::Invalid, "the address has no port", where);
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port = rest.substr(colon + 1);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
  addrinfo* raw = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &raw); rc != 0)
    return makeError(ErrorKind::Transient, std::string("cannot resolve the host: ") + gai_strerror(rc),
                     where);
  std::unique_ptr<addrinfo, AddrFree> addrs(raw);
  const std::string message = syslogMessage(alert, options_, static_cast<long>(::getpid()));
  const std::string wire = tcp ? std::to_string(message.size()) + " " + message : message;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    Fd s;
    s.fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s.fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    if (::connect(s.fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = std::strerror(errno);
        continue;
      }
      if (!waitFor(s.fd, POLLOUT, deadline)) {
        last = "connect timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = std::strerror(err);
        continue;
      }
    }
    std::size_t sent = 0;
    bool failed = false;
    while (sent < wire.size()) {
      const ssize_t n = ::send(s.fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (waitFor(s.fd, POLLOUT, deadline)) continue;
        last = "send timed out";
      } else {
        last = std::strerror(errno);
      }
      failed = true;
      break;
    }
    if (failed) continue;
    if (tcp) ::shutdown(s.fd, SHUT_WR);
    return {};
  }
  return makeError(ErrorKind::Transient, "sending to the syslog receiver failed: " + last, where,
                   "check that the receiver listens on " + options_.address);
}

}  // namespace certgate::connectors::alert
