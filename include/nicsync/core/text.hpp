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
/// Appends `s` as JSON string content (no quotes): `"`, `\` and control characters escaped; other
/// bytes (UTF-8) as they are. Reserve `json_escaped_size` first when the text is secret.
void append_json_escaped(std::string& out, std::string_view s);
/// Appends `"s"`: `s` escaped as by `append_json_escaped`, in quotes.
void append_json_string(std::string& out, std::string_view s);

/// "scheme://host[:port]/path" of a URL, for messages: without user info, query or fragment,
/// which may carry credentials.
std::string redact_url(std::string_view url);

}  // namespace nicsync
