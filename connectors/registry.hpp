#pragma once
// The one explicit list of built-in connectors. Adding a connector means adding it here; there
// is no self-registration.

#include <memory>
#include <string>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/directory.hpp"
#include "ports/gateway.hpp"
#include "ports/lms_source.hpp"

namespace certgate::store {
class Store;
}

namespace certgate::connectors {

enum class ConnectorRole { LmsSource, Directory, Gateway };
const char* toString(ConnectorRole role);

struct ConnectorInfo {
  const ports::ConfigSpec* spec;
  ConnectorRole role;
};

// Every built-in connector, in a stable order.
std::vector<ConnectorInfo> all();

// The spec of an LMS source kind, or nullptr when no such kind exists.
const ports::ConfigSpec* lmsSpec(const std::string& kind);

// Builds an LMS source (no network I/O; secrets, for the kinds that have any, are read through
// `secrets` and registered with `redactor`). Errors name the offending option.
core::Result<std::unique_ptr<ports::LmsSource>> makeLmsSource(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets = {},
    std::shared_ptr<http::Redactor> redactor = nullptr, http::ClientOptions client_options = {});

// The spec of a directory kind, or nullptr when no such kind exists.
const ports::ConfigSpec* directorySpec(const std::string& kind);

// Builds a directory connector (no network I/O; secrets are read through `secrets` and
// registered with `redactor`). Errors name the offending option.
core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets,
    std::shared_ptr<http::Redactor> redactor, http::ClientOptions client_options = {});

// The spec of a gateway kind, or nullptr when no such kind exists.
const ports::ConfigSpec* gatewaySpec(const std::string& kind);

// Builds a gateway connector (no network I/O; secrets read through `secrets`). Kind `builtin`
// (certgate's own token authority) keeps its tokens in `store` (borrowed, used from the
// caller's thread; required for that kind, ignored by the others).
core::Result<std::unique_ptr<ports::Gateway>> makeGateway(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets,
    std::shared_ptr<http::Redactor> redactor, http::ClientOptions client_options = {},
    store::Store* store = nullptr);

// Warnings a directory's options deserve at start-up (e.g. Okta with an SSWS API token).
std::vector<std::string> directoryWarnings(const std::string& kind, const ports::Options& options);

}  // namespace certgate::connectors
