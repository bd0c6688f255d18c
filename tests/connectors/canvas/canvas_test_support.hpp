#pragma once
// Helpers for the canvas connector tests: fixtures, options and a source wired to the loopback
// Canvas fake with a recording sleeper (no test ever sleeps).

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "connectors/csv/test_support.hpp"
#include "connectors/lms/canvas/canvas_source.hpp"
#include "fakes/canvas/canvas_fake.hpp"
#include "support/recorded_sleeps.hpp"

namespace certgate::testing::canvas_support {

using Json = nlohmann::json;
using Sleeps = RecordedSleeps;

inline const std::string kToken = "canvas-token-8c1e";

inline Json fixture(const std::string& name) {
  std::ifstream in(std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/canvas/" + name);
  std::stringstream buf;
  buf << in.rdbuf();
  return Json::parse(buf.str());
}

// Options for the fake: the token from a secret file, courses 1234 and 1240, `extra` on top.
inline ports::Options options(const canvas::CanvasFake& site,
                              std::vector<std::pair<std::string, std::string>> extra = {},
                              std::vector<std::string> courses = {"1234", "1240"}) {
  OptionsBuilder b;
  b.set("url", site.url());
  b.map("token", {{"file", "/etc/certgate/canvas-token"}});
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
      if (k == "file" && v == "/etc/certgate/canvas-token") return token + "\n";
    return core::makeError(core::ErrorKind::NotFound, "no such secret file");
  };
}

inline std::unique_ptr<ports::LmsSource> makeSource(
    const ports::Options& o, Sleeps& sleeps, const ports::SecretReader& reader = secrets(),
    std::shared_ptr<connectors::http::Redactor> redactor =
        std::make_shared<connectors::http::Redactor>()) {
  auto made = connectors::canvas::makeSource("canvas", o, "/etc/certgate", reader,
                                             std::move(redactor), sleeps.clientOptions());
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

}  // namespace certgate::testing::canvas_support
