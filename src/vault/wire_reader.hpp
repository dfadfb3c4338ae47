#pragma once
// Reading Vault's JSON answers: field access whose errors name the call and the field, and
// Vault's own text made fit for a message.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/result.hpp"

namespace nicsync::vault::wire {

/// Vault's words as they may appear in a message: control characters become spaces, and the
/// text is cut on a UTF-8 boundary at `max` bytes. Messages reach logs, the ledger and
/// /v1/status; a broken or hostile server (or a proxy) must not be able to forge log lines or
/// flood them.
std::string vault_text(std::string_view s, std::size_t max = 300);

/// An RFC 3339 time as Vault writes it; nothing if it is not one.
std::optional<Clock::system_time> parse_time(std::string_view text) noexcept;

// Where a field sits ("data.versions.3.created_time"), for error messages only: kept as its
// parts and joined only when a message is written, so a read that succeeds formats nothing.
struct Name {
  std::string_view a, b, c;
  Name(const char* whole) : a(whole) {}         // NOLINT(google-explicit-constructor)
  Name(std::string_view whole) : a(whole) {}    // NOLINT(google-explicit-constructor)
  Name(const std::string& whole) : a(whole) {}  // NOLINT(google-explicit-constructor)
  Name(std::string_view first, std::string_view second, std::string_view third = {}) : a(first), b(second), c(third) {}
  /// This name with one more part; at most three.
  [[nodiscard]] Name operator/(std::string_view leaf) const { return b.empty() ? Name(a, leaf) : Name(a, b, leaf); }
};

}  // namespace nicsync::vault::wire

template <>
struct fmt::formatter<nicsync::vault::wire::Name> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const nicsync::vault::wire::Name& n, Ctx& ctx) const {
    auto out = ctx.out();
    bool first = true;
    for (std::string_view part : {n.a, n.b, n.c}) {
      if (part.empty()) continue;
      if (!first) *out++ = '.';
      first = false;
      out = std::copy(part.begin(), part.end(), out);
    }
    return out;
  }
};

namespace nicsync::vault::wire {

/// Access to a JSON response with errors that name the call (`what`) and the field.
class Reader {
 public:
  explicit Reader(std::string_view what) : what_(what) {}

  [[nodiscard]] Error shape(std::string_view why) const {
    return Error(Errc::vault_bad_response, fmt::format("Vault's response to {} has the wrong shape: {}", what_, why));
  }

  Result<const boost::json::object*> object(const boost::json::value& v, Name name) const {
    if (!v.is_object()) return shape(fmt::format("\"{}\" is not an object", name));
    return &v.as_object();
  }
  Result<const boost::json::object*> object(const boost::json::object& parent, std::string_view key, Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) return shape(fmt::format("\"{}\" is missing", name));
    return object(*v, name);
  }
  /// Null or absent gives nullptr.
  Result<const boost::json::object*> nullable_object(const boost::json::object& parent, std::string_view key,
                                                     Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return static_cast<const boost::json::object*>(nullptr);
    return object(*v, name);
  }
  Result<std::int64_t> integer(const boost::json::object& parent, std::string_view key, Name name,
                               std::optional<std::int64_t> fallback = std::nullopt) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      return shape(fmt::format("\"{}\" is missing", name));
    }
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return static_cast<std::int64_t>(v->get_uint64());
    }
    if (v->is_double()) {
      const double d = v->get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
    }
    return shape(fmt::format("\"{}\" is not an integer", name));
  }
  Result<std::string> string(const boost::json::object& parent, std::string_view key, Name name,
                             bool required = false) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (required) return shape(fmt::format("\"{}\" is missing", name));
      return std::string();
    }
    if (!v->is_string()) return shape(fmt::format("\"{}\" is not a string", name));
    return std::string(std::string_view(v->get_string()));
  }
  Result<bool> boolean(const boost::json::object& parent, std::string_view key, Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return false;
    if (!v->is_bool()) return shape(fmt::format("\"{}\" is not a boolean", name));
    return v->get_bool();
  }
  Result<std::vector<std::string>> strings(const boost::json::object& parent, std::string_view key, Name name) const {
    std::vector<std::string> out;
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return out;
    if (!v->is_array()) return shape(fmt::format("\"{}\" is not an array", name));
    for (const auto& item : v->get_array()) {
      if (!item.is_string()) return shape(fmt::format("\"{}\" holds a non-string", name));
      out.emplace_back(std::string_view(item.get_string()));
    }
    return out;
  }
  Result<std::map<std::string, std::string>> string_map(const boost::json::object& parent, std::string_view key,
                                                        Name name) const {
    std::map<std::string, std::string> out;
    auto obj = nullable_object(parent, key, name);
    if (!obj) return obj.error();
    if (*obj == nullptr) return out;
    for (const auto& [k, v] : **obj) {
      // Vault only stores strings here; anything else is skipped rather than failing a read.
      if (v.is_string()) out.emplace(std::string(std::string_view(k)), std::string(std::string_view(v.get_string())));
    }
    return out;
  }

 private:
  std::string_view what_;
};

}  // namespace nicsync::vault::wire
