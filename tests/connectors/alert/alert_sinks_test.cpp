// Alert sinks against loopback receivers: a cpp-httplib server standing in for a Standard
// Webhooks receiver, a Slack incoming webhook, a Teams Workflows webhook and the PagerDuty
// Events API v2 (shapes per /work/shared/reference/gateway-alerts.md section 6 and the vendors'
// documents named there), the SMTP fake, and UDP/TCP syslog listeners. Also: a receiver down
// for a while gets every alert exactly once when it is back, across a restart of the process.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "connectors/alert/email_sink.hpp"
#include "connectors/alert/http_sinks.hpp"
#include "connectors/alert/syslog_sink.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "engine/alerts.hpp"
#include "fakes/smtp/smtp_fake.hpp"

namespace fs = std::filesystem;
using namespace certgate;
using nlohmann::json;

namespace {

const core::Instant kNow = *core::parseIso("2026-11-25T12:00:00Z");
constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kRoutingKey = "R0UT1NGKEY0123456789abcdef012345";
constexpr const char* kSlackPath = "/services/T000/B000/XXXXSECRETXXXX";

ports::Alert revocation(const std::string& id = "audit-42") {
  ports::Alert a;
  a.id = id;
  a.kind = "revocation";
  a.severity = "warning";
  a.title = "Access revoked: E3 removed from okta/AI Users";
  a.summary = "E3 <p3@example.org> was removed from okta/AI Users: certification expired";
  a.occurred_at = kNow - core::Seconds{60};
  json doc{{"id", id},
           {"kind", "revocation"},
           {"severity", "warning"},
           {"title", a.title},
           {"summary", a.summary},
           {"occurred_at", core::formatIso(a.occurred_at)},
           {"person", {{"key", "E3"}, {"email", "p3@example.org"}}},
           {"access", {{"type", "group"}, {"directory", "okta"}, {"group", "AI Users"}}},
           {"rule", {{"track", "AI_BASICS"}, {"reason", "expired"}}},
           {"enforcement", {{"state", "applied"}, {"verified", true}}},
           {"evidence", {{"audit_id", 42}, {"plan_id", "plan-1"}, {"run_id", 7}}}};
  a.document_json = doc.dump();
  return a;
}

// One HTTP receiver for every kind: records requests; answers `status` (and Retry-After).
struct Receiver {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<httplib::Request> requests;
  int status = 200;
  std::string body = "ok";
  std::string retry_after;
  std::vector<std::string> accepted_ids;  // webhook-ids answered 2xx

  Receiver() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(req);
      res.status = status;
      if (!retry_after.empty()) res.set_header("Retry-After", retry_after);
      if (status != 204) res.set_content(body, "text/plain");  // 204 has no body
      if (status >= 200 && status < 300) accepted_ids.push_back(req.get_header_value("webhook-id"));
    };
    server.Post(R"(/.*)", handler);
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
  httplib::Request last() {
    std::lock_guard<std::mutex> lock(mu);
    REQUIRE_FALSE(requests.empty());
    return requests.back();
  }
};

connectors::alert::HttpSinkOptions options(const std::string& name, const std::string& url,
                                           const std::string& secret = {}) {
  connectors::alert::HttpSinkOptions o;
  o.name = name;
  o.url = url;
  o.secret = secret;
  o.redactor = std::make_shared<connectors::http::Redactor>();
  return o;
}

std::string webhookKey() {
  auto key = connectors::webhook::decodeSecret(kSecret);
  REQUIRE(key.ok());
  return *key;
}

}  // namespace

TEST_CASE("webhook sink: Standard Webhooks headers, a signature that verifies, the alert as data",
          "[connector][alerts]") {
  Receiver rx;
  rx.status = 204;
  auto sink = connectors::alert::makeHttpSink("webhook", options("soc", rx.url("/hook"), webhookKey()));
  REQUIRE(sink);
  auto sent = sink->send(revocation(), kNow, std::chrono::milliseconds{5000});
  REQUIRE(sent.ok());
  const auto req = rx.last();
  CHECK(req.path == "/hook");
  CHECK(req.get_header_value("content-type") == "application/json");
  CHECK(req.get_header_value("webhook-id") == "audit-42");
  CHECK(req.get_header_value("webhook-timestamp") == std::to_string(kNow.time_since_epoch().count()));
  CHECK(connectors::webhook::verify(webhookKey(), "audit-42", kNow.time_since_epoch().count(),
                                    req.body, req.get_header_value("webhook-signature")));
  CHECK_FALSE(connectors::webhook::verify(webhookKey(), "audit-43", kNow.time_since_epoch().count(),
                                          req.body, req.get_header_value("webhook-signature")));
  const json body = json::parse(req.body);
  CHECK(body["type"] == "certgate.alert.revocation");
  CHECK(body["timestamp"] == core::formatIso(kNow));
  CHECK(body["data"]["id"] == "audit-42");
  CHECK(body["data"]["person"]["key"] == "E3");
  CHECK(body["data"]["evidence"]["audit_id"] == 42);
}

TEST_CASE("slack sink: text fallback and blocks, and the URL never in an error", "[connector][alerts]") {
  Receiver rx;
  auto sink = connectors::alert::makeHttpSink("slack", options("chat", rx.url(kSlackPath)));
  REQUIRE(sink->send(revocation(), kNow, std::chrono::milliseconds{5000}).ok());
  const json body = json::parse(rx.last().body);
  REQUIRE(body["text"].is_string());
  CHECK(body["text"].get<std::string>().find("Access revoked") != std::string::npos);
  REQUIRE(body["blocks"].is_array());
  CHECK(body["blocks"][0]["type"] == "header");
  CHECK(body["blocks"][0]["text"]["type"] == "plain_text");
  CHECK(body["blocks"][1]["type"] == "section");
  CHECK(body["blocks"][1]["text"]["type"] == "mrkdwn");
  // Slack markup characters are escaped: "<p3@...>" cannot become a link or a mention.
  CHECK(body["blocks"][1]["text"]["text"].get<std::string>().find("&lt;p3@example.org&gt;") !=
        std::string::npos);
  CHECK(body["blocks"][2]["fields"].size() <= 10);
  CHECK(body["blocks"][3]["type"] == "context");

  rx.status = 429;
  rx.retry_after = "30";
  auto limited = sink->send(revocation(), kNow, std::chrono::milliseconds{5000});
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.error().kind == core::ErrorKind::RateLimited);
  CHECK(limited.error().retry_after_s == 30);
  CHECK(limited.error().describe().find("XXXXSECRETXXXX") == std::string::npos);

  // Nobody listening: a transport error, still without the URL's token.
  auto gone = connectors::alert::makeHttpSink("slack", options("chat", "http://127.0.0.1:1" + std::string(kSlackPath)));
  auto down = gone->send(revocation(), kNow, std::chrono::milliseconds{2000});
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().kind == core::ErrorKind::Transient);
  CHECK(down.error().describe().find("XXXXSECRETXXXX") == std::string::npos);
  CHECK(down.error().describe().find("alert sink chat") != std::string::npos);
}

TEST_CASE("teams sink: a Workflows message with one Adaptive Card attachment", "[connector][alerts]") {
  Receiver rx;
  rx.status = 202;
  auto sink = connectors::alert::makeHttpSink("teams", options("teams", rx.url("/workflows/abc")));
  REQUIRE(sink->send(revocation(), kNow, std::chrono::milliseconds{5000}).ok());
  const json body = json::parse(rx.last().body);
  CHECK(body["type"] == "message");
  REQUIRE(body["attachments"].size() == 1);
  const json& att = body["attachments"][0];
  CHECK(att["contentType"] == "application/vnd.microsoft.card.adaptive");
  CHECK(att["contentUrl"].is_null());
  CHECK(att["content"]["type"] == "AdaptiveCard");
  CHECK(att["content"]["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json");
  CHECK(att["content"]["version"] == "1.4");
  const json& card_body = att["content"]["body"];
  CHECK(card_body[0]["type"] == "TextBlock");
  CHECK(card_body[0]["text"] == revocation().title);
  CHECK(card_body[2]["type"] == "FactSet");
  std::map<std::string, std::string> facts;
  for (const auto& f : card_body[2]["facts"]) facts[f["title"]] = f["value"];
  CHECK(facts["Person"] == "E3 <p3@example.org>");
  CHECK(facts["Access"] == "group okta/AI Users");
  CHECK(facts["Evidence"] == "audit 42, plan plan-1, run 7");
  CHECK(facts["Enforcement"] == "applied (verified)");
  CHECK(facts["Alert id"] == "audit-42");
}

TEST_CASE("pagerduty sink: Events API v2 trigger with dedup_key equal to the alert id, resolve for a verification",
          "[connector][alerts]") {
  Receiver rx;
  rx.status = 202;
  rx.body = R"({"status":"success","message":"Event processed","dedup_key":"audit-42"})";
  auto sink = connectors::alert::makeHttpSink("pagerduty", options("pd", rx.url("/v2/enqueue"), kRoutingKey));
  REQUIRE(sink->send(revocation(), kNow, std::chrono::milliseconds{5000}).ok());
  json body = json::parse(rx.last().body);
  CHECK(rx.last().path == "/v2/enqueue");
  CHECK(body["routing_key"] == kRoutingKey);
  CHECK(body["event_action"] == "trigger");
  CHECK(body["dedup_key"] == "audit-42");
  CHECK(body["payload"]["summary"].get<std::string>().size() <= 1024);
  CHECK(body["payload"]["summary"].get<std::string>().find("E3") != std::string::npos);
  CHECK(body["payload"]["source"] == "certgate");
  CHECK(body["payload"]["severity"] == "warning");
  CHECK(body["payload"]["class"] == "revocation");
  CHECK(body["payload"]["custom_details"]["evidence"]["plan_id"] == "plan-1");

  ports::Alert verified = revocation("audit-50");
  verified.kind = "revocation.verified";
  verified.severity = "info";
  verified.follows = "audit-42";
  REQUIRE(sink->send(verified, kNow, std::chrono::milliseconds{5000}).ok());
  body = json::parse(rx.last().body);
  CHECK(body["event_action"] == "resolve");
  CHECK(body["dedup_key"] == "audit-42");

  ports::Alert critical = revocation("audit-51");
  critical.kind = "token.not_enforced";
  critical.severity = "critical";
  REQUIRE(sink->send(critical, kNow, std::chrono::milliseconds{5000}).ok());
  body = json::parse(rx.last().body);
  CHECK(body["payload"]["severity"] == "critical");
  CHECK(body["dedup_key"] == "audit-51");

  rx.status = 400;
  rx.body = R"({"status":"invalid event","message":"Event object is invalid","errors":["x"]})";
  auto refused = sink->send(revocation(), kNow, std::chrono::milliseconds{5000});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == core::ErrorKind::Invalid);
  CHECK(refused.error().describe().find(kRoutingKey) == std::string::npos);
}

TEST_CASE("email sink: one message to every address with the alert id in a header", "[connector][alerts]") {
  testing::SmtpFake smtp;
  smtp.start();
  connectors::alert::EmailSinkOptions o;
  o.name = "mail";
  o.smtp.url = smtp.url();
  o.smtp.from = "certgate@example.org";
  o.to = {"security@example.org", "iam@example.org"};
  connectors::alert::EmailSink sink(o);
  REQUIRE(sink.send(revocation(), kNow, std::chrono::milliseconds{5000}).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const auto m = smtp.messages()[0];
  CHECK(m.mail_from == "certgate@example.org");
  CHECK(m.rcpt_to == std::vector<std::string>{"security@example.org", "iam@example.org"});
  CHECK(m.data.find("Subject: [certgate warning] Access revoked: E3 removed from okta/AI Users\r\n") !=
        std::string::npos);
  CHECK(m.data.find("X-Certgate-Alert-Id: audit-42\r\n") != std::string::npos);
  CHECK(m.data.find("Evidence: audit 42, plan plan-1, run 7\r\n") != std::string::npos);

  smtp.refuse_recipients = true;
  auto refused = sink.send(revocation(), kNow, std::chrono::milliseconds{5000});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().where.find("alert sink mail") != std::string::npos);
}

TEST_CASE("email sink: a reminder goes to the person (copies in Cc), in words, not to the sink's list",
          "[connector][alerts]") {
  testing::SmtpFake smtp;
  smtp.start();
  connectors::alert::EmailSinkOptions o;
  o.name = "people-mail";
  o.smtp.url = smtp.url();
  o.smtp.from = "certgate@example.org";
  o.to = {"security@example.org"};
  connectors::alert::EmailSink sink(o);
  ports::Alert a;
  a.id = "reminder-E1-T-1780000000-grace";
  a.kind = "reminder";
  a.severity = "warning";
  a.title = "Your Safe AI use certification has expired: access ends on 2026-12-06";
  a.summary = a.title;
  a.text = "Hello Ann,\n\nYour certification expired.\n.\nStart here: https://lms.example.org\n";
  a.to = {"ann@example.org"};
  a.cc = {"peopleops@example.org"};
  a.document_json = R"({"kind":"reminder"})";
  REQUIRE(sink.send(a, kNow, std::chrono::milliseconds{5000}).ok());
  REQUIRE(smtp.waitFor(1) == 1);
  const auto m = smtp.messages()[0];
  CHECK(m.rcpt_to == std::vector<std::string>{"ann@example.org", "peopleops@example.org"});
  CHECK(m.data.find("To: <ann@example.org>\r\n") != std::string::npos);
  CHECK(m.data.find("Cc: <peopleops@example.org>\r\n") != std::string::npos);
  CHECK(m.data.find("Subject: Your Safe AI use certification has expired: access ends on "
                    "2026-12-06\r\n") != std::string::npos);
  CHECK(m.data.find("X-Certgate-Alert-Id: reminder-E1-T-1780000000-grace\r\n") != std::string::npos);
  // The text with CRLF line ends; a line of a single dot survives SMTP's dot-stuffing.
  CHECK(m.data.find("\r\n\r\nHello Ann,\r\n\r\nYour certification expired.\r\n.\r\nStart here: "
                    "https://lms.example.org\r\n") != std::string::npos);
  CHECK(m.data.find("security@example.org") == std::string::npos);
  CHECK(m.data.find("The full alert (JSON)") == std::string::npos);
}

namespace {

// A syslog listener on 127.0.0.1: UDP datagrams, or TCP with octet counting.
struct SyslogListener {
  int fd = -1;
  int port = 0;
  bool tcp;
  explicit SyslogListener(bool use_tcp) : tcp(use_tcp) {
    fd = ::socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    if (tcp) REQUIRE(::listen(fd, 4) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~SyslogListener() { ::close(fd); }
  std::string address() const {
    return std::string(tcp ? "tcp" : "udp") + "://127.0.0.1:" + std::to_string(port);
  }
  // The raw bytes of one datagram, or everything one TCP connection sent.
  std::string receive() {
    char buf[65536];
    if (!tcp) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return {};
    std::string out;
    for (;;) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(c);
    return out;
  }
};

void checkRfc5424(const std::string& msg) {
  // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG; auth (4) * 8 + warning (4).
  CHECK(msg.rfind("<36>1 2026-11-25T11:59:00Z sec-host certgate ", 0) == 0);
  CHECK(msg.find(" revocation [certgate@32473 id=\"audit-42\" kind=\"revocation\" "
                 "severity=\"warning\" person=\"E3\"") != std::string::npos);
  CHECK(msg.find("evidence=\"audit_id=42 plan_id=plan-1 run_id=7\"]") != std::string::npos);
  CHECK(msg.find("] \xEF\xBB\xBF" "Access revoked: E3") != std::string::npos);
}

}  // namespace

TEST_CASE("syslog sink: RFC 5424 over UDP", "[connector][alerts]") {
  SyslogListener rx(false);
  connectors::alert::SyslogSink sink({"siem", rx.address(), 4, "certgate", "sec-host"});
  REQUIRE(sink.send(revocation(), kNow, std::chrono::milliseconds{2000}).ok());
  checkRfc5424(rx.receive());
}

TEST_CASE("syslog sink: RFC 5424 over TCP with octet counting", "[connector][alerts]") {
  SyslogListener rx(true);
  connectors::alert::SyslogSink sink({"siem", rx.address(), 4, "certgate", "sec-host"});
  std::string got;
  std::thread reader([&] { got = rx.receive(); });
  const auto sent = sink.send(revocation(), kNow, std::chrono::milliseconds{2000});
  reader.join();
  REQUIRE(sent.ok());
  const auto space = got.find(' ');
  REQUIRE(space != std::string::npos);
  const std::string message = got.substr(space + 1);
  CHECK(std::stoul(got.substr(0, space)) == message.size());
  checkRfc5424(message);
}

TEST_CASE("syslog sink: SD values escape quote, backslash and bracket", "[connector][alerts]") {
  ports::Alert a = revocation("odd\"id]\\x");
  const std::string m =
      connectors::alert::syslogMessage(a, {"siem", "udp://127.0.0.1:1", 4, "certgate", "h"}, 1);
  CHECK(m.find("id=\"odd\\\"id\\]\\\\x\"") != std::string::npos);
}

TEST_CASE("a receiver down for a while gets every alert exactly once when it is back, across a restart",
          "[connector][alerts]") {
  Receiver rx;
  rx.status = 503;
  const fs::path dir = fs::temp_directory_path() /
                       ("certgate-alert-rx-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  settings::Settings s;
  s.policy = std::make_shared<settings::LoadedPolicy>();
  s.alerts.configured = true;
  settings::AlertSinkSettings cfg;
  cfg.name = "soc";
  cfg.kind = "webhook";
  s.alerts.sinks.push_back(cfg);
  auto sink = connectors::alert::makeHttpSink("webhook", options("soc", rx.url("/hook"), webhookKey()));
  std::vector<engine::AlertSinkHandle> handles{{"soc", sink.get(), 6000, std::chrono::milliseconds{3000}}};
  std::set<std::string> expected;
  {
    auto st = store::Store::open((dir / "certgate.db").string());
    REQUIRE(st.ok());
    for (int i = 0; i < 4; ++i) {
      store::AuditRow r;
      r.at = kNow - core::Seconds{30};
      r.actor = "certgate";
      r.action = "group.remove";
      r.subject = "E" + std::to_string(i);
      r.details_json = json{{"directory", "okta"}, {"group", "AI Users"}, {"plan", "p"}}.dump();
      auto id = (*st)->appendAudit(r);
      REQUIRE(id.ok());
      expected.insert("audit-" + std::to_string(*id));
    }
    // Down: every call tries once, fails, and schedules a retry.
    core::Instant t = kNow;
    for (int call = 0; call < 3; ++call, t += core::Seconds{600}) {
      auto got = engine::collectAndDeliverAlerts(**st, s, handles, t, std::chrono::milliseconds{3000});
      REQUIRE(got.ok());
      CHECK(got->delivered.delivered == 0);
    }
  }
  CHECK(rx.accepted_ids.empty());
  std::set<std::string> tried;
  for (const auto& r : rx.requests) tried.insert(r.get_header_value("webhook-id"));
  CHECK(tried.size() == 3);  // one attempt per call while it is down

  // The process restarts; the receiver is back.
  rx.status = 204;
  auto st = store::Store::open((dir / "certgate.db").string());
  REQUIRE(st.ok());
  core::Instant t = kNow + core::Seconds{3600};
  for (int call = 0; call < 3; ++call, t += core::Seconds{3600})
    REQUIRE(engine::collectAndDeliverAlerts(**st, s, handles, t, std::chrono::milliseconds{3000}).ok());
  std::multiset<std::string> got(rx.accepted_ids.begin(), rx.accepted_ids.end());
  CHECK(got.size() == expected.size());
  CHECK(std::set<std::string>(got.begin(), got.end()) == expected);
  // Every attempt of an alert carried the same webhook-id (its dedup id), and each arrived once.
  for (const auto& id : expected) CHECK(got.count(id) == 1);
  for (const auto& id : tried) CHECK(expected.count(id) == 1);
  auto counts = (*st)->alertCounts();
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 1);
  auto rows = (*st)->alertOutbox("", -1);
  REQUIRE(rows.ok());
  for (const auto& r : *rows)
    UNSCOPED_INFO(r.dedup_id << " " << r.state << " " << r.attempts << " " << r.last_error);
  CHECK((*counts)[0].delivered == 4);
  CHECK((*counts)[0].pending == 0);
  st->reset();
  fs::remove_all(dir);
}
