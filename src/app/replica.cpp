#include "app/replica.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// The port of "host:port" or "[v6]:port".
std::string port_of(const std::string& listen) {
  const auto colon = listen.rfind(':');
  return colon == std::string::npos ? std::string() : listen.substr(colon + 1);
}

std::chrono::milliseconds ms_until(std::chrono::steady_clock::time_point t) {
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now()));
}

}  // namespace

std::string Replica::default_id(const Config& config) {
  if (!config.ha.replica_id.empty()) return config.ha.replica_id;
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0')
    return "nicsyncd:" + port_of(config.api.listen);
  return std::string(host.data()) + ":" + port_of(config.api.listen);
}

std::string Replica::default_url(const Config& config) {
  if (!config.ha.advertise_url.empty()) return config.ha.advertise_url;
  const bool tls = !config.api.tls_cert_file.empty();
  return (tls ? "https://" : "http://") + config.api.listen;
}

Replica::Replica(asio::any_io_executor executor, ledger::PostgresStoreOptions store, const Config& config,
                 ReplicaHooks hooks)
    : ex_(std::move(executor)),
      id_(default_id(config)),
      url_(default_url(config)),
      lease_for_(config.ha.lease),
      renew_every_(config.ha.renew),
      // Covers the rate at which two clocks may drift apart over one lease, and the time a
      // push takes from the check to the wire.
      margin_(std::max<std::chrono::milliseconds>(config.ha.lease / 10, 100ms)),
      hooks_(std::move(hooks)),
      wake_(ex_),
      guard_timer_(ex_, Steady::time_point::max()),
      finished_(ex_) {
  // Every lease statement gets a third of the lease at most: a blackholed connection is given
  // up in time for the next attempt.
  store.io_timeout = std::min(store.io_timeout, lease_for_ / 3);
  store.connect_timeout = std::min(store.connect_timeout, lease_for_ / 3);
  lease_ = std::make_unique<ledger::PostgresLease>(std::move(store));
}

Replica::~Replica() = default;

bool Replica::may_push() const noexcept { return leading_ && !switching_ && Steady::now() + margin_ < deadline_; }

ReplicaView Replica::view() const {
  ReplicaView v;
  v.id = id_;
  v.leader = leading_;
  v.epoch = epoch_;
  v.leader_id = leader_id_;
  v.leader_url = leader_url_;
  v.leader_changes = changes_;
  v.database_reachable = reachable_;
  v.problem = problem_;
  if (leading_) v.lease_left = ms_until(deadline_);
  return v;
}

void Replica::note(const Error& e) {
  if (reachable_ || problem_ != e.message) {
    spdlog::warn("replica {}: the leader lease cannot be read or written: {}", id_, e.describe());
  }
  reachable_ = false;
  problem_ = e.message;
}

asio::awaitable<void> Replica::pause(std::chrono::milliseconds d) {
  wake_.expires_after(d);
  co_await wake_.async_wait(kTuple);
}

asio::awaitable<void> Replica::run() {
  spdlog::info("replica {}: standing by until the leader lease is free (lease {}, renewed every {}; API {})", id_,
               format_duration(lease_for_), format_duration(renew_every_), url_);
  running_ = true;
  try {
    co_await (elect() || guard());
  } catch (const std::exception&) {
    // Cancelled: the daemon is stopping; give_back() hands the lease over.
  }
  running_ = false;
  finished_.cancel();
}

asio::awaitable<void> Replica::elect() {
  for (;;) {
    if (leading_) {
      co_await lead_round();
    } else {
      co_await stand_by_round();
    }
  }
}

asio::awaitable<void> Replica::give_back() {
  while (running_) {
    finished_.expires_at(Steady::time_point::max());
    co_await finished_.async_wait(kTuple);
  }
  if (!leading_) co_return;
  // The engine has stopped: nothing is pushed after this. The lease goes back at once, so a
  // standby need not wait it out.
  leading_ = false;
  auto r = co_await lease_->release(id_, epoch_);
  if (r) {
    spdlog::info("replica {}: gave the leader lease (epoch {}) back", id_, epoch_);
  } else {
    spdlog::warn("replica {}: could not give the leader lease back ({}); another replica takes it when it runs out",
                 id_, r.error().describe());
  }
}

asio::awaitable<void> Replica::stand_by_round() {
  const auto standby_poll = std::min<std::chrono::milliseconds>(renew_every_, 1s);
  auto state = co_await lease_->read();
  if (!state) {
    note(state.error());
    co_await pause(standby_poll);
    co_return;
  }
  reachable_ = true;
  problem_.clear();
  epoch_ = state->epoch;
  leader_id_ = state->live ? state->holder : std::string();
  leader_url_ = state->live ? state->url : std::string();
  // After handing the lead over on purpose, another replica gets two rounds to take it.
  bool try_take = (!state->live || state->holder == id_) && Steady::now() >= hold_off_until_;
  std::optional<std::int64_t> take_over;
  if (!try_take && Steady::now() >= hold_off_until_) {
    // A live lease whose holder's database session is gone: the holder crashed.
    auto gone = co_await lease_->holder_gone(state->epoch);
    if (gone && *gone) {
      try_take = true;
      take_over = state->epoch;
      spdlog::warn("replica {}: the leader {} is gone (its database session ended); taking over", id_, state->holder);
    }
  }
  if (try_take) {
    const auto asked_at = Steady::now();
    auto held = co_await lease_->acquire(id_, url_, lease_for_, take_over);
    if (held && *held) {
      co_await take(**held, asked_at);
      co_return;
    }
    if (!held) note(held.error());
  }
  if (hooks_.follow) co_await hooks_.follow();
  co_await pause(standby_poll);
}

asio::awaitable<void> Replica::take(ledger::HeldLease held, Steady::time_point asked_at) {
  epoch_ = held.epoch;
  deadline_ = asked_at + held.granted - margin_;
  renewed_at_ = asked_at;
  leader_id_ = id_;
  leader_url_ = url_;
  reachable_ = true;
  problem_.clear();
  leading_ = true;
  switching_ = true;
  ++changes_;
  guard_timer_.expires_at(deadline_);
  spdlog::info("replica {}: leading (lease epoch {})", id_, epoch_);
  auto r = co_await hooks_.lead(epoch_);
  switching_ = false;
  if (!r) {
    spdlog::error("replica {}: cannot take up the work: {}; giving the lease back", id_, r.error().describe());
    co_await lose("taking up the work failed");
    (void)co_await lease_->release(id_, held.epoch);
    co_await pause(renew_every_);
    co_return;
  }
  if (hooks_.changed) hooks_.changed();
}

asio::awaitable<void> Replica::lose(std::string why) {
  if (!leading_) co_return;
  leading_ = false;
  switching_ = true;
  ++changes_;
  leader_id_.clear();
  leader_url_.clear();
  guard_timer_.expires_at(Steady::time_point::max());
  spdlog::warn("replica {}: standing by: {}", id_, why);
  if (hooks_.stand_by) co_await hooks_.stand_by();
  // The session lock tells standbys that a leader's process is gone: a standby must not hold
  // it (nor find it "free" because it holds it itself).
  if (auto r = co_await lease_->let_go(); !r) note(r.error());
  switching_ = false;
  if (hooks_.changed) hooks_.changed();
}

asio::awaitable<void> Replica::lead_round() {
  // The next renewal is due `renew` after the last; a failed one is tried again sooner.
  const auto due = renewed_at_ + renew_every_;
  if (Steady::now() < due) {
    wake_.expires_at(std::min(due, deadline_));
    co_await wake_.async_wait(kTuple);
  }
  if (!leading_) co_return;  // the guard stepped down meanwhile
  if (Steady::now() >= deadline_) {
    co_await lose("the lease could not be renewed in time");
    co_return;
  }
  const auto asked_at = Steady::now();
  auto renewed = co_await lease_->renew(id_, epoch_, lease_for_);
  if (!leading_) co_return;
  if (renewed && *renewed) {
    reachable_ = true;
    problem_.clear();
    renewed_at_ = asked_at;
    deadline_ = asked_at + (*renewed)->granted - margin_;
    guard_timer_.expires_at(deadline_);
    co_return;
  }
  if (renewed) {
    co_await lose("another replica holds the lease now (or it ran out)");
    co_return;
  }
  note(renewed.error());
  // Tried again soon, while there is time: a brief database hiccup must not cost the lead.
  renewed_at_ = Steady::now() - renew_every_ + std::min<std::chrono::milliseconds>(renew_every_ / 4, 500ms);
}

asio::awaitable<void> Replica::guard() {
  for (;;) {
    auto [ec] = co_await guard_timer_.async_wait(kTuple);
    if (!ec && leading_ && Steady::now() >= deadline_) {
      co_await lose("the lease could not be renewed before it would run out");
    }
  }
}

asio::awaitable<void> Replica::step_down(std::string why) {
  if (!leading_) co_return;
  const auto epoch = epoch_;
  hold_off_until_ = Steady::now() + 2 * std::min<std::chrono::milliseconds>(renew_every_, 1s) + 200ms;
  co_await lose(std::move(why));
  auto r = co_await lease_->release(id_, epoch);
  if (!r) spdlog::warn("replica {}: could not give the lease back: {}", id_, r.error().describe());
}

}  // namespace nicsync::app
