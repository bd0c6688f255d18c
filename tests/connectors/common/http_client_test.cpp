#include "connectors/common/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>

#include "loopback_server.hpp"

using namespace std::chrono_literals;
using certgate::core::ErrorKind;
using certgate::testing::LoopbackServer;
namespace http = certgate::connectors::http;

namespace {

// Records every delay sendWithRetry asks for; never sleeps.
struct FakeTime {
  std::vector<http::Millis> delays;
  std::int64_t now = 1'700'000'000;

  http::ClientOptions options(http::ClientOptions o = {}) {
    o.sleep = [this](http::Millis d) { delays.push_back(d); };
    o.random01 = [] { return 0.5; };
    o.now_unix_s = [this] { return now; };
    o.connect_timeout = 2000ms;
    o.total_timeout = 5000ms;
    return o;
  }
};

// Serves `statuses` in order (the last one repeats), counting the requests.
void serveSequence(LoopbackServer& srv, const std::string& path, std::vector<int> statuses,
                   std::atomic<int>& count, std::string retry_after = {}) {
  auto handler = [statuses = std::move(statuses), &count, retry_after](const httplib::Request&,
                                                                       httplib::Response& res) {
    const int n = count.fetch_add(1);
    const int status = statuses[std::min<std::size_t>(static_cast<std::size_t>(n), statuses.size() - 1)];
    res.status = status;
    if (status != 200 && !retry_after.empty()) res.set_header("Retry-After", retry_after);
    res.set_content(status == 200 ? "done" : "busy", "text/plain");
  };
  srv.server.Get(path, handler);
  srv.server.Post(path, handler);
}

// A port on which nothing listens: bound (so nobody else takes it) but never listen()ed.
struct ClosedPort {
  int fd = -1;
  int port = 0;
  ClosedPort() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~ClosedPort() { ::close(fd); }
};

}  // namespace

TEST_CASE("GET round trip carries headers both ways and reads the body", "[connector][http]") {
  LoopbackServer srv;
  srv.server.Get("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Reply", "yes");
    res.set_content("test=" + req.get_header_value("X-Test") + " ua=" + req.get_header_value("User-Agent"),
                    "text/plain");
  });
  srv.start();

  http::Client client;
  http::Request req{http::Method::Get, srv.url("/echo"), {{"X-Test", "abc"}}, {}, {}, {}, false};
  auto res = client.send(req);
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(res->body == "test=abc ua=certgate/" CERTGATE_TEST_VERSION);
  CHECK(res->headers.get("x-reply") == std::optional<std::string>("yes"));
  CHECK(res->headers.get("CONTENT-TYPE") == std::optional<std::string>("text/plain"));
  CHECK_FALSE(res->headers.get("X-Absent").has_value());
  CHECK(http::classify(*res).ok());
}

TEST_CASE("POST, PUT, PATCH and DELETE send their method and body", "[connector][http]") {
  LoopbackServer srv;
  auto echo = [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_content(req.method + " " + req.get_header_value("Content-Type") + " " + req.body, "text/plain");
  };
  srv.server.Post("/items", echo);
  srv.server.Put("/items", echo);
  srv.server.Patch("/items", echo);
  srv.server.Delete("/items", echo);
  srv.start();

  http::Client client;
  for (auto method : {http::Method::Post, http::Method::Put, http::Method::Patch, http::Method::Delete}) {
    http::Request req{method, srv.url("/items"), {{"Content-Type", "application/json"}}, R"({"a":1})", {}, {}, false};
    auto res = client.send(req);
    REQUIRE(res.ok());
    CHECK(res->status == 201);
    CHECK(res->body == std::string(http::toString(method)) + R"( application/json {"a":1})");
  }
}

TEST_CASE("429 with Retry-After: 2 is retried once after a 2 s (recorded) delay", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/limited", {429, 200}, count, "2");
  srv.start();

  FakeTime time;
  http::Client client(time.options());
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/limited"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{4, 100ms, 10s, 60s});
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(count == 2);
  CHECK(time.delays == std::vector<http::Millis>{2000ms});
}

TEST_CASE("503 twice then 200 is retried with full-jitter exponential backoff", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/flaky", {503, 503, 200}, count);
  srv.start();

  FakeTime time;  // random01 = 0.5, so each delay is half its cap
  http::Client client(time.options());
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/flaky"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{4, 100ms, 10s, 60s});
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(count == 3);
  CHECK(time.delays == std::vector<http::Millis>{50ms, 100ms});
}

TEST_CASE("Retries stop at max_attempts and the backoff cap is max_delay", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/down", {503}, count);
  srv.start();

  FakeTime time;
  http::ClientOptions opts = time.options();
  opts.random01 = [] { return 1.0; };
  http::Client client(opts);
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/down"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{5, 100ms, 300ms, 60s});
  REQUIRE(res.ok());
  CHECK(res->status == 503);
  CHECK(count == 5);
  CHECK(time.delays == std::vector<http::Millis>{100ms, 200ms, 300ms, 300ms});
  auto status = http::classify(*res);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Transient);
}

TEST_CASE("401 is not retried and is classified Auth", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/secret", {401, 200}, count);
  srv.start();

  FakeTime time;
  http::Client client(time.options());
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/secret"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{});
  REQUIRE(res.ok());
  CHECK(res->status == 401);
  CHECK(count == 1);
  CHECK(time.delays.empty());
  auto status = http::classify(*res);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().kind == ErrorKind::Auth);
}

TEST_CASE("POST is not retried on 503 unless the request is marked idempotent", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/create", {503, 200}, count);
  srv.start();

  FakeTime time;
  http::Client client(time.options());
  http::Request req{http::Method::Post, srv.url("/create"), {}, "x", {}, {}, false};

  auto first = client.sendWithRetry(req, http::RetryPolicy{3, 100ms, 1s, 60s});
  REQUIRE(first.ok());
  CHECK(first->status == 503);
  CHECK(count == 1);
  CHECK(time.delays.empty());

  count = 0;
  req.idempotent = true;  // e.g. it carries an idempotency key
  auto second = client.sendWithRetry(req, http::RetryPolicy{3, 100ms, 1s, 60s});
  REQUIRE(second.ok());
  CHECK(second->status == 200);
  CHECK(count == 2);
  CHECK(time.delays.size() == 1);
}

TEST_CASE("Connection refused is Transient and retried, and the error message is redacted",
          "[connector][http]") {
  ClosedPort closed;
  FakeTime time;
  http::Client client(time.options());
  const std::string url =
      "http://127.0.0.1:" + std::to_string(closed.port) + "/users?access_token=S3CRET-TOKEN&page=2";
  auto res = client.sendWithRetry({http::Method::Get, url, {}, {}, {}, {}, false},
                                  http::RetryPolicy{3, 100ms, 1s, 60s});
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Transient);
  CHECK(time.delays.size() == 2);
  const std::string shown = res.error().describe();
  CHECK(shown.find("S3CRET-TOKEN") == std::string::npos);
  CHECK(shown.find("access_token=[redacted]&page=2") != std::string::npos);
  CHECK(shown.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("A known secret registered with the Redactor never appears in client errors",
          "[connector][http]") {
  ClosedPort closed;
  auto redactor = std::make_shared<http::Redactor>();
  redactor->add("tenant-secret-42");
  http::ClientOptions opts;
  opts.redactor = redactor;
  http::Client client(opts);
  auto res = client.send({http::Method::Get,
                          "http://127.0.0.1:" + std::to_string(closed.port) + "/t/tenant-secret-42/users",
                          {}, {}, {}, {}, false});
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().message.find("tenant-secret-42") == std::string::npos);
  CHECK(res.error().message.find("/t/[redacted]/users") != std::string::npos);
}

TEST_CASE("A server slower than the total timeout gives Transient quickly", "[connector][http]") {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  LoopbackServer srv;
  srv.server.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock lock(m);
    cv.wait_for(lock, 900ms, [&] { return release; });
    res.set_content("late", "text/plain");
  });
  srv.start();

  http::Client client;
  http::Request req{http::Method::Get, srv.url("/slow"), {}, {}, {}, 150ms, false};
  const auto start = std::chrono::steady_clock::now();
  auto res = client.send(req);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Transient);
  CHECK(res.error().message.find("imeout") != std::string::npos);
  CHECK(elapsed < 800ms);
}

TEST_CASE("Retry-After as an HTTP-date is honoured relative to the injected clock", "[connector][http]") {
  // 1445412480 = Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(http::parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 120) == 120L);
  CHECK(http::parseRetryAfter("Wednesday, 21-Oct-15 07:28:00 GMT", 1445412480 - 7) == 7L);
  CHECK(http::parseRetryAfter("Wed Oct 21 07:28:00 2015", 1445412480 - 1) == 1L);
  CHECK(http::parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 50) == 0L);  // past
  CHECK(http::parseRetryAfter(" 17 ", 0) == 17L);
  CHECK_FALSE(http::parseRetryAfter("", 0).has_value());
  CHECK_FALSE(http::parseRetryAfter("-5", 0).has_value());
  CHECK_FALSE(http::parseRetryAfter("soon", 0).has_value());
  CHECK_FALSE(http::parseRetryAfter("1.5", 0).has_value());

  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/dated", {429, 200}, count, "Wed, 21 Oct 2015 07:28:00 GMT");
  srv.start();
  FakeTime time;
  time.now = 1445412480 - 30;
  http::Client client(time.options());
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/dated"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{3, 100ms, 1s, 120s});
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(time.delays == std::vector<http::Millis>{30'000ms});
}

TEST_CASE("A huge Retry-After is clamped to max_retry_after", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/huge", {429, 200}, count, "99999999999999999999");
  srv.start();
  FakeTime time;
  http::Client client(time.options());
  auto res = client.sendWithRetry({http::Method::Get, srv.url("/huge"), {}, {}, {}, {}, false},
                                  http::RetryPolicy{3, 100ms, 1s, 90s});
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(time.delays == std::vector<http::Millis>{90'000ms});
}

TEST_CASE("classify maps statuses to error classes", "[connector][http]") {
  struct Row {
    long status;
    std::optional<ErrorKind> kind;
    const char* reason;
  };
  const Row rows[] = {
      {200, std::nullopt, "success"},
      {204, std::nullopt, "success without body"},
      {302, std::nullopt, "redirects are returned to the caller, not errors"},
      {400, ErrorKind::Invalid, "bad request"},
      {401, ErrorKind::Auth, "credentials refused"},
      {403, ErrorKind::Auth, "permission missing"},
      {404, ErrorKind::NotFound, "no such object"},
      {409, ErrorKind::Conflict, "competing change"},
      {412, ErrorKind::Conflict, "etag precondition failed"},
      {422, ErrorKind::Invalid, "semantic validation"},
      {429, ErrorKind::RateLimited, "throttled"},
      {500, ErrorKind::Transient, "server error"},
      {503, ErrorKind::Transient, "unavailable"},
      {418, ErrorKind::Permanent, "other 4xx will not succeed by retrying"},
  };
  for (const auto& row : rows) {
    INFO(row.status << ": " << row.reason);
    auto status = http::classify(http::Response{row.status, {}, {}}, "GET https://x/?password=pw");
    if (!row.kind) {
      CHECK(status.ok());
    } else {
      REQUIRE_FALSE(status.ok());
      CHECK(status.error().kind == *row.kind);
      CHECK(status.error().message.find(std::to_string(row.status)) != std::string::npos);
      CHECK(status.error().message.find("password=pw") == std::string::npos);
    }
  }

  http::Response limited{429, {{"retry-after", "7"}}, {}};
  auto status = http::classify(limited);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().retry_after_s == 7);
}

TEST_CASE("Transport failures are classified by curl code", "[connector][http]") {
  CHECK(http::transportErrorKind(7) == ErrorKind::Transient);    // couldn't connect
  CHECK(http::transportErrorKind(28) == ErrorKind::Transient);   // timed out
  CHECK(http::transportErrorKind(60) == ErrorKind::Permanent);   // peer certificate not verified
  CHECK(http::transportErrorKind(77) == ErrorKind::Invalid);     // CA file unreadable
  CHECK(http::transportErrorKind(3) == ErrorKind::Invalid);      // malformed URL
}

TEST_CASE("Redirects are not followed by default", "[connector][http]") {
  LoopbackServer srv;
  srv.server.Get("/old", [](const httplib::Request&, httplib::Response& res) { res.set_redirect("/new"); });
  srv.server.Get("/new", [](const httplib::Request&, httplib::Response& res) { res.set_content("new", "text/plain"); });
  srv.start();

  http::Client plain;
  auto res = plain.send({http::Method::Get, srv.url("/old"), {}, {}, {}, {}, false});
  REQUIRE(res.ok());
  CHECK(res->status == 302);
  CHECK(res->headers.get("Location") == std::optional<std::string>("/new"));

  http::ClientOptions opts;
  opts.max_redirects = 2;
  http::Client following(opts);
  auto followed = following.send({http::Method::Get, srv.url("/old"), {}, {}, {}, {}, false});
  REQUIRE(followed.ok());
  CHECK(followed->status == 200);
  CHECK(followed->body == "new");
}

TEST_CASE("A response larger than max_response_bytes fails Permanent", "[connector][http]") {
  LoopbackServer srv;
  srv.server.Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(4096, 'x'), "text/plain");
  });
  srv.start();
  http::ClientOptions opts;
  opts.max_response_bytes = 1000;
  http::Client client(opts);
  auto res = client.send({http::Method::Get, srv.url("/big"), {}, {}, {}, {}, false});
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Permanent);
  CHECK(res.error().message.find("1000 bytes") != std::string::npos);
}

TEST_CASE("Headers are looked up case-insensitively and set() replaces", "[connector][http]") {
  http::Headers h{{"Link", "<a>; rel=next"}, {"link", "<b>; rel=prev"}};
  CHECK(h.getAll("LINK").size() == 2);
  h.set("LINK", "<c>");
  CHECK(h.getAll("link") == std::vector<std::string>{"<c>"});
  CHECK(h.has("Link"));
  CHECK_FALSE(h.has("Lin"));
}

TEST_CASE("One Client reuses its connection across requests", "[connector][http]") {
  LoopbackServer srv;
  std::mutex m;
  std::vector<int> client_ports;
  srv.server.Get("/ping", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(m);
    client_ports.push_back(req.remote_port);
    res.set_content("pong", "text/plain");
  });
  srv.start();

  http::Client client;
  for (int i = 0; i < 3; ++i) {
    auto res = client.send({http::Method::Get, srv.url("/ping"), {}, {}, {}, {}, false});
    REQUIRE(res.ok());
    CHECK(res->status == 200);
  }
  http::Client other;
  REQUIRE(other.send({http::Method::Get, srv.url("/ping"), {}, {}, {}, {}, false}).ok());

  std::lock_guard lock(m);
  REQUIRE(client_ports.size() == 4);
  CHECK(client_ports[1] == client_ports[0]);
  CHECK(client_ports[2] == client_ports[0]);
  CHECK(client_ports[3] != client_ports[0]);  // a second Client has its own connection
}

TEST_CASE("a streamed 2xx body goes to on_body, error bodies are kept, and each retry starts over",
          "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/report", {503, 200}, count);
  srv.start();
  FakeTime time;
  http::Client client(time.options());
  std::string streamed;
  int starts = 0;
  http::Request req;
  req.url = srv.url("/report");
  req.on_body_start = [&] {
    ++starts;
    streamed.clear();
  };
  req.on_body = [&](std::string_view chunk) {
    streamed += chunk;
    return true;
  };
  auto resp = client.sendWithRetry(req, http::RetryPolicy{});
  REQUIRE(resp.ok());
  CHECK(resp->status == 200);
  CHECK(resp->body.empty());   // handed to on_body instead
  CHECK(streamed == "done");
  CHECK(starts == 2);          // the 503 and the 200
  CHECK(count.load() == 2);

  // The error body of a non-2xx answer is kept in Response::body, never streamed.
  std::atomic<int> count2{0};
  LoopbackServer busy;
  serveSequence(busy, "/busy", {404}, count2);
  busy.start();
  req.url = busy.url("/busy");
  streamed.clear();
  auto missing = client.send(req);
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body == "busy");
  CHECK(streamed.empty());

  // A reader that refuses the body aborts the exchange.
  req.url = srv.url("/report");
  req.on_body = [](std::string_view) { return false; };
  auto refused = client.send(req);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::Permanent);
  CHECK_THAT(refused.error().message, Catch::Contains("refused by its reader"));
}

TEST_CASE("before_send runs before every exchange, retries included", "[connector][http]") {
  LoopbackServer srv;
  std::atomic<int> count{0};
  serveSequence(srv, "/limited", {429, 429, 200}, count, "1");
  srv.start();
  FakeTime time;
  int calls = 0;
  http::ClientOptions o = time.options();
  o.before_send = [&] { ++calls; };
  http::Client client(o);
  http::Request req;
  req.url = srv.url("/limited");
  auto resp = client.sendWithRetry(req, http::RetryPolicy{});
  REQUIRE(resp.ok());
  CHECK(resp->status == 200);
  CHECK(calls == 3);
  CHECK(count.load() == 3);
}
