#pragma once
// Token secret delivery by webhook: one signed POST per new token to a configured HTTPS endpoint
// (a secrets vault, an onboarding service), in the Standard Webhooks style.
//
//   POST <url>
//   content-type: application/json
//   webhook-id: <the token's alias>          (stable: a retry carries the same id)
//   webhook-timestamp: <unix seconds>
//   webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>
//   {"type": "certgate.token.issued", "timestamp": "...", "data": {"person": ..., "email": ...,
//    "track": ..., "gateway": ..., "scope": ..., "token_id": ..., "token": "<the secret>",
//    "expires_at": ...}}
//
// Any 2xx is delivered. The secret is in the body only: never in the URL, a header, a log line
// or an error message.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "ports/secret_delivery.hpp"

namespace certgate::connectors::delivery {

struct WebhookOptions {
  std::string url;
  std::string key;  // the decoded signing key (webhook::decodeSecret)
  http::ClientOptions client;
  http::RetryPolicy retry;
};

class WebhookDelivery final : public ports::SecretDelivery {
 public:
  explicit WebhookDelivery(WebhookOptions options);
  const char* method() const override { return "webhook"; }
  core::Status deliver(const ports::SecretParcel& parcel, core::Instant now) override;
  std::uint64_t requestCount() const { return requests_; }

 private:
  WebhookOptions options_;
  std::unique_ptr<http::Client> client_;
  std::uint64_t requests_ = 0;
};

}  // namespace certgate::connectors::delivery
