#pragma once
// Pure timing rules of the Vault client, tested with a ManualClock: full-jitter backoff and the
// token lease schedule modelled on the Go client's LifetimeWatcher (reference §4.5).

#include <chrono>

#include "nicsync/core/clock.hpp"

namespace nicsync::vault::detail {

/// Full jitter: uniform in [0, min(cap, base·2^attempt)], `u` uniform in [0, 1).
/// `attempt` counts from 0.
std::chrono::milliseconds full_jitter(std::chrono::milliseconds base, std::chrono::milliseconds cap, int attempt,
                                      double u) noexcept;

/// When to renew the token and when to log in again.
///
/// After a login or a renewal that granted `lease` seconds: grace = uniform [10 %, 20 %) of
/// min(lease, increment) (recomputed only while renewals keep extending the lease); the next
/// renewal is at ⅔·lease + ⅓·grace; if that would leave no more than the grace before
/// expiry (or the lease is no longer than the grace) — the max TTL is reached — log in again
/// at once. A token that is not renewable is replaced at expiry − grace. A token without
/// expiry (root) needs nothing.
class LeaseSchedule {
 public:
  enum class Action {
    none,     ///< no token or no expiry: nothing to do
    renew,    ///< renew-self at `at`
    relogin,  ///< log in again at `at`
  };
  struct Step {
    Action action = Action::none;
    Clock::steady_time at{};
  };

  /// A fresh token from a login. `lease` 0 = the token never expires.
  void start(std::chrono::seconds lease, bool renewable, std::chrono::seconds increment, Clock::steady_time now,
             double u) noexcept;
  /// A renewal succeeded and granted `lease` (with `renewable` as Vault reported).
  void renewed(std::chrono::seconds lease, bool renewable, Clock::steady_time now, double u) noexcept;
  /// A renewal was refused (not renewable, past max TTL, token dead): log in again now.
  void refused(Clock::steady_time now) noexcept;
  /// No token any more.
  void clear() noexcept;

  /// What to do next. A planned renewal turns into a re-login once `now` is within the grace
  /// of the expiry (renewals that keep failing must not run the token out).
  [[nodiscard]] Step next(Clock::steady_time now) const noexcept;

  [[nodiscard]] bool has_expiry() const noexcept { return expires_; }
  [[nodiscard]] Clock::steady_time expires_at() const noexcept { return expires_at_; }
  [[nodiscard]] std::chrono::milliseconds grace() const noexcept { return grace_; }
  [[nodiscard]] std::chrono::seconds lease() const noexcept { return lease_; }

 private:
  void plan(Clock::steady_time now) noexcept;
  void compute_grace(std::chrono::seconds lease, double u) noexcept;

  bool active_ = false;
  bool expires_ = false;
  bool renewable_ = false;
  std::chrono::seconds increment_{0};
  std::chrono::seconds lease_{0};
  std::chrono::seconds prior_lease_{0};
  std::chrono::milliseconds grace_{0};
  Clock::steady_time expires_at_{};
  Step planned_{};
};

}  // namespace nicsync::vault::detail
