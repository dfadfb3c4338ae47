#pragma once
// The watcher's side of an audit feed (private to watch). Hints become reads through the path
// a poll takes, coalesced per key and read again shortly while a read shows nothing new (a
// standby that lags behind the node that wrote). A new connection or an overflow becomes a
// full resync, coalesced and at most one per min_resync_gap, so a device that reconnects in a
// loop cannot turn into load on Vault. And the feed's health decides how often keys are
// polled: healthy while a device is connected and the daemon saw one of its own reads come
// back through the feed within the health window.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/observation.hpp"
#include "nicsync/watch/audit_feed.hpp"
#include "nicsync/watch/watcher.hpp"

namespace nicsync::watch::detail {

/// What the follower asks of the watcher (on the loop).
class FollowerHost {
 public:
  virtual ~FollowerHost() = default;
  /// Reads a watched key as a poll does, under the concurrency cap: whether it reported
  /// something new; nothing when the key is not watched or the read failed (the key's own
  /// retry takes over then).
  virtual boost::asio::awaitable<std::optional<bool>> read(std::string path, ObservationSource source) = 0;
  [[nodiscard]] virtual bool watches(std::string_view path) const = 0;
  /// Whether `path` lies directly in a mapping set's folder.
  [[nodiscard]] virtual bool in_set_folder(std::string_view path) const = 0;
  /// Lists every mapping set now (a key appeared under a folder).
  virtual boost::asio::awaitable<void> list_sets_now() = 0;
  /// Starts a sweep that reads every watched key at once.
  virtual void full_sweep_now() = 0;
  /// The feed became healthy or stopped being so (if unhealthy, the polling interval in
  /// force may have got shorter: the sweep starts again at it).
  virtual void health_changed(bool healthy) = 0;
  /// The key after `after` in the watcher's order (the first one if none is after it).
  [[nodiscard]] virtual std::optional<std::string> key_after(const std::string& after) const = 0;
};

class AuditFollower : public std::enable_shared_from_this<AuditFollower> {
 public:
  /// `poll_interval` and `resync_interval` are the watcher's (for the log).
  AuditFollower(boost::asio::any_io_executor ex, std::weak_ptr<FollowerHost> host, std::shared_ptr<AuditFeed> feed,
                AuditFollowOptions options, std::chrono::milliseconds poll_interval,
                std::chrono::milliseconds resync_interval, Clock& clock);

  /// Takes the feed's sink and starts probing.
  void start();
  /// No more reads, resyncs or probes (the watcher's run is over).
  void stop();

  void hint_changed(std::string_view path);
  void request_resync(AuditResyncReason reason);
  /// The watcher starts reading `path`: it becomes the read expected back through the feed
  /// unless one was announced within the probe interval.
  void read_started(std::string_view path);
  [[nodiscard]] bool healthy() const;
  [[nodiscard]] AuditFeedHealth health() const;
  [[nodiscard]] const std::shared_ptr<AuditFeed>& feed() const noexcept { return feed_; }

 private:
  struct Hinted {
    bool again = false;  // a hint came while this key was being read or waited for
    std::shared_ptr<boost::asio::steady_timer> timer;
  };
  static boost::asio::awaitable<void> hint_loop(std::shared_ptr<AuditFollower> self, std::string path);
  static boost::asio::awaitable<void> relist_loop(std::shared_ptr<AuditFollower> self);
  static boost::asio::awaitable<void> resync_after(std::shared_ptr<AuditFollower> self,
                                                   std::chrono::steady_clock::duration delay);
  static boost::asio::awaitable<void> probe_loop(std::shared_ptr<AuditFollower> self);
  void start_hint(std::string path);
  void own_read_seen();
  /// Whether a read should be announced as the one expected back now.
  [[nodiscard]] bool want_own_read(Clock::steady_time now) const;
  void evaluate();

  boost::asio::any_io_executor ex_;
  std::weak_ptr<FollowerHost> host_;
  std::shared_ptr<AuditFeed> feed_;
  AuditFollowOptions options_;
  std::chrono::milliseconds poll_interval_;
  std::chrono::milliseconds resync_interval_;
  Clock& clock_;
  bool stopping_ = false;

  std::map<std::string, Hinted, std::less<>> hinted_;
  std::set<std::string, std::less<>> new_in_sets_;  // hinted keys under a set folder, not yet listed
  bool relisting_ = false;

  bool resync_waiting_ = false;
  std::optional<Clock::steady_time> last_resync_;
  boost::asio::steady_timer resync_timer_;

  std::optional<Clock::steady_time> expected_at_;  // when the read expected back was announced
  std::optional<Clock::steady_time> own_read_at_;  // when the last one came back
  std::string probe_cursor_;
  boost::asio::steady_timer probe_timer_;
  boost::asio::steady_timer health_timer_;
  bool was_healthy_ = false;
  bool was_connected_ = false;

  AuditFeedHealth counts_;
};

}  // namespace nicsync::watch::detail
