#pragma once
// The `scim` directory connector: group memberships in any SCIM 2.0 service provider
// (RFC 7643 resource schemas, RFC 7644 protocol), through /Users, /Groups and, when offered, /Bulk.
//
// Contract (see docs/connectors.md, section "scim", and src/ports/directory.hpp):
//  - makeDirectory() validates the options, reads the secrets through the SecretReader and
//    registers them with the redactor; no network I/O.
//  - connect() reads /ServiceProviderConfig (patch, bulk maxOperations/maxPayloadSize,
//    filter maxResults, etag) and, with auth oauth2, obtains a token first. A refused credential
//    is an Auth error naming the directory.
//  - Lookups are SCIM filters with the value written as a JSON string (RFC 7644 3.4.2.2):
//    user_name -> userName eq, email -> emails.value eq, external_id -> externalId eq,
//    employee_id -> urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq,
//    id -> GET /Users/{id}, custom -> `<attribute> eq`. Results that do not carry the value are
//    dropped, so a provider that ignores a filter cannot hand back unrelated users.
//  - listMembers reads the group's `members` attribute (GET /Groups/{id}?attributes=members, one
//    request: RFC 7644 defines no paging inside a resource) or, with members_source user_filter,
//    pages GET /Users?filter=groups.value eq "{id}". listRoster pages roster_filter. Paging uses
//    startIndex/count until totalResults; an empty page before the end, a failed page or a
//    malformed page fails the whole listing (never a short list).
//  - addMembers sends one PATCH `add` operation carrying up to max_members_per_patch members;
//    removeMembers sends `remove` operations with path members[value eq "{id}"], up to
//    max_removes_per_patch per PATCH. With read_before_write the current members are read first,
//    so present members (add) and absent members (remove) are no-op successes without a write.
//    When the provider offers ETags, each PATCH carries If-Match; a 412 re-reads the group and
//    retries once. When a write needs several PATCH requests and the provider offers Bulk
//    (use_bulk auto), the PATCHes travel in POST /Bulk requests within maxOperations and
//    maxPayloadSize. A batch refused as invalid (400/409) is split in halves until the members at
//    fault are found; they get their own error outcome and the rest are written.
//  - Errors carry the SCIM error body (status, scimType, detail) and are classified: 401/403
//    Auth, 404 NotFound, 409/412 Conflict, 400 Invalid, 429 RateLimited (Retry-After), 5xx and
//    transport Transient. GET, PATCH and Bulk requests are retried (they are idempotent for
//    membership), honouring Retry-After through the client's injected sleeper.
//  - Not thread-safe: one instance is used by one thread at a time.

#include <memory>
#include <string>
#include <string_view>

#include "connectors/common/http_client.hpp"
#include "connectors/common/redact.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/directory.hpp"

namespace certgate::connectors::scim {

// The declared configuration of kind "scim".
const ports::ConfigSpec& spec();

// Validates `options` against spec(); reads `token` / `client_secret` through `secrets` and adds
// them to `redactor`. Errors are Invalid, name the key and carry the option's `where` and a hint.
// `client_options` carries the test seams (sleep, clock, random) and defaults such as ca_file.
core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

// A SCIM filter comparison value: a JSON string with `"` and `\` escaped and control characters
// as \uXXXX (RFC 7644 3.4.2.2 compValue, RFC 8259 section 7). Includes the quotes.
std::string filterString(std::string_view value);

// Percent-encodes everything but RFC 3986 unreserved characters (for query values and ids in
// paths).
std::string urlEncode(std::string_view value);

}  // namespace certgate::connectors::scim
