#pragma once
// Token secret delivery by email with a single-use pickup link (delivery: email).
//
// deliver() seals the secret in the store (PickupBox: AES-256-GCM, never plaintext) and sends
// the person one plain-text message over SMTP (libcurl) with the link
//
//   <pickup_base_url>/pickup/<id>
//
// and when it expires. The message never contains the secret; certgate serve answers the link
// (pickup_endpoint.hpp). Expired pickups are purged at every delivery.
//
// Contract:
//  - smtp:// is sent with STARTTLS required (CURLUSESSL_ALL), except to a loopback host
//    (127.0.0.1, ::1, localhost), where STARTTLS is used when offered; smtps:// is TLS from the
//    start. Certificate verification is always on (ca_file replaces the system CAs).
//  - A person without an email, an address with a line break, a refused or failed SMTP exchange:
//    an error (the pickup is wiped first), so the engine revokes the token it cannot deliver.
//    SMTP failures are classified: cannot connect / timeout -> Transient, login refused -> Auth,
//    no STARTTLS -> Permanent, recipient refused -> Permanent.
//  - Errors name the SMTP server and the person, never the secret or the pickup link.
//  - Not thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "connectors/delivery/pickup_box.hpp"
#include "ports/secret_delivery.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors::delivery {

struct SmtpOptions {
  std::string url;       // smtp://host[:port] or smtps://host[:port]
  std::string from;      // the envelope and header sender, an address
  std::string username;  // empty: no AUTH
  std::string password;
  std::string ca_file;
  std::chrono::milliseconds timeout{30'000};
};

// One message to send: envelope and the full RFC 5322 text (CRLF line ends).
struct MailMessage {
  std::string from;
  std::vector<std::string> to;
  std::string text;
};

// Sends `message` with libcurl. See the classification above.
core::Status sendMail(const SmtpOptions& options, const MailMessage& message);

// A plain-text UTF-8 message (RFC 5322, CRLF line ends) with Date, Message-ID, From, To,
// Subject (RFC 2047 encoded when not ASCII), MIME headers, Auto-Submitted and `extra_headers`;
// `body` uses CRLF line ends. The envelope is `from`'s address and `to`.
MailMessage plainTextMail(const std::string& from, const std::vector<std::string>& to,
                          const std::string& subject, const std::string& body, core::Instant now,
                          const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

// True when the smtp:// or smtps:// URL names a loopback host.
bool isLoopbackMailUrl(const std::string& url);

struct EmailOptions {
  SmtpOptions smtp;
  std::string pickup_base_url;          // e.g. https://certgate.example.org (no trailing /)
  core::Seconds pickup_ttl{86400};
  std::string subject;                  // empty: "Your new API token (<gateway> <scope>)"
  std::string key;                      // the decoded 32-byte encryption key
};

class EmailDelivery final : public ports::SecretDelivery {
 public:
  // The store must outlive the delivery.
  EmailDelivery(EmailOptions options, store::Store& store);
  const char* method() const override { return "email"; }
  core::Status deliver(const ports::SecretParcel& parcel, core::Instant now) override;
  std::uint64_t messagesSent() const { return sent_; }

 private:
  EmailOptions options_;
  PickupBox box_;
  std::uint64_t sent_ = 0;
};

}  // namespace certgate::connectors::delivery
