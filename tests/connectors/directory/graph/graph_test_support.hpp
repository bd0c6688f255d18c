#pragma once
// Shared set-up for the graph connector tests: a started GraphFake, a connector pointed at it
// with recorded (never real) sleeps and an injected clock, and id helpers.

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "connectors/common/redact.hpp"
#include "connectors/directory/graph/graph_directory.hpp"
#include "fakes/graph/graph_fake.hpp"
#include "ports/config_spec.hpp"
#include "ports/directory.hpp"

namespace certgate::testing::graph_support {

namespace http = certgate::connectors::http;

// Entra object ids: GUIDs. uid(7) = "00000000-0000-4000-8000-000000000007".
inline std::string uid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}
inline std::string gid(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "90000000-0000-4000-8000-%012d", n);
  return buf;
}

inline ports::OptionValue scalar(std::string v) {
  ports::OptionValue o;
  o.scalar = std::move(v);
  o.shape = ports::OptionValue::Shape::Scalar;
  o.where = "certgate.yaml:12:7";
  return o;
}

inline ports::OptionValue secretRef(std::string file) {
  ports::OptionValue o;
  o.map = {{"file", std::move(file)}};
  o.shape = ports::OptionValue::Shape::Map;
  o.where = "certgate.yaml:14:7";
  return o;
}

inline GraphUser person(int n, std::string employee_type = "Employee") {
  GraphUser u;
  u.id = uid(n);
  u.user_principal_name = "user" + std::to_string(n) + "@contoso.example";
  u.mail = "User" + std::to_string(n) + "@Contoso.example";
  u.employee_id = "E" + std::to_string(10000 + n);
  u.display_name = "User " + std::to_string(n);
  u.employee_type = std::move(employee_type);
  return u;
}

struct Env {
  GraphFake fake;
  std::vector<http::Millis> sleeps;
  std::int64_t now = 1'700'000'000;
  std::shared_ptr<http::Redactor> redactor = std::make_shared<http::Redactor>();
  std::vector<std::pair<std::string, ports::OptionValue>> extra;

  explicit Env(GraphFakeOptions options = {}) : fake(std::move(options)) { fake.start(); }

  ports::Options options() const {
    ports::Options o;
    o.where = "certgate.yaml:10:3";
    o.values = {{"url", scalar(fake.baseUrl())},
                {"tenant", scalar(fake.options().tenant)},
                {"client_id", scalar(fake.options().client_id)},
                {"client_secret", secretRef("graph.secret")},
                {"token_url", scalar(fake.tokenUrl())}};
    for (const auto& e : extra) {
      bool replaced = false;
      for (auto& v : o.values)
        if (v.first == e.first) {
          v.second = e.second;
          replaced = true;
        }
      if (!replaced) o.values.push_back(e);
    }
    return o;
  }

  ports::SecretReader secrets() const {
    const std::string value = fake.options().client_secret;
    return [value](const ports::OptionValue& ref) -> core::Result<std::string> {
      for (const auto& [k, v] : ref.map)
        if (k == "file" && v == "graph.secret") return value;
      return core::makeError(core::ErrorKind::Auth, "secret reference not found", ref.where);
    };
  }

  http::ClientOptions clientOptions() {
    http::ClientOptions o;
    o.sleep = [this](http::Millis d) { sleeps.push_back(d); };
    o.random01 = [] { return 0.5; };
    o.now_unix_s = [this] { return now; };
    o.connect_timeout = std::chrono::milliseconds(2000);
    return o;
  }

  core::Result<std::unique_ptr<ports::Directory>> tryMake() {
    return connectors::graph::makeDirectory("entra", options(), "/etc/certgate", secrets(),
                                            redactor, clientOptions());
  }

  std::unique_ptr<ports::Directory> make() {
    auto d = tryMake();
    if (!d) throw std::runtime_error("makeDirectory failed: " + d.error().describe());
    return std::move(*d);
  }

  // Graph requests logged since `from` (index into fake.requests()).
  std::vector<GraphLoggedRequest> since(std::size_t from) const {
    auto all = fake.requests();
    return {all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())), all.end()};
  }
};

}  // namespace certgate::testing::graph_support
