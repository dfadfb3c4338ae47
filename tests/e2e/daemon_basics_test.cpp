// The real nicsyncd binary as a process: it serves /healthz, stops on SIGTERM, and refuses
// broken configuration with the documented exit code and a message naming file and line.
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

TEST(DaemonBasics, ServesHealthzAndStopsOnSigterm) {
  testing::TempDir dir;
  const auto port = testing::free_port();
  const std::string config = dir.file("nicsyncd.toml");
  testing::write_file(config, "[api]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n[log]\nlevel = \"info\"\n");
  testing::Process daemon({.argv = {testing::built_program("nicsyncd"), "run", "--config", config}});
  ASSERT_TRUE(daemon.wait_for_output("listening on", 10s)) << daemon.output();

  boost::asio::io_context io;
  http::Client client(io.get_executor());
  http::Request r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
  auto resp = testing::run_for(io, client.request(r), 10s);
  ASSERT_TRUE(resp) << resp.error().describe();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "ok\n");

  daemon.signal(SIGTERM);
  auto code = daemon.wait(10s);
  ASSERT_TRUE(code.has_value()) << "nicsyncd did not exit after SIGTERM\n" << daemon.output();
  EXPECT_EQ(*code, 0) << daemon.output();
}

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
