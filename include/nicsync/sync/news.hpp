#pragma once
/// \file
/// "Is this observation news for this pair?" — one pure rule, used by the engine for every
/// observation and by `sync --dry-run` to say what a sync would do.

#include <cstdint>
#include <optional>
#include <string_view>

#include "nicsync/core/observation.hpp"
#include "nicsync/ledger/store.hpp"

namespace nicsync::sync {

/// What a pair holds and works towards, as far as news is concerned.
struct PairPosition {
  ledger::PairState state = ledger::PairState::pending;
  const VersionId* applied = nullptr;  ///< what the destination holds, if anything
  const VersionId* pending = nullptr;  ///< the version the ledger says is waiting (parked, rejected, retrying)
  /// The newest observation the engine works towards and has not finished, if any.
  const VersionId* target = nullptr;
  bool target_forced = false;  ///< that observation asked for a push even of equal values
  bool delivering = false;     ///< a delivery is under way
};

enum class News : std::uint8_t {
  none,           ///< nothing the pair does not already hold or work towards: ignore it
  version,        ///< a version (or state) the pair has not seen: deliver it
  content_check,  ///< KV v1, which has no versions: only reading and fingerprinting can tell
};

std::string_view to_string(News n) noexcept;

/// In one lineage, versions are ordered by number (a lower one is stale); lineages themselves
/// are never ordered: a different one (the key was deleted and written again) is always news,
/// even at a lower number. A parked or rejected version waits for a different one; a version that is pending
/// or retrying without a target has nothing working on it, so seeing it again is news. A
/// deleted or destroyed current version is news unless the pair already stands as source
/// deleted with nothing under way; a readable version after a deletion is news. `force` makes
/// a readable version news unless the same forced version is already under way.
[[nodiscard]] News is_news(const Observation& o, const PairPosition& pair) noexcept;

}  // namespace nicsync::sync
