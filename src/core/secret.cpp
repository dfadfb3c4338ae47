#include "nicsync/core/secret.hpp"

#include <cstring>
#include <ostream>

#include <openssl/crypto.h>

namespace nicsync {
namespace {
detail::SecretReleaseObserver g_release_observer = nullptr;
}  // namespace

void detail::set_secret_release_observer(SecretReleaseObserver observer) noexcept { g_release_observer = observer; }

void secure_wipe(void* data, std::size_t size) noexcept {
  if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

Secret::Secret(std::string_view value) : data_(new char[value.size() + 1]), size_(value.size()) {
  // An empty view may have a null data(): memcpy must not see it, even for 0 bytes.
  if (!value.empty()) std::memcpy(data_.get(), value.data(), value.size());
  data_[size_] = '\0';
}

Secret Secret::take(std::string& value) {
  Secret s(value);
  secure_wipe(value);
  return s;
}

Secret::Secret(const Secret& other) : Secret(other.expose()) {}

Secret::Secret(Secret&& other) noexcept : data_(std::move(other.data_)), size_(other.size_) { other.size_ = 0; }

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    Secret copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    clear();
    data_ = std::move(other.data_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

Secret::~Secret() { clear(); }

void Secret::clear() noexcept {
  if (data_) {
    // size_ + 1: the terminating NUL is ours too; wiping it is harmless.
    secure_wipe(data_.get(), size_ + 1);
    if (g_release_observer != nullptr) g_release_observer(data_.get(), size_ + 1);
    data_.reset();
  }
  size_ = 0;
}

bool operator==(const Secret& a, const Secret& b) noexcept {
  if (a.size_ != b.size_) return false;
  if (a.size_ == 0) return true;
  return CRYPTO_memcmp(a.data_.get(), b.data_.get(), a.size_) == 0;
}

std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

}  // namespace nicsync
