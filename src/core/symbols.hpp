#pragma once
// SymbolTable interns identifiers (module ids, quiz ids, track ids, populations) as dense
// 32-bit symbols so that evaluation of millions of facts touches no strings.
// Not thread-safe for interning; concurrent lookups of an unchanged table are safe.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace certgate::core {

using Sym = std::uint32_t;
constexpr Sym kNoSym = UINT32_MAX;

class SymbolTable {
 public:
  Sym intern(std::string_view name);
  std::optional<Sym> find(std::string_view name) const;
  std::string_view name(Sym sym) const;  // "" for kNoSym
  std::size_t size() const { return names_.size(); }

 private:
  std::deque<std::string> names_;  // deque: stable addresses for the string_view keys
  std::unordered_map<std::string_view, Sym> index_;
};

}  // namespace certgate::core
