// HTTP client throughput against a loopback keep-alive server (our Beast listener on its own
// thread), compared in one run with the ways a C++ Vault client could use libcurl:
//   nicsync/c1, nicsync/c64        our client (curl multi on Asio), concurrency 1 and 64
//   curl_multi_plain/c64           curl multi with its own poll loop, no Asio (the ceiling)
//   blocking_reuse_handle/c1       curl_easy_perform in a loop on one handle (keeps the connection)
//   blocking_new_handle/c1         a new easy handle per request, as libvault does (new connection each time)
// Figures: requests/s (median of the repetitions) and TCP connections opened.
// Run: build/release/tests/nicsync_bench_http_client_bench [--tiny] [benchmark flags]
#include <atomic>
#include <cstring>
#include <map>
#include <thread>

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <curl/curl.h>

#include "nicsync/http/client.hpp"
#include "nicsync/http/server.hpp"

namespace asio = boost::asio;
using namespace nicsync;

namespace {

bool g_tiny = false;
std::string g_url;
std::atomic<std::uint64_t> g_server_connections{0};

struct Sample {
  std::vector<double> rates;
  std::uint64_t connections = 0;
};
std::map<std::string, Sample> g_samples;

int requests_for(int concurrency) {
  if (g_tiny) return concurrency == 1 ? 50 : 256;
  return concurrency == 1 ? 5000 : 40000;
}

void record(benchmark::State& state, const std::string& name, int n, double seconds, std::uint64_t conns) {
  state.SetIterationTime(seconds);
  state.counters["req_per_s"] = n / seconds;
  state.counters["connections"] = static_cast<double>(conns);
  auto& s = g_samples[name];
  s.rates.push_back(n / seconds);
  s.connections = conns;
}

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

// --- our client ------------------------------------------------------------------------------

void BM_nicsync(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  const int n = requests_for(concurrency);
  for (auto _ : state) {
    asio::io_context io(1);
    http::ClientOptions options;
    options.max_host_connections = 64;
    http::Client client(io.get_executor(), options);
    int remaining = n;
    int failures = 0;
    auto worker = [&]() -> asio::awaitable<void> {
      while (remaining > 0) {
        --remaining;
        http::Request r;
        r.url = g_url;
        auto resp = co_await client.request(std::move(r));
        if (!resp || resp->status != 200) ++failures;
      }
    };
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, worker(), asio::detached);
    io.run();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (failures) state.SkipWithError("requests failed");
    record(state, "nicsync/c" + std::to_string(concurrency), n, secs, client.stats().connections_opened);
  }
}

// --- plain curl multi (no Asio): the ceiling for any curl-based client ----------------------

void BM_curl_multi_plain(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  const int n = requests_for(concurrency);
  for (auto _ : state) {
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L);
    int started = 0;
    int done = 0;
    std::uint64_t conns = 0;
    auto add = [&](CURL* e) {
      curl_easy_setopt(e, CURLOPT_URL, g_url.c_str());
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
      curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
      curl_multi_add_handle(multi, e);
      ++started;
    };
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < concurrency && started < n; ++i) add(curl_easy_init());
    int running = 1;
    while (done < n) {
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL* e = m->easy_handle;
        long c = 0;
        curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &c);
        conns += static_cast<std::uint64_t>(c);
        curl_multi_remove_handle(multi, e);
        ++done;
        if (started < n) {
          add(e);
        } else {
          curl_easy_cleanup(e);
        }
      }
      if (done < n) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curl_multi_cleanup(multi);
    record(state, "curl_multi_plain/c" + std::to_string(concurrency), n, secs, conns);
  }
}

// --- blocking loops --------------------------------------------------------------------------

void BM_blocking_reuse_handle(benchmark::State& state) {
  const int n = g_tiny ? 50 : 3000;
  for (auto _ : state) {
    CURL* e = curl_easy_init();
    std::uint64_t conns = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      curl_easy_setopt(e, CURLOPT_URL, g_url.c_str());
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
      curl_easy_perform(e);
      long c = 0;
      curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &c);
      conns += static_cast<std::uint64_t>(c);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curl_easy_cleanup(e);
    record(state, "blocking_reuse_handle/c1", n, secs, conns);
  }
}

void BM_blocking_new_handle(benchmark::State& state) {
  // Bounded: every request leaves a socket in TIME_WAIT.
  const int n = g_tiny ? 50 : 2000;
  for (auto _ : state) {
    std::uint64_t conns = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      CURL* e = curl_easy_init();
      curl_easy_setopt(e, CURLOPT_URL, g_url.c_str());
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
      curl_easy_perform(e);
      long c = 0;
      curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &c);
      conns += static_cast<std::uint64_t>(c);
      curl_easy_cleanup(e);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record(state, "blocking_new_handle/c1", n, secs, conns);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
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
  curl_global_init(CURL_GLOBAL_DEFAULT);

  // The server: our listener on its own thread and core.
  asio::io_context server_io(1);
  http::Router router;
  router.add("GET", "/v1/sys/health", [](const http::ServerRequest&) -> asio::awaitable<http::ServerResponse> {
    co_return http::ServerResponse::json(200, R"({"initialized":true,"sealed":false,"standby":false})");
  });
  http::Server server(server_io.get_executor(), {}, router.handler());
  if (!server.start()) return 1;
  g_url = "http://" + server.local_address() + "/v1/sys/health";
  auto guard = asio::make_work_guard(server_io);
  std::thread server_thread([&] { server_io.run(); });

  benchmark::RegisterBenchmark("nicsync", BM_nicsync)
      ->Arg(1)
      ->Arg(64)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("curl_multi_plain", BM_curl_multi_plain)
      ->Arg(64)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("blocking_reuse_handle", BM_blocking_reuse_handle)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("blocking_new_handle", BM_blocking_new_handle)
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&bargc, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  asio::post(server_io, [&] {
    server.stop_now();
    guard.reset();
  });
  server_io.stop();
  server_thread.join();

  std::printf("\nsummary (median requests/s over repetitions, connections opened in the last one)\n");
  for (const auto& [name, s] : g_samples) {
    std::printf("  %-28s %10.0f req/s  %6llu connections\n", name.c_str(), median(s.rates),
                static_cast<unsigned long long>(s.connections));
  }
  const double ours = median(g_samples["nicsync/c64"].rates);
  const double libvault_like = median(g_samples["blocking_new_handle/c1"].rates);
  const double reuse = median(g_samples["blocking_reuse_handle/c1"].rates);
  const double plain = median(g_samples["curl_multi_plain/c64"].rates);
  if (libvault_like > 0 && reuse > 0 && plain > 0) {
    std::printf(
        "  nicsync/c64 vs new handle per request: %.1fx; vs one reused handle: %.1fx; vs plain curl multi: %.2fx\n",
        ours / libvault_like, ours / reuse, ours / plain);
  }
  curl_global_cleanup();
  return 0;
}
