#pragma once
// The chaos suite's settings (NICSYNC_CHAOS_*, see chaos_test.cpp) and its timeline: which
// rotation or fault happens when, with which parameters, all drawn from the seed.

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace nicsync::chaos {

using std::chrono::milliseconds;
using std::chrono::seconds;

// --- settings ----------------------------------------------------------------------------------

struct Settings {
  std::uint64_t seed = 0;
  int gstins = 300;
  int rotations = 1000;
  int faults = 500;  ///< all kinds, SIGKILL and SIGHUP included
  milliseconds duration{90'000};
  /// From the moment the faults stop until every pair holds its newest version. What it covers:
  /// a poll interval (2 s) + jitter, a backoff ceiling (2 s) or Retry-After (<= 3 s), an open
  /// breaker (1 s), a hung push timing out (3 s), a Vault call timing out (5 s), an AppRole
  /// re-login, and 600 pushes; generous because CI machines are shared and slow.
  seconds convergence_bound{60};
  bool keep = false;
  /// Vault Enterprise with the events websocket (its faults included), or plain polling.
  bool events = false;
  /// 2: two replicas on a PostgreSQL ledger (the tests start the server); every other
  /// SIGKILL of the leader is a pause past its lease (SIGSTOP, then SIGCONT) instead.
  int replicas = 1;

  /// The settings of this run: NICSYNC_CHAOS_* (see chaos_test.cpp), the rest from the seed.
  static Settings from_env();
  /// The environment that replays this run.
  [[nodiscard]] std::string replay() const;
};

// --- the timeline ------------------------------------------------------------------------------

enum class FaultKind {
  vault_sealed,
  vault_5xx,
  vault_429,
  vault_latency,
  vault_dropped_connection,
  vault_token_revoked,
  vault_secret_id_rotated,
  dest_5xx,
  dest_429_retry_after,
  dest_hang,
  dest_dropped_mid_response,
  dest_success_false,
  cleartax_token_revoked,
  daemon_sigkill,
  daemon_sighup,
  // The audit feed ([watch.audit]): the test's own node on it (AuditInjector), and the test
  // Vault's device.
  audit_connection_dropped,
  audit_garbage,
  audit_duplicated,
  audit_reordered,
  audit_unknown_paths,
  audit_standby_lag,
  count_,
};
constexpr int kFaultKinds = static_cast<int>(FaultKind::count_);

std::string_view name_of(FaultKind k);

struct Event {
  enum class Type { rotate, fault, unseal, end_latency, probe };
  milliseconds at{0};
  Type type = Type::rotate;
  int gstin = 0;  // rotate
  FaultKind kind = FaultKind::vault_5xx;
  // Fault parameters, drawn with the timeline so that a seed replays the same faults.
  int n = 1;
  int status = 500;
  int variant = 0;
  milliseconds length{0};
  bool hooks = false;  // destination faults: the webhook rather than ClearTax
  bool apply_first = false;
  bool reload_after = false;  // SIGKILL: send SIGHUP right after the restart is ready
};

std::vector<Event> make_timeline(const Settings& s, std::mt19937_64& rng);

}  // namespace nicsync::chaos
