// The state directory (mode, exclusive lock across processes, writability probe) and the
// credential fingerprints (keyed, stable, unambiguous, key file created 0600 and checked).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "nicsync/ledger/fingerprint.hpp"
#include "nicsync/ledger/state_directory.hpp"
#include "nicsync/ledger/store.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

namespace nicsync::ledger {
namespace {

using namespace std::chrono_literals;

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

std::string child_program() { return testing::built_program("tests/nicsync-test-ledger-child"); }

// ---- StateDirectory -------------------------------------------------------------------------

TEST(StateDirectory, CreatesPrivateDirectoryAndRecordsPid) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "parent" / "state";
  auto dir = StateDirectory::open(path);
  ASSERT_TRUE(dir) << dir.error().describe();
  EXPECT_EQ(dir->path(), path);
  EXPECT_EQ(mode_of(path), 0700u);
  EXPECT_EQ(mode_of(dir->file("lock")), 0600u);
  EXPECT_EQ(testing::read_file(dir->file("lock").string()), std::to_string(::getpid()) + "\n");
  EXPECT_TRUE(dir->check_writable()) << dir->check_writable().error().describe();
  // The probe leaves nothing behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(StateDirectory, TightensAnExistingDirectory) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "state";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  auto dir = StateDirectory::open(path);
  ASSERT_TRUE(dir) << dir.error().describe();
  EXPECT_EQ(mode_of(path), 0700u);
}

TEST(StateDirectory, SecondOpenIsRefusedUntilTheFirstCloses) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "state";
  {
    auto first = StateDirectory::open(path);
    ASSERT_TRUE(first);
    auto second = StateDirectory::open(path);
    ASSERT_FALSE(second);
    EXPECT_TRUE(second.error().is(Errc::state_dir_locked));
    EXPECT_NE(second.error().message.find(fmt::format("PID {}", ::getpid())), std::string::npos)
        << second.error().message;
    // Moving keeps the lock.
    StateDirectory moved = std::move(*first);
    EXPECT_FALSE(StateDirectory::open(path));
  }
  EXPECT_TRUE(StateDirectory::open(path));
}

TEST(StateDirectory, LockHeldByAnotherProcessNamesItsPidAndDiesWithIt) {
  testing::TempDir tmp;
  const auto path = tmp.path() / "state";
  testing::Process holder({.argv = {child_program(), "lock", path.string()}});
  ASSERT_TRUE(holder.wait_for_output("locked ", 10s)) << holder.output();

  auto refused = StateDirectory::open(path);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::state_dir_locked));
  EXPECT_NE(refused.error().message.find(fmt::format("PID {}", holder.pid())), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find(path.string()), std::string::npos);

  // flock goes with the process, even when it has no chance to clean up.
  holder.kill();
  auto taken = StateDirectory::open(path);
  ASSERT_TRUE(taken) << taken.error().describe();
  EXPECT_EQ(testing::read_file(taken->file("lock").string()), std::to_string(::getpid()) + "\n");
}

// Makes a directory refuse new files, also to root (which ignores permission bits): through the
// immutable attribute where the file system and capabilities allow it.
bool make_read_only(const std::filesystem::path& dir, bool read_only) {
  if (::geteuid() != 0) return ::chmod(dir.c_str(), read_only ? 0500 : 0700) == 0;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  flags = read_only ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  ok = ok && ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  ::close(fd);
  return ok;
}

TEST(StateDirectory, NotWritableIsReported) {
  testing::TempDir tmp;
  auto dir = StateDirectory::open(tmp.path() / "state");
  ASSERT_TRUE(dir);
  if (!make_read_only(dir->path(), true)) GTEST_SKIP() << "cannot make a directory read-only here";
  auto r = dir->check_writable();
  ASSERT_TRUE(make_read_only(dir->path(), false));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::io_error));
  EXPECT_NE(r.error().message.find("cannot create a file"), std::string::npos) << r.error().message;
  EXPECT_TRUE(dir->check_writable());
}

TEST(StateDirectory, AFileInTheWayIsAnError) {
  testing::TempDir tmp;
  testing::write_file(tmp.file("state"), "not a directory");
  auto dir = StateDirectory::open(tmp.path() / "state");
  ASSERT_FALSE(dir);
  EXPECT_TRUE(dir.error().is(Errc::io_error));
  EXPECT_NE(dir.error().message.find("state"), std::string::npos);
}

// ---- names stored in the ledger ---------------------------------------------------------------

TEST(LedgerNames, EveryOutcomeAndStateReadsBack) {
  for (auto o : {Outcome::applied, Outcome::unchanged, Outcome::failed, Outcome::parked, Outcome::rejected,
                 Outcome::source_deleted, Outcome::superseded, Outcome::operator_retry}) {
    EXPECT_EQ(outcome_from_string(to_string(o)), o) << to_string(o);
  }
  for (auto st : {PairState::in_sync, PairState::pending, PairState::retrying, PairState::parked, PairState::rejected,
                  PairState::source_deleted}) {
    EXPECT_EQ(pair_state_from_string(to_string(st)), st) << to_string(st);
  }
  EXPECT_FALSE(outcome_from_string("exploded"));
  EXPECT_FALSE(pair_state_from_string(""));
}

// ---- Fingerprinter --------------------------------------------------------------------------

constexpr std::string_view kPassword = "N3w#Passw0rd&";

Secret key_of(unsigned char first) {
  std::string k(Fingerprinter::kKeySize, '\0');
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<char>(first + i);
  return Secret::take(k);
}

TEST(Fingerprinter, MatchesTheSpecifiedConstruction) {
  // hex(HMAC-SHA256(key 00..1f, [u64be len || bytes] of tag, username, password)), computed with
  // Python's hmac module. Changing the construction changes every stored fingerprint (and so
  // pushes every credential again): this vector must only change on purpose.
  auto fp = Fingerprinter::with_key(key_of(0));
  ASSERT_TRUE(fp);
  EXPECT_EQ(fp->fingerprint("API_DEMO_USER", Secret(kPassword)).hex(),
            "04019eceac7a17261be2e04e94ba1c5a3db2524edd05309356f7281b0277caf3");
}

TEST(Fingerprinter, KeyedStableAndUnambiguous) {
  auto a = Fingerprinter::with_key(key_of(0));
  auto b = Fingerprinter::with_key(key_of(1));
  ASSERT_TRUE(a && b);
  const Fingerprint fa = a->fingerprint("user", Secret(kPassword));
  EXPECT_EQ(fa.hex().size(), 64u);
  EXPECT_EQ(fa.hex().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(fa, a->fingerprint("user", Secret(kPassword)));
  EXPECT_NE(fa, b->fingerprint("user", Secret(kPassword)));  // another install, another fingerprint
  EXPECT_NE(fa, a->fingerprint("user", Secret("N3w#Passw0rd!")));
  EXPECT_NE(fa, a->fingerprint("user2", Secret(kPassword)));
  // Moving a byte between the fields changes the fingerprint.
  EXPECT_NE(a->fingerprint("ab", Secret("c")), a->fingerprint("a", Secret("bc")));
  EXPECT_NE(a->fingerprint("", Secret("x")), a->fingerprint("x", Secret("")));
  // A copy shares the key.
  Fingerprinter copy = *a;
  EXPECT_EQ(copy.fingerprint("user", Secret(kPassword)), fa);
}

TEST(Fingerprinter, RejectsAKeyOfTheWrongSize) {
  auto fp = Fingerprinter::with_key(Secret("short"));
  ASSERT_FALSE(fp);
  EXPECT_TRUE(fp.error().is(Errc::invalid_argument));
}

TEST(Fingerprinter, CreatesAPrivateKeyFileOnceAndKeepsUsingIt) {
  testing::TempDir tmp;
  const auto key_file = tmp.path() / Fingerprinter::kKeyFileName;
  std::string first;
  {
    auto fp = Fingerprinter::open(key_file);
    ASSERT_TRUE(fp) << fp.error().describe();
    first = fp->fingerprint("user", Secret(kPassword)).hex();
  }
  EXPECT_EQ(mode_of(key_file), 0600u);
  EXPECT_EQ(std::filesystem::file_size(key_file), Fingerprinter::kKeySize);
  auto again = Fingerprinter::open(key_file);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->fingerprint("user", Secret(kPassword)).hex(), first);
  // No temporary files are left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp.path())) ++entries;
  EXPECT_EQ(entries, 1u);

  // A new install (new key) fingerprints differently.
  testing::TempDir other;
  auto fresh = Fingerprinter::open(other.path() / Fingerprinter::kKeyFileName);
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh->fingerprint("user", Secret(kPassword)).hex(), first);
}

TEST(Fingerprinter, RacingCreatorsAgreeOnOneKey) {
  testing::TempDir tmp;
  const auto key_file = tmp.path() / Fingerprinter::kKeyFileName;
  constexpr int kThreads = 8;
  std::vector<std::string> prints(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto fp = Fingerprinter::open(key_file);
      prints[i] = fp ? fp->fingerprint("user", Secret(kPassword)).hex() : fp.error().describe();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& p : prints) EXPECT_EQ(p, prints.front());
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(Fingerprinter, RefusesABadKeyFileWithAClearMessage) {
  testing::TempDir tmp;
  const auto key_file = tmp.path() / Fingerprinter::kKeyFileName;

  testing::write_file(key_file.string(), "too short");  // 0600
  auto wrong_size = Fingerprinter::open(key_file);
  ASSERT_FALSE(wrong_size);
  EXPECT_TRUE(wrong_size.error().is(Errc::ledger_corrupt));
  EXPECT_NE(wrong_size.error().message.find("9 bytes instead of 32"), std::string::npos) << wrong_size.error().message;
  EXPECT_NE(wrong_size.error().message.find(key_file.string()), std::string::npos);

  testing::write_file(key_file.string(), std::string(32, 'k'));
  ASSERT_EQ(::chmod(key_file.c_str(), 0644), 0);
  auto too_open = Fingerprinter::open(key_file);
  ASSERT_FALSE(too_open);
  EXPECT_TRUE(too_open.error().is(Errc::ledger_io));
  EXPECT_NE(too_open.error().message.find("chmod 600"), std::string::npos) << too_open.error().message;

  std::filesystem::remove(key_file);
  std::filesystem::create_directory(key_file);
  auto not_a_file = Fingerprinter::open(key_file);
  ASSERT_FALSE(not_a_file);
  EXPECT_TRUE(not_a_file.error().is(Errc::ledger_io));

  // A symbolic link is not followed (and not replaced by a new key).
  std::filesystem::remove(key_file);
  std::filesystem::create_symlink(tmp.file("elsewhere"), key_file);
  auto link = Fingerprinter::open(key_file);
  ASSERT_FALSE(link);
  EXPECT_TRUE(link.error().is(Errc::ledger_io));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("elsewhere")));
}

}  // namespace
}  // namespace nicsync::ledger
