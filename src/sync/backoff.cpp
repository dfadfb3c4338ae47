#include "nicsync/sync/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace nicsync::sync {

std::chrono::milliseconds backoff_ceiling(const BackoffPolicy& policy, int failures) noexcept {
  if (failures < 1) failures = 1;
  const auto base = std::max<std::int64_t>(policy.base.count(), 1);
  const auto cap = std::max<std::int64_t>(policy.cap.count(), base);
  // base·2^(n−1) without overflow: stop doubling once past the cap.
  std::int64_t ceiling = base;
  for (int i = 1; i < failures && ceiling < cap; ++i) ceiling *= 2;
  return std::chrono::milliseconds(std::min(ceiling, cap));
}

std::chrono::milliseconds backoff_delay(const BackoffPolicy& policy, int failures,
                                        std::optional<std::chrono::milliseconds> retry_after,
                                        double random01) noexcept {
  random01 = std::clamp(random01, 0.0, 1.0);
  const auto ceiling = backoff_ceiling(policy, failures);
  auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(random01 * ceiling.count())));
  if (retry_after) {
    const auto floor = std::clamp(*retry_after, std::chrono::milliseconds(0), policy.max_retry_after);
    delay = std::max(delay, floor);
  }
  return delay;
}

}  // namespace nicsync::sync
