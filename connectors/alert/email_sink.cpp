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

// CRLF line ends (RFC 5322 section 2.3) whatever the text used, ending with one.
std::string crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16 + 2);
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n')
      out += "\r\n";
    else
      out += c;
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

}  // namespace

delivery::MailMessage alertMail(const ports::Alert& alert, const std::string& from,
                                const std::vector<std::string>& to, core::Instant now) {
  std::vector<std::pair<std::string, std::string>> headers{
      {"X-Certgate-Alert-Id", oneLine(alert.id)}};
  if (!alert.to.empty()) {
    // A message for people (a reminder): to them, in words, without the JSON document.
    std::string cc;
    for (const auto& c : alert.cc) cc += (cc.empty() ? "<" : ", <") + oneLine(c) + ">";
    if (!cc.empty()) headers.emplace_back("Cc", cc);
    auto message = delivery::plainTextMail(from, alert.to, oneLine(alert.title),
                                           crlf(alert.text.empty() ? alert.summary : alert.text),
                                           now, headers);
    message.to.insert(message.to.end(), alert.cc.begin(), alert.cc.end());  // the envelope
    return message;
  }
  std::string body;
  if (!alert.text.empty()) {
    // The alert wrote its own text (the expiring-soon digest): that is the body.
    body = crlf(alert.text);
  } else {
    body = oneLine(alert.summary) + "\r\n\r\n";
    for (const auto& [label, value] : alertFacts(alert))
      body += label + ": " + oneLine(value) + "\r\n";
    body += "\r\nThe full alert (JSON):\r\n" + oneLine(alert.document_json) + "\r\n";
  }
  return delivery::plainTextMail(from, to,
                                 "[certgate " + alert.severity + "] " + oneLine(alert.title), body,
                                 now, headers);
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
