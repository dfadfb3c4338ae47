// The real nicsyncd with [watch.audit]: the test Vault's socket audit device dials it and a
// rotation written through Vault's API is delivered at once although keys are polled every 10
// minutes; /readyz, /v1/status, /metrics and `check --online` say how the feed is; OpenBao's
// http device posts to /v1/audit-feed (204 whatever comes, read only with the feed's token);
// nothing of an entry reaches the log; a feed nobody connects to leaves the daemon ready.
#include <signal.h>

#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::DaemonConfig;
using testing::eventually;
using testing::World;
using testing::world_gstin;

std::string audit_section(const std::string& body) { return "[watch.audit]\n" + body; }

bool feed_healthy(Daemon& d) {
  auto r = d.get_json("/readyz");
  if (!r || !r->is_object()) return false;
  const auto* f = r->as_object().if_contains("audit_feed");
  return f != nullptr && f->as_object().at("healthy").as_bool();
}

TEST(AuditFeedDaemon, ASocketDeviceBringsRotationsAtOnceWhilePollingIsSlow) {
  const std::uint16_t port = testing::free_port();
  fakes::AuditDeviceOptions device;
  device.address = fmt::format("127.0.0.1:{}", port);
  World world(World::Options{.audit_devices = {device}});
  world.seed_cleartax_secret();
  const std::string g = world_gstin(300);
  world.put_credential(g, "API_FEED", "feed-initial-1");
  testing::TempDir dir;
  Daemon d(world, dir,
           {.gstins = {g},
            .poll_interval = "10m",
            .resync_interval = "10m",
            .extra = audit_section(fmt::format("listen = \"127.0.0.1:{}\"\n", port))});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world.stored(g) && d.readyz() == 200 && feed_healthy(d); }, 30s))
      << d.process().output();

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(world.write_credential_over_http(g, "API_FEED", "feed-rotated-2"), 200);
  ASSERT_TRUE(eventually([&] { return world.stored(g)->password == "feed-rotated-2"; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "the feed, not the 10-minute poll";

  auto status = d.get_json("/v1/status");
  ASSERT_TRUE(status);
  const auto& feed = status->at("audit_feed").as_object();
  EXPECT_TRUE(feed.at("connected").as_bool());
  EXPECT_EQ(feed.at("listen").as_string(), fmt::format("127.0.0.1:{}", port));
  EXPECT_GE(feed.at("entries").at("matched").to_number<std::int64_t>(), 1);
  EXPECT_TRUE(feed.at("last_entry_at").is_string());
  auto metrics = d.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("nicsync_audit_feed_connections 1"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("nicsync_audit_feed_healthy 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("nicsync_audit_feed_entries_total{outcome=\"matched\"}"), std::string::npos);
  EXPECT_NE(metrics->body.find("nicsync_audit_feed_lag_seconds_count"), std::string::npos);

  // `check --online` asks the running daemon about its feed.
  testing::Process check(
      {.argv = {testing::built_program("nicsyncd"), "check", "--online", "--config", d.config_path()},
       .env = {"VAULT_TOKEN=" + world.token()},
       .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE", "JOURNAL_STREAM", "NOTIFY_SOCKET"}});
  ASSERT_EQ(check.wait(30s), 0) << check.output();
  EXPECT_NE(check.output().find("connected and healthy"), std::string::npos) << check.output();

  d.signal(SIGTERM);
  ASSERT_TRUE(d.process().wait(20s).has_value());
  const std::string log = d.process().output();
  EXPECT_EQ(log.find("hmac-sha256"), std::string::npos) << "nothing of an entry is logged";
  EXPECT_EQ(log.find("feed-rotated-2"), std::string::npos);
  EXPECT_NE(log.find("audit feed: listening on"), std::string::npos);
}

TEST(AuditFeedDaemon, OpenBaosHttpDevicePostsWithItsOwnToken) {
  World world;
  world.seed_cleartax_secret();
  const std::string g = world_gstin(301);
  world.put_credential(g, "API_FEED", "http-initial-1");
  testing::TempDir dir;
  const std::string token_file = dir.file("audit-token");
  testing::write_file(token_file, "audit-feed-token-for-tests-7b1\n");
  Daemon d(world, dir,
           {.gstins = {g},
            .poll_interval = "10m",
            .resync_interval = "10m",
            .extra = audit_section(fmt::format("token_file = \"{}\"\n", token_file))});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world.stored(g) && d.readyz() == 200; }, 30s)) << d.process().output();

  // The key changes where no device sees it; the entry OpenBao would post says so.
  world.put_credential(g, "API_FEED", "http-rotated-2");
  const std::string entry = fmt::format(
      R"({{"time":"2025-06-05T16:10:22.29241Z","type":"response","auth":{{"token_type":"service"}},)"
      R"("request":{{"id":"8c2f0b7e-0d4a-4d7e-9a55-2f1c3b4d5e6f","operation":"update","mount_point":"secret/",)"
      R"("mount_type":"kv","namespace":{{"id":"root"}},"path":"secret/data/nic/{}"}},)"
      R"("response":{{"mount_point":"secret/","mount_type":"kv","data":{{"version":2}}}}}})"
      "\n",
      g);
  auto post = [&](const std::string& token) {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.method = "POST";
    r.url = d.url("/v1/audit-feed");
    r.body = entry;
    r.headers = {{"User-Agent", "Go-http-client/1.1"}};
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    r.timeout = 10s;
    auto resp = testing::run_for(io, client.request(std::move(r)), 15s);
    client.shutdown();
    return resp ? resp->status : 0;
  };
  EXPECT_EQ(post("trigger-token-5d1c"), 204) << "the API's token is not the feed's";
  EXPECT_EQ(post(""), 204);
  auto metrics = d.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("nicsync_audit_feed_entries_total{outcome=\"unauthorized\"} 2"), std::string::npos)
      << metrics->body;
  EXPECT_EQ(world.stored(g)->password, "http-initial-1");
  EXPECT_EQ(post("audit-feed-token-for-tests-7b1"), 204);
  EXPECT_TRUE(eventually([&] { return world.stored(g)->password == "http-rotated-2"; }, 10s));
  auto status = d.get_json("/v1/status");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->at("audit_feed").at("http_device").as_bool());
  EXPECT_TRUE(status->at("audit_feed").at("listen").is_null());
}

TEST(AuditFeedDaemon, AFeedNobodyConnectsToLeavesTheDaemonReady) {
  World world;
  world.seed_cleartax_secret();
  const std::string g = world_gstin(302);
  world.put_credential(g, "API_FEED", "quiet-1");
  testing::TempDir dir;
  const std::uint16_t port = testing::free_port();
  Daemon d(world, dir, {.gstins = {g}, .extra = audit_section(fmt::format("listen = \"127.0.0.1:{}\"\n", port))});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world.stored(g) && d.readyz() == 200; }, 30s)) << d.process().output();
  auto ready = d.get_json("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_FALSE(ready->at("audit_feed").at("connected").as_bool());
  EXPECT_FALSE(ready->at("audit_feed").at("healthy").as_bool());
  // Polling goes on at poll_interval (1 s here): a rotation still arrives.
  world.put_credential(g, "API_FEED", "quiet-2");
  EXPECT_TRUE(eventually([&] { return world.stored(g)->password == "quiet-2"; }, 15s));
}

TEST(AuditFeedDaemon, AnAddressInUseStopsTheStartWithTheKey) {
  World world;
  testing::TempDir dir;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor taken(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = taken.local_endpoint().port();
  Daemon d(world, dir, {.extra = audit_section(fmt::format("listen = \"127.0.0.1:{}\"\n", port))});
  d.start();
  auto code = d.process().wait(20s);
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(d.process().output().find("watch.audit.listen"), std::string::npos) << d.process().output();
}

}  // namespace
}  // namespace nicsync
