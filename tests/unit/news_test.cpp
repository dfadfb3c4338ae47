// "Is this observation news for this pair?": the one rule the engine and `sync --dry-run` share.
#include "nicsync/sync/news.hpp"

#include <gtest/gtest.h>

namespace nicsync::sync {
namespace {

using ledger::PairState;

const Lineage kFirst("2026-01-01T00:00:00.5Z");
const Lineage kRecreated("2026-02-01T00:00:00Z");

Observation seen(std::int64_t number, Lineage lineage = kFirst, SourceState state = SourceState::present,
                 bool force = false) {
  Observation o;
  o.path = "secret/nic/07AAFCD5862R1ZX";
  o.version = VersionId{number, std::move(lineage), state};
  o.force = force;
  return o;
}

TEST(News, AFirstVersionIsNews) { EXPECT_EQ(is_news(seen(1), PairPosition{}), News::version); }

TEST(News, InOneLineageHigherIsNewsLowerAndEqualAreNot) {
  const VersionId applied{3, kFirst};
  PairPosition p{PairState::in_sync, &applied};
  EXPECT_EQ(is_news(seen(4), p), News::version);
  EXPECT_EQ(is_news(seen(3), p), News::none);
  EXPECT_EQ(is_news(seen(2), p), News::none);
}

TEST(News, ADifferentLineageIsNewsWhateverItsNumberOrTime) {
  const VersionId applied{3, kRecreated};
  PairPosition p{PairState::in_sync, &applied};
  EXPECT_EQ(is_news(seen(1, kFirst), p), News::version) << "lineages are never ordered";
  EXPECT_EQ(is_news(seen(1, Lineage("2026-01-01T00:00:00.500Z")), PairPosition{PairState::in_sync, &applied}),
            News::version);
  const VersionId same_moment{1, kFirst};
  // The same moment written another way is another text: another lineage.
  EXPECT_EQ(is_news(seen(1, Lineage("2026-01-01T00:00:00.500Z")), PairPosition{PairState::in_sync, &same_moment}),
            News::version);
}

TEST(News, AVersionUnderWayIsComparedInsteadOfTheAppliedOne) {
  const VersionId applied{1, kFirst};
  const VersionId target{3, kFirst};
  PairPosition p{PairState::pending, &applied, nullptr, &target};
  EXPECT_EQ(is_news(seen(2), p), News::none) << "older than the one under way";
  EXPECT_EQ(is_news(seen(3), p), News::none);
  EXPECT_EQ(is_news(seen(4), p), News::version);
  // A forced push under way is not undone by a plain observation of the same version.
  p.target_forced = true;
  EXPECT_EQ(is_news(seen(3), p), News::version);
}

TEST(News, ParkedAndRejectedVersionsWaitForADifferentOne) {
  const VersionId applied{1, kFirst};
  const VersionId pending{2, kFirst};
  for (PairState s : {PairState::parked, PairState::rejected}) {
    PairPosition p{s, &applied, &pending};
    EXPECT_EQ(is_news(seen(2), p), News::none) << ledger::to_string(s);
    EXPECT_EQ(is_news(seen(3), p), News::version) << ledger::to_string(s);
    EXPECT_EQ(is_news(seen(2, kRecreated), p), News::version) << ledger::to_string(s);
  }
  // A retrying version with nothing working on it (no target): seeing it again is news.
  PairPosition retrying{PairState::retrying, &applied, &pending};
  EXPECT_EQ(is_news(seen(2), retrying), News::version);
}

TEST(News, DeletionsAreNewsUntilThePairStandsAsDeleted) {
  const VersionId applied{2, kFirst};
  PairPosition p{PairState::in_sync, &applied};
  EXPECT_EQ(is_news(seen(2, kFirst, SourceState::deleted), p), News::version);
  EXPECT_EQ(is_news(seen(2, kFirst, SourceState::destroyed), p), News::version);
  PairPosition deleted{PairState::source_deleted, &applied};
  EXPECT_EQ(is_news(seen(2, kFirst, SourceState::deleted), deleted), News::none);
  EXPECT_EQ(is_news(seen(2, kFirst, SourceState::missing), deleted), News::none);
  deleted.delivering = true;
  EXPECT_EQ(is_news(seen(2, kFirst, SourceState::deleted), deleted), News::version);
  // Readable again (undeleted): the same version is news for a pair that stands as deleted.
  PairPosition undeleted{PairState::source_deleted, &applied};
  EXPECT_EQ(is_news(seen(2), undeleted), News::version);
  // A target that is a deletion: any readable version is news.
  const VersionId gone{2, kFirst, SourceState::deleted};
  PairPosition deleting{PairState::in_sync, &applied, nullptr, &gone};
  EXPECT_EQ(is_news(seen(2), deleting), News::version);
}

TEST(News, ForceMakesAReadableVersionNews) {
  const VersionId applied{3, kFirst};
  PairPosition p{PairState::in_sync, &applied};
  EXPECT_EQ(is_news(seen(3, kFirst, SourceState::present, true), p), News::version);
}

TEST(News, KvV1OnlyTellsByContent) {
  Observation o = seen(0, Lineage());
  o.kv = KvVersion::v1;
  EXPECT_EQ(is_news(o, PairPosition{}), News::version) << "nothing applied yet";
  const VersionId applied{0, Lineage("fingerprint-text")};
  EXPECT_EQ(is_news(o, PairPosition{PairState::in_sync, &applied}), News::content_check);
}

}  // namespace
}  // namespace nicsync::sync
