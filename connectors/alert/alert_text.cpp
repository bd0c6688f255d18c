#include "connectors/alert/alert_text.hpp"

#include <nlohmann/json.hpp>

namespace certgate::connectors::alert {

namespace {

using nlohmann::json;

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// "a, b=c" from the non-empty members named, in order.
std::string join(const json& j, std::initializer_list<std::pair<const char*, const char*>> parts) {
  std::string out;
  for (const auto& [key, label] : parts) {
    const std::string v = text(j, key);
    if (v.empty()) continue;
    if (!out.empty()) out += ", ";
    out += label[0] ? std::string(label) + " " + v : v;
  }
  return out;
}

}  // namespace

std::vector<Fact> alertFacts(const ports::Alert& alert) {
  std::vector<Fact> out;
  const json doc = json::parse(alert.document_json, nullptr, false);
  const json empty = json::object();
  const json& d = doc.is_object() ? doc : empty;
  out.emplace_back("Severity", alert.severity);
  out.emplace_back("Kind", alert.kind);
  if (auto p = d.find("person"); p != d.end() && p->is_object()) {
    std::string who = text(*p, "key");
    if (const auto name = text(*p, "name"); !name.empty()) who += " (" + name + ")";
    if (const auto email = text(*p, "email"); !email.empty() && email != text(*p, "key"))
      who += " <" + email + ">";
    out.emplace_back("Person", who);
  }
  if (auto a = d.find("access"); a != d.end() && a->is_object()) {
    if (text(*a, "type") == "group")
      out.emplace_back("Access", "group " + text(*a, "directory") + "/" + text(*a, "group"));
    else
      out.emplace_back("Access", "token " + join(*a, {{"alias", ""},
                                                      {"gateway", "on"},
                                                      {"scope", "scope"},
                                                      {"token_id", "id"}}));
  }
  if (auto c = d.find("connector"); c != d.end() && c->is_object())
    out.emplace_back("Connector", text(*c, "type") + " " + text(*c, "name"));
  if (auto s = d.find("source"); s != d.end() && s->is_object())
    out.emplace_back("Source", join(*s, {{"name", ""}, {"problem", "problem:"}}));
  if (auto r = d.find("rule"); r != d.end() && r->is_object()) {
    const std::string rule = join(*r, {{"track", "track"},
                                       {"reason", "reason"},
                                       {"cause", "cause"},
                                       {"state", "state"},
                                       {"why", ""}});
    if (!rule.empty()) out.emplace_back("Rule", rule);
  }
  if (auto e = d.find("enforcement"); e != d.end() && e->is_object())
    out.emplace_back("Enforcement", text(*e, "state") + (e->value("verified", false)
                                                             ? " (verified)"
                                                             : " (not verified)"));
  if (auto e = d.find("evidence"); e != d.end() && e->is_object()) {
    const std::string ev = join(*e, {{"audit_id", "audit"},
                                     {"plan_id", "plan"},
                                     {"run_id", "run"},
                                     {"fetch_id", "fetch"}});
    if (!ev.empty()) out.emplace_back("Evidence", ev);
  }
  out.emplace_back("Occurred", core::formatIso(alert.occurred_at));
  out.emplace_back("Alert id", alert.id);
  if (!alert.follows.empty()) out.emplace_back("Follows", alert.follows);
  return out;
}

}  // namespace certgate::connectors::alert
