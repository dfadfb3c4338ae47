#pragma once
/// \file
/// The test Vault: an in-process HTTP(S) server that answers like HashiCorp Vault, byte for byte
/// where a client could tell the difference (see /work/shared/reference/vault-api.md; its §10 is
/// the checklist and §12 corrects the earlier sections). KV v1/v2, token and AppRole auth with
/// policies, sys/health and mount detection, sealed/standby modes, fault injection, and (in
/// Enterprise mode) namespaces, X-Vault-Index and the events websocket.
///
/// Threading: like everything in the project, a FakeVault lives on one executor. Call its
/// methods on the thread that runs that executor, or while the executor is not running (as
/// tests do between `run_for` calls).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/result.hpp"

namespace nicsync::fakes {

/// A socket audit device (reference vault-audit.md §1, §3.1): it dials out to `address` when it
/// first has an entry to write, keeps the connection, and writes each request's request entry
/// (once the token check passed or refused it) and response entry (once it ran) as
/// `prefix` + JSON + "\n", byte for byte as Vault does. Writes are serialised; each has
/// `write_timeout`; a failed write closes the connection, dials again and writes the entry once
/// more. A request fails with 500 "internal error" when no device took one of its entries:
/// before it ran (request entry) or after (response entry, the write already done).
struct AuditDeviceOptions {
  enum class Format {
    legacy,  ///< Vault 1.14-1.16 and OpenBao: Go struct order, `time` and `type` first
    sorted,  ///< Vault 1.18-1.20: one entry struct, members sorted, nil `auth`/`response` left out
  };
  std::string address;              ///< "127.0.0.1:9465" (tcp) or a socket file (unix)
  std::string socket_type = "tcp";  ///< "tcp" or "unix"
  Format format = Format::legacy;
  std::string prefix;
  /// The HMAC key; empty: a random UUID, as Vault makes one per device.
  std::string salt;
  bool log_raw = false;       ///< values in clear instead of HMAC'd
  bool hmac_accessor = true;  ///< HMAC the token accessors too
  std::chrono::milliseconds write_timeout{2000};
  /// For enable_audit_device: no test probe (Vault's skip_test).
  bool skip_test = false;
};

/// What the audit devices did, summed over devices.
struct AuditStats {
  std::uint64_t entries_written = 0;  ///< entries a device took
  std::uint64_t write_failures = 0;   ///< entries a device failed, after its one redial
  std::uint64_t dials = 0;            ///< connections dialled (or tried)
  std::uint64_t requests_failed = 0;  ///< requests answered 500 because no device took an entry
};

struct FakeVaultOptions {
  std::string listen = "127.0.0.1:0";
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  std::string root_token = "root";
  bool enterprise = false;
  /// Dead tokens get the old plain {"errors":["permission denied"]} instead of the 1.17+
  /// two-error body.
  bool legacy_permission_denied = false;
  nicsync::Clock* clock = nullptr;  ///< default Clock::real()
  std::chrono::milliseconds event_ping_interval{30000};
  /// Audit devices enabled from the start (as after a restart: no test probe).
  std::vector<AuditDeviceOptions> audit_devices;
};

/// What a token (or the tokens an AppRole hands out) looks like.
struct TokenSpec {
  std::vector<std::string> policies;
  std::chrono::seconds ttl{3600};
  /// 0 = the system maximum (768h). For create_token this is the token's explicit_max_ttl;
  /// for an AppRole it is the role's token_max_ttl.
  std::chrono::seconds max_ttl{0};
  bool renewable = true;
  std::string display_name = "token";
  std::int64_t num_uses = 0;  ///< 0 = unlimited
};

/// One rule of an ACL policy: a path (exact, `+` segment wildcards, trailing `*` glob) and its
/// capabilities ("create", "read", "update", "patch", "delete", "list", "sudo", "deny",
/// "subscribe"); `subscribe_event_types` are the event type globs this rule lets a subscriber
/// receive (Vault's `subscribe_event_types`).
struct PolicyRule {
  std::string path;
  std::vector<std::string> capabilities;
  std::vector<std::string> subscribe_event_types;
};

/// A fault for the next N requests under /v1/ (the admin API is never affected).
struct FaultSpec {
  enum class Kind {
    status,    ///< answer `status` (with Vault's body for it, or `body` when given)
    drop,      ///< close the connection without answering
    reset,     ///< abort with a TCP RST
    truncate,  ///< send the real answer's headers and only `truncate_at` body bytes
    redirect,  ///< 307 to `location` + the request path and query
  };
  Kind kind = Kind::status;
  int count = 1;
  int status = 500;
  std::optional<int> retry_after_seconds;
  std::optional<std::string> body;  ///< exact body bytes; default: Vault's body for `status`
  std::size_t truncate_at = 0;
  std::string location;  ///< e.g. "http://127.0.0.1:8201"
  /// Only requests whose path after /v1/ starts with this (e.g. "secret/data/") meet the
  /// fault; the others pass it by. Empty: every request.
  std::string path_prefix;
};

/// Which sys/health state the node reports besides sealed and standby.
struct HealthFlags {
  bool initialized = true;
  bool removed_from_cluster = false;  ///< 530
  bool ha_unhealthy = false;          ///< 474 (with standby)
  bool dr_secondary = false;          ///< 472
  bool performance_standby = false;   ///< 473
};

class FakeVault {
 public:
  FakeVault(boost::asio::any_io_executor ex, FakeVaultOptions options);
  ~FakeVault();
  FakeVault(const FakeVault&) = delete;
  FakeVault& operator=(const FakeVault&) = delete;

  /// Binds and starts serving; mounts `secret/` (KV v2) and `kv/` (KV v1) unless already mounted.
  nicsync::Result<void> start();
  /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  [[nodiscard]] std::string address() const;
  [[nodiscard]] std::uint16_t port() const;
  /// Closes the listener and every connection now.
  void stop();
  [[nodiscard]] const FakeVaultOptions& options() const noexcept;

  // --- data plane (no HTTP); writes are attributed to the root token and emit events ---
  /// Mounts a KV engine at `path` ("secret", "team-a/secret" in a namespace). Replaces nothing:
  /// mounting an existing path again is a no-op.
  void mount(std::string path, int kv_version);
  void unmount(const std::string& path);
  /// Writes a new version (v2; returns it) or replaces the value (v1; returns 0).
  std::int64_t kv_put(const std::string& mount, const std::string& key,
                      std::vector<std::pair<std::string, std::string>> data);
  void kv_delete_latest(const std::string& mount, const std::string& key);
  void kv_delete_versions(const std::string& mount, const std::string& key, std::vector<std::int64_t> versions);
  void kv_undelete(const std::string& mount, const std::string& key, std::vector<std::int64_t> versions);
  void kv_destroy(const std::string& mount, const std::string& key, std::vector<std::int64_t> versions);
  void kv_delete_metadata(const std::string& mount, const std::string& key);
  /// Sets the key's max_versions / cas_required / delete_version_after / custom_metadata as a
  /// metadata write would (creates the metadata if absent).
  void kv_set_key_settings(
      const std::string& mount, const std::string& key, std::int64_t max_versions, bool cas_required,
      std::chrono::seconds delete_version_after,
      std::optional<std::vector<std::pair<std::string, std::string>>> custom_metadata = std::nullopt);
  /// The mount-wide settings of a KV v2 mount (as POST <mount>/config).
  void kv_set_mount_config(const std::string& mount, std::int64_t max_versions, bool cas_required,
                           std::chrono::seconds delete_version_after);
  /// Current version of a KV v2 key (0 if none).
  [[nodiscard]] std::int64_t kv_current_version(const std::string& mount, const std::string& key) const;

  // --- auth ---
  std::string create_token(TokenSpec spec);
  void revoke_token(const std::string& token);
  /// Replaces policy `name`; rules are glob → capabilities.
  void set_policy(std::string name, std::vector<std::pair<std::string, std::vector<std::string>>> rules);
  /// Same with full rules (subscribe_event_types for event subscribers).
  void set_policy_rules(std::string name, std::vector<PolicyRule> rules);
  void add_approle(std::string role, std::string role_id, std::string secret_id, TokenSpec spec);
  /// The role's secret id becomes `new_secret_id`; the old one stops working.
  void rotate_secret_id(const std::string& role, std::string new_secret_id);
  /// Revokes every token an AppRole login for `role` issued (as an operator revoking the
  /// role's leases would); returns how many there were.
  std::size_t revoke_role_tokens(const std::string& role);
  /// An Enterprise namespace ("team-a/", nested "team-a/app/"); only meaningful with `enterprise`.
  void create_namespace(std::string path);

  // --- audit ---
  /// Enables one more socket audit device as `vault audit enable` does: writes the test probe
  /// (request `sys/audit/test`, reference §1.6) unless `skip_test`, and fails without adding
  /// the device when that write fails.
  boost::asio::awaitable<nicsync::Result<void>> enable_audit_device(AuditDeviceOptions options);
  [[nodiscard]] AuditStats audit_stats() const;
  /// The next `request_entries` request entries and `response_entries` response entries are
  /// taken by no device, as if every device's write and redial failed (a response entry fails
  /// after its request ran: the way to see Vault's 500 for a write that was done).
  void fail_audit_entries(int request_entries, int response_entries);
  /// Every device's connection breaks; each dials again with its next entry.
  void break_audit_connections();

  // --- faults ---
  void seal();
  void unseal();
  void set_standby(bool standby);
  void set_health_flags(HealthFlags flags);
  /// Added before every /v1/ answer (a slow server; longer than a client's timeout to test it).
  void set_latency(std::chrono::milliseconds latency);
  /// The next `count` requests under /v1/ get `status` with Vault's body for it (429: the
  /// rate-limit quota body; 412: "required index state not present"; 503: "Vault is sealed";
  /// 500: "internal error"; 502: an upstream error), with `Retry-After` when given.
  void fail_next(int count, int status, std::optional<int> retry_after_seconds = std::nullopt);
  void fail_next(FaultSpec fault);
  /// Forgets the faults queued by `fail_next` that have not been used yet.
  void clear_faults();
  /// Every /v1/ request but sys/health answers 307 to `location` (a standby that cannot
  /// forward); nullopt switches it off.
  void set_redirect(std::optional<std::string> location);
  /// A Vault rate-limit quota: at most `rate` requests per `interval` on the whole server;
  /// with `response_headers`, X-Ratelimit-* and Retry-After are sent (Vault's
  /// enable_rate_limit_response_headers). rate 0 removes the quota.
  void set_rate_limit(std::int64_t rate, std::chrono::seconds interval = std::chrono::seconds(1),
                      bool response_headers = false);
  /// Closes every open connection, event websockets included (the listener stays).
  void drop_connections();

  // --- observation ---
  struct LoggedRequest {
    std::string method, path;  ///< path without the query, never a token
    std::chrono::steady_clock::time_point at;
    int status = 0;  ///< what was answered (101 for a websocket upgrade, 0 for a dropped connection)
  };
  /// Requests under /v1/ (not the admin API), oldest first; the newest 100,000 are kept.
  [[nodiscard]] std::vector<LoggedRequest> request_log() const;
  /// How many logged requests had this method and path.
  [[nodiscard]] std::size_t count_requests(std::string_view method, std::string_view path) const;
  void clear_request_log();
  [[nodiscard]] std::uint64_t connections_accepted() const;
  [[nodiscard]] std::size_t open_connections() const;
  /// Event websockets currently subscribed.
  [[nodiscard]] std::size_t event_subscribers() const;
  /// Every token issued since construction (root, created, logins), revoked ones included,
  /// oldest first (for secret scans).
  [[nodiscard]] std::vector<std::string> issued_tokens() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::fakes
