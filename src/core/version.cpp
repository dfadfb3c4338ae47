#include "nicsync/core/version.hpp"

#include "nicsync/core/text.hpp"

namespace nicsync {

std::string_view to_string(SourceState s) noexcept {
  switch (s) {
    case SourceState::present: return "present";
    case SourceState::deleted: return "deleted";
    case SourceState::destroyed: return "destroyed";
    case SourceState::missing: return "missing";
  }
  return "unknown";
}

std::optional<Fingerprint> Fingerprint::from_hex(std::string_view hex) noexcept {
  if (hex.size() != 2 * kSize) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out{};
  for (std::size_t i = 0; i < kSize; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return Fingerprint(out);
}

std::string Fingerprint::hex() const { return to_hex(bytes_.data(), bytes_.size()); }

}  // namespace nicsync
