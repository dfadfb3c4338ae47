#pragma once
/// \file
/// Plain HTTP request/response values shared by the client and the listener.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nicsync::http {

struct Header {
  std::string name;
  std::string value;
};

/// Case-insensitive ASCII comparison for header names.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// First header named `name` (case-insensitive), if any.
std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) noexcept;

/// Parses a Retry-After value: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
/// Dates in the past give zero; delays beyond one day give one day; garbage gives nothing.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace nicsync::http
