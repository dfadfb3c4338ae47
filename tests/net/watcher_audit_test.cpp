// The watcher following an audit feed, against the test Vault's socket audit device over
// loopback: a write is read at once while polling is slow; the daemon's own reads coming back
// make the feed healthy and polling slows to the resync interval; a device that goes away
// brings the poll interval back at once; new connections resync, rate-limited; a write a
// standby cannot show yet is read again; a new key under a mapping set is listed and read.
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
#include "nicsync/http/client.hpp"
#include "nicsync/watch/audit_feed.hpp"
#include "nicsync/watch/audit_listener.hpp"
#include "nicsync/watch/watcher.hpp"
#include "testing/deadline.hpp"

namespace nicsync::watch {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

const std::string kG1 = "07AAFCD5862R1ZX";
const std::string kG2 = "27AAPFU0939F1ZV";

class WatcherAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    feed_ = AuditFeed::create(io_.get_executor());
    auto l = AuditListener::start({.listen = "127.0.0.1:0"}, feed_);
    ASSERT_TRUE(l) << l.error().describe();
    listener_ = std::move(*l);
    fakes::FakeVaultOptions vo;
    fakes::AuditDeviceOptions device;
    device.address = listener_->local_address();
    vo.audit_devices = {device};
    fake_ = std::make_unique<fakes::FakeVault>(io_.get_executor(), vo);
    ASSERT_TRUE(fake_->start());
    vault::ClientConfig c;
    c.address = fake_->address();
    c.auth.method = vault::AuthMethod::token;
    c.auth.token = vault::Token(Secret("root"));
    vault_ = std::make_unique<vault::Client>(io_.get_executor(), c, Clock::real());
    http_ = std::make_unique<http::Client>(io_.get_executor());
  }

  void TearDown() override {
    stop_.emit(asio::cancellation_type::terminal);
    testing::drain(io_);
    if (listener_) listener_->stop();
    feed_->close();
    watcher_.reset();
    vault_->shutdown();
    http_->shutdown();
    fake_->stop();
    testing::drain(io_);
  }

  void start(WatcherOptions o, AuditFollowOptions f) {
    o.mode = Mode::poll;
    o.jitter = 0ms;
    o.retry_base = 50ms;
    watcher_ = std::make_unique<Watcher>(io_.get_executor(), *vault_, o, Clock::real(), [this](const WatchEvent& e) {
      if (const auto* ob = std::get_if<Observation>(&e)) seen_.push_back(*ob);
      if (const auto* l = std::get_if<SetListing>(&e)) listings_.push_back(*l);
      if (std::holds_alternative<SweepDone>(e)) ++sweeps_;
      if (const auto* h = std::get_if<AuditFeedChanged>(&e)) healthy_ = h->healthy;
      changed_.cancel();
    });
    watcher_->set_keys(keys_);
    watcher_->set_prefixes(prefixes_);
    watcher_->attach_audit_feed(feed_, std::move(f));
    asio::co_spawn(io_, watcher_->run(), asio::bind_cancellation_slot(stop_.slot(), asio::detached));
  }

  // Waits for the watcher's events until `pred` holds.
  template <class Pred>
  asio::awaitable<void> until(Pred pred) {
    while (!pred()) {
      changed_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await changed_.async_wait(kTuple);
    }
  }
  template <class Pred>
  void wait(Pred pred, std::chrono::milliseconds deadline = 10s) {
    testing::run_for(io_, until(pred), deadline);
  }

  // A KV v2 write through Vault's HTTP API, as a rotation job makes it (so Vault audits it).
  asio::awaitable<void> put(std::string key, std::string password) {
    http::Request r;
    r.method = "POST";
    r.url = fake_->address() + "/v1/secret/data/" + key;
    r.headers = {{"X-Vault-Token", "root"}, {"Content-Type", "application/json"}};
    r.body = fmt::format(R"({{"data":{{"username":"u","password":"{}"}}}})", password);
    r.timeout = 5s;
    auto resp = co_await http_->request(std::move(r));
    EXPECT_TRUE(resp && resp->status == 200) << (resp ? resp->body : resp.error().describe());
  }

  std::optional<Observation> last_for(const std::string& path) const {
    for (auto it = seen_.rbegin(); it != seen_.rend(); ++it) {
      if (it->path == path) return *it;
    }
    return std::nullopt;
  }
  std::int64_t version_of(const std::string& path) const {
    auto o = last_for(path);
    return o ? o->version.number : 0;
  }

  asio::io_context io_;
  std::shared_ptr<AuditFeed> feed_;
  std::unique_ptr<AuditListener> listener_;
  std::unique_ptr<fakes::FakeVault> fake_;
  std::unique_ptr<vault::Client> vault_;
  std::unique_ptr<http::Client> http_;
  std::unique_ptr<Watcher> watcher_;
  std::vector<std::string> keys_;
  std::vector<std::string> prefixes_;
  std::vector<Observation> seen_;
  std::vector<SetListing> listings_;
  std::uint64_t sweeps_ = 0;
  bool healthy_ = false;
  asio::steady_timer changed_{io_};
  asio::cancellation_signal stop_;
};

TEST_F(WatcherAuditTest, AWriteIsReadAtOnceWhilePollingIsSlow) {
  const std::string path = "secret/nic/" + kG1;
  fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {path};
  // The device is connected before the watcher follows the feed (no resync sweep then), and
  // probes are far apart: the first sweep's reads make the feed healthy, and no other read races
  // the hint for the new version.
  feed_->set_sink({.connections_changed = [this] { changed_.cancel(); }});  // the watcher's replaces it
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await put("nic/" + kG2, "any");  // an entry makes the device dial
        co_await until([&] { return feed_->connected(); });
      }(),
      5s);
  start({.poll_interval = 10min, .resync_interval = 10min}, {.probe_interval = 30s});
  wait([&] { return version_of(path) == 1 && healthy_; });
  const auto sweeps = sweeps_;
  const auto t0 = std::chrono::steady_clock::now();
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await put("nic/" + kG1, "p2");
        co_await until([&] { return version_of(path) == 2; });
      }(),
      5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(last_for(path)->source, ObservationSource::event);
  EXPECT_LE(sweeps_, sweeps + 1) << "no sweep brought it";
  const auto h = watcher_->audit_feed_health();
  EXPECT_TRUE(h.connected);
  EXPECT_GE(h.hints, 1u);
  EXPECT_EQ(feed_->stats().entries_malformed, 0u);
}

TEST_F(WatcherAuditTest, HealthySlowsPollingAndALostDeviceSpeedsItUpAtOnce) {
  const std::string path = "secret/nic/" + kG1;
  fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {path};
  start({.poll_interval = 200ms, .resync_interval = 10min}, {.probe_interval = 100ms, .health_window = 2s});
  wait([&] { return healthy_; });
  EXPECT_TRUE(watcher_->audit_feed_health().healthy);
  // Healthy: the sweep under way ends, and the next (one key: done as it starts) is followed by
  // 10 minutes of quiet. A second at the poll interval would be about five sweeps.
  const auto sweeps = sweeps_;
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io_, 1s);
        co_await t.async_wait(asio::use_awaitable);
      }(),
      5s);
  EXPECT_LE(sweeps_, sweeps + 2);
  EXPECT_GE(watcher_->audit_feed_health().probes, 3u) << "its own reads keep the feed known healthy";
  // The device's connection goes: polling is back at the poll interval at once.
  listener_->stop();
  wait([&] { return !healthy_; });
  const auto after = sweeps_;
  wait([&] { return sweeps_ >= after + 2; }, 5s);
}

TEST_F(WatcherAuditTest, NewConnectionsResyncAtMostOncePerGap) {
  const std::string path = "secret/nic/" + kG1;
  fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {path};
  start({.poll_interval = 10min, .resync_interval = 10min},
        {.probe_interval = 100ms, .health_window = 2s, .min_resync_gap = 10min});
  wait([&] { return healthy_; });
  EXPECT_EQ(watcher_->audit_feed_health().resyncs, 1u) << "the first connection";
  const auto first_sweeps = sweeps_;
  // The listener comes back on the same port three times (a daemon restarting in a loop, say):
  // Vault dials again on its next entry each time.
  const std::string address = listener_->local_address();
  for (int i = 0; i < 3; ++i) {
    listener_->stop();
    wait([&] { return !healthy_; });
    auto l = AuditListener::start({.listen = address}, feed_);
    ASSERT_TRUE(l) << l.error().describe();
    listener_ = std::move(*l);
    wait([&] { return healthy_; });
  }
  const auto h = watcher_->audit_feed_health();
  EXPECT_GE(h.resyncs_requested, 4u);
  EXPECT_EQ(h.resyncs, 1u) << "the others wait for the gap, coalesced into one";
  EXPECT_LE(sweeps_, first_sweeps + 3) << "only the unhealthy moments' polls";
}

TEST_F(WatcherAuditTest, AWriteNotYetReadableIsReadAgainShortly) {
  const std::string path = "secret/nic/" + kG1;
  fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p1"}});
  keys_ = {path};
  start({.poll_interval = 10min, .resync_interval = 10min},
        {.probe_interval = 10s, .rereads = {100ms, 200ms, 400ms, 800ms}});
  wait([&] { return version_of(path) == 1; });
  // The hint arrives before the version can be read (a standby behind the active node): the
  // version shows up 250 ms later.
  watcher_->hint_changed(path);
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer lag(io_, 250ms);
        co_await lag.async_wait(asio::use_awaitable);
        fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p2"}});
        co_await until([&] { return version_of(path) == 2; });
      }(),
      5s);
  EXPECT_GE(watcher_->audit_feed_health().rereads, 1u);
}

TEST_F(WatcherAuditTest, ANewKeyUnderAMappingSetIsListedAndRead) {
  fake_->kv_put("secret", "nic/" + kG1, {{"username", "u"}, {"password", "p1"}});
  prefixes_ = {"secret/nic/"};
  start({.poll_interval = 10min, .resync_interval = 10min}, {.probe_interval = 200ms});
  wait([&] { return version_of("secret/nic/" + kG1) == 1 && healthy_; });
  testing::run_for(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await put("nic/" + kG2, "p1");
        co_await until([&] { return version_of("secret/nic/" + kG2) == 1; });
      }(),
      5s);
  ASSERT_FALSE(listings_.empty());
  EXPECT_EQ(listings_.back().gstins.size(), 2u);
}

}  // namespace
}  // namespace nicsync::watch
