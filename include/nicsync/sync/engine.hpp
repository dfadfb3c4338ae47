#pragma once
/// \file
/// The sync engine: brings every (destination, GSTIN) pair to the newest Vault version, once in
/// effect, surviving crashes, failing providers and bad data; knows at every moment what is
/// applied where. Observations go in through one call (`observe`); the ledger records intent
/// before each push and the confirmed version after it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/gstin.hpp"
#include "nicsync/core/histogram.hpp"
#include "nicsync/core/observation.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/destinations/destination.hpp"
#include "nicsync/ledger/store.hpp"
#include "nicsync/sync/backoff.hpp"
#include "nicsync/sync/limits.hpp"
#include "nicsync/sync/mapping.hpp"

namespace nicsync::sync {

/// Reads one credential version from Vault (the app wires it to vault::Client; tests fake it).
class CredentialReader {
 public:
  virtual ~CredentialReader() = default;
  /// `version` 0 means the current one (always for KV v1). Errors the engine understands:
  /// vault_version_deleted / vault_version_destroyed / vault_not_found (nothing to push),
  /// vault_secret_malformed (parked until a new version), anything else (retried).
  virtual boost::asio::awaitable<Result<destinations::Credential>> read(SourceRef source, std::int64_t version) = 0;
};

/// Keyed fingerprint of a credential (ledger::Fingerprinter in production).
using FingerprintFn = std::function<Fingerprint(std::string_view username, const Secret& password)>;

struct EngineOptions {
  BackoffPolicy backoff;
  /// An unknown provider code is retried this many times, then the pair is parked.
  int unknown_code_attempts = 3;
  /// How long history is kept; trimmed hourly.
  std::chrono::hours history_retention{24 * 90};
  /// Seed for backoff jitter; 0 = random.
  std::uint64_t seed = 0;
  /// A replica: the engine starts standing by, and delivers only once `lead()` is called.
  bool standby = false;
};

/// One pair as seen from outside (status, metrics, tests).
struct PairView {
  PairConfig config;
  ledger::PairRecord record;
  bool in_flight = false;
  /// Newest version observed but not yet dealt with (what the pair is working towards).
  std::optional<VersionId> target;
  bool target_forced = false;
  /// When Vault wrote the key's current version (its `created_time`), from the newest
  /// observation; epoch when unknown (not observed yet, KV v1, or not readable).
  std::chrono::system_clock::time_point written_at{};
  /// The key's current version in Vault as last observed (0: not observed, KV v1 or unreadable).
  std::int64_t vault_version = 0;
  /// Versions the destination lags behind Vault: within one lineage, Vault's current version
  /// minus the applied one; a key recreated since (a new lineage), or one never delivered,
  /// counts 1 until delivered; an unreadable current version counts 0 (nothing to deliver).
  std::int64_t versions_behind = 0;
};

/// A few fields of one pair, read in place: what the status page filters, sorts and counts by
/// without copying 100,000 pairs. The views point into the engine: valid until the pairs change
/// (use them before the next co_await).
struct PairBrief {
  std::string_view gstin;
  std::string_view destination;
  ledger::PairState state = ledger::PairState::pending;
  int attempts = 0;
  std::chrono::system_clock::time_point next_attempt_at{};
  std::chrono::system_clock::time_point written_at{};  ///< as PairView::written_at
  std::int64_t versions_behind = 0;                    ///< as PairView::versions_behind
  std::string_view error_code;                         ///< empty while there is no error
};

/// Counters per destination.
struct LaneMetrics {
  std::map<std::string, std::uint64_t> outcomes;   ///< ledger::to_string(Outcome) → count
  Histogram latency{Histogram::latency_bounds()};  ///< observation → confirmed push, seconds
  Histogram lag{Histogram::latency_bounds()};      ///< Vault write → confirmed push, seconds
  std::string breaker_state = "closed";
  int in_flight = 0;       ///< deliveries under way (Vault read, waiting for a push slot, push, ledger commit)
  int pushing = 0;         ///< pushes out at the provider (at most the concurrency)
  std::size_t queued = 0;  ///< pairs waiting for a delivery to start
};

class Engine {
 public:
  Engine(boost::asio::any_io_executor executor, ledger::Store& store, CredentialReader& reader,
         FingerprintFn fingerprint, Clock& clock, EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Adds or replaces the destinations (by name); in-flight pushes finish on the old objects.
  void set_destinations(std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> lanes);
  /// Replaces the pairs. Pairs that stay keep their state; new ones start pending; removed ones
  /// are forgotten in memory (their ledger rows stay, so re-adding one does not re-push).
  /// Errors (nothing changes): a pair naming an unknown destination, a (destination, GSTIN)
  /// named twice.
  Result<void> set_pairs(std::vector<PairConfig> pairs);
  /// Reads the ledger (blocking; before `start`). Pushes that were in flight at the last stop are
  /// queued again — the one repeat a crash may cost.
  Result<void> load();
  /// Starts scheduling on the executor.
  void start();
  /// The one way in: "this Vault key is now at this version/state". Returns how many pairs read
  /// the key (0: none is mapped to it now).
  std::size_t observe(const Observation& observation);
  /// The GSTINs of the pairs that read the Vault key `vault_path` (a GSTIN twice when several
  /// destinations read the key for it).
  [[nodiscard]] std::vector<Gstin> gstins_reading(std::string_view vault_path) const;
  /// Operator retry of a parked, rejected or backing-off pair (POST /v1/sync). Errors:
  /// invalid_argument when the pair is unknown or has nothing to retry.
  Result<void> retry(std::string_view destination, const Gstin& gstin);
  // --- replicas sharing a ledger (one leads, the others stand by) ---------------------------
  /// Stops starting deliveries and cancels those under way (their intents stay in the ledger,
  /// for whichever replica leads next); the pairs and their records stay for the views.
  boost::asio::awaitable<void> stand_by();
  /// While standing by: every pair's record replaced by the ledger's (the leader's writes), so
  /// that status, metrics and the page show the shared state.
  boost::asio::awaitable<Result<void>> refresh();
  /// Reads the ledger without blocking, takes up the work its records leave unfinished (as
  /// `load` does after a crash: a push in flight is pushed again) and starts delivering.
  /// Instead of `start` for a replica; after `stand_by` it may lead again.
  boost::asio::awaitable<Result<void>> lead();
  [[nodiscard]] bool standing_by() const noexcept;
  /// Asked right before each push is handed to the destination; false holds the push back
  /// (its intent stays in the ledger). A replica answers from its lease's monotonic deadline.
  void set_push_permit(std::function<bool()> may_push);
  /// Stops taking work, gives in-flight deliveries `grace`, then cancels them (their intent stays
  /// in the ledger, so they are pushed again on the next start).
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);

  [[nodiscard]] std::vector<PairView> snapshot() const;
  /// Number of pairs; `brief(i)` and `view(i)` give pair i (0 ≤ i < pair_count()) in (destination,
  /// GSTIN) order, without copying the others. Indices hold until the pairs change.
  [[nodiscard]] std::size_t pair_count() const noexcept;
  [[nodiscard]] PairBrief brief(std::size_t i) const;
  [[nodiscard]] PairView view(std::size_t i) const;
  [[nodiscard]] std::map<std::string, LaneMetrics> lane_metrics() const;
  /// Pairs per state.
  [[nodiscard]] std::map<ledger::PairState, std::size_t> state_counts() const;
  /// Age of the oldest pair not in sync (waiting, retrying, parked, rejected), if any.
  [[nodiscard]] std::optional<std::chrono::seconds> oldest_unsynced_age() const;
  /// True when nothing is queued, in flight or due for a retry.
  [[nodiscard]] bool idle() const noexcept;
  /// The audit history from the ledger, newest first (empty gstin = all).
  boost::asio::awaitable<Result<std::vector<ledger::HistoryEntry>>> history(std::string gstin, std::size_t limit);
  /// Whether the ledger accepted its last write (for /readyz).
  [[nodiscard]] bool ledger_writable() const noexcept;
  /// Why the last ledger write failed (empty while writes succeed).
  [[nodiscard]] std::string ledger_error() const;
  /// Deliveries taken up again because their intent, but no outcome, was recorded when the
  /// previous run stopped (the push was in flight, or about to go out).
  [[nodiscard]] std::uint64_t redeliveries_after_crash() const noexcept;
  /// Completes at the next state change of any pair (for tests and `nicsyncd sync`).
  boost::asio::awaitable<void> wait_for_change();
  /// Re-evaluates timers against the clock now (for tests that move a ManualClock).
  void poke();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::sync
