#pragma once
/// \file
/// The daemon's HTTP API: /healthz, /readyz, /metrics, /v1/status, /v1/history, POST /v1/sync.
/// It reads engine snapshots and never changes state except through POST /v1/sync. On a
/// non-loopback address it requires TLS and the bearer token for everything but /healthz, unless
/// the operator explicitly allows otherwise.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include "nicsync/api/audit_feed_route.hpp"
#include "nicsync/api/metrics.hpp"
#include "nicsync/core/gstin.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/http/server.hpp"
#include "nicsync/sync/engine.hpp"

namespace nicsync::api {

struct ApiOptions {
  std::string listen = "127.0.0.1:9464";
  std::string tls_cert_file;
  std::string tls_key_file;
  /// Bearer token for POST /v1/sync (and everything but /healthz off loopback); none = refuse sync.
  std::optional<Secret> bearer_token;
  /// Let a non-loopback listener run without TLS and/or without requiring the token on reads.
  bool allow_insecure = false;
  /// Require the token for every endpoint but /healthz even on loopback (always on for a
  /// non-loopback listener unless allow_insecure).
  bool require_token_for_reads = false;
  /// OpenBao's http audit device: its own bearer token, and the longest body it may post.
  std::optional<Secret> audit_feed_token;
  std::size_t audit_feed_body_limit = 0;
};

/// Checks the TLS/bearer rules for the listen address; the error says what to configure.
Result<void> validate(const ApiOptions& options);

/// POST /v1/sync body: `{"gstins": ["..."], "force": false, "dry_run": false}` (all optional).
struct TriggerRequest {
  std::vector<Gstin> gstins;  ///< empty = every mapped GSTIN
  bool force = false;
  bool dry_run = false;
};

/// One (destination, GSTIN) line of the trigger's answer.
struct TriggerItem {
  std::string gstin;
  std::string destination;
  std::string result;  ///< "pushed", "unchanged", "would_push", "failed", a pair state, ...
  std::optional<std::int64_t> version;
  std::string message;
};

struct TriggerReport {
  std::vector<TriggerItem> items;
  std::vector<std::string> errors;  ///< per-GSTIN problems (unknown GSTIN, Vault read failed, ...)
};

/// The Vault connection as /v1/status and the status page show it.
struct VaultInfo {
  std::string address;  ///< without any credentials in it
  bool token_valid = false;
  std::optional<std::chrono::seconds> token_ttl;  ///< nothing: the token does not expire, or unknown
  std::string problem;                            ///< why it is not authenticated, if it is not
};

/// A destination's settings and provider counters (the engine's lane holds the rest).
struct DestinationInfo {
  std::string name;
  std::string kind;                 ///< "cleartax", "webhook"
  double rate_limit = 0;            ///< pushes a second; 0 = unlimited
  int concurrency = 0;              ///< pushes at once
  int token_calls_left_today = -1;  ///< ClearTax's daily access-token budget; -1 = not applicable
};

/// What the API needs from the rest of the daemon (wired by app).
struct ApiHooks {
  /// Reasons the daemon is not ready (empty = ready): Vault token, ledger, first resync.
  std::function<std::vector<std::string>()> not_ready_reasons;
  /// Problems that do not affect readiness but need an operator (e.g. keys under a mapping
  /// set that are not GSTINs); shown in /v1/status and counted in /metrics.
  std::function<std::vector<std::string>()> warnings;
  /// Adds metrics owned elsewhere (Vault requests, token TTL, provider token calls, ...).
  std::function<void(MetricsWriter&)> extra_metrics;
  /// Reads the listed GSTINs from Vault now and delivers them; completes with what happened.
  std::function<boost::asio::awaitable<Result<TriggerReport>>(TriggerRequest)> trigger;
  /// The Vault connection and the token's lifetime.
  std::function<VaultInfo()> vault;
  /// How changes reach the daemon, one line: "polling every 1m", "Vault events", ...
  std::function<std::string()> change_feed;
  /// This daemon's role among replicas; empty while there are none.
  std::function<std::string()> role;
  /// Every configured destination.
  std::function<std::vector<DestinationInfo>()> destinations;
  /// `[sync] max_credential_age`: older credentials are a warning (zero or unset = off).
  std::function<std::chrono::seconds()> max_credential_age;
  /// Entries OpenBao's http audit device posts (POST /v1/audit-feed); unset: no such route.
  AuditFeedTaker audit_feed_entry;
  /// Members added to /readyz and /v1/status (e.g. "audit_feed": connected, last entry).
  std::function<boost::json::object()> details;
  /// A standby replica hands an authorised POST /v1/sync to the leader and answers with what
  /// the leader answered; nothing: this daemon serves it.
  std::function<boost::asio::awaitable<std::optional<http::ServerResponse>>(const http::ServerRequest&)> forward_sync;
  /// POST /v1/lease/release (bearer token): the leader gives its lease back; the message says
  /// what happened. Unset: no such route (no replicas).
  std::function<boost::asio::awaitable<Result<std::string>>()> release_lease;
  /// The replica id that served a request ("served_by" in the answer of POST /v1/sync).
  std::function<std::string()> served_by;
};

/// Credential freshness over every pair, from the write time of each key's current version.
struct Freshness {
  std::size_t known = 0;             ///< pairs whose current version's write time is known
  std::chrono::seconds oldest{0};    ///< age of the oldest of them
  std::chrono::seconds max_age{0};   ///< the limit (0 = off)
  std::size_t too_old = 0;           ///< pairs older than the limit
  std::int64_t versions_behind = 0;  ///< summed over the pairs
};
/// One pass over the engine's pairs.
Freshness freshness(const sync::Engine& engine, const ApiHooks& hooks, std::chrono::system_clock::time_point now);

/// The listener's settings for `options`: small header and body limits (the API takes tiny JSON
/// bodies) and short timeouts.
http::ServerOptions server_options(const ApiOptions& options);

/// Renders /metrics (pure; for tests).
std::string render_metrics(const sync::Engine& engine, const ApiHooks& hooks);
/// Renders /v1/status (pure; for tests).
boost::json::object render_status(const sync::Engine& engine, const ApiHooks& hooks);

class ApiServer {
 public:
  ApiServer(boost::asio::any_io_executor executor, ApiOptions options, sync::Engine& engine, ApiHooks hooks);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  Result<void> start();
  [[nodiscard]] std::string local_address() const;
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);
  void stop_now() noexcept;
  /// Replaces the bearer token (after a reload re-read api.token_file).
  void set_bearer_token(std::optional<Secret> token);
  /// Answers one request in-process as the listener's routes would, without a socket (the
  /// request path is fuzzed through it).
  boost::asio::awaitable<http::ServerResponse> handle(http::ServerRequest request);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace nicsync::api
