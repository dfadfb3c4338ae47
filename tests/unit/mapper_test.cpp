// Mappings resolved in one place: explicit mappings and listed mapping sets become the engine's
// pairs, observations reach the pairs of their Vault key — and an observation that arrives
// before its pairs exist is held, never dropped without a trace.
#include "nicsync/sync/mapper.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"
#include "testing/memory_store.hpp"

namespace nicsync::sync {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const Gstin kG1 = Gstin::parse("07AAFCD5862R1ZX").value();
const Gstin kG2 = Gstin::parse("27AAPFU0939F1ZV").value();

class MapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_.set_destinations({{dest_, LanePolicy{}}});
    ASSERT_TRUE(engine_.load());
    engine_.start();
  }
  void TearDown() override {
    EXPECT_EQ(dest_->intent_violations, 0);
    testing::drain(io_);
  }

  static Observation seen(const std::string& path, std::int64_t number) {
    Observation o;
    o.path = path;
    o.version = VersionId{number, Lineage("2026-01-01T00:00:00Z")};
    return o;
  }
  void settle() {
    auto wait = [&]() -> asio::awaitable<void> {
      while (!engine_.idle()) co_await engine_.wait_for_change();
    };
    testing::run_for(io_, wait(), 10s);
  }
  std::vector<std::string> pushed() const {
    std::vector<std::string> out;
    for (const auto& p : dest_->pushes) out.push_back(p.gstin + " v" + std::to_string(p.version));
    return out;
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  testing::FakeReader reader_;
  std::shared_ptr<testing::FakeDestination> dest_ =
      std::make_shared<testing::FakeDestination>("fake", io_.get_executor(), store_);
  Engine engine_{io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_};
  Mapper mapper_{engine_};
  MappingList mappings_;
  std::vector<MappingSetConfig> sets_;
};

TEST_F(MapperTest, ExplicitMappingsResolveAtOnceWhateverTheMount) {
  // "kv/prod" may be the mount, or "kv": the pairs are keyed by the path the mapping names, so
  // no guess about the mount can make an observation miss them.
  const std::string path = "kv/prod/nic/" + kG1.str();
  mappings_.push_back(MappingConfig{kG1, path, {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  EXPECT_EQ(mapper_.watched_keys(), std::vector<std::string>{path});
  auto snap = engine_.snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].config.source.path, path);
  mapper_.observe(seen(path, 1));
  EXPECT_EQ(mapper_.stats().held, 0u);
  EXPECT_EQ(mapper_.stats().dropped, 0u);
}

TEST_F(MapperTest, AnObservationBeforeItsSetListingIsHeldThenDelivered) {
  // The unlucky order: a key under a mapping set is read (an event, a trigger, the audit feed)
  // before the listing that makes it a member. Without holding, the engine has no pair for it
  // and the change would wait for the next sweep, or be lost.
  sets_.push_back(MappingSetConfig{"secret/nic/", {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  EXPECT_TRUE(engine_.snapshot().empty());
  reader_.set(kG1, 1, "Pw#1");
  mapper_.observe(seen(testing::path_of(kG1), 1));
  settle();
  EXPECT_TRUE(dest_->pushes.empty());
  EXPECT_EQ(mapper_.stats().held, 1u);

  mapper_.set_listed("secret/nic/", {kG1});
  settle();
  EXPECT_EQ(pushed(), std::vector<std::string>{kG1.str() + " v1"});
  EXPECT_EQ(mapper_.stats().held, 0u);
  EXPECT_EQ(mapper_.stats().delivered_late, 1u);
}

TEST_F(MapperTest, HeldObservationsOfKeysTheListingLeavesOutAreDroppedWithATrace) {
  sets_.push_back(MappingSetConfig{"secret/nic/", {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  mapper_.observe(seen(testing::path_of(kG2), 1));
  EXPECT_EQ(mapper_.stats().held, 1u);
  mapper_.set_listed("secret/nic/", {kG1});
  EXPECT_EQ(mapper_.stats().held, 0u);
  EXPECT_EQ(mapper_.stats().dropped, 1u);
  // A key in no mapping's folder is not held at all.
  mapper_.observe(seen("secret/other/" + kG1.str(), 1));
  mapper_.observe(seen("secret/nic/deeper/" + kG1.str(), 1));
  EXPECT_EQ(mapper_.stats().held, 0u);
  EXPECT_EQ(mapper_.stats().dropped, 3u);
}

TEST_F(MapperTest, AnExplicitMappingWinsOverASetAndRemovedSetsForgetTheirMembers) {
  mappings_.push_back(MappingConfig{kG1, "secret/explicit/" + kG1.str(), {"fake"}, "user", "pass"});
  sets_.push_back(MappingSetConfig{"secret/nic/", {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  mapper_.set_listed("secret/nic/", {kG1, kG2});
  auto snap = engine_.snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].config.source.path, "secret/explicit/" + kG1.str());
  EXPECT_EQ(snap[0].config.source.username_field, "user");
  EXPECT_EQ(snap[1].config.source.path, testing::path_of(kG2));

  std::vector<MappingSetConfig> none;
  ASSERT_TRUE(mapper_.configure(mappings_, none));
  EXPECT_EQ(engine_.snapshot().size(), 1u);
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  EXPECT_EQ(engine_.snapshot().size(), 1u) << "a set has no members until it is listed again";
}

TEST_F(MapperTest, TheGstinsOfAChangedKeyComeFromItsPairsOrItsNameInASetFolder) {
  // What a standby hands the leader for an audit hint: the GSTINs of the pairs reading the key
  // (an explicit mapping may name a key that is not called after its GSTIN), or, under a mapping
  // set nobody has listed here, the key's own name; nothing for a key no mapping watches.
  const std::string own = "kv/prod/nic/irp4-delhi";
  mappings_.push_back(MappingConfig{kG1, own, {"fake"}});
  sets_.push_back(MappingSetConfig{"secret/nic/", {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  EXPECT_EQ(mapper_.gstins_of(own, GstinMode::strict), std::vector<Gstin>{kG1});
  EXPECT_EQ(mapper_.gstins_of(testing::path_of(kG2), GstinMode::strict), std::vector<Gstin>{kG2});
  EXPECT_TRUE(mapper_.gstins_of("secret/nic/not-a-gstin", GstinMode::strict).empty());
  EXPECT_TRUE(mapper_.gstins_of("secret/elsewhere/" + kG2.str(), GstinMode::strict).empty());
  EXPECT_TRUE(mapper_.gstins_of("secret/nic/deeper/" + kG2.str(), GstinMode::strict).empty());
  // Once listed, the set's pair answers for its key.
  mapper_.set_listed("secret/nic/", {kG2});
  EXPECT_EQ(mapper_.gstins_of(testing::path_of(kG2), GstinMode::strict), std::vector<Gstin>{kG2});
}

TEST_F(MapperTest, AMappingToAnUnknownDestinationKeepsTheMappingsInEffect) {
  mappings_.push_back(MappingConfig{kG1, testing::path_of(kG1), {"fake"}});
  ASSERT_TRUE(mapper_.configure(mappings_, sets_));
  MappingList wrong;
  wrong.push_back(MappingConfig{kG2, testing::path_of(kG2), {"nowhere"}});
  auto r = mapper_.configure(wrong, sets_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nowhere"), std::string::npos);
  EXPECT_EQ(mapper_.watched_keys(), std::vector<std::string>{testing::path_of(kG1)});
  ASSERT_EQ(engine_.snapshot().size(), 1u);
}

}  // namespace
}  // namespace nicsync::sync
