#pragma once
// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"):
//
//   webhook-id:        a unique, stable id of the message (a retry sends the same id)
//   webhook-timestamp: unix seconds
//   webhook-signature: "v1," base64(HMAC-SHA256(key, id "." timestamp "." body))
//
// The key is the base64 secret, optionally prefixed "whsec_". Used to sign what certgate sends
// (token secret delivery, alert webhooks) and to check what it receives (LMS pushes).

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace certgate::connectors::webhook {

// Decodes a "whsec_<base64>" or plain base64 secret. Invalid when it is not base64 or empty.
core::Result<std::string> decodeSecret(std::string_view secret);

// "v1,<base64 signature>" for the message.
std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body);

// True when any space-separated "v1,<sig>" entry of `header` matches, compared in constant time.
bool verify(std::string_view key, std::string_view id, std::int64_t timestamp,
            std::string_view body, std::string_view header);

}  // namespace certgate::connectors::webhook
