// What each outcome of a delivery does to the pair: its progress (state, applied and pending
// versions, attempts, last error), the history line, the lane's counters and the log line —
// and the ledger writes that make it durable.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"
#include "sync/engine_impl.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;
using ledger::HistoryEntry;
using ledger::Outcome;
using ledger::PairState;

namespace {

void set_error(PairProgress& progress, const Error& e) {
  LastError& last = progress.set_error();
  last.error_class = std::string(to_string(e.error_class()));
  last.code = e.code.category() == nicsync_category() ? std::string(errc_name(static_cast<Errc>(e.code.value())))
                                                      : fmt::format("{}:{}", e.code.category().name(), e.code.value());
  last.provider = e.provider_code;
  last.message = e.message.empty() ? e.code.message() : e.message;
}

void fill_error(HistoryEntry& h, const PairProgress& progress) {
  if (!progress.error) return;
  h.error_class = progress.error->error_class;
  h.error_code = progress.error->code;
  h.error_provider = progress.error->provider;
  h.message = progress.error->message;
}

}  // namespace

asio::awaitable<void> Engine::Impl::applied(PairPtr p, Target t, Fingerprint fp, std::chrono::milliseconds took) {
  PairProgress& progress = p->progress;
  Lane& lane = *p->lane;
  progress.applied = ledger::VersionRef{t.version, fp};
  progress.applied_at = clock.system_now();
  progress.clear_pending();
  progress.state = PairState::in_sync;
  p->unsynced_since.reset();
  HistoryEntry h = history_for(*p, t.version, t.kv, Outcome::applied);
  h.duration = took;
  count(lane, Outcome::applied);
  lane.counters.latency.observe(std::chrono::duration<double>(clock.now() - t.observed_at).count());
  if (t.written_at != SystemTime{}) {
    lane.counters.lag.observe(std::max(0.0, std::chrono::duration<double>(clock.system_now() - t.written_at).count()));
  }
  spdlog::info("{} version={} attempt={}: delivered", p->describe(), t.version.number, h.attempt);
  co_await write(p, std::move(h));
}

asio::awaitable<void> Engine::Impl::unchanged(PairPtr p, const Target& t, const Fingerprint& fp) {
  PairProgress& progress = p->progress;
  const bool same_version = progress.applied->version.same_version(t.version);
  const bool needs_record =
      !same_version || progress.state != PairState::in_sync || progress.pending || progress.push_in_flight;
  p->unsynced_since.reset();
  if (!needs_record) co_return;
  progress.applied = ledger::VersionRef{t.version, fp};
  progress.applied_at = clock.system_now();
  progress.clear_pending();
  progress.state = PairState::in_sync;
  std::optional<HistoryEntry> h;
  if (!same_version) h = history_for(*p, t.version, t.kv, Outcome::unchanged);
  count(*p->lane, Outcome::unchanged);
  spdlog::info("{} version={}: values equal the applied ones; nothing pushed", p->describe(), t.version.number);
  co_await write(p, std::move(h));
}

asio::awaitable<void> Engine::Impl::mark_source_deleted(PairPtr p, Target t, std::string message) {
  PairProgress& progress = p->progress;
  const bool already = progress.state == PairState::source_deleted && !progress.pending && !progress.push_in_flight;
  progress.clear_pending();
  progress.state = PairState::source_deleted;
  LastError& last = progress.set_error();
  last.error_class = std::string(to_string(ErrorClass::permanent));
  last.code = std::string(errc_name(Errc::sync_source_deleted));
  last.provider.clear();
  last.message = message;
  p->unsynced_since.reset();
  if (already) co_return;
  count(*p->lane, Outcome::source_deleted);
  spdlog::warn("{} version={}: {}", p->describe(), t.version.number, message);
  HistoryEntry h = history_for(*p, t.version, t.kv, Outcome::source_deleted);
  h.error_code = last.code;
  h.message = std::move(message);
  co_await write(p, std::move(h));
}

asio::awaitable<void> Engine::Impl::park(PairPtr p, Target t, Error e, Outcome outcome, bool counted) {
  PairProgress& progress = p->progress;
  progress.state = outcome == Outcome::rejected ? PairState::rejected : PairState::parked;
  if (!counted) progress.attempts += 1;
  progress.next_attempt_at = {};
  set_error(progress, e);
  count(*p->lane, outcome);
  if (outcome == Outcome::rejected) {
    spdlog::error(
        "{} version={} attempt={}: {} — not retried for this version; write a corrected credential to "
        "Vault (a new version) to try again",
        p->describe(), t.version.number, progress.attempts, e.describe());
  } else {
    spdlog::error("{} version={} attempt={}: {} — parked until a new version or an operator retry", p->describe(),
                  t.version.number, progress.attempts, e.describe());
  }
  HistoryEntry h = history_for(*p, t.version, t.kv, outcome);
  fill_error(h, progress);
  co_await write(p, std::move(h));
}

asio::awaitable<void> Engine::Impl::failed(PairPtr p, Target t, Error e, bool provider) {
  PairProgress& progress = p->progress;
  progress.attempts += 1;
  if (progress.first_attempt_at == SystemTime{}) progress.first_attempt_at = clock.system_now();
  if (provider && e.is(Errc::dest_unknown_code) && progress.attempts >= options.unknown_code_attempts) {
    Error parked(e.code, fmt::format("{} (unknown to nicsync; gave up after {} attempts — check the provider's "
                                     "documentation for code {} and retry with `nicsyncd sync`)",
                                     e.message, progress.attempts, e.provider_code));
    parked.provider_code = e.provider_code;
    co_await park(p, t, std::move(parked), Outcome::parked, true);
    co_return;
  }
  const SystemTime now_sys = clock.system_now();
  if (past_max_age(options.backoff, progress.first_attempt_at, now_sys)) {
    Error parked(Errc::sync_max_age, fmt::format("gave up after {} attempts over {}; last error: {}", progress.attempts,
                                                 format_duration(options.backoff.max_age), e.describe()));
    co_await park(p, t, std::move(parked), Outcome::parked, true);
    co_return;
  }
  const auto delay = backoff_delay(options.backoff, progress.attempts, e.retry_after, uniform(rng));
  progress.state = PairState::retrying;
  progress.next_attempt_at = now_sys + delay;
  set_error(progress, e);
  count(*p->lane, Outcome::failed);
  spdlog::warn("{} version={} attempt={}: {}; next attempt in {}", p->describe(), t.version.number, progress.attempts,
               e.describe(), format_duration(delay));
  HistoryEntry h = history_for(*p, t.version, t.kv, Outcome::failed);
  fill_error(h, progress);
  co_await write(p, std::move(h));
  p->due = clock.now() + delay;
}

void Engine::Impl::after_delivery(const PairPtr& p, const Target& t) {
  Lane& lane = *p->lane;
  p->in_flight = false;
  --lane.in_flight;
  --in_flight_total;
  const bool replaced = p->target && p->target->serial != t.serial;
  const auto due = std::exchange(p->due, std::nullopt);
  if (replaced) {
    schedule_now(p);
  } else if (p->progress.state == PairState::retrying && due && !halted()) {
    schedule_retry(p, *due);
  } else {
    p->target.reset();
  }
  notify_change();
  pump(lane);
  if (halted() && in_flight_total == 0) drained.cancel();
}

asio::awaitable<Result<void>> Engine::Impl::write(PairPtr p, std::optional<HistoryEntry> history) {
  p->progress.updated_at = clock.system_now();
  auto r = co_await store.write(p->record(), std::move(history));
  if (!r) {
    p->dirty = true;
    spdlog::error("{}: ledger write failed: {}; will retry", p->describe(), r.error().describe());
  } else {
    p->dirty = false;
  }
  notify_change();
  co_return r;
}

asio::awaitable<void> Engine::Impl::write_detached(std::shared_ptr<Impl> self, PairPtr p, HistoryEntry h) {
  co_await self->write(p, std::move(h));
}

asio::awaitable<void> Engine::Impl::housekeeping_loop(std::shared_ptr<Impl> self) {
  auto last_trim = self->clock.now() - std::chrono::hours(2);
  while (!self->stopping) {
    self->housekeeping.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await self->housekeeping.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || self->stopping) break;
    if (self->passive) continue;  // a standby writes nothing
    // Records whose write failed (disk full, I/O error) are written again. A copy: a reload
    // may change the table while a write waits for the disk.
    std::vector<PairPtr> dirty;
    for (const auto& p : self->pairs) {
      if (p->dirty) dirty.push_back(p);
    }
    for (const auto& p : dirty) {
      if (p->dirty && !p->in_flight && !p->removed) co_await self->write(p, std::nullopt);
    }
    if (self->clock.now() - last_trim >= std::chrono::hours(1)) {
      last_trim = self->clock.now();
      auto trimmed = co_await self->store.trim_history(self->clock.system_now() - self->options.history_retention);
      if (trimmed && *trimmed > 0) spdlog::info("ledger: trimmed {} history entries", *trimmed);
    }
  }
}

HistoryEntry Engine::Impl::history_for(const Pair& p, const VersionId& version, KvVersion kv, Outcome outcome) {
  HistoryEntry h;
  h.at = clock.system_now();
  h.destination = p.config.destination();
  h.gstin = p.config.gstin.str();
  h.version.number = version.number;
  // KV v1's lineage is the content's fingerprint: kept with the pair, not in the history.
  if (kv == KvVersion::v2) h.version.lineage = version.lineage;
  h.outcome = outcome;
  h.attempt = p.progress.attempts + (outcome == Outcome::applied ? 1 : 0);
  return h;
}

void Engine::Impl::count(Lane& lane, Outcome o) { ++lane.counters.outcomes[std::string(ledger::to_string(o))]; }

void Engine::Impl::notify_change() { changed.cancel(); }

}  // namespace nicsync::sync
