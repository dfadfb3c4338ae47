// The sync engine. One coroutine per delivery; pairs are serialised (one delivery each at a
// time); each destination has a lane with a FIFO of ready pairs and a push gate: a concurrency
// cap, a token bucket and a circuit breaker that admit the pushes themselves. The Vault read and
// the two ledger commits of a delivery (intent before, outcome after) happen outside the gate,
// for a bounded number of deliveries ahead, so that waiting for fsync never holds a provider
// slot. Retries wait in a heap keyed by due time. Everything runs on the one event loop; the
// ledger's writes complete when durable (its own thread does the fsync).
#include "nicsync/sync/engine.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <numeric>
#include <queue>
#include <random>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "destinations/text.hpp"
#include "nicsync/core/duration.hpp"
#include "nicsync/core/timestamp.hpp"
#include "nicsync/sync/limits.hpp"

namespace nicsync::sync {
namespace asio = boost::asio;
using ledger::HistoryEntry;
using ledger::Outcome;
using ledger::PairRecord;
using ledger::PairState;
using ledger::VersionRef;
using SystemTime = std::chrono::system_clock::time_point;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// What a pair should hold, from the newest observation not yet dealt with.
struct Target {
  std::int64_t version = 0;
  std::string lineage;
  SourceState state = SourceState::present;
  bool force = false;
  SystemTime written_at{};
  SteadyTime observed_at{};
  std::uint64_t serial = 0;  // a new observation replaces the target with a higher serial
};

struct Lane;
struct Pair;

/// A delivery waiting at its lane's push gate.
struct PushWaiter {
  PushWaiter(const asio::any_io_executor& ex, std::shared_ptr<Pair> p)
      : timer(ex, SteadyTime::max()), pair(std::move(p)) {}
  asio::steady_timer timer;  // cancelled when the slot is granted
  std::shared_ptr<Pair> pair;
  bool granted = false;
};

/// The texts of a pair's last error.
struct LastError {
  std::string error_class;
  std::string code;
  std::string provider;
  std::string message;
};

/// A text kept on the heap only when there is one, and copied with its owner: what HeldLineage
/// and HeldVersion fall back to for the texts they cannot hold compactly.
class SpareText {
 public:
  SpareText() = default;
  explicit SpareText(std::string_view text) : text_(text.empty() ? nullptr : std::make_unique<std::string>(text)) {}
  SpareText(const SpareText& o) : text_(o.text_ ? std::make_unique<std::string>(*o.text_) : nullptr) {}
  SpareText(SpareText&&) noexcept = default;
  SpareText& operator=(SpareText o) noexcept {
    text_ = std::move(o.text_);
    return *this;
  }
  ~SpareText() = default;

  [[nodiscard]] std::string_view view() const noexcept { return text_ ? std::string_view(*text_) : std::string_view(); }

 private:
  std::unique_ptr<std::string> text_;
};

/// A lineage (a KV v2 key's created_time) as a pair holds it. Vault writes them in one shape,
/// UTC with the fraction's trailing zeros cut (Go's RFC3339Nano, "2026-11-25T23:30:00.1234Z");
/// such a text is held as its nanoseconds (8 bytes, where the text took a 32-byte string and a
/// 48-byte heap block). Any other text (a KV v1 fingerprint, an offset) is held as it is.
class HeldLineage {
 public:
  HeldLineage() = default;
  explicit HeldLineage(std::string_view text) {
    if (auto t = parse_rfc3339(text); t && format_rfc3339_nano(*t) == text) {
      ns_ = t->time_since_epoch().count();
      compact_ = true;
    } else {
      text_ = SpareText(text);
    }
  }

  [[nodiscard]] std::string text() const {
    if (compact_) return format_rfc3339_nano(SystemTimeNs(SystemTimeNs::duration(ns_)));
    return std::string(text_.view());
  }
  /// The time it names, if it is one.
  [[nodiscard]] std::optional<SystemTimeNs> time() const {
    if (compact_) return SystemTimeNs(SystemTimeNs::duration(ns_));
    return parse_rfc3339(text_.view());
  }
  [[nodiscard]] bool operator==(std::string_view text) const {
    if (!compact_) return text_.view() == text;
    auto t = parse_rfc3339(text);
    return t && t->time_since_epoch().count() == ns_ && format_rfc3339_nano(*t) == text;
  }

 private:
  std::int64_t ns_ = 0;
  bool compact_ = false;
  SpareText text_;
};

/// A ledger::VersionRef as a pair holds it: the fingerprint as its 32 bytes rather than 64 hex
/// characters on the heap (~100 bytes a pair less). Any other fingerprint text (an injected
/// fingerprinter's, in tests) is kept as it is, on the heap.
struct HeldVersion {
  std::int64_t version = 0;
  HeldLineage lineage;
  std::array<unsigned char, 32> fingerprint{};
  bool has_fingerprint = false;  // `fingerprint` holds one
  SpareText fingerprint_text;    // one that is not 64 lower-case hex digits

  HeldVersion() = default;
  HeldVersion(std::int64_t v, std::string_view l, std::string_view fp) : version(v), lineage(l) {
    has_fingerprint = from_hex(fp, fingerprint);
    if (!has_fingerprint) fingerprint_text = SpareText(fp);
  }
  explicit HeldVersion(const VersionRef& r) : HeldVersion(r.version, r.lineage, r.fingerprint) {}

  [[nodiscard]] bool same_fingerprint(std::string_view fp) const {
    if (!has_fingerprint) return !fingerprint_text.view().empty() && fingerprint_text.view() == fp;
    std::array<unsigned char, 32> other{};
    return from_hex(fp, other) && other == fingerprint;
  }
  [[nodiscard]] VersionRef ref() const {
    return VersionRef{version, lineage.text(),
                      has_fingerprint ? destinations::detail::to_hex(fingerprint.data(), fingerprint.size())
                                      : std::string(fingerprint_text.view())};
  }

  static bool from_hex(std::string_view hex, std::array<unsigned char, 32>& out) {
    if (hex.size() != 64) return false;
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;  // the fingerprinter writes lower case only
    };
    for (std::size_t i = 0; i < 32; ++i) {
      const int hi = nibble(hex[2 * i]);
      const int lo = nibble(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return false;
      out[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    return true;
  }
};

/// A pair's ledger::PairRecord as the engine holds it, for months, for up to 100,000 pairs that
/// are nearly all in sync: without the destination, GSTIN and Vault path (the pair's config has
/// them), with the last error's texts and a pending version allocated only while there is one.
struct HeldRecord {
  PairState state = PairState::pending;
  bool push_in_flight = false;
  int attempts = 0;
  std::optional<HeldVersion> applied;
  std::unique_ptr<HeldVersion> pending;
  SystemTime applied_at{};
  SystemTime first_attempt_at{};
  SystemTime next_attempt_at{};
  SystemTime updated_at{};
  std::unique_ptr<LastError> error;

  HeldRecord() = default;
  explicit HeldRecord(PairRecord r)
      : state(r.state),
        push_in_flight(r.push_in_flight),
        attempts(r.attempts),
        applied(r.applied ? std::optional<HeldVersion>(HeldVersion(*r.applied)) : std::nullopt),
        pending(r.pending ? std::make_unique<HeldVersion>(*r.pending) : nullptr),
        applied_at(r.applied_at),
        first_attempt_at(r.first_attempt_at),
        next_attempt_at(r.next_attempt_at),
        updated_at(r.updated_at) {
    if (!r.last_error_class.empty() || !r.last_error_code.empty() || !r.last_error_provider.empty() ||
        !r.last_error_message.empty()) {
      error = std::make_unique<LastError>(LastError{std::move(r.last_error_class), std::move(r.last_error_code),
                                                    std::move(r.last_error_provider), std::move(r.last_error_message)});
    }
  }

  /// The error texts, allocated if there were none.
  LastError& set_error() {
    if (!error) error = std::make_unique<LastError>();
    return *error;
  }

  template <class Config>
  [[nodiscard]] PairRecord to_record(const Config& config) const {
    PairRecord r;
    r.destination = config.destination();
    r.gstin = config.gstin.str();
    r.vault_path = config.path();
    r.state = state;
    if (applied) r.applied = applied->ref();
    r.applied_at = applied_at;
    if (pending) r.pending = pending->ref();
    r.push_in_flight = push_in_flight;
    r.attempts = attempts;
    r.first_attempt_at = first_attempt_at;
    r.next_attempt_at = next_attempt_at;
    if (error) {
      r.last_error_class = error->error_class;
      r.last_error_code = error->code;
      r.last_error_provider = error->provider;
      r.last_error_message = error->message;
    }
    r.updated_at = updated_at;
    return r;
  }
};

/// A PairConfig as a pair holds it: what all the pairs of a mapping set have in common
/// (destination, mount, KV version, field names; 160 bytes) is held once and shared.
class HeldConfig {
 public:
  struct Shared {
    std::string destination;
    std::string mount;
    KvVersion kv = KvVersion::v2;
    std::string username_field;
    std::string password_field;
    auto tie() const { return std::tie(destination, mount, kv, username_field, password_field); }
  };
  /// One `Shared` per distinct value, so that pairs of the same set use the same one.
  class Interner {
   public:
    std::shared_ptr<const Shared> get(const PairConfig& c) {
      Shared s{c.destination, c.source.mount, c.source.kv, c.source.username_field, c.source.password_field};
      for (const auto& have : known_) {
        if (have->tie() == s.tie()) return have;
      }
      known_.push_back(std::make_shared<const Shared>(std::move(s)));
      return known_.back();
    }
    /// Forgets the values no pair uses any more.
    void prune() {
      std::erase_if(known_, [](const auto& p) { return p.use_count() == 1; });
    }

   private:
    std::vector<std::shared_ptr<const Shared>> known_;  // a handful: one per set and destination
  };

  HeldConfig(PairConfig c, Interner& interner)
      : gstin(std::move(c.gstin)), key(std::move(c.source.key)), shared_(interner.get(c)) {}

  Gstin gstin;
  std::string key;  ///< below the mount, e.g. "nic/07AAFCD5862R1ZX"

  [[nodiscard]] const std::string& destination() const noexcept { return shared_->destination; }
  [[nodiscard]] const std::string& mount() const noexcept { return shared_->mount; }
  [[nodiscard]] KvVersion kv() const noexcept { return shared_->kv; }
  [[nodiscard]] SourceRef source() const {
    return SourceRef{shared_->mount, key, shared_->kv, shared_->username_field, shared_->password_field};
  }
  [[nodiscard]] std::string path() const { return shared_->mount + "/" + key; }
  [[nodiscard]] PairConfig full() const { return PairConfig{shared_->destination, gstin, source()}; }

 private:
  std::shared_ptr<const Shared> shared_;
};

struct Pair {
  HeldConfig config;
  HeldRecord record;
  std::unique_ptr<Target> target;  // allocated while there is one (memory: most pairs are idle)
  Lane* lane = nullptr;
  bool queued = false;
  bool in_flight = false;  // a delivery is under way (one per pair at a time)
  bool push_slot = false;  // it holds one of its lane's push slots
  bool removed = false;
  bool kept = false;   // set_pairs: still mapped
  bool dirty = false;  // record changed but its ledger write failed
  std::uint64_t retry_generation = 0;
  std::optional<SteadyTime> due;
  std::optional<SystemTime> unsynced_since;
  asio::cancellation_signal cancel;

  explicit Pair(HeldConfig c) : config(std::move(c)) {}
  [[nodiscard]] std::string key() const { return config.destination() + "\n" + config.gstin.str(); }
  /// The record as the ledger and the views know it.
  [[nodiscard]] PairRecord full_record() const { return record.to_record(config); }
};

/// (destination, GSTIN) order: how the engine keeps its pairs.
bool id_less(const PairConfig& a, const PairConfig& b) {
  return std::tie(a.destination, a.gstin.str()) < std::tie(b.destination, b.gstin.str());
}

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

namespace {

/// (Vault key, mount) order: how observations find their pairs.
bool path_less(const Pair& a, const Pair& b) {
  return std::tie(a.config.key, a.config.mount()) < std::tie(b.config.key, b.config.mount());
}

using PairPtr = std::shared_ptr<Pair>;

struct Lane {
  Lane(asio::any_io_executor ex, std::shared_ptr<destinations::Destination> d, LanePolicy p, SteadyTime now)
      : dest(std::move(d)),
        policy(p),
        bucket(p.rate_per_second, p.burst, now),
        breaker(p.breaker_threshold, p.breaker_open_for),
        wake(std::move(ex)) {}
  std::shared_ptr<destinations::Destination> dest;
  LanePolicy policy;
  TokenBucket bucket;
  CircuitBreaker breaker;
  std::deque<PairPtr> ready;  // waiting for a delivery to start
  int in_flight = 0;          // deliveries under way (reading, waiting at the gate, pushing, recording)
  int pushing = 0;            // pushes admitted by the gate and not finished
  std::deque<std::shared_ptr<PushWaiter>> gate;  // prepared deliveries waiting for a push slot
  asio::steady_timer wake;
  bool wake_armed = false;
  LaneMetrics metrics;

  [[nodiscard]] int delivery_cap() const noexcept { return policy.deliveries_under_way(); }
};

struct RetryEntry {
  SteadyTime due;
  std::uint64_t generation;
  PairPtr pair;
  bool operator>(const RetryEntry& o) const { return due > o.due; }
};

/// Is (version, lineage) a newer, equal or older version than `ref`? Lineages are ordered by
/// their created_time (a key deleted and recreated starts again at version 1).
int compare_version(std::int64_t version, std::string_view lineage, const HeldVersion& ref) {
  if (ref.lineage == lineage) return version < ref.version ? -1 : (version > ref.version ? 1 : 0);
  auto a = parse_rfc3339(lineage);
  auto b = ref.lineage.time();
  if (a && b) return *a > *b ? 1 : -1;
  return 1;  // unknown lineage formats: treat a different one as news rather than lose it
}

std::string describe_pair(const Pair& p) {
  return fmt::format("gstin={} destination={}", p.config.gstin.str(), p.config.destination());
}

}  // namespace

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  Impl(asio::any_io_executor executor, ledger::Store& s, CredentialReader& r, FingerprintFn f, Clock& c,
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
        housekeeping(ex) {}

  // --- configuration -------------------------------------------------------------------

  void set_destinations(std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> list) {
    for (auto& [dest, policy] : list) {
      auto it = lanes.find(dest->name());
      if (it == lanes.end()) {
        lanes.emplace(dest->name(), std::make_unique<Lane>(ex, dest, policy, clock.now()));
      } else {
        Lane& lane = *it->second;
        lane.dest = dest;
        if (lane.policy.rate_per_second != policy.rate_per_second || lane.policy.burst != policy.burst) {
          lane.bucket = TokenBucket(policy.rate_per_second, policy.burst, clock.now());
        }
        if (lane.policy.breaker_threshold != policy.breaker_threshold ||
            lane.policy.breaker_open_for != policy.breaker_open_for) {
          lane.breaker = CircuitBreaker(policy.breaker_threshold, policy.breaker_open_for);
        }
        lane.policy = policy;
      }
    }
    for (auto& [name, lane] : lanes) pump(*lane);
  }

  Result<void> set_pairs(std::vector<PairConfig> list) {
    for (const auto& c : list) {
      if (lanes.find(c.destination) == lanes.end()) {
        return Error(Errc::invalid_argument, fmt::format("mapping for GSTIN {} names destination \"{}\", which is "
                                                         "not configured",
                                                         c.gstin.str(), c.destination));
      }
    }
    // In (destination, GSTIN) order, checked for duplicates before anything changes.
    std::sort(list.begin(), list.end(), [](const PairConfig& a, const PairConfig& b) { return id_less(a, b); });
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
        const std::string key = c.destination + "\n" + c.gstin.str();
        p = std::make_shared<Pair>(HeldConfig(std::move(c), interner));
        if (auto old = orphans.find(key); old != orphans.end()) {
          p->record = HeldRecord(std::move(old->second.record));
          const bool from_ledger = old->second.from_ledger;
          orphans.erase(old);
          // A pair that appears after start-up (a mapping-set member listed from Vault) takes up
          // the work its ledger row left unfinished, as load() does for the configured ones.
          if (from_ledger && recover(*p)) adopted.push_back(p);
        } else {
          p->record.state = PairState::pending;
        }
      }
      p->lane = lanes.at(p->config.destination()).get();
      next.push_back(std::move(p));
    }
    for (auto& p : pairs) {
      if (!p->kept) {
        p->removed = true;
        orphans.emplace(p->key(), Orphan{p->full_record(), false});
      }
    }
    pairs = std::move(next);
    by_path = pairs;
    std::sort(by_path.begin(), by_path.end(), [](const PairPtr& a, const PairPtr& b) { return path_less(*a, *b); });
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

  Result<void> load() {
    auto records = store.load_pairs();
    if (!records) return records.error();
    for (auto& rec : *records) {
      auto it = find_pair(rec.destination, rec.gstin);
      if (it == pairs.end()) {
        // Not mapped (yet): mapping-set members appear once Vault has been listed.
        std::string key = rec.destination + "\n" + rec.gstin;
        orphans.emplace(std::move(key), Orphan{std::move(rec), true});
        continue;
      }
      const PairPtr& p = *it;
      p->record = HeldRecord(std::move(rec));
      if (recover(*p)) recovered.push_back(p);
    }
    return {};
  }

  // Takes up the ledger's record of a pair at start-up: a push that was in flight when the last
  // run stopped is pushed again (the one repeat a crash may cost), a version waiting for its
  // first or next attempt gets it. Returns whether the pair has work now.
  bool recover(Pair& p) {
    if (p.record.state != PairState::in_sync && p.record.state != PairState::source_deleted) {
      p.unsynced_since = p.record.first_attempt_at != SystemTime{} ? p.record.first_attempt_at : clock.system_now();
    }
    if (!p.record.pending) return false;
    const bool was_in_flight = p.record.push_in_flight;
    const bool waiting = p.record.state == PairState::pending || p.record.state == PairState::retrying;
    if (!was_in_flight && !waiting) return false;  // parked/rejected: waits for news or an operator
    Target t;
    t.version = p.record.pending->version;
    t.lineage = p.record.pending->lineage.text();
    t.observed_at = clock.now();
    t.serial = ++serial;
    p.target = std::make_unique<Target>(t);
    if (was_in_flight) {
      // The intent is recorded before the push waits for its slot: it may not have gone out.
      spdlog::warn(
          "{} version={} attempt={}: nicsyncd stopped before the outcome of this push was recorded; pushing "
          "it again",
          describe_pair(p), t.version, p.record.attempts + 1);
      ++redeliveries_after_crash;
    }
    return true;
  }

  void schedule_recovered(const PairPtr& p) {
    if (p->removed) return;
    const SystemTime now_sys = clock.system_now();
    if (p->record.push_in_flight || p->record.next_attempt_at <= now_sys) {
      schedule_now(p);
    } else {
      schedule_retry(p, clock.now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                          p->record.next_attempt_at - now_sys));
    }
  }

  void start() {
    started = true;
    for (auto& p : recovered) schedule_recovered(p);
    recovered.clear();
    for (auto& [name, lane] : lanes) pump(*lane);
    asio::co_spawn(ex, housekeeping_loop(shared_from_this()), asio::detached);
  }

  // --- observations ----------------------------------------------------------------------

  void observe(const Observation& obs) {
    if (stopping) return;
    auto it = std::lower_bound(by_path.begin(), by_path.end(), obs.key,
                               [](const PairPtr& p, const std::string& key) { return p->config.key < key; });
    for (; it != by_path.end() && (*it)->config.key == obs.key; ++it) {
      if ((*it)->config.mount() == obs.mount) apply(*it, obs);
    }
  }

  void apply(const PairPtr& p, const Observation& obs) {
    Target t;
    t.version = obs.version;
    t.lineage = obs.lineage;
    t.state = obs.state;
    t.force = obs.force;
    t.written_at = obs.written_at;
    t.observed_at = clock.now();
    if (p->config.kv() == KvVersion::v1) {
      // KV v1 has no versions: every observation is read and compared by fingerprint.
      t.version = 0;
      t.lineage.clear();
    }
    HeldRecord& rec = p->record;
    if (t.state != SourceState::present) {
      const bool known = rec.state == PairState::source_deleted && !rec.pending && !p->target && !p->in_flight;
      if (known) return;
    } else if (p->config.kv() == KvVersion::v2 && !t.force) {
      // Only news counts: a stale or repeated observation changes nothing.
      const HeldVersion* ref = nullptr;
      HeldVersion target_ref;
      if (p->target && p->target->state == SourceState::present) {
        target_ref = HeldVersion(p->target->version, p->target->lineage, {});
        ref = &target_ref;
      } else if (p->target) {
        ref = nullptr;  // the target is a deletion: a readable version again is news
      } else if (rec.pending && (rec.state == PairState::parked || rec.state == PairState::rejected)) {
        // Parked and rejected versions wait for a newer one. (A pending or retrying version
        // without a target has nothing working on it: seeing it again is news.)
        ref = &*rec.pending;
      } else if (rec.applied) {
        ref = &*rec.applied;
      }
      if (ref != nullptr) {
        const int c = compare_version(t.version, t.lineage, *ref);
        if (c < 0) return;
        if (c == 0 && rec.state != PairState::source_deleted && !(p->target && p->target->force)) return;
      }
    }
    t.serial = ++serial;
    if (p->target && p->target->force) t.force = true;  // a pending operator force survives coalescing
    p->target = std::make_unique<Target>(t);
    if (!p->unsynced_since && t.state == SourceState::present) p->unsynced_since = clock.system_now();
    if (p->in_flight) return;  // it picks the new target up when the current push finishes
    schedule_now(p);
  }

  Result<void> retry(std::string_view destination, const Gstin& gstin) {
    auto it = find_pair(destination, gstin.str());
    if (it == pairs.end()) {
      return Error(Errc::invalid_argument,
                   fmt::format("GSTIN {} is not mapped to destination \"{}\"", gstin.str(), destination));
    }
    PairPtr p = *it;
    HeldRecord& rec = p->record;
    if (!rec.pending ||
        (rec.state != PairState::parked && rec.state != PairState::rejected && rec.state != PairState::retrying)) {
      return Error(Errc::invalid_argument, fmt::format("GSTIN {} at destination \"{}\" has nothing to retry (state {})",
                                                       gstin.str(), destination, ledger::to_string(rec.state)));
    }
    if (!p->target) {
      Target t;
      t.version = rec.pending->version;
      t.lineage = rec.pending->lineage.text();
      t.observed_at = clock.now();
      t.serial = ++serial;
      p->target = std::make_unique<Target>(t);
    }
    spdlog::info("{} version={}: operator retry", describe_pair(*p), rec.pending->version);
    rec.attempts = 0;
    rec.first_attempt_at = {};
    rec.next_attempt_at = {};
    rec.state = PairState::pending;
    HistoryEntry h = history_for(*p, rec.pending->version, rec.pending->lineage.text(), Outcome::operator_retry);
    asio::co_spawn(ex, write_detached(shared_from_this(), p, std::move(h)), asio::detached);
    if (!p->in_flight) schedule_now(p);
    return {};
  }

  // --- scheduling ------------------------------------------------------------------------

  void schedule_now(const PairPtr& p) {
    if (p->removed || p->in_flight || p->queued || stopping) return;
    ++p->retry_generation;
    p->due.reset();
    p->queued = true;
    p->lane->ready.push_back(p);
    pump(*p->lane);
  }

  void schedule_retry(const PairPtr& p, SteadyTime due) {
    ++p->retry_generation;
    p->due = due;
    retries.push(RetryEntry{due, p->retry_generation, p});
    arm_retry_timer();
  }

  void arm_retry_timer() {
    if (retries.empty() || stopping) return;
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

  void run_due_retries() {
    const SteadyTime now = clock.now();
    while (!retries.empty() && retries.top().due <= now) {
      RetryEntry e = retries.top();
      retries.pop();
      if (e.generation != e.pair->retry_generation || e.pair->removed) continue;  // superseded
      schedule_now(e.pair);
    }
    arm_retry_timer();
  }

  // Starts deliveries from the lane's ready queue (up to its delivery cap), then admits waiting
  // pushes through the gate.
  void pump(Lane& lane) {
    while (!stopping && !lane.ready.empty() && lane.in_flight < lane.delivery_cap()) {
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
    open_gate(lane);
  }

  // Admits waiting pushes in FIFO order while the concurrency cap, the breaker and the rate
  // limit allow. (Also while stopping: deliveries already prepared may push within the grace.)
  void open_gate(Lane& lane) {
    while (!lane.gate.empty() && lane.pushing < lane.policy.concurrency) {
      const SteadyTime now = clock.now();
      if (!lane.breaker.allow(now)) {
        // Half-open with its probe out: the probe's end opens the gate again, no timer needed
        // (one would fire every millisecond until then).
        if (lane.breaker.state(now) != CircuitBreaker::State::half_open) {
          wake_lane(lane, lane.breaker.retry_at() - now);
        }
        break;
      }
      if (!lane.bucket.try_take(now)) {
        lane.breaker.on_abandoned();
        wake_lane(lane, lane.bucket.wait_time(now));
        break;
      }
      auto w = std::move(lane.gate.front());
      lane.gate.pop_front();
      ++lane.pushing;
      w->pair->push_slot = true;
      w->granted = true;
      w->timer.cancel();
    }
  }

  // Waits at the lane's gate until a push slot is granted (p->push_slot is then set).
  asio::awaitable<void> acquire_push_slot(PairPtr p) {
    Lane& lane = *p->lane;
    auto w = std::make_shared<PushWaiter>(ex, p);
    lane.gate.push_back(w);
    open_gate(lane);
    // try/catch rather than an RAII guard (g++ 12): a delivery cancelled while waiting leaves
    // the queue; one cancelled just after its grant gives the slot back in deliver().
    try {
      while (!w->granted) co_await w->timer.async_wait(kTuple);
    } catch (...) {
      if (!w->granted) std::erase(lane.gate, w);
      throw;
    }
  }

  // Gives a push slot back. `told`: the breaker learnt the push's outcome (else it is told the
  // attempt was abandoned, and the rate-limit token goes back).
  void release_push_slot(Pair& p, bool told) {
    if (!p.push_slot) return;
    p.push_slot = false;
    Lane& lane = *p.lane;
    --lane.pushing;
    if (!told) {
      lane.breaker.on_abandoned();
      lane.bucket.refund();
    }
    open_gate(lane);
  }

  void wake_lane(Lane& lane, std::chrono::steady_clock::duration delay) {
    if (lane.wake_armed) return;
    lane.wake_armed = true;
    lane.wake.expires_after(std::max<std::chrono::steady_clock::duration>(delay, std::chrono::milliseconds(1)));
    lane.wake.async_wait([weak = weak_from_this(), l = &lane](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      l->wake_armed = false;
      if (!ec) self->pump(*l);
    });
  }

  // --- one delivery ----------------------------------------------------------------------

  static asio::awaitable<void> deliver(std::shared_ptr<Impl> self, PairPtr p) {
    const Target t = *p->target;
    try {
      co_await self->attempt(p, t);
    } catch (const boost::system::system_error& e) {
      if (e.code() != asio::error::operation_aborted) {
        spdlog::error("{} version={} attempt={}: delivery failed unexpectedly: {}", describe_pair(*p), t.version,
                      p->record.attempts + 1, e.what());
      }
    } catch (const std::exception& e) {
      spdlog::error("{} version={} attempt={}: delivery failed unexpectedly: {}", describe_pair(*p), t.version,
                    p->record.attempts + 1, e.what());
    }
    // A push that did not finish (cancelled, or threw) told the breaker nothing.
    self->release_push_slot(*p, false);
    self->after_delivery(p, t);
  }

  // Vault read, no-op check, intent, push (through the lane's gate), outcome.
  asio::awaitable<void> attempt(PairPtr p, Target t) {
    HeldRecord& rec = p->record;
    Lane& lane = *p->lane;
    const SourceRef src = p->config.source();

    // A different version than the one that was failing starts a fresh attempt count.
    if (!rec.pending || rec.pending->version != t.version || !(rec.pending->lineage == t.lineage)) {
      rec.attempts = 0;
      rec.first_attempt_at = {};
    }

    if (t.state != SourceState::present) {
      co_await mark_source_deleted(p, t,
                                   fmt::format("the current version of {} is {} in Vault; nothing is pushed "
                                               "until a readable version exists",
                                               src.path(), to_string(t.state)));
      co_return;
    }

    auto credential = co_await reader.read(src, t.version);
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
    const std::string fp = fingerprint(credential->username, credential->password);
    if (p->config.kv() == KvVersion::v1) t.lineage = fp;  // v1: the content is the version

    if (!t.force && rec.applied && rec.applied->same_fingerprint(fp)) {
      // The destination already holds exactly these values (e.g. the same values rewritten).
      const bool same_version =
          rec.applied->version == t.version && rec.applied->lineage == std::string_view(t.lineage);
      const bool needs_record = !same_version || rec.state != PairState::in_sync || rec.pending || rec.push_in_flight;
      if (needs_record) {
        rec.applied = HeldVersion(t.version, t.lineage, fp);
        rec.applied_at = clock.system_now();
        clear_pending(rec);
        rec.state = PairState::in_sync;
        std::optional<HistoryEntry> h;
        if (!same_version) h = history_for(*p, t.version, t.lineage, Outcome::unchanged);
        count(lane, Outcome::unchanged);
        spdlog::info("{} version={}: values equal the applied ones; nothing pushed", describe_pair(*p), t.version);
        co_await write(p, std::move(h));
      }
      p->unsynced_since.reset();
      co_return;
    }

    // Intent first: durable before anything leaves the machine.
    rec.pending = std::make_unique<HeldVersion>(t.version, t.lineage, fp);
    rec.push_in_flight = true;
    if (rec.state != PairState::retrying) rec.state = PairState::pending;
    if (rec.first_attempt_at == SystemTime{}) rec.first_attempt_at = clock.system_now();
    if (auto w = co_await write(p, std::nullopt); !w) {
      rec.push_in_flight = false;
      co_await failed(
          p, t, Error(w.error().code, "cannot record the delivery intent in the ledger: " + w.error().message), false);
      co_return;
    }

    co_await acquire_push_slot(p);
    if (p->target && p->target->serial != t.serial) {
      // A newer version came while this one waited for a slot: it goes instead (coalescing). The
      // intent stays until the next delivery's intent replaces it.
      release_push_slot(*p, false);
      rec.push_in_flight = false;
      co_return;
    }
    destinations::Delivery d{
        p->config.gstin,
        src.path(),
        t.version,
        t.lineage,
        rec.attempts + 1,
        destinations::idempotency_key(lane.dest->name(), p->config.gstin, src.path(), t.lineage, t.version)};
    const SteadyTime push_start = clock.now();
    auto dest = lane.dest;  // keep the object alive across a reload
    auto result = co_await dest->push(std::move(d), std::move(*credential));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - push_start);
    rec.push_in_flight = false;
    // The breaker learns the outcome, then the slot goes to the next push; recording the outcome
    // in the ledger needs no slot.
    std::optional<Error> e;
    if (!result) e = result.error();
    if (!e || e->error_class() == ErrorClass::credential_rejected || e->error_class() == ErrorClass::permanent) {
      lane.breaker.on_success();  // for a rejection: the provider works; the credential does not
    } else {
      lane.breaker.on_failure(clock.now());
    }
    release_push_slot(*p, true);
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

  asio::awaitable<void> applied(PairPtr p, Target t, std::string fp, std::chrono::milliseconds took) {
    HeldRecord& rec = p->record;
    Lane& lane = *p->lane;
    rec.applied = HeldVersion(t.version, t.lineage, fp);
    rec.applied_at = clock.system_now();
    clear_pending(rec);
    rec.state = PairState::in_sync;
    p->unsynced_since.reset();
    HistoryEntry h = history_for(*p, t.version, t.lineage, Outcome::applied);
    h.duration = took;
    count(lane, Outcome::applied);
    lane.metrics.latency.observe(std::chrono::duration<double>(clock.now() - t.observed_at).count());
    if (t.written_at != SystemTime{}) {
      lane.metrics.lag.observe(std::max(0.0, std::chrono::duration<double>(clock.system_now() - t.written_at).count()));
    }
    spdlog::info("{} version={} attempt={}: delivered", describe_pair(*p), t.version, h.attempt);
    co_await write(p, std::move(h));
  }

  asio::awaitable<void> mark_source_deleted(PairPtr p, Target t, std::string message) {
    HeldRecord& rec = p->record;
    const bool already = rec.state == PairState::source_deleted && !rec.pending && !rec.push_in_flight;
    clear_pending(rec);
    rec.state = PairState::source_deleted;
    LastError& last = rec.set_error();
    last.error_class = std::string(to_string(ErrorClass::permanent));
    last.code = std::string(errc_name(Errc::sync_source_deleted));
    last.provider.clear();
    last.message = message;
    p->unsynced_since.reset();
    if (already) co_return;
    count(*p->lane, Outcome::source_deleted);
    spdlog::warn("{} version={}: {}", describe_pair(*p), t.version, message);
    HistoryEntry h = history_for(*p, t.version, t.lineage, Outcome::source_deleted);
    h.error_code = last.code;
    h.message = std::move(message);
    co_await write(p, std::move(h));
  }

  // `counted`: the failed attempt was already counted (parking after retries).
  asio::awaitable<void> park(PairPtr p, Target t, Error e, Outcome outcome, bool counted = false) {
    HeldRecord& rec = p->record;
    rec.state = outcome == Outcome::rejected ? PairState::rejected : PairState::parked;
    if (!counted) rec.attempts += 1;
    rec.next_attempt_at = {};
    set_error(rec, e);
    count(*p->lane, outcome);
    if (outcome == Outcome::rejected) {
      spdlog::error(
          "{} version={} attempt={}: {} — not retried for this version; write a corrected credential to "
          "Vault (a new version) to try again",
          describe_pair(*p), t.version, rec.attempts, e.describe());
    } else {
      spdlog::error("{} version={} attempt={}: {} — parked until a new version or an operator retry", describe_pair(*p),
                    t.version, rec.attempts, e.describe());
    }
    HistoryEntry h = history_for(*p, t.version, t.lineage, outcome);
    fill_error(h, rec);
    co_await write(p, std::move(h));
  }

  asio::awaitable<void> failed(PairPtr p, Target t, Error e, bool provider) {
    HeldRecord& rec = p->record;
    rec.attempts += 1;
    if (rec.first_attempt_at == SystemTime{}) rec.first_attempt_at = clock.system_now();
    if (provider && e.is(Errc::dest_unknown_code) && rec.attempts >= options.unknown_code_attempts) {
      Error parked(e.code, fmt::format("{} (unknown to nicsync; gave up after {} attempts — check the provider's "
                                       "documentation for code {} and retry with `nicsyncd sync`)",
                                       e.message, rec.attempts, e.provider_code));
      parked.provider_code = e.provider_code;
      co_await park(p, t, std::move(parked), Outcome::parked, true);
      co_return;
    }
    const SystemTime now_sys = clock.system_now();
    if (past_max_age(options.backoff, rec.first_attempt_at, now_sys)) {
      Error parked(Errc::sync_max_age, fmt::format("gave up after {} attempts over {}; last error: {}", rec.attempts,
                                                   format_duration(options.backoff.max_age), e.describe()));
      co_await park(p, t, std::move(parked), Outcome::parked, true);
      co_return;
    }
    const auto delay = backoff_delay(options.backoff, rec.attempts, e.retry_after, uniform(rng));
    rec.state = PairState::retrying;
    rec.next_attempt_at = now_sys + delay;
    set_error(rec, e);
    count(*p->lane, Outcome::failed);
    spdlog::warn("{} version={} attempt={}: {}; next attempt in {}", describe_pair(*p), t.version, rec.attempts,
                 e.describe(), format_duration(delay));
    HistoryEntry h = history_for(*p, t.version, t.lineage, Outcome::failed);
    fill_error(h, rec);
    co_await write(p, std::move(h));
    p->due = clock.now() + delay;
  }

  void after_delivery(const PairPtr& p, const Target& t) {
    Lane& lane = *p->lane;
    p->in_flight = false;
    --lane.in_flight;
    --in_flight_total;
    const bool replaced = p->target && p->target->serial != t.serial;
    const auto due = std::exchange(p->due, std::nullopt);
    if (replaced) {
      schedule_now(p);
    } else if (p->record.state == PairState::retrying && due && !stopping) {
      schedule_retry(p, *due);
    } else {
      p->target.reset();
    }
    notify_change();
    pump(lane);
    if (stopping && in_flight_total == 0) drained.cancel();
  }

  // --- ledger ----------------------------------------------------------------------------

  asio::awaitable<Result<void>> write(PairPtr p, std::optional<HistoryEntry> history) {
    p->record.updated_at = clock.system_now();
    auto record = p->full_record();
    auto r = co_await store.write(std::move(record), std::move(history));
    if (!r) {
      p->dirty = true;
      spdlog::error("{}: ledger write failed: {}; will retry", describe_pair(*p), r.error().describe());
    } else {
      p->dirty = false;
    }
    notify_change();
    co_return r;
  }

  static asio::awaitable<void> write_detached(std::shared_ptr<Impl> self, PairPtr p, HistoryEntry h) {
    co_await self->write(p, std::move(h));
  }

  static asio::awaitable<void> housekeeping_loop(std::shared_ptr<Impl> self) {
    auto last_trim = self->clock.now() - std::chrono::hours(2);
    while (!self->stopping) {
      self->housekeeping.expires_after(std::chrono::seconds(5));
      auto [ec] = co_await self->housekeeping.async_wait(kTuple);
      if (ec || self->stopping) break;
      // Records whose write failed (disk full, I/O error) are written again. A copy: a reload
      // may change the map while a write waits for the disk.
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

  // --- helpers -----------------------------------------------------------------------------

  static void clear_pending(HeldRecord& rec) {
    rec.pending.reset();
    rec.push_in_flight = false;
    rec.attempts = 0;
    rec.first_attempt_at = {};
    rec.next_attempt_at = {};
    rec.error.reset();
  }

  static void set_error(HeldRecord& rec, const Error& e) {
    LastError& last = rec.set_error();
    last.error_class = std::string(to_string(e.error_class()));
    last.code = e.code.category() == nicsync_category()
                    ? std::string(errc_name(static_cast<Errc>(e.code.value())))
                    : fmt::format("{}:{}", e.code.category().name(), e.code.value());
    last.provider = e.provider_code;
    last.message = e.message.empty() ? e.code.message() : e.message;
  }

  static void fill_error(HistoryEntry& h, const HeldRecord& rec) {
    if (!rec.error) return;
    h.error_class = rec.error->error_class;
    h.error_code = rec.error->code;
    h.error_provider = rec.error->provider;
    h.message = rec.error->message;
  }

  HistoryEntry history_for(const Pair& p, std::int64_t version, const std::string& lineage, Outcome outcome) {
    HistoryEntry h;
    h.at = clock.system_now();
    h.destination = p.config.destination();
    h.gstin = p.config.gstin.str();
    h.version = version;
    h.lineage = p.config.kv() == KvVersion::v1 ? std::string() : lineage;
    h.outcome = outcome;
    h.attempt = p.record.attempts + (outcome == Outcome::applied ? 1 : 0);
    return h;
  }

  static void count(Lane& lane, Outcome o) { ++lane.metrics.outcomes[std::string(ledger::to_string(o))]; }

  void notify_change() { changed.cancel(); }

  // --- state -------------------------------------------------------------------------------

  asio::any_io_executor ex;
  ledger::Store& store;
  CredentialReader& reader;
  FingerprintFn fingerprint;
  Clock& clock;
  EngineOptions options;
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> uniform{0.0, 1.0};

  std::map<std::string, std::unique_ptr<Lane>> lanes;
  // Sorted vectors rather than maps (memory: 16 bytes a pair each, where a hash map's node and
  // key string cost ~100): every pair in (destination, GSTIN) order, and the same pairs in
  // (Vault key, mount) order for observations. Rebuilt whenever the pairs change.
  std::vector<PairPtr> pairs;
  std::vector<PairPtr> by_path;
  HeldConfig::Interner interner;

  [[nodiscard]] std::vector<PairPtr>::const_iterator find_pair(std::string_view destination,
                                                               std::string_view gstin) const {
    auto it = std::lower_bound(pairs.begin(), pairs.end(), std::pair{destination, gstin},
                               [](const PairPtr& p, const std::pair<std::string_view, std::string_view>& id) {
                                 return std::pair<std::string_view, std::string_view>(p->config.destination(),
                                                                                      p->config.gstin.str()) < id;
                               });
    if (it != pairs.end() && (*it)->config.destination() == destination && (*it)->config.gstin.str() == gstin) {
      return it;
    }
    return pairs.end();
  }
  struct Orphan {
    PairRecord record;
    bool from_ledger = false;  // read at start-up (else: the last record of a pair removed since)
  };
  std::unordered_map<std::string, Orphan> orphans;  // records of pairs not mapped now
  std::vector<PairPtr> recovered;
  std::priority_queue<RetryEntry, std::vector<RetryEntry>, std::greater<>> retries;
  asio::steady_timer retry_timer;
  std::optional<SteadyTime> retry_armed;
  asio::steady_timer changed;
  asio::steady_timer drained;
  asio::steady_timer housekeeping;
  std::uint64_t serial = 0;
  int in_flight_total = 0;
  bool started = false;
  bool stopping = false;
  std::uint64_t redeliveries_after_crash = 0;
};

// --- Engine ------------------------------------------------------------------------------------

Engine::Engine(asio::any_io_executor executor, ledger::Store& store, CredentialReader& reader,
               FingerprintFn fingerprint, Clock& clock, EngineOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), store, reader, std::move(fingerprint), clock, options)) {}

Engine::~Engine() {
  impl_->stopping = true;
  impl_->retry_timer.cancel();
  impl_->housekeeping.cancel();
  for (auto& [name, lane] : impl_->lanes) lane->wake.cancel();
}

void Engine::set_destinations(std::vector<std::pair<std::shared_ptr<destinations::Destination>, LanePolicy>> lanes) {
  impl_->set_destinations(std::move(lanes));
}

Result<void> Engine::set_pairs(std::vector<PairConfig> pairs) { return impl_->set_pairs(std::move(pairs)); }

Result<void> Engine::load() { return impl_->load(); }

void Engine::start() { impl_->start(); }

void Engine::observe(const Observation& observation) { impl_->observe(observation); }

Result<void> Engine::retry(std::string_view destination, const Gstin& gstin) {
  return impl_->retry(destination, gstin);
}

asio::awaitable<void> Engine::stop(std::chrono::milliseconds grace) {
  auto impl = impl_;
  impl->stopping = true;
  impl->retry_timer.cancel();
  impl->housekeeping.cancel();
  for (auto& [name, lane] : impl->lanes) {
    lane->wake.cancel();
    lane->ready.clear();
  }
  for (auto& p : impl->pairs) p->queued = false;
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

std::vector<PairView> Engine::snapshot() const {
  std::vector<PairView> out;
  out.reserve(impl_->pairs.size());
  for (const auto& p : impl_->pairs) {
    PairView v{p->config.full(), p->full_record(), p->in_flight, std::nullopt};
    if (p->target && p->target->state == SourceState::present) v.target_version = p->target->version;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const PairView& a, const PairView& b) {
    return std::tie(a.config.gstin, a.config.destination) < std::tie(b.config.gstin, b.config.destination);
  });
  return out;
}

std::map<std::string, LaneMetrics> Engine::lane_metrics() const {
  std::map<std::string, LaneMetrics> out;
  const auto now = impl_->clock.now();
  for (const auto& [name, lane] : impl_->lanes) {
    LaneMetrics m = lane->metrics;
    m.breaker_state = std::string(to_string(lane->breaker.state(now)));
    m.in_flight = lane->in_flight;
    m.pushing = lane->pushing;
    m.queued = lane->ready.size();
    out.emplace(name, std::move(m));
  }
  return out;
}

std::map<ledger::PairState, std::size_t> Engine::state_counts() const {
  // Counted in an array: every /metrics scrape and STATUS= line walks all pairs.
  std::array<std::size_t, static_cast<std::size_t>(PairState::source_deleted) + 1> counts{};
  for (const auto& p : impl_->pairs) ++counts[static_cast<std::size_t>(p->record.state)];
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
  co_await impl->changed.async_wait(kTuple);
}

void Engine::poke() {
  impl_->run_due_retries();
  for (auto& [name, lane] : impl_->lanes) impl_->pump(*lane);
}

}  // namespace nicsync::sync
