#include "engine/exceptions.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/evaluate.hpp"
#include "core/identity.hpp"

namespace certgate::engine {

namespace {

using core::ErrorKind;
using core::Instant;
using nlohmann::json;

std::string where(std::int64_t id) { return "exception #" + std::to_string(id); }

core::Error fail(ErrorKind kind, std::string message, std::string at, std::string hint = {}) {
  return core::makeError(kind, std::move(message), std::move(at), std::move(hint));
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// "5 days", "5.5 days", "4.04 days": a duration as an operator reads it.
std::string inDays(core::Seconds d) {
  const auto hundredths = (d.count() * 100 + 86399) / 86400;  // rounded up: never understated
  std::string out = std::to_string(hundredths / 100);
  if (hundredths % 100 != 0) {
    const auto frac = hundredths % 100;
    out += "." + std::string(frac < 10 ? "0" : "") + std::to_string(frac);
    while (out.back() == '0') out.pop_back();
  }
  return out + (hundredths == 100 ? " day" : " days");
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

core::Exception coreException(const store::ExceptionRow& row) {
  core::Exception x;
  x.id = row.id;
  x.requester = settings::normaliseApprover(row.requester);
  x.starts_at = row.starts_at;
  x.ends_at = row.ends_at;
  x.revoked_at = row.revoked_at;
  for (const auto& a : row.approvals)
    x.approvals.push_back({settings::normaliseApprover(a.approver), a.role, a.at});
  return x;
}

std::optional<json> optionalDecision(const std::optional<Instant>& at, const std::string& by,
                                     const std::string& reason) {
  if (!at) return std::nullopt;
  return json{{"by", by}, {"at", core::formatIso(*at)}, {"reason", reason}};
}

// A rollback-on-destruction transaction with the audit append of the step.
template <typename Fn>
auto inTransaction(store::Store& store, Fn&& fn) -> decltype(fn()) {
  auto tx = store.begin();
  if (!tx.ok()) return tx.error();
  auto result = fn();
  if (!result.ok()) return result;
  if (auto done = tx->commit(); !done.ok()) return done.error();
  return result;
}

}  // namespace

const char* toString(ExceptionState state) {
  switch (state) {
    case ExceptionState::Pending: return "pending";
    case ExceptionState::Approved: return "approved";
    case ExceptionState::Active: return "active";
    case ExceptionState::Rejected: return "rejected";
    case ExceptionState::Revoked: return "revoked";
    case ExceptionState::Ended: return "ended";
  }
  return "pending";
}

ExceptionService::ExceptionService(store::Store& store, const settings::Settings& settings)
    : store_(store), settings_(settings) {}

const core::Track* ExceptionService::track(const std::string& id) const {
  if (!settings_.policy) return nullptr;
  auto sym = settings_.policy->symbols.find(id);
  if (!sym) return nullptr;
  for (const auto& t : settings_.policy->policy.tracks)
    if (t.id == *sym) return &t;
  return nullptr;
}

core::Status ExceptionService::audit(const std::string& actor, const std::string& action,
                                     std::int64_t id, const json& details, Instant now) {
  store::AuditRow a;
  a.at = now;
  a.actor = actor;
  a.action = action;
  a.subject = "exception/" + std::to_string(id);
  a.details_json = details.dump();
  auto r = store_.appendAudit(a);
  if (!r.ok()) return r.error();
  return {};
}

core::Result<ExceptionView> ExceptionService::viewOf(const store::ExceptionRow& row, Instant now) {
  ExceptionView v;
  v.row = row;
  v.person = row.person_key;
  v.access_ends = row.revoked_at && *row.revoked_at < row.ends_at ? *row.revoked_at : row.ends_at;
  const core::Track* t = track(row.track);
  v.track_known = t != nullptr;
  if (t) {
    v.required_roles = t->exceptions.required_roles;
    const core::Exception x = coreException(row);
    for (std::size_t i : core::missingApprovals(x, t->exceptions, now))
      v.missing_roles.push_back(t->exceptions.required_roles[i]);
    if (v.missing_roles.empty()) {
      // The approval that completed the roles: the earliest instant at which none is missing.
      std::vector<Instant> times;
      for (const auto& a : x.approvals) times.push_back(a.at);
      std::sort(times.begin(), times.end());
      Instant complete = times.empty() ? row.requested_at : times.back();
      for (Instant at : times)
        if (core::missingApprovals(x, t->exceptions, at).empty()) {
          complete = at;
          break;
        }
      v.active_from = std::max(row.starts_at, complete);
    }
  }
  const bool approved = v.track_known && v.missing_roles.empty();
  if (row.rejected_at)
    v.state = ExceptionState::Rejected;
  else if (row.revoked_at && *row.revoked_at <= now && *row.revoked_at < row.ends_at)
    v.state = ExceptionState::Revoked;
  else if (now >= row.ends_at)
    v.state = ExceptionState::Ended;
  else if (!approved)
    v.state = ExceptionState::Pending;
  else
    v.state = now < *v.active_from ? ExceptionState::Approved : ExceptionState::Active;
  return v;
}

core::Result<ExceptionView> ExceptionService::load(std::int64_t id, Instant now) {
  auto row = store_.exception(id);
  if (!row.ok()) return row.error();
  if (!row->has_value())
    return fail(ErrorKind::NotFound, "no exception #" + std::to_string(id), where(id),
                "`certgate exceptions list` shows every exception and its id");
  return viewOf(**row, now);
}

core::Result<ExceptionView> ExceptionService::get(std::int64_t id, Instant now) {
  return load(id, now);
}

core::Result<std::vector<ExceptionView>> ExceptionService::list(Instant now) {
  auto rows = store_.exceptions();
  if (!rows.ok()) return rows.error();
  std::vector<ExceptionView> out;
  out.reserve(rows->size());
  for (const auto& row : *rows) {
    auto v = viewOf(row, now);
    if (!v.ok()) return v.error();
    out.push_back(std::move(v).value());
  }
  return out;
}

core::Result<ExceptionView> ExceptionService::request(const ExceptionRequest& r, Instant now) {
  const core::Track* t = track(r.track);
  if (!t)
    return fail(ErrorKind::NotFound, "unknown track '" + r.track + "'", "track " + r.track,
                "`certgate validate-config` lists the configured tracks");
  const core::ExceptionPolicy& pol = t->exceptions;
  if (!pol.allowed)
    return fail(ErrorKind::Invalid, "track " + r.track + " allows no exceptions",
                "track " + r.track,
                "its policy's accessGating.approvals.exceptionPath.allowed is false; the person "
                "needs to complete the certification");
  if (blank(r.requester))
    return fail(ErrorKind::Invalid, "an exception needs a requester", "track " + r.track,
                "name who asks for it (--requester)");
  const Instant start = r.starts_at.value_or(now);
  if (r.ends_at && r.days != 0)
    return fail(ErrorKind::Invalid, "give the end either as an instant or as a number of days, not both",
                "track " + r.track);
  if (r.days < 0)
    return fail(ErrorKind::Invalid, "the duration must be a positive number of days",
                "track " + r.track);
  std::optional<Instant> end = r.ends_at;
  if (!end && r.days > 0) end = start + core::days(r.days);
  if (!end)
    return fail(ErrorKind::Invalid, "the exception needs an end", "track " + r.track,
                "give --days N or --end INSTANT (at most " +
                    std::to_string(pol.max_duration_days) + " days)");
  if (*end <= start)
    return fail(ErrorKind::Invalid,
                "the exception ends (" + core::formatIso(*end) + ") before or when it starts (" +
                    core::formatIso(start) + ")",
                "track " + r.track, "the end must be after the start");
  if (*end - start > core::days(pol.max_duration_days))
    return fail(ErrorKind::Invalid,
                "the exception would last " + inDays(*end - start) + "; track " + r.track + " allows at most " +
                    std::to_string(pol.max_duration_days) + " days (maxDurationDays)",
                "track " + r.track,
                "ask for at most " + std::to_string(pol.max_duration_days) +
                    " days, and a new exception when it ends");
  for (const auto& [name, value] : r.justification) {
    if (std::find(pol.justification_fields.begin(), pol.justification_fields.end(), name) ==
        pol.justification_fields.end())
      return fail(ErrorKind::Invalid, "unknown justification field '" + name + "'",
                  "track " + r.track,
                  "the policy asks for: " + (pol.justification_fields.empty()
                                                 ? std::string("no fields")
                                                 : joined(pol.justification_fields)));
  }
  std::vector<std::string> missing;
  for (const auto& name : pol.justification_fields) {
    auto it = r.justification.find(name);
    if (it == r.justification.end() || blank(it->second)) missing.push_back(name);
  }
  if (!missing.empty())
    return fail(ErrorKind::Invalid, "missing justification: " + joined(missing),
                "track " + r.track,
                "give every field the policy asks for, not blank (--field NAME=VALUE): " +
                    joined(pol.justification_fields));

  const std::string email = core::normaliseEmail(r.person);
  auto person = store_.findPerson(email.empty() ? core::normaliseEmployeeId(r.person) : email);
  if (!person.ok()) return person.error();
  if (!person->has_value())
    return fail(ErrorKind::NotFound, "no person matches '" + r.person + "'", "person " + r.person,
                "use the person's key, employee id or email as `certgate status` shows it");

  json justification = json::object();
  for (const auto& [k, v] : r.justification) justification[k] = v;
  return inTransaction(store_, [&]() -> core::Result<ExceptionView> {
    store::ExceptionRow row;
    row.person_id = (*person)->id;
    row.track = r.track;
    row.requester = r.requester;
    row.requested_at = now;
    row.starts_at = start;
    row.ends_at = *end;
    row.justification_json = justification.dump();
    auto id = store_.insertException(row);
    if (!id.ok()) return id.error();
    auto audited = audit(r.requester, "exception.request", *id,
                         {{"exception_id", *id},
                          {"person", (*person)->key},
                          {"track", r.track},
                          {"starts_at", core::formatIso(start)},
                          {"ends_at", core::formatIso(*end)},
                          {"justification", justification}},
                         now);
    if (!audited.ok()) return audited.error();
    return load(*id, now);
  });
}

core::Result<ApproveResult> ExceptionService::approve(std::int64_t id, const std::string& approver,
                                                      const std::string& role, Instant now,
                                                      const std::string& comment) {
  const std::string who = settings::normaliseApprover(approver);
  if (who.empty())
    return fail(ErrorKind::Invalid, "an approval needs the approver's name", where(id),
                "name who approves (--approver)");
  return inTransaction(store_, [&]() -> core::Result<ApproveResult> {
    auto loaded = load(id, now);
    if (!loaded.ok()) return loaded.error();
    ExceptionView v = std::move(loaded).value();
    const store::ExceptionRow& x = v.row;
    const core::Track* t = track(x.track);
    if (!t)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " is for track " + x.track +
                      ", which is no longer configured",
                  where(id), "it cannot grant anything; request one for a configured track");
    if (!t->exceptions.allowed)
      return fail(ErrorKind::Conflict, "track " + x.track + " no longer allows exceptions",
                  where(id), "its policy's exceptionPath.allowed is false");
    if (v.state == ExceptionState::Rejected)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " was rejected by " + x.rejected_by +
                      " at " + core::formatIso(*x.rejected_at) + " and cannot be approved",
                  where(id), "request a new exception if it is still needed");
    if (v.state == ExceptionState::Revoked)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " was revoked by " + x.revoked_by +
                      " at " + core::formatIso(*x.revoked_at) + " and cannot be approved",
                  where(id), "request a new exception if it is still needed");
    if (v.state == ExceptionState::Ended)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " ended at " +
                      core::formatIso(x.ends_at) + " and cannot be approved",
                  where(id), "request a new exception if it is still needed");
    const auto& roles = t->exceptions.required_roles;
    if (std::find(roles.begin(), roles.end(), role) == roles.end())
      return fail(ErrorKind::Invalid,
                  "role '" + role + "' is not one track " + x.track + " requires",
                  where(id), "required roles: " + joined(roles));
    if (who == settings::normaliseApprover(x.requester))
      return fail(ErrorKind::Auth,
                  approver + " requested exception #" + std::to_string(id) +
                      " and cannot approve it",
                  where(id), "approvals must come from people other than the requester");
    const std::string as_email = core::normaliseEmail(approver);
    auto self = store_.findPerson(as_email.empty() ? core::normaliseEmployeeId(approver) : as_email);
    if (!self.ok()) return self.error();
    if (self->has_value() && (*self)->id == x.person_id)
      return fail(ErrorKind::Auth,
                  approver + " is the person exception #" + std::to_string(id) +
                      " is for and cannot approve it",
                  where(id), "approvals must come from other people");
    auto holders = settings_.exceptions.approvers.find(role);
    if (holders == settings_.exceptions.approvers.end() ||
        std::find(holders->second.begin(), holders->second.end(), who) == holders->second.end())
      return fail(ErrorKind::Auth, approver + " does not hold approver role " + role, where(id),
                  holders == settings_.exceptions.approvers.end()
                      ? "nobody holds role " + role + ": list its holders under exceptions.approvers." +
                            role + " in certgate.yaml"
                      : "holders of " + role + ": " + joined(holders->second) +
                            " (certgate.yaml exceptions.approvers)");
    ApproveResult result;
    if (v.missing_roles.empty()) {  // approved already (Approved or Active): nothing to add
      result.view = std::move(v);
      return result;
    }
    for (const auto& a : x.approvals) {
      const std::string by = settings::normaliseApprover(a.approver);
      if (by == who && a.role == role) {  // the same approval again
        result.view = std::move(v);
        return result;
      }
      if (by == who)
        return fail(ErrorKind::Conflict,
                    approver + " approved exception #" + std::to_string(id) + " as " + a.role +
                        " already; one person cannot approve two roles of one exception",
                    where(id), "ask another holder of " + role);
      if (a.role == role && by != settings::normaliseApprover(x.requester))
        return fail(ErrorKind::Conflict,
                    "role " + role + " of exception #" + std::to_string(id) +
                        " was approved by " + a.approver + " already",
                    where(id), "still missing: " + joined(v.missing_roles));
    }
    store::ApprovalRow ap;
    ap.exception_id = id;
    ap.approver = who;
    ap.role = role;
    ap.at = now;
    ap.comment = comment;
    if (auto added = store_.addApproval(ap); !added.ok()) return added.error();
    if (auto a = audit(approver, "exception.approve", id,
                       {{"exception_id", id}, {"role", role}, {"comment", comment}}, now);
        !a.ok())
      return a.error();
    auto after = load(id, now);
    if (!after.ok()) return after.error();
    result.recorded = true;
    result.became_active = after->missing_roles.empty();
    if (result.became_active) {
      if (auto a = audit(approver, "exception.active", id,
                         {{"exception_id", id},
                          {"person", after->person},
                          {"track", x.track},
                          {"active_from", core::formatIso(*after->active_from)},
                          {"ends_at", core::formatIso(x.ends_at)}},
                         now);
          !a.ok())
        return a.error();
    }
    result.view = std::move(after).value();
    return result;
  });
}

core::Result<ExceptionView> ExceptionService::reject(std::int64_t id, const std::string& by,
                                                     const std::string& reason, Instant now) {
  const std::string who = settings::normaliseApprover(by);
  if (who.empty())
    return fail(ErrorKind::Invalid, "a rejection needs the name of who rejects", where(id),
                "name who rejects (--by)");
  if (blank(reason))
    return fail(ErrorKind::Invalid, "a rejection needs a reason", where(id),
                "say why (--reason); it is kept in the audit trail and shown to the requester");
  return inTransaction(store_, [&]() -> core::Result<ExceptionView> {
    auto loaded = load(id, now);
    if (!loaded.ok()) return loaded.error();
    const ExceptionView& v = *loaded;
    if (v.state == ExceptionState::Rejected) return loaded;
    if (v.state != ExceptionState::Pending)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " is " + toString(v.state) +
                      "; only a pending exception can be rejected",
                  where(id),
                  v.state == ExceptionState::Approved || v.state == ExceptionState::Active
                      ? "revoke it instead (certgate exceptions revoke)"
                      : "nothing to do");
    bool holder = false;
    for (const auto& role : v.required_roles) {
      auto it = settings_.exceptions.approvers.find(role);
      holder = holder || (it != settings_.exceptions.approvers.end() &&
                          std::find(it->second.begin(), it->second.end(), who) != it->second.end());
    }
    if (!holder)
      return fail(ErrorKind::Auth,
                  by + " holds none of the roles that approve exceptions of track " + v.row.track,
                  where(id), "roles: " + joined(v.required_roles) +
                                 " (certgate.yaml exceptions.approvers)");
    if (auto r = store_.rejectException(id, by, reason, now); !r.ok()) return r.error();
    if (auto a = audit(by, "exception.reject", id, {{"exception_id", id}, {"reason", reason}}, now);
        !a.ok())
      return a.error();
    return load(id, now);
  });
}

core::Result<ExceptionView> ExceptionService::revoke(std::int64_t id, const std::string& by,
                                                     const std::string& reason, Instant now) {
  if (blank(by))
    return fail(ErrorKind::Invalid, "a revocation needs the name of who revokes", where(id),
                "name who revokes (--by)");
  return inTransaction(store_, [&]() -> core::Result<ExceptionView> {
    auto loaded = load(id, now);
    if (!loaded.ok()) return loaded.error();
    const ExceptionView& v = *loaded;
    if (v.state == ExceptionState::Revoked) return loaded;
    if (v.state == ExceptionState::Rejected || v.state == ExceptionState::Ended)
      return fail(ErrorKind::Conflict,
                  "exception #" + std::to_string(id) + " is " + toString(v.state) +
                      " already; there is nothing to revoke",
                  where(id));
    if (auto r = store_.revokeException(id, by, now, reason); !r.ok()) return r.error();
    if (auto a = audit(by, "exception.revoke", id,
                       {{"exception_id", id}, {"reason", reason},
                        {"was", toString(v.state)}},
                       now);
        !a.ok())
      return a.error();
    return load(id, now);
  });
}

core::Result<SweepResult> ExceptionService::sweep(Instant now) {
  auto rows = store_.exceptions();
  if (!rows.ok()) return rows.error();
  SweepResult out;
  for (const auto& row : *rows) {
    if (row.end_recorded_at || row.rejected_at || now < row.ends_at) continue;
    if (row.revoked_at && *row.revoked_at < row.ends_at) continue;
    auto written = inTransaction(store_, [&]() -> core::Result<bool> {
      auto marked = store_.markExceptionEndRecorded(row.id, now);
      if (!marked.ok() || !*marked) return marked;  // another process recorded it meanwhile
      auto v = viewOf(row, row.ends_at - core::Seconds{1});
      if (!v.ok()) return v.error();
      const bool was_approved = v->missing_roles.empty() && v->track_known;
      auto a = audit("certgate", "exception.end", row.id,
                     {{"exception_id", row.id},
                      {"person", row.person_key},
                      {"track", row.track},
                      {"ended_at", core::formatIso(row.ends_at)},
                      {"approved", was_approved}},
                     now);
      if (!a.ok()) return a.error();
      return true;
    });
    if (!written.ok()) return written.error();
    if (*written) out.ended.push_back(row.id);
  }
  return out;
}

json toJson(const ExceptionView& v) {
  const store::ExceptionRow& x = v.row;
  json approvals = json::array();
  for (const auto& a : x.approvals)
    approvals.push_back({{"approver", a.approver},
                         {"role", a.role},
                         {"at", core::formatIso(a.at)},
                         {"comment", a.comment}});
  auto justification = json::parse(x.justification_json, nullptr, false);
  if (!justification.is_object()) justification = json::object();
  auto rejected = optionalDecision(x.rejected_at, x.rejected_by, x.rejected_reason);
  auto revoked = optionalDecision(x.revoked_at, x.revoked_by, x.revoked_reason);
  return json{{"id", x.id},
              {"person", v.person},
              {"track", x.track},
              {"track_known", v.track_known},
              {"requester", x.requester},
              {"requested_at", core::formatIso(x.requested_at)},
              {"starts_at", core::formatIso(x.starts_at)},
              {"ends_at", core::formatIso(x.ends_at)},
              {"state", toString(v.state)},
              {"active_from", v.active_from ? json(core::formatIso(*v.active_from)) : json(nullptr)},
              {"access_ends", core::formatIso(v.access_ends)},
              {"required_roles", v.required_roles},
              {"missing_roles", v.missing_roles},
              {"justification", justification},
              {"approvals", approvals},
              {"rejected", rejected ? *rejected : json(nullptr)},
              {"revoked", revoked ? *revoked : json(nullptr)}};
}

}  // namespace certgate::engine
