#include "nicsync/core/duration.hpp"

#include <cstdint>
#include <limits>

#include <fmt/format.h>

namespace nicsync {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Error(
        Errc::invalid_duration,
        fmt::format("invalid duration \"{}\": {}; write e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\"", text, why));
  };
  if (text.empty()) return fail("it is empty");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return fail("expected a number");
    std::int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return fail("number too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    std::size_t unit_start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z'))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    std::int64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else if (unit.empty())
      return fail("a unit is missing (ms, s, m, h or d)");
    else
      return fail(fmt::format("unknown unit \"{}\" (use ms, s, m, h or d)", unit));
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / scale) return fail("value too large");
    total += n * scale;
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  constexpr std::pair<std::int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (auto [scale, name] : kUnits) {
    if (ms >= scale) {
      out += fmt::format("{}{}", ms / scale, name);
      ms %= scale;
    }
  }
  return out;
}

}  // namespace nicsync
