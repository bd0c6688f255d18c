#pragma once
// The secret reader handed to connectors (registry makeLmsSource and makeGateway): reads a
// {file: PATH} or {credential: NAME} reference through settings::readSecret, relative to the
// config file's directory, and registers the value with `redactor` so it never reaches a log.

#include <memory>
#include <string>

#include "connectors/common/redact.hpp"
#include "ports/config_spec.hpp"
#include "settings/settings.hpp"

namespace certgate::cli::detail {

inline ports::SecretReader lmsSecretReader(const settings::Settings& s,
                                           std::shared_ptr<connectors::http::Redactor> redactor) {
  const std::string base = s.base_dir;
  return [redactor = std::move(redactor), base](const ports::OptionValue& ref)
             -> core::Result<std::string> {
    settings::SecretRef r;
    for (const auto& [k, v] : ref.map) {
      if (k == "file") r.file = v;
      if (k == "credential") r.credential = v;
    }
    auto value = settings::readSecret(r, base);
    if (value && redactor) redactor->add(*value);
    return value;
  };
}

}  // namespace certgate::cli::detail
