// What an idle nicsyncd (release build) costs with many mappings: resident memory, CPU while it
// polls, and the time from start to READY=1. The test Vault and test ClearTax run in this
// process (their own thread), the daemon as a child process; figures come from the kernel
// (/proc/<pid>/status VmRSS/VmHWM, /proc/<pid>/stat utime+stime) and from a NOTIFY_SOCKET
// datagram socket playing systemd's part.
//
// Memory is judged by the daemon's own memory, RssAnon (its heap and stacks): VmRSS adds
// RssFile, the pages of the binary and the shared libraries (~17 MiB, shared with every other
// process that maps them), which is printed but not judged. The figure to judge is RssAnon per
// mapping: (RssAnon with N mappings - RssAnon of the same daemon with none) / N.
//
// Scenarios (each a fresh test Vault, ClearTax and state directory):
// - none: the same daemon and config with a mapping set over an empty folder: the baseline.
// - set N: one [[mapping_set]] over N GSTIN keys (how a service provider maps thousands).
//   Poll interval 60 s, jitter 5 s, concurrency 16. After the first full sweep has read every
//   key and every pair is in sync (N deliveries), the daemon is idle: its memory is read,
//   then CPU (utime+stime) is measured over a window as % of one core, with the Vault reads the
//   daemon made meanwhile (its /metrics); the window starts with the first regular sweep (the
//   one after the catch-up) and should span whole poll intervals (default 120 s: two). Goals:
//   own memory <= 1.2 KiB per mapping at 10,000; CPU <= 2 % of one core at 10,000.
// - mappings N: N explicit [[mapping]] entries. Its idle memory once all N pairs are in sync
//   (goal: <= 1.2 KiB per mapping at 10,000, as for a set). Start -> READY=1 with an empty state
//   directory (first start), then again over restarts with that ledger (median of the restarts).
//
// Run: build/release/tests/nicsync_bench_daemon_footprint_bench [--tiny] [--window=SECONDS]
//        [--restarts=R] [--only=set10k|set100k|mappings10k]
//   full: the baseline, sets of 10,000 and 100,000 keys, 10,000 explicit mappings, a CPU window of 120 s
//   (two poll intervals), 5 restarts (~10 min); --tiny: 300 keys polled every 2 s, a 2 s window,
//   2 restarts (~15 s).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "testing/bench.hpp"
#include "testing/world.hpp"

using namespace nicsync;
namespace nt = nicsync::testing;
using nt::median;
using namespace std::chrono_literals;
using nicsync::testing::Daemon;
using nicsync::testing::DaemonConfig;
using nicsync::testing::NotifySocket;
using nicsync::testing::World;
using nicsync::testing::world_gstin;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Options {
  bool tiny = false;
  std::chrono::seconds window{120};
  int restarts = 5;
  std::string only;
  int set_keys = 0;  ///< --set-keys=N: only a set of N keys (for profiling)
};

struct Memory {
  double rss_mb = 0, hwm_mb = 0;
  double anon_mb = 0, file_mb = 0;  ///< VmRSS = RssAnon (the daemon's own) + RssFile (+ RssShmem)
};

/// VmRSS, VmHWM, RssAnon and RssFile of `pid` (MiB). RssFile is the binary's and the shared
/// libraries' pages (libcrypto, libstdc++, libc, libcurl and its dependencies…), shared with
/// every other process that maps them.
Memory read_memory(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  Memory m;
  for (std::string line; std::getline(in, line);) {
    auto value = [&] { return std::stod(line.substr(line.find(':') + 1)) / 1024.0; };  // "  1234 kB"
    if (line.starts_with("VmRSS:")) m.rss_mb = value();
    if (line.starts_with("VmHWM:")) m.hwm_mb = value();
    if (line.starts_with("RssAnon:")) m.anon_mb = value();
    if (line.starts_with("RssFile:")) m.file_mb = value();
  }
  return m;
}

/// utime + stime of `pid` in seconds (fields 14 and 15 of /proc/<pid>/stat, after the
/// parenthesised command name, which may contain spaces).
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

/// A sample's value in Prometheus text (`name{labels} value`), or -1.
double metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string human(int n) { return n % 1000 == 0 ? fmt::format("{}k", n / 1000) : std::to_string(n); }

/// Writes `n` keys secret/nic/<gstin> (version 1 each) straight into the test Vault.
std::vector<std::string> seed_keys(World& world, int n) {
  std::vector<std::string> gstins;
  gstins.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) gstins.push_back(world_gstin(i));
  constexpr int kBatch = 5000;  // keeps each call on the world thread short
  for (int from = 0; from < n; from += kBatch) {
    world.call([&] {
      for (int i = from; i < std::min(n, from + kBatch); ++i) {
        world.vault().kv_put("secret", "nic/" + gstins[static_cast<std::size_t>(i)],
                             {{"username", "API_BENCH"}, {"password", fmt::format("pw-{}-v1", i)}});
      }
    });
  }
  return gstins;
}

/// Waits (polling /metrics every 250 ms) until `n` pairs are in sync and the daemon is ready;
/// returns the seconds it took or throws after `timeout`.
double wait_in_sync(Daemon& d, int n, std::chrono::seconds timeout) {
  const auto t0 = SteadyClock::now();
  double in_sync = -1, ready = -1;
  while (SteadyClock::now() - t0 < timeout) {
    if (!d.process().running()) throw std::runtime_error("nicsyncd exited:\n" + d.process().output());
    if (auto r = d.request("GET", "/metrics"); r && r->status == 200) {
      in_sync = metric(r->body, "nicsync_pairs{state=\"in_sync\"}");
      ready = metric(r->body, "nicsync_ready");
      if (in_sync == n && ready == 1) return std::chrono::duration<double>(SteadyClock::now() - t0).count();
    }
    std::this_thread::sleep_for(250ms);
  }
  throw std::runtime_error(fmt::format("not idle after {} s: {} of {} pairs in sync, ready={}\n{}", timeout.count(),
                                       in_sync, n, ready, d.process().output()));
}

struct StartTimer {
  NotifySocket socket;
  SteadyClock::time_point spawned;
  /// Seconds from spawn to READY=1 (throws on timeout).
  double ready_after(Daemon& d, std::chrono::seconds timeout) {
    auto i = socket.wait_for("READY=1", timeout);
    if (!i) throw std::runtime_error("no READY=1:\n" + socket.all() + d.process().output());
    return std::chrono::duration<double>(socket.received_at(*i) - spawned).count();
  }
};

std::vector<std::string> g_summary;
void summary(std::string line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  g_summary.push_back(std::move(line));
}

std::string verdict(bool tiny, bool met) { return tiny ? "not judged (--tiny)" : (met ? "met" : "NOT met"); }

/// The daemon's own memory with `n` mappings against the baseline with none.
std::string own_memory(const Memory& m, const Memory& baseline, int n, std::optional<double> goal_kib, bool tiny) {
  const double per_mapping_kib = n > 0 ? (m.anon_mb - baseline.anon_mb) * 1024 / n : 0;
  return fmt::format("own memory RssAnon {:.1f} MiB, {:.2f} KiB per mapping over the {:.1f} MiB of none{}; VmRSS "
                     "{:.1f} MiB incl. RssFile {:.1f} (VmHWM {:.1f} MiB)",
                     m.anon_mb, per_mapping_kib, baseline.anon_mb,
                     goal_kib ? fmt::format(" (goal <= {:.1f} KiB: {})", *goal_kib,
                                            verdict(tiny, per_mapping_kib <= *goal_kib))
                              : std::string(),
                     m.rss_mb, m.file_mb, m.hwm_mb);
}

void stop(Daemon& d) {
  d.signal(SIGTERM);
  if (d.process().wait(60s) != 0) throw std::runtime_error("nicsyncd did not stop cleanly:\n" + d.process().output());
}

DaemonConfig idle_config(const Options& o) {
  DaemonConfig cfg;
  cfg.watch_mode = "poll";
  cfg.poll_interval = o.tiny ? "2s" : "60s";
  cfg.resync_interval = "10m";
  cfg.jitter = o.tiny ? "100ms" : "5s";
  return cfg;
}

/// set N: memory after the first sweep and all deliveries, then CPU over the window (not with
/// N = 0, the baseline). Returns the idle memory.
Memory scenario_set(int n, const Options& o, const Memory& baseline, std::optional<double> goal_kib,
                    bool measure_cpu) {
  World world;
  world.seed_cleartax_secret();
  const auto seed_start = SteadyClock::now();
  seed_keys(world, n);
  std::printf("set %s: %d keys written to the test Vault in %.1f s\n", human(n).c_str(), n,
              std::chrono::duration<double>(SteadyClock::now() - seed_start).count());
  nt::TempDir dir;
  DaemonConfig cfg = idle_config(o);
  cfg.mapping_set = true;
  Daemon d(world, dir, cfg);
  StartTimer start{NotifySocket(dir.file("notify.sock")), SteadyClock::now()};
  d.start({"NOTIFY_SOCKET=" + dir.file("notify.sock")});
  const double ready_s = start.ready_after(d, 60s);
  const double sync_s = wait_in_sync(d, n, std::chrono::seconds(60 + n / 200));
  std::this_thread::sleep_for(o.tiny ? 500ms : 5s);  // the last ledger writes and frees settle
  const Memory m = read_memory(d.process().pid());
  if (n == 0) {
    summary(fmt::format("  none     : READY=1 after {:.3f} s; idle own memory RssAnon {:.1f} MiB (VmRSS {:.1f} MiB)",
                        ready_s, m.anon_mb, m.rss_mb));
  } else {
    summary(fmt::format("  set {:>5}: READY=1 after {:.3f} s; first sweep + {} deliveries {:.1f} s later; {}",
                        human(n), ready_s, n, sync_s, own_memory(m, baseline, n, goal_kib, o.tiny)));
  }
  if (measure_cpu && n > 0) {
    auto reads = [&] {
      auto r = d.request("GET", "/metrics");
      return r ? metric(r->body, "nicsync_watch_reads_total") : -1;
    };
    // Steady state: the first sweep catches up at once, the next one starts a poll interval
    // after it. The window starts with that one and spans whole intervals, so it holds exactly
    // its share of reads whatever the phase.
    const double caught_up = reads();
    const auto give_up = SteadyClock::now() + 90s;
    while (reads() <= caught_up && SteadyClock::now() < give_up) std::this_thread::sleep_for(200ms);
    const double reads0 = reads();
    const double cpu0 = cpu_seconds(d.process().pid());
    const auto t0 = SteadyClock::now();
    std::this_thread::sleep_for(o.window);
    const double cpu1 = cpu_seconds(d.process().pid());
    const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const double reads1 = reads();
    const double pct = 100.0 * (cpu1 - cpu0) / wall;
    const Memory after = read_memory(d.process().pid());
    summary(fmt::format(
        "  set {:>5}: idle CPU {:.2f} % of one core over {:.0f} s at a {} poll interval ({:.0f} Vault reads, "
        "{:.0f}/s, {:.0f} us of CPU per read; VmRSS after {:.1f} MiB){}",
        human(n), pct, wall, o.tiny ? "2 s" : "60 s", reads1 - reads0, (reads1 - reads0) / wall,
        reads1 > reads0 ? 1e6 * (cpu1 - cpu0) / (reads1 - reads0) : 0.0, after.rss_mb,
        n == 10000 || o.tiny ? fmt::format("   goal <= 2 %: {}", verdict(o.tiny, pct <= 2.0)) : std::string()));
  }
  stop(d);
  return m;
}

/// mappings N: idle RSS as for `set N`, the keys listed one by one as [[mapping]]s; start ->
/// READY with an empty state directory, then with N pairs in the ledger.
void scenario_mappings(int n, const Options& o, const Memory& baseline, std::optional<double> goal_kib) {
  World world;
  world.seed_cleartax_secret();
  DaemonConfig cfg = idle_config(o);
  cfg.gstins = seed_keys(world, n);
  nt::TempDir dir;
  Daemon d(world, dir, cfg);
  const auto config_bytes = std::filesystem::file_size(d.config_path());
  double cold = 0;
  {
    StartTimer start{NotifySocket(dir.file("notify.sock")), SteadyClock::now()};
    d.start({"NOTIFY_SOCKET=" + dir.file("notify.sock")});
    cold = start.ready_after(d, 60s);
    wait_in_sync(d, n, std::chrono::seconds(60 + n / 200));
    std::this_thread::sleep_for(o.tiny ? 500ms : 5s);
    const Memory m = read_memory(d.process().pid());
    summary(fmt::format("  mappings {:>5}: {:.1f} MiB config file; idle {}", human(n),
                        static_cast<double>(config_bytes) / 1048576.0, own_memory(m, baseline, n, goal_kib, o.tiny)));
    stop(d);
  }
  std::vector<double> warm;
  for (int r = 0; r < o.restarts; ++r) {
    std::filesystem::remove(dir.file("notify.sock"));
    StartTimer start{NotifySocket(dir.file("notify.sock")), SteadyClock::now()};
    d.start({"NOTIFY_SOCKET=" + dir.file("notify.sock")});
    warm.push_back(start.ready_after(d, 60s));
    stop(d);
  }
  std::string list;
  for (double w : warm) list += fmt::format(" {:.3f}", w);
  summary(
      fmt::format("  mappings {:>5}: start -> READY=1 {:.3f} s on the first start (empty state directory), "
                  "median {:.3f} s over {} restarts with {} pairs in the ledger (each:{})",
                  human(n), cold, median(warm), warm.size(), n, list));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool window_set = false, restarts_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--tiny") {
      o.tiny = true;
    } else if (a.starts_with("--window=")) {
      o.window = std::chrono::seconds(std::stoi(std::string(a.substr(9))));
      window_set = true;
    } else if (a.starts_with("--restarts=")) {
      o.restarts = std::stoi(std::string(a.substr(11)));
      restarts_set = true;
    } else if (a.starts_with("--set-keys=")) {
      o.set_keys = std::stoi(std::string(a.substr(11)));
    } else if (a.starts_with("--only=")) {
      o.only = a.substr(7);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--tiny] [--window=SECONDS] [--restarts=R] [--only=set10k|set100k|mappings10k] "
                   "[--set-keys=N]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.tiny) {
    if (!window_set) o.window = 2s;
    if (!restarts_set) o.restarts = 2;
  }
  nt::default_binary_dir_to_this_build();
  nt::unset_proxy_env();
  std::printf("idle footprint of the real nicsyncd (%s)%s\n", nt::built_program("nicsyncd").c_str(),
              o.tiny ? ", --tiny sizes" : "");
  auto wanted = [&](const std::string& name) { return o.only.empty() || o.only == name; };
  try {
    const Memory none = scenario_set(0, o, Memory{}, std::nullopt, false);
    if (o.set_keys > 0) {
      scenario_set(o.set_keys, o, none, std::nullopt, true);
    } else if (o.tiny) {
      scenario_set(300, o, none, std::nullopt, true);
      scenario_mappings(300, o, none, std::nullopt);
    } else {
      if (wanted("set10k")) scenario_set(10'000, o, none, 1.2, true);
      if (wanted("set100k")) scenario_set(100'000, o, none, std::nullopt, false);
      if (wanted("mappings10k")) scenario_mappings(10'000, o, none, 1.2);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    return 1;
  }
  std::printf("\nsummary\n");
  for (const auto& line : g_summary) std::printf("%s\n", line.c_str());
  return 0;
}
