#pragma once
// Loads and validates certgate's configuration into typed values.
//
// Inputs: the main certgate.yaml; track files in certgate's own schema; policy documents in the
// PeopleOps shape (see config/README.md and ../shared examples); mapping files in mappings/.
// Every error carries file:line:column, names the key, lists the valid keys for an unknown
// one and says what to do. Secrets are only ever *references* (a file path or a systemd
// credential name); their values are never read here and never logged.
// Pure with respect to the network; reads only the files named.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "core/symbols.hpp"
#include "ports/config_spec.hpp"

namespace certgate::settings {

// Where a value was read from.
struct Location {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string str() const;  // "file:line:column"
};

// A reference to a secret: exactly one of `file` or `credential` is set.
struct SecretRef {
  std::string file;        // absolute or relative to the config file's directory
  std::string credential;  // systemd credential name, read from $CREDENTIALS_DIRECTORY
  bool empty() const { return file.empty() && credential.empty(); }
  std::string describe() const;  // "file /etc/certgate/x" / "credential x": never the value
};

struct SourceSettings {
  std::string name;
  std::string kind;           // "csv", ...
  bool enabled = true;
  bool trust_lms_expiry = false;
  // Record-count collapse guard: a fetch that yields fewer than this share of the previous
  // complete fetch's records is treated as incomplete. 0 disables.
  double min_record_ratio = 0.5;
  // The daemon fetches this source every `interval` (0: at every full reconcile, see schedule).
  core::Seconds interval{0};
  // Pushes from the learning system to POST /hooks/lms/<name> are accepted when set: the
  // Standard Webhooks signing secret (base64, optionally "whsec_").
  SecretRef push_secret;
  // How pushes are authenticated: Standard Webhooks signatures with push_secret, or a body that
  // is itself a JWT signed RS256 with a key of the JWK Set in the file push_jwks (Canvas Live
  // Events with "Sign Payload"); push_jwt_issuer, when set, must equal the JWT's `iss`.
  enum class PushAuth { StandardWebhooks, Jwt } push_auth = PushAuth::StandardWebhooks;
  std::string push_jwks;  // absolute path
  std::string push_jwt_issuer;
  bool acceptsPushes() const {
    return push_auth == PushAuth::Jwt ? !push_jwks.empty() : !push_secret.empty();
  }
  ports::Options options;     // connector-specific keys, validated against the connector spec
  Location where;
};

// How a person is found in a directory: the person's identifier, looked up in a directory
// attribute (user_name, email, employee_id, external_id, or the backend's own attribute name).
struct MatchRule {
  enum class Person { EmployeeId, Email } person = Person::Email;
  std::string attribute;
  Location where;
};

// An identity provider whose groups certgate reconciles (connectors/directory).
struct DirectorySettings {
  std::string name;
  std::string kind;  // "scim", "okta", "graph"
  bool enabled = true;
  bool is_default = false;  // grants that name no directory use this one
  // Other names grants may use for it, e.g. a policy document's identityProvider.type (azuread).
  std::vector<std::string> aliases;
  // Tried in order until one finds exactly one user.
  std::vector<MatchRule> match{{MatchRule::Person::EmployeeId, "employee_id", {}},
                               {MatchRule::Person::Email, "email", {}}};
  // Read the directory's in-scope users (the connector's roster_filter) as a roster on every
  // sync, so that people who never started a track are known.
  bool roster = false;
  bool population_from_directory = false;  // take each person's population from that roster
  double max_failure_ratio = 0.5;  // failed/attempted member changes that quarantine the connector
  ports::Options options;          // connector-specific keys
  Location where;
};

// A directory group a track grants.
struct GroupGrant {
  std::string directory;  // directory name ("" = the default directory)
  std::string group;      // id or display name
  enum class Mode { Additive, Exclusive } mode = Mode::Additive;
  Location where;
};

// How a newly issued token's secret reaches its person.
enum class Delivery {
  None,     // the gateway delivers it (or the person fetches it there): certgate drops it
  Webhook,  // POSTed, signed, to the configured endpoint (e.g. a secrets vault)
  Email,    // a single-use pickup link by email
};
const char* toString(Delivery d);

// A gateway token a track grants (mappings/ grants[].tokens, or a track file's grants.tokens).
struct TokenGrantSettings {
  std::string gateway;                 // gateway name ("" = the default gateway)
  std::string scope;                   // certgate's name for what the token unlocks
  std::vector<std::string> models;     // LiteLLM models / Kong ACL groups / routes
  std::optional<double> max_budget;
  std::string budget_duration;         // e.g. "30d", passed to the gateway as written
  core::Seconds lifetime{0};           // 0: until the end of access
  core::Seconds rotate_before{7 * 86400};
  core::Seconds overlap{86400};
  Delivery delivery = Delivery::None;
  Location where;
};

struct TrackGrants {
  std::string track;
  std::vector<GroupGrant> groups;
  std::vector<TokenGrantSettings> tokens;
  Location where;
};

// Extra, human-facing information about a track (the rule engine needs none of it).
struct TrackInfo {
  std::string id;
  std::string title;
  std::string origin;  // "track file" / "policy document <policyId>"
  Location where;
};

// A section of a policy document that certgate reads but does not enforce.
struct NotEnforced {
  std::string path;    // "scope.regionsAllowed", "accessGating.conditions[managedDevice]"
  std::string why;     // "data residency is enforced by the gateway/cloud, not certgate"
  Location where;
};

// A part of a policy document that certgate does enforce, and how (the counterpart of
// NotEnforced, so that validate-config can account for every section of the document).
struct EnforcedRule {
  std::string path;  // "accessGating.conditions[requireCertification]"
  std::string how;   // "certgate grants the track's groups only to certified people"
  Location where;
};

struct AlertThreshold {
  std::string name;       // "exception-surge"
  std::string threshold;  // as written: "> 10 exceptions/day"
  double limit = 0;       // parsed number (10)
  std::string per;        // "day" (one of minute, hour, day, week, month)
  std::vector<std::string> notify;
  Location where;
  std::string unit;        // what is counted, as written: "exceptions" ("" when not written)
  bool inclusive = false;  // ">=": alert when count >= limit; ">": when count > limit
};

// A policy document's sloTargets that `certgate report kpi` compares its figures with (certgate
// does not enforce them). Unset when no loaded document names them.
struct SloTargets {
  std::optional<double> p95_hours_cert_to_access;    // accessProvisioning.p95HoursFromCertToAccess
  Location p95_where;
  std::optional<double> completion_pct_within_48h;   // trainingCompletion.targetPctWithin48h
  Location completion_where;
};

struct LoadedPolicy {
  core::SymbolTable symbols;
  core::Policy policy;                 // tracks ready for core::evaluate
  std::vector<TrackInfo> tracks;       // same order as policy.tracks
  std::vector<TrackGrants> grants;     // from mappings/ and policy groupMapping
  std::vector<NotEnforced> not_enforced;
  std::vector<AlertThreshold> alerts;
  std::vector<std::string> policy_ids; // policyId of each loaded document
  std::vector<std::string> scope_populations;  // from policy documents' scope.populations
  std::vector<EnforcedRule> enforced;  // the policy-document sections certgate enforces
  std::vector<std::string> warnings;   // non-fatal findings ("file:line:col: message")
  SloTargets slo;                      // from policy documents' sloTargets
};

// LMS item id -> certgate module / quiz id (per source or for all sources).
struct ItemMapping {
  std::string source;    // "" = every source
  std::string lms_item;
  std::string item;      // module id, or the quiz id of a track
  Location where;
};

struct IdentitySettings {
  std::vector<core::IdentityKey> keys{core::IdentityKey::EmployeeId, core::IdentityKey::Email};
  std::vector<core::IdentityOverride> overrides;       // from mappings/identity.yaml
  std::map<std::string, std::string> populations;      // person key (employee id/email) -> population
  std::string default_population;                      // "" = unknown
  // Optional roster (an HR export). When set, only people on it are known: records of anyone
  // else are quarantined as unmatched. When unset, sources create people.
  std::string roster_path;
  std::map<std::string, std::string> roster_columns;   // employee_id/email/display_name/population -> header
};

// An AI gateway whose API tokens certgate issues and revokes (connectors/gateway).
struct GatewaySettings {
  std::string name;
  std::string kind;  // "litellm", "kong", "rest", "builtin"
  bool enabled = true;
  bool is_default = false;            // token grants that name no gateway use this one
  // Wait this long after a revocation before checking it is enforced; unset: the connector's
  // own cache window (LiteLLM about 60 s, Kong its poll interval).
  std::optional<core::Seconds> verify_after;
  ports::Options options;             // connector-specific keys
  Location where;
};

// Where token secrets go when a grant says delivery: webhook.
struct WebhookDelivery {
  std::string url;                    // https:// (http:// only for loopback)
  SecretRef signing_secret;           // Standard Webhooks: base64 secret, optionally "whsec_"
  core::Seconds timeout{10};
  std::string ca_file;
  Location where;
};

// Where token secrets go when a grant says delivery: email: a single-use pickup link by mail
// (connectors/delivery/email_delivery.hpp), answered by certgate serve.
struct EmailDelivery {
  std::string smtp_url;               // smtps://, or smtp:// with STARTTLS required (plain: loopback)
  std::string from;                   // sender address
  std::string username;               // empty: no SMTP AUTH
  SecretRef password;                 // set together with username
  std::string pickup_base_url;        // public https:// URL of certgate serve, no trailing '/'
  core::Seconds pickup_ttl{86400};
  SecretRef encryption_key;           // base64 of 32 random bytes (AES-256-GCM)
  std::string subject;                // empty: a default naming the gateway and scope
  std::string ca_file;
  core::Seconds timeout{30};
  Location where;
};

struct DeliverySettings {
  std::optional<WebhookDelivery> webhook;
  std::optional<EmailDelivery> email;
};

// Alerts (engine/alerts.hpp): where alerts go (sinks), which go where (routes), how long a
// receiver may be down (retry). Secrets are references, read when the sinks are built.
inline constexpr const char* kAlertKinds[] = {
    "revocation",       "revocation.verified", "revocation.failed", "token.not_enforced",
    "plan.held",        "connector.quarantined", "sync.failed",     "sync.partial",
    "source.incomplete", "exception.requested",  "exception.surge", "reminder",
    "expiring.digest",  "test"};
inline constexpr const char* kAlertSeverities[] = {"info", "warning", "error", "critical"};

struct AlertSinkSettings {
  std::string name;
  std::string kind;             // webhook | slack | teams | pagerduty | email | syslog
  std::string url;              // webhook: the endpoint; pagerduty: the Events API v2 endpoint
  SecretRef url_secret;         // slack, teams: the webhook URL, which carries a token
  SecretRef secret;             // webhook: signing_secret; pagerduty: routing_key; email: password
  double rate_per_minute = 0;   // 0: the kind's default (alerts::defaultRatePerMinute)
  core::Seconds timeout{10};
  std::string ca_file;
  std::string source;           // pagerduty: payload.source (default "certgate")
  // email
  std::string smtp_url;
  std::string from;
  std::vector<std::string> to;
  std::string username;
  // syslog
  std::string address;          // udp://host:port or tcp://host:port
  int facility = 4;             // RFC 5424 facility number (default auth = 4)
  std::string app_name = "certgate";
  std::string hostname;         // "" = this host's name
  Location where;
};

struct AlertRoute {
  std::vector<std::string> events;  // alert kinds or globs ("revocation*", "*")
  std::vector<std::string> sinks;   // sink names
  std::string min_severity = "info";
  Location where;
};

struct AlertsSettings {
  bool configured = false;          // an alerts: section exists
  std::vector<AlertSinkSettings> sinks;
  std::vector<AlertRoute> routes;   // empty: every alert to every sink
  core::Seconds max_age{3 * 86400}; // retry.max_age: then the alert is dead
  core::Seconds retry_base{5};      // retry.base: the first retry's delay
  core::Seconds retry_max{3600};    // retry.max: the longest delay between attempts
  core::Seconds deliver_budget{5};  // how long `certgate sync` spends delivering
};
// Reminders (engine/reminders.hpp): a personal email before a certification expires (at each of
// the track's remindBeforeDays windows) and once more when grace begins, and a digest of who is
// expiring soon for PeopleOps. Personal reminders go to the person's email address through the
// email sink named here; the digest is an alert of kind "expiring.digest", routed like the
// others.
struct RemindersSettings {
  bool configured = false;               // a reminders: section exists
  std::string sink;                      // an alerts.sinks entry of kind email; "" = no personal reminders
  std::vector<std::string> escalate_to;  // copied on the reminder sent when grace begins
  std::string learn_url;                 // where to renew, quoted in the message ("" = none)
  std::string digest_every = "monday";   // off | daily | monday .. sunday (UTC days)
  int digest_horizon_days = 30;          // the digest lists expiries within this many days
  int digest_max_people = 500;           // the digest's document lists at most this many
  Location where;
};

// Who holds which approver role for exceptions (exceptions.approvers in certgate.yaml, inline or
// in a file). A policy's requiredApprovers name the roles; only a holder of a role may approve
// an exception in it. Holders are compared without case and surrounding spaces.
struct ExceptionSettings {
  std::map<std::string, std::vector<std::string>> approvers;  // role -> holders (normalised)
  std::string approvers_file;  // the file they were read from ("" = inline)
  Location where;
};

// How an approver or requester name is compared: trimmed, ASCII lower case.
std::string normaliseApprover(std::string_view name);

struct Limits {
  int max_removals = 25;
  double max_removal_pct = 10.0;
  core::Seconds clock_skew{300};
};

struct Schedule {
  core::Seconds interval{900};
  core::Seconds jitter{60};
  // After SIGTERM the daemon finishes the change in flight; past this it exits anyway (the
  // intent log recovers whatever was cut off). Keep it below the unit's TimeoutStopSec.
  core::Seconds stop_timeout{60};
};

struct HttpSettings {
  std::string listen = "127.0.0.1:9464";
  SecretRef admin_token;
  // The credential protected resources present to POST /oauth2/introspect (certgate serve).
  SecretRef introspection_secret;
  int threads = 8;                     // requests served at once
  std::int64_t max_body_bytes = 65536;  // larger request bodies are refused with 413
};

struct LoggingSettings {
  std::string level = "info";   // trace|debug|info|warn|error
  std::string format = "text";  // text|json
};

struct Settings {
  std::string config_file;   // absolute path of certgate.yaml
  std::string base_dir;      // its directory: relative paths resolve against it
  std::string store_path;
  std::vector<std::string> track_files;
  std::vector<std::string> policy_files;
  std::map<std::string, std::string> group_bindings;  // groupMapping key -> track id
  std::vector<std::string> item_mapping_files;
  std::vector<std::string> grant_mapping_files;
  std::string identity_mapping_file;
  std::vector<SourceSettings> sources;
  std::vector<DirectorySettings> directories;
  std::vector<GatewaySettings> gateways;
  DeliverySettings delivery;
  AlertsSettings alerts;
  RemindersSettings reminders;
  ExceptionSettings exceptions;
  IdentitySettings identity;
  Limits limits;
  Schedule schedule;
  HttpSettings http;
  LoggingSettings logging;
  std::shared_ptr<LoadedPolicy> policy;  // never null after a successful load
  std::vector<ItemMapping> items;
  std::vector<std::string> warnings;     // non-fatal findings, shown by validate-config
};

// Resolves a connector kind to its declared spec (nullptr: unknown kind). Supplied by the
// composition root so settings does not link connectors.
using SpecLookup = const ports::ConfigSpec* (*)(const std::string& kind);

// Loads certgate.yaml and everything it names. All errors found are returned (not just the first).
core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup specs,
                                    std::vector<core::Error>* all_errors = nullptr);

// Same, with the list of connector kinds the composition root knows (used to list the valid
// kinds when a source names an unknown one). The overload above lists the kinds that `specs`
// resolves among certgate's well-known connector names.
core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup specs,
                                    const std::vector<std::string>& known_kinds,
                                    std::vector<core::Error>* all_errors = nullptr);

// Same, also checking `directories` entries against the directory connectors' specs.
core::Result<Settings> loadSettings(const std::string& config_file, SpecLookup source_specs,
                                    SpecLookup directory_specs,
                                    std::vector<core::Error>* all_errors = nullptr);

// The directory a grant names ("" = the default: the one marked default, or the only one).
// nullptr when there is none.
const DirectorySettings* findDirectory(const Settings& s, const std::string& name);

// Which connector specs the loader checks options against (any may be null: not checked).
struct SpecLookups {
  SpecLookup sources = nullptr;
  SpecLookup directories = nullptr;
  SpecLookup gateways = nullptr;
};
core::Result<Settings> loadSettings(const std::string& config_file, const SpecLookups& specs,
                                    std::vector<core::Error>* all_errors = nullptr);

// The gateway a token grant names ("" = the default), or nullptr.
const GatewaySettings* findGateway(const Settings& s, const std::string& name);

// Loads policy documents and track files on their own (validate-config --policy FILE).
core::Result<std::shared_ptr<LoadedPolicy>> loadPolicyFiles(
    const std::vector<std::string>& track_files, const std::vector<std::string>& policy_files,
    const std::map<std::string, std::string>& group_bindings,
    const std::vector<std::string>& grant_mapping_files,
    std::vector<core::Error>* all_errors = nullptr);

// Reads the value of a secret reference (file or $CREDENTIALS_DIRECTORY/name), trimming one
// trailing newline. Errors name the reference, never the value.
core::Result<std::string> readSecret(const SecretRef& ref, const std::string& base_dir);

}  // namespace certgate::settings
