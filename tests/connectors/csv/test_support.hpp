#pragma once
// Helpers for the csv connector tests: a recording RecordSink, an Options builder and a
// self-removing temporary directory.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ports/config_spec.hpp"
#include "ports/lms_source.hpp"

namespace certgate::testing {

inline std::string fixturesDir() {
  return std::string(CERTGATE_SOURCE_DIR) + "/tests/fixtures/csv";
}

// Records every call; reports the unit keys in `processed` as already processed.
class RecordingSink final : public ports::RecordSink {
 public:
  struct Ended {
    ports::UnitInfo unit;
    bool complete = false;
    std::string problem;
  };

  std::set<std::string> processed;
  std::vector<ports::UnitInfo> asked;
  std::vector<ports::UnitInfo> begun;
  std::vector<ports::SourceRecord> records;
  std::vector<ports::QuarantinedRecord> quarantined;
  std::vector<Ended> ended;
  int open_units = 0;
  int protocol_errors = 0;  // record/quarantine outside a unit, unbalanced begin/end

  bool alreadyProcessed(const ports::UnitInfo& unit) override {
    asked.push_back(unit);
    return processed.count(unit.key) > 0;
  }
  void beginUnit(const ports::UnitInfo& unit) override {
    if (open_units != 0) ++protocol_errors;
    ++open_units;
    begun.push_back(unit);
  }
  void record(ports::SourceRecord&& r) override {
    if (open_units != 1) ++protocol_errors;
    records.push_back(std::move(r));
  }
  void quarantine(ports::QuarantinedRecord&& q) override {
    if (open_units != 1) ++protocol_errors;
    quarantined.push_back(std::move(q));
  }
  void endUnit(const ports::UnitInfo& unit, bool complete, const std::string& problem) override {
    if (open_units != 1 || begun.empty() || begun.back().key != unit.key) ++protocol_errors;
    --open_units;
    ended.push_back({unit, complete, problem});
  }

  const ports::QuarantinedRecord* quarantinedAt(const std::string& location) const {
    for (const auto& q : quarantined)
      if (q.location == location) return &q;
    return nullptr;
  }
  const ports::SourceRecord* recordAt(const std::string& location) const {
    for (const auto& r : records)
      if (r.location == location) return &r;
    return nullptr;
  }
};

class OptionsBuilder {
 public:
  OptionsBuilder() { options_.where = "certgate.yaml:10:5"; }

  OptionsBuilder& set(const std::string& key, const std::string& value) {
    ports::OptionValue v;
    v.shape = ports::OptionValue::Shape::Scalar;
    v.scalar = value;
    v.where = "certgate.yaml:" + key;
    options_.values.emplace_back(key, std::move(v));
    return *this;
  }
  OptionsBuilder& map(const std::string& key,
                      std::vector<std::pair<std::string, std::string>> entries) {
    ports::OptionValue v;
    v.shape = ports::OptionValue::Shape::Map;
    v.map = std::move(entries);
    v.where = "certgate.yaml:" + key;
    options_.values.emplace_back(key, std::move(v));
    return *this;
  }
  ports::Options build() const { return options_; }

 private:
  ports::Options options_;
};

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "certgate-csv-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream out(p, std::ios::binary);
    out << content;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace certgate::testing
