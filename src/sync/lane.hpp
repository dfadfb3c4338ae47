#pragma once
// A destination's lane: the pairs waiting for a delivery to start, and the push gate that
// admits the pushes themselves — a concurrency cap, a token bucket and a circuit breaker. The
// Vault read and the ledger commits of a delivery happen outside the gate, so that waiting for
// fsync never holds a provider slot.

#include <deque>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/destinations/destination.hpp"
#include "nicsync/sync/engine.hpp"
#include "nicsync/sync/limits.hpp"
#include "sync/pair.hpp"

namespace nicsync::sync {

class Lane {
 public:
  /// `wake` is called when the gate may admit again after a wait (rate limit, open breaker).
  Lane(boost::asio::any_io_executor ex, std::shared_ptr<destinations::Destination> dest, LanePolicy policy,
       Clock& clock, std::function<void(Lane&)> wake);
  ~Lane();
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  /// A reload: the new destination object; limits restart only where they changed.
  void update(std::shared_ptr<destinations::Destination> dest, LanePolicy policy);

  [[nodiscard]] const std::shared_ptr<destinations::Destination>& destination() const noexcept { return dest_; }
  /// Deliveries that may be under way at once.
  [[nodiscard]] int delivery_cap() const noexcept { return policy_.deliveries_under_way(); }

  /// Waits at the gate until a push slot is granted (`p->push_slot` is then set).
  boost::asio::awaitable<void> acquire_push_slot(PairPtr p);
  /// Gives a push slot back. `told`: the breaker learnt the push's outcome (else it is told the
  /// attempt was abandoned, and the rate-limit token goes back).
  void release_push_slot(Pair& p, bool told);
  /// The push's outcome, for the breaker: `healthy` when the provider answered as a provider
  /// should (success, a rejection or a permanent error), not when it failed transiently.
  void push_finished(bool healthy);
  /// Admits waiting pushes in FIFO order while the concurrency cap, the breaker and the rate
  /// limit allow.
  void open_gate();
  /// Stops the wake-up timer (shutdown).
  void cancel_wake();

  [[nodiscard]] LaneMetrics metrics() const;

  std::deque<PairPtr> ready;  ///< pairs waiting for a delivery to start
  int in_flight = 0;          ///< deliveries under way (reading, waiting at the gate, pushing, recording)
  LaneMetrics counters;       ///< outcomes and latencies (the live gauges are filled in by metrics())

 private:
  struct Waiter;
  void wake_after(std::chrono::steady_clock::duration delay);

  boost::asio::any_io_executor ex_;
  std::shared_ptr<destinations::Destination> dest_;
  LanePolicy policy_;
  Clock& clock_;
  TokenBucket bucket_;
  CircuitBreaker breaker_;
  int pushing_ = 0;                           // pushes admitted by the gate and not finished
  std::deque<std::shared_ptr<Waiter>> gate_;  // prepared deliveries waiting for a push slot
  boost::asio::steady_timer wake_timer_;
  bool wake_armed_ = false;
  std::function<void(Lane&)> wake_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the wake-up handler
};

}  // namespace nicsync::sync
