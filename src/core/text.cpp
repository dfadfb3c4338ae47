// Hex, JSON string escaping and URL redaction: the one copy every module uses.
#include "nicsync/core/text.hpp"

#include <algorithm>

namespace nicsync {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::string to_hex(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHexDigits[data[i] >> 4];
    out += kHexDigits[data[i] & 0xf];
  }
  return out;
}

std::size_t json_escaped_size(std::string_view s) noexcept {
  std::size_t n = 0;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
      case '\\':
      case '\b':
      case '\f':
      case '\n':
      case '\r':
      case '\t': n += 2; break;
      default: n += c < 0x20 || c == 0x7f ? 6 : 1;
    }
  }
  return n;
}

void append_json_escaped(std::string& out, std::string_view s) { append_json_escaped_to(out, s); }

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    // The last '@' of the authority: a password written with a bare '@' in it goes as a whole.
    const auto authority_end = std::min(out.find('/', scheme + 3), out.size());
    const auto at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= scheme + 3) out.erase(scheme + 3, at - scheme - 2);
  }
  return out;
}

}  // namespace nicsync
