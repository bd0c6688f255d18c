#pragma once
// Reading core enums back from their toString() text (stored plans). Internal to src/engine.

#include <optional>
#include <string>

#include "core/model.hpp"
#include "core/plan.hpp"

namespace certgate::engine::detail {

template <typename E, std::size_t N>
std::optional<E> parseEnum(const std::string& text, const E (&all)[N]) {
  for (E e : all)
    if (text == core::toString(e)) return e;
  return std::nullopt;
}

inline constexpr core::Reason kReasons[] = {
    core::Reason::Entitled,         core::Reason::Expired,      core::Reason::ExceptionEnded,
    core::Reason::ExceptionRevoked, core::Reason::PrerequisiteNotMet,
    core::Reason::NotCertified,     core::Reason::LockedOut,    core::Reason::OutOfScope,
    core::Reason::NoVerdict,        core::Reason::UnknownMember};
inline constexpr core::State kStates[] = {
    core::State::OutOfScope, core::State::NotStarted, core::State::InProgress,
    core::State::LockedOut,  core::State::Certified,  core::State::Expiring,
    core::State::Grace,      core::State::Expired,    core::State::Exception};

}  // namespace certgate::engine::detail
