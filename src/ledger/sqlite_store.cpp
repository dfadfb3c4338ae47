// SQLite ledger: the store's operations as jobs in a queue, and the writer thread that owns the
// one connection once open() returns. The thread takes everything queued, runs the mutations in
// one transaction (one WAL fsync under synchronous=FULL), then the reads, and posts each result
// to the executor of the coroutine that asked. Opening the file: sqlite_schema.cpp; the SQL and
// the row mapping: sqlite_statements.cpp.
#include "nicsync/ledger/sqlite_store.hpp"

#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <utility>
#include <variant>

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "ledger/sqlite_db.hpp"
#include "ledger/sqlite_schema.hpp"
#include "ledger/sqlite_statements.hpp"
#include "ledger/store_jobs.hpp"

namespace asio = boost::asio;

namespace nicsync::ledger {
namespace {

using detail::AppendHistoryJob;
using detail::Database;
using detail::answer;
using detail::fail;
using detail::finish;
using detail::HistoryJob;
using detail::is_data_error;
using detail::is_mutation;
using detail::is_plain_mutation;
using detail::Job;
using detail::LoadJob;
using detail::RemoveJob;
using detail::SealedReadJob;
using detail::SealedWriteJob;
using detail::Statements;
using detail::to_ns;
using detail::TrimJob;
using detail::WriteJob;

// History rows deleted per transaction by trim_history, so that writes are not held up.
constexpr std::int64_t kTrimChunk = 5000;
// The writer frees SQLite's page cache after this long without work (an idle daemon holds
// tens of thousands of pairs for months between rotations).
constexpr std::chrono::seconds kReleaseCacheAfter{1};

}  // namespace

// =============================================================================================

struct SqliteStore::Impl {
  explicit Impl(SqliteStoreOptions o) : options(std::move(o)) { db.path = options.path; }

  SqliteStoreOptions options;
  Database db;
  Statements stmts;

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

  Error error(int rc, std::string_view what) const { return db.error(rc, what); }

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
        if (db.handle && sqlite3_get_autocommit(db.get()) == 0) stmts.rollback.run();
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
        finish(h->done, stmts.read_history(db, h->gstin, h->limit));
      } else if (auto* l = std::get_if<LoadJob>(&job)) {
        answer(*l, stmts.read_pairs(db));
      } else if (auto* r = std::get_if<SealedReadJob>(&job)) {
        finish(r->done, stmts.read_sealed(db, r->name));
      }
    }
  }

  void commit_mutations(std::deque<Job>& batch, std::size_t mutations) {
    // Per-job outcomes while the transaction is open; sent only once it is committed.
    std::vector<std::optional<Error>> job_errors(batch.size());
    std::vector<bool> trim_more(batch.size(), false);
    std::optional<Error> txn_error;
    if (const int rc = stmts.begin.run(); rc != SQLITE_OK) txn_error = error(rc, "begin a transaction in");
    for (std::size_t i = 0; i < batch.size() && !txn_error; ++i) {
      if (!is_mutation(batch[i])) continue;
      if (int rc = stmts.savepoint.run(); rc != SQLITE_OK) {
        txn_error = error(rc, "write");
        break;
      }
      bool more = false;
      const int rc = apply(batch[i], more);
      if (rc == SQLITE_OK) {
        if (const int rrc = stmts.release.run(); rrc != SQLITE_OK) txn_error = error(rrc, "write");
        trim_more[i] = more;
      } else if (is_data_error(rc) && sqlite3_get_autocommit(db.get()) == 0) {
        // Only this job's data is at fault: undo it alone, the others still commit.
        job_errors[i] = error(rc, "write a record to");
        stmts.rollback_to.run();
        stmts.release.run();
      } else {
        txn_error = error(rc, "write");
      }
    }
    if (!txn_error) {
      if (const int rc = stmts.commit.run(); rc != SQLITE_OK) txn_error = error(rc, "commit to");
    }
    if (txn_error) {
      if (sqlite3_get_autocommit(db.get()) == 0) stmts.rollback.run();
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
      if (is_plain_mutation(batch[i]) && !job_errors[i]) ++done_writes;
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
        detail::succeed(job);
      }
    }
  }

  /// Runs one mutation inside the open transaction; SQLITE_OK or the error.
  int apply(Job& job, bool& more) {
    if (auto* w = std::get_if<WriteJob>(&job)) {
      if (const int rc = stmts.write_pair(w->record); rc != SQLITE_OK) return rc;
      if (w->history) return stmts.append_history(*w->history);
      return SQLITE_OK;
    }
    if (auto* r = std::get_if<RemoveJob>(&job)) return stmts.remove_pair(r->destination, r->gstin);
    if (auto* b = std::get_if<SealedWriteJob>(&job)) return stmts.write_sealed(b->name, b->sealed);
    if (auto* a = std::get_if<AppendHistoryJob>(&job)) return stmts.append_history(a->entry);
    auto& t = std::get<TrimJob>(job);
    const int rc = stmts.trim_history(t.cutoff_ns, kTrimChunk);
    if (rc != SQLITE_OK) return rc;
    const auto n = static_cast<std::size_t>(sqlite3_changes64(db.get()));
    t.removed += n;
    more = n == static_cast<std::size_t>(kTrimChunk);
    return SQLITE_OK;
  }

  void close() {
    std::call_once(close_once, [&] {
      {
        std::lock_guard lock(mu);
        closed = true;
      }
      cv.notify_all();
      if (writer.joinable()) writer.join();
      stmts.finalize();
      db.handle.reset();
    });
  }
};

// =============================================================================================

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(SqliteStoreOptions options) {
  auto impl = std::make_shared<Impl>(std::move(options));
  if (auto r = detail::open_database(impl->db, impl->options); !r) return r.error();
  if (auto r = impl->stmts.prepare(impl->db); !r) return r.error();
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

asio::awaitable<Result<std::vector<PairRecord>>> SqliteStore::read_pairs() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::vector<PairRecord>>)>(
      detail::InitiateLoad<Impl>{impl_}, asio::use_awaitable);
}

asio::awaitable<Result<void>> SqliteStore::write(PairRecord record, std::optional<HistoryEntry> history) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      detail::InitiateWrite<Impl>{impl_}, asio::use_awaitable, std::move(record), std::move(history));
}

asio::awaitable<Result<void>> SqliteStore::remove(std::string destination, std::string gstin) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      detail::InitiateRemove<Impl>{impl_}, asio::use_awaitable, std::move(destination), std::move(gstin));
}

asio::awaitable<Result<std::vector<HistoryEntry>>> SqliteStore::history(std::string gstin, std::size_t limit) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::vector<HistoryEntry>>)>(
      detail::InitiateHistory<Impl>{impl_}, asio::use_awaitable, std::move(gstin), limit);
}

asio::awaitable<Result<std::size_t>> SqliteStore::trim_history(SystemTime cutoff) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::size_t>)>(
      detail::InitiateTrim<Impl>{impl_}, asio::use_awaitable, to_ns(cutoff));
}

asio::awaitable<Result<std::optional<std::string>>> SqliteStore::read_sealed(std::string name) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::optional<std::string>>)>(
      detail::InitiateReadSealed<Impl>{impl_}, asio::use_awaitable, std::move(name));
}

asio::awaitable<Result<void>> SqliteStore::append_history(HistoryEntry entry) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      detail::InitiateAppendHistory<Impl>{impl_}, asio::use_awaitable, std::move(entry));
}

asio::awaitable<Result<void>> SqliteStore::write_sealed(std::string name, std::string sealed) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      detail::InitiateWriteSealed<Impl>{impl_}, asio::use_awaitable, std::move(name), std::move(sealed));
}

}  // namespace nicsync::ledger
