#pragma once
/// \file
/// The daemon's configuration: TOML, validated completely before use; every error names the
/// file, line and key and says what is expected. Unknown keys are errors. `VAULT_*` environment
/// variables fill what the [vault] section leaves out (applied by `apply_environment`).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nicsync/core/gstin.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/destinations/cleartax.hpp"
#include "nicsync/destinations/webhook.hpp"
#include "nicsync/sync/backoff.hpp"
#include "nicsync/sync/limits.hpp"
#include "nicsync/sync/mapping.hpp"
#include "nicsync/vault/config.hpp"

namespace nicsync::app {

enum class LogLevel { trace, debug, info, warn, error, critical, off };
enum class LogFormat { text, json };

struct ApiConfig {
  std::string listen = "127.0.0.1:9464";
  std::string token_file;  ///< bearer token for POST /v1/sync (and reads off loopback)
  std::string tls_cert_file;
  std::string tls_key_file;
  bool allow_insecure = false;
  bool require_token = false;
};

struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

enum class WatchMode { auto_detect, poll, events };

/// [watch.audit]: Vault's audit stream as a change feed (Vault's or OpenBao's `socket` audit
/// device connecting to `listen`, OpenBao's `http` device posting to the API). Off when neither
/// `listen` nor `token_file` is set.
struct AuditFeedConfig {
  /// "127.0.0.1:9465", or "unix:/run/nicsync/audit.sock"; empty: no socket listener.
  std::string listen;
  /// Addresses or ranges whose connections are accepted (required off loopback: plain TCP).
  std::vector<std::string> allow_from;
  /// A unix socket's mode and group (the Vault user must be able to connect).
  std::uint32_t socket_mode = 0660;
  std::string socket_group;
  /// The devices' `prefix` option.
  std::string prefix;
  /// Bearer token file for OpenBao's http device (POST /v1/audit-feed); empty: no such route.
  std::string token_file;
  /// Full resyncs the feed asks for (a device connected, hints dropped) start at most this often.
  std::chrono::milliseconds min_resync_gap{60'000};

  [[nodiscard]] bool enabled() const noexcept { return !listen.empty() || !token_file.empty(); }
  friend bool operator==(const AuditFeedConfig&, const AuditFeedConfig&) = default;
};

struct WatchConfig {
  WatchMode mode = WatchMode::auto_detect;
  /// Every mapped key's metadata is read once per interval (reads spread over the interval).
  std::chrono::milliseconds poll_interval{60'000};
  /// With events on, the full metadata sweep that catches what events miss.
  std::chrono::milliseconds resync_interval{600'000};
  /// Random offset (up to this much) added to each key's slot in the interval.
  std::chrono::milliseconds jitter{5'000};
  /// Vault reads in flight at once for polling.
  int concurrency = 16;
  AuditFeedConfig audit;
};

struct SyncConfig {
  sync::BackoffPolicy backoff;
  int unknown_code_attempts = 3;
  std::chrono::hours history_retention{24 * 90};
  /// How long in-flight pushes may finish after SIGTERM before they are cancelled.
  std::chrono::milliseconds stop_grace{10'000};
  /// A credential whose Vault version is older than this is a warning (0 = off).
  std::chrono::milliseconds max_credential_age{0};
};

enum class LedgerBackend { sqlite, postgresql };

/// [ledger]: where the ledger lives. Changing it takes a restart.
struct LedgerConfig {
  LedgerBackend backend = LedgerBackend::sqlite;
  /// postgresql: a libpq connection string without a password (key=value pairs or a URI).
  std::string url;
  /// postgresql: a file holding the connection string (it may hold a password); a relative
  /// path is under $CREDENTIALS_DIRECTORY. Read again at every connection attempt.
  std::string url_file;
  /// postgresql: the schema of the ledger's tables (a plain SQL identifier).
  std::string schema = "nicsync";
  /// The ledger keys file (fingerprint and sealing key, the same for every daemon on a shared
  /// ledger; relative: under $CREDENTIALS_DIRECTORY). Required with postgresql; with sqlite
  /// optional (without it the fingerprint key is a file in state_dir and the ClearTax token a
  /// 0600 file beside it).
  std::string keys_file;
  /// $CREDENTIALS_DIRECTORY when the config was read (for a relative url_file).
  std::string credentials_directory;

  /// `url_file` made absolute; empty when it is not set, or relative with no
  /// $CREDENTIALS_DIRECTORY to resolve it against.
  [[nodiscard]] std::string url_file_path() const;
  /// `keys_file` made absolute, as `url_file_path`.
  [[nodiscard]] std::string keys_file_path() const;
};

/// Replicas on a PostgreSQL ledger (read only with backend = "postgresql"): one leader at a time,
/// elected by a lease row in the ledger's schema.
struct HaConfig {
  /// This replica's name in the lease and in every push it sends; default: host name + ":" +
  /// the API port. Unique among the replicas.
  std::string replica_id;
  /// The API URL the other replicas reach this one at (a standby forwards POST /v1/sync to the
  /// leader's); default: http(s)://<api listen address>, right when every replica is on one host.
  std::string advertise_url;
  /// How long a lease holds without renewal, and how often the leader renews it.
  std::chrono::milliseconds lease{15'000};
  std::chrono::milliseconds renew{5'000};
};

/// A secret a destination needs for itself, read from Vault ("path" + field "key").
struct VaultSecretRef {
  std::string path;  ///< full Vault path incl. the mount, e.g. "secret/nicsync/cleartax"
  std::string key;   ///< field name, e.g. "client_secret"
};

struct WebhookSecretHeaderConfig {
  std::string name;
  std::string prefix;
  VaultSecretRef secret;
};

struct DestinationConfig {
  std::string name;
  sync::LanePolicy lane;
  /// ClearTax: the static token or the client secret. Webhook: unused (see secret_headers).
  std::optional<VaultSecretRef> auth_secret;
  std::vector<WebhookSecretHeaderConfig> secret_headers;
  std::variant<destinations::ClearTaxConfig, destinations::WebhookConfig> settings;

  [[nodiscard]] std::string_view kind() const noexcept {
    return std::holds_alternative<destinations::ClearTaxConfig>(settings) ? "cleartax" : "webhook";
  }
};

using sync::MappingConfig;
using sync::MappingList;
using sync::MappingSetConfig;
using sync::MappingView;

struct Config {
  std::string source;  ///< file it was read from
  std::string state_dir = "/var/lib/nicsync";
  GstinMode gstin_mode = GstinMode::strict;
  vault::ClientConfig vault;
  WatchConfig watch;
  ApiConfig api;
  LogConfig log;
  SyncConfig sync;
  LedgerConfig ledger;
  HaConfig ha;
  std::vector<DestinationConfig> destinations;
  MappingList mappings;
  std::vector<MappingSetConfig> mapping_sets;
  /// Line of each key the file set ("vault.tls.ca_file" → 12), for errors found after parsing
  /// (files that do not exist, a token file too short).
  std::map<std::string, std::uint32_t, std::less<>> key_lines;

  /// "file:line: key" where `key` was set, or "file: key" if it came from elsewhere.
  [[nodiscard]] std::string where(std::string_view key) const;
};

/// Where defaults come from besides the file (systemd's $STATE_DIRECTORY, $CREDENTIALS_DIRECTORY).
struct ConfigEnvironment {
  std::optional<std::string> state_directory;
  std::optional<std::string> credentials_directory;
  /// Whether PG* variables name a PostgreSQL server or service (PGHOST, PGDATABASE, …), so
  /// that [ledger] backend = "postgresql" needs no url.
  bool postgres_environment = false;
  static ConfigEnvironment from_process();
};

/// Reads and validates a config file.
Result<Config> load_config_file(const std::string& path,
                                const ConfigEnvironment& env = ConfigEnvironment::from_process());
/// Parses and validates config text; `source` names it in errors.
Result<Config> parse_config(std::string_view text, std::string_view source, const ConfigEnvironment& env = {});

/// Splits "secret/nic/X" into mount and key by its first segment (the default guess before
/// Vault's mount detection confirms or corrects it).
std::pair<std::string, std::string> split_mount(std::string_view path);

std::string_view to_string(LogLevel l) noexcept;
std::string_view to_string(WatchMode m) noexcept;
std::string_view to_string(LedgerBackend b) noexcept;

}  // namespace nicsync::app
