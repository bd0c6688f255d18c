#pragma once
// Turning verdicts and evidence into words, tables, JSON and CSV. No I/O beyond the stream given.

#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "settings/settings.hpp"
#include "store/store.hpp"

namespace certgate::cli {

// An aligned text table. Columns are sized to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;
  std::size_t size() const { return rows_.size(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

std::string csvField(const std::string& s);

// "in 12 days", "3 days ago", "now".
std::string relative(core::Instant t, core::Instant now);

struct RenderContext {
  const settings::LoadedPolicy& policy;
  core::Instant now;
  std::span<const store::FactRow> facts;       // the person's facts (for evidence references)
  const std::vector<store::ExceptionRow>* exceptions = nullptr;
};

const core::Track* findTrack(const settings::LoadedPolicy& policy, core::Sym id);

// One line describing a finding, e.g. "quiz passed with 85% (minimum 80%) on 2026-03-01 [lms:export.csv:4]".
std::string describe(const core::Evidence& e, const core::Track& track, const RenderContext& ctx);

// What the person has to do next, in one sentence.
std::string nextStep(const core::Verdict& v, const core::Track& track, const RenderContext& ctx);

// The verdict as JSON (stable field names, ISO 8601 instants).
nlohmann::json verdictJson(const core::Verdict& v, const RenderContext& ctx, bool with_evidence);

nlohmann::json personJson(const store::PersonRow& p);

}  // namespace certgate::cli
