#pragma once
/// \file
/// One line of a Vault or OpenBao audit device (socket, or OpenBao's http device) read as a hint
/// that a KV key changed (reference vault-audit.md §1–§2). The line is recognised, never
/// trusted: a hint makes the watcher read the key the way a poll does, and nothing of the entry
/// is kept beyond the few routing fields below. Values an entry carries (`request.data`,
/// `response.data`, tokens, HMAC'd or, with `log_raw`, plain) are never copied.
///
/// Fields are looked up by name, in any order: Vault ≤ 1.16 and OpenBao write them in Go struct
/// order (`time, type, auth, request, …`), Vault 1.17–1.20 sorted (`auth, error, …, type`),
/// newer Vault `time` first; optional fields (`auth`, `response`, `mount_*`, `namespace.path`)
/// may be missing and unknown fields are skipped.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"

namespace nicsync::watch {

/// The longest line (prefix and JSON, without its newline) that is read. A LIST of 10,000 keys
/// is close to 1 MiB; anything longer is not read at all (`AuditIgnoreReason::too_large`).
inline constexpr std::size_t kMaxAuditLineBytes = std::size_t{4} << 20;

/// The entry's `type`.
enum class AuditEntryType : std::uint8_t {
  unknown,   ///< missing, or anything else (a plugin's "<mount_type>-request" entries)
  request,   ///< written before the request runs (it may still fail)
  response,  ///< written after it ran, before the client gets the answer
};

/// `request.operation` (Vault's logical operation, from the HTTP method and the path).
enum class AuditOperation : std::uint8_t {
  unknown,  ///< missing
  create,   ///< POST/PUT where the target did not exist yet
  update,   ///< POST/PUT (also every delete/, undelete/ and destroy/ call)
  patch,    ///< PATCH
  del,      ///< "delete": HTTP DELETE
  read,     ///< GET
  list,     ///< LIST, GET ?list=true
  other,    ///< help, renew, revoke, rollback, scan, …
};

/// Whether the entry says a KV key may have changed.
enum class AuditVerdict : std::uint8_t {
  kv_change,  ///< a successful write, patch, delete, undelete, destroy or metadata change
  ignored,    ///< anything else; `reason` says why
};

/// Why an entry is ignored.
enum class AuditIgnoreReason : std::uint8_t {
  none,          ///< not ignored (a KV change)
  too_large,     ///< longer than kMaxAuditLineBytes: not read
  not_response,  ///< a request entry, the enable test probe, or any other type
  failed,        ///< an `error`, or an `error` key in `response.data` (a backend error response)
  not_a_change,  ///< read, list or another operation that changes nothing
  not_kv,        ///< a mount that is not a KV engine (sys/, auth/, identity/, cubbyhole/, …)
  no_key,        ///< a KV path that names no key (the mount itself)
};

/// The KV v2 segment a path has right after its mount.
enum class KvSegment : std::uint8_t {
  none,             ///< none (a KV v1 key; or config, subkeys/, detailed-metadata/ on KV v2)
  data,             ///< data/K: a new version (write, patch) or the latest one soft-deleted
  metadata,         ///< metadata/K: key settings written, or the key and every version deleted
  delete_versions,  ///< delete/K: versions soft-deleted
  undelete,         ///< undelete/K
  destroy,          ///< destroy/K
};

/// The key a KV change names. An entry does not say whether its mount is KV v1 or v2 (the
/// caller knows from the mount's options), so both readings are given; all paths are relative
/// to the entry's namespace (`AuditHint::namespace_path`) and have no leading slash.
struct AuditKvTarget {
  /// The mount without slashes ("secret"); empty when the entry names no mount (Vault 1.13 has
  /// no `mount_point`): find the mount in the mount list and call `kv_target_below` then.
  std::string mount;
  /// The key's full path if the mount is KV v2: "secret/nic/X" for "secret/data/nic/X".
  /// Empty when the path has no KV v2 segment followed by a key.
  std::string kv2_path;
  KvSegment kv2_segment = KvSegment::none;
  /// The key's full path if the mount is KV v1: the request path itself.
  std::string kv1_path;
};

/// What a line says, as far as the daemon cares.
///
/// For an ignored entry read with `AuditScan::until_decided`, only the fields met before the
/// decision are filled; a read (`operation` "read") is decided at the end of its `request`
/// object, so its `path`, `mount_point`, `mount_type`, `namespace_path` and `request_id` are
/// there: the daemon recognises its own reads coming back through the feed by them.
struct AuditHint {
  AuditVerdict verdict = AuditVerdict::ignored;
  AuditIgnoreReason reason = AuditIgnoreReason::none;
  AuditEntryType type = AuditEntryType::unknown;
  /// The top-level `time` as sent (RFC 3339, precision varies), for the write-to-seen lag.
  std::string time;
  /// A non-empty top-level `error`, or an `error` key in `response.data`.
  bool error = false;
  AuditOperation operation = AuditOperation::unknown;
  /// `request.id`: the same in the request and the response entry, and on every device and
  /// node, so hints can be told apart from repeats.
  std::string request_id;
  /// `request.path`: relative to the namespace, mount first ("secret/data/nic/X").
  std::string path;
  /// `request.mount_point` as sent: namespace prefix included, trailing slash ("team1/secret/").
  std::string mount_point;
  /// `request.mount_type`: "kv" for both KV versions ("generic" on some very old v1 mounts).
  std::string mount_type;
  /// `request.namespace.path`: "" for the root namespace, else "team1/" (trailing slash).
  std::string namespace_path;
  /// Set for a `kv_change`.
  AuditKvTarget kv;

  [[nodiscard]] bool kv_change() const noexcept { return verdict == AuditVerdict::kv_change; }
};

/// How much of a line to read.
enum class AuditScan : std::uint8_t {
  /// Stop as soon as the entry is known to be ignored (a read's `response.data` is never
  /// scanned). Bytes after that point are not checked: a broken tail of an ignored entry goes
  /// unnoticed. Where several reasons apply, the one met first is given, so it can differ
  /// between field orders; the verdict cannot.
  until_decided,
  /// Read and check every byte; the reason is the first of `AuditIgnoreReason`'s order that
  /// applies, whatever the field order.
  whole,
};

/// Reads one audit line: `prefix` (the device's `prefix` option) when the line starts with it,
/// or else anything before the first `{`, then one JSON object, then optional whitespace (the
/// newline). A line longer than kMaxAuditLineBytes is ignored unread (`too_large`).
///
/// Errors (`vault_bad_response`): not JSON, truncated, not an object, nesting deeper than Go's
/// decoder allows, or bytes after the object. Messages give the byte offset and never any
/// content of the line.
Result<AuditHint> parse_audit_entry(std::string_view line, std::string_view prefix = {},
                                    AuditScan scan = AuditScan::until_decided);

/// The KV readings of `path` below `mount` (mount without slashes; both relative to one
/// namespace); `mount` empty when `path` does not lie below it.
AuditKvTarget kv_target_below(std::string_view path, std::string_view mount);

/// `path`, relative to the entry's namespace `entry_namespace` (`namespace_path`), as seen
/// from namespace `watched_namespace` (VAULT_NAMESPACE: "", "team1", "team1/app/"); nothing
/// when the path lies outside of it.
std::optional<std::string> path_in_namespace(std::string_view entry_namespace, std::string_view path,
                                             std::string_view watched_namespace);

std::string_view to_string(AuditIgnoreReason reason) noexcept;
std::string_view to_string(AuditOperation operation) noexcept;

}  // namespace nicsync::watch
