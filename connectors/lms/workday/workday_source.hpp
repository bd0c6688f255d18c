#pragma once
// The `workday` LMS source: reads learning completions and assessment results from a Workday
// custom report exposed as a Reports-as-a-Service (RaaS) web service,
// GET {url}?format=json[&<from prompt>=..&<to prompt>=..], answered {"Report_Entry": [...]}.
//
// Contract (see docs/connectors.md, section "workday"):
//  - makeSource() validates the options and reads the secrets (registering them with the
//    redactor); no network I/O.
//  - fetch() makes one request (RaaS has no paging), with HTTP Basic for an Integration System
//    User or an OAuth bearer token (refresh-token grant of an API client for integrations; a
//    401 fetches a new token once). With from/to prompts configured, the window is
//    [cursor - overlap, now] (the first fetch starts at `start`); without them the whole report
//    is read every time.
//  - The body is streamed to an anonymous temporary file while its SHA-256 is computed, then
//    read entry by entry: memory is one entry, whatever the report's size. The report is one
//    unit keyed by that hash (incremental when prompts narrow it, so the record-count collapse
//    guard applies only to whole reports).
//  - Complete only when the answer is HTTP 200 with a well-formed JSON document holding a
//    Report_Entry array. An HTML page (a login or error page), a document without Report_Entry,
//    a cut-off body, 5xx/429 after retries: incomplete, the cursor stays. 401/403: an Auth error
//    of the whole fetch.
//  - An entry that cannot be normalised is quarantined with its row, identity (worker and course
//    as far as known) and reason; an entry whose status is not a result yet is skipped.
//  - Never throws. One fetch at a time per source.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::workday {

// The declared configuration of kind "workday".
const ports::ConfigSpec& spec();

// Validates `options`, reads `password` (auth basic) or `client_secret` and `refresh_token`
// (auth oauth2) through `secrets`. Errors are Invalid, name the key and carry the option's
// `where`. A relative `ca_file` resolves against `base_dir`. `client_options` carries test seams.
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

}  // namespace certgate::connectors::workday
