#include "core/identity.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace certgate::core {

const char* toString(IdentityKey k) {
  switch (k) {
    case IdentityKey::EmployeeId: return "employee_id";
    case IdentityKey::Email: return "email";
  }
  return "?";
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
}  // namespace

std::string normaliseEmail(std::string_view email) {
  email = trim(email);
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= email.size() ||
      email.find('@', at + 1) != std::string_view::npos)
    return {};
  std::string out(email);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string normaliseEmployeeId(std::string_view id) { return std::string(trim(id)); }

IdentityResolver::IdentityResolver(std::vector<IdentityKey> priority,
                                   std::vector<IdentityOverride> overrides)
    : priority_(std::move(priority)), overrides_(std::move(overrides)) {}

void IdentityResolver::add(const KnownPerson& person) {
  if (!person.employee_id.empty()) by_employee_id_.emplace(person.employee_id, person.id);
  if (!person.email.empty()) by_email_.emplace(person.email, person.id);
  ++count_;
}

std::vector<std::int64_t> IdentityResolver::lookup(IdentityKey key, const std::string& value) const {
  std::vector<std::int64_t> out;
  if (value.empty()) return out;
  const auto& index = key == IdentityKey::EmployeeId ? by_employee_id_ : by_email_;
  auto [a, b] = index.equal_range(value);
  for (auto it = a; it != b; ++it)
    if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
  return out;
}

Resolution IdentityResolver::resolve(std::string_view source, const IdentityClaim& claim) const {
  return resolve(source, claim.employee_id, claim.email, claim.source_user);
}

Resolution IdentityResolver::resolve(std::string_view source, std::string_view claim_employee_id,
                                     std::string_view claim_email,
                                     std::string_view source_user) const {
  Resolution r;
  const std::string employee_id = normaliseEmployeeId(claim_employee_id);
  const std::string email = normaliseEmail(claim_email);

  // Overrides come first: they exist precisely to correct what the keys would find.
  for (const IdentityOverride& o : overrides_) {
    if (!o.source.empty() && o.source != source) continue;
    const bool hit = (!source_user.empty() && o.match == source_user) ||
                     (!email.empty() && normaliseEmail(o.match) == email) ||
                     (!employee_id.empty() && o.match == employee_id);
    if (!hit) continue;
    std::vector<std::int64_t> ids = lookup(IdentityKey::EmployeeId, normaliseEmployeeId(o.person_key));
    if (ids.empty()) ids = lookup(IdentityKey::Email, normaliseEmail(o.person_key));
    if (ids.size() == 1) {
      r.outcome = Resolution::Outcome::Matched;
      r.person_id = ids.front();
      return r;
    }
    r.outcome = ids.empty() ? Resolution::Outcome::Unmatched : Resolution::Outcome::Ambiguous;
    r.reason = "identity override for '" + o.match + "' points at '" + o.person_key + "', " +
               (ids.empty() ? "who is not known" : "which matches several people");
    return r;
  }

  std::int64_t found = 0;
  IdentityKey found_by = IdentityKey::EmployeeId;
  for (IdentityKey key : priority_) {
    const std::string& value = key == IdentityKey::EmployeeId ? employee_id : email;
    if (value.empty()) continue;
    // One probe of the index; the general lookup (distinct ids) only when the value is shared.
    const auto& index = key == IdentityKey::EmployeeId ? by_employee_id_ : by_email_;
    auto [a, b] = index.equal_range(value);
    if (a == b) continue;
    std::int64_t id = a->second;
    if (std::next(a) != b) {
      const std::vector<std::int64_t> ids = lookup(key, value);
      if (ids.size() > 1) {
        r.outcome = Resolution::Outcome::Ambiguous;
        r.reason = std::string(toString(key)) + " '" + value + "' belongs to " +
                   std::to_string(ids.size()) + " people";
        return r;
      }
      id = ids.front();
    }
    if (found == 0) {
      found = id;
      found_by = key;
    } else if (id != found) {
      r.outcome = Resolution::Outcome::Ambiguous;
      r.reason = std::string(toString(found_by)) + " and " + toString(key) + " '" + value +
                 "' point at different people";
      return r;
    }
  }
  if (found != 0) {
    r.outcome = Resolution::Outcome::Matched;
    r.person_id = found;
    return r;
  }
  // Every key the claim carries was tried and found no one.
  std::string tried;
  for (IdentityKey key : priority_) {
    const std::string& value = key == IdentityKey::EmployeeId ? employee_id : email;
    if (value.empty()) continue;
    if (!tried.empty()) tried += ", ";
    tried += std::string(toString(key)) + " '" + value + "'";
  }
  r.outcome = Resolution::Outcome::Unmatched;
  r.reason = tried.empty() ? "the record carries none of the identity keys (" +
                                 [&] {
                                   std::string k;
                                   for (auto key : priority_) {
                                     if (!k.empty()) k += ", ";
                                     k += toString(key);
                                   }
                                   return k;
                                 }() + ")"
                           : "no known person has " + tried;
  return r;
}

}  // namespace certgate::core
