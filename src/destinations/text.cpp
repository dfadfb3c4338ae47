// Provider text quoted in messages: secrets scrubbed, control characters flattened, length cut.
#include "destinations/text.hpp"

#include "nicsync/core/secret.hpp"

namespace nicsync::destinations::detail {
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

}  // namespace nicsync::destinations::detail
