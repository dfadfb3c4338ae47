#pragma once
/// \file
/// Observation: "Vault key P is at version V" as seen by polling, an event or a trigger.
/// Made by watch, consumed by sync.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "nicsync/core/version.hpp"

namespace nicsync {

/// What produced an observation.
enum class ObservationSource : std::uint8_t {
  poll,     ///< periodic metadata read
  event,    ///< Vault Enterprise event stream
  trigger,  ///< operator or rotation job (POST /v1/sync, `nicsyncd sync`)
};

/// The state of one Vault key at one moment.
struct Observation {
  /// The key's full path as the mapping names it, mount included ("secret/nic/07AAFCD5862R1ZX"):
  /// what pairs are matched by, whatever the mount turns out to be.
  std::string path;
  KvVersion kv = KvVersion::v2;
  /// KV v2: current version, lineage and state. KV v1: number 0 and no lineage (the content is
  /// compared by fingerprint once read).
  VersionId version;
  /// When Vault wrote this version (for write-to-delivery lag); epoch if unknown.
  std::chrono::system_clock::time_point written_at{};
  ObservationSource source = ObservationSource::poll;
  /// Push even if the fingerprint equals the applied one (operator request).
  bool force = false;
};

std::string_view to_string(ObservationSource s) noexcept;

}  // namespace nicsync
