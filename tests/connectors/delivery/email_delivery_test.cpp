// Token secret delivery by email: the sealed pickup, the message with its link, the pickup
// endpoint on certgate's HTTP server, and `certgate serve` mounting it.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <regex>
#include <vector>

#include "cli/serve_command.hpp"
#include "connectors/delivery/email_delivery.hpp"
#include "connectors/delivery/pickup_box.hpp"
#include "connectors/delivery/pickup_endpoint.hpp"
#include "delivery_test_support.hpp"
#include "fakes/smtp/smtp_fake.hpp"
#include "http/server.hpp"
#include "store/store.hpp"

namespace certgate::connectors::delivery {
namespace {

using testing::SmtpFake;
using testing::delivery::at;
using testing::delivery::kKeyBase64;
using testing::delivery::kOtherKeyBase64;
using testing::delivery::kStart;
using testing::delivery::openStore;
using testing::delivery::TempDir;
using testing::delivery::TestClock;

constexpr const char* kCanary = "sk-CANARY-5f1e2d3c4b5a69788796a5b4c3d2e1f0";

std::string keyOf(const char* base64) {
  auto key = decodePickupKey(base64);
  REQUIRE(key.ok());
  return *key;
}

ports::SecretParcel parcel() {
  ports::SecretParcel p;
  p.delivery_id = "tok-alice-genai-1";
  p.person_key = "E100";
  p.email = "alice@example.org";
  p.track = "GENAI_USER";
  p.gateway = "litellm";
  p.scope = "genai-basic";
  p.token_id = "key-123";
  p.secret = kCanary;
  p.expires_at = at(kStart + 90 * 86400);
  return p;
}

EmailOptions emailOptions(const SmtpFake& smtp) {
  EmailOptions o;
  o.smtp.url = smtp.url();
  o.smtp.from = "certgate <certgate@example.org>";
  o.smtp.timeout = std::chrono::milliseconds(10'000);
  o.pickup_base_url = "https://certgate.example.org/";
  o.pickup_ttl = core::Seconds{86400};
  o.key = keyOf(kKeyBase64);
  return o;
}

// The pickup id in a message's link, "" when there is none.
std::string linkId(const std::string& data) {
  std::smatch m;
  static const std::regex link(R"(https://certgate\.example\.org/pickup/([A-Za-z0-9_-]{22})\r\n)");
  return std::regex_search(data, m, link) ? m[1].str() : std::string{};
}

std::string headerOf(const std::string& data, const std::string& name) {
  const auto end = data.find("\r\n\r\n");
  std::size_t pos = 0;
  while (pos < end) {
    const auto eol = data.find("\r\n", pos);
    const std::string line = data.substr(pos, eol - pos);
    if (line.rfind(name + ": ", 0) == 0) return line.substr(name.size() + 2);
    pos = eol + 2;
  }
  return {};
}

// A server with the pickup endpoint over its own store connection.
struct PickupServer {
  std::unique_ptr<PickupEndpoint> endpoint;
  certgate::http::Server server;
  std::vector<std::string> log;
  std::mutex log_mutex;

  PickupServer(const std::string& store_path, const std::string& key,
               std::shared_ptr<const ports::Clock> clock)
      : server([this] {
          certgate::http::ServerOptions o;
          o.listen = "127.0.0.1:0";
          o.threads = 2;
          o.log = [this](std::string_view line) { note(line); };
          return o;
        }()) {
    PickupEndpointOptions po;
    po.key = key;
    po.clock = std::move(clock);
    po.log = [this](std::string_view line) { note(line); };
    endpoint = std::make_unique<PickupEndpoint>(openStore(store_path), std::move(po));
    endpoint->mount(server);
    auto started = server.start();
    REQUIRE(started.ok());
  }
  ~PickupServer() { server.stop(); }
  void note(std::string_view line) {
    std::lock_guard lock(log_mutex);
    log.emplace_back(line);
  }
  std::string allLog() {
    std::lock_guard lock(log_mutex);
    std::string out;
    for (const auto& l : log) out += l + "\n";
    return out;
  }
  httplib::Client client() const { return httplib::Client("127.0.0.1", server.port()); }
};

TEST_CASE("The email carries a single-use pickup link and never the secret", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto store = openStore(dir.file("certgate.db"));
  EmailOptions o = emailOptions(smtp);
  o.subject = "Dein neues Token \xc3\xbc";
  EmailDelivery email(std::move(o), *store);
  CHECK(std::string(email.method()) == "email");

  auto sent = email.deliver(parcel(), at(kStart));
  INFO((sent.ok() ? std::string() : sent.error().describe()));
  REQUIRE(sent.ok());
  CHECK(email.messagesSent() == 1);
  REQUIRE(smtp.waitFor(1) == 1);
  const testing::SmtpMessage m = smtp.messages().at(0);
  CHECK(m.mail_from == "certgate@example.org");
  CHECK(m.rcpt_to == std::vector<std::string>{"alice@example.org"});
  CHECK(m.data.find(kCanary) == std::string::npos);
  CHECK(m.data.find("sk-CANARY") == std::string::npos);
  CHECK(headerOf(m.data, "From") == "certgate <certgate@example.org>");
  CHECK(headerOf(m.data, "To") == "<alice@example.org>");
  CHECK(headerOf(m.data, "Date") == "Fri, 15 Jan 2027 08:00:00 +0000");
  CHECK(std::regex_match(headerOf(m.data, "Message-ID"),
                         std::regex(R"(<[0-9a-f]{32}@example\.org>)")));
  CHECK(headerOf(m.data, "Subject").rfind("=?UTF-8?B?", 0) == 0);
  const std::string id = linkId(m.data);
  REQUIRE(isPickupId(id));
  CHECK(m.data.find("before 2027-01-16T08:00:00Z") != std::string::npos);

  auto row = store->pickup(id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->person == "E100");
  CHECK((*row)->token_alias == "tok-alice-genai-1");
  CHECK((*row)->nonce.size() == 12);
  CHECK((*row)->ciphertext.size() == std::string(kCanary).size() + 16);
  CHECK((*row)->ciphertext.find("CANARY") == std::string::npos);
  CHECK((*row)->expires_at == at(kStart + 86400));
  CHECK_FALSE((*row)->fetched_at);
  store.reset();
  CHECK(dir.allBytes().find("CANARY") == std::string::npos);
}

TEST_CASE("GET shows a button and consumes nothing — POST hands the secret out exactly once",
          "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto clock = std::make_shared<TestClock>();
  auto store = openStore(dir.file("certgate.db"));
  EmailDelivery email(emailOptions(smtp), *store);
  REQUIRE(email.deliver(parcel(), clock->now()).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string id = linkId(smtp.messages().at(0).data);
  REQUIRE(isPickupId(id));

  PickupServer ps(dir.file("certgate.db"), keyOf(kKeyBase64), clock);
  auto cli = ps.client();
  const std::string path = std::string(kPickupPrefix) + id;
  for (int i = 0; i < 2; ++i) {  // a mail scanner and then the person
    auto page = cli.Get(path);
    REQUIRE(page);
    CHECK(page->status == 200);
    CHECK(page->get_header_value("Content-Type").rfind("text/html", 0) == 0);
    CHECK(page->body.find("<form method=\"post\">") != std::string::npos);
    CHECK(page->body.find("CANARY") == std::string::npos);
    CHECK(page->get_header_value("Cache-Control") == "no-store");
  }
  auto head = cli.Head(path);
  REQUIRE(head);
  CHECK(head->status == 200);

  auto taken = cli.Post(path, "", "application/x-www-form-urlencoded");
  REQUIRE(taken);
  CHECK(taken->status == 200);
  CHECK(taken->body == std::string(kCanary) + "\n");
  CHECK(taken->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  CHECK(taken->get_header_value("Cache-Control") == "no-store");
  CHECK(taken->get_header_value("Referrer-Policy") == "no-referrer");
  CHECK(taken->get_header_value("X-Content-Type-Options") == "nosniff");

  auto again = cli.Post(path, "", "application/x-www-form-urlencoded");
  REQUIRE(again);
  CHECK(again->status == 410);
  CHECK(again->body.find("CANARY") == std::string::npos);
  auto page = cli.Get(path);
  REQUIRE(page);
  CHECK(page->status == 410);

  auto row = store->pickup(id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->fetched_at == clock->now());
  CHECK((*row)->ciphertext.empty());
  CHECK((*row)->nonce.empty());

  auto unknown = cli.Post(std::string(kPickupPrefix) + "AAAAAAAAAAAAAAAAAAAAAA", "",
                          "application/x-www-form-urlencoded");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(unknown->get_header_value("Cache-Control") == "no-store");
  auto odd = cli.Get(std::string(kPickupPrefix) + "not-an-id");
  REQUIRE(odd);
  CHECK(odd->status == 404);

  const std::string log = ps.allLog();
  INFO(log);
  CHECK(log.find(id) == std::string::npos);
  CHECK(log.find("CANARY") == std::string::npos);
  CHECK(log.find("POST /pickup/") != std::string::npos);
  ps.server.stop();
  store.reset();
  CHECK(dir.allBytes().find("CANARY") == std::string::npos);
}

TEST_CASE("A browser pressing the button gets the secret HTML-escaped in a page", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto clock = std::make_shared<TestClock>();
  auto store = openStore(dir.file("certgate.db"));
  EmailDelivery email(emailOptions(smtp), *store);
  ports::SecretParcel p = parcel();
  p.secret = "sk-<b>&\"quoted\"";
  REQUIRE(email.deliver(p, clock->now()).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string id = linkId(smtp.messages().at(0).data);

  PickupServer ps(dir.file("certgate.db"), keyOf(kKeyBase64), clock);
  auto cli = ps.client();
  httplib::Headers accept{{"Accept", "text/html,application/xhtml+xml"}};
  auto taken = cli.Post(std::string(kPickupPrefix) + id, accept, "", "application/x-www-form-urlencoded");
  REQUIRE(taken);
  CHECK(taken->status == 200);
  CHECK(taken->get_header_value("Content-Type").rfind("text/html", 0) == 0);
  CHECK(taken->body.find("<pre>sk-&lt;b&gt;&amp;&quot;quoted&quot;</pre>") != std::string::npos);
  CHECK(taken->get_header_value("Content-Security-Policy").find("default-src 'none'") !=
        std::string::npos);
}

TEST_CASE("An expired pickup is refused, purged, and the link then unknown", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto clock = std::make_shared<TestClock>();
  auto store = openStore(dir.file("certgate.db"));
  EmailDelivery email(emailOptions(smtp), *store);
  REQUIRE(email.deliver(parcel(), clock->now()).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string id = linkId(smtp.messages().at(0).data);

  PickupServer ps(dir.file("certgate.db"), keyOf(kKeyBase64), clock);
  auto cli = ps.client();
  clock->advance(86400 - 1);
  auto still = cli.Get(std::string(kPickupPrefix) + id);
  REQUIRE(still);
  CHECK(still->status == 200);
  clock->advance(1);
  auto expired = cli.Post(std::string(kPickupPrefix) + id, "", "application/x-www-form-urlencoded");
  REQUIRE(expired);
  CHECK(expired->status == 410);
  CHECK(expired->body.find("CANARY") == std::string::npos);
  auto row = store->pickup(id);
  REQUIRE(row.ok());
  CHECK_FALSE(row->has_value());
  auto gone = cli.Post(std::string(kPickupPrefix) + id, "", "application/x-www-form-urlencoded");
  REQUIRE(gone);
  CHECK(gone->status == 404);
}

TEST_CASE("A pickup expires with its token when the token ends before the pickup ttl",
          "[connector]") {
  TempDir dir;
  auto store = openStore(dir.file("certgate.db"));
  PickupBox box(*store, keyOf(kKeyBase64), core::Seconds{86400});
  auto ticket = box.seal("E100", "alias", kCanary, at(kStart), at(kStart + 3600));
  REQUIRE(ticket.ok());
  CHECK(ticket->expires_at == at(kStart + 3600));
  auto late = box.seal("E100", "alias", kCanary, at(kStart), at(kStart));
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().kind == core::ErrorKind::Invalid);
}

TEST_CASE("Expired pickups are purged at the next delivery", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto store = openStore(dir.file("certgate.db"));
  EmailDelivery email(emailOptions(smtp), *store);
  REQUIRE(email.deliver(parcel(), at(kStart)).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string first = linkId(smtp.messages().at(0).data);
  REQUIRE(email.deliver(parcel(), at(kStart + 2 * 86400)).ok());
  auto row = store->pickup(first);
  REQUIRE(row.ok());
  CHECK_FALSE(row->has_value());
}

TEST_CASE("A pickup sealed with another key is refused with a clear error and not consumed",
          "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto clock = std::make_shared<TestClock>();
  auto store = openStore(dir.file("certgate.db"));
  EmailDelivery email(emailOptions(smtp), *store);
  REQUIRE(email.deliver(parcel(), clock->now()).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string id = linkId(smtp.messages().at(0).data);

  {
    PickupBox wrong(*store, keyOf(kOtherKeyBase64), core::Seconds{86400});
    auto taken = wrong.take(id, clock->now());
    REQUIRE_FALSE(taken.ok());
    CHECK(taken.error().kind == core::ErrorKind::Corrupt);
    CHECK(taken.error().message.find("does not open with delivery.email.encryption_key") !=
          std::string::npos);
    CHECK(taken.error().describe().find(id) == std::string::npos);
  }
  {
    PickupServer ps(dir.file("certgate.db"), keyOf(kOtherKeyBase64), clock);
    auto cli = ps.client();
    auto refused = cli.Post(std::string(kPickupPrefix) + id, "", "application/x-www-form-urlencoded");
    REQUIRE(refused);
    CHECK(refused->status == 500);
    CHECK(refused->body.find("nothing was used up") != std::string::npos);
    CHECK(ps.allLog().find("encryption_key") != std::string::npos);
    CHECK(ps.allLog().find(id) == std::string::npos);
  }
  PickupServer right(dir.file("certgate.db"), keyOf(kKeyBase64), clock);
  auto cli = right.client();
  auto taken = cli.Post(std::string(kPickupPrefix) + id, "", "application/x-www-form-urlencoded");
  REQUIRE(taken);
  CHECK(taken->status == 200);
  CHECK(taken->body == std::string(kCanary) + "\n");
}

TEST_CASE("The encryption key must be base64 of 32 bytes", "[connector]") {
  struct Case {
    const char* reason;
    const char* value;
    const char* expected;
  };
  const Case cases[] = {
      {"16 bytes (an AES-128 key)", "AAECAwQFBgcICQoLDA0ODw==", "must decode to 32 bytes"},
      {"not base64", "this is not base64!", "is not base64"},
      {"empty", "", "is not base64"},
  };
  for (const auto& c : cases) {
    INFO(c.reason);
    auto key = decodePickupKey(c.value);
    REQUIRE_FALSE(key.ok());
    CHECK(key.error().kind == core::ErrorKind::Invalid);
    CHECK(key.error().message.find(c.expected) != std::string::npos);
    CHECK(key.error().hint.find("openssl rand -base64 32") != std::string::npos);
  }
  CHECK(decodePickupKey(kKeyBase64).ok());
}

TEST_CASE("Delivery failures are errors that leave no usable pickup behind", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto store = openStore(dir.file("certgate.db"));

  SECTION("a person without an email address") {
    EmailDelivery email(emailOptions(smtp), *store);
    ports::SecretParcel p = parcel();
    p.email.clear();
    auto sent = email.deliver(p, at(kStart));
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().kind == core::ErrorKind::Permanent);
    CHECK(sent.error().message.find("has no email address") != std::string::npos);
    CHECK(sent.error().where == "person E100");
    CHECK(smtp.messages().empty());
  }
  SECTION("an address with a line break (header injection)") {
    EmailDelivery email(emailOptions(smtp), *store);
    ports::SecretParcel p = parcel();
    p.email = "alice@example.org\r\nBcc: eve@example.org";
    auto sent = email.deliver(p, at(kStart));
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().message.find("not usable") != std::string::npos);
  }
  SECTION("the server refuses the recipient") {
    smtp.refuse_recipients = true;
    EmailDelivery email(emailOptions(smtp), *store);
    auto sent = email.deliver(parcel(), at(kStart));
    REQUIRE_FALSE(sent.ok());
    INFO(sent.error().describe());
    CHECK(sent.error().kind == core::ErrorKind::Permanent);
    CHECK(sent.error().message.find("E100") != std::string::npos);
    CHECK(sent.error().describe().find("CANARY") == std::string::npos);
  }
  SECTION("the server refuses the message") {
    smtp.refuse_data = true;
    EmailDelivery email(emailOptions(smtp), *store);
    auto sent = email.deliver(parcel(), at(kStart));
    REQUIRE_FALSE(sent.ok());
    INFO(sent.error().describe());
    CHECK(sent.error().kind == core::ErrorKind::Permanent);
  }
  SECTION("nothing listens on the SMTP port") {
    const std::string url = smtp.url();
    smtp.stop();
    EmailOptions o = emailOptions(smtp);
    o.smtp.url = url;
    // The fake's socket is closed: connecting is refused.
    EmailDelivery email(std::move(o), *store);
    auto sent = email.deliver(parcel(), at(kStart));
    REQUIRE_FALSE(sent.ok());
    INFO(sent.error().describe());
    CHECK(sent.error().kind == core::ErrorKind::Transient);
  }
  store.reset();
  CHECK(dir.allBytes().find("CANARY") == std::string::npos);
}

TEST_CASE("The SMTP login is sent when configured", "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto store = openStore(dir.file("certgate.db"));
  EmailOptions o = emailOptions(smtp);
  o.smtp.username = "certgate";
  o.smtp.password = "smtp-pass";
  EmailDelivery email(std::move(o), *store);
  auto sent = email.deliver(parcel(), at(kStart));
  INFO((sent.ok() ? std::string() : sent.error().describe()));
  REQUIRE(sent.ok());
  REQUIRE(smtp.waitFor(1) == 1);
  // AUTH PLAIN: base64("\0certgate\0smtp-pass")
  CHECK(smtp.messages().at(0).auth.find("AGNlcnRnYXRlAHNtdHAtcGFzcw==") != std::string::npos);
}

TEST_CASE("smtp:// requires STARTTLS off loopback", "[connector]") {
  CHECK(isLoopbackMailUrl("smtp://127.0.0.1:2525"));
  CHECK(isLoopbackMailUrl("smtp://localhost"));
  CHECK(isLoopbackMailUrl("smtp://[::1]:25"));
  CHECK_FALSE(isLoopbackMailUrl("smtp://127.0.0.1.example.org"));
  CHECK_FALSE(isLoopbackMailUrl("smtp://smtp.example.org:587"));
}

TEST_CASE("certgate serve's AuthorityServer mounts the pickup endpoint when given the key",
          "[connector]") {
  TempDir dir;
  SmtpFake smtp;
  smtp.start();
  auto clock = std::make_shared<TestClock>();
  {
    auto store = openStore(dir.file("certgate.db"));
    EmailDelivery email(emailOptions(smtp), *store);
    REQUIRE(email.deliver(parcel(), clock->now()).ok());
  }
  REQUIRE(smtp.waitFor(1) == 1);
  const std::string id = linkId(smtp.messages().at(0).data);
  const std::string path = std::string(kPickupPrefix) + id;

  cli::AuthorityServerOptions without;
  without.store_path = dir.file("certgate.db");
  without.server.listen = "127.0.0.1:0";
  without.clock = clock;
  auto plain = cli::AuthorityServer::start(std::move(without));
  REQUIRE(plain.ok());
  {
    httplib::Client c("127.0.0.1", (*plain)->port());
    auto r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status == 404);
  }
  (*plain)->stop();

  cli::AuthorityServerOptions with;
  with.store_path = dir.file("certgate.db");
  with.server.listen = "127.0.0.1:0";
  with.clock = clock;
  with.pickup_key = keyOf(kKeyBase64);
  auto server = cli::AuthorityServer::start(std::move(with));
  REQUIRE(server.ok());
  httplib::Client c("127.0.0.1", (*server)->port());
  auto r = c.Post(path, "", "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == std::string(kCanary) + "\n");
}

}  // namespace
}  // namespace certgate::connectors::delivery
