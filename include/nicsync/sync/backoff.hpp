#pragma once
/// \file
/// Retry timing as pure functions: exponential backoff with full jitter, Retry-After, max age.

#include <chrono>
#include <optional>

namespace nicsync::sync {

struct BackoffPolicy {
  std::chrono::milliseconds base{1000};           ///< delay ceiling after the first failure
  std::chrono::milliseconds cap{300'000};         ///< the ceiling never grows past this
  std::chrono::milliseconds max_age{86'400'000};  ///< a delivery failing this long is parked
  /// Largest Retry-After we accept from a server (protects against absurd values).
  std::chrono::milliseconds max_retry_after{3'600'000};
};

/// Delay before the next attempt after `failures` consecutive failures (1 = first failure).
/// Full jitter: uniform in [0, min(cap, base·2^(failures−1))], where `random01` ∈ [0, 1) is the
/// random draw (injected so the function stays pure). A server's Retry-After is a floor: we never
/// come back sooner than it asked, but no later than `max_retry_after`.
std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int failures,
                                        std::optional<std::chrono::milliseconds> retry_after, double random01) noexcept;

/// The upper bound of the jitter window for `failures` (for tests and status output).
std::chrono::milliseconds backoff_ceiling(const BackoffPolicy& policy, int failures) noexcept;

/// True when a delivery that first failed at `first_failure` should be parked at `now`.
template <class TimePoint>
bool past_max_age(const BackoffPolicy& policy, TimePoint first_failure, TimePoint now) noexcept {
  return now - first_failure >= policy.max_age;
}

}  // namespace nicsync::sync
