#include "vault/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace nicsync::vault::detail {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

milliseconds full_jitter(milliseconds base, milliseconds cap, int attempt, double u) noexcept {
  if (base.count() <= 0 || cap.count() <= 0) return milliseconds(0);
  attempt = std::clamp(attempt, 0, 40);
  // base·2^attempt without overflow: stop doubling once the cap is reached.
  std::int64_t ceiling = base.count();
  for (int i = 0; i < attempt && ceiling < cap.count(); ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap.count());
  u = std::clamp(u, 0.0, 1.0);
  const auto pick = static_cast<std::int64_t>(u * static_cast<double>(ceiling + 1));
  return milliseconds(std::min(pick, ceiling));
}

void LeaseSchedule::compute_grace(seconds lease, double u) noexcept {
  seconds l = lease;
  if (increment_.count() > 0 && increment_ < l) l = increment_;
  const double base_ms = 0.1 * static_cast<double>(duration_cast<milliseconds>(l).count());
  grace_ = milliseconds(static_cast<std::int64_t>(base_ms + std::clamp(u, 0.0, 0.999999) * base_ms));
}

void LeaseSchedule::start(seconds lease, bool renewable, seconds increment, Clock::steady_time now, double u) noexcept {
  active_ = true;
  increment_ = increment;
  renewable_ = renewable;
  lease_ = lease;
  prior_lease_ = lease;
  expires_ = lease.count() > 0;
  expires_at_ = now + lease;
  compute_grace(lease, u);
  plan(now);
}

void LeaseSchedule::renewed(seconds lease, bool renewable, Clock::steady_time now, double u) noexcept {
  active_ = true;
  renewable_ = renewable;
  // Grace follows the lease only while renewals keep extending it; once the max TTL caps
  // them, the old grace stays and the shrinking leases run into it.
  if (lease > prior_lease_) compute_grace(lease, u);
  prior_lease_ = lease;
  lease_ = lease;
  expires_ = lease.count() > 0;
  expires_at_ = now + lease;
  plan(now);
}

void LeaseSchedule::refused(Clock::steady_time now) noexcept {
  planned_ = {Action::relogin, now};
  renewable_ = false;
}

void LeaseSchedule::clear() noexcept { *this = LeaseSchedule(); }

void LeaseSchedule::plan(Clock::steady_time now) noexcept {
  if (!expires_) {
    planned_ = {Action::none, now};
    return;
  }
  const milliseconds lease = duration_cast<milliseconds>(lease_);
  if (!renewable_) {
    planned_ = {Action::relogin, std::max(now, expires_at_ - grace_)};
    return;
  }
  const milliseconds sleep = lease * 2 / 3 + grace_ / 3;
  if (lease <= grace_ || lease - sleep <= grace_) {
    planned_ = {Action::relogin, now};
    return;
  }
  planned_ = {Action::renew, now + sleep};
}

LeaseSchedule::Step LeaseSchedule::next(Clock::steady_time now) const noexcept {
  if (!active_) return {Action::none, now};
  Step s = planned_;
  if (s.action == Action::renew && expires_ && now >= expires_at_ - grace_) s = {Action::relogin, now};
  return s;
}

}  // namespace nicsync::vault::detail
