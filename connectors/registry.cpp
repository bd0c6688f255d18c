#include "connectors/registry.hpp"

#include "connectors/lms/csv/csv_source.hpp"

namespace certgate::connectors {

std::vector<ConnectorInfo> all() { return {{&csv::spec(), ConnectorRole::LmsSource}}; }

const ports::ConfigSpec* lmsSpec(const std::string& kind) {
  for (const auto& c : all())
    if (c.role == ConnectorRole::LmsSource && c.spec->kind == kind) return c.spec;
  return nullptr;
}

core::Result<std::unique_ptr<ports::LmsSource>> makeLmsSource(const std::string& kind,
                                                              const std::string& name,
                                                              const ports::Options& options,
                                                              const std::string& base_dir) {
  if (kind == "csv") return csv::makeSource(name, options, base_dir);
  std::string known;
  for (const auto& c : all()) {
    if (!known.empty()) known += ", ";
    known += c.spec->kind;
  }
  return core::makeError(core::ErrorKind::Invalid, "unknown source kind '" + kind + "'", name,
                         "known kinds: " + known);
}

}  // namespace certgate::connectors
