#pragma once
// The contract of ledger::Store, once for every backend: each test binary instantiates the
// suite (store_conformance.cpp) with a harness for its store, e.g.
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(sqlite_backend()), backend_name);
// The SQLite store runs it in the unit tests, the PostgreSQL store under the label "postgres".

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "nicsync/ledger/store.hpp"
#include "testing/deadline.hpp"

namespace nicsync::ledger::conformance {

/// Counters every store keeps (their `stats()`).
struct StoreCounters {
  std::uint64_t transactions = 0;
  std::uint64_t writes = 0;
  std::size_t largest_batch = 0;
  std::size_t queued = 0;
};

/// One backend's storage for one test: fresh and empty at first, the same on every `open`.
class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  /// Opens a store on this storage (fails the test and returns null when it cannot).
  virtual std::unique_ptr<Store> open() = 0;
  virtual StoreCounters counters(Store& store) = 0;
  /// What `nicsync-test-ledger-child write <concurrency>` needs after that to write to this
  /// storage (e.g. {"sqlite", "<state-dir>"}).
  virtual std::vector<std::string> child_args() = 0;
  /// Called before `open` after a child process wrote to the storage (e.g. to release a lock).
  virtual void after_child() {}
};

struct Backend {
  std::string name;
  std::function<std::unique_ptr<StoreHarness>()> make;
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }

  std::unique_ptr<Store> open() {
    auto s = harness_->open();
    EXPECT_TRUE(s);
    return s;
  }
  Result<void> write(Store& s, PairRecord r, std::optional<HistoryEntry> h = std::nullopt) {
    return testing::run_for(io_, s.write(std::move(r), std::move(h)));
  }
  /// Every record, read both ways (blocking at start-up, and as a standby reads them).
  std::vector<PairRecord> pairs(Store& s) {
    auto p = s.load_pairs();
    EXPECT_TRUE(p) << p.error().describe();
    auto q = testing::run_for(io_, s.read_pairs());
    EXPECT_TRUE(q) << q.error().describe();
    if (p && q) {
      EXPECT_EQ(p->size(), q->size()) << "load_pairs and read_pairs disagree";
    }
    return p ? std::move(*p) : std::vector<PairRecord>{};
  }
  std::vector<HistoryEntry> history(Store& s, std::string gstin, std::size_t limit) {
    auto h = testing::run_for(io_, s.history(std::move(gstin), limit));
    EXPECT_TRUE(h) << h.error().describe();
    return h ? std::move(*h) : std::vector<HistoryEntry>{};
  }

  std::unique_ptr<StoreHarness> harness_;
  boost::asio::io_context io_{1};
};

}  // namespace nicsync::ledger::conformance
