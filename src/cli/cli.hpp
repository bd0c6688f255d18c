#pragma once
// The `certgate` command line. Every subcommand is a function of its options, the streams and
// a clock, so the CLI is tested in-process as well as through the real binary.
//
// Exit codes (documented in README.md and docs/operations.md):
//   0 ok
//   1 failure at run time (I/O, a source or the store failed)
//   2 usage error (unknown option, missing argument)
//   3 configuration invalid
//   4 state store unavailable (corrupt, locked, newer schema, missing)
//   5 done, but incomplete: a source is stale or incomplete (nothing will be revoked from it)
//   6 not found (person, track, exception, plan)
//   7 held: the blast-radius brake held a plan's removals until an operator approves it

#include <ostream>

#include "ports/clock.hpp"

namespace certgate::cli {

enum ExitCode {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,
  kConfigInvalid = 3,
  kStoreUnavailable = 4,
  kIncomplete = 5,
  kNotFound = 6,
  kHeld = 7,
};

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
        const ports::Clock& clock);

}  // namespace certgate::cli
