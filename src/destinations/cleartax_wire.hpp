#pragma once
// ClearTax's answers as data (reference/gst-domain.md §1.2–§1.5): the token endpoint's body and
// the first error detail of any answer. Pure functions, shared by the destination and the fuzzer;
// `interpret_store_response` (nicsync/destinations/cleartax.hpp) maps store answers to errors.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "nicsync/core/secret.hpp"

namespace nicsync::destinations::detail {

/// An access token from `GET /integration/v1/authz/token`.
struct TokenGrant {
  Secret access_token;
  std::optional<std::chrono::system_clock::time_point> valid_till;  ///< nothing = no expiry given
};

/// Reads an HTTP 200 token answer `{"access_token": "...", "valid_till": "..."}`. Nothing when
/// the token is missing, empty or not a string, or `valid_till` is there but unreadable (an
/// expiry is never guessed). The parsed copy of the token is wiped; the caller wipes `body`.
std::optional<TokenGrant> parse_token_grant(std::string_view body);

/// The first entry of an answer's error details (`errorDetails` and its variants).
struct ProviderDetail {
  std::string code;     ///< cleaned (see `provider_text`), at most 32 bytes
  std::string message;  ///< raw: quote it through `provider_text`
};
std::optional<ProviderDetail> first_error_detail(std::string_view body);

}  // namespace nicsync::destinations::detail
