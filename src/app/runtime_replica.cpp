// What leading and standing by mean for the daemon's parts, with a PostgreSQL ledger:
//   leader:  the ledger fenced to its lease's epoch, the engine delivering (the ledger's records
//            taken up as after a crash), the watcher reading Vault (everything at once first);
//   standby: nothing written, nothing read from Vault, no push; the engine's records follow the
//            leader's so that /v1/status, the page and the metrics show the shared state, and
//            POST /v1/sync goes to the leader.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "app/runtime.hpp"

namespace nicsync::app {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kForwardedHeader = "Nicsync-Forwarded-By";

http::ServerResponse error_answer(int status, std::string message) {
  return http::ServerResponse::json(status, json::serialize(json::object{{"error", std::move(message)}}) + "\n");
}

ledger::PostgresStore* postgres(ledger::Store* store) { return dynamic_cast<ledger::PostgresStore*>(store); }

}  // namespace

Result<void> Runtime::open_replica() {
  auto options = postgres_options(config_);
  if (!options) return options.error();
  ReplicaHooks hooks;
  hooks.lead = [this](std::int64_t epoch) { return lead(epoch); };
  hooks.stand_by = [this] { return stand_by(); };
  hooks.follow = [this] { return follow(); };
  replica_ = std::make_unique<Replica>(ex_, std::move(*options), config_, std::move(hooks));
  // Nothing is written until this replica holds the lease (epoch 0 is never current).
  if (auto* pg = postgres(store_.get())) pg->set_fence(0);
  engine_->set_push_permit([r = replica_.get()] { return r->may_push(); });
  watcher_->pause();
  watcher_->set_standby_hints([this](const std::string& path) { hand_hint_to_leader(path); });
  return {};
}

void Runtime::hand_hint_to_leader(const std::string& path) {
  hints_for_leader_.insert(path);
  if (hints_flushing_) return;
  hints_flushing_ = true;
  asio::co_spawn(ex_, flush_hints_to_leader(), asio::detached);
}

// The hints of the next few milliseconds go together, as one POST /v1/sync to the leader: it
// reads those keys at once, as it would for an audit entry of its own.
asio::awaitable<void> Runtime::flush_hints_to_leader() {
  asio::steady_timer gather(ex_, std::chrono::milliseconds(5));
  co_await gather.async_wait(asio::as_tuple(asio::use_awaitable));
  // While the lead changes hands nobody can take them: they wait (up to a lease) for a leader.
  const auto give_up = std::chrono::steady_clock::now() + config_.ha.lease;
  while (replica_->view().leader_url.empty() && !replica_->leader() && std::chrono::steady_clock::now() < give_up) {
    gather.expires_after(std::chrono::milliseconds(100));
    co_await gather.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto paths = std::exchange(hints_for_leader_, {});
  hints_flushing_ = false;
  const auto v = replica_->view();
  if (v.leader) {
    for (const auto& p : paths) watcher_->hint_changed(p);  // this replica leads now: its own reads
    co_return;
  }
  std::set<std::string> gstins;
  for (const auto& path : paths) {
    for (const auto& g : mapper_->gstins_of(path, config_.gstin_mode)) gstins.insert(g.str());
  }
  if (gstins.empty()) co_return;
  if (v.leader_url.empty()) {
    spdlog::warn("replica {}: {} audit hint(s) dropped: no replica leads; the next full read finds those changes", v.id,
                 gstins.size());
    co_return;
  }
  if (!api_token_) {
    if (!std::exchange(warned_no_hint_token_, true)) {
      spdlog::warn(
          "replica {}: audit entries arrive here, a standby, but cannot be handed to the leader without "
          "[api] token_file; the leader's polling finds those changes",
          v.id);
    }
    co_return;
  }
  json::array list;
  for (const auto& g : gstins) list.emplace_back(g);
  http::Request out;
  out.method = "POST";
  out.url = v.leader_url + "/v1/sync";
  out.body = json::serialize(json::object{{"gstins", std::move(list)}});
  out.sensitive = true;
  out.headers.push_back({"Authorization", "Bearer " + std::string(api_token_->expose())});
  out.headers.push_back({"Content-Type", "application/json"});
  out.headers.push_back({std::string(kForwardedHeader), v.id});
  out.timeout = std::chrono::seconds(75);
  auto answer = co_await http_->request(std::move(out));
  ++hints_handed_;
  if (!answer || answer->status != 200) {
    spdlog::warn("replica {}: could not hand {} audit hint(s) to the leader {}: {}", v.id, gstins.size(), v.leader_id,
                 answer ? fmt::format("HTTP {}", answer->status) : answer.error().describe());
  }
}

asio::awaitable<Result<void>> Runtime::lead(std::int64_t epoch) {
  if (auto* pg = postgres(store_.get())) pg->set_fence(epoch);
  // The ClearTax token and the day's token calls are the previous leader's now.
  for (auto& [name, destination] : destinations_) destination->reread_shared_state();
  if (auto r = co_await engine_->lead(); !r) co_return r.error();
  watcher_->resume();
  co_return Result<void>{};
}

asio::awaitable<void> Runtime::stand_by() {
  // The fence first: from here on nothing this replica queued commits.
  if (auto* pg = postgres(store_.get())) pg->set_fence(0);
  watcher_->pause();
  co_await engine_->stand_by();
}

asio::awaitable<void> Runtime::follow() {
  auto r = co_await engine_->refresh();
  if (!r) spdlog::debug("replica: cannot follow the ledger: {}", r.error().describe());
}

asio::awaitable<Result<void>> Runtime::lead_alone() {
  if (!replica_) co_return Result<void>{};
  asio::co_spawn(ex_, replica_->run(), asio::bind_cancellation_slot(replica_stop_.slot(), asio::detached));
  // The first round reads the lease and takes it if it is free.
  asio::steady_timer tick(ex_);
  const auto until = std::chrono::steady_clock::now() + config_.ha.lease;
  while (!replica_->leader() && std::chrono::steady_clock::now() < until) {
    const auto v = replica_->view();
    if (v.database_reachable && !v.leader_id.empty() && v.leader_id != v.id) break;
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (replica_->leader()) co_return Result<void>{};
  const auto v = replica_->view();
  if (!v.leader_id.empty()) {
    co_return Error(Errc::ledger_fenced,
                    fmt::format("replica {} leads this ledger ({}): run `nicsyncd sync` without --standalone against "
                                "any replica's API, which hands it to the leader",
                                v.leader_id, v.leader_url));
  }
  co_return Error(Errc::ledger_io, fmt::format("cannot take the leader lease: {}",
                                               v.problem.empty() ? std::string("no answer in time") : v.problem));
}

std::vector<std::string> Runtime::standby_not_ready_reasons() const {
  // A standby is ready when it could take over: the database answers.
  std::vector<std::string> out;
  const auto v = replica_->view();
  if (!v.database_reachable) {
    out.push_back(v.problem.empty() ? std::string("ledger: the leader lease has not been read yet")
                                    : "ledger: the leader lease cannot be read: " + v.problem);
  }
  if (auto w = state_dir_->check_writable(); !w) out.push_back("state directory: " + w.error().message);
  return out;
}

asio::awaitable<std::optional<http::ServerResponse>> Runtime::forward_sync(const http::ServerRequest& request) {
  if (!replica_ || replica_->leader()) co_return std::nullopt;
  if (request.header(kForwardedHeader)) {
    // Two replicas that each think the other leads: answer rather than bounce it back.
    co_return error_answer(503, "the leader changed while this request was forwarded; try again");
  }
  const auto v = replica_->view();
  if (v.leader_id.empty() || v.leader_url.empty()) {
    co_return error_answer(503, fmt::format("no replica leads at the moment (this is {}, a standby); try again "
                                            "in a few seconds",
                                            v.id));
  }
  http::Request out;
  out.method = "POST";
  out.url = v.leader_url + "/v1/sync";
  out.body = request.body;
  out.sensitive = true;  // the caller's bearer token
  if (auto a = request.header("Authorization")) out.headers.push_back({"Authorization", std::string(*a)});
  out.headers.push_back({"Content-Type", "application/json"});
  out.headers.push_back({std::string(kForwardedHeader), v.id});
  out.timeout = std::chrono::seconds(75);  // the leader waits up to 60 s for the deliveries
  auto answer = co_await http_->request(std::move(out));
  if (!answer) {
    co_return error_answer(502, fmt::format("this replica ({}) is a standby and could not reach the leader {} at "
                                            "{}: {}",
                                            v.id, v.leader_id, v.leader_url, answer.error().describe()));
  }
  http::ServerResponse forwarded;
  forwarded.status = answer->status;
  forwarded.body = std::move(answer->body);
  if (auto type = answer->header("Content-Type")) forwarded.headers.push_back({"Content-Type", std::string(*type)});
  forwarded.headers.push_back({std::string(kForwardedHeader), v.id});
  co_return forwarded;
}

void Runtime::add_replica_hooks(api::ApiHooks& hooks) {
  hooks.role = [this] { return std::string(replica_->leader() ? "leader" : "standby"); };
  hooks.served_by = [this] { return replica_->id(); };
  hooks.forward_sync = [this](const http::ServerRequest& r) { return forward_sync(r); };
  hooks.release_lease = [this]() -> asio::awaitable<Result<std::string>> {
    if (!replica_->leader()) {
      const auto v = replica_->view();
      co_return Error(
          Errc::invalid_argument,
          v.leader_id.empty()
              ? fmt::format("replica {} is a standby and no replica leads at the moment", v.id)
              : fmt::format("replica {} is a standby; {} leads: ask it (--url {})", v.id, v.leader_id, v.leader_url));
    }
    co_await replica_->step_down("asked to give the lease back (POST /v1/lease/release)");
    co_return fmt::format("replica {} gave the lease back and stands by; another replica takes over", replica_->id());
  };
}

void Runtime::add_replica_details(json::object& out) const {
  const auto v = replica_->view();
  out["role"] = v.leader ? "leader" : "standby";
  json::object o;
  o["id"] = v.id;
  o["advertise_url"] = replica_->url();
  o["epoch"] = v.epoch;
  o["leader"] = v.leader_id.empty() ? json::value(nullptr) : json::value(v.leader_id);
  o["leader_url"] = v.leader_url.empty() ? json::value(nullptr) : json::value(v.leader_url);
  o["leader_changes"] = v.leader_changes;
  o["database_reachable"] = v.database_reachable;
  if (!v.problem.empty()) o["problem"] = v.problem;
  if (v.leader) o["lease_left_ms"] = v.lease_left.count();
  out["replica"] = std::move(o);
}

void Runtime::add_replica_metrics(api::MetricsWriter& w) const {
  const auto v = replica_->view();
  w.gauge("nicsync_leader", "1 while this replica holds the leader lease.", {}, v.leader ? 1 : 0);
  w.gauge("nicsync_lease_epoch", "The leader lease's epoch as this replica last saw it.", {},
          static_cast<double>(v.epoch));
  w.counter("nicsync_leader_changes_total", "Times this replica took or lost the lead.", {},
            static_cast<double>(v.leader_changes));
  w.counter("nicsync_audit_hints_to_leader_total", "Batches of audit hints this standby handed to the leader.", {},
            static_cast<double>(hints_handed_));
  w.gauge("nicsync_lease_database_reachable", "1 while the last lease statement succeeded.", {},
          v.database_reachable ? 1 : 0);
}

}  // namespace nicsync::app
