#pragma once
// Helpers for the moodle connector tests: fixtures, options and a source wired to the loopback
// Moodle fake with a recording sleeper (no test ever sleeps).

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "connectors/csv/test_support.hpp"
#include "connectors/lms/moodle/moodle_source.hpp"
#include "fakes/moodle/moodle_fake.hpp"
#include "support/recorded_sleeps.hpp"

namespace certgate::testing::moodle_support {

using Json = nlohmann::json;

inline const std::string kToken = "moodle-ws-token-5f2e";

inline Json fixture(const std::string& name) {
  std::ifstream in(std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/moodle/" + name);
  std::stringstream buf;
  buf << in.rdbuf();
  return Json::parse(buf.str());
}

// Options for the fake: the token from a secret file, courses 12 and 31, `extra` scalars on top.
inline ports::Options options(const moodle::MoodleFake& site,
                              std::vector<std::pair<std::string, std::string>> extra = {},
                              std::vector<std::string> courses = {"12", "31"}) {
  OptionsBuilder b;
  b.set("url", site.url());
  b.map("token", {{"file", "/etc/certgate/moodle-token"}});
  for (auto& [k, v] : extra) b.set(k, v);
  ports::Options o = b.build();
  ports::OptionValue list;
  list.shape = ports::OptionValue::Shape::List;
  list.list = std::move(courses);
  list.where = "certgate.yaml:courses";
  o.values.emplace_back("courses", std::move(list));
  return o;
}

inline ports::SecretReader secrets(std::string token = kToken) {
  return [token](const ports::OptionValue& ref) -> core::Result<std::string> {
    for (const auto& [k, v] : ref.map)
      if (k == "file" && v == "/etc/certgate/moodle-token") return token + "\n";
    return core::makeError(core::ErrorKind::NotFound, "no such secret file");
  };
}

// Sleeps the HTTP client asked for, recorded instead of slept.
using Sleeps = RecordedSleeps;

inline std::unique_ptr<ports::LmsSource> makeSource(
    const ports::Options& o, Sleeps& sleeps, const ports::SecretReader& reader = secrets(),
    std::shared_ptr<connectors::http::Redactor> redactor =
        std::make_shared<connectors::http::Redactor>()) {
  auto made = connectors::moodle::makeSource("moodle", o, "/etc/certgate", reader,
                                             std::move(redactor), sleeps.clientOptions());
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

}  // namespace certgate::testing::moodle_support
