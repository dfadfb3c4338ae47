#pragma once
/// \file
/// Webhook destination: a generic HTTP call per delivery, for providers without a ClearTax-like
/// API and for internal ERPs. URL and JSON body are templates; secret headers come from Vault.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "nicsync/destinations/destination.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/http/message.hpp"

namespace nicsync::destinations {

/// A header whose value is secret (an API key, a bearer token) and read through a provider.
struct WebhookSecretHeader {
  std::string name;      ///< e.g. "Authorization"
  std::string prefix;    ///< put before the value, e.g. "Bearer "
  SecretProvider value;  ///< re-read once when the endpoint answers 401
};

/// The default body: every field as a JSON value.
inline constexpr std::string_view kDefaultWebhookBody =
    R"({"gstin":{gstin},"username":{username},"password":{password},"version":{version},"vault_path":{vault_path}})";

struct WebhookConfig {
  std::string name = "webhook";
  std::string method = "POST";
  /// URL template: `{gstin}`, `{version}`, `{vault_path}` are replaced percent-encoded.
  /// `{username}` and `{password}` are not allowed in URLs (they would reach access logs).
  std::string url;
  std::vector<http::Header> headers;  ///< sent as they are (Content-Type defaults to application/json)
  std::vector<WebhookSecretHeader> secret_headers;
  /// JSON body template. Placeholders: {gstin} {username} {password} {version} {vault_path}
  /// {lineage} {attempt} {idempotency_key}. Outside a JSON string a placeholder becomes a whole
  /// JSON value (strings quoted, version and attempt numbers); inside a string ("user {username}")
  /// its text is inserted escaped. Empty = no body.
  std::string body_template = std::string(kDefaultWebhookBody);
  std::vector<int> success_statuses = {200, 201, 202, 204};
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
  /// URL fetched (GET) by probe(); any status below 500 counts as reachable. Empty = the URL's
  /// origin ("https://host:port/").
  std::string probe_url;

  /// Checks method, URL and body templates (the body must render to valid JSON) and statuses;
  /// the error names the field.
  [[nodiscard]] Result<void> validate() const;
  /// `validate()` with the config-file key of the field at fault; nothing when all are valid.
  [[nodiscard]] std::optional<ConfigFault> first_fault() const;
};

class WebhookDestination final : public Destination {
 public:
  /// A destination for `config`. Errors: `config_invalid` when `config.validate()` fails.
  static Result<std::shared_ptr<WebhookDestination>> create(boost::asio::any_io_executor executor, http::Client& client,
                                                            WebhookConfig config);
  ~WebhookDestination() override;

  [[nodiscard]] const std::string& name() const noexcept override;
  [[nodiscard]] std::string_view kind() const noexcept override { return "webhook"; }
  boost::asio::awaitable<Result<void>> push(Delivery delivery, Credential credential) override;
  boost::asio::awaitable<Result<void>> probe() override;
  [[nodiscard]] DestinationStats stats() const override;

  struct Impl;

 private:
  explicit WebhookDestination(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::destinations
