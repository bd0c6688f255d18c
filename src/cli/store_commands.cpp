#include "cli/store_commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/run_lock.hpp"

namespace certgate::cli::detail {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json infoJson(const store::BackupInfo& b) {
  return {{"path", b.path},
          {"bytes", b.bytes},
          {"schema_version", b.schema_version},
          {"audit_head", b.audit_head.str()}};
}

int cmdBackup(Io& io, const std::string& config, const std::string& output,
              const std::string& format) {
  auto settings = loadConfig(io, config);
  if (!settings) return kConfigInvalid;
  // Its own connection: a backup never migrates the live store.
  auto made = store::Store::backupFile(settings->store_path, output);
  if (!made)
    return failWith(io, made.error(),
                    made.error().kind == core::ErrorKind::Conflict   ? kUsage
                    : made.error().kind == core::ErrorKind::NotFound ? kStoreUnavailable
                                                                      : kFailure);
  if (format == "json") {
    json j = infoJson(*made);
    j["store"] = settings->store_path;
    j["ok"] = true;
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  io.out << "backup written: " << made->path << " (" << made->bytes << " bytes, schema "
         << made->schema_version << ", integrity_check ok, mode 0600)\n"
         << "audit head " << made->audit_head.str() << '\n'
         << "keep the audit head with the backup: after a restore, `certgate audit verify "
            "--expect-head "
         << made->audit_head.str() << "` proves the restored log is the one backed up\n";
  return kOk;
}

// Copies `from` to `to` (created 0600, must not exist) and fsyncs it.
core::Status copyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::remove(to, ec);
  {
    const int fd = ::open(to.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
      return core::makeError(core::ErrorKind::Permanent,
                             "cannot create " + to + ": " + std::strerror(errno), to,
                             "check that certgate may write the store's directory");
    ::close(fd);
  }
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return core::makeError(core::ErrorKind::Permanent, "copying " + from + ": " + ec.message(), to);
  const int fd = ::open(to.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) return core::makeError(core::ErrorKind::Permanent, "fsync failed", to);
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace,
                  ec);
  return {};
}

std::string stamp(core::Instant now) {
  std::string s = core::formatIso(now);  // 2026-11-25T12:00:00Z
  std::erase(s, ':');
  std::erase(s, '-');
  return s;
}

int cmdRestore(Io& io, const std::string& config, const std::string& from, bool force,
               const std::string& format) {
  auto s = loadConfig(io, config);
  if (!s) return kConfigInvalid;
  const std::string& live = s->store_path;
  // Nobody may be using the store: the daemon holds its lock for its whole life, a sync or a
  // timer run holds the run lock. Both are held until the restore is done.
  auto daemon = engine::RunLock::acquire(engine::daemonLockPath(live), "certgate restore",
                                         std::chrono::milliseconds{0});
  if (!daemon) {
    io.err << "error: the daemon is running on this store (" << daemon.error().message
           << ")\n  what to do: systemctl stop certgate.service (and certgate-sync.timer), then "
              "run the restore again\n";
    return kFailure;
  }
  auto run = engine::RunLock::acquire(engine::runLockPath(live), "certgate restore",
                                      std::chrono::milliseconds{0});
  if (!run) {
    io.err << "error: a sync is running on this store (" << run.error().message
           << ")\n  what to do: wait for it or stop certgate-sync.timer, then run the restore "
              "again\n";
    return kFailure;
  }

  // 1. The backup itself: intact, certgate's, not from a newer certgate.
  auto info = store::Store::inspectCopy(from);
  if (!info) return failWith(io, info.error(), kFailure);
  if (info->schema_version > store::Store::latestSchemaVersion()) {
    io.err << "error: " << from << " was written by a newer certgate (schema "
           << info->schema_version << ", this binary knows " << store::Store::latestSchemaVersion()
           << ")\n  what to do: restore it with that certgate version or newer\n";
    return kFailure;
  }

  // 2. A working copy beside the store, opened as certgate opens its store: older backups
  //    are migrated forward, and the audit chain is verified before anything is replaced.
  const std::string staged = live + ".restoring";
  // Whatever refuses or fails from here on leaves no staged file behind.
  const auto removeStaged = [&staged] {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(staged + suffix, ec);
  };
  removeStaged();
  if (auto copied = copyFile(from, staged); !copied) {
    removeStaged();
    return failWith(io, copied.error(), kFailure);
  }
  store::AuditVerification verified;
  {
    auto opened = store::Store::open(staged);
    if (!opened) {
      removeStaged();
      return failWith(io, opened.error(), kFailure);
    }
    // Fails the restore after closing the staged store (so its files can go).
    auto abandon = [&](int code) {
      opened->reset();
      removeStaged();
      return code;
    };
    auto v = (*opened)->verifyAudit(info->audit_head.id > 0 ? std::optional<store::AuditHead>(info->audit_head)
                                                               : std::nullopt);
    if (!v) {
      io.err << "error: " << v.error().describe() << '\n';
      return abandon(kFailure);
    }
    verified = *v;
    if (verified.broken && !force) {
      io.err << "error: the audit chain in " << from << " is broken at entry "
             << verified.broken->id << ": " << verified.broken->message
             << "\n  what to do: restore an older backup whose chain verifies; --force restores "
                "this one anyway and records that in the audit log\n";
      return abandon(kFailure);
    }
    store::AuditRow a;
    a.at = io.now();
    a.actor = "certgate";
    a.action = "store.restore";
    a.subject = live;
    a.details_json = json{{"from", from},
                          {"backup_audit_head", info->audit_head.str()},
                          {"backup_schema_version", info->schema_version},
                          {"audit_chain_ok", !verified.broken},
                          {"forced", force}}
                         .dump();
    if (auto appended = (*opened)->appendAudit(a); !appended) {
      io.err << "error: " << appended.error().describe() << '\n';
      return abandon(kFailure);
    }
  }  // closed: its WAL is checkpointed into the file

  // 3. The live file (if any) moves aside, the staged copy takes its name.
  std::string aside;
  std::error_code ec;
  if (fs::exists(live, ec)) {
    aside = live + ".before-restore-" + stamp(io.now());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      if (!fs::exists(live + suffix, ec)) continue;
      fs::rename(live + suffix, aside + suffix, ec);
      if (ec)
        return failWith(io,
                        core::makeError(core::ErrorKind::Permanent,
                                        "cannot move " + live + suffix + " aside: " + ec.message(),
                                        live),
                        kFailure);
    }
  }
  fs::rename(staged, live, ec);
  if (ec)
    return failWith(io,
                    core::makeError(core::ErrorKind::Permanent,
                                    "cannot put the restored file in place: " + ec.message(), live,
                                    "the previous file is at " + aside + "; move it back by hand"),
                    kFailure);
  const std::string dir = fs::path(live).parent_path().string();
  if (const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }

  if (format == "json") {
    json j = infoJson(*info);
    j["ok"] = true;
    j["store"] = live;
    j["previous"] = aside.empty() ? json(nullptr) : json(aside);
    j["audit_chain_ok"] = !verified.broken;
    io.out << j.dump(2) << '\n';
    return kOk;
  }
  io.out << "restored " << from << " to " << live << " (schema " << info->schema_version
         << ", audit head " << info->audit_head.str()
         << (verified.broken ? ", audit chain BROKEN: restored with --force" : ", audit chain ok")
         << ")\n";
  if (!aside.empty()) io.out << "the previous store is at " << aside << '\n';
  io.out << "next: `certgate plan` to review what the next sync would change, then start "
            "certgate; sources are fetched again from the backup's cursors\n";
  return kOk;
}

}  // namespace

StoreCommands::StoreCommands(CLI::App& app) {
  backup_ = app.add_subcommand(
      "backup", "an online copy of the state store (consistent while certgate runs, verified, mode 0600)");
  backup_->add_option("--output", backup_output_, "the file to write (never overwritten)")->required();
  backup_->add_option("--format", backup_format_, "text or json")->check(CLI::IsMember({"text", "json"}));
  restore_ = app.add_subcommand(
      "restore", "replace the state store with a backup (certgate must be stopped)");
  restore_->add_option("--from", restore_from_, "a file written by certgate backup")->required();
  restore_->add_flag("--force", restore_force_, "restore even if the backup's audit chain is broken (recorded)");
  restore_->add_option("--format", restore_format_, "text or json")->check(CLI::IsMember({"text", "json"}));
}

std::optional<int> StoreCommands::run(Io& io, const std::string& config) const {
  if (backup_->parsed()) return cmdBackup(io, config, backup_output_, backup_format_);
  if (restore_->parsed()) return cmdRestore(io, config, restore_from_, restore_force_, restore_format_);
  return std::nullopt;
}

}  // namespace certgate::cli::detail
