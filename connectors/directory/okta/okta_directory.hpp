#pragma once
// The `okta` directory: group memberships in an Okta org through the Okta Management API
// (https://developer.okta.com/docs/api/openapi/okta-management/management/tag/Group/).
//
// Contract (see docs/connectors.md, section "okta"):
//  - makeDirectory() validates the options, reads the secrets (and registers them with the
//    redactor) and checks that the private key is a usable RSA key; no network I/O.
//  - connect() obtains an access token (auth: oauth) or makes one cheap read (auth: ssws), so bad
//    credentials fail early with an Auth error.
//  - Okta changes membership one user per call: PUT / DELETE /api/v1/groups/{g}/users/{u}. Both
//    are idempotent (204 whether or not the user was a member); MemberOutcome::no_op is set when
//    this instance's last complete observation of the group already had the requested state.
//  - Only OKTA_GROUP groups are writable. APP_GROUP (imported from an app such as Active
//    Directory) and BUILT_IN groups resolve with writable=false, and writes to them are refused
//    (Invalid) without a request.
//  - Paging follows the `Link: <...>; rel="next"` headers only, and only within the configured
//    org URL (a next link elsewhere is an error: the bearer token never leaves the org).
//  - Pacing: the X-Rate-Limit-Limit/Remaining/Reset headers are tracked per endpoint family
//    (group membership, group lookups, users). Before a request that would leave fewer than
//    limit * (1 - rate_limit_share) calls in the window, the connector sleeps until the window's
//    reset (corrected for clock skew with the Date header). A 429 waits for the reset, then the
//    request is repeated. 5xx and transport failures are retried with jittered backoff.
//  - Errors carry Okta's errorCode, errorSummary and errorCauses; never a token or key.
//  - One instance is used by one thread at a time.

#include <memory>
#include <string>
#include <vector>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/directory.hpp"

namespace certgate::connectors::okta {

// The declared configuration of kind "okta".
const ports::ConfigSpec& spec();

// Validates `options`, reads `private_key` (auth: oauth) or `token` (auth: ssws) through
// `secrets` and registers them with `redactor`. Errors are Invalid, name the key and carry the
// option's `where`. A relative `ca_file` resolves against `base_dir`. `client_options` carries
// test seams (sleep, clock, random); the `ca_file` and `timeout` options override it.
core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

// Warnings an operator should see at startup for these options (they are valid but not
// recommended), e.g. an SSWS API token instead of an OAuth 2.0 service app.
std::vector<std::string> startupWarnings(const ports::Options& options);

}  // namespace certgate::connectors::okta
