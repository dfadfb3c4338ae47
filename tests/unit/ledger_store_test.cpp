// The SQLite ledger on real files: round trips, migrations, file modes, group commit,
// durability across SIGKILL, a full disk, shutdown, and that no secret reaches the files.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

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
using testing::run_for;

// 2026-01-01T00:00:00.123456789Z: nanoseconds must survive.
const SystemTime kT0 =
    SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(1'767'225'600'123'456'789LL)));

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

PairRecord full_record() {
  PairRecord r;
  r.destination = "cleartax-prod";
  r.gstin = "07AAFCD5862R1ZX";
  r.vault_path = "secret/nic/07AAFCD5862R1ZX";
  r.state = PairState::retrying;
  r.applied =
      VersionRef{VersionId{41, Lineage("2025-12-30T10:11:12.000000001Z")}, Fingerprint::from_hex(std::string(64, 'a'))};
  r.applied_at = kT0 - 1h;
  r.pending = VersionRef{VersionId{42, Lineage("2026-01-01T00:00:00.5Z")}, Fingerprint::from_hex(std::string(64, 'b'))};
  r.push_in_flight = true;
  r.attempts = 7;
  r.first_attempt_at = kT0 - 5min;
  r.next_attempt_at = kT0 + 30s + 1ns;
  r.last_error_class = "transient";
  r.last_error_code = "dest_unavailable";
  r.last_error_provider = "CT:301";
  r.last_error_message = "ClearTax is \"temporarily\" unable — réessayez; retry in 30 s";
  r.updated_at = kT0;
  return r;
}

HistoryEntry entry(std::string gstin, SystemTime at, std::int64_t version, Outcome outcome = Outcome::applied) {
  HistoryEntry h;
  h.at = at;
  h.destination = "cleartax-prod";
  h.gstin = std::move(gstin);
  h.version = VersionId{version, Lineage("2026-01-01T00:00:00Z")};
  h.outcome = outcome;
  h.attempt = 2;
  h.error_class = "auth";
  h.error_code = "dest_unauthorized";
  h.error_provider = "CT:105";
  h.message = "access token rejected; refreshed it";
  h.duration = 1234ms;
  return h;
}

void expect_same(const PairRecord& a, const PairRecord& b) {
  EXPECT_EQ(a.destination, b.destination);
  EXPECT_EQ(a.gstin, b.gstin);
  EXPECT_EQ(a.vault_path, b.vault_path);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.applied, b.applied);
  EXPECT_EQ(a.applied_at, b.applied_at);
  EXPECT_EQ(a.pending, b.pending);
  EXPECT_EQ(a.push_in_flight, b.push_in_flight);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.first_attempt_at, b.first_attempt_at);
  EXPECT_EQ(a.next_attempt_at, b.next_attempt_at);
  EXPECT_EQ(a.last_error_class, b.last_error_class);
  EXPECT_EQ(a.last_error_code, b.last_error_code);
  EXPECT_EQ(a.last_error_provider, b.last_error_provider);
  EXPECT_EQ(a.last_error_message, b.last_error_message);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

void expect_same(const HistoryEntry& a, const HistoryEntry& b) {
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.destination, b.destination);
  EXPECT_EQ(a.gstin, b.gstin);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.error_class, b.error_class);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_provider, b.error_provider);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.duration, b.duration);
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

/// Outcomes of writes started together; `wait_all` resumes when the last one completes.
struct Outcomes : std::enable_shared_from_this<Outcomes> {
  explicit Outcomes(std::size_t n) : results(n), left(n) {}
  std::vector<Result<void>> results;
  std::size_t left = 0;
  std::optional<asio::steady_timer> done;

  auto handler(std::size_t i) {
    return [self = shared_from_this(), i](std::exception_ptr, Result<void> r) {
      self->results[i] = std::move(r);
      if (--self->left == 0 && self->done) self->done->cancel();
    };
  }
};

asio::awaitable<void> wait_all(std::shared_ptr<Outcomes> outcomes) {
  if (outcomes->left == 0) co_return;
  outcomes->done.emplace(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
  co_await outcomes->done->async_wait(asio::as_tuple(asio::use_awaitable));
}

/// Starts every write at once and waits for all of them (group commit in action).
asio::awaitable<std::vector<Result<void>>> write_all(SqliteStore* store, std::vector<PairRecord> records,
                                                     std::string message) {
  auto ex = co_await asio::this_coro::executor;
  auto outcomes = std::make_shared<Outcomes>(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::optional<HistoryEntry> h;
    if (!message.empty()) {
      h = entry(records[i].gstin, kT0, 1);
      h->message = message;
    }
    asio::co_spawn(ex, store->write(std::move(records[i]), std::move(h)), outcomes->handler(i));
  }
  co_await wait_all(outcomes);
  co_return std::move(outcomes->results);
}

std::vector<PairRecord> numbered_records(int from, int count) {
  std::vector<PairRecord> out;
  for (int i = from; i < from + count; ++i) {
    PairRecord r = full_record();
    r.gstin = fmt::format("GSTIN{:05}", i);
    r.applied->version.number = i;
    out.push_back(std::move(r));
  }
  return out;
}

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

// ---- round trips ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, RoundTripsEveryFieldAcrossReopen) {
  const PairRecord full = full_record();
  PairRecord bare;
  bare.destination = "webhook-erp";
  bare.gstin = "29AAGCB7383J1Z4";
  bare.vault_path = "kv1/nic/29AAGCB7383J1Z4";
  bare.state = PairState::pending;
  // Every state name round trips.
  const PairState states[] = {PairState::in_sync, PairState::pending,  PairState::retrying,
                              PairState::parked,  PairState::rejected, PairState::source_deleted};
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(write(*store, full, entry(full.gstin, kT0, 42)));
    ASSERT_TRUE(write(*store, bare));
    for (std::size_t i = 0; i < std::size(states); ++i) {
      PairRecord r = bare;
      r.destination = fmt::format("d{}", i);
      r.state = states[i];
      ASSERT_TRUE(write(*store, r));
    }
    EXPECT_TRUE(store->writable());
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs) << pairs.error().describe();
  ASSERT_EQ(pairs->size(), 2 + std::size(states));
  // Sorted by destination, gstin.
  expect_same((*pairs)[0], full);
  for (std::size_t i = 0; i < std::size(states); ++i) {
    EXPECT_EQ((*pairs)[1 + i].destination, fmt::format("d{}", i));
    EXPECT_EQ((*pairs)[1 + i].state, states[i]);
  }
  expect_same(pairs->back(), bare);
  EXPECT_FALSE(pairs->back().applied);
  EXPECT_FALSE(pairs->back().pending);

  auto history = run_for(io_, store->history("", 10));
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 1u);
  expect_same(history->front(), entry(full.gstin, kT0, 42));
}

TEST_F(SqliteStoreTest, WriteUpsertsOnePairAndAppendsHistory) {
  auto store = open();
  ASSERT_TRUE(store);
  PairRecord r = full_record();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0, 42, Outcome::failed)));
  r.state = PairState::in_sync;
  r.applied = r.pending;
  r.pending.reset();
  r.push_in_flight = false;
  r.attempts = 0;
  r.last_error_class.clear();
  r.last_error_code.clear();
  r.last_error_provider.clear();
  r.last_error_message.clear();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0 + 1s, 42, Outcome::applied)));
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  ASSERT_EQ(pairs->size(), 1u);
  expect_same(pairs->front(), r);
  auto history = run_for(io_, store->history(r.gstin, 10));
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].outcome, Outcome::applied);  // newest first
  EXPECT_EQ((*history)[1].outcome, Outcome::failed);
}

TEST_F(SqliteStoreTest, RemoveDropsThePairButKeepsItsHistory) {
  auto store = open();
  ASSERT_TRUE(store);
  PairRecord r = full_record();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0, 42)));
  ASSERT_TRUE(run_for(io_, store->remove(r.destination, r.gstin)));
  ASSERT_TRUE(run_for(io_, store->remove("no-such", "pair")));  // removing nothing is fine
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  EXPECT_TRUE(pairs->empty());
  auto history = run_for(io_, store->history(r.gstin, 10));
  ASSERT_TRUE(history);
  EXPECT_EQ(history->size(), 1u);
}

TEST_F(SqliteStoreTest, HistoryIsNewestFirstPerGstinAndLimited) {
  auto store = open();
  ASSERT_TRUE(store);
  for (int i = 0; i < 10; ++i) {
    const std::string gstin = i % 2 == 0 ? "EVEN" : "ODD";
    ASSERT_TRUE(write(*store, full_record(), entry(gstin, kT0 + std::chrono::seconds(i), i)));
  }
  auto even = run_for(io_, store->history("EVEN", 3));
  ASSERT_TRUE(even);
  ASSERT_EQ(even->size(), 3u);
  EXPECT_EQ((*even)[0].version.number, 8);
  EXPECT_EQ((*even)[1].version.number, 6);
  EXPECT_EQ((*even)[2].version.number, 4);
  auto all = run_for(io_, store->history("", 100));
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 10u);
  EXPECT_TRUE(std::is_sorted(all->begin(), all->end(), [](auto& a, auto& b) { return a.at > b.at; }));
  auto none = run_for(io_, store->history("NOBODY", 5));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

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

TEST_F(SqliteStoreTest, TrimHistoryDropsOldEntriesInChunks) {
  auto store = open();
  ASSERT_TRUE(store);
  // More old entries than one trim chunk (5000), so that trimming takes several transactions.
  constexpr int kOld = 6000;
  constexpr int kNew = 50;
  std::vector<PairRecord> records = numbered_records(0, kOld + kNew);
  auto outcomes = std::make_shared<Outcomes>(records.size());
  for (int i = 0; i < kOld + kNew; ++i) {
    // One history entry per write: the old ones a day back.
    auto h = entry(records[i].gstin, i < kOld ? kT0 - 24h + std::chrono::seconds(i) : kT0 + std::chrono::seconds(i), i);
    asio::co_spawn(io_, store->write(std::move(records[i]), std::move(h)), outcomes->handler(i));
  }
  run_for(io_, wait_all(outcomes));
  for (const auto& r : outcomes->results) ASSERT_TRUE(r);
  const auto transactions_before = store->stats().transactions;
  auto removed = run_for(io_, store->trim_history(kT0 - 1h));
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_EQ(*removed, static_cast<std::size_t>(kOld));
  EXPECT_GE(store->stats().transactions - transactions_before, 2u);
  auto rest = run_for(io_, store->history("", 100000));
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->size(), static_cast<std::size_t>(kNew));
  for (const auto& h : *rest) EXPECT_GE(h.at, kT0);
  auto again = run_for(io_, store->trim_history(kT0 - 1h));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
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
  EXPECT_EQ(sql(db_path(), "PRAGMA user_version"), "1\n");
  // Opening a current database again migrates nothing and keeps the data.
  auto store = open();
  ASSERT_TRUE(store);
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->size(), 1u);
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefusedAndLeftAlone) {
  sql(db_path(), "PRAGMA application_id = 1313035097; PRAGMA user_version = 7; CREATE TABLE future (x);");
  auto store = SqliteStore::open({.path = db_path()});
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_schema));
  EXPECT_NE(store.error().message.find("schema version 7"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("up to version 1"), std::string::npos) << store.error().message;
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

TEST_F(SqliteStoreTest, ConcurrentWritesShareTransactions) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kWrites = 500;
  const auto before = store->stats();
  auto results = run_for(io_, write_all(store.get(), numbered_records(0, kWrites), "ok"));
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  const auto after = store->stats();
  EXPECT_EQ(after.writes - before.writes, static_cast<std::uint64_t>(kWrites));
  // Each transaction is one fsync; many writes waiting together must share them.
  EXPECT_LT(after.transactions - before.transactions, static_cast<std::uint64_t>(kWrites) / 4)
      << "transactions: " << after.transactions - before.transactions;
  EXPECT_GT(after.largest_batch, 4u);
  EXPECT_EQ(after.queued, 0u);
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs);
  EXPECT_EQ(pairs->size(), static_cast<std::size_t>(kWrites));
}

TEST_F(SqliteStoreTest, CloseCommitsEverythingQueuedAndRefusesLaterWork) {
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

TEST_F(SqliteStoreTest, AWriteThatCompletedSurvivesSigkill) {
  const auto state_dir = tmp_.path() / "state";
  testing::Process child(
      {.argv = {testing::built_program("tests/nicsync-test-ledger-child"), "write", state_dir.string(), "16"}});
  // Kill it while it keeps writing: some transactions are in flight at that moment.
  ASSERT_TRUE(child.wait_for_output("durable 300\n", 20s)) << child.output();
  child.kill();
  const std::string output = child.output();

  std::set<std::int64_t> durable;
  std::size_t pos = 0;
  while ((pos = output.find("durable ", pos)) != std::string::npos) {
    const auto end = output.find('\n', pos);
    if (end == std::string::npos) break;  // a line cut short by the kill
    std::int64_t n = 0;
    std::from_chars(output.data() + pos + 8, output.data() + end, n);
    durable.insert(n);
    pos = end;
  }
  ASSERT_GE(durable.size(), 300u);

  // The lock went with the process; the ledger holds every write the child saw complete.
  auto dir = StateDirectory::open(state_dir);
  ASSERT_TRUE(dir) << dir.error().describe();
  auto store = open({.path = dir->file(SqliteStore::kFileName)});
  ASSERT_TRUE(store);
  auto pairs = store->load_pairs();
  ASSERT_TRUE(pairs) << pairs.error().describe();
  std::set<std::int64_t> present;
  for (const auto& p : *pairs) {
    ASSERT_TRUE(p.applied);
    EXPECT_EQ(p.gstin, fmt::format("GSTIN{}", p.applied->version.number));
    present.insert(p.applied->version.number);
  }
  for (const auto n : durable) EXPECT_TRUE(present.count(n)) << "write " << n << " completed but is not in the ledger";
  auto history = run_for(io_, store->history("", 1'000'000));
  ASSERT_TRUE(history);
  EXPECT_EQ(history->size(), pairs->size());  // each write was one record plus one entry, atomically
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
