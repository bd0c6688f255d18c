#pragma once
// The alert sink port: hands one alert to one receiver (a webhook, Slack, Teams, PagerDuty,
// email, syslog). Implementations live in connectors/alert; the engine's dispatcher
// (engine/alerts.hpp) decides when to call, retries and gives up.
//
// Contract:
//  - send() makes one attempt (no retries of its own) and returns within `timeout`.
//  - The same alert may be sent more than once (a lost answer is retried): receivers deduplicate
//    on Alert::id, which every sink carries (webhook-id, PagerDuty dedup_key, syslog
//    structured data, an email header).
//  - Errors are classified: Transient (cannot connect, timeout, 5xx), RateLimited (429, with
//    retry_after_s when the receiver said so), Invalid (the receiver refused the payload, 400:
//    retrying the same payload cannot succeed), Auth (401/403), Permanent/NotFound (other 4xx).
//  - Secrets (webhook URLs that carry a token, routing keys, signing secrets, passwords) are
//    never in an error message: messages name the sink, not its URL.
//  - Constructors do no I/O. Not thread-safe.

#include <chrono>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::ports {

// One alert as rendered by the engine: the fields every sink needs, plus the whole document.
struct Alert {
  std::string id;          // the dedup id: stable per origin, the same on every retry and sink
  std::string kind;        // "revocation", "plan.held", "connector.quarantined" ...
  std::string severity;    // info | warning | error | critical
  std::string title;       // short, one line ("Access revoked: E3 from okta/AI Users")
  std::string summary;     // one line: who, what, why (<= 1024 characters)
  core::Instant occurred_at{};  // when it happened (the audit row's time)
  // For a follow-up (a token revocation verified): the id of the alert it follows up, so that
  // receivers that track incidents (PagerDuty) can resolve it; "" otherwise.
  std::string follows;
  std::string document_json;  // the alert document (docs/operations.md, "Alerts"): never secrets
  // A message addressed to people rather than to a channel (a reminder): the email sink sends
  // it to `to` (and `cc`) instead of its configured addresses, with `text` as the body.
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::string text;  // a plain-text body written for people ("" = the sink renders the facts)
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual const char* kind() const = 0;  // "webhook", "slack" ...
  virtual core::Status send(const Alert& alert, core::Instant now,
                            std::chrono::milliseconds timeout) = 0;
};

}  // namespace certgate::ports
