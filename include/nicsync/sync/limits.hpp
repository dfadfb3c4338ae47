#pragma once
/// \file
/// Per-destination admission: a token-bucket rate limit and a circuit breaker, as pure state
/// machines over an explicit `now` (so tests drive them with a manual clock).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace nicsync::sync {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Admission of one destination's pushes: rate limit, concurrency cap and circuit breaker. (Vault
/// reads and ledger commits of its deliveries are not pushes: they run ahead, outside these.)
struct LanePolicy {
  double rate_per_second = 0;  ///< pushes per second; 0 = unlimited
  double burst = 1;
  int concurrency = 8;        ///< pushes in flight at once
  int breaker_threshold = 5;  ///< consecutive transient failures that open the breaker
  std::chrono::milliseconds breaker_open_for{30'000};

  /// Deliveries under way at once (reading Vault, committing to the ledger, waiting for a slot or
  /// pushing): enough to keep `concurrency` pushes busy while the ledger's group commits wait for
  /// fsync (measured: 32 cost a third of the throughput of 128 with 10,000 GSTINs rotated at
  /// once). A rate-limited lane reads no further ahead than its rate can use. This many pushes
  /// may be repeated by a crash (answered, outcome not yet durable), each at most once.
  [[nodiscard]] int deliveries_under_way() const noexcept {
    if (rate_per_second > 0) return 2 * concurrency + static_cast<int>(std::ceil(std::max(burst, 1.0)));
    return std::max(4 * concurrency, 128);
  }
};

/// Token bucket: `rate` tokens per second up to `burst`; rate 0 = unlimited.
class TokenBucket {
 public:
  TokenBucket(double rate_per_second, double burst, SteadyTime now) noexcept;
  /// Takes one token if available.
  bool try_take(SteadyTime now) noexcept;
  /// Gives back a token that was taken for an attempt that never reached the provider.
  void refund() noexcept;
  /// How long until a token is available (0 if one is now).
  [[nodiscard]] std::chrono::nanoseconds wait_time(SteadyTime now) noexcept;
  [[nodiscard]] bool unlimited() const noexcept { return rate_ <= 0; }

 private:
  void refill(SteadyTime now) noexcept;
  double rate_;
  double burst_;
  double tokens_;
  SteadyTime last_;
};

/// Circuit breaker: opens after `threshold` consecutive transient failures, stays open for
/// `open_for`, then lets exactly one probe through (half-open); the probe's outcome closes or
/// re-opens it. One failing provider then costs little, and never slows another.
class CircuitBreaker {
 public:
  enum class State : std::uint8_t { closed, open, half_open };

  CircuitBreaker(int threshold, std::chrono::milliseconds open_for) noexcept
      : threshold_(threshold < 1 ? 1 : threshold), open_for_(open_for) {}

  /// May an attempt start now? In half-open state only one probe is admitted at a time.
  bool allow(SteadyTime now) noexcept;
  void on_success() noexcept;
  /// A failure that says something about the provider's health (transient class).
  void on_failure(SteadyTime now) noexcept;
  /// An attempt that was admitted but ended without telling us anything (e.g. cancelled).
  void on_abandoned() noexcept;
  [[nodiscard]] State state(SteadyTime now) const noexcept;
  /// When an open breaker admits its probe.
  [[nodiscard]] SteadyTime retry_at() const noexcept { return opened_at_ + open_for_; }
  [[nodiscard]] int consecutive_failures() const noexcept { return failures_; }
  [[nodiscard]] std::uint64_t times_opened() const noexcept { return times_opened_; }

 private:
  int threshold_;
  std::chrono::milliseconds open_for_;
  int failures_ = 0;
  bool open_ = false;
  bool probe_in_flight_ = false;
  SteadyTime opened_at_{};
  std::uint64_t times_opened_ = 0;
};

std::string_view to_string(CircuitBreaker::State s) noexcept;

}  // namespace nicsync::sync
