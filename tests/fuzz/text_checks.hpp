#pragma once
// Properties of text that leaves the daemon (error messages go to logs, the ledger, /v1/status).

#include <string_view>

namespace nicsync::fuzz {

/// No control characters (a hostile server must not be able to forge log lines) and bounded.
inline bool clean_text(std::string_view s, std::size_t max = 4096) {
  if (s.size() > max) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace nicsync::fuzz
