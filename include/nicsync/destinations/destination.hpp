#pragma once
/// \file
/// A destination: a place NIC credentials are delivered to (ClearTax, a generic webhook).
/// The sync engine calls `push` once per attempt; the destination maps every provider answer
/// to a classified `Error`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "nicsync/core/gstin.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"

namespace nicsync::destinations {

/// One NIC API user: the username is not secret (providers echo it), the password is.
struct Credential {
  std::string username;
  Secret password;
};

/// What is being pushed, for the request and its Idempotency-Key.
struct Delivery {
  Gstin gstin;
  std::string vault_path;  ///< "mount/key"
  std::int64_t version = 0;
  std::string lineage;  ///< the key's metadata created_time (a recreated key is a new lineage)
  int attempt = 1;
  /// The engine's `sync::idempotency_key()` for this version: sent as it is, the same on every attempt.
  /// Empty only by mistake; a push then goes without an Idempotency-Key header.
  std::string idempotency_key;
};

/// A destination setting that does not hold what it should.
struct ConfigFault {
  /// The setting's key in the config file's `[[destination]]` table ("token_base_url", "body").
  std::string key;
  /// `config_invalid`; the message names the destination and the setting.
  Error error;
};

/// Reads a secret the destination needs for itself (an auth token, a client secret) from Vault.
using SecretProvider = std::function<boost::asio::awaitable<Result<Secret>>()>;

/// Counters a destination exposes for metrics and status (no secret material).
struct DestinationStats {
  std::uint64_t pushes = 0;                     ///< pushes the provider confirmed
  std::uint64_t push_failures = 0;              ///< pushes that ended in an error
  std::uint64_t token_requests_today = 0;       ///< ClearTax access-token calls made this UTC day
  std::int64_t token_requests_left_today = -1;  ///< -1 when the destination has no such limit
  std::uint64_t token_requests_last_hour = 0;
  std::int64_t token_requests_hourly_cap = -1;  ///< -1 when the destination has no such limit
  /// Pushes repeated once after the provider rejected the token or key (then re-read or refreshed).
  std::uint64_t auth_retries = 0;
  bool token_cached = false;  ///< a token is held and not known to be expired
  /// Expiry of the held access token; nothing if none is held or it never expires.
  std::optional<std::chrono::system_clock::time_point> token_valid_till;
};

class Destination {
 public:
  virtual ~Destination() = default;
  /// The configured name, e.g. "cleartax-prod".
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// "cleartax" or "webhook".
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;
  /// Delivers one credential. Success only when the provider confirmed it.
  virtual boost::asio::awaitable<Result<void>> push(Delivery delivery, Credential credential) = 0;
  /// Checks that the provider is reachable (for `nicsyncd check --online`); pushes nothing.
  virtual boost::asio::awaitable<Result<void>> probe() = 0;
  [[nodiscard]] virtual DestinationStats stats() const = 0;
  /// What it keeps in the ledger (ClearTax: the access token and the day's token calls) may
  /// have been changed by another replica: read it again before the next push.
  virtual void reread_shared_state() {}
};

}  // namespace nicsync::destinations
