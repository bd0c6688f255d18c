#pragma once
// What every subcommand starts from: the streams and clock (Io), the configuration and the
// opened store. Shared by the command files of src/cli.

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "connectors/registry.hpp"
#include "core/result.hpp"
#include "ports/clock.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::cli::detail {

struct Io {
  std::ostream& out;
  std::ostream& err;
  const ports::Clock& clock;
  std::optional<core::Instant> now_override;
  core::Instant now() const { return now_override.value_or(clock.now()); }
};

inline std::string defaultConfigPath() {
  if (const char* env = std::getenv("CERTGATE_CONFIG"); env && *env) return env;
  return "/etc/certgate/certgate.yaml";
}

inline void printErrors(Io& io, const std::vector<core::Error>& errors, const core::Error& first) {
  if (errors.empty()) {
    io.err << "error: " << first.describe() << '\n';
    return;
  }
  for (const auto& e : errors) io.err << "error: " << e.describe() << '\n';
  if (errors.size() > 1) io.err << errors.size() << " errors\n";
}

// Set by the daemon around in-process commands (the admin API): loadConfig hands out this
// configuration instead of reading the file, so that the API answers from the configuration
// the daemon runs with — a broken file on disk, refused at SIGHUP, does not break the API.
inline thread_local const settings::Settings* t_running_settings = nullptr;

// Loads the configuration or prints every error and returns nullopt.
inline std::optional<settings::Settings> loadConfig(Io& io, const std::string& path) {
  if (t_running_settings) return *t_running_settings;
  std::vector<core::Error> errors;
  settings::SpecLookups specs;
  specs.sources = &connectors::lmsSpec;
  specs.directories = &connectors::directorySpec;
  specs.gateways = &connectors::gatewaySpec;
  auto s = settings::loadSettings(path, specs, &errors);
  if (!s.ok()) {
    printErrors(io, errors, s.error());
    return std::nullopt;
  }
  for (const auto& w : s->warnings) io.err << "warning: " << w << '\n';
  return std::move(s).value();
}

inline std::unique_ptr<store::Store> openStore(Io& io, const settings::Settings& s, bool read_only,
                                        int& code) {
  store::OpenOptions opts;
  opts.read_only = read_only;
  auto st = store::Store::open(s.store_path, opts);
  if (!st.ok()) {
    io.err << "error: " << st.error().describe() << '\n';
    code = st.error().kind == core::ErrorKind::NotFound ? kStoreUnavailable : kStoreUnavailable;
    return nullptr;
  }
  return std::move(st).value();
}

inline int failWith(Io& io, const core::Error& e, int code) {
  io.err << "error: " << e.describe() << '\n';
  return code;
}

// The configuration and the store every data command starts from.
struct Opened {
  settings::Settings settings;
  std::unique_ptr<store::Store> store;
};

// Loads the configuration and opens the store; on failure prints why and sets `code`.
inline std::optional<Opened> openAll(Io& io, const std::string& config, bool read_only, int& code) {
  auto s = loadConfig(io, config);
  if (!s) {
    code = kConfigInvalid;
    return std::nullopt;
  }
  auto st = openStore(io, *s, read_only, code);
  if (!st) return std::nullopt;
  return Opened{std::move(*s), std::move(st)};
}

}  // namespace certgate::cli::detail
