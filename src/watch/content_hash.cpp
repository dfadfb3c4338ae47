#include "watch/content_hash.hpp"

#include <algorithm>

#include <openssl/evp.h>

namespace nicsync::watch {

std::array<unsigned char, 16> content_hash(const vault::KvData& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  auto feed = [&](std::string_view part) {
    const std::uint64_t n = part.size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, part.data(), part.size());
  };
  for (const auto& [name, value] : data.fields()) {
    feed(name);
    feed(value.expose());
  }
  for (const auto& [name, kind] : data.non_string_fields()) {
    feed(name);
    feed(kind);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  std::array<unsigned char, 16> out{};
  std::copy_n(digest, std::min<std::size_t>(size, out.size()), out.begin());
  return out;
}

}  // namespace nicsync::watch
