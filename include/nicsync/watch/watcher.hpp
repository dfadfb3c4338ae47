#pragma once
/// \file
/// Watching Vault: reads every watched key's metadata once per interval, spread evenly over it
/// (with jitter, under a concurrency cap), and reports what changed as `Observation`s — new
/// versions, a deleted or destroyed current version (which `current_version` alone does not
/// show), a key recreated after its metadata was deleted (a new lineage), a key that vanished.
/// KV v1 keys have no versions: they are read and compared by a content hash kept in memory.
/// Mapping sets (every key under a Vault folder is a GSTIN) are listed again at every sweep.
/// With Vault Enterprise events, a change event triggers an immediate read of that key, and
/// polling continues at the longer resync interval. An audit feed (Vault's socket audit device,
/// OpenBao's http device: audit_feed.hpp) does the same on any Vault while it is healthy.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/gstin.hpp"
#include "nicsync/core/observation.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/vault/client.hpp"

namespace nicsync::watch {

class AuditFeed;

enum class Mode { auto_detect, poll, events };

struct WatcherOptions {
  Mode mode = Mode::auto_detect;
  std::chrono::milliseconds poll_interval{60'000};
  std::chrono::milliseconds resync_interval{600'000};
  std::chrono::milliseconds jitter{5'000};
  int concurrency = 16;
  GstinMode gstin_mode = GstinMode::strict;
  /// A key whose read failed transiently is retried after this (doubling up to the interval).
  std::chrono::milliseconds retry_base{1'000};
  std::uint64_t seed = 0;  ///< jitter randomness; 0 = random
};

/// A mapping set's membership after a listing.
struct SetListing {
  std::string prefix;
  std::vector<Gstin> gstins;              ///< valid GSTIN keys, sorted
  std::vector<std::string> invalid_keys;  ///< keys that failed GSTIN validation (with reasons in the log)
  std::vector<Gstin> added;               ///< since the previous listing
  std::vector<Gstin> removed;
};

/// A full sweep over every watched key is over.
struct SweepDone {
  std::uint64_t sweeps = 0;  ///< sweeps so far
};

/// An attached audit feed became healthy (keys are polled at the resync interval) or stopped
/// being so (back to the poll interval at once).
struct AuditFeedChanged {
  bool healthy = false;
};

/// What the watcher learns, in the order it learns it: a key's new version or state (an
/// `Observation`), a mapping set's listing, the end of a sweep, a change of the audit feed's
/// health. (Mounts are the Vault client's to detect and remember; read errors stay with their
/// keys, see `problems()`.)
using WatchEvent = std::variant<Observation, SetListing, SweepDone, AuditFeedChanged>;

/// What `read_now` found for one path (for `POST /v1/sync` reports).
struct ReadResult {
  std::string path;
  std::optional<Observation> observation;  ///< what was reported to the engine
  std::optional<Error> error;
};

/// How the watcher follows an audit feed.
struct AuditFollowOptions {
  /// One of the daemon's own reads must come back through the feed at least this often: a
  /// watched key is read for it when no other read was announced within this.
  std::chrono::milliseconds probe_interval{10'000};
  /// The feed is healthy while a device is connected and one of the daemon's own reads came
  /// back through it within this; while healthy, keys are polled at the resync interval.
  std::chrono::milliseconds health_window{30'000};
  /// Full resyncs the feed asks for (a device connected, hints dropped) start at most this often.
  std::chrono::milliseconds min_resync_gap{60'000};
  /// After a hint, a read that shows nothing new is made again after each of these pauses (a
  /// standby serving reads may lag behind the node that took the write).
  std::vector<std::chrono::milliseconds> rereads{std::chrono::milliseconds(200), std::chrono::milliseconds(1'000),
                                                 std::chrono::milliseconds(5'000)};
};

/// How an attached audit feed is doing.
struct AuditFeedHealth {
  bool attached = false;
  bool connected = false;  ///< a socket device is connected, or the http device posted lately
  bool healthy = false;    ///< connected, and an own read came back within the health window
  std::optional<Clock::steady_time> own_read_seen_at;
  std::uint64_t hints = 0;       ///< hints handed to the watcher
  std::uint64_t hint_reads = 0;  ///< reads they made, repeats included
  std::uint64_t rereads = 0;     ///< reads repeated because the one before showed nothing new
  std::uint64_t probes = 0;      ///< reads made only so that one comes back through the feed
  std::uint64_t resyncs_requested = 0;
  std::uint64_t resyncs = 0;  ///< full resyncs started (requests coalesced and rate-limited)
};

struct WatcherStats {
  std::uint64_t reads = 0;
  std::uint64_t read_failures = 0;
  std::uint64_t observations = 0;
  std::uint64_t sweeps = 0;
  std::uint64_t events = 0;
  std::uint64_t event_reconnects = 0;
  bool events_active = false;
  std::size_t keys = 0;
};

class Watcher {
 public:
  /// Where the events go: one channel, called on the executor's thread.
  using Sink = std::function<void(const WatchEvent&)>;

  Watcher(boost::asio::any_io_executor executor, vault::Client& vault, WatcherOptions options, Clock& clock, Sink sink);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  /// The explicit keys to watch (full paths). Keys that stay keep their known state.
  void set_keys(std::vector<std::string> paths);
  /// The mapping-set folders (full paths ending in '/'). Their keys are watched too.
  void set_prefixes(std::vector<std::string> prefixes);
  /// Runs until cancelled: detects mounts, subscribes to events when wanted and offered
  /// (subscribe first, then sweep, so nothing falls in the gap), then sweeps every interval.
  boost::asio::awaitable<void> run();

  /// Reads `paths` now (all watched keys if empty) and reports each as an observation
  /// (with `force` set if asked) — the trigger of `POST /v1/sync`. With `emit` false the
  /// observations are only returned (a dry run).
  boost::asio::awaitable<std::vector<ReadResult>> read_now(std::vector<std::string> paths, bool force,
                                                           bool emit = true);

  /// Follows `feed` from now on (before `run`): its hints trigger reads, its new connections
  /// and overflows full resyncs, and while it is healthy keys are polled at the resync interval.
  void attach_audit_feed(std::shared_ptr<AuditFeed> feed, AuditFollowOptions options = {});
  /// A hint that the key at `path` changed — a watched key, or a key directly under a mapping
  /// set's folder (listed again first). The key is read soon through the path a poll takes,
  /// once for any number of hints that arrive meanwhile, and again shortly while the read shows
  /// nothing new. The one entry point for hints, whatever brought them (an audit feed here; a
  /// replica's feed forwarded by the leader later). Needs an attached feed.
  void hint_changed(std::string_view path);
  /// A standby replica reads nothing from Vault: a sweep under way stops at its next key, event
  /// notifications and audit hints are dropped, and `run` waits (before subscribing to events).
  void pause();
  /// Reads every key at once (the new leader catches up), then polls as before.
  void resume();
  [[nodiscard]] bool paused() const noexcept;
  /// While paused, where the audit feed's hints go (the key's path) instead of to a read.
  void set_standby_hints(std::function<void(const std::string&)> sink);
  [[nodiscard]] AuditFeedHealth audit_feed_health() const;

  /// True once every watched key was read (or gave a definite answer such as not found).
  [[nodiscard]] bool first_sweep_done() const noexcept;
  /// Keys not yet read successfully, with the last error (for /readyz and status).
  [[nodiscard]] std::map<std::string, std::string> problems() const;
  [[nodiscard]] WatcherStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::watch
