#pragma once
// Runs a coroutine on an io_context with a hard deadline: every network test goes through here.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace nicsync::testing {

using namespace std::chrono_literals;

/// Thrown when a test's deadline passes.
struct DeadlineExceeded : std::runtime_error {
  DeadlineExceeded() : std::runtime_error("test deadline exceeded") {}
};

namespace detail {
// Drives `io` until `done` is set. If the coroutine ignores cancellation for 5 s past its
// deadline, the process is ended: a hung network test must never hang CI.
inline void drive(boost::asio::io_context& io, const bool& done, std::chrono::milliseconds deadline) {
  const auto hard = std::chrono::steady_clock::now() + deadline + 5s;
  io.restart();
  while (!done) {
    io.run_one_for(100ms);
    if (io.stopped()) io.restart();
    if (std::chrono::steady_clock::now() > hard) {
      std::fprintf(stderr, "FATAL: test coroutine did not finish within its deadline (+5 s grace)\n");
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
}
}  // namespace detail

/// Runs `task` to completion or until `deadline`; a timeout fails the test and throws.
template <class T>
T run_for(boost::asio::io_context& io, boost::asio::awaitable<T> task, std::chrono::milliseconds deadline = 20s) {
  using namespace boost::asio::experimental::awaitable_operators;
  std::optional<T> out;
  std::exception_ptr error;
  bool timed_out = false;
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&, t = std::move(task)]() mutable -> boost::asio::awaitable<void> {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
        auto r = co_await (std::move(t) || timer.async_wait(boost::asio::use_awaitable));
        if (r.index() == 0) {
          out.emplace(std::move(std::get<0>(r)));
        } else {
          timed_out = true;
        }
      },
      [&](std::exception_ptr e) {
        error = e;
        done = true;
      });
  detail::drive(io, done, deadline);
  if (error) std::rethrow_exception(error);
  if (timed_out) {
    ADD_FAILURE() << "deadline of " << deadline.count() << " ms exceeded";
    throw DeadlineExceeded();
  }
  return std::move(*out);
}

/// Same for coroutines returning nothing.
inline void run_for(boost::asio::io_context& io, boost::asio::awaitable<void> task,
                    std::chrono::milliseconds deadline = 20s) {
  using namespace boost::asio::experimental::awaitable_operators;
  std::exception_ptr error;
  bool timed_out = false;
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&, t = std::move(task)]() mutable -> boost::asio::awaitable<void> {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
        auto r = co_await (std::move(t) || timer.async_wait(boost::asio::use_awaitable));
        if (r.index() == 1) timed_out = true;
      },
      [&](std::exception_ptr e) {
        error = e;
        done = true;
      });
  detail::drive(io, done, deadline);
  if (error) std::rethrow_exception(error);
  if (timed_out) {
    ADD_FAILURE() << "deadline of " << deadline.count() << " ms exceeded";
    throw DeadlineExceeded();
  }
}

/// Lets pending handlers run for a moment (for teardown: servers unwinding).
inline void drain(boost::asio::io_context& io, std::chrono::milliseconds for_how_long = 50ms) {
  io.restart();
  io.run_for(for_how_long);
}

}  // namespace nicsync::testing
