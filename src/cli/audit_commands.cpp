#include "cli/audit_commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/render.hpp"
#include "core/identity.hpp"
#include "engine/evidence.hpp"

namespace certgate::cli::detail {

using nlohmann::json;

std::optional<core::Instant> parseSince(const std::string& text, core::Instant now) {
  if (auto d = core::parseDuration(text)) return now - *d;
  return core::parseIso(text);
}

core::Status writeFileAtomic(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());  // mode 0600
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    return core::makeError(core::ErrorKind::Permanent, what + ": " + reason, path,
                           "check that the directory exists and is writable");
  };
  if (fd < 0) return fail("cannot create a temporary file in " + dir.string());
  auto cleanup = [&](core::Error e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, 0600) != 0) return cleanup(fail("cannot set mode 0600"));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return cleanup(fail("write failed"));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return cleanup(fail("fsync failed"));
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return fail("close failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = fail("rename failed");
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

namespace {

std::optional<store::AuditHead> parseHead(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  store::AuditHead head;
  try {
    std::size_t used = 0;
    head.id = std::stoll(text.substr(0, colon), &used);
    if (used != colon || head.id < 0) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  head.hash = text.substr(colon + 1);
  if (head.hash.size() != 64 ||
      head.hash.find_first_not_of("0123456789abcdef") != std::string::npos)
    return std::nullopt;
  return head;
}

int cmdAuditVerify(Io& io, const std::string& config, const std::string& expect,
                   const std::string& format) {
  std::optional<store::AuditHead> anchor;
  if (!expect.empty()) {
    anchor = parseHead(expect);
    if (!anchor) {
      io.err << "error: --expect-head '" << expect
             << "' is not ID:HASH (an id, a colon and 64 lower-case hex digits, as `certgate "
                "audit verify` prints the head)\n";
      return kUsage;
    }
  }
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto v = opened->store->verifyAudit(anchor);
  if (!v) return failWith(io, v.error(), kFailure);
  if (format == "json") {
    json j = {{"ok", !v->broken},
              {"entries", v->entries},
              {"head", {{"id", v->head.id}, {"hash", v->head.hash}, {"anchor", v->head.str()}}}};
    if (anchor) j["expected_head"] = anchor->str();
    if (v->broken)
      j["broken"] = {{"id", v->broken->id},
                     {"kind", store::toString(v->broken->kind)},
                     {"message", v->broken->message},
                     {"hint", v->broken->hint}};
    io.out << j.dump(2) << '\n';
    return v->broken ? kFailure : kOk;
  }
  if (v->broken) {
    io.err << "error: audit chain broken at entry " << v->broken->id << " ("
           << store::toString(v->broken->kind) << "): " << v->broken->message << '\n'
           << "  " << v->entries << " entries read; the newest is " << v->head.id << '\n'
           << "  what to do: " << v->broken->hint << '\n';
    return kFailure;
  }
  io.out << "ok: " << v->entries << " entries, head " << v->head.id << ' ' << v->head.hash << '\n';
  if (anchor) io.out << "the anchored head " << anchor->str() << " is part of the chain\n";
  io.out << "anchor: keep " << v->head.str()
         << " outside this host and pass it as --expect-head next time\n";
  return kOk;
}

int cmdAuditList(Io& io, const std::string& config, const std::string& since_text,
                 const std::string& action, const std::string& person, std::int64_t limit,
                 const std::string& format) {
  store::AuditFilter filter;
  if (!since_text.empty()) {
    filter.since = parseSince(since_text, io.now());
    if (!filter.since) {
      io.err << "error: --since '" << since_text
             << "' is neither a duration (30d, 12h) nor an ISO 8601 instant\n";
      return kUsage;
    }
  }
  filter.action = action;
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  store::Store& st = *opened->store;
  if (!person.empty()) {
    const std::string email = core::normaliseEmail(person);
    auto found = st.findPerson(email.empty() ? core::normaliseEmployeeId(person) : email);
    if (!found) return failWith(io, found.error(), kFailure);
    if (!*found) {
      io.err << "error: no person matches '" << person << "'\n";
      return kNotFound;
    }
    filter.subject = (*found)->key;
  }
  std::vector<store::AuditRow> rows;
  auto done = st.forEachAudit(filter, [&](const store::AuditRow& a) { rows.push_back(a); });
  if (!done) return failWith(io, done.error(), kFailure);
  if (limit >= 0 && rows.size() > static_cast<std::size_t>(limit))
    rows.erase(rows.begin(), rows.end() - limit);  // the newest `limit`, still oldest first
  if (format == "json") {
    json j = json::array();
    for (const auto& a : rows)
      j.push_back({{"id", a.id},
                   {"at", core::formatIso(a.at)},
                   {"actor", a.actor},
                   {"action", a.action},
                   {"subject", a.subject},
                   {"details", json::parse(a.details_json, nullptr, false)},
                   {"run_id", a.run_id},
                   {"prev_hash", a.prev_hash},
                   {"hash", a.hash}});
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  Table t({"ID", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAILS"});
  for (const auto& a : rows)
    t.add({std::to_string(a.id), core::formatIso(a.at), a.actor, a.action, a.subject,
           a.details_json.size() > 100 ? a.details_json.substr(0, 97) + "..." : a.details_json});
  t.print(io.out);
  return kOk;
}

int cmdExportEvidence(Io& io, const std::string& config, const std::string& since_text,
                      const std::string& format, const std::string& output,
                      const std::string& person) {
  engine::EvidenceOptions options;
  options.now = io.now();
  auto since = parseSince(since_text, options.now);
  if (!since) {
    io.err << "error: --since '" << since_text
           << "' is neither a duration (30d, 12h) nor an ISO 8601 instant\n";
    return kUsage;
  }
  options.since = *since;
  options.person = person;
  options.format = format == "json" ? engine::EvidenceFormat::Json : engine::EvidenceFormat::Csv;
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto exported = engine::exportEvidence(*opened->store, *opened->settings.policy, options);
  if (!exported) {
    return failWith(io, exported.error(),
                    exported.error().kind == core::ErrorKind::NotFound ? kNotFound : kFailure);
  }
  if (auto written = writeFileAtomic(output, exported->text); !written)
    return failWith(io, written.error(), kFailure);
  io.out << "wrote " << output << " (" << format << ", mode 0600): " << exported->persons
         << " persons, " << exported->records << " records since " << core::formatIso(options.since)
         << "; audit head " << exported->head.str() << '\n';
  return kOk;
}

std::string hoursText(const std::optional<double>& h) {
  if (!h) return "-";
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << *h << " h";
  return s.str();
}

int cmdReportKpi(Io& io, const std::string& config, const std::string& since_text,
                 const std::string& format) {
  const core::Instant now = io.now();
  auto since = parseSince(since_text, now);
  if (!since) {
    io.err << "error: --since '" << since_text
           << "' is neither a duration (90d, 12w) nor an ISO 8601 instant\n";
    return kUsage;
  }
  int code = kOk;
  auto opened = openAll(io, config, true, code);
  if (!opened) return code;
  auto r = engine::kpiReport(*opened->store, *opened->settings.policy, *since, now);
  if (!r) return failWith(io, r.error(), kFailure);
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  const bool access_met = r->access_target_p95_hours && r->access_p95_hours &&
                          *r->access_p95_hours <= *r->access_target_p95_hours;
  const bool completion_met = r->completion_target_pct && r->completion_pct &&
                              *r->completion_pct >= *r->completion_target_pct;
  if (format == "json") {
    json weeks = json::array();
    for (const auto& w : r->weeks)
      weeks.push_back({{"week", w.week},
                       {"starts_at", core::formatIso(w.starts_at)},
                       {"requested", w.requested},
                       {"approved", w.approved},
                       {"active", w.active}});
    json j = {
        {"since", core::formatIso(r->since)},
        {"until", core::formatIso(r->now)},
        {"cert_to_access",
         {{"measured", r->access_measured},
          {"waiting", r->access_waiting},
          {"p50_hours", opt(r->access_p50_hours)},
          {"p95_hours", opt(r->access_p95_hours)},
          {"target_p95_hours", opt(r->access_target_p95_hours)},
          {"target_met", r->access_target_p95_hours && r->access_p95_hours ? json(access_met)
                                                                             : json(nullptr)}}},
        {"completion_within_48h",
         {{"assigned", r->assigned},
          {"completed", r->completed_within_48h},
          {"pct", opt(r->completion_pct)},
          {"target_pct", opt(r->completion_target_pct)},
          {"target_met", r->completion_target_pct && r->completion_pct ? json(completion_met)
                                                                        : json(nullptr)}}},
        {"exceptions_per_week", weeks}};
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  io.out << "KPI report " << core::formatIso(r->since) << " to " << core::formatIso(r->now) << "\n\n";
  io.out << "certification to access: p50 " << hoursText(r->access_p50_hours) << ", p95 "
         << hoursText(r->access_p95_hours) << " (" << r->access_measured << " measured, "
         << r->access_waiting << " still without an access event)";
  if (r->access_target_p95_hours)
    io.out << "; target p95 <= " << *r->access_target_p95_hours << " h: "
           << (!r->access_p95_hours ? "no data" : access_met ? "met" : "MISSED");
  io.out << '\n';
  io.out << "completion within 48 h of assignment: ";
  if (r->completion_pct) {
    std::ostringstream pct;
    pct.setf(std::ios::fixed);
    pct.precision(1);
    pct << *r->completion_pct;
    io.out << pct.str() << "% (" << r->completed_within_48h << " of " << r->assigned << ")";
  } else {
    io.out << "- (no assignment older than 48 h in the period)";
  }
  if (r->completion_target_pct)
    io.out << "; target >= " << *r->completion_target_pct << "%: "
           << (!r->completion_pct ? "no data" : completion_met ? "met" : "MISSED");
  io.out << "\n\nexceptions per ISO week:\n";
  Table t({"WEEK", "STARTS", "REQUESTED", "APPROVED", "ACTIVE"});
  for (const auto& w : r->weeks)
    t.add({w.week, core::formatDate(w.starts_at), std::to_string(w.requested),
           std::to_string(w.approved), std::to_string(w.active)});
  t.print(io.out);
  return kOk;
}

}  // namespace

AuditCommands::AuditCommands(CLI::App& app) {
  auto* audit = app.add_subcommand("audit", "the tamper-evident audit log: verify its hash chain, list events");
  audit->require_subcommand(1);
  verify_ = audit->add_subcommand("verify", "recompute the audit hash chain and name the first broken entry");
  verify_->add_option("--expect-head", expect_head_,
                      "ID:HASH printed by an earlier verification: also detects deleted newest entries");
  verify_->add_option("--format", verify_format_, "text or json")->check(CLI::IsMember({"text", "json"}));
  list_ = audit->add_subcommand("list", "audit events, oldest first");
  list_->add_option("--since", list_since_, "from this long ago (30d) or this ISO 8601 instant");
  list_->add_option("--action", list_action_, "only this action (group.add), or a prefix ending in '.' (token.)");
  list_->add_option("--person", list_person_, "only events about this person (key, employee id or email)");
  list_->add_option("--limit", list_limit_, "at most the newest N (-1: all)");
  list_->add_option("--format", list_format_, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* exp = app.add_subcommand("export", "evidence for auditors");
  exp->require_subcommand(1);
  evidence_ = exp->add_subcommand("evidence", "per person: completions, scores and attempts, certification states, exceptions and approvals, actions");
  evidence_->add_option("--since", evidence_since_, "from this long ago (30d) or this ISO 8601 instant");
  evidence_->add_option("--format", evidence_format_, "csv or json")->check(CLI::IsMember({"csv", "json"}));
  evidence_->add_option("--output", evidence_output_, "file to write (mode 0600, replaced atomically)")->required();
  evidence_->add_option("--person", evidence_person_, "one person (key, employee id or email)");

  auto* report = app.add_subcommand("report", "reports");
  report->require_subcommand(1);
  kpi_ = report->add_subcommand("kpi", "certification-to-access time, completion within 48 h, exceptions per week");
  kpi_->add_option("--since", kpi_since_, "from this long ago (90d) or this ISO 8601 instant");
  kpi_->add_option("--format", kpi_format_, "text or json")->check(CLI::IsMember({"text", "json"}));
}

std::optional<int> AuditCommands::run(Io& io, const std::string& config) const {
  if (verify_->parsed()) return cmdAuditVerify(io, config, expect_head_, verify_format_);
  if (list_->parsed())
    return cmdAuditList(io, config, list_since_, list_action_, list_person_, list_limit_, list_format_);
  if (evidence_->parsed())
    return cmdExportEvidence(io, config, evidence_since_, evidence_format_, evidence_output_,
                             evidence_person_);
  if (kpi_->parsed()) return cmdReportKpi(io, config, kpi_since_, kpi_format_);
  return std::nullopt;
}

}  // namespace certgate::cli::detail
