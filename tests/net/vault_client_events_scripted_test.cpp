// The event subscriber against a scripted websocket server on 127.0.0.1 (plain and TLS):
// headers and target of the upgrade, delivery, resubscribe after a drop, fallback when the
// server has no event stream, retry of server errors, and prompt cancellation.
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/server.hpp"
#include "nicsync/vault/client.hpp"
#include "nicsync/vault/events.hpp"
#include "testing/deadline.hpp"
#include "testing/pki.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using testing::run_for;

constexpr std::string_view kToken = "hvs.events-token";

std::string write_event(std::string_view key, int version) {
  return fmt::format(
      R"({{"id":"id-{}-{}","source":"vault://n1","specversion":"1.0","type":"*","data":{{"event":{{"id":"id",)"
      R"("metadata":{{"current_version":"{}","data_path":"secret/data/{}","modified":"true","oldest_version":"0",)"
      R"("operation":"data-write","path":"secret/data/{}"}}}},"event_type":"kv-v2/data-write",)"
      R"("plugin_info":{{"mount_class":"secret","mount_accessor":"kv_1","mount_path":"secret/","plugin":"kv"}}}},)"
      R"("datacontentype":"application/cloudevents","time":"2025-03-05T09:00:00Z"}})",
      key, version, version, key, key);
}

struct Upgrade {
  std::string target;
  std::vector<http::Header> headers;
};

class VaultEventsScripted : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    router_.add("GET", "/v1/auth/token/lookup-self",
                [](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
                  if (r.header("X-Vault-Token").value_or("") != kToken) {
                    co_return http::ServerResponse::json(403, "{\"errors\":[\"permission denied\"]}\n");
                  }
                  co_return http::ServerResponse::json(
                      200, R"({"data":{"accessor":"a","policies":["default"],"ttl":0,"expire_time":null}})");
                });
    router_.add_prefix("GET", "/v1/sys/events/subscribe/",
                       [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
                         upgrades_.push_back({r.target, r.headers});
                         if (!refusals_.empty()) {
                           auto resp = std::move(refusals_.front());
                           refusals_.pop_front();
                           co_return resp;
                         }
                         http::ServerResponse resp;
                         resp.websocket = [this](http::WebSocket& ws) -> asio::awaitable<void> {
                           const int session = ++sessions_;
                           if (hang_first_ && session == 1) {
                             // A peer that stops answering (not even pongs: it never reads).
                             co_await ws.send_text(write_event("nic/A", 1));
                             asio::steady_timer t(co_await asio::this_coro::executor, 1h);
                             auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                             (void)ec;
                             co_return;
                           }
                           if (session == 1) {
                             co_await ws.send_text(write_event("nic/A", 1));
                             co_await ws.send_text("{\"not\":\"an event\"}");
                             co_await ws.send_text(write_event("nic/B", 2));
                             ws.drop();  // the server goes away without a close frame
                             co_return;
                           }
                           co_await ws.send_text(write_event("nic/C", 3));
                           auto r = co_await ws.read();  // until the client goes
                           (void)r;
                           ++sessions_ended_;
                         };
                         co_return resp;
                       });
  }

  void start(http::ServerOptions options = {}) {
    server_ = std::make_unique<http::Server>(io_.get_executor(), std::move(options), router_.handler());
    ASSERT_TRUE(server_->start());
    config_.address = std::string(server_->tls() ? "https://" : "http://") + server_->local_address();
    config_.auth.method = AuthMethod::token;
    config_.auth.token = Token(Secret(kToken));
    client_ = std::make_unique<Client>(io_.get_executor(), config_, Clock::real());
    EventSubscriberOptions o;
    o.backoff_base = 10ms;
    o.backoff_cap = 50ms;
    o.connect_timeout = 5s;
    o.idle_timeout = idle_timeout_;
    subscriber_ = std::make_unique<EventSubscriber>(*client_, o);
  }

  void TearDown() override {
    subscriber_.reset();
    client_.reset();
    if (server_) server_->stop_now();
    testing::drain(io_);
  }

  // Runs the subscriber until `want` events arrived (then cancels it) or it returns.
  Result<void> run_until(std::size_t want) {
    stopped_at_.reset();
    auto task = [&]() -> asio::awaitable<Result<void>> {
      // Named handlers: no non-trivial temporaries inside a co_await expression (g++ 12).
      EventSubscriber::EventHandler on_event = [&](const KvEvent& ev) {
        events_.push_back(ev);
        if (events_.size() == want) {
          stopped_at_ = std::chrono::steady_clock::now();
          stop_->cancel();
        }
      };
      EventSubscriber::SubscribedHandler on_subscribed = [&] { ++subscribed_; };
      auto running = subscriber_->run(std::move(on_event), std::move(on_subscribed));
      auto r = co_await (std::move(running) || stop_->async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 0) co_return std::get<0>(std::move(r));
      co_return Error(Errc::cancelled, "stopped by the test");
    };
    stop_.emplace(io_, std::chrono::steady_clock::time_point::max());
    return run_for(io_, task(), 15s);
  }

  asio::io_context io_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  ClientConfig config_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<EventSubscriber> subscriber_;
  std::optional<asio::steady_timer> stop_;
  std::deque<http::ServerResponse> refusals_;
  std::vector<Upgrade> upgrades_;
  std::vector<KvEvent> events_;
  std::optional<std::chrono::steady_clock::time_point> stopped_at_;
  int subscribed_ = 0;
  int sessions_ = 0;
  int sessions_ended_ = 0;
  bool hang_first_ = false;
  std::chrono::milliseconds idle_timeout_{95'000};
};

TEST_F(VaultEventsScripted, DeliversEventsAndResubscribesAfterADrop) {
  config_.vault_namespace = Namespace::parse("team-a").value();
  start();
  auto r = run_until(3);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::cancelled)) << r.error().describe();
  ASSERT_EQ(events_.size(), 3u);
  EXPECT_EQ(events_[0].key, "nic/A");
  EXPECT_EQ(events_[0].current_version, 1);
  EXPECT_EQ(events_[1].key, "nic/B");
  EXPECT_EQ(events_[2].key, "nic/C");
  EXPECT_EQ(events_[2].mount, "secret");
  EXPECT_EQ(subscribed_, 2);  // once per (re)subscribe, so the caller resyncs each time
  ASSERT_EQ(upgrades_.size(), 2u);
  EXPECT_EQ(upgrades_[0].target, "/v1/sys/events/subscribe/kv-v2/%2A?json=true");
  EXPECT_EQ(http::find_header(upgrades_[0].headers, "X-Vault-Token").value_or(""), kToken);
  EXPECT_EQ(http::find_header(upgrades_[0].headers, "X-Vault-Namespace").value_or(""), "team-a");
  EXPECT_EQ(http::find_header(upgrades_[0].headers, "X-Vault-Request").value_or(""), "true");
  const auto st = subscriber_->stats();
  EXPECT_EQ(st.subscriptions, 2u);
  EXPECT_EQ(st.events, 3u);
  EXPECT_EQ(st.malformed, 1u);
  EXPECT_GE(st.disconnects, 1u);
  // Cancellation closed the second subscription: the server saw the client go.
  testing::drain(io_, 200ms);
  EXPECT_EQ(sessions_ended_, 1);
}

TEST_F(VaultEventsScripted, ASilentStreamIsReplacedAfterTheIdleTimeout) {
  hang_first_ = true;
  idle_timeout_ = 400ms;
  start();
  const auto begin = std::chrono::steady_clock::now();
  auto r = run_until(2);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].key, "nic/A");
  EXPECT_EQ(events_[1].key, "nic/C");
  EXPECT_EQ(subscribed_, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - begin, 350ms);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
}

TEST_F(VaultEventsScripted, CancellationIsPrompt) {
  start();
  auto r = run_until(1);
  ASSERT_TRUE(stopped_at_);
  EXPECT_LT(std::chrono::steady_clock::now() - *stopped_at_, 1s);
  EXPECT_TRUE(r.error().is(Errc::cancelled));
}

TEST_F(VaultEventsScripted, NoEventStreamMeansFallBackToPolling) {
  struct Case {
    int status;
    std::string body;
  };
  const Case cases[] = {
      {404, "{\"errors\":[\"1 error occurred:\\n\\t* unsupported path\\n\\n\"]}\n"},
      {405, "{\"errors\":[]}\n"},
      {403, "{\"errors\":[\"permission denied\"]}\n"},  // live token (lookup-self says so): no policy
  };
  start();
  for (const auto& c : cases) {
    refusals_.push_back(http::ServerResponse::json(c.status, c.body));
    const auto begin = std::chrono::steady_clock::now();
    auto r = run_until(100);
    ASSERT_FALSE(r) << c.status;
    EXPECT_TRUE(r.error().is(Errc::vault_events_unavailable)) << c.status << ": " << r.error().describe();
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
    EXPECT_NE(r.error().message.find(std::to_string(c.status)), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(subscribed_, 0);
}

TEST_F(VaultEventsScripted, ServerErrorsAreRetriedWithBackoff) {
  start();
  refusals_.push_back(http::ServerResponse::json(503, "{\"errors\":[\"Vault is sealed\"]}\n"));
  refusals_.push_back(http::ServerResponse::json(500, "{\"errors\":[\"internal error\"]}\n"));
  auto r = run_until(1);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(upgrades_.size(), 3u);
  EXPECT_EQ(subscribed_, 1);
}

TEST_F(VaultEventsScripted, SubscribesOverTls) {
  testing::TempDir dir;
  auto pki = testing::make_test_pki(dir.path().string());
  http::ServerOptions o;
  o.tls_cert_file = pki.server_cert;
  o.tls_key_file = pki.server_key;
  config_.tls.ca_cert = pki.ca_cert;
  start(o);
  auto r = run_until(2);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].key, "nic/B");
}

// (The token check before the upgrade already fails verification; either way nothing subscribes.)
TEST_F(VaultEventsScripted, TlsWithAnUnknownCaIsRetriedNotAccepted) {
  testing::TempDir dir;
  auto pki = testing::make_test_pki(dir.path().string());
  http::ServerOptions o;
  o.tls_cert_file = pki.server_cert;
  o.tls_key_file = pki.server_key;
  config_.tls.ca_cert = pki.other_ca_cert;
  start(o);
  auto task = [&]() -> asio::awaitable<Result<void>> {
    asio::steady_timer t(io_, 500ms);
    EventSubscriber::EventHandler on_event = [&](const KvEvent& ev) { events_.push_back(ev); };
    EventSubscriber::SubscribedHandler on_subscribed = [&] { ++subscribed_; };
    auto running = subscriber_->run(std::move(on_event), std::move(on_subscribed));
    auto r = co_await (std::move(running) || t.async_wait(asio::as_tuple(asio::use_awaitable)));
    (void)r;
    co_return Result<void>{};
  };
  run_for(io_, task(), 10s);
  EXPECT_EQ(subscribed_, 0);
  ASSERT_TRUE(subscriber_->stats().last_error);
  EXPECT_TRUE(subscriber_->stats().last_error->is(Errc::http_tls_verify))
      << subscriber_->stats().last_error->describe();
}

}  // namespace
}  // namespace nicsync::vault
