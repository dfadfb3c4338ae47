#pragma once
// The engine's shared state and the steps of its work, one file per job:
//   engine.cpp     the public face: configuration, views for status and metrics, shutdown
//   pairs.cpp      the pair table: set_pairs, the ledger at start-up, recovery after a crash
//   scheduling.cpp observations (is_news), operator retries, the ready queues and retry timer
//   delivery.cpp   one delivery: Vault read → no-op check → intent → push → outcome
//   outcomes.cpp   what each outcome does to a pair's progress, history and counters; ledger writes
//   standby.cpp    replicas: standing by (no deliveries, records followed from the ledger) and
//                  taking the lead (the ledger's records taken up as after a crash)
// Everything runs on the one event loop; the ledger's writes complete when durable (its own
// thread does the fsync).

#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nicsync/sync/engine.hpp"
#include "sync/lane.hpp"
#include "sync/pair.hpp"

namespace nicsync::sync {

struct RetryEntry {
  SteadyTime due;
  std::uint64_t generation;
  PairPtr pair;
  bool operator>(const RetryEntry& o) const { return due > o.due; }
};

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  Impl(boost::asio::any_io_executor executor, ledger::Store& s, CredentialReader& r, FingerprintFn f, Clock& c,
       EngineOptions o);

  // --- configuration (engine.cpp) ---------------------------------------------------------
  void set_destinations(std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> list);

  // --- the pair table (pairs.cpp) ---------------------------------------------------------
  Result<void> set_pairs(std::vector<PairConfig> list);
  Result<void> load();
  /// Takes up the ledger's record of a pair: a push in flight at the last stop is pushed again,
  /// a version waiting for its first or next attempt gets it. Whether the pair has work now.
  bool recover(Pair& p);
  /// Since when a pair read from the ledger has been out of sync (for the views).
  void note_unsynced(Pair& p);
  void schedule_recovered(const PairPtr& p);
  [[nodiscard]] std::vector<PairPtr>::const_iterator find_pair(std::string_view destination,
                                                               std::string_view gstin) const;

  // --- observations and scheduling (scheduling.cpp) ---------------------------------------
  /// The pairs that read the Vault key `path`: a range of `by_path`.
  [[nodiscard]] std::pair<std::vector<PairPtr>::const_iterator, std::vector<PairPtr>::const_iterator> reading(
      std::string_view path) const;
  std::size_t observe(const Observation& obs);
  void apply(const PairPtr& p, const Observation& obs);
  Result<void> retry(std::string_view destination, const Gstin& gstin);
  void schedule_now(const PairPtr& p);
  void schedule_retry(const PairPtr& p, SteadyTime due);
  void arm_retry_timer();
  void run_due_retries();
  /// Starts deliveries from the lane's ready queue (up to its delivery cap), then admits
  /// waiting pushes through the gate.
  void pump(Lane& lane);

  // --- one delivery (delivery.cpp) --------------------------------------------------------
  static boost::asio::awaitable<void> deliver(std::shared_ptr<Impl> self, PairPtr p);
  boost::asio::awaitable<void> attempt(PairPtr p, Target t);

  // --- replicas (standby.cpp) -------------------------------------------------------------
  /// Stops starting deliveries and cancels those under way (their intents stay in the ledger).
  boost::asio::awaitable<void> stand_by();
  /// Every pair's record replaced by the ledger's (a standby follows the leader's writes).
  boost::asio::awaitable<Result<void>> refresh();
  /// The ledger's records taken up as after a crash, then deliveries start.
  boost::asio::awaitable<Result<void>> lead();
  void adopt(std::vector<ledger::PairRecord> records, bool take_up);
  /// No delivery starts: stopping, or a standby replica.
  [[nodiscard]] bool halted() const noexcept { return stopping || passive; }

  // --- outcomes and the ledger (outcomes.cpp) ---------------------------------------------
  boost::asio::awaitable<void> applied(PairPtr p, Target t, Fingerprint fp, std::chrono::milliseconds took);
  boost::asio::awaitable<void> unchanged(PairPtr p, const Target& t, const Fingerprint& fp);
  boost::asio::awaitable<void> mark_source_deleted(PairPtr p, Target t, std::string message);
  /// `counted`: the failed attempt was already counted (parking after retries).
  boost::asio::awaitable<void> park(PairPtr p, Target t, Error e, ledger::Outcome outcome, bool counted = false);
  boost::asio::awaitable<void> failed(PairPtr p, Target t, Error e, bool provider);
  void after_delivery(const PairPtr& p, const Target& t);
  boost::asio::awaitable<Result<void>> write(PairPtr p, std::optional<ledger::HistoryEntry> history);
  static boost::asio::awaitable<void> write_detached(std::shared_ptr<Impl> self, PairPtr p, ledger::HistoryEntry h);
  static boost::asio::awaitable<void> housekeeping_loop(std::shared_ptr<Impl> self);
  ledger::HistoryEntry history_for(const Pair& p, const VersionId& version, KvVersion kv, ledger::Outcome outcome);
  static void count(Lane& lane, ledger::Outcome o);
  void notify_change();

  // --- state ------------------------------------------------------------------------------
  boost::asio::any_io_executor ex;
  ledger::Store& store;
  CredentialReader& reader;
  FingerprintFn fingerprint;
  Clock& clock;
  EngineOptions options;
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> uniform{0.0, 1.0};

  std::map<std::string, std::unique_ptr<Lane>> lanes;
  // Sorted vectors rather than maps (memory: 16 bytes a pair each, where a hash map's node and
  // key string cost ~100): every pair in (destination, GSTIN) order, and the same pairs in
  // Vault path order for observations. Rebuilt whenever the pairs change.
  std::vector<PairPtr> pairs;
  std::vector<PairPtr> by_path;
  HeldConfig::Interner interner;
  struct Orphan {
    ledger::PairRecord record;
    bool from_ledger = false;  // read at start-up (else: the last record of a pair removed since)
  };
  std::unordered_map<std::string, Orphan> orphans;  // records of pairs not mapped now, by destination + GSTIN
  std::vector<PairPtr> recovered;
  std::priority_queue<RetryEntry, std::vector<RetryEntry>, std::greater<>> retries;
  boost::asio::steady_timer retry_timer;
  std::optional<SteadyTime> retry_armed;
  boost::asio::steady_timer changed;
  boost::asio::steady_timer drained;
  boost::asio::steady_timer housekeeping;
  std::uint64_t serial = 0;
  int in_flight_total = 0;
  bool started = false;
  bool stopping = false;
  bool passive = false;               // a standby replica: records followed, nothing delivered
  bool housekeeping_running = false;  // the loop is spawned once, by start() or lead()
  std::function<bool()> may_push;     // checked right before a push leaves (replicas: the lease)
  std::uint64_t redeliveries_after_crash = 0;
};

/// The orphans' key of a pair.
inline std::string orphan_key(std::string_view destination, std::string_view gstin) {
  std::string key;
  key.reserve(destination.size() + 1 + gstin.size());
  key.append(destination).append(1, '\n').append(gstin);
  return key;
}

}  // namespace nicsync::sync
