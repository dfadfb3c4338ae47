#pragma once
// The ClearTax destination's state, shared by the push (cleartax.cpp) and the access-token
// cache and refresh (cleartax_token.cpp).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "destinations/single_flight.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/destinations/cleartax.hpp"

namespace nicsync::destinations {

struct ClearTaxDestination::Impl {
  /// Works out the endpoints' URLs from `cfg` (already valid). The token is kept in `stash`, or
  /// in a file in `cfg.state_dir` when there is none (neither: not kept).
  Impl(boost::asio::any_io_executor executor, http::Client& c, ClearTaxConfig cfg, SecretProvider p, const Clock& clk,
       std::shared_ptr<TokenStash> stash);

  boost::asio::any_io_executor ex;
  http::Client& client;
  ClearTaxConfig config;
  SecretProvider provider;
  const Clock& clock;
  std::string base, store_url, token_url;
  std::shared_ptr<TokenStash> stash;  // where the token and its counts outlive a restart; may be null
  std::string stash_name;             // "cleartax-<name>"

  // The token shared by every delivery.
  Secret token;
  std::optional<std::chrono::system_clock::time_point> valid_till;
  std::optional<std::chrono::system_clock::time_point> obtained_at;
  std::uint64_t generation = 0;  // bumped on every new token; 0 = none yet
  detail::SingleFlight flight;

  // Token-call accounting (UTC day of the system clock), persisted with the token.
  std::int64_t day = -1;
  int calls_today = 0;
  std::deque<std::chrono::system_clock::time_point> recent_calls;
  bool cache_loaded = false;

  DestinationStats counters;

  [[nodiscard]] bool client_secret_mode() const noexcept { return config.auth == ClearTaxAuth::client_secret; }

  /// A token held and not within its refresh margin of `valid_till`.
  [[nodiscard]] bool token_usable(std::chrono::system_clock::time_point now) const;
  /// Starts a new UTC day's count and forgets calls older than an hour.
  void roll(std::chrono::system_clock::time_point now);
  /// The stash's content for the token and counters held now (holds the token).
  [[nodiscard]] Secret cache_content() const;
  [[nodiscard]] DestinationStats stats() const;
};

namespace detail {

/// Reads the stashed token and counts once (client-secret mode with a stash only).
boost::asio::awaitable<void> load_cache(std::shared_ptr<ClearTaxDestination::Impl> self);

/// A token to send and the generation it belongs to (to forget exactly it when it is refused).
struct TokenRef {
  Secret value;
  std::uint64_t generation = 0;
};

/// A usable token: the one held, or a new one (client secret: from the token endpoint, within
/// the call caps; static token: read again from the provider). Concurrent callers share one
/// refresh.
boost::asio::awaitable<Result<TokenRef>> acquire_token(std::shared_ptr<ClearTaxDestination::Impl> self);

/// Forgets the token a request was refused with, unless a newer one already replaced it.
void invalidate_token(ClearTaxDestination::Impl& self, std::uint64_t generation);

}  // namespace detail
}  // namespace nicsync::destinations
