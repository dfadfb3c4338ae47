// Fuzz target: the API request path. The bytes a client sends on one connection go through the
// server's request parser with the API's limits (http::detail::parse_requests: what a session
// reads, pipelining included), and every request parsed goes to the API's routes in-process
// (ApiServer::handle): health, readiness, metrics, status, history and the authenticated
// POST /v1/sync, on a loopback API and on one that requires the token for reads. Answers have a
// valid status and content, JSON answers parse, nothing throws, and neither the bearer token
// nor a credential appears in an answer unless the request itself carried it.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"
#include "http/request_parsing.hpp"
#include "nicsync/api/api_server.hpp"
#include "testing/engine_fakes.hpp"

namespace {

using namespace nicsync;
namespace asio = boost::asio;

constexpr std::string_view kToken = "fuzz-api-token-0123456789";
constexpr std::string_view kPlanted = "Pl4nted-Api-Secret";

// A real engine with scripted collaborators and two API front ends, set up once.
struct World {
  asio::io_context io;
  ManualClock clock;
  testing::MemoryStore store{io.get_executor()};
  testing::FakeReader reader;
  std::shared_ptr<testing::FakeDestination> dest =
      std::make_shared<testing::FakeDestination>("fake", io.get_executor(), store);
  sync::Engine engine{io.get_executor(), store, reader, testing::test_fingerprint, clock};
  const Gstin g1 = Gstin::parse("07AAFCD5862R1ZX").value();
  const Gstin g2 = Gstin::parse("27AAPFU0939F1ZV").value();
  std::unique_ptr<api::ApiServer> open_api;
  std::unique_ptr<api::ApiServer> locked_api;
  http::ServerOptions limits;

  World() {
    engine.set_destinations({{dest, sync::LanePolicy{}}});
    if (!engine.set_pairs({{"fake", g1, {testing::path_of(g1)}}, {"fake", g2, {testing::path_of(g2)}}}) ||
        !engine.load()) {
      std::abort();
    }
    engine.start();
    reader.set(g1, 3, std::string(kPlanted));
    Observation o;
    o.path = testing::path_of(g1);
    o.version = VersionId{3, Lineage("2025-03-01T12:00:00Z")};
    engine.observe(o);
    run([this]() -> asio::awaitable<void> {
      while (!engine.idle()) co_await engine.wait_for_change();
    });

    api::ApiHooks hooks;
    hooks.not_ready_reasons = [] { return std::vector<std::string>{"first resync not finished"}; };
    hooks.extra_metrics = [](api::MetricsWriter& w) { w.gauge("nicsync_vault_token_ttl_seconds", "TTL.", {}, 42); };
    hooks.trigger = [this](api::TriggerRequest r) -> asio::awaitable<Result<api::TriggerReport>> {
      api::TriggerReport rep;
      for (const auto& g : r.gstins) {
        if (g == g1 || g == g2) {
          rep.items.push_back({g.str(), "fake", r.dry_run ? "would_push" : "pushed", 3, ""});
        } else {
          rep.errors.push_back(g.str() + " is not mapped");
        }
      }
      co_return rep;
    };
    api::ApiOptions open;
    open.listen = "127.0.0.1:0";
    open.bearer_token = Secret(kToken);
    limits = api::server_options(open);
    open_api = std::make_unique<api::ApiServer>(io.get_executor(), open, engine, hooks);
    api::ApiOptions locked = open;
    locked.require_token_for_reads = true;
    locked_api = std::make_unique<api::ApiServer>(io.get_executor(), locked, engine, hooks);
  }

  // Runs `make()`'s coroutine to completion (the engine's own timers are not waited for).
  template <class MakeAwaitable>
  void run(MakeAwaitable make) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io, make(), [&](std::exception_ptr e) {
      error = e;
      done = true;
    });
    while (!done) io.run_one();
    if (error) std::rethrow_exception(error);
  }
};

World& world() {
  static World w;
  return w;
}

void check_response(const http::ServerRequest& request, const http::ServerResponse& response) {
  NICSYNC_FUZZ_CHECK(api_request, response.status >= 200 && response.status <= 599);
  NICSYNC_FUZZ_CHECK(api_request, response.action == http::ServerResponse::Action::respond);
  NICSYNC_FUZZ_CHECK(api_request, !response.websocket);
  for (const auto& h : response.headers) {
    NICSYNC_FUZZ_CHECK(api_request, fuzz::clean_text(h.name, 256) && fuzz::clean_text(h.value, 1024));
  }
  // What the client sent may come back (an unknown field's name); nothing else may.
  const std::string sent = request.target + request.body;
  for (auto secret : {kToken, kPlanted}) {
    if (!fuzz::contains(sent, secret)) NICSYNC_FUZZ_CHECK(api_request, !fuzz::contains(response.body, secret));
  }
  if (auto type = http::find_header(response.headers, "Content-Type"); type && type->starts_with("application/json")) {
    boost::system::error_code ec;
    boost::json::parse(response.body, ec);
    NICSYNC_FUZZ_CHECK(api_request, !ec);
  }
}

}  // namespace

NICSYNC_FUZZ_TARGET(api_request) {
  World& w = world();
  const auto parsed = http::detail::parse_requests(fuzz::as_text(data, size), w.limits);
  if (parsed.refused) {
    NICSYNC_FUZZ_CHECK(api_request, *parsed.refused == 400 || *parsed.refused == 413 || *parsed.refused == 431);
  }
  for (const auto& request : parsed.requests) {
    NICSYNC_FUZZ_CHECK(api_request, request.body.size() <= w.limits.body_limit);
    for (auto* api : {w.open_api.get(), w.locked_api.get()}) {
      http::ServerResponse response;
      try {
        w.run([&]() -> asio::awaitable<void> { response = co_await api->handle(request); });
      } catch (const std::exception& e) {
        std::fprintf(stderr, "api_request: the handler threw: %s\n", e.what());
        NICSYNC_FUZZ_CHECK(api_request, false && "a route threw");
      }
      check_response(request, response);
    }
  }
  return 0;
}
