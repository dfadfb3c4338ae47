// PostgreSQL ledger: the store's operations as jobs in a queue, and the writer thread that owns
// the one connection. The thread takes everything queued and sends the mutations as one
// pipeline — BEGIN, every statement, COMMIT, Sync — in one round trip, then the reads, and posts
// each result to the executor of the coroutine that asked. A lost connection fails what it
// broke, and the thread reconnects with backoff. Connecting and the error advice: pg_conn.cpp;
// the schema: pg_schema.cpp; the SQL: pg_statements.cpp.
#include "nicsync/ledger/postgres_store.hpp"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "ledger/pg_conn.hpp"
#include "ledger/pg_schema.hpp"
#include "ledger/pg_statements.hpp"
#include "ledger/store_jobs.hpp"
#include "nicsync/core/duration.hpp"

namespace asio = boost::asio;

namespace nicsync::ledger {
namespace {

using namespace detail;
using SteadyClock = std::chrono::steady_clock;

// History rows deleted per transaction by trim_history, so that writes are not held up.
constexpr std::int64_t kTrimChunk = 5000;

// How a batch's transaction ended.
struct TxnOutcome {
  enum Kind { committed, data_error, failed } kind = committed;
  std::size_t culprit = 0;  // data_error: the job whose data was refused
  std::optional<Error> error;
  std::string state;  // the SQLSTATE of the failure ("" when the connection broke)
};

}  // namespace

struct PostgresStore::Impl {
  explicit Impl(PostgresStoreOptions o) : options(std::move(o)) { backoff = options.reconnect_min; }

  PostgresStoreOptions options;

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
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::int64_t> fence_epoch{-1};  // the lease epoch transactions must hold; -1: none
  std::atomic<bool> connected{false};

  // The writer thread's own (and open()'s, before the thread starts).
  PgConn conn;
  PgTarget target;
  Secret password;              // of the connection string in use: scrubbed from messages
  std::optional<Error> down;    // why there is no connection
  bool down_transient = false;  // whether waiting may help (refused, starting up)
  SteadyClock::time_point next_attempt{};
  std::chrono::milliseconds backoff{};
  PgParams params;

  void set_error(const Error& e) {
    {
      std::lock_guard lock(error_mu);
      last_error = e.message;
    }
    ok_to_write.store(false);
  }
  void clear_error() {
    if (!ok_to_write.load()) {
      std::lock_guard lock(error_mu);
      last_error.clear();
    }
    ok_to_write.store(true);
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

  // ---- the connection

  /// Connects, brings the schema up to date (first connection) or checks it (later ones),
  /// prepares the statements and enters pipeline mode. On failure `down` says why.
  bool connect_now(bool first) {
    const auto deadline = SteadyClock::now() + options.connect_timeout;
    Secret conninfo = options.conninfo;
    if (!options.conninfo_file.empty()) {
      auto text = read_conninfo_file(options.conninfo_file);
      if (!text) return lost(text.error(), false, false);
      conninfo = std::move(*text);
    }
    password = password_of(conninfo.expose()).value_or(Secret());
    auto attempt = connect(conninfo.expose(), options.schema, deadline);
    if (auto* f = std::get_if<ConnectFailure>(&attempt)) return lost(f->error, false, f->transient);
    auto& c = std::get<Connected>(attempt);
    conn = std::move(c.conn);
    target = std::move(c.target);
    Result<void> ready;
    if (first) {
      ready = migrate(conn.get(), target, deadline);
    } else if (auto v = schema_version(conn.get(), target, deadline); !v) {
      ready = v.error();
    } else if (*v != kSchemaVersion) {
      ready = *v > kSchemaVersion
                  ? newer_schema_error(target, *v)
                  : Error(Errc::ledger_schema, fmt::format("the ledger in schema {} ({}) is at version {} now, not {}: "
                                                           "was it restored from an old backup? restart nicsyncd",
                                                           target.schema, target.where, *v, kSchemaVersion));
    }
    if (ready) ready = prepare_statements(conn.get(), target, deadline);
    if (ready && (PQenterPipelineMode(conn.get()) != 1 || PQsetnonblocking(conn.get(), 1) != 0)) {
      ready = result_error(conn.get(), nullptr, target, "set up the connection to", password.expose());
    }
    if (!ready) return lost(ready.error(), false, false);
    connections.fetch_add(1, std::memory_order_relaxed);
    connected.store(true);
    backoff = options.reconnect_min;
    if (down) spdlog::info("ledger: connected again to {}, schema {}", target.where, target.schema);
    down.reset();
    clear_error();
    return true;
  }

  /// Drops the connection after `e`; the next attempt is at once when `at_once` (a connection
  /// that worked until now), else after the backoff, which doubles. Returns false.
  bool lost(const Error& e, bool at_once, bool transient = true) {
    const bool was_connected = conn != nullptr;
    conn.reset();
    connected.store(false);
    const auto now = SteadyClock::now();
    if (at_once) {
      next_attempt = now;
    } else {
      next_attempt = now + backoff;
      backoff = std::min(backoff * 2, options.reconnect_max);
    }
    if (was_connected || !down || down->message != e.message) {
      spdlog::warn(
          "ledger: {}; next connection attempt {}", e.describe(),
          at_once ? std::string("now")
                  : "in " + format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt - now)));
    }
    down = e;
    down_transient = transient;
    set_error(e);
    return false;
  }

  // ---- pipeline I/O

  /// Sends what libpq holds, reading what arrives meanwhile so that neither side blocks.
  bool flush(Deadline deadline) {
    for (;;) {
      const int f = PQflush(conn.get());
      if (f == 0) return true;
      if (f < 0 || !wait_socket(conn.get(), true, deadline) || PQconsumeInput(conn.get()) == 0) return false;
    }
  }

  /// The next result of the pipeline (null between queries; null with `io_failed` set when the
  /// connection broke or the deadline passed).
  PgResult next(Deadline deadline, bool& io_failed) {
    while (PQisBusy(conn.get()) != 0) {
      if (!wait_socket(conn.get(), false, deadline) || PQconsumeInput(conn.get()) == 0) {
        io_failed = true;
        return nullptr;
      }
    }
    return PgResult(PQgetResult(conn.get()));
  }

  /// The result of one query (then its terminating null); `io_failed` when none came.
  PgResult query_result(Deadline deadline, bool& io_failed) {
    PgResult r = next(deadline, io_failed);
    if (!r || io_failed) {
      io_failed = true;
      return nullptr;
    }
    if (PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) {
      // A query's results end with a null.
      for (;;) {
        PgResult more = next(deadline, io_failed);
        if (io_failed || !more) break;
      }
    }
    return r;
  }

  bool expect_sync(Deadline deadline) {
    bool io_failed = false;
    PgResult r = next(deadline, io_failed);
    return !io_failed && r && PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC;
  }

  Error connection_error(const PGresult* r, std::string_view what) {
    return result_error(conn.get(), r, target, what, password.expose());
  }

  // ---- the writer thread

  void run() {
    std::deque<Job> batch;
    const std::size_t max_batch = std::max<std::size_t>(options.max_batch, 1);
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(mu);
        if (conn) {
          cv.wait(lock, [&] { return closed || !queue.empty(); });
        } else {
          cv.wait_until(lock, next_attempt, [&] { return closed || !queue.empty(); });
        }
        if (closed && queue.empty()) return;
        const std::size_t n = std::min(queue.size(), max_batch);
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        queued.store(queue.size(), std::memory_order_relaxed);
      }
      if (!conn && SteadyClock::now() >= next_attempt) connect_now(false);
      if (!conn) {
        // Fail at once: the engine retries, and never pushes without a recorded intent.
        for (auto& job : batch) fail(job, *down);
        continue;
      }
      try {
        process(batch);
      } catch (const std::exception& x) {
        const Error e(Errc::internal, fmt::format("ledger writer failed: {}", x.what()));
        lost(e, true);
        for (auto& job : batch) fail(job, e);
      }
    }
  }

  void process(std::deque<Job>& batch) {
    std::vector<std::size_t> mutations;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (is_mutation(batch[i])) mutations.push_back(i);
    }
    if (!mutations.empty()) commit_mutations(batch, std::move(mutations));
    // Reads after the commit: a read sees every write queued before it.
    for (auto& job : batch) {
      if (is_mutation(job)) continue;
      if (!conn) {
        fail(job, *down);
        continue;
      }
      read(job);
    }
  }

  /// Sends the transaction of `jobs` (indices into `batch`) and reads how it ended.
  TxnOutcome send_transaction(std::deque<Job>& batch, const std::vector<std::size_t>& jobs) {
    PGconn* c = conn.get();
    const auto deadline = SteadyClock::now() + options.io_timeout;
    std::vector<std::size_t> owner;  // the job of each statement sent between BEGIN and COMMIT
    owner.reserve(jobs.size() * 2);
    bool sent = PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    // The fence first: a transaction of a replica that lost the lease changes nothing.
    const std::int64_t epoch = fence_epoch.load(std::memory_order_acquire);
    const bool fenced = epoch >= 0;
    if (sent && fenced) {
      params.integer(epoch);
      sent = params.send(c, pg_stmt::kFence);
    }
    for (std::size_t k = 0; sent && k < jobs.size(); ++k) {
      Job& job = batch[jobs[k]];
      if (auto* w = std::get_if<WriteJob>(&job)) {
        pair_params(w->record, params);
        sent = params.send(c, pg_stmt::kUpsertPair);
        owner.push_back(k);
        if (sent && w->history) {
          history_params(*w->history, params);
          sent = params.send(c, pg_stmt::kInsertHistory);
          owner.push_back(k);
        }
      } else if (auto* r = std::get_if<RemoveJob>(&job)) {
        params.text(encode_text(r->destination));
        params.text(encode_text(r->gstin));
        sent = params.send(c, pg_stmt::kDeletePair);
        owner.push_back(k);
      } else if (auto* a = std::get_if<AppendHistoryJob>(&job)) {
        history_params(a->entry, params);
        sent = params.send(c, pg_stmt::kInsertHistory);
        owner.push_back(k);
      } else if (auto* s = std::get_if<SealedWriteJob>(&job)) {
        params.text(encode_text(s->name));
        params.bytes(s->sealed);
        sent = params.send(c, pg_stmt::kUpsertSealed);
        owner.push_back(k);
      } else if (auto* t = std::get_if<TrimJob>(&job)) {
        params.integer(t->cutoff_ns);
        params.integer(kTrimChunk);
        sent = params.send(c, pg_stmt::kTrimChunk);
        owner.push_back(k);
      }
    }
    sent = sent && PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
           PQpipelineSync(c) == 1 && flush(deadline);
    if (!sent) return {TxnOutcome::failed, 0, connection_error(nullptr, "write to"), ""};

    bool io_failed = false;
    TxnOutcome out;
    const auto note_failure = [&](const PgResult& r, std::optional<std::size_t> job) {
      if (out.error) return;  // the first failure says why; the rest were aborted by it
      const auto state = sqlstate(r.get());
      if (job && fault_of(state) == PgFault::data) {
        out = {TxnOutcome::data_error, *job, connection_error(r.get(), "write a record to"), std::string(state)};
      } else {
        out = {TxnOutcome::failed, 0, connection_error(r.get(), "write to"), std::string(state)};
      }
    };
    PgResult begin = query_result(deadline, io_failed);
    if (!io_failed && !ok(begin.get())) note_failure(begin, std::nullopt);
    if (fenced && !io_failed) {
      PgResult fence = query_result(deadline, io_failed);
      if (!io_failed && PQresultStatus(fence.get()) != PGRES_PIPELINE_ABORTED && !ok(fence.get())) {
        note_failure(fence, std::nullopt);
      }
    }
    for (std::size_t i = 0; i < owner.size() && !io_failed; ++i) {
      PgResult r = query_result(deadline, io_failed);
      if (io_failed) break;
      if (PQresultStatus(r.get()) == PGRES_PIPELINE_ABORTED) continue;
      if (!ok(r.get())) {
        note_failure(r, owner[i]);
        continue;
      }
      if (auto* t = std::get_if<TrimJob>(&batch[jobs[owner[i]]])) {
        const auto n = std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
        t->removed += static_cast<std::size_t>(n);
        t->more = n == kTrimChunk;
      }
    }
    if (!io_failed) {
      PgResult commit = query_result(deadline, io_failed);
      if (!io_failed && PQresultStatus(commit.get()) != PGRES_PIPELINE_ABORTED && !ok(commit.get())) {
        note_failure(commit, std::nullopt);
      }
    }
    if (!io_failed && !expect_sync(deadline)) io_failed = true;
    if (io_failed || PQstatus(c) == CONNECTION_BAD) {
      // Whatever the server received, nothing was confirmed: the caller writes again. The
      // pipeline is out of step now: the connection goes (an empty SQLSTATE says so).
      return {TxnOutcome::failed, 0, out.error ? *out.error : connection_error(nullptr, "write to"), ""};
    }
    if (PQtransactionStatus(c) == PQTRANS_INERROR || PQtransactionStatus(c) == PQTRANS_INTRANS) {
      // The failed BEGIN block stays open after the Sync until it is rolled back.
      if (PQsendQueryParams(c, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1 || PQpipelineSync(c) != 1 ||
          !flush(deadline)) {
        io_failed = true;
      } else {
        query_result(deadline, io_failed);
        if (!io_failed && !expect_sync(deadline)) io_failed = true;
      }
      if (io_failed) {
        return {TxnOutcome::failed, 0, out.error ? *out.error : connection_error(nullptr, "write to"), ""};
      }
    }
    return out;
  }

  void commit_mutations(std::deque<Job>& batch, std::vector<std::size_t> jobs) {
    // A job whose data the server refuses fails alone: the transaction is sent again without it.
    TxnOutcome outcome;
    std::vector<std::size_t> trimmed;  // what earlier chunks of each trim job removed
    for (;;) {
      trimmed.clear();
      for (auto i : jobs) {
        if (auto* t = std::get_if<TrimJob>(&batch[i])) trimmed.push_back(t->removed);
      }
      outcome = send_transaction(batch, jobs);
      if (outcome.kind == TxnOutcome::committed) break;
      // Nothing of this attempt stayed: the counts noted in trim jobs go back.
      std::size_t ti = 0;
      for (auto i : jobs) {
        if (auto* t = std::get_if<TrimJob>(&batch[i])) t->removed = trimmed[ti++];
      }
      if (outcome.kind == TxnOutcome::failed) break;
      fail(batch[jobs[outcome.culprit]], *outcome.error);
      jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(outcome.culprit));
      if (jobs.empty()) return;
    }
    if (outcome.kind == TxnOutcome::failed) {
      failed_transactions.fetch_add(1, std::memory_order_relaxed);
      const Error e = *outcome.error;
      // The store's state before the completions: a caller that sees its write fail sees the
      // store not writable.
      if (!conn || PQstatus(conn.get()) == CONNECTION_BAD || outcome.state.empty()) {
        lost(e, true);
      } else if (fault_of(outcome.state) == PgFault::connection) {
        // Read-only (a standby), a login that no longer works: another server may answer.
        lost(e, false);
      } else {
        set_error(e);
      }
      for (auto i : jobs) fail(batch[i], e);
      return;
    }
    clear_error();
    transactions.fetch_add(1, std::memory_order_relaxed);
    if (jobs.size() > largest_batch.load(std::memory_order_relaxed)) {
      largest_batch.store(jobs.size(), std::memory_order_relaxed);
    }
    // Counters before the completions: a caller that sees its write done sees it counted.
    std::uint64_t done_writes = 0;
    for (auto i : jobs) done_writes += is_plain_mutation(batch[i]) ? 1 : 0;
    writes.fetch_add(done_writes, std::memory_order_relaxed);
    for (auto i : jobs) {
      Job& job = batch[i];
      if (auto* t = std::get_if<TrimJob>(&job)) {
        if (t->more) {
          // A full chunk went: more to delete, after the writes waiting now.
          std::lock_guard lock(mu);
          queue.push_back(std::move(job));
          queued.store(queue.size(), std::memory_order_relaxed);
        } else {
          finish(t->done, Result<std::size_t>(t->removed));
        }
      } else {
        succeed(job);
      }
    }
  }

  void read(Job& job) {
    PGconn* c = conn.get();
    const auto deadline = SteadyClock::now() + options.io_timeout;
    bool sent = false;
    if (auto* h = std::get_if<HistoryJob>(&job)) {
      const auto limit = static_cast<std::int64_t>(std::min<std::size_t>(h->limit, INT64_MAX));
      if (h->gstin.empty()) {
        params.integer(limit);
        sent = params.send(c, pg_stmt::kHistoryAll);
      } else {
        params.text(encode_text(h->gstin));
        params.integer(limit);
        sent = params.send(c, pg_stmt::kHistoryGstin);
      }
    } else if (std::holds_alternative<LoadJob>(job)) {
      sent = params.send(c, pg_stmt::kLoadAll);
    } else if (auto* s = std::get_if<SealedReadJob>(&job)) {
      params.text(encode_text(s->name));
      sent = params.send(c, pg_stmt::kSelectSealed, /*binary_result=*/true);
    }
    sent = sent && PQpipelineSync(c) == 1 && flush(deadline);
    bool io_failed = !sent;
    PgResult r = io_failed ? nullptr : query_result(deadline, io_failed);
    if (!io_failed && !expect_sync(deadline)) io_failed = true;
    if (io_failed || !ok(r.get())) {
      const Error e = connection_error(r.get(), "read from");
      fail(job, e);
      if (io_failed || PQstatus(c) == CONNECTION_BAD) lost(e, true);
      return;
    }
    if (auto* h = std::get_if<HistoryJob>(&job)) {
      finish(h->done, history_rows(r.get(), target));
    } else if (auto* l = std::get_if<LoadJob>(&job)) {
      answer(*l, pair_rows(r.get(), target));
    } else if (auto* s = std::get_if<SealedReadJob>(&job)) {
      std::optional<std::string> value;
      if (PQntuples(r.get()) == 1) {
        value.emplace(PQgetvalue(r.get(), 0, 0), static_cast<std::size_t>(PQgetlength(r.get(), 0, 0)));
      }
      finish(s->done, Result<std::optional<std::string>>(std::move(value)));
    }
  }

  void close() {
    std::call_once(close_once, [&] {
      {
        std::lock_guard lock(mu);
        closed = true;
      }
      cv.notify_all();
      if (writer.joinable()) writer.join();
      conn.reset();
      connected.store(false);
    });
  }
};

// =============================================================================================

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(PostgresStoreOptions options) {
  if (!valid_schema_name(options.schema)) {
    return Error(Errc::config_invalid,
                 fmt::format("[ledger] schema \"{}\" is not a plain SQL identifier: use lower-case "
                             "letters, digits and '_' (e.g. \"nicsync\")",
                             options.schema));
  }
  auto impl = std::make_shared<Impl>(std::move(options));
  // A server that is starting (or restarting with the machine) gets some time; a refused login
  // or a missing database does not.
  const auto until = SteadyClock::now() + impl->options.open_wait;
  auto wait = std::chrono::milliseconds(200);
  while (!impl->connect_now(true)) {
    if (!impl->down_transient || SteadyClock::now() + wait >= until) return *impl->down;
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(2000));
  }
  impl->writer = std::thread([raw = impl.get()] { raw->run(); });
  ::pthread_setname_np(impl->writer.native_handle(), "nicsync-ledger");
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

PostgresStore::~PostgresStore() { close(); }

void PostgresStore::close() { impl_->close(); }

bool PostgresStore::writable() const noexcept { return impl_->ok_to_write.load(); }

std::string PostgresStore::last_write_error() const {
  std::lock_guard lock(impl_->error_mu);
  return impl_->last_error;
}

void PostgresStore::set_fence(std::optional<std::int64_t> epoch) noexcept {
  impl_->fence_epoch.store(epoch ? *epoch : -1, std::memory_order_release);
}

PostgresStoreStats PostgresStore::stats() const noexcept {
  PostgresStoreStats s;
  s.transactions = impl_->transactions.load(std::memory_order_relaxed);
  s.writes = impl_->writes.load(std::memory_order_relaxed);
  s.failed_transactions = impl_->failed_transactions.load(std::memory_order_relaxed);
  s.largest_batch = impl_->largest_batch.load(std::memory_order_relaxed);
  s.queued = impl_->queued.load(std::memory_order_relaxed);
  s.connections = impl_->connections.load(std::memory_order_relaxed);
  s.connected = impl_->connected.load();
  return s;
}

Result<std::vector<PairRecord>> PostgresStore::load_pairs() {
  LoadJob job;
  auto future = job.promise.get_future();
  impl_->submit(std::move(job));
  return future.get();
}

asio::awaitable<Result<std::vector<PairRecord>>> PostgresStore::read_pairs() {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::vector<PairRecord>>)>(
      InitiateLoad<Impl>{impl_}, asio::use_awaitable);
}

asio::awaitable<Result<void>> PostgresStore::write(PairRecord record, std::optional<HistoryEntry> history) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateWrite<Impl>{impl_}, asio::use_awaitable, std::move(record), std::move(history));
}

asio::awaitable<Result<void>> PostgresStore::remove(std::string destination, std::string gstin) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateRemove<Impl>{impl_}, asio::use_awaitable, std::move(destination), std::move(gstin));
}

asio::awaitable<Result<std::vector<HistoryEntry>>> PostgresStore::history(std::string gstin, std::size_t limit) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::vector<HistoryEntry>>)>(
      InitiateHistory<Impl>{impl_}, asio::use_awaitable, std::move(gstin), limit);
}

asio::awaitable<Result<std::size_t>> PostgresStore::trim_history(SystemTime cutoff) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(cutoff.time_since_epoch()).count();
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::size_t>)>(
      InitiateTrim<Impl>{impl_}, asio::use_awaitable, static_cast<std::int64_t>(ns));
}

asio::awaitable<Result<std::optional<std::string>>> PostgresStore::read_sealed(std::string name) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<std::optional<std::string>>)>(
      InitiateReadSealed<Impl>{impl_}, asio::use_awaitable, std::move(name));
}

asio::awaitable<Result<void>> PostgresStore::append_history(HistoryEntry entry) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateAppendHistory<Impl>{impl_}, asio::use_awaitable, std::move(entry));
}

asio::awaitable<Result<void>> PostgresStore::write_sealed(std::string name, std::string sealed) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      InitiateWriteSealed<Impl>{impl_}, asio::use_awaitable, std::move(name), std::move(sealed));
}

}  // namespace nicsync::ledger
