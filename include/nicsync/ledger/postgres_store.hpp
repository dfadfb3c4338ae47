#pragma once
/// \file
/// The ledger on PostgreSQL: the same `Store` as the SQLite one, in a schema of its own in a
/// database the operators already run, written by a dedicated thread that commits many
/// deliveries per transaction (group commit over libpq's pipeline mode).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/secret.hpp"
#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger {

struct PostgresStoreOptions {
  /// A libpq connection string (`key=value …` or a `postgresql://` URI); empty: libpq's PG*
  /// environment variables say everything. May hold a password: never logged or shown.
  Secret conninfo;
  /// If set, a file holding the connection string, read again at every connection attempt
  /// (a rotated password is picked up without a restart); takes the place of `conninfo`.
  std::string conninfo_file;
  /// The PostgreSQL schema holding the ledger's tables; a plain identifier (`[a-z_][a-z0-9_]*`).
  std::string schema = "nicsync";
  /// Most writes committed in one transaction.
  std::size_t max_batch = 4096;
  /// Limit on establishing one connection (TCP, TLS, authentication, the checks after).
  std::chrono::milliseconds connect_timeout{10'000};
  /// Limit on one batch's round trip; a server that does not answer by then counts as lost.
  std::chrono::milliseconds io_timeout{30'000};
  /// Reconnection after a lost connection: at once, then after `reconnect_min`, doubling up
  /// to `reconnect_max`.
  std::chrono::milliseconds reconnect_min{1'000};
  std::chrono::milliseconds reconnect_max{30'000};
  /// How long `open` keeps trying a server that refuses connections or is still starting up.
  std::chrono::milliseconds open_wait{20'000};
};

/// Counters for tests, benchmarks and metrics.
struct PostgresStoreStats {
  std::uint64_t transactions = 0;         ///< committed transactions
  std::uint64_t writes = 0;               ///< writes and removes made durable
  std::uint64_t failed_transactions = 0;  ///< transactions that failed (their writes all failed)
  std::size_t largest_batch = 0;          ///< most writes in one transaction so far
  std::size_t queued = 0;                 ///< operations waiting for the writer thread now
  std::uint64_t connections = 0;          ///< connections established (1 + reconnections)
  bool connected = false;                 ///< whether the writer thread holds a live connection
};

/// `Store` on PostgreSQL 13 or newer (tested with 15).
///
/// One connection, owned by one writer thread: operations are queued to it and complete on the
/// awaiting coroutine's executor, so the event loop never waits for the network or the server.
/// Everything queued while a transaction commits goes into the next one, sent as one pipeline
/// (one round trip). The daemon creates and migrates its schema itself, under an advisory lock
/// so that two daemons starting at once cannot both migrate; a schema newer than this binary
/// knows is refused.
///
/// A lost connection fails the writes of the transaction it broke (the caller retries them)
/// and makes `writable()` false with the reason and what to do in `last_write_error()`; the
/// thread reconnects with backoff and `writable()` is true again once it is back. While it is
/// away, operations fail at once with that reason. Destroy (or `close()`) the store before the
/// io_context its callers run on.
class PostgresStore final : public Store {
 public:
  /// The schema this binary writes; a ledger schema with a higher version is refused.
  static constexpr int kSchemaVersion = 2;

  /// Connects (waiting up to `open_wait` for a server that is starting), creates or migrates
  /// the schema and starts the writer thread. Blocks. Errors: `ledger_io` (unreachable, login
  /// refused, missing grants, read-only server: the message says what to do),
  /// `ledger_schema` (newer schema, or a schema of another program), `config_invalid`.
  static Result<std::unique_ptr<PostgresStore>> open(PostgresStoreOptions options);

  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

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

  /// Commits (or fails) everything queued, then stops the writer thread and disconnects.
  /// Blocks. Operations started later fail with `cancelled`. Idempotent.
  void close() override;

  [[nodiscard]] PostgresStoreStats stats() const noexcept;

  /// Replicas: from now on every transaction first checks that `epoch` is the current leader
  /// lease and has not run out (by the database's clock), holding the lease row until it
  /// commits; otherwise it changes nothing and its writes fail with `ledger_fenced`. Nothing:
  /// no check (a standby writes nothing; a single daemon without replicas).
  void set_fence(std::optional<std::int64_t> epoch) noexcept;

  struct Impl;

 private:
  explicit PostgresStore(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

/// One line of `check_postgres`: what was checked, and the finding.
struct PostgresCheckLine {
  std::string check;   ///< e.g. "connection", "grants"
  std::string result;  ///< "ok: …" or what is wrong and what to do
  bool ok = true;
};

/// For `nicsyncd check --online`: connects once and checks the server (reachable, login,
/// not a read-only standby, UTF-8, durable commits), the role's grants on the schema and its
/// tables, and the schema's version against this binary. Changes nothing. The first line is
/// the connection; later lines are missing when it failed.
std::vector<PostgresCheckLine> check_postgres(const PostgresStoreOptions& options);

/// Where a connection string points, for messages: host(s), port, database and user, never a
/// password (e.g. "host=db1 port=5432 dbname=nicsync user=nicsync"). Unparsable text gives a
/// fixed placeholder rather than any part of it.
std::string describe_conninfo(std::string_view conninfo);

/// Whether a connection string holds a password (`password=` or in a URI's user info).
bool conninfo_has_password(std::string_view conninfo);

/// Whether `name` can be the ledger's schema: a plain lower-case SQL identifier of at most 63
/// bytes that is not reserved for the system (`pg_…`, `information_schema`).
bool valid_schema_name(std::string_view name) noexcept;

}  // namespace nicsync::ledger
