#pragma once
// Internal to the settings module: builds a LoadedPolicy from track files, policy documents
// and grant mapping files, reporting every problem to a Diagnostics.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "settings/settings.hpp"
#include "settings/yaml_support.hpp"

namespace certgate::settings::detail {

// A file to load and where it was named (Location{} when not named in a file).
struct FileRef {
  std::string path;  // absolute or as given
  Location named_at;
};

struct GroupBinding {
  std::string key;    // groupMapping key
  std::string track;  // track id
  Location where;
};

struct PolicyInputs {
  std::vector<FileRef> track_files;
  std::vector<FileRef> policy_files;
  std::vector<GroupBinding> bindings;
  std::vector<FileRef> grant_files;
};

// What mapping files need to know about the loaded policy.
struct PolicyIndex {
  bool has_catalogue = false;
  std::set<std::string> catalogue;                   // module ids of all `modules:` catalogues
  std::set<std::string> track_modules;               // module ids referenced by tracks
  std::map<std::string, std::string> quiz_of_track;  // track id -> quiz id (tracks with a quiz)
  std::vector<std::string> track_ids;                // in policy order
};

struct PolicyBuild {
  std::shared_ptr<LoadedPolicy> loaded;  // never null
  PolicyIndex index;
};

PolicyBuild buildPolicy(const PolicyInputs& inputs, Diagnostics& diag);

// Runs core::validatePolicy and reports its error, located at the track it names when it
// names one. Only meaningful when the policy loaded without errors.
void validateBuiltPolicy(const LoadedPolicy& loaded, Diagnostics& diag);

// Whether a policy-document condition rule only checks the person's certification for the
// track (the one thing certgate enforces), e.g.
// "user.certifications.contains(trackId) && user.certifications[trackId].status == 'passed'".
bool ruleOnlyChecksCertification(std::string_view rule);

// Splits "certifiedUserGroup" / "GENAI_USER-PARTNER" into lower-case words.
std::vector<std::string> splitWords(std::string_view text);

// Parses "> 10 exceptions/day" into `out` (limit, per, unit, inclusive); false when it is not
// of the form COMPARATOR NUMBER [UNIT] (/|per) PERIOD.
bool parseThreshold(std::string_view text, AlertThreshold& out);

}  // namespace certgate::settings::detail
