#pragma once
// Single-flight coordination on one event loop: the first caller that finds no usable value
// starts the refresh (begin()); everyone arriving meanwhile waits for its result (wait()).

#include <memory>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "nicsync/core/result.hpp"

namespace nicsync::destinations::detail {

class SingleFlight {
  struct Flight {
    explicit Flight(const boost::asio::any_io_executor& ex) : done(ex, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer done;  // never expires; cancel() wakes the waiters
    std::optional<Result<void>> result;
  };

 public:
  explicit SingleFlight(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// Marks a refresh as running until `finish()` (or the guard's destruction, which reports
  /// `cancelled`, e.g. when the leader's coroutine is torn down).
  class Guard {
   public:
    Guard(SingleFlight& owner, std::shared_ptr<Flight> flight) : owner_(&owner), flight_(std::move(flight)) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() {
      if (flight_) finish(Error(Errc::cancelled, "the refresh was cancelled"));
    }
    void finish(Result<void> result) {
      if (!flight_) return;
      flight_->result = std::move(result);
      if (owner_->current_ == flight_) owner_->current_.reset();
      flight_->done.cancel();
      flight_.reset();
    }

   private:
    SingleFlight* owner_;
    std::shared_ptr<Flight> flight_;
  };

  [[nodiscard]] bool running() const noexcept { return static_cast<bool>(current_); }

  /// Precondition: !running().
  [[nodiscard]] Guard begin() {
    current_ = std::make_shared<Flight>(ex_);
    return Guard(*this, current_);
  }

  /// Precondition: running(). The running refresh's result; `cancelled` if this waiter was cancelled.
  boost::asio::awaitable<Result<void>> wait() { return wait_for(current_); }

 private:
  static boost::asio::awaitable<Result<void>> wait_for(std::shared_ptr<Flight> flight) {
    if (!flight->result) {
      auto [ec] = co_await flight->done.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;  // operation_aborted either way: the refresh finished or this waiter was cancelled
    }
    if (!flight->result) co_return Error(Errc::cancelled, "cancelled while waiting for a refresh");
    co_return *flight->result;
  }

  boost::asio::any_io_executor ex_;
  std::shared_ptr<Flight> current_;
};

}  // namespace nicsync::destinations::detail
