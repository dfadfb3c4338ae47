// The watcher against the test Vault over loopback: new versions, deletes and destroys that
// current_version does not show, recreated keys, KV v1 by content, mapping sets, triggers,
// spreading reads over the interval, and recovery from a sealed Vault.
#include "nicsync/watch/watcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fakes/vault/fake_vault.hpp"
#include "testing/deadline.hpp"

namespace nicsync::watch {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const char* kG1 = "07AAFCD5862R1ZX";
const char* kG2 = "27AAPFU0939F1ZV";
const char* kG3 = "29ABCDE1234F1ZW";

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.start());
    vault::ClientConfig c;
    c.address = fake_.address();
    c.auth.method = vault::AuthMethod::token;
    c.auth.token = vault::Token(Secret("root"));
    vault_ = std::make_unique<vault::Client>(io_.get_executor(), c, Clock::real());
  }

  void start(WatcherOptions o = {}, Mode mode = Mode::poll) {
    o.mode = mode;
    if (o.poll_interval == std::chrono::milliseconds(60'000)) o.poll_interval = 300ms;
    o.jitter = 0ms;
    o.retry_base = 50ms;
    watcher_ = std::make_unique<Watcher>(io_.get_executor(), *vault_, o, Clock::real(), [this](const WatchEvent& e) {
      if (const auto* ob = std::get_if<Observation>(&e)) seen_.push_back(*ob);
      if (const auto* l = std::get_if<SetListing>(&e)) listings_.push_back(*l);
      changed_.cancel();
    });
    watcher_->set_keys(keys_);
    watcher_->set_prefixes(prefixes_);
    asio::co_spawn(io_, watcher_->run(), asio::bind_cancellation_slot(stop_.slot(), asio::detached));
  }

  void TearDown() override {
    stop_.emit(asio::cancellation_type::terminal);
    testing::drain(io_);
    watcher_.reset();
    vault_->shutdown();
    fake_.stop();
    testing::drain(io_);
  }

  // Waits (event-driven) until `pred` holds.
  template <class Pred>
  void until(Pred pred, std::chrono::milliseconds deadline = 10s) {
    auto wait = [&]() -> asio::awaitable<void> {
      while (!pred()) {
        changed_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await changed_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    };
    testing::run_for(io_, wait(), deadline);
  }

  // Observations of the key `key` below its mount ("nic/…"), whatever the mount.
  static bool is_of(const Observation& o, const std::string& key) { return o.path.ends_with("/" + key); }
  std::optional<Observation> last_for(const std::string& key) const {
    for (auto it = seen_.rbegin(); it != seen_.rend(); ++it) {
      if (is_of(*it, key)) return *it;
    }
    return std::nullopt;
  }
  std::size_t count_for(const std::string& key) const {
    return static_cast<std::size_t>(
        std::count_if(seen_.begin(), seen_.end(), [&](const auto& o) { return is_of(o, key); }));
  }

  asio::io_context io_;
  fakes::FakeVault fake_{io_.get_executor(), {}};
  std::unique_ptr<vault::Client> vault_;
  std::unique_ptr<Watcher> watcher_;
  std::vector<std::string> keys_;
  std::vector<std::string> prefixes_;
  std::vector<Observation> seen_;
  std::vector<SetListing> listings_;
  asio::steady_timer changed_{io_};
  asio::cancellation_signal stop_;
};

TEST_F(WatcherTest, ReportsNewVersionsOnceEach) {
  fake_.kv_put("secret", std::string("nic/") + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {std::string("secret/nic/") + kG1};
  start();
  const std::string key = std::string("nic/") + kG1;
  until([&] { return last_for(key).has_value(); });
  auto first = *last_for(key);
  EXPECT_EQ(first.path, "secret/" + key) << "the path as the mapping names it";
  EXPECT_EQ(first.kv, KvVersion::v2);
  EXPECT_EQ(first.version.number, 1);
  EXPECT_EQ(first.version.state, SourceState::present);
  EXPECT_FALSE(first.version.lineage.empty());
  EXPECT_NE(first.written_at, std::chrono::system_clock::time_point{});
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p2"}});
  until([&] { return last_for(key)->version.number == 2; });
  EXPECT_EQ(last_for(key)->version.lineage, first.version.lineage);
  // Several sweeps later nothing new was reported.
  until([&] { return watcher_->stats().sweeps >= 4; });
  EXPECT_EQ(count_for(key), 2u);
  EXPECT_TRUE(watcher_->first_sweep_done());
}

TEST_F(WatcherTest, SeesDeletesAndDestroysThatCurrentVersionHides) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p1"}});
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p2"}});
  keys_ = {"secret/" + key};
  start();
  until([&] { return last_for(key) && last_for(key)->version.number == 2; });
  fake_.kv_delete_latest("secret", key);
  until([&] { return last_for(key)->version.state == SourceState::deleted; });
  EXPECT_EQ(last_for(key)->version.number, 2) << "current_version did not move";
  fake_.kv_undelete("secret", key, {2});
  until([&] { return last_for(key)->version.state == SourceState::present; });
  fake_.kv_destroy("secret", key, {2});
  until([&] { return last_for(key)->version.state == SourceState::destroyed; });
}

TEST_F(WatcherTest, ARecreatedKeyIsANewLineageAndAMissingKeyIsReported) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p1"}});
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p2"}});
  keys_ = {"secret/" + key};
  start();
  until([&] { return last_for(key) && last_for(key)->version.number == 2; });
  const Lineage old_lineage = last_for(key)->version.lineage;
  fake_.kv_delete_metadata("secret", key);
  until([&] { return last_for(key)->version.state == SourceState::missing; });
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p3"}});
  until([&] { return last_for(key)->version.state == SourceState::present; });
  EXPECT_EQ(last_for(key)->version.number, 1);
  EXPECT_NE(last_for(key)->version.lineage, old_lineage);
}

TEST_F(WatcherTest, KvV1KeysAreComparedByContent) {
  fake_.kv_put("kv", std::string("nic/") + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {std::string("kv/nic/") + kG1};
  start();
  const std::string key = std::string("nic/") + kG1;
  until([&] { return last_for(key).has_value(); });
  EXPECT_EQ(last_for(key)->kv, KvVersion::v1);
  EXPECT_EQ(last_for(key)->version.number, 0);
  until([&] { return watcher_->stats().sweeps >= 3; });
  EXPECT_EQ(count_for(key), 1u) << "unchanged content is not news";
  fake_.kv_put("kv", key, {{"username", "u"}, {"password", "p2"}});
  until([&] { return count_for(key) == 2; });
  auto where = testing::run_for(io_, vault_->locate(std::string_view("kv/" + key)));
  ASSERT_TRUE(where);
  EXPECT_EQ(where->path.mount.str(), "kv") << "the Vault client remembers the mount it detected";
  EXPECT_EQ(where->kv, KvVersion::v1);
}

TEST_F(WatcherTest, MappingSetsAreListedEverySweep) {
  fake_.kv_put("secret", std::string("bulk/") + kG1, {{"username", "u"}, {"password", "p"}});
  fake_.kv_put("secret", "bulk/not-a-gstin", {{"username", "u"}, {"password", "p"}});
  fake_.kv_put("secret", "bulk/sub/deeper", {{"username", "u"}, {"password", "p"}});
  prefixes_ = {"secret/bulk/"};
  start();
  until([&] { return !listings_.empty(); });
  EXPECT_EQ(listings_.back().gstins.size(), 1u);
  EXPECT_EQ(listings_.back().invalid_keys, std::vector<std::string>{"not-a-gstin"});
  until([&] { return last_for(std::string("bulk/") + kG1).has_value(); });
  fake_.kv_put("secret", std::string("bulk/") + kG2, {{"username", "u"}, {"password", "p"}});
  auto added_g2 = [&] {
    const auto& a = listings_.back().added;
    return std::any_of(a.begin(), a.end(), [](const Gstin& g) { return g.str() == kG2; });
  };
  until(added_g2);
  EXPECT_EQ(listings_.back().added.size(), 1u);
  until([&] { return last_for(std::string("bulk/") + kG2).has_value(); });
  fake_.kv_delete_metadata("secret", std::string("bulk/") + kG1);
  until([&] { return !listings_.back().removed.empty(); });
  EXPECT_EQ(listings_.back().removed.front().str(), kG1);
  EXPECT_EQ(watcher_->stats().keys, 1u);
}

TEST_F(WatcherTest, ReadNowForcesAndDryRunsDoNotEmit) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p"}});
  keys_ = {"secret/" + key};
  WatcherOptions o;
  o.poll_interval = 1h;  // only the first sweep
  start(o);
  until([&] { return count_for(key) == 1; });
  auto dry = testing::run_for(io_, watcher_->read_now({"secret/" + key}, false, false));
  ASSERT_EQ(dry.size(), 1u);
  ASSERT_TRUE(dry[0].observation);
  EXPECT_EQ(dry[0].observation->version.number, 1);
  EXPECT_EQ(count_for(key), 1u) << "a dry run reports nothing to the engine";
  auto forced = testing::run_for(io_, watcher_->read_now({"secret/" + key}, true));
  ASSERT_EQ(forced.size(), 1u);
  EXPECT_EQ(count_for(key), 2u);
  EXPECT_TRUE(last_for(key)->force);
  EXPECT_EQ(last_for(key)->source, ObservationSource::trigger);
}

TEST_F(WatcherTest, ReadsAreSpreadOverTheIntervalNotBurst) {
  std::vector<std::string> gstins = {kG1, kG2, kG3, "07AAACR5055K1Z9", "33AAACI1195H1ZT", "24AAACC1206D1ZM"};
  for (const auto& g : gstins) {
    fake_.kv_put("secret", "nic/" + g, {{"username", "u"}, {"password", "p"}});
    keys_.push_back("secret/nic/" + g);
  }
  WatcherOptions o;
  o.poll_interval = 600ms;
  start(o);
  until([&] { return watcher_->stats().sweeps >= 3; });
  // Metadata reads of the second sweep (the first one catches up at once), in the test Vault's log.
  std::vector<std::chrono::steady_clock::time_point> reads;
  for (const auto& r : fake_.request_log()) {
    if (r.path.find("/v1/secret/metadata/nic/") == 0) reads.push_back(r.at);
  }
  ASSERT_GE(reads.size(), 12u);
  EXPECT_LT(reads[5] - reads[0], 300ms) << "the first sweep catches up at once";
  const auto span = reads[11] - reads[6];
  EXPECT_GE(span, 400ms) << "six keys over 600 ms are read about 100 ms apart, not all at once";
}

TEST_F(WatcherTest, ReadsInFlightStayUnderTheConcurrencyCap) {
  // 40 keys, each metadata read held 30 ms by the test Vault, at most 4 in flight: the first
  // (catch-up) sweep needs at least 10 rounds, and the client never needs more than 4
  // connections, where an uncapped burst would open one per key (the pool allows 64).
  for (int i = 0; i < 40; ++i) {
    const std::string key = fmt::format("nic/k{:02}", i);
    fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p"}});
    keys_.push_back("secret/" + key);
  }
  fake_.set_latency(30ms);
  WatcherOptions o;
  o.poll_interval = 1h;
  o.concurrency = 4;
  const auto t0 = std::chrono::steady_clock::now();
  start(o);
  until([&] { return watcher_->first_sweep_done(); }, 20s);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_EQ(seen_.size(), 40u);
  EXPECT_LE(fake_.connections_accepted(), 4u);
}

TEST_F(WatcherTest, ASealedVaultDelaysTheFirstSweepAndRecoversQuickly) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p"}});
  fake_.seal();
  keys_ = {"secret/" + key};
  WatcherOptions o;
  o.poll_interval = 1h;  // recovery must come from the quick retry, not the next sweep
  start(o);
  until([&] { return !watcher_->problems().empty(); });
  EXPECT_FALSE(watcher_->first_sweep_done());
  EXPECT_NE(watcher_->problems().begin()->second.find("sealed"), std::string::npos)
      << watcher_->problems().begin()->second;
  fake_.unseal();
  until([&] { return last_for(key).has_value(); });
  EXPECT_TRUE(watcher_->problems().empty());
}

class WatcherEventsTest : public WatcherTest {
 protected:
  void SetUp() override {
    fakes::FakeVaultOptions o;
    o.enterprise = true;
    enterprise_.emplace(io_.get_executor(), o);
    ASSERT_TRUE(enterprise_->start());
    vault::ClientConfig c;
    c.address = enterprise_->address();
    c.auth.method = vault::AuthMethod::token;
    c.auth.token = vault::Token(Secret("root"));
    vault_ = std::make_unique<vault::Client>(io_.get_executor(), c, Clock::real());
  }
  void TearDown() override {
    WatcherTest::TearDown();
    enterprise_->stop();
    testing::drain(io_);
  }
  std::optional<fakes::FakeVault> enterprise_;
};

TEST_F(WatcherEventsTest, EventsTriggerImmediateReadsAndResubscribingCatchesUp) {
  const std::string key = std::string("nic/") + kG1;
  enterprise_->kv_put("secret", key, {{"username", "u"}, {"password", "p1"}});
  keys_ = {"secret/" + key};
  WatcherOptions o;
  o.poll_interval = 1h;
  o.resync_interval = 1h;  // anything after the first sweep must come from events
  start(o, Mode::auto_detect);
  until([&] { return watcher_->stats().events_active && last_for(key).has_value(); });
  enterprise_->kv_put("secret", key, {{"username", "u"}, {"password", "p2"}});
  until([&] { return last_for(key)->version.number == 2; });
  EXPECT_EQ(last_for(key)->source, ObservationSource::event);
  enterprise_->kv_destroy("secret", key, {2});
  until([&] { return last_for(key)->version.state == SourceState::destroyed; });
  // The stream drops; a version written meanwhile is caught by the catch-up sweep.
  const auto subscriptions = watcher_->stats().event_reconnects;
  enterprise_->drop_connections();
  enterprise_->kv_put("secret", key, {{"username", "u"}, {"password", "p3"}});
  until([&] { return watcher_->stats().event_reconnects > subscriptions && last_for(key)->version.number == 3; });
}

TEST_F(WatcherTest, WithoutEventsAutoModeFallsBackToPolling) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p1"}});
  keys_ = {"secret/" + key};
  WatcherOptions o;
  o.poll_interval = 300ms;
  start(o, Mode::auto_detect);
  until([&] { return last_for(key).has_value(); });
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p2"}});
  until([&] { return last_for(key)->version.number == 2; });
  EXPECT_FALSE(watcher_->stats().events_active);
  EXPECT_EQ(last_for(key)->source, ObservationSource::poll);
  EXPECT_TRUE(watcher_->problems().empty());
}

TEST_F(WatcherTest, EventsModeWithoutEventsIsAProblem) {
  const std::string key = std::string("nic/") + kG1;
  fake_.kv_put("secret", key, {{"username", "u"}, {"password", "p1"}});
  keys_ = {"secret/" + key};
  start({}, Mode::events);
  until([&] { return watcher_->problems().count("events") == 1; });
  EXPECT_NE(watcher_->problems().at("events").find("offers no event stream"), std::string::npos);
}

}  // namespace
}  // namespace nicsync::watch
