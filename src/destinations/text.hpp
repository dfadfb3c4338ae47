#pragma once
// Text helpers shared by the destinations: JSON string escaping that never reallocates a buffer
// holding a secret, and quoting of provider-supplied text with secrets removed.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace nicsync::destinations::detail {

/// Bytes `s` takes as JSON string content (without the quotes).
std::size_t json_escaped_size(std::string_view s) noexcept;
/// Appends `s` as JSON string content (no quotes): ", \ and control characters escaped; other
/// bytes (UTF-8) as they are. Reserve `json_escaped_size` first when the text is secret.
void append_json_escaped(std::string& out, std::string_view s);
/// Appends `"s"`.
void append_json_string(std::string& out, std::string_view s);

/// Text from a provider (error messages, bodies) made fit for a log line or an error message:
/// every occurrence of a non-empty `secrets` entry becomes "***", control characters become
/// spaces, and it is cut to `max` bytes.
std::string provider_text(std::string_view raw, const std::vector<std::string_view>& secrets, std::size_t max = 200);

/// Lower-case hex.
std::string to_hex(const unsigned char* data, std::size_t size);

/// "scheme://host[:port]/path" of a URL: no user info, query or fragment (for messages).
std::string redact_url(std::string_view url);

}  // namespace nicsync::destinations::detail
