#pragma once
// Shared by the destination tests: a test ClearTax on loopback with a manual clock, an HTTP
// client, a state directory, secret providers the test controls, and a log capture.

#include <cstdlib>
#include <memory>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "fakes/cleartax/fake_cleartax.hpp"
#include "nicsync/destinations/destination.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/sync/idempotency.hpp"
#include "testing/deadline.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::destinations::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// What a test's secret provider hands out; the test changes it between pushes.
struct ProviderState {
  std::string value;
  std::optional<Error> error;
  int calls = 0;
};

inline asio::awaitable<Result<Secret>> provide(std::shared_ptr<ProviderState> s) {
  ++s->calls;
  if (s->error) co_return *s->error;
  co_return Secret(s->value);
}

/// Not a coroutine itself: the coroutine takes its state by value (g++ 12, see briefing).
inline SecretProvider provider_of(std::shared_ptr<ProviderState> s) {
  return [s]() { return provide(s); };
}

/// Everything spdlog writes while it lives (at trace level), for secret scans.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  [[nodiscard]] std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

inline Gstin gstin(std::string_view text) { return Gstin::parse(text).value(); }

/// Valid GSTINs for bulk tests: the state code and serial vary, the check character is computed.
inline Gstin nth_gstin(int i) {
  std::string body = fmt::format("{:02}AAFCD{:04}R1Z", 1 + i % 37, 1 + i % 9999);
  body += gstin_check_char(body);
  return Gstin::parse(body).value();
}

/// A delivery to `destination` with its Idempotency-Key, as the engine makes it.
inline Delivery delivery_for(std::string_view destination, const Gstin& g, std::int64_t version, int attempt = 1) {
  Delivery d{.gstin = g,
             .vault_path = "secret/nic/" + g.str(),
             .version = version,
             .lineage = "2026-01-01T00:00:00.000000Z",
             .attempt = attempt,
             .idempotency_key = {}};
  d.idempotency_key = sync::idempotency_key(destination, d.gstin, d.vault_path, d.lineage, d.version);
  return d;
}

inline Credential credential(std::string username, std::string_view password) {
  return Credential{std::move(username), Secret(password)};
}

/// Runs the pushes concurrently and returns their results in order.
inline asio::awaitable<std::vector<Result<void>>> push_all(Destination* d, std::vector<Delivery> deliveries,
                                                           std::vector<Credential> credentials) {
  struct State {
    explicit State(const asio::any_io_executor& ex, std::size_t n)
        : results(n), all(ex, asio::steady_timer::time_point::max()) {}
    std::vector<Result<void>> results;
    std::size_t done = 0;
    asio::steady_timer all;
  };
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<State>(ex, deliveries.size());
  for (std::size_t i = 0; i < deliveries.size(); ++i) {
    asio::co_spawn(ex, d->push(std::move(deliveries[i]), std::move(credentials[i])),
                   [state, i](std::exception_ptr e, Result<void> r) {
                     state->results[i] = e ? Result<void>(Error(Errc::internal, "push threw")) : std::move(r);
                     if (++state->done == state->results.size()) state->all.cancel();
                   });
  }
  if (!deliveries.empty()) co_await state->all.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return state->results;
}

class DestinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    fakes::FakeClearTaxOptions o;
    o.clock = &clock_;
    o.client_secrets = {kClientSecret};
    o.auth_tokens = {kStaticToken};
    fake_ = std::make_unique<fakes::FakeClearTax>(io_.get_executor(), std::move(o));
    auto started = fake_->start();
    ASSERT_TRUE(started) << started.error().describe();
    secret_->value = kClientSecret;
  }

  void TearDown() override {
    client_.shutdown();
    fake_->stop_now();
    testing::drain(io_);
    fake_.reset();
    testing::drain(io_);
  }

  Result<void> push(Destination& d, Delivery delivery, Credential c, std::chrono::milliseconds deadline = 10s) {
    return testing::run_for(io_, d.push(std::move(delivery), std::move(c)), deadline);
  }

  std::size_t token_calls() const { return fake_->requests(fakes::FakeClearTax::kTokenPath).size(); }
  std::size_t store_calls() const { return fake_->requests(fakes::FakeClearTax::kStorePath).size(); }

  static constexpr const char* kClientSecret = "PLANTED-client-secret-7f3a";
  static constexpr const char* kStaticToken = "PLANTED-static-token-91c2";

  asio::io_context io_;
  ManualClock clock_;
  http::Client client_{io_.get_executor()};
  std::unique_ptr<fakes::FakeClearTax> fake_;
  testing::TempDir dir_{"nicsync-dest"};
  std::shared_ptr<ProviderState> secret_ = std::make_shared<ProviderState>();
};

}  // namespace nicsync::destinations::test
