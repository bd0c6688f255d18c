#include "connectors/directory/graph/graph_directory.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connectors/common/oauth2.hpp"
#include "connectors/common/options.hpp"
#include "connectors/directory/graph/graph_odata.hpp"
#include "core/time.hpp"

namespace certgate::connectors::graph {
namespace {

using Json = nlohmann::json;
using core::ErrorKind;

constexpr std::size_t kBindsPerPatch = 20;     // group-post-members: up to 20 per request
constexpr std::size_t kRequestsPerBatch = 20;  // json-batching: up to 20 requests per batch
constexpr int kMaxAttempts = 6;                // per request: first try + 5 retries on 429/503/504
constexpr http::Millis kBackoffBase{1000};
constexpr http::Millis kBackoffCap{60'000};
constexpr http::Millis kRetryAfterCap{300'000};
constexpr const char* kDefaultUrl = "https://graph.microsoft.com/v1.0";
constexpr const char* kDefaultTokenUrl =
    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
constexpr const char* kDefaultScope = "https://graph.microsoft.com/.default";
constexpr const char* kGroupSelect =
    "id,displayName,groupTypes,mailEnabled,securityEnabled,onPremisesSyncEnabled";

struct Config {
  std::string url;  // service root without a trailing '/'
  std::string origin;  // scheme://host[:port] of url: nextLinks must stay on it
  std::string tenant;
  std::string client_id;
  std::string client_secret;
  std::string token_url;
  std::string scope;
  int page_size = 999;
  std::string roster_filter;
  std::string population_attribute = "employeeType";
};

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

bool hasType(const Json& group, std::string_view type) {
  if (!group.contains("groupTypes") || !group["groupTypes"].is_array()) return false;
  for (const auto& t : group["groupTypes"])
    if (t.is_string() && lower(t.get<std::string>()) == lower(type)) return true;
  return false;
}

bool flag(const Json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_boolean() && obj[key].get<bool>();
}

std::string text(const Json& obj, const char* key) {
  if (!obj.contains(key)) return {};
  const auto& v = obj[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

// One request of a JSON batch. `url` is relative to the service root and starts with '/'.
struct SubRequest {
  http::Method method = http::Method::Get;
  std::string url;
  Json body;  // null: none
  bool eventual = false;
};

struct SubResponse {
  long status = 0;  // 0: the batch answer had no response for this request
  http::Headers headers;
  std::string body;
};

// The request layer's guard against the documented trap: DELETE /groups/{id}/members/{id}
// without /$ref deletes the member object itself. certgate never deletes directory objects.
bool deleteAllowed(std::string_view url) {
  const auto q = url.find('?');
  const auto path = url.substr(0, q);
  const std::string_view ref = "/$ref";
  return path.size() > ref.size() && path.substr(path.size() - ref.size()) == ref &&
         path.find("/members/") != std::string_view::npos;
}

class GraphDirectory final : public ports::Directory {
 public:
  GraphDirectory(std::string name, Config cfg, std::shared_ptr<http::Redactor> redactor,
                 http::ClientOptions client_options)
      : name_(std::move(name)),
        cfg_(std::move(cfg)),
        redactor_(std::move(redactor)),
        client_(std::move(client_options)),
        tokens_(client_, tokenConfig(), redactor_, client_.options().now_unix_s) {}

  const std::string& name() const override { return name_; }
  const char* kind() const override { return "graph"; }

  core::Status connect() override {
    auto token = tokens_.token();
    if (!token) return located(token.error());
    connected_ = true;
    return {};
  }

  ports::DirectoryCapabilities capabilities() const override {
    ports::DirectoryCapabilities c;
    c.max_add_batch = kBindsPerPatch * kRequestsPerBatch;
    c.max_remove_batch = kRequestsPerBatch;
    c.page_size = static_cast<std::size_t>(cfg_.page_size);
    c.bulk = true;
    c.etag = false;
    c.roster = !cfg_.roster_filter.empty();
    return c;
  }

  core::Result<ports::GroupRef> resolveGroup(const std::string& id_or_name) override;
  core::Result<std::vector<ports::DirectoryUser>> findUsers(const ports::UserQuery& query) override;
  core::Status listMembers(const ports::GroupRef& group,
                           const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Status listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) override;
  core::Result<std::vector<ports::MemberOutcome>> addMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override;
  core::Result<std::vector<ports::MemberOutcome>> removeMembers(
      const ports::GroupRef& group, const std::vector<std::string>& user_ids) override;

  std::uint64_t requestCount() const override { return requests_.load() + tokens_.fetches(); }

 private:
  oauth2::ClientCredentialsConfig tokenConfig() const {
    oauth2::ClientCredentialsConfig c;
    c.token_url = cfg_.token_url;
    c.client_id = cfg_.client_id;
    c.client_secret = cfg_.client_secret;
    c.scope = cfg_.scope;
    c.auth = oauth2::ClientAuth::SecretPost;
    c.where = where();
    return c;
  }

  std::string where() const { return "directory '" + name_ + "'"; }

  core::Error located(core::Error e) const {
    if (e.where.empty() || e.where == cfg_.token_url) e.where = where();
    return e;
  }

  core::Status ensureConnected() {
    if (connected_) return {};
    return connect();
  }

  std::string redact(const std::string& s) const {
    return redactor_ ? redactor_->redact(s) : http::redact(s);
  }

  http::Millis backoff(int attempt) const {
    const int shift = std::clamp(attempt - 1, 0, 16);
    const auto cap = std::min(kBackoffCap.count(), kBackoffBase.count() << shift);
    const double r = std::clamp(client_.options().random01(), 0.0, 1.0);
    return http::Millis(static_cast<http::Millis::rep>(r * static_cast<double>(cap)));
  }

  http::Millis waitFor(const http::Headers& headers, int attempt) const {
    if (auto header = headers.get("Retry-After")) {
      if (auto secs = http::parseRetryAfter(*header, client_.options().now_unix_s()))
        return std::min(http::Millis(std::chrono::seconds(*secs)), kRetryAfterCap);
    }
    return backoff(attempt);
  }

  static bool retryable(long status) { return status == 429 || status == 503 || status == 504; }

  // The classified error for a Graph answer, naming the operation, Graph's code, message and
  // request id.
  core::Error failure(long status, const http::Headers& headers, const std::string& body,
                      const std::string& what) const {
    http::Response resp{status, headers, body};
    const auto classified =
        http::classify(resp, {}, client_.options().now_unix_s(), redactor_.get());
    core::Error e = classified ? core::makeError(ErrorKind::Permanent, "") : classified.error();
    const GraphErrorBody graph = parseGraphError(body);
    std::string msg = what + ": HTTP " + std::to_string(status);
    if (!graph.code.empty()) msg += " " + graph.code;
    if (!graph.message.empty()) msg += ": " + graph.message;
    if (!graph.request_id.empty()) msg += " (request-id " + graph.request_id + ")";
    e.message = redact(msg);
    e.where = where();
    if (graph.code == "Authorization_RequestDenied" || status == 403) {
      e.kind = ErrorKind::Auth;
      e.hint = "grant the app registration the Microsoft Graph application permissions "
               "GroupMember.ReadWrite.All and User.Read.All (admin consent); role-assignable "
               "groups also need RoleManagement.ReadWrite.Directory";
    } else if (status == 401) {
      e.hint = "the token was refused twice; check tenant, client_id and client_secret, and "
               "that the app registration is in that tenant";
    } else if (status == 400 &&
               graph.message.find("objects being referenced do not exist") != std::string::npos) {
      // group-post-members: a group or user created moments ago may not have replicated yet.
      e.kind = ErrorKind::Transient;
      e.hint = "the object was probably created moments ago and has not replicated yet; "
               "certgate retries on the next run";
    } else if (graph.code == "Request_UnsupportedQuery" || status == 400) {
      e.kind = ErrorKind::Invalid;
      if (e.hint.empty()) e.hint = "Graph rejected the request; see its message";
    }
    return e;
  }

  core::Error failure(const http::Response& resp, const std::string& what) const {
    return failure(resp.status, resp.headers, resp.body, what);
  }

  // One Graph exchange with token handling and pacing: 401 refreshes the token once; 429, 503
  // and 504 (and transport failures) wait Retry-After or back off, up to kMaxAttempts. The
  // final response is returned whatever its status.
  core::Result<http::Response> exchange(http::Method method, const std::string& url,
                                        const std::string& body, bool eventual,
                                        const std::string& what) {
    if (method == http::Method::Delete && !deleteAllowed(url))
      return core::makeError(ErrorKind::Internal,
                             "refusing DELETE " + url + ": only member references (/$ref) are "
                                                        "ever deleted",
                             where());
    bool refreshed = false;
    for (int attempt = 1;; ++attempt) {
      auto token = tokens_.token();
      if (!token) return located(token.error());
      http::Request req;
      req.method = method;
      req.url = url;
      req.headers.set("Authorization", "Bearer " + *token);
      req.headers.set("Accept", "application/json");
      if (!body.empty()) {
        req.headers.set("Content-Type", "application/json");
        req.body = body;
      }
      if (eventual) req.headers.set("ConsistencyLevel", "eventual");
      ++requests_;
      auto resp = client_.send(req);
      if (!resp) {
        if (resp.error().kind == ErrorKind::Transient && attempt < kMaxAttempts) {
          client_.options().sleep(backoff(attempt));
          continue;
        }
        core::Error e = resp.error();
        e.message = what + ": " + e.message;
        return located(e);
      }
      if (resp->status == 401 && !refreshed) {
        refreshed = true;
        tokens_.invalidate();
        --attempt;  // a refreshed token is not a throttling retry
        continue;
      }
      if (retryable(resp->status) && attempt < kMaxAttempts) {
        client_.options().sleep(waitFor(resp->headers, attempt));
        continue;
      }
      return resp;
    }
  }

  // Sends `subs` in JSON batches of up to 20, re-sending only the requests answered 429, 503 or
  // 504 (after the longest Retry-After among them, or backoff). Returns one response per
  // request, in order. A failure of a whole batch (auth, transport) is the error.
  core::Result<std::vector<SubResponse>> runBatch(const std::vector<SubRequest>& subs,
                                                  const std::string& what) {
    std::vector<SubResponse> out(subs.size());
    std::vector<int> attempts(subs.size(), 0);
    std::deque<std::size_t> pending;
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (subs[i].method == http::Method::Delete && !deleteAllowed(subs[i].url))
        return core::makeError(ErrorKind::Internal,
                               "refusing DELETE " + subs[i].url +
                                   ": only member references (/$ref) are ever deleted",
                               where());
      pending.push_back(i);
    }
    while (!pending.empty()) {
      std::vector<std::size_t> chunk;
      while (!pending.empty() && chunk.size() < kRequestsPerBatch) {
        chunk.push_back(pending.front());
        pending.pop_front();
      }
      Json requests = Json::array();
      for (const std::size_t i : chunk) {
        const auto& s = subs[i];
        Json r = {{"id", std::to_string(i + 1)},
                  {"method", http::toString(s.method)},
                  {"url", s.url}};
        Json headers = Json::object();
        if (!s.body.is_null()) {
          r["body"] = s.body;
          headers["Content-Type"] = "application/json";
        }
        if (s.eventual) headers["ConsistencyLevel"] = "eventual";
        if (!headers.empty()) r["headers"] = std::move(headers);
        requests.push_back(std::move(r));
      }
      auto resp = exchange(http::Method::Post, cfg_.url + "/$batch",
                           Json{{"requests", std::move(requests)}}.dump(), false, what);
      if (!resp) return resp.error();
      if (resp->status != 200) return failure(*resp, what);
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (!doc.is_object() || !doc.contains("responses") || !doc["responses"].is_array())
        return core::makeError(ErrorKind::Permanent, what + ": malformed $batch answer", where(),
                               "the service did not answer with a JSON batch response");
      std::unordered_map<std::string, const Json*> by_id;
      for (const auto& r : doc["responses"])
        if (r.is_object() && r.contains("id") && r["id"].is_string())
          by_id[r["id"].get<std::string>()] = &r;

      std::vector<std::size_t> again;
      http::Millis wait{0};
      for (const std::size_t i : chunk) {
        SubResponse sub;
        const auto found = by_id.find(std::to_string(i + 1));
        if (found != by_id.end()) {
          const Json& r = *found->second;
          if (r.contains("status") && r["status"].is_number_integer())
            sub.status = r["status"].get<long>();
          if (r.contains("headers") && r["headers"].is_object())
            for (auto it = r["headers"].begin(); it != r["headers"].end(); ++it)
              sub.headers.add(it.key(), it.value().is_string() ? it.value().get<std::string>()
                                                               : it.value().dump());
          if (r.contains("body") && !r["body"].is_null())
            sub.body = r["body"].is_string() ? r["body"].get<std::string>() : r["body"].dump();
        }
        if ((retryable(sub.status) || sub.status == 0) && ++attempts[i] < kMaxAttempts) {
          wait = std::max(wait, waitFor(sub.headers, attempts[i]));
          again.push_back(i);
          continue;
        }
        out[i] = std::move(sub);
      }
      if (!again.empty()) {
        client_.options().sleep(wait);
        for (auto it = again.rbegin(); it != again.rend(); ++it) pending.push_front(*it);
      }
    }
    return out;
  }

  core::Error subFailure(const SubResponse& r, const std::string& what) const {
    if (r.status == 0)
      return core::makeError(ErrorKind::Transient,
                             what + ": the $batch answer had no response for this request",
                             where(), "certgate retries on the next run");
    return failure(r.status, r.headers, r.body, what);
  }

  std::string selectList() const {
    std::string s = "id,userPrincipalName,mail,employeeId,displayName,accountEnabled";
    const std::string top = cfg_.population_attribute.substr(0, cfg_.population_attribute.find('/'));
    if (("," + s + ",").find("," + top + ",") == std::string::npos) s += "," + top;
    return s;
  }

  core::Result<ports::DirectoryUser> toUser(const Json& item, const std::string& what) const {
    if (!item.is_object() || !item.contains("id") || !item["id"].is_string())
      return core::makeError(ErrorKind::Permanent, what + ": a listed user has no id", where(),
                             "the service answered a user without its id");
    ports::DirectoryUser u;
    u.id = item["id"].get<std::string>();
    u.user_name = text(item, "userPrincipalName");
    u.email = text(item, "mail");
    u.employee_id = text(item, "employeeId");
    u.display_name = text(item, "displayName");
    u.active = !(item.contains("accountEnabled") && item["accountEnabled"].is_boolean() &&
                 !item["accountEnabled"].get<bool>());
    const auto slash = cfg_.population_attribute.find('/');
    if (slash == std::string::npos) {
      u.population = text(item, cfg_.population_attribute.c_str());
    } else {
      const std::string outer = cfg_.population_attribute.substr(0, slash);
      const std::string inner = cfg_.population_attribute.substr(slash + 1);
      if (item.contains(outer) && item[outer].is_object())
        u.population = text(item[outer], inner.c_str());
    }
    return u;
  }

  // GETs `url` and every @odata.nextLink after it (verbatim), handing each item to `each`.
  // OK only when the last page had no nextLink.
  core::Status pageThrough(std::string url, bool eventual, const std::string& what,
                           const std::function<core::Status(const Json&)>& each) {
    std::string previous;
    for (int page = 1; !url.empty(); ++page) {
      if (url == previous)
        return core::makeError(ErrorKind::Permanent,
                               what + ": the service repeated the same @odata.nextLink", where(),
                               "paging did not advance; certgate stops rather than loop");
      if (url.rfind(cfg_.origin + "/", 0) != 0)
        return core::makeError(ErrorKind::Permanent,
                               what + ": @odata.nextLink leaves " + cfg_.origin + ": " + url,
                               where(), "certgate sends its token only to the configured url");
      const std::string page_what = what + " (page " + std::to_string(page) + ")";
      auto resp = exchange(http::Method::Get, url, {}, eventual, page_what);
      if (!resp) return resp.error();
      if (resp->status != 200) return failure(*resp, page_what);
      const Json doc = Json::parse(resp->body, nullptr, false);
      if (!doc.is_object() || !doc.contains("value") || !doc["value"].is_array())
        return core::makeError(ErrorKind::Permanent, page_what + ": malformed page (no value)",
                               where(), "the service did not answer with an OData collection");
      for (const auto& item : doc["value"]) {
        auto st = each(item);
        if (!st) return st;
      }
      previous = url;
      url.clear();
      if (doc.contains("@odata.nextLink")) {
        if (!doc["@odata.nextLink"].is_string())
          return core::makeError(ErrorKind::Permanent, page_what + ": malformed @odata.nextLink",
                                 where());
        url = doc["@odata.nextLink"].get<std::string>();
      }
    }
    return {};
  }

  ports::GroupRef toGroup(const Json& g) const {
    ports::GroupRef ref;
    ref.id = text(g, "id");
    ref.display_name = text(g, "displayName");
    const bool unified = hasType(g, "Unified");
    if (hasType(g, "DynamicMembership")) {
      ref.writable = false;
      ref.not_writable_why =
          "dynamic membership group (groupTypes DynamicMembership): its rule decides who is a "
          "member and Microsoft Graph cannot add or remove members";
    } else if (flag(g, "onPremisesSyncEnabled")) {
      ref.writable = false;
      ref.not_writable_why =
          "synchronised from on-premises Active Directory (onPremisesSyncEnabled): change its "
          "membership in Active Directory";
    } else if (flag(g, "mailEnabled") && !unified) {
      ref.writable = false;
      ref.not_writable_why = flag(g, "securityEnabled")
                                 ? "mail-enabled security group: read-only through Microsoft "
                                   "Graph (manage it in Exchange Online)"
                                 : "distribution group: read-only through Microsoft Graph "
                                   "(manage it in Exchange Online)";
    }
    return ref;
  }

  std::string groupPath(const std::string& gid) const { return "/groups/" + gid; }
  std::string bindUrl(const std::string& uid) const {
    return cfg_.url + "/directoryObjects/" + uid;
  }
  std::string readBackUrl(const std::string& gid, const std::string& uid) const {
    return groupPath(gid) + "/members?$filter=" + encodeQueryValue("id eq " + odataString(uid)) +
           "&$select=id&$count=true";
  }

  core::Status checkWritable(const ports::GroupRef& group, const char* verb) const {
    if (!isObjectId(group.id))
      return core::makeError(ErrorKind::Invalid,
                             std::string("cannot ") + verb + " members of group '" +
                                 group.display_name + "': '" + group.id +
                                 "' is not an Entra object id",
                             where(), "resolve the group through the directory first");
    if (!group.writable)
      return core::makeError(ErrorKind::Permanent,
                             std::string("group '") + group.display_name + "' (" + group.id +
                                 ") is not writable: " + group.not_writable_why,
                             where(),
                             "grant a security group or Microsoft 365 group with assigned "
                             "membership instead");
    return {};
  }

  // Confirms membership (`want_member`) of each user by reading it back; ok outcomes are
  // no_op. Outcomes are written at the given indexes.
  core::Status readBack(const ports::GroupRef& group, const std::vector<std::string>& ids,
                        const std::vector<std::size_t>& at, bool want_member,
                        std::vector<ports::MemberOutcome>& outcomes) {
    if (ids.empty()) return {};
    std::vector<SubRequest> subs;
    for (const auto& uid : ids)
      subs.push_back({http::Method::Get, readBackUrl(group.id, uid), nullptr, true});
    const std::string what = "read back membership in group '" + group.display_name + "'";
    auto results = runBatch(subs, what);
    if (!results) return results.error();
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const auto& r = (*results)[k];
      auto& out = outcomes[at[k]];
      const std::string member_what = what + " of user " + ids[k];
      if (r.status == 401 || r.status == 403) return subFailure(r, member_what);
      if (r.status != 200) {
        out.status = subFailure(r, member_what);
        continue;
      }
      const Json doc = Json::parse(r.body, nullptr, false);
      bool listed = false;
      if (doc.is_object() && doc.contains("value") && doc["value"].is_array())
        for (const auto& v : doc["value"]) listed = listed || text(v, "id") == ids[k];
      if (listed == want_member) {
        out.status = {};
        out.no_op = true;
      } else if (want_member) {
        out.status = core::makeError(
            ErrorKind::Transient,
            "Graph answered that user " + ids[k] + " is already a member of group '" +
                group.display_name + "', but the membership does not list it yet",
            where(), "the directory's index lags behind; certgate retries on the next run");
      } else {
        out.status = core::makeError(
            ErrorKind::Conflict,
            "Graph refused to remove user " + ids[k] + " from group '" + group.display_name +
                "' as not a member, but the membership still lists it",
            where(), "the directory's index lags behind; certgate retries on the next run");
      }
    }
    return {};
  }

  std::string name_;
  Config cfg_;
  std::shared_ptr<http::Redactor> redactor_;
  http::Client client_;
  oauth2::TokenSource tokens_;
  bool connected_ = false;
  std::atomic<std::uint64_t> requests_{0};
  std::map<std::string, ports::GroupRef> groups_;
};

core::Result<ports::GroupRef> GraphDirectory::resolveGroup(const std::string& id_or_name) {
  if (auto st = ensureConnected(); !st) return st.error();
  if (const auto it = groups_.find(id_or_name); it != groups_.end()) return it->second;
  const std::string key(trim(id_or_name));
  if (key.empty())
    return core::makeError(ErrorKind::Invalid, "resolve group: empty group id or name", where());

  std::vector<ports::GroupRef> found;
  if (isObjectId(key)) {
    const std::string what = "read group " + key;
    auto resp = exchange(http::Method::Get,
                         cfg_.url + groupPath(key) + "?$select=" + kGroupSelect, {}, false, what);
    if (!resp) return resp.error();
    if (resp->status == 404)
      return core::makeError(ErrorKind::NotFound, "group " + key + " does not exist", where(),
                             "check the group's object id in the Entra admin center");
    if (resp->status != 200) return failure(*resp, what);
    const Json doc = Json::parse(resp->body, nullptr, false);
    if (!doc.is_object() || text(doc, "id").empty())
      return core::makeError(ErrorKind::Permanent, what + ": malformed group", where());
    found.push_back(toGroup(doc));
  } else {
    const std::string what = "find group named '" + key + "'";
    const std::string url = cfg_.url + "/groups?$filter=" +
                            encodeQueryValue("displayName eq " + odataString(key)) +
                            "&$select=" + kGroupSelect;
    auto st = pageThrough(url, false, what, [&](const Json& g) -> core::Status {
      found.push_back(toGroup(g));
      return {};
    });
    if (!st) return st.error();
    if (found.empty())
      return core::makeError(ErrorKind::NotFound, "no group is named '" + key + "'", where(),
                             "check the display name, or give the group's object id");
    if (found.size() > 1) {
      std::string ids;
      for (std::size_t i = 0; i < found.size() && i < 5; ++i)
        ids += (i ? ", " : "") + found[i].id;
      return core::makeError(ErrorKind::Conflict,
                             std::to_string(found.size()) + " groups are named '" + key +
                                 "' (" + ids + (found.size() > 5 ? ", ..." : "") + ")",
                             where(), "name the group by its object id instead");
    }
  }
  groups_[id_or_name] = found.front();
  groups_[found.front().id] = found.front();
  return found.front();
}

core::Result<std::vector<ports::DirectoryUser>> GraphDirectory::findUsers(
    const ports::UserQuery& query) {
  if (auto st = ensureConnected(); !st) return st.error();
  std::string attribute;
  bool advanced = false;
  switch (query.attribute) {
    case ports::UserAttribute::UserName: attribute = "userPrincipalName"; break;
    case ports::UserAttribute::Email: attribute = "mail"; break;
    case ports::UserAttribute::EmployeeId: attribute = "employeeId"; break;
    case ports::UserAttribute::Id:
      attribute = "id";
      if (!isObjectId(query.value)) return std::vector<ports::DirectoryUser>{};
      break;
    case ports::UserAttribute::ExternalId:
      return core::makeError(ErrorKind::Invalid,
                             "find users: Entra ID users have no external_id attribute", where(),
                             "match on user_name, email or employee_id, or a custom attribute "
                             "such as onPremisesImmutableId");
    case ports::UserAttribute::Custom:
      if (!isPropertyPath(query.custom))
        return core::makeError(ErrorKind::Invalid,
                               "find users: '" + query.custom + "' is not a user property name",
                               where(),
                               "use a Graph user property, e.g. employeeType or "
                               "onPremisesExtensionAttributes/extensionAttribute1");
      attribute = query.custom;
      // Many properties filter only as an advanced query; it also answers default ones.
      advanced = true;
      break;
  }
  if (query.value.empty())
    return core::makeError(ErrorKind::Invalid, "find users: empty " + attribute + " value",
                           where());
  const std::string what = "find users with " + attribute + " '" + query.value + "'";
  std::string url = cfg_.url + "/users?$filter=" +
                    encodeQueryValue(attribute + " eq " + odataString(query.value)) +
                    "&$select=" + selectList() + "&$top=" + std::to_string(cfg_.page_size);
  if (advanced) url += "&$count=true";
  std::vector<ports::DirectoryUser> users;
  auto st = pageThrough(url, advanced, what, [&](const Json& item) -> core::Status {
    auto u = toUser(item, what);
    if (!u) return u.error();
    users.push_back(std::move(*u));
    return {};
  });
  if (!st) return st.error();
  return users;
}

core::Status GraphDirectory::listMembers(const ports::GroupRef& group,
                                         const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (auto st = ensureConnected(); !st) return st;
  if (!isObjectId(group.id))
    return core::makeError(ErrorKind::Invalid,
                           "list members: '" + group.id + "' is not an Entra object id", where(),
                           "resolve the group through the directory first");
  const std::string what = "list members of group '" + group.display_name + "' (" + group.id + ")";
  // The cast keeps nested groups, devices and contacts out: only users are people.
  const std::string url = cfg_.url + groupPath(group.id) + "/members/microsoft.graph.user?$select=" +
                          selectList() + "&$top=" + std::to_string(cfg_.page_size);
  return pageThrough(url, false, what, [&](const Json& item) -> core::Status {
    auto u = toUser(item, what);
    if (!u) return u.error();
    sink(std::move(*u));
    return {};
  });
}

core::Status GraphDirectory::listRoster(const std::function<void(ports::DirectoryUser&&)>& sink) {
  if (cfg_.roster_filter.empty())
    return core::makeError(ErrorKind::Invalid, "list roster: no roster_filter is configured",
                           where(),
                           "set roster_filter, e.g. roster_filter: \"employeeType eq 'Employee'\"");
  if (auto st = ensureConnected(); !st) return st;
  const std::string what = "list roster (" + cfg_.roster_filter + ")";
  const std::string url = cfg_.url + "/users?$filter=" + encodeQueryValue(cfg_.roster_filter) +
                          "&$select=" + selectList() + "&$top=" +
                          std::to_string(cfg_.page_size) + "&$count=true";
  return pageThrough(url, true, what, [&](const Json& item) -> core::Status {
    auto u = toUser(item, what);
    if (!u) return u.error();
    sink(std::move(*u));
    return {};
  });
}

core::Result<std::vector<ports::MemberOutcome>> GraphDirectory::addMembers(
    const ports::GroupRef& group, const std::vector<std::string>& user_ids) {
  if (auto st = checkWritable(group, "add"); !st) return st.error();
  std::vector<ports::MemberOutcome> outcomes(user_ids.size());
  if (user_ids.empty()) return outcomes;
  if (auto st = ensureConnected(); !st) return st.error();

  // Unique, valid ids in request order; duplicates take the first one's outcome.
  std::vector<std::string> ids;
  std::vector<std::size_t> first;  // index in user_ids of ids[k]
  std::unordered_map<std::string, std::size_t> seen;
  std::vector<std::pair<std::size_t, std::size_t>> copies;  // (duplicate index, original index)
  for (std::size_t i = 0; i < user_ids.size(); ++i) {
    outcomes[i].user_id = user_ids[i];
    if (!isObjectId(user_ids[i])) {
      outcomes[i].status = core::makeError(
          ErrorKind::Invalid, "'" + user_ids[i] + "' is not an Entra object id", where(),
          "pass the user's id as findUsers/listMembers returned it");
      continue;
    }
    const auto [it, inserted] = seen.emplace(lower(user_ids[i]), i);
    if (!inserted) {
      copies.emplace_back(i, it->second);
      continue;
    }
    ids.push_back(user_ids[i]);
    first.push_back(i);
  }

  // 1. PATCH /groups/{id} with up to 20 binds each, 20 PATCHes per $batch.
  std::vector<SubRequest> patches;
  for (std::size_t k = 0; k < ids.size(); k += kBindsPerPatch) {
    Json binds = Json::array();
    for (std::size_t j = k; j < std::min(ids.size(), k + kBindsPerPatch); ++j)
      binds.push_back(bindUrl(ids[j]));
    patches.push_back(
        {http::Method::Patch, groupPath(group.id), Json{{"members@odata.bind", binds}}, false});
  }
  const std::string what = "add members to group '" + group.display_name + "'";
  auto results = runBatch(patches, what);
  if (!results) return results.error();

  std::vector<std::size_t> single;  // positions in ids: retried one by one
  for (std::size_t c = 0; c < patches.size(); ++c) {
    const auto& r = (*results)[c];
    const std::size_t begin = c * kBindsPerPatch;
    const std::size_t end = std::min(ids.size(), begin + kBindsPerPatch);
    if (r.status >= 200 && r.status < 300) {
      for (std::size_t j = begin; j < end; ++j) outcomes[first[j]].status = {};
    } else if (r.status == 401 || r.status == 403) {
      return subFailure(r, what);
    } else if (r.status == 400 || r.status == 404) {
      // All or nothing: one present or missing member refuses the whole PATCH.
      for (std::size_t j = begin; j < end; ++j) single.push_back(j);
    } else {
      const core::Error e = subFailure(r, what);
      for (std::size_t j = begin; j < end; ++j) outcomes[first[j]].status = e;
    }
  }

  // 2. POST /groups/{id}/members/$ref for each member of a refused chunk.
  std::vector<std::string> confirm;
  std::vector<std::size_t> confirm_at;
  if (!single.empty()) {
    std::vector<SubRequest> posts;
    for (const std::size_t j : single)
      posts.push_back({http::Method::Post, groupPath(group.id) + "/members/$ref",
                       Json{{"@odata.id", bindUrl(ids[j])}}, false});
    auto singles = runBatch(posts, what);
    if (!singles) return singles.error();
    for (std::size_t k = 0; k < single.size(); ++k) {
      const auto& r = (*singles)[k];
      const std::size_t at = first[single[k]];
      const std::string member_what = "add user " + ids[single[k]] + " to group '" +
                                      group.display_name + "'";
      if (r.status >= 200 && r.status < 300) {
        outcomes[at].status = {};
      } else if (r.status == 401 || r.status == 403) {
        return subFailure(r, member_what);
      } else if (isAlreadyMember(r.status, parseGraphError(r.body))) {
        confirm.push_back(ids[single[k]]);
        confirm_at.push_back(at);
      } else {
        outcomes[at].status = subFailure(r, member_what);
        if (r.status == 404)
          outcomes[at].status = core::makeError(
              ErrorKind::NotFound, outcomes[at].status.error().message, where(),
              "the user (or the group) no longer exists in the directory");
      }
    }
  }

  // 3. "already exist": confirm by reading the membership back.
  if (auto st = readBack(group, confirm, confirm_at, true, outcomes); !st) return st.error();
  for (const auto& [dup, orig] : copies) {
    outcomes[dup].status = outcomes[orig].status;
    outcomes[dup].no_op = outcomes[orig].status.ok();  // the first occurrence did the work
  }
  return outcomes;
}

core::Result<std::vector<ports::MemberOutcome>> GraphDirectory::removeMembers(
    const ports::GroupRef& group, const std::vector<std::string>& user_ids) {
  if (auto st = checkWritable(group, "remove"); !st) return st.error();
  std::vector<ports::MemberOutcome> outcomes(user_ids.size());
  if (user_ids.empty()) return outcomes;
  if (auto st = ensureConnected(); !st) return st.error();

  std::vector<std::string> ids;
  std::vector<std::size_t> first;
  std::unordered_map<std::string, std::size_t> seen;
  std::vector<std::pair<std::size_t, std::size_t>> copies;
  for (std::size_t i = 0; i < user_ids.size(); ++i) {
    outcomes[i].user_id = user_ids[i];
    if (!isObjectId(user_ids[i])) {
      outcomes[i].status = core::makeError(
          ErrorKind::Invalid, "'" + user_ids[i] + "' is not an Entra object id", where(),
          "pass the user's id as findUsers/listMembers returned it");
      continue;
    }
    const auto [it, inserted] = seen.emplace(lower(user_ids[i]), i);
    if (!inserted) {
      copies.emplace_back(i, it->second);
      continue;
    }
    ids.push_back(user_ids[i]);
    first.push_back(i);
  }

  // DELETE /groups/{id}/members/{id}/$ref -- the reference only, never the user.
  std::vector<SubRequest> deletes;
  for (const auto& uid : ids)
    deletes.push_back(
        {http::Method::Delete, groupPath(group.id) + "/members/" + uid + "/$ref", nullptr, false});
  const std::string what = "remove members from group '" + group.display_name + "'";
  auto results = runBatch(deletes, what);
  if (!results) return results.error();

  std::vector<std::string> confirm;
  std::vector<std::size_t> confirm_at;
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const auto& r = (*results)[k];
    const std::size_t at = first[k];
    if (r.status >= 200 && r.status < 300) {
      outcomes[at].status = {};
    } else if (r.status == 401 || r.status == 403) {
      return subFailure(r, what);
    } else if (isAbsentReference(r.status, parseGraphError(r.body))) {
      confirm.push_back(ids[k]);
      confirm_at.push_back(at);
    } else {
      outcomes[at].status =
          subFailure(r, "remove user " + ids[k] + " from group '" + group.display_name + "'");
    }
  }
  if (auto st = readBack(group, confirm, confirm_at, false, outcomes); !st) return st.error();
  for (const auto& [dup, orig] : copies) {
    outcomes[dup].status = outcomes[orig].status;
    outcomes[dup].no_op = outcomes[orig].status.ok();  // the first occurrence did the work
  }
  return outcomes;
}

// ---- configuration -----------------------------------------------------------------------------

using options::OptionReader;

bool validTenant(std::string_view t) {
  if (t.empty() || t.size() > 253) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

}  // namespace

const ports::ConfigSpec& spec() {
  static const ports::ConfigSpec kSpec = [] {
    using ports::ValueType;
    ports::ConfigSpec s;
    s.kind = "graph";
    s.description =
        "Microsoft Entra ID group membership through Microsoft Graph (client-credentials app)";
    s.keys = {
        {"url", ValueType::String, false, kDefaultUrl,
         "Microsoft Graph service root (national clouds: https://graph.microsoft.us/v1.0, "
         "https://microsoftgraph.chinacloudapi.cn/v1.0)"},
        {"tenant", ValueType::String, true, "",
         "Entra tenant id (GUID) or a verified domain, e.g. contoso.onmicrosoft.com"},
        {"client_id", ValueType::String, true, "",
         "Application (client) id of the app registration certgate signs in as"},
        {"client_secret", ValueType::Secret, true, "",
         "Client secret of the app registration: {file: PATH} or {credential: NAME}"},
        {"token_url", ValueType::String, false, kDefaultTokenUrl,
         "OAuth 2.0 token endpoint; {tenant} is replaced by `tenant`"},
        {"scope", ValueType::String, false, kDefaultScope,
         "Scope requested with the client-credentials grant"},
        {"page_size", ValueType::Int, false, "999",
         "$top of member, user and roster listings (1-999)"},
        {"roster_filter", ValueType::String, false, "",
         "Graph $filter on users selecting the in-scope roster, e.g. employeeType eq 'Employee' "
         "(sent with ConsistencyLevel: eventual and $count=true)"},
        {"population_attribute", ValueType::String, false, "employeeType",
         "User property copied into each person's population; a/b names a nested property, "
         "e.g. onPremisesExtensionAttributes/extensionAttribute1"},
        {"ca_file", ValueType::Path, false, "",
         "PEM bundle replacing the system CAs (TLS is always verified)"},
        {"timeout", ValueType::Duration, false, "60s", "Time limit of one HTTP exchange"},
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
    const OptionReader opts("directory '" + name + "'", options);
    if (auto known = opts.rejectUnknownKeys(spec()); !known) return known.error();

    Config cfg;
    auto url = opts.scalar("url");
    if (!url) return url.error();
    cfg.url = url->value_or(kDefaultUrl);
    while (!cfg.url.empty() && cfg.url.back() == '/') cfg.url.pop_back();
    const options::UrlWording url_wording = {
        .not_url = "'" + cfg.url + "' is not an absolute https URL",
        .not_url_hint = "e.g. url: https://graph.microsoft.com/v1.0",
        .plain_http = "'" + cfg.url + "' does not use https",
        .plain_http_hint = "Microsoft Graph is only reached over TLS"};
    if (cfg.url.find_first_of("?#") != std::string::npos)
      return opts.error("url", url_wording.not_url, url_wording.not_url_hint, opts.find("url"));
    auto origin = opts.url("url", cfg.url, url_wording);
    if (!origin) return origin.error();
    cfg.origin = *origin;

    auto tenant = opts.required("tenant",
                                "the directory (tenant) id from the app registration's overview, "
                                "or the tenant's domain");
    if (!tenant) return tenant.error();
    if (!validTenant(*tenant))
      return opts.error("tenant", "'" + *tenant + "' is not a tenant id or domain",
                        "e.g. tenant: 72f988bf-86f1-41af-91ab-2d7cd011db47 or "
                        "contoso.onmicrosoft.com",
                        opts.find("tenant"));
    cfg.tenant = *tenant;

    auto client_id = opts.required(
        "client_id", "the application (client) id from the app registration's overview");
    if (!client_id) return client_id.error();
    cfg.client_id = *client_id;

    // Graph passes the value on as the reader returns it: no trimming, and the reader's errors
    // unchanged.
    auto secret = opts.secretReference(
        "client_secret", {.missing_hint = "client_secret: {file: /etc/certgate/graph.secret} or "
                                          "{credential: graph-secret}",
                          .inline_message = "must be a reference, never the secret itself",
                          .inline_hint = "write {file: PATH} or {credential: NAME}"});
    if (!secret) return secret.error();
    if (!secrets)
      return core::makeError(ErrorKind::Internal, "no secret reader was supplied",
                             "directory '" + name + "'");
    auto secret_value = secrets(**secret);
    if (!secret_value) return secret_value.error();
    cfg.client_secret = std::move(*secret_value);
    if (redactor) redactor->add(cfg.client_secret);

    auto token_url = opts.scalar("token_url");
    if (!token_url) return token_url.error();
    cfg.token_url = token_url->value_or(kDefaultTokenUrl);
    for (std::size_t at; (at = cfg.token_url.find("{tenant}")) != std::string::npos;)
      cfg.token_url.replace(at, 8, cfg.tenant);
    const std::string not_https = "'" + cfg.token_url + "' is not an absolute https URL";
    const std::string token_url_hint =
        "e.g. https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
    if (auto checked = opts.url("token_url", cfg.token_url,
                                {.not_url = not_https,
                                 .not_url_hint = token_url_hint,
                                 .plain_http = not_https,
                                 .plain_http_hint = token_url_hint});
        !checked)
      return checked.error();

    auto scope = opts.scalar("scope");
    if (!scope) return scope.error();
    cfg.scope = scope->value_or(kDefaultScope);
    if (cfg.scope.empty())
      return opts.error("scope", "must not be empty",
                        std::string("use ") + kDefaultScope, opts.find("scope"));

    auto page_size = opts.scalar("page_size");
    if (!page_size) return page_size.error();
    if (page_size->has_value()) {
      int v = 0;
      try {
        std::size_t used = 0;
        v = std::stoi(**page_size, &used);
        if (used != (*page_size)->size()) v = 0;
      } catch (const std::exception&) {
        v = 0;
      }
      if (v < 1 || v > 999)
        return opts.error("page_size", "'" + **page_size + "' is not a whole number 1-999",
                          "Graph's $top accepts 1 to 999", opts.find("page_size"));
      cfg.page_size = v;
    }

    auto roster = opts.scalar("roster_filter");
    if (!roster) return roster.error();
    if (roster->has_value()) {
      if ((*roster)->empty())
        return opts.error("roster_filter", "is empty",
                          "remove it, or write a filter such as employeeType eq 'Employee'",
                          opts.find("roster_filter"));
      cfg.roster_filter = **roster;
    }

    auto population = opts.scalar("population_attribute");
    if (!population) return population.error();
    cfg.population_attribute = population->value_or("employeeType");
    if (!isPropertyPath(cfg.population_attribute))
      return opts.error("population_attribute",
                        "'" + cfg.population_attribute + "' is not a user property name",
                        "e.g. employeeType, department or "
                        "onPremisesExtensionAttributes/extensionAttribute1",
                        opts.find("population_attribute"));

    auto ca_file = opts.readableFile("ca_file", base_dir, "point ca_file at a PEM bundle");
    if (!ca_file) return ca_file.error();
    if (ca_file->has_value()) client_options.ca_file = **ca_file;

    auto timeout = opts.duration("timeout", core::Seconds{1}, core::Seconds{3600},
                                 "a duration from 1s to 1h", "e.g. timeout: 30s");
    if (!timeout) return timeout.error();
    if (timeout->has_value())
      client_options.total_timeout = std::chrono::duration_cast<http::Millis>(**timeout);

    if (!client_options.redactor && redactor) client_options.redactor = redactor;
    return std::unique_ptr<ports::Directory>(
        new GraphDirectory(name, std::move(cfg), std::move(redactor), std::move(client_options)));
  } catch (const std::exception& e) {
    return core::makeError(ErrorKind::Internal,
                           std::string("unexpected failure while configuring: ") + e.what(),
                           "directory '" + name + "'");
  }
}

}  // namespace certgate::connectors::graph
