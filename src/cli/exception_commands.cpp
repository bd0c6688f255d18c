#include "cli/exception_commands.hpp"

#include <nlohmann/json.hpp>

#include "cli/render.hpp"
#include "engine/exceptions.hpp"

namespace certgate::cli::detail {

namespace {

using nlohmann::json;

// Refusals (bad input, not allowed, wrong state) are usage errors; a missing exception, track
// or person is "not found"; a store that cannot be written is "store unavailable".
int exitFor(const core::Error& e) {
  switch (e.kind) {
    case core::ErrorKind::Invalid:
    case core::ErrorKind::Auth:
    case core::ErrorKind::Conflict: return kUsage;
    case core::ErrorKind::NotFound: return kNotFound;
    case core::ErrorKind::Transient:
    case core::ErrorKind::Corrupt: return kStoreUnavailable;
    default: return kFailure;
  }
}

std::string approvalsText(const engine::ExceptionView& v) {
  std::string out;
  for (const auto& a : v.row.approvals) out += (out.empty() ? "" : ", ") + a.role + ":" + a.approver;
  return out.empty() ? "-" : out;
}

// "active", "pending: TeamLead, Security", ...
std::string stateText(const engine::ExceptionView& v) {
  std::string out = engine::toString(v.state);
  if (v.state == engine::ExceptionState::Pending && !v.missing_roles.empty()) {
    out += " (awaiting";
    for (const auto& r : v.missing_roles) out += " " + r;
    out += ")";
  }
  if (!v.track_known) out += " (track no longer configured)";
  return out;
}

void printView(Io& io, const engine::ExceptionView& v) {
  const auto& x = v.row;
  io.out << "exception #" << x.id << ": " << v.person << " on " << x.track << '\n'
         << "  state:       " << stateText(v) << '\n'
         << "  requested:   " << core::formatIso(x.requested_at) << " by " << x.requester << '\n'
         << "  window:      " << core::formatIso(x.starts_at) << " to " << core::formatIso(x.ends_at)
         << '\n';
  if (v.active_from)
    io.out << "  access:      " << core::formatIso(*v.active_from) << " to "
           << core::formatIso(v.access_ends) << '\n';
  io.out << "  required:   ";
  for (const auto& r : v.required_roles) io.out << ' ' << r;
  io.out << '\n';
  if (!v.missing_roles.empty()) {
    io.out << "  missing:    ";
    for (const auto& r : v.missing_roles) io.out << ' ' << r;
    io.out << '\n';
  }
  for (const auto& a : x.approvals)
    io.out << "  approved:    " << a.role << " by " << a.approver << " at " << core::formatIso(a.at)
           << (a.comment.empty() ? "" : " (" + a.comment + ")") << '\n';
  auto j = json::parse(x.justification_json, nullptr, false);
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      io.out << "  " << it.key() << ": " << (it->is_string() ? it->get<std::string>() : it->dump())
             << '\n';
  if (x.rejected_at)
    io.out << "  rejected:    " << core::formatIso(*x.rejected_at) << " by " << x.rejected_by << ": "
           << x.rejected_reason << '\n';
  if (x.revoked_at)
    io.out << "  revoked:     " << core::formatIso(*x.revoked_at) << " by " << x.revoked_by
           << (x.revoked_reason.empty() ? "" : ": " + x.revoked_reason) << '\n';
}

// Loads the configuration and opens the store, then runs `fn` with the service.
template <typename Fn>
int withService(Io& io, const std::string& config, bool read_only, Fn&& fn) {
  int code = kOk;
  auto opened = openAll(io, config, read_only, code);
  if (!opened) return code;
  engine::ExceptionService service(*opened->store, opened->settings);
  return fn(service);
}

int printed(Io& io, const core::Result<engine::ExceptionView>& v, const std::string& format,
            const std::string& line) {
  if (!v.ok()) return failWith(io, v.error(), exitFor(v.error()));
  if (format == "json")
    io.out << engine::toJson(*v).dump(2) << '\n';
  else
    io.out << line << '\n';
  return kOk;
}

}  // namespace

int cmdExceptionRequest(Io& io, const std::string& config, const ExceptionRequestArgs& r,
                        const std::string& format) {
  engine::ExceptionRequest req;
  req.person = r.person;
  req.track = r.track;
  req.requester = r.requester;
  req.days = r.days;
  if (!r.start.empty()) {
    req.starts_at = core::parseIso(r.start);
    if (!req.starts_at) {
      io.err << "error: --start '" << r.start << "' is not an ISO 8601 instant\n";
      return kUsage;
    }
  }
  if (!r.end.empty()) {
    req.ends_at = core::parseIso(r.end);
    if (!req.ends_at) {
      io.err << "error: --end '" << r.end << "' is not an ISO 8601 instant\n";
      return kUsage;
    }
  }
  for (const auto& f : r.fields) {
    const auto eq = f.find('=');
    if (eq == std::string::npos || eq == 0) {
      io.err << "error: --field '" << f << "' must be NAME=VALUE\n";
      return kUsage;
    }
    req.justification[f.substr(0, eq)] = f.substr(eq + 1);
  }
  return withService(io, config, false, [&](engine::ExceptionService& service) -> int {
    auto v = service.request(req, io.now());
    std::string line;
    if (v.ok()) {
      line = "exception #" + std::to_string(v->row.id) + " requested for " + v->person + " on " +
             req.track + " from " + core::formatIso(v->row.starts_at) + " to " +
             core::formatIso(v->row.ends_at) + "; it needs approval by:";
      for (const auto& role : v->required_roles) line += " " + role;
      line += " (each a different person, not the requester)";
    }
    return printed(io, v, format, line);
  });
}

int cmdExceptionApprove(Io& io, const std::string& config, std::int64_t id,
                        const std::string& approver, const std::string& role,
                        const std::string& comment, const std::string& format) {
  return withService(io, config, false, [&](engine::ExceptionService& service) -> int {
    auto r = service.approve(id, approver, role, io.now(), comment);
    if (!r.ok()) return failWith(io, r.error(), exitFor(r.error()));
    if (format == "json") {
      io.out << engine::toJson(r->view).dump(2) << '\n';
      return kOk;
    }
    const auto& v = r->view;
    if (!r->recorded)
      io.out << "exception #" << id << " is " << stateText(v) << "; nothing to record\n";
    else
      io.out << "exception #" << id << " approved by " << approver << " as " << role << " (audited)\n";
    if (r->became_active)
      io.out << "exception #" << id << " is approved: access for " << v.person << " on "
             << v.row.track << " from " << core::formatIso(*v.active_from) << " to "
             << core::formatIso(v.access_ends) << '\n';
    else if (!v.missing_roles.empty()) {
      io.out << "still needed:";
      for (const auto& m : v.missing_roles) io.out << ' ' << m;
      io.out << '\n';
    }
    return kOk;
  });
}

int cmdExceptionReject(Io& io, const std::string& config, std::int64_t id, const std::string& by,
                       const std::string& reason, const std::string& format) {
  return withService(io, config, false, [&](engine::ExceptionService& service) -> int {
    auto v = service.reject(id, by, reason, io.now());
    return printed(io, v, format,
                   v.ok() ? "exception #" + std::to_string(id) + " rejected by " +
                                v->row.rejected_by + ": " + v->row.rejected_reason + " (audited)"
                          : "");
  });
}

int cmdExceptionRevoke(Io& io, const std::string& config, std::int64_t id, const std::string& by,
                       const std::string& reason, const std::string& format) {
  return withService(io, config, false, [&](engine::ExceptionService& service) -> int {
    auto v = service.revoke(id, by, reason, io.now());
    return printed(io, v, format,
                   v.ok() ? "exception #" + std::to_string(id) + " revoked by " +
                                v->row.revoked_by + " (audited)"
                          : "");
  });
}

int cmdExceptionList(Io& io, const std::string& config, const std::string& format) {
  return withService(io, config, true, [&](engine::ExceptionService& service) -> int {
    auto all = service.list(io.now());
    if (!all.ok()) return failWith(io, all.error(), exitFor(all.error()));
    if (format == "json") {
      json j = json::array();
      for (const auto& v : *all) j.push_back(engine::toJson(v));
      io.out << j.dump(2) << '\n';
      return kOk;
    }
    Table t({"ID", "PERSON", "TRACK", "FROM", "TO", "REQUESTER", "APPROVALS", "STATE"});
    for (const auto& v : *all)
      t.add({std::to_string(v.row.id), v.person, v.row.track, core::formatIso(v.row.starts_at),
             core::formatIso(v.row.ends_at), v.row.requester, approvalsText(v), stateText(v)});
    t.print(io.out);
    return kOk;
  });
}

int cmdExceptionShow(Io& io, const std::string& config, std::int64_t id, const std::string& format) {
  return withService(io, config, true, [&](engine::ExceptionService& service) -> int {
    auto v = service.get(id, io.now());
    if (!v.ok()) return failWith(io, v.error(), exitFor(v.error()));
    if (format == "json")
      io.out << engine::toJson(*v).dump(2) << '\n';
    else
      printView(io, *v);
    return kOk;
  });
}

}  // namespace certgate::cli::detail
