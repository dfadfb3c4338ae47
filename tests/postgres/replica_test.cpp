// Two real nicsyncd replicas on one PostgreSQL ledger (the server the tests start), against the
// test Vault and test ClearTax, with a short lease (2 s, renewed every 500 ms):
// - one leads, the other stands by: /readyz says which, the standby shows the shared state,
//   forwards POST /v1/sync to the leader (the answer names the leader) and reads nothing from
//   Vault; every push names its replica in User-Agent;
// - the leader killed (SIGKILL), paused past its lease (SIGSTOP … SIGCONT), or cut off from the
//   database (its traffic blackholed by a proxy that keeps the sockets open): the other takes
//   over and every rotation arrives; the old leader pushes nothing after its lease ended (at
//   most the one push per pair that was already on its way) and stands by again;
// - in every case no GSTIN receives an older version after a newer one.
// Each prints its figures: the time from the fault to the new leader's first push.
#include <signal.h>

#include <map>
#include <regex>

#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "nicsync/ledger/keys.hpp"
#include "postgres/server.hpp"
#include "testing/tcp_proxy.hpp"
#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

struct Push {
  std::string gstin;
  int version = 0;
  std::string replica;
  Clock::time_point at;
};

class ReplicaTest : public ::testing::Test {
 protected:
  explicit ReplicaTest(testing::World::Options world = {}) : world_(std::move(world)) {
    server_.create_role_and_database(testing::kRole, testing::kRolePassword);
    url_file_ = testing::write_url_file(tmp_, server_);
    world_.seed_cleartax_secret();
    keys_file_ = tmp_.file("ledger-keys");
    auto keys = ledger::LedgerKeys::generate();
    if (!keys || !ledger::write_keys_file(keys_file_, *keys, false)) throw std::runtime_error("cannot write the keys");
    for (int i = 0; i < kGstins; ++i) gstins_.push_back(testing::world_gstin(i));
  }

  static constexpr int kGstins = 40;

  testing::DaemonConfig config(const std::string& id, const std::string& url_file) {
    testing::DaemonConfig c;
    c.gstins = gstins_;
    c.poll_interval = "300ms";
    c.resync_interval = "1s";
    c.stop_grace = "2s";
    c.concurrency = 4;
    c.extra = fmt::format(
        "[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nschema = \"ledger\"\nkeys_file = \"{}\"\n"
        "[ha]\nreplica_id = \"{}\"\nlease = \"2s\"\nrenew = \"500ms\"\n",
        url_file, keys_file_, id);
    return c;
  }

  void rotate(int version) {
    for (const auto& g : gstins_) world_.put_credential(g, "API_" + g, fmt::format("Pw-{}-v{}", g, version));
  }

  bool all_hold(int version, std::chrono::milliseconds timeout) {
    const std::string suffix = fmt::format("-v{}", version);
    return testing::eventually(
        [&] {
          for (const auto& g : gstins_) {
            auto s = world_.stored(g);
            if (!s || !s->password.ends_with(suffix)) return false;
          }
          return true;
        },
        timeout);
  }

  static std::string role(testing::Daemon& d) {
    auto r = d.request("GET", "/readyz");
    if (!r) return "";
    boost::system::error_code ec;
    auto v = boost::json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("role")) return "";
    return std::string(v.at("role").as_string());
  }

  static bool becomes(testing::Daemon& d, const std::string& wanted, std::chrono::milliseconds timeout) {
    return testing::eventually([&] { return role(d) == wanted; }, timeout);
  }

  /// Every store request the test ClearTax took, in order received.
  std::vector<Push> pushes() {
    static const std::regex kPassword("Pw-([0-9A-Z]+)-v([0-9]+)");
    static const std::regex kReplica("replica/([A-Za-z0-9_.:-]+)");
    std::vector<Push> out;
    for (const auto& r : world_.cleartax().requests(fakes::FakeClearTax::kStorePath)) {
      std::smatch m;
      if (!std::regex_search(r.body, m, kPassword)) continue;
      Push p{m[1], std::stoi(m[2]), "", r.received_at};
      const std::string ua(r.header("User-Agent").value_or(""));
      if (std::smatch u; std::regex_search(ua, u, kReplica)) p.replica = u[1];
      out.push_back(std::move(p));
    }
    return out;
  }

  /// No GSTIN got an older version after a newer one; returns the repeats (a version pushed
  /// more than once to one GSTIN) per GSTIN.
  std::map<std::string, int> check_order_and_count_repeats(const std::vector<Push>& all) {
    std::map<std::string, int> newest;
    std::map<std::pair<std::string, int>, int> times;
    std::map<std::string, int> repeats;
    for (const auto& p : all) {
      EXPECT_GE(p.version, newest[p.gstin]) << p.gstin << " got v" << p.version << " after v" << newest[p.gstin];
      newest[p.gstin] = std::max(newest[p.gstin], p.version);
      if (++times[{p.gstin, p.version}] > 1) ++repeats[p.gstin];
    }
    return repeats;
  }

  /// The first push by `replica` at or after `after`.
  static std::optional<Clock::time_point> first_push(const std::vector<Push>& all, const std::string& replica,
                                                     Clock::time_point after) {
    for (const auto& p : all) {
      if (p.replica == replica && p.at >= after) return p.at;
    }
    return std::nullopt;
  }

  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  void expect_no_secret(testing::Daemon& d) {
    const std::string out = d.process().output();
    EXPECT_EQ(out.find(testing::kRolePassword), std::string::npos);
    EXPECT_EQ(out.find("Pw-"), std::string::npos) << "a NIC password in the log";
  }

  testing::PostgresServer server_;
  testing::TempDir tmp_;
  testing::TempDir dir_a_;
  testing::TempDir dir_b_;
  std::string url_file_;
  std::string keys_file_;
  std::vector<std::string> gstins_;
  testing::World world_;
};

TEST_F(ReplicaTest, OneLeadsTheStandbyShowsTheStateForwardsSyncAndReadsNothingFromVault) {
  testing::Daemon a(world_, dir_a_, config("replica-a", url_file_));
  a.start();
  ASSERT_TRUE(a.wait_started()) << a.process().output();
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  testing::Daemon b(world_, dir_b_, config("replica-b", url_file_));
  b.start();
  ASSERT_TRUE(b.wait_started()) << b.process().output();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  EXPECT_TRUE(testing::eventually([&] { return b.readyz() == 200; }, 10s))
      << "a standby that reaches the database is ready";

  rotate(1);
  ASSERT_TRUE(all_hold(1, 30s)) << a.process().output();
  for (const auto& p : pushes()) EXPECT_EQ(p.replica, "replica-a") << "a push by another replica than the leader";

  // The standby shows the leader's work.
  ASSERT_TRUE(testing::eventually(
      [&] {
        auto st = b.get_json("/v1/status");
        if (!st) return false;
        std::size_t in_sync = 0;
        for (const auto& p : st->at("pairs").as_array()) in_sync += p.at("state").as_string() == "in_sync" ? 1 : 0;
        return in_sync == gstins_.size();
      },
      20s))
      << b.process().output();

  // It reads nothing from Vault: its own Vault request counter stays where login left it.
  auto vault_requests = [&](testing::Daemon& d) {
    auto m = d.request("GET", "/metrics");
    if (!m) return -1.0;
    static const std::regex kOk(R"(nicsync_vault_requests_total\{outcome="ok"\} ([0-9.e+]+))");
    std::smatch s;
    return std::regex_search(m->body, s, kOk) ? std::stod(s[1]) : -1.0;
  };
  const double before = vault_requests(b);
  std::this_thread::sleep_for(2s);  // several poll intervals of the leader
  EXPECT_EQ(vault_requests(b), before) << "the standby polled Vault";

  // POST /v1/sync on the standby goes to the leader, with the caller's token.
  auto r = b.request("POST", "/v1/sync", fmt::format(R"({{"gstins":["{}"],"force":true}})", gstins_[0]), true);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200) << r->body << a.process().output() << b.process().output();
  EXPECT_NE(r->body.find(R"("served_by":"replica-a")"), std::string::npos) << r->body;
  auto unauthorised = b.request("POST", "/v1/sync", "{}", false);
  ASSERT_TRUE(unauthorised);
  EXPECT_EQ(unauthorised->status, 401);

  auto metrics_a = a.request("GET", "/metrics");
  auto metrics_b = b.request("GET", "/metrics");
  ASSERT_TRUE(metrics_a && metrics_b);
  EXPECT_NE(metrics_a->body.find("nicsync_leader 1"), std::string::npos);
  EXPECT_NE(metrics_b->body.find("nicsync_leader 0"), std::string::npos);

  // The lead moves by hand (nicsyncd lease release): asked of the standby, it says who leads.
  auto refused = b.request("POST", "/v1/lease/release", "{}", true);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("replica-a leads"), std::string::npos) << refused->body;
  auto released = a.request("POST", "/v1/lease/release", "{}", true);
  ASSERT_TRUE(released);
  EXPECT_EQ(released->status, 200) << released->body;
  ASSERT_TRUE(becomes(b, "leader", 10s)) << b.process().output();
  ASSERT_TRUE(becomes(a, "standby", 10s)) << a.process().output();
  rotate(2);
  ASSERT_TRUE(all_hold(2, 30s)) << b.process().output();

  // A clean stop hands the lease over at once.
  const auto stopped_at = std::chrono::steady_clock::now();
  b.signal(SIGTERM);
  ASSERT_EQ(b.process().wait(30s), 0) << b.process().output();
  ASSERT_TRUE(becomes(a, "leader", 10s)) << a.process().output();
  std::cout << "clean stop -> the standby leads after "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count() << " s\n";
  rotate(3);
  ASSERT_TRUE(all_hold(3, 30s)) << a.process().output();
  check_order_and_count_repeats(pushes());
  expect_no_secret(a);
  expect_no_secret(b);
}

TEST_F(ReplicaTest, LeaderKilledTheStandbyTakesOverAndEveryRotationArrives) {
  testing::Daemon a(world_, dir_a_, config("replica-a", url_file_));
  a.start();
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  testing::Daemon b(world_, dir_b_, config("replica-b", url_file_));
  b.start();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  rotate(1);
  ASSERT_TRUE(all_hold(1, 30s)) << a.process().output();

  rotate(2);
  ASSERT_TRUE(testing::eventually(
      [&] {
        int done = 0;
        for (const auto& g : gstins_) done += world_.stored(g)->password.ends_with("-v2") ? 1 : 0;
        return done >= 1;
      },
      30s));
  const auto killed_at = Clock::now();
  a.signal(SIGKILL);
  (void)a.process().wait(10s);
  ASSERT_TRUE(all_hold(2, 60s)) << b.process().output();
  // The leader may have pushed all of version 2 before it died: version 3 comes after the kill.
  ASSERT_TRUE(becomes(b, "leader", 20s)) << b.process().output();
  rotate(3);
  ASSERT_TRUE(all_hold(3, 60s)) << b.process().output();
  const auto all = pushes();
  const auto repeats = check_order_and_count_repeats(all);
  for (const auto& [g, n] : repeats) EXPECT_LE(n, 1) << g << ": more than one repeat for one failover";
  auto first = first_push(all, "replica-b", killed_at);
  std::cout << "SIGKILL -> first push by the new leader: "
            << (first ? fmt::format("{:.2f} s", seconds(*first - killed_at)) : std::string("none")) << "; "
            << repeats.size() << " pair(s) got one repeat\n";
  expect_no_secret(b);
}

TEST_F(ReplicaTest, LeaderPausedPastItsLeasePushesNothingAfterwardsAndStandsBy) {
  testing::Daemon a(world_, dir_a_, config("replica-a", url_file_));
  a.start();
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  testing::Daemon b(world_, dir_b_, config("replica-b", url_file_));
  b.start();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  rotate(1);
  ASSERT_TRUE(all_hold(1, 30s)) << a.process().output();

  rotate(2);
  const auto paused_at = Clock::now();
  a.signal(SIGSTOP);
  ASSERT_TRUE(becomes(b, "leader", 20s)) << b.process().output();
  const auto took_over_at = Clock::now();
  ASSERT_TRUE(all_hold(2, 60s)) << b.process().output();
  rotate(3);
  std::this_thread::sleep_for(300ms);  // B is pushing version 3 when A wakes up
  const auto resumed_at = Clock::now();
  a.signal(SIGCONT);
  ASSERT_TRUE(becomes(a, "standby", 20s)) << a.process().output();
  ASSERT_TRUE(all_hold(3, 60s)) << a.process().output() << "\n----- b\n" << b.process().output();
  rotate(4);
  ASSERT_TRUE(all_hold(4, 60s)) << b.process().output();

  const auto all = pushes();
  const auto repeats = check_order_and_count_repeats(all);
  for (const auto& [g, n] : repeats) EXPECT_LE(n, 1) << g << ": more than one repeat for one failover";
  // After SIGCONT the old leader starts no push: anything of A's received after it was on its
  // way before the pause (at most one per pair, and never a version written after the pause).
  std::map<std::string, int> late;
  for (const auto& p : all) {
    if (p.replica != "replica-a" || p.at < resumed_at) continue;
    ++late[p.gstin];
    EXPECT_LE(p.version, 2) << p.gstin << ": the paused leader pushed a version written after its lease ended";
  }
  for (const auto& [g, n] : late) EXPECT_LE(n, 1) << g;
  auto first = first_push(all, "replica-b", paused_at);
  std::cout << "SIGSTOP -> the standby leads after " << seconds(took_over_at - paused_at)
            << " s; first push by it after "
            << (first ? fmt::format("{:.2f} s", seconds(*first - paused_at)) : std::string("none")) << "; "
            << late.size() << " push(es) of the old leader landed after SIGCONT\n";
  expect_no_secret(a);
  expect_no_secret(b);
}

TEST_F(ReplicaTest, LeaderCutOffFromTheDatabaseStepsDownAndTheOtherTakesOver) {
  testing::TcpProxy proxy(server_.port());
  testing::TempDir proxied;
  const std::string proxied_url = proxied.file("ledger-url");
  {
    std::string conninfo = server_.conninfo(testing::kRole, testing::kRole, testing::kRolePassword);
    const std::string from = fmt::format("port={}", server_.port());
    conninfo.replace(conninfo.find(from), from.size(), fmt::format("port={}", proxy.port()));
    testing::write_file(proxied_url, conninfo + "\n");
    std::filesystem::permissions(proxied_url, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  testing::Daemon a(world_, dir_a_, config("replica-a", proxied_url));
  a.start();
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  testing::Daemon b(world_, dir_b_, config("replica-b", url_file_));
  b.start();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  rotate(1);
  ASSERT_TRUE(all_hold(1, 30s)) << a.process().output();

  rotate(2);
  const auto cut_at = Clock::now();
  proxy.blackhole();
  ASSERT_TRUE(becomes(b, "leader", 20s)) << b.process().output();
  ASSERT_TRUE(becomes(a, "standby", 20s)) << a.process().output();
  ASSERT_TRUE(all_hold(2, 60s)) << b.process().output();
  rotate(3);
  ASSERT_TRUE(all_hold(3, 60s)) << b.process().output();
  const auto all = pushes();
  const auto repeats = check_order_and_count_repeats(all);
  for (const auto& [g, n] : repeats) EXPECT_LE(n, 1) << g << ": more than one repeat for one failover";
  for (const auto& p : all) {
    if (p.replica == "replica-a") {
      EXPECT_LE(p.version, 2) << "the cut-off leader pushed after it stepped down";
    }
  }
  auto first = first_push(all, "replica-b", cut_at);
  std::cout << "partition -> first push by the new leader: "
            << (first ? fmt::format("{:.2f} s", seconds(*first - cut_at)) : std::string("none")) << "\n";
  proxy.restore();
  expect_no_secret(a);
  expect_no_secret(b);
}

TEST_F(ReplicaTest, ThePostgresServerRestartedMidRunLeavesALeaderAndLosesNothing) {
  testing::Daemon a(world_, dir_a_, config("replica-a", url_file_));
  a.start();
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  testing::Daemon b(world_, dir_b_, config("replica-b", url_file_));
  b.start();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  rotate(1);
  ASSERT_TRUE(all_hold(1, 30s)) << a.process().output();
  rotate(2);
  server_.restart("immediate");
  ASSERT_TRUE(all_hold(2, 60s)) << a.process().output() << b.process().output();
  ASSERT_TRUE(testing::eventually([&] { return (role(a) == "leader") != (role(b) == "leader"); }, 30s));
  rotate(3);
  ASSERT_TRUE(all_hold(3, 60s)) << a.process().output() << b.process().output();
  const auto repeats = check_order_and_count_repeats(pushes());
  std::cout << "server restart: " << repeats.size() << " pair(s) got a repeat\n";
  for (const auto& [g, n] : repeats) EXPECT_LE(n, 1) << g;
  expect_no_secret(a);
  expect_no_secret(b);
}

// The test Vault's socket audit device dials the standby: what it learns reaches the leader.
std::uint16_t audit_port() {
  static const std::uint16_t port = testing::free_port();
  return port;
}

testing::World::Options with_audit_device() {
  testing::World::Options o;
  o.audit_devices.emplace_back();
  o.audit_devices.back().address = fmt::format("127.0.0.1:{}", audit_port());
  return o;
}

class ReplicaAuditTest : public ReplicaTest {
 protected:
  ReplicaAuditTest() : ReplicaTest(with_audit_device()) {}

  // As a rotation job writes: through Vault's API, so that its audit device sees it.
  void write_over_http(const std::string& gstin, const std::string& password) {
    boost::asio::io_context io;
    http::Client client(io.get_executor());
    http::Request r;
    r.method = "POST";
    r.url = world_.vault_address() + "/v1/secret/data/nic/" + gstin;
    r.headers = {{"X-Vault-Token", world_.vault().options().root_token}, {"Content-Type", "application/json"}};
    r.body = fmt::format(R"({{"data":{{"username":"API_{}","password":"{}"}}}})", gstin, password);
    r.timeout = 10s;
    auto resp = testing::run_for(io, client.request(std::move(r)), 15s);
    ASSERT_TRUE(resp && resp->status == 200) << (resp ? resp->body : resp.error().describe());
  }
};

TEST_F(ReplicaAuditTest, AuditEntriesThatReachTheStandbyAreDeliveredByTheLeader) {
  auto slow_poll = [&](const std::string& id, bool listen) {
    testing::DaemonConfig c = config(id, url_file_);
    c.poll_interval = "10m";  // only the feed can bring a rotation over in time
    c.resync_interval = "10m";
    if (listen) c.extra += fmt::format("[watch.audit]\nlisten = \"127.0.0.1:{}\"\n", audit_port());
    return c;
  };
  // The test Vault, like Vault, answers nothing while no audit device takes its entries: B,
  // whose listener the device dials, starts first (and leads), then hands the lead to A.
  rotate(1);
  testing::Daemon b(world_, dir_b_, slow_poll("replica-b", true));
  b.start();
  ASSERT_TRUE(becomes(b, "leader", 20s)) << b.process().output();
  ASSERT_TRUE(all_hold(1, 30s)) << b.process().output();  // a new leader reads every key at once
  testing::Daemon a(world_, dir_a_, slow_poll("replica-a", false));
  a.start();
  ASSERT_TRUE(becomes(a, "standby", 20s)) << a.process().output();
  auto released = b.request("POST", "/v1/lease/release", "{}", true);
  ASSERT_TRUE(released && released->status == 200);
  ASSERT_TRUE(becomes(a, "leader", 20s)) << a.process().output();
  ASSERT_TRUE(becomes(b, "standby", 20s)) << b.process().output();
  ASSERT_TRUE(testing::eventually(
      [&] {
        auto st = b.get_json("/readyz");
        return st && st->as_object().contains("audit_feed") && st->at("audit_feed").at("connected").as_bool();
      },
      20s))
      << b.process().output();
  const auto t0 = Clock::now();
  for (const auto& g : gstins_) write_over_http(g, fmt::format("Pw-{}-v2", g));
  ASSERT_TRUE(all_hold(2, 20s)) << "a poll would take 10 minutes\n"
                                << boost::json::serialize(b.get_json("/readyz").value_or(nullptr)) << "\n"
                                << a.process().output() << "\n----- b\n"
                                << b.process().output();
  double worst = 0;
  for (const auto& p : pushes()) {
    if (p.version != 2) continue;
    EXPECT_EQ(p.replica, "replica-a");
    worst = std::max(worst, seconds(p.at - t0));
  }
  std::cout << "audit entries at the standby -> every rotation at ClearTax within " << worst << " s\n";
  expect_no_secret(a);
  expect_no_secret(b);
}

}  // namespace
}  // namespace nicsync
