// A child process for ledger tests that need another process:
//   nicsync-test-ledger-child lock <state-dir>
//       takes the state directory's lock, prints "locked <pid>", then waits to be killed.
//   nicsync-test-ledger-child write <concurrency> sqlite <state-dir>
//   nicsync-test-ledger-child write <concurrency> postgresql <url-file> <schema>
//       delivers records "GSTIN<n>" (version n) from <concurrency> coroutines without end, the
//       way the engine does: the intent (pending n, push in flight), printed "intent <n>" once
//       it has completed, then the outcome (applied n, in sync, one history entry), printed
//       "durable <n>". Waits to be killed. (The connection string is in a file: it may hold a
//       password, and argv is public.)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "nicsync/ledger/postgres_store.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/ledger/state_directory.hpp"

namespace asio = boost::asio;
using namespace nicsync;
using namespace nicsync::ledger;

namespace {

// Unbuffered: a line the parent reads was printed after the write completed, and nothing the
// process printed is lost when it is killed.
void say(const std::string& line) {
  const std::string out = line + "\n";
  (void)!::write(STDOUT_FILENO, out.data(), out.size());
}

[[noreturn]] void wait_for_kill() {
  for (;;) ::pause();
}

PairRecord record_for(std::int64_t n) {
  PairRecord r;
  r.destination = "cleartax";
  r.gstin = fmt::format("GSTIN{}", n);
  r.vault_path = fmt::format("secret/nic/GSTIN{}", n);
  r.state = PairState::pending;
  r.pending =
      VersionRef{VersionId{n, Lineage("2026-01-01T00:00:00Z")}, Fingerprint::from_hex(fmt::format("{:064x}", n))};
  r.push_in_flight = true;
  r.updated_at = std::chrono::system_clock::now();
  return r;
}

// Pointers, not references: coroutine parameters must stay valid across suspensions.
asio::awaitable<void> writer(Store* store, std::int64_t* next) {
  for (;;) {
    const std::int64_t n = (*next)++;
    PairRecord record = record_for(n);
    if (auto r = co_await store->write(record, std::nullopt); !r) {
      say(fmt::format("error {}", r.error().describe()));
      std::_Exit(2);
    }
    say(fmt::format("intent {}", n));
    record.state = PairState::in_sync;
    record.applied = record.pending;
    record.pending.reset();
    record.push_in_flight = false;
    record.applied_at = std::chrono::system_clock::now();
    HistoryEntry h{.at = record.applied_at,
                   .destination = "cleartax",
                   .gstin = record.gstin,
                   .version = VersionId{n},
                   .outcome = Outcome::applied,
                   .attempt = 1};
    if (auto r = co_await store->write(std::move(record), std::move(h)); !r) {
      say(fmt::format("error {}", r.error().describe()));
      std::_Exit(2);
    }
    say(fmt::format("durable {}", n));
  }
}

int write(int argc, char** argv) {
  if (argc < 5) return 64;
  const int concurrency = std::atoi(argv[2]);
  const std::string_view backend = argv[3];
  Result<std::unique_ptr<Store>> store = Error(Errc::invalid_argument, "unknown backend");
  std::optional<StateDirectory> dir;
  if (backend == "sqlite") {
    auto d = StateDirectory::open(argv[4]);
    if (!d) {
      say(fmt::format("error {}", d.error().describe()));
      return 1;
    }
    dir.emplace(std::move(*d));
    auto s = SqliteStore::open({.path = dir->file(SqliteStore::kFileName)});
    if (s)
      store = std::unique_ptr<Store>(std::move(*s));
    else
      store = s.error();
  } else if (backend == "postgresql" && argc >= 6) {
    PostgresStoreOptions o;
    o.conninfo_file = argv[4];
    o.schema = argv[5];
    auto s = PostgresStore::open(std::move(o));
    if (s)
      store = std::unique_ptr<Store>(std::move(*s));
    else
      store = s.error();
  }
  if (!store) {
    say(fmt::format("error {}", store.error().describe()));
    return 1;
  }
  asio::io_context io(1);
  std::int64_t next = 1;
  for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, writer(store->get(), &next), asio::detached);
  say("writing");
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s lock <state-dir> | write <concurrency> sqlite|postgresql ...\n", argv[0]);
    return 64;
  }
  const std::string_view mode = argv[1];
  if (mode == "write") return write(argc, argv);
  if (mode != "lock") return 64;
  auto dir = StateDirectory::open(argv[2]);
  if (!dir) {
    say(fmt::format("error {}", dir.error().describe()));
    return 1;
  }
  say(fmt::format("locked {}", ::getpid()));
  wait_for_kill();
}
