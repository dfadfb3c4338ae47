// The leader lease on PostgreSQL (see postgres_lease.hpp): its own connection, used on a thread
// of its own with a deadline on every statement; a broken connection is dropped and the next
// operation connects again (a leader's session lock goes with it, which a standby may then
// take: a takeover costs at most the one repeated push a failover may cost).
#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "ledger/pg_conn.hpp"
#include "nicsync/ledger/postgres_lease.hpp"

namespace nicsync::ledger {
namespace asio = boost::asio;
using namespace detail;

namespace {

std::int64_t to_int64(const char* text) {
  std::int64_t v = 0;
  const std::string_view t(text);
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

}  // namespace

struct PostgresLease::Impl {
  explicit Impl(PostgresStoreOptions o) : options(std::move(o)) {
    lease = qualified(options.schema, "lease");
    // One session lock per schema and epoch: deployments that share a database do not share
    // leaders, and the lock of an epoch can only be its leader's (it is taken in the statement
    // that creates the epoch, before any standby can see the epoch).
    lock_key = fmt::format("hashtext('{}')", options.schema);
  }

  std::string lock_args(std::int64_t epoch) const { return fmt::format("{}, ({} % 2147483647)::int", lock_key, epoch); }

  PostgresStoreOptions options;
  asio::thread_pool thread{1};
  PgConn conn;
  PgTarget target;
  bool lock_held = false;
  std::int64_t lock_epoch = 0;  // the epoch whose lock this session holds
  std::string lease;
  std::string lock_key;

  // --- on the lease's thread ---------------------------------------------------------------

  Result<PGconn*> connection() {
    if (conn && PQstatus(conn.get()) == CONNECTION_OK) return conn.get();
    drop();
    Secret conninfo = options.conninfo;
    if (!options.conninfo_file.empty()) {
      auto text = read_conninfo_file(options.conninfo_file);
      if (!text) return text.error();
      conninfo = std::move(*text);
    }
    auto attempt =
        connect(conninfo.expose(), options.schema, std::chrono::steady_clock::now() + options.connect_timeout);
    if (auto* f = std::get_if<ConnectFailure>(&attempt)) return f->error;
    auto& c = std::get<Connected>(attempt);
    conn = std::move(c.conn);
    target = std::move(c.target);
    return conn.get();
  }

  void drop() {
    conn.reset();  // the session lock, if held, goes with the session
    lock_held = false;
  }

  // One statement with a deadline; a failure drops the connection (a broken or blackholed one
  // must not be reused) and says what to do.
  Result<PgResult> run(std::string_view sql, std::initializer_list<std::string_view> params,
                       std::chrono::milliseconds limit, std::string_view what) {
    auto c = connection();
    if (!c) return c.error();
    const auto deadline = std::chrono::steady_clock::now() + std::min(limit, options.io_timeout);
    PgResult r = exec(*c, sql, params, deadline);
    if (!ok(r.get())) {
      Error e = result_error(*c, r.get(), target, what, "");
      drop();
      return e;
    }
    return r;
  }

  // The leader's lock for `epoch` (after a reconnection: the old session took it along).
  Result<bool> take_session_lock(std::int64_t epoch, std::chrono::milliseconds limit) {
    if (lock_held && lock_epoch == epoch) return true;
    auto r =
        run(fmt::format("SELECT pg_try_advisory_lock({})", lock_args(epoch)), {}, limit, "take the leader lock of");
    if (!r) return r.error();
    lock_held = std::string_view(PQgetvalue(r->get(), 0, 0)) == "t";
    if (lock_held) lock_epoch = epoch;
    return lock_held;
  }

  // Whether the lock of `epoch` is free: its leader's session is gone. Not kept: the caller
  // takes over with a new epoch (whose lock comes with it).
  Result<bool> lock_free(std::int64_t epoch, std::chrono::milliseconds limit) {
    auto r = run(fmt::format("SELECT pg_try_advisory_lock({0}) AND pg_advisory_unlock({0})", lock_args(epoch)), {},
                 limit, "look at the leader lock of");
    if (!r) return r.error();
    return std::string_view(PQgetvalue(r->get(), 0, 0)) == "t";
  }

  Result<LeaseState> read_now(std::chrono::milliseconds limit) {
    auto r = run(fmt::format("SELECT holder, epoch, url, expires_at > now(), CASE WHEN expires_at > now() THEN "
                             "(extract(epoch FROM expires_at - now()) * 1000)::bigint ELSE 0 END FROM {} WHERE "
                             "name = 'leader'",
                             lease),
                 {}, limit, "read the leader lease of");
    if (!r) return r.error();
    if (PQntuples(r->get()) != 1) {
      return Error(Errc::ledger_schema, fmt::format("the ledger in schema {} has no leader lease row: was it changed "
                                                    "by hand? restore it from a backup",
                                                    options.schema));
    }
    LeaseState s;
    s.holder = decode_text(PQgetvalue(r->get(), 0, 0));
    s.epoch = to_int64(PQgetvalue(r->get(), 0, 1));
    s.url = decode_text(PQgetvalue(r->get(), 0, 2));
    s.live = std::string_view(PQgetvalue(r->get(), 0, 3)) == "t";
    s.remaining = std::chrono::milliseconds(to_int64(PQgetvalue(r->get(), 0, 4)));
    return s;
  }

  Result<std::optional<HeldLease>> acquire_now(const std::string& holder, const std::string& url,
                                               std::chrono::milliseconds duration,
                                               std::optional<std::int64_t> take_over) {
    const auto limit = duration / 3;
    if (lock_held) {
      if (auto r = let_go_now(); !r) return r.error();
    }
    // The session lock of the new epoch is taken in the same statement: it tells standbys at
    // once when this process goes (the lease is what counts).
    auto r = run(fmt::format("UPDATE {} SET holder = $1, url = $2, epoch = epoch + 1, expires_at = now() + $3 * "
                             "interval '1 millisecond', changed_at = now() WHERE name = 'leader' AND (holder = '' OR "
                             "holder = $1 OR expires_at <= now() OR epoch = $4) RETURNING epoch, "
                             "pg_try_advisory_lock({}, (epoch % 2147483647)::int)",
                             lease, lock_key),
                 {encode_text(holder), encode_text(url), std::to_string(duration.count()),
                  std::to_string(take_over.value_or(-1))},
                 limit, "take the leader lease of");
    if (!r) return r.error();
    if (PQntuples(r->get()) != 1) return std::optional<HeldLease>();
    HeldLease held{to_int64(PQgetvalue(r->get(), 0, 0)), duration};
    lock_held = std::string_view(PQgetvalue(r->get(), 0, 1)) == "t";
    lock_epoch = held.epoch;
    return std::optional<HeldLease>(held);
  }

  Result<std::optional<HeldLease>> renew_now(const std::string& holder, std::int64_t epoch,
                                             std::chrono::milliseconds duration) {
    const auto limit = duration / 3;
    auto r = run(fmt::format("UPDATE {} SET expires_at = now() + $3 * interval '1 millisecond' WHERE name = 'leader' "
                             "AND holder = $1 AND epoch = $2 AND expires_at > now() RETURNING epoch",
                             lease),
                 {encode_text(holder), std::to_string(epoch), std::to_string(duration.count())}, limit,
                 "renew the leader lease of");
    if (!r) return r.error();
    if (PQntuples(r->get()) != 1) return std::optional<HeldLease>();
    if (!lock_held) (void)take_session_lock(epoch, limit);  // after a reconnection
    return std::optional<HeldLease>(HeldLease{epoch, duration});
  }

  Result<void> release_now(const std::string& holder, std::int64_t epoch) {
    auto r = run(fmt::format("UPDATE {} SET expires_at = now(), changed_at = now() WHERE name = 'leader' AND holder "
                             "= $1 AND epoch = $2",
                             lease),
                 {encode_text(holder), std::to_string(epoch)}, options.io_timeout, "release the leader lease of");
    if (!r) return r.error();
    return let_go_now();
  }

  Result<void> let_go_now() {
    if (!lock_held) return {};
    auto r = run(fmt::format("SELECT pg_advisory_unlock({})", lock_args(lock_epoch)), {}, options.io_timeout,
                 "let go of the leader lock of");
    lock_held = false;
    if (!r) return r.error();
    return {};
  }
};

namespace {

// Runs `f` on the lease's thread; the caller resumes on its own executor.
template <class T, class F>
asio::awaitable<T> on_thread(std::shared_ptr<PostgresLease::Impl> impl, F f) {
  auto task = [](std::shared_ptr<PostgresLease::Impl> self, F fn) -> asio::awaitable<T> { co_return fn(*self); };
  co_return co_await asio::co_spawn(impl->thread, task(impl, std::move(f)), asio::use_awaitable);
}

}  // namespace

PostgresLease::PostgresLease(PostgresStoreOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

PostgresLease::~PostgresLease() {
  impl_->thread.join();
  impl_->drop();
}

asio::awaitable<Result<LeaseState>> PostgresLease::read() {
  return on_thread<Result<LeaseState>>(impl_, [](Impl& i) { return i.read_now(i.options.io_timeout); });
}

asio::awaitable<Result<std::optional<HeldLease>>> PostgresLease::acquire(std::string holder, std::string url,
                                                                         std::chrono::milliseconds duration,
                                                                         std::optional<std::int64_t> take_over) {
  return on_thread<Result<std::optional<HeldLease>>>(
      impl_, [holder = std::move(holder), url = std::move(url), duration, take_over](Impl& i) {
        return i.acquire_now(holder, url, duration, take_over);
      });
}

asio::awaitable<Result<std::optional<HeldLease>>> PostgresLease::renew(std::string holder, std::int64_t epoch,
                                                                       std::chrono::milliseconds duration) {
  return on_thread<Result<std::optional<HeldLease>>>(
      impl_, [holder = std::move(holder), epoch, duration](Impl& i) { return i.renew_now(holder, epoch, duration); });
}

asio::awaitable<Result<void>> PostgresLease::release(std::string holder, std::int64_t epoch) {
  return on_thread<Result<void>>(impl_,
                                 [holder = std::move(holder), epoch](Impl& i) { return i.release_now(holder, epoch); });
}

asio::awaitable<Result<bool>> PostgresLease::holder_gone(std::int64_t epoch) {
  return on_thread<Result<bool>>(impl_, [epoch](Impl& i) { return i.lock_free(epoch, i.options.io_timeout); });
}

asio::awaitable<Result<void>> PostgresLease::let_go() {
  return on_thread<Result<void>>(impl_, [](Impl& i) { return i.let_go_now(); });
}

}  // namespace nicsync::ledger
