// `nicsyncd run`: every module wired onto one event loop, with systemd notifications, readiness,
// SIGHUP reload (validated whole, or rejected with the old configuration kept) and SIGTERM
// shutdown (stop taking work, give in-flight pushes a bounded time).
#include "nicsync/app/daemon.hpp"

#include <malloc.h>
#include <signal.h>

#include <fstream>
#include <optional>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "app/runtime.hpp"
#include "nicsync/app/cli.hpp"
#include "nicsync/app/logging.hpp"
#include "nicsync/core/build_info.hpp"
#include "nicsync/sys/hardening.hpp"
#include "nicsync/sys/notifier.hpp"
#include "nicsync/sys/watchdog.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

class Daemon {
 public:
  explicit Daemon(Config config) : boot_config_(std::move(config)) {}

  int run() {
    // Memory of a daemon that stays up for months (measured with 10,000 keys, see
    // tests/bench/daemon_footprint_bench.cpp). A fixed mmap threshold: glibc otherwise raises
    // it to the size of each large block freed (a sweep's listing, a rebuilt mapping), and
    // later blocks of that size then settle in the heap between long-lived ones, where their
    // holes stay. One arena for every thread (the loop, the ledger's writer, curl's resolver
    // threads): malloc_trim gives back only the middle of another thread's arena, not its top,
    // where the ledger's page cache lands when it is released (up to 1.7 MiB of an idle daemon).
    ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    ::mallopt(M_ARENA_MAX, 1);
    // No fastbins: a small block freed is merged with its free neighbours at once instead of
    // waiting, unmerged, in a fastbin. The first sweep's transient blocks otherwise leave
    // thousands of small holes between the pairs' long-lived ones, pages malloc_trim cannot
    // give back (10,000 keys, idle: RssAnon 13.2-13.7 -> 12.3-12.5 MiB; CPU unchanged or lower).
    ::mallopt(M_MXFAST, 0);
    // A write past RLIMIT_FSIZE (LimitFSIZE=, ulimit -f) or to a closed stderr pipe must fail
    // that write with EFBIG / EPIPE, which the ledger and logger report, not end the process.
    ::signal(SIGXFSZ, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    if (auto r = sys::disable_core_dumps(); !r) {
      spdlog::critical("cannot disable core dumps: {}", r.error().describe());
      return kExitFailure;
    }
    // Signals are caught from here on: a SIGHUP or SIGTERM that arrives once READY=1 is out (a
    // `systemctl reload` right after the start) is queued for the loop, not fatal by default.
    signals_.emplace(io_, SIGTERM, SIGINT, SIGHUP);
    notifier_.status("starting");
    auto runtime = Runtime::open(io_.get_executor(), std::move(boot_config_));
    if (!runtime) {
      spdlog::critical("{}", runtime.error().message);
      notifier_.status("failed: " + runtime.error().message);
      return runtime.error().is(Errc::state_dir_locked) ? kExitUnavailable : kExitFailure;
    }
    rt_ = std::move(*runtime);
    if (auto r = rt_->start_api(); !r) {
      spdlog::critical("cannot start the API: {}", r.error().message);
      return kExitUnavailable;
    }
    spdlog::info("nicsyncd {} ready: API on {}, {} destination(s), {} pair(s), state in {}", build_info::kVersion,
                 rt_->api_address(), config().destinations.size(), rt_->engine().snapshot().size(), config().state_dir);
    // Ready now, not after Vault answers: a Vault outage at boot is a visible degraded state
    // (/readyz, STATUS=), not a start timeout and a restart loop.
    if (auto r = notifier_.ready(); !r) spdlog::warn("sd_notify: {}", r.error().describe());
    if (auto interval = notifier_.watchdog_interval()) {
      watchdog_.emplace(io_.get_executor(), notifier_, *interval);
      watchdog_->start();
    }
    rt_->start_background(background_.slot());
    asio::co_spawn(io_, status_loop(), asio::bind_cancellation_slot(status_signal_.slot(), asio::detached));
    asio::co_spawn(io_, signal_loop(), asio::detached);
    io_.run();
    rt_.reset();
    spdlog::info("nicsyncd stopped");
    return exit_code_;
  }

 private:
  // The configuration in effect, once the runtime holds it.
  [[nodiscard]] const Config& config() const noexcept { return rt_->config(); }

  asio::awaitable<void> signal_loop() {
    for (;;) {
      auto [ec, signo] = co_await signals_->async_wait(kTuple);
      if (ec) co_return;
      if (signo == SIGHUP) {
        co_await reload();
        continue;
      }
      spdlog::info("received {}, stopping", signo == SIGTERM ? "SIGTERM" : "SIGINT");
      co_await shutdown();
      co_return;
    }
  }

  asio::awaitable<void> reload() {
    (void)notifier_.reloading();
    spdlog::info("SIGHUP: reloading {}", config().source);
    auto next = load_full_config(config().source);
    if (!next) {
      spdlog::error("reload rejected, keeping the current configuration:\n{}", next.error().message);
      notifier_.status("reload rejected (see the log); running with the previous configuration");
    } else if (auto why = restart_only_change(config(), *next)) {
      spdlog::error("reload rejected, keeping the current configuration: {} changed; restart nicsyncd to apply it",
                    *why);
      notifier_.status("reload rejected (see the log); running with the previous configuration");
    } else if (auto applied = rt_->reconfigure(std::move(*next)); !applied) {
      spdlog::error("reload rejected, keeping the current configuration: {}", applied.error().message);
    } else {
      setup_logging(config().log);
      spdlog::info("configuration reloaded: {} destination(s), {} mapping(s), {} mapping set(s)",
                   config().destinations.size(), config().mappings.size(), config().mapping_sets.size());
    }
    (void)notifier_.ready();
    co_return;
  }

  asio::awaitable<void> shutdown() {
    (void)notifier_.stopping();
    notifier_.status("stopping: finishing pushes in flight");
    background_.emit(asio::cancellation_type::terminal);
    status_signal_.emit(asio::cancellation_type::terminal);
    co_await rt_->stop(config().sync.stop_grace);
    if (watchdog_) watchdog_->stop();
    io_.stop();
  }

  asio::awaitable<void> status_loop() {
    asio::steady_timer timer(io_);
    std::string last;
    for (;;) {
      std::string line = rt_->status_line();
      if (line != last) {
        (void)notifier_.status(line);
        last = std::move(line);
      }
      rt_->release_memory_when_settled();
      timer.expires_after(std::chrono::seconds(2));
      auto [ec] = co_await timer.async_wait(kTuple);
      if (ec) co_return;
    }
  }

  Config boot_config_;  // until the runtime takes it
  asio::io_context io_{1};
  std::optional<asio::signal_set> signals_;
  sys::Notifier notifier_;
  std::optional<sys::WatchdogPinger> watchdog_;
  std::unique_ptr<Runtime> rt_;
  asio::cancellation_signal background_;
  asio::cancellation_signal status_signal_;
  int exit_code_ = kExitOk;
};

}  // namespace

int run_daemon(Config config) {
  Daemon daemon(std::move(config));
  return daemon.run();
}

}  // namespace nicsync::app
