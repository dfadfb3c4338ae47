#include "nicsync/ledger/keys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <sys/stat.h>

namespace nicsync::ledger {
namespace {

constexpr unsigned char kSealVersion = 1;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Exactly 32 bytes from base64, or nothing.
std::optional<Secret> key_from_base64(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  if (text.size() != 44 || text.back() != '=') return std::nullopt;  // 32 bytes: 43 characters and one '='
  std::array<unsigned char, 33> out{};
  const int n =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  std::optional<Secret> key;
  if (n == 33) key = Secret(std::string_view(reinterpret_cast<const char*>(out.data()), LedgerKeys::kKeySize));
  secure_wipe(out.data(), out.size());
  return key;
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

Result<Secret> random_key() {
  std::array<unsigned char, LedgerKeys::kKeySize> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Error(Errc::internal, "OpenSSL could not give random bytes for a key");
  }
  Secret key(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  secure_wipe(bytes.data(), bytes.size());
  return key;
}

}  // namespace

Result<LedgerKeys> LedgerKeys::generate(const Secret* fingerprint) {
  LedgerKeys keys;
  if (fingerprint != nullptr) {
    if (fingerprint->size() != kKeySize) {
      return Error(Errc::invalid_argument,
                   fmt::format("a fingerprint key has {} bytes, not {}", fingerprint->size(), kKeySize));
    }
    keys.fingerprint = *fingerprint;
  } else {
    auto f = random_key();
    if (!f) return f.error();
    keys.fingerprint = std::move(*f);
  }
  auto s = random_key();
  if (!s) return s.error();
  keys.sealing = std::move(*s);
  return keys;
}

Result<LedgerKeys> LedgerKeys::from_base64(std::string_view fingerprint_b64, std::string_view sealing_b64,
                                           std::string_view where) {
  auto f = key_from_base64(fingerprint_b64);
  auto s = key_from_base64(sealing_b64);
  if (!f || !s) {
    return Error(Errc::config_invalid,
                 fmt::format("{}: {} is not 32 bytes in base64; make the keys with `nicsyncd ledger keys`", where,
                             !f ? "fingerprint_key" : "sealing_key"));
  }
  return LedgerKeys{std::move(*f), std::move(*s)};
}

Result<LedgerKeys> LedgerKeys::parse(std::string_view text, std::string_view where) {
  std::string_view fingerprint, sealing;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#' || line == "\r") continue;
    const auto eq = line.find('=');
    std::string_view name = line.substr(0, eq);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (eq != std::string_view::npos && name == "fingerprint_key") {
      fingerprint = line.substr(eq + 1);
    } else if (eq != std::string_view::npos && name == "sealing_key") {
      sealing = line.substr(eq + 1);
    } else {
      // Never quote the line: it may hold a key.
      return Error(
          Errc::config_invalid,
          fmt::format("{}:{}: expected `fingerprint_key = <base64>` or `sealing_key = <base64>`", where, line_no));
    }
  }
  if (fingerprint.empty() || sealing.empty()) {
    return Error(Errc::config_invalid, fmt::format("{}: needs both fingerprint_key and sealing_key; make the file "
                                                   "with `nicsyncd ledger keys`",
                                                   where));
  }
  return from_base64(fingerprint, sealing, where);
}

std::string LedgerKeys::to_text() const {
  return fmt::format(
      "# nicsync ledger keys: the same file for every daemon on this ledger. Keep it secret (mode 0600),\n"
      "# back it up with the database: without the fingerprint key every credential is pushed again.\n"
      "fingerprint_key = {}\nsealing_key = {}\n",
      base64(fingerprint.expose()), base64(sealing.expose()));
}

Result<LedgerKeys> read_keys_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::config_invalid,
                 fmt::format("cannot read the ledger keys file {}: {}", path.string(), errno_text(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(Errc::config_invalid, fmt::format("the ledger keys file {} is not a regular file", path.string()));
  }
  if ((st.st_mode & 007) != 0) {
    return Error(Errc::config_invalid,
                 fmt::format("the ledger keys file {} is readable by other users (mode {:04o}); run chmod 600 on it",
                             path.string(), st.st_mode & 07777));
  }
  constexpr off_t kMaxBytes = 4096;
  if (st.st_size > kMaxBytes) {
    return Error(Errc::config_invalid, fmt::format("the ledger keys file {} is larger than 4 KiB; is it the right "
                                                   "file?",
                                                   path.string()));
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  auto keys = LedgerKeys::parse(text, path.string());
  secure_wipe(text);
  return keys;
}

Result<void> write_keys_file(const std::filesystem::path& path, const LedgerKeys& keys, bool replace) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (replace ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    return Error(Errc::io_error,
                 errno == EEXIST
                     ? fmt::format("{} exists already; keep it (every daemon on the ledger needs the same keys) or "
                                   "remove it first",
                                   path.string())
                     : fmt::format("cannot create {}: {}", path.string(), errno_text(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string text = keys.to_text();
  std::size_t done = 0;
  bool ok = ::fchmod(fd, 0600) == 0;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  secure_wipe(text);
  if (!ok) return Error(Errc::io_error, fmt::format("cannot write {}: {}", path.string(), errno_text(errno)));
  return {};
}

Result<Sealer> Sealer::with_key(Secret key) {
  if (key.size() != LedgerKeys::kKeySize) {
    return Error(Errc::invalid_argument,
                 fmt::format("a sealing key has {} bytes, not {}", key.size(), LedgerKeys::kKeySize));
  }
  return Sealer(std::move(key));
}

Result<std::string> Sealer::seal(std::string_view name, std::string_view plaintext) const {
  std::string out(1 + kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  bytes[0] = kSealVersion;
  unsigned char* nonce = bytes + 1;
  unsigned char* cipher = nonce + kNonceSize;
  if (RAND_bytes(nonce, static_cast<int>(kNonceSize)) != 1) {
    return Error(Errc::internal, "OpenSSL could not give random bytes for a nonce");
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  bool ok = ctx != nullptr && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx, nullptr, nullptr, reinterpret_cast<const unsigned char*>(key_.expose().data()),
                               nonce) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(name.data()),
                              static_cast<int>(name.size())) == 1 &&
            EVP_EncryptUpdate(ctx, cipher, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1;
  int tail = 0;
  ok = ok && EVP_EncryptFinal_ex(ctx, cipher + len, &tail) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), cipher + plaintext.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return Error(Errc::internal, "OpenSSL could not seal with AES-256-GCM");
  return out;
}

Result<Secret> Sealer::open(std::string_view name, std::string_view sealed) const {
  if (sealed.size() < 1 + kNonceSize + kTagSize || static_cast<unsigned char>(sealed[0]) != kSealVersion) {
    return Error(Errc::ledger_corrupt, fmt::format("sealed {} is not in a form this nicsyncd knows", name));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* nonce = bytes + 1;
  const unsigned char* cipher = nonce + kNonceSize;
  const std::size_t size = sealed.size() - 1 - kNonceSize - kTagSize;
  std::string plain(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  std::array<unsigned char, kTagSize> tag{};
  std::copy_n(cipher + size, kTagSize, tag.begin());
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  int tail = 0;
  const bool ok = ctx != nullptr && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) == 1 &&
                  EVP_DecryptInit_ex(ctx, nullptr, nullptr,
                                     reinterpret_cast<const unsigned char*>(key_.expose().data()), nonce) == 1 &&
                  EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(name.data()),
                                    static_cast<int>(name.size())) == 1 &&
                  EVP_DecryptUpdate(ctx, out, &len, cipher, static_cast<int>(size)) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag.data()) == 1 &&
                  EVP_DecryptFinal_ex(ctx, out + len, &tail) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    secure_wipe(plain);
    return Error(Errc::ledger_corrupt,
                 fmt::format("sealed {} does not open with this sealing key: was it sealed by a daemon with another "
                             "keys file? Give every daemon on this ledger the same keys file",
                             name));
  }
  return Secret::take(plain);
}

}  // namespace nicsync::ledger
