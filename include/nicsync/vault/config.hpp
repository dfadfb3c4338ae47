#pragma once
/// \file
/// Vault client configuration and the `VAULT_*` environment variables of the official
/// clients (reference §3.2), applied only where the daemon's config left a field empty.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/vault/types.hpp"

namespace nicsync::vault {

/// How the client gets its token.
enum class AuthMethod {
  none,        ///< not configured (the environment may still supply VAULT_TOKEN)
  token,       ///< a fixed token (config or VAULT_TOKEN)
  token_file,  ///< a file holding the token, re-read when it changes (e.g. a Vault Agent sink)
  approle,     ///< AppRole login with role_id and secret_id read from files at every login
};

struct AuthConfig {
  AuthMethod method = AuthMethod::none;
  Token token;             ///< AuthMethod::token
  std::string token_file;  ///< AuthMethod::token_file
  std::string approle_mount = "approle";
  std::string role_id_file;    ///< AuthMethod::approle
  std::string secret_id_file;  ///< AuthMethod::approle
  /// systemd's `$CREDENTIALS_DIRECTORY`: relative token/role_id/secret_id file paths are
  /// resolved against it (else against the working directory).
  std::string credentials_directory;
};

struct TlsConfig {
  std::string ca_cert;      ///< VAULT_CACERT: PEM bundle
  std::string ca_path;      ///< VAULT_CAPATH: directory of PEM CA files
  std::string client_cert;  ///< VAULT_CLIENT_CERT (with client_key)
  std::string client_key;   ///< VAULT_CLIENT_KEY (with client_cert)
  std::string server_name;  ///< VAULT_TLS_SERVER_NAME: name to send (SNI) and verify
  /// VAULT_SKIP_VERIFY: disables server certificate checks (logged as a warning). Unset = verify.
  std::optional<bool> skip_verify;
};

struct ClientConfig {
  /// VAULT_ADDR (or VAULT_AGENT_ADDR); default https://127.0.0.1:8200.
  std::string address;
  /// VAULT_NAMESPACE; empty = root namespace.
  Namespace vault_namespace;
  AuthConfig auth;
  TlsConfig tls;
  /// VAULT_CLIENT_TIMEOUT: deadline of one call including its retries; default 60 s.
  std::optional<std::chrono::milliseconds> timeout;
  /// VAULT_MAX_RETRIES: retries after the first attempt; default 2.
  std::optional<int> max_retries;
  /// Full-jitter backoff between retries of one call.
  std::chrono::milliseconds retry_base{250};
  std::chrono::milliseconds retry_cap{5'000};
  /// Full-jitter backoff between failed logins or renewals (token lifetime manager).
  std::chrono::milliseconds login_backoff_base{1'000};
  std::chrono::milliseconds login_backoff_cap{300'000};
  /// `increment` asked for on renew-self; 0 = the token's default TTL.
  std::chrono::seconds renew_increment{0};
  /// Connections kept to Vault (one keep-alive pool).
  long max_connections = 64;
  /// Largest accepted response body.
  std::size_t max_response_bytes = 4u << 20;
};

/// Looks up an environment variable; nothing when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (`getenv`).
EnvLookup process_environment();

/// Fills the fields `config` left empty from VAULT_ADDR / VAULT_AGENT_ADDR, VAULT_TOKEN (when
/// no auth method is configured), VAULT_NAMESPACE, VAULT_CACERT, VAULT_CAPATH,
/// VAULT_CLIENT_CERT + VAULT_CLIENT_KEY (both or neither), VAULT_SKIP_VERIFY (Go ParseBool),
/// VAULT_TLS_SERVER_NAME, VAULT_CLIENT_TIMEOUT (seconds or a Go duration), VAULT_MAX_RETRIES
/// and CREDENTIALS_DIRECTORY. An empty variable counts as unset. Errors name the variable.
Result<void> apply_environment(ClientConfig& config, const EnvLookup& env);

/// Checks a config before use: address, auth settings, TLS files, limits. Errors say what to fix.
Result<void> validate(const ClientConfig& config);

std::string_view to_string(AuthMethod m) noexcept;

}  // namespace nicsync::vault
