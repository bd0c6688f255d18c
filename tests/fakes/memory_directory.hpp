#pragma once
// An in-memory ports::Directory for engine tests: users, groups, a call log and fault
// injection. It follows the port's contract (src/ports/directory.hpp) literally: idempotent
// writes report no_op, a name resolves to exactly one group, listMembers fails as a whole.

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ports/directory.hpp"

namespace certgate::testing {

class MemoryDirectory final : public ports::Directory {
 public:
  explicit MemoryDirectory(std::string name, std::size_t batch = 20)
      : name_(std::move(name)), batch_(batch) {}

  // --- the directory's state
  void addUser(ports::DirectoryUser u) { users_[u.id] = std::move(u); }
  void addGroup(const std::string& id, const std::string& display_name, bool writable = true) {
    groups_[id] = Group{display_name, writable, {}};
  }
  std::set<std::string>& members(const std::string& group_id) { return groups_.at(group_id).members; }

  // --- fault injection
  // Every write call fails with this error (Auth, Transient, ...) while set.
  std::optional<core::Error> fail_writes;
  // The next N write calls fail with `fail_writes_next_kind`, then calls succeed again.
  int fail_writes_next = 0;
  core::ErrorKind fail_writes_next_kind = core::ErrorKind::Transient;
  long fail_writes_retry_after = 0;
  std::optional<core::Error> fail_list;   // listMembers fails
  std::set<std::string> fail_members;     // these user ids fail with Permanent on add/remove
  // Called before each write is applied (tests use it to "crash" mid-apply).
  std::function<void(const std::string& op, const std::vector<std::string>& ids)> before_write;

  // --- what happened
  struct Call {
    std::string op;  // "add" / "remove"
    std::string group;
    std::vector<std::string> ids;
  };
  std::vector<Call> writes;
  int lookups = 0;
  int lists = 0;

  // --- ports::Directory
  const std::string& name() const override { return name_; }
  const char* kind() const override { return "memory"; }
  core::Status connect() override { return {}; }
  ports::DirectoryCapabilities capabilities() const override {
    ports::DirectoryCapabilities c;
    c.max_add_batch = batch_;
    c.max_remove_batch = batch_;
    return c;
  }
  core::Result<ports::GroupRef> resolveGroup(const std::string& id_or_name) override {
    if (auto it = groups_.find(id_or_name); it != groups_.end()) return ref(it->first, it->second);
    std::vector<std::string> hits;
    for (const auto& [id, g] : groups_)
      if (g.display_name == id_or_name) hits.push_back(id);
    if (hits.empty())
      return core::makeError(core::ErrorKind::NotFound,
                             "group '" + id_or_name + "' not found in directory " + name_);
    if (hits.size() > 1)
      return core::makeError(core::ErrorKind::Conflict,
                             "group name '" + id_or_name + "' is ambiguous in directory " + name_);
    return ref(hits.front(), groups_.at(hits.front()));
  }
  core::Result<std::vector<ports::DirectoryUser>> findUsers(const ports::UserQuery& q) override {
    ++lookups;
    std::vector<ports::DirectoryUser> out;
    for (const auto& [id, u] : users_) {
      std::string v;
      switch (q.attribute) {
        case ports::UserAttribute::UserName: v = u.user_name; break;
        case ports::UserAttribute::Email: v = u.email; break;
        case ports::UserAttribute::EmployeeId: v = u.employee_id; break;
        case ports::UserAttribute::ExternalId: v = u.external_id; break;
        case ports::UserAttribute::Id: v = u.id; break;
        case ports::UserAttribute::Custom: v = u.population; break;
      }
      if (!v.empty() && lower(v) == lower(q.value)) out.push_back(u);
    }
    return out;
  }
  core::Status listMembers(const ports::GroupRef& group,
                           const std::function<void(ports::DirectoryUser&&)>& sink) override {
    ++lists;
    if (fail_list) return *fail_list;
    for (const auto& id : groups_.at(group.id).members) {
      ports::DirectoryUser u;
      u.id = id;  // like SCIM: members carry only their id
      sink(std::move(u));
    }
    return {};
  }
  core::Status listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) override {
    for (const auto& [id, u] : users_) {
      auto copy = u;
      sink(std::move(copy));
    }
    return {};
  }
  core::Result<std::vector<ports::MemberOutcome>> addMembers(
      const ports::GroupRef& group, const std::vector<std::string>& ids) override {
    return write("add", group, ids);
  }
  core::Result<std::vector<ports::MemberOutcome>> removeMembers(
      const ports::GroupRef& group, const std::vector<std::string>& ids) override {
    return write("remove", group, ids);
  }
  std::uint64_t requestCount() const override { return writes.size() + lookups + lists; }

 private:
  struct Group {
    std::string display_name;
    bool writable = true;
    std::set<std::string> members;
  };
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static ports::GroupRef ref(const std::string& id, const Group& g) {
    ports::GroupRef r;
    r.id = id;
    r.display_name = g.display_name;
    r.writable = g.writable;
    if (!g.writable) r.not_writable_why = "read-only group";
    return r;
  }
  core::Result<std::vector<ports::MemberOutcome>> write(const std::string& op,
                                                        const ports::GroupRef& group,
                                                        const std::vector<std::string>& ids) {
    if (ids.size() > batch_)
      return core::makeError(core::ErrorKind::Invalid, "batch larger than the directory allows");
    if (fail_writes) return *fail_writes;
    if (fail_writes_next > 0) {
      --fail_writes_next;
      auto e = core::makeError(fail_writes_next_kind, "injected " + op + " failure", name_);
      e.retry_after_s = fail_writes_retry_after;
      return e;
    }
    if (before_write) before_write(op, ids);
    writes.push_back({op, group.id, ids});
    auto& set = groups_.at(group.id).members;
    std::vector<ports::MemberOutcome> out;
    for (const auto& id : ids) {
      ports::MemberOutcome o;
      o.user_id = id;
      if (fail_members.count(id)) {
        o.status = core::makeError(core::ErrorKind::Permanent, "injected failure for " + id);
      } else if (op == "add") {
        o.no_op = !set.insert(id).second;
      } else {
        o.no_op = set.erase(id) == 0;
      }
      out.push_back(std::move(o));
    }
    return out;
  }

  std::string name_;
  std::size_t batch_;
  std::map<std::string, ports::DirectoryUser> users_;
  std::map<std::string, Group> groups_;
};

}  // namespace certgate::testing
