// The chaos suite: the real nicsyncd serves 300 GSTINs at two destinations (the test ClearTax
// and a webhook into its /hooks/ recorder) while a driver writes credential rotations into the
// test Vault and injects faults at random: Vault sealed, 5xx, 429, latency, dropped connections,
// revoked tokens and a rotated AppRole secret id; destination 5xx, 429 with Retry-After, hangs
// past the deadline, connections dropped mid-response, `success:false` with a transient code,
// revoked ClearTax access tokens; SIGKILL + restart and SIGHUP with a changed configuration; on
// the audit feed ([watch.audit], fed by the test Vault's device and a node of the test's own:
// audit_injector.hpp) connections dropped mid-entry, garbage lines, entries twice, reordered,
// for unknown paths, and entries that come before their version can be read.
// When the faults stop, every GSTIN must reach its newest version at every destination within a
// stated bound, and the record must be clean: no older version after a newer one, no repeats
// beyond one per lost answer or crash, a ledger, /v1/status and /metrics that agree with the
// destinations, and no planted secret in any output, log, ledger or core file.
//
// Seeded and reproducible: the seed decides the whole timeline (what happens, to which GSTIN,
// with which parameters, at which offset); only the interleaving with the daemon's own timing
// differs between runs. Settings (environment):
//   NICSYNC_CHAOS_SEED       replay a run (the seed is printed first and last)
//   NICSYNC_CHAOS_SECONDS    length of the fault phase (default 90)
//   NICSYNC_CHAOS_ROTATIONS  rotations in it (default 1000, scaled up with SECONDS)
//   NICSYNC_CHAOS_FAULTS     faults in it (default 500, scaled up with SECONDS)
//   NICSYNC_CHAOS_GSTINS     GSTINs (default 300)
//   NICSYNC_CHAOS_REPLICAS=2 two replicas on a PostgreSQL ledger (a server the test starts); the
//                            leader is the one killed, and every other kill is a pause past its
//                            lease (SIGSTOP, then SIGCONT) instead
//   NICSYNC_CHAOS_KEEP=1     keep the test directory (daemon log, state) even when the run passes
//                            (a failed run always keeps it and says where)
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "chaos/audit_injector.hpp"
#include "chaos/record.hpp"
#include "chaos/summary.hpp"
#include "chaos/timeline.hpp"
#include "nicsync/ledger/keys.hpp"
#include "nicsync/ledger/postgres_store.hpp"
#include "nicsync/ledger/sqlite_store.hpp"
#include "testing/postgres_server.hpp"
#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Daemon;
using testing::DaemonConfig;
using testing::World;
using testing::world_gstin;
using namespace nicsync::chaos;
using testing::read_all;

std::string tail(const std::string& s, std::size_t n = 6000) { return s.size() <= n ? s : s.substr(s.size() - n); }

// --- the suite ---------------------------------------------------------------------------------

class Chaos : public ::testing::Test {
 protected:
  Chaos()
      : settings_(Settings::from_env()),
        rng_(settings_.seed),
        nonce_rng_(settings_.seed ^ 0x9e3779b97f4a7c15ULL),
        world_(World::Options{.enterprise = settings_.events, .event_ping_interval = 2s, .audit_devices = devices()}) {}

  // The test Vault's audit devices: the daemon's feed, and a spare.
  std::vector<fakes::AuditDeviceOptions> devices() const {
    std::vector<fakes::AuditDeviceOptions> out(2);
    out[0].address = fmt::format("127.0.0.1:{}", audit_port_);
    out[1].address = spare_.address();
    return out;
  }

  void SetUp() override {
    std::cout << fmt::format("chaos: seed {} (replay: {})", settings_.seed, settings_.replay()) << std::endl;
    if (settings_.keep) dir_.keep();
    world_.seed_cleartax_secret();
    // Short AppRole tokens: renewals and max-TTL re-logins happen during the run too.
    world_.enable_approle({.ttl = 20s, .max_ttl = 60s});
    secret_ids_.push_back(world_.approle_secret_id());
    for (int i = 0; i < settings_.gstins; ++i) gstins_.push_back(world_gstin(i));
    versions_.assign(gstins_.size(), 0);
    if (settings_.replicas == 2) {
      pg_ = std::make_unique<testing::PostgresServer>();
      pg_->create_role_and_database("nicsync", kPgPassword);
      // Given to the replicas, like credentials/: outside the directories scanned for leaks.
      testing::write_file(pg_dir_.file("ledger-url"), pg_->conninfo("nicsync", "nicsync", kPgPassword) + "\n");
      std::filesystem::permissions(pg_dir_.file("ledger-url"),
                                   std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      auto keys = ledger::LedgerKeys::generate();
      ASSERT_TRUE(keys && ledger::write_keys_file(pg_dir_.file("ledger-keys"), *keys, false));
    }
  }

  static constexpr const char* kPgPassword = "Chaos-Pg-Pw-3b71f0";

  /// The replica that leads now (with one replica: the daemon).
  Daemon& leader() {
    if (!daemon_b_) return *daemon_;
    for (Daemon* d : {daemon_.get(), daemon_b_.get()}) {
      auto r = d->request("GET", "/readyz");
      if (r && r->body.find("\"role\":\"leader\"") != std::string::npos) return *d;
    }
    return *daemon_;
  }
  std::vector<Daemon*> daemons() {
    std::vector<Daemon*> out{daemon_.get()};
    if (daemon_b_) out.push_back(daemon_b_.get());
    return out;
  }

  void TearDown() override {
    if (HasFailure()) {
      dir_.keep();  // the evidence: daemon.log, the state directory (ledger), the config
      std::cout << "chaos: FAILED; replay with: " << settings_.replay() << "; kept " << dir_.path().string()
                << std::endl;
      if (daemon_) std::cout << "chaos: daemon output (tail):\n" << tail(daemon_->process().output()) << std::endl;
    }
  }

  static std::string username(const std::string& gstin) { return "api_" + gstin.substr(2, 10); }

  void rotate(int i) {
    lagging_.put(i, true);  // a key's versions are written in order
    const std::int64_t v = ++versions_[static_cast<std::size_t>(i)];
    const std::string nonce = fmt::format("zq{:014x}", nonce_rng_() & 0xffffffffffffffULL);  // 56 bits: 14 hex digits
    const std::string password = fmt::format("Pw\"{}\\v{}<{}>ü", gstins_[static_cast<std::size_t>(i)], v, nonce);
    needles_.nonces.insert(nonce);
    planted_.emplace(password, std::make_pair(i, v));
    if (lagging_.take()) {
      injector_.rotation(gstins_[static_cast<std::size_t>(i)], v, password);
      lagging_.hold(i, v, password);
      return;
    }
    put(i, v, password);
    if (daemon_) injector_.rotation(gstins_[static_cast<std::size_t>(i)], v, password);
  }

  void put(int i, std::int64_t v, const std::string& password) {
    const auto got = world_.put_credential(gstins_[static_cast<std::size_t>(i)],
                                           username(gstins_[static_cast<std::size_t>(i)]), password);
    ASSERT_EQ(got, v) << gstins_[static_cast<std::size_t>(i)];
  }

  /// `second`: the second replica (no audit listener of its own: the first hands it on).
  DaemonConfig daemon_config(bool second = false) const {
    DaemonConfig c;
    // A third mapped explicitly, all of them through the mapping set (the explicit mapping wins).
    for (int i = 0; i < settings_.gstins / 3; ++i) c.gstins.push_back(gstins_[static_cast<std::size_t>(i)]);
    c.mapping_set = true;
    c.webhook = true;
    c.destinations = {"cleartax", "hook"};
    c.vault_auth = "approle";
    c.watch_mode = settings_.events ? "events" : "poll";
    c.poll_interval = "2s";
    c.resync_interval = "4s";
    c.jitter = "200ms";
    c.backoff_base = "100ms";
    c.backoff_cap = "2s";
    c.stop_grace = "2s";
    c.push_timeout = "3s";
    c.concurrency = 16;
    c.vault_extra = "timeout = \"5s\"\nmax_retries = 2\n";
    c.sync_extra = "max_retry_after = \"3s\"\n";
    c.destination_extra = "breaker_open_for = \"1s\"\nconnect_timeout = \"2s\"\n";
    c.cleartax_extra = "token_calls_per_hour = 288\n";
    c.extra = second ? std::string() : fmt::format("[watch.audit]\nlisten = \"127.0.0.1:{}\"\n", audit_port_);
    if (settings_.replicas == 2) {
      c.extra += fmt::format(
          "[ledger]\nbackend = \"postgresql\"\nurl_file = \"{}\"\nschema = \"chaos\"\nkeys_file = \"{}\"\n"
          "[ha]\nreplica_id = \"replica-{}\"\nlease = \"2s\"\nrenew = \"500ms\"\n",
          pg_dir_.file("ledger-url"), pg_dir_.file("ledger-keys"), second ? "b" : "a");
    }
    return c;
  }

  // --- process control -------------------------------------------------------------------

  /// Fails the test if nicsyncd exited without being told to.
  bool daemon_alive() {
    for (Daemon* d : daemons()) {
      if (d->process().running()) continue;
      ADD_FAILURE() << "nicsyncd exited on its own (status " << d->process().wait(1s).value_or(-1)
                    << ") at t=" << since_start() << " s";
      return false;
    }
    return true;
  }

  bool start_daemon(Daemon& d) {
    d.start();
    if (!d.wait_started(30s)) {
      ADD_FAILURE() << "nicsyncd did not become ready within 30 s";
      return false;
    }
    return true;
  }
  bool start_daemon() { return start_daemon(*daemon_); }

  bool reload(int variant) {
    ++counts_[static_cast<int>(FaultKind::daemon_sighup)];
    for (Daemon* d : daemons()) {
      auto& c = d->config();
      switch (variant) {
        case 0: c.log_format = c.log_format == "text" ? "json" : "text"; break;
        case 1: c.concurrency = c.concurrency == 16 ? 8 : 16; break;
        default: c.push_timeout = c.push_timeout == "3s" ? "2s" : "3s"; break;
      }
      d->write_config();
      d->mark_output();
      d->signal(SIGHUP);
      if (!d->wait_for_log("configuration reloaded", 20s)) {
        ADD_FAILURE() << "SIGHUP: no \"configuration reloaded\" within 20 s"
                      << (d->process().running() ? "" : "; nicsyncd is gone: ")
                      << (d->process().running() ? -1 : d->process().wait(1s).value_or(-1));
        return false;
      }
    }
    return true;
  }

  bool crash_and_restart(bool reload_after, int variant) {
    Daemon& d = leader();
    ++crashes_;
    ++counts_[static_cast<int>(FaultKind::daemon_sigkill)];
    if (daemon_b_ && crashes_ % 2 == 0) {
      // Paused past its lease: the other replica takes over; woken, it must stand by.
      d.signal(SIGSTOP);
      std::this_thread::sleep_for(2600ms);  // the lease (2 s) and the margin
      d.signal(SIGCONT);
      ++pauses_;
      return !reload_after || reload(variant);
    }
    d.process().kill();
    if (!start_daemon(d)) return false;
    return !reload_after || reload(variant);
  }

  // --- faults ------------------------------------------------------------------------------

  /// A destination fault replaces the previous one: the test ClearTax applies a rule to the
  /// next matching requests however late they come, so rules left to pile up would fail every
  /// push for as long as faults keep coming (an outage, not chaos).
  void add_destination_fault(const fakes::Fault& f) {
    world_.call([&] {
      world_.cleartax().clear_faults();
      world_.cleartax().add_fault(f);
    });
  }

  /// The same for Vault: a request fault replaces the one before it. (Without a token the
  /// daemon sends one login at a time, so queued faults would fail every login for as long as
  /// faults keep coming.)
  void add_vault_fault(const fakes::FaultSpec& f) {
    world_.call([&] {
      world_.vault().clear_faults();
      world_.vault().fail_next(f);
    });
  }

  bool inject(const Event& e) {
    using fakes::Fault;
    using fakes::FaultAction;
    const std::string dest_path = e.hooks ? std::string("/hooks/*") : std::string(fakes::FakeClearTax::kStorePath);
    switch (e.kind) {
      case FaultKind::daemon_sigkill: return crash_and_restart(e.reload_after, e.variant);
      case FaultKind::daemon_sighup: return reload(e.variant);
      case FaultKind::vault_sealed:
        if (sealed_++ == 0) world_.call([&] { world_.vault().seal(); });
        break;
      case FaultKind::vault_5xx: add_vault_fault({.count = e.n, .status = e.status}); break;
      case FaultKind::vault_429: add_vault_fault({.count = e.n, .status = 429, .retry_after_seconds = 1}); break;
      case FaultKind::vault_latency:
        ++slow_;
        world_.call([&] { world_.vault().set_latency(milliseconds(e.n)); });
        break;
      case FaultKind::vault_dropped_connection: {
        if (e.variant == 0) {
          world_.call([&] { world_.vault().drop_connections(); });
          break;
        }
        fakes::FaultSpec f;
        f.kind = e.variant == 1   ? fakes::FaultSpec::Kind::drop
                 : e.variant == 2 ? fakes::FaultSpec::Kind::reset
                                  : fakes::FaultSpec::Kind::truncate;  // the answer cut off mid-body
        f.count = e.n;
        f.truncate_at = 10;
        add_vault_fault(f);
        break;
      }
      case FaultKind::vault_token_revoked:
        world_.call([&] { return world_.vault().revoke_role_tokens(World::kAppRole); });
        break;
      case FaultKind::vault_secret_id_rotated:
        daemon_->rotate_secret_id();
        secret_ids_.push_back(world_.approle_secret_id());
        if (daemon_b_) daemon_b_->write_secret_id(world_.approle_secret_id());
        break;
      case FaultKind::dest_5xx: {
        Fault f{.path = e.variant == 1 && !e.hooks ? std::string(fakes::FakeClearTax::kTokenPath) : dest_path,
                .times = e.n,
                .action = FaultAction::status,
                .status = e.status};
        add_destination_fault(f);
        break;
      }
      case FaultKind::dest_429_retry_after: {
        Fault f{.path = dest_path, .times = e.n, .action = FaultAction::status, .status = 429, .retry_after = 1s};
        add_destination_fault(f);
        break;
      }
      case FaultKind::dest_hang: {
        Fault f{.path = dest_path, .times = e.n, .action = FaultAction::hang, .apply_first = e.apply_first};
        add_destination_fault(f);
        break;
      }
      case FaultKind::dest_dropped_mid_response: {
        Fault f{.path = dest_path, .times = e.n};
        if (e.variant < 2) {
          f.action = FaultAction::truncate;  // the answer's headers, then part of the body
          f.truncate_at = static_cast<std::size_t>(e.variant * 5);
        } else {
          f.action = e.variant == 2 ? FaultAction::drop : FaultAction::reset;
          f.apply_first = e.apply_first;
        }
        add_destination_fault(f);
        break;
      }
      case FaultKind::dest_success_false: {
        Fault f{.path = std::string(fakes::FakeClearTax::kStorePath),
                .times = e.n,
                .action = FaultAction::success_false,
                .code = e.variant % 2 == 0 ? "301" : "302"};
        add_destination_fault(f);
        break;
      }
      case FaultKind::cleartax_token_revoked: world_.call([&] { world_.cleartax().revoke_tokens(); }); break;
      case FaultKind::audit_connection_dropped:
        if (e.variant % 2 == 0) {
          injector_.drop_connection_mid_entry();
        } else {
          world_.call([&] { world_.vault().break_audit_connections(); });
        }
        break;
      case FaultKind::audit_garbage: injector_.garbage(e.n, e.variant); break;
      case FaultKind::audit_duplicated: injector_.duplicate_next(e.n); break;
      case FaultKind::audit_reordered: injector_.reorder_next(e.n); break;
      case FaultKind::audit_unknown_paths: injector_.unknown_paths(e.n); break;
      case FaultKind::audit_standby_lag: lagging_.start(e.n, e.length); break;
      case FaultKind::count_: break;
    }
    ++counts_[static_cast<int>(e.kind)];
    return true;
  }

  void end_seal() {
    if (--sealed_ == 0) world_.call([&] { world_.vault().unseal(); });
  }
  void end_latency() {
    if (--slow_ == 0) world_.call([&] { world_.vault().set_latency(0ms); });
  }
  void stop_all_faults() {
    sealed_ = 0;
    slow_ = 0;
    lagging_.stop();
    injector_.flush();
    world_.call([&] {
      world_.vault().unseal();
      world_.vault().set_latency(0ms);
      world_.vault().clear_faults();
      world_.cleartax().clear_faults();
      world_.cleartax().release_hangs();
    });
  }

  // --- observation -------------------------------------------------------------------------

  double since_start() const { return std::chrono::duration<double>(Steady::now() - start_).count(); }

  /// Every push both destinations received, in receive order.
  std::vector<Received> received() {
    auto stores = world_.call([&] { return world_.cleartax().requests(fakes::FakeClearTax::kStorePath); });
    auto hooks = world_.call([&] { return world_.cleartax().requests("/hooks/*"); });
    std::vector<Received> out;
    auto add = [&](const fakes::RecordedRequest& r, const std::string& dest) {
      Received x;
      x.seq = r.seq;
      x.dest = dest;
      x.outcome = r.outcome;
      x.effective = r.outcome.starts_with(dest == "hook" ? "hook" : "stored");
      x.ambiguous = x.effective && r.outcome.find("+fault:") != std::string::npos;
      x.idempotency_key = std::string(r.header("Idempotency-Key").value_or(""));
      if (r.outcome.starts_with("bad_request")) {
        corrupt_.push_back(
            fmt::format("{} seq {}: the test ClearTax refused the request as malformed ({})", dest, r.seq, r.outcome));
      }
      boost::system::error_code ec;
      auto body = boost::json::parse(r.body, ec);
      const boost::json::value* pw = ec || !body.is_object() ? nullptr : body.as_object().if_contains("password");
      auto it = pw && pw->is_string() ? planted_.find(std::string(pw->as_string())) : planted_.end();
      if (it == planted_.end()) {
        corrupt_.push_back(fmt::format("{} seq {}: a password that was never planted", dest, r.seq));
      } else {
        x.gstin = it->second.first;
        x.version = it->second.second;
        const auto& o = body.as_object();
        const auto* user = o.if_contains("username");
        if (!user || !user->is_string() || user->as_string() != username(gstins_[static_cast<std::size_t>(x.gstin)])) {
          corrupt_.push_back(fmt::format("{} seq {}: wrong username", dest, r.seq));
        }
        const auto* g = o.if_contains("gstin");
        if (!g || !g->is_string() || g->as_string() != gstins_[static_cast<std::size_t>(x.gstin)]) {
          corrupt_.push_back(fmt::format("{} seq {}: wrong gstin", dest, r.seq));
        }
        if (dest == "hook") {
          const auto* v = o.if_contains("version");
          if (!v || !v->is_int64() || v->as_int64() != x.version) {
            corrupt_.push_back(fmt::format("hook seq {}: version field does not match the password's", r.seq));
          }
        }
      }
      out.push_back(std::move(x));
    };
    corrupt_.clear();
    for (const auto& r : stores) add(r, "cleartax");
    for (const auto& r : hooks) add(r, "hook");
    std::sort(out.begin(), out.end(), [](const Received& a, const Received& b) { return a.seq < b.seq; });
    return out;
  }

  /// What each destination holds now: the version of its last applied push per GSTIN.
  std::map<std::string, std::vector<std::int64_t>> held(const std::vector<Received>& all) {
    std::map<std::string, std::vector<std::int64_t>> out;
    for (const char* d : {"cleartax", "hook"}) out[d].assign(gstins_.size(), 0);
    for (const auto& r : all) {
      if (r.effective && r.gstin >= 0) out[r.dest][static_cast<std::size_t>(r.gstin)] = r.version;
    }
    return out;
  }

  /// Everything delivered and recorded: why not, when it is not.
  std::optional<std::string> not_converged() {
    const auto all = received();
    const auto h = held(all);
    for (const auto& [dest, versions] : h) {
      for (std::size_t i = 0; i < gstins_.size(); ++i) {
        if (versions[i] != versions_[i]) {
          return fmt::format("{} holds v{} of {}, Vault has v{}", dest, versions[i], gstins_[i], versions_[i]);
        }
      }
    }
    // The test ClearTax's own view must agree with the recorded stores.
    const auto stored = world_.call([&] { return world_.cleartax().stored_all(); });
    for (std::size_t i = 0; i < gstins_.size(); ++i) {
      auto it = stored.find(gstins_[i]);
      if (it == stored.end()) return "ClearTax holds nothing for " + gstins_[i];
      auto p = planted_.find(it->second.password);
      if (p == planted_.end() || p->second.second != versions_[i]) return "ClearTax's stored value for " + gstins_[i];
    }
    auto status = daemon_->get_json("/v1/status");
    if (!status) return std::string("/v1/status unreachable");
    std::size_t pairs = 0;
    for (const auto& pv : status->at("pairs").as_array()) {
      const auto& p = pv.as_object();
      ++pairs;
      const std::string g(p.at("gstin").as_string());
      const auto idx = static_cast<std::size_t>(index_.at(g));
      if (p.at("state").as_string() != "in_sync" || !p.at("applied_version").is_int64() ||
          p.at("applied_version").as_int64() != versions_[idx]) {
        return fmt::format("/v1/status: {} at {} is {} (applied {})", g, std::string(p.at("destination").as_string()),
                           std::string(p.at("state").as_string()), boost::json::serialize(p.at("applied_version")));
      }
    }
    if (pairs != 2 * gstins_.size()) return fmt::format("/v1/status lists {} pairs", pairs);
    return std::nullopt;
  }

  /// What the daemon says about the pairs that are not in sync, and its last words on `gstin`.
  std::string diagnose(const std::string& why) {
    std::string out;
    if (auto status = daemon_->get_json("/v1/status")) {
      int shown = 0;
      for (const auto& p : status->at("pairs").as_array()) {
        if (p.at("state").as_string() == "in_sync" || ++shown > 8) continue;
        out += "\n  " + boost::json::serialize(p);
      }
    }
    std::string gstin;
    for (const auto& g : gstins_) {
      if (why.find(g) != std::string::npos) gstin = g;
    }
    if (!gstin.empty()) {
      out += "\nlog lines on " + gstin + ":";
      std::istringstream lines(read_all(dir_.file("daemon.log")));
      std::deque<std::string> last;
      for (std::string line; std::getline(lines, line);) {
        if (line.find(gstin) == std::string::npos) continue;
        last.push_back(line);
        if (last.size() > 25) last.pop_front();
      }
      for (const auto& l : last) out += "\n  " + l;
      auto reqs = world_.call([&] { return world_.cleartax().requests(); });
      out += "\nrequests for " + gstin + ":";
      for (const auto& r : reqs) {
        if (r.body.find(gstin) == std::string::npos && r.path.find(gstin) == std::string::npos) continue;
        auto it = planted_.end();
        boost::system::error_code ec;
        auto body = boost::json::parse(r.body, ec);
        if (!ec && body.is_object()) {
          if (const auto* pw = body.as_object().if_contains("password"); pw && pw->is_string()) {
            it = planted_.find(std::string(pw->as_string()));
          }
        }
        out += fmt::format("\n  seq {} {} {} v{} status {} outcome {}", r.seq, r.method, r.path,
                           it == planted_.end() ? -1 : it->second.second, r.status, r.outcome);
      }
    }
    return out;
  }

  /// Waits until everything converged; returns the time it took, or nothing past `bound`.
  std::optional<double> wait_converged(seconds bound, std::string& why) {
    const auto t0 = Steady::now();
    for (;;) {
      if (!daemon_alive()) return std::nullopt;
      auto reason = not_converged();
      const double took = std::chrono::duration<double>(Steady::now() - t0).count();
      if (!reason) return took;
      why = *reason;
      if (Steady::now() - t0 > bound) return std::nullopt;
      std::this_thread::sleep_for(250ms);  // other processes' state: no event to wait on
    }
  }

  Settings settings_;
  std::mt19937_64 rng_;
  std::mt19937_64 nonce_rng_;
  std::uint16_t audit_port_ = testing::free_port();  // the daemon's [watch.audit] listen
  SpareAuditDevice spare_;
  World world_;
  AuditInjector injector_{audit_port_, settings_.seed ^ 0x5bd1e995ULL};
  LaggingWrites lagging_{[this](int i, std::int64_t v, const std::string& pw) { put(i, v, pw); }};
  testing::TempDir dir_{"nicsync-chaos"};
  testing::TempDir dir_b_{"nicsync-chaos-b"};    // the second replica's
  testing::TempDir pg_dir_{"nicsync-chaos-pg"};  // the replicas' ledger URL and keys
  std::unique_ptr<testing::PostgresServer> pg_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Daemon> daemon_b_;
  int pauses_ = 0;
  std::vector<std::string> gstins_;
  std::unordered_map<std::string, int> index_;
  std::vector<std::int64_t> versions_;
  std::unordered_map<std::string, std::pair<int, std::int64_t>> planted_;  // password → (gstin, version)
  std::vector<std::string> corrupt_;
  std::vector<std::string> secret_ids_;
  Needles needles_;
  int counts_[kFaultKinds] = {};
  int crashes_ = 0;
  int sealed_ = 0;
  int slow_ = 0;
  Steady::time_point start_ = Steady::now();
};

TEST_F(Chaos, EveryGstinConvergesAndTheRecordIsClean) {
  const auto wall_start = Steady::now();
  for (std::size_t i = 0; i < gstins_.size(); ++i) index_[gstins_[i]] = static_cast<int>(i);
  for (int i = 0; i < settings_.gstins; ++i) {
    rotate(i);
    ASSERT_FALSE(HasFatalFailure());
  }
  const auto timeline = make_timeline(settings_, rng_);

  daemon_ = std::make_unique<Daemon>(world_, dir_, daemon_config());
  start_ = Steady::now();
  ASSERT_TRUE(start_daemon()) << daemon_->process().output();
  if (settings_.replicas == 2) {
    if (settings_.keep) dir_b_.keep();
    daemon_b_ = std::make_unique<Daemon>(world_, dir_b_, daemon_config(true));
    ASSERT_TRUE(start_daemon(*daemon_b_)) << daemon_b_->process().output();
  }
  std::string why;
  const auto initial = wait_converged(settings_.convergence_bound, why);
  ASSERT_TRUE(initial) << "initial sync: " << why << diagnose(why);
  std::cout << fmt::format("chaos: initial sync of {} pairs in {:.1f} s; {} events over {} s", 2 * gstins_.size(),
                           *initial, timeline.size(), settings_.duration.count() / 1000)
            << std::endl;

  // --- the fault phase ---
  auto last_seq = [&] {
    return world_.call([&] {
      auto all = world_.cleartax().requests();
      return all.empty() ? std::uint64_t{0} : all.back().seq;
    });
  };
  const std::uint64_t phase_first_seq = last_seq() + 1;
  int rotations = 0;
  const auto phase_start = Steady::now();
  auto next_progress = phase_start + 10s;
  for (const auto& e : timeline) {
    std::this_thread::sleep_until(phase_start + e.at);  // pacing the load, not waiting on an event
    if (!daemon_alive()) return;
    lagging_.put();
    switch (e.type) {
      case Event::Type::rotate:
        rotate(e.gstin);
        ASSERT_FALSE(HasFatalFailure());
        ++rotations;
        break;
      case Event::Type::fault:
        if (!inject(e)) return;
        break;
      case Event::Type::unseal: end_seal(); break;
      case Event::Type::end_latency: end_latency(); break;
      case Event::Type::probe: {
        auto r = daemon_->request("GET", "/healthz");
        ASSERT_TRUE(r && r->status == 200) << "nicsyncd did not answer /healthz within 10 s at t=" << since_start();
        break;
      }
    }
    if (Steady::now() >= next_progress) {
      int faults = 0;
      for (int c : counts_) faults += c;
      std::cout << fmt::format("chaos: t={:.0f} s rotations={} faults={} crashes={}", since_start(), rotations, faults,
                               crashes_)
                << std::endl;
      next_progress += 10s;
    }
  }

  // --- faults stop: convergence ---
  stop_all_faults();
  const std::uint64_t phase_last_seq = last_seq();
  ASSERT_TRUE(daemon_alive());
  const auto converged = wait_converged(settings_.convergence_bound, why);
  ASSERT_TRUE(converged) << "not converged " << settings_.convergence_bound.count()
                         << " s after the faults stopped: " << why << diagnose(why);

  // --- the record: order, repeats, corruption ---
  const auto all = received();
  EXPECT_EQ(corrupt_, std::vector<std::string>{});
  std::map<std::pair<std::string, int>, std::int64_t> newest_seen;
  std::vector<std::string> out_of_order;
  struct Tally {
    int effective = 0, ambiguous = 0;
  };
  std::map<std::tuple<std::string, int, std::int64_t>, Tally> tally;
  std::map<std::string, int> received_by_dest, effective_by_dest, effective_in_phase, failed_by_fault;
  for (const auto& r : all) {
    ++received_by_dest[r.dest];
    if (r.gstin < 0) continue;
    auto& newest = newest_seen[{r.dest, r.gstin}];
    if (r.version < newest && out_of_order.size() < 20) {
      out_of_order.push_back(fmt::format("{} seq {}: {} v{} after v{} ({})", r.dest, r.seq,
                                         gstins_[static_cast<std::size_t>(r.gstin)], r.version, newest, r.outcome));
    }
    newest = std::max(newest, r.version);
    if (r.outcome.find("fault:") != std::string::npos) ++failed_by_fault[r.dest];
    if (r.effective && r.seq >= phase_first_seq && r.seq <= phase_last_seq) ++effective_in_phase[r.dest];
    if (r.effective) {
      ++effective_by_dest[r.dest];
      auto& t = tally[{r.dest, r.gstin, r.version}];
      ++t.effective;
      if (r.ambiguous) ++t.ambiguous;
    }
  }
  EXPECT_EQ(out_of_order, std::vector<std::string>{}) << "a destination received an older version after a newer one";
  // Progress while the faults go on, not only once they stop: at least a quarter of the
  // rotations reach each destination during the fault phase (coalescing merges the rest).
  for (const char* d : {"cleartax", "hook"}) {
    EXPECT_GE(effective_in_phase[d], rotations / 4) << d << ": too little delivered while the faults went on";
  }
  int repeats = 0, by_lost_answers = 0, by_crashes = 0;
  std::map<std::string, int> unexplained_by_dest;
  std::vector<std::string> too_many;
  for (const auto& [key, t] : tally) {
    const int extra = t.effective - 1;
    if (extra <= 0) continue;
    repeats += extra;
    const int lost = std::min(extra, t.ambiguous);
    by_lost_answers += lost;
    const int unexplained = extra - lost;
    by_crashes += unexplained;
    unexplained_by_dest[std::get<0>(key)] += unexplained;
    if (unexplained > crashes_ && too_many.size() < 20) {
      too_many.push_back(fmt::format("{} {} v{}: applied {} times, {} answer(s) lost, {} crash(es)", std::get<0>(key),
                                     gstins_[static_cast<std::size_t>(std::get<1>(key))], std::get<2>(key), t.effective,
                                     t.ambiguous, crashes_));
    }
  }
  EXPECT_EQ(too_many, std::vector<std::string>{}) << "a version was pushed more than once plus one per crash";
  // Exactly once in effect where the provider dedupes: every push of a version carries the same
  // Idempotency-Key, and no two versions share one.
  EXPECT_EQ(idempotency_problems(all, gstins_), std::vector<std::string>{});
  // A crash repeats at most the pushes in flight then: at most `concurrency` per destination.
  for (const auto& [dest, n] : unexplained_by_dest) {
    EXPECT_LE(n, crashes_ * 16) << dest << ": more repeats than pushes could have been in flight at the crashes";
  }

  // --- /v1/status, /metrics and the CLI agree (and leak nothing) ---
  auto status_r = daemon_->request("GET", "/v1/status");
  auto metrics_r = daemon_->request("GET", "/metrics");
  ASSERT_TRUE(status_r && status_r->status == 200);
  ASSERT_TRUE(metrics_r && metrics_r->status == 200);
  const auto status = boost::json::parse(status_r->body).as_object();
  EXPECT_TRUE(status.at("ready").as_bool()) << status_r->body.substr(0, 2000);
  std::map<std::string, std::int64_t> status_counts, metrics_counts, pair_counts;
  for (const auto& [state, n] : status.at("counts").as_object()) status_counts[std::string(state)] = n.as_int64();
  for (const auto& p : status.at("pairs").as_array()) ++pair_counts[std::string(p.at("state").as_string())];
  {
    std::istringstream lines(metrics_r->body);
    for (std::string line; std::getline(lines, line);) {
      static const std::string kPrefix = "nicsync_pairs{state=\"";
      if (!line.starts_with(kPrefix)) continue;
      const auto close = line.find("\"}", kPrefix.size());
      ASSERT_NE(close, std::string::npos) << line;
      metrics_counts[line.substr(kPrefix.size(), close - kPrefix.size())] = std::stoll(line.substr(close + 3));
    }
  }
  auto nonzero = [](std::map<std::string, std::int64_t> m) {
    std::erase_if(m, [](const auto& kv) { return kv.second == 0; });
    return m;
  };
  const std::map<std::string, std::int64_t> all_in_sync = {{"in_sync", 2 * settings_.gstins}};
  EXPECT_EQ(nonzero(status_counts), all_in_sync);
  EXPECT_EQ(nonzero(metrics_counts), all_in_sync);
  EXPECT_EQ(nonzero(pair_counts), all_in_sync);
  testing::Process cli({.argv = {testing::built_program("nicsyncd"), "status", "--url", daemon_->url("")}});
  EXPECT_EQ(cli.wait(30s), 0) << cli.output();

  // --- stop, then the ledger ---
  for (Daemon* d : daemons()) {
    d->signal(SIGTERM);
    EXPECT_EQ(d->process().wait(30s), 0) << "SIGTERM after convergence";
  }
  Result<std::unique_ptr<ledger::Store>> store = Error(Errc::internal, "no ledger");
  if (pg_) {
    ledger::PostgresStoreOptions po;
    po.conninfo_file = pg_dir_.file("ledger-url");
    po.schema = "chaos";
    auto s = ledger::PostgresStore::open(po);
    if (s) store = std::unique_ptr<ledger::Store>(std::move(*s));
  } else {
    ledger::SqliteStoreOptions so;
    so.path = std::filesystem::path(daemon_->state_dir()) / ledger::SqliteStore::kFileName;
    auto s = ledger::SqliteStore::open(so);
    if (s) store = std::unique_ptr<ledger::Store>(std::move(*s));
  }
  ASSERT_TRUE(store) << store.error().describe();
  auto records = (*store)->load_pairs();
  ASSERT_TRUE(records) << records.error().describe();
  std::map<std::string, std::int64_t> ledger_counts;
  std::map<int, std::optional<Fingerprint>> fingerprint_of;  // same credential at both destinations
  const auto h = held(all);
  for (const auto& rec : *records) {
    ++ledger_counts[std::string(ledger::to_string(rec.state))];
    auto it = index_.find(rec.gstin);
    if (it == index_.end()) {
      ADD_FAILURE() << "ledger row for an unknown GSTIN " << rec.gstin;
      continue;
    }
    const auto i = static_cast<std::size_t>(it->second);
    EXPECT_TRUE(rec.applied && rec.applied->version.number == versions_[i] && h.at(rec.destination)[i] == versions_[i])
        << rec.destination << " " << rec.gstin << ": ledger applied "
        << (rec.applied ? rec.applied->version.number : std::int64_t{-1}) << ", destination holds "
        << h.at(rec.destination)[i] << ", Vault v" << versions_[i];
    EXPECT_FALSE(rec.pending || rec.push_in_flight) << rec.destination << " " << rec.gstin;
    if (rec.applied) {
      auto [f, fresh] = fingerprint_of.emplace(it->second, rec.applied->fingerprint);
      EXPECT_TRUE(fresh || f->second == rec.applied->fingerprint) << rec.gstin << ": fingerprints differ";
    }
  }
  EXPECT_EQ(ledger_counts, nonzero(status_counts)) << "ledger vs /v1/status";
  EXPECT_EQ(records->size(), 2 * gstins_.size());
  // Every "applied" in the history was applied at that destination, versions never go back.
  boost::asio::io_context io;
  auto history = testing::run_for(io, (*store)->history("", 100'000'000), 60s);
  ASSERT_TRUE(history) << history.error().describe();
  std::set<std::tuple<std::string, int, std::int64_t>> applied_at_dest;
  for (const auto& [key, t] : tally) applied_at_dest.insert(key);
  std::map<std::pair<std::string, int>, std::int64_t> last_applied;
  std::vector<std::string> history_problems;
  int applied_entries = 0;
  for (auto it = history->rbegin(); it != history->rend(); ++it) {  // oldest first
    if (it->outcome != ledger::Outcome::applied) continue;
    ++applied_entries;
    const int g = index_.at(it->gstin);
    const std::int64_t version = it->version.number;
    if (applied_at_dest.count({it->destination, g, version}) == 0 && history_problems.size() < 20) {
      history_problems.push_back(fmt::format("{} {} v{}: \"applied\" in the ledger history, never applied there",
                                             it->destination, it->gstin, version));
    }
    auto& last = last_applied[{it->destination, g}];
    if (version < last && history_problems.size() < 20) {
      history_problems.push_back(
          fmt::format("{} {}: history applied v{} after v{}", it->destination, it->gstin, version, last));
    }
    last = std::max(last, version);
  }
  EXPECT_EQ(history_problems, std::vector<std::string>{});
  (*store)->close();

  // --- no planted secret anywhere ---
  needles_.plain = secret_ids_;
  needles_.plain.push_back(world_.options().cleartax_client_secret);
  needles_.plain.push_back(world_.approle_role_id());
  needles_.plain.push_back(world_.token());
  needles_.plain.push_back("trigger-token-5d1c");
  if (pg_) needles_.plain.push_back(kPgPassword);
  for (auto& t : world_.call([&] { return world_.vault().issued_tokens(); })) needles_.vault_tokens.insert(t);
  const auto access_tokens = world_.call([&] { return world_.cleartax().issued_tokens(); });
  LeakScan scan = scan_directory(dir_.path(), needles_, access_tokens);
  if (daemon_b_) {
    LeakScan b = scan_directory(dir_b_.path(), needles_, access_tokens);
    scan.leaks.insert(scan.leaks.end(), b.leaks.begin(), b.leaks.end());
    scan.core_files += b.core_files;
  }
  for (const auto& [what, text] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/status", status_r->body}, {"/metrics", metrics_r->body}, {"nicsyncd status", cli.output()}}) {
    scan_text(scan, what, text, needles_, access_tokens);
  }
  EXPECT_EQ(scan.leaks, std::vector<std::string>{});
  EXPECT_EQ(scan.core_files, 0) << "nicsyncd disables core dumps";
  const std::string log = read_all(dir_.file("daemon.log"));
  EXPECT_EQ(log.find("failed unexpectedly"), std::string::npos) << "an exception escaped a delivery";
  EXPECT_NE(log.find("audit feed: healthy"), std::string::npos) << "the daemon's own reads came back through the feed";

  // --- the counts, printed last (by main, after gtest's report) ---
  int faults = 0;
  std::string by_kind;
  for (int k = 0; k < kFaultKinds; ++k) {
    faults += counts_[k];
    by_kind += fmt::format("\nchaos:   {:<36} {}", name_of(static_cast<FaultKind>(k)), counts_[k]);
    EXPECT_GT(counts_[k], 0) << name_of(static_cast<FaultKind>(k)) << " never happened";
  }
  EXPECT_GE(rotations, 1000);
  EXPECT_GE(faults, 500);
  const auto token_stats = world_.call([&] { return world_.cleartax().token_stats(); });
  chaos::summary() = fmt::format(
      "chaos: seed {} (replay: {})\n"
      "chaos: {} GSTINs x 2 destinations (cleartax, hook), watch mode {}, fault phase {} s\n"
      "chaos: rotations {} (+{} initial versions)\n"
      "chaos: faults {}:{}\n"
      "chaos: crashes {} (SIGKILL + restart{})\n"
      "chaos: pushes received cleartax {} (applied {}, {} during the fault phase, {} failed by a fault), hook {} "
      "(applied {}, {} during the fault phase, {} failed by a fault); ClearTax access tokens issued {}\n"
      "chaos: repeats {} ({} after a lost answer, {} after a crash; allowed: lost answers + 1 per crash)\n"
      "chaos: audit feed: the test's node wrote {} entries ({} garbage, {} lost, {} dials); the test Vault's "
      "device {} entries\n"
      "chaos: convergence {:.1f} s after the faults stopped (bound {} s); initial sync {:.1f} s\n"
      "chaos: wall time {:.0f} s\n",
      settings_.seed, settings_.replay(), settings_.gstins, settings_.events ? "events" : "poll",
      settings_.duration.count() / 1000, rotations, settings_.gstins, faults, by_kind, crashes_,
      daemon_b_ ? fmt::format("; two replicas on PostgreSQL: {} of them pauses of the leader past its lease", pauses_)
                : std::string(),
      received_by_dest["cleartax"], effective_by_dest["cleartax"], effective_in_phase["cleartax"],
      failed_by_fault["cleartax"], received_by_dest["hook"], effective_by_dest["hook"], effective_in_phase["hook"],
      failed_by_fault["hook"], token_stats.issued_total, repeats, by_lost_answers, by_crashes, injector_.lines(),
      injector_.garbage_lines(), injector_.lost(), injector_.dials(),
      world_.call([&] { return world_.vault().audit_stats().entries_written; }), *converged,
      settings_.convergence_bound.count(), *initial, std::chrono::duration<double>(Steady::now() - wall_start).count());
  std::cout << fmt::format("chaos: history has {} applied entries", applied_entries) << std::endl;
}

}  // namespace
}  // namespace nicsync
