// What the audit feed saves at idle (release build): Vault requests per second made by the real
// nicsyncd with 10,000 keys (one [[mapping_set]]), polling every 60 s without a feed, against the
// feed healthy with resync_interval = 30m; and the daemon's CPU in both. The test Vault and the
// test ClearTax run in this process (their own thread), the daemon as a child process. Requests
// are the test Vault's own count of what reached /v1/ over the window; CPU is utime+stime of the
// daemon (/proc/<pid>/stat) as % of one core.
//
// Each scenario waits until every pair is in sync and the daemon is idle (poll: a regular sweep
// has begun; feed: the feed is healthy and its start-up resync is over), then measures over the
// window. Goal: >= 20x fewer requests with the feed.
//
// Run: build/release/tests/nicsync_bench_audit_feed_idle_bench [--tiny] [--window=SECONDS] [--keys=N]
//   full: 10,000 keys, a 120 s window (two poll intervals) per scenario (~8 min); --tiny: 300
//   keys, poll 2 s / resync 60 s, a 4 s window (~30 s).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "testing/bench.hpp"
#include "testing/world.hpp"

using namespace nicsync;
namespace nt = nicsync::testing;
using namespace std::chrono_literals;
using nt::Daemon;
using nt::DaemonConfig;
using nt::World;
using Steady = std::chrono::steady_clock;

namespace {

struct Options {
  bool tiny = false;
  int keys = 10'000;
  std::chrono::seconds window{120};
};

double cpu_seconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

struct Figures {
  double requests_per_second = 0;
  double cpu_percent = 0;
  double reads = 0;
};

Figures scenario(bool feed, const Options& o) {
  const std::uint16_t port = nt::free_port();
  World::Options wo;
  if (feed) {
    wo.audit_devices.emplace_back();
    wo.audit_devices.back().address = fmt::format("127.0.0.1:{}", port);
  }
  World world(wo);
  world.seed_cleartax_secret();
  for (int from = 0; from < o.keys; from += 5000) {
    world.call([&] {
      for (int i = from; i < std::min(o.keys, from + 5000); ++i) {
        world.vault().kv_put("secret", "nic/" + nt::world_gstin(i),
                             {{"username", "U"}, {"password", fmt::format("p{}", i)}});
      }
    });
  }
  nt::TempDir dir;
  DaemonConfig cfg;
  cfg.mapping_set = true;
  cfg.watch_mode = "poll";
  cfg.poll_interval = o.tiny ? "2s" : "60s";
  cfg.resync_interval = o.tiny ? "60s" : "30m";
  cfg.jitter = o.tiny ? "100ms" : "5s";
  if (feed) cfg.extra = fmt::format("[watch.audit]\nlisten = \"127.0.0.1:{}\"\n", port);
  Daemon d(world, dir, cfg);
  d.start();
  if (!d.wait_started()) throw std::runtime_error("nicsyncd did not start:\n" + d.process().output());
  auto metrics = [&] {
    auto r = d.request("GET", "/metrics");
    return r && r->status == 200 ? r->body : std::string();
  };
  // Idle: every pair in sync, ready; with the feed healthy and the resync its first connection
  // asked for started (and, below, over), else a regular sweep begun.
  const auto give_up = Steady::now() + std::chrono::seconds(120 + o.keys / 100);
  for (;;) {
    const std::string m = metrics();
    const bool synced = metric(m, "nicsync_pairs{state=\"in_sync\"}") == o.keys && metric(m, "nicsync_ready") == 1;
    const bool settled =
        feed ? metric(m, "nicsync_audit_feed_healthy") == 1 && metric(m, "nicsync_audit_feed_resyncs_total") >= 1
             : metric(m, "nicsync_watch_reads_total") > o.keys;
    if (synced && settled) break;
    if (Steady::now() > give_up || !d.process().running()) {
      throw std::runtime_error("nicsyncd did not settle:\n" + d.process().output().substr(0, 4000));
    }
    std::this_thread::sleep_for(250ms);  // another process's state: nothing to wait on
  }
  // With the feed: until the resync's burst of reads is over (fewer than 1 % of the keys a second).
  while (feed) {
    const double r0 = metric(metrics(), "nicsync_watch_reads_total");
    std::this_thread::sleep_for(1s);
    if (metric(metrics(), "nicsync_watch_reads_total") - r0 < std::max(5, o.keys / 100)) break;
    if (Steady::now() > give_up) throw std::runtime_error("the resync did not end");
  }
  std::this_thread::sleep_for(o.tiny ? 500ms : 5s);  // the last deliveries' ledger writes
  world.call([&] { world.vault().clear_request_log(); });
  const double reads0 = metric(metrics(), "nicsync_watch_reads_total");
  const double cpu0 = cpu_seconds(d.process().pid());
  const auto t0 = Steady::now();
  std::this_thread::sleep_for(o.window);
  const double cpu1 = cpu_seconds(d.process().pid());
  const double wall = std::chrono::duration<double>(Steady::now() - t0).count();
  const auto requests = world.call([&] { return world.vault().request_log().size(); });
  Figures f;
  f.requests_per_second = static_cast<double>(requests) / wall;
  f.cpu_percent = 100.0 * (cpu1 - cpu0) / wall;
  f.reads = metric(metrics(), "nicsync_watch_reads_total") - reads0;
  d.signal(SIGTERM);
  d.process().wait(60s);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool window_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--tiny") {
      o.tiny = true;
      o.keys = 300;
    } else if (a.starts_with("--window=")) {
      o.window = std::chrono::seconds(std::stoi(std::string(a.substr(9))));
      window_set = true;
    } else if (a.starts_with("--keys=")) {
      o.keys = std::stoi(std::string(a.substr(7)));
    } else {
      std::fprintf(stderr, "usage: %s [--tiny] [--window=SECONDS] [--keys=N]\n", argv[0]);
      return 2;
    }
  }
  if (o.tiny && !window_set) o.window = 4s;
  nt::default_binary_dir_to_this_build();
  nt::unset_proxy_env();
  std::printf("Vault requests at idle, real nicsyncd (%s), %d keys, %lld s windows\n",
              nt::built_program("nicsyncd").c_str(), o.keys, static_cast<long long>(o.window.count()));
  try {
    const Figures poll = scenario(false, o);
    std::printf("  polling every %s, no feed: %.1f Vault requests/s (%.0f reads), CPU %.2f %% of one core\n",
                o.tiny ? "2 s" : "60 s", poll.requests_per_second, poll.reads, poll.cpu_percent);
    std::fflush(stdout);
    const Figures fed = scenario(true, o);
    std::printf("  audit feed healthy, resync every %s: %.2f Vault requests/s (%.0f reads), CPU %.2f %% of one core\n",
                o.tiny ? "60 s" : "30 min", fed.requests_per_second, fed.reads, fed.cpu_percent);
    const double ratio = fed.requests_per_second > 0 ? poll.requests_per_second / fed.requests_per_second : 0;
    std::printf(
        "\nsummary\n  %.1f requests/s polling vs %.2f with the feed: %.1fx fewer   goal >= 20x: %s\n"
        "  idle CPU with the feed: %.2f %% of one core (polling: %.2f %%)\n",
        poll.requests_per_second, fed.requests_per_second, ratio,
        o.tiny ? "not judged (--tiny)" : (ratio >= 20 ? "met" : "NOT met"), fed.cpu_percent, poll.cpu_percent);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
