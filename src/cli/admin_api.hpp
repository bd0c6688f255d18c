#pragma once
// The daemon's HTTP endpoints besides the token authority's (docs/operations.md, "HTTP API"):
//
//   GET  /readyz                 200 when the store answers, the last run did not fail and no
//                                connector was quarantined in it; 503 with the reasons otherwise
//   GET  /metrics                Prometheus text format (no secrets; no token needed)
//   /v1/...                      the admin API: `Authorization: Bearer <http.admin_token>`,
//                                compared in constant time; 401 without it
//   POST /hooks/lms/<source>     a learning system's push, signed in the Standard Webhooks
//                                style with the source's push_secret, or (push_auth: jwt) a
//                                body that is a JWT signed RS256 by a key of push_jwks
//
// The /v1 endpoints run the matching `certgate ... --format json` command in-process, against
// the configuration the daemon runs with, so the API and the CLI answer alike. Every response
// body is scrubbed of the secrets the daemon holds before it leaves.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "connectors/common/jwks.hpp"
#include "http/server.hpp"
#include "ports/clock.hpp"
#include "settings/settings.hpp"

namespace certgate::cli {

// A run asked for ahead of the schedule.
struct DaemonJob {
  std::string person;                // "" = everybody
  std::vector<std::string> sources;  // fetch these first (empty: none; `fetch_all`: every one)
  bool fetch_all = false;
  std::string why;                   // "push source/id", "api", ...
};

struct Readiness {
  bool ready = false;
  std::vector<std::string> reasons;  // why not ready
};

struct AdminApiContext {
  std::string config_path;
  // The configuration in use (never null once mounted).
  std::function<std::shared_ptr<const settings::Settings>()> settings;
  std::string admin_token;  // empty: the admin API refuses every request (401)
  // Queues a run; returns its job number.
  std::function<std::uint64_t(DaemonJob)> enqueue;
  // The daemon's own state for GET /v1/daemon, and for /readyz.
  std::function<nlohmann::json()> state;
  std::function<Readiness()> readiness;
  const ports::Clock* clock = nullptr;
  // Secret values read by the daemon: never sent in a response.
  std::vector<std::string> secrets;
  std::function<void(std::string_view)> log;
  // Pushes: at most this many webhook ids are remembered per source (replays within the
  // timestamp tolerance are refused), and this tolerance applies to webhook-timestamp.
  std::size_t replay_memory = 100000;
  std::int64_t timestamp_tolerance_s = 300;
};

// Registers /readyz, /metrics, /v1/... and /hooks/lms/ on `server` (before it starts).
void mountAdminApi(http::Server& server, std::shared_ptr<AdminApiContext> context);

// The signing keys of a source with push_auth jwt: its push_jwks file read and parsed. Errors
// name the file and say what to do; read at daemon start and at every push.
core::Result<std::vector<connectors::jwt::Jwk>> readPushJwks(const settings::SourceSettings& src);

// True when `header` is "Bearer <token>" for `token` (non-empty), compared in constant time.
bool bearerMatches(std::string_view header, std::string_view token);

}  // namespace certgate::cli
