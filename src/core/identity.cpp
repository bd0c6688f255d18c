#include "core/identity.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>

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

namespace {
// normaliseEmail into `out` (its capacity is reused).
void normaliseEmailInto(std::string_view email, std::string& out) {
  out.clear();
  email = trim(email);
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= email.size() ||
      email.find('@', at + 1) != std::string_view::npos)
    return;
  out.assign(email);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return lowerAscii(c); });
}
}  // namespace

std::string normaliseEmail(std::string_view email) {
  std::string out;
  normaliseEmailInto(email, out);
  return out;
}

std::string normaliseEmployeeId(std::string_view id) { return std::string(trim(id)); }

std::uint64_t IdentityIndex::hashOf(std::string_view value) {
  const std::uint64_t h = std::hash<std::string_view>{}(value);
  return h == 0 ? 1 : h;
}

std::string_view IdentityIndex::textAt(std::size_t offset) const {
  std::size_t length = 0;
  std::memcpy(&length, text_.data() + offset, sizeof length);
  return {text_.data() + offset + sizeof length, length};
}

void IdentityIndex::place(const Slot& slot) {
  std::size_t i = slot.hash & mask_;
  while (slots_[i].hash != 0) i = (i + 1) & mask_;
  slots_[i] = slot;
}

void IdentityIndex::reserve(std::size_t values, std::size_t text_bytes) {
  text_.reserve(text_.size() + text_bytes + values * sizeof(std::size_t));
  std::size_t size = std::max<std::size_t>(16, slots_.size());
  while (2 * (used_ + values) > size) size *= 2;
  if (size == slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(size, Slot{});
  mask_ = size - 1;
  for (const Slot& s : old)
    if (s.hash != 0) place(s);
}

void IdentityIndex::add(std::string_view value, std::int64_t id) {
  // At most half full: probe runs stay short.
  if (2 * (used_ + 1) > slots_.size()) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(16, 2 * old.size()), Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old)
      if (s.hash != 0) place(s);
  }
  Slot slot;
  slot.hash = hashOf(value);
  slot.id = id;
  slot.offset = text_.size();
  const std::size_t length = value.size();
  text_.append(reinterpret_cast<const char*>(&length), sizeof length);
  text_.append(value);
  place(slot);
  ++used_;
}

IdentityResolver::IdentityResolver(std::vector<IdentityKey> priority,
                                   std::vector<IdentityOverride> overrides)
    : priority_(std::move(priority)), overrides_(std::move(overrides)) {}

void IdentityResolver::add(const KnownPerson& person) {
  add(person.id, person.employee_id, person.email);
}

void IdentityResolver::add(std::int64_t id, std::string_view employee_id, std::string_view email) {
  if (!employee_id.empty()) by_employee_id_.add(employee_id, id);
  if (!email.empty()) by_email_.add(email, id);
  ++count_;
}

void IdentityResolver::reserve(std::size_t people) {
  // Employee ids and emails of typical length; the text grows past it if they are longer.
  by_employee_id_.reserve(people, people * 12);
  by_email_.reserve(people, people * 28);
}

std::vector<std::int64_t> IdentityResolver::lookup(IdentityKey key, const std::string& value) const {
  std::vector<std::int64_t> out;
  if (value.empty()) return out;
  const auto& index = key == IdentityKey::EmployeeId ? by_employee_id_ : by_email_;
  index.forEach(value, [&](std::int64_t id) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  });
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
  thread_local std::string email;  // reused: no allocation per call
  normaliseEmailInto(claim_email, email);

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
    std::int64_t id = 0;
    bool known = false;
    bool shared = false;
    index.forEach(value, [&](std::int64_t each) {
      if (!known) {
        known = true;
        id = each;
      } else if (each != id) {
        shared = true;
      }
    });
    if (!known) continue;
    if (shared) {
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
