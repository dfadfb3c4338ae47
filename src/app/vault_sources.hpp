#pragma once
// Vault as the engine's credential source and as the source of destinations' own secrets.

#include <map>
#include <string>

#include "nicsync/app/config.hpp"
#include "nicsync/destinations/destination.hpp"
#include "nicsync/sync/engine.hpp"
#include "nicsync/vault/client.hpp"

namespace nicsync::app {

/// Reads a credential version and checks it is usable: both fields present, strings, not empty,
/// valid UTF-8 without control characters, and of a sane size. Anything else is
/// `vault_secret_malformed` naming the path, version and field — never a value.
class VaultCredentialReader final : public sync::CredentialReader {
 public:
  explicit VaultCredentialReader(vault::Client& vault) : vault_(vault) {}
  boost::asio::awaitable<Result<destinations::Credential>> read(sync::SourceRef source, std::int64_t version) override;

 private:
  vault::Client& vault_;
};

/// Checks one credential field (exposed for tests).
Result<void> check_credential_field(std::string_view path, std::string_view field, std::string_view value,
                                    std::size_t max_bytes);

/// Hands destinations a `SecretProvider` per configured Vault reference.
class VaultSecretSource {
 public:
  explicit VaultSecretSource(vault::Client& vault) : vault_(vault) {}
  destinations::SecretProvider provider(VaultSecretRef ref);

 private:
  boost::asio::awaitable<Result<Secret>> read(VaultSecretRef ref);
  vault::Client& vault_;
};

}  // namespace nicsync::app
