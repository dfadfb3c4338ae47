#include "testing/memory_store.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nicsync::testing {

namespace asio = boost::asio;

Result<std::vector<ledger::PairRecord>> MemoryStore::load_pairs() {
  std::vector<ledger::PairRecord> out;
  for (const auto& [k, r] : records_) out.push_back(r);
  return out;
}

asio::awaitable<Result<void>> MemoryStore::write(ledger::PairRecord record,
                                                 std::optional<ledger::HistoryEntry> history) {
  ++in_progress_;
  co_await asio::post(ex_, asio::use_awaitable);  // like the real store: completes later
  if (write_delay_.count() > 0) {
    asio::steady_timer t(ex_, write_delay_);
    co_await t.async_wait(asio::use_awaitable);
  }
  --in_progress_;
  ++writes_;
  if (fail_writes_ > 0) {
    --fail_writes_;
    writable_ = false;
    co_return Error(fail_code_, "injected ledger failure");
  }
  writable_ = true;
  records_[{record.destination, record.gstin}] = std::move(record);
  if (history) history_.push_back(std::move(*history));
  co_return Result<void>{};
}

asio::awaitable<Result<void>> MemoryStore::remove(std::string destination, std::string gstin) {
  records_.erase({destination, gstin});
  co_return Result<void>{};
}

asio::awaitable<Result<std::vector<ledger::HistoryEntry>>> MemoryStore::history(std::string gstin, std::size_t limit) {
  std::vector<ledger::HistoryEntry> out;
  for (auto it = history_.rbegin(); it != history_.rend() && out.size() < limit; ++it) {
    if (gstin.empty() || it->gstin == gstin) out.push_back(*it);
  }
  co_return out;
}

asio::awaitable<Result<std::size_t>> MemoryStore::trim_history(ledger::SystemTime cutoff) {
  const auto before = history_.size();
  std::erase_if(history_, [&](const ledger::HistoryEntry& h) { return h.at < cutoff; });
  co_return before - history_.size();
}

asio::awaitable<Result<std::optional<std::string>>> MemoryStore::read_sealed(std::string name) {
  co_await asio::post(ex_, asio::use_awaitable);
  auto it = sealed_.find(name);
  co_return it == sealed_.end() ? std::optional<std::string>() : std::optional<std::string>(it->second);
}

asio::awaitable<Result<void>> MemoryStore::write_sealed(std::string name, std::string sealed) {
  co_await asio::post(ex_, asio::use_awaitable);
  if (fail_writes_ > 0) {
    --fail_writes_;
    writable_ = false;
    co_return Error(fail_code_, "injected ledger failure");
  }
  sealed_[std::move(name)] = std::move(sealed);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> MemoryStore::append_history(ledger::HistoryEntry entry) {
  co_await asio::post(ex_, asio::use_awaitable);
  history_.push_back(std::move(entry));
  co_return Result<void>{};
}

void MemoryStore::seed(ledger::PairRecord record) { records_[{record.destination, record.gstin}] = std::move(record); }

const ledger::PairRecord* MemoryStore::record(const std::string& destination, const std::string& gstin) const {
  auto it = records_.find({destination, gstin});
  return it == records_.end() ? nullptr : &it->second;
}

}  // namespace nicsync::testing
