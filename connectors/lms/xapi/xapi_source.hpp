#pragma once
// The `xapi` LMS source: reads completions and quiz results from an xAPI 1.0.3 Learning Record
// Store through GET {endpoint}/statements (xAPI-Communication.md section 2.1.3).
//
// Contract (see docs/connectors.md, section "xapi"):
//  - makeSource() validates the options and reads the secrets (registering them with the
//    redactor); no network I/O.
//  - fetch() runs one query per configured verb (the `verb` filter takes one IRI) with
//    ascending=true, `limit` and `since` = cursor - overlap, and follows `more` (a path on the
//    endpoint's origin) until it is empty. Every request carries X-Experience-API-Version: 1.0.3.
//  - Each page with statements is one unit, keyed by the SHA-256 of its body; its records are
//    committed together. Units are marked incremental: their record counts are not compared.
//  - Complete only when every query ended with an empty `more`. A page that fails (5xx or a
//    timeout after retries, 429 after retries, a body that is not a StatementResult) makes the
//    fetch incomplete with the page in the problem; the pages before it still count. A 401/403
//    is an Auth error of the whole fetch.
//  - The next cursor is min(the latest `stored` seen, the lowest X-Experience-API-Consistent-
//    Through answered minus 1 us) -- just before consistent-through when nothing was seen --
//    never earlier than the previous cursor; an incomplete fetch keeps the previous cursor. An
//    answer without the header counts as consistent through the fetch's `now`. The cursor also names the query (endpoint and verbs): a changed query
//    starts from `start` again. Re-reading is harmless: facts upsert by statement id.
//  - Voided statements are never returned by the LRS; the voiding statements are, and each is
//    quarantined as a notice naming the voided statement id.
//  - Memory is one page. Never throws. One fetch at a time per source.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::xapi {

inline constexpr const char* kXapiVersion = "1.0.3";

// The declared configuration of kind "xapi".
const ports::ConfigSpec& spec();

// Validates `options`, reads `password` (auth basic) or `client_secret` (auth oauth2) through
// `secrets`. Errors are Invalid, name the key and carry the option's `where`. A relative
// `ca_file` resolves against `base_dir`. `client_options` carries test seams (sleep, clock).
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

}  // namespace certgate::connectors::xapi
