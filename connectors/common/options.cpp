#include "connectors/common/options.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <system_error>
#include <utility>

namespace certgate::connectors::options {

namespace {

namespace fs = std::filesystem;

std::string_view trimmed(std::string_view s) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The path under a key as written, a relative one placed under `base_dir`.
fs::path resolved(const std::string& value, const std::string& base_dir) {
  fs::path p(value);
  if (p.is_relative() && !base_dir.empty()) p = fs::path(base_dir) / p;
  return p;
}

}  // namespace

std::optional<std::string> originOf(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::string scheme = lowered(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const auto host_start = scheme_end + 3;
  const auto host_end = url.find_first_of("/?#", host_start);
  const auto authority =
      url.substr(host_start, host_end == std::string_view::npos ? std::string_view::npos
                                                                : host_end - host_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  return scheme + "://" + lowered(authority);
}

bool isLoopbackOrigin(std::string_view origin) {
  const auto scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view authority = origin.substr(scheme_end + 3);
  for (const std::string_view host : {"127.0.0.1", "localhost", "[::1]"}) {
    if (authority.substr(0, host.size()) != host) continue;
    if (authority.size() == host.size() || authority[host.size()] == ':') return true;
  }
  return false;
}

bool transportAllowed(std::string_view origin) {
  if (origin.substr(0, 8) == "https://") return true;
  return origin.substr(0, 7) == "http://" && isLoopbackOrigin(origin);
}

OptionReader::OptionReader(std::string what, const ports::Options& options)
    : OptionReader(std::move(what), options, Style{}) {}

OptionReader::OptionReader(std::string what, const ports::Options& options, Style style)
    : what_(std::move(what)), options_(options), style_(std::move(style)) {}

core::Error OptionReader::error(const std::string& key, const std::string& message,
                                const std::string& hint, const ports::OptionValue* at) const {
  return core::makeError(core::ErrorKind::Invalid, what_ + ": " + key + ": " + message,
                         at != nullptr && !at->where.empty() ? at->where : options_.where, hint);
}

std::string OptionReader::quote(std::string_view value) const {
  if (style_.quote) return style_.quote(value);
  return "'" + std::string(value) + "'";
}

core::Status OptionReader::rejectUnknownKeys(const ports::ConfigSpec& spec) const {
  for (const auto& [key, value] : options_.values) {
    if (spec.find(key) != nullptr) continue;
    std::string valid;
    for (const auto& k : spec.keys) valid += (valid.empty() ? "" : ", ") + k.key;
    return error(key, "unknown key", "valid keys: " + valid, &value);
  }
  return {};
}

core::Result<std::optional<std::string>> OptionReader::scalar(const std::string& key) const {
  const ports::OptionValue* v = find(key);
  if (v == nullptr) return std::optional<std::string>{};
  if (v->shape != ports::OptionValue::Shape::Scalar)
    return error(key, "expected a single value, got a list or map",
                 "write it as `" + key + ": value`", v);
  if (!style_.trim) return std::optional<std::string>{v->scalar};
  return std::optional<std::string>{std::string(trimmed(v->scalar))};
}

core::Result<std::string> OptionReader::required(const std::string& key, const std::string& hint,
                                                 const std::string& message) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value() || trimmed(**v).empty()) return error(key, message, hint);
  return std::move(**v);
}

core::Result<std::optional<std::int64_t>> OptionReader::integer(const std::string& key,
                                                                std::int64_t min, std::int64_t max,
                                                                const std::string& expected,
                                                                const std::string& hint) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<std::int64_t>{};
  const std::string_view t = trimmed(**v);
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
  if (t.empty() || ec != std::errc{} || end != t.data() + t.size() || n < min || n > max)
    return error(key, quote(**v) + " is not " + expected, hint, find(key));
  return std::optional<std::int64_t>{n};
}

core::Result<std::optional<core::Seconds>> OptionReader::duration(const std::string& key,
                                                                  core::Seconds min,
                                                                  core::Seconds max,
                                                                  const std::string& expected,
                                                                  const std::string& hint) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<core::Seconds>{};
  const auto d = core::parseDuration(trimmed(**v));
  if (!d || *d < min || *d > max)
    return error(key, quote(**v) + " is not " + expected, hint, find(key));
  return std::optional<core::Seconds>{*d};
}

core::Result<bool> OptionReader::flag(const std::string& key, bool fallback) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value()) return fallback;
  const std::string t = lowered(trimmed(**v));
  if (t == "true" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "no" || t == "off") return false;
  return error(key, quote(**v) + " is not true or false", "write true or false", find(key));
}

core::Result<std::string> OptionReader::choice(const std::string& key, const std::string& fallback,
                                               const std::vector<std::string>& allowed, Echo echo,
                                               const std::string& hint) const {
  auto v = scalar(key);
  if (!v) return v.error();
  std::string t = lowered(trimmed(v->value_or(fallback)));
  for (const auto& a : allowed)
    if (a == t) return t;
  const std::string list = joined(allowed);
  return error(key,
               quote(echo == Echo::Lowercased ? t : v->value_or("")) + " is not one of " + list,
               hint.empty() ? "use one of " + list : hint, find(key));
}

core::Result<std::string> OptionReader::url(const std::string& key, const std::string& value,
                                            const UrlWording& wording) const {
  const auto origin = originOf(value);
  if (!origin) return error(key, wording.not_url, wording.not_url_hint, find(key));
  if (!transportAllowed(*origin))
    return error(key, wording.plain_http, wording.plain_http_hint, find(key));
  return *origin;
}

core::Result<std::optional<std::string>> OptionReader::path(const std::string& key,
                                                            const std::string& base_dir) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value() || (*v)->empty()) return std::optional<std::string>{};
  return std::optional<std::string>{resolved(**v, base_dir).lexically_normal().string()};
}

core::Result<std::optional<std::string>> OptionReader::readableFile(const std::string& key,
                                                                    const std::string& base_dir,
                                                                    const std::string& hint) const {
  auto v = scalar(key);
  if (!v) return v.error();
  if (!v->has_value() || (*v)->empty()) return std::optional<std::string>{};
  const fs::path p = resolved(**v, base_dir);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    return error(key, p.string() + " is not a readable file", hint, find(key));
  return std::optional<std::string>{p.lexically_normal().string()};
}

core::Result<const ports::OptionValue*> OptionReader::secretReference(
    const std::string& key, const SecretWording& wording) const {
  const ports::OptionValue* ref = find(key);
  if (ref == nullptr) return error(key, wording.missing_message, wording.missing_hint);
  if (ref->shape != ports::OptionValue::Shape::Map)
    return error(key, wording.inline_message, wording.inline_hint, ref);
  return ref;
}

core::Result<std::string> OptionReader::secret(const std::string& key,
                                               const ports::SecretReader& secrets,
                                               const SecretWording& wording) const {
  auto ref = secretReference(key, wording);
  if (!ref) return ref.error();
  const ports::OptionValue& r = **ref;
  if (!secrets) return error(key, "no secret reader is available", wording.no_reader_hint, &r);
  auto value = secrets(r);
  if (!value) {
    core::Error e = value.error();
    if (e.where.empty()) e.where = r.where;
    e.message =
        (wording.reader_errors_name_what ? what_ + ": " : std::string()) + key + ": " + e.message;
    return e;
  }
  std::string s = std::move(*value);
  while (!s.empty() && wording.strip.find(s.back()) != std::string_view::npos) s.pop_back();
  if (s.empty()) return error(key, "the secret is empty", wording.empty_hint, &r);
  return s;
}

core::Result<SiteRoot> siteRoot(const OptionReader& opts, const std::string& key,
                                std::string_view api_marker, const std::string& example) {
  auto url = opts.required(key, "the site's address, e.g. " + example);
  if (!url) return url.error();
  SiteRoot root;
  root.url = *url;
  while (!root.url.empty() && root.url.back() == '/') root.url.pop_back();
  if (root.url.find('?') != std::string::npos || root.url.find('#') != std::string::npos ||
      (!api_marker.empty() && root.url.find(api_marker) != std::string::npos))
    return opts.error(key, "'" + root.url + "' is not the site's root",
                      "give the address the site is reached at, without " + std::string(api_marker) +
                          "... or a query, e.g. " + example,
                      opts.find(key));
  auto origin = opts.url(key, root.url,
                         {.not_url = "'" + root.url + "' is not an absolute http(s) URL",
                          .not_url_hint = "e.g. " + example,
                          .plain_http = "'" + root.url +
                                        "' must use https (plain http only to 127.0.0.1, "
                                        "localhost or [::1]): the token travels with every call",
                          .plain_http_hint = "use the site's https address"});
  if (!origin) return origin.error();
  root.origin = *origin;
  root.url = *origin + root.url.substr(origin->size());
  return root;
}

core::Result<std::string> tokenSecret(const OptionReader& opts, const std::string& key,
                                      const ports::SecretReader& secrets,
                                      const std::string& file_example) {
  return opts.secret(
      key, secrets,
      {.missing_message = "is required",
       .missing_hint = key + ": {file: PATH} or {credential: NAME} holding the API token",
       .inline_message = "a secret is given as {file: PATH} or {credential: NAME}, never inline",
       .inline_hint = "e.g. " + key + ": {file: " + file_example + "}",
       .no_reader_hint = "secrets are read by certgate's configuration loader",
       .empty_hint = "put the token in the secret file"});
}

core::Result<std::vector<std::string>> idList(const OptionReader& opts, const std::string& key,
                                              bool required, const std::string& noun,
                                              const std::string& example) {
  std::vector<std::string> out;
  const ports::OptionValue* v = opts.find(key);
  if (v == nullptr) {
    if (required) return opts.error(key, "is required", "e.g. " + key + ": " + example);
    return out;
  }
  std::vector<std::string> items = v->list;
  if (v->shape == ports::OptionValue::Shape::Scalar) items = {v->scalar};
  if (v->shape == ports::OptionValue::Shape::Map || items.empty())
    return opts.error(key, "must list at least one " + noun, "e.g. " + key + ": " + example, v);
  for (const std::string& raw : items) {
    std::string item = raw;
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
    const bool digits = !item.empty() && item.size() <= 18 &&
                        std::all_of(item.begin(), item.end(),
                                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!digits || item.find_first_not_of('0') == std::string::npos)
      return opts.error(key, "'" + raw + "' is not a " + noun + " (a positive whole number)",
                        "e.g. " + key + ": " + example, v);
    if (std::find(out.begin(), out.end(), item) != out.end())
      return opts.error(key, noun + " " + item + " is listed twice", "keep one", v);
    out.push_back(item);
  }
  return out;
}

}  // namespace certgate::connectors::options
