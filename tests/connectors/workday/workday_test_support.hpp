#pragma once
// Helpers for the workday connector tests: the fixture report, option building and a source
// wired to the loopback RaaS fake with a recording sleeper (no test ever sleeps).

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
#include "connectors/lms/workday/workday_source.hpp"
#include "fakes/workday/workday_fake.hpp"

namespace certgate::testing::workday_support {

using Json = nlohmann::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

inline Json fixture(const std::string& name) {
  std::ifstream in(std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/workday/" + name);
  std::stringstream buf;
  buf << in.rdbuf();
  return Json::parse(buf.str());
}

// The field mapping of the fixture report.
inline const Pairs kFields = {{"worker_id", "Employee_ID"},
                              {"email", "Worker_group.Primary_Work_Email"},
                              {"name", "Worker"},
                              {"course_id", "Learning_Content_ID"},
                              {"completed_at", "Completion_Date"},
                              {"status", "Completion_Status"},
                              {"score", "Score"},
                              {"max_score", "Max_Score"},
                              {"attempt", "Attempt"},
                              {"expires_at", "Expiration_Date"}};

struct OptionsBuilder {
  ports::Options o;
  OptionsBuilder() { o.where = "certgate.yaml:20:5"; }
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
  OptionsBuilder& secret(const std::string& k, const std::string& file) {
    return map(k, {{"file", file}});
  }
  OptionsBuilder& without(const std::string& k) {
    std::erase_if(o.values, [&](const auto& kv) { return kv.first == k; });
    return *this;
  }
};

// Basic auth against the fake, the fixture's fields, the fake's date prompts.
inline OptionsBuilder options(const workday::WorkdayFake& wd, bool prompts = true) {
  OptionsBuilder b;
  b.scalar("url", wd.reportUrl())
      .scalar("username", "ISU_certgate")
      .secret("password", "/etc/certgate/workday-password")
      .map("fields", kFields);
  if (prompts) b.scalar("from_prompt", "Completed_From").scalar("to_prompt", "Completed_To");
  return b;
}

inline ports::SecretReader secrets(Pairs table = {{"/etc/certgate/workday-password", "isu-secret"},
                                                  {"/etc/certgate/wd-client-secret", "client-secret-1"},
                                                  {"/etc/certgate/wd-refresh", "refresh-token-1"}}) {
  return [table](const ports::OptionValue& ref) -> core::Result<std::string> {
    for (const auto& [k, v] : ref.map)
      for (const auto& [file, value] : table)
        if (k == "file" && v == file) return value + "\n";
    return core::makeError(core::ErrorKind::NotFound, "no such secret file");
  };
}

// Sleeps the HTTP client asked for, recorded instead of slept.
struct Sleeps {
  std::mutex mu;
  std::vector<std::chrono::milliseconds> waits;
  connectors::http::ClientOptions clientOptions() {
    connectors::http::ClientOptions c;
    c.sleep = [this](connectors::http::Millis d) {
      std::lock_guard lock(mu);
      waits.push_back(d);
    };
    c.random01 = [] { return 0.0; };
    return c;
  }
};

inline core::Result<std::unique_ptr<ports::LmsSource>> tryMake(
    const OptionsBuilder& b, Sleeps& sleeps,
    std::shared_ptr<connectors::http::Redactor> redactor = std::make_shared<connectors::http::Redactor>()) {
  return connectors::workday::makeSource("workday", b.o, "/etc/certgate", secrets(),
                                         std::move(redactor), sleeps.clientOptions());
}

inline std::unique_ptr<ports::LmsSource> makeSource(const OptionsBuilder& b, Sleeps& sleeps) {
  auto made = tryMake(b, sleeps);
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

}  // namespace certgate::testing::workday_support
