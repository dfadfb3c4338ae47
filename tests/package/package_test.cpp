// The Debian package as an operator gets it (ctest label "package", run on the release build by
// scripts/test --package). The fixture test package.build runs `cpack -G DEB` into
// <build>/package-test; these tests read what it made with dpkg-deb, man and lintian, and run
// its maintainer scripts against stand-ins for the systemd tools. Installing it for real is
// scripts/package --check-install (CI's last step: it changes the machine).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nicsync/core/build_info.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

#include <sys/stat.h>

namespace nicsync {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string env_dir(const char* name) {
  const char* dir = std::getenv(name);
  if (dir == nullptr) throw std::runtime_error(std::string(name) + " is not set (run through ctest)");
  return dir;
}
std::string source_file(const std::string& relative) { return env_dir("NICSYNC_SOURCE_DIR") + "/" + relative; }
fs::path package_dir() { return fs::path(env_dir("NICSYNC_BINARY_DIR")) / "package-test"; }

/// Full path of a program on PATH; throws if there is none (CI installs them: scripts/deps).
std::string program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const auto end = std::min(dirs.find(':', start), dirs.size());
    const auto candidate = fs::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  throw std::runtime_error(name + " not found on PATH: install it (scripts/deps)");
}

struct Run {
  int code;
  std::string output;  ///< stdout and stderr as they came
};

Run run(std::vector<std::string> argv, std::vector<std::string> env = {}, std::chrono::seconds timeout = 120s) {
  argv[0] = program(argv[0]);
  testing::Process p({.argv = std::move(argv), .env = std::move(env)});
  const auto code = p.wait(timeout);
  if (!code) throw std::runtime_error("a command did not finish in time: " + p.output());
  return {*code, p.output()};
}

/// Runs a shell command line (for redirections).
Run shell(const std::string& command, std::vector<std::string> env = {}) {
  return run({"sh", "-c", command}, std::move(env));
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string version() { return build_info::kVersion; }

std::string architecture() {
  auto r = run({"dpkg", "--print-architecture"});
  if (r.code != 0) throw std::runtime_error(r.output);
  return r.output.substr(0, r.output.find('\n'));
}

/// The .deb made by package.build, unpacked once per test into a temporary directory.
class Deb : public ::testing::Test {
 protected:
  void SetUp() override {
    deb_ = package_dir() / ("nicsync_" + version() + "_" + architecture() + ".deb");
    ASSERT_TRUE(fs::exists(deb_)) << deb_ << " is missing: ctest runs package.build first (label package)";
  }
  /// The package's files under a fresh root (dpkg-deb -x).
  const fs::path& root() {
    if (root_.empty()) {
      root_ = dir_.path() / "root";
      const auto r = run({"dpkg-deb", "-x", deb_.string(), root_.string()});
      if (r.code != 0) throw std::runtime_error(r.output);
    }
    return root_;
  }
  /// The control members (dpkg-deb -e).
  const fs::path& control() {
    if (control_.empty()) {
      control_ = dir_.path() / "control";
      const auto r = run({"dpkg-deb", "-e", deb_.string(), control_.string()});
      if (r.code != 0) throw std::runtime_error(r.output);
    }
    return control_;
  }
  std::string field(const std::string& name) {
    const auto r = run({"dpkg-deb", "-f", deb_.string(), name});
    EXPECT_EQ(r.code, 0) << r.output;
    auto value = r.output;
    while (!value.empty() && value.back() == '\n') value.pop_back();
    return value;
  }
  /// A gzipped file of the package, uncompressed.
  std::string gunzip(const std::string& relative) {
    const auto r = run({"gzip", "-dc", (root() / relative).string()});
    EXPECT_EQ(r.code, 0) << r.output;
    return r.output;
  }
  std::string file(const std::string& relative) { return testing::read_file((root() / relative).string()); }

  testing::TempDir dir_{"nicsync-deb"};
  fs::path deb_;
  fs::path root_;
  fs::path control_;
};

TEST_F(Deb, ControlFieldsNameThePackageVersionAndArchitecture) {
  EXPECT_EQ(field("Package"), "nicsync");
  EXPECT_EQ(field("Version"), version());
  EXPECT_EQ(field("Architecture"), architecture());
  EXPECT_EQ(field("Section"), "admin");
  EXPECT_EQ(field("Priority"), "optional");
  EXPECT_NE(field("Maintainer").find('@'), std::string::npos);
  const auto description = field("Description");
  EXPECT_TRUE(description.starts_with("NIC e-invoicing API credentials from Vault to ClearTax\n")) << description;
  EXPECT_NE(description.find("nicsync user"), std::string::npos) << description;
  // Only one package in the output: the debug symbols are left out (CPACK_STRIP_FILES).
  std::vector<std::string> debs;
  for (const auto& e : fs::directory_iterator(package_dir())) {
    if (e.path().extension() == ".deb" || e.path().extension() == ".ddeb") debs.push_back(e.path().filename());
  }
  EXPECT_EQ(debs, std::vector<std::string>{deb_.filename().string()});
}

TEST_F(Deb, DependsOnThePackagesOfEveryLibraryTheDaemonLinks) {
  const auto depends = field("Depends");
  // Every shared library the daemon needs, by the package that holds it (what dpkg-shlibdeps
  // found), and no development package.
  const auto needed = run({"readelf", "-d", (root() / "usr/sbin/nicsyncd").string()});
  ASSERT_EQ(needed.code, 0) << needed.output;
  const std::regex soname(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  auto multiarch = run({"dpkg-architecture", "-qDEB_HOST_MULTIARCH"}).output;
  multiarch.erase(multiarch.find_last_not_of('\n') + 1);
  int libraries = 0;
  for (std::sregex_iterator it(needed.output.begin(), needed.output.end(), soname), end; it != end; ++it) {
    ++libraries;
    // "libc6:amd64: /lib/x86_64-linux-gnu/libm.so.6" (other architectures' copies left out).
    const auto owner = run({"dpkg-query", "-S", "*/" + multiarch + "/" + (*it)[1].str()});
    ASSERT_EQ(owner.code, 0) << (*it)[1] << ": " << owner.output;
    const auto package = owner.output.substr(0, owner.output.find_first_of(":,"));
    // The package, or a name it provides (libspdlog1.10 provides libspdlog1.10-fmt9, which its
    // shlibs file names).
    std::vector<std::string> names{package};
    const auto provides = run({"dpkg-query", "-W", "-f=${Provides}", package}).output;
    const std::regex provided(R"(([a-z0-9][a-z0-9.+-]*)(?: \([^)]*\))?(?:, |$))");
    for (std::sregex_iterator p(provides.begin(), provides.end(), provided), none; p != none; ++p) {
      names.push_back((*p)[1]);
    }
    const auto named = [&](const std::string& name) {
      const auto escaped = std::regex_replace(name, std::regex(R"([.+])"), R"(\$&)");
      return std::regex_search(depends, std::regex("(^|, )" + escaped + "( \\([^)]+\\))?(,|$)"));
    };
    EXPECT_TRUE(std::any_of(names.begin(), names.end(), named))
        << (*it)[1] << " comes from " << package << ", which Depends does not name: " << depends;
  }
  EXPECT_GE(libraries, 5) << needed.output;
  EXPECT_EQ(depends.find("-dev"), std::string::npos) << depends;
  // What the postinst runs to create the user.
  EXPECT_NE(depends.find("systemd | systemd-standalone-sysusers | systemd-sysusers"), std::string::npos) << depends;
}

TEST_F(Deb, HoldsExactlyTheDaemonUnitSnippetsConffileDocsAndManPages) {
  const auto r = run({"dpkg-deb", "-c", deb_.string()});
  ASSERT_EQ(r.code, 0) << r.output;
  // "-rw-r--r-- root/root  1234 2026-01-01 00:00 ./path"
  const std::regex entry(R"(^([-dl][rwxsStT-]{9}) (\S+)\s+\d+ \S+ \S+ \./(.*)$)");
  std::map<std::string, std::string> files;
  for (const auto& line : lines_of(r.output)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, entry)) << line;
    EXPECT_EQ(m[2].str(), "root/root") << line;
    if (m[1].str()[0] == 'd') {
      EXPECT_EQ(m[1].str(), "drwxr-xr-x") << line;
    } else {
      files[m[3].str()] = m[1].str();
    }
  }
  EXPECT_EQ(files, (std::map<std::string, std::string>{
                       {"etc/nicsync/nicsyncd.toml.example", "-rw-r--r--"},
                       {"usr/lib/systemd/system/nicsyncd.service", "-rw-r--r--"},
                       {"usr/lib/sysusers.d/nicsync.conf", "-rw-r--r--"},
                       {"usr/lib/tmpfiles.d/nicsync.conf", "-rw-r--r--"},
                       {"usr/sbin/nicsyncd", "-rwxr-xr-x"},
                       {"usr/share/doc/nicsync/README.md.gz", "-rw-r--r--"},
                       {"usr/share/doc/nicsync/changelog.gz", "-rw-r--r--"},
                       {"usr/share/doc/nicsync/copyright", "-rw-r--r--"},
                       {"usr/share/man/man5/nicsyncd.toml.5.gz", "-rw-r--r--"},
                       {"usr/share/man/man8/nicsyncd.8.gz", "-rw-r--r--"},
                   }));
}

TEST_F(Deb, ExampleConfigIsAConffileAndTheMaintainerScriptsAreTheSources) {
  const auto info = run({"dpkg-deb", "-I", deb_.string()});
  ASSERT_EQ(info.code, 0) << info.output;
  for (const char* member : {"control", "md5sums", "conffiles", "postinst", "prerm", "postrm"}) {
    EXPECT_TRUE(std::regex_search(info.output,
                                  std::regex(std::string(R"(\d+ bytes,\s+\d+ lines\s+\*?\s*)") + member + R"((\s|$))")))
        << member << " is not a control member:\n"
        << info.output;
  }
  EXPECT_EQ(testing::read_file((control() / "conffiles").string()), "/etc/nicsync/nicsyncd.toml.example\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    const auto path = control() / script;
    EXPECT_EQ(testing::read_file(path.string()), testing::read_file(source_file(std::string("scripts/deb/") + script)));
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, static_cast<fs::perms>(0755)) << script;
  }
  // The operator's config is no file of the package: upgrades and removals never touch it.
  EXPECT_FALSE(fs::exists(root() / "etc/nicsync/nicsyncd.toml"));
  EXPECT_EQ(file("etc/nicsync/nicsyncd.toml.example"), testing::read_file(source_file("config/nicsyncd.toml")));
}

TEST_F(Deb, UnitNamesTheInstalledPathsAndNothingNamesTheBuildTree) {
  const auto unit = file("usr/lib/systemd/system/nicsyncd.service");
  EXPECT_EQ(unit, testing::read_file(source_file("systemd/nicsyncd.service")));
  EXPECT_NE(unit.find("\nExecStart=/usr/sbin/nicsyncd run --config /etc/nicsync/nicsyncd.toml\n"), std::string::npos);
  EXPECT_NE(unit.find("\nConditionPathExists=/etc/nicsync/nicsyncd.toml\n"), std::string::npos);
  EXPECT_NE(unit.find("\nLoadCredential=approle-secret-id:/etc/nicsync/approle-secret-id\n"), std::string::npos);
  EXPECT_NE(unit.find("\nDocumentation=man:nicsyncd(8) man:nicsyncd.toml(5)\n"), std::string::npos);
  EXPECT_EQ(file("usr/lib/sysusers.d/nicsync.conf"), testing::read_file(source_file("systemd/nicsync.sysusers")));
  const auto tmpfiles = file("usr/lib/tmpfiles.d/nicsync.conf");
  EXPECT_EQ(tmpfiles, testing::read_file(source_file("systemd/nicsync.tmpfiles")));
  // The state directory as the unit has systemd make it at each start.
  EXPECT_NE(tmpfiles.find("\nd /var/lib/nicsync 0700 nicsync nicsync -\n"), std::string::npos) << tmpfiles;
  EXPECT_NE(unit.find("\nStateDirectory=nicsync\n"), std::string::npos);
  EXPECT_NE(unit.find("\nStateDirectoryMode=0700\n"), std::string::npos);

  // No text of the package names the staging or build directory (an install(CODE) that derives
  // paths from the prefix would).
  const auto build = env_dir("NICSYNC_BINARY_DIR");
  for (const auto& e : fs::recursive_directory_iterator(root())) {
    if (!e.is_regular_file()) continue;
    const auto relative = fs::relative(e.path(), root()).string();
    const auto text = e.path().extension() == ".gz" ? gunzip(relative) : testing::read_file(e.path().string());
    EXPECT_EQ(text.find("_CPack_Packages"), std::string::npos) << relative;
    EXPECT_EQ(text.find(build), std::string::npos) << relative << " names " << build;
  }
}

TEST_F(Deb, DaemonIsStrippedAndRuns) {
  const auto binary = (root() / "usr/sbin/nicsyncd").string();
  const auto sections = run({"readelf", "-S", "-W", binary});
  ASSERT_EQ(sections.code, 0) << sections.output;
  EXPECT_EQ(sections.output.find(".debug_info"), std::string::npos) << "debug information was not stripped";
  EXPECT_EQ(sections.output.find(".symtab"), std::string::npos) << "the symbol table was not stripped";
  const auto v = run({binary, "version"});
  EXPECT_EQ(v.code, 0) << v.output;
  EXPECT_TRUE(v.output.starts_with("nicsyncd " + version() + " (")) << v.output;
}

TEST_F(Deb, ManPagesRenderWithoutWarnings) {
  for (const char* page : {"usr/share/man/man8/nicsyncd.8.gz", "usr/share/man/man5/nicsyncd.toml.5.gz"}) {
    // What lintian runs; warnings go to stderr, the page to /dev/null.
    const auto r = shell("man --warnings -E UTF-8 -l -Tutf8 -Z " + quoted((root() / page).string()) + " >/dev/null",
                         {"LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80"});
    EXPECT_EQ(r.code, 0) << page << ": " << r.output;
    EXPECT_EQ(r.output, "") << page;
  }
}

/// The part of `text` from the line `from` up to the line `to`.
std::string section(const std::string& text, const std::string& from, const std::string& to) {
  const auto begin = text.find("\n" + from + "\n");
  const auto end = text.find("\n" + to + "\n", begin == std::string::npos ? 0 : begin);
  if (begin == std::string::npos || end == std::string::npos) throw std::runtime_error("no " + from + " ... " + to);
  return text.substr(begin, end - begin);
}

/// The page's source as plain words: fonts dropped, "\-" as "-".
std::string roff_text(std::string page) {
  page = std::regex_replace(page, std::regex(R"(\\f[BIRP])"), "");
  page = std::regex_replace(page, std::regex(R"(\\-)"), "-");
  return page;
}

TEST_F(Deb, DaemonPageListsEverySubcommandAndOptionOfTheHelpAndNoOther) {
  const auto binary = (root() / "usr/sbin/nicsyncd").string();
  const auto top = run({binary, "--help"});
  ASSERT_EQ(top.code, 0) << top.output;
  // CLI11's help: options, then "Subcommands:" with one "  name  description" line each.
  auto subcommands_of = [](const std::string& help) {
    std::vector<std::string> out;
    std::smatch heading;
    if (!std::regex_search(help, heading, std::regex("\nsubcommands:\n", std::regex::icase))) return out;
    for (const auto& line : lines_of(heading.suffix().str())) {
      std::smatch m;
      if (std::regex_match(line, m, std::regex(R"(^\s+([a-z]+)\s+\S.*$)"))) out.push_back(m[1]);
    }
    return out;
  };
  std::vector<std::string> subcommands = subcommands_of(top.output);
  ASSERT_GE(subcommands.size(), 6u) << top.output;

  std::set<std::string> help_options;
  const std::regex option(R"((?:^|[\s,\[])(--?[a-z][a-z-]*))");
  auto collect = [&](const std::string& help) {
    for (const auto& line : lines_of(help)) {
      const auto trimmed = line.substr(std::min(line.find_first_not_of(' '), line.size()));
      if (!trimmed.starts_with("-")) continue;  // option lines only, not descriptions
      const auto words = trimmed.substr(0, trimmed.find("  "));
      for (std::sregex_iterator it(words.begin(), words.end(), option), end; it != end; ++it) {
        help_options.insert((*it)[1]);
      }
    }
  };
  collect(top.output);
  const auto page = roff_text(gunzip("usr/share/man/man8/nicsyncd.8.gz"));
  for (const auto& sub : subcommands) {
    const auto help = run({binary, sub, "--help"});
    ASSERT_EQ(help.code, 0) << sub << ": " << help.output;
    collect(help.output);
    const auto nested = subcommands_of(help.output);
    if (nested.empty()) {
      EXPECT_TRUE(std::regex_search(page, std::regex("\n\\.B " + sub + "\n"))) << "nicsyncd(8) does not describe " << sub;
    }
    // A subcommand of its own (`ledger keys`): its options, and its own entry in the page.
    for (const auto& inner : nested) {
      const auto inner_help = run({binary, sub, inner, "--help"});
      ASSERT_EQ(inner_help.code, 0) << sub << " " << inner << ": " << inner_help.output;
      collect(inner_help.output);
      EXPECT_TRUE(std::regex_search(page, std::regex("\n\\.B \"?" + sub + " " + inner + "\"?\n")))
          << "nicsyncd(8) does not describe " << sub << " " << inner;
    }
  }
  ASSERT_TRUE(help_options.contains("--config")) << top.output;
  for (const auto& o : help_options) {
    EXPECT_TRUE(std::regex_search(page, std::regex("(^|[^a-z-])" + o + "([^a-z-]|$)")))
        << "nicsyncd(8) does not mention " << o << ", which --help lists";
  }
  // ...and names no option the command line lacks.
  const std::regex page_option(R"((^|[\s(\[])(--[a-z][a-z-]*))");
  const auto options_section = section(page, ".SH SYNOPSIS", ".SH EXIT STATUS");
  for (std::sregex_iterator it(options_section.begin(), options_section.end(), page_option), end; it != end; ++it) {
    EXPECT_TRUE(help_options.contains((*it)[2])) << "nicsyncd(8) describes " << (*it)[2] << ", which no --help lists";
  }
}

TEST_F(Deb, ConfigPageListsEveryKeyOfTheReadmeTable) {
  const auto readme = testing::read_file(source_file("README.md"));
  const auto start = readme.find("\n| key | default | meaning |\n");
  ASSERT_NE(start, std::string::npos);
  std::vector<std::string> rows;
  for (const auto& line : lines_of(readme.substr(start + 1))) {
    if (!line.starts_with("|")) break;
    rows.push_back(line);
  }
  ASSERT_GT(rows.size(), 2u);
  rows.erase(rows.begin(), rows.begin() + 2);  // header and |---|

  const auto page = roff_text(gunzip("usr/share/man/man5/nicsyncd.toml.5.gz"));
  const auto keys = section(page, ".SH KEYS", ".SH ENVIRONMENT");
  // One tagged paragraph a row, each naming the row's keys.
  std::vector<std::string> tags;
  const auto key_lines = lines_of(keys);
  for (std::size_t i = 0; i + 1 < key_lines.size(); ++i) {
    if (key_lines[i] == ".TP") tags.push_back(key_lines[i + 1]);
  }
  ASSERT_EQ(tags.size(), rows.size()) << keys;
  const std::regex code(R"(`([^`]+)`)");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto cell = rows[i].substr(2, rows[i].find(" | ") - 2);
    for (std::sregex_iterator it(cell.begin(), cell.end(), code), end; it != end; ++it) {
      EXPECT_NE(tags[i].find((*it)[1].str()), std::string::npos) << "row " << rows[i] << "\nman page: " << tags[i];
    }
  }
}

TEST_F(Deb, ConfigPageExampleIsAValidConfig) {
  const auto page = gunzip("usr/share/man/man5/nicsyncd.toml.5.gz");
  const auto at = page.find("\n.SH EXAMPLE\n.RS\n.nf\n");
  ASSERT_NE(at, std::string::npos);
  const auto begin = at + std::string("\n.SH EXAMPLE\n.RS\n.nf\n").size();
  const auto example = roff_text(page.substr(begin, page.find("\n.fi\n", begin) - begin + 1));
  testing::TempDir dir;
  testing::write_file(dir.file("nicsyncd.toml"), example);
  testing::write_file(dir.file("approle-role-id"), "role-id-for-the-package-test\n");
  testing::write_file(dir.file("approle-secret-id"), "secret-id-for-the-package-test\n");
  const auto check = run({(root() / "usr/sbin/nicsyncd").string(), "check", "--config", dir.file("nicsyncd.toml")},
                         {"CREDENTIALS_DIRECTORY=" + dir.path().string(), "STATE_DIRECTORY=" + dir.file("state")});
  EXPECT_EQ(check.code, 0) << example << "\n" << check.output;
}

TEST_F(Deb, CopyrightIsTheApacheLicenceOfTheLicenseFile) {
  const auto copyright = file("usr/share/doc/nicsync/copyright");
  EXPECT_TRUE(copyright.starts_with("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"));
  EXPECT_EQ(copyright, testing::read_file(source_file("scripts/deb/copyright")));
  EXPECT_NE(copyright.find("\nFiles: *\n"), std::string::npos);
  EXPECT_NE(copyright.find("\nLicense: Apache-2.0\n"), std::string::npos);
  EXPECT_NE(copyright.find("/usr/share/common-licenses/Apache-2.0"), std::string::npos);
  // The LICENSE at the top of the tree is that licence, word for word.
  EXPECT_EQ(testing::read_file(source_file("LICENSE")), testing::read_file("/usr/share/common-licenses/Apache-2.0"));
}

TEST_F(Deb, ChangelogsNewestEntryIsThisVersion) {
  testing::TempDir dir;
  testing::write_file(dir.file("changelog"), gunzip("usr/share/doc/nicsync/changelog.gz"));
  const auto r = run({"dpkg-parsechangelog", "-l", dir.file("changelog"), "-S", "Version"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, version() + "\n") << "add an entry for " << version() << " to scripts/deb/changelog";
  EXPECT_EQ(gunzip("usr/share/doc/nicsync/changelog.gz"), testing::read_file(source_file("scripts/deb/changelog")));
  EXPECT_EQ(gunzip("usr/share/doc/nicsync/README.md.gz"), testing::read_file(source_file("README.md")));
}

TEST_F(Deb, LintianFindsNoErrorAndOnlyTheKnownWarnings) {
  const auto r = run({"lintian", "--fail-on", "error", "--tag-display-limit", "0", deb_.string()}, {}, 600s);
  EXPECT_EQ(r.code, 0) << r.output;
  std::set<std::string> warnings;
  for (const auto& line : lines_of(r.output)) {
    EXPECT_FALSE(line.starts_with("E: ")) << line;
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(^W: nicsync: (\S+).*$)"))) warnings.insert(m[1]);
  }
  // None is left; a warning accepted some day is listed here with its reason, and what lintian
  // notes at info level is explained at the end of scripts/deb/package.cmake.
  EXPECT_EQ(warnings, (std::set<std::string>{})) << r.output;
}

// ---------------------------------------------------------------------------------------------
// The maintainer scripts, run by sh against stand-ins for systemd-sysusers, systemd-tmpfiles,
// systemctl, deb-systemd-helper and deb-systemd-invoke that only write down how they were called.
// "systemd running" is a private mount namespace whose /run holds systemd/system (unshare).

class MaintainerScripts : public Deb {
 protected:
  void SetUp() override {
    Deb::SetUp();
    stubs_ = dir_.path() / "stubs";
    fs::create_directories(stubs_);
    log_ = dir_.file("calls");
    for (const char* tool : {"systemd-sysusers", "systemd-tmpfiles", "systemctl", "deb-systemd-helper",
                             "deb-systemd-invoke", "userdel", "deluser", "groupdel", "delgroup"}) {
      const auto stub = (stubs_ / tool).string();
      // deb-systemd-helper was-enabled answers as STUB_WAS_ENABLED says (yes unless "no").
      testing::write_file(stub,
                          "#!/bin/sh\n"
                          "echo \"${0##*/} $*\" >> \"$STUB_LOG\"\n"
                          "case \"${0##*/} $*\" in\n"
                          "  *was-enabled*) [ \"${STUB_WAS_ENABLED:-yes}\" = yes ] ;;\n"
                          "esac\n");
      ::chmod(stub.c_str(), 0755);
    }
  }

  /// Runs a maintainer script of the package; `systemd` puts /run/systemd/system in place.
  /// Returns the stand-ins' calls, one a line.
  std::vector<std::string> call(const std::string& script, const std::vector<std::string>& args, bool systemd,
                                std::vector<std::string> env = {}) {
    std::filesystem::remove(log_);
    testing::write_file(log_, "");
    std::string command = "sh " + quoted((control() / script).string());
    for (const auto& a : args) command += " " + quoted(a);
    env.push_back("PATH=" + stubs_.string() + ":/usr/sbin:/usr/bin:/sbin:/bin");
    env.push_back("STUB_LOG=" + log_);
    std::string inner = "mount -t tmpfs tmpfs /run && ";
    if (systemd) inner += "mkdir -p /run/systemd/system && ";
    inner += command;
    const auto r = run({"unshare", "--mount", "--map-root-user", "sh", "-c", inner}, env);
    EXPECT_EQ(r.code, 0) << script << ": " << r.output;
    last_output_ = r.output;
    return lines_of(testing::read_file(log_));
  }

  fs::path stubs_;
  std::string log_;
  std::string last_output_;
};

using Calls = std::vector<std::string>;

TEST_F(MaintainerScripts, FirstInstallCreatesTheUserEnablesAndStartsTheUnit) {
  EXPECT_EQ(call("postinst", {"configure", ""}, true), (Calls{
                                                           "systemd-sysusers nicsync.conf",
                                                           "systemd-tmpfiles --create nicsync.conf",
                                                           "deb-systemd-helper unmask nicsyncd.service",
                                                           "deb-systemd-helper --quiet was-enabled nicsyncd.service",
                                                           "deb-systemd-helper enable nicsyncd.service",
                                                           "systemctl --system daemon-reload",
                                                           "deb-systemd-invoke start nicsyncd.service",
                                                       }));
}

TEST_F(MaintainerScripts, UpgradeRestartsTheDaemonOnlyIfItRuns) {
  const auto calls = call("postinst", {"configure", version()}, true);
  EXPECT_EQ(calls.back(), "deb-systemd-invoke try-restart nicsyncd.service");
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "deb-systemd-invoke start nicsyncd.service"), 0);
  // A unit the administrator disabled stays disabled.
  const auto disabled = call("postinst", {"configure", version()}, true, {"STUB_WAS_ENABLED=no"});
  EXPECT_EQ(std::count(disabled.begin(), disabled.end(), "deb-systemd-helper enable nicsyncd.service"), 0);
  EXPECT_EQ(std::count(disabled.begin(), disabled.end(), "deb-systemd-helper update-state nicsyncd.service"), 1);
}

TEST_F(MaintainerScripts, WithoutSystemdRunningTheUnitIsEnabledAndNothingStarted) {
  EXPECT_EQ(call("postinst", {"configure", ""}, false), (Calls{
                                                            "systemd-sysusers nicsync.conf",
                                                            "systemd-tmpfiles --create nicsync.conf",
                                                            "deb-systemd-helper unmask nicsyncd.service",
                                                            "deb-systemd-helper --quiet was-enabled nicsyncd.service",
                                                            "deb-systemd-helper enable nicsyncd.service",
                                                        }));
  EXPECT_EQ(call("prerm", {"remove"}, false), Calls{});
  EXPECT_EQ(call("postrm", {"remove"}, false), Calls{});
}

TEST_F(MaintainerScripts, PostinstSaysHowToStartUntilTheConfigExists) {
  testing::TempDir root;
  fs::create_directories(root.path() / "etc/nicsync");
  // In another root (DPKG_ROOT) systemd is left alone even when it runs here.
  const auto calls = call("postinst", {"configure", ""}, true, {"DPKG_ROOT=" + root.path().string()});
  EXPECT_EQ(calls.front(), "systemd-sysusers --root=" + root.path().string() + " nicsync.conf");
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "deb-systemd-invoke start nicsyncd.service"), 0);
  EXPECT_NE(last_output_.find("starts once /etc/nicsync/nicsyncd.toml exists"), std::string::npos) << last_output_;
  testing::write_file((root.path() / "etc/nicsync/nicsyncd.toml").string(), "# the operator's\n");
  call("postinst", {"configure", ""}, true, {"DPKG_ROOT=" + root.path().string()});
  EXPECT_EQ(last_output_.find("starts once"), std::string::npos) << last_output_;
}

TEST_F(MaintainerScripts, RemovalStopsTheDaemonAndAnUpgradeDoesNot) {
  EXPECT_EQ(call("prerm", {"remove"}, true), Calls{"deb-systemd-invoke stop nicsyncd.service"});
  EXPECT_EQ(call("prerm", {"upgrade", version()}, true), Calls{});
  EXPECT_EQ(call("postrm", {"remove"}, true), Calls{"systemctl --system daemon-reload"});
  EXPECT_EQ(call("postrm", {"upgrade", version()}, true), Calls{});
}

TEST_F(MaintainerScripts, PurgeRemovesStateAndConfigurationButNotTheUser) {
  testing::TempDir root;
  fs::create_directories(root.path() / "var/lib/nicsync");
  fs::create_directories(root.path() / "etc/nicsync");
  testing::write_file((root.path() / "var/lib/nicsync/ledger.sqlite").string(), "ledger");
  for (const char* name : {"nicsyncd.toml", "approle-role-id", "approle-secret-id", "api-token"}) {
    testing::write_file((root.path() / "etc/nicsync" / name).string(), "the operator's");
  }
  const auto calls = call("postrm", {"purge"}, false, {"DPKG_ROOT=" + root.path().string()});
  EXPECT_EQ(calls, Calls{"deb-systemd-helper purge nicsyncd.service"});  // no userdel, deluser, ...
  EXPECT_FALSE(fs::exists(root.path() / "var/lib/nicsync"));
  EXPECT_FALSE(fs::exists(root.path() / "etc/nicsync"));

  // A file the package knows nothing of stays, and with it the directory.
  fs::create_directories(root.path() / "etc/nicsync");
  testing::write_file((root.path() / "etc/nicsync/nicsyncd.toml").string(), "the operator's");
  testing::write_file((root.path() / "etc/nicsync/vault-ca.pem").string(), "a CA");
  call("postrm", {"purge"}, false, {"DPKG_ROOT=" + root.path().string()});
  EXPECT_FALSE(fs::exists(root.path() / "etc/nicsync/nicsyncd.toml"));
  EXPECT_TRUE(fs::exists(root.path() / "etc/nicsync/vault-ca.pem"));
}

}  // namespace
}  // namespace nicsync
