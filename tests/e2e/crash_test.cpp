// Crash safety of the real nicsyncd: 200 GSTINs (a mapping set) rotated in rounds while the
// daemon is killed with SIGKILL 20 times at random (seeded, printed) moments and restarted on the
// same state directory. Every push is held ~30 ms at the test ClearTax so that kills regularly land
// while pushes are in flight; half the kills are aimed at such a moment, half fall anywhere
// (start-up, ledger load, Vault sweep, idle).
//
// Afterwards: every GSTIN holds its newest version at the test ClearTax, /v1/status and the
// SQLite ledger agree, no older version was stored after a newer one, and every repeated store of
// a (GSTIN, version) is explained by a crash that caught it in flight (or an injected lost answer).
// "Caught in flight" is read from the ledger between the kill and the restart, and checked from
// outside: every push the test ClearTax held unanswered at the kill (or received afterwards from the
// dead daemon's sockets) must be among them — so the intent is durable before the push leaves.
//
// NICSYNC_CRASH_SEED=<n> replays a run's kill schedule (it is printed at the start).
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/sync/engine.hpp"
#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::DaemonConfig;
using testing::eventually;
using testing::files_containing;
using testing::read_all;
using testing::World;
using testing::world_gstin;

constexpr int kGstins = 200;
constexpr int kCrashes = 20;
constexpr int kDestinationConcurrency = 16;  // pushes at once: what testing::Daemon configures
// Deliveries under way at once (the engine records intents ahead of the push slots).
const int kDeliveriesUnderWay = sync::LanePolicy{.concurrency = kDestinationConcurrency}.deliveries_under_way();
constexpr auto kPushDelay = 30ms;  // every store is held this long at the test ClearTax

std::string password_for(const std::string& gstin, std::int64_t version) {
  return fmt::format("Crash&Pw<{}>v{}\"\\ü", gstin, version);
}

/// (GSTIN, version): one credential version of one GSTIN.
using Version = std::pair<std::string, std::int64_t>;

/// Every ledger record, read with the ledger's own code (the daemon must not be running).
std::map<std::string, ledger::PairRecord> read_ledger(const std::string& state_dir) {
  auto store = ledger::SqliteStore::open({.path = std::filesystem::path(state_dir) / ledger::SqliteStore::kFileName});
  if (!store) throw std::runtime_error("ledger: " + store.error().describe());
  auto records = (*store)->load_pairs();
  if (!records) throw std::runtime_error("ledger: " + records.error().describe());
  std::map<std::string, ledger::PairRecord> out;
  for (auto& r : *records) out.emplace(r.gstin, std::move(r));
  (*store)->close();
  return out;
}

class CrashE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* s = std::getenv("NICSYNC_CRASH_SEED")) {
      seed_ = std::strtoull(s, nullptr, 10);
    } else {
      seed_ = std::random_device{}();
    }
    std::cout << "crash test seed: NICSYNC_CRASH_SEED=" << seed_ << std::endl;
    RecordProperty("seed", std::to_string(seed_));
    rng_.seed(seed_);
    world_.seed_cleartax_secret();
    for (int i = 0; i < kGstins; ++i) gstins_.push_back(world_gstin(1000 + i));
  }

  void rotate(const std::string& gstin) {
    const std::int64_t v = newest_[gstin] + 1;
    planted_.push_back(password_for(gstin, v));
    ASSERT_EQ(world_.put_credential(gstin, "API_" + gstin.substr(0, 6), planted_.back()), v);
    newest_[gstin] = v;
    version_of_password_[planted_.back()] = {gstin, v};
  }

  /// A store request as (GSTIN, version) from its body; nothing if it is not one of ours.
  std::optional<Version> version_in(const fakes::RecordedRequest& r) {
    boost::system::error_code ec;
    auto body = boost::json::parse(r.body, ec);
    if (ec || !body.is_object()) return std::nullopt;
    const auto* pw = body.as_object().if_contains("password");
    if (pw == nullptr || !pw->is_string()) return std::nullopt;
    auto it = version_of_password_.find(std::string(pw->as_string()));
    if (it == version_of_password_.end()) return std::nullopt;
    return it->second;
  }

  int random_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  World world_;
  testing::TempDir dir_;
  std::vector<std::string> gstins_;
  std::map<std::string, std::int64_t> newest_;
  std::vector<std::string> planted_;
  std::map<std::string, Version> version_of_password_;
};

TEST_F(CrashE2E, TwentySigkillsLoseNothingAndRepeatOnlyWhatWasInFlight) {
  const auto test_start = std::chrono::steady_clock::now();
  const std::string store_path(fakes::FakeClearTax::kStorePath);
  for (const auto& g : gstins_) rotate(g);
  world_.call([&] {
    world_.cleartax().add_fault(
        {.path = store_path, .times = 0, .delay = kPushDelay, .action = fakes::FaultAction::none});
  });

  DaemonConfig cfg{.mapping_set = true};
  cfg.poll_interval = "1s";
  cfg.jitter = "20ms";
  cfg.backoff_base = "20ms";
  cfg.backoff_cap = "200ms";
  Daemon d(world_, dir_, cfg);
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();

  struct Crash {
    int index = 0;
    bool aimed = false;
    std::size_t held_at_kill = 0;        // pushes held unanswered by the test ClearTax at the kill
    std::set<Version> unanswered;        // held at the kill, or received after it from the dead daemon
    std::set<Version> ledger_in_flight;  // intents the ledger holds after the kill
  };
  std::vector<Crash> crashes;
  std::map<Version, int> lost_answers;  // stored, then the injected fault dropped the answer

  for (int k = 0; k < kCrashes; ++k) {
    Crash c;
    c.index = k;
    // Rotations: every GSTIN every fourth crash, a random half every other one.
    if (k % 4 == 0) {
      for (const auto& g : gstins_) rotate(g);
    } else if (k % 2 == 0) {
      for (const auto& g : gstins_) {
        if (random_int(0, 1) == 1) rotate(g);
      }
    }
    // A few stores are applied and then lose their answer (dropped connection): the daemon
    // retries those without any crash, which the repeat accounting must allow for.
    if (k == 4 || k == 12) {
      world_.call([&] {
        world_.cleartax().clear_faults();
        world_.cleartax().add_fault(
            {.path = store_path, .times = 3, .action = fakes::FaultAction::drop, .apply_first = true});
        world_.cleartax().add_fault(
            {.path = store_path, .times = 0, .delay = kPushDelay, .action = fakes::FaultAction::none});
      });
    }
    c.aimed = k % 2 == 0;
    // Looks at the test ClearTax and kills on its thread, so that no answer goes out between
    // looking and killing. Returns whether it killed.
    std::uint64_t last_seq_at_kill = 0;
    auto kill_now = [&](bool only_if_held) {
      return world_.call([&] {
        c.held_at_kill = world_.cleartax().hung_requests();
        if (only_if_held && c.held_at_kill == 0) return false;
        for (const auto& r : world_.cleartax().requests()) {
          last_seq_at_kill = std::max(last_seq_at_kill, r.seq);
          if (r.path == store_path && r.status == 0 && r.outcome.empty()) {
            if (auto v = version_in(r)) c.unanswered.insert(*v);
          }
        }
        d.signal(SIGKILL);
        return true;
      });
    };
    if (c.aimed) {
      // At a moment when pushes are held at the test ClearTax (there is a rotation to deliver).
      // The burst can be over before the test looks: the restarted daemon's first sweep may
      // read the rotation at once, and its pushes take ~0.2 s at the lane's concurrency. Then
      // one more GSTIN is rotated, once a second, for a push to catch.
      std::this_thread::sleep_for(std::chrono::milliseconds(random_int(0, 300)));
      int looks = 0;
      ASSERT_TRUE(eventually(
          [&] {
            if (kill_now(true)) return true;
            if (++looks % 100 == 0) rotate(gstins_[static_cast<std::size_t>(random_int(0, kGstins - 1))]);
            return false;
          },
          20s))
          << "crash " << k << ": no push in flight\n"
          << d.process().output();
    } else {
      // Anywhere: during start-up, the ledger load, the first sweep, a push, or idle.
      const int ms = random_int(0, 3) == 0 ? random_int(0, 60) : random_int(0, 1500);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      kill_now(false);
    }
    ASSERT_TRUE(d.process().wait(10s).has_value()) << "crash " << k;
    // Pushes of the dead daemon still held by the test ClearTax land before the restart (so an
    // old push cannot overtake a newer one from the next run: ordering is the fake's, not ours).
    // Its connections closed means the test ClearTax has read everything it had sent.
    ASSERT_TRUE(eventually(
        [&] {
          return world_.call([&] {
            return world_.cleartax().hung_requests() == 0 && world_.cleartax().server().stats().open_connections == 0;
          });
        },
        10s));
    world_.call([&] {
      for (const auto& r : world_.cleartax().requests(store_path)) {
        if (r.seq <= last_seq_at_kill) continue;
        if (auto v = version_in(r)) c.unanswered.insert(*v);  // was in the dead daemon's socket buffers
      }
    });
    for (const auto& [g, rec] : read_ledger(d.state_dir())) {
      if (rec.push_in_flight) {
        ASSERT_TRUE(rec.pending) << g;
        c.ledger_in_flight.insert({g, rec.pending->version.number});
      }
    }
    for (const auto& v : c.unanswered) {
      EXPECT_TRUE(c.ledger_in_flight.count(v) != 0)
          << "crash " << k << ": the test ClearTax got a push of " << v.first << " v" << v.second
          << " the ledger has no intent for (seed " << seed_ << ")";
    }
    // Intents not carried over from the previous crash (redeliveries that did not happen yet)
    // were deliveries under way now: pushes out or waiting for a slot.
    std::size_t fresh = 0;
    for (const auto& v : c.ledger_in_flight) fresh += crashes.empty() || !crashes.back().ledger_in_flight.contains(v);
    EXPECT_LE(fresh, static_cast<std::size_t>(kDeliveriesUnderWay)) << "crash " << k;
    crashes.push_back(std::move(c));
    d.start();
    ASSERT_TRUE(d.wait_started()) << "restart after crash " << k << "\n" << d.process().output();
  }

  // Everything converges: the test ClearTax holds every newest version, the daemon says so.
  ASSERT_TRUE(eventually(
      [&] {
        auto all = world_.call([&] { return world_.cleartax().stored_all(); });
        for (const auto& g : gstins_) {
          auto it = all.find(g);
          if (it == all.end() || it->second.password != password_for(g, newest_[g])) return false;
        }
        return true;
      },
      30s))
      << "seed " << seed_ << "\n"
      << d.process().output();
  ASSERT_TRUE(eventually(
      [&] {
        auto st = d.get_json("/v1/status");
        if (!st) return false;
        std::size_t ok = 0;
        for (const auto& p : st->at("pairs").as_array()) {
          const auto& o = p.as_object();
          const std::string g(o.at("gstin").as_string());
          if (o.at("state").as_string() == "in_sync" && o.at("applied_version").is_int64() &&
              o.at("applied_version").as_int64() == newest_[g] && !o.at("in_flight").as_bool()) {
            ++ok;
          }
        }
        return ok == gstins_.size();
      },
      20s))
      << "seed " << seed_;
  auto status = d.request("GET", "/v1/status");
  ASSERT_TRUE(status);
  d.signal(SIGTERM);
  ASSERT_EQ(d.process().wait(20s), 0) << d.process().output();

  // The ledger agrees.
  const auto ledger_records = read_ledger(d.state_dir());
  ASSERT_EQ(ledger_records.size(), gstins_.size());
  for (const auto& g : gstins_) {
    const auto& r = ledger_records.at(g);
    EXPECT_EQ(r.state, ledger::PairState::in_sync) << g;
    ASSERT_TRUE(r.applied) << g;
    EXPECT_EQ(r.applied->version.number, newest_[g]) << g;
    EXPECT_FALSE(r.pending) << g;
    EXPECT_FALSE(r.push_in_flight) << g;
  }

  // Repeats: a (GSTIN, version) stored more than once was caught in flight by a crash each extra
  // time (or lost its answer to an injected fault); and no GSTIN went back to an older version.
  const auto stores = world_.call([&] { return world_.cleartax().requests(store_path); });
  std::map<Version, int> stored_count;
  std::map<std::string, std::int64_t> last_stored;
  std::size_t total_stores = 0;
  for (const auto& r : stores) {  // in seq order
    if (!r.outcome.starts_with("stored")) continue;
    auto v = version_in(r);
    ASSERT_TRUE(v) << r.body.size();
    ++total_stores;
    ++stored_count[*v];
    if (r.outcome.find("+fault:") != std::string::npos) ++lost_answers[*v];
    EXPECT_GE(v->second, last_stored[v->first])
        << v->first << ": v" << v->second << " stored after v" << last_stored[v->first] << " (seq " << r.seq << ")";
    last_stored[v->first] = std::max(last_stored[v->first], v->second);
  }
  std::map<Version, int> caught;
  std::size_t in_flight_total = 0, aimed_in_flight = 0, held_total = 0;
  for (const auto& c : crashes) {
    for (const auto& v : c.ledger_in_flight) ++caught[v];
    in_flight_total += c.ledger_in_flight.size();
    held_total += c.held_at_kill;
    if (c.aimed) aimed_in_flight += c.ledger_in_flight.empty() ? 0 : 1;
  }
  std::size_t repeats = 0;
  for (const auto& [v, n] : stored_count) {
    repeats += static_cast<std::size_t>(n - 1);
    EXPECT_LE(n, 1 + caught[v] + lost_answers[v])
        << v.first << " v" << v.second << " stored " << n << " times; crashes that caught it in flight: " << caught[v]
        << ", lost answers: " << lost_answers[v] << " (seed " << seed_ << ")";
    EXPECT_LE(n, 1 + kCrashes + lost_answers[v]);
  }
  std::size_t lost_total = 0;
  for (const auto& [v, n] : lost_answers) lost_total += static_cast<std::size_t>(n);
  EXPECT_LE(repeats, in_flight_total + lost_total);
  // A kill catches at most the deliveries under way (pushes out, or answered and not yet recorded).
  EXPECT_LE(repeats, static_cast<std::size_t>(kCrashes * kDeliveriesUnderWay) + lost_total);
  // The test did what it claims: kills caught pushes in flight, and some were repeated.
  EXPECT_EQ(aimed_in_flight, static_cast<std::size_t>(kCrashes / 2));
  EXPECT_GT(held_total, 0u);
  EXPECT_GT(lost_total, 0u);
  // The newest version of every GSTIN was stored, and each at most 1 + its crashes.
  for (const auto& g : gstins_) EXPECT_GE(stored_count[Version(g, newest_[g])], 1) << g;

  // The restarts re-used the cached ClearTax access token (the day allows only 288).
  const auto tokens = world_.call([&] { return world_.cleartax().token_stats(); });
  EXPECT_LE(tokens.issued_total, 2u);

  // No planted password or token in the daemon's log, its state directory, or /v1/status; the
  // access token only in its own cache file.
  std::vector<std::string> secrets = planted_;
  secrets.push_back(world_.options().cleartax_client_secret);
  secrets.push_back(world_.token());
  EXPECT_EQ(files_containing(dir_.path().string(), secrets), std::vector<std::string>{});
  const auto issued = world_.call([&] { return world_.cleartax().issued_tokens(); });
  EXPECT_EQ(files_containing(dir_.path().string(), issued, ".token"), std::vector<std::string>{});
  for (const auto& s : secrets) EXPECT_EQ(status->body.find(s), std::string::npos);
  for (const auto& s : issued) EXPECT_EQ(status->body.find(s), std::string::npos);

  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - test_start);
  std::cout << fmt::format(
                   "crash test: {} GSTINs, {} versions planted, {} kills ({} aimed), {} stores, {} repeats; pushes in "
                   "flight at the kills: {} by the ledger, {} held at the test ClearTax; {} lost answers; {} token(s); "
                   "{} ms",
                   gstins_.size(), planted_.size(), crashes.size(), kCrashes / 2, total_stores, repeats,
                   in_flight_total, held_total, lost_total, tokens.issued_total, took.count())
            << std::endl;
}

}  // namespace
}  // namespace nicsync
