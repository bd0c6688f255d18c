#pragma once
// Redaction of secrets in text that may reach a log, an error message or a run record.
//
// Two layers: fixed patterns (credential headers, bearer-style tokens, secret query/form
// parameters, secret JSON members), and exact values registered with Redactor::add (the values
// read from secret files / systemd credentials), masked wherever they appear.
// Masked text is replaced by kRedacted; the names around it (header, parameter, JSON key) stay
// so that the message remains useful.

#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace certgate::connectors::http {

inline constexpr std::string_view kRedacted = "[redacted]";

// Pattern-based redaction only. Pure; thread-safe.
//   Authorization / Proxy-Authorization / Cookie / Set-Cookie / X-Api-Key header values,
//   "Bearer x", "Basic x", "SSWS x",
//   tokens in a recognisable format: certgate's own "cgt_..." and "sk-..." keys (16+ characters),
//   access_token / refresh_token / id_token / client_secret / client_assertion / password /
//   api_key / wstoken (Moodle) parameters in query strings and form bodies,
//   JSON members "access_token", "refresh_token", "id_token", "client_secret",
//   "client_assertion", "password", "key", "api_key", "token" with string values.
std::string redact(std::string_view text);

// Patterns plus known secret values. add() may be called concurrently with redact().
class Redactor {
 public:
  // Masks `secret` (and its percent-encoded form) anywhere. Empty secrets are ignored.
  void add(std::string secret);
  std::string redact(std::string_view text) const;

 private:
  mutable std::shared_mutex mutex_;
  std::vector<std::string> secrets_;  // longest first, so a secret containing another wins
};

}  // namespace certgate::connectors::http
