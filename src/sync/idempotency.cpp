#include "nicsync/sync/idempotency.hpp"

#include <openssl/evp.h>

#include "nicsync/core/text.hpp"

namespace nicsync::sync {

std::string idempotency_key(std::string_view destination, const Gstin& gstin, std::string_view vault_path,
                            std::string_view lineage, std::int64_t version) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  auto feed = [&](std::string_view part) {
    // Length prefix: "ab"+"c" and "a"+"bc" must not collide.
    const std::uint64_t n = part.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    EVP_DigestUpdate(ctx, len, sizeof len);
    EVP_DigestUpdate(ctx, part.data(), part.size());
  };
  feed("nicsync-idempotency-v1");
  feed(destination);
  feed(gstin.str());
  feed(vault_path);
  feed(lineage);
  feed(std::to_string(version));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  return to_hex(digest, size);
}

}  // namespace nicsync::sync
