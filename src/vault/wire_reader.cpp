// Vault's text and times as read from its answers.
#include "vault/wire_reader.hpp"

#include "nicsync/core/timestamp.hpp"

namespace nicsync::vault::wire {

std::string vault_text(std::string_view s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max + 3));
  for (char c : s) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  if (out.size() > max) {
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

std::optional<Clock::system_time> parse_time(std::string_view text) noexcept {
  auto t = nicsync::parse_rfc3339(text);
  if (!t) return std::nullopt;
  return std::chrono::time_point_cast<Clock::system_time::duration>(*t);
}

}  // namespace nicsync::vault::wire
