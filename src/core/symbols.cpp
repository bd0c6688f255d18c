#include "core/symbols.hpp"

namespace certgate::core {

Sym SymbolTable::intern(std::string_view name) {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  const auto sym = static_cast<Sym>(names_.size());
  names_.emplace_back(name);
  index_.emplace(std::string_view(names_.back()), sym);
  return sym;
}

std::optional<Sym> SymbolTable::find(std::string_view name) const {
  if (auto it = index_.find(name); it != index_.end()) return it->second;
  return std::nullopt;
}

std::string_view SymbolTable::name(Sym sym) const {
  if (sym == kNoSym || sym >= names_.size()) return {};
  return names_[sym];
}

}  // namespace certgate::core
