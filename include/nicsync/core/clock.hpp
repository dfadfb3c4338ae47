#pragma once
/// \file
/// An injectable clock: production code asks it for the time, tests move it by hand.

#include <atomic>
#include <chrono>

namespace nicsync {

/// Source of monotonic and wall-clock time.
class Clock {
 public:
  using steady_time = std::chrono::steady_clock::time_point;
  using system_time = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  /// Monotonic time for deadlines, backoff and schedules.
  [[nodiscard]] virtual steady_time now() const noexcept = 0;
  /// Wall-clock time for records meant for humans (ledger, history, status).
  [[nodiscard]] virtual system_time system_now() const noexcept = 0;

  /// The process-wide real clock.
  static Clock& real() noexcept;
};

/// Real time from std::chrono.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] steady_time now() const noexcept override { return std::chrono::steady_clock::now(); }
  [[nodiscard]] system_time system_now() const noexcept override { return std::chrono::system_clock::now(); }
};

/// A clock that only moves when told to; both timelines advance together.
class ManualClock final : public Clock {
 public:
  ManualClock()
      : steady_(std::chrono::steady_clock::time_point{} + std::chrono::hours(1)),
        system_(std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}) {}

  [[nodiscard]] steady_time now() const noexcept override { return steady_.load(); }
  [[nodiscard]] system_time system_now() const noexcept override { return system_.load(); }

  void advance(std::chrono::steady_clock::duration d) noexcept {
    steady_.store(steady_.load() + d);
    system_.store(system_.load() + std::chrono::duration_cast<std::chrono::system_clock::duration>(d));
  }
  void set_system(system_time t) noexcept { system_.store(t); }

 private:
  std::atomic<steady_time> steady_;
  std::atomic<system_time> system_;
};

}  // namespace nicsync
