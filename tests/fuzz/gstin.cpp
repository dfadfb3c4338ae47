// Fuzz target: GSTIN validation (`Gstin::parse`, strict and sandbox, reference §5). A parsed
// GSTIN is 15 upper-case letters and digits, parses again to itself, and a strict one has the
// right check character and a known state; strict implies sandbox.
#include "nicsync/core/gstin.hpp"

#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"

NICSYNC_FUZZ_TARGET(gstin) {
  using namespace nicsync;
  const std::string_view text = fuzz::as_text(data, size);
  auto strict = Gstin::parse(text, GstinMode::strict);
  auto sandbox = Gstin::parse(text, GstinMode::sandbox);
  if (!strict) NICSYNC_FUZZ_CHECK(gstin, !strict.error().message.empty() && fuzz::clean_text(strict.error().message));
  if (!sandbox)
    NICSYNC_FUZZ_CHECK(gstin, !sandbox.error().message.empty() && fuzz::clean_text(sandbox.error().message));
  if (strict) {
    const std::string& g = strict->str();
    NICSYNC_FUZZ_CHECK(gstin, g.size() == 15);
    NICSYNC_FUZZ_CHECK(gstin, gstin_check_char(std::string_view(g).substr(0, 14)) == g[14]);
    NICSYNC_FUZZ_CHECK(gstin, !gstin_state_name(strict->state_code()).empty());
    NICSYNC_FUZZ_CHECK(gstin, sandbox.has_value() && *sandbox == *strict);
    NICSYNC_FUZZ_CHECK(gstin, Gstin::parse(g, GstinMode::strict).value() == *strict);
  }
  if (sandbox) {
    const std::string& g = sandbox->str();
    NICSYNC_FUZZ_CHECK(gstin, g.size() == 15);
    for (char c : g) NICSYNC_FUZZ_CHECK(gstin, (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'));
    NICSYNC_FUZZ_CHECK(gstin, Gstin::parse(g, GstinMode::sandbox).value() == *sandbox);
  }
  return 0;
}
