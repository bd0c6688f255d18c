#pragma once
// The human-readable parts every alert sink shows, read from the alert document
// (docs/operations.md, "Alerts"): one label/value line per fact that is present.

#include <string>
#include <utility>
#include <vector>

#include "ports/alert_sink.hpp"

namespace certgate::connectors::alert {

using Fact = std::pair<std::string, std::string>;

// Severity, kind, person, access, rule, enforcement, evidence, occurred at, alert id (and
// follows) in that order; facts the document lacks are left out.
std::vector<Fact> alertFacts(const ports::Alert& alert);

}  // namespace certgate::connectors::alert
