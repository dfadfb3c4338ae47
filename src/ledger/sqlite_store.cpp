// SQLite ledger. One connection, used only by the writer thread once open() returns: every
// operation is a job in a queue; the thread takes everything queued, runs the mutations in one
// transaction (one WAL fsync under synchronous=FULL), then the reads, and posts each result to
// the executor of the coroutine that asked.
#include "nicsync/ledger/sqlite_store.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <variant>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <sqlite3.h>
#include <sys/stat.h>

namespace asio = boost::asio;

namespace nicsync::ledger {
namespace {

// 'NCSY' in PRAGMA application_id marks the file as a nicsync ledger.
constexpr std::int32_t kApplicationId = 0x4E435359;
// History rows deleted per transaction by trim_history, so that writes are not held up.
constexpr std::int64_t kTrimChunk = 5000;
// The WAL is truncated back to this size after a checkpoint.
constexpr std::int64_t kJournalSizeLimit = 16 << 20;
// The writer frees SQLite's page cache after this long without work (an idle daemon holds
// tens of thousands of pairs for months between rotations).
constexpr std::chrono::seconds kReleaseCacheAfter{1};

// ---------------------------------------------------------------------------------------------
// Small RAII over the C API

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

/// A prepared statement. Binding records the first failure so that `run`/`step` report it.
class Stmt {
 public:
  Stmt() noexcept = default;
  explicit Stmt(sqlite3_stmt* s) noexcept : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)), bind_rc_(o.bind_rc_) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    std::swap(bind_rc_, o.bind_rc_);
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  void bind(int i, std::int64_t v) noexcept { note(sqlite3_bind_int64(s_, i, v)); }
  void bind(int i, bool v) noexcept { bind(i, static_cast<std::int64_t>(v ? 1 : 0)); }
  void bind(int i, std::string_view v) noexcept {
    // A null data pointer would bind NULL; an empty string must stay an empty string. The
    // bound text must outlive the step (it does: it belongs to the job being run).
    note(sqlite3_bind_text64(s_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void bind_null(int i) noexcept { note(sqlite3_bind_null(s_, i)); }

  /// Steps once; SQLITE_ROW, SQLITE_DONE or an error (including a failed bind).
  int step() noexcept { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }
  /// Runs a statement that returns no rows; SQLITE_OK or the error. Resets it.
  int run() noexcept {
    int rc = step();
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
    reset();
    return rc;
  }
  void reset() noexcept {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    bind_rc_ = SQLITE_OK;
  }

  [[nodiscard]] bool is_null(int col) const noexcept { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(s_, col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
  }
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  void note(int rc) noexcept {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

/// Resets a statement when a scope that reads rows ends (an unreset SELECT keeps a read
/// transaction open and would pin the WAL).
struct ResetOnExit {
  Stmt& s;
  ~ResetOnExit() { s.reset(); }
};

std::int64_t to_ns(SystemTime t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
SystemTime from_ns(std::int64_t ns) noexcept {
  return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(ns)));
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// ---------------------------------------------------------------------------------------------
// Errors

/// Errors that concern one statement's data; the transaction and the other writes go on.
bool is_data_error(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return true;
    default: return false;
  }
}

/// The project error for a SQLite failure, with what the operator should do about it.
Error sqlite_error(sqlite3* db, int rc, std::string_view what, const std::filesystem::path& path) {
  const std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int sys = db != nullptr ? sqlite3_system_errno(db) : 0;
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT) {
    return Error(Errc::ledger_full,
                 fmt::format("cannot {} ledger {}: {}; the disk (or the ledger's size limit) is full: free space "
                             "and deliveries resume by themselves",
                             what, path.string(), detail));
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Error(Errc::ledger_corrupt,
                 fmt::format("cannot {} ledger {}: {}; the file is damaged: stop nicsyncd, move it aside and restore "
                             "a backup (without a ledger every credential is pushed once more)",
                             what, path.string(), detail));
  }
  std::string advice = "check the disk and the file's ownership and permissions";
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    advice = "another program holds a lock on it; close it (e.g. an sqlite3 shell)";
  }
  return Error(Errc::ledger_io, fmt::format("cannot {} ledger {}: {}{}; {}", what, path.string(), detail,
                                            sys != 0 ? fmt::format(" ({})", errno_text(sys)) : std::string(), advice));
}

// ---------------------------------------------------------------------------------------------
// Schema and migrations. A migration takes the database from version N-1 to N inside one
// transaction; the runner applies those above the file's user_version in order. To change the
// schema: add migrate_to_v2, append it to kMigrations and raise SqliteStore::kSchemaVersion.

using Migration = int (*)(sqlite3* db);

int migrate_to_v1(sqlite3* db) {
  static constexpr const char* kSql = R"sql(
    CREATE TABLE pairs (
      destination          TEXT    NOT NULL,
      gstin                TEXT    NOT NULL,
      vault_path           TEXT    NOT NULL,
      state                TEXT    NOT NULL,
      applied_version      INTEGER,
      applied_lineage      TEXT,
      applied_fingerprint  TEXT,
      applied_at_ns        INTEGER NOT NULL,
      pending_version      INTEGER,
      pending_lineage      TEXT,
      pending_fingerprint  TEXT,
      push_in_flight       INTEGER NOT NULL,
      attempts             INTEGER NOT NULL,
      first_attempt_at_ns  INTEGER NOT NULL,
      next_attempt_at_ns   INTEGER NOT NULL,
      last_error_class     TEXT    NOT NULL,
      last_error_code      TEXT    NOT NULL,
      last_error_provider  TEXT    NOT NULL,
      last_error_message   TEXT    NOT NULL,
      updated_at_ns        INTEGER NOT NULL,
      PRIMARY KEY (destination, gstin)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE history (
      id              INTEGER PRIMARY KEY,
      at_ns           INTEGER NOT NULL,
      destination     TEXT    NOT NULL,
      gstin           TEXT    NOT NULL,
      version         INTEGER NOT NULL,
      lineage         TEXT    NOT NULL,
      outcome         TEXT    NOT NULL,
      attempt         INTEGER NOT NULL,
      error_class     TEXT    NOT NULL,
      error_code      TEXT    NOT NULL,
      error_provider  TEXT    NOT NULL,
      message         TEXT    NOT NULL,
      duration_ms     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX history_by_gstin ON history (gstin, at_ns);
    CREATE INDEX history_by_time ON history (at_ns);
    CREATE TRIGGER history_append_only BEFORE UPDATE ON history
      BEGIN SELECT RAISE(ABORT, 'the history is append-only'); END;
  )sql";
  return sqlite3_exec(db, kSql, nullptr, nullptr, nullptr);
}

constexpr Migration kMigrations[] = {&migrate_to_v1};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion, "one migration per schema version");

constexpr const char* kPairColumns =
    "destination, gstin, vault_path, state, applied_version, applied_lineage, applied_fingerprint, applied_at_ns, "
    "pending_version, pending_lineage, pending_fingerprint, push_in_flight, attempts, first_attempt_at_ns, "
    "next_attempt_at_ns, last_error_class, last_error_code, last_error_provider, last_error_message, updated_at_ns";

constexpr const char* kUpsertPair =
    "INSERT INTO pairs (destination, gstin, vault_path, state, applied_version, applied_lineage, "
    "applied_fingerprint, applied_at_ns, pending_version, pending_lineage, pending_fingerprint, push_in_flight, "
    "attempts, first_attempt_at_ns, next_attempt_at_ns, last_error_class, last_error_code, last_error_provider, "
    "last_error_message, updated_at_ns) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
    "ON CONFLICT (destination, gstin) DO UPDATE SET vault_path = excluded.vault_path, state = excluded.state, "
    "applied_version = excluded.applied_version, applied_lineage = excluded.applied_lineage, "
    "applied_fingerprint = excluded.applied_fingerprint, applied_at_ns = excluded.applied_at_ns, "
    "pending_version = excluded.pending_version, pending_lineage = excluded.pending_lineage, "
    "pending_fingerprint = excluded.pending_fingerprint, push_in_flight = excluded.push_in_flight, "
    "attempts = excluded.attempts, first_attempt_at_ns = excluded.first_attempt_at_ns, "
    "next_attempt_at_ns = excluded.next_attempt_at_ns, last_error_class = excluded.last_error_class, "
    "last_error_code = excluded.last_error_code, last_error_provider = excluded.last_error_provider, "
    "last_error_message = excluded.last_error_message, updated_at_ns = excluded.updated_at_ns";

constexpr const char* kInsertHistory =
    "INSERT INTO history (at_ns, destination, gstin, version, lineage, outcome, attempt, error_class, error_code, "
    "error_provider, message, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

constexpr const char* kHistoryColumns =
    "at_ns, destination, gstin, version, lineage, outcome, attempt, error_class, error_code, error_provider, "
    "message, duration_ms";

// ---------------------------------------------------------------------------------------------
// Completions: the concrete Asio handler, posted to its own executor (never run inline on the
// writer thread). Boost 1.81's any_completion_handler re-wraps itself through post: not used.

template <class R>
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void post(R result) = 0;
};

template <class R, class H>
class CompletionOf final : public Completion<R> {
 public:
  explicit CompletionOf(H h) : handler_(std::move(h)) {}
  void post(R result) override {
    auto ex = asio::get_associated_executor(handler_);
    asio::post(ex, [h = std::move(handler_), r = std::move(result)]() mutable { std::move(h)(std::move(r)); });
  }

 private:
  H handler_;
};

template <class R>
using Done = std::unique_ptr<Completion<R>>;

template <class R, class H>
Done<R> make_done(H handler) {
  return std::make_unique<CompletionOf<R, H>>(std::move(handler));
}

/// Completes once: the pointer is null afterwards, so a job is never answered twice.
template <class R>
void finish(Done<R>& done, R result) {
  if (done) std::exchange(done, nullptr)->post(std::move(result));
}

// ---------------------------------------------------------------------------------------------
// Jobs

struct WriteJob {
  PairRecord record;
  std::optional<HistoryEntry> history;
  Done<Result<void>> done;
};
struct RemoveJob {
  std::string destination;
  std::string gstin;
  Done<Result<void>> done;
};
struct TrimJob {
  std::int64_t cutoff_ns = 0;
  std::size_t removed = 0;  // by earlier chunks
  Done<Result<std::size_t>> done;
};
struct HistoryJob {
  std::string gstin;
  std::size_t limit = 0;
  Done<Result<std::vector<HistoryEntry>>> done;
};
struct LoadJob {
  std::promise<Result<std::vector<PairRecord>>> promise;
  bool answered = false;
};
using Job = std::variant<WriteJob, RemoveJob, TrimJob, HistoryJob, LoadJob>;

bool is_mutation(const Job& j) noexcept {
  return std::holds_alternative<WriteJob>(j) || std::holds_alternative<RemoveJob>(j) ||
         std::holds_alternative<TrimJob>(j);
}

/// Answers a job that did not run with `error`.
void fail(Job& job, const Error& error) {
  std::visit(
      [&](auto& j) {
        using J = std::decay_t<decltype(j)>;
        if constexpr (std::is_same_v<J, LoadJob>) {
          if (!j.answered) {
            j.answered = true;
            j.promise.set_value(error);
          }
        } else if constexpr (std::is_same_v<J, WriteJob> || std::is_same_v<J, RemoveJob>) {
          finish(j.done, Result<void>(error));
        } else if constexpr (std::is_same_v<J, TrimJob>) {
          finish(j.done, Result<std::size_t>(error));
        } else {
          finish(j.done, Result<std::vector<HistoryEntry>>(error));
        }
      },
      job);
}

Result<void> tighten_mode(const std::filesystem::path& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  if (create) flags |= O_CREAT;
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (!create && errno == ENOENT) return {};
    return Error(Errc::ledger_io, fmt::format("cannot open ledger file {}: {}; check its ownership and permissions",
                                              path.string(), errno_text(errno)));
  }
  struct stat st {};
  int rc = ::fstat(fd, &st);
  if (rc == 0 && (st.st_mode & 07777) != 0600) rc = ::fchmod(fd, 0600);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Error(Errc::ledger_io,
                 fmt::format("cannot make ledger file {} private (mode 0600): {}", path.string(), errno_text(err)));
  }
  return {};
}

}  // namespace

// =============================================================================================

struct SqliteStore::Impl {
  explicit Impl(SqliteStoreOptions o) : options(std::move(o)) {}

  SqliteStoreOptions options;
  DbHandle db;

  Stmt begin, commit, rollback, savepoint, release, rollback_to;
  Stmt upsert_pair, insert_history, delete_pair, trim_chunk, history_all, history_gstin, load_all;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;  // guarded by mu
  bool closed = false;    // guarded by mu: no new jobs
  std::thread writer;
  std::once_flag close_once;

  std::atomic<bool> ok_to_write{true};
  mutable std::mutex error_mu;  // guards last_error (written by the writer thread)
  std::string last_error;
  std::atomic<std::uint64_t> transactions{0};
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> failed_transactions{0};
  std::atomic<std::size_t> largest_batch{0};
  std::atomic<std::size_t> queued{0};

  Error error(int rc, std::string_view what) const { return sqlite_error(db.get(), rc, what, options.path); }

  int prepare(Stmt& s, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    s = Stmt(raw);
    return rc;
  }

  // ---- open (calling thread)

  Result<std::int64_t> pragma_int(const char* sql) {
    Stmt s;
    if (const int rc = prepare(s, sql); rc != SQLITE_OK) return error(rc, "read");
    const int rc = s.step();
    if (rc == SQLITE_ROW) return s.int64(0);
    if (rc == SQLITE_DONE) return 0;
    return error(rc, "read");
  }

  Result<std::string> pragma_text(const char* sql) {
    Stmt s;
    if (const int rc = prepare(s, sql); rc != SQLITE_OK) return error(rc, "read");
    const int rc = s.step();
    if (rc == SQLITE_ROW) return s.text(0);
    if (rc == SQLITE_DONE) return std::string();
    return error(rc, "read");
  }

  Result<void> exec(const char* sql, std::string_view what) {
    const int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return error(rc, what);
    return {};
  }

  Result<void> open_database() {
    const auto& path = options.path;
    // Create the file ourselves so that it is 0600 from the first byte: SQLite gives the -wal
    // and -shm files the mode of the database file.
    if (auto r = tighten_mode(path, true); !r) return r;
    // The file's name must outlive a power cut as much as the commits in it.
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    for (const char* suffix : {"-wal", "-shm"}) {
      if (auto r = tighten_mode(path.string() + suffix, false); !r) return r;
    }
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
    db.reset(raw);
    if (rc != SQLITE_OK) return error(rc, "open");
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), static_cast<int>(std::min<std::int64_t>(options.busy_timeout.count(), INT_MAX)));

    // A file that is not a database fails here, before anything is written to it.
    auto mode = pragma_text("PRAGMA journal_mode = WAL");
    if (!mode) return mode.error();
    if (*mode != "wal") {
      return Error(Errc::ledger_io, fmt::format("ledger {} cannot use write-ahead logging (journal mode stays '{}'); "
                                                "put the state directory on a local file system",
                                                path.string(), *mode));
    }
    // FULL: a commit is on disk (WAL fsynced) before write() completes.
    if (auto r =
            exec("PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA trusted_schema = OFF;", "configure");
        !r) {
      return r;
    }
    if (auto r = exec(fmt::format("PRAGMA journal_size_limit = {}", kJournalSizeLimit).c_str(), "configure"); !r) {
      return r;
    }
    if (options.max_size_bytes > 0) {
      auto page_size = pragma_int("PRAGMA page_size");
      if (!page_size) return page_size.error();
      const std::int64_t pages =
          std::max<std::int64_t>(1, options.max_size_bytes / std::max<std::int64_t>(*page_size, 512));
      if (auto r = exec(fmt::format("PRAGMA max_page_count = {}", pages).c_str(), "configure"); !r) return r;
    }
    if (options.quick_check) {
      if (auto r = quick_check(); !r) return r;
    }
    return migrate();
  }

  Result<void> quick_check() {
    Stmt s;
    if (const int rc = prepare(s, "PRAGMA quick_check(5)"); rc != SQLITE_OK) return error(rc, "check");
    std::vector<std::string> problems;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) problems.push_back(s.text(0));
    if (rc != SQLITE_DONE) return error(rc, "check");
    if (problems.size() == 1 && problems.front() == "ok") return {};
    std::string listed;
    for (const auto& p : problems) listed += (listed.empty() ? "" : "; ") + p;
    return Error(Errc::ledger_corrupt,
                 fmt::format("ledger {} failed its integrity check ({}); stop nicsyncd, move the file aside and "
                             "restore a backup (without a ledger every credential is pushed once more)",
                             options.path.string(), listed));
  }

  Result<void> migrate() {
    auto app_id = pragma_int("PRAGMA application_id");
    if (!app_id) return app_id.error();
    auto version = pragma_int("PRAGMA user_version");
    if (!version) return version.error();
    const auto& path = options.path.string();
    if (*app_id != 0 && *app_id != kApplicationId) {
      return Error(Errc::ledger_schema,
                   fmt::format("{} is an SQLite database of another program (application_id {:#x}), not a nicsync "
                               "ledger; point state_dir elsewhere",
                               path, *app_id));
    }
    if (*version > kSchemaVersion) {
      return Error(Errc::ledger_schema,
                   fmt::format("ledger {} has schema version {}, but this nicsyncd understands up to version {}: it "
                               "was written by a newer nicsyncd; run that version (or restore a backup made before "
                               "the upgrade)",
                               path, *version, kSchemaVersion));
    }
    if (*version == 0) {
      auto objects = pragma_int("SELECT count(*) FROM sqlite_schema");
      if (!objects) return objects.error();
      if (*objects != 0) {
        return Error(Errc::ledger_schema,
                     fmt::format("{} holds tables but is not a nicsync ledger (no schema version); point state_dir "
                                 "elsewhere",
                                 path));
      }
    }
    for (auto v = *version; v < kSchemaVersion; ++v) {
      if (auto r = exec("BEGIN IMMEDIATE", "migrate"); !r) return r;
      int rc = kMigrations[v](db.get());
      if (rc == SQLITE_OK) {
        rc = sqlite3_exec(
            db.get(),
            fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId, v + 1).c_str(), nullptr,
            nullptr, nullptr);
      }
      if (rc == SQLITE_OK) rc = sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) {
        Error e = error(rc, fmt::format("migrate to schema version {} of", v + 1));
        sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        return e;
      }
    }
    return {};
  }

  Result<void> prepare_all() {
    const std::pair<Stmt*, std::string> all[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&savepoint, "SAVEPOINT job"},
        {&release, "RELEASE job"},
        {&rollback_to, "ROLLBACK TO job"},
        {&upsert_pair, kUpsertPair},
        {&insert_history, kInsertHistory},
        {&delete_pair, "DELETE FROM pairs WHERE destination = ?1 AND gstin = ?2"},
        {&trim_chunk,
         "DELETE FROM history WHERE id IN (SELECT id FROM history WHERE at_ns < ?1 ORDER BY at_ns LIMIT "
         "?2)"},
        {&history_all, fmt::format("SELECT {} FROM history ORDER BY at_ns DESC, id DESC LIMIT ?1", kHistoryColumns)},
        {&history_gstin,
         fmt::format("SELECT {} FROM history WHERE gstin = ?1 ORDER BY at_ns DESC, id DESC LIMIT ?2", kHistoryColumns)},
        {&load_all, fmt::format("SELECT {} FROM pairs ORDER BY destination, gstin", kPairColumns)},
    };
    for (const auto& [stmt, sql] : all) {
      if (const int rc = prepare(*stmt, sql.c_str()); rc != SQLITE_OK) return error(rc, "prepare statements for");
    }
    return {};
  }

  // ---- submitting (any thread)

  void submit(Job job) {
    {
      std::lock_guard lock(mu);
      if (!closed) {
        queue.push_back(std::move(job));
        queued.store(queue.size(), std::memory_order_relaxed);
        cv.notify_one();
        return;
      }
    }
    fail(job, Error(Errc::cancelled, "the ledger is closed: nicsyncd is shutting down"));
  }

  // ---- the writer thread

  void run() {
    std::deque<Job> batch;
    const std::size_t max_batch = std::max<std::size_t>(options.max_batch, 1);
    bool cache_released = true;
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(mu);
        if (!cache_released && !cv.wait_for(lock, kReleaseCacheAfter, [&] { return closed || !queue.empty(); })) {
          // Idle: the page cache (up to 2 MiB, filled by a burst of writes) goes back to the
          // allocator and from there to the system, whenever the daemon's own trim ran (often
          // before this); the next write reads its pages again from the OS's cache.
          lock.unlock();
          sqlite3_db_release_memory(db.get());
          ::malloc_trim(0);
          cache_released = true;
          continue;
        }
        cv.wait(lock, [&] { return closed || !queue.empty(); });
        if (queue.empty()) return;  // closed and drained
        cache_released = false;
        // Usually everything goes: a swap keeps the lock (which write() takes) for nanoseconds.
        if (queue.size() <= max_batch) {
          std::swap(batch, queue);
        } else {
          for (std::size_t i = 0; i < max_batch; ++i) {
            batch.push_back(std::move(queue.front()));
            queue.pop_front();
          }
        }
        queued.store(queue.size(), std::memory_order_relaxed);
      }
      try {
        process(batch);
      } catch (const std::exception& x) {
        if (db && sqlite3_get_autocommit(db.get()) == 0) rollback.run();
        const Error e(Errc::internal, fmt::format("ledger writer failed: {}", x.what()));
        for (auto& job : batch) fail(job, e);
      }
    }
  }

  void process(std::deque<Job>& batch) {
    std::size_t mutations = 0;
    for (const auto& job : batch) mutations += is_mutation(job) ? 1 : 0;
    if (mutations > 0) commit_mutations(batch, mutations);
    // Reads after the commit: a read sees every write queued before it.
    for (auto& job : batch) {
      if (auto* h = std::get_if<HistoryJob>(&job)) {
        finish(h->done, read_history(*h));
      } else if (auto* l = std::get_if<LoadJob>(&job)) {
        l->answered = true;
        l->promise.set_value(read_pairs());
      }
    }
  }

  void commit_mutations(std::deque<Job>& batch, std::size_t mutations) {
    // Per-job outcomes while the transaction is open; sent only once it is committed.
    std::vector<std::optional<Error>> job_errors(batch.size());
    std::vector<bool> trim_more(batch.size(), false);
    std::optional<Error> txn_error;
    if (const int rc = begin.run(); rc != SQLITE_OK) txn_error = error(rc, "begin a transaction in");
    for (std::size_t i = 0; i < batch.size() && !txn_error; ++i) {
      if (!is_mutation(batch[i])) continue;
      if (int rc = savepoint.run(); rc != SQLITE_OK) {
        txn_error = error(rc, "write");
        break;
      }
      bool more = false;
      const int rc = apply(batch[i], more);
      if (rc == SQLITE_OK) {
        if (const int rrc = release.run(); rrc != SQLITE_OK) txn_error = error(rrc, "write");
        trim_more[i] = more;
      } else if (is_data_error(rc) && sqlite3_get_autocommit(db.get()) == 0) {
        // Only this job's data is at fault: undo it alone, the others still commit.
        job_errors[i] = error(rc, "write a record to");
        rollback_to.run();
        release.run();
      } else {
        txn_error = error(rc, "write");
      }
    }
    if (!txn_error) {
      if (const int rc = commit.run(); rc != SQLITE_OK) txn_error = error(rc, "commit to");
    }
    if (txn_error) {
      if (sqlite3_get_autocommit(db.get()) == 0) rollback.run();
      {
        std::lock_guard lock(error_mu);
        last_error = txn_error->message;
      }
      ok_to_write.store(false);
      failed_transactions.fetch_add(1, std::memory_order_relaxed);
      for (auto& job : batch) {
        if (is_mutation(job)) fail(job, *txn_error);
      }
      return;
    }
    if (!ok_to_write.load()) {
      std::lock_guard lock(error_mu);
      last_error.clear();
    }
    ok_to_write.store(true);
    transactions.fetch_add(1, std::memory_order_relaxed);
    if (mutations > largest_batch.load(std::memory_order_relaxed)) {
      largest_batch.store(mutations, std::memory_order_relaxed);
    }
    // Counters before the completions: a caller that sees its write done sees it counted.
    std::uint64_t done_writes = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const bool plain = std::holds_alternative<WriteJob>(batch[i]) || std::holds_alternative<RemoveJob>(batch[i]);
      if (plain && !job_errors[i]) ++done_writes;
    }
    writes.fetch_add(done_writes, std::memory_order_relaxed);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Job& job = batch[i];
      if (!is_mutation(job)) continue;
      if (job_errors[i]) {
        fail(job, *job_errors[i]);
      } else if (auto* t = std::get_if<TrimJob>(&job)) {
        if (trim_more[i]) {
          // More to delete: go to the back of the queue so that writes waiting now go first.
          std::lock_guard lock(mu);
          queue.push_back(std::move(job));
          queued.store(queue.size(), std::memory_order_relaxed);
        } else {
          finish(t->done, Result<std::size_t>(t->removed));
        }
      } else {
        std::visit(
            [](auto& j) {
              using J = std::decay_t<decltype(j)>;
              if constexpr (std::is_same_v<J, WriteJob> || std::is_same_v<J, RemoveJob>) finish(j.done, Result<void>());
            },
            job);
      }
    }
  }

  /// Runs one mutation inside the open transaction; SQLITE_OK or the error.
  int apply(Job& job, bool& more) {
    if (auto* w = std::get_if<WriteJob>(&job)) {
      if (const int rc = bind_pair(w->record); rc != SQLITE_OK) return rc;
      if (w->history) return bind_history(*w->history);
      return SQLITE_OK;
    }
    if (auto* r = std::get_if<RemoveJob>(&job)) {
      delete_pair.bind(1, r->destination);
      delete_pair.bind(2, r->gstin);
      return delete_pair.run();
    }
    auto& t = std::get<TrimJob>(job);
    trim_chunk.bind(1, t.cutoff_ns);
    trim_chunk.bind(2, kTrimChunk);
    const int rc = trim_chunk.run();
    if (rc != SQLITE_OK) return rc;
    const auto n = static_cast<std::size_t>(sqlite3_changes64(db.get()));
    t.removed += n;
    more = n == static_cast<std::size_t>(kTrimChunk);
    return SQLITE_OK;
  }

  int bind_pair(const PairRecord& r) {
    Stmt& s = upsert_pair;
    s.bind(1, r.destination);
    s.bind(2, r.gstin);
    s.bind(3, r.vault_path);
    s.bind(4, to_string(r.state));
    // The texts are bound without a copy: they must live until the statement has run.
    const std::string applied_fp = r.applied && r.applied->fingerprint ? r.applied->fingerprint->hex() : std::string();
    const std::string pending_fp = r.pending && r.pending->fingerprint ? r.pending->fingerprint->hex() : std::string();
    const auto bind_version = [&](int at, const std::optional<VersionRef>& v, const std::string& fingerprint) {
      if (v) {
        s.bind(at, v->version.number);
        s.bind(at + 1, v->version.lineage.text());
        s.bind(at + 2, fingerprint);
      } else {
        s.bind_null(at);
        s.bind_null(at + 1);
        s.bind_null(at + 2);
      }
    };
    bind_version(5, r.applied, applied_fp);
    s.bind(8, to_ns(r.applied_at));
    bind_version(9, r.pending, pending_fp);
    s.bind(12, r.push_in_flight);
    s.bind(13, static_cast<std::int64_t>(r.attempts));
    s.bind(14, to_ns(r.first_attempt_at));
    s.bind(15, to_ns(r.next_attempt_at));
    s.bind(16, r.last_error_class);
    s.bind(17, r.last_error_code);
    s.bind(18, r.last_error_provider);
    s.bind(19, r.last_error_message);
    s.bind(20, to_ns(r.updated_at));
    return s.run();
  }

  int bind_history(const HistoryEntry& h) {
    Stmt& s = insert_history;
    s.bind(1, to_ns(h.at));
    s.bind(2, h.destination);
    s.bind(3, h.gstin);
    s.bind(4, h.version.number);
    s.bind(5, h.version.lineage.text());
    s.bind(6, to_string(h.outcome));
    s.bind(7, static_cast<std::int64_t>(h.attempt));
    s.bind(8, h.error_class);
    s.bind(9, h.error_code);
    s.bind(10, h.error_provider);
    s.bind(11, h.message);
    s.bind(12, static_cast<std::int64_t>(h.duration.count()));
    return s.run();
  }

  Result<std::vector<HistoryEntry>> read_history(const HistoryJob& job) {
    Stmt& s = job.gstin.empty() ? history_all : history_gstin;
    ResetOnExit reset{s};
    const auto limit = static_cast<std::int64_t>(std::min<std::size_t>(job.limit, INT64_MAX));
    if (job.gstin.empty()) {
      s.bind(1, limit);
    } else {
      s.bind(1, job.gstin);
      s.bind(2, limit);
    }
    std::vector<HistoryEntry> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      HistoryEntry h;
      h.at = from_ns(s.int64(0));
      h.destination = s.text(1);
      h.gstin = s.text(2);
      h.version.number = s.int64(3);
      h.version.lineage = Lineage(s.text(4));
      const std::string outcome = s.text(5);
      const auto o = outcome_from_string(outcome);
      if (!o) {
        return Error(Errc::ledger_corrupt,
                     fmt::format("ledger {} holds a history entry with unknown outcome '{}'; was it written by a "
                                 "newer nicsyncd?",
                                 options.path.string(), outcome));
      }
      h.outcome = *o;
      h.attempt = static_cast<int>(s.int64(6));
      h.error_class = s.text(7);
      h.error_code = s.text(8);
      h.error_provider = s.text(9);
      h.message = s.text(10);
      h.duration = std::chrono::milliseconds(s.int64(11));
      out.push_back(std::move(h));
    }
    if (rc != SQLITE_DONE) return error(rc, "read the history of");
    return out;
  }

  Result<std::vector<PairRecord>> read_pairs() {
    Stmt& s = load_all;
    ResetOnExit reset{s};
    std::vector<PairRecord> out;
    int rc;
    const auto version_at = [&](int at) -> std::optional<VersionRef> {
      if (s.is_null(at)) return std::nullopt;
      // The fingerprint's text is nothing where it is not 64 hex digits (not known yet).
      return VersionRef{VersionId{s.int64(at), Lineage(s.text(at + 1)), SourceState::present},
                        Fingerprint::from_hex(s.text(at + 2))};
    };
    while ((rc = s.step()) == SQLITE_ROW) {
      PairRecord r;
      r.destination = s.text(0);
      r.gstin = s.text(1);
      r.vault_path = s.text(2);
      const std::string state = s.text(3);
      const auto st = pair_state_from_string(state);
      if (!st) {
        return Error(Errc::ledger_corrupt,
                     fmt::format("ledger {} holds pair ({}, {}) in unknown state '{}'; was it written by a newer "
                                 "nicsyncd?",
                                 options.path.string(), r.destination, r.gstin, state));
      }
      r.state = *st;
      r.applied = version_at(4);
      r.applied_at = from_ns(s.int64(7));
      r.pending = version_at(8);
      r.push_in_flight = s.int64(11) != 0;
      r.attempts = static_cast<int>(s.int64(12));
      r.first_attempt_at = from_ns(s.int64(13));
      r.next_attempt_at = from_ns(s.int64(14));
      r.last_error_class = s.text(15);
      r.last_error_code = s.text(16);
      r.last_error_provider = s.text(17);
      r.last_error_message = s.text(18);
      r.updated_at = from_ns(s.int64(19));
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return error(rc, "read");
    return out;
  }

  void close() {
    std::call_once(close_once, [&] {
      {
        std::lock_guard lock(mu);
        closed = true;
      }
      cv.notify_all();
      if (writer.joinable()) writer.join();
      // Statements first: sqlite3_close_v2 would otherwise keep the connection as a zombie.
      for (Stmt* s : {&begin, &commit, &rollback, &savepoint, &release, &rollback_to, &upsert_pair, &insert_history,
                      &delete_pair, &trim_chunk, &history_all, &history_gstin, &load_all}) {
        *s = Stmt();
      }
      db.reset();
    });
  }
};

// =============================================================================================

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(SqliteStoreOptions options) {
  auto impl = std::make_shared<Impl>(std::move(options));
  if (auto r = impl->open_database(); !r) return r.error();
  if (auto r = impl->prepare_all(); !r) return r.error();
  impl->writer = std::thread([raw = impl.get()] { raw->run(); });
  ::pthread_setname_np(impl->writer.native_handle(), "nicsync-ledger");
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::~SqliteStore() { close(); }

void SqliteStore::close() { impl_->close(); }

bool SqliteStore::writable() const noexcept { return impl_->ok_to_write.load(); }

std::string SqliteStore::last_write_error() const {
  std::lock_guard lock(impl_->error_mu);
  return impl_->last_error;
}

SqliteStoreStats SqliteStore::stats() const noexcept {
  SqliteStoreStats s;
  s.transactions = impl_->transactions.load(std::memory_order_relaxed);
  s.writes = impl_->writes.load(std::memory_order_relaxed);
  s.failed_transactions = impl_->failed_transactions.load(std::memory_order_relaxed);
  s.largest_batch = impl_->largest_batch.load(std::memory_order_relaxed);
  s.queued = impl_->queued.load(std::memory_order_relaxed);
  return s;
}

Result<std::vector<PairRecord>> SqliteStore::load_pairs() {
  LoadJob job;
  auto future = job.promise.get_future();
  impl_->submit(std::move(job));
  return future.get();
}

namespace {

// Named initiations (not lambdas inside co_await expressions: g++ 12 destroys those twice).
struct InitiateWrite {
  std::shared_ptr<SqliteStore::Impl> impl;
  template <class H>
  void operator()(H handler, PairRecord record, std::optional<HistoryEntry> history) const {
    impl->submit(WriteJob{std::move(record), std::move(history), make_done<Result<void>>(std::move(handler))});
  }
};

struct InitiateRemove {
  std::shared_ptr<SqliteStore::Impl> impl;
  template <class H>
  void operator()(H handler, std::string destination, std::string gstin) const {
    impl->submit(RemoveJob{std::move(destination), std::move(gstin), make_done<Result<void>>(std::move(handler))});
  }
};

struct InitiateHistory {
  std::shared_ptr<SqliteStore::Impl> impl;
  template <class H>
  void operator()(H handler, std::string gstin, std::size_t limit) const {
    impl->submit(HistoryJob{std::move(gstin), limit, make_done<Result<std::vector<HistoryEntry>>>(std::move(handler))});
  }
};

struct InitiateTrim {
  std::shared_ptr<SqliteStore::Impl> impl;
  template <class H>
  void operator()(H handler, SystemTime cutoff) const {
    impl->submit(TrimJob{to_ns(cutoff), 0, make_done<Result<std::size_t>>(std::move(handler))});
  }
};

}  // namespace

asio::awaitable<Result<void>> SqliteStore::write(PairRecord record, std::optional<HistoryEntry> history) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateWrite{impl_}, asio::use_awaitable, std::move(record), std::move(history));
}

asio::awaitable<Result<void>> SqliteStore::remove(std::string destination, std::string gstin) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateRemove{impl_}, asio::use_awaitable, std::move(destination), std::move(gstin));
}

asio::awaitable<Result<std::vector<HistoryEntry>>> SqliteStore::history(std::string gstin, std::size_t limit) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::vector<HistoryEntry>>)>(
      InitiateHistory{impl_}, asio::use_awaitable, std::move(gstin), limit);
}

asio::awaitable<Result<std::size_t>> SqliteStore::trim_history(SystemTime cutoff) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::size_t>)>(InitiateTrim{impl_},
                                                                                         asio::use_awaitable, cutoff);
}

}  // namespace nicsync::ledger
