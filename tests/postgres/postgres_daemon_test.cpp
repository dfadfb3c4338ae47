// The real nicsyncd with its ledger on PostgreSQL, against the test Vault and test ClearTax:
// `check --online` reports the ledger; a server restarted in the middle of deliveries costs no
// delivery and repeats no push beyond those in flight; while the server is away no push starts
// (its intent cannot be recorded), /readyz and /v1/status say why and what to do, and
// everything converges once it is back. No password reaches the output or any file.
#include <signal.h>

#include <gtest/gtest.h>

#include "nicsync/ledger/keys.hpp"
#include "nicsync/ledger/postgres_store.hpp"
#include "postgres/server.hpp"
#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;

class PostgresDaemonTest : public ::testing::Test {
 protected:
  PostgresDaemonTest() {
    server_.create_role_and_database(testing::kRole, testing::kRolePassword);
    url_file_ = testing::write_url_file(tmp_, server_);
    world_.seed_cleartax_secret();
    keys_file_ = tmp_.file("ledger-keys");
    auto keys = ledger::LedgerKeys::generate();
    if (!keys || !ledger::write_keys_file(keys_file_, *keys, false)) throw std::runtime_error("cannot write the keys");
  }

  testing::DaemonConfig config(std::vector<std::string> gstins) {
    testing::DaemonConfig c;
    c.gstins = std::move(gstins);
    c.poll_interval = "500ms";
    c.resync_interval = "1s";
    c.extra =
        fmt::format("[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nschema = \"ledger\"\nkeys_file = \"{}\"\n",
                    url_file_, keys_file_);
    return c;
  }

  static std::vector<std::string> gstins(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(testing::world_gstin(i));
    return out;
  }

  bool all_hold(const std::vector<std::string>& gs, const std::string& suffix, std::chrono::milliseconds timeout) {
    return testing::eventually(
        [&] {
          for (const auto& g : gs) {
            auto s = world_.stored(g);
            if (!s || !s->password.ends_with(suffix)) return false;
          }
          return true;
        },
        timeout);
  }

  testing::PostgresServer server_;
  testing::TempDir tmp_;
  std::string url_file_;
  std::string keys_file_;
  testing::World world_;
};

TEST_F(PostgresDaemonTest, AServerRestartMidDeliveriesLosesNothingAndRepeatsOnlyPushesInFlight) {
  constexpr int kGstins = 300;
  const auto gs = gstins(kGstins);
  for (const auto& g : gs) world_.put_credential(g, "API_" + g, "Pw-" + g + "-v1");
  testing::DaemonConfig c = config(gs);
  testing::Daemon daemon(world_, tmp_, c);
  daemon.start();
  ASSERT_TRUE(daemon.wait_started()) << daemon.process().output();
  ASSERT_TRUE(all_hold(gs, "-v1", 60s)) << daemon.process().output();

  for (const auto& g : gs) world_.put_credential(g, "API_" + g, "Pw-" + g + "-v2");
  // Restart (a crash and recovery) once a part of the rotation has been delivered.
  ASSERT_TRUE(testing::eventually(
      [&] {
        int done = 0;
        for (const auto& g : gs) {
          auto s = world_.stored(g);
          done += s && s->password.ends_with("-v2") ? 1 : 0;
        }
        return done >= kGstins / 5;
      },
      60s));
  server_.restart("immediate");
  ASSERT_TRUE(all_hold(gs, "-v2", 90s)) << daemon.process().output().substr(0, 20000);

  // Every pair reaches in_sync at version 2 in the daemon and in the ledger (records whose
  // outcome write failed are written again).
  ASSERT_TRUE(testing::eventually(
      [&] {
        auto st = daemon.get_json("/v1/status");
        if (!st) return false;
        for (const auto& p : st->at("pairs").as_array()) {
          if (p.at("state").as_string() != "in_sync" || p.at("applied_version") != 2) return false;
        }
        return true;
      },
      60s));
  EXPECT_EQ(daemon.readyz(), 200);
  std::uint64_t repeats = 0;
  for (const auto& g : gs) repeats += world_.stored(g)->stores - 2;
  std::cout << "restart mid-deliveries: " << repeats << " repeated push(es) of " << kGstins << "\n";
  EXPECT_LE(repeats, static_cast<std::uint64_t>(c.concurrency)) << "more repeats than pushes in flight";

  // The ledger catches up too: outcomes whose write the restart broke are written again. (A
  // second connection reads it while the daemon runs.)
  auto store = ledger::PostgresStore::open(testing::store_options(url_file_, "ledger"));
  ASSERT_TRUE(store) << store.error().describe();
  std::string behind;
  const bool caught_up = testing::eventually(
      [&] {
        auto pairs = (*store)->load_pairs();
        if (!pairs || pairs->size() != static_cast<std::size_t>(kGstins)) return false;
        behind.clear();
        for (const auto& p : *pairs) {
          if (p.state != ledger::PairState::in_sync || !p.applied || p.applied->version.number != 2 ||
              p.push_in_flight) {
            behind += " " + p.gstin;
          }
        }
        return behind.empty();
      },
      30s);
  EXPECT_TRUE(caught_up) << "not in sync at version 2 in the ledger:" << behind;
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.process().wait(30s), 0) << daemon.process().output();
  const std::string output = daemon.process().output();
  EXPECT_EQ(output.find(testing::kRolePassword), std::string::npos);
  EXPECT_TRUE(testing::files_containing(tmp_.path().string(), {testing::kRolePassword}, "ledger-url").empty());
}

TEST_F(PostgresDaemonTest, WhileTheServerIsAwayNoPushStartsAndReadyzSaysWhy) {
  const auto gs = gstins(3);
  for (const auto& g : gs) world_.put_credential(g, "API_" + g, "Pw-" + g + "-v1");
  testing::Daemon daemon(world_, tmp_, config(gs));

  // check --online reports the ledger, without the password.
  testing::Process check(
      {.argv = {testing::built_program("nicsyncd"), "check", "--online", "--config", daemon.config_path()},
       .env = {"VAULT_TOKEN=" + world_.token()},
       .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE"}});
  ASSERT_EQ(check.wait(60s), 0) << check.output();
  EXPECT_NE(check.output().find("ledger connection"), std::string::npos) << check.output();
  EXPECT_NE(check.output().find("ledger grants"), std::string::npos) << check.output();
  EXPECT_NE(check.output().find("ledger schema version"), std::string::npos) << check.output();
  EXPECT_EQ(check.output().find(testing::kRolePassword), std::string::npos) << check.output();

  daemon.start();
  ASSERT_TRUE(daemon.wait_started()) << daemon.process().output();
  ASSERT_TRUE(all_hold(gs, "-v1", 30s)) << daemon.process().output();
  EXPECT_EQ(daemon.readyz(), 200);

  server_.stop("fast");
  world_.put_credential(gs[0], "API_" + gs[0], "Pw-" + gs[0] + "-v2");
  // The intent cannot be recorded: not ready, and the reason says what to do.
  ASSERT_TRUE(testing::eventually([&] { return daemon.readyz() == 503; }, 30s)) << daemon.process().output();
  auto ready = daemon.request("GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_NE(ready->body.find("ledger"), std::string::npos) << ready->body;
  EXPECT_NE(ready->body.find("check that the server is up"), std::string::npos) << ready->body;
  EXPECT_EQ(ready->body.find(testing::kRolePassword), std::string::npos) << ready->body;
  auto status = daemon.request("GET", "/v1/status");
  ASSERT_TRUE(status);
  EXPECT_NE(status->body.find("check that the server is up"), std::string::npos) << status->body;
  // Some seconds of retries: still no push of version 2.
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(world_.stored(gs[0])->password.ends_with("-v1")) << "a push started without a recorded intent";
  EXPECT_TRUE(daemon.process().running());

  server_.start();
  ASSERT_TRUE(all_hold({gs[0]}, "-v2", 60s)) << daemon.process().output().substr(0, 20000);
  ASSERT_TRUE(testing::eventually([&] { return daemon.readyz() == 200; }, 30s));
  EXPECT_EQ(world_.stored(gs[0])->stores, 2u);
  EXPECT_EQ(daemon.process().output().find(testing::kRolePassword), std::string::npos);

  // Without a daemon, `nicsyncd history` reads the ledger from PostgreSQL itself.
  daemon.signal(SIGTERM);
  ASSERT_EQ(daemon.process().wait(30s), 0) << daemon.process().output();
  testing::Process history(
      {.argv = {testing::built_program("nicsyncd"), "history", gs[0], "--config", daemon.config_path()},
       .env = {"VAULT_TOKEN=" + world_.token()},
       .unset_env = {"VAULT_ADDR", "VAULT_NAMESPACE"}});
  ASSERT_EQ(history.wait(30s), 0) << history.output();
  EXPECT_NE(history.output().find("applied"), std::string::npos) << history.output();
  EXPECT_NE(history.output().find("cleartax"), std::string::npos) << history.output();
  EXPECT_EQ(history.output().find(testing::kRolePassword), std::string::npos) << history.output();
}

TEST_F(PostgresDaemonTest, ASqliteLedgerCopiedInPushesNothingAgainAndKeepsTheToken) {
  // A daemon on SQLite delivers everything and gets one ClearTax token.
  const auto gs = gstins(40);
  for (const auto& g : gs) world_.put_credential(g, "API_" + g, "Pw-" + g + "-v1");
  testing::TempDir before_dir;
  testing::DaemonConfig on_sqlite = config(gs);
  on_sqlite.extra.clear();
  testing::Daemon before(world_, before_dir, on_sqlite);
  before.start();
  ASSERT_TRUE(before.wait_started()) << before.process().output();
  ASSERT_TRUE(all_hold(gs, "-v1", 60s)) << before.process().output();
  before.signal(SIGTERM);
  ASSERT_EQ(before.process().wait(30s), 0) << before.process().output();
  const auto tokens = world_.call([&] { return world_.cleartax().token_stats().issued_total; });
  std::uint64_t stores = 0;
  for (const auto& g : gs) stores += world_.stored(g)->stores;

  // Copied into PostgreSQL, with the shared keys made from the SQLite ledger's fingerprint key.
  testing::TempDir after_dir;
  const std::string shared_keys = after_dir.file("shared-keys");
  testing::DaemonConfig on_postgres = config(gs);
  on_postgres.extra =
      fmt::format("[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nschema = \"moved\"\nkeys_file = \"{}\"\n",
                  url_file_, shared_keys);
  testing::Daemon after(world_, after_dir, on_postgres);
  auto copy = [&] {
    testing::Process p({.argv = {testing::built_program("nicsyncd"), "ledger", "copy", "--config", after.config_path(),
                                 "--from", "sqlite:" + before.state_dir(), "--to", "postgresql"}});
    EXPECT_EQ(p.wait(60s), 0) << p.output();
    return p.output();
  };
  const std::string first = copy();
  EXPECT_NE(first.find("copied 40 pairs"), std::string::npos) << first;
  EXPECT_NE(first.find("sealed 1 ClearTax token cache"), std::string::npos) << first;
  EXPECT_NE(copy().find("already holds this ledger"), std::string::npos) << "a second copy writes nothing";

  // The daemon on PostgreSQL (another state directory, as on another host) pushes nothing again
  // and asks ClearTax for no new token; a rotation after the move is delivered.
  after.start();
  ASSERT_TRUE(after.wait_started()) << after.process().output();
  ASSERT_TRUE(testing::eventually([&] { return after.readyz() == 200; }, 30s)) << after.process().output();
  ASSERT_TRUE(testing::eventually(
      [&] {
        auto st = after.get_json("/v1/status");
        if (!st) return false;
        for (const auto& p : st->at("pairs").as_array()) {
          if (p.at("state").as_string() != "in_sync") return false;
        }
        return st->at("pairs").as_array().size() == gs.size();
      },
      30s));
  std::uint64_t stores_after = 0;
  for (const auto& g : gs) stores_after += world_.stored(g)->stores;
  EXPECT_EQ(stores_after, stores) << "a copied ledger must not push anything again";
  world_.put_credential(gs[0], "API_" + gs[0], "Pw-" + gs[0] + "-v2");
  ASSERT_TRUE(all_hold({gs[0]}, "-v2", 30s)) << after.process().output();
  EXPECT_EQ(world_.call([&] { return world_.cleartax().token_stats().issued_total; }), tokens)
      << "the token sealed into the ledger is used, not a new one";
  // The token is in the database only sealed: neither its rows nor the server's files hold it.
  const auto issued = world_.call([&] { return world_.cleartax().issued_tokens(); });
  ASSERT_FALSE(issued.empty());
  const std::string rows = server_.sql("SELECT name, encode(value, 'escape') FROM moved.sealed", testing::kRole);
  EXPECT_NE(rows.find("cleartax-cleartax"), std::string::npos) << rows;
  for (const auto& token : issued) EXPECT_EQ(rows.find(token), std::string::npos);
  EXPECT_TRUE(testing::files_containing(server_.socket_dir(), issued, "").empty());
  EXPECT_TRUE(testing::files_containing(after_dir.path().string(), issued, "").empty());
}

}  // namespace
}  // namespace nicsync
