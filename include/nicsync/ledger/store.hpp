#pragma once
/// \file
/// The ledger: per (destination, GSTIN) what is applied, what is pending and why, plus an
/// append-only audit history. Never holds secret material (fingerprints are keyed HMACs).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"
#include "nicsync/core/version.hpp"

namespace nicsync::ledger {

using SystemTime = std::chrono::system_clock::time_point;

/// Where a (destination, GSTIN) pair stands.
enum class PairState : std::uint8_t {
  in_sync,         ///< the destination holds the newest Vault version
  pending,         ///< a newer version is waiting to be (or being) pushed
  retrying,        ///< the last push failed transiently; waiting for the next attempt
  parked,          ///< permanent failure or max age reached; waits for a new version or an operator retry
  rejected,        ///< NIC rejected the credential of this version; never retried for it
  source_deleted,  ///< the current Vault version is deleted or destroyed; nothing to push
};

std::string_view to_string(PairState s) noexcept;
std::optional<PairState> pair_state_from_string(std::string_view s) noexcept;

/// A version of a Vault key and the keyed fingerprint of the credential it holds (what a
/// destination holds, or is about to get).
struct VersionRef {
  VersionId version;
  std::optional<Fingerprint> fingerprint;  ///< nothing if not known yet

  friend bool operator==(const VersionRef&, const VersionRef&) = default;
};

/// The durable record of one (destination, GSTIN) pair.
struct PairRecord {
  std::string destination;  ///< destination name from the config
  std::string gstin;
  std::string vault_path;  ///< "mount/key" the credential is read from

  PairState state = PairState::pending;
  /// What the destination holds (confirmed push), if anything.
  std::optional<VersionRef> applied;
  SystemTime applied_at{};
  /// What should be pushed next / is being pushed; empty when in sync.
  std::optional<VersionRef> pending;
  /// Set just before a push goes out (the intent) and cleared when its outcome is recorded.
  /// After a crash, a pair with an intent is pushed again: at most one repeat per crash.
  bool push_in_flight = false;

  int attempts = 0;                 ///< failed attempts for the pending version
  SystemTime first_attempt_at{};    ///< for the max-age rule
  SystemTime next_attempt_at{};     ///< when a retry is due (epoch = now)
  std::string last_error_class;     ///< "transient", "auth", ... (empty when none)
  std::string last_error_code;      ///< errc_name(), plus provider code in last_error_provider
  std::string last_error_provider;  ///< e.g. "NIC:1019"
  std::string last_error_message;   ///< operator-facing; never secret material
  SystemTime updated_at{};

  friend bool operator==(const PairRecord&, const PairRecord&) = default;
};

/// Outcome kinds in the audit history.
enum class Outcome : std::uint8_t {
  applied,         ///< pushed and confirmed
  unchanged,       ///< fingerprint equal to the applied one: nothing pushed
  failed,          ///< attempt failed; will retry
  parked,          ///< attempt failed permanently or max age reached
  rejected,        ///< NIC rejected the credential
  source_deleted,  ///< current version deleted/destroyed in Vault
  superseded,      ///< a newer version replaced a pending one
  operator_retry,  ///< an operator asked to retry a parked pair
};

std::string_view to_string(Outcome o) noexcept;
std::optional<Outcome> outcome_from_string(std::string_view s) noexcept;

/// One line of the audit history (append-only, trimmed by age).
struct HistoryEntry {
  SystemTime at{};
  std::string destination;
  std::string gstin;
  VersionId version;  ///< number and lineage (KV v1: no lineage)
  Outcome outcome = Outcome::applied;
  int attempt = 0;
  std::string error_class;
  std::string error_code;
  std::string error_provider;
  std::string message;
  std::chrono::milliseconds duration{0};

  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

/// Persistence of pair records and history. Implementations keep disk I/O off the event loop:
/// `write` completes (on the caller's executor) once the change is durable, and concurrent
/// writes are committed together (group commit).
class Store {
 public:
  virtual ~Store() = default;

  /// Every pair record, for start-up. Called before the loop runs, may block.
  virtual Result<std::vector<PairRecord>> load_pairs() = 0;

  /// Every pair record, without blocking the loop (a standby replica follows the leader's
  /// writes with it).
  virtual boost::asio::awaitable<Result<std::vector<PairRecord>>> read_pairs() = 0;

  /// Upserts `record` (keyed by destination + gstin) and appends `history` if given; completes
  /// when durable. Errors: ledger_full, ledger_io.
  virtual boost::asio::awaitable<Result<void>> write(PairRecord record, std::optional<HistoryEntry> history) = 0;

  /// Removes the record of a pair that is no longer mapped (history is kept).
  virtual boost::asio::awaitable<Result<void>> remove(std::string destination, std::string gstin) = 0;

  /// Newest first, at most `limit` entries; empty `gstin` = all.
  virtual boost::asio::awaitable<Result<std::vector<HistoryEntry>>> history(std::string gstin, std::size_t limit) = 0;

  /// Appends one history line on its own, touching no pair record (moving a ledger: `copy_ledger`);
  /// completes when durable. Errors: ledger_full, ledger_io.
  virtual boost::asio::awaitable<Result<void>> append_history(HistoryEntry entry) = 0;

  /// Drops history older than `cutoff`; returns how many entries went.
  virtual boost::asio::awaitable<Result<std::size_t>> trim_history(SystemTime cutoff) = 0;

  /// The sealed blob stored under `name`, or nothing if there is none. The bytes are opaque:
  /// the caller seals (encrypts) them and the store never sees a key or the plaintext.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> read_sealed(std::string name) = 0;

  /// Stores `sealed` (any bytes) under `name`, replacing what was there; completes when durable,
  /// like `write`. Errors: ledger_full, ledger_io.
  virtual boost::asio::awaitable<Result<void>> write_sealed(std::string name, std::string sealed) = 0;

  /// True while the last write succeeded (for /readyz).
  [[nodiscard]] virtual bool writable() const noexcept = 0;
  /// Why the last write failed (empty while writes succeed), for /readyz.
  [[nodiscard]] virtual std::string last_write_error() const { return {}; }

  /// Commits (or fails) everything queued and releases the storage; later operations fail with
  /// `cancelled`. Blocks. Idempotent.
  virtual void close() {}
};

}  // namespace nicsync::ledger
