// The real nicsyncd binary as a process: it refuses broken configuration with the documented exit code and a message
// naming file and line.
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;

TEST(DaemonBasics, BrokenConfigExitsWithCode3AndNamesTheLine) {
  testing::TempDir dir;
  const std::string config = dir.file("bad.toml");
  testing::write_file(config, "[api]\nlisten = \"127.0.0.1:1\"\nlistne = true\n");
  testing::Process daemon({.argv = {testing::built_program("nicsyncd"), "run", "--config", config}});
  auto code = daemon.wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3);
  EXPECT_NE(daemon.output().find(config + ":3: api.listne: unknown key"), std::string::npos) << daemon.output();
}

TEST(DaemonBasics, VersionAndUsage) {
  testing::Process version({.argv = {testing::built_program("nicsyncd"), "version"}});
  ASSERT_EQ(version.wait(10s), 0);
  EXPECT_NE(version.output().find("nicsyncd 0."), std::string::npos) << version.output();
  testing::Process usage({.argv = {testing::built_program("nicsyncd"), "frobnicate"}});
  EXPECT_EQ(usage.wait(10s), 2);
}

}  // namespace
}  // namespace nicsync
