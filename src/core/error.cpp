#include "nicsync/core/error.hpp"

#include <array>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "nicsync/core/error_hint.hpp"
#include "nicsync/core/result.hpp"

namespace nicsync {
namespace {

struct Entry {
  Errc code;
  std::string_view name;
  std::string_view text;
  ErrorClass cls;
  std::string_view hint;
  std::string_view action;
};

// What several codes share.
constexpr std::string_view kNetworkHint = "network trouble reaching Vault or a provider";
constexpr std::string_view kNetworkAction = "check DNS, firewall and proxies (`https_proxy`/`no_proxy`); retried";
constexpr std::string_view kStoppingHint = "nicsyncd is stopping or reloading";
constexpr std::string_view kStoppingAction = "nothing; the work is taken up again on the next start";
constexpr std::string_view kUnreadableHint = "the current version is not readable";
constexpr std::string_view kUnreadableAction = "undelete it, or write a new version";
constexpr std::string_view kVaultAuthAction =
    "check the policy (README: Vault policy), the role id / secret id files and `VAULT_TOKEN`; nicsyncd logs in "
    "again by itself";
constexpr std::string_view kLedgerWriteAction =
    "free space / fix permissions of the state directory; nothing recorded is lost and nicsyncd carries on by "
    "itself once writes succeed";

// One table: name, default message, class, and what the operator reads about every code (the
// README's troubleshooting table is checked against it by tests/unit/error_hints_test.cpp).
constexpr Entry kEntries[] = {
    {Errc::ok, "ok", "success", ErrorClass::none, "no error", "nothing"},
    {Errc::invalid_argument, "invalid_argument", "invalid argument", ErrorClass::permanent,
     "a value given to nicsyncd is not valid", "correct the value the message names"},
    {Errc::invalid_gstin, "invalid_gstin", "invalid GSTIN", ErrorClass::permanent,
     "a GSTIN fails its shape, state code or check character",
     "correct the GSTIN in the mapping or the Vault key's name; for sandbox GSTINs set `gstin_validation = "
     "\"sandbox\"`"},
    {Errc::invalid_duration, "invalid_duration", "invalid duration", ErrorClass::permanent, "a duration cannot be read",
     "write it like `500ms`, `30s`, `5m`, `1h30m` or `90d`"},
    {Errc::config_invalid, "config_invalid", "invalid configuration", ErrorClass::permanent,
     "the configuration has errors (file:line:key in the message)", "fix them; `nicsyncd check`"},
    {Errc::io_error, "io_error", "local I/O error", ErrorClass::transient, "a local file could not be read or written",
     "check the file the message names: space, permissions, owner"},
    {Errc::cancelled, "cancelled", "operation cancelled", ErrorClass::transient, kStoppingHint, kStoppingAction},
    {Errc::internal, "internal", "internal error", ErrorClass::permanent, "an internal check failed (a bug)",
     "report it with the log lines around it; `nicsyncd sync --gstin G --force` tries again"},

    {Errc::http_timeout, "http_timeout", "request timed out", ErrorClass::transient, kNetworkHint, kNetworkAction},
    {Errc::http_connect_timeout, "http_connect_timeout", "connect timed out", ErrorClass::transient, kNetworkHint,
     kNetworkAction},
    {Errc::http_connection_refused, "http_connection_refused", "connection refused", ErrorClass::transient,
     kNetworkHint, kNetworkAction},
    {Errc::http_resolve_failed, "http_resolve_failed", "host name could not be resolved", ErrorClass::transient,
     kNetworkHint, kNetworkAction},
    {Errc::http_network, "http_network", "connection failed", ErrorClass::transient, kNetworkHint, kNetworkAction},
    {Errc::http_tls, "http_tls", "TLS handshake failed", ErrorClass::transient, kNetworkHint, kNetworkAction},
    {Errc::http_tls_verify, "http_tls_verify", "server certificate did not verify", ErrorClass::permanent,
     "the server certificate did not verify (CA or host name)",
     "set `[vault.tls] ca_file` / `server_name`, or fix the certificate"},
    {Errc::http_response_too_large, "http_response_too_large", "response too large", ErrorClass::permanent,
     "an answer was larger than nicsyncd accepts", "check that the URL points at Vault or the provider"},
    {Errc::http_protocol, "http_protocol", "malformed HTTP response", ErrorClass::transient,
     "the peer did not speak valid HTTP", "check proxies and the URL's scheme (http or https)"},
    {Errc::http_bad_url, "http_bad_url", "unusable URL", ErrorClass::permanent, "a configured URL cannot be used",
     "correct it in the configuration; `nicsyncd check`"},
    {Errc::http_proxy, "http_proxy", "proxy failed", ErrorClass::transient, kNetworkHint, kNetworkAction},
    {Errc::http_status, "http_status", "unexpected HTTP status", ErrorClass::transient,
     "the server answered with an unexpected HTTP status", "look at the status in the message; retried"},
    {Errc::http_client_shutdown, "http_client_shutdown", "HTTP client is shutting down", ErrorClass::transient,
     kStoppingHint, kStoppingAction},

    {Errc::vault_sealed, "vault_sealed", "Vault is sealed", ErrorClass::transient, "Vault is sealed",
     "unseal Vault; retried with backoff"},
    {Errc::vault_unavailable, "vault_unavailable", "Vault is unavailable", ErrorClass::transient,
     "Vault answered 5xx or has no active node", "fix Vault; retried with backoff"},
    {Errc::vault_rate_limited, "vault_rate_limited", "Vault rate limit exceeded", ErrorClass::transient,
     "a Vault quota answered 429", "raise the quota or `[watch] poll_interval`; retried with backoff"},
    {Errc::vault_precondition, "vault_precondition", "Vault index state not yet present", ErrorClass::transient,
     "a Vault Enterprise standby has not caught up (412)", "nothing; retried with backoff"},
    {Errc::vault_permission_denied, "vault_permission_denied", "Vault permission denied", ErrorClass::permanent,
     "Vault's policy denies this path, even after a fresh login", kVaultAuthAction},
    {Errc::vault_token_invalid, "vault_token_invalid", "Vault token invalid or expired", ErrorClass::auth,
     "the Vault token expired or was revoked", kVaultAuthAction},
    {Errc::vault_login_failed, "vault_login_failed", "Vault login failed", ErrorClass::auth,
     "Vault refused the login (role id, secret id or token)", kVaultAuthAction},
    {Errc::vault_not_found, "vault_not_found", "not found in Vault", ErrorClass::permanent,
     "no such key, version or mount in Vault", "check the mapping's `path`"},
    {Errc::vault_version_deleted, "vault_version_deleted", "Vault version is deleted", ErrorClass::permanent,
     kUnreadableHint, kUnreadableAction},
    {Errc::vault_version_destroyed, "vault_version_destroyed", "Vault version is destroyed", ErrorClass::permanent,
     kUnreadableHint, kUnreadableAction},
    {Errc::vault_bad_request, "vault_bad_request", "Vault rejected the request", ErrorClass::permanent,
     "Vault rejected the request (400)", "check the mapping's `path` and `[vault] namespace`"},
    {Errc::vault_bad_response, "vault_bad_response", "unexpected response from Vault", ErrorClass::transient,
     "Vault's answer was truncated or not the expected JSON", "check proxies between nicsyncd and Vault"},
    {Errc::vault_events_unavailable, "vault_events_unavailable", "Vault events are unavailable", ErrorClass::permanent,
     "this Vault offers no event stream",
     "nothing: polling finds every change; or set "
     "`[watch] mode = \"poll\"`"},
    {Errc::vault_secret_malformed, "vault_secret_malformed", "Vault secret is malformed", ErrorClass::permanent,
     "the secret lacks `username` or `password`, or a value is empty, too long or holds a control character",
     "write a corrected version (`vault kv put ... username=... password=...`); extra keys are fine"},

    {Errc::ledger_io, "ledger_io", "ledger I/O error", ErrorClass::transient,
     "the ledger cannot be written (state directory read-only? PostgreSQL unreachable or refusing?)",
     "the message says what to do; nothing recorded is lost and nicsyncd carries on by itself once writes succeed"},
    {Errc::ledger_full, "ledger_full", "ledger disk full", ErrorClass::transient,
     "the disk of the state directory is full", kLedgerWriteAction},
    {Errc::ledger_corrupt, "ledger_corrupt", "ledger database is corrupt", ErrorClass::permanent,
     "the ledger failed its integrity check",
     "restore it from a backup or move the file away (deliveries are re-checked by fingerprint)"},
    {Errc::ledger_schema, "ledger_schema", "ledger schema is newer than this program", ErrorClass::permanent,
     "the ledger was written by a newer nicsyncd", "run the newer nicsyncd, or restore an older ledger"},
    {Errc::ledger_fenced, "ledger_fenced", "this replica no longer holds the leader lease", ErrorClass::transient,
     "another replica leads now (or this one's lease ran out before it was renewed)",
     "nothing: this replica stays a standby and takes over when the lease is free; if it happens often, check "
     "the network between replicas and PostgreSQL, and that `[ha] renew` is well under `lease`"},
    {Errc::state_dir_locked, "state_dir_locked", "state directory is locked by another process", ErrorClass::permanent,
     "another nicsyncd holds the state directory (PID in the message)",
     "stop the other instance, or give each its own `state_dir`"},

    {Errc::dest_unauthorized, "dest_unauthorized", "destination rejected the access token", ErrorClass::auth,
     "the provider rejected nicsyncd's access token even after one refresh (HTTP 401, ClearTax 105)",
     "check the client secret in Vault and that the API client is active"},
    {Errc::dest_rate_limited, "dest_rate_limited", "destination rate limit", ErrorClass::transient,
     "the provider's rate limit answered 429", "nothing (`Retry-After` is honoured); lower `rate_limit`"},
    {Errc::dest_unavailable, "dest_unavailable", "destination temporarily unavailable", ErrorClass::transient,
     "the provider or NIC is temporarily unable (HTTP 5xx, ClearTax 301/302)", "nothing; retried"},
    {Errc::dest_credential_rejected, "dest_credential_rejected", "NIC rejected the username/password",
     ErrorClass::credential_rejected,
     "NIC says the username or password is wrong (1008, 1017, 1019, 3000, 3002); not retried for this version",
     "fix the password at the e-invoice portal, then write it to Vault as a new version; do not force retries "
     "(NIC blocks API users that keep failing)"},
    {Errc::dest_gstin_not_linked, "dest_gstin_not_linked", "NIC API user is not linked to this GSTIN",
     ErrorClass::permanent, "the NIC API user is not linked to this GSTIN (NIC 1015)",
     "create the API user for this GSTIN on einvoice1.gst.gov.in, or fix the mapping; then `nicsyncd sync "
     "--gstin G --force`"},
    {Errc::dest_wrong_gsp, "dest_wrong_gsp", "NIC API user is registered for another GSP", ErrorClass::permanent,
     "the NIC API user was created for another GSP or for direct access (NIC 1018)",
     "create an API user through GSP DEFMACRO SOFTWARE (ClearTax) and write it to Vault as a new version"},
    {Errc::dest_gstin_inactive, "dest_gstin_inactive", "GSTIN is inactive, cancelled or frozen at NIC",
     ErrorClass::permanent,
     "the GSTIN is inactive, cancelled, frozen or not enabled for e-invoicing (NIC 1014, 3029, 3033-3036)",
     "resolve it with GSTN/NIC; then `nicsyncd sync --gstin G --force`"},
    {Errc::dest_no_access, "dest_no_access", "destination account has no access to this GSTIN", ErrorClass::permanent,
     "the ClearTax workspace has no access to this GSTIN (ClearTax 502)",
     "add the GSTIN to the workspace, or use the right client secret; then `nicsyncd sync --gstin G --force`"},
    {Errc::dest_unknown_code, "dest_unknown_code", "destination returned an unknown code", ErrorClass::transient,
     "the provider answered a code nicsyncd does not know (shown raw, e.g. CT:777)",
     "look it up in the provider's error list; retried `unknown_code_attempts` times, then parked"},
    {Errc::dest_bad_response, "dest_bad_response", "destination response not understood", ErrorClass::transient,
     "the provider's answer could not be understood", "check proxies; report it to the provider if it persists"},
    {Errc::dest_rejected, "dest_rejected", "destination rejected the request", ErrorClass::permanent,
     "the destination refused the request (HTTP 4xx)", "check the webhook's URL, method, body template and headers"},
    {Errc::dest_token_quota, "dest_token_quota", "destination token quota spent", ErrorClass::transient,
     "the hourly cap or ClearTax's 288 token calls a day are spent",
     "wait (resets 00:00 UTC); make sure no other system uses the same client secret"},
    {Errc::dest_circuit_open, "dest_circuit_open", "destination circuit breaker open", ErrorClass::transient,
     "the destination failed repeatedly; pushes pause for `breaker_open_for`",
     "look at the destination's earlier errors"},

    {Errc::sync_source_deleted, "sync_source_deleted", "current Vault version is deleted or destroyed",
     ErrorClass::permanent, kUnreadableHint, kUnreadableAction},
    {Errc::sync_superseded, "sync_superseded", "superseded by a newer version", ErrorClass::none,
     "a newer version replaced this delivery", "nothing; the newer version is delivered instead"},
    {Errc::sync_max_age, "sync_max_age", "delivery exceeded its maximum age", ErrorClass::permanent,
     "a delivery kept failing for longer than `[sync] max_age` and was parked",
     "fix the error in the message, then `nicsyncd sync --gstin G --force`"},

    {Errc::sys_notify_failed, "sys_notify_failed", "could not notify systemd", ErrorClass::transient,
     "a message to systemd could not be sent", "check that the unit is `Type=notify` and `NOTIFY_SOCKET` is set"},
    {Errc::sys_hardening_failed, "sys_hardening_failed", "process hardening failed", ErrorClass::permanent,
     "turning core dumps off failed", "run nicsyncd under the shipped unit, or allow `prctl` and `setrlimit`"},
};

constexpr auto kCodes = [] {
  std::array<Errc, std::size(kEntries)> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = kEntries[i].code;
  return out;
}();

const Entry* find(int value) noexcept {
  for (const auto& e : kEntries) {
    if (static_cast<int>(e.code) == value) return &e;
  }
  return nullptr;
}

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nicsync"; }
  std::string message(int value) const override {
    if (const auto* e = find(value)) return std::string(e->text);
    return "unknown nicsync error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& nicsync_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), nicsync_category()}; }

ErrorClass classify(std::error_code ec) noexcept {
  if (!ec) return ErrorClass::none;
  if (ec.category() == nicsync_category()) {
    if (const auto* e = find(ec.value())) return e->cls;
    return ErrorClass::permanent;
  }
  // Foreign codes: socket-level trouble is worth retrying, the rest is a bug or config.
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    switch (static_cast<std::errc>(ec.value())) {
      case std::errc::connection_refused:
      case std::errc::connection_reset:
      case std::errc::connection_aborted:
      case std::errc::timed_out:
      case std::errc::network_unreachable:
      case std::errc::host_unreachable:
      case std::errc::broken_pipe:
      case std::errc::resource_unavailable_try_again:
      case std::errc::no_buffer_space:
      case std::errc::not_enough_memory:
      case std::errc::no_space_on_device:
      case std::errc::operation_canceled: return ErrorClass::transient;
      default: return ErrorClass::permanent;
    }
  }
  return ErrorClass::permanent;
}

std::string_view to_string(ErrorClass c) noexcept {
  switch (c) {
    case ErrorClass::none: return "none";
    case ErrorClass::transient: return "transient";
    case ErrorClass::auth: return "auth";
    case ErrorClass::permanent: return "permanent";
    case ErrorClass::credential_rejected: return "credential_rejected";
  }
  return "unknown";
}

std::string_view errc_name(Errc e) noexcept {
  if (const auto* entry = find(static_cast<int>(e))) return entry->name;
  return "unknown";
}

ErrorHint error_hint(Errc e) noexcept {
  if (const auto* entry = find(static_cast<int>(e))) return {entry->hint, entry->action};
  return {"unknown error", "look at the message and the log"};
}

std::optional<ErrorHint> error_hint(std::string_view code_name) noexcept {
  for (const auto& e : kEntries) {
    if (e.name == code_name) return ErrorHint{e.hint, e.action};
  }
  return std::nullopt;
}

ErrorHint error_hint_or_general(std::string_view code_name) noexcept {
  if (auto h = error_hint(code_name)) return *h;
  return {"an error of the system or a library (category:number)",
          "look at the message and the log lines around it; transient ones are retried"};
}

std::span<const Errc> all_error_codes() noexcept { return kCodes; }

std::string Error::describe() const {
  std::string out = message.empty() ? code.message() : message;
  if (code.category() == nicsync_category()) {
    out += fmt::format(" ({})", errc_name(static_cast<Errc>(code.value())));
  } else if (code) {
    out += fmt::format(" ({}:{})", code.category().name(), code.value());
  }
  return out;
}

void throw_exception_from_error(const Error& e, const boost::source_location& loc) {
  boost::throw_with_location(std::system_error(e.code, e.message), loc);
}

}  // namespace nicsync
