#include "nicsync/watch/watcher.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <random>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "audit_follower.hpp"
#include "watch/content_hash.hpp"
#include "nicsync/core/duration.hpp"
#include "nicsync/vault/events.hpp"
#include "nicsync/watch/audit_feed.hpp"

namespace nicsync::watch {
namespace asio = boost::asio;
using SteadyTime = std::chrono::steady_clock::time_point;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Sweep reads due within this much of each other start on one wake-up (capped at 1 % of the
// poll interval, so that a key is never read noticeably early). Wake-ups, not reads, were most
// of an idle daemon's CPU: 10,000 keys every 60 s cost 151 us of CPU a read with a 20 ms tick
// (3 reads a wake-up), 77 us with 100 ms and 58 us with 250 ms; 600 ms gained nothing more
// (tests/bench/daemon_footprint_bench.cpp).
constexpr std::chrono::milliseconds kSweepTick{250};

namespace {

/// What was last reported for a key: its version (KV v1: number 0, no lineage) and, for KV v1,
/// which has no versions, a digest of its content (only ever compared, never shown or stored).
struct Seen {
  VersionId version;
  std::array<unsigned char, 16> content{};  // KV v1: first half of the content's SHA-256
  bool operator==(const Seen&) const = default;
};

/// One watched key. Kept small, since a service provider watches 100,000 of them: an error is
/// allocated only while there is one, and mapping-set membership is a flag (a key lies
/// directly under at most one set's folder).
struct Key {
  std::string path;
  std::unique_ptr<Error> last_error;
  std::optional<Seen> seen;
  int failures = 0;
  // Reads of one key may overlap (a sweep's, an event's, a trigger's): the one that started
  // last and has finished wins, so an older answer never follows a newer one.
  std::uint32_t reads_started = 0;
  std::uint32_t newest_settled = 0;  // `reads_started` of the newest read that settled
  bool explicit_key = false;         // named by a [[mapping]]
  bool in_set = false;               // listed under its folder's [[mapping_set]] at the last listing
  bool answered = false;             // read once with a definite answer
  bool retry_pending = false;
};

using KeyPtr = std::shared_ptr<Key>;

std::string strip_slashes(std::string_view p) {
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return std::string(p);
}

}  // namespace

struct Watcher::Impl : std::enable_shared_from_this<Watcher::Impl>, detail::FollowerHost {
  Impl(asio::any_io_executor e, vault::Client& v, WatcherOptions o, Clock& c, Sink s)
      : ex(std::move(e)),
        vault(v),
        options(o),
        clock(c),
        sink(std::move(s)),
        rng(o.seed != 0 ? o.seed : std::random_device{}()),
        slot_free(ex, SteadyTime::max()),
        sweep_timer(ex),
        resume_timer(ex) {}

  // --- configuration -----------------------------------------------------------------------

  void set_keys(std::vector<std::string> paths) {
    std::set<std::string, std::less<>> wanted(paths.begin(), paths.end());
    for (auto& [path, key] : keys) key->explicit_key = wanted.count(path) != 0;
    for (const auto& p : wanted) key_for(p)->explicit_key = true;
    drop_unwatched();
    publish_routes();
  }

  void set_prefixes(std::vector<std::string> list) {
    std::set<std::string> wanted(list.begin(), list.end());
    for (auto it = prefixes.begin(); it != prefixes.end();) {
      if (wanted.count(*it) == 0) {
        for (auto& [path, key] : keys) {
          if (vault::directly_in_folder(path, *it)) key->in_set = false;
        }
        it = prefixes.erase(it);
      } else {
        ++it;
      }
    }
    prefixes.insert(wanted.begin(), wanted.end());
    drop_unwatched();
    publish_routes();
  }

  KeyPtr key_for(const std::string& path) {
    if (auto it = keys.find(path); it != keys.end()) return it->second;
    auto k = std::make_shared<Key>();
    k->path = path;
    keys.emplace(std::string_view(k->path), k);  // the map's key views the Key's own path
    return k;
  }

  void drop_unwatched() {
    std::erase_if(keys, [](const auto& kv) { return !kv.second->explicit_key && !kv.second->in_set; });
  }

  // --- reading one key -----------------------------------------------------------------------

  // Reading a key is split so that each coroutine frame stays small (g++ keeps every local of
  // a coroutine in its heap frame; one frame per read of over 1 KiB was a measurable part of an
  // idle daemon's CPU): read_key holds what the read found, read_v2 / read_v1 the Vault answer.

  // What a read found, before it is compared with what was seen last (small: it is held in
  // the frames of a read).
  struct Found {
    KvVersion kv = KvVersion::v2;
    Seen seen;
    std::chrono::system_clock::time_point written_at{};
  };

  asio::awaitable<Result<Found>> read_v2(vault::KvPath kvp) {
    auto md = co_await vault.read_kv2_metadata(std::move(kvp));
    if (!md) {
      if (!md.error().is(Errc::vault_not_found)) co_return md.error();
      co_return Found{KvVersion::v2, Seen{VersionId{0, Lineage(), SourceState::missing}, {}}, {}};
    }
    Found f;
    const auto* cur = md->current();
    f.seen.version = VersionId{md->current_version, Lineage(md->created_time), md->current_state(clock.system_now())};
    if (cur != nullptr) f.written_at = cur->created_at;
    co_return f;
  }

  asio::awaitable<Result<Found>> read_v1(vault::KvPath kvp) {
    auto data = co_await vault.read_kv1(std::move(kvp));
    if (!data && !data.error().is(Errc::vault_not_found)) co_return data.error();
    const SourceState state = data ? SourceState::present : SourceState::missing;
    co_return Found{
        KvVersion::v1,
        Seen{VersionId{0, Lineage(), state}, data ? content_hash(data->data) : std::array<unsigned char, 16>{}},
        {}};
  }

  ReadResult failed(const KeyPtr& k, Error e) {
    note_failure(k, e);
    ReadResult out;
    out.path = k->path;
    out.error = std::move(e);
    return out;
  }

  // Reads `k` where the Vault client says it lives (asking Vault only for a mount not met yet).
  asio::awaitable<Result<Found>> fetch(KeyPtr k) {
    if (follower) follower->read_started(k->path);
    std::optional<vault::KvLocation> where = vault.known_location(k->path);
    if (!where) {
      auto located = co_await vault.locate(std::string_view(k->path));
      if (!located) co_return located.error();
      where = std::move(*located);
    }
    if (follower) note_mount(where->path.mount.str(), where->kv);
    if (where->kv == KvVersion::v2) co_return co_await read_v2(std::move(where->path));
    co_return co_await read_v1(std::move(where->path));
  }

  /// A read whose caller wants to know what it gave (triggers, `read_now`).
  asio::awaitable<ReadResult> read_key(KeyPtr k, bool force, ObservationSource source, bool emit = true) {
    ++stats.reads;
    const std::uint32_t ticket = ++k->reads_started;
    auto found = co_await fetch(k);
    if (!found) co_return failed(k, found.error());
    co_return settle(k, ticket, std::move(*found), force, source, emit);
  }

  /// A read of a sweep, a retry, an event or a hint: what it finds goes to the engine only.
  /// Whether it reported something new; nothing when it failed.
  asio::awaitable<std::optional<bool>> poll_key(KeyPtr k, ObservationSource source) {
    ++stats.reads;
    const std::uint32_t ticket = ++k->reads_started;
    auto found = co_await fetch(k);
    if (!found) {
      note_failure(k, found.error());
      co_return std::nullopt;
    }
    co_return settle(k, ticket, std::move(*found), false, source, true).observation.has_value();
  }

  // A successful read: reported when it is news (or always, when not emitting). A read that
  // started before one that already settled is older news: dropped, whatever it says.
  ReadResult settle(const KeyPtr& k, std::uint32_t ticket, Found found, bool force, ObservationSource source,
                    bool emit) {
    note_success(k);
    ReadResult out;
    out.path = k->path;
    const bool outdated = ticket < k->newest_settled;
    if (!outdated) k->newest_settled = ticket;
    const bool news = !outdated && (force || !k->seen || *k->seen != found.seen);
    if (emit && !news) return out;
    Observation obs;
    obs.path = k->path;
    obs.kv = found.kv;
    obs.version = found.seen.version;
    obs.written_at = found.written_at;
    obs.source = source;
    obs.force = force;
    if (emit) {
      k->seen = std::move(found.seen);
      ++stats.observations;
      sink(WatchEvent(obs));
    }
    out.observation = std::move(obs);
    return out;
  }

  void note_failure(const KeyPtr& k, const Error& e) {
    ++stats.read_failures;
    ++k->failures;
    const bool first = !k->last_error || k->last_error->code != e.code;
    k->last_error = std::make_unique<Error>(e);
    if (e.error_class() != ErrorClass::transient && e.error_class() != ErrorClass::auth) {
      k->answered = true;  // a definite (if bad) answer
      check_first_sweep();
    }
    // Log the first failure of a kind loudly, repeats quietly.
    if (first) {
      spdlog::warn("watch: cannot read {}: {}", k->path, e.describe());
    } else {
      spdlog::debug("watch: cannot read {} (failure {}): {}", k->path, k->failures, e.describe());
    }
    if (e.error_class() == ErrorClass::transient || e.error_class() == ErrorClass::auth) schedule_retry(k);
  }

  void note_success(const KeyPtr& k) {
    if (k->last_error) spdlog::info("watch: {} readable again", k->path);
    k->answered = true;
    k->last_error.reset();
    k->failures = 0;
    check_first_sweep();
  }

  // The first full read is done once a sweep has gone over every key and each of them has
  // given an answer (late answers from quick retries count).
  void check_first_sweep() {
    if (first_sweep || !swept_once || !all_answered()) return;
    first_sweep = true;
    spdlog::info("watch: first full read of Vault done ({} keys)", keys.size());
  }

  // A key that failed transiently is read again soon, not only at the next sweep.
  void schedule_retry(const KeyPtr& k) {
    if (k->retry_pending || stopping) return;
    k->retry_pending = true;
    auto delay = options.retry_base;
    for (int i = 1; i < k->failures && delay < options.poll_interval; ++i) delay *= 2;
    delay = std::min(delay, options.poll_interval);
    asio::co_spawn(ex, retry_later(shared_from_this(), k, delay), asio::detached);
  }

  static asio::awaitable<void> retry_later(std::shared_ptr<Impl> self, KeyPtr k, std::chrono::milliseconds delay) {
    asio::steady_timer t(self->ex, delay);
    auto [ec] = co_await t.async_wait(kTuple);
    k->retry_pending = false;
    if (ec || self->stopping || self->keys.count(k->path) == 0 || !k->last_error) co_return;
    co_await self->acquire();
    co_await self->poll_key(k, ObservationSource::poll);
    self->release();
  }

  // --- concurrency cap -----------------------------------------------------------------------

  // A slot is handed to the longest waiter (FIFO), waking only that one: waking every waiter on
  // each release made a burst of events (10,000 keys rotated at once) quadratic.
  struct SlotWaiter {
    explicit SlotWaiter(const asio::any_io_executor& e) : timer(e, SteadyTime::max()) {}
    asio::steady_timer timer;
    bool granted = false;
  };

  asio::awaitable<void> acquire() {
    if (in_flight < options.concurrency && slot_waiters.empty()) {
      ++in_flight;
      co_return;
    }
    auto w = std::make_shared<SlotWaiter>(ex);
    slot_waiters.push_back(w);
    // try/catch rather than an RAII guard (g++ 12): a waiter cancelled while queued must leave
    // the queue, and one cancelled just after being granted a slot must give it back.
    try {
      while (!w->granted) co_await w->timer.async_wait(kTuple);
    } catch (...) {
      if (w->granted) {
        release();
      } else {
        std::erase(slot_waiters, w);
      }
      throw;
    }
  }

  void release() {
    if (!slot_waiters.empty()) {
      auto next = std::move(slot_waiters.front());
      slot_waiters.pop_front();
      next->granted = true;  // the slot goes to it: in_flight stays
      next->timer.cancel();
    } else {
      --in_flight;
    }
    slot_free.cancel();  // for the sweep waiting for its reads to finish
  }

  static asio::awaitable<void> read_detached(std::shared_ptr<Impl> self, KeyPtr k) {
    co_await self->poll_key(k, ObservationSource::poll);
    self->release();
  }

  // --- mapping sets --------------------------------------------------------------------------

  // One listing at a time: a sweep's and one a hint asked for must not interleave their
  // changes to the keys (each would report the other's additions again).
  asio::awaitable<void> list_sets() {
    while (listing) co_await listing_done.async_wait(kTuple);
    listing = true;
    try {
      co_await list_sets_once();
    } catch (...) {
      listing = false;
      listing_done.cancel();
      throw;
    }
    listing = false;
    listing_done.cancel();
  }

  asio::awaitable<void> list_sets_once() {
    // A copy: set_prefixes() may change the set while this loop waits for Vault.
    std::vector<std::string> folders(prefixes.begin(), prefixes.end());
    for (const auto& prefix : folders) {
      const std::string folder = strip_slashes(prefix);  // a named local: no temporary in co_await (g++ 12)
      auto where = co_await vault.locate(std::string_view(folder));
      if (!where) {
        spdlog::warn("watch: cannot list mapping set {}: {}", prefix, where.error().describe());
        continue;
      }
      // No co_await inside ?: — g++ 12 miscompiles it.
      Result<std::vector<std::string>> keys_found = std::vector<std::string>{};
      if (where->kv == KvVersion::v2) {
        keys_found = co_await vault.list_kv2(where->path.mount, where->path.key);
      } else {
        keys_found = co_await vault.list_kv1(where->path.mount, where->path.key);
      }
      if (prefixes.count(prefix) == 0) continue;  // removed meanwhile
      if (!keys_found) {
        spdlog::warn("watch: cannot list mapping set {}: {}", prefix, keys_found.error().describe());
        continue;
      }
      SetListing listing;
      listing.prefix = prefix;
      std::set<Gstin> found;
      for (const auto& name : *keys_found) {
        if (name.empty() || name.back() == '/') continue;  // sub-folders are not GSTINs
        auto g = Gstin::parse(name, options.gstin_mode);
        if (!g) {
          listing.invalid_keys.push_back(name);
          if (reported_invalid.insert(prefix + name).second) {
            spdlog::warn("watch: key {}{} under a mapping set is not a valid GSTIN and is ignored: {}", prefix, name,
                         g.error().message);
          }
          continue;
        }
        found.insert(*g);
      }
      // The members so far are the keys under the folder marked as listed.
      std::set<Gstin> before;
      for (auto it = keys.lower_bound(prefix); it != keys.end() && it->first.starts_with(prefix); ++it) {
        if (!it->second->in_set || !vault::directly_in_folder(it->first, prefix)) continue;
        if (auto g = Gstin::parse(it->first.substr(prefix.size()), options.gstin_mode)) before.insert(std::move(*g));
      }
      for (const auto& g : found) {
        if (before.count(g) == 0) listing.added.push_back(g);
      }
      for (const auto& g : before) {
        if (found.count(g) == 0) listing.removed.push_back(g);
      }
      // Watch exactly the listed keys of this set.
      for (auto it = keys.lower_bound(prefix); it != keys.end() && it->first.starts_with(prefix); ++it) {
        if (vault::directly_in_folder(it->first, prefix)) it->second->in_set = false;
      }
      for (const auto& g : found) key_for(prefix + g.str())->in_set = true;
      drop_unwatched();
      if (!listing.added.empty() || !listing.removed.empty()) {
        spdlog::info("watch: mapping set {}: {} GSTIN(s), {} added, {} removed{}", prefix, found.size(),
                     listing.added.size(), listing.removed.size(),
                     listing.invalid_keys.empty()
                         ? std::string()
                         : fmt::format(", {} invalid key(s) ignored", listing.invalid_keys.size()));
      }
      for (const auto& g : listing.removed) {
        spdlog::warn("watch: GSTIN {} is no longer under {}; it is not watched any more", g.str(), prefix);
      }
      listing.gstins.assign(found.begin(), found.end());  // sorted, as std::set iterates
      sink(WatchEvent(std::move(listing)));
    }
  }

  // --- sweeps ----------------------------------------------------------------------------------

  // A standby replica's watcher waits here: it reads nothing from Vault until it leads.
  static asio::awaitable<void> wait_while_paused(std::shared_ptr<Impl> self) {
    while (self->paused && !self->stopping) {
      self->resume_timer.expires_at(SteadyTime::max());
      co_await self->resume_timer.async_wait(kTuple);
    }
  }

  static asio::awaitable<void> run(std::shared_ptr<Impl> self) {
    co_await wait_while_paused(self);
    if (self->options.mode != Mode::poll) {
      self->events_running = true;
      asio::co_spawn(self->ex, events_loop(self),
                     asio::bind_cancellation_slot(self->events_stop.slot(), asio::detached));
      // Subscribe first, then sweep: wait (briefly) for the subscription to settle either way.
      self->sweep_timer.expires_after(std::chrono::seconds(5));
      if (!self->events_settled) co_await self->sweep_timer.async_wait(kTuple);
    }
    while (!self->stopping) {
      co_await wait_while_paused(self);
      if (self->stopping) break;
      const SteadyTime cycle_start = self->clock.now();
      // After a (re)subscribe the sweep is not spread: events missed before it must be caught now.
      const bool fast = std::exchange(self->fast_sweep, false);
      self->replan = false;
      co_await self->list_sets();
      const auto interval = self->interval_in_force();
      self->cycle_interval = interval;
      // Each key gets a slot spread evenly over the interval, plus jitter.
      std::vector<std::pair<std::chrono::steady_clock::duration, KeyPtr>> plan;
      const std::size_t n = self->keys.size();
      plan.reserve(n);  // held for the whole sweep: no room to spare (240 KiB at 10,000 keys)
      std::size_t i = 0;
      std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(self->options.jitter.count(), 0));
      for (auto& [path, key] : self->keys) {
        auto offset =
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval) * i / std::max<std::size_t>(n, 1);
        offset += std::chrono::milliseconds(jitter(self->rng));
        if (fast) offset = {};
        plan.emplace_back(std::min<std::chrono::steady_clock::duration>(offset, interval), key);
        ++i;
      }
      std::sort(plan.begin(), plan.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      const auto tick = std::min<std::chrono::steady_clock::duration>(kSweepTick, interval / 100);
      for (auto& [offset, key] : plan) {
        if (self->stopping) co_return;
        // Keys due within the next tick start together: one wake-up (timer, epoll) serves
        // several reads (10,000 keys a minute are 6 ms apart) and the reads stay spread.
        if (cycle_start + offset > self->clock.now() + tick) {
          self->sweep_timer.expires_after(cycle_start + offset - self->clock.now());
          auto [ec] = co_await self->sweep_timer.async_wait(kTuple);
          if (ec && self->stopping) co_return;
        }
        // The interval got shorter, or a full resync is wanted: this sweep starts over.
        if (self->replan) break;
        if (self->keys.count(key->path) == 0) continue;  // dropped meanwhile
        co_await self->acquire();
        asio::co_spawn(self->ex, read_detached(self, key), asio::detached);
      }
      if (self->replan) continue;
      // Wait for this sweep's reads before counting it.
      while (self->in_flight > 0) co_await self->slot_free.async_wait(kTuple);
      ++self->stats.sweeps;
      self->swept_once = true;
      self->check_first_sweep();
      self->sink(WatchEvent(SweepDone{self->stats.sweeps}));
      if (self->fast_sweep || self->replan) continue;  // a resubscribe or a resync happened during this sweep
      self->sweep_timer.expires_after(cycle_start + interval - self->clock.now());
      auto [ec] = co_await self->sweep_timer.async_wait(kTuple);
      if (ec && self->stopping) co_return;
    }
  }

  // Keys are polled at the resync interval while something else brings changes at once: the
  // event stream, or a healthy audit feed.
  [[nodiscard]] std::chrono::milliseconds interval_in_force() const {
    const bool followed = events_active || (follower && follower->healthy());
    return followed ? options.resync_interval : options.poll_interval;
  }

  // --- events (Vault Enterprise) -----------------------------------------------------------

  static asio::awaitable<void> events_loop(std::shared_ptr<Impl> self) {
    vault::EventSubscriber subscriber(self->vault);
    self->subscriber = &subscriber;
    // Named handlers: lambdas converted inside a co_await expression are destroyed twice by g++ 12.
    vault::EventSubscriber::EventHandler on_event = [self](const vault::KvEvent& e) { self->on_event(e); };
    vault::EventSubscriber::SubscribedHandler on_subscribed = [self] { self->on_subscribed(); };
    auto r = co_await subscriber.run(std::move(on_event), std::move(on_subscribed));
    self->subscriber = nullptr;
    self->events_running = false;  // from here on its signal must not be emitted
    self->events_active = false;
    self->events_settled = true;
    if (!r && r.error().is(Errc::vault_events_unavailable)) {
      if (self->options.mode == Mode::events) {
        self->events_problem = "[watch] mode = \"events\" but this Vault offers no event stream (" + r.error().message +
                               "); polling every " + format_duration(self->options.resync_interval);
        spdlog::error("watch: {}", self->events_problem);
      } else {
        spdlog::info("watch: this Vault offers no event stream; polling every {}",
                     format_duration(self->options.poll_interval));
      }
      self->sweep_timer.cancel();  // polling takes over at the poll interval
    }
  }

  void on_subscribed() {
    const bool first = !events_active;
    events_active = true;
    events_settled = true;
    ++stats.event_reconnects;
    spdlog::info("watch: subscribed to Vault events; {} sweep now, then every {}", first ? "full" : "catch-up",
                 format_duration(options.resync_interval));
    fast_sweep = true;
    sweep_timer.cancel();
  }

  void on_event(const vault::KvEvent& e) {
    ++stats.events;
    if (paused) return;         // a standby: the leader reads it
    if (e.key.empty()) return;  // mount-wide (config-write)
    const std::string path = e.mount + "/" + e.key;
    auto it = keys.find(path);
    if (it == keys.end()) {
      // A new key under a mapping set: list again soon.
      for (const auto& prefix : prefixes) {
        if (path.starts_with(prefix)) {
          fast_sweep = true;
          sweep_timer.cancel();
          break;
        }
      }
      return;
    }
    asio::co_spawn(ex, read_on_event(shared_from_this(), it->second), asio::detached);
  }

  static asio::awaitable<void> read_on_event(std::shared_ptr<Impl> self, KeyPtr k) {
    co_await self->acquire();
    co_await self->poll_key(k, ObservationSource::event);
    self->release();
  }

  // --- audit feed ------------------------------------------------------------------------------

  // What the feed matches entries against: the keys named by mappings (keys found under a
  // mapping set are matched by their folder), the folders and the mounts located so far.
  void publish_routes() {
    if (!follower) return;
    auto routes = std::make_shared<AuditRoutes>();
    routes->vault_namespace = vault.config().vault_namespace.str();
    for (const auto& [path, key] : keys) {
      if (key->explicit_key) routes->keys.emplace(path);
    }
    routes->folders.assign(prefixes.begin(), prefixes.end());
    routes->mounts.insert(mounts.begin(), mounts.end());
    follower->feed()->set_routes(std::move(routes));
  }

  void note_mount(const std::string& mount, KvVersion kv) {
    auto [it, added] = mounts.try_emplace(mount, kv);
    if (!added && it->second == kv) return;
    it->second = kv;
    publish_routes();
  }

  asio::awaitable<std::optional<bool>> read(std::string path, ObservationSource source) override {
    auto it = keys.find(path);
    if (it == keys.end() || stopping) co_return std::nullopt;
    if (paused) {
      // A standby reads nothing: what the audit feed says goes to whoever leads.
      if (source == ObservationSource::event && standby_hints) standby_hints(path);
      co_return std::nullopt;
    }
    auto self = shared_from_this();  // the read may outlive the watcher's run
    KeyPtr k = it->second;
    co_await acquire();
    auto news = co_await poll_key(k, source);
    release();
    co_return news;
  }
  bool watches(std::string_view path) const override { return keys.find(path) != keys.end(); }
  bool in_set_folder(std::string_view path) const override {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](const std::string& p) { return vault::directly_in_folder(path, p); });
  }
  asio::awaitable<void> list_sets_now() override {
    auto self = shared_from_this();
    co_await list_sets();
  }
  void full_sweep_now() override {
    fast_sweep = true;
    replan = true;
    sweep_timer.cancel();
  }
  void health_changed(bool healthy) override {
    sink(WatchEvent(AuditFeedChanged{healthy}));
    if (healthy || interval_in_force() >= cycle_interval) return;
    replan = true;  // polling speeds up at once
    sweep_timer.cancel();
  }
  std::optional<std::string> key_after(const std::string& after) const override {
    if (keys.empty()) return std::nullopt;
    auto it = keys.upper_bound(after);
    if (it == keys.end()) it = keys.begin();
    return std::string(it->first);
  }

  // The run is over (returned or cancelled): no more sweeps, and the event stream stops.
  void finish() {
    stopping = true;
    if (follower) follower->stop();
    // Only while the events coroutine runs: emitting into a finished co_spawn is undefined.
    if (events_running) events_stop.emit(asio::cancellation_type::terminal);
  }

  bool all_answered() const {
    return std::all_of(keys.begin(), keys.end(), [](const auto& kv) { return kv.second->answered; });
  }

  asio::any_io_executor ex;
  vault::Client& vault;
  WatcherOptions options;
  Clock& clock;
  Sink sink;
  std::mt19937_64 rng;
  std::map<std::string_view, KeyPtr> keys;  // keys view each Key's own path
  std::set<std::string> prefixes;           // the mapping sets' folders
  std::set<std::string> reported_invalid;
  int in_flight = 0;
  std::deque<std::shared_ptr<SlotWaiter>> slot_waiters;
  asio::steady_timer slot_free;
  asio::steady_timer sweep_timer;
  bool stopping = false;
  bool paused = false;  // a standby replica: nothing is read until resume()
  std::function<void(const std::string&)> standby_hints;
  asio::steady_timer resume_timer;
  bool first_sweep = false;
  bool swept_once = false;
  bool fast_sweep = true;  // the first sweep catches up at once (bounded by the concurrency cap)
  bool events_settled = false;
  bool events_running = false;
  std::string events_problem;
  vault::EventSubscriber* subscriber = nullptr;
  asio::cancellation_signal events_stop;
  bool events_active = false;
  WatcherStats stats;
  std::shared_ptr<detail::AuditFollower> follower;
  std::map<std::string, KvVersion> mounts;      // located while following a feed
  bool replan = false;                          // the sweep under way starts over
  std::chrono::milliseconds cycle_interval{0};  // the interval of the sweep under way
  bool listing = false;                         // list_sets() is under way
  asio::steady_timer listing_done{ex, SteadyTime::max()};
};

Watcher::Watcher(asio::any_io_executor executor, vault::Client& vault, WatcherOptions options, Clock& clock, Sink sink)
    : impl_(std::make_shared<Impl>(std::move(executor), vault, options, clock, std::move(sink))) {}

Watcher::~Watcher() {
  impl_->stopping = true;
  if (impl_->follower) impl_->follower->stop();
  impl_->sweep_timer.cancel();
  impl_->slot_free.cancel();
  impl_->resume_timer.cancel();
}

void Watcher::set_keys(std::vector<std::string> paths) { impl_->set_keys(std::move(paths)); }
void Watcher::set_prefixes(std::vector<std::string> prefixes) { impl_->set_prefixes(std::move(prefixes)); }
asio::awaitable<void> Watcher::run() {
  auto impl = impl_;
  // Explicit try/catch rather than an RAII guard: g++ 12 destroys coroutine locals out of order.
  try {
    co_await Impl::run(impl);
  } catch (...) {
    impl->finish();
    throw;
  }
  impl->finish();
}

asio::awaitable<std::vector<ReadResult>> Watcher::read_now(std::vector<std::string> paths, bool force, bool emit) {
  auto impl = impl_;
  std::vector<KeyPtr> targets;
  if (paths.empty()) {
    for (auto& [path, key] : impl->keys) targets.push_back(key);
  } else {
    for (const auto& p : paths) {
      auto it = impl->keys.find(p);
      if (it != impl->keys.end()) targets.push_back(it->second);
    }
  }
  std::vector<ReadResult> out;
  for (auto& k : targets) {
    co_await impl->acquire();
    auto r = co_await impl->read_key(k, force, ObservationSource::trigger, emit);
    impl->release();
    out.push_back(std::move(r));
  }
  co_return out;
}

void Watcher::attach_audit_feed(std::shared_ptr<AuditFeed> feed, AuditFollowOptions options) {
  impl_->follower = std::make_shared<detail::AuditFollower>(impl_->ex, impl_, std::move(feed), std::move(options),
                                                            impl_->options.poll_interval,
                                                            impl_->options.resync_interval, impl_->clock);
  impl_->publish_routes();
  impl_->follower->start();
}

void Watcher::pause() {
  impl_->paused = true;
  impl_->replan = true;  // a sweep under way stops at its next key
  impl_->sweep_timer.cancel();
}

void Watcher::resume() {
  if (!impl_->paused) return;
  impl_->paused = false;
  impl_->fast_sweep = true;  // the new leader reads every key at once (bounded by the concurrency cap)
  impl_->replan = true;
  impl_->resume_timer.cancel();
  impl_->sweep_timer.cancel();
}

bool Watcher::paused() const noexcept { return impl_->paused; }

void Watcher::set_standby_hints(std::function<void(const std::string&)> sink) {
  impl_->standby_hints = std::move(sink);
}

void Watcher::hint_changed(std::string_view path) {
  if (impl_->paused) return;
  if (impl_->follower) impl_->follower->hint_changed(path);
}

AuditFeedHealth Watcher::audit_feed_health() const {
  return impl_->follower ? impl_->follower->health() : AuditFeedHealth{};
}

bool Watcher::first_sweep_done() const noexcept { return impl_->first_sweep; }

std::map<std::string, std::string> Watcher::problems() const {
  std::map<std::string, std::string> out;
  if (!impl_->events_problem.empty()) out.emplace("events", impl_->events_problem);
  for (const auto& [path, key] : impl_->keys) {
    if (key->last_error) out.emplace(std::string(path), key->last_error->describe());
  }
  return out;
}

WatcherStats Watcher::stats() const {
  WatcherStats s = impl_->stats;
  s.events_active = impl_->events_active;
  s.keys = impl_->keys.size();
  return s;
}

}  // namespace nicsync::watch
