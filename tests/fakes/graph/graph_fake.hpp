#pragma once
// A loopback fake of Microsoft Graph v1.0 group membership (users, groups, members, JSON
// batching) and of the Microsoft identity platform's client-credentials token endpoint, for the
// `graph` directory connector's tests and benchmarks.
//
// It follows /work/shared/reference/idp.md section 2 ("Microsoft Graph (Entra ID) group
// membership") and the vendor documents cited there:
//   https://learn.microsoft.com/graph/api/group-post-members      (members@odata.bind, 20 max,
//                                                                  all or nothing, 400 if present)
//   https://learn.microsoft.com/graph/api/group-delete-members    (DELETE .../$ref; without /$ref
//                                                                  the member object is deleted)
//   https://learn.microsoft.com/graph/api/group-list-members, https://learn.microsoft.com/graph/paging
//                                                                 ($top 1..999, @odata.nextLink)
//   https://learn.microsoft.com/graph/json-batching               (20 requests, ids, 424, order)
//   https://learn.microsoft.com/graph/throttling                  (429, Retry-After, per item)
//   https://learn.microsoft.com/graph/errors                      ({"error":{code,message,innerError}})
//   https://learn.microsoft.com/graph/aad-advanced-queries        (ConsistencyLevel + $count)
//   https://learn.microsoft.com/graph/api/resources/groups-overview (writable group kinds)
//   https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
// Error codes and messages are Graph's own where public code quotes them ("One or more added
// object references already exist for the following modified properties: 'members'.",
// Request_ResourceNotFound, Authorization_RequestDenied, InvalidAuthenticationToken,
// AADSTS7000215). Where the documents leave the text open (more than 20 binds, an oversized
// batch, dynamic groups), the message is the fake's own and says so in graph_fake.cpp.
//
// The fake listens on 127.0.0.1 and a kernel-chosen port, in its own threads. Its state is
// guarded by one mutex; members are kept in ordered sets, so adds, removes and paging stay
// O(log n) per member (a 100k-change benchmark runs against it). Tokens never expire by the
// clock: tests drive expiry through the connector's injected clock, or with revokeTokens().

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace certgate::testing {

struct GraphUser {
  std::string id;
  std::string user_principal_name;
  std::string mail;
  std::string employee_id;
  std::string display_name;
  std::string employee_type;
  bool account_enabled = true;
  // Further string properties, e.g. "department", "extension_abc_costCenter" or
  // "onPremisesExtensionAttributes/extensionAttribute1" (a '/' makes a nested object).
  std::map<std::string, std::string> extra;
};

struct GraphGroup {
  std::string id;
  std::string display_name;
  std::vector<std::string> group_types;  // "Unified", "DynamicMembership"
  bool mail_enabled = false;
  bool security_enabled = true;
  std::optional<bool> on_premises_sync_enabled;  // null: never synced from on-premises
};

struct GraphFakeOptions {
  std::string tenant = "contoso.onmicrosoft.com";
  std::string client_id = "0f1e2d3c-0000-4000-8000-00000000a11c";
  std::string client_secret = "fake-client-secret";
  long expires_in = 3599;
  // The app also holds User.ReadWrite.All: a DELETE of a member without /$ref then deletes the
  // user object itself (the documented trap). false: it gets 403 instead.
  bool app_can_delete_users = true;
  // false keeps only counters (benchmarks); requests() is then empty.
  bool record_requests = true;
};

// One Graph request as the fake saw it: a top-level HTTP request, or one request of a $batch.
struct GraphLoggedRequest {
  std::string method;
  std::string path;   // decoded, from the version segment: "/v1.0/groups/g1/members/u1/$ref"
  std::string query;  // raw, without '?'
  std::string body;
  std::string consistency_level;  // ConsistencyLevel header ("" when absent)
  int status = 0;
  bool in_batch = false;
  std::size_t http_index = 0;  // which top-level HTTP request carried it (0-based)
};

class GraphFake {
 public:
  explicit GraphFake(GraphFakeOptions options = {});
  ~GraphFake();
  GraphFake(const GraphFake&) = delete;
  GraphFake& operator=(const GraphFake&) = delete;

  void start();
  void stop();

  std::string origin() const;    // http://127.0.0.1:PORT
  std::string baseUrl() const;   // http://127.0.0.1:PORT/v1.0 (the connector's `url`)
  std::string tokenUrl() const;  // http://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token
  const GraphFakeOptions& options() const;

  // ---- seeding and inspection ----
  void addUser(GraphUser user);
  void addGroup(GraphGroup group);
  // Adds a user or group (nested) as a direct member; false when either is unknown.
  bool addMember(const std::string& group_id, const std::string& member_id);
  bool isMember(const std::string& group_id, const std::string& member_id) const;
  std::vector<std::string> memberIds(const std::string& group_id) const;
  bool userExists(const std::string& user_id) const;

  // ---- faults ----
  // The next `count` top-level Graph requests answer 429, with Retry-After when given.
  void throttleRequests(int count, std::optional<long> retry_after_s);
  // The next `count` requests inside $batch bodies answer 429 (the batch itself answers 200).
  void throttleBatchItems(int count, std::optional<long> retry_after_s);
  // The next `count` top-level Graph requests answer `status` (e.g. 503, 504).
  void failRequests(int count, int status, std::optional<long> retry_after_s = {});
  // Page `page` (1-based) of every paged listing answers `status` while set; 0 clears.
  void failPage(int page, int status = 500);
  // Adding this object to a group answers 400 "The source resource object or one of the objects
  // being referenced do not exist." (group-post-members: replication delay of new objects).
  void notYetReplicated(const std::string& object_id);
  // Every Graph request answers 401 InvalidAuthenticationToken while set.
  void setAlwaysUnauthorized(bool on);
  // Tokens issued so far stop being accepted (as after a key rollover).
  void revokeTokens();

  // ---- observation ----
  std::vector<GraphLoggedRequest> requests() const;
  std::size_t httpRequestCount() const;   // top-level Graph requests (token endpoint excluded)
  std::size_t tokenRequestCount() const;  // token endpoint requests, successful or not
  std::size_t tokensIssued() const;
  // Ids of directory objects deleted through DELETE /groups/{g}/members/{id} (no /$ref) or
  // DELETE /users/{id}: certgate must never cause one.
  std::vector<std::string> deletedObjects() const;
  // Requests that were a DELETE under /groups/ without a trailing /$ref, answered or refused.
  std::size_t unsafeDeleteCount() const;
  void clearLog();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace certgate::testing
