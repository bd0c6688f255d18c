#pragma once
// The `canvas` LMS source: reads course completion (module requirements met) and graded
// submissions of the configured courses through the Canvas LMS REST API ({url}/api/v1, bearer
// token), and reads Canvas Live Events (the Canvas format, {metadata, body}) as pushes.
//
// Contract (see docs/connectors.md, section "canvas"):
//  - makeSource() validates the options and reads the token (registering it with the redactor);
//    no network I/O.
//  - fetch() reads, per course: the students (GET /courses/:id/users?enrollment_type[]=student
//    &include[]=email), their course progress (GET /courses/:id/bulk_user_progress) when
//    `progress` is on, and the graded submissions (GET /courses/:id/students/submissions
//    ?student_ids[]=all&graded_since=...&include[]=assignment&include[]=submission_history)
//    when `submissions` is on. Every list is paged with `per_page` and followed through the
//    Link header's rel="next" (only on the configured origin).
//  - Each page is one unit keyed by the SHA-256 of its body, marked incremental.
//  - Incremental: submissions are read from the cursor minus `overlap` (graded_since); the next
//    cursor is the latest graded_at seen (never earlier than the previous one), so regrades and
//    late grading come again and upsert (external id: submission:<assignment>:<user>:<attempt>).
//    Progress is read whole on every fetch (progress:<course>:<user>). The cursor names the
//    course list: another list starts from `start` again. An incomplete fetch keeps the cursor.
//  - Throttling: 429, and 403 whose body says "Rate Limit Exceeded", are retried with backoff;
//    when X-Rate-Limit-Remaining falls under `min_rate_remaining` the next request waits
//    `pace` first. A 401, or a 403 that is not throttling, is an Auth error of the whole fetch.
//  - Complete only when every page answered 200 with the documented shape and every paging
//    ended without a next link.
//  - parsePush(): the people a Live Event concerns; a course_completed event also carries its
//    completion as a record (the same external id as the polled one). Never throws.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::canvas {

// The declared configuration of kind "canvas".
const ports::ConfigSpec& spec();

// Validates `options` and reads `token` through `secrets`. Errors are Invalid, name the key and
// carry the option's `where`. A relative `ca_file` resolves against `base_dir`.
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

// Reads one Canvas Live Event (Canvas format) as a push; `source` names the source in errors.
// Canvas ids in events are global ids (shard * 10^13 + local id); they are reduced to the local
// ids the REST API uses, so pushed and polled records share external ids.
core::Result<ports::PushEvent> parseLiveEvent(std::string_view body, const std::string& source);

}  // namespace certgate::connectors::canvas
