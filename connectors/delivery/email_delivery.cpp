#include "connectors/delivery/email_delivery.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <mutex>

#include "connectors/common/http_client.hpp"

namespace certgate::connectors::delivery {

using core::ErrorKind;
using core::makeError;

namespace {

CURLcode curlGlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return rc;
}

struct EasyFree {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

struct Upload {
  const std::string* text;
  std::size_t pos = 0;
};

std::size_t readUpload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* up = static_cast<Upload*>(user);
  const std::size_t room = size * count;
  const std::size_t n = std::min(room, up->text->size() - up->pos);
  std::memcpy(buffer, up->text->data() + up->pos, n);
  up->pos += n;
  return n;
}

std::string hostOf(const std::string& url) {
  const auto scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.find(':'));
}

// The address inside "Name <addr>", else the whole value.
std::string envelopeAddress(const std::string& value) {
  const auto open = value.rfind('<');
  const auto close = value.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open)
    return value.substr(open + 1, close - open - 1);
  return value;
}

bool hasLineBreak(const std::string& s) {
  return s.find_first_of("\r\n") != std::string::npos;
}

std::string rfc5322Date(core::Instant t) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = static_cast<std::time_t>(t.time_since_epoch().count());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

// A header value as RFC 2047 UTF-8 base64 when it is not plain printable ASCII.
std::string headerText(const std::string& value) {
  const bool plain = std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  return plain ? value : "=?UTF-8?B?" + base64(value) + "?=";
}

std::string randomHex(std::size_t n) {
  std::string raw(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) != 1)
    return std::to_string(std::time(nullptr));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::string domainOf(const std::string& address) {
  const auto at = address.rfind('@');
  return at == std::string::npos ? "certgate.invalid" : address.substr(at + 1);
}

}  // namespace

MailMessage plainTextMail(const std::string& from, const std::vector<std::string>& to,
                          const std::string& subject, const std::string& body, core::Instant now,
                          const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string text;
  text += "Date: " + rfc5322Date(now) + "\r\n";
  text += "Message-ID: <" + randomHex(16) + "@" + domainOf(envelopeAddress(from)) + ">\r\n";
  text += "From: " + from + "\r\n";
  std::string rcpt;
  for (const auto& t : to) rcpt += (rcpt.empty() ? "<" : ", <") + t + ">";
  text += "To: " + rcpt + "\r\n";
  text += "Subject: " + headerText(subject) + "\r\n";
  for (const auto& [name, value] : extra_headers) text += name + ": " + headerText(value) + "\r\n";
  text += "MIME-Version: 1.0\r\n";
  text += "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Transfer-Encoding: 8bit\r\n";
  text += "Auto-Submitted: auto-generated\r\n";
  text += "\r\n";
  text += body;
  return MailMessage{from, to, std::move(text)};
}

bool isLoopbackMailUrl(const std::string& url) {
  const std::string host = hostOf(url);
  return host == "127.0.0.1" || host == "::1" || host == "localhost";
}

core::Status sendMail(const SmtpOptions& options, const MailMessage& message) {
  const std::string where = "SMTP " + hostOf(options.url);
  if (curlGlobalInit() != CURLE_OK)
    return makeError(ErrorKind::Internal, "curl_global_init failed", where);
  std::unique_ptr<CURL, EasyFree> h(curl_easy_init());
  if (!h) return makeError(ErrorKind::Internal, "curl_easy_init failed", where);
  std::unique_ptr<curl_slist, SlistFree> rcpt;
  for (const auto& to : message.to) {
    curl_slist* next = curl_slist_append(rcpt.get(), to.c_str());
    if (!next) return makeError(ErrorKind::Internal, "out of memory", where);
    static_cast<void>(rcpt.release());
    rcpt.reset(next);
  }
  const bool smtps = options.url.rfind("smtps://", 0) == 0;
  const bool loopback = isLoopbackMailUrl(options.url);
  const std::string envelope_from = "<" + envelopeAddress(message.from) + ">";
  Upload upload{&message.text, 0};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, options.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_USE_SSL,
                   static_cast<long>(smtps || !loopback ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  if (!options.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, options.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, options.password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, envelope_from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, &readUpload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.text.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<std::int64_t>(options.timeout.count(), 10'000)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return {};
  long smtp_code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &smtp_code);
  std::string detail = curl_easy_strerror(rc);
  if (errbuf[0] != '\0') detail += std::string(" (") + errbuf + ")";
  if (smtp_code > 0) detail += ", last SMTP reply " + std::to_string(smtp_code);
  switch (rc) {
    case CURLE_USE_SSL_FAILED:
      return makeError(ErrorKind::Permanent, "the SMTP server does not offer STARTTLS: " + detail,
                       where, "use a server that offers STARTTLS, or smtps://");
    case CURLE_LOGIN_DENIED:
      return makeError(ErrorKind::Auth, "the SMTP server refused the login: " + detail, where,
                       "check delivery.email.username and password");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      // A 5xx reply is final; a dropped connection or 4xx may succeed later.
      if (smtp_code >= 500)
        return makeError(ErrorKind::Permanent, "the SMTP server refused the message: " + detail,
                         where, "check the sender (delivery.email.from) and the recipient");
      return makeError(ErrorKind::Transient, "sending the message failed: " + detail, where);
    default:
      if (smtp_code >= 500)
        return makeError(ErrorKind::Permanent, "the SMTP server refused the message: " + detail,
                         where, "check the sender (delivery.email.from) and the recipient");
      return makeError(http::transportErrorKind(static_cast<int>(rc)),
                       "sending the message failed: " + detail, where);
  }
}

EmailDelivery::EmailDelivery(EmailOptions options, store::Store& store)
    : options_(std::move(options)), box_(store, options_.key, options_.pickup_ttl) {
  OPENSSL_cleanse(options_.key.data(), options_.key.size());
  options_.key.clear();
  while (!options_.pickup_base_url.empty() && options_.pickup_base_url.back() == '/')
    options_.pickup_base_url.pop_back();
}

core::Status EmailDelivery::deliver(const ports::SecretParcel& parcel, core::Instant now) {
  const std::string who = "person " + parcel.person_key;
  if (parcel.email.empty())
    return makeError(ErrorKind::Permanent, "has no email address: the pickup link cannot be sent",
                     who, "add the person's email in the directory or roster, or deliver this "
                          "grant's tokens by webhook");
  if (hasLineBreak(parcel.email) || parcel.email.find('@') == std::string::npos)
    return makeError(ErrorKind::Permanent, "the email address is not usable", who,
                     "fix the person's email in the directory or roster");
  static_cast<void>(box_.purge(now));
  auto ticket = box_.seal(parcel.person_key, parcel.delivery_id, parcel.secret, now,
                          parcel.expires_at);
  if (!ticket) return ticket.error();

  const std::string subject =
      options_.subject.empty()
          ? "Your new API token (" + parcel.gateway + " " + parcel.scope + ")"
          : options_.subject;
  const std::string link = options_.pickup_base_url + "/pickup/" + ticket->id;
  std::string text;
  text += "Hello,\r\n\r\n";
  text += "certgate issued a new API token for you (gateway " + parcel.gateway + ", scope " +
          parcel.scope + ", track " + parcel.track + ").\r\n\r\n";
  text += "Pick it up here, once, before " + core::formatIso(ticket->expires_at) + ":\r\n\r\n";
  text += "  " + link + "\r\n\r\n";
  text += "The page shows the token after you press its button. The link works only once:\r\n";
  text += "copy the token into your password manager or tool right away. If the link has\r\n";
  text += "expired or was used by someone else, tell your administrator: the token can be\r\n";
  text += "revoked and a new one issued.\r\n";

  MailMessage message = plainTextMail(options_.smtp.from, {parcel.email}, subject, text, now);
  OPENSSL_cleanse(text.data(), text.size());
  auto sent = sendMail(options_.smtp, message);
  OPENSSL_cleanse(message.text.data(), message.text.size());
  if (!sent) {
    static_cast<void>(box_.discard(ticket->id, now));
    core::Error e = sent.error();
    e.message = "sending the pickup link to " + parcel.person_key + " failed: " + e.message;
    return e;
  }
  ++sent_;
  return {};
}

}  // namespace certgate::connectors::delivery
