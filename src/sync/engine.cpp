// The sync engine's public face: construction and configuration, start and stop, and the views
// status and metrics read. The work itself: sync/engine_impl.hpp lists the files.
#include "nicsync/sync/engine.hpp"

#include <algorithm>
#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"
#include "sync/engine_impl.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;
using ledger::PairState;

Engine::Impl::Impl(asio::any_io_executor executor, ledger::Store& s, CredentialReader& r, FingerprintFn f, Clock& c,
                   EngineOptions o)
    : ex(std::move(executor)),
      store(s),
      reader(r),
      fingerprint(std::move(f)),
      clock(c),
      options(o),
      rng(o.seed != 0 ? o.seed : std::random_device{}()),
      retry_timer(ex),
      changed(ex, std::chrono::steady_clock::time_point::max()),
      drained(ex),
      housekeeping(ex),
      passive(o.standby) {}

void Engine::Impl::set_destinations(
    std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> list) {
  for (auto& [dest, policy] : list) {
    auto it = lanes.find(dest->name());
    if (it == lanes.end()) {
      auto wake = [weak = weak_from_this()](Lane& lane) {
        if (auto self = weak.lock()) self->pump(lane);
      };
      lanes.emplace(dest->name(), std::make_unique<Lane>(ex, dest, policy, clock, std::move(wake)));
    } else {
      it->second->update(dest, policy);
    }
  }
  for (auto& [name, lane] : lanes) pump(*lane);
}

Engine::Engine(asio::any_io_executor executor, ledger::Store& store, CredentialReader& reader,
               FingerprintFn fingerprint, Clock& clock, EngineOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), store, reader, std::move(fingerprint), clock, options)) {}

Engine::~Engine() {
  impl_->stopping = true;
  impl_->retry_timer.cancel();
  impl_->housekeeping.cancel();
  for (auto& [name, lane] : impl_->lanes) lane->cancel_wake();
}

void Engine::set_destinations(std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> lanes) {
  impl_->set_destinations(std::move(lanes));
}

Result<void> Engine::set_pairs(std::vector<PairConfig> pairs) { return impl_->set_pairs(std::move(pairs)); }

Result<void> Engine::load() { return impl_->load(); }

void Engine::start() {
  impl_->started = true;
  for (auto& p : impl_->recovered) impl_->schedule_recovered(p);
  impl_->recovered.clear();
  for (auto& [name, lane] : impl_->lanes) impl_->pump(*lane);
  if (!std::exchange(impl_->housekeeping_running, true)) {
    asio::co_spawn(impl_->ex, Impl::housekeeping_loop(impl_), asio::detached);
  }
}

asio::awaitable<void> Engine::stand_by() { return impl_->stand_by(); }
asio::awaitable<Result<void>> Engine::refresh() { return impl_->refresh(); }
asio::awaitable<Result<void>> Engine::lead() { return impl_->lead(); }
void Engine::set_push_permit(std::function<bool()> may_push) { impl_->may_push = std::move(may_push); }
bool Engine::standing_by() const noexcept { return impl_->passive; }

std::size_t Engine::observe(const Observation& observation) { return impl_->observe(observation); }

std::vector<Gstin> Engine::gstins_reading(std::string_view vault_path) const {
  const auto [first, last] = impl_->reading(vault_path);
  std::vector<Gstin> out;
  for (auto it = first; it != last; ++it) out.push_back((*it)->config.gstin);
  return out;
}

Result<void> Engine::retry(std::string_view destination, const Gstin& gstin) {
  return impl_->retry(destination, gstin);
}

asio::awaitable<void> Engine::stop(std::chrono::milliseconds grace) {
  auto impl = impl_;
  impl->stopping = true;
  impl->retry_timer.cancel();
  impl->housekeeping.cancel();
  for (auto& [name, lane] : impl->lanes) {
    lane->cancel_wake();
    lane->ready.clear();
  }
  for (auto& p : impl->pairs) p->queued = false;
  constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
  if (impl->in_flight_total > 0) {
    impl->drained.expires_after(grace);
    co_await impl->drained.async_wait(kTuple);
  }
  if (impl->in_flight_total > 0) {
    spdlog::warn(
        "sync: {} deliveries still in flight after {}; cancelling them (they are pushed again on the "
        "next start)",
        impl->in_flight_total, format_duration(grace));
    for (auto& p : impl->pairs) {
      if (p->in_flight) p->cancel.emit(asio::cancellation_type::terminal);
    }
    impl->drained.expires_after(std::chrono::seconds(5));
    if (impl->in_flight_total > 0) co_await impl->drained.async_wait(kTuple);
  }
  impl->notify_change();
}

namespace {

PairView view_of(const Pair& p) {
  PairView v{p.config.full(), p.record(), p.in_flight, std::nullopt, false};
  if (p.target) {
    v.target = p.target->version;
    v.target_forced = p.target->force;
  }
  v.written_at = p.written_at();
  v.vault_version = p.observed_number;
  v.versions_behind = p.versions_behind();
  return v;
}

}  // namespace

std::vector<PairView> Engine::snapshot() const {
  std::vector<PairView> out;
  out.reserve(impl_->pairs.size());
  for (const auto& p : impl_->pairs) out.push_back(view_of(*p));
  std::sort(out.begin(), out.end(), [](const PairView& a, const PairView& b) {
    return std::tie(a.config.gstin, a.config.destination) < std::tie(b.config.gstin, b.config.destination);
  });
  return out;
}

std::size_t Engine::pair_count() const noexcept { return impl_->pairs.size(); }

PairBrief Engine::brief(std::size_t i) const {
  const Pair& p = *impl_->pairs.at(i);
  const PairProgress& progress = p.progress;
  PairBrief b;
  b.gstin = p.config.gstin.str();
  b.destination = p.config.destination();
  b.state = progress.state;
  b.attempts = progress.attempts;
  b.next_attempt_at = progress.next_attempt_at;
  b.written_at = p.written_at();
  b.versions_behind = p.versions_behind();
  if (progress.error) b.error_code = progress.error->code;
  return b;
}

PairView Engine::view(std::size_t i) const { return view_of(*impl_->pairs.at(i)); }

std::map<std::string, LaneMetrics> Engine::lane_metrics() const {
  std::map<std::string, LaneMetrics> out;
  for (const auto& [name, lane] : impl_->lanes) out.emplace(name, lane->metrics());
  return out;
}

std::map<ledger::PairState, std::size_t> Engine::state_counts() const {
  // Counted in an array: every /metrics scrape and STATUS= line walks all pairs.
  std::array<std::size_t, static_cast<std::size_t>(PairState::source_deleted) + 1> counts{};
  for (const auto& p : impl_->pairs) ++counts[static_cast<std::size_t>(p->progress.state)];
  std::map<ledger::PairState, std::size_t> out;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] != 0) out.emplace(static_cast<PairState>(i), counts[i]);
  }
  return out;
}

std::optional<std::chrono::seconds> Engine::oldest_unsynced_age() const {
  std::optional<SystemTime> oldest;
  for (const auto& p : impl_->pairs) {
    if (p->unsynced_since && (!oldest || *p->unsynced_since < *oldest)) oldest = p->unsynced_since;
  }
  if (!oldest) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(
      std::max(impl_->clock.system_now() - *oldest, std::chrono::system_clock::duration{}));
}

bool Engine::idle() const noexcept {
  if (impl_->in_flight_total > 0) return false;
  for (const auto& [name, lane] : impl_->lanes) {
    if (!lane->ready.empty()) return false;
  }
  for (const auto& p : impl_->pairs) {
    if (p->target || p->due) return false;
  }
  return true;
}

asio::awaitable<Result<std::vector<ledger::HistoryEntry>>> Engine::history(std::string gstin, std::size_t limit) {
  auto impl = impl_;
  co_return co_await impl->store.history(std::move(gstin), limit);
}

bool Engine::ledger_writable() const noexcept { return impl_->store.writable(); }

std::string Engine::ledger_error() const { return impl_->store.last_write_error(); }

std::uint64_t Engine::redeliveries_after_crash() const noexcept { return impl_->redeliveries_after_crash; }

asio::awaitable<void> Engine::wait_for_change() {
  auto impl = impl_;
  co_await impl->changed.async_wait(asio::as_tuple(asio::use_awaitable));
}

void Engine::poke() {
  impl_->run_due_retries();
  for (auto& [name, lane] : impl_->lanes) impl_->pump(*lane);
}

}  // namespace nicsync::sync
