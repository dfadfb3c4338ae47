#include "nicsync/sync/limits.hpp"

#include <algorithm>

namespace nicsync::sync {

TokenBucket::TokenBucket(double rate_per_second, double burst, SteadyTime now) noexcept
    : rate_(rate_per_second), burst_(std::max(burst, 1.0)), tokens_(std::max(burst, 1.0)), last_(now) {}

void TokenBucket::refill(SteadyTime now) noexcept {
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

bool TokenBucket::try_take(SteadyTime now) noexcept {
  if (unlimited()) return true;
  refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  return false;
}

void TokenBucket::refund() noexcept {
  if (!unlimited()) tokens_ = std::min(burst_, tokens_ + 1.0);
}

std::chrono::nanoseconds TokenBucket::wait_time(SteadyTime now) noexcept {
  if (unlimited()) return std::chrono::nanoseconds(0);
  refill(now);
  if (tokens_ >= 1.0) return std::chrono::nanoseconds(0);
  const double seconds = (1.0 - tokens_) / rate_;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9) + 1);
}

bool CircuitBreaker::allow(SteadyTime now) noexcept {
  if (!open_) return true;
  if (now < retry_at()) return false;
  if (probe_in_flight_) return false;
  probe_in_flight_ = true;  // half-open: this attempt is the probe
  return true;
}

void CircuitBreaker::on_success() noexcept {
  failures_ = 0;
  open_ = false;
  probe_in_flight_ = false;
}

void CircuitBreaker::on_failure(SteadyTime now) noexcept {
  ++failures_;
  if (open_ || failures_ >= threshold_) {
    if (!open_ || probe_in_flight_) ++times_opened_;
    open_ = true;
    opened_at_ = now;
  }
  probe_in_flight_ = false;
}

void CircuitBreaker::on_abandoned() noexcept { probe_in_flight_ = false; }

CircuitBreaker::State CircuitBreaker::state(SteadyTime now) const noexcept {
  if (!open_) return State::closed;
  if (now >= retry_at()) return State::half_open;
  return State::open;
}

std::string_view to_string(CircuitBreaker::State s) noexcept {
  switch (s) {
    case CircuitBreaker::State::closed: return "closed";
    case CircuitBreaker::State::open: return "open";
    case CircuitBreaker::State::half_open: return "half_open";
  }
  return "unknown";
}

}  // namespace nicsync::sync
