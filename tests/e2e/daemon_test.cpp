// The real nicsyncd process end to end against the test Vault and the test ClearTax: a rotation
// delivered in poll and in events mode, readiness transitions, SIGHUP reloads good and bad,
// SIGTERM during a slow push, the state-directory lock, systemd notifications through a real
// NOTIFY_SOCKET, the CLI against a running daemon, and no planted secret in any output.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::DaemonConfig;
using testing::eventually;
using testing::files_containing;
using testing::NotifySocket;
using testing::read_all;
using testing::World;
using testing::world_gstin;

std::string password_for(const std::string& gstin, int version) {
  return fmt::format("Pw&<{}>\"v{}\\ü", gstin, version);
}

class DaemonE2E : public ::testing::Test {
 protected:
  DaemonE2E() : world_(World::Options{}) {}
  explicit DaemonE2E(World::Options options) : world_(std::move(options)) {}
  void SetUp() override { world_.seed_cleartax_secret(); }

  /// Writes version `v` of each GSTIN's credential and remembers the password as planted.
  void rotate(const std::string& gstin, int v) {
    planted_.push_back(password_for(gstin, v));
    ASSERT_EQ(world_.put_credential(gstin, "API_" + gstin.substr(0, 6), planted_.back()), v);
  }
  bool delivered(const std::string& gstin, int v, std::chrono::milliseconds timeout = 20s) {
    return eventually(
        [&] {
          auto s = world_.stored(gstin);
          return s && s->password == password_for(gstin, v);
        },
        timeout);
  }
  void expect_no_planted_secret() {
    std::vector<std::string> secrets = planted_;
    secrets.push_back(world_.options().cleartax_client_secret);
    secrets.push_back(world_.token());
    EXPECT_EQ(files_containing(dir_.path().string(), secrets), std::vector<std::string>{});
    // ClearTax access tokens live in their own 0600 cache file (so a restart does not spend one
    // of the day's 288 token calls), and nowhere else.
    std::vector<std::string> tokens = world_.call([&] { return world_.cleartax().issued_tokens(); });
    EXPECT_EQ(files_containing(dir_.path().string(), tokens, ".token"), std::vector<std::string>{});
    for (const auto& e : std::filesystem::directory_iterator(dir_.file("state"))) {
      if (e.path().extension() != ".token") continue;
      EXPECT_EQ(e.status().permissions() & std::filesystem::perms::all,
                std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
          << e.path();
    }
  }

  World world_;
  testing::TempDir dir_;
  std::vector<std::string> planted_;
};

TEST_F(DaemonE2E, PollModeDeliversEveryGstinThenARotation) {
  std::vector<std::string> gstins = {world_gstin(0), world_gstin(1), world_gstin(2)};
  for (const auto& g : gstins) rotate(g, 1);
  Daemon d(world_, dir_, {.gstins = gstins});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  for (const auto& g : gstins) ASSERT_TRUE(delivered(g, 1)) << g << "\n" << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();

  rotate(gstins[1], 2);
  ASSERT_TRUE(delivered(gstins[1], 2)) << d.process().output();
  ASSERT_TRUE(eventually(
      [&] {
        auto p = d.pair_status(gstins[1], "cleartax");
        return p && p->at("state").as_string() == "in_sync" && p->at("applied_version").as_int64() == 2;
      },
      10s));
  // The others were not pushed again, and each store carried an Idempotency-Key.
  auto stores = world_.call([&] { return world_.cleartax().requests(std::string(fakes::FakeClearTax::kStorePath)); });
  EXPECT_EQ(stores.size(), 4u);
  for (const auto& r : stores) EXPECT_TRUE(r.header("Idempotency-Key").has_value());
  EXPECT_EQ(world_.stored(gstins[0])->stores, 1u);
  EXPECT_EQ(world_.stored(gstins[1])->username, "API_" + gstins[1].substr(0, 6));

  // The CLI against the running daemon: status, history, and a forced sync of one GSTIN.
  testing::Process status({.argv = {testing::built_program("nicsyncd"), "status", "--url", d.url("")}});
  ASSERT_EQ(status.wait(20s), 0) << status.output();
  EXPECT_NE(status.output().find(gstins[2]), std::string::npos) << status.output();
  EXPECT_NE(status.output().find("in_sync"), std::string::npos) << status.output();
  testing::Process history({.argv = {testing::built_program("nicsyncd"), "history", gstins[1], "--url", d.url("")}});
  ASSERT_EQ(history.wait(20s), 0) << history.output();
  EXPECT_NE(history.output().find("applied"), std::string::npos) << history.output();
  testing::Process sync({.argv = {testing::built_program("nicsyncd"), "sync", "--url", d.url(""), "--token-file",
                                  d.token_path(), "--gstin", gstins[0], "--force"}});
  ASSERT_EQ(sync.wait(30s), 0) << sync.output() << d.process().output();
  EXPECT_NE(sync.output().find(gstins[0]), std::string::npos) << sync.output();
  EXPECT_EQ(world_.stored(gstins[0])->stores, 2u) << sync.output();
  testing::Process no_token({.argv = {testing::built_program("nicsyncd"), "sync", "--url", d.url("")}});
  EXPECT_NE(no_token.wait(20s), 0) << no_token.output();

  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
  expect_no_planted_secret();
}

TEST_F(DaemonE2E, MappingSetAndWebhookDestination) {
  std::vector<std::string> gstins = {world_gstin(10), world_gstin(11)};
  for (const auto& g : gstins) rotate(g, 1);
  world_.put_credential("NOT-A-GSTIN", "u", "p");
  Daemon d(world_, dir_, {.destinations = {"cleartax", "hook"}, .mapping_set = true, .webhook = true});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  for (const auto& g : gstins) ASSERT_TRUE(delivered(g, 1)) << d.process().output();
  ASSERT_TRUE(
      eventually([&] { return world_.call([&] { return world_.cleartax().requests("/hooks/*").size(); }) == 2; }, 20s));
  EXPECT_TRUE(d.wait_for_log("NOT-A-GSTIN", 10s)) << d.process().output();  // reported, not fatal

  // A GSTIN added under the prefix is picked up at the next resync.
  const std::string added = world_gstin(12);
  rotate(added, 1);
  ASSERT_TRUE(delivered(added, 1)) << d.process().output();
  // The webhook is another destination: its push need not have come yet.
  std::vector<fakes::RecordedRequest> hooks;
  ASSERT_TRUE(eventually(
      [&] {
        hooks = world_.call([&] { return world_.cleartax().requests("/hooks/" + added); });
        return !hooks.empty();
      },
      20s));
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].method, "PUT");
  auto body = boost::json::parse(hooks[0].body).as_object();
  EXPECT_EQ(body.at("password").as_string(), password_for(added, 1));
  EXPECT_EQ(body.at("version").as_int64(), 1);
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
  expect_no_planted_secret();
}

class DaemonEventsE2E : public DaemonE2E {
 protected:
  DaemonEventsE2E() : DaemonE2E(World::Options{.enterprise = true}) {}
};

TEST_F(DaemonEventsE2E, EventsModeDeliversWithoutWaitingForAPoll) {
  const std::string g = world_gstin(5);
  rotate(g, 1);
  DaemonConfig cfg{.gstins = {g}};
  cfg.watch_mode = "events";
  cfg.poll_interval = "5m";
  cfg.resync_interval = "5m";
  Daemon d(world_, dir_, cfg);
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(g, 1)) << d.process().output();  // the first sweep
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world_.call([&] { return world_.vault().event_subscribers(); }) == 1; }, 10s));
  // The next poll is minutes away: only the event can bring this one over in time.
  rotate(g, 2);
  ASSERT_TRUE(delivered(g, 2, 15s)) << d.process().output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
  expect_no_planted_secret();
}

TEST_F(DaemonE2E, ReadinessFollowsVaultAndASealedVaultAtBootIsNotFatal) {
  const std::string g = world_gstin(20);
  rotate(g, 1);
  world_.call([&] { world_.vault().seal(); });
  Daemon d(world_, dir_, {.gstins = {g}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();  // ready to systemd although Vault is sealed
  auto r = d.request("GET", "/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("Vault: not authenticated"), std::string::npos) << r->body;
  EXPECT_EQ(d.request("GET", "/healthz")->status, 200);
  world_.call([&] { world_.vault().unseal(); });
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 30s)) << d.process().output();
  ASSERT_TRUE(delivered(g, 1));
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
}

TEST_F(DaemonE2E, ReloadAppliesAGoodConfigAndKeepsTheOldOneOnABadOne) {
  const std::string a = world_gstin(30), b = world_gstin(31);
  rotate(a, 1);
  rotate(b, 1);
  Daemon d(world_, dir_, {.gstins = {a}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(a, 1));
  EXPECT_FALSE(world_.stored(b).has_value());

  // Good: one more mapping.
  d.mark_output();
  d.config().gstins = {a, b};
  d.write_config();
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("configuration reloaded", 20s)) << d.process().output();
  ASSERT_TRUE(delivered(b, 1)) << d.process().output();

  // Bad: a syntax error; then a restart-only change. Both rejected, the daemon keeps serving.
  d.mark_output();
  testing::write_file(d.config_path(), d.config_text() + "[[mapping]]\ngstin = \"27AAPFU0939F1Z\"\n");
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("reload rejected", 20s)) << d.process().output();
  d.mark_output();
  d.config().poll_interval = "7s";
  d.write_config();
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("reload rejected", 20s)) << d.process().output();
  EXPECT_TRUE(d.wait_for_log("restart nicsyncd", 1s)) << d.process().output();
  rotate(b, 2);
  ASSERT_TRUE(delivered(b, 2)) << d.process().output();
  EXPECT_EQ(d.readyz(), 200);
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
}

TEST_F(DaemonE2E, ASighupRightAfterReadyIsAReloadNotDeath) {
  // systemd may deliver `systemctl reload` as soon as READY=1 is out: the signal must already be
  // caught then (found by the chaos suite: the default action of SIGHUP ended the daemon).
  const std::string g = world_gstin(45);
  rotate(g, 1);
  Daemon d(world_, dir_, {.gstins = {g}});
  for (int i = 0; i < 5; ++i) {
    d.start();
    ASSERT_TRUE(d.wait_started()) << d.process().output();
    d.signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_log("configuration reloaded", 20s)) << i << "\n" << d.process().output();
    d.signal(SIGTERM);
    ASSERT_EQ(d.process().wait(20s), 0) << d.process().output();
  }
}

TEST_F(DaemonE2E, SigtermLetsASlowPushFinishWithinTheGrace) {
  const std::string g = world_gstin(40);
  rotate(g, 1);
  Daemon d(world_, dir_, {.gstins = {g}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(delivered(g, 1));
  world_.call([&] {
    world_.cleartax().add_fault(
        {.path = std::string(fakes::FakeClearTax::kStorePath), .delay = 1500ms, .action = fakes::FaultAction::none});
  });
  rotate(g, 2);
  ASSERT_TRUE(eventually([&] { return world_.call([&] { return world_.cleartax().hung_requests(); }) == 1; }, 20s));
  d.signal(SIGTERM);
  ASSERT_EQ(d.process().wait(20s), 0) << d.process().output();
  EXPECT_TRUE(delivered(g, 2, 1s));
  // The outcome reached the ledger: a restart pushes nothing again.
  Daemon again(world_, dir_, d.config());
  again.start();
  ASSERT_TRUE(again.wait_started()) << again.process().output();
  ASSERT_TRUE(eventually([&] { return again.readyz() == 200; }, 20s)) << again.process().output();
  EXPECT_EQ(world_.stored(g)->stores, 2u);
  again.signal(SIGTERM);
  EXPECT_EQ(again.process().wait(20s), 0);
}

TEST_F(DaemonE2E, SigtermCancelsAHungPushAfterTheGraceAndARestartDeliversIt) {
  const std::string g = world_gstin(41);
  rotate(g, 1);
  DaemonConfig cfg{.gstins = {g}};
  cfg.stop_grace = "500ms";
  cfg.push_timeout = "60s";
  Daemon d(world_, dir_, cfg);
  world_.call([&] {
    world_.cleartax().add_fault(
        {.path = std::string(fakes::FakeClearTax::kStorePath), .action = fakes::FaultAction::hang});
  });
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world_.call([&] { return world_.cleartax().hung_requests(); }) == 1; }, 20s));
  const auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  ASSERT_EQ(d.process().wait(20s), 0) << d.process().output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_FALSE(world_.stored(g).has_value());
  Daemon again(world_, dir_, cfg);
  again.start();
  ASSERT_TRUE(again.wait_started());
  ASSERT_TRUE(delivered(g, 1)) << again.process().output();
  again.signal(SIGTERM);
  EXPECT_EQ(again.process().wait(20s), 0);
}

TEST_F(DaemonE2E, ASecondInstanceRefusesTheStateDirectoryAndNamesTheHolder) {
  const std::string g = world_gstin(50);
  rotate(g, 1);
  Daemon first(world_, dir_, {.gstins = {g}});
  first.start();
  ASSERT_TRUE(first.wait_started()) << first.process().output();
  testing::TempDir other_dir;
  Daemon second(world_, other_dir, first.config());
  // Same state directory, different API port.
  testing::write_file(second.config_path(),
                      first.config_text().replace(first.config_text().find(std::to_string(first.port())),
                                                  std::to_string(first.port()).size(), std::to_string(second.port())));
  second.start();
  ASSERT_EQ(second.process().wait(20s), 4) << second.process().output();
  EXPECT_NE(second.process().output().find(std::to_string(first.process().pid())), std::string::npos)
      << second.process().output();
  first.signal(SIGTERM);
  EXPECT_EQ(first.process().wait(20s), 0);
}

TEST_F(DaemonE2E, TellsSystemdReadyReloadingStoppingStatusAndWatchdog) {
  const std::string g = world_gstin(60);
  rotate(g, 1);
  NotifySocket systemd(dir_.file("notify.sock"));
  Daemon d(world_, dir_, {.gstins = {g}});
  d.start({"NOTIFY_SOCKET=" + dir_.file("notify.sock"), "WATCHDOG_USEC=400000"});
  // WATCHDOG_PID is not set: the daemon accepts the variables as its own (as systemd allows).
  auto ready = systemd.wait_for("READY=1", 20s);
  ASSERT_TRUE(ready) << systemd.all() << d.process().output();
  ASSERT_TRUE(systemd.wait_for("STATUS=", 20s)) << systemd.all();
  ASSERT_TRUE(systemd.wait_for("WATCHDOG=1", 5s)) << systemd.all();
  ASSERT_TRUE(delivered(g, 1));
  d.signal(SIGHUP);
  auto reloading = systemd.wait_for("RELOADING=1", 20s);
  ASSERT_TRUE(reloading) << systemd.all();
  EXPECT_TRUE(systemd.wait_for("MONOTONIC_USEC=", 1s, *reloading)) << systemd.all();
  EXPECT_TRUE(systemd.wait_for("READY=1", 20s, *reloading + 1)) << systemd.all();
  d.signal(SIGTERM);
  EXPECT_TRUE(systemd.wait_for("STOPPING=1", 20s)) << systemd.all();
  EXPECT_EQ(d.process().wait(20s), 0);
}

TEST_F(DaemonE2E, CheckRejectsBrokenConfigsNamingTheLine) {
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"", "[vault]"},
      {"[vault]\naddress = \"http://127.0.0.1:1\"\n[vault.auth]\nmethod = \"token\"\nfoo = 1\n",
       ":5: vault.auth.foo: unknown key"},
      {"[watch]\npoll_interval = \"soon\"\n", ":2: watch.poll_interval"},
      {"\x01\x02\x7f binary", "bad.toml:1:1: not valid TOML"},
  };
  for (const auto& c : cases) {
    const std::string path = dir_.file("bad.toml");
    testing::write_file(path, c.text);
    testing::Process check({.argv = {testing::built_program("nicsyncd"), "check", "--config", path},
                            .unset_env = {"VAULT_TOKEN", "VAULT_ADDR"}});
    EXPECT_EQ(check.wait(20s), 3) << c.text << "\n" << check.output();
    EXPECT_NE(check.output().find(c.expected), std::string::npos) << c.text << "\n" << check.output();
  }
}

}  // namespace
}  // namespace nicsync
