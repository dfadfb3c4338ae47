#include "app/ledger_commands.hpp"

#include <filesystem>
#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/runtime.hpp"
#include "nicsync/app/cli.hpp"
#include "nicsync/destinations/token_stash.hpp"
#include "nicsync/ledger/copy.hpp"
#include "nicsync/ledger/fingerprint.hpp"
#include "nicsync/ledger/keys.hpp"
#include "nicsync/ledger/postgres_store.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/ledger/state_directory.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

int fail(std::string_view what) {
  std::cerr << "nicsyncd ledger copy: " << what << "\n";
  return kExitFailure;
}

// Runs one coroutine to completion on a private loop.
template <class T>
T run_here(asio::awaitable<T> task) {
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out.emplace(std::move(v));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

// The keys the copy makes the shared ones: those in `path` if it exists (their fingerprint key
// must be the one the SQLite ledger used), else new ones around that fingerprint key, written
// to `path`.
Result<ledger::LedgerKeys> keys_for_copy(const fs::path& path, const Secret& fingerprint_key, bool& created) {
  created = false;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    auto keys = ledger::read_keys_file(path);
    if (!keys) return keys.error();
    if (!(keys->fingerprint == fingerprint_key)) {
      return Error(Errc::config_invalid,
                   fmt::format("{} holds another fingerprint key than this SQLite ledger's: with it every "
                               "credential would be pushed again. Name a new file in --keys-out to get one made "
                               "from this ledger's key",
                               path.string()));
    }
    return keys;
  }
  auto keys = ledger::LedgerKeys::generate(&fingerprint_key);
  if (!keys) return keys.error();
  if (auto w = ledger::write_keys_file(path, *keys, false); !w) return w.error();
  created = true;
  return keys;
}

// Every ClearTax token cache file in `dir`, sealed into `to` under its name (a token already
// there stays, unless `force`). Returns how many were moved.
asio::awaitable<Result<int>> move_token_caches(const fs::path& dir, ledger::Store& to, const ledger::Sealer& sealer,
                                               bool force) {
  auto files = destinations::make_file_token_stash(dir.string());
  int moved = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with("cleartax-") || !file.ends_with(".token")) continue;
    const std::string name = file.substr(0, file.size() - 6);
    auto there = co_await to.read_sealed(name);
    if (!there) co_return there.error();
    if (*there && !force) continue;
    auto content = co_await files->load(name);
    if (!content) co_return content.error();
    if (!*content) continue;
    auto sealed = sealer.seal(name, (*content)->expose());
    if (!sealed) co_return sealed.error();
    auto w = co_await to.write_sealed(name, std::move(*sealed));
    if (!w) co_return w.error();
    ++moved;
  }
  co_return moved;
}

}  // namespace

int command_ledger_keys(const std::string& out, bool force) {
  auto keys = ledger::LedgerKeys::generate();
  if (!keys) {
    std::cerr << "nicsyncd ledger keys: " << keys.error().message << "\n";
    return kExitFailure;
  }
  if (auto w = ledger::write_keys_file(out, *keys, force); !w) {
    std::cerr << "nicsyncd ledger keys: " << w.error().message << "\n";
    return kExitFailure;
  }
  std::cout << fmt::format(
      "wrote new ledger keys to {} (mode 0600). Give every daemon on the ledger this same file "
      "([ledger] keys_file, e.g. through LoadCredential=) and back it up with the database.\n",
      out);
  return kExitOk;
}

int command_ledger_copy(const Config& config, const LedgerCopyOptions& o) {
  if (!o.from.starts_with("sqlite:")) return fail("--from must be sqlite:PATH (a state directory or its ledger.db)");
  if (o.to != "postgresql" && !o.to.starts_with("postgresql:")) {
    return fail("--to must be postgresql (the [ledger] of the config, or PG* variables) or postgresql:CONNINFO");
  }
  fs::path source(o.from.substr(7));
  std::error_code ec;
  const fs::path dir = fs::is_directory(source, ec) ? source : source.parent_path();
  const fs::path db = fs::is_directory(source, ec) ? source / ledger::SqliteStore::kFileName : source;
  if (!fs::exists(db, ec)) return fail(fmt::format("{} does not exist", db.string()));
  // The state directory's lock: no daemon may write the SQLite ledger meanwhile.
  auto state = ledger::StateDirectory::open(dir);
  if (!state) return fail(state.error().message + " (stop the daemon that uses it first)");
  auto fingerprint_key = ledger::Fingerprinter::read_key_file(dir / ledger::Fingerprinter::kKeyFileName);
  if (!fingerprint_key) return fail(fingerprint_key.error().message);

  const std::string keys_path = !o.keys_out.empty() ? o.keys_out : config.ledger.keys_file_path();
  if (keys_path.empty()) {
    return fail("say where the shared keys go: --keys-out FILE (then name it in [ledger] keys_file)");
  }
  bool created = false;
  auto keys = keys_for_copy(keys_path, *fingerprint_key, created);
  if (!keys) return fail(keys.error().message);
  auto sealer = ledger::Sealer::with_key(keys->sealing);
  if (!sealer) return fail(sealer.error().message);

  ledger::PostgresStoreOptions target_options;
  if (o.to == "postgresql") {
    Config c = config;
    c.ledger.backend = LedgerBackend::postgresql;
    auto options = postgres_options(c);
    if (!options) return fail(options.error().message);
    target_options = std::move(*options);
  } else {
    target_options.conninfo = Secret(std::string_view(o.to).substr(11));
  }
  if (!o.schema.empty()) target_options.schema = o.schema;
  if (!ledger::valid_schema_name(target_options.schema)) return fail("--schema must be a plain SQL identifier");

  ledger::SqliteStoreOptions so;
  so.path = db;
  auto from = ledger::SqliteStore::open(so);
  if (!from) return fail(from.error().message);
  auto to = ledger::PostgresStore::open(std::move(target_options));
  if (!to) {
    (*from)->close();
    return fail(to.error().message);
  }
  auto copied = run_here(ledger::copy_ledger(**from, **to, o.force));
  Result<int> tokens = 0;
  if (copied) tokens = run_here(move_token_caches(dir, **to, *sealer, o.force));
  (*to)->close();
  (*from)->close();
  if (!copied) return fail(copied.error().message);
  if (!tokens) return fail("copying the ClearTax token: " + tokens.error().message);
  if (copied->already_copied) {
    std::cout << "the target already holds this ledger: nothing written\n";
  } else {
    std::cout << fmt::format("copied {} pairs and {} history lines", copied->pairs, copied->history);
    if (copied->target_pairs + copied->target_history > 0) {
      std::cout << fmt::format(" over a target that held {} pairs and {} history lines", copied->target_pairs,
                               copied->target_history);
    }
    std::cout << "\n";
  }
  if (*tokens > 0) std::cout << fmt::format("sealed {} ClearTax token cache(s) into the ledger\n", *tokens);
  std::cout << fmt::format(
      "{} {}: its fingerprint key is this ledger's, so nothing is pushed again. Set [ledger] backend = "
      "\"postgresql\" and keys_file to it on every daemon.\n",
      created ? "wrote the shared keys to" : "the shared keys are in", keys_path);
  return kExitOk;
}

}  // namespace nicsync::app
