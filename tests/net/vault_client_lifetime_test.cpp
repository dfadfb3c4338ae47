// The token lifetime manager against the test Vault: renewal at about two thirds of the TTL,
// re-login when the max TTL stops renewals or the token is not renewable, backoff while Vault
// is sealed or the login fails — with short TTLs on a manual clock shared by client and test
// Vault, and once in real seconds.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "fake_vault.hpp"
#include "nicsync/vault/client.hpp"
#include "testing/deadline.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fakes::FakeVault;
using fakes::FakeVaultOptions;
using fakes::TokenSpec;
using testing::run_for;

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class VaultClientLifetime : public ::testing::Test {
 protected:
  void start(Clock* clock) {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
    clock_used_ = clock;
    FakeVaultOptions o;
    o.clock = clock;
    vault_ = std::make_unique<FakeVault>(io_.get_executor(), o);
    ASSERT_TRUE(vault_->start());
    vault_->set_policy("nic-reader", {{"secret/data/nic/*", {"read"}}});
    vault_->kv_put("secret", "nic/X", {{"username", "u"}, {"password", "p&<>"}});
    config_.address = vault_->address();
    config_.retry_base = 5ms;
    config_.retry_cap = 20ms;
    config_.max_retries = 1;
    config_.timeout = 5s;
    config_.login_backoff_base = 10ms;
    config_.login_backoff_cap = 40ms;
    config_.auth.method = AuthMethod::approle;
    config_.auth.role_id_file = dir_.file("role_id");
    config_.auth.secret_id_file = dir_.file("secret_id");
    testing::write_file(dir_.file("role_id"), "role-1");
    testing::write_file(dir_.file("secret_id"), "secret-1");
  }

  void add_role(TokenSpec spec) { vault_->add_approle("nicsync", "role-1", "secret-1", std::move(spec)); }

  Client& client() {
    if (!client_) client_ = std::make_unique<Client>(io_.get_executor(), config_, *clock_used_);
    return *client_;
  }

  void start_lifetime() {
    asio::co_spawn(io_, client().run_token_lifetime(), asio::bind_cancellation_slot(stop_.slot(), asio::detached));
  }

  // Lets the loop act on what happened (real time, a few milliseconds of HTTP on loopback).
  void settle(std::chrono::milliseconds d = 25ms) { run_for(io_, pause(d), 10s); }

  // Moves the shared manual clock in steps, letting the lifetime manager react to each.
  void advance(std::chrono::seconds total, std::chrono::seconds step = 1s) {
    for (auto t = 0s; t < total; t += step) {
      manual_.advance(step);
      client().recheck_token();
      settle();
      const auto st = client().token_state();
      if (!st.valid) invalid_seen_ = true;
    }
  }

  bool read_ok() {
    auto r = run_for(
        io_, client().read_kv2(KvPath{VaultPath::parse("secret").value(), VaultPath::parse("nic/X").value()}), 10s);
    if (!r) ADD_FAILURE() << r.error().describe();
    return static_cast<bool>(r);
  }

  void TearDown() override {
    // Cancel from the loop thread while the client is alive, then let everything unwind.
    asio::post(io_, [this] { stop_.emit(asio::cancellation_type::terminal); });
    testing::drain(io_);
    client_.reset();
    if (vault_) vault_->stop();
    testing::drain(io_);
  }

  asio::io_context io_;
  ManualClock manual_;
  Clock* clock_used_ = nullptr;
  testing::TempDir dir_;
  std::unique_ptr<FakeVault> vault_;
  ClientConfig config_;
  std::unique_ptr<Client> client_;
  asio::cancellation_signal stop_;
  bool invalid_seen_ = false;
};

TEST_F(VaultClientLifetime, RenewsAtTwoThirdsAndLogsInAgainAtTheMaxTtl) {
  start(&manual_);
  add_role(TokenSpec{{"nic-reader"}, 30s, 60s, true});
  start_lifetime();
  settle();
  ASSERT_EQ(client().token_state().logins, 1u);
  EXPECT_TRUE(client().token_state().valid);

  // Nothing before two thirds of the TTL (20 s + a third of a 3–6 s grace).
  advance(20s);
  EXPECT_EQ(client().token_state().renewals, 0u);
  EXPECT_EQ(vault_->count_requests("POST", "/v1/auth/token/renew-self"), 0u);
  advance(3s);
  EXPECT_EQ(client().token_state().renewals, 1u);
  EXPECT_EQ(client().token_state().ttl, 30s);
  EXPECT_TRUE(read_ok());

  // Renewals run into the 60 s max TTL; a fresh login follows before the token expires.
  advance(60s);
  const auto st = client().token_state();
  EXPECT_GE(st.renewals, 2u);
  EXPECT_GE(st.logins, 2u);
  EXPECT_FALSE(invalid_seen_) << "the token ran out before it was replaced";
  EXPECT_FALSE(st.last_error) << st.last_error->describe();
  EXPECT_TRUE(read_ok());
}

TEST_F(VaultClientLifetime, NonRenewableTokensAreReplacedWithinTheirGrace) {
  start(&manual_);
  add_role(TokenSpec{{"nic-reader"}, 30s, 0s, false});
  start_lifetime();
  settle();
  ASSERT_EQ(client().token_state().logins, 1u);
  EXPECT_FALSE(client().token_state().renewable);
  advance(23s);  // grace is 3–6 s: not yet
  EXPECT_EQ(client().token_state().logins, 1u);
  advance(4s);  // by 27 s at the latest
  EXPECT_EQ(client().token_state().logins, 2u);
  EXPECT_EQ(vault_->count_requests("POST", "/v1/auth/token/renew-self"), 0u);
  advance(60s);
  EXPECT_FALSE(invalid_seen_);
  EXPECT_TRUE(read_ok());
}

TEST_F(VaultClientLifetime, SealedVaultDuringRenewalIsRetriedAndTheStateShowsIt) {
  start(&manual_);
  add_role(TokenSpec{{"nic-reader"}, 30s, 0s, true});
  start_lifetime();
  settle();
  vault_->seal();
  advance(23s);  // renewal due: fails (sealed) and is retried
  auto st = client().token_state();
  EXPECT_EQ(st.renewals, 0u);
  EXPECT_GE(st.renewal_failures, 1u);
  ASSERT_TRUE(st.last_error);
  EXPECT_TRUE(st.last_error->is(Errc::vault_sealed)) << st.last_error->describe();
  EXPECT_TRUE(st.valid);  // still within its TTL

  advance(10s);  // past expiry: not valid any more (for /readyz)
  EXPECT_FALSE(client().token_state().valid);
  vault_->unseal();
  advance(2s);
  st = client().token_state();
  EXPECT_TRUE(st.valid);
  EXPECT_EQ(st.logins, 2u);
  EXPECT_FALSE(st.last_error);
  EXPECT_TRUE(read_ok());
}

TEST_F(VaultClientLifetime, FailingLoginsBackOffUntilTheSecretIdIsFixed) {
  start(&manual_);
  add_role(TokenSpec{{"nic-reader"}, 30s, 0s, true});
  testing::write_file(dir_.file("secret_id"), "wrong");
  start_lifetime();
  settle(200ms);
  auto st = client().token_state();
  EXPECT_FALSE(st.valid);
  EXPECT_GE(st.login_failures, 2u);   // retried (10–40 ms backoff) …
  EXPECT_LE(st.login_failures, 40u);  // … but not in a tight loop
  ASSERT_TRUE(st.last_error);
  EXPECT_TRUE(st.last_error->is(Errc::vault_login_failed));
  testing::write_file(dir_.file("secret_id"), "secret-1");
  settle(100ms);
  st = client().token_state();
  EXPECT_TRUE(st.valid);
  EXPECT_EQ(st.logins, 1u);
}

TEST_F(VaultClientLifetime, RenewsInRealTimeWithAShortTtl) {
  start(&Clock::real());
  add_role(TokenSpec{{"nic-reader"}, 3s, 30s, true});
  start_lifetime();
  settle(2600ms);  // renewal due at 2 s + a third of a 0.3–0.6 s grace
  const auto st = client().token_state();
  EXPECT_EQ(st.logins, 1u);
  EXPECT_GE(st.renewals, 1u);
  EXPECT_TRUE(st.valid);
  EXPECT_TRUE(read_ok());
}

}  // namespace
}  // namespace nicsync::vault
