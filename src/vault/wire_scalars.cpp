// Go's text forms of a boolean and a duration, as VAULT_* variables hold them.
#include <charconv>

#include "vault/wire.hpp"

namespace nicsync::vault::wire {

std::optional<bool> parse_go_bool(std::string_view s) noexcept {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") return false;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_seconds_or_go_duration(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n > 1'000'000'000) return std::nullopt;
    return std::chrono::milliseconds(n * 1000);
  }
  // Go's time.ParseDuration without sign: ([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+ or "0".
  if (s == "0") return std::chrono::milliseconds(0);
  long double total_ns = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    long double value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') value = value * 10 + (s[i++] - '0');
    bool had_digits = i > start;
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i++] - '0') * scale;
        scale /= 10;
        had_digits = true;
      }
    }
    if (!had_digits) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.') ++i;
    const std::string_view unit = s.substr(unit_start, i - unit_start);
    long double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return std::nullopt;
    }
    total_ns += value * scale;
    if (total_ns > 1e18L) return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ns / 1e6L));
}

}  // namespace nicsync::vault::wire
