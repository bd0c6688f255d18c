#include "http/server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/form.hpp"

namespace certgate::http {

// --- Request

const std::string& Request::method() const { return impl_->method; }
const std::string& Request::path() const { return impl_->path; }
const std::string& Request::body() const { return impl_->body; }
const std::string& Request::remoteAddr() const { return impl_->remote_addr; }

std::string Request::header(std::string_view name) const {
  return impl_->get_header_value(std::string(name));
}

std::size_t Request::headerCount(std::string_view name) const {
  return impl_->get_header_value_count(std::string(name));
}

namespace {
// The query string of the request target, "" when none. Parsed here rather than taken from
// httplib's params, which also hold the fields of a form body.
std::string_view queryOf(const httplib::Request& req) {
  std::string_view target = req.target;
  const auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}
}  // namespace

std::string Request::query(std::string_view name) const {
  auto fields = parseForm(queryOf(*impl_));
  if (!fields) return {};
  for (const auto& [k, v] : *fields)
    if (k == name) return v;
  return {};
}

bool Request::hasQuery(std::string_view name) const {
  auto fields = parseForm(queryOf(*impl_));
  if (!fields) return false;
  for (const auto& [k, v] : *fields)
    if (k == name) return true;
  return false;
}

// --- helpers

Response jsonError(int status, std::string_view code, std::string_view description) {
  nlohmann::json body = {{"error", code}};
  if (!description.empty()) body["error_description"] = description;
  Response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

core::Result<std::pair<std::string, int>> parseListen(std::string_view listen) {
  auto bad = [&] {
    return core::makeError(core::ErrorKind::Invalid,
                           "listen address '" + std::string(listen) + "' is not HOST:PORT",
                           "http.listen", "e.g. 127.0.0.1:9464, or [::1]:9464 for IPv6");
  };
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == listen.size()) return bad();
  std::string host(listen.substr(0, colon));
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad();
  }
  int port = 0;
  for (char c : listen.substr(colon + 1)) {
    if (c < '0' || c > '9') return bad();
    port = port * 10 + (c - '0');
    if (port > 65535) return bad();
  }
  return std::pair{host, port};
}

namespace {

const char* methodName(Method m) {
  switch (m) {
    case Method::Get: return "GET";
    case Method::Post: return "POST";
    case Method::Put: return "PUT";
    case Method::Patch: return "PATCH";
    case Method::Delete: return "DELETE";
    case Method::Head: return "HEAD";
    case Method::Options: return "OPTIONS";
  }
  return "?";
}

std::string regexEscape(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

const char* errorCode(int status) {
  switch (status) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "request_too_large";
    case 414: return "uri_too_long";
    case 503: return "temporarily_unavailable";
    default: return status >= 500 ? "internal_error" : "error";
  }
}

// httplib's worker pool with a bound on waiting connections: when `max_queued` connections wait,
// enqueue() blocks the acceptor until a worker takes one, so memory stays bounded and the rest
// waits in the kernel's listen backlog.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override = default;

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    lock.unlock();
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // shut down and drained
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }

  std::size_t max_queued_;
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable space_;
};

}  // namespace

// --- Server

struct Server::Impl {
  ServerOptions options;
  httplib::Server server;
  std::map<std::string, std::map<Method, Handler>> routes;
  std::map<std::string, std::map<Method, Handler>> prefix_routes;

  // The path as log lines show it: a segment under a prefix route is left out.
  std::string shownPath(const std::string& path) const {
    for (const auto& entry : prefix_routes)
      if (path.rfind(entry.first, 0) == 0) return entry.first + "\u2026";
    return path;
  }
  std::thread acceptor;
  std::atomic<int> socket{-1};
  int port = 0;
  std::string host;
  bool started = false;
  std::atomic<std::uint64_t> served{0};

  void log(std::string_view line) const {
    if (options.log) options.log(line);
  }

  void serve(const std::map<Method, Handler>& methods, const httplib::Request& req,
             httplib::Response& res) const {
    Response out;
    const Handler* handler = nullptr;
    for (const auto& [method, h] : methods)
      if (req.method == methodName(method)) handler = &h;
    if (handler == nullptr && req.method == "HEAD") {
      if (auto get = methods.find(Method::Get); get != methods.end()) handler = &get->second;
    }
    if (handler == nullptr) {
      std::string allow;
      for (const auto& entry : methods) {
        if (!allow.empty()) allow += ", ";
        allow += methodName(entry.first);
      }
      out = jsonError(405, "method_not_allowed", "allowed: " + allow);
      out.header("Allow", allow);
    } else {
      out = (*handler)(Request(req));
    }
    res.status = out.status;
    for (auto& [name, value] : out.headers) res.set_header(name, value);
    if (!out.body.empty()) res.set_content(out.body, out.content_type);
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  route(Method::Get, "/healthz", [](const Request&) {
    Response r;
    r.body = R"({"status":"ok"})";
    r.header("Cache-Control", "no-store");
    return r;
  });
}

Server::~Server() { stop(); }

void Server::route(Method method, const std::string& path, Handler handler) {
  impl_->routes[path][method] = std::move(handler);
}

void Server::routePrefix(Method method, const std::string& prefix, Handler handler) {
  impl_->prefix_routes[prefix][method] = std::move(handler);
}

core::Status Server::start() {
  Impl& d = *impl_;
  if (d.started) return core::makeError(core::ErrorKind::Internal, "http server started twice");
  auto listen = parseListen(d.options.listen);
  if (!listen) return listen.error();
  d.host = listen->first;
  const int wanted_port = listen->second;

  httplib::Server& svr = d.server;
  const std::size_t threads = std::max<std::size_t>(1, d.options.threads);
  const std::size_t queue = std::max<std::size_t>(1, d.options.queue);
  svr.new_task_queue = [threads, queue] { return new BoundedPool(threads, queue); };
  svr.set_payload_max_length(d.options.max_body_bytes);
  svr.set_read_timeout(d.options.read_timeout);
  svr.set_write_timeout(d.options.write_timeout);
  svr.set_keep_alive_timeout(static_cast<time_t>(d.options.keep_alive_timeout.count()));
  svr.set_keep_alive_max_count(d.options.keep_alive_max_requests);
  svr.set_tcp_nodelay(true);
  // SO_REUSEADDR only (httplib's default may add SO_REUSEPORT, which would let a second
  // server bind the same port without an error). The socket is kept to raise the backlog.
  svr.set_socket_options([&d](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    d.socket = sock;
  });
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        const Response e = jsonError(res.status, errorCode(res.status));
        res.set_content(e.body, e.content_type);
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_exception_handler([&d](const httplib::Request& req, httplib::Response& res,
                                 std::exception_ptr) {
    d.log("http: " + req.method + " " + d.shownPath(req.path) + ": handler failed");
    const Response e = jsonError(500, "internal_error");
    res.status = 500;
    res.set_content(e.body, e.content_type);
  });
  svr.set_logger([&d](const httplib::Request& req, const httplib::Response& res) {
    ++d.served;
    if (d.options.log)
      d.log("http: " + req.method + " " + d.shownPath(req.path) + " " +
            std::to_string(res.status) +
            " from " + req.remote_addr);
  });
  std::vector<std::pair<std::string, const std::map<Method, Handler>*>> patterns;
  for (const auto& [path, methods] : d.routes) patterns.emplace_back(regexEscape(path), &methods);
  for (const auto& [prefix, methods] : d.prefix_routes)
    patterns.emplace_back(regexEscape(prefix) + "[A-Za-z0-9_-]{1,128}", &methods);
  for (const auto& [pattern, methods_ptr] : patterns) {
    const std::map<Method, Handler>& methods = *methods_ptr;
    auto handler = [&d, &methods = methods](const httplib::Request& req, httplib::Response& res) {
      d.serve(methods, req, res);
    };
    svr.Get(pattern, handler);
    svr.Post(pattern, handler);
    svr.Put(pattern, handler);
    svr.Patch(pattern, handler);
    svr.Delete(pattern, handler);
    svr.Options(pattern, handler);
  }

  if (wanted_port == 0) {
    d.port = svr.bind_to_any_port(d.host);
    if (d.port <= 0) d.port = 0;
  } else if (svr.bind_to_port(d.host, wanted_port)) {
    d.port = wanted_port;
  }
  if (d.port == 0)
    return core::makeError(core::ErrorKind::Permanent,
                           "cannot listen on " + d.options.listen +
                               " (address in use, not permitted, or not local)",
                           "http.listen", "choose another address or port");
  // httplib listens with a backlog of 5; bursts of new connections (a reverse proxy opening one
  // per auth subrequest) need more. listen() again on a listening socket sets a new backlog.
  if (d.socket >= 0) ::listen(d.socket, SOMAXCONN);
  d.started = true;
  d.acceptor = std::thread([&svr] { svr.listen_after_bind(); });
  // stop() only takes effect once the accept loop runs: wait for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!svr.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!svr.is_running()) {
    stop();
    return core::makeError(core::ErrorKind::Internal, "http server did not start accepting");
  }
  d.log("http: listening on " + address());
  return {};
}

void Server::stop() {
  Impl& d = *impl_;
  if (!d.started) return;
  d.server.stop();
  if (d.acceptor.joinable()) d.acceptor.join();
  d.started = false;
}

bool Server::running() const { return impl_->started && impl_->server.is_running(); }

int Server::port() const { return impl_->port; }

std::string Server::address() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

std::uint64_t Server::requestsServed() const { return impl_->served.load(); }

}  // namespace certgate::http
