#include "nicsync/ledger/fingerprint.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <sys/stat.h>

namespace nicsync::ledger {

// An HMAC-SHA256 context already initialised with the key; each fingerprint works on a copy,
// so the key is set up once and never leaves OpenSSL (which wipes it when the context goes).
struct Fingerprinter::Keyed {
  EVP_MAC_CTX* ctx = nullptr;
  ~Keyed() { EVP_MAC_CTX_free(ctx); }
};

namespace {

// Domain separation: a fingerprint of this scheme can never equal any other HMAC made with the key.
constexpr std::string_view kDomainTag = "nicsync credential fingerprint v1";

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<Secret> read_key(const std::filesystem::path& path, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Error(Errc::ledger_io, fmt::format("cannot stat fingerprint key {}: {}", path.string(), errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Errc::ledger_io, fmt::format("fingerprint key {} is not a regular file; remove it", path.string()));
  }
  if ((st.st_mode & 077) != 0) {
    return Error(Errc::ledger_io,
                 fmt::format("fingerprint key {} is accessible to other users (mode {:04o}); run chmod 600 on it",
                             path.string(), st.st_mode & 07777));
  }
  if (st.st_size != static_cast<off_t>(Fingerprinter::kKeySize)) {
    return Error(Errc::ledger_corrupt,
                 fmt::format("fingerprint key {} has {} bytes instead of {}: it is damaged; restore it from a "
                             "backup (removing it makes nicsyncd create a new key and push every credential once "
                             "more)",
                             path.string(), st.st_size, Fingerprinter::kKeySize));
  }
  std::string buf(Fingerprinter::kKeySize, '\0');
  std::size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      secure_wipe(buf);
      return Error(Errc::ledger_io, fmt::format("cannot read fingerprint key {}: {}", path.string(), errno_text(err)));
    }
    got += static_cast<std::size_t>(n);
  }
  return Secret::take(buf);
}

// Writes a fresh key next to `path` and links it into place, so that the key file is either
// absent or complete; if another process won the race, its key is used.
Result<void> create_key(const std::filesystem::path& path) {
  std::array<unsigned char, Fingerprinter::kKeySize> key{};
  if (RAND_priv_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return Error(Errc::internal, "the random number generator failed to produce a fingerprint key");
  }
  // A unique temporary name: several processes (or threads) may race to create the key.
  std::string tmp = path.string() + ".tmp.XXXXXX";
  Result<void> out;
  {
    Fd f{::mkostemp(tmp.data(), O_CLOEXEC)};
    if (f.fd < 0) {
      out = Error(Errc::ledger_io,
                  fmt::format("cannot create a fingerprint key next to {}: {}", path.string(), errno_text(errno)));
      tmp.clear();
    } else if (::fchmod(f.fd, 0600) != 0 || ::write(f.fd, key.data(), key.size()) != static_cast<ssize_t>(key.size()) ||
               ::fsync(f.fd) != 0) {
      out = Error(Errc::ledger_io, fmt::format("cannot write fingerprint key {}: {}", tmp, errno_text(errno)));
    }
  }
  secure_wipe(key.data(), key.size());
  // link() never replaces an existing file: the first key to land wins, the others are dropped.
  if (out && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    out = Error(Errc::ledger_io, fmt::format("cannot create fingerprint key {}: {}", path.string(), errno_text(errno)));
  }
  if (!tmp.empty()) ::unlink(tmp.c_str());
  if (!out) return out;
  // The new name must survive a crash too.
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
  return {};
}

}  // namespace

Result<Fingerprinter> Fingerprinter::open(const std::filesystem::path& key_file) {
  for (int round = 0; round < 2; ++round) {
    Fd f{::open(key_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    if (f.fd >= 0) {
      auto key = read_key(key_file, f.fd);
      if (!key) return key.error();
      return with_key(std::move(*key));
    }
    if (errno != ENOENT) {
      return Error(Errc::ledger_io, fmt::format("cannot open fingerprint key {}: {}; fix its ownership or permissions",
                                                key_file.string(), errno_text(errno)));
    }
    if (round == 0) {
      if (auto created = create_key(key_file); !created) return created.error();
    }
  }
  return Error(Errc::ledger_io,
               fmt::format("fingerprint key {} vanished right after it was created", key_file.string()));
}

Result<Secret> Fingerprinter::read_key_file(const std::filesystem::path& key_file) {
  Fd f{::open(key_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (f.fd < 0) {
    return Error(Errc::ledger_io,
                 fmt::format("cannot open fingerprint key {}: {}", key_file.string(), errno_text(errno)));
  }
  return read_key(key_file, f.fd);
}

Result<Fingerprinter> Fingerprinter::with_key(Secret key) {
  if (key.size() != kKeySize) {
    return Error(Errc::invalid_argument, fmt::format("a fingerprint key has {} bytes, not {}", key.size(), kKeySize));
  }
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return Error(Errc::internal, "OpenSSL offers no HMAC");
  auto keyed = std::make_shared<Keyed>();
  keyed->ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);  // the context keeps its own reference
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  const auto* k = reinterpret_cast<const unsigned char*>(key.expose().data());
  if (keyed->ctx == nullptr || EVP_MAC_init(keyed->ctx, k, key.size(), params) != 1) {
    return Error(Errc::internal, "OpenSSL could not set up HMAC-SHA256");
  }
  return Fingerprinter(std::move(keyed));
}

Fingerprint Fingerprinter::fingerprint(std::string_view username, const Secret& password) const {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_->ctx);
  if (ctx == nullptr) throw std::bad_alloc();
  const auto update = [ctx](std::string_view bytes) {
    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  };
  const auto update_field = [&](std::string_view field) {
    unsigned char len[8];
    auto n = static_cast<std::uint64_t>(field.size());
    for (int i = 7; i >= 0; --i) {
      len[i] = static_cast<unsigned char>(n & 0xff);
      n >>= 8;
    }
    update({reinterpret_cast<const char*>(len), sizeof len});
    update(field);
  };
  update_field(kDomainTag);
  update_field(username);
  update_field(password.expose());
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t out_len = 0;
  const int ok = EVP_MAC_final(ctx, out, &out_len, sizeof out);
  EVP_MAC_CTX_free(ctx);  // wipes the copied state
  if (ok != 1) throw std::runtime_error("HMAC-SHA256 failed");
  Fingerprint::Bytes bytes{};
  std::copy_n(out, std::min(out_len, bytes.size()), bytes.begin());
  secure_wipe(out, sizeof out);
  return Fingerprint(bytes);
}

}  // namespace nicsync::ledger
