#pragma once
/// \file
/// The one place mappings are resolved: configured [[mapping]]s and listed [[mapping_set]]s
/// become the engine's (destination, GSTIN, Vault key) pairs, and each observation goes to the
/// pairs of its Vault key. A mapping set resolves once Vault has been listed; an observation of
/// a key in a set's folder that arrives before the listing that makes it a member is held, and
/// delivered once its pairs exist — or dropped with a log line when the listing says the key is
/// not one. Nothing is dropped without a trace.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/gstin.hpp"
#include "nicsync/core/observation.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/sync/engine.hpp"
#include "nicsync/sync/mapping.hpp"

namespace nicsync::sync {

struct MapperStats {
  std::size_t held = 0;              ///< observations waiting for their pairs now
  std::uint64_t delivered_late = 0;  ///< observations held, then delivered
  std::uint64_t dropped = 0;         ///< observations of keys no pair reads (each logged)
};

class Mapper {
 public:
  /// At most this many observations wait for their pairs (one per key, the newest); beyond it
  /// the next full sweep reads the key again.
  static constexpr std::size_t kMaxHeld = 10'000;

  explicit Mapper(Engine& engine) : engine_(engine) {}

  /// The mappings in effect: the engine's pairs are rebuilt from them (mapping sets with their
  /// last listed members). Both lists are kept by reference and must stay alive and unchanged
  /// until the next call (the runtime's configuration holds them). Errors (the mappings in
  /// effect stay): a mapping names a destination that is not configured.
  Result<void> configure(const MappingList& mappings, const std::vector<MappingSetConfig>& sets);
  /// The Vault keys of the explicit mappings, for the watcher.
  [[nodiscard]] std::vector<std::string> watched_keys() const;
  /// The folders of the mapping sets, for the watcher.
  [[nodiscard]] std::vector<std::string> watched_prefixes() const;

  /// A listing of the mapping set at `prefix`: its members now (sorted).
  void set_listed(const std::string& prefix, std::vector<Gstin> members);
  /// Routes an observation to the pairs of its key; holds or drops it when there are none.
  void observe(const Observation& o);

  /// The GSTINs a change of the Vault key `path` concerns: those of the pairs that read it, or,
  /// for a key in a mapping set's folder that no pair reads yet (a standby lists no set), the
  /// key's name when it is a GSTIN under `mode`. Sorted, each once.
  [[nodiscard]] std::vector<Gstin> gstins_of(std::string_view path, GstinMode mode) const;

  [[nodiscard]] MapperStats stats() const;

 private:
  [[nodiscard]] std::vector<PairConfig> build() const;
  [[nodiscard]] bool in_a_set_folder(std::string_view path) const;
  /// Delivers the held observations whose pairs exist now; drops those the listing of
  /// `listed` (if any) did not make members.
  void release_held(const std::string* listed);

  Engine& engine_;
  const MappingList* mappings_ = nullptr;
  const std::vector<MappingSetConfig>* sets_ = nullptr;
  std::map<std::string, std::vector<Gstin>, std::less<>> members_;  // set prefix → listed GSTINs
  std::map<std::string, Observation, std::less<>> held_;            // Vault key → newest observation
  std::uint64_t delivered_late_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace nicsync::sync
