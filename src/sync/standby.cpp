// Replicas sharing one ledger: the leader's engine delivers; a standby's holds the same pairs,
// starts nothing, and follows the leader's records so that its views show the shared state.
// Taking the lead is recovery after a crash: the ledger's records are taken up as they are (an
// intent without an outcome is pushed again — the one repeat a failover may cost).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "sync/engine_impl.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;

asio::awaitable<void> Engine::Impl::stand_by() {
  auto self = shared_from_this();
  passive = true;
  retry_timer.cancel();
  retry_armed.reset();
  while (!retries.empty()) retries.pop();
  for (auto& [name, lane] : lanes) {
    lane->cancel_wake();
    lane->ready.clear();
  }
  for (auto& p : pairs) {
    p->queued = false;
    p->due.reset();
  }
  // A push already handed to the destination may still land; nothing new starts.
  for (auto& p : pairs) {
    if (p->in_flight) p->cancel.emit(asio::cancellation_type::terminal);
  }
  if (in_flight_total > 0) {
    drained.expires_after(std::chrono::seconds(5));
    co_await drained.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (in_flight_total > 0) spdlog::warn("sync: {} deliveries still winding down while standing by", in_flight_total);
  notify_change();
}

void Engine::Impl::adopt(std::vector<ledger::PairRecord> records, bool take_up) {
  // Records of pairs not mapped now wait as orphans, as at start-up.
  for (auto it = orphans.begin(); it != orphans.end();) {
    it = it->second.from_ledger ? orphans.erase(it) : std::next(it);
  }
  std::vector<bool> seen(pairs.size(), false);
  for (auto& rec : records) {
    auto it = find_pair(rec.destination, rec.gstin);
    if (it == pairs.end()) {
      std::string key = orphan_key(rec.destination, rec.gstin);
      orphans.insert_or_assign(std::move(key), Orphan{std::move(rec), true});
      continue;
    }
    const PairPtr& p = *it;
    seen[static_cast<std::size_t>(it - pairs.begin())] = true;
    if (p->in_flight) continue;  // winding down after stand_by: the next refresh has it
    p->progress = PairProgress(std::move(rec));
    p->target.reset();
    p->unsynced_since.reset();
    p->dirty = false;
    if (take_up) {
      if (recover(*p)) recovered.push_back(p);
    } else {
      note_unsynced(*p);
    }
  }
  // A pair the ledger has no row for has never been delivered: it starts pending, as new.
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (seen[i] || pairs[i]->in_flight) continue;
    PairProgress& pr = pairs[i]->progress;
    pr.clear_pending();
    pr.applied.reset();
    pr.state = ledger::PairState::pending;
    pr.applied_at = pr.updated_at = SystemTime{};
    pr.error.reset();
    pairs[i]->target.reset();
  }
  notify_change();
}

asio::awaitable<Result<void>> Engine::Impl::refresh() {
  auto self = shared_from_this();
  auto records = co_await store.read_pairs();
  if (!records) co_return records.error();
  // The lead may have been taken while the read was under way: a leader's records are its own.
  if (passive) adopt(std::move(*records), /*take_up=*/false);
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Engine::Impl::lead() {
  auto self = shared_from_this();
  auto records = co_await store.read_pairs();
  if (!records) co_return records.error();
  recovered.clear();
  adopt(std::move(*records), /*take_up=*/true);
  passive = false;
  started = true;
  for (auto& p : recovered) schedule_recovered(p);
  recovered.clear();
  for (auto& [name, lane] : lanes) pump(*lane);
  if (!std::exchange(housekeeping_running, true)) {
    asio::co_spawn(ex, housekeeping_loop(self), asio::detached);
  }
  notify_change();
  co_return Result<void>{};
}

}  // namespace nicsync::sync
