#pragma once
// The directory port: an identity provider whose group memberships certgate reconciles
// (a SCIM 2.0 service provider, Okta, Microsoft Entra ID through Graph).
//
// Contract:
//  - Constructors do no I/O. connect() does discovery (SCIM /ServiceProviderConfig), obtains a
//    token when the auth needs one, and fails early with an Auth error for bad credentials.
//    Every other call may assume connect() succeeded; a connector calls it itself when it was
//    not called.
//  - Reads (resolveGroup, findUsers, listMembers, listRoster) never mutate the directory.
//  - Writes are idempotent: adding a present member or removing an absent one is a success
//    whose MemberOutcome::no_op is true. A connector never deletes or disables a user.
//  - Errors are classified with core::ErrorKind: Transient, RateLimited (retry_after_s set),
//    Auth (401/403: the engine quarantines the connector for the run), NotFound, Conflict,
//    Invalid, Permanent. Messages name the directory, the operation and the object, and carry
//    the backend's own error text (SCIM scimType/detail, Okta errorCode/errorSummary, Graph
//    error.code/message); never a token or secret.
//  - Pacing against the backend's rate limits (Okta X-Rate-Limit-*, Graph/SCIM Retry-After) is
//    the connector's job; the engine only bounds concurrency and retries whole operations.
//  - Thread-safety: one instance is used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace certgate::ports {

// A user as the directory holds it. Connectors fill what the backend returned; fields the
// backend did not return stay empty (SCIM group members carry only id and display name).
struct DirectoryUser {
  std::string id;            // the directory's immutable user id (SCIM id, Okta id, Entra objectId)
  std::string user_name;     // SCIM userName, Okta profile.login, Entra userPrincipalName
  std::string email;         // primary/work email
  std::string employee_id;   // employee number (SCIM enterprise employeeNumber, Okta
                             // profile.employeeNumber, Entra employeeId)
  std::string external_id;   // SCIM externalId; others leave it empty
  std::string display_name;
  std::string population;    // the value of the connector's configured population attribute
  bool active = true;        // false: suspended/disabled/deprovisioned in the directory
};

// The person attribute a lookup matches on. Each connector maps these to its own attribute
// names (documented in docs/connectors.md) and may accept a raw backend attribute via `Custom`.
enum class UserAttribute : std::uint8_t { UserName, Email, EmployeeId, ExternalId, Id, Custom };
inline const char* toString(UserAttribute a) {
  switch (a) {
    case UserAttribute::UserName: return "user_name";
    case UserAttribute::Email: return "email";
    case UserAttribute::EmployeeId: return "employee_id";
    case UserAttribute::ExternalId: return "external_id";
    case UserAttribute::Id: return "id";
    case UserAttribute::Custom: return "custom";
  }
  return "?";
}

struct UserQuery {
  UserAttribute attribute = UserAttribute::Email;
  std::string custom;  // backend attribute name when attribute == Custom
  std::string value;
};

// A group resolved through the directory.
struct GroupRef {
  std::string id;            // the directory's group id
  std::string display_name;  // as the directory names it
  bool writable = true;      // false: certgate must not change it (e.g. an Okta APP_GROUP)
  std::string not_writable_why;
  std::string etag;          // SCIM ETag of the group when the provider offers ETags
};

// What the backend allows, learnt from configuration or discovery.
struct DirectoryCapabilities {
  std::size_t max_add_batch = 1;     // members per add call
  std::size_t max_remove_batch = 1;  // members per remove call
  std::size_t page_size = 100;       // members per page when observing
  bool bulk = false;                 // SCIM Bulk / Graph $batch in use
  bool etag = false;
  bool roster = false;               // listRoster is configured
};

// Per member of a write call. A failed member does not fail the batch.
struct MemberOutcome {
  std::string user_id;
  core::Status status;  // ok, or the classified error for this member
  bool no_op = false;   // ok and nothing changed (already a member / already absent)
};

class Directory {
 public:
  virtual ~Directory() = default;
  virtual const std::string& name() const = 0;  // the directory's configured name
  virtual const char* kind() const = 0;          // "scim", "okta", "graph"

  virtual core::Status connect() = 0;
  virtual DirectoryCapabilities capabilities() const = 0;

  // `id_or_name` is a group id, or a display name resolved through the directory and cached
  // for the life of the instance. NotFound or Conflict (ambiguous) name the group.
  virtual core::Result<GroupRef> resolveGroup(const std::string& id_or_name) = 0;

  // Users matching the query exactly (case-insensitively where the backend's attribute is, e.g.
  // SCIM userName). Zero, one or several: the caller decides what ambiguity means.
  virtual core::Result<std::vector<DirectoryUser>> findUsers(const UserQuery& query) = 0;

  // Streams every current member of the group, page by page, to `sink`. OK only when every page
  // was read and paging ended normally: a partial observation is an error, never a short list.
  virtual core::Status listMembers(const GroupRef& group,
                                   const std::function<void(DirectoryUser&&)>& sink) = 0;

  // Streams the in-scope roster (users matching the configured roster filter). Invalid when
  // the connector has no roster filter configured.
  virtual core::Status listRoster(const std::function<void(DirectoryUser&&)>& sink) = 0;

  // Adds/removes the users (directory ids) in as few calls as the backend allows. The result
  // has one outcome per requested id, in request order. A whole-call failure (auth, transport
  // after retries) is returned as the error instead.
  virtual core::Result<std::vector<MemberOutcome>> addMembers(
      const GroupRef& group, const std::vector<std::string>& user_ids) = 0;
  virtual core::Result<std::vector<MemberOutcome>> removeMembers(
      const GroupRef& group, const std::vector<std::string>& user_ids) = 0;

  // HTTP requests made so far (for benchmarks and `sync` summaries).
  virtual std::uint64_t requestCount() const = 0;
};

}  // namespace certgate::ports
