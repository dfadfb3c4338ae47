#pragma once
/// \file
/// Vault value types: strong types for tokens, namespaces and paths (so they cannot be mixed
/// up), and what the KV engines return (secret data, key metadata, mount information).

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/observation.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"

namespace nicsync::vault {

/// A Vault token (`hvs.…`). Held in a `Secret`: it never prints and is wiped when released.
class Token {
 public:
  Token() = default;
  explicit Token(Secret value) : value_(std::move(value)) {}
  [[nodiscard]] const Secret& secret() const noexcept { return value_; }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  friend bool operator==(const Token& a, const Token& b) noexcept { return a.value_ == b.value_; }

 private:
  Secret value_;
};

/// A logical Vault path such as `secret/nic/07AAFCD5862R1ZX`: segments joined by single
/// slashes, no leading or trailing slash, no empty, `.` or `..` segment, no control
/// characters, `?` or `#` (Vault's Go front end would redirect such URLs, reference §12.7).
/// The empty path is the root.
class VaultPath {
 public:
  VaultPath() = default;
  /// Validates `text`; one leading and one trailing slash are tolerated and dropped.
  static Result<VaultPath> parse(std::string_view text);

  [[nodiscard]] const std::string& str() const noexcept { return value_; }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  /// `a / b` joins two paths (either may be empty).
  friend VaultPath operator/(const VaultPath& a, const VaultPath& b);
  /// True if `prefix` equals this path or is a whole-segment prefix of it.
  [[nodiscard]] bool starts_with(const VaultPath& prefix) const noexcept;
  /// The rest after a whole-segment `prefix` (empty if equal); requires `starts_with(prefix)`.
  [[nodiscard]] VaultPath strip_prefix(const VaultPath& prefix) const;

  friend auto operator<=>(const VaultPath&, const VaultPath&) = default;
  friend bool operator==(const VaultPath&, const VaultPath&) = default;

 private:
  explicit VaultPath(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

/// A Vault Enterprise namespace such as `team-a/app` (empty = root namespace). Sent as the
/// `X-Vault-Namespace` header on every request.
class Namespace {
 public:
  Namespace() = default;
  static Result<Namespace> parse(std::string_view text);
  [[nodiscard]] const std::string& str() const noexcept { return value_.str(); }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  friend bool operator==(const Namespace&, const Namespace&) = default;

 private:
  VaultPath value_;
};

/// A key inside a KV mount: mount `secret`, key `nic/07AAFCD5862R1ZX`.
struct KvPath {
  VaultPath mount;
  VaultPath key;

  /// `mount/key`, as an operator writes it (`vault kv get secret/nic/…`).
  [[nodiscard]] std::string str() const { return (mount / key).str(); }
  friend auto operator<=>(const KvPath&, const KvPath&) = default;
  friend bool operator==(const KvPath&, const KvPath&) = default;
};

/// One entry of a KV v2 key's `versions` map (or the `metadata` of a data read).
struct KvVersionInfo {
  std::int64_t version = 0;
  std::string created_time;   ///< RFC 3339 as Vault sent it
  std::string deletion_time;  ///< "" unless soft-deleted or scheduled for deletion
  bool destroyed = false;
  Clock::system_time created_at{};                ///< parsed created_time (epoch if empty)
  std::optional<Clock::system_time> deletion_at;  ///< parsed deletion_time

  /// destroyed, deleted (a deletion time at or before `now`), or present (also when the
  /// deletion time is still in the future: Vault keeps serving it until then).
  [[nodiscard]] SourceState state(Clock::system_time now) const noexcept;
};

/// The metadata of one KV v2 key (`GET <mount>/metadata/<key>`). Attribution fields of newer
/// Vaults (`created_by`, `deleted_by`, `last_updated_by`) are not required and not kept.
struct KvMetadata {
  KvPath path;
  std::int64_t current_version = 0;  ///< highest version ever written; 0 if none yet
  std::int64_t oldest_version = 0;
  std::int64_t max_versions = 0;  ///< the key's own setting; 0 = inherit from the mount
  bool cas_required = false;
  std::string delete_version_after;  ///< Go duration, "0s" when unset
  /// Key creation time as sent. A different value for the same path means the key was
  /// deleted and written again: a new lineage (see `Observation::lineage`).
  std::string created_time;
  std::string updated_time;
  Clock::system_time created_at{};
  Clock::system_time updated_at{};
  std::map<std::string, std::string> custom_metadata;
  std::map<std::int64_t, KvVersionInfo> versions;

  /// The entry of `current_version`, if the map has it.
  [[nodiscard]] const KvVersionInfo* current() const noexcept;
  /// State of the current version: missing when there is none (no version written yet, or
  /// it was evicted), else as `KvVersionInfo::state`.
  [[nodiscard]] SourceState current_state(Clock::system_time now) const noexcept;
};

/// The string fields of one secret version. Values are `Secret`s; fields whose JSON value is
/// not a string are kept by name only (their values are dropped).
class KvData {
 public:
  using Fields = std::map<std::string, Secret, std::less<>>;

  KvData() = default;
  KvData(std::string path, Fields fields, std::map<std::string, std::string> non_string)
      : path_(std::move(path)), fields_(std::move(fields)), non_string_(std::move(non_string)) {}

  /// The string field `name`. `vault_secret_malformed` names the path and says whether the
  /// field is missing or not a string (and which fields exist), never a value.
  [[nodiscard]] Result<const Secret*> field(std::string_view name) const;
  [[nodiscard]] const Fields& fields() const noexcept { return fields_; }
  /// Field name → JSON kind ("number", "object", …) for fields that are not strings.
  [[nodiscard]] const std::map<std::string, std::string>& non_string_fields() const noexcept { return non_string_; }

 private:
  std::string path_;
  Fields fields_;
  std::map<std::string, std::string> non_string_;
};

/// One version of a secret as read from KV v2 (`<mount>/data/<key>`) or KV v1.
struct KvSecret {
  KvPath path;
  KvVersion kv = KvVersion::v2;
  /// The version read (KV v2); 0 for KV v1, which has no versions.
  std::int64_t version = 0;
  /// The version's metadata (KV v2 only).
  KvVersionInfo metadata;
  /// The key's custom metadata (KV v2 only; sent with every data read).
  std::map<std::string, std::string> custom_metadata;
  KvData data;
};

/// What `sys/internal/ui/mounts/<path>` says about the mount holding a path.
struct MountInfo {
  /// Mount path without slashes, e.g. `secret` or `kv/team-a`. Empty when the server has
  /// no preflight endpoint (very old Vault, 404): the version is then assumed to be 1 and
  /// the whole path is used as is.
  VaultPath path;
  std::string type;  ///< "kv" (or "generic" on old servers)
  KvVersion version = KvVersion::v1;

  /// Splits a full logical path below this mount into mount and key.
  [[nodiscard]] Result<KvPath> split(const VaultPath& full) const;
};

/// Whether `path` is a key directly in the folder `folder` (which ends in '/'), as a mapping
/// set's members are: "secret/nic/X" is in "secret/nic/", "secret/nic/a/X" is not.
[[nodiscard]] bool directly_in_folder(std::string_view path, std::string_view folder) noexcept;

/// A key and the KV version of its mount: what reading it needs.
struct KvLocation {
  KvPath path;
  KvVersion kv = KvVersion::v1;
};

}  // namespace nicsync::vault

template <>
struct fmt::formatter<nicsync::vault::VaultPath> : fmt::formatter<std::string_view> {
  auto format(const nicsync::vault::VaultPath& p, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(p.str(), ctx);
  }
};

template <>
struct fmt::formatter<nicsync::vault::KvPath> : fmt::formatter<std::string_view> {
  auto format(const nicsync::vault::KvPath& p, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(p.str(), ctx);
  }
};

template <>
struct fmt::formatter<nicsync::vault::Token> : fmt::formatter<std::string_view> {
  auto format(const nicsync::vault::Token&, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
