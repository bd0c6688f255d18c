#include "core/model.hpp"

#include <cmath>

namespace certgate::core {

double Fact::pct() const {
  if (!std::isfinite(score) || !std::isfinite(max_score) || max_score <= 0) return kNoScore;
  return score / max_score * 100.0;
}

namespace {
constexpr std::pair<State, const char*> kStateNames[] = {
    {State::OutOfScope, "out_of_scope"}, {State::NotStarted, "not_started"},
    {State::InProgress, "in_progress"},  {State::LockedOut, "locked_out"},
    {State::Certified, "certified"},     {State::Expiring, "expiring"},
    {State::Grace, "grace"},             {State::Expired, "expired"},
    {State::Exception, "exception"},
};
}  // namespace

const char* toString(State s) {
  for (const auto& [state, name] : kStateNames)
    if (state == s) return name;
  return "unknown";
}

std::optional<State> parseState(std::string_view text) {
  for (const auto& [state, name] : kStateNames)
    if (text == name) return state;
  return std::nullopt;
}

}  // namespace certgate::core
