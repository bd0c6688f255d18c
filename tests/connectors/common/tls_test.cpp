// TLS verification against a loopback httplib::SSLServer with a certificate made for the test.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "connectors/common/http_client.hpp"
#include "loopback_server.hpp"

using certgate::core::ErrorKind;
namespace http = certgate::connectors::http;
namespace fs = std::filesystem;

namespace {

// A self-signed certificate for 127.0.0.1 (SAN IP) written as PEM files in a temp directory.
struct SelfSignedCert {
  fs::path dir;
  fs::path cert;
  fs::path key;

  SelfSignedCert() {
    dir = fs::temp_directory_path() / ("certgate-tls-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::create_directories(dir);
    cert = dir / "cert.pem";
    key = dir / "key.pem";

    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(pkey);
    std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
    REQUIRE(x509);
    X509_set_version(x509.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x509.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x509.get()), 3600L * 24);
    X509_set_pubkey(x509.get(), pkey.get());
    X509_NAME* name = X509_get_subject_name(x509.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("certgate-test"), -1, -1, 0);
    X509_set_issuer_name(x509.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x509.get(), x509.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      REQUIRE(ext);
      X509_add_ext(x509.get(), ext, -1);
      X509_EXTENSION_free(ext);
    }
    REQUIRE(X509_sign(x509.get(), pkey.get(), EVP_sha256()) > 0);

    FILE* f = std::fopen(cert.c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, x509.get());
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    REQUIRE(f);
    PEM_write_PrivateKey(f, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
  }
  ~SelfSignedCert() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

struct TlsServer {
  explicit TlsServer(const SelfSignedCert& c) : server(c.cert.c_str(), c.key.c_str()) {
    server.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello over tls", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(server.is_running());
  }
  ~TlsServer() {
    server.stop();
    thread.join();
  }
  std::string url(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(port) + path; }

  httplib::SSLServer server;
  int port = 0;
  std::thread thread;
};

}  // namespace

TEST_CASE("An untrusted server certificate is a Permanent error with a clear message",
          "[connector][http]") {
  SelfSignedCert cert;
  TlsServer srv(cert);
  http::Client client;  // system CAs only: the test certificate is not trusted
  auto res = client.send({http::Method::Get, srv.url("/hello"), {}, {}, {}, {}, false});
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Permanent);
  CHECK(res.error().message.find("TLS certificate verification failed") != std::string::npos);
  CHECK(res.error().hint.find("ca_file") != std::string::npos);
}

TEST_CASE("A custom CA file makes the server trusted", "[connector][http]") {
  SelfSignedCert cert;
  TlsServer srv(cert);
  http::ClientOptions opts;
  opts.ca_file = cert.cert.string();
  http::Client client(opts);
  auto res = client.send({http::Method::Get, srv.url("/hello"), {}, {}, {}, {}, false});
  REQUIRE(res.ok());
  CHECK(res->status == 200);
  CHECK(res->body == "hello over tls");
}

TEST_CASE("An unreadable CA file is a configuration error", "[connector][http]") {
  SelfSignedCert cert;
  TlsServer srv(cert);
  http::ClientOptions opts;
  opts.ca_file = (cert.dir / "missing.pem").string();
  http::Client client(opts);
  auto res = client.send({http::Method::Get, srv.url("/hello"), {}, {}, {}, {}, false});
  REQUIRE_FALSE(res.ok());
  CHECK(res.error().kind == ErrorKind::Invalid);
}
