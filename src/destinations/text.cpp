#include "destinations/text.hpp"

#include <fmt/format.h>

#include "nicsync/core/secret.hpp"

namespace nicsync::destinations::detail {

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
      default: n += c < 0x20 ? 6 : 1;
    }
  }
  return n;
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

namespace {

void scrub(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
    text.replace(pos, secret.size(), "***");
  }
}

// Control characters become spaces; runs of spaces (HTML pages, pretty JSON) shrink to one.
std::string flatten(std::string_view text) {
  std::string flat;
  flat.reserve(text.size());
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    if (c == ' ' && (flat.empty() || flat.back() == ' ')) continue;
    flat += c;
  }
  while (!flat.empty() && flat.back() == ' ') flat.pop_back();
  return flat;
}

}  // namespace

std::string provider_text(std::string_view raw, const std::vector<std::string_view>& secrets, std::size_t max) {
  std::string text(raw);
  for (auto secret : secrets) scrub(text, secret);
  std::string flat = flatten(text);
  secure_wipe(text);
  text = std::move(flat);
  // Flattening can turn an echo into the secret itself ("pass\tword" for "pass word"): remove
  // the secrets again, as they look once flattened.
  for (auto secret : secrets) {
    std::string flat_secret = flatten(secret);
    scrub(text, flat_secret);
    secure_wipe(flat_secret);
  }
  if (text.size() > max) {
    // Cut on a UTF-8 character boundary.
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "...";
  }
  return text;
}

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    auto slash = out.find('/', scheme + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) out.erase(scheme + 3, at - scheme - 2);
  }
  return out;
}

}  // namespace nicsync::destinations::detail
