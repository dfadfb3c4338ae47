// What the real daemon tells an operator about a failing pair and an old credential: the hint
// and next action of the error in /v1/status and in `nicsyncd status`, and with
// [sync] max_credential_age a warning, the pair marked too old and nicsync_credentials_too_old.
#include <gtest/gtest.h>

#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::eventually;
using testing::World;
using testing::world_gstin;

TEST(StatusHintsE2E, RejectedPairSaysWhatToDoAndOldCredentialsWarn) {
  World world;
  world.seed_cleartax_secret();
  testing::TempDir dir;
  const std::string good = world_gstin(10);
  const std::string bad = world_gstin(11);
  world.put_credential(good, "API_GOOD", "Good&<pw>1");
  world.put_credential(bad, "API_BAD", "Bad&<pw>1");
  world.call([&] { world.cleartax().add_bad_credentials({.gstin = bad, .code = "1019"}); });
  // Every credential is older than a second almost at once.
  Daemon d(world, dir, {.gstins = {good, bad}, .sync_extra = "max_credential_age = \"1s\"\n"});
  d.start();
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  auto rejected = [&] {
    auto p = d.pair_status(bad, "cleartax");
    return p && p->at("state").as_string() == "rejected";
  };
  ASSERT_TRUE(eventually(rejected, 20s)) << d.process().output();
  const auto p = *d.pair_status(bad, "cleartax");
  const auto& err = p.at("last_error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "dest_credential_rejected");
  EXPECT_NE(std::string(err.at("next_action").as_string()).find("e-invoice portal"), std::string::npos);
  EXPECT_FALSE(err.at("hint").as_string().empty());
  EXPECT_EQ(p.at("vault_version").as_int64(), 1);
  EXPECT_EQ(p.at("versions_behind").as_int64(), 1) << "never delivered";

  auto too_old = [&] {
    auto r = d.request("GET", "/metrics");
    return r && r->body.find("\nnicsync_credentials_too_old 2\n") != std::string::npos;
  };
  ASSERT_TRUE(eventually(too_old, 20s)) << d.request("GET", "/metrics")->body;
  const auto st = d.get_json("/v1/status");
  ASSERT_TRUE(st);
  bool warned = false;
  for (const auto& w : st->at("warnings").as_array()) {
    warned |= w.as_string().find("max_credential_age") != boost::json::string::npos;
  }
  EXPECT_TRUE(warned) << boost::json::serialize(*st);
  EXPECT_TRUE(d.pair_status(good, "cleartax")->at("too_old").as_bool());

  testing::Process status({.argv = {testing::built_program("nicsyncd"), "status", "--url", d.url("")}});
  ASSERT_EQ(status.wait(20s), 0) << status.output();
  const std::string out = status.output();
  EXPECT_NE(out.find("What to do:"), std::string::npos) << out;
  EXPECT_NE(out.find("dest_credential_rejected (1 pair)"), std::string::npos) << out;
  EXPECT_NE(out.find("-> fix the password at the e-invoice portal"), std::string::npos) << out;
  EXPECT_NE(out.find("(too old)"), std::string::npos) << out;
  EXPECT_EQ(out.find("Bad&<pw>1"), std::string::npos);
}

}  // namespace
}  // namespace nicsync
