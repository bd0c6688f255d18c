#pragma once
// certgate's HTTP server (cpp-httplib): the token authority's endpoints today, the daemon's
// health, metrics, admin API and LMS webhooks later. Handlers are plain functions from a
// Request to a Response; routes are registered before start().
//
// Contract:
//  - The constructor does no I/O. start() binds ServerOptions::listen (HOST:PORT, IPv6 in
//    brackets; port 0 picks a free port, see port()), starts the acceptor thread and returns
//    once the server accepts connections. Errors: Invalid (listen is not HOST:PORT), Permanent
//    (the address cannot be bound: in use, not permitted).
//  - At most `threads` requests run at once; at most `queue` accepted connections wait for a
//    worker, after which the acceptor waits (the kernel's listen backlog takes the rest).
//    A body above `max_body_bytes` is refused with 413 before a handler runs; slow clients are
//    cut off after read_timeout / write_timeout; idle keep-alive connections after
//    keep_alive_timeout.
//  - Errors are JSON: {"error": "<code>", "error_description": "..."} for 400/404/405/413/500,
//    and a handler's exception is a 500 whose message is not shown to the client.
//  - GET /healthz answers {"status":"ok"} (a route added under that path replaces it).
//  - stop() stops accepting, lets requests in flight finish and joins every thread. Idempotent;
//    the destructor calls it.
//  - Access log lines (through ServerOptions::log) carry method, path (never the query string,
//    which might carry a credential), status and duration; never headers or bodies.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace httplib {
struct Request;
}

namespace certgate::http {

// A request being served: a view of the server's own request object, valid during the handler.
class Request {
 public:
  explicit Request(const httplib::Request& impl) : impl_(&impl) {}
  const std::string& method() const;
  const std::string& path() const;
  const std::string& body() const;
  const std::string& remoteAddr() const;
  // The first value of header `name` (case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
  std::size_t headerCount(std::string_view name) const;
  // The first value of query parameter `name` (decoded), "" when absent.
  std::string query(std::string_view name) const;
  bool hasQuery(std::string_view name) const;

 private:
  const httplib::Request* impl_;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  Response& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// {"error": code, "error_description": description} (description omitted when empty).
Response jsonError(int status, std::string_view code, std::string_view description = {});

using Handler = std::function<Response(const Request&)>;

enum class Method { Get, Post, Put, Patch, Delete, Head, Options };
// Every method above (for endpoints that answer whatever the method, e.g. auth_request).
inline constexpr Method kAllMethods[] = {Method::Get,    Method::Post, Method::Put,
                                         Method::Patch,  Method::Delete, Method::Head,
                                         Method::Options};

struct ServerOptions {
  std::string listen = "127.0.0.1:9464";
  std::size_t threads = 8;
  std::size_t queue = 256;
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
  std::chrono::seconds keep_alive_timeout{5};
  std::size_t keep_alive_max_requests = 1000;
  // Access and error lines; nullptr: none.
  std::function<void(std::string_view line)> log;
};

// Splits "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port.
core::Result<std::pair<std::string, int>> parseListen(std::string_view listen);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers `handler` for `method` and exactly `path`. Before start() only.
  void route(Method method, const std::string& path, Handler handler);
  // Registers `handler` for `method` and every path `prefix` + one segment of 1 to 128
  // characters [A-Za-z0-9_-] (e.g. "/pickup/" + an id). The segment may be a credential: log
  // lines show such paths as `prefix` + "…". Before start() only.
  void routePrefix(Method method, const std::string& prefix, Handler handler);

  core::Status start();
  void stop();
  bool running() const;
  // The bound port (after start()).
  int port() const;
  // "host:port" as bound, e.g. "127.0.0.1:40123".
  std::string address() const;
  // Requests answered since start (any status).
  std::uint64_t requestsServed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace certgate::http
