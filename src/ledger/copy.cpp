#include "nicsync/ledger/copy.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace nicsync::ledger {
namespace asio = boost::asio;

namespace {

using PairKey = std::pair<std::string, std::string>;  // destination, GSTIN

std::map<PairKey, PairRecord> by_pair(std::vector<PairRecord> records) {
  std::map<PairKey, PairRecord> out;
  for (auto& r : records) {
    PairKey key{r.destination, r.gstin};
    out.emplace(std::move(key), std::move(r));
  }
  return out;
}

// Runs `op(i)` for i in [0, n), up to `window` at once (the store commits what is queued
// together: one at a time would be one fsync each), and gives the first error.
template <class Op>
asio::awaitable<Result<void>> run_windowed(std::size_t n, std::size_t window, Op op) {
  auto ex = co_await asio::this_coro::executor;
  struct State {
    explicit State(const asio::any_io_executor& e) : wake(e, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;
    std::size_t running = 0;
    std::optional<Error> error;
  };
  auto state = std::make_shared<State>(ex);
  for (std::size_t i = 0; i < n && !state->error; ++i) {
    while (state->running >= window) co_await state->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    ++state->running;
    asio::co_spawn(ex, op(i), [state](std::exception_ptr e, Result<void> r) {
      if (e && !state->error) state->error = Error(Errc::internal, "a ledger write failed unexpectedly");
      if (!e && !r && !state->error) state->error = r.error();
      --state->running;
      state->wake.cancel();
    });
  }
  while (state->running > 0) co_await state->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  if (state->error) co_return *state->error;
  co_return Result<void>{};
}

// What tells two history lines apart (the store keeps no id of its own).
auto history_key(const HistoryEntry& h) {
  return std::make_tuple(h.at, h.destination, h.gstin, h.version.number, std::string(h.version.lineage.text()),
                         h.outcome, h.attempt);
}

}  // namespace

asio::awaitable<Result<CopyReport>> copy_ledger(Store& from, Store& to, bool force) {
  constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
  auto source_pairs = from.load_pairs();
  if (!source_pairs) co_return source_pairs.error();
  auto target_pairs = to.load_pairs();
  if (!target_pairs) co_return target_pairs.error();
  auto source_history = co_await from.history("", kAll);
  if (!source_history) co_return source_history.error();
  auto target_history = co_await to.history("", kAll);
  if (!target_history) co_return target_history.error();

  CopyReport report;
  report.target_pairs = target_pairs->size();
  report.target_history = target_history->size();
  const auto source = by_pair(std::move(*source_pairs));
  const auto target = by_pair(std::move(*target_pairs));
  std::set<decltype(history_key(std::declval<const HistoryEntry&>()))> present;
  for (const auto& h : *target_history) present.insert(history_key(h));
  const bool history_there = std::all_of(source_history->begin(), source_history->end(),
                                         [&](const HistoryEntry& h) { return present.count(history_key(h)) != 0; });
  const bool empty = target.empty() && target_history->empty();
  if (!empty && source == target && history_there) {
    report.already_copied = true;
    co_return report;
  }
  if (!empty && !force) {
    co_return Error(Errc::invalid_argument,
                    fmt::format("the target ledger is not empty ({} pairs, {} history lines) and is not a copy of this "
                                "one; copy into an empty ledger (a new schema), or pass --force to write these pairs "
                                "over it",
                                target.size(), target_history->size()));
  }
  constexpr std::size_t kWindow = 1024;
  std::vector<const PairRecord*> records;
  for (const auto& [key, record] : source) records.push_back(&record);
  auto pairs = co_await run_windowed(records.size(), kWindow,
                                     [&](std::size_t i) { return to.write(*records[i], std::nullopt); });
  if (!pairs) co_return pairs.error();
  report.pairs = records.size();
  // Oldest first, as they were written (lines committed together keep their order by time).
  std::vector<const HistoryEntry*> lines;
  for (auto it = source_history->rbegin(); it != source_history->rend(); ++it) {
    if (present.count(history_key(*it)) == 0) lines.push_back(&*it);
  }
  auto history =
      co_await run_windowed(lines.size(), kWindow, [&](std::size_t i) { return to.append_history(*lines[i]); });
  if (!history) co_return history.error();
  report.history = lines.size();
  co_return report;
}

}  // namespace nicsync::ledger
