#include "connectors/common/options.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace options = certgate::connectors::options;
namespace ports = certgate::ports;
namespace core = certgate::core;
using core::ErrorKind;
using options::OptionReader;

namespace {

ports::OptionValue scalar(std::string value, std::string where) {
  ports::OptionValue v;
  v.scalar = std::move(value);
  v.where = std::move(where);
  return v;
}

ports::OptionValue list(std::string where) {
  ports::OptionValue v;
  v.shape = ports::OptionValue::Shape::List;
  v.list = {"a", "b"};
  v.where = std::move(where);
  return v;
}

ports::OptionValue reference(std::string file, std::string where) {
  ports::OptionValue v;
  v.shape = ports::OptionValue::Shape::Map;
  v.map = {{"file", std::move(file)}};
  v.where = std::move(where);
  return v;
}

ports::Options block(std::vector<std::pair<std::string, ports::OptionValue>> values) {
  ports::Options o;
  o.values = std::move(values);
  o.where = "certgate.yaml:4:3";
  return o;
}

// One key `key` holding `value` (where "certgate.yaml:key").
ports::Options one(const std::string& key, const std::string& value) {
  return block({{key, scalar(value, "certgate.yaml:" + key)}});
}

ports::ConfigSpec spec() {
  ports::ConfigSpec s;
  s.kind = "test";
  s.keys = {{"url", ports::ValueType::String, true, "", ""},
            {"token", ports::ValueType::Secret, false, "", ""},
            {"timeout", ports::ValueType::Duration, false, "30s", ""}};
  return s;
}

}  // namespace

// ---- URL rules ------------------------------------------------------------------------------

TEST_CASE("originOf keeps scheme and authority, lower-cased, of absolute http(s) URLs",
          "[unit][options]") {
  CHECK(options::originOf("https://Acme.Okta.com/api/v1?x=1") == "https://acme.okta.com");
  CHECK(options::originOf("HTTP://127.0.0.1:8080/scim") == "http://127.0.0.1:8080");
  CHECK(options::originOf("https://h#frag") == "https://h");
  CHECK(options::originOf("https://[::1]:9/") == "https://[::1]:9");
  CHECK_FALSE(options::originOf("ftp://h/x").has_value());
  CHECK_FALSE(options::originOf("acme.okta.com").has_value());
  CHECK_FALSE(options::originOf("https://").has_value());
  CHECK_FALSE(options::originOf("https:///path").has_value());
  CHECK_FALSE(options::originOf("https://user:pw@h/").has_value());
}

TEST_CASE("plain http is allowed only towards the loopback", "[unit][options]") {
  for (const char* origin : {"http://127.0.0.1", "http://127.0.0.1:8443", "http://localhost",
                             "http://localhost:80", "http://[::1]", "http://[::1]:9"}) {
    INFO(origin);
    CHECK(options::isLoopbackOrigin(origin));
    CHECK(options::transportAllowed(origin));
  }
  for (const char* origin :
       {"http://example.com", "http://127.0.0.10", "http://localhost.evil.com", "http://localhostx",
        "http://[::1]x", "http://[::2]", "http://10.0.0.1:80", "http://127.0.0.2"}) {
    INFO(origin);
    CHECK_FALSE(options::isLoopbackOrigin(origin));
    CHECK_FALSE(options::transportAllowed(origin));
  }
  CHECK(options::transportAllowed("https://example.com"));
  CHECK(options::transportAllowed("https://example.com:8443"));
  CHECK(options::transportAllowed("https://localhost"));
  CHECK_FALSE(options::transportAllowed("ftp://localhost"));
  CHECK_FALSE(options::transportAllowed("localhost"));
}

TEST_CASE("url() returns the origin or the caller's wording", "[unit][options]") {
  const auto o = one("url", "unused");
  const OptionReader opts("directory 'd'", o);
  const options::UrlWording wording{"not a URL", "not-url hint", "must use https", "tls hint"};

  auto ok = opts.url("url", "https://Idp.Example.com/scim/v2", wording);
  REQUIRE(ok);
  CHECK(*ok == "https://idp.example.com");
  auto local = opts.url("url", "http://localhost:8080/x", wording);
  REQUIRE(local);
  CHECK(*local == "http://localhost:8080");

  auto bad = opts.url("url", "idp.example.com", wording);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ErrorKind::Invalid);
  CHECK(bad.error().message == "directory 'd': url: not a URL");
  CHECK(bad.error().hint == "not-url hint");
  CHECK(bad.error().where == "certgate.yaml:url");

  auto plain = opts.url("url", "http://idp.example.com", wording);
  REQUIRE_FALSE(plain);
  CHECK(plain.error().message == "directory 'd': url: must use https");
  CHECK(plain.error().hint == "tls hint");
  CHECK(plain.error().where == "certgate.yaml:url");
}

// ---- reader basics --------------------------------------------------------------------------

TEST_CASE("error() prefixes what and key and falls back to the block's where", "[unit][options]") {
  const auto o = block({{"a", scalar("x", "certgate.yaml:7:5")}, {"b", scalar("y", "")}});
  const OptionReader opts("source 'lms'", o);
  CHECK(opts.what() == "source 'lms'");

  const core::Error at_value = opts.error("a", "is wrong", "fix it", opts.find("a"));
  CHECK(at_value.kind == ErrorKind::Invalid);
  CHECK(at_value.message == "source 'lms': a: is wrong");
  CHECK(at_value.where == "certgate.yaml:7:5");
  CHECK(at_value.hint == "fix it");
  CHECK(opts.error("b", "m", "h", opts.find("b")).where == "certgate.yaml:4:3");
  CHECK(opts.error("c", "m", "h").where == "certgate.yaml:4:3");
}

TEST_CASE("scalar() trims by default, keeps the value as written on request, refuses lists",
          "[unit][options]") {
  const auto o = block({{"name", scalar("  padded \t", "certgate.yaml:name")},
                        {"items", list("certgate.yaml:items")}});
  const OptionReader trimmed("directory 'd'", o);
  auto v = trimmed.scalar("name");
  REQUIRE(v);
  CHECK(*v == std::optional<std::string>("padded"));
  auto absent = trimmed.scalar("other");
  REQUIRE(absent);
  CHECK_FALSE(absent->has_value());

  const OptionReader raw("source 'lms'", o, {.trim = false, .quote = {}});
  auto as_written = raw.scalar("name");
  REQUIRE(as_written);
  CHECK(*as_written == std::optional<std::string>("  padded \t"));

  auto not_scalar = trimmed.scalar("items");
  REQUIRE_FALSE(not_scalar);
  CHECK(not_scalar.error().message ==
        "directory 'd': items: expected a single value, got a list or map");
  CHECK(not_scalar.error().hint == "write it as `items: value`");
  CHECK(not_scalar.error().where == "certgate.yaml:items");
}

TEST_CASE("quote() uses the style's function when given", "[unit][options]") {
  const auto o = one("n", "x");
  CHECK(OptionReader("d", o).quote("v") == "'v'");
  const OptionReader custom("d", o, {.trim = true, .quote = [](std::string_view v) {
                                       return "<" + std::string(v) + ">";
                                     }});
  CHECK(custom.quote("v") == "<v>");
}

TEST_CASE("rejectUnknownKeys names the first unknown key and lists the valid ones",
          "[unit][options]") {
  const auto good =
      block({{"url", scalar("https://x", "f:url")}, {"timeout", scalar("5s", "f:t")}});
  CHECK(OptionReader("directory 'd'", good).rejectUnknownKeys(spec()));

  const auto bad = block({{"url", scalar("https://x", "f:url")},
                          {"colour", scalar("blue", "f:colour")},
                          {"size", scalar("9", "f:size")}});
  auto st = OptionReader("directory 'd'", bad).rejectUnknownKeys(spec());
  REQUIRE_FALSE(st);
  CHECK(st.error().kind == ErrorKind::Invalid);
  CHECK(st.error().message == "directory 'd': colour: unknown key");
  CHECK(st.error().hint == "valid keys: url, token, timeout");
  CHECK(st.error().where == "f:colour");
}

TEST_CASE("required() refuses an absent or blank value with the caller's message",
          "[unit][options]") {
  const auto o = block({{"url", scalar(" https://x ", "f:url")}, {"blank", scalar("  ", "f:b")}});
  const OptionReader opts("directory 'd'", o);
  auto url = opts.required("url", "give the URL");
  REQUIRE(url);
  CHECK(*url == "https://x");

  auto absent = opts.required("client_id", "the app's id", "is required with auth oauth2");
  REQUIRE_FALSE(absent);
  CHECK(absent.error().message == "directory 'd': client_id: is required with auth oauth2");
  CHECK(absent.error().hint == "the app's id");
  CHECK(absent.error().where == "certgate.yaml:4:3");

  auto blank = opts.required("blank", "h");
  REQUIRE_FALSE(blank);
  CHECK(blank.error().message == "directory 'd': blank: is required");

  const OptionReader raw("source 'lms'", o, {.trim = false, .quote = {}});
  auto as_written = raw.required("url", "h");
  REQUIRE(as_written);
  CHECK(*as_written == " https://x ");
  CHECK_FALSE(raw.required("blank", "h"));
}

// ---- numbers, durations, flags, choices -----------------------------------------------------

TEST_CASE("integer() accepts whole numbers in range and words its error from the caller",
          "[unit][options]") {
  const auto check_ok = [](const std::string& text, std::int64_t expected) {
    INFO(text);
    const auto o = one("page_size", text);
    auto v = OptionReader("directory 'd'", o).integer("page_size", 1, 1000, "x", "h");
    REQUIRE(v);
    REQUIRE(v->has_value());
    CHECK(**v == expected);
  };
  check_ok("1", 1);
  check_ok("1000", 1000);
  check_ok(" 200 ", 200);

  for (const char* text :
       {"0", "1001", "-1", "+5", "ten", "", "1.5", "12abc", "99999999999999999999"}) {
    INFO(text);
    const auto o = one("page_size", text);
    auto v =
        OptionReader("directory 'd'", o)
            .integer("page_size", 1, 1000, "a whole number from 1 to 1000", "Okta recommends 200");
    REQUIRE_FALSE(v);
    CHECK(v.error().kind == ErrorKind::Invalid);
    CHECK(v.error().message == "directory 'd': page_size: '" + std::string(text) +
                                   "' is not a whole number from 1 to 1000");
    CHECK(v.error().hint == "Okta recommends 200");
    CHECK(v.error().where == "certgate.yaml:page_size");
  }

  const auto none = block({});
  auto absent = OptionReader("d", none).integer("page_size", 1, 10, "x", "h");
  REQUIRE(absent);
  CHECK_FALSE(absent->has_value());
}

TEST_CASE("integer() on an untrimmed reader parses the trimmed text and quotes it as written",
          "[unit][options]") {
  const OptionReader::Style style{
      .trim = false, .quote = [](std::string_view v) { return "[" + std::string(v) + "]"; }};
  const auto ok = one("min_rows", " 3 ");
  auto v = OptionReader("source 'lms'", ok, style).integer("min_rows", 0, 100, "x", "h");
  REQUIRE(v);
  CHECK(**v == 3);

  const auto bad = one("min_rows", " -1 ");
  auto e = OptionReader("source 'lms'", bad, style)
               .integer("min_rows", 0, 100, "a whole number >= 0", "e.g. min_rows: 1");
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "source 'lms': min_rows: [ -1 ] is not a whole number >= 0");
}

TEST_CASE("duration() accepts durations within the bounds", "[unit][options]") {
  const std::vector<std::pair<const char*, long>> good = {
      {"1s", 1}, {"30s", 30}, {"10m", 600}, {"1h", 3600}};
  for (const auto& [text, seconds] : good) {
    INFO(text);
    const auto o = one("timeout", text);
    auto d = OptionReader("directory 'd'", o)
                 .duration("timeout", core::Seconds{1}, core::Seconds{3600}, "x", "h");
    REQUIRE(d);
    REQUIRE(d->has_value());
    CHECK((*d)->count() == seconds);
  }
  for (const char* text : {"0s", "3601s", "2h", "soon", "30", "-5s", ""}) {
    INFO(text);
    const auto o = one("timeout", text);
    auto d = OptionReader("directory 'd'", o)
                 .duration("timeout", core::Seconds{1}, core::Seconds{3600},
                           "a duration from 1s to 1h", "e.g. timeout: 30s");
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::Invalid);
    CHECK(d.error().message ==
          "directory 'd': timeout: '" + std::string(text) + "' is not a duration from 1s to 1h");
    CHECK(d.error().hint == "e.g. timeout: 30s");
    CHECK(d.error().where == "certgate.yaml:timeout");
  }
  const auto none = block({});
  auto absent =
      OptionReader("d", none).duration("timeout", core::Seconds{1}, core::Seconds{2}, "x", "h");
  REQUIRE(absent);
  CHECK_FALSE(absent->has_value());
}

TEST_CASE("flag() reads true/yes/on and false/no/off in any case", "[unit][options]") {
  for (const char* text : {"true", "Yes", "ON"}) {
    const auto o = one("read_before_write", text);
    auto v = OptionReader("d", o).flag("read_before_write", false);
    REQUIRE(v);
    CHECK(*v);
  }
  for (const char* text : {"false", "NO", "off"}) {
    const auto o = one("read_before_write", text);
    auto v = OptionReader("d", o).flag("read_before_write", true);
    REQUIRE(v);
    CHECK_FALSE(*v);
  }
  const auto none = block({});
  CHECK(*OptionReader("d", none).flag("read_before_write", true));
  CHECK_FALSE(*OptionReader("d", none).flag("read_before_write", false));

  const auto o = one("read_before_write", "Maybe");
  auto bad = OptionReader("directory 'd'", o).flag("read_before_write", true);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "directory 'd': read_before_write: 'Maybe' is not true or false");
  CHECK(bad.error().hint == "write true or false");
  CHECK(bad.error().where == "certgate.yaml:read_before_write");
}

TEST_CASE("choice() compares case-insensitively and returns lower case", "[unit][options]") {
  const auto o = one("auth", " OAuth2 ");
  auto v = OptionReader("d", o).choice("auth", "bearer", {"bearer", "oauth2"});
  REQUIRE(v);
  CHECK(*v == "oauth2");

  const auto none = block({});
  auto fallback = OptionReader("d", none).choice("auth", "bearer", {"bearer", "oauth2"});
  REQUIRE(fallback);
  CHECK(*fallback == "bearer");

  const auto bad = one("auth", "SAML");
  auto as_written =
      OptionReader("directory 'd'", bad).choice("auth", "bearer", {"bearer", "oauth2"});
  REQUIRE_FALSE(as_written);
  CHECK(as_written.error().message == "directory 'd': auth: 'SAML' is not one of bearer, oauth2");
  CHECK(as_written.error().hint == "use one of bearer, oauth2");
  CHECK(as_written.error().where == "certgate.yaml:auth");

  auto lowered = OptionReader("directory 'd'", bad)
                     .choice("auth", "oauth", {"oauth", "ssws"}, OptionReader::Echo::Lowercased,
                             "oauth or ssws");
  REQUIRE_FALSE(lowered);
  CHECK(lowered.error().message == "directory 'd': auth: 'saml' is not one of oauth, ssws");
  CHECK(lowered.error().hint == "oauth or ssws");
}

// ---- paths ----------------------------------------------------------------------------------

TEST_CASE("path() resolves against the base directory — readableFile() needs a file",
          "[unit][options]") {
  const auto rel = one("ca_file", "certs/../ca.pem");
  auto p = OptionReader("d", rel).path("ca_file", "/etc/certgate");
  REQUIRE(p);
  CHECK(*p == std::optional<std::string>("/etc/certgate/ca.pem"));
  auto no_base = OptionReader("d", rel).path("ca_file", "");
  REQUIRE(no_base);
  CHECK(*no_base == std::optional<std::string>("ca.pem"));
  const auto abs = one("ca_file", "/opt/ca.pem");
  CHECK(*OptionReader("d", abs).path("ca_file", "/etc/certgate") ==
        std::optional<std::string>("/opt/ca.pem"));
  const auto empty = one("ca_file", "");
  CHECK_FALSE(OptionReader("d", empty).path("ca_file", "/etc")->has_value());
  CHECK_FALSE(OptionReader("d", empty).readableFile("ca_file", "/etc", "h")->has_value());

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("certgate-options-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(dir / "ca.pem") << "pem\n";
  const auto there = one("ca_file", "sub/../ca.pem");
  auto found = OptionReader("d", there).readableFile("ca_file", dir.string(), "h");
  REQUIRE(found);
  CHECK(*found == std::optional<std::string>((dir / "ca.pem").string()));

  for (const char* missing : {"missing.pem", "sub"}) {
    INFO(missing);
    const auto o = one("ca_file", missing);
    auto e =
        OptionReader("directory 'd'", o).readableFile("ca_file", dir.string(), "give a PEM bundle");
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::Invalid);
    CHECK(e.error().message ==
          "directory 'd': ca_file: " + (dir / missing).string() + " is not a readable file");
    CHECK(e.error().hint == "give a PEM bundle");
    CHECK(e.error().where == "certgate.yaml:ca_file");
  }
  std::filesystem::remove_all(dir);
}

// ---- secrets --------------------------------------------------------------------------------

namespace {

constexpr const char* kSecret = "hunter2-very-secret";

// file "good" -> the secret with a trailing newline; "spaced" -> with trailing blanks;
// "empty" -> ""; "located" -> an error with a where; anything else -> an error without one.
core::Result<std::string> readerFor(const ports::OptionValue& ref) {
  const std::string file = ref.map.empty() ? "" : ref.map.front().second;
  if (file == "good") return std::string(kSecret) + "\r\n";
  if (file == "spaced") return std::string(kSecret) + " \n ";
  if (file == "empty") return std::string("\n");
  if (file == "located")
    return core::makeError(ErrorKind::Auth, "secret file located: unreadable", "file located",
                           "chmod");
  return core::makeError(ErrorKind::Auth, "secret file " + file + ": does not exist", "",
                         "create it");
}

const options::SecretWording kWording{.missing_message = "is required with auth bearer",
                                      .missing_hint = "token: {file: PATH}",
                                      .inline_message = "never inline",
                                      .inline_hint = "use a reference",
                                      .no_reader_hint = "a defect",
                                      .empty_hint = "fill the file"};

void requireNoSecret(const core::Error& e) {
  CHECK(e.describe().find(kSecret) == std::string::npos);
  CHECK(e.describe().find("hunter2") == std::string::npos);
}

}  // namespace

TEST_CASE("secret() reads a reference and strips the configured end characters",
          "[unit][options]") {
  const auto o =
      block({{"token", reference("good", "f:token")}, {"other", reference("spaced", "f:o")}});
  const OptionReader opts("directory 'd'", o);
  auto v = opts.secret("token", readerFor, kWording);
  REQUIRE(v);
  CHECK(*v == kSecret);

  auto default_strip = opts.secret("other", readerFor, kWording);
  REQUIRE(default_strip);
  CHECK(*default_strip == std::string(kSecret) + " \n ");  // blanks are kept unless asked
  options::SecretWording blanks = kWording;
  blanks.strip = "\n\r ";
  auto stripped = opts.secret("other", readerFor, blanks);
  REQUIRE(stripped);
  CHECK(*stripped == kSecret);
}

TEST_CASE("secret() refuses an inline value without echoing it", "[unit][options]") {
  const auto o = block({{"token", scalar(kSecret, "f:token")}});
  const OptionReader opts("directory 'd'", o);
  auto v = opts.secret("token", readerFor, kWording);
  REQUIRE_FALSE(v);
  CHECK(v.error().kind == ErrorKind::Invalid);
  CHECK(v.error().message == "directory 'd': token: never inline");
  CHECK(v.error().hint == "use a reference");
  CHECK(v.error().where == "f:token");
  requireNoSecret(v.error());

  auto ref = opts.secretReference("token", kWording);
  REQUIRE_FALSE(ref);
  requireNoSecret(ref.error());
}

TEST_CASE("secret() failure paths: absent, no reader, empty, reader errors", "[unit][options]") {
  SECTION("absent") {
    const auto o = block({});
    auto v = OptionReader("directory 'd'", o).secret("token", readerFor, kWording);
    REQUIRE_FALSE(v);
    CHECK(v.error().message == "directory 'd': token: is required with auth bearer");
    CHECK(v.error().hint == "token: {file: PATH}");
    CHECK(v.error().where == "certgate.yaml:4:3");
  }
  SECTION("no reader") {
    const auto o = block({{"token", reference("good", "f:token")}});
    auto v = OptionReader("directory 'd'", o).secret("token", ports::SecretReader{}, kWording);
    REQUIRE_FALSE(v);
    CHECK(v.error().kind == ErrorKind::Invalid);
    CHECK(v.error().message == "directory 'd': token: no secret reader is available");
    CHECK(v.error().hint == "a defect");
    CHECK(v.error().where == "f:token");
  }
  SECTION("empty after stripping") {
    const auto o = block({{"token", reference("empty", "f:token")}});
    auto v = OptionReader("directory 'd'", o).secret("token", readerFor, kWording);
    REQUIRE_FALSE(v);
    CHECK(v.error().message == "directory 'd': token: the secret is empty");
    CHECK(v.error().hint == "fill the file");
    CHECK(v.error().where == "f:token");
  }
  SECTION("reader errors keep their kind and are prefixed; where falls back to the reference") {
    const auto o =
        block({{"token", reference("absent", "f:token")}, {"key", reference("located", "f:key")}});
    auto missing = OptionReader("directory 'd'", o).secret("token", readerFor, kWording);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::Auth);
    CHECK(missing.error().message == "directory 'd': token: secret file absent: does not exist");
    CHECK(missing.error().where == "f:token");
    CHECK(missing.error().hint == "create it");

    options::SecretWording key_only = kWording;
    key_only.reader_errors_name_what = false;
    auto located = OptionReader("directory 'd'", o).secret("key", readerFor, key_only);
    REQUIRE_FALSE(located);
    CHECK(located.error().message == "key: secret file located: unreadable");
    CHECK(located.error().where == "file located");
  }
}

TEST_CASE("secretReference() returns the reference for the caller to read", "[unit][options]") {
  const auto o = block({{"client_secret", reference("good", "f:cs")}});
  auto ref = OptionReader("d", o).secretReference("client_secret", kWording);
  REQUIRE(ref);
  REQUIRE(*ref != nullptr);
  CHECK((*ref)->where == "f:cs");
  auto absent = OptionReader("d", o).secretReference("token", kWording);
  REQUIRE_FALSE(absent);
  CHECK(absent.error().message == "d: token: is required with auth bearer");
}
