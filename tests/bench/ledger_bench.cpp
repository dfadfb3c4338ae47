// Durable ledger writes per second with 1, 64 and 1024 concurrent writers, each write a pair
// record plus a history entry (what one delivery commits), on one event loop as the engine uses
// it. Group commit shows as fsyncs (transactions) per write falling while writers wait together.
// Also printed: write latency p50/p99 and the event loop's worst stall while writing (a 1 ms
// ticker's lateness), which stays small because SQLite and fsync run on the writer thread.
// The database lives in $TMPDIR (or --dir=PATH): put it on the disk you want measured.
// Run: build/release/tests/nicsync_bench_ledger_bench [--tiny] [--dir=PATH] [benchmark flags]
#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "nicsync/ledger/sqlite_store.hpp"
#include "testing/temp_dir.hpp"

namespace asio = boost::asio;
using namespace nicsync;
using namespace nicsync::ledger;
using Clock = std::chrono::steady_clock;

namespace {

bool g_tiny = false;
std::string g_dir;

struct Sample {
  std::vector<double> rates;
  std::vector<double> fsyncs_per_write;
  std::vector<double> p50_us;
  std::vector<double> p99_us;
  std::vector<double> max_stall_us;
};
std::map<int, Sample> g_samples;

int writes_for(int concurrency) {
  if (g_tiny) return concurrency == 1 ? 50 : 2 * concurrency;
  return concurrency == 1 ? 2000 : concurrency == 64 ? 20000 : 50000;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

PairRecord record_for(int n) {
  PairRecord r;
  r.destination = "cleartax";
  r.gstin = fmt::format("{:02}AAAAA{:04}A1Z{}", n % 37 + 1, n % 10000, n % 10);
  r.vault_path = "secret/nic/" + r.gstin;
  r.state = PairState::in_sync;
  r.applied =
      VersionRef{VersionId{n, Lineage("2026-01-01T00:00:00.000000000Z")}, Fingerprint::from_hex(std::string(64, 'f'))};
  r.applied_at = std::chrono::system_clock::now();
  r.updated_at = r.applied_at;
  return r;
}

struct Run {
  SqliteStore* store = nullptr;
  int remaining = 0;
  int failures = 0;
  int writers_left = 0;
  std::vector<double> latencies_us;
  Clock::duration max_stall{};
};

asio::awaitable<void> writer(Run* run) {
  while (run->remaining > 0) {
    const int n = run->remaining--;
    PairRecord record = record_for(n);
    HistoryEntry h{.at = record.applied_at,
                   .destination = record.destination,
                   .gstin = record.gstin,
                   .version = VersionId{n},
                   .outcome = Outcome::applied,
                   .attempt = 1,
                   .duration = std::chrono::milliseconds(120)};
    const auto start = Clock::now();
    auto r = co_await run->store->write(std::move(record), std::move(h));
    run->latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (!r) ++run->failures;
  }
  --run->writers_left;
}

// How late a 1 ms timer fires while the writers run: the loop's worst stall.
asio::awaitable<void> ticker(Run* run) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (run->writers_left > 0) {
    const auto due = Clock::now() + std::chrono::milliseconds(1);
    t.expires_at(due);
    co_await t.async_wait(asio::use_awaitable);
    run->max_stall = std::max(run->max_stall, Clock::now() - due);
  }
}

void BM_durable_writes(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  const int n = writes_for(concurrency);
  for (auto _ : state) {
    std::unique_ptr<testing::TempDir> tmp;
    std::filesystem::path path;
    if (g_dir.empty()) {
      tmp = std::make_unique<testing::TempDir>("nicsync-ledger-bench");
      path = tmp->path() / SqliteStore::kFileName;
    } else {
      path = std::filesystem::path(g_dir) / SqliteStore::kFileName;
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    }
    auto store = SqliteStore::open({.path = path});
    if (!store) {
      state.SkipWithError(store.error().describe().c_str());
      return;
    }
    asio::io_context io(1);
    Run run{.store = store->get(), .remaining = n, .writers_left = concurrency};
    run.latencies_us.reserve(static_cast<std::size_t>(n));
    const auto before = (*store)->stats();
    const auto start = Clock::now();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, writer(&run), asio::detached);
    asio::co_spawn(io, ticker(&run), asio::detached);
    io.run();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const auto after = (*store)->stats();
    (*store)->close();
    if (run.failures > 0) state.SkipWithError("writes failed");
    const double txns = static_cast<double>(after.transactions - before.transactions);
    state.SetIterationTime(secs);
    state.counters["writes_per_s"] = n / secs;
    state.counters["fsyncs_per_write"] = txns / n;
    auto& s = g_samples[concurrency];
    s.rates.push_back(n / secs);
    s.fsyncs_per_write.push_back(txns / n);
    s.p50_us.push_back(percentile(run.latencies_us, 0.50));
    s.p99_us.push_back(percentile(run.latencies_us, 0.99));
    s.max_stall_us.push_back(std::chrono::duration<double, std::micro>(run.max_stall).count());
  }
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tiny") == 0) {
      g_tiny = true;
    } else if (std::strncmp(argv[i], "--dir=", 6) == 0) {
      g_dir = argv[i] + 6;
    } else {
      args.push_back(argv[i]);
    }
  }
  std::string reps = "--benchmark_repetitions=" + std::string(g_tiny ? "1" : "5");
  args.insert(args.begin() + 1, reps.data());
  int bargc = static_cast<int>(args.size());

  benchmark::RegisterBenchmark("ledger_durable_writes", BM_durable_writes)
      ->Arg(1)
      ->Arg(64)
      ->Arg(1024)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&bargc, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf("\nsummary (medians over repetitions; a write = pair record + history entry, durable)\n");
  std::printf("  %-10s %12s %16s %10s %10s %14s\n", "writers", "writes/s", "fsyncs/write", "p50 us", "p99 us",
              "loop stall us");
  for (const auto& [c, s] : g_samples) {
    std::printf("  %-10d %12.0f %16.4f %10.0f %10.0f %14.0f\n", c, median(s.rates), median(s.fsyncs_per_write),
                median(s.p50_us), median(s.p99_us), median(s.max_stall_us));
  }
  return 0;
}
