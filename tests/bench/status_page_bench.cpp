// What one request for the status page costs the event loop with many pairs: a real engine
// (in-memory ledger, scripted destination) holding N pairs (100,000; --tiny: 1,000), delivered
// once, about 1 % of them rejected and 1 % failing transiently, each observed with its Vault
// write time; then GET / with several queries is answered R times each through the API's router
// in-process (routing, query checks, the pass over every pair, the sort of the page's rows, HTML
// of one page). Printed per query: median and worst time and the page's size; for comparison the
// same for GET /v1/status (every pair, JSON) and /metrics.
//
// Run: build/release/tests/nicsync_bench_status_page_bench [--tiny] [--pairs N] [--repetitions R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "nicsync/api/api_server.hpp"
#include "nicsync/api/status_page.hpp"
#include "testing/bench.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"

namespace asio = boost::asio;
using namespace nicsync;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string sandbox_gstin(int i) {
  // 15 characters, a state code and a PAN-shaped middle: enough for sandbox validation.
  return fmt::format("{:02}AAAAA{:04}A{}Z0", 1 + i % 37, i % 10000, static_cast<char>('A' + i / 10000 % 26));
}

}  // namespace

int main(int argc, char** argv) {
  int pairs = 100'000;
  int repetitions = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tiny") == 0) {
      pairs = 1'000;
      repetitions = 3;
    } else if (std::strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) {
      pairs = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--repetitions") == 0 && i + 1 < argc) {
      repetitions = std::atoi(argv[++i]);
    }
  }
  asio::io_context io;
  ManualClock clock;
  nicsync::testing::MemoryStore store{io.get_executor()};
  nicsync::testing::FakeReader reader;
  auto dest = std::make_shared<nicsync::testing::FakeDestination>("cleartax", io.get_executor(), store);
  sync::Engine engine{io.get_executor(), store, reader, nicsync::testing::test_fingerprint, clock};
  engine.set_destinations({{dest, sync::LanePolicy{}}});
  std::vector<sync::PairConfig> configs;
  std::vector<Gstin> gstins;
  for (int i = 0; i < pairs; ++i) {
    gstins.push_back(Gstin::parse(sandbox_gstin(i), GstinMode::sandbox).value());
    configs.push_back({"cleartax", gstins.back(), {nicsync::testing::path_of(gstins.back())}});
  }
  if (auto r = engine.set_pairs(std::move(configs)); !r) {
    std::fprintf(stderr, "set_pairs: %s\n", r.error().describe().c_str());
    return 1;
  }
  if (auto r = engine.load(); !r) return 1;
  engine.start();
  const auto now = std::chrono::system_clock::now();
  const auto setup_start = SteadyClock::now();
  for (int i = 0; i < pairs; ++i) {
    reader.set(gstins[static_cast<std::size_t>(i)], 1, fmt::format("secret-{}", i));
    if (i % 100 == 7) {
      dest->script.push_back(Error(Errc::dest_credential_rejected, "Incorrect Password (NIC 1019)"));
    } else if (i % 100 == 42) {
      dest->script.push_back(Error(Errc::dest_unavailable, "ClearTax answered 503"));
    } else {
      dest->script.push_back(Result<void>{});
    }
  }
  for (int i = 0; i < pairs; ++i) {
    Observation o;
    o.path = nicsync::testing::path_of(gstins[static_cast<std::size_t>(i)]);
    o.version = VersionId{1, Lineage("2025-01-01T00:00:00Z")};
    o.written_at = now - std::chrono::hours(24 * (i % 200));
    engine.observe(o);
  }
  // Until every first attempt is over (the failing ones then wait for their retry).
  auto settled = [&] { return dest->pushes.size() >= static_cast<std::size_t>(pairs); };
  while (!settled()) io.run_one_for(1s);
  io.poll();
  std::printf("setup: %d pairs delivered once in %.1f s\n", pairs,
              std::chrono::duration<double>(SteadyClock::now() - setup_start).count());

  api::ApiHooks hooks;
  hooks.max_credential_age = [] { return std::chrono::seconds(90 * 86400); };
  api::ApiOptions options;
  options.listen = "127.0.0.1:0";
  api::ApiServer server(io.get_executor(), options, engine, hooks);
  auto measure = [&](const std::string& target) {
    std::vector<double> ms;
    std::size_t bytes = 0;
    int status = 0;
    for (int r = 0; r < repetitions; ++r) {
      http::ServerRequest req;
      req.method = "GET";
      req.target = target;
      const auto q = target.find('?');
      req.path = target.substr(0, q);
      req.query = q == std::string::npos ? std::string() : target.substr(q + 1);
      req.headers = {{"Host", "127.0.0.1:9464"}};
      const auto t0 = SteadyClock::now();
      auto resp = nicsync::testing::run_for(io, server.handle(std::move(req)), 120s);
      ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
      bytes = resp.body.size();
      status = resp.status;
    }
    std::printf("%-40s status %d  median %8.2f ms  worst %8.2f ms  %8zu bytes\n", target.c_str(), status,
                nicsync::testing::median(ms), *std::max_element(ms.begin(), ms.end()), bytes);
  };
  measure("/");
  measure("/?page=500");
  measure("/?sort=age");
  measure("/?sort=gstin&page=999");
  measure("/?state=rejected");
  measure("/?q=07AAAAA00");
  measure("/?state=problems&per=500");
  measure("/gstin/" + gstins[7].str());
  measure("/metrics");
  measure("/v1/status");
  server.stop_now();
  return 0;
}
