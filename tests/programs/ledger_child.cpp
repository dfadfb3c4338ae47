// A child process for ledger tests that need another process:
//   nicsync-test-ledger-child lock <state-dir>
//       takes the state directory's lock, prints "locked <pid>", then waits to be killed.
//   nicsync-test-ledger-child write <state-dir> <concurrency>
//       writes records "GSTIN<n>" (version n) from <concurrency> coroutines without end and
//       prints "durable <n>" as soon as each write has completed, then waits to be killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

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
  r.state = PairState::in_sync;
  r.applied =
      VersionRef{VersionId{n, Lineage("2026-01-01T00:00:00Z")}, Fingerprint::from_hex(fmt::format("{:064x}", n))};
  r.applied_at = std::chrono::system_clock::now();
  r.updated_at = r.applied_at;
  return r;
}

// Pointers, not references: coroutine parameters must stay valid across suspensions.
asio::awaitable<void> writer(SqliteStore* store, std::int64_t* next) {
  for (;;) {
    const std::int64_t n = (*next)++;
    HistoryEntry h{.at = std::chrono::system_clock::now(),
                   .destination = "cleartax",
                   .gstin = fmt::format("GSTIN{}", n),
                   .version = VersionId{n},
                   .outcome = Outcome::applied,
                   .attempt = 1};
    PairRecord record = record_for(n);
    auto r = co_await store->write(std::move(record), std::move(h));
    if (!r) {
      say(fmt::format("error {}", r.error().describe()));
      std::_Exit(2);
    }
    say(fmt::format("durable {}", n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s lock|write <state-dir> [concurrency]\n", argv[0]);
    return 64;
  }
  const std::string_view mode = argv[1];
  auto dir = StateDirectory::open(argv[2]);
  if (!dir) {
    say(fmt::format("error {}", dir.error().describe()));
    return 1;
  }
  if (mode == "lock") {
    say(fmt::format("locked {}", ::getpid()));
    wait_for_kill();
  }
  if (mode != "write" || argc < 4) return 64;
  auto store = SqliteStore::open({.path = dir->file(SqliteStore::kFileName)});
  if (!store) {
    say(fmt::format("error {}", store.error().describe()));
    return 1;
  }
  asio::io_context io(1);
  std::int64_t next = 1;
  const int concurrency = std::atoi(argv[3]);
  for (int i = 0; i < concurrency; ++i) asio::co_spawn(io, writer(store->get(), &next), asio::detached);
  say("writing");
  io.run();
  return 0;
}
