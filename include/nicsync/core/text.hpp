#pragma once
/// \file
/// Small text encodings used across modules: lower-case hex, JSON string content, and URLs made
/// fit for messages. Written so that a buffer holding a secret is never reallocated.

#include <cstddef>
#include <string>
#include <string_view>

namespace nicsync {

/// Lower-case hex of `size` bytes at `data` (two digits a byte).
std::string to_hex(const unsigned char* data, std::size_t size);

/// Bytes `s` takes as JSON string content (without the quotes).
std::size_t json_escaped_size(std::string_view s) noexcept;

/// Appends `s` as JSON string content (no quotes) to any buffer with `push_back(char)` (a
/// std::string, a log formatter's buffer): `"`, `\`, control characters and DEL escaped; other
/// bytes (UTF-8) as they are. Reserve `json_escaped_size` first when the text is secret.
template <class Buffer>
void append_json_escaped_to(Buffer& out, std::string_view s) {
  constexpr char kHex[] = "0123456789abcdef";
  auto put = [&](std::string_view t) {
    for (char c : t) out.push_back(c);
  };
  for (unsigned char c : s) {
    switch (c) {
      case '"': put("\\\""); break;
      case '\\': put("\\\\"); break;
      case '\b': put("\\b"); break;
      case '\f': put("\\f"); break;
      case '\n': put("\\n"); break;
      case '\r': put("\\r"); break;
      case '\t': put("\\t"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          put("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}
/// `append_json_escaped_to` a std::string.
void append_json_escaped(std::string& out, std::string_view s);
/// Appends `"s"`: `s` escaped as by `append_json_escaped`, in quotes.
void append_json_string(std::string& out, std::string_view s);

/// "scheme://host[:port]/path" of a URL, for messages: without user info, query or fragment,
/// which may carry credentials.
std::string redact_url(std::string_view url);

}  // namespace nicsync
