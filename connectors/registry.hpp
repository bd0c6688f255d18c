#pragma once
// The one explicit list of built-in connectors. Adding a connector means adding it here; there
// is no self-registration.

#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors {

enum class ConnectorRole { LmsSource };

struct ConnectorInfo {
  const ports::ConfigSpec* spec;
  ConnectorRole role;
};

// Every built-in connector, in a stable order.
std::vector<ConnectorInfo> all();

// The spec of an LMS source kind, or nullptr when no such kind exists.
const ports::ConfigSpec* lmsSpec(const std::string& kind);

// Builds an LMS source (no I/O). Errors name the offending option.
core::Result<std::unique_ptr<ports::LmsSource>> makeLmsSource(const std::string& kind,
                                                              const std::string& name,
                                                              const ports::Options& options,
                                                              const std::string& base_dir);

}  // namespace certgate::connectors
