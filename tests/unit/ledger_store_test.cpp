// The SQLite ledger: the store contract (tests/conformance) on real files, and what is SQLite's
// own: migrations, file modes, a damaged file, a lock held by another program, a full disk,
// and that no secret reaches the files.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "conformance/store_conformance.hpp"
#include "conformance/store_fixtures.hpp"
#include "nicsync/ledger/fingerprint.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/ledger/state_directory.hpp"
#include "testing/deadline.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

namespace nicsync::ledger {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace fixtures;
using conformance::StoreConformance;
using testing::run_for;

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

/// Runs SQL on the file through a connection of its own (to prepare or inspect files).
std::string sql(const std::filesystem::path& path, const std::string& statement) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string out;
  char* err = nullptr;
  const auto collect = [](void* o, int n, char** values, char**) {
    auto& s = *static_cast<std::string*>(o);
    for (int i = 0; i < n; ++i) s += std::string(values[i] ? values[i] : "NULL") + (i + 1 < n ? "|" : "\n");
    return 0;
  };
  if (sqlite3_exec(db, statement.c_str(), collect, &out, &err) != SQLITE_OK) {
    ADD_FAILURE() << statement << ": " << (err ? err : "?");
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return out;
}

/// The SQLite store for the conformance suite: a file in a fresh directory.
class SqliteHarness final : public conformance::StoreHarness {
 public:
  SqliteHarness() { std::filesystem::create_directories(state_dir()); }
  std::unique_ptr<Store> open() override {
    auto store = SqliteStore::open({.path = state_dir() / SqliteStore::kFileName});
    EXPECT_TRUE(store) << store.error().describe();
    if (!store) return nullptr;
    return std::move(*store);
  }
  conformance::StoreCounters counters(Store& store) override {
    const auto s = dynamic_cast<SqliteStore&>(store).stats();
    return {s.transactions, s.writes, s.largest_batch, s.queued};
  }
  std::vector<std::string> child_args() override { return {"sqlite", state_dir().string()}; }

 private:
  std::filesystem::path state_dir() const { return tmp_.path() / "state"; }
  testing::TempDir tmp_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
                         ::testing::Values(conformance::Backend{"sqlite",
                                                                [] { return std::make_unique<SqliteHarness>(); }}),
                         conformance::backend_name);

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::filesystem::path db_path() const { return tmp_.path() / SqliteStore::kFileName; }

  std::unique_ptr<SqliteStore> open(SqliteStoreOptions options = {}) {
    if (options.path.empty()) options.path = db_path();
    auto store = SqliteStore::open(std::move(options));
    EXPECT_TRUE(store) << store.error().describe();
    return store ? std::move(*store) : nullptr;
  }

  Result<void> write(SqliteStore& s, PairRecord r, std::optional<HistoryEntry> h = std::nullopt) {
    return run_for(io_, s.write(std::move(r), std::move(h)));
  }

  testing::TempDir tmp_;
  asio::io_context io_{1};
};

TEST_F(SqliteStoreTest, HistoryIsAppendOnly) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(write(*store, full_record(), entry("G", kT0, 1)));
  store->close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE history SET message = 'rewritten'", nullptr, nullptr, nullptr), SQLITE_CONSTRAINT);
  sqlite3_close(db);
}

// ---- files, modes, schema -------------------------------------------------------------------

TEST_F(SqliteStoreTest, FilesArePrivateAndInWalMode) {
  // Even an existing file left with a loose mode is tightened.
  testing::write_file(db_path().string(), "");
  ASSERT_EQ(::chmod(db_path().c_str(), 0644), 0);
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(write(*store, full_record(), entry("G", kT0, 1)));
  EXPECT_EQ(mode_of(db_path()), 0600u);
  EXPECT_EQ(mode_of(db_path().string() + "-wal"), 0600u);
  EXPECT_EQ(mode_of(db_path().string() + "-shm"), 0600u);
  EXPECT_EQ(sql(db_path(), "PRAGMA journal_mode"), "wal\n");
  EXPECT_EQ(sql(db_path(), "PRAGMA user_version"), fmt::format("{}\n", SqliteStore::kSchemaVersion));
  EXPECT_EQ(sql(db_path(), "PRAGMA application_id"), fmt::format("{}\n", 0x4E435359));
}

TEST_F(SqliteStoreTest, AnEmptyOrVersionZeroDatabaseIsMigrated) {
  // A v0 database: valid SQLite, no schema, user_version 0.
  sql(db_path(), "PRAGMA user_version = 0; VACUUM;");
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(write(*store, full_record()));
  }
  EXPECT_EQ(sql(db_path(), "PRAGMA user_version"), fmt::format("{}\n", SqliteStore::kSchemaVersion));
  // Opening a current database again migrates nothing and keeps the data.
  auto store = open();
  ASSERT_TRUE(store);
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->size(), 1u);
}

TEST_F(SqliteStoreTest, AVersionOneLedgerGainsSealedBlobsAndKeepsItsRecords) {
  // A ledger as nicsyncd 0.1 left it: schema version 1, without the sealed table.
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(write(*store, full_record(), entry("G", kT0, 1)));
  }
  sql(db_path(), "DROP TABLE sealed; PRAGMA user_version = 1;");
  auto store = open();
  ASSERT_TRUE(store);
  EXPECT_EQ(sql(db_path(), "PRAGMA user_version"), "2\n");
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  ASSERT_EQ(pairs->size(), 1u);
  expect_same(pairs->front(), full_record());
  ASSERT_TRUE(run_for(io_, store->write_sealed("token", std::string("\0sealed", 7))));
  auto back = run_for(io_, store->read_sealed("token"));
  ASSERT_TRUE(back && *back);
  EXPECT_EQ(**back, std::string("\0sealed", 7));
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefusedAndLeftAlone) {
  sql(db_path(), "PRAGMA application_id = 1313035097; PRAGMA user_version = 7; CREATE TABLE future (x);");
  auto store = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_schema));
  EXPECT_NE(store.error().message.find("schema version 7"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find(fmt::format("up to version {}", SqliteStore::kSchemaVersion)), std::string::npos)
      << store.error().message;
  EXPECT_NE(store.error().message.find("newer nicsyncd"), std::string::npos) << store.error().message;
  EXPECT_EQ(sql(db_path(), "PRAGMA user_version"), "7\n");
}

TEST_F(SqliteStoreTest, AnotherProgramsDatabaseIsRefused) {
  sql(db_path(), "CREATE TABLE accounts (id INTEGER);");
  auto store = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_schema));
  EXPECT_NE(store.error().message.find("not a nicsync ledger"), std::string::npos) << store.error().message;

  std::filesystem::remove(db_path());
  sql(db_path(), "PRAGMA application_id = 42;");
  auto other = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(other);
  EXPECT_TRUE(other.error().is(Errc::ledger_schema));
}

TEST_F(SqliteStoreTest, NotADatabaseIsCorrupt) {
  testing::write_file(db_path().string(), std::string(8192, 'x'));
  auto store = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_corrupt)) << store.error().describe();
  EXPECT_NE(store.error().message.find("restore a backup"), std::string::npos) << store.error().message;
}

TEST_F(SqliteStoreTest, QuickCheckCatchesADamagedFile) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    auto results = run_for(io_, write_all(store.get(), numbered_records(0, 400), std::string(300, 'm')));
    for (const auto& r : results) ASSERT_TRUE(r);
  }  // closing checkpoints everything into the main file
  const auto size = std::filesystem::file_size(db_path());
  ASSERT_GT(size, 40u * 4096);
  // Scribble over a few pages in the middle, keeping the header intact.
  const int fd = ::open(db_path().c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const std::string junk(3 * 4096, '\x5a');
  ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 20 * 4096), static_cast<ssize_t>(junk.size()));
  ::close(fd);
  auto store = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_corrupt)) << store.error().describe();
}

// ---- group commit, shutdown, durability -----------------------------------------------------

TEST_F(SqliteStoreTest, CloseWaitsOutALockOfAnotherProgramAndCommitsEverythingQueued) {
  auto store = open();
  ASSERT_TRUE(store);
  // Another connection holds the write lock, so the writer thread waits (busy_timeout) and
  // nothing can commit until it lets go.
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  constexpr int kWrites = 200;
  auto outcomes = std::make_shared<Outcomes>(kWrites);
  auto records = numbered_records(0, kWrites);
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io_, store->write(std::move(records[i]), std::nullopt), outcomes->handler(i));
  }
  io_.poll();  // every coroutine queues its write
  EXPECT_EQ(outcomes->left, static_cast<std::size_t>(kWrites));
  EXPECT_EQ(store->stats().writes, 0u);

  // close() returns only once everything queued before it is committed.
  std::thread closer([&] { store->close(); });
  ASSERT_EQ(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(blocker);
  closer.join();
  EXPECT_EQ(store->stats().writes, static_cast<std::uint64_t>(kWrites));
  EXPECT_EQ(store->stats().queued, 0u);
  run_for(io_, wait_all(outcomes));
  for (const auto& r : outcomes->results) EXPECT_TRUE(r) << r.error().describe();

  auto late = write(*store, full_record());
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().is(Errc::cancelled));
  EXPECT_FALSE(store->load_pairs());
  store.reset();

  auto reopened = open();
  ASSERT_TRUE(reopened);
  auto pairs = reopened->load_pairs();
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->size(), static_cast<std::size_t>(kWrites));
}

// ---- a full disk ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, AFullLedgerFailsWholeBatchesLosesNothingAndRecovers) {
  // 256 KiB cap: reached after some dozens of writes with 2 KiB history messages.
  auto store = open({.max_size_bytes = 256 * 1024});
  ASSERT_TRUE(store);
  const std::string big(2048, 'h');
  std::set<std::string> acknowledged;
  std::optional<Error> full;
  for (int i = 0; i < 1000 && !full; ++i) {
    PairRecord r = full_record();
    r.gstin = fmt::format("SEQ{:04}", i);
    auto h = entry(r.gstin, kT0 - 48h, i);
    h.message = big;
    auto w = write(*store, r, std::move(h));
    if (w) {
      acknowledged.insert(r.gstin);
    } else {
      full = w.error();
    }
  }
  ASSERT_TRUE(full) << "the size cap was never reached";
  EXPECT_TRUE(full->is(Errc::ledger_full)) << full->describe();
  EXPECT_NE(full->message.find("free space"), std::string::npos) << full->message;
  EXPECT_FALSE(store->writable());
  EXPECT_GE(store->stats().failed_transactions, 1u);

  // Many writes at once while full: each either fails or is there; none vanishes.
  auto batch = numbered_records(0, 64);
  auto results = run_for(io_, write_all(store.get(), batch, big));
  std::size_t failed = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i]) {
      acknowledged.insert(batch[i].gstin);
    } else {
      ++failed;
      EXPECT_TRUE(results[i].error().is(Errc::ledger_full)) << results[i].error().describe();
    }
  }
  EXPECT_GT(failed, 0u);

  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs) << pairs.error().describe();
  std::set<std::string> present;
  for (const auto& p : *pairs) present.insert(p.gstin);
  EXPECT_EQ(present, acknowledged);

  // Room again (here: old history trimmed): the next commit succeeds and the store says so.
  auto trimmed = run_for(io_, store->trim_history(kT0 - 24h));
  ASSERT_TRUE(trimmed) << trimmed.error().describe();
  EXPECT_GT(*trimmed, 0u);
  ASSERT_TRUE(write(*store, full_record(), entry("AFTER", kT0, 1)));
  EXPECT_TRUE(store->writable());
  store.reset();

  auto reopened = open();
  ASSERT_TRUE(reopened);
  auto after = reopened->load_pairs();
  ASSERT_TRUE(after);
  std::set<std::string> kept;
  for (const auto& p : *after) kept.insert(p.gstin);
  for (const auto& g : acknowledged) EXPECT_TRUE(kept.count(g)) << g;
}

// ---- no secret material ---------------------------------------------------------------------

bool file_contains(const std::filesystem::path& p, std::string_view needle) {
  if (!std::filesystem::exists(p)) return false;
  return testing::read_file(p.string()).find(needle) != std::string::npos;
}

std::string hex_of(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

TEST_F(SqliteStoreTest, NoPlantedPasswordReachesTheLedgerFiles) {
  const std::string planted = "Planted#Pw0rd-7f3c9a";
  const Secret password(planted);
  const std::string username = "API_PLANTED_USER";
  auto fp = Fingerprinter::open(tmp_.path() / Fingerprinter::kKeyFileName);
  ASSERT_TRUE(fp);
  const std::string fingerprint = fp->fingerprint(username, password).hex();

  // Errors shaped the way destinations and the engine build them: the credential is at hand,
  // and only Secret's formatter may touch it.
  const Error rejected(
      Errc::dest_credential_rejected,
      fmt::format("NIC rejected username {} / password {} for GSTIN 07AAFCD5862R1ZX (NIC:1019)", username, password));
  const Error transient(Errc::dest_unavailable, fmt::format("POST failed with body {{\"password\":\"{}\"}}", password));

  auto store = open();
  ASSERT_TRUE(store);
  for (int i = 0; i < 50; ++i) {
    PairRecord r = full_record();
    r.gstin = fmt::format("G{:03}", i);
    r.applied = VersionRef{VersionId{i, Lineage("lineage")}, Fingerprint::from_hex(fingerprint)};
    r.pending = VersionRef{VersionId{i + 1, Lineage("lineage")}, Fingerprint::from_hex(fingerprint)};
    const Error& e = i % 2 == 0 ? rejected : transient;
    r.last_error_class = std::string(to_string(e.error_class()));
    r.last_error_code = std::string(errc_name(static_cast<Errc>(e.code.value())));
    r.last_error_message = e.describe();
    HistoryEntry h = entry(r.gstin, kT0, i, Outcome::rejected);
    h.message = e.describe();
    ASSERT_TRUE(write(*store, std::move(r), std::move(h)));
  }
  const auto wal = db_path().string() + "-wal";
  ASSERT_TRUE(std::filesystem::exists(wal));
  // The grep works: what was written is found (in the WAL until a checkpoint).
  EXPECT_TRUE(file_contains(wal, fingerprint) || file_contains(db_path(), fingerprint));
  EXPECT_TRUE(file_contains(wal, username) || file_contains(db_path(), username));
  for (const auto& p : {db_path().string(), wal, db_path().string() + "-shm"}) {
    EXPECT_FALSE(file_contains(p, planted)) << p;
    EXPECT_FALSE(file_contains(p, hex_of(planted))) << p;
  }
  auto history = run_for(io_, store->history("", 1000));
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 50u);
  for (const auto& h : *history) EXPECT_EQ(h.message.find(planted), std::string::npos) << h.message;
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  for (const auto& p : *pairs) EXPECT_EQ(p.last_error_message.find(planted), std::string::npos);
  store.reset();  // checkpoint into the main file
  EXPECT_TRUE(file_contains(db_path(), fingerprint));
  EXPECT_FALSE(file_contains(db_path(), planted));
  EXPECT_FALSE(file_contains(tmp_.path() / Fingerprinter::kKeyFileName, planted));
}

}  // namespace
}  // namespace nicsync::ledger
