// The contract every ledger::Store keeps, run on each backend (see store_conformance.hpp):
// every operation, round trips across reopen, group commit and batches bigger than one
// transaction, the order of writes to one pair, text with any character, sealed blobs, close,
// and a crash between a delivery's intent and its outcome.
#include "conformance/store_conformance.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include <boost/asio/io_context.hpp>

#include "conformance/store_fixtures.hpp"
#include "nicsync/ledger/copy.hpp"
#include "testing/deadline.hpp"
#include "testing/memory_store.hpp"
#include "testing/process.hpp"

namespace nicsync::ledger::conformance {
namespace {

using namespace fixtures;
using testing::run_for;

TEST_P(StoreConformance, RoundTripsEveryFieldAcrossReopen) {
  const PairRecord full = full_record();
  PairRecord bare;
  bare.destination = "webhook-erp";
  bare.gstin = "29AAGCB7383J1Z4";
  bare.vault_path = "kv1/nic/29AAGCB7383J1Z4";
  bare.state = PairState::pending;
  const PairState states[] = {PairState::in_sync, PairState::pending,  PairState::retrying,
                              PairState::parked,  PairState::rejected, PairState::source_deleted};
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(write(*store, full, entry(full.gstin, kT0, 42)));
    ASSERT_TRUE(write(*store, bare));
    for (std::size_t i = 0; i < std::size(states); ++i) {
      PairRecord r = bare;
      r.destination = fmt::format("d{}", i);
      r.state = states[i];
      ASSERT_TRUE(write(*store, r));
    }
    // Every outcome name round trips too.
    for (auto o : {Outcome::applied, Outcome::unchanged, Outcome::failed, Outcome::parked, Outcome::rejected,
                   Outcome::source_deleted, Outcome::superseded, Outcome::operator_retry}) {
      ASSERT_TRUE(write(*store, bare, entry("OUTCOMES", kT0, static_cast<int>(o), o)));
    }
    EXPECT_TRUE(store->writable());
    store->close();
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto all = pairs(*store);
  ASSERT_EQ(all.size(), 2 + std::size(states));
  // Sorted by destination, gstin (byte order).
  expect_same(all[0], full);
  for (std::size_t i = 0; i < std::size(states); ++i) {
    EXPECT_EQ(all[1 + i].destination, fmt::format("d{}", i));
    EXPECT_EQ(all[1 + i].state, states[i]);
  }
  expect_same(all.back(), bare);
  EXPECT_FALSE(all.back().applied);
  EXPECT_FALSE(all.back().pending);

  auto h = history(*store, full.gstin, 10);
  ASSERT_EQ(h.size(), 1u);
  expect_same(h.front(), entry(full.gstin, kT0, 42));
  auto outcomes = history(*store, "OUTCOMES", 100);
  ASSERT_EQ(outcomes.size(), 8u);
  for (const auto& e : outcomes) EXPECT_EQ(static_cast<int>(e.outcome), e.version.number);
}

TEST_P(StoreConformance, WriteUpsertsOnePairAndAppendsHistory) {
  auto store = open();
  ASSERT_TRUE(store);
  PairRecord r = full_record();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0, 42, Outcome::failed)));
  r.state = PairState::in_sync;
  r.applied = r.pending;
  r.pending.reset();
  r.push_in_flight = false;
  r.attempts = 0;
  r.last_error_class.clear();
  r.last_error_code.clear();
  r.last_error_provider.clear();
  r.last_error_message.clear();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0 + 1s, 42, Outcome::applied)));
  auto all = pairs(*store);
  ASSERT_EQ(all.size(), 1u);
  expect_same(all.front(), r);
  auto h = history(*store, r.gstin, 10);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].outcome, Outcome::applied);  // newest first
  EXPECT_EQ(h[1].outcome, Outcome::failed);
}

TEST_P(StoreConformance, ReadPairsWithoutBlockingGivesWhatStartUpReads) {
  auto store = open();
  ASSERT_TRUE(store);
  PairRecord a = full_record();
  PairRecord b = full_record();
  b.gstin = "29AAGCB1286Q1Z4";
  b.push_in_flight = false;
  ASSERT_TRUE(write(*store, a));
  ASSERT_TRUE(write(*store, b));
  auto loaded = store->load_pairs();
  ASSERT_TRUE(loaded);
  auto read = testing::run_for(io_, store->read_pairs());
  ASSERT_TRUE(read) << read.error().describe();
  ASSERT_EQ(read->size(), 2u);
  ASSERT_EQ(loaded->size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) expect_same((*read)[i], (*loaded)[i]);
}

TEST_P(StoreConformance, WritesToOnePairTakeEffectInTheOrderTheyWereMade) {
  auto store = open();
  ASSERT_TRUE(store);
  // Queued together, so that they share transactions: the last one made is the one that stays.
  std::vector<PairRecord> records;
  for (int i = 0; i < 300; ++i) {
    PairRecord r = full_record();
    r.attempts = i;
    records.push_back(std::move(r));
  }
  auto results = run_for(io_, write_all(store.get(), std::move(records), "attempt"));
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  auto all = pairs(*store);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.front().attempts, 299);
  EXPECT_EQ(history(*store, full_record().gstin, 1000).size(), 300u);

  // A remove between writes of the same pair, all in one go.
  auto outcomes = std::make_shared<Outcomes>(3);
  PairRecord first = full_record();
  first.attempts = 1000;
  PairRecord last = full_record();
  last.attempts = 1001;
  asio::co_spawn(io_, store->write(first, std::nullopt), outcomes->handler(0));
  asio::co_spawn(io_, store->remove(first.destination, first.gstin), outcomes->handler(1));
  asio::co_spawn(io_, store->write(last, std::nullopt), outcomes->handler(2));
  run_for(io_, wait_all(outcomes));
  for (const auto& r : outcomes->results) ASSERT_TRUE(r) << r.error().describe();
  all = pairs(*store);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.front().attempts, 1001);
}

TEST_P(StoreConformance, RemoveDropsThePairButKeepsItsHistory) {
  auto store = open();
  ASSERT_TRUE(store);
  PairRecord r = full_record();
  ASSERT_TRUE(write(*store, r, entry(r.gstin, kT0, 42)));
  ASSERT_TRUE(run_for(io_, store->remove(r.destination, r.gstin)));
  ASSERT_TRUE(run_for(io_, store->remove("no-such", "pair")));  // removing nothing is fine
  EXPECT_TRUE(pairs(*store).empty());
  EXPECT_EQ(history(*store, r.gstin, 10).size(), 1u);
}

TEST_P(StoreConformance, HistoryIsNewestFirstPerGstinAndLimited) {
  auto store = open();
  ASSERT_TRUE(store);
  for (int i = 0; i < 10; ++i) {
    const std::string gstin = i % 2 == 0 ? "EVEN" : "ODD";
    ASSERT_TRUE(write(*store, full_record(), entry(gstin, kT0 + std::chrono::seconds(i), i)));
  }
  auto even = history(*store, "EVEN", 3);
  ASSERT_EQ(even.size(), 3u);
  EXPECT_EQ(even[0].version.number, 8);
  EXPECT_EQ(even[1].version.number, 6);
  EXPECT_EQ(even[2].version.number, 4);
  auto all = history(*store, "", 100);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](auto& a, auto& b) { return a.at > b.at; }));
  EXPECT_TRUE(history(*store, "NOBODY", 5).empty());
  // Entries at the same instant: the one written last comes first.
  ASSERT_TRUE(write(*store, full_record(), entry("SAME", kT0, 1)));
  ASSERT_TRUE(write(*store, full_record(), entry("SAME", kT0, 2)));
  auto same = history(*store, "SAME", 10);
  ASSERT_EQ(same.size(), 2u);
  EXPECT_EQ(same[0].version.number, 2);
}

TEST_P(StoreConformance, TrimHistoryDropsOldEntriesInChunks) {
  auto store = open();
  ASSERT_TRUE(store);
  // More old entries than one trim chunk (5000), so that trimming takes several transactions.
  constexpr int kOld = 6000;
  constexpr int kNew = 50;
  std::vector<PairRecord> records = numbered_records(0, kOld + kNew);
  auto outcomes = std::make_shared<Outcomes>(records.size());
  for (int i = 0; i < kOld + kNew; ++i) {
    auto h = entry(records[i].gstin, i < kOld ? kT0 - 24h + std::chrono::seconds(i) : kT0 + std::chrono::seconds(i), i);
    asio::co_spawn(io_, store->write(std::move(records[i]), std::move(h)), outcomes->handler(i));
  }
  run_for(io_, wait_all(outcomes), 60s);
  for (const auto& r : outcomes->results) ASSERT_TRUE(r) << r.error().describe();
  const auto transactions_before = harness_->counters(*store).transactions;
  auto removed = run_for(io_, store->trim_history(kT0 - 1h));
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_EQ(*removed, static_cast<std::size_t>(kOld));
  EXPECT_GE(harness_->counters(*store).transactions - transactions_before, 2u);
  auto rest = history(*store, "", 100000);
  EXPECT_EQ(rest.size(), static_cast<std::size_t>(kNew));
  for (const auto& h : rest) EXPECT_GE(h.at, kT0);
  auto again = run_for(io_, store->trim_history(kT0 - 1h));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST_P(StoreConformance, ConcurrentWritesShareTransactions) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kWrites = 500;
  const auto before = harness_->counters(*store);
  auto results = run_for(io_, write_all(store.get(), numbered_records(0, kWrites), "ok"));
  for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
  const auto after = harness_->counters(*store);
  EXPECT_EQ(after.writes - before.writes, static_cast<std::uint64_t>(kWrites));
  // Many writes waiting together must share commits.
  EXPECT_LT(after.transactions - before.transactions, static_cast<std::uint64_t>(kWrites) / 4)
      << "transactions: " << after.transactions - before.transactions;
  EXPECT_GT(after.largest_batch, 4u);
  EXPECT_EQ(after.queued, 0u);
  EXPECT_EQ(pairs(*store).size(), static_cast<std::size_t>(kWrites));
}

TEST_P(StoreConformance, BatchesBiggerThanOneTransactionAllCommit) {
  constexpr int kWrites = 10'000;  // more than the largest batch (4096) at once
  {
    auto store = open();
    ASSERT_TRUE(store);
    auto results = run_for(io_, write_all(store.get(), numbered_records(0, kWrites), std::string(200, 'm')), 120s);
    for (const auto& r : results) ASSERT_TRUE(r) << r.error().describe();
    EXPECT_GE(harness_->counters(*store).transactions, 3u);
    EXPECT_LE(harness_->counters(*store).largest_batch, 4096u);
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto all = pairs(*store);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(all[i].applied->version.number, i);
  EXPECT_EQ(history(*store, "", 20'000).size(), static_cast<std::size_t>(kWrites));
}

// Every character a GSTIN key, a Vault path or an error message can hold: all C0 controls
// (NUL too), DEL, C1 controls, the BOM, U+FFFD, the noncharacter U+FFFF, characters of every
// plane, combining and right-to-left text, quotes and backslashes, and bytes that are not UTF-8.
std::vector<std::string> hostile_texts() {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  controls += '\x7f';
  std::string c1;
  for (int c = 0x80; c < 0xa0; ++c) {
    c1 += static_cast<char>(0xc2);
    c1 += static_cast<char>(c);
  }
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes += static_cast<char>(c);
  return {
      "",
      std::string("\0", 1),
      std::string("07AAFCD5862R1ZX\0hidden", 22),
      controls,
      c1,
      "\xEF\xBB\xBF"
      "bom first",
      "replacement \xEF\xBF\xBD char",
      "\xEF\xBF\xBF"
      "starts with U+FFFF",
      "\xEF\xBF\xBF"
      "6869",  // looks like an encoded value
      "ends with U+FFFF \xEF\xBF\xBF",
      "emoji \xF0\x9F\x94\x91 and \xF4\x8F\xBF\xBF (U+10FFFF)",
      "e\xCC\x81 combining, \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D rtl, "
      "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
      "quotes ' \" ` and back\\slash \\x00 $1 %s {}",
      "not utf-8: \xff\xfe \x80 \xC0\xAF \xED\xA0\x80",
      "lone lead \xE2\x82",
      all_bytes,
  };
}

TEST_P(StoreConformance, TextWithAnyCharacterRoundTrips) {
  const auto texts = hostile_texts();
  {
    auto store = open();
    ASSERT_TRUE(store);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      PairRecord r = full_record();
      r.destination = fmt::format("d{:02}", i);
      r.gstin = texts[i];
      r.vault_path = "secret/nic/" + texts[i];
      r.applied->version.lineage = Lineage(texts[i]);
      r.last_error_class = texts[i];
      r.last_error_code = texts[i];
      r.last_error_provider = texts[i];
      r.last_error_message = texts[i];
      HistoryEntry h = entry(texts[i], kT0 + std::chrono::seconds(i), static_cast<std::int64_t>(i));
      h.destination = texts[i];
      h.version.lineage = Lineage(texts[i]);
      h.error_class = texts[i];
      h.error_code = texts[i];
      h.error_provider = texts[i];
      h.message = texts[i];
      ASSERT_TRUE(write(*store, r, h)) << "text " << i;
    }
    store->close();
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto all = pairs(*store);
  ASSERT_EQ(all.size(), texts.size());
  for (const auto& p : all) {
    const auto i = static_cast<std::size_t>(std::stoi(p.destination.substr(1)));
    EXPECT_EQ(p.gstin, texts[i]) << "text " << i;
    EXPECT_EQ(p.vault_path, "secret/nic/" + texts[i]) << "text " << i;
    EXPECT_EQ(p.applied->version.lineage.text(), texts[i]) << "text " << i;
    EXPECT_EQ(p.last_error_class, texts[i]) << "text " << i;
    EXPECT_EQ(p.last_error_code, texts[i]) << "text " << i;
    EXPECT_EQ(p.last_error_provider, texts[i]) << "text " << i;
    EXPECT_EQ(p.last_error_message, texts[i]) << "text " << i;
  }
  for (std::size_t i = 0; i < texts.size(); ++i) {
    // Looked up by that text as the GSTIN: exactly its own entry.
    auto h = history(*store, texts[i], 10);
    if (texts[i].empty()) continue;  // "" asks for every GSTIN
    ASSERT_EQ(h.size(), 1u) << "text " << i;
    EXPECT_EQ(h[0].version.number, static_cast<std::int64_t>(i));
    EXPECT_EQ(h[0].gstin, texts[i]);
    EXPECT_EQ(h[0].destination, texts[i]);
    EXPECT_EQ(h[0].version.lineage.text(), texts[i]);
    EXPECT_EQ(h[0].error_class, texts[i]);
    EXPECT_EQ(h[0].error_code, texts[i]);
    EXPECT_EQ(h[0].error_provider, texts[i]);
    EXPECT_EQ(h[0].message, texts[i]);
  }
  // Removing by such a key finds it.
  ASSERT_TRUE(run_for(io_, store->remove("d01", texts[1])));
  EXPECT_EQ(pairs(*store).size(), texts.size() - 1);

  // Long messages (a provider's page quoted whole) are kept whole.
  const std::string long_text = std::string(100'000, 'x') + "\xF0\x9F\x94\x91";
  PairRecord r = full_record();
  r.last_error_message = long_text;
  HistoryEntry h = entry("LONG", kT0, 1);
  h.message = long_text;
  ASSERT_TRUE(write(*store, r, h));
  auto back = history(*store, "LONG", 1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].message, long_text);
  for (const auto& p : pairs(*store)) {
    if (p.gstin == r.gstin && p.destination == r.destination) {
      EXPECT_EQ(p.last_error_message, long_text);
    }
  }
}

TEST_P(StoreConformance, SealedBlobsRoundTripAndReplace) {
  std::string all_bytes;
  for (int i = 0; i < 3; ++i) {
    for (int c = 0; c < 256; ++c) all_bytes += static_cast<char>(c);
  }
  {
    auto store = open();
    ASSERT_TRUE(store);
    auto none = run_for(io_, store->read_sealed("cleartax-token"));
    ASSERT_TRUE(none) << none.error().describe();
    EXPECT_FALSE(*none);
    ASSERT_TRUE(run_for(io_, store->write_sealed("cleartax-token", "first")));
    ASSERT_TRUE(run_for(io_, store->write_sealed("cleartax-token", all_bytes)));  // replaces
    ASSERT_TRUE(run_for(io_, store->write_sealed("empty", "")));
    for (const auto& t : hostile_texts()) ASSERT_TRUE(run_for(io_, store->write_sealed("name " + t, t)));
    store->close();
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto token = run_for(io_, store->read_sealed("cleartax-token"));
  ASSERT_TRUE(token) << token.error().describe();
  ASSERT_TRUE(*token);
  EXPECT_EQ(**token, all_bytes);
  auto empty = run_for(io_, store->read_sealed("empty"));
  ASSERT_TRUE(empty && *empty);
  EXPECT_EQ(**empty, "");
  for (const auto& t : hostile_texts()) {
    auto v = run_for(io_, store->read_sealed("name " + t));
    ASSERT_TRUE(v && *v);
    EXPECT_EQ(**v, t);
  }
  // Sealed values are not pairs.
  EXPECT_TRUE(pairs(*store).empty());
}

TEST_P(StoreConformance, CloseCommitsEverythingQueuedAndRefusesLaterWork) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kWrites = 2000;
  auto outcomes = std::make_shared<Outcomes>(kWrites);
  auto records = numbered_records(0, kWrites);
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io_, store->write(std::move(records[i]), entry(fmt::format("G{}", i), kT0, i)),
                   outcomes->handler(i));
  }
  io_.poll();      // every coroutine queues its write
  store->close();  // returns once everything queued before it is committed
  EXPECT_EQ(harness_->counters(*store).writes, static_cast<std::uint64_t>(kWrites));
  EXPECT_EQ(harness_->counters(*store).queued, 0u);
  run_for(io_, wait_all(outcomes));
  for (const auto& r : outcomes->results) EXPECT_TRUE(r) << r.error().describe();

  auto late = write(*store, full_record());
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().is(Errc::cancelled));
  EXPECT_FALSE(store->load_pairs());
  auto sealed = run_for(io_, store->write_sealed("x", "y"));
  EXPECT_FALSE(sealed);
  store->close();  // again: nothing happens
  store.reset();

  auto reopened = open();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(pairs(*reopened).size(), static_cast<std::size_t>(kWrites));
}

std::set<std::int64_t> numbers_after(const std::string& output, const std::string& word) {
  std::set<std::int64_t> out;
  std::size_t pos = 0;
  const std::string needle = word + " ";
  while ((pos = output.find(needle, pos)) != std::string::npos) {
    const auto end = output.find('\n', pos);
    if (end == std::string::npos) break;  // a line cut short by the kill
    std::int64_t n = 0;
    std::from_chars(output.data() + pos + needle.size(), output.data() + end, n);
    out.insert(n);
    pos = end;
  }
  return out;
}

TEST_P(StoreConformance, ACrashKeepsEveryCompletedWriteAndTheIntentsOfPushesInFlight) {
  std::vector<std::string> argv = {testing::built_program("tests/nicsync-test-ledger-child"), "write", "16"};
  for (auto& a : harness_->child_args()) argv.push_back(std::move(a));
  testing::Process child({.argv = argv});
  // Kill it while it keeps writing: some transactions are in flight at that moment.
  ASSERT_TRUE(child.wait_for_output("durable 300\n", 60s)) << child.output();
  child.kill();
  const std::string output = child.output();
  const auto intents = numbers_after(output, "intent");
  const auto durable = numbers_after(output, "durable");
  ASSERT_GE(durable.size(), 300u);
  harness_->after_child();

  auto store = open();
  ASSERT_TRUE(store);
  std::map<std::int64_t, PairRecord> present;
  for (auto& p : pairs(*store)) {
    const auto n = std::stoll(p.gstin.substr(5));
    present.emplace(n, std::move(p));
  }
  std::size_t applied = 0;
  for (const auto& [n, p] : present) {
    if (p.push_in_flight) {
      // Intent recorded, outcome not: the engine pushes this one again (the one repeat).
      ASSERT_TRUE(p.pending) << n;
      EXPECT_EQ(p.pending->version.number, n);
      EXPECT_FALSE(durable.count(n)) << "write " << n << " completed but its outcome is not in the ledger";
    } else {
      ASSERT_TRUE(p.applied) << n;
      EXPECT_EQ(p.applied->version.number, n);
      EXPECT_EQ(p.state, PairState::in_sync);
      ++applied;
    }
  }
  for (const auto n : intents) EXPECT_TRUE(present.count(n)) << "intent " << n << " completed but is not in the ledger";
  for (const auto n : durable) EXPECT_FALSE(present.at(n).push_in_flight) << n;
  // Each outcome was one record and one history entry, atomically.
  EXPECT_EQ(history(*store, "", 1'000'000).size(), applied);
}

TEST_P(StoreConformance, AppendHistoryAddsALineAndTouchesNoPair) {
  auto store = open();
  ASSERT_TRUE(store);
  const HistoryEntry h = entry("07AAFCD5862R1ZX", kT0, 5, Outcome::parked);
  ASSERT_TRUE(run_for(io_, store->append_history(h)));
  EXPECT_TRUE(pairs(*store).empty());
  auto lines = history(*store, "07AAFCD5862R1ZX", 10);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines.front(), h);
}

TEST_P(StoreConformance, ALedgerCopiedInIsTheSameAndCopyingAgainWritesNothing) {
  // The ledger being moved: pairs, history of pairs that are gone too, any text.
  testing::MemoryStore source(io_.get_executor());
  std::vector<PairRecord> records;
  for (int i = 0; i < 300; ++i) {
    PairRecord r = full_record();
    r.gstin = fmt::format("G{:04}", i);
    r.state = i % 3 == 0 ? PairState::in_sync : PairState::retrying;
    if (i % 7 == 0) r.pending.reset();
    records.push_back(r);
    source.seed(r);
  }
  for (int i = 0; i < 500; ++i) {
    HistoryEntry h = entry(fmt::format("G{:04}", i % 350), kT0 + std::chrono::milliseconds(i), i);
    h.message = fmt::format("line {} — ünïcode \"quoted\" \x01", i);
    ASSERT_TRUE(run_for(io_, source.append_history(h)));
  }
  auto store = open();
  ASSERT_TRUE(store);
  auto copied = run_for(io_, copy_ledger(source, *store, false));
  ASSERT_TRUE(copied) << copied.error().describe();
  EXPECT_FALSE(copied->already_copied);
  EXPECT_EQ(copied->pairs, 300u);
  EXPECT_EQ(copied->history, 500u);
  auto got = pairs(*store);
  std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.gstin < b.gstin; });
  ASSERT_EQ(got.size(), records.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], records[i]) << records[i].gstin;
  auto want = run_for(io_, source.history("", 1'000'000));
  ASSERT_TRUE(want);
  EXPECT_EQ(history(*store, "", 1'000'000), *want);

  // Again: nothing to do.
  auto again = run_for(io_, copy_ledger(source, *store, false));
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_TRUE(again->already_copied);
  EXPECT_EQ(history(*store, "", 1'000'000).size(), 500u);

  // A target that holds something else is refused, unless forced; forcing adds no line twice.
  PairRecord other = full_record();
  other.gstin = "OTHER";
  ASSERT_TRUE(write(*store, other));
  auto refused = run_for(io_, copy_ledger(source, *store, false));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("--force"), std::string::npos) << refused.error().message;
  auto forced = run_for(io_, copy_ledger(source, *store, true));
  ASSERT_TRUE(forced) << forced.error().describe();
  EXPECT_EQ(forced->history, 0u);
  EXPECT_EQ(pairs(*store).size(), 301u);
  EXPECT_EQ(history(*store, "", 1'000'000).size(), 500u);
}

}  // namespace
}  // namespace nicsync::ledger::conformance
