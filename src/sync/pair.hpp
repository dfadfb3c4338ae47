#pragma once
// A pair as the engine holds it, for months, for up to 100,000 pairs that are nearly all in
// sync: its config (what a mapping set's pairs have in common held once), its progress (the
// ledger record without the identity the config has, the last error allocated only while there
// is one) and the target it works towards, allocated only while there is one.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>

#include "nicsync/core/observation.hpp"
#include "nicsync/ledger/store.hpp"
#include "nicsync/sync/limits.hpp"
#include "nicsync/sync/mapping.hpp"

namespace nicsync::sync {

using SystemTime = std::chrono::system_clock::time_point;

/// What a pair should hold, from the newest observation not yet dealt with.
struct Target {
  VersionId version;
  KvVersion kv = KvVersion::v2;
  bool force = false;
  SystemTime written_at{};
  SteadyTime observed_at{};
  std::uint64_t serial = 0;  // a new observation replaces the target with a higher serial
};

/// The texts of a pair's last error.
struct LastError {
  std::string error_class;
  std::string code;
  std::string provider;
  std::string message;
};

/// A pair's ledger::PairRecord without its identity (destination, GSTIN and Vault path: the
/// pair's config has them), the last error's texts and a pending version allocated only while
/// there is one.
struct PairProgress {
  ledger::PairState state = ledger::PairState::pending;
  bool push_in_flight = false;
  int attempts = 0;
  std::optional<ledger::VersionRef> applied;
  std::unique_ptr<ledger::VersionRef> pending;
  SystemTime applied_at{};
  SystemTime first_attempt_at{};
  SystemTime next_attempt_at{};
  SystemTime updated_at{};
  std::unique_ptr<LastError> error;

  PairProgress() = default;
  explicit PairProgress(ledger::PairRecord r);

  /// The error texts, allocated if there were none.
  LastError& set_error();
  /// Forgets the pending version and everything about its attempts.
  void clear_pending();
  /// The ledger's record of it, with the identity put back.
  [[nodiscard]] ledger::PairRecord to_record(std::string destination, std::string gstin, std::string path) const;
};

/// A PairConfig as a pair holds it: what all the pairs of a mapping set have in common
/// (destination and field names) is held once and shared.
class HeldConfig {
 public:
  struct Shared {
    std::string destination;
    std::string username_field;
    std::string password_field;
    auto tie() const { return std::tie(destination, username_field, password_field); }
  };
  /// One `Shared` per distinct value, so that pairs of the same set use the same one.
  class Interner {
   public:
    std::shared_ptr<const Shared> get(const PairConfig& c);
    /// Forgets the values no pair uses any more.
    void prune();

   private:
    std::vector<std::shared_ptr<const Shared>> known_;  // a handful: one per set and destination
  };

  HeldConfig(PairConfig c, Interner& interner)
      : gstin(std::move(c.gstin)), path(std::move(c.source.path)), shared_(interner.get(c)) {}

  Gstin gstin;
  std::string path;  ///< the Vault key, mount included

  [[nodiscard]] const std::string& destination() const noexcept { return shared_->destination; }
  [[nodiscard]] SourceRef source() const { return SourceRef{path, shared_->username_field, shared_->password_field}; }
  [[nodiscard]] PairConfig full() const { return PairConfig{shared_->destination, gstin, source()}; }

 private:
  std::shared_ptr<const Shared> shared_;
};

class Lane;

struct Pair {
  HeldConfig config;
  PairProgress progress;
  std::unique_ptr<Target> target;  // allocated while there is one (memory: most pairs are idle)
  Lane* lane = nullptr;
  bool queued = false;
  bool in_flight = false;  // a delivery is under way (one per pair at a time)
  bool push_slot = false;  // it holds one of its lane's push slots
  bool removed = false;
  bool kept = false;   // set_pairs: still mapped
  bool dirty = false;  // progress changed but its ledger write failed
  // What Vault holds now, from every observation (not only news), for the credential's age and
  // versions_behind: a 16-bit tag of the current version's lineage (in the padding here), its
  // number and its write time in seconds since the epoch. 8 bytes more a pair.
  std::uint16_t observed_lineage_tag = 0;
  std::uint64_t retry_generation = 0;
  std::int32_t observed_number = 0;      // 0: not observed, KV v1 or unreadable
  std::uint32_t observed_written_s = 0;  // 0: unknown
  std::optional<SteadyTime> due;
  std::optional<SystemTime> unsynced_since;
  boost::asio::cancellation_signal cancel;

  explicit Pair(HeldConfig c) : config(std::move(c)) {}
  /// The record as the ledger and the views know it.
  [[nodiscard]] ledger::PairRecord record() const {
    return progress.to_record(config.destination(), config.gstin.str(), config.path);
  }
  /// "gstin=… destination=…" for log lines.
  [[nodiscard]] std::string describe() const;
  /// Takes note of what Vault holds now (every observation of the pair's key).
  void note_observed(const Observation& obs);
  [[nodiscard]] SystemTime written_at() const;
  /// See PairView::versions_behind.
  [[nodiscard]] std::int64_t versions_behind() const;
};

using PairPtr = std::shared_ptr<Pair>;

}  // namespace nicsync::sync
