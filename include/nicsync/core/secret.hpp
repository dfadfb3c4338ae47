#pragma once
/// \file
/// `Secret`: a string that never prints and is wiped from memory when released.

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace nicsync {

/// Holds secret bytes (passwords, tokens, client secrets) in its own heap buffer.
/// Formatting (fmt, spdlog, ostream) prints `***`; the buffer is wiped with
/// `OPENSSL_cleanse` when destroyed, assigned over, or cleared. Moving hands the
/// buffer over without leaving a copy behind.
class Secret {
 public:
  Secret() noexcept = default;
  explicit Secret(std::string_view value);
  /// Takes the characters of `value` and wipes the string it came from.
  static Secret take(std::string& value);
  Secret(const Secret& other);
  Secret(Secret&& other) noexcept;
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;
  ~Secret();

  /// The secret bytes; only for the call that must send them.
  [[nodiscard]] std::string_view expose() const noexcept { return {data_.get(), size_}; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  void clear() noexcept;

  /// Constant-time comparison.
  friend bool operator==(const Secret& a, const Secret& b) noexcept;

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
};

namespace detail {
/// Test hook: called with a Secret's buffer right after it was wiped and before it is freed.
using SecretReleaseObserver = void (*)(const char* data, std::size_t size);
void set_secret_release_observer(SecretReleaseObserver observer) noexcept;
}  // namespace detail

std::ostream& operator<<(std::ostream& os, const Secret& s);

/// Wipes a buffer that held secret material (e.g. an HTTP body).
void secure_wipe(void* data, std::size_t size) noexcept;
inline void secure_wipe(std::string& s) noexcept {
  secure_wipe(s.data(), s.capacity());
  s.clear();
}

}  // namespace nicsync

template <>
struct fmt::formatter<nicsync::Secret> : fmt::formatter<std::string_view> {
  auto format(const nicsync::Secret&, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
