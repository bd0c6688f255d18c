#pragma once
// The `moodle` LMS source: reads activity completions and quiz attempts of the configured
// courses through Moodle's REST web services (POST {url}/webservice/rest/server.php,
// moodlewsrestformat=json, token auth with `wstoken`).
//
// Contract (see docs/connectors.md, section "moodle"):
//  - makeSource() validates the options and reads the token (registering it with the
//    redactor); no network I/O.
//  - fetch() reads, for each configured course: the course's quizzes
//    (mod_quiz_get_quizzes_by_courses), its enrolled users in pages of `page_size`
//    (core_enrol_get_enrolled_users with limitfrom/limitnumber), and for each user the activity
//    completion statuses (core_completion_get_activities_completion_status) and the finished
//    attempts at every quiz (mod_quiz_get_user_attempts). Every call is a POST whose form body
//    carries the token, so the token never appears in a URL.
//  - Moodle answers errors with HTTP 200 and a body {"exception", "errorcode", "message"}: every
//    body is checked. invalidtoken, accessexception and the capability errors are an Auth error
//    of the whole fetch (with a hint saying what to fix in Moodle); any other exception, a body
//    that is not the documented shape, a non-200 status or a transport failure after retries
//    makes the fetch incomplete, with the course, user and function in the problem. After a
//    failed transport or 5xx the fetch stops (the site is failing); after a Moodle exception it
//    goes on with the next user, so one bad account does not hide the others.
//  - Moodle has no `since` filter: every fetch reads everything in the configured courses, and
//    facts upsert by their external ids (completion:<course>:<cmid>:<user>, attempt:<attempt
//    id>). Each page of enrolled users, with all its users' answers, is one unit keyed by the
//    SHA-256 of those answers: a page whose answers did not change since it was last stored is
//    skipped. Units are incremental (their record counts differ by page and are not compared).
//    The cursor is always empty.
//  - Complete only when every call of every course answered without an exception and the user
//    paging ended with a short page.
//  - Memory is one page of users and their answers. Never throws. One fetch at a time per source.

#include <memory>
#include <string>

#include "connectors/common/http_client.hpp"
#include "core/result.hpp"
#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::connectors::moodle {

// The declared configuration of kind "moodle".
const ports::ConfigSpec& spec();

// Validates `options` and reads `token` through `secrets`. Errors are Invalid, name the key and
// carry the option's `where`. A relative `ca_file` resolves against `base_dir`.
// `client_options` carries test seams (sleep, clock).
core::Result<std::unique_ptr<ports::LmsSource>> makeSource(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options = {});

}  // namespace certgate::connectors::moodle
