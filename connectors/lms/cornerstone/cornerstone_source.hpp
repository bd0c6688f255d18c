#pragma once
// The `cornerstone` LMS source: reads completions and scores from Cornerstone OnDemand's Reporting
// API (OData v4 over the real-time data warehouse), view vw_rpt_transcript, incrementally on
// _last_touched_dt_utc, with the learners' employee id and email from vw_rpt_user.
//
// Contract (see docs/connectors.md, section "cornerstone"):
//  - makeSource() validates the options and reads the client secret (registering it with the
//    redactor); no network I/O.
//  - Auth: OAuth 2.0 client credentials at {base_url}/services/api/oauth2/token (a JSON body,
//    as Cornerstone's samples send it); the token is cached and renewed before it expires, and a
//    401 from the API fetches a new one once.
//  - fetch() asks GET {base}/services/api/x/odata/api/views/vw_rpt_transcript?$select=...&
//    $filter=_last_touched_dt_utc ge (cursor - overlap) with Prefer: odata.maxpagesize=N and
//    follows @odata.nextLink (on the same origin) until an answer has none. For the learners of
//    each page not seen yet in this fetch, vw_rpt_user is read ($filter on user_id, a few dozen
//    at a time) for user_ref (employee id) and user_email.
//  - Every request (token, transcript, user pages, retries) first passes a client-side rate
//    limiter, at most `requests_per_minute` in any 60 s; 429 answers are retried after their
//    Retry-After.
//  - Each transcript page with rows is one unit keyed by the SHA-256 of its body, marked
//    incremental. Complete only when the paging ended with an answer without nextLink; a page
//    that fails (5xx, 429 after retries, not an OData collection, a user page that fails) makes
//    the fetch incomplete with the page in the problem, and the cursor stays. 401/403 (after one
//    token renewal) is an Auth error of the whole fetch.
//  - The next cursor is the latest _last_touched_dt_utc seen, never earlier than the previous
//    one. Never throws. One fetch at a time per source.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::cornerstone {

// The declared configuration of kind "cornerstone".
const ports::ConfigSpec& spec();

// Validates `options`, reads `client_secret` through `secrets`. Errors are Invalid, name the key
// and carry the option's `where`. `client_options` carries test seams (sleep, clock); `monotonic`
// is the rate limiter's clock (default: steady_clock), its waits use client_options.sleep.
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {},
    std::function<std::chrono::milliseconds()> monotonic = {});

}  // namespace certgate::connectors::cornerstone
