#include "chaos/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

namespace nicsync::chaos {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::optional<std::uint64_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  const auto n = std::strtoull(v, &end, 0);
  if (end == v || *end != '\0') throw std::invalid_argument(fmt::format("{}={} is not a number", name, v));
  return n;
}

}  // namespace

Settings Settings::from_env() {
  Settings s;
  s.seed = env_number("NICSYNC_CHAOS_SEED")
               .value_or(std::random_device{}() ^ static_cast<std::uint64_t>(Steady::now().time_since_epoch().count()));
  if (auto v = env_number("NICSYNC_CHAOS_SECONDS")) s.duration = seconds(std::max<std::uint64_t>(*v, 10));
  const double scale = static_cast<double>(s.duration.count()) / 90'000.0;
  s.rotations = static_cast<int>(
      env_number("NICSYNC_CHAOS_ROTATIONS").value_or(std::max(1000, static_cast<int>(std::ceil(1000 * scale)))));
  s.faults = static_cast<int>(
      env_number("NICSYNC_CHAOS_FAULTS").value_or(std::max(500, static_cast<int>(std::ceil(500 * scale)))));
  s.gstins = static_cast<int>(env_number("NICSYNC_CHAOS_GSTINS").value_or(300));
  s.keep = env_number("NICSYNC_CHAOS_KEEP").value_or(0) != 0;
  s.replicas = env_number("NICSYNC_CHAOS_REPLICAS").value_or(1) == 2 ? 2 : 1;
  // Each seed picks a watch mode, so that CI runs cover both over time.
  s.events = s.seed % 2 == 1;
  if (const char* w = std::getenv("NICSYNC_CHAOS_WATCH"); w != nullptr && *w != '\0') {
    if (std::string_view(w) != "poll" && std::string_view(w) != "events") {
      throw std::invalid_argument("NICSYNC_CHAOS_WATCH must be \"poll\" or \"events\"");
    }
    s.events = std::string_view(w) == "events";
  }
  return s;
}

std::string Settings::replay() const {
  return fmt::format(
      "NICSYNC_CHAOS_SEED={} NICSYNC_CHAOS_SECONDS={} NICSYNC_CHAOS_ROTATIONS={} "
      "NICSYNC_CHAOS_FAULTS={} NICSYNC_CHAOS_GSTINS={} NICSYNC_CHAOS_WATCH={} NICSYNC_CHAOS_REPLICAS={}",
      seed, duration.count() / 1000, rotations, faults, gstins, events ? "events" : "poll", replicas);
}

std::string_view name_of(FaultKind k) {
  switch (k) {
    case FaultKind::vault_sealed: return "vault sealed";
    case FaultKind::vault_5xx: return "vault 500/503";
    case FaultKind::vault_429: return "vault 429";
    case FaultKind::vault_latency: return "vault latency";
    case FaultKind::vault_dropped_connection: return "vault dropped connection";
    case FaultKind::vault_token_revoked: return "vault token revoked";
    case FaultKind::vault_secret_id_rotated: return "approle secret id rotated";
    case FaultKind::dest_5xx: return "destination 5xx";
    case FaultKind::dest_429_retry_after: return "destination 429 Retry-After";
    case FaultKind::dest_hang: return "destination hang past deadline";
    case FaultKind::dest_dropped_mid_response: return "destination dropped mid-response";
    case FaultKind::dest_success_false: return "cleartax success:false transient";
    case FaultKind::cleartax_token_revoked: return "cleartax access token revoked";
    case FaultKind::daemon_sigkill: return "daemon SIGKILL+restart";
    case FaultKind::daemon_sighup: return "daemon SIGHUP changed config";
    case FaultKind::audit_connection_dropped: return "audit feed connection dropped";
    case FaultKind::audit_garbage: return "audit feed garbage lines";
    case FaultKind::audit_duplicated: return "audit feed entries twice";
    case FaultKind::audit_reordered: return "audit feed entries reordered";
    case FaultKind::audit_unknown_paths: return "audit feed unknown paths";
    case FaultKind::audit_standby_lag: return "audit feed entry before data";
    case FaultKind::count_: break;
  }
  return "?";
}

std::vector<Event> make_timeline(const Settings& s, std::mt19937_64& rng) {
  std::vector<Event> out;
  const auto total = s.duration.count();
  auto at = [&](double from = 0.0, double to = 1.0) {
    std::uniform_int_distribution<std::int64_t> d(static_cast<std::int64_t>(total * from),
                                                  static_cast<std::int64_t>(total * to));
    return milliseconds(d(rng));
  };
  auto pick = [&](int n) { return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };

  // Rotations: a fifth go to ten hot GSTINs (bursts of versions: coalescing, ordering).
  for (int i = 0; i < s.rotations; ++i) {
    Event e;
    e.at = at();
    e.type = Event::Type::rotate;
    e.gstin = chance(0.2) ? pick(std::min(10, s.gstins)) : pick(s.gstins);
    out.push_back(e);
  }

  // Process faults at fixed counts, the rest drawn by weight.
  const int crashes = std::max(4, static_cast<int>(total / 12'000));
  const int reloads = std::max(5, static_cast<int>(total / 10'000));
  for (int i = 0; i < crashes; ++i) {
    Event e;
    e.at = at(0.05, 0.95);
    e.type = Event::Type::fault;
    e.kind = FaultKind::daemon_sigkill;
    e.reload_after = chance(0.3);
    out.push_back(e);
  }
  for (int i = 0; i < reloads; ++i) {
    Event e;
    e.at = at(0.02, 0.98);
    e.type = Event::Type::fault;
    e.kind = FaultKind::daemon_sighup;
    e.variant = pick(3);
    out.push_back(e);
  }
  // Weights of the drawn kinds. Episodes (sealed, slow) are few and short: with the defaults
  // Vault is sealed ~10% and slow ~15% of the time, so that the daemon makes progress between
  // faults (what is checked is that it does the right thing under faults, not that it can push
  // through a permanent outage). Revocations and secret-id rotations cost a login each; ClearTax
  // token revocations are rarer still (a day allows 288 token calls).
  const std::vector<std::pair<FaultKind, int>> weights = {
      {FaultKind::vault_sealed, 3},
      {FaultKind::vault_5xx, 12},
      {FaultKind::vault_429, 8},
      {FaultKind::vault_latency, 3},
      {FaultKind::vault_dropped_connection, 10},
      {FaultKind::vault_token_revoked, 5},
      {FaultKind::vault_secret_id_rotated, 3},
      {FaultKind::dest_5xx, 16},
      {FaultKind::dest_429_retry_after, 9},
      {FaultKind::dest_hang, 6},
      {FaultKind::dest_dropped_mid_response, 12},
      {FaultKind::dest_success_false, 9},
      {FaultKind::cleartax_token_revoked, 1},
      {FaultKind::audit_connection_dropped, 4},
      {FaultKind::audit_garbage, 4},
      {FaultKind::audit_duplicated, 4},
      {FaultKind::audit_reordered, 3},
      {FaultKind::audit_unknown_paths, 4},
      {FaultKind::audit_standby_lag, 4},
  };
  int weight_sum = 0;
  for (const auto& [k, w] : weights) weight_sum += w;
  const int token_revocation_cap = std::max(3, static_cast<int>(total / 30'000));
  int token_revocations = 0;
  for (int i = 0; i < s.faults - crashes - reloads; ++i) {
    int r = pick(weight_sum);
    FaultKind kind = weights.front().first;
    for (const auto& [k, w] : weights) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    if (kind == FaultKind::cleartax_token_revoked && ++token_revocations > token_revocation_cap) {
      kind = FaultKind::dest_5xx;
    }
    Event e;
    e.at = at();
    e.type = Event::Type::fault;
    e.kind = kind;
    e.hooks = chance(0.4);
    e.apply_first = chance(0.4);
    e.variant = pick(4);
    switch (kind) {
      case FaultKind::vault_sealed: e.length = milliseconds(200 + pick(1000)); break;
      case FaultKind::vault_5xx:
        e.n = 1 + pick(6);
        e.status = chance(0.5) ? 500 : 503;
        break;
      case FaultKind::vault_429: e.n = 1 + pick(6); break;
      case FaultKind::vault_latency: {
        // Mostly slow; sometimes slower than the 5 s Vault call deadline.
        static constexpr int kLatencies[] = {100, 300, 800, 1500, 6000};
        e.n = kLatencies[pick(5)];
        e.length = milliseconds(300 + pick(1200));
        break;
      }
      case FaultKind::vault_dropped_connection: e.n = 1 + pick(3); break;
      case FaultKind::dest_5xx: {
        static constexpr int kStatuses[] = {500, 502, 503, 504};
        e.status = kStatuses[pick(4)];
        e.n = 1 + pick(6);
        e.variant = chance(0.1) ? 1 : 0;  // 1: the ClearTax token endpoint
        break;
      }
      case FaultKind::dest_429_retry_after: e.n = 1 + pick(4); break;
      case FaultKind::dest_hang: e.n = 1 + pick(3); break;
      case FaultKind::dest_dropped_mid_response: e.n = 1 + pick(3); break;
      case FaultKind::dest_success_false:
        e.hooks = false;  // a webhook has no success:false
        e.n = 1 + pick(5);
        break;
      case FaultKind::audit_garbage:
      case FaultKind::audit_duplicated:
      case FaultKind::audit_unknown_paths: e.n = 1 + pick(8); break;
      case FaultKind::audit_reordered: e.n = 2 + pick(6); break;
      case FaultKind::audit_standby_lag:
        // The entries of the next rotations come before their data can be read: the daemon reads
        // again after 0.2, 1 and 5 s; a lag past those is the sweeps' to find.
        e.n = 1 + pick(3);
        e.length = milliseconds(100 + pick(3000));
        break;
      default: break;
    }
    out.push_back(e);
    if (kind == FaultKind::vault_sealed || kind == FaultKind::vault_latency) {
      Event end = e;
      end.type = kind == FaultKind::vault_sealed ? Event::Type::unseal : Event::Type::end_latency;
      end.at = e.at + e.length;
      out.push_back(end);
    }
  }
  for (milliseconds t = 2500ms; t.count() < total; t += 5000ms) {
    Event e;
    e.at = t;
    e.type = Event::Type::probe;
    out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.at < b.at; });
  return out;
}

}  // namespace nicsync::chaos
