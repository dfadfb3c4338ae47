// The version identity: lineages kept as the exact text Vault sent, compared for equality only,
// whether short enough to be held in place or not; fingerprints as bytes with hex at the edges.
#include "nicsync/core/version.hpp"

#include <gtest/gtest.h>

namespace nicsync {
namespace {

TEST(Lineage, KeepsTheExactTextShortOrLong) {
  const std::string vault = "2026-11-25T23:30:00.123456789Z";        // 30 bytes: held in place
  const std::string offset = "2026-11-26T05:00:00.123456789+05:30";  // longer: on the heap
  const std::string odd(300, 'x');
  for (const std::string& text : {std::string(), vault, offset, odd, std::string(31, 'a'), std::string(30, 'b')}) {
    Lineage a(text);
    EXPECT_EQ(a.text(), text);
    EXPECT_EQ(a.empty(), text.empty());
    Lineage copy = a;
    EXPECT_EQ(copy, a);
    EXPECT_EQ(copy.text(), text);
    Lineage moved = std::move(copy);
    EXPECT_EQ(moved.text(), text);
    Lineage assigned(std::string(40, 'z'));
    assigned = a;
    EXPECT_EQ(assigned.text(), text);
    assigned = Lineage("short");
    EXPECT_EQ(assigned.text(), "short");
    assigned = std::move(moved);
    EXPECT_EQ(assigned.text(), text);
  }
}

TEST(Lineage, IsComparedAsTextNeverAsTime) {
  EXPECT_EQ(Lineage("2026-01-01T00:00:00.5Z"), Lineage("2026-01-01T00:00:00.5Z"));
  EXPECT_NE(Lineage("2026-01-01T00:00:00.5Z"), Lineage("2026-01-01T00:00:00.500Z")) << "the same moment, other text";
  EXPECT_NE(Lineage(std::string(40, 'a')), Lineage(std::string(41, 'a')));
  EXPECT_EQ(Lineage(), Lineage(""));
}

TEST(VersionId, SameVersionIgnoresTheState) {
  const VersionId present{3, Lineage("L")};
  const VersionId deleted{3, Lineage("L"), SourceState::deleted};
  EXPECT_TRUE(present.same_version(deleted));
  EXPECT_NE(present, deleted);
  EXPECT_FALSE(present.same_version(VersionId{3, Lineage("M")}));
  EXPECT_FALSE(present.same_version(VersionId{4, Lineage("L")}));
}

TEST(Fingerprint, HexRoundTrips) {
  Fingerprint::Bytes b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<unsigned char>(i * 7);
  const Fingerprint f(b);
  EXPECT_EQ(f.hex().size(), 64u);
  EXPECT_EQ(Fingerprint::from_hex(f.hex()), f);
  EXPECT_FALSE(Fingerprint::from_hex(f.hex().substr(1)));
  EXPECT_FALSE(Fingerprint::from_hex(std::string(64, 'g')));
  EXPECT_EQ(Fingerprint::from_hex(std::string(64, 'A'))->hex(), std::string(64, 'a'));
}

}  // namespace
}  // namespace nicsync
