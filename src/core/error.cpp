#include "nicsync/core/error.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "nicsync/core/result.hpp"

namespace nicsync {
namespace {

struct Entry {
  Errc code;
  std::string_view name;
  std::string_view text;
  ErrorClass cls;
};

// One table: name, default message and class of every code.
constexpr Entry kEntries[] = {
    {Errc::ok, "ok", "success", ErrorClass::none},
    {Errc::invalid_argument, "invalid_argument", "invalid argument", ErrorClass::permanent},
    {Errc::invalid_gstin, "invalid_gstin", "invalid GSTIN", ErrorClass::permanent},
    {Errc::invalid_duration, "invalid_duration", "invalid duration", ErrorClass::permanent},
    {Errc::config_invalid, "config_invalid", "invalid configuration", ErrorClass::permanent},
    {Errc::io_error, "io_error", "local I/O error", ErrorClass::transient},
    {Errc::cancelled, "cancelled", "operation cancelled", ErrorClass::transient},
    {Errc::internal, "internal", "internal error", ErrorClass::permanent},

    {Errc::http_timeout, "http_timeout", "request timed out", ErrorClass::transient},
    {Errc::http_connect_timeout, "http_connect_timeout", "connect timed out", ErrorClass::transient},
    {Errc::http_connection_refused, "http_connection_refused", "connection refused", ErrorClass::transient},
    {Errc::http_resolve_failed, "http_resolve_failed", "host name could not be resolved", ErrorClass::transient},
    {Errc::http_network, "http_network", "connection failed", ErrorClass::transient},
    {Errc::http_tls, "http_tls", "TLS handshake failed", ErrorClass::transient},
    {Errc::http_tls_verify, "http_tls_verify", "server certificate did not verify", ErrorClass::permanent},
    {Errc::http_response_too_large, "http_response_too_large", "response too large", ErrorClass::permanent},
    {Errc::http_protocol, "http_protocol", "malformed HTTP response", ErrorClass::transient},
    {Errc::http_bad_url, "http_bad_url", "unusable URL", ErrorClass::permanent},
    {Errc::http_proxy, "http_proxy", "proxy failed", ErrorClass::transient},
    {Errc::http_status, "http_status", "unexpected HTTP status", ErrorClass::transient},
    {Errc::http_client_shutdown, "http_client_shutdown", "HTTP client is shutting down", ErrorClass::transient},

    {Errc::vault_sealed, "vault_sealed", "Vault is sealed", ErrorClass::transient},
    {Errc::vault_unavailable, "vault_unavailable", "Vault is unavailable", ErrorClass::transient},
    {Errc::vault_rate_limited, "vault_rate_limited", "Vault rate limit exceeded", ErrorClass::transient},
    {Errc::vault_precondition, "vault_precondition", "Vault index state not yet present", ErrorClass::transient},
    {Errc::vault_permission_denied, "vault_permission_denied", "Vault permission denied", ErrorClass::permanent},
    {Errc::vault_token_invalid, "vault_token_invalid", "Vault token invalid or expired", ErrorClass::auth},
    {Errc::vault_login_failed, "vault_login_failed", "Vault login failed", ErrorClass::auth},
    {Errc::vault_not_found, "vault_not_found", "not found in Vault", ErrorClass::permanent},
    {Errc::vault_version_deleted, "vault_version_deleted", "Vault version is deleted", ErrorClass::permanent},
    {Errc::vault_version_destroyed, "vault_version_destroyed", "Vault version is destroyed", ErrorClass::permanent},
    {Errc::vault_bad_request, "vault_bad_request", "Vault rejected the request", ErrorClass::permanent},
    {Errc::vault_bad_response, "vault_bad_response", "unexpected response from Vault", ErrorClass::transient},
    {Errc::vault_events_unavailable, "vault_events_unavailable", "Vault events are unavailable", ErrorClass::permanent},
    {Errc::vault_secret_malformed, "vault_secret_malformed", "Vault secret is malformed", ErrorClass::permanent},

    {Errc::ledger_io, "ledger_io", "ledger I/O error", ErrorClass::transient},
    {Errc::ledger_full, "ledger_full", "ledger disk full", ErrorClass::transient},
    {Errc::ledger_corrupt, "ledger_corrupt", "ledger database is corrupt", ErrorClass::permanent},
    {Errc::ledger_schema, "ledger_schema", "ledger schema is newer than this program", ErrorClass::permanent},
    {Errc::ledger_fenced, "ledger_fenced", "this replica no longer holds the leader lease", ErrorClass::transient},
    {Errc::state_dir_locked, "state_dir_locked", "state directory is locked by another process", ErrorClass::permanent},

    {Errc::dest_unauthorized, "dest_unauthorized", "destination rejected the access token", ErrorClass::auth},
    {Errc::dest_rate_limited, "dest_rate_limited", "destination rate limit", ErrorClass::transient},
    {Errc::dest_unavailable, "dest_unavailable", "destination temporarily unavailable", ErrorClass::transient},
    {Errc::dest_credential_rejected, "dest_credential_rejected", "NIC rejected the username/password",
     ErrorClass::credential_rejected},
    {Errc::dest_gstin_not_linked, "dest_gstin_not_linked", "NIC API user is not linked to this GSTIN",
     ErrorClass::permanent},
    {Errc::dest_wrong_gsp, "dest_wrong_gsp", "NIC API user is registered for another GSP", ErrorClass::permanent},
    {Errc::dest_gstin_inactive, "dest_gstin_inactive", "GSTIN is inactive, cancelled or frozen at NIC",
     ErrorClass::permanent},
    {Errc::dest_no_access, "dest_no_access", "destination account has no access to this GSTIN", ErrorClass::permanent},
    {Errc::dest_unknown_code, "dest_unknown_code", "destination returned an unknown code", ErrorClass::transient},
    {Errc::dest_bad_response, "dest_bad_response", "destination response not understood", ErrorClass::transient},
    {Errc::dest_rejected, "dest_rejected", "destination rejected the request", ErrorClass::permanent},
    {Errc::dest_token_quota, "dest_token_quota", "destination token quota spent", ErrorClass::transient},
    {Errc::dest_circuit_open, "dest_circuit_open", "destination circuit breaker open", ErrorClass::transient},

    {Errc::sync_source_deleted, "sync_source_deleted", "current Vault version is deleted or destroyed",
     ErrorClass::permanent},
    {Errc::sync_superseded, "sync_superseded", "superseded by a newer version", ErrorClass::none},
    {Errc::sync_max_age, "sync_max_age", "delivery exceeded its maximum age", ErrorClass::permanent},

    {Errc::sys_notify_failed, "sys_notify_failed", "could not notify systemd", ErrorClass::transient},
    {Errc::sys_hardening_failed, "sys_hardening_failed", "process hardening failed", ErrorClass::permanent},
};

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
