#pragma once
/// \file
/// Fingerprints of credentials: keyed HMAC-SHA256 with a per-install key, so the ledger can tell
/// whether a destination already holds a credential without holding the credential.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/core/version.hpp"

namespace nicsync::ledger {

/// Computes `HMAC-SHA256(key, encode(username, password))`. Cheap to copy (the keyed
/// state is shared) and safe to use from several threads.
///
/// The encoding is unambiguous (a domain tag, then each field prefixed by its 8-byte big-endian
/// length), so no two different (username, password) pairs hash the same input. Without the key
/// a fingerprint reveals nothing about the password, not even through a dictionary; the key
/// lives in its own `0600` file next to the ledger and never in it.
class Fingerprinter {
 public:
  static constexpr std::size_t kKeySize = 32;
  static constexpr std::string_view kKeyFileName = "fingerprint.key";

  /// Reads the key from `key_file`, creating it atomically with 32 random bytes (mode `0600`)
  /// if it does not exist. Errors: `ledger_io` (unreadable, not a regular file, readable by
  /// others), `ledger_corrupt` (wrong size), each with what the operator should do.
  static Result<Fingerprinter> open(const std::filesystem::path& key_file);

  /// The key in `key_file`, which must exist (moving a ledger: the key goes with it). Errors as
  /// `open`.
  static Result<Secret> read_key_file(const std::filesystem::path& key_file);

  /// A fingerprinter with the given key (tests, tools). The key must be `kKeySize` bytes.
  static Result<Fingerprinter> with_key(Secret key);

  [[nodiscard]] Fingerprint fingerprint(std::string_view username, const Secret& password) const;

 private:
  struct Keyed;
  explicit Fingerprinter(std::shared_ptr<const Keyed> keyed) noexcept : keyed_(std::move(keyed)) {}
  std::shared_ptr<const Keyed> keyed_;
};

}  // namespace nicsync::ledger
