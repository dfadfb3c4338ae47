#pragma once
// One replica among several sharing a PostgreSQL ledger: who leads is decided by the lease row
// (ledger::PostgresLease). The leader renews its lease every `renew`; it steps down, by its own
// monotonic clock, before the lease can run out at the database. A standby reads the lease
// every second or so, and takes it when it ran out, was released, or its holder's database
// session is gone (a crashed leader: no need to wait the lease out).
//
// What leading and standing by mean for the rest of the daemon is the runtime's business (the
// hooks): the replica only decides, and says why.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nicsync/app/config.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/postgres_lease.hpp"

namespace nicsync::app {

struct ReplicaHooks {
  /// Called with the new epoch once the lease is held: fence the ledger, take up the work,
  /// start reading Vault. An error gives the lease back.
  std::function<boost::asio::awaitable<Result<void>>(std::int64_t epoch)> lead;
  /// Called when the lead is lost or given up: stop delivering and reading Vault.
  std::function<boost::asio::awaitable<void>()> stand_by;
  /// Called on a standby every round: follow the leader's records for the views.
  std::function<boost::asio::awaitable<void>()> follow;
  /// The role changed (for systemd's STATUS= and the log).
  std::function<void()> changed;
};

/// What a replica knows about the lead, for status, metrics and forwarding.
struct ReplicaView {
  std::string id;
  bool leader = false;
  std::int64_t epoch = 0;                   ///< the lease's epoch as last seen (held or read)
  std::string leader_id;                    ///< "" when nobody leads
  std::string leader_url;                   ///< the leader's advertise_url
  std::uint64_t leader_changes = 0;         ///< times this replica took or lost the lead
  bool database_reachable = false;          ///< the last lease statement succeeded
  std::string problem;                      ///< why the last lease statement failed
  std::chrono::milliseconds lease_left{0};  ///< leader: until it steps down by its own clock
};

class Replica {
 public:
  /// The replica id and advertise URL [ha] leaves out: host name + ":" + the API port, and
  /// http(s)://<api listen>.
  static std::string default_id(const Config& config);
  static std::string default_url(const Config& config);

  Replica(boost::asio::any_io_executor executor, ledger::PostgresStoreOptions store, const Config& config,
          ReplicaHooks hooks);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  /// Elects, renews and follows until cancelled (the lease stays held: see give_back).
  boost::asio::awaitable<void> run();
  /// After `run` was cancelled and the engine stopped (in-flight pushes recorded under the
  /// lease): gives the lease back, so that a standby takes over at once.
  boost::asio::awaitable<void> give_back();
  /// Gives the lease back now (a clean stop, `nicsyncd lease release`): another replica may
  /// take it at once. Stands by first.
  boost::asio::awaitable<void> step_down(std::string why);

  /// Whether a push may leave now: leading, with more than the safety margin left on the
  /// lease by this process's monotonic clock.
  [[nodiscard]] bool may_push() const noexcept;
  [[nodiscard]] bool leader() const noexcept { return leading_; }
  [[nodiscard]] const std::string& id() const noexcept { return id_; }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] ReplicaView view() const;

 private:
  using Steady = std::chrono::steady_clock;
  boost::asio::awaitable<void> elect();
  boost::asio::awaitable<void> stand_by_round();
  boost::asio::awaitable<void> lead_round();
  boost::asio::awaitable<void> take(ledger::HeldLease held, Steady::time_point asked_at);
  boost::asio::awaitable<void> lose(std::string why);
  /// Steps down when the deadline passes without a renewal, whatever the renewal is doing.
  boost::asio::awaitable<void> guard();
  boost::asio::awaitable<void> pause(std::chrono::milliseconds d);
  void note(const Error& e);

  boost::asio::any_io_executor ex_;
  std::unique_ptr<ledger::PostgresLease> lease_;
  std::string id_;
  std::string url_;
  std::chrono::milliseconds lease_for_;
  std::chrono::milliseconds renew_every_;
  std::chrono::milliseconds margin_;
  ReplicaHooks hooks_;

  bool leading_ = false;
  bool switching_ = false;  // a lead or stand_by hook is under way
  std::int64_t epoch_ = 0;
  Steady::time_point deadline_{};  // leader: step down at this instant
  Steady::time_point renewed_at_{};
  Steady::time_point hold_off_until_{};
  std::string leader_id_;
  std::string leader_url_;
  std::uint64_t changes_ = 0;
  bool reachable_ = false;
  std::string problem_;
  boost::asio::steady_timer wake_;
  boost::asio::steady_timer guard_timer_;
  boost::asio::steady_timer finished_;
  bool running_ = false;
};

}  // namespace nicsync::app
