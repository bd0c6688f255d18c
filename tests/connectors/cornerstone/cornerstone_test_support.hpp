#pragma once
// Helpers for the cornerstone connector tests: fixtures, option building, and a source wired to
// the loopback Reporting API fake with a test clock that moves only when the source sleeps (rate
// limiter waits and Retry-After), so no test ever sleeps.

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "connectors/csv/test_support.hpp"
#include "connectors/lms/cornerstone/cornerstone_source.hpp"
#include "fakes/cornerstone/cornerstone_fake.hpp"

namespace certgate::testing::cornerstone_support {

using Json = nlohmann::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

inline Json fixture(const std::string& name) {
  std::ifstream in(std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/cornerstone/" + name);
  std::stringstream buf;
  buf << in.rdbuf();
  return Json::parse(buf.str());
}

// A clock in milliseconds that only the source's sleeps move forward.
struct TestClock {
  std::atomic<std::int64_t> ms{1'000'000};
  std::mutex mu;
  std::vector<std::chrono::milliseconds> sleeps;
  connectors::http::ClientOptions clientOptions() {
    connectors::http::ClientOptions c;
    c.sleep = [this](connectors::http::Millis d) {
      std::lock_guard lock(mu);
      sleeps.push_back(d);
      ms += d.count();
    };
    c.random01 = [] { return 0.0; };
    c.now_unix_s = [this] { return 1'772'000'000 + ms.load() / 1000; };
    return c;
  }
  std::function<std::chrono::milliseconds()> monotonic() {
    return [this] { return std::chrono::milliseconds(ms.load()); };
  }
  std::function<std::int64_t()> stamp() {
    return [this] { return ms.load(); };
  }
};

struct OptionsBuilder {
  ports::Options o;
  OptionsBuilder() { o.where = "certgate.yaml:30:5"; }
  OptionsBuilder& scalar(const std::string& k, const std::string& v) {
    for (auto& [ek, ev] : o.values)
      if (ek == k) {
        ev.scalar = v;
        return *this;
      }
    ports::OptionValue value;
    value.scalar = v;
    value.where = "certgate.yaml:" + k;
    o.values.emplace_back(k, std::move(value));
    return *this;
  }
  OptionsBuilder& map(const std::string& k, Pairs pairs) {
    ports::OptionValue value;
    value.shape = ports::OptionValue::Shape::Map;
    value.map = std::move(pairs);
    value.where = "certgate.yaml:" + k;
    o.values.emplace_back(k, std::move(value));
    return *this;
  }
  OptionsBuilder& without(const std::string& k) {
    std::erase_if(o.values, [&](const auto& kv) { return kv.first == k; });
    return *this;
  }
};

inline OptionsBuilder options(const cornerstone::CornerstoneFake& csod) {
  OptionsBuilder b;
  b.scalar("base_url", csod.url()).scalar("client_id", "csod-client").map("client_secret", {{"file", "/etc/certgate/csod-secret"}});
  return b;
}

inline ports::SecretReader secrets(std::string value = "csod-secret") {
  return [value](const ports::OptionValue& ref) -> core::Result<std::string> {
    for (const auto& [k, v] : ref.map)
      if (k == "file" && v == "/etc/certgate/csod-secret") return value + "\n";
    return core::makeError(core::ErrorKind::NotFound, "no such secret file");
  };
}

inline core::Result<std::unique_ptr<ports::LmsSource>> tryMake(const OptionsBuilder& b, TestClock& clock,
                                                               const std::string& secret = "csod-secret") {
  return connectors::cornerstone::makeSource("csod", b.o, "/etc/certgate", secrets(secret),
                                             std::make_shared<connectors::http::Redactor>(),
                                             clock.clientOptions(), clock.monotonic());
}

inline std::unique_ptr<ports::LmsSource> makeSource(const OptionsBuilder& b, TestClock& clock,
                                                    const std::string& secret = "csod-secret") {
  auto made = tryMake(b, clock, secret);
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

}  // namespace certgate::testing::cornerstone_support
