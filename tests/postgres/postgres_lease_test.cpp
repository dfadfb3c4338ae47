// The leader lease and the fence on a real PostgreSQL: one holder at a time, every acquisition a
// new epoch, renewals only by the holder of the current epoch, a takeover when the holder's
// session is gone; and a store fenced to an epoch commits nothing once that epoch is no longer
// the current one or has run out, by the database's clock.
#include "nicsync/ledger/postgres_lease.hpp"

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "conformance/store_fixtures.hpp"
#include "postgres/server.hpp"
#include "testing/world.hpp"

namespace nicsync::ledger {
namespace {

using namespace std::chrono_literals;
using testing::run_for;
using testing::shared_server;

class PostgresLeaseTest : public ::testing::Test {
 protected:
  PostgresLeaseTest() : url_file_(testing::write_url_file(tmp_, shared_server())) {
    // The store makes (migrates) the schema the lease lives in.
    store_ = open_store();
  }

  PostgresStoreOptions options() const { return testing::store_options(url_file_, schema_); }
  std::unique_ptr<PostgresStore> open_store() {
    auto s = PostgresStore::open(options());
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }
  Result<void> write(PostgresStore& s, const std::string& gstin) {
    PairRecord r = fixtures::full_record();
    r.gstin = gstin;
    return run_for(io_, s.write(r, std::nullopt));
  }
  std::optional<HeldLease> acquire(PostgresLease& l, const std::string& who, std::chrono::milliseconds d = 10s,
                                   std::optional<std::int64_t> take_over = std::nullopt) {
    auto r = run_for(io_, l.acquire(who, "http://" + who + ":9464", d, take_over));
    EXPECT_TRUE(r) << r.error().describe();
    return r ? *r : std::nullopt;
  }

  testing::TempDir tmp_;
  std::string url_file_;
  std::string schema_ = testing::fresh_schema();
  boost::asio::io_context io_;
  std::unique_ptr<PostgresStore> store_;
};

TEST_F(PostgresLeaseTest, OneHolderAtATimeEachTakingANewEpoch) {
  PostgresLease a(options());
  PostgresLease b(options());
  auto first = run_for(io_, a.read());
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->holder, "");
  EXPECT_FALSE(first->live);

  auto held = acquire(a, "replica-a");
  ASSERT_TRUE(held);
  EXPECT_EQ(held->epoch, first->epoch + 1);
  EXPECT_FALSE(acquire(b, "replica-b")) << "a live lease of another replica is not taken";
  auto state = run_for(io_, b.read());
  ASSERT_TRUE(state);
  EXPECT_EQ(state->holder, "replica-a");
  EXPECT_EQ(state->url, "http://replica-a:9464");
  EXPECT_TRUE(state->live);
  EXPECT_GT(state->remaining, 5s);

  // Renewed by its holder only, and only in its epoch.
  auto renewed = run_for(io_, a.renew("replica-a", held->epoch, 10s));
  ASSERT_TRUE(renewed);
  EXPECT_TRUE(*renewed);
  auto wrong = run_for(io_, b.renew("replica-b", held->epoch, 10s));
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong);

  // Released: the other replica takes it at once, in a new epoch; the old holder cannot renew.
  ASSERT_TRUE(run_for(io_, a.release("replica-a", held->epoch)));
  auto second = acquire(b, "replica-b");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->epoch, held->epoch + 1);
  auto lost = run_for(io_, a.renew("replica-a", held->epoch, 10s));
  ASSERT_TRUE(lost);
  EXPECT_FALSE(*lost);
}

TEST_F(PostgresLeaseTest, ALeaseThatIsNotRenewedRunsOutByTheDatabasesClock) {
  PostgresLease a(options());
  PostgresLease b(options());
  auto held = acquire(a, "replica-a", 300ms);
  ASSERT_TRUE(held);
  EXPECT_FALSE(acquire(b, "replica-b"));
  std::this_thread::sleep_for(400ms);  // the lease's own time passing is what is tested
  auto state = run_for(io_, b.read());
  ASSERT_TRUE(state);
  EXPECT_FALSE(state->live);
  EXPECT_TRUE(acquire(b, "replica-b"));
}

TEST_F(PostgresLeaseTest, ATakeoverWaitsForNoLeaseOnceTheHoldersSessionIsGone) {
  auto a = std::make_unique<PostgresLease>(options());
  PostgresLease b(options());
  auto held = acquire(*a, "replica-a", 60s);
  ASSERT_TRUE(held);
  auto gone = run_for(io_, b.holder_gone(held->epoch));
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone) << "the holder's session lock is held";
  a.reset();  // its process ends: its session and the lock with it
  ASSERT_TRUE(testing::eventually(
      [&] {
        auto g = run_for(io_, b.holder_gone(held->epoch));
        return g && *g;
      },
      10s));
  EXPECT_FALSE(acquire(b, "replica-b", 10s, held->epoch - 1)) << "only the epoch found gone is taken over";
  auto taken = acquire(b, "replica-b", 10s, held->epoch);
  ASSERT_TRUE(taken) << "a live lease whose holder is gone is taken over";
  PostgresLease c(options());
  auto seen = run_for(io_, c.holder_gone(taken->epoch));
  ASSERT_TRUE(seen);
  EXPECT_FALSE(*seen) << "the new epoch's lock came with the lease";
}

TEST_F(PostgresLeaseTest, AFencedStoreCommitsOnlyInTheCurrentLiveEpoch) {
  PostgresLease a(options());
  PostgresLease b(options());
  auto held = acquire(a, "replica-a", 10s);
  ASSERT_TRUE(held);
  store_->set_fence(held->epoch);
  ASSERT_TRUE(write(*store_, "G1"));

  // Another replica takes over: the first one's transactions change nothing any more.
  ASSERT_TRUE(run_for(io_, a.release("replica-a", held->epoch)));
  auto taken = acquire(b, "replica-b", 10s);
  ASSERT_TRUE(taken);
  auto refused = write(*store_, "G2");
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::ledger_fenced)) << refused.error().describe();
  EXPECT_NE(refused.error().message.find("standby"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(store_->writable());

  auto other = open_store();
  ASSERT_TRUE(other);
  other->set_fence(taken->epoch);
  ASSERT_TRUE(write(*other, "G3"));
  // A lease that ran out fences too, taken over or not.
  ASSERT_TRUE(run_for(io_, b.release("replica-b", taken->epoch)));
  EXPECT_FALSE(write(*other, "G4"));
  std::set<std::string> written;
  for (const auto& p : other->load_pairs().value()) written.insert(p.gstin);
  EXPECT_EQ(written, (std::set<std::string>{"G1", "G3"}));
}

}  // namespace
}  // namespace nicsync::ledger
