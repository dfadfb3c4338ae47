#pragma once
/// \file
/// Observation: "Vault path P is at version V" as seen by polling, an event or a trigger.
/// Made by watch, consumed by sync.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace nicsync {

/// KV engine version of the mount a path lives on.
enum class KvVersion : std::uint8_t { v1 = 1, v2 = 2 };

/// State of the current version of a Vault key.
enum class SourceState : std::uint8_t {
  present,    ///< readable
  deleted,    ///< current version soft-deleted (or expired by delete_version_after)
  destroyed,  ///< current version destroyed
  missing,    ///< no such key (never written, or metadata deleted)
};

/// What produced an observation.
enum class ObservationSource : std::uint8_t {
  poll,     ///< periodic metadata read
  event,    ///< Vault Enterprise event stream
  trigger,  ///< operator or rotation job (POST /v1/sync, `nicsyncd sync`)
};

/// The state of one Vault key at one moment.
struct Observation {
  std::string mount;  ///< mount path without slashes, e.g. "secret"
  std::string key;    ///< key below the mount, e.g. "nic/07AAFCD5862R1ZX"
  KvVersion kv = KvVersion::v2;
  /// KV v2 current version; 0 for KV v1 (which has none: compared by fingerprint).
  std::int64_t version = 0;
  /// KV v2 metadata `created_time` of the key. A different value means the key was
  /// deleted and recreated: a new lineage in which lower versions are still news.
  std::string lineage;
  SourceState state = SourceState::present;
  /// When Vault wrote this version (for write-to-delivery lag); epoch if unknown.
  std::chrono::system_clock::time_point written_at{};
  ObservationSource source = ObservationSource::poll;
  /// Push even if the fingerprint equals the applied one (operator request).
  bool force = false;
};

std::string_view to_string(SourceState s) noexcept;
std::string_view to_string(ObservationSource s) noexcept;

}  // namespace nicsync
