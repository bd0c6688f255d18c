#pragma once
// Identity resolution across sources: people are matched by configured keys in priority order,
// overrides first. Unmatched and ambiguous identities are reported, never guessed. Pure.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace certgate::core {

enum class IdentityKey { EmployeeId, Email };
const char* toString(IdentityKey k);

// Trimmed, ASCII-lower-cased; "" when the text has no '@' with something on both sides.
std::string normaliseEmail(std::string_view email);
// Trimmed.
std::string normaliseEmployeeId(std::string_view id);

// What a source knows about who a record belongs to.
struct IdentityClaim {
  std::string employee_id;
  std::string email;
  std::string source_user;  // the LMS's own user key (used by overrides)
};

struct KnownPerson {
  std::int64_t id = 0;
  std::string employee_id;  // normalised
  std::string email;        // normalised
};

struct Resolution {
  enum class Outcome { Matched, Unmatched, Ambiguous } outcome = Outcome::Unmatched;
  std::int64_t person_id = 0;
  std::string reason;  // for Unmatched / Ambiguous: which keys were tried and what they found
};

// An override ties one source's user key (or an email / employee id seen in a source) to a
// person's employee id or email, taking precedence over the matching keys.
struct IdentityOverride {
  std::string source;      // "" = any source
  std::string match;       // value of the claim to match: source_user, email or employee id
  std::string person_key;  // employee id or email of the person it belongs to
};

class IdentityResolver {
 public:
  IdentityResolver(std::vector<IdentityKey> priority, std::vector<IdentityOverride> overrides);

  void add(const KnownPerson& person);
  std::size_t size() const { return count_; }

  // Matches on the first key in priority order that the claim carries and that finds someone.
  // A later key pointing at a different person makes the claim ambiguous (a conflict), as does
  // a key value shared by two people.
  Resolution resolve(std::string_view source, const IdentityClaim& claim) const;
  // The same, for a claim whose fields the caller holds elsewhere (no copies).
  Resolution resolve(std::string_view source, std::string_view employee_id, std::string_view email,
                     std::string_view source_user) const;

 private:
  std::vector<std::int64_t> lookup(IdentityKey key, const std::string& value) const;

  std::vector<IdentityKey> priority_;
  std::vector<IdentityOverride> overrides_;
  std::unordered_multimap<std::string, std::int64_t> by_employee_id_;
  std::unordered_multimap<std::string, std::int64_t> by_email_;
  std::size_t count_ = 0;
};

}  // namespace certgate::core
