#pragma once
/// \file
/// Human durations as written in config files: "500ms", "30s", "5m", "1h30m", "2d".

#include <chrono>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"

namespace nicsync {

/// Parses one or more `<integer><unit>` groups (units ms, s, m, h, d). A bare number
/// without a unit is rejected so that "30" cannot mean seconds to one reader and
/// milliseconds to another.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Shortest exact rendering: 90000ms -> "1m30s", 1500ms -> "1s500ms", 0 -> "0s".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace nicsync
