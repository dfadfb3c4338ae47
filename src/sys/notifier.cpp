#include "nicsync/sys/notifier.hpp"

#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

namespace nicsync::sys {
namespace {

// getenv, as sd_notify itself does: safe because nothing in nicsyncd calls setenv once it runs.
std::string notify_socket() {
  const char* s = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe)
  return s == nullptr ? std::string() : std::string(s);
}

// The first assignment's name ("READY", "STATUS", ...): enough to say what failed, and it keeps
// status text (the caller's words) out of error messages.
std::string_view what_of(std::string_view assignments) { return assignments.substr(0, assignments.find('=')); }

std::uint64_t monotonic_usec() {
  // systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC reading, so ask for that clock
  // by name rather than trusting steady_clock to be the same one.
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

}  // namespace

bool Notifier::enabled() const noexcept {
  const char* s = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe)
  return s != nullptr && *s != '\0';
}

Result<void> Notifier::send(const std::string& assignments) const {
  if (!enabled()) return {};
  // unset_environment = 0: the environment stays as systemd set it (later messages, watchdog).
  const int r = ::sd_notify(0, assignments.c_str());
  if (r >= 0) return {};
  const auto socket = notify_socket();
  return Error(
      Errc::sys_notify_failed,
      fmt::format("cannot send {} to systemd through NOTIFY_SOCKET={}: {}; check that NOTIFY_SOCKET is the one "
                  "systemd set (Type=notify, NotifyAccess=main) and that systemd is running",
                  what_of(assignments), socket, std::error_code(-r, std::system_category()).message()));
}

Result<void> Notifier::ready() const { return send("READY=1"); }

Result<void> Notifier::reloading() const {
  return send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
}

Result<void> Notifier::stopping() const { return send("STOPPING=1"); }

Result<void> Notifier::watchdog() const { return send("WATCHDOG=1"); }

Result<void> Notifier::status(std::string_view line) const {
  if (!enabled()) return {};
  std::size_t n = std::min(line.size(), kMaxStatusBytes);
  // Cut before a UTF-8 continuation byte so systemctl never shows half a character.
  if (n < line.size()) {
    while (n > 0 && (static_cast<unsigned char>(line[n]) & 0xC0u) == 0x80u) --n;
  }
  std::string out = "STATUS=";
  out.reserve(out.size() + n);
  for (const char c : line.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20u || u == 0x7Fu ? ' ' : c);
  }
  return send(out);
}

std::optional<std::chrono::microseconds> Notifier::watchdog_timeout() const {
  std::uint64_t usec = 0;
  // Reads WATCHDOG_USEC and checks WATCHDOG_PID against getpid(); leaves both in place.
  if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

std::optional<std::chrono::microseconds> Notifier::watchdog_interval() const {
  auto timeout = watchdog_timeout();
  if (!timeout) return std::nullopt;
  return std::max(*timeout / 2, std::chrono::microseconds(1));
}

}  // namespace nicsync::sys
