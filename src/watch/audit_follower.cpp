#include "audit_follower.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"

namespace nicsync::watch::detail {
namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

AuditFollower::AuditFollower(asio::any_io_executor ex, std::weak_ptr<FollowerHost> host,
                             std::shared_ptr<AuditFeed> feed, AuditFollowOptions options,
                             std::chrono::milliseconds poll_interval, std::chrono::milliseconds resync_interval,
                             Clock& clock)
    : ex_(std::move(ex)),
      host_(std::move(host)),
      feed_(std::move(feed)),
      options_(std::move(options)),
      poll_interval_(poll_interval),
      resync_interval_(resync_interval),
      clock_(clock),
      resync_timer_(ex_),
      probe_timer_(ex_),
      health_timer_(ex_) {
  counts_.attached = true;
}

void AuditFollower::start() {
  std::weak_ptr<AuditFollower> weak = weak_from_this();
  AuditFeedSink sink;
  sink.changed = [weak](const std::string& path) {
    if (auto self = weak.lock()) self->hint_changed(path);
  };
  sink.resync = [weak](AuditResyncReason reason) {
    if (auto self = weak.lock()) self->request_resync(reason);
  };
  sink.own_read_seen = [weak] {
    if (auto self = weak.lock()) self->own_read_seen();
  };
  sink.connections_changed = [weak] {
    if (auto self = weak.lock()) self->evaluate();
  };
  feed_->set_sink(std::move(sink));
  asio::co_spawn(ex_, probe_loop(shared_from_this()), asio::detached);
}

void AuditFollower::stop() {
  stopping_ = true;
  probe_timer_.cancel();
  resync_timer_.cancel();
  health_timer_.cancel();
  for (auto& [path, h] : hinted_) {
    if (h.timer) h.timer->cancel();
  }
}

// --- hints ---------------------------------------------------------------------------------------

void AuditFollower::hint_changed(std::string_view path) {
  if (stopping_) return;
  ++counts_.hints;
  auto host = host_.lock();
  if (!host) return;
  if (host->watches(path)) {
    start_hint(std::string(path));
    return;
  }
  // A key under a mapping set that is not watched yet: the set is listed again, then the key
  // is read like any other hinted one.
  if (!host->in_set_folder(path)) return;
  new_in_sets_.insert(std::string(path));
  if (!relisting_) {
    relisting_ = true;
    asio::co_spawn(ex_, relist_loop(shared_from_this()), asio::detached);
  }
}

void AuditFollower::start_hint(std::string path) {
  auto [it, fresh] = hinted_.try_emplace(path);
  if (!fresh) {
    // Read once more: the write this hint is about may have come after the read under way.
    it->second.again = true;
    if (it->second.timer) it->second.timer->cancel();
    return;
  }
  asio::co_spawn(ex_, hint_loop(shared_from_this(), std::move(path)), asio::detached);
}

asio::awaitable<void> AuditFollower::hint_loop(std::shared_ptr<AuditFollower> self, std::string path) {
  std::size_t pauses = 0;
  for (;;) {
    self->hinted_[path].again = false;
    std::optional<bool> news;
    {
      auto host = self->host_.lock();
      if (!host || self->stopping_) break;
      ++self->counts_.hint_reads;
      news = co_await host->read(path, ObservationSource::event);
    }
    if (self->hinted_[path].again) {
      pauses = 0;
      continue;
    }
    if (!news || *news || pauses >= self->options_.rereads.size()) break;
    // Nothing new yet: a standby that has not caught up with the node that took the write.
    auto timer = std::make_shared<asio::steady_timer>(self->ex_, self->options_.rereads[pauses++]);
    self->hinted_[path].timer = timer;
    co_await timer->async_wait(kTuple);
    self->hinted_[path].timer.reset();
    if (self->stopping_) break;
    if (self->hinted_[path].again) pauses = 0;
    ++self->counts_.rereads;
  }
  self->hinted_.erase(path);
}

asio::awaitable<void> AuditFollower::relist_loop(std::shared_ptr<AuditFollower> self) {
  while (!self->new_in_sets_.empty() && !self->stopping_) {
    auto paths = std::exchange(self->new_in_sets_, {});
    auto host = self->host_.lock();
    if (!host) break;
    co_await host->list_sets_now();
    for (const auto& p : paths) {
      if (!self->stopping_ && host->watches(p)) self->start_hint(p);
    }
  }
  self->relisting_ = false;
}

// --- resyncs -------------------------------------------------------------------------------------

void AuditFollower::request_resync(AuditResyncReason reason) {
  if (stopping_) return;
  ++counts_.resyncs_requested;
  if (reason == AuditResyncReason::overflow) {
    spdlog::warn("audit feed: hints were dropped (the daemon fell behind); every watched key is read again");
  }
  if (resync_waiting_) return;  // one resync covers every request made before it starts
  resync_waiting_ = true;
  const auto now = clock_.now();
  std::chrono::steady_clock::duration delay{};
  if (last_resync_ && *last_resync_ + options_.min_resync_gap > now)
    delay = *last_resync_ + options_.min_resync_gap - now;
  asio::co_spawn(ex_, resync_after(shared_from_this(), delay), asio::detached);
}

asio::awaitable<void> AuditFollower::resync_after(std::shared_ptr<AuditFollower> self,
                                                  std::chrono::steady_clock::duration delay) {
  if (delay > std::chrono::steady_clock::duration::zero()) {
    self->resync_timer_.expires_after(delay);
    co_await self->resync_timer_.async_wait(kTuple);
  }
  self->resync_waiting_ = false;
  if (self->stopping_) co_return;
  auto host = self->host_.lock();
  if (!host) co_return;
  self->last_resync_ = self->clock_.now();
  ++self->counts_.resyncs;
  spdlog::info("audit feed: reading every watched key again (a device connected, or hints were dropped)");
  host->full_sweep_now();
}

// --- health --------------------------------------------------------------------------------------

bool AuditFollower::want_own_read(Clock::steady_time now) const {
  if (expected_at_ && now - *expected_at_ < options_.probe_interval) return false;  // one is on its way
  return !own_read_at_ || now - *own_read_at_ >= options_.probe_interval / 2;       // none seen lately
}

void AuditFollower::read_started(std::string_view path) {
  const auto now = clock_.now();
  if (!want_own_read(now)) return;
  expected_at_ = now;
  feed_->expect_own_read(std::string(path));
}

void AuditFollower::own_read_seen() {
  own_read_at_ = clock_.now();
  expected_at_.reset();  // the next read is the next one expected back
  evaluate();
}

bool AuditFollower::healthy() const {
  return feed_->connected() && own_read_at_ && clock_.now() - *own_read_at_ <= options_.health_window;
}

void AuditFollower::evaluate() {
  if (stopping_) return;
  const bool connected = feed_->connected();
  const bool now_healthy = healthy();
  if (connected && !was_connected_) {
    // Probe at once: health is established within a round trip, not a probe interval.
    expected_at_.reset();
    probe_timer_.cancel();
  }
  // What came back through a connection that is gone says nothing about the next one.
  if (!connected && was_connected_) own_read_at_.reset();
  was_connected_ = connected;
  if (now_healthy) {
    // Check again when the last own read falls out of the window.
    health_timer_.expires_at(*own_read_at_ + options_.health_window + std::chrono::milliseconds(1));
    std::weak_ptr<AuditFollower> weak = weak_from_this();
    health_timer_.async_wait([weak](const boost::system::error_code& ec) {
      if (auto self = weak.lock(); self && !ec) self->evaluate();
    });
  }
  if (now_healthy == was_healthy_) return;
  was_healthy_ = now_healthy;
  if (now_healthy) {
    spdlog::info(
        "audit feed: healthy (its entries carry this daemon's reads); each key is polled at the resync "
        "interval, {}",
        format_duration(resync_interval_));
  } else {
    spdlog::warn("audit feed: {}; each key is polled at the poll interval again, {}",
                 connected ? "this daemon's own reads stopped coming back through it" : "no device is connected",
                 format_duration(poll_interval_));
  }
  if (auto host = host_.lock()) host->health_changed(now_healthy);
}

asio::awaitable<void> AuditFollower::probe_loop(std::shared_ptr<AuditFollower> self) {
  while (!self->stopping_) {
    const auto now = self->clock_.now();
    // No read of the watcher's came back or is on its way: make one.
    if (self->want_own_read(now)) {
      if (auto host = self->host_.lock()) {
        if (auto key = host->key_after(self->probe_cursor_)) {
          self->probe_cursor_ = *key;
          ++self->counts_.probes;
          (void)co_await host->read(*key, ObservationSource::poll);
        }
      }
    }
    if (self->stopping_) break;
    self->probe_timer_.expires_after(self->options_.probe_interval);
    co_await self->probe_timer_.async_wait(kTuple);
  }
}

AuditFeedHealth AuditFollower::health() const {
  AuditFeedHealth h = counts_;
  h.connected = feed_->connected();
  h.healthy = healthy();
  h.own_read_seen_at = own_read_at_;
  return h;
}

}  // namespace nicsync::watch::detail
