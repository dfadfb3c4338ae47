#pragma once
/// \file
/// RFC 3339 timestamps as Vault writes them ("2025-03-04T10:11:12.345678901Z", offsets allowed).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace nicsync {

using SystemTimeNs = std::chrono::time_point<std::chrono::system_clock, std::chrono::nanoseconds>;

/// The whole years a nanosecond time_point (and `system_clock` on Linux) holds: 1677-09-21 to
/// 2262-04-11. Times outside must not be computed (signed overflow).
inline constexpr int kMinTimestampYear = 1678;
inline constexpr int kMaxTimestampYear = 2261;

/// Parses RFC 3339 with optional fraction (up to 9 digits) and `Z` or `±hh:mm`. Strings cannot be
/// compared as text: "…00.5Z" sorts before "…00Z" although it is later. Years outside
/// kMinTimestampYear–kMaxTimestampYear give nothing.
std::optional<SystemTimeNs> parse_rfc3339(std::string_view text) noexcept;

/// "2025-03-04T10:11:12.345Z" (UTC, milliseconds).
std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace nicsync
