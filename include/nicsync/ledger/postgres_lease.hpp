#pragma once
/// \file
/// The leader lease of replicas sharing a PostgreSQL ledger: one row (holder, epoch, expiry by
/// the database's clock, the holder's API URL) decides who leads. Every acquisition raises the
/// epoch; the store's fence (PostgresStore::set_fence) lets only the current epoch's
/// transactions commit. The leader also holds a session advisory lock of its epoch: when its
/// process dies its database session ends at once, so a standby that finds that lock free knows
/// the holder is gone and need not wait for the lease to run out.
///
/// One connection of its own, used on a thread of its own: every operation completes on the
/// awaiting coroutine's executor and never blocks the event loop.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"
#include "nicsync/ledger/postgres_store.hpp"

namespace nicsync::ledger {

/// The lease row as a replica reads it.
struct LeaseState {
  std::string holder;  ///< replica id of the last holder ("" = never held)
  std::int64_t epoch = 0;
  std::string url;                         ///< the holder's advertise_url
  bool live = false;                       ///< not run out (by the database's clock)
  std::chrono::milliseconds remaining{0};  ///< until it runs out (0 when it has)
};

/// A lease held: its epoch and how long the database gives it from the moment the statement
/// was sent (the caller counts from before sending, so its own deadline is never later than
/// the database's).
struct HeldLease {
  std::int64_t epoch = 0;
  std::chrono::milliseconds granted{0};
};

class PostgresLease {
 public:
  /// `options` as for the store (connection string, schema; the schema must exist, migrated).
  explicit PostgresLease(PostgresStoreOptions options);
  ~PostgresLease();
  PostgresLease(const PostgresLease&) = delete;
  PostgresLease& operator=(const PostgresLease&) = delete;

  /// The lease row now.
  boost::asio::awaitable<Result<LeaseState>> read();
  /// Takes the lease for `duration` when it is free, ran out, or is already `holder`'s (a
  /// restarted replica); with `take_over` also the live lease of that epoch, whose holder's
  /// session is gone (see `holder_gone`). The epoch goes up by one, and this session takes the
  /// new epoch's lock in the same statement. Nothing when another replica holds it.
  boost::asio::awaitable<Result<std::optional<HeldLease>>> acquire(
      std::string holder, std::string url, std::chrono::milliseconds duration,
      std::optional<std::int64_t> take_over = std::nullopt);
  /// Extends the lease of `epoch` by `duration` from now if it is still `holder`'s and live;
  /// nothing when it is not (lost: another replica took it, or it ran out).
  boost::asio::awaitable<Result<std::optional<HeldLease>>> renew(std::string holder, std::int64_t epoch,
                                                                 std::chrono::milliseconds duration);
  /// Ends the lease of `epoch` now (a standby may take it at once) and lets the session lock go.
  boost::asio::awaitable<Result<void>> release(std::string holder, std::int64_t epoch);
  /// Whether the session lock of `epoch`'s leader is free: its process (or connection) is
  /// gone. The lock is looked at, not kept.
  boost::asio::awaitable<Result<bool>> holder_gone(std::int64_t epoch);
  /// Lets go of the lock of the epoch this replica led (it stands by now).
  boost::asio::awaitable<Result<void>> let_go();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::ledger
