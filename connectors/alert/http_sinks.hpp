#pragma once
// Alert sinks that POST JSON over HTTPS (ports/alert_sink.hpp), one exchange per send():
//
//  webhook    Standard Webhooks (https://www.standardwebhooks.com): headers webhook-id (the
//             alert id: the same on every retry), webhook-timestamp, webhook-signature
//             ("v1,<base64 HMAC-SHA256 of id.timestamp.body>"); body {"type":
//             "certgate.alert.<kind>", "timestamp", "data": <the alert document>}. Any 2xx is
//             delivered.
//  slack      a Slack incoming webhook: {"text": <fallback>, "blocks": [header, section,
//             fields, context]}. Success is 200 with the body "ok".
//  teams      a Teams Workflows webhook ("When a Teams webhook request is received"):
//             {"type": "message", "attachments": [{"contentType":
//             "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <an
//             Adaptive Card 1.4 with a title, the summary and a FactSet>}]}. Any 2xx.
//  pagerduty  PagerDuty Events API v2 (POST /v2/enqueue): {"routing_key", "event_action":
//             "trigger", "dedup_key": <the alert id>, "payload": {"summary", "source",
//             "severity", "timestamp", "component", "class", "custom_details"}}; a follow-up
//             (Alert::follows, a revocation verified) is {"event_action": "resolve",
//             "dedup_key": <the followed alert's id>}. 202 is delivered; 400 is Invalid.
//
// Status classes per http::classify (429 RateLimited with Retry-After, 5xx Transient, 400
// Invalid, 401/403 Auth). Errors name the sink ("alert sink NAME"), never its URL: Slack and
// Teams URLs carry a token, so they are secrets like the signing secret and the routing key,
// and are registered with the redactor given.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "ports/alert_sink.hpp"

namespace certgate::connectors::alert {

struct HttpSinkOptions {
  std::string name;          // the sink's name (errors, logs)
  std::string url;
  std::string secret;        // webhook: decoded signing key; pagerduty: routing key
  std::string source = "certgate";  // pagerduty payload.source
  std::string ca_file;
  std::shared_ptr<http::Redactor> redactor;  // secrets (url for slack/teams, keys) are added
};

// kind: "webhook" | "slack" | "teams" | "pagerduty"; nullptr for any other kind.
std::unique_ptr<ports::AlertSink> makeHttpSink(const std::string& kind, HttpSinkOptions options);

// The request bodies, exposed for tests and `certgate alerts test --dry-run` style checks.
std::string webhookBody(const ports::Alert& alert, core::Instant now);
std::string slackBody(const ports::Alert& alert);
std::string teamsBody(const ports::Alert& alert);
std::string pagerDutyBody(const ports::Alert& alert, const std::string& routing_key,
                          const std::string& source);

}  // namespace certgate::connectors::alert
