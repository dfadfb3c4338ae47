#pragma once
/// \file
/// ClearTax destination: `store_nic_credentials` (reference/gst-domain.md §1.3) with either a
/// static user auth token or a client secret exchanged for a cached, shared access token.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/destinations/destination.hpp"
#include "nicsync/destinations/token_stash.hpp"
#include "nicsync/http/client.hpp"

namespace nicsync::destinations {

/// How the destination authenticates to ClearTax (§1.2).
enum class ClearTaxAuth {
  /// A user auth token generated in the E-Invoicing UI; no expiry; read from the provider.
  static_token,
  /// A Clear API client secret, exchanged at `GET /integration/v1/authz/token` for an access
  /// token (288 calls a day; a new token revokes the previous one).
  client_secret,
};

struct ClearTaxConfig {
  std::string name = "cleartax";                  ///< configuration name (logs, metrics, cache file)
  std::string base_url = "https://api.clear.in";  ///< no trailing slash needed
  /// Base of the token endpoint; empty = `base_url`.
  std::string token_base_url;
  ClearTaxAuth auth = ClearTaxAuth::client_secret;
  /// Directory of the access-token cache file (the daemon's state directory) when no token stash
  /// is handed to `create`; empty = no cache.
  std::string state_dir;
  std::chrono::milliseconds push_timeout{30'000};   ///< whole store_nic_credentials request
  std::chrono::milliseconds token_timeout{15'000};  ///< whole token request
  std::chrono::milliseconds connect_timeout{10'000};
  /// Refresh this long before `valid_till` (at most a quarter of the token's lifetime).
  std::chrono::seconds token_refresh_margin{300};
  int token_calls_per_hour = 12;  ///< our own cap, below the provider's allowance
  int token_calls_per_day = 288;  ///< the provider's allowance per UTC day (§1.2)

  /// Checks every field; the error names the field and what is expected.
  [[nodiscard]] Result<void> validate() const;
  /// `validate()` with the config-file key of the field at fault; nothing when all are valid.
  [[nodiscard]] std::optional<ConfigFault> first_fault() const;
};

/// Maps a `store_nic_credentials` answer to success or a classified error (table in
/// cleartax_wire.cpp). Secrets in `scrub` are removed from any provider text quoted in the message.
/// Exposed for unit tests.
Result<void> interpret_store_response(const http::Response& response, std::string_view gstin, std::string_view what,
                                      std::initializer_list<std::string_view> scrub = {});

/// Parses ClearTax's `valid_till` ("2026-03-14T15:26:53+00:00", also 'Z' and fractions). Years
/// after 2261 count as the end of 2261 (no expiry, in practice), years before 1678 as its start.
std::optional<std::chrono::system_clock::time_point> parse_valid_till(std::string_view text);

class ClearTaxDestination final : public Destination {
 public:
  /// A destination for `config`; `auth_secret` gives the static token or the client secret, as
  /// `config.auth` says; the access token and its call counts are kept in `stash` (default: a
  /// file in `config.state_dir`). Errors: `config_invalid` when `config.validate()` fails or
  /// there is no `auth_secret`.
  static Result<std::shared_ptr<ClearTaxDestination>> create(boost::asio::any_io_executor executor,
                                                             http::Client& client, ClearTaxConfig config,
                                                             SecretProvider auth_secret,
                                                             const Clock& clock = Clock::real(),
                                                             std::shared_ptr<TokenStash> stash = nullptr);
  ~ClearTaxDestination() override;

  [[nodiscard]] const std::string& name() const noexcept override;
  [[nodiscard]] std::string_view kind() const noexcept override { return "cleartax"; }
  boost::asio::awaitable<Result<void>> push(Delivery delivery, Credential credential) override;
  boost::asio::awaitable<Result<void>> probe() override;
  [[nodiscard]] DestinationStats stats() const override;
  void reread_shared_state() override;

  /// Where the access token is kept (a file's path; empty when it is not kept).
  [[nodiscard]] std::string token_cache_path() const;

  struct Impl;

 private:
  explicit ClearTaxDestination(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::destinations
