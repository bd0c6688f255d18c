#include "connectors/registry.hpp"

#include "connectors/lms/csv/csv_source.hpp"
#if defined(CERTGATE_HAVE_LMS_XAPI)
#include "connectors/lms/xapi/xapi_source.hpp"
#endif
#if defined(CERTGATE_HAVE_LMS_WORKDAY)
#include "connectors/lms/workday/workday_source.hpp"
#endif
#if defined(CERTGATE_HAVE_LMS_CORNERSTONE)
#include "connectors/lms/cornerstone/cornerstone_source.hpp"
#endif
#if defined(CERTGATE_HAVE_LMS_MOODLE)
#include "connectors/lms/moodle/moodle_source.hpp"
#endif
#if defined(CERTGATE_HAVE_LMS_CANVAS)
#include "connectors/lms/canvas/canvas_source.hpp"
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_SCIM)
#include "connectors/directory/scim/scim_directory.hpp"
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_OKTA)
#include "connectors/directory/okta/okta_directory.hpp"
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_GRAPH)
#include "connectors/directory/graph/graph_directory.hpp"
#endif
#if defined(CERTGATE_HAVE_GATEWAY_BUILTIN)
#include "connectors/gateway/builtin/builtin_gateway.hpp"
#endif
#if defined(CERTGATE_HAVE_GATEWAY_LITELLM)
#include "connectors/gateway/litellm/litellm_gateway.hpp"
#endif
#if defined(CERTGATE_HAVE_GATEWAY_KONG)
#include "connectors/gateway/kong/kong_gateway.hpp"
#endif
#if defined(CERTGATE_HAVE_GATEWAY_REST)
#include "connectors/gateway/rest/rest_gateway.hpp"
#endif

namespace certgate::connectors {

const char* toString(ConnectorRole role) {
  switch (role) {
    case ConnectorRole::LmsSource: return "lms source";
    case ConnectorRole::Directory: return "directory";
    case ConnectorRole::Gateway: return "gateway";
  }
  return "?";
}

std::vector<ConnectorInfo> all() {
  std::vector<ConnectorInfo> out{{&csv::spec(), ConnectorRole::LmsSource}};
#if defined(CERTGATE_HAVE_LMS_XAPI)
  out.push_back({&xapi::spec(), ConnectorRole::LmsSource});
#endif
#if defined(CERTGATE_HAVE_LMS_WORKDAY)
  out.push_back({&workday::spec(), ConnectorRole::LmsSource});
#endif
#if defined(CERTGATE_HAVE_LMS_CORNERSTONE)
  out.push_back({&cornerstone::spec(), ConnectorRole::LmsSource});
#endif
#if defined(CERTGATE_HAVE_LMS_MOODLE)
  out.push_back({&moodle::spec(), ConnectorRole::LmsSource});
#endif
#if defined(CERTGATE_HAVE_LMS_CANVAS)
  out.push_back({&canvas::spec(), ConnectorRole::LmsSource});
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_SCIM)
  out.push_back({&scim::spec(), ConnectorRole::Directory});
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_OKTA)
  out.push_back({&okta::spec(), ConnectorRole::Directory});
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_GRAPH)
  out.push_back({&graph::spec(), ConnectorRole::Directory});
#endif
#if defined(CERTGATE_HAVE_GATEWAY_BUILTIN)
  out.push_back({&builtin::spec(), ConnectorRole::Gateway});
#endif
#if defined(CERTGATE_HAVE_GATEWAY_LITELLM)
  out.push_back({&litellm::spec(), ConnectorRole::Gateway});
#endif
#if defined(CERTGATE_HAVE_GATEWAY_KONG)
  out.push_back({&kong::spec(), ConnectorRole::Gateway});
#endif
#if defined(CERTGATE_HAVE_GATEWAY_REST)
  out.push_back({&rest::spec(), ConnectorRole::Gateway});
#endif
  return out;
}

namespace {
const ports::ConfigSpec* specOf(ConnectorRole role, const std::string& kind) {
  for (const auto& c : all())
    if (c.role == role && c.spec->kind == kind) return c.spec;
  return nullptr;
}
std::string kindsOf(ConnectorRole role) {
  std::string known;
  for (const auto& c : all()) {
    if (c.role != role) continue;
    if (!known.empty()) known += ", ";
    known += c.spec->kind;
  }
  return known;
}
}  // namespace

const ports::ConfigSpec* lmsSpec(const std::string& kind) {
  return specOf(ConnectorRole::LmsSource, kind);
}

const ports::ConfigSpec* directorySpec(const std::string& kind) {
  return specOf(ConnectorRole::Directory, kind);
}

core::Result<std::unique_ptr<ports::LmsSource>> makeLmsSource(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets,
    std::shared_ptr<http::Redactor> redactor, http::ClientOptions client_options) {
  if (kind == "csv") return csv::makeSource(name, options, base_dir);
#if defined(CERTGATE_HAVE_LMS_XAPI)
  if (kind == "xapi")
    return xapi::makeSource(name, options, base_dir, secrets, std::move(redactor),
                            std::move(client_options));
#endif
#if defined(CERTGATE_HAVE_LMS_WORKDAY)
  if (kind == "workday")
    return workday::makeSource(name, options, base_dir, secrets, std::move(redactor),
                               std::move(client_options));
#endif
#if defined(CERTGATE_HAVE_LMS_CORNERSTONE)
  if (kind == "cornerstone")
    return cornerstone::makeSource(name, options, base_dir, secrets, std::move(redactor),
                                   std::move(client_options));
#endif
#if defined(CERTGATE_HAVE_LMS_MOODLE)
  if (kind == "moodle")
    return moodle::makeSource(name, options, base_dir, secrets, std::move(redactor),
                              std::move(client_options));
#endif
#if defined(CERTGATE_HAVE_LMS_CANVAS)
  if (kind == "canvas")
    return canvas::makeSource(name, options, base_dir, secrets, std::move(redactor),
                              std::move(client_options));
#endif
  (void)secrets;
  (void)redactor;
  (void)client_options;
  return core::makeError(core::ErrorKind::Invalid, "unknown source kind '" + kind + "'", name,
                         "known kinds: " + kindsOf(ConnectorRole::LmsSource));
}

core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets,
    std::shared_ptr<http::Redactor> redactor, http::ClientOptions client_options) {
#if defined(CERTGATE_HAVE_DIRECTORY_SCIM)
  if (kind == "scim")
    return scim::makeDirectory(name, options, base_dir, secrets, redactor, client_options);
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_OKTA)
  if (kind == "okta")
    return okta::makeDirectory(name, options, base_dir, secrets, redactor, client_options);
#endif
#if defined(CERTGATE_HAVE_DIRECTORY_GRAPH)
  if (kind == "graph")
    return graph::makeDirectory(name, options, base_dir, secrets, redactor, client_options);
#endif
  (void)options;
  (void)base_dir;
  (void)secrets;
  (void)redactor;
  (void)client_options;
  return core::makeError(core::ErrorKind::Invalid, "unknown directory kind '" + kind + "'", name,
                         "known kinds: " + kindsOf(ConnectorRole::Directory));
}

const ports::ConfigSpec* gatewaySpec(const std::string& kind) {
  return specOf(ConnectorRole::Gateway, kind);
}

core::Result<std::unique_ptr<ports::Gateway>> makeGateway(
    const std::string& kind, const std::string& name, const ports::Options& options,
    const std::string& base_dir, const ports::SecretReader& secrets,
    std::shared_ptr<http::Redactor> redactor, http::ClientOptions client_options,
    store::Store* store) {
#if defined(CERTGATE_HAVE_GATEWAY_BUILTIN)
  if (kind == "builtin") return builtin::makeGateway(name, options, store);
#endif
#if defined(CERTGATE_HAVE_GATEWAY_LITELLM)
  if (kind == "litellm")
    return litellm::makeGateway(name, options, base_dir, secrets, redactor, client_options);
#endif
#if defined(CERTGATE_HAVE_GATEWAY_KONG)
  if (kind == "kong")
    return kong::makeGateway(name, options, base_dir, secrets, redactor, client_options);
#endif
#if defined(CERTGATE_HAVE_GATEWAY_REST)
  if (kind == "rest")
    return rest::makeGateway(name, options, base_dir, secrets, redactor, client_options);
#endif
  (void)options;
  (void)base_dir;
  (void)secrets;
  (void)redactor;
  (void)client_options;
  (void)store;
  return core::makeError(core::ErrorKind::Invalid, "unknown gateway kind '" + kind + "'", name,
                         "known kinds: " + kindsOf(ConnectorRole::Gateway));
}

std::vector<std::string> directoryWarnings(const std::string& kind, const ports::Options& options) {
#if defined(CERTGATE_HAVE_DIRECTORY_OKTA)
  if (kind == "okta") return okta::startupWarnings(options);
#endif
  (void)kind;
  (void)options;
  return {};
}

}  // namespace certgate::connectors
