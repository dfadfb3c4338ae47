// The sync engine with an in-memory ledger, a scripted Vault reader and a scripted destination:
// delivery, no-ops, coalescing, retries and backoff, parking, rejection, deletion, lineages,
// crash recovery, admission limits and shutdown. Time is a ManualClock moved by the tests.
#include "nicsync/sync/engine.hpp"

#include <deque>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "nicsync/sync/idempotency.hpp"
#include "testing/deadline.hpp"
#include "testing/engine_fakes.hpp"
#include "testing/memory_store.hpp"

namespace nicsync::sync {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using destinations::Credential;
using ledger::Outcome;
using ledger::PairState;

const Gstin kG1 = Gstin::parse("07AAFCD5862R1ZX").value();
const Gstin kG2 = Gstin::parse("27AAPFU0939F1ZV").value();
const Gstin kG3 = Gstin::parse("29ABCDE1234F1ZW").value();
constexpr const char* kLineage = "2025-03-01T12:00:00.5Z";

using testing::FakeDestination;
using testing::FakeReader;
using testing::path_of;

// A ledger version reference as a previous run would have written it.
ledger::VersionRef ref(std::int64_t version, std::string_view lineage, std::string_view password) {
  return ledger::VersionRef{VersionId{version, Lineage(lineage)},
                            testing::test_fingerprint("API_USER", Secret(password))};
}

Error transient(std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
  Error e(Errc::dest_unavailable, "provider answered 503");
  e.retry_after = retry_after;
  return e;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.seed = 42;
    options_.backoff.base = 1s;
    options_.backoff.cap = 60s;
    options_.backoff.max_age = 1h;
  }

  void start(std::vector<Gstin> gstins = {kG1}, LanePolicy policy = {}) {
    engine_ =
        std::make_unique<Engine>(io_.get_executor(), store_, reader_, testing::test_fingerprint, clock_, options_);
    engine_->set_destinations({{dest_, policy}});
    std::vector<PairConfig> pairs;
    for (const auto& g : gstins) pairs.push_back({"fake", g, SourceRef{path_of(g)}});
    ASSERT_TRUE(engine_->set_pairs(pairs));
    ASSERT_TRUE(engine_->load());
    engine_->start();
  }

  void observe(const Gstin& g, std::int64_t version, std::string lineage = kLineage,
               SourceState state = SourceState::present, bool force = false) {
    Observation o;
    o.path = path_of(g);
    o.version = VersionId{version, Lineage(lineage), state};
    o.force = force;
    engine_->observe(o);
  }

  // Runs the loop until `pred` holds (event-driven: wakes on every engine state change).
  template <class Pred>
  void until(Pred pred, std::chrono::milliseconds deadline = 10s) {
    auto wait = [&]() -> asio::awaitable<void> {
      while (!pred()) co_await engine_->wait_for_change();
    };
    testing::run_for(io_, wait(), deadline);
  }

  void settle() {
    until([&] { return engine_->idle(); });
  }

  // Lets already-queued handlers run (no new time passes).
  void drain() { testing::drain(io_, 20ms); }

  void advance(std::chrono::milliseconds d) {
    clock_.advance(d);
    engine_->poke();
  }

  // The durable record (an empty one until the first write).
  const ledger::PairRecord& record(const Gstin& g = kG1) {
    const auto* r = store_.record("fake", g.str());
    static const ledger::PairRecord empty;
    return r != nullptr ? *r : empty;
  }

  std::vector<std::int64_t> pushed_versions(const Gstin& g = kG1) {
    std::vector<std::int64_t> out;
    for (const auto& p : dest_->pushes) {
      if (p.gstin == g.str()) out.push_back(p.version);
    }
    return out;
  }

  std::vector<Outcome> outcomes(const Gstin& g = kG1) {
    std::vector<Outcome> out;
    for (const auto& h : store_.all_history()) {
      if (h.gstin == g.str()) out.push_back(h.outcome);
    }
    return out;
  }

  void TearDown() override {
    if (engine_) {
      EXPECT_EQ(dest_->intent_violations, 0) << "a push went out before its intent was durable";
      EXPECT_EQ(dest_->same_pair_overlap, 0) << "two pushes for one pair overlapped";
    }
    engine_.reset();
    testing::drain(io_);
  }

  asio::io_context io_;
  ManualClock clock_;
  testing::MemoryStore store_{io_.get_executor()};
  FakeReader reader_;
  std::shared_ptr<FakeDestination> dest_ = std::make_shared<FakeDestination>("fake", io_.get_executor(), store_);
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
};

TEST(DropRepeatedPairs, KeepsTheFirstOfEachDestinationAndGstinInOrder) {
  const Gstin a = Gstin::parse("07AAFCD5862R1ZX").value();
  const Gstin b = Gstin::parse("27AAPFU0939F1ZV").value();
  auto pair = [](std::string dest, const Gstin& g, std::string mount) {
    return PairConfig{std::move(dest), g, SourceRef{mount + "/nic/" + g.str()}};
  };
  std::vector<PairConfig> pairs = {
      pair("cleartax", b, "explicit"),  // an explicit mapping, listed first
      pair("cleartax", a, "explicit"), pair("erp", a, "explicit"),
      pair("cleartax", a, "set-1"),  // the same GSTIN and destination again, from a set
      pair("cleartax", b, "set-1"),    pair("cleartax", b, "set-2"),
      pair("erp", b, "set-2"),  // new: kept
  };
  drop_repeated_pairs(pairs);
  std::vector<std::string> kept;
  for (const auto& p : pairs) kept.push_back(p.destination + " " + p.source.path);
  EXPECT_EQ(kept,
            (std::vector<std::string>{"cleartax explicit/nic/27AAPFU0939F1ZV", "cleartax explicit/nic/07AAFCD5862R1ZX",
                                      "erp explicit/nic/07AAFCD5862R1ZX", "erp set-2/nic/27AAPFU0939F1ZV"}));
  std::vector<PairConfig> none;
  drop_repeated_pairs(none);
  EXPECT_TRUE(none.empty());
}

TEST_F(EngineTest, DeliversANewVersionOnceAndRecordsIt) {
  reader_.set(kG1, 1, "Pass#1");
  start();
  observe(kG1, 1);
  settle();
  ASSERT_EQ(dest_->pushes.size(), 1u);
  EXPECT_EQ(dest_->pushes[0].password, "Pass#1");
  EXPECT_EQ(dest_->pushes[0].attempt, 1);
  EXPECT_EQ(dest_->pushes[0].idempotency_key, sync::idempotency_key("fake", kG1, path_of(kG1), kLineage, 1));
  const auto& r = record();
  EXPECT_EQ(r.state, PairState::in_sync);
  ASSERT_TRUE(r.applied);
  EXPECT_EQ(r.applied->version.number, 1);
  EXPECT_EQ(r.applied->version.lineage.text(), kLineage);
  EXPECT_FALSE(r.pending);
  EXPECT_FALSE(r.push_in_flight);
  EXPECT_EQ(outcomes(), std::vector<Outcome>{Outcome::applied});
  // The same observation again is not news.
  observe(kG1, 1);
  settle();
  EXPECT_EQ(dest_->pushes.size(), 1u);
}

TEST_F(EngineTest, LineagesComeBackAsTheExactTextVaultSent) {
  // A lineage is opaque: whatever text Vault sent comes back unchanged, and any other lineage
  // is news, whatever time it names.
  const std::vector<std::string> lineages = {"2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00Z",
                                             "2026-01-01T00:00:00.500Z", "2026-01-01T05:30:00.123456789+05:30",
                                             "not a time"};
  const Gstin gstins[] = {kG1, kG2, kG3, Gstin::parse("07AAACR5055K1Z9").value(),
                          Gstin::parse("33AAACI1195H1ZT").value()};
  for (const auto& g : gstins) reader_.set(g, 1, "Pass#1");
  start(std::vector<Gstin>(std::begin(gstins), std::end(gstins)));
  for (std::size_t i = 0; i < lineages.size(); ++i) observe(gstins[i], 1, lineages[i]);
  settle();
  ASSERT_EQ(dest_->pushes.size(), lineages.size());
  for (std::size_t i = 0; i < lineages.size(); ++i) {
    const auto& r = record(gstins[i]);
    ASSERT_TRUE(r.applied) << lineages[i];
    EXPECT_EQ(r.applied->version.lineage.text(), lineages[i]);
    bool seen = false;
    for (const auto& v : engine_->snapshot()) {
      if (v.config.gstin != gstins[i]) continue;
      seen = true;
      ASSERT_TRUE(v.record.applied);
      EXPECT_EQ(v.record.applied->version.lineage.text(), lineages[i]);
    }
    EXPECT_TRUE(seen);
  }
  // The same again is not news; another lineage is, even one that names an earlier time (the
  // engine never orders lineages: the watcher hands them over in the order Vault had them).
  observe(gstins[0], 1, lineages[0]);
  settle();
  EXPECT_EQ(dest_->pushes.size(), lineages.size());
  reader_.set(gstins[0], 1, "Pass#2");
  observe(gstins[0], 1, "2025-12-31T23:59:59.9Z");
  settle();
  EXPECT_EQ(dest_->pushes.size(), lineages.size() + 1);
  // "…00.5Z" and "…00.500Z" name the same moment, but are different texts: different lineages.
  reader_.set(gstins[2], 1, "Pass#3");
  observe(gstins[2], 1, "2026-01-01T00:00:00.5Z");
  settle();
  EXPECT_EQ(dest_->pushes.size(), lineages.size() + 2);
}

TEST_F(EngineTest, EachPairKeepsItsOwnMountAndFieldsAcrossRemapping) {
  // Pairs share what they have in common; pairs that differ must not be mixed up, before or
  // after a remapping changes one of them.
  start({});
  auto pair = [](const Gstin& g, std::string mount, std::string user, std::string pass) {
    SourceRef s{mount + "/nic/" + g.str()};
    s.username_field = std::move(user);
    s.password_field = std::move(pass);
    return PairConfig{"fake", g, std::move(s)};
  };
  auto configs = [&] {
    std::map<std::string, PairConfig> out;
    for (const auto& v : engine_->snapshot()) out.emplace(v.config.gstin.str(), v.config);
    return out;
  };
  std::vector<PairConfig> first = {pair(kG1, "secret", "username", "password"), pair(kG2, "kv", "user", "pass"),
                                   pair(kG3, "secret", "username", "password")};
  ASSERT_TRUE(engine_->set_pairs(first));
  auto got = configs();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& c : first) EXPECT_EQ(got.at(c.gstin.str()), c) << c.gstin.str();

  std::vector<PairConfig> second = {pair(kG1, "secret", "api_user", "api_password"), pair(kG2, "kv", "user", "pass")};
  ASSERT_TRUE(engine_->set_pairs(second));
  got = configs();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& c : second) EXPECT_EQ(got.at(c.gstin.str()), c) << c.gstin.str();
}

TEST_F(EngineTest, RewritingTheSameValuesPushesNothingUnlessForced) {
  reader_.set(kG1, 1, "Same#1");
  reader_.set(kG1, 2, "Same#1");
  start();
  observe(kG1, 1);
  settle();
  observe(kG1, 2);
  settle();
  EXPECT_EQ(pushed_versions(), std::vector<std::int64_t>{1});
  EXPECT_EQ(record().applied->version.number, 2) << "the destination holds version 2's values";
  EXPECT_EQ(record().state, PairState::in_sync);
  EXPECT_EQ(outcomes(), (std::vector<Outcome>{Outcome::applied, Outcome::unchanged}));
  observe(kG1, 2, kLineage, SourceState::present, /*force=*/true);
  settle();
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 2}));
}

TEST_F(EngineTest, StaleObservationsAreIgnored) {
  reader_.set(kG1, 2, "v2#");
  reader_.set(kG1, 3, "v3#");
  start();
  observe(kG1, 3);
  settle();
  observe(kG1, 2);
  settle();
  EXPECT_EQ(pushed_versions(), std::vector<std::int64_t>{3});
}

TEST_F(EngineTest, NewerVersionsCoalesceBehindAnInFlightPush) {
  for (int v = 1; v <= 4; ++v) reader_.set(kG1, v, "v" + std::to_string(v) + "#");
  dest_->delay = 100ms;
  start();
  observe(kG1, 1);
  until([&] { return dest_->concurrent == 1; });
  observe(kG1, 2);
  observe(kG1, 3);
  observe(kG1, 4);
  settle();
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 4})) << "the in-flight push finishes, then the newest";
  EXPECT_EQ(record().applied->version.number, 4);
}

TEST_F(EngineTest, ANewerVersionReplacesABackingOffDelivery) {
  reader_.set(kG1, 1, "v1#");
  reader_.set(kG1, 2, "v2#");
  dest_->script = {transient()};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::retrying; });
  EXPECT_EQ(record().attempts, 1);
  observe(kG1, 2);  // no waiting for v1's backoff
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(record().applied->version.number, 2);
  advance(5min);
  settle();
  EXPECT_EQ(pushed_versions().size(), 2u) << "the superseded retry never runs";
}

TEST_F(EngineTest, TransientFailuresBackOffThenSucceed) {
  reader_.set(kG1, 1, "v1#");
  dest_->script = {transient(), transient()};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::retrying; });
  const auto& r1 = record();
  EXPECT_EQ(r1.attempts, 1);
  EXPECT_EQ(r1.last_error_class, "transient");
  EXPECT_EQ(r1.last_error_code, "dest_unavailable");
  EXPECT_LE(r1.next_attempt_at - clock_.system_now(), 1s) << "first backoff ceiling is the base";
  EXPECT_FALSE(engine_->idle());
  advance(1s);
  until([&] { return record().attempts == 2; });
  EXPECT_LE(record().next_attempt_at - clock_.system_now(), 2s);
  advance(2s);
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 1, 1}));
  EXPECT_EQ(dest_->pushes[2].attempt, 3);
  EXPECT_EQ(dest_->pushes[0].idempotency_key, dest_->pushes[2].idempotency_key) << "same key on every attempt";
  EXPECT_EQ(outcomes(), (std::vector<Outcome>{Outcome::failed, Outcome::failed, Outcome::applied}));
  EXPECT_TRUE(record().last_error_code.empty());
}

TEST_F(EngineTest, RetryAfterIsHonoured) {
  reader_.set(kG1, 1, "v1#");
  dest_->script = {transient(30s)};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::retrying; });
  EXPECT_GE(record().next_attempt_at - clock_.system_now(), 30s);
  advance(29s);
  drain();
  EXPECT_EQ(dest_->pushes.size(), 1u);
  advance(1s);
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(dest_->pushes.size(), 2u);
}

TEST_F(EngineTest, RejectedCredentialsAreNeverRetriedForThatVersion) {
  reader_.set(kG1, 1, "wrong#1");
  reader_.set(kG1, 2, "right#2");
  Error rejected(Errc::dest_credential_rejected, "NIC 1019: incorrect password");
  rejected.provider_code = "NIC:1019";
  dest_->script = {rejected};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::rejected; });
  EXPECT_EQ(record().last_error_provider, "NIC:1019");
  EXPECT_EQ(record().pending->version.number, 1);
  observe(kG1, 1);
  advance(24h);
  settle();
  EXPECT_EQ(dest_->pushes.size(), 1u) << "NIC blocks accounts that keep failing";
  observe(kG1, 2);
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 2}));
}

TEST_F(EngineTest, PermanentFailuresParkUntilAnOperatorRetries) {
  reader_.set(kG1, 1, "v1#");
  dest_->script = {Error(Errc::dest_gstin_not_linked, "NIC 1015: the API user is not linked to this GSTIN")};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::parked; });
  EXPECT_EQ(record().last_error_class, "permanent");
  advance(1h);
  settle();
  EXPECT_EQ(dest_->pushes.size(), 1u);
  EXPECT_FALSE(engine_->retry("fake", kG2)) << "unknown pair";
  ASSERT_TRUE(engine_->retry("fake", kG1));
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(dest_->pushes.size(), 2u);
  EXPECT_EQ(outcomes(), (std::vector<Outcome>{Outcome::parked, Outcome::operator_retry, Outcome::applied}));
  EXPECT_FALSE(engine_->retry("fake", kG1)) << "nothing to retry when in sync";
}

TEST_F(EngineTest, UnknownCodesAreRetriedThreeTimesThenParkedWithTheRawCode) {
  reader_.set(kG1, 1, "v1#");
  Error unknown(Errc::dest_unknown_code, "ClearTax answered code 777");
  unknown.provider_code = "CT:777";
  dest_->script = {unknown, unknown, unknown, unknown};
  start();
  observe(kG1, 1);
  for (int i = 0; i < 3; ++i) {
    until([&] { return record().attempts == i + 1; });
    advance(2min);
  }
  until([&] { return record().state == PairState::parked; });
  EXPECT_EQ(dest_->pushes.size(), 3u);
  EXPECT_EQ(record().last_error_provider, "CT:777");
  EXPECT_NE(record().last_error_message.find("777"), std::string::npos) << record().last_error_message;
}

TEST_F(EngineTest, DeliveriesFailingLongerThanMaxAgeAreParked) {
  options_.backoff.max_age = 10min;
  reader_.set(kG1, 1, "v1#");
  for (int i = 0; i < 100; ++i) dest_->script.push_back(transient());
  start();
  observe(kG1, 1);
  for (int i = 0; i < 100 && record().state != PairState::parked; ++i) {
    until([&] { return record().state == PairState::retrying || record().state == PairState::parked; });
    advance(1min);
    drain();
  }
  until([&] { return record().state == PairState::parked; });
  EXPECT_EQ(record().last_error_code, "sync_max_age");
  EXPECT_NE(record().last_error_message.find("provider answered 503"), std::string::npos);
}

TEST_F(EngineTest, DeletedOrDestroyedCurrentVersionPushesNothing) {
  reader_.set(kG1, 1, "v1#");
  reader_.set(kG1, 3, "v3#");
  start();
  observe(kG1, 1);
  settle();
  observe(kG1, 2, kLineage, SourceState::deleted);
  settle();
  EXPECT_EQ(record().state, PairState::source_deleted);
  EXPECT_EQ(record().applied->version.number, 1) << "the destination still holds version 1";
  observe(kG1, 2, kLineage, SourceState::destroyed);
  settle();
  EXPECT_EQ(outcomes(), (std::vector<Outcome>{Outcome::applied, Outcome::source_deleted}));
  // Vault reports a deleted version on read too.
  reader_.set_error(kG1, 3, Error(Errc::vault_version_destroyed, "version 3 of secret/nic/x is destroyed"));
  observe(kG1, 3);
  settle();
  EXPECT_EQ(record().state, PairState::source_deleted);
  EXPECT_EQ(dest_->pushes.size(), 1u);
  reader_.set(kG1, 4, "v4#");
  observe(kG1, 4);
  settle();
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(record().state, PairState::in_sync);
}

TEST_F(EngineTest, UndeletingTheCurrentVersionDeliversIt) {
  reader_.set(kG1, 1, "v1#");
  start();
  observe(kG1, 1, kLineage, SourceState::deleted);
  settle();
  EXPECT_EQ(record().state, PairState::source_deleted);
  observe(kG1, 1);  // undeleted
  settle();
  EXPECT_EQ(pushed_versions(), std::vector<std::int64_t>{1});
}

TEST_F(EngineTest, MalformedSecretsAreParkedWithTheReason) {
  reader_.set_error(kG1, 1, Error(Errc::vault_secret_malformed, "secret/nic/x version 1 has no \"password\" field"));
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::parked; });
  EXPECT_NE(record().last_error_message.find("password"), std::string::npos);
  EXPECT_TRUE(dest_->pushes.empty());
}

TEST_F(EngineTest, VaultTroubleIsRetried) {
  reader_.set_error(kG1, 1, Error(Errc::vault_sealed, "Vault is sealed"));
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::retrying; });
  EXPECT_EQ(record().last_error_code, "vault_sealed");
  reader_.clear_errors();  // unsealed
  reader_.set(kG1, 1, "v1#");
  advance(1s);
  until([&] { return record().state == PairState::in_sync; });
}

TEST_F(EngineTest, ARecreatedKeyIsANewLineage) {
  reader_.set(kG1, 5, "old#5");
  reader_.set(kG1, 1, "new#1");
  start();
  observe(kG1, 5, "2025-03-01T12:00:00Z");
  settle();
  observe(kG1, 4, "2025-03-01T12:00:00Z");  // an older version of the same lineage: stale
  settle();
  EXPECT_EQ(pushed_versions(), std::vector<std::int64_t>{5});
  observe(kG1, 1, "2025-03-09T08:00:00.25Z");  // deleted and recreated: version 1 is news
  settle();
  EXPECT_EQ(pushed_versions(), (std::vector<std::int64_t>{5, 1}));
  EXPECT_EQ(record().applied->version.lineage.text(), "2025-03-09T08:00:00.25Z");
  EXPECT_NE(dest_->pushes[0].idempotency_key, dest_->pushes[1].idempotency_key);
}

TEST_F(EngineTest, AnIntentLeftByACrashIsPushedAgainOnce) {
  ledger::PairRecord crashed;
  crashed.destination = "fake";
  crashed.gstin = kG1.str();
  crashed.state = PairState::pending;
  crashed.applied = ref(2, kLineage, "old");
  crashed.pending = ref(3, kLineage, "x");
  crashed.push_in_flight = true;
  store_.seed(crashed);
  reader_.set(kG1, 3, "v3#");
  start();
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(), std::vector<std::int64_t>{3});
  EXPECT_EQ(record().applied->version.number, 3);
  EXPECT_FALSE(record().push_in_flight);
}

TEST_F(EngineTest, ARetryDueAtRestartRunsWhenDue) {
  ledger::PairRecord waiting;
  waiting.destination = "fake";
  waiting.gstin = kG1.str();
  waiting.state = PairState::retrying;
  waiting.pending = ref(3, kLineage, "x");
  waiting.attempts = 2;
  waiting.first_attempt_at = clock_.system_now() - 1min;
  waiting.next_attempt_at = clock_.system_now() + 20s;
  store_.seed(waiting);
  reader_.set(kG1, 3, "v3#");
  start();
  drain();
  EXPECT_TRUE(dest_->pushes.empty());
  advance(20s);
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(dest_->pushes.size(), 1u);
  EXPECT_EQ(dest_->pushes[0].attempt, 3);
}

// Mapping-set members are only known once Vault has been listed, after load() and start(): their
// ledger rows must still be taken up (found by the crash test: an intent left by a SIGKILL was
// never pushed again, and an observation of the same version did not count as news).
TEST_F(EngineTest, PairsMappedAfterStartUpTakeUpTheWorkTheirLedgerRowsLeft) {
  ledger::PairRecord crashed;
  crashed.destination = "fake";
  crashed.gstin = kG1.str();
  crashed.state = PairState::pending;
  crashed.applied = ref(2, kLineage, "old");
  crashed.pending = ref(3, kLineage, "x");
  crashed.push_in_flight = true;
  store_.seed(crashed);
  ledger::PairRecord waiting = crashed;
  waiting.gstin = kG2.str();
  waiting.state = PairState::retrying;
  waiting.push_in_flight = false;
  waiting.attempts = 1;
  waiting.first_attempt_at = clock_.system_now() - 1min;
  waiting.next_attempt_at = clock_.system_now() + 20s;
  store_.seed(waiting);
  ledger::PairRecord parked = waiting;
  parked.gstin = kG3.str();
  parked.state = PairState::parked;
  parked.next_attempt_at = {};
  store_.seed(parked);
  for (const auto& g : {kG1, kG2, kG3}) reader_.set(g, 3, "v3#");
  start({});  // nothing mapped yet: the set has not been listed
  drain();
  EXPECT_TRUE(dest_->pushes.empty());
  std::vector<PairConfig> pairs;
  for (const auto& g : {kG1, kG2, kG3}) pairs.push_back({"fake", g, SourceRef{path_of(g)}});
  ASSERT_TRUE(engine_->set_pairs(pairs));
  // The watcher's first sweep reports the versions the ledger already has as pending.
  for (const auto& g : {kG1, kG2, kG3}) observe(g, 3);
  until([&] { return record(kG1).state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(kG1), std::vector<std::int64_t>{3});
  EXPECT_EQ(engine_->redeliveries_after_crash(), 1u);
  drain();
  EXPECT_TRUE(pushed_versions(kG2).empty()) << "the retry keeps its backoff";
  advance(20s);
  until([&] { return record(kG2).state == PairState::in_sync; });
  EXPECT_EQ(pushed_versions(kG2), std::vector<std::int64_t>{3});
  // A parked version waits for a newer one (or an operator).
  EXPECT_TRUE(pushed_versions(kG3).empty());
  EXPECT_EQ(record(kG3).state, PairState::parked);
}

TEST_F(EngineTest, ConcurrencyCapPerDestination) {
  std::vector<Gstin> many;
  const char* gs[] = {"07AAFCD5862R1ZX", "27AAPFU0939F1ZV", "29ABCDE1234F1ZW",
                      "07AAACR5055K1Z9", "33AAACI1195H1ZT", "24AAACC1206D1ZM"};
  for (const char* g : gs) {
    many.push_back(Gstin::parse(g).value());
    reader_.set(many.back(), 1, std::string("p#") + g);
  }
  dest_->delay = 20ms;
  LanePolicy policy;
  policy.concurrency = 2;
  start(many, policy);
  for (const auto& g : many) observe(g, 1);
  settle();
  EXPECT_EQ(dest_->pushes.size(), many.size());
  EXPECT_EQ(dest_->max_concurrent, 2);
}

// The concurrency cap counts pushes: Vault reads and ledger commits (which wait for fsync) of other
// deliveries go on meanwhile, so slow commits do not idle the provider's slots.
TEST_F(EngineTest, LedgerCommitsDoNotHoldPushSlots) {
  std::vector<Gstin> many;
  const char* gs[] = {"07AAFCD5862R1ZX", "27AAPFU0939F1ZV", "29ABCDE1234F1ZW",
                      "07AAACR5055K1Z9", "33AAACI1195H1ZT", "24AAACC1206D1ZM"};
  for (const char* g : gs) {
    many.push_back(Gstin::parse(g).value());
    reader_.set(many.back(), 1, std::string("p#") + g);
  }
  store_.set_write_delay(5ms);
  dest_->delay = 5ms;
  LanePolicy policy;
  policy.concurrency = 1;
  start(many, policy);
  for (const auto& g : many) observe(g, 1);
  settle();
  EXPECT_EQ(dest_->pushes.size(), many.size());
  EXPECT_EQ(dest_->max_concurrent, 1);
  EXPECT_GT(dest_->max_writes_during_push, 0) << "every push waited for the other deliveries' commits";
  for (const auto& g : many) EXPECT_EQ(record(g).state, PairState::in_sync) << g.str();
}

TEST_F(EngineTest, RateLimitSpacesPushes) {
  std::vector<Gstin> three{kG1, kG2, kG3};
  for (const auto& g : three) reader_.set(g, 1, "p#" + g.str());
  LanePolicy policy;
  policy.rate_per_second = 10;
  policy.burst = 1;
  start(three, policy);
  for (const auto& g : three) observe(g, 1);
  until([&] { return dest_->pushes.size() == 1; });
  drain();
  EXPECT_EQ(dest_->pushes.size(), 1u) << "burst of one";
  advance(100ms);
  until([&] { return dest_->pushes.size() == 2; });
  advance(100ms);
  until([&] { return dest_->pushes.size() == 3; });
}

TEST_F(EngineTest, CircuitBreakerOpensAfterConsecutiveFailuresAndProbes) {
  std::vector<Gstin> three{kG1, kG2, kG3};
  for (const auto& g : three) reader_.set(g, 1, "p#" + g.str());
  dest_->script = {transient(), transient()};
  LanePolicy policy;
  policy.concurrency = 1;
  policy.breaker_threshold = 2;
  policy.breaker_open_for = 30s;
  start(three, policy);
  for (const auto& g : three) observe(g, 1);
  until([&] { return dest_->pushes.size() == 2; });
  drain();
  EXPECT_EQ(dest_->pushes.size(), 2u) << "open: the third pair is not sent to a failing provider";
  EXPECT_EQ(engine_->lane_metrics().at("fake").breaker_state, "open");
  advance(30s);  // half-open: one probe, which succeeds and closes the breaker
  until([&] {
    return record(kG1).state == PairState::in_sync && record(kG2).state == PairState::in_sync &&
           record(kG3).state == PairState::in_sync;
  });
  EXPECT_EQ(engine_->lane_metrics().at("fake").breaker_state, "closed");
}

TEST_F(EngineTest, NoPushWhenTheIntentCannotBeRecorded) {
  reader_.set(kG1, 1, "v1#");
  store_.fail_next_writes(1);
  start();
  observe(kG1, 1);
  until([&] { return dest_->pushes.empty() && store_.writes() >= 2; });
  EXPECT_TRUE(dest_->pushes.empty());
  advance(2s);
  until([&] { return record().state == PairState::in_sync; });
  EXPECT_EQ(dest_->pushes.size(), 1u);
}

TEST_F(EngineTest, StopCancelsPushesThatOutliveTheGraceAndKeepsTheirIntent) {
  reader_.set(kG1, 1, "v1#");
  dest_->delay = 1h;
  start();
  observe(kG1, 1);
  until([&] { return dest_->concurrent == 1; });
  testing::run_for(io_, engine_->stop(100ms), 10s);
  EXPECT_EQ(dest_->concurrent, 0);
  const auto& r = record();
  EXPECT_TRUE(r.push_in_flight) << "the next start pushes it again";
  EXPECT_EQ(r.pending->version.number, 1);
}

TEST_F(EngineTest, StatusViewsAndCounters) {
  reader_.set(kG1, 1, "v1#");
  reader_.set(kG2, 1, "v1#");
  dest_->script = {Result<void>{}, Error(Errc::dest_credential_rejected, "NIC 1019")};
  start({kG1, kG2});
  observe(kG1, 1);
  settle();
  observe(kG2, 1);
  settle();
  auto counts = engine_->state_counts();
  EXPECT_EQ(counts[PairState::in_sync], 1u);
  EXPECT_EQ(counts[PairState::rejected], 1u);
  auto metrics = engine_->lane_metrics().at("fake");
  EXPECT_EQ(metrics.outcomes["applied"], 1u);
  EXPECT_EQ(metrics.outcomes["rejected"], 1u);
  EXPECT_EQ(metrics.latency.count(), 1u);
  ASSERT_TRUE(engine_->oldest_unsynced_age());
  auto snap = engine_->snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].config.gstin, kG1);
}

TEST_F(EngineTest, NoSecretInLogsLedgerOrErrors) {
  const std::string planted = "Pl4nted&<Secret>\"\\";
  std::ostringstream logs;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logs);
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  reader_.set(kG1, 1, planted);
  reader_.set(kG1, 2, planted + "2");
  dest_->script = {transient(), Error(Errc::dest_credential_rejected, "NIC 1019: incorrect password")};
  start();
  observe(kG1, 1);
  until([&] { return record().state == PairState::retrying; });
  advance(1s);
  until([&] { return record().state == PairState::rejected; });
  spdlog::set_default_logger(previous);
  std::string everything = logs.str();
  for (const auto& h : store_.all_history()) {
    everything += h.message + h.error_code + std::string(h.version.lineage.text());
  }
  const auto& r = record();
  everything += r.last_error_message;
  for (const auto& v : engine_->snapshot()) everything += v.record.last_error_message;
  EXPECT_EQ(everything.find(planted), std::string::npos);
  EXPECT_NE(logs.str().find("gstin=07AAFCD5862R1ZX destination=fake version=1"), std::string::npos) << logs.str();
}

}  // namespace
}  // namespace nicsync::sync
