// The event subscriber against the test Vault (Enterprise mode): every KV v2 change arrives as a
// KvEvent, a dropped stream is resubscribed (and the caller told, to resync), the server's pings
// keep an idle stream alive, a dead AppRole token is replaced, and a Community Vault or a token
// without the policy gives "events unavailable".
#include <functional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "fake_vault.hpp"
#include "nicsync/vault/client.hpp"
#include "nicsync/vault/events.hpp"
#include "testing/deadline.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using fakes::FakeVault;
using fakes::FakeVaultOptions;
using fakes::TokenSpec;
using testing::run_for;

class VaultClientEventsFake : public ::testing::Test {
 protected:
  void start(bool enterprise = true, std::chrono::milliseconds ping = 30s) {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    FakeVaultOptions o;
    o.enterprise = enterprise;
    o.event_ping_interval = ping;
    vault_ = std::make_unique<FakeVault>(io_.get_executor(), o);
    ASSERT_TRUE(vault_->start());
    config_.address = vault_->address();
    if (config_.auth.method == AuthMethod::none) {
      config_.auth.method = AuthMethod::token;
      config_.auth.token = Token(Secret("root"));
    }
  }

  void make_subscriber(EventSubscriberOptions o = {}) {
    client_ = std::make_unique<Client>(io_.get_executor(), config_, Clock::real());
    o.backoff_base = 10ms;
    o.backoff_cap = 50ms;
    subscriber_ = std::make_unique<EventSubscriber>(*client_, o);
  }

  // Runs the subscriber until `done()` says so after an event (then cancels it), or until it
  // returns by itself.
  Result<void> run_until(std::function<bool()> done, std::chrono::milliseconds deadline = 15s) {
    asio::steady_timer stop(io_, std::chrono::steady_clock::time_point::max());
    auto task = [&]() -> asio::awaitable<Result<void>> {
      EventSubscriber::EventHandler on_event = [&](const KvEvent& ev) {
        events_.push_back(ev);
        if (done()) stop.cancel();
      };
      EventSubscriber::SubscribedHandler on_subscribed = [&] {
        ++subscribed_;
        if (on_subscribed_) on_subscribed_(subscribed_);
      };
      auto running = subscriber_->run(std::move(on_event), std::move(on_subscribed));
      auto r = co_await (std::move(running) || stop.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r.index() == 0) co_return std::get<0>(std::move(r));
      co_return Error(Errc::cancelled, "stopped by the test");
    };
    return run_for(io_, task(), deadline);
  }

  void TearDown() override {
    subscriber_.reset();
    client_.reset();
    if (vault_) vault_->stop();
    testing::drain(io_);
  }

  asio::io_context io_;
  testing::TempDir dir_;
  std::unique_ptr<FakeVault> vault_;
  ClientConfig config_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<EventSubscriber> subscriber_;
  std::vector<KvEvent> events_;
  int subscribed_ = 0;
  std::function<void(int)> on_subscribed_;
};

TEST_F(VaultClientEventsFake, EveryKvV2ChangeArrivesWithMountKeyAndVersion) {
  start();
  make_subscriber();
  on_subscribed_ = [&](int) {
    // Subscribed first, then the changes: none can fall in a gap.
    vault_->kv_put("secret", "nic/07AAFCD5862R1ZX", {{"username", "u"}, {"password", "p1&<>"}});
    vault_->kv_put("secret", "nic/07AAFCD5862R1ZX", {{"username", "u"}, {"password", "p2"}});
    vault_->kv_delete_latest("secret", "nic/07AAFCD5862R1ZX");
    vault_->kv_undelete("secret", "nic/07AAFCD5862R1ZX", {2});
    vault_->kv_destroy("secret", "nic/07AAFCD5862R1ZX", {1});
    vault_->kv_delete_versions("secret", "nic/07AAFCD5862R1ZX", {2});
    vault_->kv_set_key_settings("secret", "nic/07AAFCD5862R1ZX", 5, false, 0s);
    vault_->kv_delete_metadata("secret", "nic/07AAFCD5862R1ZX");
  };
  auto r = run_until([&] { return events_.size() == 8; });
  ASSERT_TRUE(r.error().is(Errc::cancelled)) << r.error().describe();
  ASSERT_EQ(events_.size(), 8u);
  const std::vector<std::string> ops = {"data-write", "data-write", "data-delete",    "undelete",
                                        "destroy",    "delete",     "metadata-write", "metadata-delete"};
  for (std::size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(events_[i].operation, ops[i]) << i;
    EXPECT_EQ(events_[i].event_type, "kv-v2/" + ops[i]) << i;
    EXPECT_EQ(events_[i].mount, "secret") << i;
    EXPECT_EQ(events_[i].key, "nic/07AAFCD5862R1ZX") << i;
  }
  EXPECT_EQ(events_[0].current_version, 1);
  EXPECT_EQ(events_[1].current_version, 2);
  EXPECT_EQ(events_[1].data_path, "secret/data/nic/07AAFCD5862R1ZX");
  EXPECT_EQ(events_[4].versions, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(events_[5].versions, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(subscriber_->stats().malformed, 0u);
}

TEST_F(VaultClientEventsFake, ADroppedStreamIsResubscribedAndTheCallerResyncs) {
  start();
  make_subscriber();
  on_subscribed_ = [&](int n) {
    vault_->kv_put("secret", "nic/K" + std::to_string(n), {{"username", "u"}, {"password", "p"}});
  };
  std::size_t drops = 0;
  auto r = run_until([&] {
    if (events_.size() == 1 && drops == 0) {
      ++drops;
      vault_->drop_connections();  // the server goes away; the next subscription writes nic/K2
    }
    return events_.size() == 2;
  });
  ASSERT_TRUE(r.error().is(Errc::cancelled)) << r.error().describe();
  EXPECT_EQ(subscribed_, 2);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].key, "nic/K1");
  EXPECT_EQ(events_[1].key, "nic/K2");
  EXPECT_EQ(vault_->count_requests("GET", "/v1/sys/events/subscribe/kv-v2/*"), 2u);
}

TEST_F(VaultClientEventsFake, PingsKeepAnIdleStreamAlive) {
  start(true, 100ms);
  EventSubscriberOptions o;
  o.idle_timeout = 400ms;
  make_subscriber(o);
  on_subscribed_ = [&](int n) {
    if (n > 1) return;
    // One event now, one after several idle timeouts' worth of silence.
    vault_->kv_put("secret", "nic/A", {{"username", "u"}, {"password", "p"}});
  };
  auto later = std::make_shared<asio::steady_timer>(io_, 1200ms);
  later->async_wait([&, later](boost::system::error_code ec) {
    if (!ec) vault_->kv_put("secret", "nic/B", {{"username", "u"}, {"password", "p"}});
  });
  auto r = run_until([&] { return events_.size() == 2; });
  ASSERT_TRUE(r.error().is(Errc::cancelled)) << r.error().describe();
  EXPECT_EQ(subscribed_, 1) << "the stream was dropped although Vault kept pinging";
  EXPECT_EQ(subscriber_->stats().disconnects, 0u);
}

TEST_F(VaultClientEventsFake, ADeadAppRoleTokenIsReplacedBeforeSubscribing) {
  start();
  vault_->set_policy_rules(
      "events", {{"sys/events/subscribe/*", {"read"}, {}}, {"secret/data/*", {"list", "subscribe"}, {"kv-v2/*"}}});
  TokenSpec spec{{"events"}, 3600s};
  spec.num_uses = 2;  // spent below: the subscription then meets a dead token
  vault_->add_approle("nicsync", "role-1", "secret-1", spec);
  config_.auth.method = AuthMethod::approle;
  config_.auth.role_id_file = dir_.file("role_id");
  config_.auth.secret_id_file = dir_.file("secret_id");
  testing::write_file(config_.auth.role_id_file, "role-1");
  testing::write_file(config_.auth.secret_id_file, "secret-1");
  make_subscriber();
  ASSERT_TRUE(run_for(io_, client_->login(), 10s));
  ASSERT_TRUE(run_for(io_, client_->lookup_self(), 10s));
  ASSERT_TRUE(run_for(io_, client_->lookup_self(), 10s));  // the second and last use
  on_subscribed_ = [&](int) { vault_->kv_put("secret", "nic/X", {{"username", "u"}, {"password", "p"}}); };
  auto r = run_until([&] { return events_.size() == 1; });
  ASSERT_TRUE(r.error().is(Errc::cancelled)) << r.error().describe();
  EXPECT_GE(client_->token_state().logins, 2u);
  EXPECT_EQ(events_[0].key, "nic/X");
}

TEST_F(VaultClientEventsFake, CommunityVaultOrMissingPolicyMeansPolling) {
  start(false);
  make_subscriber();
  auto community = run_until([] { return false; });
  ASSERT_FALSE(community);
  EXPECT_TRUE(community.error().is(Errc::vault_events_unavailable)) << community.error().describe();
  EXPECT_EQ(subscribed_, 0);

  vault_->stop();
  vault_.reset();
  start(true);
  vault_->set_policy("reader", {{"secret/data/*", {"read"}}});
  config_.auth.token = Token(Secret(vault_->create_token(TokenSpec{{"reader"}})));
  make_subscriber();
  auto denied = run_until([] { return false; });
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().is(Errc::vault_events_unavailable)) << denied.error().describe();
  EXPECT_NE(denied.error().message.find("sys/events/subscribe/kv-v2/*"), std::string::npos) << denied.error().message;
}

}  // namespace
}  // namespace nicsync::vault
