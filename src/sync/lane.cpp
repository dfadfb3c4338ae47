#include "sync/lane.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nicsync::sync {
namespace asio = boost::asio;

/// A delivery waiting at the gate.
struct Lane::Waiter {
  Waiter(const asio::any_io_executor& ex, PairPtr p) : timer(ex, SteadyTime::max()), pair(std::move(p)) {}
  asio::steady_timer timer;  // cancelled when the slot is granted
  PairPtr pair;
  bool granted = false;
};

Lane::Lane(asio::any_io_executor ex, std::shared_ptr<destinations::Destination> dest, LanePolicy policy, Clock& clock,
           std::function<void(Lane&)> wake)
    : ex_(ex),
      dest_(std::move(dest)),
      policy_(policy),
      clock_(clock),
      bucket_(policy.rate_per_second, policy.burst, clock.now()),
      breaker_(policy.breaker_threshold, policy.breaker_open_for),
      wake_timer_(ex),
      wake_(std::move(wake)) {}

Lane::~Lane() {
  *alive_ = false;
  wake_timer_.cancel();
}

void Lane::update(std::shared_ptr<destinations::Destination> dest, LanePolicy policy) {
  dest_ = std::move(dest);
  if (policy_.rate_per_second != policy.rate_per_second || policy_.burst != policy.burst) {
    bucket_ = TokenBucket(policy.rate_per_second, policy.burst, clock_.now());
  }
  if (policy_.breaker_threshold != policy.breaker_threshold || policy_.breaker_open_for != policy.breaker_open_for) {
    breaker_ = CircuitBreaker(policy.breaker_threshold, policy.breaker_open_for);
  }
  policy_ = policy;
}

void Lane::open_gate() {
  // Also while the engine stops: deliveries already prepared may push within the grace.
  while (!gate_.empty() && pushing_ < policy_.concurrency) {
    const SteadyTime now = clock_.now();
    if (!breaker_.allow(now)) {
      // Half-open with its probe out: the probe's end opens the gate again, no timer needed
      // (one would fire every millisecond until then).
      if (breaker_.state(now) != CircuitBreaker::State::half_open) wake_after(breaker_.retry_at() - now);
      break;
    }
    if (!bucket_.try_take(now)) {
      breaker_.on_abandoned();
      wake_after(bucket_.wait_time(now));
      break;
    }
    auto w = std::move(gate_.front());
    gate_.pop_front();
    ++pushing_;
    w->pair->push_slot = true;
    w->granted = true;
    w->timer.cancel();
  }
}

asio::awaitable<void> Lane::acquire_push_slot(PairPtr p) {
  auto w = std::make_shared<Waiter>(ex_, p);
  gate_.push_back(w);
  open_gate();
  // try/catch rather than an RAII guard (g++ 12): a delivery cancelled while waiting leaves
  // the queue; one cancelled just after its grant gives the slot back in the delivery.
  try {
    while (!w->granted) co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  } catch (...) {
    if (!w->granted) std::erase(gate_, w);
    throw;
  }
}

void Lane::release_push_slot(Pair& p, bool told) {
  if (!p.push_slot) return;
  p.push_slot = false;
  --pushing_;
  if (!told) {
    breaker_.on_abandoned();
    bucket_.refund();
  }
  open_gate();
}

void Lane::push_finished(bool healthy) {
  if (healthy) {
    breaker_.on_success();
  } else {
    breaker_.on_failure(clock_.now());
  }
}

void Lane::wake_after(std::chrono::steady_clock::duration delay) {
  if (wake_armed_) return;
  wake_armed_ = true;
  wake_timer_.expires_after(std::max<std::chrono::steady_clock::duration>(delay, std::chrono::milliseconds(1)));
  wake_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!*alive) return;
    wake_armed_ = false;
    if (!ec && wake_) wake_(*this);
  });
}

void Lane::cancel_wake() { wake_timer_.cancel(); }

LaneMetrics Lane::metrics() const {
  LaneMetrics m = counters;
  m.breaker_state = std::string(to_string(breaker_.state(clock_.now())));
  m.in_flight = in_flight;
  m.pushing = pushing_;
  m.queued = ready.size();
  return m;
}

}  // namespace nicsync::sync
