#include "settings/policy_loader.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include "core/evaluate.hpp"

namespace certgate::settings::detail {

namespace {

constexpr std::string_view kTrackFileKeys[] = {"version", "modules", "tracks"};
constexpr std::string_view kModuleKeys[] = {"id", "title", "description"};
constexpr std::string_view kTrackKeys[] = {
    "id",         "title",           "modules",          "quiz",        "recertifyDays",
    "graceDays",  "renewWindowDays", "remindBeforeDays", "populations", "requires",
    "exceptions", "grants"};
constexpr std::string_view kPolicyTrackKeys[] = {
    "id",        "title",           "modules",          "quiz",    "recertifyDays",
    "graceDays", "renewWindowDays", "remindBeforeDays", "requires"};
constexpr std::string_view kQuizKeys[] = {"id", "minScorePct", "attemptsAllowed"};
constexpr std::string_view kExceptionKeys[] = {"allowed", "maxDurationDays", "requiredApprovers",
                                               "justificationFields"};
constexpr std::string_view kApproverKeys[] = {"role"};
constexpr std::string_view kTrackGrantKeys[] = {"groups", "tokens"};
constexpr std::string_view kTokenGrantKeys[] = {"gateway",  "scope",         "models",
                                                "max_budget", "budget_duration", "lifetime",
                                                "rotate_before", "overlap",     "delivery"};
constexpr std::string_view kGroupKeys[] = {"directory", "group", "mode"};
constexpr std::string_view kGrantFileKeys[] = {"version", "grants"};
constexpr std::string_view kGrantEntryKeys[] = {"track", "groups", "tokens"};

constexpr int kMaxDays = 36500;

std::string listOf(const std::vector<std::string>& items, std::size_t max = 25) {
  if (items.empty()) return "(none)";
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < max; ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  if (items.size() > max) out += ", ... (" + std::to_string(items.size() - max) + " more)";
  return out;
}

std::string listOf(const std::set<std::string>& items) {
  return listOf(std::vector<std::string>(items.begin(), items.end()));
}

bool hasSpace(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

struct PendingTrack {
  std::string id;
  core::Track track;
  TrackInfo info;
  std::vector<std::pair<std::string, Location>> module_refs;
  std::vector<std::pair<std::string, Location>> require_refs;
  std::optional<std::string> quiz_id;
};

struct GroupKey {
  std::string key;
  std::string group;
  std::string directory;
  std::string policy_id;
  Location where;
  std::vector<std::string> doc_keys;
  std::vector<std::string> doc_tracks;
};

struct GrantDraft {
  std::string track;
  GroupGrant grant;
};

struct TokenDraft {
  std::string track;
  TokenGrantSettings grant;
};

// What one policy document contributes before it is applied to its tracks.
struct DocState {
  std::string policy_id;
  std::vector<std::size_t> tracks;  // indices into Builder::tracks_
  bool has_track_list = false;
  std::optional<std::vector<std::string>> populations;
  std::optional<core::ExceptionPolicy> exceptions;
  std::string directory;
  std::vector<GroupKey> keys;
};

class Builder {
 public:
  explicit Builder(Diagnostics& diag) : diag_(diag), loaded_(std::make_shared<LoadedPolicy>()) {}

  void trackFile(const FileRef& ref);
  void policyDocument(const FileRef& ref);
  void grantFile(const FileRef& ref);
  PolicyBuild finish(const std::vector<GroupBinding>& bindings);

 private:
  core::SymbolTable& sym() { return loaded_->symbols; }
  std::optional<PendingTrack> parseTrack(const FileReader& r, const YAML::Node& node,
                                         const std::string& path, bool policy_entry);
  std::optional<core::ExceptionPolicy> parseExceptions(const FileReader& r, const YAML::Node& node,
                                                       const std::string& path);
  std::vector<GroupGrant> parseGroups(const FileReader& r, const YAML::Node& node,
                                      const std::string& path);
  std::vector<TokenGrantSettings> parseTokens(const FileReader& r, const YAML::Node& node,
                                              const std::string& path);
  bool addTrack(PendingTrack t);
  void notEnforced(std::string path, std::string why, Location where) {
    loaded_->not_enforced.push_back(NotEnforced{std::move(path), std::move(why), std::move(where)});
  }
  void enforced(std::string path, std::string how, Location where) {
    loaded_->enforced.push_back(EnforcedRule{std::move(path), std::move(how), std::move(where)});
  }
  void notEnforcedChildren(const FileReader& r, const Entry& e, const std::string& why);
  void docScope(const FileReader& r, const Entry& e, DocState& st);
  void docTraining(const FileReader& r, const Entry& e, DocState& st);
  void docGating(const FileReader& r, const Entry& e, DocState& st);
  void docMonitoring(const FileReader& r, const Entry& e);
  void docSlo(const FileReader& r, const Entry& e);
  void bindGroups(const std::vector<GroupBinding>& bindings);
  void checkRequires();
  void checkModulesAndQuizzes();
  void assembleGrants();
  std::vector<std::string> trackIds() const {
    std::vector<std::string> out;
    for (const auto& t : tracks_) out.push_back(t.id);
    return out;
  }

  Diagnostics& diag_;
  std::shared_ptr<LoadedPolicy> loaded_;
  std::vector<PendingTrack> tracks_;
  std::map<std::string, std::size_t> track_index_;
  std::map<std::string, Location> catalogue_;
  bool has_catalogue_ = false;
  std::vector<GroupKey> group_keys_;
  std::vector<GrantDraft> grants_;
  std::vector<TokenDraft> token_grants_;
};

void checkVersion(const FileReader& r, const MapView& m) {
  if (const Entry* e = FileReader::optional(m, "version"))
    (void)r.integer(e->value, "version", 1, 1);
}

// ---------------------------------------------------------------------------------------------
// Tracks (shared by track files and policy documents)

std::optional<PendingTrack> Builder::parseTrack(const FileReader& r, const YAML::Node& node,
                                                const std::string& path, bool policy_entry) {
  const std::span<const std::string_view> keys =
      policy_entry ? std::span<const std::string_view>(kPolicyTrackKeys)
                   : std::span<const std::string_view>(kTrackKeys);
  auto m = r.map(node, path, keys);
  if (!m) return std::nullopt;
  PendingTrack t;
  t.info.where = r.at(node);

  if (const Entry* e = r.require(*m, "id", path, "give the track an id, e.g. 'id: GENAI_USER'")) {
    if (auto id = r.string(e->value, joinPath(path, "id"))) {
      if (hasSpace(*id))
        r.error(e->value, joinPath(path, "id") + " '" + *id + "' must not contain spaces",
                "use letters, digits, '_' or '-'");
      else
        t.id = *id;
    }
  }
  t.info.id = t.id;
  const std::string label = t.id.empty() ? path : "track " + t.id;

  if (const Entry* e = FileReader::optional(*m, "title"))
    if (auto v = r.string(e->value, joinPath(path, "title"), true)) t.info.title = *v;

  bool requirement_error = false;
  if (const Entry* e = FileReader::optional(*m, "modules")) {
    const std::string mp = joinPath(path, "modules");
    if (auto items = r.stringItems(e->value, mp)) {
      std::set<std::string> seen;
      for (const auto& [mod, n] : *items) {
        if (!seen.insert(mod).second) {
          r.error(n, "module '" + mod + "' is listed twice in " + mp, "remove the duplicate");
          continue;
        }
        t.module_refs.emplace_back(mod, r.at(n));
        t.track.modules.push_back(sym().intern(mod));
      }
    } else {
      requirement_error = true;
    }
  }

  if (const Entry* e = FileReader::optional(*m, "quiz")) {
    const std::string qp = joinPath(path, "quiz");
    requirement_error = true;  // until the quiz parsed completely
    if (auto qm = r.map(e->value, qp, kQuizKeys)) {
      core::QuizRule q;
      bool ok = true;
      std::string quiz_id = t.id.empty() ? std::string() : t.id + "/quiz";
      if (const Entry* ie = FileReader::optional(*qm, "id")) {
        if (auto v = r.string(ie->value, joinPath(qp, "id")))
          quiz_id = *v;
        else
          ok = false;
      }
      if (const Entry* se = r.require(*qm, "minScorePct", qp,
                                      "add minScorePct: the pass mark in percent (0 to 100)")) {
        if (auto v = r.number(se->value, joinPath(qp, "minScorePct"), 0, 100))
          q.min_score_pct = *v;
        else
          ok = false;
      } else {
        ok = false;
      }
      if (const Entry* ae = FileReader::optional(*qm, "attemptsAllowed")) {
        if (auto v = r.integer(ae->value, joinPath(qp, "attemptsAllowed"), 1, 1000))
          q.attempts_allowed = static_cast<int>(*v);
        else
          ok = false;
      }
      if (ok && !quiz_id.empty()) {
        q.item = sym().intern(quiz_id);
        t.quiz_id = quiz_id;
        t.track.quiz = q;
        requirement_error = false;
      }
    }
  }

  const Entry* recert = FileReader::optional(*m, "recertifyDays");
  if (recert) {
    if (auto v = r.integer(recert->value, joinPath(path, "recertifyDays"), 1, kMaxDays))
      t.track.recertify_days = static_cast<int>(*v);
  }
  const Entry* grace = FileReader::optional(*m, "graceDays");
  if (grace) {
    if (auto v = r.integer(grace->value, joinPath(path, "graceDays"), 0, kMaxDays))
      t.track.grace_days = static_cast<int>(*v);
  }
  const Entry* renew = FileReader::optional(*m, "renewWindowDays");
  bool renew_ok = true;
  if (renew) {
    if (auto v = r.integer(renew->value, joinPath(path, "renewWindowDays"), 0, kMaxDays))
      t.track.renew_window_days = static_cast<int>(*v);
    else
      renew_ok = false;
  }
  const Entry* remind = FileReader::optional(*m, "remindBeforeDays");
  if (remind) {
    const std::string rp = joinPath(path, "remindBeforeDays");
    if (remind->value.IsScalar()) {
      if (auto v = r.integer(remind->value, rp, 1, kMaxDays))
        t.track.remind_before_days.push_back(static_cast<int>(*v));
    } else if (auto items = r.sequence(remind->value, rp)) {
      std::size_t i = 0;
      for (const auto& item : *items)
        if (auto v = r.integer(item, indexPath(rp, i++), 1, kMaxDays))
          t.track.remind_before_days.push_back(static_cast<int>(*v));
    }
  }
  if (const Entry* e = FileReader::optional(*m, "requires")) {
    if (auto items = r.stringItems(e->value, joinPath(path, "requires"))) {
      for (const auto& [req, n] : *items) {
        t.require_refs.emplace_back(req, r.at(n));
        t.track.requires_tracks.push_back(sym().intern(req));
      }
    }
  }
  if (!policy_entry) {
    if (const Entry* e = FileReader::optional(*m, "populations")) {
      if (auto items = r.stringList(e->value, joinPath(path, "populations")))
        for (const auto& p : *items) t.track.populations.push_back(sym().intern(p));
    }
    if (const Entry* e = FileReader::optional(*m, "exceptions")) {
      if (auto ex = parseExceptions(r, e->value, joinPath(path, "exceptions")))
        t.track.exceptions = *ex;
    }
    if (const Entry* e = FileReader::optional(*m, "grants")) {
      const std::string gp = joinPath(path, "grants");
      if (auto gm = r.map(e->value, gp, kTrackGrantKeys)) {
        if (const Entry* ge = FileReader::optional(*gm, "groups"))
          for (auto& g : parseGroups(r, ge->value, joinPath(gp, "groups")))
            if (!t.id.empty()) grants_.push_back(GrantDraft{t.id, std::move(g)});
        if (const Entry* te = FileReader::optional(*gm, "tokens"))
          for (auto& g : parseTokens(r, te->value, joinPath(gp, "tokens")))
            if (!t.id.empty()) token_grants_.push_back(TokenDraft{t.id, std::move(g)});
      }
    }
  }

  // A track with nothing to complete would certify everyone: never what was meant.
  if (t.track.modules.empty() && !t.track.quiz && !requirement_error)
    r.error(node, label + " has no requirements: it lists no modules and no quiz",
            "add the modules people must complete (modules: [...]) and/or a quiz");

  if (t.track.recertify_days) {
    if (renew_ok && t.track.renew_window_days >= *t.track.recertify_days) {
      const int recertify = *t.track.recertify_days;
      if (renew)
        r.error(renew->value,
                joinPath(path, "renewWindowDays") + " (" +
                    std::to_string(t.track.renew_window_days) +
                    ") must be less than recertifyDays (" + std::to_string(recertify) + ")",
                "the renewal window opens that many days before expiry; make it shorter than "
                "the validity period");
      else
        r.error(
            recert->value,
            label + ": recertifyDays (" + std::to_string(recertify) +
                ") must be greater than renewWindowDays (default 30)",
            "set renewWindowDays explicitly to fewer than " + std::to_string(recertify) + " days");
    }
  } else {
    const std::pair<const Entry*, const char*> without_expiry[] = {
        {grace, "graceDays"}, {renew, "renewWindowDays"}, {remind, "remindBeforeDays"}};
    for (const auto& [entry, key] : without_expiry)
      if (entry)
        r.warn(entry->value, joinPath(path, key) + " has no effect: " + label +
                                 " sets no recertifyDays, so certification does not expire");
  }

  if (t.id.empty()) return std::nullopt;
  return t;
}

std::optional<core::ExceptionPolicy> Builder::parseExceptions(const FileReader& r,
                                                              const YAML::Node& node,
                                                              const std::string& path) {
  auto m = r.map(node, path, kExceptionKeys);
  if (!m) return std::nullopt;
  core::ExceptionPolicy p;
  bool ok = true;
  if (const Entry* e = r.require(*m, "allowed", path, "add 'allowed: true' or 'allowed: false'")) {
    if (auto v = r.boolean(e->value, joinPath(path, "allowed")))
      p.allowed = *v;
    else
      ok = false;
  } else {
    ok = false;
  }
  if (const Entry* e = FileReader::optional(*m, "maxDurationDays")) {
    if (auto v = r.integer(e->value, joinPath(path, "maxDurationDays"), 1, 3650))
      p.max_duration_days = static_cast<int>(*v);
    else
      ok = false;
  } else if (p.allowed) {
    r.error(node, joinPath(path, "maxDurationDays") + " is required when exceptions are allowed",
            "add maxDurationDays: the longest an exception may last, in days");
    ok = false;
  }
  if (const Entry* e = FileReader::optional(*m, "requiredApprovers")) {
    const std::string ap = joinPath(path, "requiredApprovers");
    std::vector<YAML::Node> items;
    if (e->value.IsScalar())
      items.push_back(e->value);
    else if (auto seq = r.sequence(e->value, ap))
      items = *seq;
    else
      ok = false;
    std::size_t i = 0;
    for (const auto& item : items) {
      const std::string ip = indexPath(ap, i++);
      std::optional<std::string> role;
      if (item.IsMap()) {
        if (auto rm = r.map(item, ip, kApproverKeys))
          if (const Entry* re = r.require(*rm, "role", ip))
            role = r.string(re->value, joinPath(ip, "role"));
      } else {
        role = r.string(item, ip);
      }
      if (!role) {
        ok = false;
        continue;
      }
      if (std::find(p.required_roles.begin(), p.required_roles.end(), *role) !=
          p.required_roles.end()) {
        r.error(item, "approver role '" + *role + "' is listed twice in " + ap,
                "list each role once; each listed role must approve");
        ok = false;
        continue;
      }
      p.required_roles.push_back(*role);
    }
  }
  if (ok && p.allowed && p.required_roles.empty())
    r.error(node,
            joinPath(path, "requiredApprovers") +
                " must name at least one role when exceptions are allowed",
            "add requiredApprovers: [{role: TeamLead}, ...]; an exception nobody approves "
            "would be self-service access");
  if (ok && p.allowed && p.required_roles.empty()) ok = false;
  if (const Entry* e = FileReader::optional(*m, "justificationFields")) {
    if (auto v = r.stringList(e->value, joinPath(path, "justificationFields")))
      p.justification_fields = *v;
    else
      ok = false;
  }
  if (!ok) return std::nullopt;
  return p;
}

std::vector<GroupGrant> Builder::parseGroups(const FileReader& r, const YAML::Node& node,
                                             const std::string& path) {
  std::vector<GroupGrant> out;
  auto items = r.sequence(node, path);
  if (!items) return out;
  std::size_t i = 0;
  for (const auto& item : *items) {
    const std::string ip = indexPath(path, i++);
    auto m = r.map(item, ip, kGroupKeys);
    if (!m) continue;
    GroupGrant g;
    g.where = r.at(item);
    bool ok = true;
    if (const Entry* e = FileReader::optional(*m, "directory")) {
      if (auto v = r.string(e->value, joinPath(ip, "directory")))
        g.directory = *v;
      else
        ok = false;
    }
    if (const Entry* e = r.require(*m, "group", ip, "add group: the group's id or display name")) {
      if (auto v = r.string(e->value, joinPath(ip, "group")))
        g.group = *v;
      else
        ok = false;
    } else {
      ok = false;
    }
    if (const Entry* e = FileReader::optional(*m, "mode")) {
      auto v = r.string(e->value, joinPath(ip, "mode"));
      if (v && *v == "additive") {
        g.mode = GroupGrant::Mode::Additive;
      } else if (v && *v == "exclusive") {
        g.mode = GroupGrant::Mode::Exclusive;
      } else {
        if (v)
          r.error(e->value,
                  joinPath(ip, "mode") + " must be additive or exclusive, got '" + *v + "'",
                  "additive: certgate removes only members it added; exclusive: certgate "
                  "removes anyone not entitled");
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(g));
  }
  return out;
}

bool Builder::addTrack(PendingTrack t) {
  auto [it, inserted] = track_index_.emplace(t.id, tracks_.size());
  if (!inserted) {
    diag_.error(t.info.where,
                "duplicate track id '" + t.id + "'; first defined at " +
                    tracks_[it->second].info.where.str(),
                "track ids must be unique across all track files and policy documents: rename "
                "or remove one");
    return false;
  }
  t.track.id = sym().intern(t.id);
  tracks_.push_back(std::move(t));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Track files

void Builder::trackFile(const FileRef& ref) {
  auto doc = loadYamlFile(ref.path, "track file", diag_,
                          ref.named_at.file.empty() ? nullptr : &ref.named_at);
  if (!doc) return;
  FileReader r(ref.path, diag_);
  auto m = r.map(*doc, "", kTrackFileKeys);
  if (!m) return;
  checkVersion(r, *m);
  const Entry* modules = m->find("modules");
  if (modules && !modules->value.IsNull()) {
    has_catalogue_ = true;
    if (auto items = r.sequence(modules->value, "modules")) {
      std::size_t i = 0;
      for (const auto& item : *items) {
        const std::string ip = indexPath("modules", i++);
        std::optional<std::string> id;
        if (item.IsMap()) {
          if (auto mm = r.map(item, ip, kModuleKeys)) {
            if (const Entry* e = r.require(*mm, "id", ip))
              id = r.string(e->value, joinPath(ip, "id"));
            for (const char* k : {"title", "description"})
              if (const Entry* e = FileReader::optional(*mm, k))
                (void)r.string(e->value, joinPath(ip, k), true);
          }
        } else {
          id = r.string(item, ip);
        }
        if (!id) continue;
        auto [it, inserted] = catalogue_.emplace(*id, r.at(item));
        if (!inserted)
          r.error(item, "module '" + *id + "' is already in a catalogue at " + it->second.str(),
                  "list each module once");
      }
    }
  }
  const Entry* tracks = FileReader::optional(*m, "tracks");
  if (!tracks && !(modules && !modules->value.IsNull())) {
    r.error(*doc, "track file defines no tracks and no modules",
            "add 'tracks:' (see config/README.md, track files)");
    return;
  }
  if (!tracks) return;
  auto items = r.sequence(tracks->value, "tracks");
  if (!items) return;
  std::size_t i = 0;
  for (const auto& item : *items) {
    auto t = parseTrack(r, item, indexPath("tracks", i++), false);
    if (!t) continue;
    t->info.origin = "track file";
    addTrack(std::move(*t));
  }
}

// ---------------------------------------------------------------------------------------------
// Policy documents (the PeopleOps shape)

void Builder::notEnforcedChildren(const FileReader& r, const Entry& e, const std::string& why) {
  if (e.value.IsMap()) {
    if (auto m = r.openMap(e.value, e.key)) {
      for (const auto& c : m->entries()) notEnforced(joinPath(e.key, c.key), why, r.at(c.key_node));
      return;
    }
  }
  notEnforced(e.key, why, r.at(e.key_node));
}

void Builder::docScope(const FileReader& r, const Entry& e, DocState& st) {
  auto m = r.openMap(e.value, "scope");
  if (!m) return;
  for (const auto& c : m->entries()) {
    const std::string path = joinPath("scope", c.key);
    if (c.key == "populations") {
      if (auto v = r.stringList(c.value, path)) {
        st.populations = *v;
        for (const auto& p : *v)
          if (std::find(loaded_->scope_populations.begin(), loaded_->scope_populations.end(), p) ==
              loaded_->scope_populations.end())
            loaded_->scope_populations.push_back(p);
        enforced(path, "only people of these populations are in scope of this document's tracks",
                 r.at(c.key_node));
      }
    } else if (c.key == "regionsAllowed") {
      notEnforced(path,
                  "data residency is enforced by the gateway or the cloud account, not by "
                  "certgate",
                  r.at(c.key_node));
    } else if (c.key == "tools") {
      notEnforced(path,
                  "which tools are gated is decided by the gateway and directory-group "
                  "configuration; certgate only manages the groups and tokens of its mappings",
                  r.at(c.key_node));
    } else {
      notEnforced(path, "not a scope setting certgate knows; it is not enforced", r.at(c.key_node));
    }
  }
}

void Builder::docTraining(const FileReader& r, const Entry& e, DocState& st) {
  auto m = r.openMap(e.value, "trainingRequirements");
  if (!m) return;
  for (const auto& c : m->entries()) {
    const std::string path = joinPath("trainingRequirements", c.key);
    if (c.key == "certificationTracks") {
      st.has_track_list = true;
      auto items = r.sequence(c.value, path);
      if (!items) continue;
      std::size_t i = 0;
      for (const auto& item : *items) {
        auto t = parseTrack(r, item, indexPath(path, i++), true);
        if (!t) continue;
        t->info.origin = "policy document " + st.policy_id;
        if (addTrack(std::move(*t))) st.tracks.push_back(tracks_.size() - 1);
      }
      enforced(path, "tracks evaluated by certgate: modules, quiz, attempts and recertification",
               r.at(c.key_node));
    } else if (c.key == "lmsProvider") {
      notEnforced(path,
                  "certgate reads the LMS sources configured in certgate.yaml (sources:), not "
                  "this field",
                  r.at(c.key_node));
    } else {
      notEnforced(path, "not a training setting certgate knows; it is not enforced",
                  r.at(c.key_node));
    }
  }
}

void Builder::docGating(const FileReader& r, const Entry& e, DocState& st) {
  auto m = r.openMap(e.value, "accessGating");
  if (!m) return;
  for (const auto& c : m->entries()) {
    const std::string path = joinPath("accessGating", c.key);
    if (c.key == "identityProvider") {
      auto idp = r.openMap(c.value, path);
      if (!idp) continue;
      const Entry* mapping = FileReader::optional(*idp, "groupMapping");
      for (const auto& ie : idp->entries()) {
        const std::string ipath = joinPath(path, ie.key);
        if (ie.key == "type") {
          if (auto v = r.string(ie.value, ipath)) st.directory = *v;
          if (!mapping)
            notEnforced(ipath, "no groupMapping: directories are configured in certgate.yaml",
                        r.at(ie.key_node));
        } else if (ie.key == "groupMapping") {
          auto gm = r.openMap(ie.value, ipath);
          if (!gm) continue;
          for (const auto& g : gm->entries()) {
            auto group = r.string(g.value, joinPath(ipath, g.key));
            if (!group) continue;
            st.keys.push_back(GroupKey{g.key, *group, {}, st.policy_id, r.at(g.key_node), {}, {}});
          }
        } else {
          notEnforced(ipath,
                      "identity-provider setting certgate does not read; the directory "
                      "connection is configured in certgate.yaml",
                      r.at(ie.key_node));
        }
      }
    } else if (c.key == "conditions") {
      auto items = r.sequence(c.value, path);
      if (!items) continue;
      std::size_t i = 0;
      for (const auto& item : *items) {
        std::string label = std::to_string(i++);
        std::optional<std::string> rule;
        if (item.IsMap()) {
          if (auto cm = r.openMap(item, indexPath(path, i - 1))) {
            if (const Entry* ne = FileReader::optional(*cm, "name"); ne && ne->value.IsScalar())
              label = ne->value.Scalar();
            if (const Entry* re = FileReader::optional(*cm, "rule"); re && re->value.IsScalar())
              rule = re->value.Scalar();
          }
        }
        const std::string cpath = path + "[" + label + "]";
        if (rule && ruleOnlyChecksCertification(*rule)) {
          enforced(cpath,
                   "a certification check: certgate grants the track's groups and tokens only "
                   "while the person's certification is current",
                   r.at(item));
        } else if (rule) {
          notEnforced(cpath,
                      "rule '" + *rule +
                          "' checks more than certification; enforce it in the identity "
                          "provider (e.g. conditional access) or the gateway",
                      r.at(item));
        } else {
          notEnforced(cpath, "condition without a rule; nothing to enforce", r.at(item));
        }
      }
    } else if (c.key == "approvals") {
      auto am = r.openMap(c.value, path);
      if (!am) continue;
      for (const auto& ae : am->entries()) {
        const std::string apath = joinPath(path, ae.key);
        if (ae.key == "exceptionPath") {
          if (auto ex = parseExceptions(r, ae.value, apath)) {
            st.exceptions = *ex;
            enforced(apath,
                     "time-limited exceptions: certgate honours them only with every required "
                     "approval and justification field",
                     r.at(ae.key_node));
          }
        } else {
          notEnforced(apath, "approval setting certgate does not know; it is not enforced",
                      r.at(ae.key_node));
        }
      }
    } else {
      notEnforced(path, "access-gating setting certgate does not know; it is not enforced",
                  r.at(c.key_node));
    }
  }
}

// The two targets `certgate report kpi` measures; other sloTargets keys stay informational.
void Builder::docSlo(const FileReader& r, const Entry& e) {
  auto m = r.openMap(e.value, "sloTargets");
  if (!m) return;
  auto target = [&](std::string_view section, std::string_view key, double max,
                    std::optional<double>& out, Location& where) {
    const Entry* s = FileReader::optional(*m, section);
    if (!s || !s->value.IsMap()) return;
    auto sm = r.openMap(s->value, joinPath("sloTargets", std::string(section)));
    if (!sm) return;
    const Entry* k = FileReader::optional(*sm, key);
    if (!k) return;
    const std::string path = joinPath(joinPath("sloTargets", std::string(section)), std::string(key));
    if (auto v = r.number(k->value, path, 0, max)) {
      if (out && *out != *v)
        r.error(k->value, path + " is " + std::to_string(*v) + " here but another policy document set it to " +
                              std::to_string(*out) + " (" + where.str() + ")",
                "give the target one value in one document");
      out = *v;
      where = r.at(k->key_node);
    }
  };
  target("accessProvisioning", "p95HoursFromCertToAccess", 1e6, loaded_->slo.p95_hours_cert_to_access,
         loaded_->slo.p95_where);
  target("trainingCompletion", "targetPctWithin48h", 100, loaded_->slo.completion_pct_within_48h,
         loaded_->slo.completion_where);
}

void Builder::docMonitoring(const FileReader& r, const Entry& e) {
  auto m = r.openMap(e.value, "monitoring");
  if (!m) return;
  for (const auto& c : m->entries()) {
    const std::string path = joinPath("monitoring", c.key);
    if (c.key != "alerts") {
      notEnforced(path, "monitoring setting certgate does not know; it is not applied",
                  r.at(c.key_node));
      continue;
    }
    auto items = r.sequence(c.value, path);
    if (!items) continue;
    std::size_t i = 0;
    for (const auto& item : *items) {
      const std::string ip = indexPath(path, i++);
      auto am = r.openMap(item, ip);
      if (!am) continue;
      AlertThreshold a;
      a.where = r.at(item);
      bool ok = true;
      if (const Entry* ne = r.require(*am, "name", ip)) {
        if (auto v = r.string(ne->value, joinPath(ip, "name")))
          a.name = *v;
        else
          ok = false;
      } else {
        ok = false;
      }
      const std::string label = a.name.empty() ? ip : path + "[" + a.name + "]";
      if (const Entry* te = r.require(*am, "threshold", label)) {
        if (auto v = r.string(te->value, joinPath(label, "threshold"))) {
          a.threshold = *v;
          if (!parseThreshold(*v, a)) {
            r.error(te->value, joinPath(label, "threshold") + " '" + *v + "' cannot be understood",
                    "write it as '> NUMBER WHAT/PERIOD', e.g. '> 10 exceptions/day' (period: "
                    "minute, hour, day, week or month; '>=' is also accepted)");
            ok = false;
          }
        } else {
          ok = false;
        }
      } else {
        ok = false;
      }
      for (const auto& ae : am->entries()) {
        if (ae.key == "name" || ae.key == "threshold") continue;
        if (ae.key == "notify") {
          if (auto v = r.stringList(ae.value, joinPath(label, "notify")))
            a.notify = *v;
          else
            ok = false;
        } else {
          notEnforced(joinPath(label, ae.key), "alert option certgate does not know; not applied",
                      r.at(ae.key_node));
        }
      }
      if (!ok) continue;
      enforced(label, "alert threshold handed to certgate's alerting", a.where);
      loaded_->alerts.push_back(std::move(a));
    }
  }
}

void Builder::policyDocument(const FileRef& ref) {
  auto doc = loadYamlFile(ref.path, "policy document", diag_,
                          ref.named_at.file.empty() ? nullptr : &ref.named_at);
  if (!doc) return;
  FileReader r(ref.path, diag_);
  auto m = r.openMap(*doc, "");
  if (!m) return;
  DocState st;
  if (const Entry* e = r.require(*m, "policyId", "",
                                 "add policyId: a stable name of this policy document (evidence "
                                 "refers to it)")) {
    if (auto v = r.string(e->value, "policyId")) {
      if (std::find(loaded_->policy_ids.begin(), loaded_->policy_ids.end(), *v) !=
          loaded_->policy_ids.end())
        r.error(e->value, "policyId '" + *v + "' is already used by another loaded document",
                "give each policy document its own policyId");
      else
        loaded_->policy_ids.push_back(*v);
      st.policy_id = *v;
    }
  }
  if (st.policy_id.empty()) st.policy_id = ref.path;

  for (const auto& e : m->entries()) {
    if (e.key == "policyId") continue;
    if (e.key == "owners") {
      notEnforced("owners", "informational: the owners are contacts; certgate does not act on them",
                  r.at(e.key_node));
    } else if (e.key == "scope") {
      docScope(r, e, st);
    } else if (e.key == "trainingRequirements") {
      docTraining(r, e, st);
    } else if (e.key == "accessGating") {
      docGating(r, e, st);
    } else if (e.key == "loggingAndEvidence") {
      notEnforcedChildren(r, e,
                          "certgate keeps its own evidence (audit chain, ledger) and exports it "
                          "on request; this document's logging and retention settings are not "
                          "applied by certgate");
    } else if (e.key == "sloTargets") {
      notEnforcedChildren(r, e,
                          "service-level targets are measured, not enforced: `certgate report "
                          "kpi` compares accessProvisioning.p95HoursFromCertToAccess and "
                          "trainingCompletion.targetPctWithin48h with its figures");
      docSlo(r, e);
    } else if (e.key == "monitoring") {
      docMonitoring(r, e);
    } else {
      notEnforced(e.key, "unknown section: certgate does not read it, so it is not enforced",
                  r.at(e.key_node));
    }
  }
  if (!st.has_track_list)
    r.error(
        *doc,
        "policy document " + st.policy_id + " defines no trainingRequirements.certificationTracks",
        "add trainingRequirements.certificationTracks (see config/README.md)");

  std::vector<std::string> doc_tracks;
  for (std::size_t idx : st.tracks) {
    PendingTrack& t = tracks_[idx];
    doc_tracks.push_back(t.id);
    if (st.populations)
      for (const auto& p : *st.populations) t.track.populations.push_back(sym().intern(p));
    if (st.exceptions) t.track.exceptions = *st.exceptions;
  }
  std::vector<std::string> doc_keys;
  for (const auto& k : st.keys) doc_keys.push_back(k.key);
  for (auto& k : st.keys) {
    k.directory = st.directory;
    k.doc_keys = doc_keys;
    k.doc_tracks = doc_tracks;
    group_keys_.push_back(std::move(k));
  }
}

// ---------------------------------------------------------------------------------------------
// Grant mapping files

void Builder::grantFile(const FileRef& ref) {
  auto doc = loadYamlFile(ref.path, "grant mapping file", diag_,
                          ref.named_at.file.empty() ? nullptr : &ref.named_at);
  if (!doc) return;
  FileReader r(ref.path, diag_);
  auto m = r.map(*doc, "", kGrantFileKeys);
  if (!m) return;
  checkVersion(r, *m);
  const Entry* grants = r.require(*m, "grants", "", "add 'grants:' with one entry per track");
  if (!grants) return;
  auto items = r.sequence(grants->value, "grants");
  if (!items) return;
  std::size_t i = 0;
  for (const auto& item : *items) {
    const std::string ip = indexPath("grants", i++);
    auto gm = r.map(item, ip, kGrantEntryKeys);
    if (!gm) continue;
    std::optional<std::string> track;
    if (const Entry* e = r.require(*gm, "track", ip)) {
      track = r.string(e->value, joinPath(ip, "track"));
      if (track && !track_index_.count(*track)) {
        r.error(e->value,
                joinPath(ip, "track") + " names unknown track '" + *track +
                    "'; known tracks: " + listOf(trackIds()),
                "use the id of a track defined in a track file or policy document");
        track.reset();
      }
    }
    const Entry* groups = FileReader::optional(*gm, "groups");
    const Entry* tokens = FileReader::optional(*gm, "tokens");
    if (!groups && !tokens) {
      r.error(item, ip + " grants nothing: it has neither groups nor tokens",
              "add groups: [{directory, group, mode}] and/or tokens: [{gateway, scope, ...}]");
      continue;
    }
    std::vector<GroupGrant> parsed;
    if (groups) parsed = parseGroups(r, groups->value, joinPath(ip, "groups"));
    std::vector<TokenGrantSettings> parsed_tokens;
    if (tokens) parsed_tokens = parseTokens(r, tokens->value, joinPath(ip, "tokens"));
    if (!track) continue;
    for (auto& g : parsed) grants_.push_back(GrantDraft{*track, std::move(g)});
    for (auto& g : parsed_tokens) token_grants_.push_back(TokenDraft{*track, std::move(g)});
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-file checks

std::set<std::string> wordsCommonToAll(const std::vector<std::string>& names) {
  std::set<std::string> common;
  if (names.size() < 2) return common;
  auto first = splitWords(names[0]);
  common.insert(first.begin(), first.end());
  for (std::size_t i = 1; i < names.size(); ++i) {
    auto w = splitWords(names[i]);
    std::set<std::string> these(w.begin(), w.end()), kept;
    for (const auto& c : common)
      if (these.count(c)) kept.insert(c);
    common = std::move(kept);
  }
  return common;
}

void Builder::bindGroups(const std::vector<GroupBinding>& bindings) {
  std::set<std::string> used;
  for (const auto& k : group_keys_) {
    std::string track;
    auto binding = std::find_if(bindings.begin(), bindings.end(),
                                [&](const GroupBinding& b) { return b.key == k.key; });
    if (binding != bindings.end()) {
      used.insert(k.key);
      if (!track_index_.count(binding->track)) {
        diag_.error(binding->where,
                    "group_bindings." + k.key + " names unknown track '" + binding->track +
                        "'; known tracks: " + listOf(trackIds()),
                    "use the id of a loaded track");
        continue;
      }
      track = binding->track;
    } else {
      const auto common_keys = wordsCommonToAll(k.doc_keys);
      const auto common_tracks = wordsCommonToAll(k.doc_tracks);
      std::vector<std::string> distinct;
      for (const auto& w : splitWords(k.key))
        if (!common_keys.count(w) && !common_tracks.count(w) &&
            std::find(distinct.begin(), distinct.end(), w) == distinct.end())
          distinct.push_back(w);
      std::vector<std::string> candidates;
      for (const auto& t : k.doc_tracks) {
        const auto tw = splitWords(t);
        if (std::any_of(distinct.begin(), distinct.end(), [&](const std::string& w) {
              return std::find(tw.begin(), tw.end(), w) != tw.end();
            }))
          candidates.push_back(t);
      }
      if (candidates.size() != 1) {
        const std::string example = candidates.empty()
                                        ? (k.doc_tracks.empty() ? "TRACK_ID" : k.doc_tracks[0])
                                        : candidates[0];
        std::string message =
            "groupMapping key '" + k.key + "' (group " + k.group + ") of policy " + k.policy_id;
        if (candidates.empty())
          message += " matches no track: none of the track ids (" + listOf(k.doc_tracks) +
                     ") contains its distinguishing words (" +
                     (distinct.empty()
                          ? std::string("none: every word is shared by all keys or all tracks")
                          : listOf(distinct)) +
                     ")";
        else
          message += " is ambiguous: its distinguishing words (" + listOf(distinct) +
                     ") match several tracks: " + listOf(candidates);
        diag_.error(k.where, std::move(message),
                    "bind it explicitly in certgate.yaml: group_bindings: {" + k.key + ": " +
                        example + "}");
        continue;
      }
      track = candidates[0];
    }
    grants_.push_back(
        GrantDraft{track, GroupGrant{k.directory, k.group, GroupGrant::Mode::Additive, k.where}});
    enforced("accessGating.identityProvider.groupMapping." + k.key,
             "people entitled to track " + track + " are added to group " + k.group +
                 (k.directory.empty() ? std::string() : " in directory " + k.directory),
             k.where);
  }
  std::vector<std::string> all_keys;
  for (const auto& k : group_keys_) all_keys.push_back(k.key);
  for (const auto& b : bindings) {
    if (used.count(b.key)) continue;
    diag_.error(b.where,
                "group_bindings key '" + b.key +
                    "' matches no groupMapping key of the loaded policy documents; keys: " +
                    listOf(all_keys),
                "remove the binding or correct the key's spelling");
  }
}

void Builder::checkRequires() {
  for (const auto& t : tracks_)
    for (const auto& [req, where] : t.require_refs)
      if (!track_index_.count(req))
        diag_.error(where,
                    "track " + t.id + " requires unknown track '" + req +
                        "'; known tracks: " + listOf(trackIds()),
                    "use the id of a loaded track, or load the file that defines it");

  // Prerequisite cycles: depth-first search, reported once per cycle at the closing edge.
  enum class Mark { None, Active, Done };
  std::vector<Mark> mark(tracks_.size(), Mark::None);
  std::vector<std::size_t> stack;
  std::set<std::set<std::size_t>> reported;
  std::function<void(std::size_t)> visit = [&](std::size_t i) {
    mark[i] = Mark::Active;
    stack.push_back(i);
    for (const auto& [req, where] : tracks_[i].require_refs) {
      auto it = track_index_.find(req);
      if (it == track_index_.end()) continue;
      const std::size_t j = it->second;
      if (mark[j] == Mark::Active) {
        auto from = std::find(stack.begin(), stack.end(), j);
        std::set<std::size_t> members(from, stack.end());
        if (!reported.insert(members).second) continue;
        std::string cycle;
        for (auto s = from; s != stack.end(); ++s) cycle += tracks_[*s].id + " -> ";
        cycle += tracks_[j].id;
        diag_.error(where, "prerequisite cycle: " + cycle,
                    "remove one of the 'requires' entries so that no track requires itself");
      } else if (mark[j] == Mark::None) {
        visit(j);
      }
    }
    stack.pop_back();
    mark[i] = Mark::Done;
  };
  for (std::size_t i = 0; i < tracks_.size(); ++i)
    if (mark[i] == Mark::None) visit(i);
}

void Builder::checkModulesAndQuizzes() {
  std::set<std::string> catalogue_ids;
  for (const auto& [id, where] : catalogue_) catalogue_ids.insert(id);
  std::set<std::string> modules = catalogue_ids;
  for (const auto& t : tracks_) {
    for (const auto& [mod, where] : t.module_refs) {
      modules.insert(mod);
      if (has_catalogue_ && !catalogue_.count(mod))
        diag_.error(where,
                    "track " + t.id + " references unknown module " + mod +
                        "; known modules: " + listOf(catalogue_ids),
                    "add " + mod + " to a modules: catalogue in a track file, or correct the id");
    }
  }
  std::map<std::string, std::string> quiz_owner;
  for (const auto& t : tracks_) {
    if (!t.quiz_id) continue;
    auto [it, inserted] = quiz_owner.emplace(*t.quiz_id, t.id);
    if (!inserted)
      diag_.error(t.info.where,
                  "track " + t.id + " uses quiz id '" + *t.quiz_id +
                      "', already the quiz of track " + it->second,
                  "give each track its own quiz id (default: <trackId>/quiz)");
    else if (modules.count(*t.quiz_id))
      diag_.error(
          t.info.where,
          "track " + t.id + " uses quiz id '" + *t.quiz_id + "', which is also a module id",
          "quiz ids and module ids must differ: LMS records are mapped to one or the other");
  }
}

std::vector<TokenGrantSettings> Builder::parseTokens(const FileReader& r, const YAML::Node& node,
                                                     const std::string& path) {
  std::vector<TokenGrantSettings> out;
  auto items = r.sequence(node, path);
  if (!items) return out;
  std::size_t i = 0;
  for (const auto& item : *items) {
    const std::string ip = indexPath(path, i++);
    auto m = r.map(item, ip, kTokenGrantKeys);
    if (!m) continue;
    TokenGrantSettings g;
    g.where = r.at(item);
    bool ok = true;
    if (const Entry* e = FileReader::optional(*m, "gateway")) {
      if (auto v = r.string(e->value, joinPath(ip, "gateway")))
        g.gateway = *v;
      else
        ok = false;
    }
    if (const Entry* e = r.require(*m, "scope", ip,
                                   "add scope: certgate's name for what the token unlocks, e.g. "
                                   "genai-basic")) {
      auto v = r.string(e->value, joinPath(ip, "scope"));
      if (v && (v->empty() || hasSpace(*v) || v->find(':') != std::string::npos)) {
        r.error(e->value, joinPath(ip, "scope") + " '" + *v + "' may not be empty or contain "
                          "spaces or ':'",
                "use a short name such as genai-basic");
        ok = false;
      } else if (v) {
        g.scope = *v;
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const Entry* e = FileReader::optional(*m, "models")) {
      if (auto v = r.stringList(e->value, joinPath(ip, "models")))
        g.models = *v;
      else
        ok = false;
    }
    if (const Entry* e = FileReader::optional(*m, "max_budget")) {
      if (auto v = r.number(e->value, joinPath(ip, "max_budget"), 0, 1e12))
        g.max_budget = *v;
      else
        ok = false;
    }
    if (const Entry* e = FileReader::optional(*m, "budget_duration")) {
      if (auto v = r.duration(e->value, joinPath(ip, "budget_duration"))) {
        (void)v;
        g.budget_duration = e->value.as<std::string>();
      } else {
        ok = false;
      }
    }
    const std::pair<const char*, core::Seconds*> durations[] = {
        {"lifetime", &g.lifetime}, {"rotate_before", &g.rotate_before}, {"overlap", &g.overlap}};
    for (const auto& [key, target] : durations) {
      if (const Entry* e = FileReader::optional(*m, key)) {
        if (auto d = r.duration(e->value, joinPath(ip, key)))
          *target = *d;
        else
          ok = false;
      }
    }
    if (g.lifetime.count() > 0 && g.rotate_before >= g.lifetime) {
      r.error(item,
              ip + ": rotate_before (" + std::to_string(g.rotate_before.count()) +
                  "s) must be shorter than lifetime (" + std::to_string(g.lifetime.count()) + "s)",
              "otherwise every token would be replaced as soon as it is issued");
      ok = false;
    }
    if (const Entry* e = FileReader::optional(*m, "delivery")) {
      auto v = r.string(e->value, joinPath(ip, "delivery"));
      if (v && *v == "none") {
        g.delivery = Delivery::None;
      } else if (v && *v == "webhook") {
        g.delivery = Delivery::Webhook;
      } else if (v && *v == "email") {
        g.delivery = Delivery::Email;
      } else {
        if (v)
          r.error(e->value,
                  joinPath(ip, "delivery") + " must be none, webhook or email, got '" + *v + "'",
                  "none: the gateway hands out the secret; webhook: certgate posts it to your "
                  "vault; email: a single-use pickup link");
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(g));
  }
  return out;
}

void Builder::assembleGrants() {
  struct Seen {
    GroupGrant::Mode mode;
    Location where;
    std::string track;
  };
  std::map<std::pair<std::string, std::string>, Seen> seen;
  for (const auto& t : tracks_) {
    TrackGrants tg;
    tg.track = t.id;
    for (const auto& d : grants_) {
      if (d.track != t.id) continue;
      const auto key = std::make_pair(d.grant.directory, d.grant.group);
      auto it = seen.find(key);
      if (it != seen.end() && it->second.mode != d.grant.mode) {
        diag_.error(
            d.grant.where,
            "group " + d.grant.group +
                (d.grant.directory.empty() ? "" : " (directory " + d.grant.directory + ")") +
                " is declared " +
                (d.grant.mode == GroupGrant::Mode::Exclusive ? "exclusive" : "additive") +
                " here but " +
                (it->second.mode == GroupGrant::Mode::Exclusive ? "exclusive" : "additive") +
                " at " + it->second.where.str(),
            "a group has one mode: use the same one everywhere (exclusive removes anyone "
            "not entitled)");
        continue;
      }
      if (it != seen.end() && it->second.track != t.id &&
          d.grant.mode == GroupGrant::Mode::Exclusive)
        diag_.warn(d.grant.where, "exclusive group " + d.grant.group + " is granted by tracks " +
                                      it->second.track + " and " + t.id +
                                      ": members need either track");
      if (it == seen.end()) seen.emplace(key, Seen{d.grant.mode, d.grant.where, t.id});
      const bool duplicate =
          std::any_of(tg.groups.begin(), tg.groups.end(), [&](const GroupGrant& g) {
            return g.directory == d.grant.directory && g.group == d.grant.group;
          });
      if (duplicate) continue;
      if (tg.groups.empty()) tg.where = d.grant.where;
      tg.groups.push_back(d.grant);
    }
    std::set<std::pair<std::string, std::string>> token_keys;
    for (const auto& d : token_grants_) {
      if (d.track != t.id) continue;
      if (!token_keys.insert({d.grant.gateway, d.grant.scope}).second) {
        diag_.error(d.grant.where,
                    "track " + t.id + " grants scope " + d.grant.scope +
                        (d.grant.gateway.empty() ? "" : " on gateway " + d.grant.gateway) +
                        " twice",
                    "list each (gateway, scope) once per track");
        continue;
      }
      if (tg.groups.empty() && tg.tokens.empty()) tg.where = d.grant.where;
      tg.tokens.push_back(d.grant);
    }
    if (!tg.groups.empty() || !tg.tokens.empty()) loaded_->grants.push_back(std::move(tg));
  }
}

PolicyBuild Builder::finish(const std::vector<GroupBinding>& bindings) {
  bindGroups(bindings);
  checkRequires();
  checkModulesAndQuizzes();
  assembleGrants();
  PolicyBuild out;
  out.index.has_catalogue = has_catalogue_;
  for (const auto& [id, where] : catalogue_) out.index.catalogue.insert(id);
  for (auto& t : tracks_) {
    for (const auto& [mod, where] : t.module_refs) out.index.track_modules.insert(mod);
    if (t.quiz_id) out.index.quiz_of_track[t.id] = *t.quiz_id;
    out.index.track_ids.push_back(t.id);
    loaded_->policy.tracks.push_back(std::move(t.track));
    loaded_->tracks.push_back(std::move(t.info));
  }
  out.loaded = loaded_;
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::vector<std::string> splitWords(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!std::isalnum(c)) {
      flush();
      continue;
    }
    if (std::isupper(c) && !cur.empty()) {
      const auto prev = static_cast<unsigned char>(text[i - 1]);
      const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
      // "certifiedUser" -> certified|User; "AADUser" -> AAD|User.
      if (std::islower(prev) || std::isdigit(prev) || (std::isupper(prev) && std::islower(next)))
        flush();
    }
    cur += static_cast<char>(std::tolower(c));
  }
  flush();
  return words;
}

bool ruleOnlyChecksCertification(std::string_view rule) {
  bool saw_certification = false;
  char prev_significant = 0;
  std::size_t i = 0;
  while (i < rule.size()) {
    const char c = rule[i];
    if (c == '\'' || c == '"') {
      const std::size_t end = rule.find(c, i + 1);
      if (end == std::string_view::npos) return false;
      i = end + 1;
      prev_significant = c;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < rule.size() && (std::isalnum(static_cast<unsigned char>(rule[j])) ||
                                 rule[j] == '_' || rule[j] == '.'))
        ++j;
      const std::string_view token = rule.substr(i, j - i);
      i = j;
      const bool member = prev_significant == '.';  // "...[trackId].status"
      prev_significant = 'a';
      if (member) continue;
      if (token == "true" || token == "false" || token == "null" || token == "trackId") continue;
      if (token == "user.certifications" || token.starts_with("user.certifications.")) {
        saw_certification = true;
        continue;
      }
      return false;
    }
    if (!std::isspace(static_cast<unsigned char>(c))) prev_significant = c;
    ++i;
  }
  return saw_certification;
}

bool parseThreshold(std::string_view text, AlertThreshold& out) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  std::string_view s = trim(text);
  bool inclusive = false;
  if (s.starts_with(">=")) {
    inclusive = true;
    s.remove_prefix(2);
  } else if (s.starts_with("\xE2\x89\xA5")) {  // U+2265 GREATER-THAN OR EQUAL TO
    inclusive = true;
    s.remove_prefix(3);
  } else if (s.starts_with(">")) {
    s.remove_prefix(1);
  } else {
    return false;
  }
  s = trim(s);
  std::size_t n = 0;
  while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
  const auto limit = parseNumber(s.substr(0, n));
  if (!limit || *limit < 0) return false;
  s = trim(s.substr(n));
  std::string_view unit, period;
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    unit = trim(s.substr(0, slash));
    period = trim(s.substr(slash + 1));
  } else if (auto per = s.find(" per "); per != std::string_view::npos) {
    unit = trim(s.substr(0, per));
    period = trim(s.substr(per + 5));
  } else if (s.starts_with("per ")) {
    period = trim(s.substr(4));
  } else {
    return false;
  }
  for (char c : unit)
    if (!std::isalpha(static_cast<unsigned char>(c)) && c != ' ' && c != '_' && c != '-')
      return false;
  std::string p;
  for (char c : period) p += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, const char*> kPeriods[] = {
      {"minute", "minute"}, {"minutes", "minute"}, {"min", "minute"}, {"hour", "hour"},
      {"hours", "hour"},    {"h", "hour"},         {"day", "day"},    {"days", "day"},
      {"d", "day"},         {"week", "week"},      {"weeks", "week"}, {"w", "week"},
      {"month", "month"},   {"months", "month"}};
  for (const auto& [name, canonical] : kPeriods) {
    if (p == name) {
      out.limit = *limit;
      out.per = canonical;
      out.unit = std::string(unit);
      out.inclusive = inclusive;
      return true;
    }
  }
  return false;
}

PolicyBuild buildPolicy(const PolicyInputs& inputs, Diagnostics& diag) {
  const std::size_t warnings_before = diag.warnings().size();
  Builder builder(diag);
  for (const auto& f : inputs.track_files) builder.trackFile(f);
  for (const auto& f : inputs.policy_files) builder.policyDocument(f);
  for (const auto& f : inputs.grant_files) builder.grantFile(f);
  PolicyBuild out = builder.finish(inputs.bindings);
  const auto& w = diag.warnings();
  out.loaded->warnings.assign(w.begin() + static_cast<std::ptrdiff_t>(warnings_before), w.end());
  return out;
}

void validateBuiltPolicy(const LoadedPolicy& loaded, Diagnostics& diag) {
  const core::Status status = core::validatePolicy(loaded.policy, loaded.symbols);
  if (status.ok()) return;
  const core::Error& e = status.error();
  std::string text = e.message;
  if (!e.where.empty()) text += " [" + e.where + "]";
  // Locate at the track the message names (the longest matching id, so GENAI_USER_PARTNER
  // wins over GENAI_USER).
  const TrackInfo* best = nullptr;
  for (const auto& t : loaded.tracks)
    if (!t.id.empty() && text.find(t.id) != std::string::npos &&
        (!best || t.id.size() > best->id.size()))
      best = &t;
  Location where =
      best ? best->where : (loaded.tracks.empty() ? Location{} : loaded.tracks[0].where);
  diag.error(where, "policy check failed: " + text,
             e.hint.empty() ? "fix the track definitions named in the message" : e.hint);
}

}  // namespace certgate::settings::detail
