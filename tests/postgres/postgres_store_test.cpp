// The PostgreSQL ledger against a real server: the store contract (tests/conformance), and
// what is PostgreSQL's own: the schema made under a lock and a newer one refused, and every
// fault — a wrong password, an unreachable or restarting server, missing grants, a read-only
// server, a full disk — failing writes with advice, never a password, and recovering by itself.
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include "conformance/store_conformance.hpp"
#include "conformance/store_fixtures.hpp"
#include "postgres/server.hpp"
#include "testing/process.hpp"

namespace nicsync::ledger {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace fixtures;
using conformance::StoreConformance;
using testing::run_for;
using testing::shared_server;

/// The PostgreSQL store for the conformance suite: a fresh schema in the shared server.
class PostgresHarness final : public conformance::StoreHarness {
 public:
  PostgresHarness() : url_file_(testing::write_url_file(tmp_, shared_server())), schema_(testing::fresh_schema()) {}
  std::unique_ptr<Store> open() override {
    auto store = PostgresStore::open(testing::store_options(url_file_, schema_));
    EXPECT_TRUE(store) << store.error().describe();
    if (!store) return nullptr;
    return std::move(*store);
  }
  conformance::StoreCounters counters(Store& store) override {
    const auto s = dynamic_cast<PostgresStore&>(store).stats();
    return {s.transactions, s.writes, s.largest_batch, s.queued};
  }
  std::vector<std::string> child_args() override { return {"postgresql", url_file_, schema_}; }

 private:
  testing::TempDir tmp_;
  std::string url_file_;
  std::string schema_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
                         ::testing::Values(conformance::Backend{"postgresql",
                                                                [] { return std::make_unique<PostgresHarness>(); }}),
                         conformance::backend_name);

class PostgresStoreTest : public ::testing::Test {
 protected:
  PostgresStoreTest() : server_(shared_server()), url_file_(testing::write_url_file(tmp_, server_)) {}

  PostgresStoreOptions options() const { return testing::store_options(url_file_, schema_); }
  std::unique_ptr<PostgresStore> open() {
    auto store = PostgresStore::open(options());
    EXPECT_TRUE(store) << store.error().describe();
    return store ? std::move(*store) : nullptr;
  }
  Result<void> write(Store& s, PairRecord r, std::optional<HistoryEntry> h = std::nullopt) {
    return run_for(io_, s.write(std::move(r), std::move(h)));
  }
  std::string sql(const std::string& statement) { return server_.sql(statement, testing::kRole); }
  /// Ends the store's connections from the server's side (as a restart or a DBA would).
  void terminate_connections() {
    server_.sql(
        fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'", testing::kRole));
  }
  /// Writes until one succeeds (the store reconnects meanwhile), at most `limit`.
  Result<void> write_until_ok(Store& s, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto r = write(s, full_record(), entry("RETRY", kT0, 1));
      if (r || std::chrono::steady_clock::now() > until) return r;
      std::this_thread::sleep_for(50ms);
    }
  }
  void expect_no_password(const std::string& text) {
    EXPECT_EQ(text.find(testing::kRolePassword), std::string::npos) << text;
  }

  testing::PostgresServer& server_;
  testing::TempDir tmp_;
  std::string url_file_;
  std::string schema_ = testing::fresh_schema();
  asio::io_context io_{1};
};

TEST_F(PostgresStoreTest, HistoryIsAppendOnly) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(write(*store, full_record(), entry("G", kT0, 1)));
  const auto error = server_.sql_error(fmt::format("UPDATE {}.history SET message = 'rewritten'", schema_), "nicsync");
  EXPECT_NE(error.find("append-only"), std::string::npos) << error;
}

TEST_F(PostgresStoreTest, DaemonsStartingTogetherCreateTheSchemaOnce) {
  constexpr int kDaemons = 6;
  std::vector<std::optional<Result<std::unique_ptr<PostgresStore>>>> opened(kDaemons);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDaemons; ++i) {
    threads.emplace_back([&, i] { opened[i].emplace(PostgresStore::open(options())); });
  }
  for (auto& t : threads) t.join();
  for (auto& o : opened) ASSERT_TRUE(*o) << o->error().describe();
  EXPECT_EQ(sql(fmt::format("SELECT version, written_by FROM {}.schema_version", schema_)),
            fmt::format("{}|nicsyncd\n", PostgresStore::kSchemaVersion));
  EXPECT_EQ(sql(fmt::format("SELECT count(*) FROM pg_tables WHERE schemaname = '{}'", schema_)),
            "5\n");  // schema_version, pairs, history, sealed, lease
  ASSERT_TRUE(write(***opened[0], full_record()));
  EXPECT_EQ((**opened[kDaemons - 1])->load_pairs()->size(), 1u);
}

TEST_F(PostgresStoreTest, ANewerSchemaIsRefusedAndLeftAlone) {
  open().reset();
  sql(fmt::format("UPDATE {}.schema_version SET version = 7", schema_));
  auto store = PostgresStore::open(options());
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_schema)) << store.error().describe();
  EXPECT_NE(store.error().message.find("schema version 7"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find(fmt::format("up to version {}", PostgresStore::kSchemaVersion)),
            std::string::npos)
      << store.error().message;
  EXPECT_NE(store.error().message.find("newer nicsyncd"), std::string::npos) << store.error().message;
  EXPECT_EQ(sql(fmt::format("SELECT version FROM {}.schema_version", schema_)), "7\n");
}

TEST_F(PostgresStoreTest, ASchemaOfAnotherProgramIsRefused) {
  sql(fmt::format("CREATE SCHEMA {0} AUTHORIZATION nicsync; CREATE TABLE {0}.accounts (id int)", schema_));
  auto store = PostgresStore::open(options());
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_schema)) << store.error().describe();
  EXPECT_NE(store.error().message.find("[ledger] schema"), std::string::npos) << store.error().message;
}

TEST_F(PostgresStoreTest, AWrongPasswordSaysWhereToPutTheRightOne) {
  const std::string wrong = "Wrong-Pw-55aa";
  url_file_ = testing::write_url_file(tmp_, server_, wrong, "wrong-url");
  const auto started = std::chrono::steady_clock::now();
  auto store = PostgresStore::open(options());
  ASSERT_FALSE(store);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "a refused login is not waited for";
  EXPECT_TRUE(store.error().is(Errc::ledger_io)) << store.error().describe();
  EXPECT_NE(store.error().message.find("url_file"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("role nicsync"), std::string::npos) << store.error().message;
  EXPECT_EQ(store.error().message.find(wrong), std::string::npos) << store.error().message;
  expect_no_password(store.error().message);
}

TEST_F(PostgresStoreTest, AnUnreachableServerSaysWhatToCheck) {
  const auto port = testing::free_port();  // nothing listens there
  testing::write_file(
      url_file_, fmt::format("host=127.0.0.1 port={} dbname=x user=y password={}\n", port, testing::kRolePassword));
  auto o = options();
  o.open_wait = 600ms;
  auto store = PostgresStore::open(o);
  ASSERT_FALSE(store);
  EXPECT_TRUE(store.error().is(Errc::ledger_io)) << store.error().describe();
  EXPECT_NE(store.error().message.find("check that the server is up"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find(std::to_string(port)), std::string::npos) << store.error().message;
  expect_no_password(store.error().message);
}

TEST_F(PostgresStoreTest, MissingGrantsSayWhatToGrantAndWritesResumeOnceGranted) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(write(*store, full_record()));
  sql(fmt::format("REVOKE INSERT ON {}.history FROM nicsync", schema_));
  auto w = write(*store, full_record(), entry("G", kT0, 1));
  ASSERT_FALSE(w);
  EXPECT_TRUE(w.error().is(Errc::ledger_io)) << w.error().describe();
  EXPECT_NE(w.error().message.find("GRANT"), std::string::npos) << w.error().message;
  EXPECT_FALSE(store->writable());
  EXPECT_NE(store->last_write_error().find("GRANT"), std::string::npos) << store->last_write_error();
  // The record of the failed write did not stay either: one transaction.
  sql(fmt::format("GRANT INSERT ON {}.history TO nicsync", schema_));
  ASSERT_TRUE(write(*store, full_record(), entry("G", kT0, 2)));
  EXPECT_TRUE(store->writable());
  EXPECT_EQ(store->last_write_error(), "");
  auto h = run_for(io_, store->history("G", 10));
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ(h->front().version.number, 2);
}

TEST_F(PostgresStoreTest, AFullDiskOnTheServerIsLedgerFullAndWritesResumeWithRoom) {
  auto store = open();
  ASSERT_TRUE(store);
  // The server's own error for a full disk, raised where a write would meet it.
  sql(
      fmt::format("CREATE FUNCTION {0}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION "
                  "'could not extend file: No space left on device' USING ERRCODE = '53100'; END$$; CREATE TRIGGER "
                  "disk_full BEFORE INSERT OR UPDATE ON {0}.pairs FOR EACH ROW EXECUTE FUNCTION {0}.disk_full()",
                  schema_));
  auto results = run_for(io_, write_all(store.get(), numbered_records(0, 50), "m"));
  for (const auto& r : results) {
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(Errc::ledger_full)) << r.error().describe();
    EXPECT_NE(r.error().message.find("free space"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(store->writable());
  EXPECT_GE(store->stats().failed_transactions, 1u);
  EXPECT_EQ(store->load_pairs()->size(), 0u);
  sql(fmt::format("DROP TRIGGER disk_full ON {}.pairs", schema_));
  ASSERT_TRUE(write(*store, full_record()));
  EXPECT_TRUE(store->writable());
}

TEST_F(PostgresStoreTest, AReadOnlyServerSaysPointAtThePrimaryAndTheStoreComesBack) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(write(*store, full_record()));
  // Sessions of the role become read-only, like those of a hot standby.
  sql("ALTER ROLE nicsync SET default_transaction_read_only = on");
  terminate_connections();
  Result<void> w = write(*store, full_record());  // the connection is gone: fails at once
  ASSERT_FALSE(w);
  // Reconnecting finds a read-only server.
  for (int i = 0; i < 100 && store->last_write_error().find("hot standby") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
    (void)write(*store, full_record());
  }
  EXPECT_NE(store->last_write_error().find("not a hot standby"), std::string::npos) << store->last_write_error();
  EXPECT_FALSE(store->writable());
  expect_no_password(store->last_write_error());
  sql("ALTER ROLE nicsync RESET default_transaction_read_only");
  ASSERT_TRUE(write_until_ok(*store, 10s));
  EXPECT_TRUE(store->writable());
  EXPECT_GE(store->stats().connections, 2u);
}

TEST_F(PostgresStoreTest, ARotatedPasswordInUrlFileIsReadAtTheNextConnection) {
  auto store = open();
  ASSERT_TRUE(store);
  const std::string rotated = "Rotated-Pw-3b8e";
  sql(fmt::format("ALTER ROLE nicsync PASSWORD '{}'", rotated));
  testing::write_url_file(tmp_, server_, rotated);
  terminate_connections();
  auto ok = write_until_ok(*store, 10s);
  sql(fmt::format("ALTER ROLE nicsync PASSWORD '{}'", testing::kRolePassword));
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(store->stats().connections, 2u);
}

TEST_F(PostgresStoreTest, CheckReportsConnectionGrantsAndSchemaVersion) {
  auto lines = check_postgres(options());
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_TRUE(l.ok) << l.check << ": " << l.result;
  EXPECT_NE(lines[2].result.find("none yet"), std::string::npos) << lines[2].result;
  open().reset();
  lines = check_postgres(options());
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& l : lines) EXPECT_TRUE(l.ok) << l.check << ": " << l.result;
  EXPECT_NE(lines[2].result.find(fmt::format("ok: {}", PostgresStore::kSchemaVersion)), std::string::npos)
      << lines[2].result;

  sql(fmt::format("REVOKE UPDATE, DELETE ON {}.pairs FROM nicsync", schema_));
  lines = check_postgres(options());
  ASSERT_GE(lines.size(), 2u);
  EXPECT_FALSE(lines[1].ok);
  EXPECT_NE(lines[1].result.find(fmt::format("on {}.pairs", schema_)), std::string::npos) << lines[1].result;
  EXPECT_NE(lines[1].result.find("GRANT"), std::string::npos) << lines[1].result;

  sql(fmt::format("UPDATE {}.schema_version SET version = 9", schema_));
  lines = check_postgres(options());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[2].ok);
  EXPECT_NE(lines[2].result.find("schema version 9"), std::string::npos) << lines[2].result;

  testing::write_url_file(tmp_, server_, "Not-The-Pw-1");
  lines = check_postgres(options());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0].ok);
  EXPECT_EQ(lines[0].result.find("Not-The-Pw-1"), std::string::npos) << lines[0].result;
}

// A restart of the server while writes keep coming: the writes the restart broke fail (the
// engine writes them again), none that completed is lost, and the store reconnects by itself.
TEST(PostgresServerRestart, WritesFailDuringTheRestartAndNoCompletedOneIsLost) {
  testing::PostgresServer server;
  server.create_role_and_database(testing::kRole, testing::kRolePassword);
  testing::TempDir tmp;
  auto options = testing::store_options(testing::write_url_file(tmp, server), "nicsync");
  auto opened = PostgresStore::open(options);
  ASSERT_TRUE(opened) << opened.error().describe();
  auto& store = **opened;
  asio::io_context io(1);

  std::set<std::string> acknowledged;
  std::vector<std::string> errors;
  int next = 0;
  bool stop = false;
  auto writer = [&]() -> asio::awaitable<void> {
    while (!stop) {
      PairRecord r = full_record();
      r.gstin = fmt::format("G{:06}", next++);
      auto w = co_await store.write(r, entry(r.gstin, kT0, 1));
      if (w) {
        acknowledged.insert(r.gstin);
      } else {
        errors.push_back(w.error().message);
        asio::steady_timer t(io, 20ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    }
  };
  for (int i = 0; i < 8; ++i) asio::co_spawn(io, writer(), asio::detached);
  io.run_for(500ms);
  const auto before = acknowledged.size();
  ASSERT_GT(before, 50u);
  std::thread restart([&] { server.restart("immediate"); });
  io.run_for(1500ms);
  restart.join();
  // Back: writes succeed again within the backoff.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::size_t after_restart = acknowledged.size();
  while (std::chrono::steady_clock::now() < deadline && acknowledged.size() < after_restart + 200) io.run_for(100ms);
  stop = true;
  io.run_for(500ms);
  EXPECT_GE(acknowledged.size(), after_restart + 200) << "writes did not resume after the restart";
  EXPECT_FALSE(errors.empty()) << "the restart broke no write";
  for (const auto& e : errors) {
    EXPECT_EQ(e.find(testing::kRolePassword), std::string::npos) << e;
    EXPECT_NE(e.find("nicsync"), std::string::npos) << e;
  }
  EXPECT_TRUE(store.writable());
  EXPECT_GE(store.stats().connections, 2u);
  store.close();

  auto reopened = PostgresStore::open(options);
  ASSERT_TRUE(reopened) << reopened.error().describe();
  auto pairs = (*reopened)->load_pairs();
  ASSERT_TRUE(pairs);
  std::set<std::string> present;
  for (const auto& p : *pairs) present.insert(p.gstin);
  for (const auto& g : acknowledged) EXPECT_TRUE(present.count(g)) << g << " was acknowledged but is not there";
  std::cout << "restart: " << acknowledged.size() << " writes acknowledged, " << errors.size()
            << " failed; first: " << (errors.empty() ? std::string() : errors.front()) << "\n";
}

}  // namespace
}  // namespace nicsync::ledger
