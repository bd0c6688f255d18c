#include "connectors/directory/scim/scim_directory.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "core/time.hpp"

namespace certgate::connectors::scim {

namespace {

using Json = nlohmann::json;
using core::ErrorKind;

constexpr std::string_view kPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
constexpr std::string_view kBulkRequest = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
constexpr std::string_view kEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
constexpr std::string_view kScimJson = "application/scim+json";

// ---- small helpers ---------------------------------------------------------------------------

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string excerpt(std::string_view s, std::size_t n = 200) {
  std::string out;
  for (const char c : s.substr(0, n)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (s.size() > n) out += "...";
  return out;
}

// A member of a JSON object, with the name compared case-insensitively (RFC 7643 2.1: attribute
// names are case-insensitive).
const Json* member(const Json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  if (auto it = obj.find(std::string(name)); it != obj.end()) return &*it;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (iequals(it.key(), name)) return &it.value();
  return nullptr;
}

std::string stringOf(const Json* v) {
  if (v == nullptr || v->is_null()) return {};
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  if (v->is_number_integer()) return std::to_string(v->get<std::int64_t>());
  if (v->is_number()) return v->dump();
  return {};
}

// An integer that a provider may send as a number or, against RFC 7644, as a string.
std::optional<std::int64_t> intOf(const Json* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_number_unsigned()) return static_cast<std::int64_t>(v->get<std::uint64_t>());
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc{} && end == s.data() + s.size()) return out;
  }
  return std::nullopt;
}

bool boolOf(const Json* v, bool fallback) {
  if (v == nullptr) return fallback;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string()) {
    const std::string s = lower(v->get<std::string>());
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return fallback;
}

// The value of a SCIM attribute path in a resource: "userName", "name.familyName",
// "urn:...:enterprise:2.0:User:department", "emails.value" (the primary or first value of a
// multi-valued attribute).
std::string attributeValue(const Json& resource, std::string_view path) {
  const Json* base = &resource;
  std::string_view rest = path;
  if (lower(path.substr(0, 4)) == "urn:") {
    const auto colon = path.rfind(':');
    base = member(resource, path.substr(0, colon));
    rest = path.substr(colon + 1);
    if (base == nullptr) return {};
  }
  const Json* cur = base;
  while (cur != nullptr && !rest.empty()) {
    const auto dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (cur->is_array()) {
      const Json* pick = nullptr;
      for (const auto& e : *cur)
        if (boolOf(member(e, "primary"), false)) pick = &e;
      if (pick == nullptr && !cur->empty()) pick = &(*cur)[0];
      cur = pick;
      if (cur == nullptr) return {};
    }
    cur = member(*cur, part);
  }
  if (cur == nullptr) return {};
  if (cur->is_array()) {
    const Json* pick = nullptr;
    for (const auto& e : *cur)
      if (boolOf(member(e, "primary"), false)) pick = &e;
    if (pick == nullptr && !cur->empty()) pick = &(*cur)[0];
    cur = pick;
    if (cur == nullptr) return {};
  }
  if (cur->is_object()) return stringOf(member(*cur, "value"));
  return stringOf(cur);
}

std::string primaryEmail(const Json& user) {
  const Json* emails = member(user, "emails");
  if (emails == nullptr || !emails->is_array() || emails->empty()) return {};
  const Json* pick = nullptr;
  for (const auto& e : *emails)
    if (boolOf(member(e, "primary"), false)) { pick = &e; break; }
  if (pick == nullptr)
    for (const auto& e : *emails)
      if (iequals(stringOf(member(e, "type")), "work")) { pick = &e; break; }
  if (pick == nullptr) pick = &(*emails)[0];
  return stringOf(member(*pick, "value"));
}

bool anyEmailIs(const Json& user, std::string_view email) {
  const Json* emails = member(user, "emails");
  if (emails == nullptr || !emails->is_array()) return false;
  for (const auto& e : *emails)
    if (iequals(stringOf(member(e, "value")), email)) return true;
  return false;
}

std::string joinIds(const std::vector<std::string>& ids, std::size_t limit = 5) {
  std::string out;
  for (std::size_t i = 0; i < ids.size() && i < limit; ++i) out += (i ? ", " : "") + ids[i];
  if (ids.size() > limit) out += ", ... (" + std::to_string(ids.size()) + " in all)";
  return out;
}

// Ids that are not UTF-8 must not make serialisation throw; they are written with U+FFFD.
std::string dumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- configuration ---------------------------------------------------------------------------

enum class AuthScheme { Bearer, OAuth2 };
enum class MembersSource { Group, UserFilter };

struct Config {
  std::string url;  // base URL without a trailing slash
  AuthScheme auth = AuthScheme::Bearer;
  std::string token;
  oauth2::ClientCredentialsConfig oauth;
  std::string ca_file;
  std::chrono::seconds timeout{30};
  std::size_t page_size = 100;
  std::string roster_filter;
  std::string population_attribute;
  MembersSource members_source = MembersSource::Group;
  std::size_t max_members_per_patch = 100;
  std::size_t max_removes_per_patch = 100;
  bool use_bulk = true;
  bool use_etag = true;
  bool read_before_write = true;
};

// ---- the directory ---------------------------------------------------------------------------

enum class WriteKind { Add, Remove };

class ScimDirectory final : public ports::Directory {
 public:
  ScimDirectory(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
                http::ClientOptions client_options)
      : name_(std::move(name)), cfg_(std::move(cfg)), redactor_(std::move(redactor)),
        retries_(std::make_shared<std::atomic<std::uint64_t>>(0)) {
    // Every sleep of sendWithRetry precedes one more exchange: counting them counts retries.
    auto sleep = client_options.sleep;
    auto retries = retries_;
    client_options.sleep = [sleep, retries](http::Millis d) {
      retries->fetch_add(1);
      if (sleep) {
        sleep(d);
      } else {
        std::this_thread::sleep_for(d);
      }
    };
    if (!cfg_.ca_file.empty()) client_options.ca_file = cfg_.ca_file;
    client_options.total_timeout = std::chrono::duration_cast<http::Millis>(cfg_.timeout);
    client_options.connect_timeout =
        std::min(client_options.connect_timeout, client_options.total_timeout);
    if (redactor_) client_options.redactor = redactor_;
    client_ = std::make_unique<http::Client>(std::move(client_options));
    if (cfg_.auth == AuthScheme::OAuth2) {
      cfg_.oauth.where = where();
      token_source_ = std::make_unique<oauth2::TokenSource>(*client_, cfg_.oauth, redactor_);
    }
  }

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "scim"; }

  core::Status connect() override;
  ports::DirectoryCapabilities capabilities() const override;
  core::Result<ports::GroupRef> resolveGroup(const std::string& id_or_name) override;
  core::Result<std::vector<ports::DirectoryUser>> findUsers(const ports::UserQuery& query) override;
  core::Status listMembers(const ports::GroupRef& group,
                           const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Status listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Result<std::vector<ports::MemberOutcome>> addMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override {
    return write(WriteKind::Add, group, user_ids);
  }
  core::Result<std::vector<ports::MemberOutcome>> removeMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override {
    return write(WriteKind::Remove, group, user_ids);
  }
  std::uint64_t requestCount() const override {
    return calls_ + retries_->load() + (token_source_ ? token_source_->fetches() : 0);
  }

 private:
  struct Members {
    std::unordered_set<std::string> ids;
    std::string etag;
  };
  // State of one addMembers/removeMembers call.
  struct WriteState {
    WriteKind kind;
    const ports::GroupRef* group;
    std::string etag;
    bool refetched = false;  // a 412 already led to a re-read
    std::size_t written = 0;
    std::vector<ports::MemberOutcome>* outcomes;
    std::unordered_map<std::string, std::vector<std::size_t>>* index;  // user id -> outcomes
  };

  std::string where() const { return "directory '" + name_ + "'"; }
  std::string groupLabel(const ports::GroupRef& g) const {
    if (g.display_name.empty() || g.display_name == g.id) return "group " + g.id;
    return "group '" + g.display_name + "' (" + g.id + ")";
  }

  core::Status ensureConnected() {
    if (connected_) return {};
    return connect();
  }

  std::size_t pageSize() const {
    std::size_t n = cfg_.page_size;
    if (filter_max_results_ > 0) n = std::min(n, filter_max_results_);
    return std::max<std::size_t>(n, 1);
  }
  bool etagInUse() const { return cfg_.use_etag && etag_supported_; }
  bool bulkInUse() const { return cfg_.use_bulk && bulk_supported_ && !bulk_refused_; }

  core::Result<http::Response> exchange(http::Method method, const std::string& path,
                                        const std::string& body, const http::Headers& extra = {});
  core::Error failure(const http::Response& response, const std::string& operation,
                      const std::string& request_line) const;
  core::Result<Json> parseBody(const http::Response& response, const std::string& operation) const;
  core::Status listAll(const std::string& endpoint, const std::string& filter,
                       const std::string& extra_query, const std::string& operation,
                       const std::function<void(const Json&)>& each);
  ports::DirectoryUser toUser(const Json& r) const;
  core::Result<Members> readMembers(const ports::GroupRef& group, const std::string& operation);
  core::Result<std::string> readVersion(const ports::GroupRef& group, const std::string& operation);
  core::Result<std::vector<ports::MemberOutcome>> write(WriteKind kind,
                                                        const ports::GroupRef& group,
                                                        const std::vector<std::string>& user_ids);
  Json patchBody(WriteKind kind, const std::vector<std::string>& ids) const;
  core::Status patchBatch(WriteState& st, std::vector<std::string> batch);
  core::Status bulkBatches(WriteState& st, std::vector<std::vector<std::string>>& batches,
                           std::vector<std::vector<std::string>>& leftover);
  void succeed(WriteState& st, const std::vector<std::string>& ids, bool no_op);
  void failMember(WriteState& st, const std::string& id, core::Error error);
  std::string operationName(const WriteState& st, std::size_t n) const {
    return std::string(st.kind == WriteKind::Add ? "add " : "remove ") + std::to_string(n) +
           (n == 1 ? " member " : " members ") + (st.kind == WriteKind::Add ? "to " : "from ") +
           groupLabel(*st.group);
  }

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  std::shared_ptr<std::atomic<std::uint64_t>> retries_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<oauth2::TokenSource> token_source_;
  std::uint64_t calls_ = 0;
  bool connected_ = false;
  bool patch_supported_ = true;
  bool bulk_supported_ = false;
  bool bulk_refused_ = false;  // the provider answered /Bulk with 501 or 413 once
  std::size_t bulk_max_operations_ = 0;
  std::size_t bulk_max_payload_ = 0;
  bool filter_supported_ = true;
  std::size_t filter_max_results_ = 0;
  bool etag_supported_ = false;
  std::unordered_map<std::string, ports::GroupRef> groups_;
};

// ---- HTTP ------------------------------------------------------------------------------------

core::Result<http::Response> ScimDirectory::exchange(http::Method method, const std::string& path,
                                                     const std::string& body,
                                                     const http::Headers& extra) {
  http::Request req;
  req.method = method;
  req.url = cfg_.url + path;
  req.headers.set("Accept", std::string(kScimJson) + ", application/json");
  if (!body.empty()) req.headers.set("Content-Type", std::string(kScimJson));
  for (const auto& [k, v] : extra.entries()) req.headers.set(k, v);
  req.body = body;
  // Membership PATCHes and Bulk requests of membership PATCHes may be repeated: adding a present
  // member or removing an absent one changes nothing, and If-Match turns a repeat of an applied
  // change into a 412 that is handled like any concurrent change.
  req.idempotent = true;
  for (int attempt = 0;; ++attempt) {
    if (cfg_.auth == AuthScheme::Bearer) {
      req.headers.set("Authorization", "Bearer " + cfg_.token);
    } else {
      auto token = token_source_->token();
      if (!token) return token.error();
      req.headers.set("Authorization", "Bearer " + *token);
    }
    ++calls_;
    auto resp = client_->sendWithRetry(req, http::RetryPolicy{});
    if (!resp) {
      core::Error e = resp.error();
      e.where = where();
      return e;
    }
    // An OAuth token may be revoked or expire early: fetch a new one once.
    if (resp->status == 401 && cfg_.auth == AuthScheme::OAuth2 && attempt == 0) {
      token_source_->invalidate();
      continue;
    }
    return resp;
  }
}

core::Error ScimDirectory::failure(const http::Response& response, const std::string& operation,
                                   const std::string& request_line) const {
  core::Status st = http::classify(response, request_line, -1, redactor_.get());
  core::Error e = st ? core::makeError(ErrorKind::Permanent, "") : st.error();
  std::string scim_type, detail;
  const Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_object()) {
    scim_type = stringOf(member(doc, "scimType"));
    detail = stringOf(member(doc, "detail"));
    // Some providers put the text elsewhere (message, error_description).
    if (detail.empty()) detail = stringOf(member(doc, "message"));
    if (detail.empty()) detail = stringOf(member(doc, "error_description"));
  } else if (!trim(response.body).empty()) {
    detail = excerpt(response.body);
  }
  std::string message = operation + ": " + request_line + " answered HTTP " +
                        std::to_string(response.status);
  if (!scim_type.empty()) message += " " + scim_type;
  if (!detail.empty()) message += ": " + detail;
  if (e.kind == ErrorKind::RateLimited || (e.retry_after_s > 0))
    message += " (Retry-After " + std::to_string(e.retry_after_s) + " s)";
  e.message = redactor_ ? redactor_->redact(message) : http::redact(message);
  e.where = where();
  switch (e.kind) {
    case ErrorKind::Auth:
      e.hint = cfg_.auth == AuthScheme::Bearer
                   ? "the SCIM server refused the bearer token: check the `token` secret and "
                     "that the token is still valid and allowed to read and write Users and "
                     "Groups"
                   : "the SCIM server refused the OAuth access token: check the client's grants "
                     "and `scope`";
      break;
    case ErrorKind::RateLimited:
      e.hint = "the SCIM server is throttling requests; certgate waits for Retry-After and "
               "tries again on the next run";
      break;
    case ErrorKind::Transient:
      e.hint = "the SCIM server failed or is unreachable; certgate tries again";
      break;
    case ErrorKind::Invalid:
      if (scim_type == "invalidFilter")
        e.hint = "the provider refused the filter; check roster_filter or the lookup attribute";
      break;
    default:
      break;
  }
  return e;
}

core::Result<Json> ScimDirectory::parseBody(const http::Response& response,
                                            const std::string& operation) const {
  Json doc = Json::parse(response.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return core::makeError(ErrorKind::Permanent,
                           operation + ": the answer (HTTP " + std::to_string(response.status) +
                               ") is not a SCIM JSON object: " + excerpt(response.body),
                           where(),
                           "check that `url` is the SCIM base URL (the one /Users and /Groups "
                           "hang off)");
  return doc;
}

// ---- discovery -------------------------------------------------------------------------------

core::Status ScimDirectory::connect() {
  const std::string op = "discovery";
  auto resp = exchange(http::Method::Get, "/ServiceProviderConfig", {});
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) {
    core::Error e = failure(*resp, op, "GET /ServiceProviderConfig");
    if (e.kind == ErrorKind::NotFound)
      e.hint = "check `url`: it must be the SCIM base URL, e.g. https://host/scim/v2";
    return e;
  }
  auto doc = parseBody(*resp, op + " (GET /ServiceProviderConfig)");
  if (!doc) return doc.error();
  auto feature = [&](std::string_view name) -> const Json* {
    const Json* f = member(*doc, name);
    return f != nullptr && f->is_object() ? f : nullptr;
  };
  if (const Json* patch = feature("patch")) patch_supported_ = boolOf(member(*patch, "supported"), true);
  if (const Json* bulk = feature("bulk")) {
    bulk_supported_ = boolOf(member(*bulk, "supported"), false);
    bulk_max_operations_ = static_cast<std::size_t>(std::max<std::int64_t>(0, intOf(member(*bulk, "maxOperations")).value_or(0)));
    bulk_max_payload_ = static_cast<std::size_t>(std::max<std::int64_t>(0, intOf(member(*bulk, "maxPayloadSize")).value_or(0)));
    if (bulk_max_operations_ == 0) bulk_supported_ = false;
  }
  if (const Json* filter = feature("filter")) {
    filter_supported_ = boolOf(member(*filter, "supported"), true);
    filter_max_results_ = static_cast<std::size_t>(std::max<std::int64_t>(0, intOf(member(*filter, "maxResults")).value_or(0)));
  }
  if (const Json* etag = feature("etag")) etag_supported_ = boolOf(member(*etag, "supported"), false);
  connected_ = true;
  return {};
}

ports::DirectoryCapabilities ScimDirectory::capabilities() const {
  ports::DirectoryCapabilities c;
  c.max_add_batch = cfg_.max_members_per_patch;
  c.max_remove_batch = cfg_.max_removes_per_patch;
  c.page_size = pageSize();
  c.bulk = bulkInUse();
  c.etag = etagInUse();
  c.roster = !cfg_.roster_filter.empty();
  return c;
}

// ---- reads -----------------------------------------------------------------------------------

core::Status ScimDirectory::listAll(const std::string& endpoint, const std::string& filter,
                                    const std::string& extra_query, const std::string& operation,
                                    const std::function<void(const Json&)>& each) {
  const std::size_t count = pageSize();
  std::int64_t start = 1;
  std::optional<std::int64_t> total;
  std::int64_t read = 0;
  std::unordered_set<std::string> seen;
  for (std::size_t pages = 0;; ++pages) {
    std::string path = endpoint + "?";
    if (!filter.empty()) path += "filter=" + urlEncode(filter) + "&";
    path += "startIndex=" + std::to_string(start) + "&count=" + std::to_string(count) + extra_query;
    const std::string line = "GET " + endpoint + (filter.empty() ? "" : "?filter=" + filter) +
                             " (startIndex " + std::to_string(start) + ")";
    auto progress = [&] {
      return " after " + std::to_string(read) + " of " +
             (total ? std::to_string(*total) : std::string("?")) + " resources";
    };
    auto resp = exchange(http::Method::Get, path, {});
    if (!resp) {
      core::Error e = resp.error();
      e.message = operation + ": " + line + ": " + e.message + progress();
      return e;
    }
    if (resp->status < 200 || resp->status >= 300) {
      core::Error e = failure(*resp, operation, line);
      if (read > 0) e.message += ";" + progress() + ", so the listing is incomplete";
      return e;
    }
    auto doc = parseBody(*resp, operation + ": " + line);
    if (!doc) return doc.error();
    const Json* total_v = member(*doc, "totalResults");
    total = intOf(total_v);
    const Json* resources = member(*doc, "Resources");
    if (resources != nullptr && !resources->is_array())
      return core::makeError(ErrorKind::Permanent,
                             operation + ": " + line + ": Resources is not an array", where());
    const std::size_t got = resources == nullptr ? 0 : resources->size();
    for (std::size_t i = 0; i < got; ++i) {
      const Json& r = (*resources)[i];
      const std::string id = stringOf(member(r, "id"));
      if (!id.empty() && !seen.insert(id).second) continue;  // unstable order across pages
      each(r);
    }
    read += static_cast<std::int64_t>(got);
    if (got == 0) {
      if (total && start <= *total)
        return core::makeError(
            ErrorKind::Transient,
            operation + ": " + line + " returned no resources although totalResults is " +
                std::to_string(*total) + progress() + ", so the listing is incomplete",
            where(), "the provider's paging is inconsistent; certgate tries again later");
      return {};
    }
    start += static_cast<std::int64_t>(got);
    if (total) {
      if (start > *total) return {};
    } else if (got < count) {
      return {};
    }
    if (pages > 1'000'000)
      return core::makeError(ErrorKind::Permanent, operation + ": paging does not end", where());
  }
}

ports::DirectoryUser ScimDirectory::toUser(const Json& r) const {
  ports::DirectoryUser u;
  u.id = stringOf(member(r, "id"));
  u.user_name = stringOf(member(r, "userName"));
  u.email = primaryEmail(r);
  u.external_id = stringOf(member(r, "externalId"));
  if (const Json* ent = member(r, kEnterprise)) u.employee_id = stringOf(member(*ent, "employeeNumber"));
  u.display_name = stringOf(member(r, "displayName"));
  if (u.display_name.empty()) {
    if (const Json* n = member(r, "name")) {
      u.display_name = stringOf(member(*n, "formatted"));
      if (u.display_name.empty()) {
        const std::string given = stringOf(member(*n, "givenName"));
        const std::string family = stringOf(member(*n, "familyName"));
        u.display_name = given + (given.empty() || family.empty() ? "" : " ") + family;
      }
    }
  }
  if (!cfg_.population_attribute.empty()) u.population = attributeValue(r, cfg_.population_attribute);
  u.active = boolOf(member(r, "active"), true);
  return u;
}

core::Result<ports::GroupRef> ScimDirectory::resolveGroup(const std::string& id_or_name) {
  if (auto it = groups_.find(id_or_name); it != groups_.end()) return it->second;
  if (trim(id_or_name).empty())
    return core::makeError(ErrorKind::Invalid, "resolve group: empty group id or name", where());
  if (auto st = ensureConnected(); !st) return st.error();
  const std::string op = "resolve group '" + id_or_name + "'";

  auto refOf = [&](const Json& g, const http::Response* resp) {
    ports::GroupRef ref;
    ref.id = stringOf(member(g, "id"));
    ref.display_name = stringOf(member(g, "displayName"));
    if (resp != nullptr) ref.etag = resp->headers.get("ETag").value_or("");
    if (ref.etag.empty())
      if (const Json* meta = member(g, "meta")) ref.etag = stringOf(member(*meta, "version"));
    if (!etagInUse()) ref.etag.clear();
    return ref;
  };
  auto remember = [&](ports::GroupRef ref) {
    groups_[id_or_name] = ref;
    groups_[ref.id] = ref;
    return ref;
  };

  // An id first: one GET. Providers answer an unknown or malformed id with 404 or 400.
  const std::string by_id = "GET /Groups/" + id_or_name;
  auto resp = exchange(http::Method::Get, "/Groups/" + urlEncode(id_or_name) +
                                              "?excludedAttributes=members", {});
  if (!resp) return resp.error();
  if (resp->status >= 200 && resp->status < 300) {
    auto doc = parseBody(*resp, op);
    if (!doc) return doc.error();
    ports::GroupRef ref = refOf(*doc, &*resp);
    if (ref.id.empty())
      return core::makeError(ErrorKind::Permanent, op + ": " + by_id + " returned a group without id",
                             where());
    return remember(std::move(ref));
  }
  if (resp->status != 404 && resp->status != 400) return failure(*resp, op, by_id);

  std::vector<ports::GroupRef> found;
  auto st = listAll("/Groups", "displayName eq " + filterString(id_or_name),
                    "&excludedAttributes=members", op, [&](const Json& g) {
                      if (iequals(stringOf(member(g, "displayName")), id_or_name))
                        found.push_back(refOf(g, nullptr));
                    });
  if (!st) return st.error();
  if (found.empty())
    return core::makeError(ErrorKind::NotFound,
                           op + ": no group has that id or displayName", where(),
                           "check the group's name in the identity provider, or configure it by id");
  if (found.size() > 1) {
    std::vector<std::string> ids;
    for (const auto& g : found) ids.push_back(g.id);
    return core::makeError(ErrorKind::Conflict,
                           op + ": displayName '" + id_or_name + "' matches " +
                               std::to_string(found.size()) + " groups (ids " + joinIds(ids) + ")",
                           where(), "configure the group by its id instead of its name");
  }
  return remember(std::move(found.front()));
}

core::Result<std::vector<ports::DirectoryUser>> ScimDirectory::findUsers(
    const ports::UserQuery& query) {
  if (auto st = ensureConnected(); !st) return st.error();
  const std::string op = std::string("find users by ") + ports::toString(query.attribute) +
                         " '" + query.value + "'";
  std::vector<ports::DirectoryUser> out;
  if (query.value.empty())
    return core::makeError(ErrorKind::Invalid, op + ": empty lookup value", where());

  if (query.attribute == ports::UserAttribute::Id) {
    const std::string line = "GET /Users/" + query.value;
    auto resp = exchange(http::Method::Get, "/Users/" + urlEncode(query.value), {});
    if (!resp) return resp.error();
    if (resp->status == 404) return out;
    if (resp->status < 200 || resp->status >= 300) return failure(*resp, op, line);
    auto doc = parseBody(*resp, op);
    if (!doc) return doc.error();
    out.push_back(toUser(*doc));
    return out;
  }

  std::string attribute;
  std::function<bool(const Json&)> matches;
  const std::string& v = query.value;
  switch (query.attribute) {
    case ports::UserAttribute::UserName:
      attribute = "userName";
      matches = [v](const Json& r) { return iequals(stringOf(member(r, "userName")), v); };
      break;
    case ports::UserAttribute::Email:
      attribute = "emails.value";
      matches = [v](const Json& r) { return anyEmailIs(r, v); };
      break;
    case ports::UserAttribute::ExternalId:
      attribute = "externalId";
      matches = [v](const Json& r) { return stringOf(member(r, "externalId")) == v; };
      break;
    case ports::UserAttribute::EmployeeId:
      attribute = std::string(kEnterprise) + ":employeeNumber";
      matches = [v](const Json& r) {
        const Json* ent = member(r, kEnterprise);
        return ent != nullptr && iequals(stringOf(member(*ent, "employeeNumber")), v);
      };
      break;
    case ports::UserAttribute::Custom: {
      attribute = std::string(trim(query.custom));
      const bool ok = !attribute.empty() &&
                      std::all_of(attribute.begin(), attribute.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                               c == '$' || c == ':' || c == '.' || c == '-';
                      });
      if (!ok)
        return core::makeError(ErrorKind::Invalid,
                               op + ": '" + query.custom + "' is not a SCIM attribute path",
                               where(), "e.g. userName, name.familyName or urn:...:User:department");
      break;
    }
    case ports::UserAttribute::Id:
      break;
  }
  auto st = listAll("/Users", attribute + " eq " + filterString(v), "", op, [&](const Json& r) {
    if (!matches || matches(r)) out.push_back(toUser(r));
  });
  if (!st) return st.error();
  return out;
}

core::Status ScimDirectory::listMembers(const ports::GroupRef& group,
                                        const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (auto st = ensureConnected(); !st) return st;
  const std::string op = "list members of " + groupLabel(group);
  if (cfg_.members_source == MembersSource::UserFilter) {
    // The group must exist: an empty result for a deleted group would read as "no members".
    auto version = readVersion(group, op);
    if (!version) return version.error();
    return listAll("/Users", "groups.value eq " + filterString(group.id), "", op,
                   [&](const Json& r) { sink(toUser(r)); });
  }
  const std::string line = "GET /Groups/" + group.id + "?attributes=members";
  auto resp = exchange(http::Method::Get, "/Groups/" + urlEncode(group.id) + "?attributes=members", {});
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return failure(*resp, op, line);
  auto doc = parseBody(*resp, op);
  if (!doc) return doc.error();
  const Json* members = member(*doc, "members");
  if (members == nullptr || members->is_null()) return {};
  if (!members->is_array())
    return core::makeError(ErrorKind::Permanent, op + ": members is not an array", where());
  for (const auto& m : *members) {
    // Nested groups are not people; certgate reconciles direct user members only.
    if (iequals(stringOf(member(m, "type")), "Group")) continue;
    ports::DirectoryUser u;
    u.id = stringOf(member(m, "value"));
    if (u.id.empty()) continue;
    u.display_name = stringOf(member(m, "display"));
    sink(std::move(u));
  }
  return {};
}

core::Status ScimDirectory::listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (cfg_.roster_filter.empty())
    return core::makeError(ErrorKind::Invalid, "list roster: no roster_filter is configured",
                           where(), "set roster_filter to a SCIM filter, e.g. active eq true");
  if (auto st = ensureConnected(); !st) return st;
  return listAll("/Users", cfg_.roster_filter, "", "list roster", [&](const Json& r) {
    sink(toUser(r));
  });
}

// ---- writes ----------------------------------------------------------------------------------

core::Result<ScimDirectory::Members> ScimDirectory::readMembers(const ports::GroupRef& group,
                                                                const std::string& operation) {
  const std::string line = "GET /Groups/" + group.id + "?attributes=members";
  auto resp = exchange(http::Method::Get, "/Groups/" + urlEncode(group.id) + "?attributes=members", {});
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return failure(*resp, operation, line);
  auto doc = parseBody(*resp, operation);
  if (!doc) return doc.error();
  Members m;
  m.etag = resp->headers.get("ETag").value_or("");
  if (m.etag.empty())
    if (const Json* meta = member(*doc, "meta")) m.etag = stringOf(member(*meta, "version"));
  if (const Json* members = member(*doc, "members"); members != nullptr && members->is_array())
    for (const auto& e : *members) m.ids.insert(stringOf(member(e, "value")));
  return m;
}

core::Result<std::string> ScimDirectory::readVersion(const ports::GroupRef& group,
                                                     const std::string& operation) {
  const std::string line = "GET /Groups/" + group.id;
  auto resp = exchange(http::Method::Get,
                       "/Groups/" + urlEncode(group.id) + "?excludedAttributes=members", {});
  if (!resp) return resp.error();
  if (resp->status < 200 || resp->status >= 300) return failure(*resp, operation, line);
  std::string etag = resp->headers.get("ETag").value_or("");
  if (etag.empty()) {
    auto doc = parseBody(*resp, operation);
    if (!doc) return doc.error();
    if (const Json* meta = member(*doc, "meta")) etag = stringOf(member(*meta, "version"));
  }
  return etag;
}

Json ScimDirectory::patchBody(WriteKind kind, const std::vector<std::string>& ids) const {
  Json ops = Json::array();
  if (kind == WriteKind::Add) {
    Json values = Json::array();
    for (const auto& id : ids) values.push_back({{"value", id}});
    ops.push_back({{"op", "add"}, {"path", "members"}, {"value", std::move(values)}});
  } else {
    for (const auto& id : ids)
      ops.push_back({{"op", "remove"}, {"path", "members[value eq " + filterString(id) + "]"}});
  }
  return Json{{"schemas", Json::array({std::string(kPatchOp)})}, {"Operations", std::move(ops)}};
}

void ScimDirectory::succeed(WriteState& st, const std::vector<std::string>& ids, bool no_op) {
  for (const auto& id : ids) {
    for (const std::size_t i : (*st.index)[id]) {
      (*st.outcomes)[i].status = {};
      (*st.outcomes)[i].no_op = no_op;
    }
    if (!no_op) ++st.written;
  }
}

void ScimDirectory::failMember(WriteState& st, const std::string& id, core::Error error) {
  for (const std::size_t i : (*st.index)[id]) {
    (*st.outcomes)[i].status = error;
    (*st.outcomes)[i].no_op = false;
  }
}

core::Status ScimDirectory::patchBatch(WriteState& st, std::vector<std::string> batch) {
  if (batch.empty()) return {};
  const std::string op =
      batch.size() == 1
          ? std::string(st.kind == WriteKind::Add ? "add user '" : "remove user '") + batch.front() +
                (st.kind == WriteKind::Add ? "' to " : "' from ") + groupLabel(*st.group)
          : operationName(st, batch.size());
  const std::string line = "PATCH /Groups/" + st.group->id;
  if (etagInUse() && st.etag.empty()) {
    auto version = readVersion(*st.group, op);
    if (!version) return version.error();
    st.etag = *version;
  }
  http::Headers headers;
  if (etagInUse() && !st.etag.empty()) headers.set("If-Match", st.etag);
  auto resp = exchange(http::Method::Patch, "/Groups/" + urlEncode(st.group->id),
                       dumpJson(patchBody(st.kind, batch)), headers);
  if (!resp) return resp.error();

  if (resp->status >= 200 && resp->status < 300) {
    // Without a read before the write, the provider's answer tells: 204 = nothing changed.
    succeed(st, batch, !cfg_.read_before_write && resp->status == 204);
    st.etag = resp->headers.get("ETag").value_or("");
    if (st.etag.empty() && resp->status == 200) {
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (const Json* meta = doc.is_object() ? member(doc, "meta") : nullptr)
        st.etag = stringOf(member(*meta, "version"));
    }
    return {};
  }

  core::Error error = failure(*resp, op, line);
  if (resp->status == 412) {
    if (st.refetched) {
      error.hint = "the group keeps changing under certgate; it tries again on the next run";
      return error;
    }
    // Someone else changed the group: re-read it, drop what is already done, try once more.
    st.refetched = true;
    auto current = readMembers(*st.group, op);
    if (!current) return current.error();
    st.etag = current->etag;
    std::vector<std::string> still;
    std::vector<std::string> done;
    for (const auto& id : batch) {
      const bool present = current->ids.count(id) > 0;
      ((st.kind == WriteKind::Add) == present ? done : still).push_back(id);
    }
    succeed(st, done, true);
    return patchBatch(st, std::move(still));
  }
  if (resp->status == 400 || resp->status == 409 || resp->status == 422) {
    const Json doc = Json::parse(resp->body, nullptr, false);
    const std::string scim_type = doc.is_object() ? stringOf(member(doc, "scimType")) : "";
    if (batch.size() > 1) {
      // One bad member fails the whole operation on most providers: split to find it.
      const auto half = batch.begin() + static_cast<std::ptrdiff_t>(batch.size() / 2);
      std::vector<std::string> left(batch.begin(), half), right(half, batch.end());
      if (auto s = patchBatch(st, std::move(left)); !s) return s;
      return patchBatch(st, std::move(right));
    }
    // Removing an absent member: strict providers answer noTarget (RFC 7644 3.5.2.2).
    if (st.kind == WriteKind::Remove && scim_type == "noTarget") {
      succeed(st, batch, true);
      return {};
    }
    failMember(st, batch.front(), std::move(error));
    return {};
  }
  if (st.written > 0)
    error.message += " (" + std::to_string(st.written) + " members were already written in this call)";
  return error;
}

core::Status ScimDirectory::bulkBatches(WriteState& st,
                                        std::vector<std::vector<std::string>>& batches,
                                        std::vector<std::vector<std::string>>& leftover) {
  // Group the PATCH operations into Bulk requests within maxOperations and maxPayloadSize.
  const std::string path = "/Groups/" + st.group->id;
  std::vector<Json> ops;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    Json op = {{"method", "PATCH"}, {"path", path}, {"bulkId", "b" + std::to_string(i)},
               {"data", patchBody(st.kind, batches[i])}};
    sizes.push_back(dumpJson(op).size() + 1);
    ops.push_back(std::move(op));
  }
  const std::size_t envelope = 64 + kBulkRequest.size();
  std::size_t next = 0;
  while (next < batches.size()) {
    if (!bulkInUse()) {
      for (std::size_t i = next; i < batches.size(); ++i) leftover.push_back(std::move(batches[i]));
      return {};
    }
    std::size_t end = next;
    std::size_t bytes = envelope;
    while (end < batches.size() && end - next < bulk_max_operations_ &&
           (bulk_max_payload_ == 0 || bytes + sizes[end] <= bulk_max_payload_)) {
      bytes += sizes[end];
      ++end;
    }
    if (end == next) {  // one operation alone is larger than maxPayloadSize
      leftover.push_back(std::move(batches[next]));
      ++next;
      continue;
    }
    Json body = {{"schemas", Json::array({std::string(kBulkRequest)})}, {"Operations", Json::array()}};
    std::size_t members = 0;
    for (std::size_t i = next; i < end; ++i) {
      body["Operations"].push_back(ops[i]);
      members += batches[i].size();
    }
    const std::string op = operationName(st, members) + " in one Bulk request";
    auto resp = exchange(http::Method::Post, "/Bulk", dumpJson(body));
    if (!resp) return resp.error();
    if (resp->status == 501 || resp->status == 413) {
      // The provider does not really take Bulk (or not this size): plain PATCHes from now on.
      bulk_refused_ = true;
      continue;
    }
    if (resp->status < 200 || resp->status >= 300) {
      core::Error e = failure(*resp, op, "POST /Bulk");
      if (st.written > 0)
        e.message += " (" + std::to_string(st.written) + " members were already written in this call)";
      return e;
    }
    auto doc = parseBody(*resp, op);
    if (!doc) return doc.error();
    const Json* results = member(*doc, "Operations");
    std::vector<const Json*> by_index(end - next, nullptr);
    if (results != nullptr && results->is_array()) {
      std::size_t position = 0;
      for (const auto& r : *results) {
        const std::string bulk_id = stringOf(member(r, "bulkId"));
        std::size_t index = position;
        if (bulk_id.size() > 1 && bulk_id[0] == 'b') {
          std::size_t parsed = 0;
          const auto [p, ec] = std::from_chars(bulk_id.data() + 1, bulk_id.data() + bulk_id.size(), parsed);
          if (ec == std::errc{} && p == bulk_id.data() + bulk_id.size()) index = parsed - next;
        }
        if (index < by_index.size()) by_index[index] = &r;
        ++position;
      }
    }
    for (std::size_t i = next; i < end; ++i) {
      const Json* r = by_index[i - next];
      const std::int64_t status = r == nullptr ? 0 : intOf(member(*r, "status")).value_or(0);
      if (status >= 200 && status < 300) {
        succeed(st, batches[i], !cfg_.read_before_write && status == 204);
      } else if (status == 401 || status == 403) {
        http::Response inner;
        inner.status = static_cast<long>(status);
        if (const Json* detail = member(*r, "response")) inner.body = dumpJson(*detail);
        return failure(inner, op, "POST /Bulk operation PATCH " + path);
      } else {
        // Not applied, or refused: the plain PATCH path sorts out which members are at fault.
        leftover.push_back(std::move(batches[i]));
      }
    }
    st.etag.clear();  // the group's version moved on; fetched again before a plain PATCH
    next = end;
  }
  return {};
}

core::Result<std::vector<ports::MemberOutcome>> ScimDirectory::write(
    WriteKind kind, const ports::GroupRef& group, const std::vector<std::string>& user_ids) {
  std::vector<ports::MemberOutcome> outcomes(user_ids.size());
  std::unordered_map<std::string, std::vector<std::size_t>> index;
  std::vector<std::string> unique;
  for (std::size_t i = 0; i < user_ids.size(); ++i) {
    outcomes[i].user_id = user_ids[i];
    auto& slots = index[user_ids[i]];
    if (slots.empty()) unique.push_back(user_ids[i]);
    slots.push_back(i);
  }
  if (unique.empty()) return outcomes;
  if (auto st = ensureConnected(); !st) return st.error();

  WriteState st{kind, &group, etagInUse() ? group.etag : std::string{}, false, 0, &outcomes, &index};
  const std::string op = std::string(kind == WriteKind::Add ? "add members to " : "remove members from ") +
                         groupLabel(group);
  if (!patch_supported_)
    return core::makeError(ErrorKind::Permanent,
                           op + ": the provider's ServiceProviderConfig says PATCH is not supported",
                           where(), "certgate changes group memberships only with SCIM PATCH");
  for (const auto& id : unique)
    if (id.empty()) return core::makeError(ErrorKind::Invalid, op + ": an empty user id", where());

  std::vector<std::string> pending;
  if (cfg_.read_before_write) {
    auto current = readMembers(group, op);
    if (!current) return current.error();
    if (etagInUse()) st.etag = current->etag;
    std::vector<std::string> unchanged;
    for (const auto& id : unique) {
      const bool present = current->ids.count(id) > 0;
      ((kind == WriteKind::Add) == present ? unchanged : pending).push_back(id);
    }
    succeed(st, unchanged, true);
  } else {
    pending = unique;
  }
  if (pending.empty()) return outcomes;

  const std::size_t per_patch =
      std::max<std::size_t>(1, kind == WriteKind::Add ? cfg_.max_members_per_patch
                                                      : cfg_.max_removes_per_patch);
  std::vector<std::vector<std::string>> batches;
  for (std::size_t i = 0; i < pending.size(); i += per_patch)
    batches.emplace_back(pending.begin() + static_cast<std::ptrdiff_t>(i),
                         pending.begin() + static_cast<std::ptrdiff_t>(std::min(pending.size(), i + per_patch)));

  std::vector<std::vector<std::string>> direct;
  if (batches.size() > 1 && bulkInUse()) {
    if (auto s = bulkBatches(st, batches, direct); !s) return s.error();
  } else {
    direct = std::move(batches);
  }
  for (auto& batch : direct)
    if (auto s = patchBatch(st, std::move(batch)); !s) return s.error();
  return outcomes;
}

// ---- options ---------------------------------------------------------------------------------

using options::OptionReader;

// A secret under `key`, which the caller has checked is present.
core::Result<std::string> readSecret(const OptionReader& opts, const std::string& key,
                                     const ports::SecretReader& secrets) {
  return opts.secret(
      key, secrets,
      {.inline_message = "a secret is given as {file: PATH} or {credential: NAME}, never inline",
       .inline_hint = "e.g. " + key + ": {file: /etc/certgate/scim-token}",
       .empty_hint = "put the value in the secret file"});
}

// A whole number from 1 to `max`; `fallback` when absent.
core::Result<std::size_t> count(const OptionReader& opts, const std::string& key,
                                std::size_t fallback, std::size_t max) {
  auto v = opts.integer(key, 1, static_cast<std::int64_t>(max),
                        "a whole number from 1 to " + std::to_string(max),
                        "e.g. " + key + ": " + std::to_string(fallback));
  if (!v) return v.error();
  return v->has_value() ? static_cast<std::size_t>(**v) : fallback;
}

core::Result<std::unique_ptr<ports::Directory>> build(const std::string& name,
                                                     const ports::Options& options,
                                                     const std::string& base_dir,
                                                     const ports::SecretReader& secrets,
                                                     std::shared_ptr<http::Redactor> redactor,
                                                     http::ClientOptions client_options) {
  const OptionReader opts("directory '" + name + "'", options);
  if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();
  Config cfg;

  auto url = opts.required("url", "the SCIM base URL, e.g. https://idp.example.com/scim/v2");
  if (!url) return url.error();
  cfg.url = *url;
  while (!cfg.url.empty() && cfg.url.back() == '/') cfg.url.pop_back();
  if (cfg.url.rfind("https://", 0) != 0 && cfg.url.rfind("http://", 0) != 0)
    return opts.error("url", "'" + cfg.url + "' is not an http(s) URL",
                      "e.g. https://idp.example.com/scim/v2", opts.find("url"));
  // Plain http only towards this host's loopback (test servers): a token never crosses a
  // network in clear text.
  if (auto origin = options::originOf(cfg.url); !origin || !options::transportAllowed(*origin))
    return opts.error("url", "'" + cfg.url + "' must use https (plain http only to 127.0.0.1, "
                      "localhost or [::1])",
                      "use the provider's https URL", opts.find("url"));

  auto auth = opts.choice("auth", "bearer", {"bearer", "oauth2"});
  if (!auth) return auth.error();
  cfg.auth = *auth == "oauth2" ? AuthScheme::OAuth2 : AuthScheme::Bearer;
  if (cfg.auth == AuthScheme::Bearer) {
    if (opts.find("token") == nullptr)
      return opts.error("token", "is required with auth bearer",
                        "token: {file: PATH} or {credential: NAME} holding the SCIM bearer token");
    for (const char* k : {"client_id", "client_secret", "token_url", "scope", "client_auth"})
      if (opts.find(k) != nullptr)
        return opts.error(k, "applies only with auth oauth2", "remove it or set auth: oauth2",
                          opts.find(k));
    auto token = readSecret(opts, "token", secrets);
    if (!token) return token.error();
    cfg.token = *token;
    if (redactor) redactor->add(cfg.token);
  } else {
    if (opts.find("token") != nullptr)
      return opts.error("token", "applies only with auth bearer",
                        "with auth oauth2 give client_id, client_secret and token_url",
                        opts.find("token"));
    auto client_id = opts.required("client_id", "the OAuth client id the identity provider issued",
                                   "is required with auth oauth2");
    if (!client_id) return client_id.error();
    cfg.oauth.client_id = *client_id;
    auto token_url =
        opts.required("token_url", "the authorization server's token endpoint (RFC 6749 3.2)",
                      "is required with auth oauth2");
    if (!token_url) return token_url.error();
    cfg.oauth.token_url = *token_url;
    if (opts.find("client_secret") == nullptr)
      return opts.error("client_secret", "is required with auth oauth2",
                        "client_secret: {file: PATH} or {credential: NAME}");
    auto secret = readSecret(opts, "client_secret", secrets);
    if (!secret) return secret.error();
    cfg.oauth.client_secret = *secret;
    if (redactor) redactor->add(cfg.oauth.client_secret);
    auto scope = opts.scalar("scope");
    if (!scope) return scope.error();
    cfg.oauth.scope = scope->value_or("");
    auto client_auth = opts.choice("client_auth", "client_secret_basic",
                                   {"client_secret_basic", "client_secret_post"});
    if (!client_auth) return client_auth.error();
    cfg.oauth.auth = *client_auth == "client_secret_post" ? oauth2::ClientAuth::SecretPost
                                                          : oauth2::ClientAuth::SecretBasic;
  }

  auto ca_file = opts.path("ca_file", base_dir);
  if (!ca_file) return ca_file.error();
  if (ca_file->has_value()) cfg.ca_file = **ca_file;

  auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                               "a duration from 1s to 1h", "e.g. timeout: 30s");
  if (!timeout) return timeout.error();
  if (timeout->has_value()) cfg.timeout = **timeout;

  auto page_size = count(opts, "page_size", 100, 10000);
  if (!page_size) return page_size.error();
  cfg.page_size = *page_size;
  auto add_batch = count(opts, "max_members_per_patch", 100, 10000);
  if (!add_batch) return add_batch.error();
  cfg.max_members_per_patch = *add_batch;
  auto remove_batch = count(opts, "max_removes_per_patch", 100, 10000);
  if (!remove_batch) return remove_batch.error();
  cfg.max_removes_per_patch = *remove_batch;

  auto roster = opts.scalar("roster_filter");
  if (!roster) return roster.error();
  cfg.roster_filter = roster->value_or("");
  auto population = opts.scalar("population_attribute");
  if (!population) return population.error();
  cfg.population_attribute = population->value_or("");

  auto members_source = opts.choice("members_source", "group", {"group", "user_filter"});
  if (!members_source) return members_source.error();
  cfg.members_source = *members_source == "user_filter" ? MembersSource::UserFilter : MembersSource::Group;
  auto use_bulk = opts.choice("use_bulk", "auto", {"auto", "never"});
  if (!use_bulk) return use_bulk.error();
  cfg.use_bulk = *use_bulk == "auto";
  auto use_etag = opts.choice("use_etag", "auto", {"auto", "never"});
  if (!use_etag) return use_etag.error();
  cfg.use_etag = *use_etag == "auto";
  auto read_before_write = opts.flag("read_before_write", true);
  if (!read_before_write) return read_before_write.error();
  cfg.read_before_write = *read_before_write;

  return std::unique_ptr<ports::Directory>(std::make_unique<ScimDirectory>(
      name, std::move(cfg), std::move(redactor), std::move(client_options)));
}

}  // namespace

std::string filterString(std::string_view value) {
  std::string out = "\"";
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string urlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "scim";
    s.description = "Group memberships in a SCIM 2.0 service provider (RFC 7643/7644)";
    s.keys = {
        {"url", ValueType::String, true, "",
         "SCIM base URL, the one /Users, /Groups and /ServiceProviderConfig hang off"},
        {"auth", ValueType::String, false, "bearer",
         "bearer (a static token) | oauth2 (client credentials grant)"},
        {"token", ValueType::Secret, false, "", "Bearer token (auth bearer)"},
        {"client_id", ValueType::String, false, "", "OAuth client id (auth oauth2)"},
        {"client_secret", ValueType::Secret, false, "", "OAuth client secret (auth oauth2)"},
        {"token_url", ValueType::String, false, "", "OAuth token endpoint (auth oauth2)"},
        {"scope", ValueType::String, false, "", "OAuth scope(s), space-separated (auth oauth2)"},
        {"client_auth", ValueType::String, false, "client_secret_basic",
         "How the OAuth client authenticates: client_secret_basic | client_secret_post"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle of the CAs trusted for the server instead of the system's"},
        {"timeout", ValueType::Duration, false, "30s", "Time limit of one HTTP exchange"},
        {"page_size", ValueType::Int, false, "100",
         "Resources per list page (count), lowered to the provider's filter.maxResults"},
        {"roster_filter", ValueType::String, false, "",
         "SCIM filter selecting the in-scope users for listRoster, e.g. active eq true"},
        {"population_attribute", ValueType::String, false, "",
         "SCIM attribute whose value becomes the user's population, e.g. "
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
        {"members_source", ValueType::String, false, "group",
         "group (GET /Groups/{id}?attributes=members, one request) | user_filter (page "
         "/Users?filter=groups.value eq \"{id}\")"},
        {"max_members_per_patch", ValueType::Int, false, "100",
         "Members in the one `add` operation of a PATCH (Entra ID: 20)"},
        {"max_removes_per_patch", ValueType::Int, false, "100",
         "`remove` operations in one PATCH (Entra ID: 1)"},
        {"use_bulk", ValueType::String, false, "auto",
         "auto (send several PATCHes in POST /Bulk when the provider offers Bulk) | never"},
        {"use_etag", ValueType::String, false, "auto",
         "auto (If-Match with the group's ETag when the provider offers ETags) | never"},
        {"read_before_write", ValueType::Bool, false, "true",
         "Read the group's members before a write, so present/absent members need no PATCH; "
         "turn off for providers whose groups do not return members"},
    };
    return s;
  }();
  return kSpec;
}

core::Result<std::unique_ptr<ports::Directory>> makeDirectory(
    const std::string& name, const ports::Options& options, const std::string& base_dir,
    const ports::SecretReader& secrets, std::shared_ptr<http::Redactor> redactor,
    http::ClientOptions client_options) {
  try {
    return build(name, options, base_dir, secrets, std::move(redactor), std::move(client_options));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure reading the options: ") + e.what(),
                           options.where);
  }
}

}  // namespace certgate::connectors::scim
