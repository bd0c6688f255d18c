#pragma once
// Identity resolution across sources: people are matched by configured keys in priority order,
// overrides first. Unmatched and ambiguous identities are reported, never guessed. Pure.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace certgate::core {

enum class IdentityKey { EmployeeId, Email };
const char* toString(IdentityKey k);

// Trimmed, ASCII-lower-cased; "" when the text has no '@' with something on both sides.
std::string normaliseEmail(std::string_view email);
// ASCII lower case ('A'..'Z' only): what std::tolower does in the "C" locale certgate runs in,
// without its per-call locale lookup (identity keys are lowered once per LMS record).
inline char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
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

// Identifier value -> person ids, for the resolver: open addressing over one flat slot array
// (hash and id inline) with the values in one text arena, so that a lookup among a million
// people costs about two cache misses instead of a bucket, node and string chase. A value may
// belong to several people (each add is kept).
class IdentityIndex {
 public:
  void add(std::string_view value, std::int64_t id);
  // Room for `values` values of `text_bytes` bytes in all, so that adding them moves nothing.
  void reserve(std::size_t values, std::size_t text_bytes);
  // Calls fn(id) for every person added under `value`.
  template <typename Fn>
  void forEach(std::string_view value, Fn&& fn) const {
    if (slots_.empty()) return;
    const std::uint64_t h = hashOf(value);
    for (std::size_t i = h & mask_; slots_[i].hash != 0; i = (i + 1) & mask_)
      if (slots_[i].hash == h && textAt(slots_[i].offset) == value) fn(slots_[i].id);
  }
  std::size_t size() const { return used_; }

 private:
  struct Slot {
    std::uint64_t hash = 0;  // 0: empty
    std::int64_t id = 0;
    std::size_t offset = 0;  // of the value in text_: its length (size_t), then its bytes
  };
  static std::uint64_t hashOf(std::string_view value);
  std::string_view textAt(std::size_t offset) const;
  void place(const Slot& slot);
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t used_ = 0;
  std::string text_;
};

class IdentityResolver {
 public:
  IdentityResolver(std::vector<IdentityKey> priority, std::vector<IdentityOverride> overrides);

  void add(const KnownPerson& person);
  void add(std::int64_t id, std::string_view employee_id, std::string_view email);
  // Room for `people` people without rehashing (an estimate is fine).
  void reserve(std::size_t people);
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
  IdentityIndex by_employee_id_;
  IdentityIndex by_email_;
  std::size_t count_ = 0;
};

}  // namespace certgate::core
