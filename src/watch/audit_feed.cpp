// Audit entries matched against what is watched, on the thread that read them; only hints
// about watched keys cross to the loop, in batches: a burst of unrelated traffic (reads,
// logins, health checks: two entries each) never reaches it.
#include "nicsync/watch/audit_feed.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "nicsync/core/timestamp.hpp"
#include "nicsync/vault/types.hpp"

namespace nicsync::watch {
namespace asio = boost::asio;

namespace {

std::string_view trim_slashes(std::string_view s) noexcept {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

bool below(std::string_view path, std::string_view mount) noexcept {
  return !mount.empty() && path.size() > mount.size() + 1 && path.starts_with(mount) && path[mount.size()] == '/';
}

std::int64_t ns_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t ns_since_epoch(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

AuditKeyReadings key_readings(const AuditHint& hint, const AuditRoutes& routes) {
  AuditKeyReadings out;
  const auto full = path_in_namespace(hint.namespace_path, hint.path, routes.vault_namespace);
  if (!full) return out;
  // The entry's mount below its namespace: `mount_point` carries the namespace prefix (not on
  // every version: taken off only when it is there).
  std::string_view mount = trim_slashes(hint.mount_point);
  const std::string_view ns = trim_slashes(hint.namespace_path);
  if (!ns.empty() && mount.size() > ns.size() && mount.starts_with(ns) && mount[ns.size()] == '/') {
    mount.remove_prefix(ns.size() + 1);
  }
  AuditKvTarget target;
  if (!mount.empty()) {
    if (auto m = path_in_namespace(hint.namespace_path, mount, routes.vault_namespace)) {
      target = kv_target_below(*full, *m);
    }
  }
  if (target.mount.empty()) {
    // No mount in the entry (Vault 1.13): the longest mount the watcher located.
    std::string_view best;
    for (const auto& [m, version] : routes.mounts) {
      if (m.size() > best.size() && below(*full, m)) best = m;
    }
    if (!best.empty()) target = kv_target_below(*full, best);
  }
  if (target.mount.empty()) {
    out.kv1 = *full;  // no mount known: the path itself is all there is
    return out;
  }
  std::optional<KvVersion> version;
  if (auto it = routes.mounts.find(target.mount); it != routes.mounts.end()) version = it->second;
  if (!target.kv2_path.empty() && version != KvVersion::v1) {
    out.kv2 = std::move(target.kv2_path);
    out.kv2_segment = target.kv2_segment;
  }
  if (version != KvVersion::v2) out.kv1 = std::move(target.kv1_path);
  return out;
}

AuditMatch match_change(const AuditHint& hint, const AuditRoutes& routes) {
  AuditMatch m;
  if (!hint.kv_change()) return m;
  auto readings = key_readings(hint, routes);
  std::optional<std::string>* candidates[] = {&readings.kv2, &readings.kv1};
  for (auto* c : candidates) {
    if (*c && routes.keys.contains(**c)) {
      m.kind = AuditMatch::Kind::key;
      m.path = std::move(**c);
      return m;
    }
  }
  for (auto* c : candidates) {
    if (!*c) continue;
    for (const auto& folder : routes.folders) {
      if (vault::directly_in_folder(**c, folder)) {
        m.kind = AuditMatch::Kind::folder;
        m.path = std::move(**c);
        return m;
      }
    }
  }
  return m;
}

bool is_read_of(const AuditHint& hint, std::string_view key, const AuditRoutes& routes) {
  if (hint.operation != AuditOperation::read || key.empty()) return false;
  const auto readings = key_readings(hint, routes);
  const bool v2 = readings.kv2 && *readings.kv2 == key &&
                  (readings.kv2_segment == KvSegment::metadata || readings.kv2_segment == KvSegment::data);
  return v2 || (readings.kv1 && *readings.kv1 == key);
}

std::shared_ptr<AuditFeed> AuditFeed::create(asio::any_io_executor loop, AuditFeedOptions options) {
  return std::shared_ptr<AuditFeed>(new AuditFeed(std::move(loop), std::move(options)));
}

AuditFeed::AuditFeed(asio::any_io_executor loop, AuditFeedOptions options)
    : loop_(std::move(loop)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::real()),
      routes_(std::make_shared<AuditRoutes>()) {}

AuditFeed::~AuditFeed() = default;

void AuditFeed::set_sink(AuditFeedSink sink) { sink_ = std::move(sink); }

void AuditFeed::close() {
  closed_ = true;
  sink_ = {};
}

void AuditFeed::set_routes(std::shared_ptr<const AuditRoutes> routes) {
  std::lock_guard lock(mu_);
  routes_ = std::move(routes);
}

void AuditFeed::expect_own_read(std::string key) {
  std::lock_guard lock(mu_);
  expected_read_ = std::move(key);
  expecting_.store(!expected_read_.empty(), std::memory_order_relaxed);
}

void AuditFeed::note_entry() { last_entry_ns_.store(ns_since_epoch(clock_.system_now()), std::memory_order_relaxed); }

void AuditFeed::take_line(std::string_view line) {
  note_entry();
  auto hint = parse_audit_entry(line, options_.prefix);
  if (!hint) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (hint->reason == AuditIgnoreReason::too_large) {
    too_large_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (hint->kv_change()) {
    std::shared_ptr<const AuditRoutes> routes;
    {
      std::lock_guard lock(mu_);
      routes = routes_;
    }
    AuditMatch m = match_change(*hint, *routes);
    if (m.kind != AuditMatch::Kind::none) {
      hand_over(std::move(m), *hint);
      return;
    }
  }
  ignored_.fetch_add(1, std::memory_order_relaxed);
  if (hint->operation == AuditOperation::read && !hint->path.empty() && expecting_.load(std::memory_order_relaxed)) {
    check_own_read(*hint);
  }
}

void AuditFeed::take_http_entry(std::string_view body, bool authorized) {
  if (!authorized) {
    unauthorized_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto now = clock_.now();
  const bool was_connected = connected();
  last_http_entry_ns_.store(ns_since_epoch(now), std::memory_order_relaxed);
  if (!was_connected) {
    // The http device's first post after a silence: as a new socket connection, it may follow
    // entries this daemon never answered.
    std::lock_guard lock(mu_);
    resync_connection_ = true;
    connections_changed_ = true;
    post_drain_locked();
  }
  take_line(body);
}

void AuditFeed::note_too_large() {
  note_entry();
  too_large_.fetch_add(1, std::memory_order_relaxed);
}

void AuditFeed::note_truncated() { malformed_.fetch_add(1, std::memory_order_relaxed); }

void AuditFeed::connection_opened() {
  accepted_.fetch_add(1, std::memory_order_relaxed);
  open_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  resync_connection_ = true;
  connections_changed_ = true;
  post_drain_locked();
}

void AuditFeed::connection_closed() {
  open_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  connections_changed_ = true;
  post_drain_locked();
}

void AuditFeed::connection_refused() { refused_.fetch_add(1, std::memory_order_relaxed); }

bool AuditFeed::connected() const {
  if (open_.load(std::memory_order_relaxed) > 0) return true;
  const std::int64_t http = last_http_entry_ns_.load(std::memory_order_relaxed);
  if (http == 0) return false;
  const auto since = std::chrono::nanoseconds(ns_since_epoch(clock_.now()) - http);
  return since <= options_.http_connected_for;
}

void AuditFeed::hand_over(AuditMatch match, const AuditHint& hint) {
  std::lock_guard lock(mu_);
  if (!hint.request_id.empty()) {
    if (!ids_.insert(hint.request_id).second) {
      ++duplicate_;
      return;
    }
    id_order_.push_back(hint.request_id);
    if (id_order_.size() > options_.remembered_ids) {
      ids_.erase(id_order_.front());
      id_order_.pop_front();
    }
  }
  if (auto written = parse_rfc3339(hint.time)) {
    const auto lag = std::chrono::duration<double>(clock_.system_now() - *written).count();
    lag_.observe(std::max(0.0, lag));
  }
  if (queue_.size() >= options_.queue_limit) {
    ++dropped_;
    resync_overflow_ = true;
  } else {
    queue_.push_back(std::move(match.path));
    ++matched_;
  }
  post_drain_locked();
}

void AuditFeed::check_own_read(const AuditHint& hint) {
  std::lock_guard lock(mu_);
  if (expected_read_.empty() || !is_read_of(hint, expected_read_, *routes_)) return;
  expected_read_.clear();
  expecting_.store(false, std::memory_order_relaxed);
  ++own_reads_;
  own_read_ = true;
  post_drain_locked();
}

void AuditFeed::post_drain_locked() {
  if (drain_posted_) return;
  drain_posted_ = true;
  asio::post(loop_, [self = shared_from_this()] { self->drain(); });
}

void AuditFeed::drain() {
  std::deque<std::string> changed;
  bool resync_connection = false, resync_overflow = false, own_read = false, connections = false;
  {
    std::lock_guard lock(mu_);
    changed.swap(queue_);
    resync_connection = std::exchange(resync_connection_, false);
    resync_overflow = std::exchange(resync_overflow_, false);
    own_read = std::exchange(own_read_, false);
    connections = std::exchange(connections_changed_, false);
    drain_posted_ = false;
  }
  if (closed_) return;
  // A copy: a sink function may replace the sink.
  const AuditFeedSink sink = sink_;
  if (connections && sink.connections_changed) sink.connections_changed();
  if (resync_connection && sink.resync) sink.resync(AuditResyncReason::connection);
  if (resync_overflow && sink.resync) sink.resync(AuditResyncReason::overflow);
  if (own_read && sink.own_read_seen) sink.own_read_seen();
  if (sink.changed) {
    for (const auto& path : changed) sink.changed(path);
  }
}

AuditFeedStats AuditFeed::stats() const {
  AuditFeedStats s;
  s.entries_ignored = ignored_.load(std::memory_order_relaxed);
  s.entries_malformed = malformed_.load(std::memory_order_relaxed);
  s.entries_too_large = too_large_.load(std::memory_order_relaxed);
  s.http_unauthorized = unauthorized_.load(std::memory_order_relaxed);
  s.connections_accepted = accepted_.load(std::memory_order_relaxed);
  s.connections_refused = refused_.load(std::memory_order_relaxed);
  s.connections_open = open_.load(std::memory_order_relaxed);
  const std::int64_t last = last_entry_ns_.load(std::memory_order_relaxed);
  if (last != 0) {
    s.last_entry_at =
        Clock::system_time(std::chrono::duration_cast<Clock::system_time::duration>(std::chrono::nanoseconds(last)));
  }
  std::lock_guard lock(mu_);
  s.entries_matched = matched_;
  s.entries_duplicate = duplicate_;
  s.entries_dropped = dropped_;
  s.own_reads_seen = own_reads_;
  s.lag = lag_;
  return s;
}

}  // namespace nicsync::watch
