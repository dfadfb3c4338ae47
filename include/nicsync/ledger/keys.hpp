#pragma once
/// \file
/// The keys of a ledger shared by several daemons: the fingerprint key (HMAC of credentials) and
/// the sealing key (AES-256-GCM for the one secret the ledger keeps: a destination's cached
/// access token). Every daemon on the same ledger needs the same two; the database never sees
/// either. They come from a file the operator hands in (systemd `LoadCredential=`) or from Vault.

#include <filesystem>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"

namespace nicsync::ledger {

struct LedgerKeys {
  static constexpr std::size_t kKeySize = 32;
  Secret fingerprint;  ///< 32 bytes: the fingerprints' HMAC key
  Secret sealing;      ///< 32 bytes: the AES-256-GCM key of sealed blobs

  /// Two fresh random keys; `fingerprint` keeps a key already in use (moving a SQLite ledger
  /// over without pushing everything again) when given.
  static Result<LedgerKeys> generate(const Secret* fingerprint = nullptr);
  /// From the keys file's text: `fingerprint_key = <base64>` and `sealing_key = <base64>` lines
  /// ('#' comments and blank lines allowed). `where` names the source in errors.
  static Result<LedgerKeys> parse(std::string_view text, std::string_view where);
  /// From the base64 values of the two fields (as kept in Vault).
  static Result<LedgerKeys> from_base64(std::string_view fingerprint_b64, std::string_view sealing_b64,
                                        std::string_view where);
  /// The keys file's text (holds both keys: wipe it once written).
  [[nodiscard]] std::string to_text() const;
};

/// Reads a keys file: a regular file not readable by other users, in the format of
/// `LedgerKeys::parse`. Errors (config_invalid) say what to fix.
Result<LedgerKeys> read_keys_file(const std::filesystem::path& path);

/// Writes `keys` to a new file `path` with mode 0600 (refused if it exists, unless `replace`).
Result<void> write_keys_file(const std::filesystem::path& path, const LedgerKeys& keys, bool replace);

/// AES-256-GCM with a random 96-bit nonce per message; the blob's name is authenticated with it
/// (a sealed token cannot be moved under another name). Sealed form: version byte, nonce,
/// ciphertext, 16-byte tag.
class Sealer {
 public:
  /// `key` must be 32 bytes.
  static Result<Sealer> with_key(Secret key);
  [[nodiscard]] Result<std::string> seal(std::string_view name, std::string_view plaintext) const;
  /// The plaintext, or `ledger_corrupt` when the blob was altered, sealed with another key or
  /// under another name.
  [[nodiscard]] Result<Secret> open(std::string_view name, std::string_view sealed) const;

 private:
  explicit Sealer(Secret key) : key_(std::move(key)) {}
  Secret key_;
};

}  // namespace nicsync::ledger
