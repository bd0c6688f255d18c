#pragma once
// Reading a connector's options (ports::Options), shared by every connector so that shapes,
// secrets, URLs, numbers, durations, choices and unknown keys are checked one way.
//
// Every error an OptionReader returns is Invalid, reads "<what>: <key>: <message>" (what is the
// connector's own prefix, e.g. "directory 'okta'" or "source 'lms'"), carries the `where` of the
// value concerned (the block's `where` when the value has none, or when no value is concerned)
// and a hint. The wording of messages and hints that differs between connectors is passed in,
// so each connector keeps its own. A secret's value never appears in an error.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "ports/config_spec.hpp"

namespace certgate::connectors::options {

// scheme://authority of an absolute http(s) URL, both lower-cased; nullopt when `url` is not one
// (another scheme, no authority, or user information before '@').
std::optional<std::string> originOf(std::string_view url);

// An origin (as originOf returns it) whose host is this machine's loopback: localhost, 127.0.0.1
// or [::1], with or without a port.
bool isLoopbackOrigin(std::string_view origin);

// The transport rule for every remote service: https, and plain http only towards the loopback
// (test servers and local fakes).
bool transportAllowed(std::string_view origin);

// What a URL check says when a value fails it. The caller writes the messages (they may quote
// the value); the error names the key and points at its value.
struct UrlWording {
  std::string not_url{};  // not an absolute http(s) URL
  std::string not_url_hint{};
  std::string plain_http{};  // http towards a host other than the loopback
  std::string plain_http_hint{};
};

// How a connector words (and trims) its secret options. A secret is a {file: PATH} or
// {credential: NAME} reference read through a ports::SecretReader; an inline value is refused.
struct SecretWording {
  std::string missing_message = "is required";  // the key is absent
  std::string missing_hint{};
  std::string inline_message{};  // written as a plain value instead of a reference
  std::string inline_hint{};
  std::string no_reader_hint{};  // no SecretReader was supplied ("no secret reader is available")
  std::string empty_hint{};      // the value read is empty ("the secret is empty")
  // Errors of the reader are passed on with "<key>: " before their message, and "<what>: "
  // before that when this is true; their `where` is the reference's when they have none.
  bool reader_errors_name_what = true;
  // Characters removed from the end of the value read.
  std::string_view strip = "\n\r";
};

class OptionReader {
 public:
  struct Style {
    // scalar() hands out values with surrounding white space removed.
    bool trim = true;
    // How a value is shown in a message; '<value>' when unset.
    std::function<std::string(std::string_view)> quote;
  };

  // `options` must outlive the reader.
  OptionReader(std::string what, const ports::Options& options);
  OptionReader(std::string what, const ports::Options& options, Style style);

  const std::string& what() const { return what_; }

  // An Invalid error "<what>: <key>: <message>" at `at`'s where (the block's when `at` is null or
  // has none).
  core::Error error(const std::string& key, const std::string& message, const std::string& hint,
                    const ports::OptionValue* at = nullptr) const;

  const ports::OptionValue* find(const std::string& key) const { return options_.find(key); }

  // `value` as messages show it (Style::quote).
  std::string quote(std::string_view value) const;

  // Every key must be one of `spec`'s: the first that is not is an "unknown key" error whose
  // hint lists the valid keys in the spec's order.
  core::Status rejectUnknownKeys(const ports::ConfigSpec& spec) const;

  // The scalar under `key`, nullopt when absent; an error when it is a list or a map.
  core::Result<std::optional<std::string>> scalar(const std::string& key) const;

  // The scalar under `key`; `message` (at the block) when it is absent or blank.
  core::Result<std::string> required(const std::string& key, const std::string& hint,
                                     const std::string& message = "is required") const;

  // A whole number in [min, max] (decimal digits, an optional '-'); nullopt when absent.
  // Otherwise "<quoted value> is not <expected>", e.g. expected "a whole number from 1 to 1000".
  core::Result<std::optional<std::int64_t>> integer(const std::string& key, std::int64_t min,
                                                    std::int64_t max, const std::string& expected,
                                                    const std::string& hint) const;

  // A duration (core::parseDuration: 30s, 10m, 1h ...) in [min, max]; nullopt when absent.
  // Otherwise "<quoted value> is not <expected>", e.g. expected "a duration from 1s to 1h".
  core::Result<std::optional<core::Seconds>> duration(const std::string& key, core::Seconds min,
                                                      core::Seconds max,
                                                      const std::string& expected,
                                                      const std::string& hint) const;

  // true/yes/on or false/no/off in any case; `fallback` when absent.
  core::Result<bool> flag(const std::string& key, bool fallback) const;

  // Which form of the value a choice error shows.
  enum class Echo { AsWritten, Lowercased };

  // One of `allowed` (lower-case), compared case-insensitively; `fallback` when absent. The
  // result is lower-case. Otherwise "<quoted value> is not one of a, b, c" with `hint`, or
  // "use one of a, b, c" when `hint` is empty.
  core::Result<std::string> choice(const std::string& key, const std::string& fallback,
                                   const std::vector<std::string>& allowed,
                                   Echo echo = Echo::AsWritten, const std::string& hint = {}) const;

  // The origin of `value`, the URL given under `key`: an absolute http(s) URL that meets
  // transportAllowed().
  core::Result<std::string> url(const std::string& key, const std::string& value,
                                const UrlWording& wording) const;

  // The path under `key`, a relative one resolved against `base_dir`, lexically normalised;
  // nullopt when absent or empty.
  core::Result<std::optional<std::string>> path(const std::string& key,
                                                const std::string& base_dir) const;

  // As path(), and the file must exist as a regular file: otherwise "<path> is not a readable
  // file" with `hint`.
  core::Result<std::optional<std::string>> readableFile(const std::string& key,
                                                        const std::string& base_dir,
                                                        const std::string& hint) const;

  // The secret reference under `key`: present, and a map (never an inline value).
  core::Result<const ports::OptionValue*> secretReference(const std::string& key,
                                                          const SecretWording& wording) const;

  // The secret under `key`, read through `secrets`, its end stripped; never empty.
  core::Result<std::string> secret(const std::string& key, const ports::SecretReader& secrets,
                                   const SecretWording& wording) const;

 private:
  std::string what_;
  const ports::Options& options_;
  Style style_;
};

// The root address of a web application (an LMS site) under `key`: required, an absolute http(s)
// URL that meets transportAllowed(), with no query, fragment or `api_marker` (e.g. "/api/") in
// it. Trailing slashes are removed and the origin is lower-cased. `example` is shown in hints.
struct SiteRoot {
  std::string url;     // e.g. https://moodle.example.com/lms
  std::string origin;  // e.g. https://moodle.example.com
};
core::Result<SiteRoot> siteRoot(const OptionReader& opts, const std::string& key,
                                std::string_view api_marker, const std::string& example);

// An API token under `key`, read through `secrets` ({file: PATH} or {credential: NAME}, never
// inline, never empty). `file_example` is a path shown in hints.
core::Result<std::string> tokenSecret(const OptionReader& opts, const std::string& key,
                                      const ports::SecretReader& secrets,
                                      const std::string& file_example);

// A list of positive whole-number ids under `key` (a single value counts as a list of one), in
// order, without repeats; empty when absent and not `required`. Errors name `noun` ("course id").
core::Result<std::vector<std::string>> idList(const OptionReader& opts, const std::string& key,
                                              bool required, const std::string& noun,
                                              const std::string& example);

}  // namespace certgate::connectors::options
