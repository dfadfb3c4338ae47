#include "nicsync/http/message.hpp"

#include <charconv>
#include <cstring>
#include <ctime>

namespace nicsync::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) noexcept {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    long long seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || ptr != value.data() + value.size() || seconds < 0) return std::nullopt;
    // Cap absurd values at one day; callers apply their own caps too.
    if (seconds > 86'400) seconds = 86'400;
    return std::chrono::milliseconds(seconds * 1000);
  }
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  std::string buf(value);
  std::tm tm{};
  const char* end = strptime(buf.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t t = timegm(&tm);
  // Compare in seconds first: a date centuries away does not fit a nanosecond time_point.
  const auto now_s = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  if (t <= now_s) return std::chrono::milliseconds(0);
  if (t - now_s > 86'400) return std::chrono::milliseconds(86'400'000);  // the same cap as above
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::from_time_t(t) - now);
}

}  // namespace nicsync::http
