#pragma once
/// \file
/// The default ledger: one SQLite file in the state directory, written by a dedicated thread
/// that commits many deliveries per transaction (group commit).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger {

struct SqliteStoreOptions {
  /// The database file, normally `StateDirectory::file(SqliteStore::kFileName)`. Created `0600`.
  std::filesystem::path path;
  /// How long SQLite waits for a lock held by another connection (e.g. an operator's `sqlite3`).
  std::chrono::milliseconds busy_timeout{5000};
  /// Most writes committed in one transaction.
  std::size_t max_batch = 4096;
  /// Cap on the database size in bytes (SQLite `max_page_count`); 0 = only the disk limits it.
  /// Reaching it fails writes with `ledger_full`, as a full disk does.
  std::int64_t max_size_bytes = 0;
  /// Run `PRAGMA quick_check` at open (seconds on a very large ledger; keep it on).
  bool quick_check = true;
};

/// Counters for tests, benchmarks and metrics.
struct SqliteStoreStats {
  std::uint64_t transactions = 0;         ///< committed transactions: one WAL fsync each
  std::uint64_t writes = 0;               ///< writes and removes made durable
  std::uint64_t failed_transactions = 0;  ///< commits that failed (their writes all failed)
  std::size_t largest_batch = 0;          ///< most writes in one transaction so far
  std::size_t queued = 0;                 ///< operations waiting for the writer thread now
};

/// `Store` on SQLite (WAL, `synchronous=FULL`, schema versioned by `PRAGMA user_version`).
///
/// One connection, owned by one writer thread: `write`, `remove`, `trim_history` and `history`
/// are queued to it and complete on the awaiting coroutine's executor, so the event loop never
/// waits for SQLite or fsync. Everything queued while a transaction commits goes into the next
/// one. A failed commit fails every write of its transaction and makes `writable()` false until
/// a commit succeeds again. Operations are not cancellable: once queued, a write is committed
/// or fails. Destroy (or `close()`) the store before the io_context its callers run on.
class SqliteStore final : public Store {
 public:
  static constexpr std::string_view kFileName = "ledger.db";
  /// The schema this binary writes; a database with a higher `user_version` is refused.
  static constexpr int kSchemaVersion = 2;

  /// Opens (creating, checking and migrating) the database and starts the writer thread.
  /// Blocks. Errors: `ledger_io`, `ledger_corrupt` (quick_check failed, not a database),
  /// `ledger_schema` (newer schema, or not a nicsync ledger), `ledger_full`.
  static Result<std::unique_ptr<SqliteStore>> open(SqliteStoreOptions options);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Blocks until the writer thread has read every record; for start-up.
  Result<std::vector<PairRecord>> load_pairs() override;
  boost::asio::awaitable<Result<std::vector<PairRecord>>> read_pairs() override;
  boost::asio::awaitable<Result<void>> write(PairRecord record, std::optional<HistoryEntry> history) override;
  boost::asio::awaitable<Result<void>> remove(std::string destination, std::string gstin) override;
  boost::asio::awaitable<Result<std::vector<HistoryEntry>>> history(std::string gstin, std::size_t limit) override;
  /// Deletes in chunks, letting writes in between, and completes after the last chunk.
  boost::asio::awaitable<Result<std::size_t>> trim_history(SystemTime cutoff) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> read_sealed(std::string name) override;
  boost::asio::awaitable<Result<void>> write_sealed(std::string name, std::string sealed) override;
  boost::asio::awaitable<Result<void>> append_history(HistoryEntry entry) override;
  [[nodiscard]] bool writable() const noexcept override;
  [[nodiscard]] std::string last_write_error() const override;

  /// Commits (or fails) everything queued, then stops the writer thread and closes the
  /// database. Blocks. Operations started later fail with `cancelled`. Idempotent.
  void close() override;

  [[nodiscard]] SqliteStoreStats stats() const noexcept;

  struct Impl;

 private:
  explicit SqliteStore(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::ledger
