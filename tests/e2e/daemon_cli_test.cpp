// The CLI and the running daemon's surface beyond daemon_test.cpp: `check --online` (its table
// and exit code), `sync --standalone` (one pass under the state-directory lock, --dry-run, and
// refusal while a daemon holds the lock), `history` without a daemon (the ledger directly),
// /metrics of the real daemon (ClearTax token calls left, Vault-write-to-delivery lag, pairs by
// state, no GSTIN labels), and core dumps off in the running daemon.
#include <signal.h>

#include <fstream>
#include <regex>

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

class DaemonCli : public ::testing::Test {
 protected:
  void SetUp() override { world_.seed_cleartax_secret(); }

  /// `nicsyncd <args…> --config <the daemon's config>` with the daemon's Vault token.
  testing::Process cli(Daemon& d, std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::built_program("nicsyncd")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--config", d.config_path()});
    return testing::Process({.argv = std::move(argv),
                             .env = {"VAULT_TOKEN=" + world_.token()},
                             .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE", "JOURNAL_STREAM", "NOTIFY_SOCKET"}});
  }

  World world_;
  testing::TempDir dir_;
};

TEST_F(DaemonCli, CheckOnlineReadsEachMappingAndProbesEachDestination) {
  const std::string present = world_gstin(80), missing = world_gstin(81);
  world_.put_credential(present, "API_CHECK", "pw-check-1");
  world_.put_credential(present, "API_CHECK", "pw-check-2");
  Daemon d(world_, dir_, {.gstins = {present}});
  {
    auto check = cli(d, {"check", "--online"});
    ASSERT_EQ(check.wait(30s), 0) << check.output();
    const auto out = check.output();
    EXPECT_NE(out.find("secret/nic/" + present), std::string::npos) << out;
    EXPECT_NE(out.find("KV v2, version 2"), std::string::npos) << out;
    EXPECT_NE(out.find("reachable"), std::string::npos) << out;
    EXPECT_EQ(out.find("pw-check"), std::string::npos) << "no secret in the table";
  }
  // A mapping whose key is not in Vault fails the check (exit 1) and says so on its row.
  d.config().gstins = {present, missing};
  d.write_config();
  {
    auto check = cli(d, {"check", "--online"});
    ASSERT_EQ(check.wait(30s), 1) << check.output();
    std::smatch m;
    const auto out = check.output();
    EXPECT_TRUE(
        std::regex_search(out, m, std::regex("secret/nic/" + missing + R"( +[^\n]*not[ _]found)", std::regex::icase)))
        << out;
  }
  // Offline `check` does not contact Vault at all: the same config passes.
  auto offline = cli(d, {"check"});
  EXPECT_EQ(offline.wait(30s), 0) << offline.output();
}

TEST_F(DaemonCli, SyncStandaloneDeliversOnceUnderTheLockAndDryRunPushesNothing) {
  const std::string a = world_gstin(82), b = world_gstin(83);
  world_.put_credential(a, "API_A", "pw-a-1");
  world_.put_credential(b, "API_B", "pw-b-1");
  Daemon d(world_, dir_, {.gstins = {a, b}});

  auto dry = cli(d, {"sync", "--standalone", "--dry-run"});
  ASSERT_EQ(dry.wait(30s), 0) << dry.output();
  EXPECT_NE(dry.output().find("would_push"), std::string::npos) << dry.output();
  EXPECT_FALSE(world_.stored(a).has_value());

  auto one = cli(d, {"sync", "--standalone", "--gstin", a});
  ASSERT_EQ(one.wait(30s), 0) << one.output();
  EXPECT_NE(one.output().find("pushed"), std::string::npos) << one.output();
  ASSERT_TRUE(world_.stored(a).has_value());
  EXPECT_EQ(world_.stored(a)->password, "pw-a-1");
  EXPECT_FALSE(world_.stored(b).has_value()) << "only the GSTIN asked for";

  // The pass went through the ledger: a second one finds a up to date and pushes only b.
  auto all = cli(d, {"sync", "--standalone"});
  ASSERT_EQ(all.wait(30s), 0) << all.output();
  EXPECT_NE(all.output().find("up_to_date"), std::string::npos) << all.output();
  EXPECT_EQ(world_.stored(a)->stores, 1u);
  ASSERT_TRUE(world_.stored(b).has_value());

  // History without a daemon reads the ledger.
  auto history = cli(d, {"history", a});
  ASSERT_EQ(history.wait(30s), 0) << history.output();
  EXPECT_NE(history.output().find("applied"), std::string::npos) << history.output();

  // While the daemon holds the state directory, --standalone refuses and says what to do.
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  auto refused = cli(d, {"sync", "--standalone"});
  EXPECT_EQ(refused.wait(30s), 4) << refused.output();
  EXPECT_NE(refused.output().find("without --standalone"), std::string::npos) << refused.output();
  EXPECT_NE(refused.output().find(std::to_string(d.process().pid())), std::string::npos) << refused.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
}

/// The value of the sample `series` (name with its labels, exactly) in Prometheus text.
std::optional<double> sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_F(DaemonCli, MetricsOfTheRunningDaemonAndNoCoreDumps) {
  const std::string g = world_gstin(84);
  world_.put_credential(g, "API_M", "pw-metrics-1");
  Daemon d(world_, dir_, {.gstins = {g}});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  ASSERT_TRUE(eventually([&] { return world_.stored(g).has_value(); }, 20s)) << d.process().output();
  ASSERT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s));

  std::string text;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = d.request("GET", "/metrics");
        if (!r || r->status != 200) return false;
        text = r->body;
        return sample(text, R"(nicsync_pairs{state="in_sync"})") == 1.0;
      },
      10s))
      << text;
  EXPECT_EQ(sample(text, "nicsync_ready"), 1.0) << text;
  // One token call spent today, of ClearTax's 288.
  EXPECT_EQ(sample(text, R"(nicsync_destination_token_calls_left_today{destination="cleartax"})"), 287.0) << text;
  EXPECT_EQ(sample(text, R"(nicsync_deliveries_total{destination="cleartax",outcome="applied"})"), 1.0) << text;
  EXPECT_EQ(sample(text, R"(nicsync_vault_write_to_delivery_seconds_count{destination="cleartax"})"), 1.0) << text;
  EXPECT_EQ(sample(text, R"(nicsync_delivery_latency_seconds_count{destination="cleartax"})"), 1.0) << text;
  EXPECT_GT(sample(text, R"(nicsync_vault_token_ttl_seconds)").value_or(0), 3600.0) << text;
  EXPECT_EQ(sample(text, R"(nicsync_vault_token_valid)"), 1.0) << text;
  EXPECT_TRUE(sample(text, R"(nicsync_vault_requests_total{outcome="ok"})").value_or(0) > 0) << text;
  EXPECT_NE(text.find("nicsync_build_info{"), std::string::npos) << text;
  // Bounded label cardinality: no GSTIN anywhere in the metrics.
  EXPECT_EQ(text.find(g), std::string::npos) << text;
  EXPECT_EQ(text.find("gstin"), std::string::npos) << text;

  // Core dumps are off in the daemon itself, not only in the unit (LimitCORE=0).
  std::ifstream limits("/proc/" + std::to_string(d.process().pid()) + "/limits");
  std::string line, core;
  while (std::getline(limits, line)) {
    if (line.starts_with("Max core file size")) core = line;
  }
  EXPECT_TRUE(std::regex_search(core, std::regex(R"(^Max core file size\s+0\s+)"))) << core;

  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
}

}  // namespace
}  // namespace nicsync
