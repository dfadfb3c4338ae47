#pragma once
/// \file
/// The systemd notification protocol (sd_notify): readiness, reload, stop, status, watchdog.
///
/// How the daemon uses the `sys` module (in this order):
///
/// ```
///   // 1. First thing in `run`, before any secret is read:
///   if (auto r = sys::disable_core_dumps(); !r) { log r.error(); return kExitFailure; }
///
///   // 2. Load config, open the ledger, start the API listener, then:
///   sys::Notifier notifier;                       // no-op when not started by systemd
///   notifier.status("starting: logging in to Vault");
///   notifier.ready();                             // READY=1 (do not wait for Vault)
///
///   // 3. Watchdog, driven by the event loop itself, so a stuck loop stops the pings:
///   std::optional<sys::WatchdogPinger> watchdog;
///   if (auto interval = notifier.watchdog_interval()) {
///     watchdog.emplace(io.get_executor(), notifier, *interval);
///     watchdog->start();
///   }
///
///   // 4. Now and then: one line of counts, never secret material.
///   notifier.status("312 in sync, 2 pending, 1 failed; vault ok");
///
///   // 5. SIGHUP:  notifier.reloading(); ...validate and swap...; notifier.ready();
///   //    (send READY=1 again whether the new config was taken or the old one kept)
///   // 6. SIGTERM: notifier.stopping(); ...bounded grace...; then watchdog->stop() last: keep
///   //    pinging through the grace (the loop still runs), and stop it so io.run() can return
///   //    (its pending timer is work that keeps the loop alive).
/// ```
///
/// Every call returns `Result<void>`: a failure (`Errc::sys_notify_failed`) is worth a log line,
/// never a reason to stop. None of them unsets `NOTIFY_SOCKET` or `WATCHDOG_*`.

#include <chrono>
#include <optional>
#include <string_view>

#include "nicsync/core/result.hpp"

namespace nicsync::sys {

/// Sends state changes to the service manager through `$NOTIFY_SOCKET` (libsystemd's
/// `sd_pid_notify`, which handles path and abstract `@` addresses and the sender credentials).
/// A plain value: copy it freely. Like `sd_notify`, it reads the environment at each call, and
/// every call is a successful no-op when `NOTIFY_SOCKET` is unset (not started by systemd).
class Notifier {
 public:
  /// True when `NOTIFY_SOCKET` is set: systemd (Type=notify) is listening.
  [[nodiscard]] bool enabled() const noexcept;

  /// `READY=1`: configuration loaded, ledger open, API listening. Also ends a reload.
  Result<void> ready() const;
  /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC now, which systemd ≥ 253 requires for
  /// Type=notify-reload and older versions ignore). Follow it with `ready()` when done.
  Result<void> reloading() const;
  /// `STOPPING=1`: shutdown has begun.
  Result<void> stopping() const;
  /// `STATUS=<line>`, shown by `systemctl status`. Control characters (a newline would start a
  /// new assignment such as `READY=1`) become spaces; longer than kMaxStatusBytes is cut at a
  /// UTF-8 boundary. Never pass secret material.
  Result<void> status(std::string_view line) const;
  /// `WATCHDOG=1`. Prefer `WatchdogPinger`, which sends it from the event loop.
  Result<void> watchdog() const;

  /// The watchdog timeout systemd enforces (`WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or
  /// names this process); nothing when the watchdog is off.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_timeout() const;
  /// How often to send `WATCHDOG=1`: half the timeout, as sd_watchdog_enabled(3) advises.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval() const;

  static constexpr std::size_t kMaxStatusBytes = 1024;

 private:
  Result<void> send(const std::string& assignments) const;
};

}  // namespace nicsync::sys
