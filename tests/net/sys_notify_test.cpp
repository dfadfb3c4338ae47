// sys::Notifier and sys::WatchdogPinger against a real NOTIFY_SOCKET: an AF_UNIX datagram socket
// bound at a path or an abstract address, read the way systemd reads it (with the sender's
// credentials), asserting the exact messages and when the watchdog pings arrive.
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "nicsync/sys/notifier.hpp"
#include "nicsync/sys/watchdog.hpp"
#include "testing/deadline.hpp"
#include "testing/temp_dir.hpp"

#include <sys/socket.h>

namespace nicsync::sys {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_for;
using Clock = std::chrono::steady_clock;

/// Sets (or unsets) an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct Datagram {
  std::string text;
  pid_t sender = 0;  ///< from SCM_CREDENTIALS, as systemd checks NotifyAccess=main
  Clock::time_point at;
};

/// systemd's side of the protocol: binds `address` ("/path" or "@abstract"), exports it as
/// NOTIFY_SOCKET (watchdog variables unset) and reads datagrams with their sender credentials.
class FakeSystemd {
 public:
  FakeSystemd(asio::io_context& io, const std::string& address)
      : socket_(io),
        env_socket_("NOTIFY_SOCKET", address),
        env_usec_("WATCHDOG_USEC", std::nullopt),
        env_pid_("WATCHDOG_PID", std::nullopt) {
    std::string path = address;
    if (path.front() == '@') path.front() = '\0';  // Linux abstract namespace
    socket_.open();
    socket_.bind(asio::local::datagram_protocol::endpoint(path));
    const int on = 1;
    if (::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
      throw std::runtime_error("SO_PASSCRED failed");
    }
  }

  /// The next datagram. Waits through Asio (peek), then takes it with recvmsg for the credentials.
  asio::awaitable<Datagram> receive() {
    char probe = 0;
    auto [ec, n] = co_await socket_.async_receive(asio::buffer(&probe, 1), asio::socket_base::message_peek,
                                                  asio::as_tuple(asio::use_awaitable));
    if (ec) throw boost::system::system_error(ec);
    co_return take();
  }

  /// Blocks the calling thread (the loop, when called from a handler) for `d` and says whether
  /// a datagram arrived meanwhile; does not consume it.
  bool arrives_within(std::chrono::milliseconds d) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(d.count()));
    if (r < 0) throw std::runtime_error("poll failed");
    return r > 0;
  }

 private:
  Datagram take() {
    std::array<char, 4096> buf{};
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(ucred))> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) throw std::runtime_error("recvmsg failed");
    Datagram d{std::string(buf.data(), static_cast<std::size_t>(n)), 0, Clock::now()};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        d.sender = cred.pid;
      }
    }
    return d;
  }

  asio::local::datagram_protocol::socket socket_;
  ScopedEnv env_socket_;
  ScopedEnv env_usec_;
  ScopedEnv env_pid_;
};

std::uint64_t monotonic_usec_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

std::string abstract_name() {
  // Abstract names are global to the network namespace: make them unique per process and test.
  static int counter = 0;
  return "@nicsync-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

class SysNotifyTest : public ::testing::Test {
 protected:
  asio::io_context io_;
  testing::TempDir dir_;
};

TEST_F(SysNotifyTest, WithoutNotifySocketEverythingIsASuccessfulNoOp) {
  ScopedEnv socket("NOTIFY_SOCKET", std::nullopt);
  ScopedEnv usec("WATCHDOG_USEC", "30000000");
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.ready());
  EXPECT_TRUE(n.reloading());
  EXPECT_TRUE(n.status("anything"));
  EXPECT_TRUE(n.stopping());
  EXPECT_TRUE(n.watchdog());
  // Empty counts as unset, as in sd_notify.
  ScopedEnv empty("NOTIFY_SOCKET", "");
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.ready());
}

TEST_F(SysNotifyTest, SendsTheExactMessagesToAPathSocket) {
  FakeSystemd systemd(io_, dir_.file("notify"));
  Notifier n;
  ASSERT_TRUE(n.enabled());
  run_for(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(n.ready());
    auto d = co_await systemd.receive();
    EXPECT_EQ(d.text, "READY=1");
    EXPECT_EQ(d.sender, ::getpid());

    EXPECT_TRUE(n.status("312 in sync, 2 pending; vault ok"));
    EXPECT_EQ((co_await systemd.receive()).text, "STATUS=312 in sync, 2 pending; vault ok");

    const auto before = monotonic_usec_now();
    EXPECT_TRUE(n.reloading());
    const auto after = monotonic_usec_now();
    d = co_await systemd.receive();
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    EXPECT_EQ(d.text.substr(0, prefix.size()), prefix) << d.text;
    if (d.text.rfind(prefix, 0) != 0) co_return;
    const auto usec = std::stoull(d.text.substr(prefix.size()));
    EXPECT_GE(usec, before);
    EXPECT_LE(usec, after);
    EXPECT_EQ(d.text.find('\n', prefix.size()), std::string::npos) << "exactly two assignments";

    EXPECT_TRUE(n.ready());
    EXPECT_EQ((co_await systemd.receive()).text, "READY=1");
    EXPECT_TRUE(n.stopping());
    EXPECT_EQ((co_await systemd.receive()).text, "STOPPING=1");
    EXPECT_TRUE(n.watchdog());
    EXPECT_EQ((co_await systemd.receive()).text, "WATCHDOG=1");
  }());
  // The environment is left for later messages and child processes.
  ASSERT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::string(std::getenv("NOTIFY_SOCKET")), dir_.file("notify"));
}

TEST_F(SysNotifyTest, SendsToAnAbstractSocket) {
  FakeSystemd systemd(io_, abstract_name());
  Notifier n;
  run_for(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(n.ready());
    auto d = co_await systemd.receive();
    EXPECT_EQ(d.text, "READY=1");
    EXPECT_EQ(d.sender, ::getpid());
    EXPECT_TRUE(n.status("degraded: Vault unreachable, retrying"));
    EXPECT_EQ((co_await systemd.receive()).text, "STATUS=degraded: Vault unreachable, retrying");
  }());
}

TEST_F(SysNotifyTest, StatusIsOneLineAndCannotInjectAssignments) {
  FakeSystemd systemd(io_, dir_.file("notify"));
  Notifier n;
  run_for(io_, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(n.status("error: bad\nREADY=1\r\tWATCHDOG=trigger\x7f"));
    EXPECT_EQ((co_await systemd.receive()).text, "STATUS=error: bad READY=1  WATCHDOG=trigger ");

    // Cut at kMaxStatusBytes, but never inside a UTF-8 character ("é" is two bytes).
    std::string long_line(Notifier::kMaxStatusBytes - 1, 'a');
    long_line += "\xc3\xa9 and more";
    EXPECT_TRUE(n.status(long_line));
    EXPECT_EQ((co_await systemd.receive()).text, "STATUS=" + std::string(Notifier::kMaxStatusBytes - 1, 'a'));

    std::string fits(Notifier::kMaxStatusBytes - 2, 'b');
    fits += "\xc3\xa9";
    EXPECT_TRUE(n.status(fits));
    EXPECT_EQ((co_await systemd.receive()).text, "STATUS=" + fits);
  }());
}

TEST_F(SysNotifyTest, ASocketNobodyListensOnIsAnErrorThatNamesIt) {
  const std::string missing = dir_.file("nobody-here");
  ScopedEnv socket("NOTIFY_SOCKET", missing);
  Notifier n;
  auto r = n.ready();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::sys_notify_failed));
  EXPECT_EQ(r.error().error_class(), ErrorClass::transient);
  EXPECT_NE(r.error().message.find("READY"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(missing), std::string::npos) << r.error().message;
  // The status text is the caller's; it stays out of error messages.
  auto s = n.status("planted-status-text");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message.find("planted-status-text"), std::string::npos) << s.error().message;
  EXPECT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
}

TEST_F(SysNotifyTest, WatchdogIntervalIsHalfOfWatchdogUsecForThisProcessOnly) {
  Notifier n;
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
    EXPECT_EQ(n.watchdog_timeout(), std::chrono::microseconds(30'000'000));
    EXPECT_EQ(n.watchdog_interval(), std::chrono::microseconds(15'000'000));
    // Read, not consumed.
    EXPECT_NE(std::getenv("WATCHDOG_USEC"), nullptr);
    EXPECT_NE(std::getenv("WATCHDOG_PID"), nullptr);
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::nullopt);  // no PID: meant for whoever reads it
    EXPECT_EQ(n.watchdog_interval(), std::chrono::microseconds(15'000'000));
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));  // meant for another process
    EXPECT_EQ(n.watchdog_interval(), std::nullopt);
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", std::nullopt);
    EXPECT_EQ(n.watchdog_timeout(), std::nullopt);
    EXPECT_EQ(n.watchdog_interval(), std::nullopt);
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "thirty");
    EXPECT_EQ(n.watchdog_interval(), std::nullopt);
  }
}

class WatchdogTest : public SysNotifyTest {
 protected:
  static constexpr auto kTimeout = 200ms;  // WATCHDOG_USEC
  static constexpr auto kInterval = 100ms;

  std::chrono::microseconds interval_from_environment() {
    auto interval = Notifier().watchdog_interval();
    if (!interval) throw std::runtime_error("watchdog not enabled");
    return *interval;
  }

  FakeSystemd systemd_{io_, dir_.file("notify")};
  ScopedEnv usec_{"WATCHDOG_USEC", std::to_string(std::chrono::microseconds(kTimeout).count())};
  ScopedEnv pid_{"WATCHDOG_PID", std::to_string(::getpid())};
};

TEST_F(WatchdogTest, PingsAtOnceThenEveryInterval) {
  const auto interval = interval_from_environment();
  ASSERT_EQ(interval, kInterval);
  WatchdogPinger pinger(io_.get_executor(), Notifier(), interval);
  EXPECT_FALSE(pinger.running());
  const auto started = Clock::now();
  pinger.start();
  pinger.start();  // idempotent: still one ping per interval
  EXPECT_TRUE(pinger.running());
  constexpr int kPings = 5;
  std::vector<Clock::time_point> at;
  run_for(io_, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kPings; ++i) {
      auto d = co_await systemd_.receive();
      EXPECT_EQ(d.text, "WATCHDOG=1");
      EXPECT_EQ(d.sender, ::getpid());
      at.push_back(d.at);
    }
  }());
  ASSERT_EQ(at.size(), static_cast<std::size_t>(kPings));
  // The first ping is sent as soon as the loop runs, not one interval later.
  EXPECT_LT(at.front() - started, kInterval);
  // Timers never fire early, so the pings cannot be closer than the interval on average (a
  // little slack for when a ping is read). The upper bound is generous for loaded CI machines;
  // it catches pinging at the timeout instead of half of it.
  const auto mean = (at.back() - at.front()) / (kPings - 1);
  EXPECT_GE(mean, kInterval - 2ms);
  EXPECT_LT(mean, kTimeout - 10ms);
  EXPECT_GE(pinger.pings(), static_cast<std::uint64_t>(kPings));
}

TEST_F(WatchdogTest, NoPingsWhileTheLoopIsBlocked) {
  WatchdogPinger pinger(io_.get_executor(), Notifier(), interval_from_environment());
  pinger.start();
  run_for(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ((co_await systemd_.receive()).text, "WATCHDOG=1");
    // Block the loop thread for several intervals without yielding, as a stuck handler would:
    // nothing may arrive, or a stuck daemon would look alive to systemd.
    EXPECT_FALSE(systemd_.arrives_within(4 * kInterval)) << "a watchdog ping was sent while the loop was blocked";
    // Once the loop runs again, so do the pings.
    EXPECT_EQ((co_await systemd_.receive()).text, "WATCHDOG=1");
  }());
}

TEST_F(WatchdogTest, StopEndsThePingsAndStartResumesThem) {
  WatchdogPinger pinger(io_.get_executor(), Notifier(), interval_from_environment());
  pinger.start();
  run_for(io_, [&]() -> asio::awaitable<void> {
    EXPECT_EQ((co_await systemd_.receive()).text, "WATCHDOG=1");
    pinger.stop();
    pinger.stop();
    EXPECT_FALSE(pinger.running());
    // Absence can only be shown by waiting: several intervals with the loop free to run.
    asio::steady_timer quiet(co_await asio::this_coro::executor, 4 * kInterval);
    auto r = co_await (systemd_.receive() || quiet.async_wait(asio::use_awaitable));
    EXPECT_EQ(r.index(), 1u) << "a ping arrived after stop()";
    pinger.start();
    EXPECT_EQ((co_await systemd_.receive()).text, "WATCHDOG=1");
  }());
}

TEST_F(WatchdogTest, DestroyingThePingerCancelsAPingAlreadyHandedToTheLoop) {
  {
    WatchdogPinger pinger(io_.get_executor(), Notifier(), interval_from_environment());
    pinger.start();  // a zero timer: its completion is queued, not yet run
  }
  run_for(io_, [&]() -> asio::awaitable<void> {
    asio::steady_timer quiet(co_await asio::this_coro::executor, 2 * kInterval);
    auto r = co_await (systemd_.receive() || quiet.async_wait(asio::use_awaitable));
    EXPECT_EQ(r.index(), 1u) << "a ping arrived from a destroyed pinger";
  }());
}

TEST_F(WatchdogTest, AZeroIntervalIsRaisedInsteadOfSpinningTheLoop) {
  WatchdogPinger pinger(io_.get_executor(), Notifier(), std::chrono::microseconds(0));
  pinger.start();
  std::vector<Clock::time_point> at;
  run_for(io_, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) at.push_back((co_await systemd_.receive()).at);
  }());
  ASSERT_EQ(at.size(), 5u);
  EXPECT_GE(at.back() - at.front(), 4 * WatchdogPinger::kMinInterval - 500us);
}

TEST_F(SysNotifyTest, WatchdogKeepsPingingThroughAFailureAndRecovers) {
  // systemd's socket is not there yet (re-executing, say): the first ping fails, is not counted,
  // and does not stop the pinger; once the socket is back, the next ping gets through.
  const std::string path = dir_.file("notify");
  ScopedEnv socket("NOTIFY_SOCKET", path);
  WatchdogPinger pinger(io_.get_executor(), Notifier(), 50ms);
  pinger.start();
  ASSERT_EQ(io_.run_one_for(5s), 1u);  // the first ping, which fails
  EXPECT_EQ(pinger.pings(), 0u);
  EXPECT_TRUE(pinger.running());
  FakeSystemd systemd(io_, path);
  run_for(io_, [&]() -> asio::awaitable<void> { EXPECT_EQ((co_await systemd.receive()).text, "WATCHDOG=1"); }());
  EXPECT_EQ(pinger.pings(), 1u);
}

}  // namespace
}  // namespace nicsync::sys
