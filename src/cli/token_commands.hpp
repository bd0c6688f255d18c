#pragma once
// Gateway tokens on the command line: building the configured gateways and delivery methods for
// plan/apply/sync, printing token actions, and `certgate tokens list`.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/context.hpp"
#include "connectors/common/redact.hpp"
#include "engine/reconcile.hpp"
#include "engine/token_reconcile.hpp"
#include "ports/gateway.hpp"
#include "ports/secret_delivery.hpp"

namespace certgate::cli::detail {

// The configured, enabled gateways and delivery methods, built (no I/O yet), and the token
// reconciler over them.
struct Gateways {
  std::vector<std::unique_ptr<ports::Gateway>> owned;
  std::vector<engine::GatewayHandle> handles;
  std::vector<std::unique_ptr<ports::SecretDelivery>> deliveries;
  std::unique_ptr<engine::TokenReconciler> reconciler;
};

// nullopt (and `code` set) when a gateway or delivery method cannot be built. With no gateways
// and no token grants, the result has no reconciler.
std::optional<Gateways> buildGateways(Io& io, const settings::Settings& s, store::Store& store,
                                      std::shared_ptr<connectors::http::Redactor> redactor,
                                      int& code);

// Connects each gateway; one that cannot be reached or refuses the credentials sits the run
// out (its tokens are not changed) and is audited. Returns false when any was dropped.
bool connectGateways(Io& io, Gateways& g, store::Store& store, std::int64_t run_id,
                     const settings::Settings& s);

// The test-only crash hook: CERTGATE_TEST_CRASH_AT=<point> makes the process exit with status
// 86 at that step boundary (see engine/token_reconcile.hpp).
std::function<void(const char*)> crashHookFromEnvironment();

void printTokenPlan(Io& io, const engine::TokenPlanResult& t, const core::SymbolTable& symbols);
void printTokenApply(Io& io, const engine::TokenApplyResult& t);
nlohmann::json tokenApplyJson(const engine::TokenApplyResult& t);
void printTokenVerify(Io& io, const engine::TokenVerifyResult& v);

// certgate tokens revoke ALIAS --by WHO --reason TEXT: revoke one live token now.
int cmdTokensRevoke(Io& io, const std::string& config, const std::string& alias,
                    const std::string& by, const std::string& reason, const std::string& format);

int cmdTokensList(Io& io, const std::string& config, bool all, const std::string& person,
                  const std::string& format);

}  // namespace certgate::cli::detail
