#include "nicsync/core/gstin.hpp"

#include <array>

namespace nicsync {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
bool is_alnum(char c) noexcept { return is_digit(c) || is_upper(c); }

int value_of(char c) noexcept { return is_digit(c) ? c - '0' : c - 'A' + 10; }

struct State {
  std::string_view code;
  std::string_view name;
};

// reference/gst-domain.md §5.4
constexpr std::array<State, 40> kStates{{
    {"01", "Jammu and Kashmir"},
    {"02", "Himachal Pradesh"},
    {"03", "Punjab"},
    {"04", "Chandigarh"},
    {"05", "Uttarakhand"},
    {"06", "Haryana"},
    {"07", "Delhi"},
    {"08", "Rajasthan"},
    {"09", "Uttar Pradesh"},
    {"10", "Bihar"},
    {"11", "Sikkim"},
    {"12", "Arunachal Pradesh"},
    {"13", "Nagaland"},
    {"14", "Manipur"},
    {"15", "Mizoram"},
    {"16", "Tripura"},
    {"17", "Meghalaya"},
    {"18", "Assam"},
    {"19", "West Bengal"},
    {"20", "Jharkhand"},
    {"21", "Odisha"},
    {"22", "Chhattisgarh"},
    {"23", "Madhya Pradesh"},
    {"24", "Gujarat"},
    {"25", "Daman and Diu"},
    {"26", "Dadra and Nagar Haveli and Daman and Diu"},
    {"27", "Maharashtra"},
    {"28", "Andhra Pradesh (old)"},
    {"29", "Karnataka"},
    {"30", "Goa"},
    {"31", "Lakshadweep"},
    {"32", "Kerala"},
    {"33", "Tamil Nadu"},
    {"34", "Puducherry"},
    {"35", "Andaman and Nicobar Islands"},
    {"36", "Telangana"},
    {"37", "Andhra Pradesh"},
    {"38", "Ladakh"},
    {"97", "Other Territory"},
    {"99", "Centre Jurisdiction"},
}};

// What each position must hold, for error messages. Positions are 1-based as in §5.1.
enum class Want { digit, letter, alnum, entity, z };

constexpr std::string_view describe(Want w) noexcept {
  switch (w) {
    case Want::digit: return "a digit 0-9";
    case Want::letter: return "an upper-case letter A-Z";
    case Want::alnum: return "a digit or an upper-case letter";
    case Want::entity: return "1-9 or A-Z (the registration number for this PAN in the state)";
    case Want::z: return "'Z'";
  }
  return "";
}

constexpr std::string_view part_of(std::size_t pos) noexcept {
  if (pos <= 2) return "state code";
  if (pos <= 12) return "PAN";
  if (pos == 13) return "entity number";
  if (pos == 14) return "default 'Z'";
  return "check character";
}

bool matches(Want w, char c) noexcept {
  switch (w) {
    case Want::digit: return is_digit(c);
    case Want::letter: return is_upper(c);
    case Want::alnum: return is_alnum(c);
    case Want::entity: return (c >= '1' && c <= '9') || is_upper(c);
    case Want::z: return c == 'Z';
  }
  return false;
}

std::string printable(char c) {
  if (c >= 0x21 && c <= 0x7e) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02X}", static_cast<unsigned char>(c));
}

}  // namespace

char gstin_check_char(std::string_view first14) noexcept {
  int sum = 0;
  for (std::size_t i = 0; i < first14.size() && i < 14; ++i) {
    const int product = value_of(first14[i]) * (i % 2 == 0 ? 1 : 2);
    sum += product / 36 + product % 36;
  }
  return kAlphabet[static_cast<std::size_t>((36 - sum % 36) % 36)];
}

std::string_view gstin_state_name(std::string_view code) noexcept {
  for (const auto& s : kStates) {
    if (s.code == code) return s.name;
  }
  return {};
}

std::string_view to_string(GstinMode mode) noexcept { return mode == GstinMode::strict ? "strict" : "sandbox"; }

Result<Gstin> Gstin::parse(std::string_view text, GstinMode mode) {
  // Never echo more than 15 characters of hostile input back into a message, and only printable
  // ASCII: messages reach logs and JSON answers (no forged log lines, no invalid UTF-8).
  std::string shown;
  for (char c : text.substr(0, 15)) {
    if (c >= 0x20 && c <= 0x7e) {
      shown += c;
    } else {
      shown += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
    }
  }
  if (text.size() > 15) shown += "...";
  auto fail = [&](std::string why) {
    return Error(Errc::invalid_gstin, fmt::format("GSTIN \"{}\" is invalid: {}", shown, why));
  };
  if (text.size() != 15) {
    return fail(fmt::format("it has {} characters, a GSTIN has 15", text.size()));
  }
  const bool strict = mode == GstinMode::strict;
  static constexpr std::array<Want, 15> kStrict{Want::digit,  Want::digit,  Want::letter, Want::letter, Want::letter,
                                                Want::letter, Want::letter, Want::digit,  Want::digit,  Want::digit,
                                                Want::digit,  Want::letter, Want::entity, Want::z,      Want::alnum};
  static constexpr std::array<Want, 15> kSandbox{Want::digit,  Want::digit,  Want::letter, Want::letter, Want::letter,
                                                 Want::letter, Want::letter, Want::digit,  Want::digit,  Want::digit,
                                                 Want::digit,  Want::letter, Want::alnum,  Want::alnum,  Want::alnum};
  const auto& shape = strict ? kStrict : kSandbox;
  for (std::size_t i = 0; i < 15; ++i) {
    if (!matches(shape[i], text[i])) {
      return fail(fmt::format("position {} ({}) is {}, expected {}", i + 1, part_of(i + 1), printable(text[i]),
                              describe(shape[i])));
    }
  }
  if (strict) {
    if (gstin_state_name(text.substr(0, 2)).empty()) {
      return fail(fmt::format("positions 1-2 (state code) \"{}\" is not a GST state code", text.substr(0, 2)));
    }
    const char expected = gstin_check_char(text.substr(0, 14));
    if (text[14] != expected) {
      return fail(fmt::format("position 15 (check character) is '{}', expected '{}'", text[14], expected));
    }
  }
  return Gstin(std::string(text));
}

}  // namespace nicsync
