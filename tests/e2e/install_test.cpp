// `cmake --install` of this build tree: the daemon, its manual pages, the systemd unit (pointing
// at the installed binary and config, and waiting for that config), the sysusers snippet and the
// example config land where the unit and the README say; an operator's edited config survives a
// reinstall; a packager's `DESTDIR=… --prefix /usr` install gives /etc/nicsync and the unit
// unchanged; the installed binary runs.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

#ifndef NICSYNC_CMAKE_COMMAND
#error "tests/CMakeLists.txt defines NICSYNC_CMAKE_COMMAND"
#endif

namespace nicsync {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string source_file(const std::string& relative) {
  const char* dir = std::getenv("NICSYNC_SOURCE_DIR");
  if (dir == nullptr) throw std::runtime_error("NICSYNC_SOURCE_DIR is not set (run through ctest)");
  return std::string(dir) + "/" + relative;
}

std::string binary_dir() {
  const char* dir = std::getenv("NICSYNC_BINARY_DIR");
  if (dir == nullptr) throw std::runtime_error("NICSYNC_BINARY_DIR is not set (run through ctest)");
  return dir;
}

struct Run {
  int code;
  std::string output;
};

Run install(const std::string& prefix, std::vector<std::string> env = {}) {
  testing::Process p({.argv = {NICSYNC_CMAKE_COMMAND, "--install", binary_dir(), "--prefix", prefix},
                      .env = std::move(env),
                      .unset_env = {"DESTDIR"}});
  auto code = p.wait(120s);
  if (!code) throw std::runtime_error("cmake --install did not finish within 120 s");
  return {*code, p.output()};
}

/// Every regular file and symlink under `root`, as paths relative to it, sorted.
std::vector<std::string> files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() || e.is_symlink()) out.push_back(fs::relative(e.path(), root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool executable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

TEST(Install, PutsDaemonUnitSysusersAndConfigUnderThePrefix) {
  testing::TempDir dir;
  const fs::path prefix = dir.path() / "usr-local";
  const auto r = install(prefix.string());
  ASSERT_EQ(r.code, 0) << r.output;

  // Everything under the prefix (a DESTINATION fixed at configure time would miss it).
  EXPECT_EQ(files_under(prefix), (std::vector<std::string>{
                                     "etc/nicsync/nicsyncd.toml",
                                     "lib/systemd/system/nicsyncd.service",
                                     "lib/sysusers.d/nicsync.conf",
                                     "sbin/nicsyncd",
                                     "share/doc/nicsync/README.md",
                                     "share/doc/nicsync/nicsyncd.toml",
                                     "share/man/man5/nicsyncd.toml.5.gz",
                                     "share/man/man8/nicsyncd.8.gz",
                                 }));
  EXPECT_TRUE(executable(prefix / "sbin/nicsyncd"));
  EXPECT_EQ(testing::read_file((prefix / "etc/nicsync/nicsyncd.toml").string()),
            testing::read_file(source_file("config/nicsyncd.toml")));
  EXPECT_EQ(testing::read_file((prefix / "share/doc/nicsync/nicsyncd.toml").string()),
            testing::read_file(source_file("config/nicsyncd.toml")));
  EXPECT_EQ(testing::read_file((prefix / "lib/sysusers.d/nicsync.conf").string()),
            testing::read_file(source_file("systemd/nicsync.sysusers")));
  EXPECT_EQ(fs::status(prefix / "etc/nicsync/nicsyncd.toml").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);

  // The unit starts the binary and config this install put in place, and loads the AppRole
  // credentials from the same config directory; the rest is the unit as written.
  const auto unit = testing::read_file((prefix / "lib/systemd/system/nicsyncd.service").string());
  const std::string etc = (prefix / "etc/nicsync").string();
  EXPECT_NE(
      unit.find("\nExecStart=" + (prefix / "sbin/nicsyncd").string() + " run --config " + etc + "/nicsyncd.toml\n"),
      std::string::npos)
      << unit;
  EXPECT_NE(unit.find("\nLoadCredential=approle-role-id:" + etc + "/approle-role-id\n"), std::string::npos);
  EXPECT_NE(unit.find("\nLoadCredential=approle-secret-id:" + etc + "/approle-secret-id\n"), std::string::npos);
  EXPECT_NE(unit.find("\nConditionPathExists=" + etc + "/nicsyncd.toml\n"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("\nExecStart=/usr/sbin/"), std::string::npos);
  auto original = testing::read_file(source_file("systemd/nicsyncd.service"));
  EXPECT_EQ(std::count(unit.begin(), unit.end(), '\n'), std::count(original.begin(), original.end(), '\n'));

  // systemd accepts the installed unit as it is (verify checks that ExecStart= is executable).
  testing::Process verify({.argv = {"/usr/bin/systemd-analyze", "verify", "--man=no", "--recursive-errors=no",
                                    (prefix / "lib/systemd/system/nicsyncd.service").string()},
                           .env = {"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_LEVEL=notice"}});
  EXPECT_EQ(verify.wait(60s), 0) << verify.output();
  EXPECT_EQ(verify.output(), "") << "systemd-analyze verify complained about the installed unit";

  // The installed binary runs, and the installed example config passes `check` once the
  // AppRole credential files it names exist (systemd's LoadCredential= directory).
  testing::Process version({.argv = {(prefix / "sbin/nicsyncd").string(), "version"}});
  ASSERT_EQ(version.wait(20s), 0) << version.output();
  EXPECT_TRUE(version.output().starts_with("nicsyncd 0.")) << version.output();
  testing::TempDir credentials;
  testing::write_file(credentials.file("approle-role-id"), "role-id-for-the-install-test\n");
  testing::write_file(credentials.file("approle-secret-id"), "secret-id-for-the-install-test\n");
  testing::Process check(
      {.argv = {(prefix / "sbin/nicsyncd").string(), "check", "--config", etc + "/nicsyncd.toml"},
       .env = {"CREDENTIALS_DIRECTORY=" + credentials.path().string(), "STATE_DIRECTORY=" + dir.file("state")},
       .unset_env = {"VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "JOURNAL_STREAM"}});
  EXPECT_EQ(check.wait(20s), 0) << check.output();
}

TEST(Install, AReinstallKeepsTheOperatorsConfig) {
  testing::TempDir dir;
  const fs::path prefix = dir.path() / "opt";
  ASSERT_EQ(install(prefix.string()).code, 0);
  const auto config = (prefix / "etc/nicsync/nicsyncd.toml").string();
  testing::write_file(config, "# edited by the operator\n");
  const auto again = install(prefix.string());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(testing::read_file(config), "# edited by the operator\n");
  EXPECT_NE(again.output.find("Kept: " + config), std::string::npos) << again.output;
  // The example stays up to date next to the docs.
  EXPECT_EQ(testing::read_file((prefix / "share/doc/nicsync/nicsyncd.toml").string()),
            testing::read_file(source_file("config/nicsyncd.toml")));
}

TEST(Install, PackagersPrefixUsrGivesEtcNicsyncAndTheUnitUnchanged) {
  testing::TempDir dir;
  const fs::path root = dir.path() / "pkgroot";
  const auto r = install("/usr", {"DESTDIR=" + root.string()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(files_under(root), (std::vector<std::string>{
                                   "etc/nicsync/nicsyncd.toml",
                                   "usr/lib/systemd/system/nicsyncd.service",
                                   "usr/lib/sysusers.d/nicsync.conf",
                                   "usr/sbin/nicsyncd",
                                   "usr/share/doc/nicsync/README.md",
                                   "usr/share/doc/nicsync/nicsyncd.toml",
                                   "usr/share/man/man5/nicsyncd.toml.5.gz",
                                   "usr/share/man/man8/nicsyncd.8.gz",
                               }));
  EXPECT_EQ(testing::read_file((root / "usr/lib/systemd/system/nicsyncd.service").string()),
            testing::read_file(source_file("systemd/nicsyncd.service")));
  EXPECT_TRUE(executable(root / "usr/sbin/nicsyncd"));
}

}  // namespace
}  // namespace nicsync
