#include "nicsync/sys/watchdog.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace nicsync::sys {

namespace asio = boost::asio;

namespace detail {

struct WatchdogState {
  WatchdogState(asio::any_io_executor ex, Notifier n, std::chrono::microseconds i)
      : timer(ex), notifier(n), interval(i) {}

  asio::steady_timer timer;
  Notifier notifier;
  std::chrono::microseconds interval;
  bool running = false;
  // Bumped by stop(): a handler that was already queued when the timer was cancelled (it then
  // completes with success, not operation_aborted) sees a stale generation and does nothing.
  std::uint64_t generation = 0;
  std::uint64_t pings = 0;
  bool failing = false;
};

}  // namespace detail

namespace {

using detail::WatchdogState;

void ping(WatchdogState& s);
void arm(const std::shared_ptr<WatchdogState>& s, std::chrono::steady_clock::duration after);

// A named handler rather than a lambda so the state's lifetime is plain to see: it holds the
// state alive until it has run, even if the pinger is gone by then.
struct Tick {
  std::shared_ptr<WatchdogState> state;
  std::uint64_t generation;

  void operator()(boost::system::error_code ec) const {
    if (ec || !state->running || state->generation != generation) return;
    ping(*state);
    // From now, not from the last deadline: after a stall, one ping and then the normal pace,
    // never a burst of catch-up pings that would hide how long the loop was stuck.
    arm(state, state->interval);
  }
};

void ping(WatchdogState& s) {
  if (auto r = s.notifier.watchdog(); !r) {
    // Once per failure streak: a ping every few seconds would flood the journal.
    if (!s.failing) spdlog::warn("systemd watchdog ping failed: {}", r.error());
    s.failing = true;
    return;
  }
  if (s.failing) spdlog::info("systemd watchdog pings are getting through again");
  s.failing = false;
  ++s.pings;
}

void arm(const std::shared_ptr<WatchdogState>& s, std::chrono::steady_clock::duration after) {
  s->timer.expires_after(after);
  s->timer.async_wait(Tick{s, s->generation});
}

}  // namespace

WatchdogPinger::WatchdogPinger(asio::any_io_executor ex, Notifier notifier, std::chrono::microseconds interval)
    // A zero interval would spin the loop; systemd cannot enforce anything that short anyway.
    : state_(std::make_shared<WatchdogState>(std::move(ex), notifier,
                                             std::max(interval, std::chrono::microseconds(kMinInterval)))) {}

WatchdogPinger::~WatchdogPinger() { stop(); }

void WatchdogPinger::start() {
  if (state_->running) return;
  state_->running = true;
  // The first ping too goes through the loop (a zero timer), so every ping proves the loop runs.
  arm(state_, std::chrono::steady_clock::duration::zero());
}

void WatchdogPinger::stop() {
  if (!state_->running) return;
  state_->running = false;
  ++state_->generation;
  state_->timer.cancel();
}

bool WatchdogPinger::running() const noexcept { return state_->running; }

std::uint64_t WatchdogPinger::pings() const noexcept { return state_->pings; }

}  // namespace nicsync::sys
