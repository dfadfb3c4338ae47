// The keys of a shared ledger: the keys file's format and checks, and AES-256-GCM sealing of
// what the ledger keeps secret.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "nicsync/ledger/keys.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::ledger {
namespace {

TEST(LedgerKeys, TheFileRoundTripsAndNamesNoKeyInItsErrors) {
  auto keys = LedgerKeys::generate();
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->fingerprint.size(), 32u);
  EXPECT_EQ(keys->sealing.size(), 32u);
  EXPECT_FALSE(keys->fingerprint == keys->sealing);
  const std::string text = keys->to_text();
  auto back = LedgerKeys::parse(text, "keys");
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_TRUE(back->fingerprint == keys->fingerprint);
  EXPECT_TRUE(back->sealing == keys->sealing);

  // A stray line is refused by its line number, without being quoted.
  auto stray = LedgerKeys::parse(text + "oops secret-looking-value\n", "keys");
  ASSERT_FALSE(stray);
  EXPECT_NE(stray.error().message.find("keys:5"), std::string::npos) << stray.error().message;
  EXPECT_EQ(stray.error().message.find("secret-looking-value"), std::string::npos);
  EXPECT_FALSE(LedgerKeys::parse("fingerprint_key = AAAA\nsealing_key = AAAA\n", "keys"));
  EXPECT_FALSE(LedgerKeys::parse("# only a comment\n", "keys"));
}

TEST(LedgerKeys, GenerateKeepsAFingerprintKeyInUse) {
  const Secret old(std::string(32, '\x5a'));
  auto keys = LedgerKeys::generate(&old);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->fingerprint == old);
  const Secret short_key("short");
  EXPECT_FALSE(LedgerKeys::generate(&short_key));
}

TEST(LedgerKeys, AFileOthersCanReadIsRefused) {
  testing::TempDir dir;
  const auto path = dir.path() / "ledger-keys";
  auto keys = LedgerKeys::generate();
  ASSERT_TRUE(keys);
  std::ofstream(path) << keys->to_text();
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::others_read);
  auto refused = read_keys_file(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos) << refused.error().message;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto read = read_keys_file(path);
  ASSERT_TRUE(read) << read.error().describe();
  EXPECT_TRUE(read->sealing == keys->sealing);
  EXPECT_FALSE(read_keys_file(dir.path() / "missing"));
}

TEST(Sealer, SealsAndOpensOnlyWithTheSameKeyAndName) {
  auto keys = LedgerKeys::generate();
  ASSERT_TRUE(keys);
  auto sealer = Sealer::with_key(keys->sealing);
  ASSERT_TRUE(sealer);
  const std::string token = "ct-access-token-Pl4nted";
  auto sealed = sealer->seal("cleartax-prod", token);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->find(token), std::string::npos) << "no plaintext in the sealed form";
  auto again = sealer->seal("cleartax-prod", token);
  ASSERT_TRUE(again);
  EXPECT_NE(*sealed, *again) << "a fresh nonce each time";
  auto opened = sealer->open("cleartax-prod", *sealed);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened->expose(), token);

  EXPECT_FALSE(sealer->open("cleartax-test", *sealed)) << "the name is authenticated";
  std::string flipped = *sealed;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_FALSE(sealer->open("cleartax-prod", flipped));
  EXPECT_FALSE(sealer->open("cleartax-prod", sealed->substr(0, 10)));
  auto other = LedgerKeys::generate();
  ASSERT_TRUE(other);
  auto wrong = Sealer::with_key(other->sealing)->open("cleartax-prod", *sealed);
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(Errc::ledger_corrupt));
  EXPECT_NE(wrong.error().message.find("same keys file"), std::string::npos);
  EXPECT_FALSE(Sealer::with_key(Secret("too short")));
}

}  // namespace
}  // namespace nicsync::ledger
