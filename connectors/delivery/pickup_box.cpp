#include "connectors/delivery/pickup_box.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

#include "connectors/common/jwt.hpp"
#include "connectors/common/webhook_signature.hpp"
#include "store/store.hpp"

namespace certgate::connectors::delivery {

using core::ErrorKind;
using core::makeError;

namespace {

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kIdBytes = 16;

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

core::Error cryptoError(const char* what) {
  return makeError(ErrorKind::Internal, std::string("AES-256-GCM ") + what + " failed",
                   "delivery.email");
}

core::Result<std::string> randomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return makeError(ErrorKind::Internal, "the OpenSSL random generator failed", "delivery.email");
  return out;
}

// ciphertext || tag
core::Result<std::string> sealBytes(std::string_view key, std::string_view nonce,
                                    std::string_view aad, std::string_view plain) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return cryptoError("context");
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) != 1)
    return cryptoError("setup");
  int len = 0;
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1)
    return cryptoError("associated data");
  std::string out(plain.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_EncryptUpdate(ctx.get(), o, &len, bytes(plain), static_cast<int>(plain.size())) != 1)
    return cryptoError("encryption");
  int total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), o + total, &len) != 1) return cryptoError("encryption");
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          o + total) != 1)
    return cryptoError("tag");
  out.resize(static_cast<std::size_t>(total) + kTagBytes);
  return out;
}

// nullopt when the tag does not verify (another key, or altered bytes).
core::Result<std::optional<std::string>> openBytes(std::string_view key, std::string_view nonce,
                                                   std::string_view aad, std::string_view sealed) {
  if (sealed.size() < kTagBytes || nonce.size() != kNonceBytes)
    return std::optional<std::string>{};
  const std::string_view body = sealed.substr(0, sealed.size() - kTagBytes);
  std::string tag(sealed.substr(body.size()));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return cryptoError("context");
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) != 1)
    return cryptoError("setup");
  int len = 0;
  if (EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1)
    return cryptoError("associated data");
  std::string out(body.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_DecryptUpdate(ctx.get(), o, &len, bytes(body), static_cast<int>(body.size())) != 1)
    return cryptoError("decryption");
  int total = len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1)
    return cryptoError("tag");
  if (EVP_DecryptFinal_ex(ctx.get(), o + total, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::optional<std::string>{};
  }
  total += len;
  out.resize(static_cast<std::size_t>(total));
  return std::optional<std::string>{std::move(out)};
}

PickupState stateOf(const store::PickupRow& row, core::Instant now) {
  if (row.fetched_at) return PickupState::Fetched;
  if (row.expires_at <= now) return PickupState::Expired;
  return PickupState::Waiting;
}

}  // namespace

core::Result<std::string> decodePickupKey(std::string_view base64) {
  const char* hint =
      "generate one with: openssl rand -base64 32 (and load it with systemd "
      "LoadCredentialEncrypted= or a file of mode 0600)";
  auto key = webhook::decodeSecret(base64);
  if (!key)
    return makeError(ErrorKind::Invalid, "delivery.email.encryption_key is not base64",
                     "delivery.email.encryption_key", hint);
  if (key->size() != kPickupKeyBytes) {
    const std::size_t n = key->size();
    OPENSSL_cleanse(key->data(), key->size());
    return makeError(ErrorKind::Invalid,
                     "delivery.email.encryption_key must decode to 32 bytes (it decodes to " +
                         std::to_string(n) + ")",
                     "delivery.email.encryption_key", hint);
  }
  return key;
}

bool isPickupId(std::string_view id) {
  return id.size() == 22 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

const char* toString(PickupState state) {
  switch (state) {
    case PickupState::Waiting: return "waiting";
    case PickupState::Fetched: return "fetched";
    case PickupState::Expired: return "expired";
    case PickupState::Unknown: return "unknown";
  }
  return "unknown";
}

PickupBox::PickupBox(store::Store& store, std::string key, core::Seconds ttl)
    : store_(store), key_(std::move(key)), ttl_(ttl) {}

PickupBox::~PickupBox() { OPENSSL_cleanse(key_.data(), key_.size()); }

core::Result<PickupTicket> PickupBox::seal(const std::string& person,
                                           const std::string& token_alias,
                                           std::string_view secret, core::Instant now,
                                           std::optional<core::Instant> token_expires_at) {
  if (key_.size() != kPickupKeyBytes)
    return makeError(ErrorKind::Invalid, "the pickup encryption key is not 32 bytes",
                     "delivery.email.encryption_key");
  auto raw_id = randomBytes(kIdBytes);
  if (!raw_id) return raw_id.error();
  auto nonce = randomBytes(kNonceBytes);
  if (!nonce) return nonce.error();
  store::PickupRow row;
  row.id = jwt::base64UrlEncode(*raw_id);
  row.person = person;
  row.token_alias = token_alias;
  row.nonce = *nonce;
  row.created_at = now;
  row.expires_at = now + ttl_;
  if (token_expires_at && *token_expires_at < row.expires_at) row.expires_at = *token_expires_at;
  if (row.expires_at <= now)
    return makeError(ErrorKind::Invalid, "the token expires before it could be picked up",
                     person, "give the token grant a longer lifetime");
  auto sealed = sealBytes(key_, row.nonce, row.id, secret);
  if (!sealed) return sealed.error();
  row.ciphertext = std::move(*sealed);
  if (auto ins = store_.insertPickup(row); !ins) return ins.error();
  return PickupTicket{row.id, row.expires_at};
}

core::Result<TakenPickup> PickupBox::peek(const std::string& id, core::Instant now) {
  TakenPickup out;
  if (isPickupId(id)) {
    auto row = store_.pickup(id);
    if (!row) return row.error();
    if (*row) {
      out.state = stateOf(**row, now);
      out.expires_at = (*row)->expires_at;
    }
  }
  if (auto purged = store_.purgePickups(now); !purged) return purged.error();
  return out;
}

core::Result<TakenPickup> PickupBox::take(const std::string& id, core::Instant now) {
  TakenPickup out;
  auto tx = store_.begin();
  if (!tx) return tx.error();
  if (isPickupId(id)) {
    auto row = store_.pickup(id);
    if (!row) return row.error();
    if (*row) {
      store::PickupRow& r = **row;
      out.state = stateOf(r, now);
      out.expires_at = r.expires_at;
      if (out.state == PickupState::Waiting) {
        auto opened = openBytes(key_, r.nonce, r.id, r.ciphertext);
        if (!opened) return opened.error();
        if (!*opened)
          return makeError(ErrorKind::Corrupt,
                           "a waiting pickup does not open with delivery.email.encryption_key "
                           "(it was sealed with another key, or its bytes were altered); nothing "
                           "was consumed",
                           "delivery.email.encryption_key",
                           "give certgate serve the same encryption_key as certgate sync; a "
                           "pickup sealed with a lost key cannot be opened: revoke the token "
                           "(the next sync issues a new one)");
        auto marked = store_.markPickupFetched(id, now);
        if (!marked) {
          OPENSSL_cleanse((*opened)->data(), (*opened)->size());
          return marked.error();
        }
        out.secret = std::move(**opened);
      }
    }
  }
  if (auto purged = store_.purgePickups(now); !purged) {
    OPENSSL_cleanse(out.secret.data(), out.secret.size());
    return purged.error();
  }
  if (auto c = tx->commit(); !c) {
    OPENSSL_cleanse(out.secret.data(), out.secret.size());
    return c.error();
  }
  return out;
}

core::Status PickupBox::discard(const std::string& id, core::Instant now) {
  auto marked = store_.markPickupFetched(id, now);
  if (!marked) return marked.error();
  return {};
}

core::Result<std::int64_t> PickupBox::purge(core::Instant now) {
  return store_.purgePickups(now);
}

}  // namespace certgate::connectors::delivery
