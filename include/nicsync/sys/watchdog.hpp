#pragma once
/// \file
/// The systemd watchdog ping, driven by the daemon's event loop.

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "nicsync/sys/notifier.hpp"

namespace nicsync::sys {

namespace detail {
struct WatchdogState;
}  // namespace detail

/// Sends `WATCHDOG=1` every `interval` from an Asio timer on the given executor. The pings come
/// from the loop itself on purpose: a loop that is stuck (a blocking call, a busy handler)
/// stops pinging and systemd restarts the daemon (WatchdogSec=). A thread of its own would keep
/// pinging for a dead daemon. `start()` and `stop()` run on the loop thread (or before it runs).
class WatchdogPinger {
 public:
  /// Shortest interval used; shorter ones are raised to it.
  static constexpr std::chrono::milliseconds kMinInterval{1};

  /// `interval` is usually `Notifier::watchdog_interval()` (half of WatchdogSec=).
  WatchdogPinger(boost::asio::any_io_executor ex, Notifier notifier, std::chrono::microseconds interval);
  /// Stops the pings.
  ~WatchdogPinger();
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

  /// Pings as soon as the loop runs, then every interval. Does nothing if already running.
  void start();
  /// No more pings (a ping already handed to the loop is dropped too). Idempotent.
  void stop();
  [[nodiscard]] bool running() const noexcept;
  /// Pings sent successfully so far.
  [[nodiscard]] std::uint64_t pings() const noexcept;

 private:
  std::shared_ptr<detail::WatchdogState> state_;  // shared with the pending timer handler, which may outlive us
};

}  // namespace nicsync::sys
