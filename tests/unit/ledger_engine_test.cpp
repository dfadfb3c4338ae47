// The sync engine over the real SQLite ledger (files in a temp dir, real fingerprints): what the
// engine records for rejected, retried and applied deliveries survives a restart, and no
// planted password reaches the database, its WAL, or the history — whatever the destination's
// error messages were built from.
#include <deque>
#include <map>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "nicsync/ledger/fingerprint.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "nicsync/ledger/state_directory.hpp"
#include "nicsync/sync/engine.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::ledger {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const Gstin kRejected = Gstin::parse("07AAFCD5862R1ZX").value();
const Gstin kRetried = Gstin::parse("27AAPFU0939F1ZV").value();
const Gstin kApplied = Gstin::parse("29ABCDE1234F1ZW").value();
constexpr std::string_view kPlanted = "Planted#Pw0rd-engine-5e1b";
constexpr std::string_view kUser = "API_PLANTED";

// Answers the way a provider adapter would, with the credential at hand: the password only
// ever goes through Secret's formatter.
class ScriptedDestination final : public destinations::Destination {
 public:
  const std::string& name() const noexcept override { return name_; }
  std::string_view kind() const noexcept override { return "scripted"; }
  asio::awaitable<Result<void>> probe() override { co_return Result<void>{}; }
  destinations::DestinationStats stats() const override { return {}; }

  asio::awaitable<Result<void>> push(destinations::Delivery d, destinations::Credential c) override {
    ++pushes[d.gstin.str()];
    if (d.gstin == kRejected) {
      Error e(Errc::dest_credential_rejected, fmt::format("NIC rejected {} / {} for {} (Invalid UserName or Password)",
                                                          c.username, c.password, d.gstin.str()));
      e.provider_code = "NIC:1019";
      co_return e;
    }
    if (d.gstin == kRetried && pushes[d.gstin.str()] == 1) {
      Error e(Errc::dest_unavailable,
              fmt::format("ClearTax answered 503 to {{\"nic_password\":\"{}\"}}; retrying", c.password));
      e.provider_code = "CT:301";
      co_return e;
    }
    co_return Result<void>{};
  }

  std::map<std::string, int> pushes;

 private:
  std::string name_ = "cleartax";
};

std::string hex_of(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

bool file_contains(const std::filesystem::path& p, std::string_view needle) {
  return std::filesystem::exists(p) && testing::read_file(p.string()).find(needle) != std::string::npos;
}

// What the daemon does with a new engine: its destination and pairs, what the ledger has, start.
void start_engine(sync::Engine& engine, std::shared_ptr<ScriptedDestination> destination,
                  const std::vector<sync::PairConfig>& pairs) {
  engine.set_destinations({{std::move(destination), sync::LanePolicy{}}});
  ASSERT_TRUE(engine.set_pairs(pairs));
  ASSERT_TRUE(engine.load());
  engine.start();
}

// Version `version` of each GSTIN's key is observed; runs until the engine has nothing left to do.
void observe_until_idle(asio::io_context& io, sync::Engine& engine, std::initializer_list<Gstin> gstins,
                        std::int64_t version) {
  for (const auto& g : gstins) {
    Observation o;
    o.path = testing::path_of(g);
    o.version = VersionId{version, Lineage("2026-01-01T00:00:00Z")};
    engine.observe(o);
  }
  testing::run_for(io, [](sync::Engine* e) -> asio::awaitable<void> {
    while (!e->idle()) co_await e->wait_for_change();
  }(&engine));
}

TEST(LedgerWithEngine, OutcomesSurviveARestartAndNoPasswordReachesTheFiles) {
  testing::TempDir tmp;
  asio::io_context io(1);
  auto dir = StateDirectory::open(tmp.path() / "state");
  ASSERT_TRUE(dir) << dir.error().describe();
  auto fingerprinter = Fingerprinter::open(dir->file(Fingerprinter::kKeyFileName));
  ASSERT_TRUE(fingerprinter) << fingerprinter.error().describe();
  const auto fingerprint = [fp = *fingerprinter](std::string_view u, const Secret& p) { return fp.fingerprint(u, p); };
  const auto db = dir->file(SqliteStore::kFileName);

  testing::FakeReader reader;
  for (const auto& g : {kRejected, kRetried, kApplied}) reader.set(g, 1, std::string(kPlanted), std::string(kUser));
  std::vector<sync::PairConfig> pairs;
  for (const auto& g : {kRejected, kRetried, kApplied}) {
    pairs.push_back({"cleartax", g, sync::SourceRef{testing::path_of(g)}});
  }
  sync::EngineOptions options;
  options.seed = 7;
  options.backoff.base = 1ms;
  options.backoff.cap = 2ms;

  {
    auto store = SqliteStore::open({.path = db});
    ASSERT_TRUE(store) << store.error().describe();
    auto destination = std::make_shared<ScriptedDestination>();
    sync::Engine engine(io.get_executor(), **store, reader, fingerprint, Clock::real(), options);
    start_engine(engine, destination, pairs);
    observe_until_idle(io, engine, {kRejected, kRetried, kApplied}, 1);
    EXPECT_EQ(destination->pushes[kRetried.str()], 2);
    EXPECT_TRUE(engine.ledger_writable());
    testing::run_for(io, engine.stop(1s));

    // The WAL holds the recent commits: look at every file while the store is open.
    const auto applied_fp = fingerprint(kUser, Secret(kPlanted)).hex();
    EXPECT_TRUE(file_contains(db.string() + "-wal", applied_fp) || file_contains(db, applied_fp))
        << "the scan must find what the engine did write";
    for (const auto& p : {db.string(), db.string() + "-wal", db.string() + "-shm"}) {
      EXPECT_FALSE(file_contains(p, kPlanted)) << p;
      EXPECT_FALSE(file_contains(p, hex_of(kPlanted))) << p;
    }
    auto history = testing::run_for(io, (*store)->history("", 1000));
    ASSERT_TRUE(history);
    EXPECT_FALSE(history->empty());
    for (const auto& h : *history) EXPECT_EQ(h.message.find(kPlanted), std::string::npos) << h.message;
  }

  // A new run reads what the last one committed.
  auto store = SqliteStore::open({.path = db});
  ASSERT_TRUE(store);
  EXPECT_FALSE(file_contains(db, kPlanted));  // checkpointed into the main file by the last close
  auto records = (*store)->load_pairs();
  ASSERT_TRUE(records) << records.error().describe();
  std::map<std::string, PairRecord> by_gstin;
  for (auto& r : *records) by_gstin[r.gstin] = r;
  ASSERT_EQ(by_gstin.size(), 3u);
  EXPECT_EQ(by_gstin[kRejected.str()].state, PairState::rejected);
  EXPECT_EQ(by_gstin[kRejected.str()].last_error_provider, "NIC:1019");
  EXPECT_EQ(by_gstin[kRetried.str()].state, PairState::in_sync);
  EXPECT_EQ(by_gstin[kApplied.str()].state, PairState::in_sync);
  ASSERT_TRUE(by_gstin[kApplied.str()].applied);
  EXPECT_EQ(by_gstin[kApplied.str()].applied->version.number, 1);
  EXPECT_EQ(by_gstin[kApplied.str()].applied->fingerprint, fingerprint(kUser, Secret(kPlanted)));
  for (const auto& [g, r] : by_gstin) {
    EXPECT_FALSE(r.push_in_flight) << g;
    EXPECT_EQ(r.last_error_message.find(kPlanted), std::string::npos) << r.last_error_message;
  }

  // An engine started on that ledger compares with the fingerprints it loaded: version 2 with
  // the same values is recorded as unchanged, not pushed, and its fingerprint is the same text.
  reader.set(kApplied, 2, std::string(kPlanted), std::string(kUser));
  auto destination = std::make_shared<ScriptedDestination>();
  sync::Engine engine(io.get_executor(), **store, reader, fingerprint, Clock::real(), options);
  start_engine(engine, destination, pairs);
  observe_until_idle(io, engine, {kApplied}, 2);
  EXPECT_EQ(destination->pushes[kApplied.str()], 0);
  bool found = false;
  for (const auto& v : engine.snapshot()) {
    if (v.config.gstin != kApplied) continue;
    found = true;
    EXPECT_EQ(v.record.state, PairState::in_sync);
    ASSERT_TRUE(v.record.applied);
    EXPECT_EQ(v.record.applied->version.number, 2);
    EXPECT_EQ(v.record.applied->fingerprint, fingerprint(kUser, Secret(kPlanted)));
  }
  EXPECT_TRUE(found);
  testing::run_for(io, engine.stop(1s));
}

}  // namespace
}  // namespace nicsync::ledger
