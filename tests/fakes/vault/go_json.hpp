#pragma once
/// \file
/// JSON with the exact byte habits of Go's encoding/json, which is what Vault writes: struct
/// fields in declaration order, map keys sorted, compact output, `&<>` escaped as `\u0026`
/// etc., numbers kept as the literal text they were read with (Vault decodes request bodies
/// with `UseNumber`, so `1.50` comes back as `1.50`). Also the Go text formats Vault uses for
/// times (RFC 3339 with trimmed nanoseconds) and durations (`1h0m0s`).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nicsync/core/result.hpp"

namespace nicsync::fakes {

/// One JSON value. Objects are either Go structs (members written in insertion order) or Go
/// maps (members written sorted by key, bytewise, as Go does).
class GoValue {
 public:
  enum class Kind { null, boolean, number, string, array, object };
  struct Member;

  GoValue() = default;  ///< null
  static GoValue boolean(bool b);
  static GoValue number(std::int64_t n);
  /// A number from its literal text (must be a valid JSON number; Go's `json.Number`).
  static GoValue raw_number(std::string text);
  static GoValue string(std::string s);
  static GoValue array(std::vector<GoValue> items = {});
  static GoValue string_array(const std::vector<std::string>& items);
  /// A Go struct: members are written in the order they were set.
  static GoValue object();
  /// A Go map: members are written sorted by key.
  static GoValue map();

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool is_null() const noexcept { return kind_ == Kind::null; }
  [[nodiscard]] bool is_object() const noexcept { return kind_ == Kind::object; }
  [[nodiscard]] bool is_string() const noexcept { return kind_ == Kind::string; }
  [[nodiscard]] bool is_map() const noexcept { return kind_ == Kind::object && sorted_; }
  /// The text of a string or the literal of a number.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool as_bool() const noexcept { return bool_; }
  /// The number as an int64, if it is a number literal without fraction or exponent that fits.
  [[nodiscard]] std::optional<std::int64_t> as_int() const;
  [[nodiscard]] const std::vector<GoValue>& items() const noexcept { return items_; }
  [[nodiscard]] std::vector<GoValue>& items() noexcept { return items_; }
  [[nodiscard]] const std::vector<Member>& members() const noexcept { return members_; }

  /// Sets a member (replacing one of the same key, which keeps its place). Returns *this.
  GoValue& set(std::string key, GoValue value);
  [[nodiscard]] const GoValue* find(std::string_view key) const noexcept;
  [[nodiscard]] GoValue* find(std::string_view key) noexcept;
  bool erase(std::string_view key);
  GoValue& push(GoValue v);

  /// Compact encoding exactly as Go's `json.Marshal` writes it (no trailing newline).
  [[nodiscard]] std::string dump() const;
  void dump_to(std::string& out) const;

  friend bool operator==(const GoValue& a, const GoValue& b);

 private:
  Kind kind_ = Kind::null;
  bool bool_ = false;
  bool sorted_ = false;
  std::string text_;
  std::vector<GoValue> items_;
  std::vector<Member> members_;
};

struct GoValue::Member {
  std::string key;
  GoValue value;
};

/// Appends `s` as a Go JSON string literal (quotes included) to `out`.
void go_quote_json(std::string_view s, std::string& out);

/// Parses JSON the way Vault decodes a request body (`encoding/json` with `UseNumber`): the
/// first value only (trailing bytes are ignored, as `Decoder.Decode` does), objects become
/// maps (a repeated key keeps the last value), invalid UTF-8 becomes U+FFFD. On failure the
/// error message is Go's text, e.g. "invalid character 'x' looking for beginning of value"
/// or "unexpected EOF"; empty input (only whitespace) gives "EOF".
Result<GoValue> parse_go_json(std::string_view text);

/// Go's `time.Time` JSON/RFC3339Nano text in UTC, trailing zeros of the fraction trimmed.
std::string go_rfc3339_nano(std::chrono::system_clock::time_point t);
/// Go's `time.Duration.String()`: "0s", "1h0m0s", "15m30s", "1.5s", "300ms".
std::string go_duration(std::chrono::nanoseconds d);
/// Vault's `parseutil.ParseDurationSecond` for strings: a bare integer is seconds, otherwise
/// a Go duration ("1h30m", "1.5h", "300ms") or whole days ("2d").
std::optional<std::chrono::nanoseconds> go_parse_duration_second(std::string_view s);
/// Go's `strconv.ParseBool`.
std::optional<bool> go_parse_bool(std::string_view s);
/// Go's `strconv.Atoi` (optional sign, decimal digits, int64 range).
std::optional<std::int64_t> go_atoi(std::string_view s);
/// IMF-fixdate for the `Date` header: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point t);
/// A random RFC 4122 version 4 UUID in lower-case hex.
std::string random_uuid();
/// `n` random characters from [A-Za-z0-9].
std::string random_base62(std::size_t n);

}  // namespace nicsync::fakes
