#pragma once
// Alert sink `syslog`: one RFC 5424 message per alert, over UDP (one datagram) or TCP (octet
// counting, RFC 6587 section 3.4.1: "<length> <message>", a new connection per alert):
//
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [certgate@32473 id="..." kind="..."
//   severity="..." person="..." evidence="..." follows="..."] BOM summary
//
// PRI = facility * 8 + severity (critical 2, error 3, warning 4, info 6). MSGID is the alert
// kind (at most 32 characters). 32473 is the private enterprise number RFC 5612 reserves for
// documentation and examples; SIEM rules match on the SD-ID "certgate@32473". Parameter values
// escape '"', '\' and ']' (RFC 5424 section 6.3.3). TCP failures (refused, timeout) are
// Transient; UDP is fire-and-forget, as syslog over UDP always is.

#include <string>

#include "ports/alert_sink.hpp"

namespace certgate::connectors::alert {

struct SyslogSinkOptions {
  std::string name;
  std::string address;       // udp://HOST:PORT or tcp://HOST:PORT
  int facility = 4;          // auth
  std::string app_name = "certgate";
  std::string hostname;      // "" = gethostname()
};

class SyslogSink final : public ports::AlertSink {
 public:
  explicit SyslogSink(SyslogSinkOptions options);
  const char* kind() const override { return "syslog"; }
  core::Status send(const ports::Alert& alert, core::Instant now,
                    std::chrono::milliseconds timeout) override;

 private:
  SyslogSinkOptions options_;
};

// The RFC 5424 message for an alert (without TCP framing).
std::string syslogMessage(const ports::Alert& alert, const SyslogSinkOptions& options,
                          long procid);

}  // namespace certgate::connectors::alert
