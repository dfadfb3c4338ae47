#pragma once
/// \file
/// The audit feed: entries of Vault's or OpenBao's audit devices (reference vault-audit.md)
/// turned into hints about watched keys. Lines are read on whichever thread received them (the
/// socket listener's own thread, or the API's loop for OpenBao's http device), matched against
/// a snapshot of what is watched, and only what concerns the daemon is handed to the event loop
/// through a bounded queue: the change of a watched key (or of a key under a mapping set's
/// folder), the daemon's own read coming back, a new connection, an overflow.
///
/// Nothing of an entry is logged, stored or echoed: an entry is a hint, never a source. Lines
/// that do not parse, that are too long or that concern nothing watched are only counted.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/histogram.hpp"
#include "nicsync/core/version.hpp"
#include "nicsync/watch/audit_entry.hpp"

namespace nicsync::watch {

/// What entries are matched against: a snapshot the watcher publishes when its keys, its
/// mapping sets or the mounts it located change. Paths as the mappings name them (mount
/// first, no leading slash), relative to the Vault client's namespace.
struct AuditRoutes {
  std::string vault_namespace;                           ///< VAULT_NAMESPACE ("" = root)
  std::set<std::string, std::less<>> keys;               ///< watched keys named by mappings
  std::vector<std::string> folders;                      ///< mapping-set folders, ending in '/'
  std::map<std::string, KvVersion, std::less<>> mounts;  ///< mounts located so far (no slashes)
};

/// The key paths an entry may name, relative to the routes' namespace: the KV v2 reading (for
/// a `kv2_segment` the caller accepts) and the KV v1 reading, each only when the mount's KV
/// version (when known) allows it. Entries without `mount_point` (Vault 1.13) are cut at the
/// longest known mount.
struct AuditKeyReadings {
  std::optional<std::string> kv2;
  KvSegment kv2_segment = KvSegment::none;
  std::optional<std::string> kv1;
};
AuditKeyReadings key_readings(const AuditHint& hint, const AuditRoutes& routes);

/// What a change entry means for the watcher.
struct AuditMatch {
  enum class Kind : std::uint8_t {
    none,    ///< nothing watched
    key,     ///< a watched key
    folder,  ///< a key directly under a mapping set's folder (watched or new)
  };
  Kind kind = Kind::none;
  std::string path;  ///< the key, as the watcher names it
};
/// Pure: which watched key (or key under a mapping-set folder) a `kv_change` hint names.
AuditMatch match_change(const AuditHint& hint, const AuditRoutes& routes);
/// Pure: whether a read entry (`operation` read) is a read of `key` as the watcher reads keys
/// (KV v2 metadata or data, KV v1 the key itself).
bool is_read_of(const AuditHint& hint, std::string_view key, const AuditRoutes& routes);

/// Why a full resync is asked for.
enum class AuditResyncReason : std::uint8_t {
  connection,  ///< a device connected: an entry written on its previous connection may be lost
  overflow,    ///< the queue to the loop was full and hints were dropped
};

struct AuditFeedOptions {
  /// The device's `prefix` option (stripped when a line starts with it).
  std::string prefix;
  /// Hints waiting for the loop; beyond, hints are dropped and a full resync is asked for.
  std::size_t queue_limit = 10'000;
  /// Request ids remembered to drop repeats (a rewritten entry, the same entry from two nodes).
  std::size_t remembered_ids = 4'096;
  /// How long after the last http device entry the feed counts as connected through it (the
  /// daemon's own probe reads bring one every few seconds).
  std::chrono::milliseconds http_connected_for{30'000};
  Clock* clock = nullptr;  ///< default Clock::real()
};

/// Counts since start. `entries_*` count every entry once, by what became of it.
struct AuditFeedStats {
  std::uint64_t entries_matched = 0;    ///< the change of a watched key: handed to the watcher
  std::uint64_t entries_ignored = 0;    ///< read, but about nothing watched (or not a change)
  std::uint64_t entries_duplicate = 0;  ///< a change already handed over (same request id)
  std::uint64_t entries_malformed = 0;  ///< not an entry (bad JSON, half a line at a connection's end)
  std::uint64_t entries_too_large = 0;  ///< longer than kMaxAuditLineBytes: skipped unread
  std::uint64_t entries_dropped = 0;    ///< matched, but the queue to the loop was full
  std::uint64_t http_unauthorized = 0;  ///< http device posts without the feed's token (not read)
  std::uint64_t own_reads_seen = 0;     ///< the daemon's own reads that came back
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  ///< not in allow_from, or too many at once
  std::size_t connections_open = 0;
  /// When the last entry of any kind arrived (socket or http); epoch if none yet.
  Clock::system_time last_entry_at{};
  /// From an entry's `time` to the moment it was read, for matched changes.
  Histogram lag{Histogram::latency_bounds()};
};

/// What the feed tells the event loop; every function is called on the loop.
struct AuditFeedSink {
  /// The one entry point of a hint: a watched key, or a key under a mapping set's folder, may
  /// have changed. (Replicas will forward this to the leader.)
  std::function<void(const std::string& path)> changed;
  /// Something may have been missed: read everything again (coalesced and rate-limited by the
  /// receiver).
  std::function<void(AuditResyncReason)> resync;
  /// The read announced by `expect_own_read` came back through the feed.
  std::function<void()> own_read_seen;
  /// A connection opened or closed (see `connected()`).
  std::function<void()> connections_changed;
};

class AuditFeed : public std::enable_shared_from_this<AuditFeed> {
 public:
  /// `loop` is where the sink is called.
  static std::shared_ptr<AuditFeed> create(boost::asio::any_io_executor loop, AuditFeedOptions options = {});
  ~AuditFeed();
  AuditFeed(const AuditFeed&) = delete;
  AuditFeed& operator=(const AuditFeed&) = delete;

  // --- on the loop ---------------------------------------------------------------------------
  void set_sink(AuditFeedSink sink);
  /// Nothing more reaches the sink (at shutdown).
  void close();
  void set_routes(std::shared_ptr<const AuditRoutes> routes);
  /// The daemon is about to read `key`: its read entry coming back is `own_read_seen`.
  void expect_own_read(std::string key);

  // --- from any thread -----------------------------------------------------------------------
  /// One entry (a line without its newline, or an http device's body).
  void take_line(std::string_view line);
  /// One http device post: read when `authorized`, only counted otherwise.
  void take_http_entry(std::string_view body, bool authorized);
  /// A line longer than kMaxAuditLineBytes was skipped unread.
  void note_too_large();
  /// A connection ended in the middle of a line (Vault writes the entry again elsewhere).
  void note_truncated();
  void connection_opened();
  void connection_closed();
  void connection_refused();

  /// Whether a device is connected: a socket is open, or the http device posted lately.
  [[nodiscard]] bool connected() const;
  [[nodiscard]] AuditFeedStats stats() const;

 private:
  AuditFeed(boost::asio::any_io_executor loop, AuditFeedOptions options);
  void note_entry();
  void hand_over(AuditMatch match, const AuditHint& hint);
  void check_own_read(const AuditHint& hint);
  void post_drain_locked();
  void drain();

  boost::asio::any_io_executor loop_;
  AuditFeedOptions options_;
  Clock& clock_;

  std::atomic<std::uint64_t> ignored_{0}, malformed_{0}, too_large_{0}, unauthorized_{0};
  std::atomic<std::uint64_t> accepted_{0}, refused_{0};
  std::atomic<std::size_t> open_{0};
  std::atomic<std::int64_t> last_entry_ns_{0};       // system clock, since the epoch
  std::atomic<std::int64_t> last_http_entry_ns_{0};  // steady clock
  std::atomic<bool> expecting_{false};               // expected_read_ is set

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::shared_ptr<const AuditRoutes> routes_;
  std::string expected_read_;
  std::deque<std::string> queue_;
  std::set<std::string, std::less<>> ids_;
  std::deque<std::string> id_order_;
  bool drain_posted_ = false;
  bool resync_connection_ = false;
  bool resync_overflow_ = false;
  bool own_read_ = false;
  bool connections_changed_ = false;
  std::uint64_t matched_ = 0, duplicate_ = 0, dropped_ = 0, own_reads_ = 0;
  Histogram lag_{Histogram::latency_bounds()};

  // On the loop only.
  AuditFeedSink sink_;
  bool closed_ = false;
};

}  // namespace nicsync::watch
