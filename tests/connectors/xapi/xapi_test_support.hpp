#pragma once
// Helpers for the xapi connector tests: fixtures, option building and a source wired to the
// loopback LRS fake with a recording sleeper (no test ever sleeps).

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "connectors/csv/test_support.hpp"
#include "connectors/lms/xapi/xapi_source.hpp"
#include "fakes/xapi/xapi_fake.hpp"
#include "support/recorded_sleeps.hpp"

namespace certgate::testing::xapi_support {

using Json = nlohmann::json;

inline Json fixture(const std::string& name) {
  std::ifstream in(std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/xapi/" + name);
  std::stringstream buf;
  buf << in.rdbuf();
  return Json::parse(buf.str());
}

inline const std::string kAttemptIri = "https://example.org/xapi/extensions/attempt";

// Options for the fake: basic auth, with `extra` scalar keys on top.
inline ports::Options options(const xapi::XapiFake& lrs,
                              std::vector<std::pair<std::string, std::string>> extra = {},
                              std::vector<std::string> verbs = {}) {
  ports::Options o;
  o.where = "certgate.yaml:20:5";
  auto scalar = [&](const std::string& k, const std::string& v) {
    ports::OptionValue value;
    value.scalar = v;
    value.where = "certgate.yaml:" + k;
    o.values.emplace_back(k, std::move(value));
  };
  scalar("endpoint", lrs.endpoint());
  scalar("username", "lrs-key");
  ports::OptionValue secret;
  secret.shape = ports::OptionValue::Shape::Map;
  secret.map = {{"file", "/etc/certgate/lrs-password"}};
  secret.where = "certgate.yaml:password";
  o.values.emplace_back("password", std::move(secret));
  for (auto& [k, v] : extra) {
    bool replaced = false;
    for (auto& [ek, ev] : o.values)
      if (ek == k) {
        ev.scalar = v;
        replaced = true;
      }
    if (!replaced) scalar(k, v);
  }
  if (!verbs.empty()) {
    ports::OptionValue list;
    list.shape = ports::OptionValue::Shape::List;
    list.list = std::move(verbs);
    list.where = "certgate.yaml:verbs";
    o.values.emplace_back("verbs", std::move(list));
  }
  return o;
}

// Reads secrets from a fixed table (file path -> value).
inline ports::SecretReader secrets(std::vector<std::pair<std::string, std::string>> table = {
                                       {"/etc/certgate/lrs-password", "lrs-secret"}}) {
  return [table](const ports::OptionValue& ref) -> core::Result<std::string> {
    for (const auto& [k, v] : ref.map)
      for (const auto& [file, value] : table)
        if (k == "file" && v == file) return value + "\n";
    return core::makeError(core::ErrorKind::NotFound, "no such secret file");
  };
}

// Sleeps the HTTP client asked for, recorded instead of slept.
using Sleeps = RecordedSleeps;

inline std::unique_ptr<ports::LmsSource> makeSource(const ports::Options& o, Sleeps& sleeps,
                                                    const ports::SecretReader& reader = secrets(),
                                                    std::shared_ptr<connectors::http::Redactor> redactor =
                                                        std::make_shared<connectors::http::Redactor>()) {
  auto made = connectors::xapi::makeSource("lrs", o, "/etc/certgate", reader, std::move(redactor),
                                           sleeps.clientOptions());
  if (!made) throw std::runtime_error(made.error().describe());
  return std::move(made).value();
}

inline std::int64_t us(const std::string& iso) {
  const auto t = core::parseIso(iso);
  if (!t) throw std::runtime_error("bad time " + iso);
  std::int64_t v = t->time_since_epoch().count() * 1'000'000;
  const auto dot = iso.find('.');
  if (dot != std::string::npos) {
    std::int64_t scale = 100'000;
    for (std::size_t p = dot + 1; p < iso.size() && std::isdigit(static_cast<unsigned char>(iso[p])); ++p) {
      v += (iso[p] - '0') * scale;
      scale /= 10;
    }
  }
  return v;
}

}  // namespace certgate::testing::xapi_support
