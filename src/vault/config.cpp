#include "nicsync/vault/config.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "vault/wire.hpp"

namespace nicsync::vault {

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<void> apply_environment(ClientConfig& config, const EnvLookup& env) {
  // Go's client treats an empty variable as unset.
  auto get = [&](std::string_view name) -> std::optional<std::string> {
    auto v = env(name);
    if (!v || v->empty()) return std::nullopt;
    return v;
  };
  auto bad = [](std::string_view name, std::string_view value, std::string_view expected) {
    return Error(Errc::config_invalid,
                 fmt::format("environment variable {}=\"{}\" is not valid: expected {}", name, value, expected));
  };

  if (config.address.empty()) {
    if (auto v = get("VAULT_AGENT_ADDR")) {
      config.address = *v;
    } else if (auto v2 = get("VAULT_ADDR")) {
      config.address = *v2;
    }
  }
  if (config.vault_namespace.empty()) {
    if (auto v = get("VAULT_NAMESPACE")) {
      auto ns = Namespace::parse(*v);
      if (!ns) return bad("VAULT_NAMESPACE", *v, "a namespace path such as team-a/app");
      config.vault_namespace = std::move(*ns);
    }
  }
  // "token" named in the config without a token means: the one in VAULT_TOKEN.
  const bool wants_token =
      config.auth.method == AuthMethod::none || (config.auth.method == AuthMethod::token && config.auth.token.empty());
  if (wants_token) {
    if (auto v = get("VAULT_TOKEN")) {
      config.auth.method = AuthMethod::token;
      config.auth.token = Token(Secret::take(*v));
    }
  }
  if (config.auth.credentials_directory.empty()) {
    if (auto v = get("CREDENTIALS_DIRECTORY")) config.auth.credentials_directory = *v;
  }

  TlsConfig& tls = config.tls;
  if (tls.ca_cert.empty()) {
    if (auto v = get("VAULT_CACERT")) tls.ca_cert = *v;
  }
  if (tls.ca_path.empty()) {
    if (auto v = get("VAULT_CAPATH")) tls.ca_path = *v;
  }
  if (tls.client_cert.empty() && tls.client_key.empty()) {
    auto cert = get("VAULT_CLIENT_CERT");
    auto key = get("VAULT_CLIENT_KEY");
    if (cert.has_value() != key.has_value()) {
      return Error(Errc::config_invalid,
                   fmt::format("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together (only {} is set)",
                               cert ? "VAULT_CLIENT_CERT" : "VAULT_CLIENT_KEY"));
    }
    if (cert) {
      tls.client_cert = *cert;
      tls.client_key = *key;
    }
  }
  if (!tls.skip_verify) {
    if (auto v = get("VAULT_SKIP_VERIFY")) {
      auto b = wire::parse_go_bool(*v);
      if (!b) return bad("VAULT_SKIP_VERIFY", *v, "true or false (1, t, TRUE, 0, f, FALSE, ...)");
      tls.skip_verify = *b;
    }
  }
  if (tls.server_name.empty()) {
    if (auto v = get("VAULT_TLS_SERVER_NAME")) tls.server_name = *v;
  }
  if (!config.timeout) {
    if (auto v = get("VAULT_CLIENT_TIMEOUT")) {
      auto d = wire::parse_seconds_or_go_duration(*v);
      if (!d || d->count() <= 0) return bad("VAULT_CLIENT_TIMEOUT", *v, "seconds (60) or a duration (1m30s)");
      config.timeout = *d;
    }
  }
  if (!config.max_retries) {
    if (auto v = get("VAULT_MAX_RETRIES")) {
      int n = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || end != v->data() + v->size() || n < 0 || n > 100) {
        return bad("VAULT_MAX_RETRIES", *v, "a whole number from 0 to 100");
      }
      config.max_retries = n;
    }
  }
  return {};
}

namespace {

Result<void> check_readable(const std::string& path, std::string_view what, bool directory = false) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return Error(Errc::config_invalid, fmt::format("{} \"{}\" does not exist", what, path));
  }
  if (directory != std::filesystem::is_directory(status)) {
    return Error(Errc::config_invalid,
                 fmt::format("{} \"{}\" is {}", what, path, directory ? "not a directory" : "a directory"));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return Error(Errc::config_invalid, fmt::format("{} \"{}\" is not readable by this user", what, path));
  }
  return {};
}

}  // namespace

Result<void> validate(const ClientConfig& config) {
  const std::string address = config.address.empty() ? "https://127.0.0.1:8200" : config.address;
  auto base = wire::parse_address(address, config.tls.server_name);
  if (!base) return base.error();
  const AuthConfig& auth = config.auth;
  switch (auth.method) {
    case AuthMethod::none:
      return Error(Errc::config_invalid,
                   "no Vault authentication configured: set a token, a token file or AppRole in the config, or "
                   "VAULT_TOKEN in the environment");
    case AuthMethod::token:
      if (auth.token.empty())
        return Error(Errc::config_invalid, "Vault token auth is configured but the token is empty");
      break;
    case AuthMethod::token_file:
      if (auth.token_file.empty()) {
        return Error(Errc::config_invalid, "Vault token-file auth is configured without a file path");
      }
      break;
    case AuthMethod::approle:
      if (auth.role_id_file.empty() || auth.secret_id_file.empty()) {
        return Error(Errc::config_invalid, "Vault AppRole auth needs both a role_id file and a secret_id file");
      }
      if (auth.approle_mount.empty() || !VaultPath::parse(auth.approle_mount)) {
        return Error(Errc::config_invalid,
                     fmt::format("Vault AppRole mount \"{}\" is not a valid path", auth.approle_mount));
      }
      break;
  }
  const TlsConfig& tls = config.tls;
  if (tls.client_cert.empty() != tls.client_key.empty()) {
    return Error(Errc::config_invalid, "a Vault client certificate and its key must be given together");
  }
  if (!tls.ca_cert.empty()) {
    if (auto r = check_readable(tls.ca_cert, "Vault CA certificate file (VAULT_CACERT)"); !r) return r;
  }
  if (!tls.ca_path.empty()) {
    if (auto r = check_readable(tls.ca_path, "Vault CA directory (VAULT_CAPATH)", true); !r) return r;
  }
  if (!tls.client_cert.empty()) {
    if (auto r = check_readable(tls.client_cert, "Vault client certificate (VAULT_CLIENT_CERT)"); !r) return r;
    if (auto r = check_readable(tls.client_key, "Vault client key (VAULT_CLIENT_KEY)"); !r) return r;
  }
  if (config.timeout && config.timeout->count() <= 0) {
    return Error(Errc::config_invalid, "Vault client timeout must be positive");
  }
  if (config.max_retries && (*config.max_retries < 0 || *config.max_retries > 100)) {
    return Error(Errc::config_invalid, "Vault max retries must be between 0 and 100");
  }
  if (config.retry_base.count() <= 0 || config.retry_cap < config.retry_base ||
      config.login_backoff_base.count() <= 0 || config.login_backoff_cap < config.login_backoff_base) {
    return Error(Errc::config_invalid, "Vault backoff settings need 0 < base <= cap");
  }
  if (config.max_connections < 1) return Error(Errc::config_invalid, "Vault max connections must be at least 1");
  return {};
}

std::string_view to_string(AuthMethod m) noexcept {
  switch (m) {
    case AuthMethod::none: return "none";
    case AuthMethod::token: return "token";
    case AuthMethod::token_file: return "token_file";
    case AuthMethod::approle: return "approle";
  }
  return "unknown";
}

}  // namespace nicsync::vault
