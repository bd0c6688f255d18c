#pragma once
// The secret delivery port: hands a newly issued token's secret to its person, once.
//
// Contract:
//  - deliver() is called at most once per issued token, right after the gateway minted it and
//    certgate recorded its digest. The secret lives only in memory for the duration of the call.
//  - Implementations never log, store or put the secret in an error message.
//  - `delivery_id` is stable for the token (its alias): a receiver that sees it twice (a retry)
//    keeps one.
//  - Errors are classified with core::ErrorKind. A failed delivery leaves a token nobody holds:
//    the caller revokes it, and the next plan issues a fresh one.

#include <optional>
#include <string>

#include "core/result.hpp"
#include "core/time.hpp"

namespace certgate::ports {

struct SecretParcel {
  std::string delivery_id;  // the token's alias
  std::string person_key;
  std::string email;        // the person's email, when known
  std::string track;
  std::string gateway;
  std::string scope;
  std::string token_id;     // the gateway's id (never the secret)
  std::string secret;       // shown once
  std::optional<core::Instant> expires_at;
};

class SecretDelivery {
 public:
  virtual ~SecretDelivery() = default;
  virtual const char* method() const = 0;  // "webhook", "email"
  virtual core::Status deliver(const SecretParcel& parcel, core::Instant now) = 0;
};

}  // namespace certgate::ports
