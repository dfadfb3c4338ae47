// What the engine knows about what Vault holds now, for credential age and versions_behind:
// taken from every observation (not only news), so that after a restart, when the first sweep
// re-reads every key and none of it is news, the write times are known again; a recreated key
// (a new lineage) counts one version behind until it is delivered.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "nicsync/sync/engine.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"

namespace nicsync::sync {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const Gstin kG = Gstin::parse("07AAFCD5862R1ZX").value();

class EngineFreshness : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_.set_destinations({{dest_, LanePolicy{}}});
    ASSERT_TRUE(engine_.set_pairs({{"fake", kG, {testing::path_of(kG)}}}));
    ASSERT_TRUE(engine_.load());
    engine_.start();
  }
  void observe(std::int64_t v, const std::string& lineage, std::chrono::system_clock::time_point written,
               SourceState state = SourceState::present) {
    Observation o;
    o.path = testing::path_of(kG);
    o.version = VersionId{v, Lineage(lineage), state};
    o.written_at = written;
    engine_.observe(o);
  }
  void settle() {
    auto wait = [&]() -> asio::awaitable<void> {
      while (!engine_.idle()) co_await engine_.wait_for_change();
    };
    testing::run_for(io_, wait());
  }
  PairView view() { return engine_.view(0); }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  testing::FakeReader reader_;
  std::shared_ptr<testing::FakeDestination> dest_ =
      std::make_shared<testing::FakeDestination>("fake", io_.get_executor(), store_);
  Engine engine_{io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_};
};

TEST_F(EngineFreshness, WriteTimeAndVersionComeFromEveryObservation) {
  const auto t1 = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  reader_.set(kG, 2, "pw-2");
  observe(2, "L1", t1);
  settle();
  EXPECT_EQ(view().record.state, ledger::PairState::in_sync);
  EXPECT_EQ(view().written_at, t1);
  EXPECT_EQ(view().vault_version, 2);
  EXPECT_EQ(view().versions_behind, 0);
  // The same version seen again (not news) still updates what is known, e.g. after a restart
  // that lost it; a different time is what Vault says now.
  const auto t1b = t1 + 5s;
  observe(2, "L1", t1b);
  EXPECT_EQ(view().written_at, t1b);
  EXPECT_EQ(engine_.brief(0).written_at, t1b);
  // Vault moves on by three versions: three behind until delivered.
  reader_.set(kG, 5, "pw-5");
  observe(5, "L1", t1 + 1h);
  EXPECT_EQ(view().versions_behind, 3);
  EXPECT_EQ(engine_.brief(0).versions_behind, 3);
  settle();
  EXPECT_EQ(view().versions_behind, 0);
}

TEST_F(EngineFreshness, RecreatedKeyIsOneBehindUntilDelivered) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  reader_.set(kG, 4, "pw-4");
  observe(4, "L1", t);
  settle();
  ASSERT_EQ(view().record.applied->version.number, 4);
  // Deleted and written again: version 1 of a new lineage.
  dest_->delay = 50ms;
  reader_.set(kG, 1, "pw-new");
  observe(1, "L2", t + 1h);
  EXPECT_EQ(view().versions_behind, 1);
  settle();
  EXPECT_EQ(view().record.applied->version.number, 1);
  EXPECT_EQ(view().versions_behind, 0);
}

TEST_F(EngineFreshness, UnreadableOrUnobservedCountsNothing) {
  EXPECT_EQ(view().versions_behind, 0) << "not observed yet";
  EXPECT_EQ(view().written_at, std::chrono::system_clock::time_point{});
  observe(3, "L1", std::chrono::system_clock::now(), SourceState::deleted);
  EXPECT_EQ(view().versions_behind, 0);
  EXPECT_EQ(view().written_at, std::chrono::system_clock::time_point{});
  settle();
}

}  // namespace
}  // namespace nicsync::sync
