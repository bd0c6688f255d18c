#pragma once
// Alert sink `email`: one plain-text message per alert over SMTP (libcurl, via
// connectors/delivery's sendMail: smtps://, or smtp:// with STARTTLS required off loopback) to
// the configured addresses. Subject "[certgate <severity>] <title>"; the header
// X-Certgate-Alert-Id carries the alert id (the same on a retry) for mail filters and
// deduplication. Errors name the sink and the SMTP host, never the password.

#include <memory>
#include <string>
#include <vector>

#include "connectors/delivery/email_delivery.hpp"
#include "ports/alert_sink.hpp"

namespace certgate::connectors::alert {

struct EmailSinkOptions {
  std::string name;
  delivery::SmtpOptions smtp;    // timeout is replaced by send()'s
  std::vector<std::string> to;
};

class EmailSink final : public ports::AlertSink {
 public:
  explicit EmailSink(EmailSinkOptions options) : options_(std::move(options)) {}
  const char* kind() const override { return "email"; }
  core::Status send(const ports::Alert& alert, core::Instant now,
                    std::chrono::milliseconds timeout) override;

 private:
  EmailSinkOptions options_;
};

// The message text of an alert (tests).
delivery::MailMessage alertMail(const ports::Alert& alert, const std::string& from,
                                const std::vector<std::string>& to, core::Instant now);

}  // namespace certgate::connectors::alert
