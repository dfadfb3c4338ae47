// One delivery of one pair, in order: the Vault read, the no-op check (the destination already
// holds these values), the intent (durable before anything leaves the machine), the push
// through the lane's gate, and the outcome (sync/outcomes.cpp).
#include <boost/asio/error.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/sync/idempotency.hpp"
#include "sync/engine_impl.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;
using ledger::Outcome;
using ledger::PairState;

asio::awaitable<void> Engine::Impl::deliver(std::shared_ptr<Impl> self, PairPtr p) {
  const Target t = *p->target;
  try {
    co_await self->attempt(p, t);
  } catch (const boost::system::system_error& e) {
    if (e.code() != asio::error::operation_aborted) {
      spdlog::error("{} version={} attempt={}: delivery failed unexpectedly: {}", p->describe(), t.version.number,
                    p->progress.attempts + 1, e.what());
    }
  } catch (const std::exception& e) {
    spdlog::error("{} version={} attempt={}: delivery failed unexpectedly: {}", p->describe(), t.version.number,
                  p->progress.attempts + 1, e.what());
  }
  // A push that did not finish (cancelled, or threw) told the breaker nothing.
  p->lane->release_push_slot(*p, false);
  self->after_delivery(p, t);
}

asio::awaitable<void> Engine::Impl::attempt(PairPtr p, Target t) {
  PairProgress& progress = p->progress;
  Lane& lane = *p->lane;
  const SourceRef src = p->config.source();

  // A different version than the one that was failing starts a fresh attempt count.
  if (!progress.pending || !progress.pending->version.same_version(t.version)) {
    progress.attempts = 0;
    progress.first_attempt_at = {};
  }

  if (t.version.state != SourceState::present) {
    co_await mark_source_deleted(p, t,
                                 fmt::format("the current version of {} is {} in Vault; nothing is pushed "
                                             "until a readable version exists",
                                             src.path, to_string(t.version.state)));
    co_return;
  }

  auto credential = co_await reader.read(src, t.version.number);
  if (!credential) {
    const Error& e = credential.error();
    if (e.is(Errc::vault_version_deleted) || e.is(Errc::vault_version_destroyed) || e.is(Errc::vault_not_found)) {
      co_await mark_source_deleted(p, t, e.message);
    } else if (e.is(Errc::vault_secret_malformed)) {
      co_await park(p, t, e, Outcome::parked);
    } else {
      co_await failed(p, t, e, /*provider=*/false);
    }
    co_return;
  }
  const Fingerprint fp = fingerprint(credential->username, credential->password);
  if (t.kv == KvVersion::v1) t.version.lineage = Lineage(fp.hex());  // v1: the content is the version

  if (!t.force && progress.applied && progress.applied->fingerprint == fp) {
    // The destination already holds exactly these values (e.g. the same values rewritten).
    co_await unchanged(p, t, fp);
    co_return;
  }

  // Intent first: durable before anything leaves the machine.
  progress.pending = std::make_unique<ledger::VersionRef>(ledger::VersionRef{t.version, fp});
  progress.pending->version.state = SourceState::present;
  progress.push_in_flight = true;
  if (progress.state != PairState::retrying) progress.state = PairState::pending;
  if (progress.first_attempt_at == SystemTime{}) progress.first_attempt_at = clock.system_now();
  if (auto w = co_await write(p, std::nullopt); !w) {
    if (w.error().is(Errc::ledger_fenced)) {
      // Another replica leads now: nothing goes out, and the record this replica holds is
      // replaced by the ledger's when it stands by.
      spdlog::warn("{} version={}: not pushed: {}", p->describe(), t.version.number, w.error().message);
      co_return;
    }
    progress.push_in_flight = false;
    co_await failed(
        p, t, Error(w.error().code, "cannot record the delivery intent in the ledger: " + w.error().message), false);
    co_return;
  }

  co_await lane.acquire_push_slot(p);
  if (p->target && p->target->serial != t.serial) {
    // A newer version came while this one waited for a slot: it goes instead (coalescing). The
    // intent stays until the next delivery's intent replaces it.
    lane.release_push_slot(*p, false);
    progress.push_in_flight = false;
    co_return;
  }
  const std::string& destination = lane.destination()->name();
  destinations::Delivery d{
      p->config.gstin,
      src.path,
      t.version.number,
      std::string(t.version.lineage.text()),
      progress.attempts + 1,
      idempotency_key(destination, p->config.gstin, src.path, t.version.lineage.text(), t.version.number)};
  if (may_push && !may_push()) {
    // The lease may have run out since the intent committed: the push stays in the ledger as
    // in flight, and whichever replica leads next pushes it.
    spdlog::warn("{} version={}: not pushed: this replica's lease is about to run out", p->describe(),
                 t.version.number);
    lane.release_push_slot(*p, false);
    co_return;
  }
  const SteadyTime push_start = clock.now();
  auto dest = lane.destination();  // keep the object alive across a reload
  auto result = co_await dest->push(std::move(d), std::move(*credential));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - push_start);
  progress.push_in_flight = false;
  // The breaker learns the outcome, then the slot goes to the next push; recording the outcome
  // in the ledger needs no slot. A rejection or a permanent error says the provider works (the
  // credential or the request does not).
  std::optional<Error> e;
  if (!result) e = result.error();
  lane.push_finished(!e || e->error_class() == ErrorClass::credential_rejected ||
                     e->error_class() == ErrorClass::permanent);
  lane.release_push_slot(*p, true);
  if (!e) {
    co_await applied(p, t, fp, took);
    co_return;
  }
  switch (e->error_class()) {
    case ErrorClass::credential_rejected: co_await park(p, t, *e, Outcome::rejected); break;
    case ErrorClass::permanent: co_await park(p, t, *e, Outcome::parked); break;
    case ErrorClass::transient:
    case ErrorClass::auth:
    case ErrorClass::none: co_await failed(p, t, *e, true); break;
  }
}

}  // namespace nicsync::sync
