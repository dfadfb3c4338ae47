// systemd/nicsyncd.service as systemd sees it, offline (no running systemd needed):
// `systemd-analyze security --offline=true` must rate it 2.0 or lower and match the figure its
// header states; `systemd-analyze verify` must accept it with the built nicsyncd as ExecStart
// and without a single warning; systemd/nicsync.sysusers must create the user the unit names.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;

std::string source_file(const std::string& relative) {
  const char* dir = std::getenv("NICSYNC_SOURCE_DIR");
  if (dir == nullptr) throw std::runtime_error("NICSYNC_SOURCE_DIR is not set (run through ctest)");
  return std::string(dir) + "/" + relative;
}

/// Full path of a program on PATH, or empty.
std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const auto end = std::min(dirs.find(':', start), dirs.size());
    const auto candidate = std::filesystem::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return {};
}

struct Run {
  int code;
  std::string output;
};

Run run(std::vector<std::string> argv) {
  // SYSTEMD_LOG_LEVEL: only what systemd-analyze reports about the unit, no debug chatter from
  // the environment; SYSTEMD_COLORS/PAGER: plain text to parse.
  testing::Process p(
      {.argv = std::move(argv), .env = {"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "SYSTEMD_LOG_LEVEL=notice"}});
  auto code = p.wait(60s);
  if (!code) throw std::runtime_error("systemd-analyze did not finish within 60 s");
  return {*code, p.output()};
}

class SystemdUnit : public ::testing::Test {
 protected:
  void SetUp() override {
    analyze_ = on_path("systemd-analyze");
    // Not a skip: CI installs systemd (scripts/deps), and a check that silently does not run
    // would let the unit rot.
    ASSERT_FALSE(analyze_.empty()) << "systemd-analyze not found: install the systemd package (scripts/deps)";
  }
  std::string analyze_;
  std::string unit_ = source_file("systemd/nicsyncd.service");
};

TEST_F(SystemdUnit, SecurityExposureIsAtMostTwoAndMatchesTheHeader) {
  const auto r = run({analyze_, "security", "--offline=true", "--no-pager", unit_});
  ASSERT_EQ(r.code, 0) << r.output;
  const std::regex overall(R"(Overall exposure level for nicsyncd\.service: ([0-9]+\.[0-9]+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, overall)) << r.output;
  const double exposure = std::stod(m[1].str());
  EXPECT_LE(exposure, 2.0) << r.output;

  // The header comment quotes the figure; keep it true.
  const auto text = testing::read_file(unit_);
  const std::regex stated(R"(rates this unit ([0-9]+\.[0-9]+))");
  std::smatch s;
  ASSERT_TRUE(std::regex_search(text, s, stated)) << "the unit's header must state its exposure figure";
  EXPECT_EQ(s[1].str(), m[1].str()) << "update the figure at the top of systemd/nicsyncd.service";
}

TEST_F(SystemdUnit, VerifyAcceptsItWithoutWarnings) {
  // verify checks that ExecStart= is executable: point it at the daemon just built. Everything
  // else is the unit as installed. It works offline (no systemd running, as in this container
  // and CI); --recursive-errors=no keeps the host's own units (network-online.target, ...) out
  // of the verdict.
  const auto daemon = testing::built_program("nicsyncd");
  ASSERT_EQ(::access(daemon.c_str(), X_OK), 0) << daemon << " is not built";
  auto text = testing::read_file(unit_);
  const std::string installed = "ExecStart=/usr/sbin/nicsyncd ";
  const auto at = text.find(installed);
  ASSERT_NE(at, std::string::npos) << "ExecStart= no longer runs /usr/sbin/nicsyncd";
  text.replace(at, installed.size(), "ExecStart=" + daemon + " ");
  testing::TempDir dir;
  const auto copy = dir.file("nicsyncd.service");
  testing::write_file(copy, text);

  const auto r = run({analyze_, "verify", "--man=no", "--recursive-errors=no", copy});
  EXPECT_EQ(r.code, 0) << r.output;
  // verify exits 0 on unknown keys and unparsable values and only prints them: any output is
  // a finding.
  EXPECT_EQ(r.output, "") << "systemd-analyze verify complained about the unit";
}

TEST_F(SystemdUnit, VerifyCatchesABrokenDirective) {
  // The check above can fail: a typo in a directive is reported.
  testing::TempDir dir;
  auto text = testing::read_file(unit_);
  text.replace(text.find("ExecStart=/usr/sbin/nicsyncd "), std::string("ExecStart=/usr/sbin/nicsyncd ").size(),
               "ExecStart=" + testing::built_program("nicsyncd") + " ");
  text.replace(text.find("ProtectHome=yes"), std::string("ProtectHome=yes").size(), "ProtectHomes=yes");
  const auto copy = dir.file("nicsyncd.service");
  testing::write_file(copy, text);
  const auto r = run({analyze_, "verify", "--man=no", "--recursive-errors=no", copy});
  EXPECT_NE(r.output.find("ProtectHomes"), std::string::npos) << r.output;
}

TEST_F(SystemdUnit, SysusersCreatesTheUserAndGroupTheUnitRunsAs) {
  const auto sysusers = on_path("systemd-sysusers");
  ASSERT_FALSE(sysusers.empty()) << "systemd-sysusers not found: install the systemd package (scripts/deps)";
  testing::TempDir root;
  std::filesystem::create_directories(root.path() / "etc");
  const auto r = run({sysusers, "--root=" + root.path().string(), source_file("systemd/nicsync.sysusers")});
  ASSERT_EQ(r.code, 0) << r.output;
  const auto passwd = testing::read_file((root.path() / "etc/passwd").string());
  const auto group = testing::read_file((root.path() / "etc/group").string());
  EXPECT_NE(passwd.find("nicsync:x:"), std::string::npos) << passwd;
  EXPECT_NE(passwd.find(":/var/lib/nicsync:/usr/sbin/nologin"), std::string::npos) << passwd;
  EXPECT_NE(group.find("nicsync:x:"), std::string::npos) << group;
  const auto unit = testing::read_file(unit_);
  EXPECT_NE(unit.find("\nUser=nicsync\n"), std::string::npos);
  EXPECT_NE(unit.find("\nGroup=nicsync\n"), std::string::npos);
}

}  // namespace
}  // namespace nicsync
