#pragma once
// In-memory ledger::Store for engine tests: completes writes asynchronously (posted), records
// every write, and can be told to fail the next N writes.

#include <chrono>
#include <map>

#include <boost/asio/any_io_executor.hpp>

#include "nicsync/ledger/store.hpp"

namespace nicsync::testing {

class MemoryStore final : public ledger::Store {
 public:
  explicit MemoryStore(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  Result<std::vector<ledger::PairRecord>> load_pairs() override;
  boost::asio::awaitable<Result<std::vector<ledger::PairRecord>>> read_pairs() override { co_return load_pairs(); }
  boost::asio::awaitable<Result<void>> write(ledger::PairRecord record,
                                             std::optional<ledger::HistoryEntry> history) override;
  boost::asio::awaitable<Result<void>> remove(std::string destination, std::string gstin) override;
  boost::asio::awaitable<Result<std::vector<ledger::HistoryEntry>>> history(std::string gstin,
                                                                            std::size_t limit) override;
  boost::asio::awaitable<Result<std::size_t>> trim_history(ledger::SystemTime cutoff) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> read_sealed(std::string name) override;
  boost::asio::awaitable<Result<void>> write_sealed(std::string name, std::string sealed) override;
  boost::asio::awaitable<Result<void>> append_history(ledger::HistoryEntry entry) override;
  [[nodiscard]] bool writable() const noexcept override { return writable_; }

  /// Seeds a record as if a previous run had written it.
  void seed(ledger::PairRecord record);
  void fail_next_writes(int n, Errc code = Errc::ledger_full) {
    fail_writes_ = n;
    fail_code_ = code;
  }
  [[nodiscard]] const ledger::PairRecord* record(const std::string& destination, const std::string& gstin) const;
  [[nodiscard]] const std::vector<ledger::HistoryEntry>& all_history() const noexcept { return history_; }
  [[nodiscard]] std::size_t writes() const noexcept { return writes_; }
  /// Each write takes this long (real time) before it completes, like a commit waiting for fsync.
  void set_write_delay(std::chrono::milliseconds d) noexcept { write_delay_ = d; }
  /// Writes started and not completed yet.
  [[nodiscard]] int writes_in_progress() const noexcept { return in_progress_; }

 private:
  boost::asio::any_io_executor ex_;
  std::map<std::pair<std::string, std::string>, ledger::PairRecord> records_;
  std::vector<ledger::HistoryEntry> history_;
  std::map<std::string, std::string> sealed_;
  std::size_t writes_ = 0;
  int fail_writes_ = 0;
  Errc fail_code_ = Errc::ledger_full;
  bool writable_ = true;
  std::chrono::milliseconds write_delay_{0};
  int in_progress_ = 0;
};

}  // namespace nicsync::testing
