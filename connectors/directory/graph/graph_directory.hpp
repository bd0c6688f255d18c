#pragma once
// The `graph` directory connector: group membership in Microsoft Entra ID through Microsoft
// Graph v1.0, authenticated with the OAuth 2.0 client-credentials grant of an app registration.
//
// Contract (see docs/connectors.md, section "graph", and src/ports/directory.hpp):
//  - makeDirectory() validates the options, reads client_secret through the SecretReader and
//    registers it with the redactor; no network I/O. connect() fetches a token (Auth error for
//    bad credentials).
//  - Reads: listMembers pages GET /groups/{id}/members/microsoft.graph.user ($select, $top,
//    @odata.nextLink followed verbatim); a failed page fails the call. listRoster pages /users
//    with the configured $filter as an advanced query (ConsistencyLevel: eventual, $count=true).
//  - Writes: adds are PATCH /groups/{id} with up to 20 members@odata.bind, up to 20 PATCHes per
//    POST /$batch (400 members per HTTP request). A PATCH is all or nothing, so a chunk refused
//    for one member (already present, missing) is retried member by member with
//    POST /groups/{id}/members/$ref. Removals are DELETE /groups/{id}/members/{id}/$ref, 20 per
//    $batch. "Already a member" and "not a member" answers are confirmed by reading the
//    membership back and then reported as no_op successes. A DELETE under /groups/ without
//    /$ref (which deletes the user object itself) is never sent: the request layer refuses it.
//  - Only Entra object ids (GUIDs) are put into request paths.
//  - Groups with dynamic membership, groups synchronised from on-premises AD, mail-enabled
//    security groups and distribution groups resolve as not writable; writes to them are refused
//    before any request.
//  - 429, 503 and 504 (also per request inside a $batch) are retried after Retry-After, or with
//    exponential backoff and full jitter when the header is absent, through the injected sleep;
//    only the throttled requests of a batch are re-sent. A 401 drops the token, fetches a new
//    one and retries once; a second 401 is an Auth error.
//  - Errors carry Graph's error.code, error.message and innerError.request-id.
// Thread-safety: one instance is used by one thread at a time (ports::Directory).

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "connectors/common/redact.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/directory.hpp"

namespace certgate::connectors::graph {

// The declared configuration of kind "graph".
const ports::ConfigSpec& spec();

// Validates `options`, reads the secret through `secrets` and registers it with `redactor`.
// Relative ca_file paths resolve against `base_dir`. `client_options` carries the test seams
// (sleep, random01, now_unix_s); ca_file and timeout from the options override it.
core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

}  // namespace certgate::connectors::graph
