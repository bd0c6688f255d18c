#include "connectors/alert/email_sink.hpp"

#include <algorithm>

#include "connectors/alert/alert_text.hpp"

namespace certgate::connectors::alert {

namespace {

// One line: a value never breaks the message's header or line structure.
std::string oneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\r', ' ');
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

delivery::MailMessage alertMail(const ports::Alert& alert, const std::string& from,
                                const std::vector<std::string>& to, core::Instant now) {
  std::string body = oneLine(alert.summary) + "\r\n\r\n";
  for (const auto& [label, value] : alertFacts(alert))
    body += label + ": " + oneLine(value) + "\r\n";
  body += "\r\nThe full alert (JSON):\r\n" + oneLine(alert.document_json) + "\r\n";
  return delivery::plainTextMail(from, to,
                                 "[certgate " + alert.severity + "] " + oneLine(alert.title), body,
                                 now, {{"X-Certgate-Alert-Id", oneLine(alert.id)}});
}

core::Status EmailSink::send(const ports::Alert& alert, core::Instant now,
                             std::chrono::milliseconds timeout) {
  delivery::SmtpOptions smtp = options_.smtp;
  smtp.timeout = timeout;
  auto sent = delivery::sendMail(smtp, alertMail(alert, smtp.from, options_.to, now));
  if (sent) return {};
  core::Error e = sent.error();
  e.where = "alert sink " + options_.name + " (" + e.where + ")";
  // Only the failure class and SMTP detail: the password is never part of them.
  if (e.kind == core::ErrorKind::Auth) e.hint = "check the sink's username and password";
  return e;
}

}  // namespace certgate::connectors::alert
