#pragma once
/// \file
/// Project-wide error codes, their category, and the classification that drives retries.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace nicsync {

/// Every failure the project reports, grouped by the module that produces it.
enum class Errc {
  ok = 0,  ///< no error (never used as a failure)

  // core
  invalid_argument = 100,  ///< an argument or value fails validation
  invalid_gstin,           ///< a GSTIN fails shape, state-code or check-character rules
  invalid_duration,        ///< a duration string such as "30s" cannot be parsed
  config_invalid,          ///< the configuration file is missing, unreadable or wrong
  io_error,                ///< a local file could not be read or written
  cancelled,               ///< the operation was cancelled (shutdown or caller)
  internal,                ///< a bug: an invariant did not hold

  // http
  http_timeout = 200,       ///< the whole request exceeded its deadline
  http_connect_timeout,     ///< no connection within the connect deadline
  http_connection_refused,  ///< the peer refused the connection
  http_resolve_failed,      ///< the host name could not be resolved
  http_network,             ///< the connection broke (reset, closed mid-response, send/recv error)
  http_tls,                 ///< TLS handshake failed (protocol, client certificate, ...)
  http_tls_verify,          ///< the peer certificate did not verify (CA or host name)
  http_response_too_large,  ///< the response body exceeded the configured cap
  http_protocol,            ///< the peer spoke malformed HTTP
  http_bad_url,             ///< the URL could not be used
  http_proxy,               ///< the proxy refused or failed
  http_status,              ///< the server answered with an unexpected HTTP status
  http_client_shutdown,     ///< the client is shutting down and takes no more requests

  // vault
  vault_sealed = 300,        ///< Vault is sealed (503)
  vault_unavailable,         ///< Vault answered 5xx or no active node
  vault_rate_limited,        ///< Vault quota returned 429
  vault_precondition,        ///< Vault Enterprise 412: index state not yet present
  vault_permission_denied,   ///< policy denies the path (403), still after a fresh login: fix the policy
  vault_token_invalid,       ///< token unknown, expired or revoked (403 with "invalid token")
  vault_login_failed,        ///< AppRole login refused (bad role_id or secret_id)
  vault_not_found,           ///< key, version or mount does not exist (404)
  vault_version_deleted,     ///< the requested version is soft-deleted
  vault_version_destroyed,   ///< the requested version is destroyed
  vault_bad_request,         ///< Vault rejected the request (400)
  vault_bad_response,        ///< the response body is truncated, not JSON or of the wrong shape
  vault_events_unavailable,  ///< the server does not offer the events websocket
  vault_secret_malformed,    ///< the secret lacks the expected username/password fields

  // ledger
  ledger_io = 400,   ///< the ledger database could not be read or written
  ledger_full,       ///< the disk or database is full
  ledger_corrupt,    ///< the ledger failed an integrity check
  ledger_schema,     ///< the ledger schema is newer than this binary understands
  ledger_fenced,     ///< a shared ledger refused a write: this replica no longer holds the leader lease
  state_dir_locked,  ///< another process holds the state directory

  // destinations
  dest_unauthorized = 500,   ///< provider rejected our access token (HTTP 401, ClearTax 105)
  dest_rate_limited,         ///< provider answered 429
  dest_unavailable,          ///< provider 5xx or "temporarily unable" (ClearTax 301/302)
  dest_credential_rejected,  ///< NIC says the username/password pair is wrong (1008/1017/1019/3000/3002)
  dest_gstin_not_linked,     ///< NIC 1015: the API user is not linked to this GSTIN
  dest_wrong_gsp,            ///< NIC 1018: the API user is registered for another GSP
  dest_gstin_inactive,       ///< NIC 1014/3029/3033-3036: GSTIN inactive, cancelled or frozen
  dest_no_access,            ///< ClearTax 502: the token's workspace has no access to the GSTIN
  dest_unknown_code,         ///< provider returned a code we do not know
  dest_bad_response,         ///< provider response could not be understood
  dest_rejected,             ///< provider refused the request as malformed (4xx)
  dest_token_quota,          ///< token endpoint daily or hourly quota spent
  dest_circuit_open,         ///< circuit breaker is open for this destination

  // sync
  sync_source_deleted = 600,  ///< the current Vault version is deleted or destroyed
  sync_superseded,            ///< a newer version replaced this delivery
  sync_max_age,               ///< retries exceeded the maximum age; parked

  // sys
  sys_notify_failed = 800,  ///< a message to systemd through NOTIFY_SOCKET could not be sent
  sys_hardening_failed,     ///< a process hardening step (core dumps off) failed
};

/// How the engine reacts to a failure.
enum class ErrorClass {
  none,                 ///< success
  transient,            ///< retry with backoff
  auth,                 ///< refresh the token or log in again, then retry
  permanent,            ///< park until a new version or an operator retry
  credential_rejected,  ///< never retry this version (NIC blocks accounts that keep failing)
};

const std::error_category& nicsync_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

/// The class of an error code; codes of other categories (system, asio) are transient
/// when they look like network trouble and permanent otherwise.
ErrorClass classify(std::error_code ec) noexcept;
std::string_view to_string(ErrorClass c) noexcept;
/// Short stable name of a project code, e.g. "vault_sealed" (for ledgers, metrics, JSON).
std::string_view errc_name(Errc e) noexcept;

/// A failure with its code and an operator-facing message (never secret material).
struct Error {
  std::error_code code;
  std::string message;
  /// Server-suggested delay (Retry-After), if any.
  std::optional<std::chrono::milliseconds> retry_after;
  /// HTTP status of the response that caused the error, 0 if none.
  int http_status = 0;
  /// Raw provider code, e.g. "NIC:1019" or "CT:502"; empty if none.
  std::string provider_code;

  Error() = default;
  Error(std::error_code c, std::string msg = {}) : code(c), message(std::move(msg)) {}
  Error(Errc c, std::string msg = {}) : code(make_error_code(c)), message(std::move(msg)) {}

  [[nodiscard]] ErrorClass error_class() const noexcept { return classify(code); }
  [[nodiscard]] bool is(Errc e) const noexcept { return code == make_error_code(e); }
  /// "message (code)" suitable for a log line or a status page.
  [[nodiscard]] std::string describe() const;
};

}  // namespace nicsync

template <>
struct std::is_error_code_enum<nicsync::Errc> : std::true_type {};

template <>
struct fmt::formatter<nicsync::Error> : fmt::formatter<std::string_view> {
  auto format(const nicsync::Error& e, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(e.describe(), ctx);
  }
};
