#include "testing/engine_fakes.hpp"

#include <openssl/evp.h>

namespace nicsync::testing {

Fingerprint test_fingerprint(std::string_view username, const Secret& password) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (std::string_view part : {username, password.expose()}) {
    const std::uint64_t n = part.size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  Fingerprint::Bytes out{};
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &size);
  EVP_MD_CTX_free(ctx);
  return Fingerprint(out);
}

}  // namespace nicsync::testing
