#include "settings/settings.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <filesystem>
#include <set>
#include <span>

#include "settings/policy_loader.hpp"
#include "settings/yaml_support.hpp"

namespace certgate::settings {

namespace {

namespace fs = std::filesystem;
using detail::Diagnostics;
using detail::Entry;
using detail::FileReader;
using detail::FileRef;
using detail::indexPath;
using detail::joinPath;
using detail::MapView;

constexpr std::string_view kTopKeys[] = {
    "version",     "store",  "tracks",   "policies", "group_bindings", "mappings", "identity",
    "sources",     "directories", "gateways", "delivery", "limits", "schedule", "http",
    "logging", "alerts", "reminders", "exceptions"};
constexpr std::string_view kExceptionsKeys[] = {"approvers"};
constexpr std::string_view kStoreKeys[] = {"path"};
constexpr std::string_view kMappingsKeys[] = {"items", "grants", "identity"};
constexpr std::string_view kIdentityKeys[] = {"keys", "default_population", "roster"};
constexpr std::string_view kRosterKeys[] = {"path", "columns"};
constexpr std::string_view kRosterColumnKeys[] = {"employee_id", "email", "display_name",
                                                  "population"};
constexpr std::string_view kSourceCommonKeys[] = {"name",     "kind",        "enabled",
                                                  "trust_lms_expiry", "min_record_ratio",
                                                  "interval", "push_secret", "push_auth",
                                                  "push_jwks", "push_jwt_issuer"};
constexpr std::string_view kDirectoryCommonKeys[] = {
    "name", "kind", "enabled", "default", "match", "population_from_directory",
    "max_failure_ratio", "aliases", "roster"};
constexpr std::string_view kMatchKeys[] = {"person", "attribute"};
constexpr std::string_view kDirectoryKinds[] = {"scim", "okta", "graph"};
constexpr std::string_view kGatewayCommonKeys[] = {"name",         "kind",
                                                   "enabled",      "default",
                                                   "verify_after"};
constexpr std::string_view kGatewayKinds[] = {"litellm", "kong", "rest", "builtin"};
constexpr std::string_view kDeliveryKeys[] = {"webhook", "email"};
constexpr std::string_view kEmailDeliveryKeys[] = {
    "smtp_url", "from",    "username", "password", "pickup_base_url", "pickup_ttl",
    "encryption_key", "subject", "ca_file", "timeout"};
constexpr std::string_view kWebhookDeliveryKeys[] = {"url", "signing_secret", "timeout",
                                                     "ca_file"};
constexpr std::string_view kLimitsKeys[] = {"max_removals", "max_removal_pct", "clock_skew"};
constexpr std::string_view kScheduleKeys[] = {"interval", "jitter", "stop_timeout"};
constexpr std::string_view kHttpKeys[] = {"listen", "admin_token", "introspection_secret",
                                           "threads", "max_body_bytes"};
constexpr std::string_view kLoggingKeys[] = {"level", "format"};
constexpr std::string_view kSecretKeys[] = {"file", "credential"};
constexpr std::string_view kItemFileKeys[] = {"version", "items"};
constexpr std::string_view kItemKeys[] = {"lms_item", "module", "quiz", "source"};
constexpr std::string_view kIdentityFileKeys[] = {"version", "overrides", "populations"};
constexpr std::string_view kOverrideKeys[] = {"source", "match", "person"};

// Names probed through SpecLookup to list the valid kinds when the caller gave no list.
constexpr std::string_view kWellKnownKinds[] = {
    "csv",         "jsonl",  "xapi",   "lrs",       "moodle", "canvas",         "workday",
    "cornerstone", "docebo", "litmos", "talentlms", "absorb", "successfactors", "knowbe4"};

constexpr std::string_view kSecretInline =
    "secrets are never written inline; put it in a file (mode 0600) or a systemd credential and "
    "reference it";

std::string listOf(const std::vector<std::string>& items) {
  return detail::joinList(items);
}

// The push keys of a source, together: each authentication mode has its own key, and a key of
// the other mode is a mistake worth stopping for (a signature that would never be checked).
bool pushKeys(const FileReader& r, const YAML::Node& node, const std::string& path,
              const SourceSettings& src) {
  if (src.push_auth == SourceSettings::PushAuth::Jwt) {
    if (src.push_jwks.empty()) {
      r.error(node, path + ": push_auth jwt needs push_jwks",
              "set push_jwks to the JWK Set file of the learning system's signing keys");
      return false;
    }
    if (!src.push_secret.empty()) {
      r.error(node, path + ": push_secret is not used with push_auth jwt",
              "remove push_secret, or set push_auth: standard-webhooks and remove push_jwks");
      return false;
    }
    return true;
  }
  if (!src.push_jwks.empty() || !src.push_jwt_issuer.empty()) {
    r.error(node, path + ": push_jwks and push_jwt_issuer are read only with push_auth jwt",
            "add push_auth: jwt (and remove push_secret), or remove them");
    return false;
  }
  return true;
}

bool validSourceName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::optional<SecretRef> parseSecret(const FileReader& r, const YAML::Node& node,
                                     const std::string& path, const std::string& base_dir) {
  if (node.IsScalar()) {
    // Never echo the value: it may be the secret itself.
    r.error(node, path + ": " + std::string(kSecretInline),
            "write " + path +
                ": {file: /etc/certgate/NAME} or {credential: NAME} (systemd "
                "LoadCredential=)");
    return std::nullopt;
  }
  auto m = r.map(node, path, kSecretKeys);
  if (!m) return std::nullopt;
  const Entry* file = FileReader::optional(*m, "file");
  const Entry* credential = FileReader::optional(*m, "credential");
  if ((file != nullptr) == (credential != nullptr)) {
    r.error(node, path + " must set exactly one of 'file' or 'credential'",
            "write {file: PATH} or {credential: NAME}");
    return std::nullopt;
  }
  SecretRef ref;
  if (file) {
    auto v = r.string(file->value, joinPath(path, "file"));
    if (!v) return std::nullopt;
    ref.file = detail::resolvePath(base_dir, *v);
  } else {
    auto v = r.string(credential->value, joinPath(path, "credential"));
    if (!v) return std::nullopt;
    if (v->find('/') != std::string::npos || *v == "." || *v == "..") {
      r.error(credential->value,
              joinPath(path, "credential") + " must be a credential name, not a path",
              "use the name given to LoadCredential= in the unit file");
      return std::nullopt;
    }
    ref.credential = *v;
  }
  return ref;
}

// Connector option values, checked against the connector's declared type.
std::optional<ports::OptionValue> optionValue(const FileReader& r, const YAML::Node& node,
                                              const std::string& path, const ports::ConfigKey& key,
                                              const std::string& base_dir) {
  ports::OptionValue v;
  v.where = r.at(node).str();
  switch (key.type) {
    case ports::ValueType::String: {
      // Not trimmed: a delimiter may well be " " or "\t".
      if (!node.IsScalar() || node.Scalar().empty()) {
        (void)r.string(node, path);  // reports the problem
        return std::nullopt;
      }
      v.scalar = node.Scalar();
      return v;
    }
    case ports::ValueType::Int: {
      auto i = r.integer(node, path, INT64_MIN, INT64_MAX);
      if (!i) return std::nullopt;
      v.scalar = std::to_string(*i);
      return v;
    }
    case ports::ValueType::Bool: {
      auto b = r.boolean(node, path);
      if (!b) return std::nullopt;
      v.scalar = *b ? "true" : "false";
      return v;
    }
    case ports::ValueType::Duration: {
      if (!r.duration(node, path)) return std::nullopt;
      v.scalar = *r.string(node, path);
      return v;
    }
    case ports::ValueType::Path: {
      auto s = r.string(node, path);
      if (!s) return std::nullopt;
      v.scalar = detail::resolvePath(base_dir, *s);
      return v;
    }
    case ports::ValueType::StringList: {
      auto l = r.stringList(node, path);
      if (!l) return std::nullopt;
      v.shape = ports::OptionValue::Shape::List;
      v.list = *l;
      return v;
    }
    case ports::ValueType::Map: {
      auto m = r.openMap(node, path);
      if (!m) return std::nullopt;
      v.shape = ports::OptionValue::Shape::Map;
      bool ok = true;
      for (const auto& e : m->entries()) {
        if (!e.value.IsScalar()) {
          r.error(e.value, joinPath(path, e.key) + " must be a single value",
                  "write '" + e.key + ": value'");
          ok = false;
          continue;
        }
        v.map.emplace_back(e.key, e.value.Scalar());
      }
      if (!ok) return std::nullopt;
      return v;
    }
    case ports::ValueType::Secret: {
      auto ref = parseSecret(r, node, path, base_dir);
      if (!ref) return std::nullopt;
      v.shape = ports::OptionValue::Shape::Map;
      if (!ref->file.empty())
        v.map.emplace_back("file", ref->file);
      else
        v.map.emplace_back("credential", ref->credential);
      return v;
    }
  }
  return std::nullopt;
}

struct Loader {
  Diagnostics& diag;
  Settings& s;
  SpecLookup specs;
  const std::vector<std::string>* known_kinds;  // may be null
  SpecLookup directory_specs = nullptr;
  SpecLookup gateway_specs = nullptr;
  detail::PolicyInputs inputs;
  std::vector<FileRef> item_files;
  std::optional<FileRef> identity_file;
  YAML::Node top;
  bool config_ok = false;

  std::vector<std::string> kindsList() const {
    if (known_kinds) return *known_kinds;
    std::vector<std::string> out;
    for (auto k : kWellKnownKinds)
      if (specs && specs(std::string(k))) out.emplace_back(k);
    return out;
  }

  std::vector<FileRef> fileList(const FileReader& r, const Entry& e, const std::string& path) {
    std::vector<FileRef> out;
    if (auto items = r.stringItems(e.value, path))
      for (const auto& [p, n] : *items)
        out.push_back(FileRef{detail::resolvePath(s.base_dir, p), r.at(n)});
    return out;
  }

  void main(const FileReader& r, const MapView& m);
  void identity(const FileReader& r, const Entry& e);
  void sources(const FileReader& r, const Entry& e);
  void source(const FileReader& r, const YAML::Node& node, const std::string& path,
              std::set<std::string>& names);
  void directories(const FileReader& r, const Entry& e);
  void directory(const FileReader& r, const YAML::Node& node, const std::string& path,
                 std::set<std::string>& names);
  bool connectorOption(const FileReader& r, const Entry& e, const std::string& path,
                       const std::string& kind, const ports::ConfigSpec* spec, bool have_registry,
                       const std::vector<std::string_view>& valid, ports::Options& options);
  bool requiredOptions(const FileReader& r, const YAML::Node& node, const MapView& m,
                       const std::string& path, const std::string& kind,
                       const ports::ConfigSpec* spec, const ports::Options& options);
  // The name and kind of a directory or gateway entry: validated, and the kind's spec looked
  // up (nullptr when unknown or when there is no registry). `what` is "directory"/"gateway".
  const ports::ConfigSpec* connectorHeader(const FileReader& r, const MapView& m,
                                           const std::string& path, const char* what,
                                           const char* example, SpecLookup lookup,
                                           std::span<const std::string_view> known,
                                           std::set<std::string>& names, std::string& name,
                                           std::string& kind);
  void gateways(const FileReader& r, const Entry& e);
  void gateway(const FileReader& r, const YAML::Node& node, const std::string& path,
               std::set<std::string>& names);
  void delivery(const FileReader& r, const Entry& e);
  void emailDelivery(const FileReader& r, const Entry& e);
  void itemFile(const FileRef& ref, const detail::PolicyIndex& index);
  void identityMapping(const FileRef& ref);
  void exceptions(const FileReader& r, const Entry& e);
  void approverRoles(const FileReader& r, const YAML::Node& node, const std::string& path);
  std::vector<std::string> sourceNames() const {
    std::vector<std::string> out;
    for (const auto& src : s.sources) out.push_back(src.name);
    return out;
  }
};

void Loader::main(const FileReader& r, const MapView& m) {
  if (const Entry* e = FileReader::optional(m, "version"))
    (void)r.integer(e->value, "version", 1, 1);

  if (const Entry* e = r.require(m, "store", "", "add store: {path: certgate.db}")) {
    if (auto sm = r.map(e->value, "store", kStoreKeys))
      if (const Entry* p = r.require(*sm, "path", "store", "add path: the SQLite database file"))
        if (auto v = r.string(p->value, "store.path"))
          s.store_path = detail::resolvePath(s.base_dir, *v);
  }
  if (const Entry* e = FileReader::optional(m, "tracks"))
    inputs.track_files = fileList(r, *e, "tracks");
  if (const Entry* e = FileReader::optional(m, "policies"))
    inputs.policy_files = fileList(r, *e, "policies");
  for (const auto& f : inputs.track_files) s.track_files.push_back(f.path);
  for (const auto& f : inputs.policy_files) s.policy_files.push_back(f.path);

  if (const Entry* e = FileReader::optional(m, "group_bindings")) {
    if (auto bm = r.openMap(e->value, "group_bindings")) {
      for (const auto& b : bm->entries()) {
        if (auto v = r.string(b.value, joinPath("group_bindings", b.key))) {
          s.group_bindings[b.key] = *v;
          inputs.bindings.push_back(detail::GroupBinding{b.key, *v, r.at(b.value)});
        }
      }
    }
  }

  if (const Entry* e = FileReader::optional(m, "mappings")) {
    if (auto mm = r.map(e->value, "mappings", kMappingsKeys)) {
      if (const Entry* i = FileReader::optional(*mm, "items"))
        item_files = fileList(r, *i, "mappings.items");
      if (const Entry* g = FileReader::optional(*mm, "grants"))
        inputs.grant_files = fileList(r, *g, "mappings.grants");
      if (const Entry* id = FileReader::optional(*mm, "identity"))
        if (auto v = r.string(id->value, "mappings.identity"))
          identity_file = FileRef{detail::resolvePath(s.base_dir, *v), r.at(id->value)};
    }
  }
  for (const auto& f : item_files) s.item_mapping_files.push_back(f.path);
  for (const auto& f : inputs.grant_files) s.grant_mapping_files.push_back(f.path);
  if (identity_file) s.identity_mapping_file = identity_file->path;

  if (const Entry* e = FileReader::optional(m, "identity")) identity(r, *e);
  if (const Entry* e = FileReader::optional(m, "sources"))
    sources(r, *e);
  else
    r.warn(m.node, "no sources are configured: certgate will read no LMS data");

  if (const Entry* e = FileReader::optional(m, "directories")) directories(r, *e);
  if (const Entry* e = FileReader::optional(m, "gateways")) gateways(r, *e);
  if (const Entry* e = FileReader::optional(m, "delivery")) delivery(r, *e);
  if (const Entry* e = FileReader::optional(m, "alerts")) detail::loadAlerts(r, e->value, s);
  if (const Entry* e = FileReader::optional(m, "reminders"))
    detail::loadReminders(r, e->value, s);
  if (const Entry* e = FileReader::optional(m, "exceptions")) exceptions(r, *e);

  if (const Entry* e = FileReader::optional(m, "limits")) {
    if (auto lm = r.map(e->value, "limits", kLimitsKeys)) {
      if (const Entry* v = FileReader::optional(*lm, "max_removals"))
        if (auto n = r.integer(v->value, "limits.max_removals", 0, INT_MAX))
          s.limits.max_removals = static_cast<int>(*n);
      if (const Entry* v = FileReader::optional(*lm, "max_removal_pct"))
        if (auto n = r.number(v->value, "limits.max_removal_pct", 0, 100))
          s.limits.max_removal_pct = *n;
      if (const Entry* v = FileReader::optional(*lm, "clock_skew"))
        if (auto d = r.duration(v->value, "limits.clock_skew")) s.limits.clock_skew = *d;
    }
  }
  if (const Entry* e = FileReader::optional(m, "schedule")) {
    if (auto sm = r.map(e->value, "schedule", kScheduleKeys)) {
      const Entry* interval = FileReader::optional(*sm, "interval");
      if (interval) {
        if (auto d = r.duration(interval->value, "schedule.interval")) {
          if (d->count() < 1)
            r.error(interval->value, "schedule.interval must be at least 1s", "use e.g. 15m");
          else
            s.schedule.interval = *d;
        }
      }
      if (const Entry* j = FileReader::optional(*sm, "jitter"))
        if (auto d = r.duration(j->value, "schedule.jitter")) s.schedule.jitter = *d;
      if (const Entry* t = FileReader::optional(*sm, "stop_timeout")) {
        if (auto d = r.duration(t->value, "schedule.stop_timeout")) {
          if (d->count() < 1)
            r.error(t->value, "schedule.stop_timeout must be at least 1s",
                    "use e.g. 60s, below the unit's TimeoutStopSec");
          else
            s.schedule.stop_timeout = *d;
        }
      }
      if (s.schedule.jitter >= s.schedule.interval)
        r.error(sm->node,
                "schedule.jitter (" + std::to_string(s.schedule.jitter.count()) +
                    "s) must be shorter than schedule.interval (" +
                    std::to_string(s.schedule.interval.count()) + "s)",
                "lower jitter or raise interval");
    }
  }
  if (const Entry* e = FileReader::optional(m, "http")) {
    if (auto hm = r.map(e->value, "http", kHttpKeys)) {
      if (const Entry* l = FileReader::optional(*hm, "listen")) {
        if (auto v = r.string(l->value, "http.listen")) {
          const auto colon = v->rfind(':');
          const std::string host = colon == std::string::npos ? "" : v->substr(0, colon);
          std::int64_t port = -1;
          if (colon != std::string::npos)
            port = detail::parseInteger(v->substr(colon + 1)).value_or(-1);
          const bool v6_ok = host.find(':') == std::string::npos ||
                             (host.size() > 2 && host.front() == '[' && host.back() == ']');
          if (host.empty() || port < 0 || port > 65535 || !v6_ok)
            r.error(l->value, "http.listen must be HOST:PORT (port 0 to 65535), got '" + *v + "'",
                    "e.g. 127.0.0.1:9464, or [::1]:9464 for IPv6");
          else
            s.http.listen = *v;
        }
      }
      if (const Entry* t = hm->find("admin_token")) {
        if (t->value.IsNull())
          r.error(t->value, "http.admin_token is empty",
                  "write admin_token: {file: PATH} or {credential: NAME}, or remove the key");
        else if (auto ref = parseSecret(r, t->value, "http.admin_token", s.base_dir))
          s.http.admin_token = *ref;
      }
      if (const Entry* t = hm->find("introspection_secret")) {
        if (t->value.IsNull())
          r.error(t->value, "http.introspection_secret is empty",
                  "write introspection_secret: {file: PATH} or {credential: NAME}, or remove "
                  "the key");
        else if (auto ref = parseSecret(r, t->value, "http.introspection_secret", s.base_dir))
          s.http.introspection_secret = *ref;
      }
      if (const Entry* v = FileReader::optional(*hm, "threads"))
        if (auto n = r.integer(v->value, "http.threads", 1, 256))
          s.http.threads = static_cast<int>(*n);
      if (const Entry* v = FileReader::optional(*hm, "max_body_bytes"))
        if (auto n = r.integer(v->value, "http.max_body_bytes", 1024, 16 * 1024 * 1024))
          s.http.max_body_bytes = *n;
    }
  }
  if (const Entry* e = FileReader::optional(m, "logging")) {
    if (auto lm = r.map(e->value, "logging", kLoggingKeys)) {
      if (const Entry* l = FileReader::optional(*lm, "level")) {
        if (auto v = r.string(l->value, "logging.level")) {
          static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error"};
          if (kLevels.count(*v))
            s.logging.level = *v;
          else
            r.error(
                l->value,
                "logging.level must be one of trace, debug, info, warn, error; got '" + *v + "'",
                "use info unless you are debugging");
        }
      }
      if (const Entry* f = FileReader::optional(*lm, "format")) {
        if (auto v = r.string(f->value, "logging.format")) {
          if (*v == "text" || *v == "json")
            s.logging.format = *v;
          else
            r.error(f->value, "logging.format must be text or json; got '" + *v + "'",
                    "text for people, json for log shippers");
        }
      }
    }
  }
}

void Loader::exceptions(const FileReader& r, const Entry& e) {
  auto m = r.map(e.value, "exceptions", kExceptionsKeys);
  if (!m) return;
  const Entry* a = r.require(*m, "approvers", "exceptions",
                             "add approvers: {ROLE: [person@example.org, ...]} or a file path");
  if (!a) return;
  s.exceptions.where = r.at(a->value);
  if (!a->value.IsScalar()) {
    approverRoles(r, a->value, "exceptions.approvers");
    return;
  }
  auto path = r.string(a->value, "exceptions.approvers");
  if (!path) return;
  s.exceptions.approvers_file = detail::resolvePath(s.base_dir, *path);
  const Location named_at = r.at(a->value);
  auto doc = detail::loadYamlFile(s.exceptions.approvers_file, "approvers file", diag, &named_at);
  if (!doc) return;
  FileReader fr(s.exceptions.approvers_file, diag);
  approverRoles(fr, *doc, "");
}

// ROLE: [holder, ...] for every entry of the mapping `node`.
void Loader::approverRoles(const FileReader& r, const YAML::Node& node, const std::string& path) {
  auto roles = r.openMap(node, path);
  if (!roles) return;
  for (const auto& role : roles->entries()) {
    const std::string rp = path.empty() ? role.key : joinPath(path, role.key);
    auto holders = r.stringItems(role.value, rp);
    if (!holders) continue;
    std::vector<std::string> list;
    for (const auto& [name, n] : *holders) {
      const std::string norm = normaliseApprover(name);
      if (norm.empty()) {
        r.error(n, rp + " lists an empty name", "write the approver's email address");
        continue;
      }
      if (std::find(list.begin(), list.end(), norm) != list.end()) {
        r.error(n, rp + " lists '" + name + "' twice", "list each person once per role");
        continue;
      }
      list.push_back(norm);
    }
    if (holders->empty())
      r.error(role.value, rp + " lists nobody",
              "list the people who hold role " + role.key + ", or remove the role");
    s.exceptions.approvers[role.key] = std::move(list);
  }
}

// Roles the tracks require that nobody holds (no exception of such a track can be approved), and
// configured roles no track requires (a misspelt role name).
void checkApproverRoles(const Settings& s, Diagnostics& diag) {
  if (!s.policy) return;
  const Location where = s.exceptions.where.file.empty() ? Location{s.config_file, 1, 1}
                                                         : s.exceptions.where;
  std::set<std::string> required;
  for (std::size_t i = 0; i < s.policy->policy.tracks.size(); ++i) {
    const core::Track& t = s.policy->policy.tracks[i];
    if (!t.exceptions.allowed) continue;
    for (const auto& role : t.exceptions.required_roles) {
      required.insert(role);
      auto it = s.exceptions.approvers.find(role);
      if (it == s.exceptions.approvers.end() || it->second.empty())
        diag.warn(where, "nobody holds approver role '" + role + "', which track " +
                             s.policy->tracks[i].id +
                             " requires for exceptions: none of its exceptions can be approved "
                             "until exceptions.approvers." + role + " lists its holders");
    }
  }
  for (const auto& [role, holders] : s.exceptions.approvers)
    if (!required.count(role))
      diag.warn(where, "exceptions.approvers." + role +
                           ": no track requires this role (required roles: " +
                           listOf(std::vector<std::string>(required.begin(), required.end())) +
                           ")");
}

void Loader::identity(const FileReader& r, const Entry& e) {
  auto m = r.map(e.value, "identity", kIdentityKeys);
  if (!m) return;
  if (const Entry* k = FileReader::optional(*m, "keys")) {
    if (auto items = r.stringItems(k->value, "identity.keys")) {
      std::vector<core::IdentityKey> keys;
      for (const auto& [name, n] : *items) {
        core::IdentityKey key;
        if (name == "employee_id")
          key = core::IdentityKey::EmployeeId;
        else if (name == "email")
          key = core::IdentityKey::Email;
        else {
          r.error(
              n,
              "identity.keys: unknown identity key '" + name + "'; valid keys: employee_id, email",
              "list employee_id and/or email, in priority order");
          continue;
        }
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
          r.error(n, "identity.keys lists '" + name + "' twice", "list each key once");
          continue;
        }
        keys.push_back(key);
      }
      if (items->empty())
        r.error(k->value, "identity.keys must list at least one key",
                "e.g. keys: [employee_id, email]");
      else if (keys.size() == items->size())
        s.identity.keys = keys;
    }
  }
  if (const Entry* d = FileReader::optional(*m, "default_population"))
    if (auto v = r.string(d->value, "identity.default_population", true))
      s.identity.default_population = *v;
  if (const Entry* ro = FileReader::optional(*m, "roster")) {
    auto rm = r.map(ro->value, "identity.roster", kRosterKeys);
    if (!rm) return;
    if (const Entry* p =
            r.require(*rm, "path", "identity.roster", "add path: the HR export (CSV)")) {
      if (auto v = r.string(p->value, "identity.roster.path")) {
        s.identity.roster_path = detail::resolvePath(s.base_dir, *v);
        std::error_code ec;
        if (!fs::exists(s.identity.roster_path, ec))
          r.warn(p->value,
                 "identity.roster.path " + s.identity.roster_path + " does not exist (yet)");
      }
    }
    if (const Entry* c = r.require(*rm, "columns", "identity.roster",
                                   "add columns: {employee_id: HEADER, email: HEADER, ...}")) {
      if (auto cm = r.map(c->value, "identity.roster.columns", kRosterColumnKeys)) {
        for (const auto& col : cm->entries())
          if (auto v = r.string(col.value, joinPath("identity.roster.columns", col.key)))
            s.identity.roster_columns[col.key] = *v;
        if (!s.identity.roster_columns.count("employee_id") &&
            !s.identity.roster_columns.count("email"))
          r.error(c->value, "identity.roster.columns must name the employee_id or the email column",
                  "people are matched by these keys");
      }
    }
  }
}

void Loader::sources(const FileReader& r, const Entry& e) {
  auto items = r.sequence(e.value, "sources");
  if (!items) return;
  std::set<std::string> names;
  std::size_t i = 0;
  for (const auto& item : *items) source(r, item, indexPath("sources", i++), names);
}

void Loader::source(const FileReader& r, const YAML::Node& node, const std::string& path,
                    std::set<std::string>& names) {
  auto m = r.openMap(node, path);
  if (!m) return;
  SourceSettings src;
  src.where = r.at(node);
  src.options.where = src.where.str();
  bool ok = true;
  if (const Entry* n =
          r.require(*m, "name", path, "add name: a short unique name, e.g. lms-exports")) {
    if (auto v = r.string(n->value, joinPath(path, "name"))) {
      if (!validSourceName(*v)) {
        r.error(n->value,
                joinPath(path, "name") + " '" + *v + "' may only contain a-z, 0-9, '-' and '_'",
                "use a lower-case name such as lms-exports");
        ok = false;
      } else if (!names.insert(*v).second) {
        r.error(n->value, "duplicate source name '" + *v + "'", "give every source its own name");
        ok = false;
      }
      src.name = *v;
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  const ports::ConfigSpec* spec = nullptr;
  bool kind_ok = false;
  if (const Entry* k = r.require(*m, "kind", path, "add kind: the connector, e.g. csv")) {
    if (auto v = r.string(k->value, joinPath(path, "kind"))) {
      src.kind = *v;
      if (!specs) {
        r.warn(k->value,
               "connector options of " + path + " were not checked (no connector registry)");
      } else if ((spec = specs(*v)) != nullptr) {
        kind_ok = true;
      } else {
        const auto kinds = kindsList();
        std::vector<std::string_view> views(kinds.begin(), kinds.end());
        const std::string close = detail::closestKey(*v, views);
        r.error(k->value,
                joinPath(path, "kind") + ": unknown source kind '" + *v +
                    "'; known kinds: " + listOf(kinds) +
                    (close.empty() ? std::string() : "; did you mean '" + close + "'?"),
                "use one of the known kinds (certgate connectors list)");
      }
    }
  }
  if (!kind_ok) ok = false;

  std::vector<std::string_view> valid(std::begin(kSourceCommonKeys), std::end(kSourceCommonKeys));
  if (spec)
    for (const auto& k : spec->keys) valid.emplace_back(k.key);

  for (const auto& e : m->entries()) {
    const std::string kp = joinPath(path, e.key);
    if (e.key == "name" || e.key == "kind") continue;
    if (e.key == "enabled") {
      if (auto b = r.boolean(e.value, kp))
        src.enabled = *b;
      else
        ok = false;
    } else if (e.key == "trust_lms_expiry") {
      if (auto b = r.boolean(e.value, kp))
        src.trust_lms_expiry = *b;
      else
        ok = false;
    } else if (e.key == "min_record_ratio") {
      if (auto d = r.number(e.value, kp, 0, 1))
        src.min_record_ratio = *d;
      else
        ok = false;
    } else if (e.key == "interval") {
      auto d = r.duration(e.value, kp);
      if (d && d->count() >= 1)
        src.interval = *d;
      else {
        if (d) r.error(e.value, kp + " must be at least 1s", "use e.g. 5m, or remove the key");
        ok = false;
      }
    } else if (e.key == "push_secret") {
      if (auto ref = parseSecret(r, e.value, kp, s.base_dir))
        src.push_secret = *ref;
      else
        ok = false;
    } else if (e.key == "push_auth") {
      auto v = r.string(e.value, kp);
      if (v && *v == "standard-webhooks") {
        src.push_auth = SourceSettings::PushAuth::StandardWebhooks;
      } else if (v && *v == "jwt") {
        src.push_auth = SourceSettings::PushAuth::Jwt;
      } else {
        if (v)
          r.error(e.value, kp + ": unknown push authentication '" + *v + "'",
                  "use standard-webhooks (with push_secret) or jwt (with push_jwks)");
        ok = false;
      }
    } else if (e.key == "push_jwks") {
      if (auto v = r.string(e.value, kp); v && !v->empty())
        src.push_jwks = detail::resolvePath(s.base_dir, *v);
      else {
        if (v) r.error(e.value, kp + " is empty", "give the path of the JWK Set file");
        ok = false;
      }
    } else if (e.key == "push_jwt_issuer") {
      if (auto v = r.string(e.value, kp))
        src.push_jwt_issuer = *v;
      else
        ok = false;
    } else if (!connectorOption(r, e, path, src.kind, spec, specs != nullptr, valid,
                                src.options)) {
      ok = false;
    }
  }
  if (!requiredOptions(r, node, *m, path, src.kind, spec, src.options)) ok = false;
  if (!pushKeys(r, node, path, src)) ok = false;
  if (ok || !src.name.empty()) s.sources.push_back(std::move(src));
}

bool Loader::connectorOption(const FileReader& r, const Entry& e, const std::string& path,
                             const std::string& kind, const ports::ConfigSpec* spec,
                             bool have_registry, const std::vector<std::string_view>& valid,
                             ports::Options& options) {
  const std::string kp = joinPath(path, e.key);
  if (spec) {
    const ports::ConfigKey* key = spec->find(e.key);
    if (!key) {
      const std::string close = detail::closestKey(e.key, valid);
      r.error(e.key_node,
              "unknown key '" + e.key + "' in " + path + " (kind " + kind +
                  "); valid keys: " + detail::joinList(valid) +
                  (close.empty() ? std::string() : "; did you mean '" + close + "'?"),
              close.empty() ? "remove it or use one of the valid keys (certgate connectors "
                              "describe " +
                                  kind + ")"
                            : "rename '" + e.key + "' to '" + close + "'");
      return false;
    }
    if (e.value.IsNull()) {
      r.error(e.value, kp + " is empty", "give it a value or remove the key");
      return false;
    }
    auto v = optionValue(r, e.value, kp, *key, s.base_dir);
    if (!v) return false;
    options.values.emplace_back(e.key, std::move(*v));
    return true;
  }
  if (have_registry) return true;  // unknown kind: already reported
  // No registry to check against: keep the value as written.
  ports::OptionValue v;
  v.where = r.at(e.value).str();
  if (e.value.IsScalar()) {
    v.scalar = e.value.Scalar();
  } else if (e.value.IsSequence()) {
    v.shape = ports::OptionValue::Shape::List;
    for (const auto& x : e.value) v.list.push_back(x.IsScalar() ? x.Scalar() : std::string());
  } else if (e.value.IsMap()) {
    v.shape = ports::OptionValue::Shape::Map;
    for (auto it = e.value.begin(); it != e.value.end(); ++it)
      v.map.emplace_back(it->first.IsScalar() ? it->first.Scalar() : std::string(),
                         it->second.IsScalar() ? it->second.Scalar() : std::string());
  }
  options.values.emplace_back(e.key, std::move(v));
  return true;
}

bool Loader::requiredOptions(const FileReader& r, const YAML::Node& node, const MapView& m,
                             const std::string& path, const std::string& kind,
                             const ports::ConfigSpec* spec, const ports::Options& options) {
  if (!spec) return true;
  bool ok = true;
  for (const auto& key : spec->keys) {
    if (!key.required || options.find(key.key)) continue;
    if (const Entry* present = m.find(key.key); present && !present->value.IsNull()) continue;
    r.error(node,
            "missing required key '" + key.key + "' in " + path + " (kind " + kind + ")" +
                (key.description.empty() ? std::string() : ": " + key.description),
            "add '" + key.key + ":' (" + ports::toString(key.type) + ")");
    ok = false;
  }
  return ok;
}

const ports::ConfigSpec* Loader::connectorHeader(const FileReader& r, const MapView& m,
                                                 const std::string& path, const char* what,
                                                 const char* example, SpecLookup lookup,
                                                 std::span<const std::string_view> known,
                                                 std::set<std::string>& names, std::string& name,
                                                 std::string& kind) {
  const std::string w = what;
  if (const Entry* n = r.require(m, "name", path,
                                 "add name: a short unique name, e.g. " + std::string(example))) {
    if (auto v = r.string(n->value, joinPath(path, "name"))) {
      if (!validSourceName(*v))
        r.error(n->value,
                joinPath(path, "name") + " '" + *v + "' may only contain a-z, 0-9, '-' and '_'",
                "use a lower-case name such as " + std::string(example));
      else if (!names.insert(*v).second)
        r.error(n->value, "duplicate " + w + " name '" + *v + "'",
                "give every " + w + " its own name");
      name = *v;
    }
  }
  std::vector<std::string_view> kinds;
  for (auto kk : known)
    if (!lookup || lookup(std::string(kk))) kinds.push_back(kk);
  const Entry* k = r.require(m, "kind", path, "add kind: " + detail::joinList(kinds));
  if (!k) return nullptr;
  auto v = r.string(k->value, joinPath(path, "kind"));
  if (!v) return nullptr;
  kind = *v;
  if (!lookup) {
    r.warn(k->value, "connector options of " + path + " were not checked (no connector registry)");
    return nullptr;
  }
  const ports::ConfigSpec* spec = lookup(*v);
  if (!spec) {
    const std::string close = detail::closestKey(*v, kinds);
    r.error(k->value,
            joinPath(path, "kind") + ": unknown " + w + " kind '" + *v +
                "'; known kinds: " + detail::joinList(kinds) +
                (close.empty() ? std::string() : "; did you mean '" + close + "'?"),
            "use one of the known kinds (certgate connectors list)");
  }
  return spec;
}

void Loader::directories(const FileReader& r, const Entry& e) {
  auto items = r.sequence(e.value, "directories");
  if (!items) return;
  std::set<std::string> names;
  std::size_t i = 0;
  for (const auto& item : *items) directory(r, item, indexPath("directories", i++), names);
  std::size_t defaults = 0;
  for (const auto& d : s.directories) defaults += d.is_default ? 1 : 0;
  if (defaults > 1)
    r.error(e.value, "more than one directory says default: true",
            "mark exactly one directory as the default");
}

void Loader::directory(const FileReader& r, const YAML::Node& node, const std::string& path,
                       std::set<std::string>& names) {
  auto m = r.openMap(node, path);
  if (!m) return;
  DirectorySettings dir;
  dir.where = r.at(node);
  dir.options.where = dir.where.str();
  const ports::ConfigSpec* spec =
      connectorHeader(r, *m, path, "directory", "okta or entra", directory_specs, kDirectoryKinds,
                      names, dir.name, dir.kind);
  std::vector<std::string_view> valid(std::begin(kDirectoryCommonKeys),
                                      std::end(kDirectoryCommonKeys));
  if (spec)
    for (const auto& k : spec->keys) valid.emplace_back(k.key);
  for (const auto& e : m->entries()) {
    const std::string kp = joinPath(path, e.key);
    if (e.key == "name" || e.key == "kind") continue;
    if (e.key == "enabled") {
      if (auto b = r.boolean(e.value, kp)) dir.enabled = *b;
    } else if (e.key == "default") {
      if (auto b = r.boolean(e.value, kp)) dir.is_default = *b;
    } else if (e.key == "aliases") {
      if (auto items = r.stringItems(e.value, kp))
        for (const auto& item : *items) dir.aliases.push_back(item.first);
    } else if (e.key == "roster") {
      if (auto b = r.boolean(e.value, kp)) dir.roster = *b;
    } else if (e.key == "population_from_directory") {
      if (auto b = r.boolean(e.value, kp)) dir.population_from_directory = *b;
    } else if (e.key == "max_failure_ratio") {
      if (auto d = r.number(e.value, kp, 0, 1)) dir.max_failure_ratio = *d;
    } else if (e.key == "match") {
      auto seq = r.sequence(e.value, kp);
      if (!seq) continue;
      dir.match.clear();
      std::size_t j = 0;
      for (const auto& item : *seq) {
        const std::string ip = indexPath(kp, j++);
        auto mm = r.map(item, ip, kMatchKeys);
        if (!mm) continue;
        MatchRule rule;
        rule.where = r.at(item);
        if (const Entry* pe = r.require(*mm, "person", ip, "add person: employee_id or email")) {
          if (auto v = r.string(pe->value, joinPath(ip, "person"))) {
            if (*v == "employee_id") rule.person = MatchRule::Person::EmployeeId;
            else if (*v == "email") rule.person = MatchRule::Person::Email;
            else
              r.error(pe->value, joinPath(ip, "person") + ": '" + *v +
                                     "' is not a person identifier; use employee_id or email",
                      "write person: employee_id or person: email");
          }
        }
        if (const Entry* ae = r.require(*mm, "attribute", ip,
                                        "add attribute: user_name, email, employee_id, "
                                        "external_id or the directory's own attribute name")) {
          if (auto v = r.string(ae->value, joinPath(ip, "attribute"))) rule.attribute = *v;
        }
        dir.match.push_back(std::move(rule));
      }
      if (dir.match.empty())
        r.error(e.value, kp + " is empty", "list at least one {person, attribute} rule");
    } else {
      (void)connectorOption(r, e, path, dir.kind, spec, directory_specs != nullptr, valid,
                            dir.options);
    }
  }
  (void)requiredOptions(r, node, *m, path, dir.kind, spec, dir.options);
  if (dir.roster && spec && spec->find("roster_filter") && !dir.options.find("roster_filter"))
    r.error(node, path + ": roster: true needs roster_filter (which users are in scope)",
            "add roster_filter, e.g. for SCIM: active eq true");
  if (dir.population_from_directory && !dir.roster)
    r.error(node, path + ": population_from_directory needs roster: true",
            "set roster: true (and roster_filter), or remove population_from_directory");
  s.directories.push_back(std::move(dir));
}

void Loader::gateways(const FileReader& r, const Entry& e) {
  auto items = r.sequence(e.value, "gateways");
  if (!items) return;
  std::set<std::string> names;
  std::size_t i = 0;
  for (const auto& item : *items) gateway(r, item, indexPath("gateways", i++), names);
  std::size_t defaults = 0;
  for (const auto& g : s.gateways) defaults += g.is_default ? 1 : 0;
  if (defaults > 1)
    r.error(e.value, "more than one gateway says default: true",
            "mark exactly one gateway as the default");
}

void Loader::gateway(const FileReader& r, const YAML::Node& node, const std::string& path,
                     std::set<std::string>& names) {
  auto m = r.openMap(node, path);
  if (!m) return;
  GatewaySettings gw;
  gw.where = r.at(node);
  gw.options.where = gw.where.str();
  const ports::ConfigSpec* spec =
      connectorHeader(r, *m, path, "gateway", "litellm or kong", gateway_specs, kGatewayKinds,
                      names, gw.name, gw.kind);
  std::vector<std::string_view> valid(std::begin(kGatewayCommonKeys),
                                      std::end(kGatewayCommonKeys));
  if (spec)
    for (const auto& k : spec->keys) valid.emplace_back(k.key);
  for (const auto& e : m->entries()) {
    const std::string kp = joinPath(path, e.key);
    if (e.key == "name" || e.key == "kind") continue;
    if (e.key == "enabled") {
      if (auto b = r.boolean(e.value, kp)) gw.enabled = *b;
    } else if (e.key == "default") {
      if (auto b = r.boolean(e.value, kp)) gw.is_default = *b;
    } else if (e.key == "verify_after") {
      if (auto d = r.duration(e.value, kp)) gw.verify_after = *d;
    } else {
      (void)connectorOption(r, e, path, gw.kind, spec, gateway_specs != nullptr, valid,
                            gw.options);
    }
  }
  (void)requiredOptions(r, node, *m, path, gw.kind, spec, gw.options);
  s.gateways.push_back(std::move(gw));
}

namespace {
bool loopbackHost(const std::string& url, std::string_view scheme) {
  for (const char* host : {"127.0.0.1", "localhost", "[::1]"}) {
    const std::string prefix = std::string(scheme) + host;
    if (url.rfind(prefix, 0) == 0 &&
        (url.size() == prefix.size() || std::string_view(":/").find(url[prefix.size()]) !=
                                            std::string_view::npos))
      return true;
  }
  return false;
}
}  // namespace

void Loader::emailDelivery(const FileReader& r, const Entry& e) {
  auto em = r.map(e.value, "delivery.email", kEmailDeliveryKeys);
  if (!em) return;
  EmailDelivery mail;
  mail.where = r.at(e.value);
  if (const Entry* u = r.require(*em, "smtp_url", "delivery.email",
                                 "add smtp_url: smtps://HOST:465 or smtp://HOST:587 (STARTTLS)")) {
    if (auto v = r.string(u->value, "delivery.email.smtp_url")) {
      const bool smtps = v->rfind("smtps://", 0) == 0;
      const bool smtp = v->rfind("smtp://", 0) == 0;
      const std::size_t host_at = smtps ? 8 : 7;
      if (!smtps && !smtp)
        r.error(u->value, "delivery.email.smtp_url must be smtps:// or smtp:// (got '" + *v + "')",
                "smtps://HOST:465 (TLS), or smtp://HOST:587 (STARTTLS is required)");
      else if (v->size() <= host_at || std::string_view(":/").find((*v)[host_at]) !=
                                           std::string_view::npos)
        r.error(u->value, "delivery.email.smtp_url names no host (got '" + *v + "')",
                "e.g. smtps://smtp.example.org:465");
      else
        mail.smtp_url = *v;
    }
  }
  if (const Entry* f = r.require(*em, "from", "delivery.email",
                                 "add from: the sender address, e.g. certgate@example.org")) {
    if (auto v = r.string(f->value, "delivery.email.from")) {
      if (v->find('@') == std::string::npos || v->find_first_of("\r\n") != std::string::npos)
        r.error(f->value, "delivery.email.from '" + *v + "' is not an email address",
                "e.g. certgate@example.org or \"certgate <certgate@example.org>\"");
      else
        mail.from = *v;
    }
  }
  const Entry* user = FileReader::optional(*em, "username");
  const Entry* pass = FileReader::optional(*em, "password");
  if (user)
    if (auto v = r.string(user->value, "delivery.email.username")) mail.username = *v;
  if (pass)
    if (auto ref = parseSecret(r, pass->value, "delivery.email.password", s.base_dir))
      mail.password = *ref;
  if (user && !pass)
    r.error(user->value, "delivery.email.username is set but password is not",
            "add password: {file: PATH} or {credential: NAME}, or remove username");
  if (pass && !user)
    r.error(pass->value, "delivery.email.password is set but username is not",
            "add username: the SMTP login, or remove password");
  if (const Entry* b = r.require(*em, "pickup_base_url", "delivery.email",
                                 "add pickup_base_url: the public https:// URL of certgate serve")) {
    if (auto v = r.string(b->value, "delivery.email.pickup_base_url")) {
      if (v->rfind("https://", 0) != 0 && !loopbackHost(*v, "http://"))
        r.error(b->value,
                "delivery.email.pickup_base_url must be https:// (got '" + *v + "')",
                "the link leads to a token secret: put certgate serve behind TLS (nginx, Caddy) "
                "and give its public URL, e.g. https://certgate.example.org");
      else if (v->find_first_of("?#") != std::string::npos)
        r.error(b->value, "delivery.email.pickup_base_url must not have a query or fragment",
                "give the URL under which /pickup/ is served, e.g. https://certgate.example.org");
      else {
        std::string url = *v;
        while (!url.empty() && url.back() == '/') url.pop_back();
        mail.pickup_base_url = url;
      }
    }
  }
  if (const Entry* t = FileReader::optional(*em, "pickup_ttl")) {
    if (auto d = r.duration(t->value, "delivery.email.pickup_ttl")) {
      if (*d < core::Seconds{600} || *d > core::days(30))
        r.error(t->value, "delivery.email.pickup_ttl must be between 10m and 30d",
                "e.g. pickup_ttl: 24h");
      else
        mail.pickup_ttl = *d;
    }
  }
  if (const Entry* k = r.require(*em, "encryption_key", "delivery.email",
                                 "add encryption_key: {credential: NAME} (32 random bytes, "
                                 "base64: openssl rand -base64 32)")) {
    if (auto ref = parseSecret(r, k->value, "delivery.email.encryption_key", s.base_dir))
      mail.encryption_key = *ref;
  }
  if (const Entry* sub = FileReader::optional(*em, "subject")) {
    if (auto v = r.string(sub->value, "delivery.email.subject")) {
      if (v->find_first_of("\r\n") != std::string::npos)
        r.error(sub->value, "delivery.email.subject must be one line", "remove the line break");
      else
        mail.subject = *v;
    }
  }
  if (const Entry* c = FileReader::optional(*em, "ca_file"))
    if (auto v = r.string(c->value, "delivery.email.ca_file"))
      mail.ca_file = detail::resolvePath(s.base_dir, *v);
  if (const Entry* t = FileReader::optional(*em, "timeout"))
    if (auto d = r.duration(t->value, "delivery.email.timeout")) mail.timeout = *d;
  s.delivery.email = std::move(mail);
}

void Loader::delivery(const FileReader& r, const Entry& e) {
  auto dm = r.map(e.value, "delivery", kDeliveryKeys);
  if (!dm) return;
  if (const Entry* m = FileReader::optional(*dm, "email")) emailDelivery(r, *m);
  if (const Entry* w = FileReader::optional(*dm, "webhook")) {
    auto wm = r.map(w->value, "delivery.webhook", kWebhookDeliveryKeys);
    if (!wm) return;
    WebhookDelivery hook;
    hook.where = r.at(w->value);
    if (const Entry* u = r.require(*wm, "url", "delivery.webhook",
                                   "add url: the HTTPS endpoint that receives token secrets")) {
      if (auto v = r.string(u->value, "delivery.webhook.url")) {
        const bool https = v->rfind("https://", 0) == 0;
        const bool loopback = v->rfind("http://127.0.0.1", 0) == 0 ||
                              v->rfind("http://localhost", 0) == 0 ||
                              v->rfind("http://[::1]", 0) == 0;
        if (!https && !loopback)
          r.error(u->value, "delivery.webhook.url must be https:// (got '" + *v + "')",
                  "token secrets travel only over TLS; plain http is accepted for loopback only");
        else
          hook.url = *v;
      }
    }
    if (const Entry* sec = r.require(*wm, "signing_secret", "delivery.webhook",
                                     "add signing_secret: {file: PATH} or {credential: NAME}")) {
      if (auto ref = parseSecret(r, sec->value, "delivery.webhook.signing_secret", s.base_dir))
        hook.signing_secret = *ref;
    }
    if (const Entry* t = FileReader::optional(*wm, "timeout"))
      if (auto d = r.duration(t->value, "delivery.webhook.timeout")) hook.timeout = *d;
    if (const Entry* c = FileReader::optional(*wm, "ca_file"))
      if (auto v = r.string(c->value, "delivery.webhook.ca_file"))
        hook.ca_file = detail::resolvePath(s.base_dir, *v);
    s.delivery.webhook = std::move(hook);
  }
}

void Loader::itemFile(const FileRef& ref, const detail::PolicyIndex& index) {
  auto doc = detail::loadYamlFile(ref.path, "item mapping file", diag, &ref.named_at);
  if (!doc) return;
  FileReader r(ref.path, diag);
  auto m = r.map(*doc, "", kItemFileKeys);
  if (!m) return;
  if (const Entry* v = FileReader::optional(*m, "version"))
    (void)r.integer(v->value, "version", 1, 1);
  const Entry* items_entry = r.require(*m, "items", "", "add 'items:' with one entry per LMS item");
  if (!items_entry) return;
  auto items = r.sequence(items_entry->value, "items");
  if (!items) return;
  const auto sources = sourceNames();
  const auto& known = index.has_catalogue ? index.catalogue : index.track_modules;
  std::map<std::pair<std::string, std::string>, Location> seen;
  std::size_t i = 0;
  for (const auto& item : *items) {
    const std::string ip = indexPath("items", i++);
    auto im = r.map(item, ip, kItemKeys);
    if (!im) continue;
    ItemMapping mapping;
    mapping.where = r.at(item);
    bool ok = true;
    if (const Entry* e =
            r.require(*im, "lms_item", ip, "add lms_item: the LMS's id of the course or quiz")) {
      if (auto v = r.string(e->value, joinPath(ip, "lms_item")))
        mapping.lms_item = *v;
      else
        ok = false;
    } else {
      ok = false;
    }
    if (const Entry* e = FileReader::optional(*im, "source")) {
      if (auto v = r.string(e->value, joinPath(ip, "source"))) {
        if (std::find(sources.begin(), sources.end(), *v) == sources.end()) {
          r.error(e->value,
                  joinPath(ip, "source") + " names unknown source '" + *v +
                      "'; configured sources: " + listOf(sources),
                  "use the name of a source in certgate.yaml, or omit source to apply to all");
          ok = false;
        }
        mapping.source = *v;
      } else {
        ok = false;
      }
    }
    const Entry* module = FileReader::optional(*im, "module");
    const Entry* quiz = FileReader::optional(*im, "quiz");
    if ((module != nullptr) == (quiz != nullptr)) {
      r.error(item, ip + " must set exactly one of 'module' or 'quiz'",
              "module: MODULE_ID for a course, quiz: TRACK_ID for the track's quiz");
      ok = false;
    } else if (module) {
      if (auto v = r.string(module->value, joinPath(ip, "module"))) {
        if (!known.count(*v)) {
          r.error(module->value,
                  joinPath(ip, "module") + ": unknown module '" + *v + "'; known modules: " +
                      listOf(std::vector<std::string>(known.begin(), known.end())),
                  index.has_catalogue ? "add it to a modules: catalogue or correct the id"
                                      : "use a module listed by a track, or correct the id");
          ok = false;
        }
        mapping.item = *v;
      } else {
        ok = false;
      }
    } else if (auto v = r.string(quiz->value, joinPath(ip, "quiz"))) {
      auto q = index.quiz_of_track.find(*v);
      const bool track_known =
          std::find(index.track_ids.begin(), index.track_ids.end(), *v) != index.track_ids.end();
      if (!track_known) {
        r.error(quiz->value,
                joinPath(ip, "quiz") + " names unknown track '" + *v +
                    "'; known tracks: " + listOf(index.track_ids),
                "quiz: takes the id of the track whose quiz this LMS item is");
        ok = false;
      } else if (q == index.quiz_of_track.end()) {
        r.error(quiz->value, joinPath(ip, "quiz") + ": track " + *v + " has no quiz",
                "add a quiz to the track, or map this item as a module");
        ok = false;
      } else {
        mapping.item = q->second;
      }
    } else {
      ok = false;
    }
    if (!ok) continue;
    auto [it, inserted] =
        seen.emplace(std::make_pair(mapping.source, mapping.lms_item), mapping.where);
    if (!inserted) {
      r.error(item,
              "duplicate mapping of lms_item '" + mapping.lms_item + "'" +
                  (mapping.source.empty() ? std::string(" (all sources)")
                                          : " for source " + mapping.source) +
                  "; first mapped at " + it->second.str(),
              "map each LMS item once per source");
      continue;
    }
    s.items.push_back(std::move(mapping));
  }
}

void Loader::identityMapping(const FileRef& ref) {
  auto doc = detail::loadYamlFile(ref.path, "identity mapping file", diag, &ref.named_at);
  if (!doc) return;
  FileReader r(ref.path, diag);
  auto m = r.map(*doc, "", kIdentityFileKeys);
  if (!m) return;
  if (const Entry* v = FileReader::optional(*m, "version"))
    (void)r.integer(v->value, "version", 1, 1);
  const auto sources = sourceNames();
  auto personKey = [&](const YAML::Node& n, const std::string& path,
                       const std::string& text) -> std::optional<std::string> {
    if (text.find('@') != std::string::npos) {
      std::string email = core::normaliseEmail(text);
      if (email.empty()) {
        r.error(n, path + ": '" + text + "' is not a valid email address",
                "write name@domain, or an employee id without '@'");
        return std::nullopt;
      }
      return email;
    }
    return core::normaliseEmployeeId(text);
  };
  if (const Entry* o = FileReader::optional(*m, "overrides")) {
    if (auto items = r.sequence(o->value, "overrides")) {
      std::size_t i = 0;
      for (const auto& item : *items) {
        const std::string ip = indexPath("overrides", i++);
        auto om = r.map(item, ip, kOverrideKeys);
        if (!om) continue;
        core::IdentityOverride ov;
        bool ok = true;
        if (const Entry* e = FileReader::optional(*om, "source")) {
          auto v = r.string(e->value, joinPath(ip, "source"));
          if (v && std::find(sources.begin(), sources.end(), *v) == sources.end()) {
            r.error(e->value,
                    joinPath(ip, "source") + " names unknown source '" + *v +
                        "'; configured sources: " + listOf(sources),
                    "use a source name from certgate.yaml, or omit source for all sources");
            ok = false;
          }
          if (v)
            ov.source = *v;
          else
            ok = false;
        }
        if (const Entry* e =
                r.require(*om, "match", ip, "add match: the value seen in the source")) {
          if (auto v = r.string(e->value, joinPath(ip, "match")))
            ov.match = *v;
          else
            ok = false;
        } else {
          ok = false;
        }
        if (const Entry* e = r.require(*om, "person", ip, "add person: the employee id or email")) {
          auto v = r.string(e->value, joinPath(ip, "person"));
          auto key = v ? personKey(e->value, joinPath(ip, "person"), *v) : std::nullopt;
          if (key)
            ov.person_key = *key;
          else
            ok = false;
        } else {
          ok = false;
        }
        if (ok) s.identity.overrides.push_back(std::move(ov));
      }
    }
  }
  if (const Entry* p = FileReader::optional(*m, "populations")) {
    if (auto pm = r.openMap(p->value, "populations")) {
      for (const auto& e : pm->entries()) {
        const std::string path = joinPath("populations", e.key);
        auto population = r.string(e.value, path);
        auto key = personKey(e.key_node, path, e.key);
        if (!population || !key) continue;
        if (!s.identity.populations.emplace(*key, *population).second)
          r.error(e.key_node, "populations: '" + e.key + "' is listed twice (as " + *key + ")",
                  "list each person once");
      }
    }
  }
}

// Every group grant must name a configured directory (or use the default one).
void checkGrantDirectories(const Settings& s, Diagnostics& diag) {
  bool any_group = false;
  std::string names;
  for (const auto& d : s.directories) names += (names.empty() ? "" : ", ") + d.name;
  for (const auto& tg : s.policy->grants) {
    for (const auto& g : tg.groups) {
      any_group = true;
      if (s.directories.empty() || findDirectory(s, g.directory)) continue;
      if (g.directory.empty())
        diag.error(g.where,
                   "the grant of track " + tg.track + " (group " + g.group +
                       ") names no directory and no directory is the default",
                   "mark one directory with default: true or name the directory in the grant");
      else
        diag.error(g.where,
                   "the grant of track " + tg.track + " names directory '" + g.directory +
                       "', which is not configured (directories: " + names + ")",
                   "add it under directories:, or list '" + g.directory +
                       "' in a directory's aliases");
    }
  }
  if (any_group && s.directories.empty())
    diag.warn(Location{s.config_file, 1, 1},
              "tracks grant directory groups but no directories are configured: `plan` and "
              "`sync` will change no group until one is added under directories:");
}

// Every token grant must name a configured gateway (or use the default one), and a grant that
// delivers by webhook or email needs delivery.webhook or delivery.email.
void checkTokenGrants(const Settings& s, Diagnostics& diag) {
  std::string names;
  for (const auto& g : s.gateways) names += (names.empty() ? "" : ", ") + g.name;
  bool any = false;
  for (const auto& tg : s.policy->grants) {
    for (const auto& t : tg.tokens) {
      any = true;
      if (t.delivery == Delivery::Webhook && !s.delivery.webhook)
        diag.error(t.where,
                   "the token grant of track " + tg.track + " (scope " + t.scope +
                       ") delivers by webhook but delivery.webhook is not configured",
                   "add delivery: {webhook: {url, signing_secret}} to certgate.yaml, or use "
                   "delivery: none");
      if (t.delivery == Delivery::Email && !s.delivery.email)
        diag.error(t.where,
                   "the token grant of track " + tg.track + " (scope " + t.scope +
                       ") delivers by email but delivery.email is not configured",
                   "add delivery: {email: {smtp_url, from, pickup_base_url, encryption_key}} to "
                   "certgate.yaml, or use delivery: webhook or none");
      if (s.gateways.empty()) continue;
      const GatewaySettings* gw = findGateway(s, t.gateway);
      if (gw) continue;
      if (t.gateway.empty())
        diag.error(t.where,
                   "the token grant of track " + tg.track + " (scope " + t.scope +
                       ") names no gateway and no gateway is the default",
                   "mark one gateway with default: true or name the gateway in the grant");
      else
        diag.error(t.where,
                   "the token grant of track " + tg.track + " names gateway '" + t.gateway +
                       "', which is not configured (gateways: " + names + ")",
                   "add it under gateways:");
    }
  }
  if (any && s.gateways.empty())
    diag.warn(Location{s.config_file, 1, 1},
              "tracks grant gateway tokens but no gateways are configured: `plan` and `sync` "
              "will issue no token until one is added under gateways:");
}

core::Result<Settings> load(const std::string& config_file, SpecLookup specs,
                            SpecLookup directory_specs, const std::vector<std::string>* known_kinds,
                            std::vector<core::Error>* all_errors,
                            SpecLookup gateway_specs = nullptr) {
  Diagnostics diag;
  Settings s;
  try {
    std::error_code ec;
    fs::path abs = fs::absolute(config_file, ec);
    if (ec) abs = config_file;
    abs = abs.lexically_normal();
    s.config_file = abs.string();
    s.base_dir = abs.parent_path().string();
    Loader loader{diag, s,  specs, known_kinds, directory_specs, gateway_specs,
                  {},   {}, {},    {},          false};
    auto doc = detail::loadYamlFile(s.config_file, "config file", diag);
    if (doc) {
      FileReader r(s.config_file, diag);
      if (auto m = r.map(*doc, "", kTopKeys)) {
        loader.main(r, *m);
        loader.config_ok = true;
      }
    }
    if (loader.config_ok) {
      const std::size_t errors_before = diag.count();
      auto build = detail::buildPolicy(loader.inputs, diag);
      build.loaded->policy.clock_skew = s.limits.clock_skew;
      s.policy = build.loaded;
      for (const auto& f : loader.item_files) loader.itemFile(f, build.index);
      if (loader.identity_file) loader.identityMapping(*loader.identity_file);
      if (s.policy->policy.tracks.empty() && diag.count() == errors_before)
        diag.error(Location{s.config_file, 1, 1}, "no certification tracks are defined",
                   "list track files under 'tracks:' or policy documents under 'policies:'; "
                   "without tracks nobody is entitled to anything");
      if (diag.count() == 0) detail::validateBuiltPolicy(*s.policy, diag);
      checkGrantDirectories(s, diag);
      checkTokenGrants(s, diag);
      checkApproverRoles(s, diag);
    }
  } catch (const std::exception& e) {
    diag.error(Location{config_file, 0, 0},
               std::string("unexpected error while reading the configuration: ") + e.what(),
               "this is a defect in certgate; please report it with the configuration files");
  } catch (...) {
    diag.error(Location{config_file, 0, 0}, "unexpected error while reading the configuration",
               "this is a defect in certgate; please report it with the configuration files");
  }
  if (all_errors) *all_errors = diag.errors();
  if (diag.count() > 0) return diag.errors().front();
  s.warnings = diag.warnings();
  return s;
}

}  // namespace

core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup specs,
                                    std::vector<core::Error>* all_errors) {
  return load(config_file, specs, nullptr, nullptr, all_errors);
}

core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup source_specs,
                                    SpecLookup directory_specs,
                                    std::vector<core::Error>* all_errors) {
  return load(config_file, source_specs, directory_specs, nullptr, all_errors);
}

core::Result<Settings> loadSettings(const std::string& config_file, const SpecLookups& specs,
                                    std::vector<core::Error>* all_errors) {
  return load(config_file, specs.sources, specs.directories, nullptr, all_errors, specs.gateways);
}

const GatewaySettings* findGateway(const Settings& s, const std::string& name) {
  if (!name.empty()) {
    for (const auto& g : s.gateways)
      if (g.name == name) return &g;
    return nullptr;
  }
  for (const auto& g : s.gateways)
    if (g.is_default) return &g;
  return s.gateways.size() == 1 ? &s.gateways.front() : nullptr;
}

std::string normaliseApprover(std::string_view name) {
  const auto first = name.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = name.find_last_not_of(" \t\r\n");
  std::string out(name.substr(first, last - first + 1));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

const char* toString(Delivery d) {
  switch (d) {
    case Delivery::None: return "none";
    case Delivery::Webhook: return "webhook";
    case Delivery::Email: return "email";
  }
  return "none";
}

const DirectorySettings* findDirectory(const Settings& s, const std::string& name) {
  if (!name.empty()) {
    for (const auto& d : s.directories)
      if (d.name == name) return &d;
    for (const auto& d : s.directories)
      for (const auto& a : d.aliases)
        if (a == name) return &d;
    return nullptr;
  }
  for (const auto& d : s.directories)
    if (d.is_default) return &d;
  return s.directories.size() == 1 ? &s.directories.front() : nullptr;
}

core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup specs,
                                    const std::vector<std::string>& known_kinds,
                                    std::vector<core::Error>* all_errors) {
  return load(config_file, specs, nullptr, &known_kinds, all_errors);
}

core::Result<std::shared_ptr<LoadedPolicy>> loadPolicyFiles(
    const std::vector<std::string>& track_files, const std::vector<std::string>& policy_files,
    const std::map<std::string, std::string>& group_bindings,
    const std::vector<std::string>& grant_mapping_files, std::vector<core::Error>* all_errors) {
  Diagnostics diag;
  std::shared_ptr<LoadedPolicy> loaded;
  try {
    detail::PolicyInputs inputs;
    for (const auto& f : track_files) inputs.track_files.push_back(FileRef{f, {}});
    for (const auto& f : policy_files) inputs.policy_files.push_back(FileRef{f, {}});
    for (const auto& f : grant_mapping_files) inputs.grant_files.push_back(FileRef{f, {}});
    for (const auto& [key, track] : group_bindings)
      inputs.bindings.push_back(detail::GroupBinding{key, track, Location{"group_bindings", 0, 0}});
    auto build = detail::buildPolicy(inputs, diag);
    loaded = build.loaded;
    if (diag.count() == 0 && loaded->policy.tracks.empty())
      diag.error(Location{}, "no certification tracks are defined",
                 "name at least one track file or policy document");
    if (diag.count() == 0) detail::validateBuiltPolicy(*loaded, diag);
  } catch (const std::exception& e) {
    diag.error(Location{}, std::string("unexpected error while reading the policy: ") + e.what(),
               "this is a defect in certgate; please report it with the files");
  } catch (...) {
    diag.error(Location{}, "unexpected error while reading the policy",
               "this is a defect in certgate; please report it with the files");
  }
  if (all_errors) *all_errors = diag.errors();
  if (diag.count() > 0) return diag.errors().front();
  return loaded;
}

namespace detail {

std::optional<SecretRef> parseSecretRef(const FileReader& r, const YAML::Node& node,
                                        const std::string& path, const std::string& base_dir) {
  return parseSecret(r, node, path, base_dir);
}

}  // namespace detail

}  // namespace certgate::settings
