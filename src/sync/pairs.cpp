// The engine's pair table: which pairs exist (set_pairs), what the ledger says about them at
// start-up (load) and how work left unfinished by the previous run is taken up (recover).
#include <algorithm>
#include <numeric>
#include <tuple>

#include <spdlog/spdlog.h>

#include "sync/engine_impl.hpp"

namespace nicsync::sync {
using ledger::PairState;

namespace {

/// (destination, GSTIN) order: how the engine keeps its pairs.
bool id_less(const PairConfig& a, const PairConfig& b) {
  return std::tie(a.destination, a.gstin.str()) < std::tie(b.destination, b.gstin.str());
}

/// Vault path order: how observations find their pairs.
bool path_less(const PairPtr& a, const PairPtr& b) { return a->config.path < b->config.path; }

}  // namespace

void drop_repeated_pairs(std::vector<PairConfig>& pairs) {
  // Positions sorted, not a set of the names: with 10,000 pairs its nodes, freed between the
  // long-lived texts the caller allocated meanwhile, left as many holes in the heap.
  std::vector<std::size_t> order(pairs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return id_less(pairs[a], pairs[b]); });
  std::vector<bool> repeated(pairs.size(), false);
  for (std::size_t i = 1; i < order.size(); ++i) {
    if (!id_less(pairs[order[i - 1]], pairs[order[i]])) repeated[order[i]] = true;
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (repeated[i]) continue;
    if (kept != i) pairs[kept] = std::move(pairs[i]);
    ++kept;
  }
  pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(kept), pairs.end());
}

Result<void> Engine::Impl::set_pairs(std::vector<PairConfig> list) {
  for (const auto& c : list) {
    if (lanes.find(c.destination) == lanes.end()) {
      return Error(Errc::invalid_argument, fmt::format("mapping for GSTIN {} names destination \"{}\", which is "
                                                       "not configured",
                                                       c.gstin.str(), c.destination));
    }
  }
  // In (destination, GSTIN) order, checked for duplicates before anything changes.
  std::sort(list.begin(), list.end(), id_less);
  for (std::size_t i = 1; i < list.size(); ++i) {
    if (!id_less(list[i - 1], list[i])) {
      return Error(Errc::invalid_argument, fmt::format("GSTIN {} is mapped to destination \"{}\" twice",
                                                       list[i].gstin.str(), list[i].destination));
    }
  }
  for (auto& p : pairs) p->kept = false;
  std::vector<PairPtr> next;
  next.reserve(list.size());
  std::vector<PairPtr> adopted;  // records from the ledger with unfinished work
  for (auto& c : list) {
    PairPtr p;
    if (auto it = find_pair(c.destination, c.gstin.str()); it != pairs.end()) {
      p = *it;
      p->config = HeldConfig(std::move(c), interner);  // same destination and GSTIN: `pairs` stays in order
      p->kept = true;
    } else {
      const std::string key = orphan_key(c.destination, c.gstin.str());
      p = std::make_shared<Pair>(HeldConfig(std::move(c), interner));
      if (auto old = orphans.find(key); old != orphans.end()) {
        p->progress = PairProgress(std::move(old->second.record));
        const bool from_ledger = old->second.from_ledger;
        orphans.erase(old);
        // A pair that appears after start-up (a mapping-set member listed from Vault) takes up
        // the work its ledger row left unfinished, as load() does for the configured ones.
        if (from_ledger && recover(*p)) adopted.push_back(p);
      } else {
        p->progress.state = PairState::pending;
      }
    }
    p->lane = lanes.at(p->config.destination()).get();
    next.push_back(std::move(p));
  }
  for (auto& p : pairs) {
    if (!p->kept) {
      p->removed = true;
      orphans.emplace(orphan_key(p->config.destination(), p->config.gstin.str()), Orphan{p->record(), false});
    }
  }
  pairs = std::move(next);
  by_path = pairs;
  std::sort(by_path.begin(), by_path.end(), path_less);
  interner.prune();
  for (auto& p : adopted) {
    if (started) {
      schedule_recovered(p);
    } else {
      recovered.push_back(p);
    }
  }
  notify_change();
  return {};
}

Result<void> Engine::Impl::load() {
  auto records = store.load_pairs();
  if (!records) return records.error();
  for (auto& rec : *records) {
    auto it = find_pair(rec.destination, rec.gstin);
    if (it == pairs.end()) {
      // Not mapped (yet): mapping-set members appear once Vault has been listed.
      std::string key = orphan_key(rec.destination, rec.gstin);
      orphans.emplace(std::move(key), Orphan{std::move(rec), true});
      continue;
    }
    const PairPtr& p = *it;
    p->progress = PairProgress(std::move(rec));
    if (recover(*p)) recovered.push_back(p);
  }
  return {};
}

void Engine::Impl::note_unsynced(Pair& p) {
  const PairProgress& progress = p.progress;
  if (progress.state != PairState::in_sync && progress.state != PairState::source_deleted) {
    p.unsynced_since = progress.first_attempt_at != SystemTime{} ? progress.first_attempt_at : clock.system_now();
  }
}

bool Engine::Impl::recover(Pair& p) {
  const PairProgress& progress = p.progress;
  note_unsynced(p);
  if (!progress.pending) return false;
  const bool was_in_flight = progress.push_in_flight;
  const bool waiting = progress.state == PairState::pending || progress.state == PairState::retrying;
  if (!was_in_flight && !waiting) return false;  // parked/rejected: waits for news or an operator
  Target t;
  t.version = progress.pending->version;
  t.version.state = SourceState::present;
  // KV v2 numbers its versions from 1; a KV v1 key's version is 0 (its lineage the content's
  // fingerprint, which a new read gives again).
  t.kv = t.version.number == 0 ? KvVersion::v1 : KvVersion::v2;
  t.observed_at = clock.now();
  t.serial = ++serial;
  p.target = std::make_unique<Target>(std::move(t));
  if (was_in_flight) {
    // The intent is recorded before the push waits for its slot: it may not have gone out.
    spdlog::warn(
        "{} version={} attempt={}: nicsyncd stopped before the outcome of this push was recorded; pushing "
        "it again",
        p.describe(), p.target->version.number, progress.attempts + 1);
    ++redeliveries_after_crash;
  }
  return true;
}

void Engine::Impl::schedule_recovered(const PairPtr& p) {
  if (p->removed) return;
  const SystemTime now_sys = clock.system_now();
  if (p->progress.push_in_flight || p->progress.next_attempt_at <= now_sys) {
    schedule_now(p);
  } else {
    schedule_retry(p, clock.now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        p->progress.next_attempt_at - now_sys));
  }
}

std::vector<PairPtr>::const_iterator Engine::Impl::find_pair(std::string_view destination,
                                                             std::string_view gstin) const {
  using Id = std::pair<std::string_view, std::string_view>;
  auto it = std::lower_bound(pairs.begin(), pairs.end(), Id{destination, gstin}, [](const PairPtr& p, const Id& id) {
    return Id(p->config.destination(), p->config.gstin.str()) < id;
  });
  if (it != pairs.end() && (*it)->config.destination() == destination && (*it)->config.gstin.str() == gstin) {
    return it;
  }
  return pairs.end();
}

}  // namespace nicsync::sync
