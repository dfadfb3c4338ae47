#pragma once
// Provider text made fit for messages: quoting what a provider said with the secrets removed.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/text.hpp"

namespace nicsync::destinations::detail {

/// Text from a provider (error messages, bodies) made fit for a log line or an error message:
/// every occurrence of a non-empty `secrets` entry becomes "***", control characters become
/// spaces, and it is cut to `max` bytes.
std::string provider_text(std::string_view raw, const std::vector<std::string_view>& secrets, std::size_t max = 200);

}  // namespace nicsync::destinations::detail
