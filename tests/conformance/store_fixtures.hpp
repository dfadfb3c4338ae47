#pragma once
// Records, history entries and concurrent writes for ledger store tests (the conformance suite
// and each backend's own tests).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger::fixtures {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// 2026-01-01T00:00:00.123456789Z: nanoseconds must survive.
inline const SystemTime kT0 =
    SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(1'767'225'600'123'456'789LL)));

inline PairRecord full_record() {
  PairRecord r;
  r.destination = "cleartax-prod";
  r.gstin = "07AAFCD5862R1ZX";
  r.vault_path = "secret/nic/07AAFCD5862R1ZX";
  r.state = PairState::retrying;
  r.applied =
      VersionRef{VersionId{41, Lineage("2025-12-30T10:11:12.000000001Z")}, Fingerprint::from_hex(std::string(64, 'a'))};
  r.applied_at = kT0 - 1h;
  r.pending = VersionRef{VersionId{42, Lineage("2026-01-01T00:00:00.5Z")}, Fingerprint::from_hex(std::string(64, 'b'))};
  r.push_in_flight = true;
  r.attempts = 7;
  r.first_attempt_at = kT0 - 5min;
  r.next_attempt_at = kT0 + 30s + 1ns;
  r.last_error_class = "transient";
  r.last_error_code = "dest_unavailable";
  r.last_error_provider = "CT:301";
  r.last_error_message = "ClearTax is \"temporarily\" unable — réessayez; retry in 30 s";
  r.updated_at = kT0;
  return r;
}

inline HistoryEntry entry(std::string gstin, SystemTime at, std::int64_t version, Outcome outcome = Outcome::applied) {
  HistoryEntry h;
  h.at = at;
  h.destination = "cleartax-prod";
  h.gstin = std::move(gstin);
  h.version = VersionId{version, Lineage("2026-01-01T00:00:00Z")};
  h.outcome = outcome;
  h.attempt = 2;
  h.error_class = "auth";
  h.error_code = "dest_unauthorized";
  h.error_provider = "CT:105";
  h.message = "access token rejected; refreshed it";
  h.duration = 1234ms;
  return h;
}

inline void expect_same(const PairRecord& a, const PairRecord& b) {
  EXPECT_EQ(a.destination, b.destination);
  EXPECT_EQ(a.gstin, b.gstin);
  EXPECT_EQ(a.vault_path, b.vault_path);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.applied, b.applied);
  EXPECT_EQ(a.applied_at, b.applied_at);
  EXPECT_EQ(a.pending, b.pending);
  EXPECT_EQ(a.push_in_flight, b.push_in_flight);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.first_attempt_at, b.first_attempt_at);
  EXPECT_EQ(a.next_attempt_at, b.next_attempt_at);
  EXPECT_EQ(a.last_error_class, b.last_error_class);
  EXPECT_EQ(a.last_error_code, b.last_error_code);
  EXPECT_EQ(a.last_error_provider, b.last_error_provider);
  EXPECT_EQ(a.last_error_message, b.last_error_message);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

inline void expect_same(const HistoryEntry& a, const HistoryEntry& b) {
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.destination, b.destination);
  EXPECT_EQ(a.gstin, b.gstin);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.error_class, b.error_class);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_provider, b.error_provider);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.duration, b.duration);
}

/// Outcomes of writes started together; `wait_all` resumes when the last one completes.
struct Outcomes : std::enable_shared_from_this<Outcomes> {
  explicit Outcomes(std::size_t n) : results(n), left(n) {}
  std::vector<Result<void>> results;
  std::size_t left = 0;
  std::optional<asio::steady_timer> done;

  auto handler(std::size_t i) {
    return [self = shared_from_this(), i](std::exception_ptr, Result<void> r) {
      self->results[i] = std::move(r);
      if (--self->left == 0 && self->done) self->done->cancel();
    };
  }
};

inline asio::awaitable<void> wait_all(std::shared_ptr<Outcomes> outcomes) {
  if (outcomes->left == 0) co_return;
  outcomes->done.emplace(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
  co_await outcomes->done->async_wait(asio::as_tuple(asio::use_awaitable));
}

/// Starts every write at once and waits for all of them (group commit in action). With a
/// `message`, each write appends a history entry holding it.
inline asio::awaitable<std::vector<Result<void>>> write_all(Store* store, std::vector<PairRecord> records,
                                                            std::string message) {
  auto ex = co_await asio::this_coro::executor;
  auto outcomes = std::make_shared<Outcomes>(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::optional<HistoryEntry> h;
    if (!message.empty()) {
      h = entry(records[i].gstin, kT0, 1);
      h->message = message;
    }
    asio::co_spawn(ex, store->write(std::move(records[i]), std::move(h)), outcomes->handler(i));
  }
  co_await wait_all(outcomes);
  co_return std::move(outcomes->results);
}

inline std::vector<PairRecord> numbered_records(int from, int count) {
  std::vector<PairRecord> out;
  for (int i = from; i < from + count; ++i) {
    PairRecord r = full_record();
    r.gstin = fmt::format("GSTIN{:05}", i);
    r.applied->version.number = i;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace nicsync::ledger::fixtures
