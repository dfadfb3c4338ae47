// Vault client throughput against the standalone test Vault (nicsync-test-vault as its own
// process, so client and server each have a core): KV v2 metadata reads — what the poll
// scheduler does all day — over one vault::Client keep-alive pool at concurrency 1 and 64, plus
// secret data reads at 64 (JSON with secrets parsed into wiped storage). Figures: reads/s
// (median of the repetitions) and the TCP connections the pool opened. Goal: >= 15,000
// metadata reads/s at 64 on 2 cores.
// Run: build/release/tests/nicsync_bench_vault_client_bench [--tiny] [benchmark flags]
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "nicsync/http/client.hpp"
#include "nicsync/vault/client.hpp"
#include "testing/process.hpp"

namespace asio = boost::asio;
using namespace nicsync;

namespace {

constexpr int kKeys = 64;
constexpr std::string_view kRootToken = "bench-root-token";

bool g_tiny = false;
std::string g_address;

struct Sample {
  std::vector<double> rates;
  std::uint64_t connections = 0;
};
std::map<std::string, Sample> g_samples;

int reads_for(int concurrency) {
  if (g_tiny) return concurrency == 1 ? 50 : 256;
  return concurrency == 1 ? 3000 : 40000;
}

vault::KvPath key_path(int i) {
  return vault::KvPath{vault::VaultPath::parse("secret").value(),
                       vault::VaultPath::parse("nic/bench-" + std::to_string(i % kKeys)).value()};
}

template <class T>
T run_one(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
  io.restart();
  io.run();
  return std::move(*out);
}

enum class What { metadata, data };

void BM_vault(benchmark::State& state, What what) {
  const int concurrency = static_cast<int>(state.range(0));
  const int n = reads_for(concurrency);
  const std::string name =
      std::string(what == What::metadata ? "metadata" : "data") + "/c" + std::to_string(concurrency);
  for (auto _ : state) {
    asio::io_context io(1);
    vault::ClientConfig config;
    config.address = g_address;
    config.auth.method = vault::AuthMethod::token;
    config.auth.token = vault::Token(Secret(kRootToken));
    config.max_connections = 64;
    vault::Client client(io.get_executor(), config, Clock::real());
    if (auto login = run_one(io, client.login()); !login) {
      state.SkipWithError(login.error().describe().c_str());
      return;
    }
    int remaining = n;
    int failures = 0;
    std::string first_error;
    auto worker = [&](int id) -> asio::awaitable<void> {
      int i = id;
      while (remaining > 0) {
        --remaining;
        bool ok = false;
        if (what == What::metadata) {
          auto r = co_await client.read_kv2_metadata(key_path(i));
          ok = static_cast<bool>(r);
          if (!ok && first_error.empty()) first_error = r.error().describe();
        } else {
          auto r = co_await client.read_kv2(key_path(i));
          ok = r && r->data.field("password");
          if (!r && first_error.empty()) first_error = r.error().describe();
        }
        if (!ok) ++failures;
        i += concurrency;
      }
    };
    const std::uint64_t connections_before = client.stats().connections_opened;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, worker(i), asio::detached);
    io.restart();
    io.run();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (failures > 0) {
      state.SkipWithError(("failed reads: " + first_error).c_str());
      return;
    }
    const std::uint64_t connections = client.stats().connections_opened;
    (void)connections_before;
    state.SetIterationTime(secs);
    state.counters["reads_per_s"] = n / secs;
    state.counters["connections"] = static_cast<double>(connections);
    auto& s = g_samples[name];
    s.rates.push_back(n / secs);
    s.connections = connections;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string test_vault_program() {
  if (std::getenv("NICSYNC_BINARY_DIR") != nullptr) {
    return testing::built_program("tests/fakes/vault/nicsync-test-vault");
  }
  // Run by hand: the program sits next to this one's build tree (tests/…/nicsync-test-vault).
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / "fakes" / "vault" / "nicsync-test-vault").string();
}

// Writes the keys through the HTTP API, as any Vault client would.
bool seed(const std::string& address) {
  asio::io_context io(1);
  http::Client http(io.get_executor());
  int failures = 0;
  auto writer = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kKeys; ++i) {
      http::Request r;
      r.method = "PUT";
      r.url = address + "/v1/secret/data/nic/bench-" + std::to_string(i);
      r.headers = {{"X-Vault-Token", std::string(kRootToken)}, {"Content-Type", "application/json"}};
      r.body = R"({"data":{"username":"API_BENCH","password":"N1c&<Pass>\"\\w\u00f6rd"}})";
      auto resp = co_await http.request(std::move(r));
      if (!resp || resp->status != 200) ++failures;
    }
  };
  asio::co_spawn(io, writer(), asio::detached);
  io.run();
  return failures == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tiny") == 0) {
      g_tiny = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  std::string reps = "--benchmark_repetitions=" + std::string(g_tiny ? "1" : "5");
  args.insert(args.begin() + 1, reps.data());
  int bargc = static_cast<int>(args.size());
  for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    ::unsetenv(v);
  }

  testing::Process vault(
      {.argv = {test_vault_program(), "--listen", "127.0.0.1:0", "--root-token", std::string(kRootToken)}});
  auto end = vault.wait_for_output("\n", std::chrono::seconds(10));
  const std::string prefix = "listening on ";
  const std::string line = vault.output().substr(0, end.value_or(0));
  if (!end || !line.starts_with(prefix)) {
    std::fprintf(stderr, "nicsync-test-vault did not start: %s\n", vault.output().c_str());
    return 1;
  }
  g_address = line.substr(prefix.size());
  while (!g_address.empty() && (g_address.back() == '\n' || g_address.back() == '\r')) g_address.pop_back();
  if (!seed(g_address)) {
    std::fprintf(stderr, "could not write the benchmark keys to %s\n", g_address.c_str());
    return 1;
  }

  benchmark::RegisterBenchmark("vault_metadata", BM_vault, What::metadata)
      ->Arg(1)
      ->Arg(64)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("vault_data", BM_vault, What::data)
      ->Arg(64)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&bargc, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  std::printf(
      "\nsummary against nicsync-test-vault at %s (median reads/s over repetitions, TCP connections the "
      "pool opened in the last one)\n",
      g_address.c_str());
  for (const auto& [name, s] : g_samples) {
    std::printf("  %-14s %10.0f reads/s  %4llu connections\n", name.c_str(), median(s.rates),
                static_cast<unsigned long long>(s.connections));
  }
  const double c64 = median(g_samples["metadata/c64"].rates);
  std::printf("  goal: >= 15000 metadata reads/s at concurrency 64: %s\n",
              g_tiny ? "not judged (--tiny)" : (c64 >= 15000 ? "met" : "NOT met"));
  vault.signal(SIGTERM);
  vault.wait(std::chrono::seconds(5));
  return 0;
}
