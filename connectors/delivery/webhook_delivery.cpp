#include "connectors/delivery/webhook_delivery.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "connectors/common/webhook_signature.hpp"

namespace certgate::connectors::delivery {

WebhookDelivery::WebhookDelivery(WebhookOptions options)
    : options_(std::move(options)), client_(std::make_unique<http::Client>(options_.client)) {}

core::Status WebhookDelivery::deliver(const ports::SecretParcel& parcel, core::Instant now) {
  nlohmann::json data{{"person", parcel.person_key}, {"email", parcel.email},
                      {"track", parcel.track},       {"gateway", parcel.gateway},
                      {"scope", parcel.scope},       {"token_id", parcel.token_id},
                      {"token", parcel.secret}};
  data["expires_at"] =
      parcel.expires_at ? nlohmann::json(core::formatIso(*parcel.expires_at)) : nlohmann::json();
  nlohmann::json body{{"type", "certgate.token.issued"},
                      {"timestamp", core::formatIso(now)},
                      {"data", std::move(data)}};
  http::Request req;
  req.method = http::Method::Post;
  req.url = options_.url;
  req.body = body.dump();
  req.idempotent = true;  // the receiver keeps one message per webhook-id
  const std::int64_t ts =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  req.headers.add("content-type", "application/json");
  req.headers.add("webhook-id", parcel.delivery_id);
  req.headers.add("webhook-timestamp", std::to_string(ts));
  req.headers.add("webhook-signature", webhook::sign(options_.key, parcel.delivery_id, ts, req.body));
  auto resp = client_->sendWithRetry(req, options_.retry);
  std::fill(req.body.begin(), req.body.end(), '\0');
  ++requests_;
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status > 299) {
    auto st = http::classify(*resp, "POST " + options_.url);
    if (!st) return st.error();
    return core::makeError(core::ErrorKind::Permanent,
                           "the delivery endpoint answered " + std::to_string(resp->status),
                           options_.url, "a 2xx answer is required");
  }
  return {};
}

}  // namespace certgate::connectors::delivery
