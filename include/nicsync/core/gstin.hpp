#pragma once
/// \file
/// GSTIN: the 15-character GST registration id, validated in strict or sandbox mode.

#include <compare>
#include <functional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "nicsync/core/result.hpp"

namespace nicsync {

/// How strictly GSTINs are checked (reference/gst-domain.md §5).
enum class GstinMode {
  /// Production shape: `^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$`, a known state
  /// code, and a correct Luhn mod-36 check character. The PAN holder-type letter is not checked.
  strict,
  /// Sandbox shape: 15 characters, a 2-digit state code and a PAN-shaped middle;
  /// positions 13–15 only need to be letters or digits (sandbox GSTINs ignore them).
  sandbox,
};

/// A validated GSTIN. Always 15 upper-case characters.
class Gstin {
 public:
  /// Validates `text`; the error names the first wrong position and, for a wrong
  /// check character, the character it should be.
  static Result<Gstin> parse(std::string_view text, GstinMode mode = GstinMode::strict);

  [[nodiscard]] const std::string& str() const noexcept { return value_; }
  /// The two-digit state code, e.g. "07".
  [[nodiscard]] std::string_view state_code() const noexcept { return std::string_view(value_).substr(0, 2); }
  /// Positions 3–12: the holder's PAN.
  [[nodiscard]] std::string_view pan() const noexcept { return std::string_view(value_).substr(2, 10); }

  friend auto operator<=>(const Gstin&, const Gstin&) = default;
  friend bool operator==(const Gstin&, const Gstin&) = default;

 private:
  explicit Gstin(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

/// The check character for the first 14 characters of a GSTIN (Luhn mod 36, §5.2).
/// Every character of `first14` must be 0–9 or A–Z.
char gstin_check_char(std::string_view first14) noexcept;

/// Name of a GST state code ("07" -> "Delhi"), empty if the code is not assigned.
std::string_view gstin_state_name(std::string_view code) noexcept;

std::string_view to_string(GstinMode mode) noexcept;

}  // namespace nicsync

template <>
struct std::hash<nicsync::Gstin> {
  std::size_t operator()(const nicsync::Gstin& g) const noexcept { return std::hash<std::string>{}(g.str()); }
};

template <>
struct fmt::formatter<nicsync::Gstin> : fmt::formatter<std::string_view> {
  auto format(const nicsync::Gstin& g, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(g.str(), ctx);
  }
};
