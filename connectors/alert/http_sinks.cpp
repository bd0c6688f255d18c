#include "connectors/alert/http_sinks.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "connectors/alert/alert_text.hpp"
#include "connectors/common/webhook_signature.hpp"

namespace certgate::connectors::alert {

namespace {

using nlohmann::json;

std::int64_t unixSeconds(core::Instant t) {
  return t.time_since_epoch().count();
}

// Slack treats &, < and > as markup (<!channel> would ping everyone).
std::string slackEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

std::string clip(std::string s, std::size_t n) {
  if (s.size() <= n) return s;
  std::size_t cut = n - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "...";
}

json documentOf(const ports::Alert& alert) {
  auto doc = json::parse(alert.document_json, nullptr, false);
  return doc.is_object() ? doc : json::object();
}

class HttpSink final : public ports::AlertSink {
 public:
  HttpSink(std::string kind, HttpSinkOptions options)
      : kind_(std::move(kind)), options_(std::move(options)) {
    if (!options_.redactor) options_.redactor = std::make_shared<http::Redactor>();
    // The URLs of Slack and Teams webhooks are bearer credentials.
    if (kind_ == "slack" || kind_ == "teams") options_.redactor->add(options_.url);
    options_.redactor->add(options_.secret);
    http::ClientOptions c;
    c.ca_file = options_.ca_file;
    c.redactor = options_.redactor;
    c.max_redirects = 0;
    client_ = std::make_unique<http::Client>(std::move(c));
  }

  const char* kind() const override { return kind_.c_str(); }

  core::Status send(const ports::Alert& alert, core::Instant now,
                    std::chrono::milliseconds timeout) override {
    const std::string where = "alert sink " + options_.name;
    http::Request req;
    req.method = http::Method::Post;
    req.url = options_.url;
    req.total_timeout = timeout;
    req.connect_timeout = std::min(timeout, std::chrono::milliseconds{10'000});
    req.headers.add("content-type", "application/json");
    if (kind_ == "webhook") {
      req.body = webhookBody(alert, now);
      const std::int64_t ts = unixSeconds(now);
      req.headers.add("webhook-id", alert.id);
      req.headers.add("webhook-timestamp", std::to_string(ts));
      req.headers.add("webhook-signature", webhook::sign(options_.secret, alert.id, ts, req.body));
    } else if (kind_ == "slack") {
      req.body = slackBody(alert);
    } else if (kind_ == "teams") {
      req.body = teamsBody(alert);
    } else {
      req.body = pagerDutyBody(alert, options_.secret, options_.source);
    }
    auto resp = client_->send(req);
    if (!resp) {
      core::Error e = resp.error();
      e.message = options_.redactor->redact(e.message);
      e.where = where;
      e.hint = options_.redactor->redact(e.hint);
      return e;
    }
    if (resp->status >= 200 && resp->status <= 299) return {};
    auto st = http::classify(*resp, where, unixSeconds(now), options_.redactor.get());
    if (!st) {
      core::Error e = st.error();
      e.where = where;
      return e;
    }
    // 1xx and 3xx: a redirect is not followed (it could send the alert elsewhere).
    return core::makeError(core::ErrorKind::Permanent,
                           "the receiver answered " + std::to_string(resp->status), where,
                           "point the sink at the final URL; redirects are not followed");
  }

 private:
  std::string kind_;
  HttpSinkOptions options_;
  std::unique_ptr<http::Client> client_;
};

}  // namespace

std::string webhookBody(const ports::Alert& alert, core::Instant now) {
  json body{{"type", "certgate.alert." + alert.kind},
            {"timestamp", core::formatIso(now)},
            {"data", documentOf(alert)}};
  return body.dump();
}

std::string slackBody(const ports::Alert& alert) {
  json fields = json::array();
  for (const auto& [label, value] : alertFacts(alert)) {
    if (fields.size() == 10) break;  // Slack's limit per section
    fields.push_back({{"type", "mrkdwn"},
                      {"text", clip("*" + label + "*\n" + slackEscape(value), 2000)}});
  }
  json blocks = json::array();
  blocks.push_back({{"type", "header"},
                    {"text", {{"type", "plain_text"}, {"text", clip(alert.title, 150)}}}});
  blocks.push_back({{"type", "section"},
                    {"text", {{"type", "mrkdwn"}, {"text", clip(slackEscape(alert.summary), 3000)}}}});
  blocks.push_back({{"type", "section"}, {"fields", fields}});
  blocks.push_back(
      {{"type", "context"},
       {"elements", json::array({{{"type", "mrkdwn"},
                                  {"text", "certgate alert " + slackEscape(alert.id) + " (" +
                                               alert.severity + ")"}}})}});
  json body{{"text", clip("[" + alert.severity + "] " + alert.title + ": " + alert.summary, 3000)},
            {"blocks", blocks}};
  return body.dump();
}

std::string teamsBody(const ports::Alert& alert) {
  json facts = json::array();
  for (const auto& [label, value] : alertFacts(alert))
    facts.push_back({{"title", label}, {"value", value}});
  const bool urgent = alert.severity == "error" || alert.severity == "critical";
  json card{{"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
            {"type", "AdaptiveCard"},
            {"version", "1.4"},
            {"body",
             json::array({{{"type", "TextBlock"},
                           {"text", alert.title},
                           {"size", "Medium"},
                           {"weight", "Bolder"},
                           {"color", urgent ? "Attention" : "Default"},
                           {"wrap", true}},
                          {{"type", "TextBlock"}, {"text", alert.summary}, {"wrap", true}},
                          {{"type", "FactSet"}, {"facts", facts}}})}};
  json body{{"type", "message"},
            {"attachments", json::array({{{"contentType", "application/vnd.microsoft.card.adaptive"},
                                          {"contentUrl", nullptr},
                                          {"content", card}}})}};
  return body.dump();
}

std::string pagerDutyBody(const ports::Alert& alert, const std::string& routing_key,
                          const std::string& source) {
  // A verified revocation closes the incident its revocation opened (same routing key).
  if (alert.kind == "revocation.verified" && !alert.follows.empty()) {
    json body{{"routing_key", routing_key},
              {"event_action", "resolve"},
              {"dedup_key", clip(alert.follows, 255)}};
    return body.dump();
  }
  json payload{{"summary", clip(alert.title + ": " + alert.summary, 1024)},
               {"source", source},
               {"severity", alert.severity},
               {"timestamp", core::formatIso(alert.occurred_at)},
               {"component", "certgate"},
               {"class", alert.kind},
               {"custom_details", documentOf(alert)}};
  json body{{"routing_key", routing_key},
            {"event_action", "trigger"},
            {"dedup_key", clip(alert.id, 255)},
            {"payload", payload}};
  return body.dump();
}

std::unique_ptr<ports::AlertSink> makeHttpSink(const std::string& kind, HttpSinkOptions options) {
  if (kind != "webhook" && kind != "slack" && kind != "teams" && kind != "pagerduty")
    return nullptr;
  return std::make_unique<HttpSink>(kind, std::move(options));
}

}  // namespace certgate::connectors::alert
