// Observations and when deliveries run: an observation becomes a pair's target when it is
// news (sync/news.hpp); a pair with a target waits in its lane's ready queue, or in the retry
// heap (keyed by due time) while it backs off; each lane starts deliveries up to its cap.
#include <algorithm>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/sync/news.hpp"
#include "sync/engine_impl.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;
using ledger::Outcome;
using ledger::PairState;

std::pair<std::vector<PairPtr>::const_iterator, std::vector<PairPtr>::const_iterator> Engine::Impl::reading(
    std::string_view path) const {
  auto first = std::lower_bound(by_path.begin(), by_path.end(), path,
                                [](const PairPtr& p, std::string_view key) { return p->config.path < key; });
  auto last = first;
  while (last != by_path.end() && (*last)->config.path == path) ++last;
  return {first, last};
}

std::size_t Engine::Impl::observe(const Observation& obs) {
  const auto [first, last] = reading(obs.path);
  if (!halted()) {
    for (auto it = first; it != last; ++it) apply(*it, obs);
  }
  return static_cast<std::size_t>(last - first);
}

void Engine::Impl::apply(const PairPtr& p, const Observation& obs) {
  p->note_observed(obs);
  const PairProgress& progress = p->progress;
  PairPosition position;
  position.state = progress.state;
  if (progress.applied) position.applied = &progress.applied->version;
  if (progress.pending) position.pending = &progress.pending->version;
  if (p->target) {
    position.target = &p->target->version;
    position.target_forced = p->target->force;
  }
  position.delivering = p->in_flight;
  if (is_news(obs, position) == News::none) return;

  Target t;
  t.version = obs.version;
  t.kv = obs.kv;
  if (t.kv == KvVersion::v1) {
    // KV v1 has no versions: every observation is read and compared by fingerprint.
    t.version.number = 0;
    t.version.lineage = Lineage();
  }
  // A pending operator force survives coalescing.
  t.force = obs.force || (p->target && p->target->force);
  t.written_at = obs.written_at;
  t.observed_at = clock.now();
  t.serial = ++serial;
  p->target = std::make_unique<Target>(std::move(t));
  if (!p->unsynced_since && obs.version.state == SourceState::present) p->unsynced_since = clock.system_now();
  if (p->in_flight) return;  // it picks the new target up when the current push finishes
  schedule_now(p);
}

Result<void> Engine::Impl::retry(std::string_view destination, const Gstin& gstin) {
  auto it = find_pair(destination, gstin.str());
  if (it == pairs.end()) {
    return Error(Errc::invalid_argument,
                 fmt::format("GSTIN {} is not mapped to destination \"{}\"", gstin.str(), destination));
  }
  PairPtr p = *it;
  PairProgress& progress = p->progress;
  if (!progress.pending || (progress.state != PairState::parked && progress.state != PairState::rejected &&
                            progress.state != PairState::retrying)) {
    return Error(Errc::invalid_argument, fmt::format("GSTIN {} at destination \"{}\" has nothing to retry (state {})",
                                                     gstin.str(), destination, ledger::to_string(progress.state)));
  }
  const VersionId version = progress.pending->version;
  const KvVersion kv = version.number == 0 ? KvVersion::v1 : KvVersion::v2;
  if (!p->target) {
    Target t;
    t.version = version;
    t.version.state = SourceState::present;
    t.kv = kv;
    t.observed_at = clock.now();
    t.serial = ++serial;
    p->target = std::make_unique<Target>(std::move(t));
  }
  spdlog::info("{} version={}: operator retry", p->describe(), version.number);
  progress.attempts = 0;
  progress.first_attempt_at = {};
  progress.next_attempt_at = {};
  progress.state = PairState::pending;
  ledger::HistoryEntry h = history_for(*p, version, kv, Outcome::operator_retry);
  asio::co_spawn(ex, write_detached(shared_from_this(), p, std::move(h)), asio::detached);
  if (!p->in_flight) schedule_now(p);
  return {};
}

void Engine::Impl::schedule_now(const PairPtr& p) {
  if (p->removed || p->in_flight || p->queued || halted()) return;
  ++p->retry_generation;
  p->due.reset();
  p->queued = true;
  p->lane->ready.push_back(p);
  pump(*p->lane);
}

void Engine::Impl::schedule_retry(const PairPtr& p, SteadyTime due) {
  ++p->retry_generation;
  p->due = due;
  retries.push(RetryEntry{due, p->retry_generation, p});
  arm_retry_timer();
}

void Engine::Impl::arm_retry_timer() {
  if (retries.empty() || halted()) return;
  const SteadyTime earliest = retries.top().due;
  if (retry_armed && *retry_armed <= earliest) return;
  retry_armed = earliest;
  const auto delay = std::max<std::chrono::steady_clock::duration>(earliest - clock.now(), {});
  retry_timer.expires_after(delay);
  retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) {
      self->retry_armed.reset();
      self->run_due_retries();
    }
  });
}

void Engine::Impl::run_due_retries() {
  if (halted()) return;
  const SteadyTime now = clock.now();
  while (!retries.empty() && retries.top().due <= now) {
    RetryEntry e = retries.top();
    retries.pop();
    if (e.generation != e.pair->retry_generation || e.pair->removed) continue;  // superseded
    schedule_now(e.pair);
  }
  arm_retry_timer();
}

void Engine::Impl::pump(Lane& lane) {
  while (!halted() && !lane.ready.empty() && lane.in_flight < lane.delivery_cap()) {
    PairPtr p = std::move(lane.ready.front());
    lane.ready.pop_front();
    p->queued = false;
    if (p->removed || !p->target) continue;
    p->in_flight = true;
    ++lane.in_flight;
    ++in_flight_total;
    asio::co_spawn(ex, deliver(shared_from_this(), p),
                   asio::bind_cancellation_slot(p->cancel.slot(), [ex = ex, p](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         spdlog::error("sync: delivery task failed unexpectedly: {}", x.what());
                       }
                     }
                     // The slot keeps co_spawn's cancellation handler (~180 bytes) until the
                     // next delivery replaces it; most pairs are idle for months. Clear it once
                     // this delivery's frames are gone (posted: this runs inside them).
                     asio::post(ex, [p] {
                       if (!p->in_flight) p->cancel.slot().clear();
                     });
                   }));
  }
  lane.open_gate();
}

}  // namespace nicsync::sync
