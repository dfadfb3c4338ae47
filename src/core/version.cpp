#include "nicsync/core/version.hpp"

#include <algorithm>
#include <cstring>

#include "nicsync/core/text.hpp"

namespace nicsync {

std::string_view to_string(SourceState s) noexcept {
  switch (s) {
    case SourceState::present: return "present";
    case SourceState::deleted: return "deleted";
    case SourceState::destroyed: return "destroyed";
    case SourceState::missing: return "missing";
  }
  return "unknown";
}

Lineage::Lineage(std::string_view text) {
  if (text.size() < kTag) {
    std::copy(text.begin(), text.end(), bytes_.begin());
    bytes_[kTag] = static_cast<char>(text.size());
    return;
  }
  Heap h{new char[text.size()], text.size()};
  std::copy(text.begin(), text.end(), h.data);
  std::memcpy(bytes_.data(), &h, sizeof h);
  bytes_[kTag] = static_cast<char>(kOnHeap);
}

Lineage::Lineage(Lineage&& other) noexcept : bytes_(other.bytes_) { other.bytes_[kTag] = 0; }

Lineage& Lineage::operator=(const Lineage& other) {
  if (this != &other) *this = Lineage(other.text());
  return *this;
}

Lineage& Lineage::operator=(Lineage&& other) noexcept {
  if (this != &other) {
    release();
    bytes_ = other.bytes_;
    other.bytes_[kTag] = 0;
  }
  return *this;
}

Lineage::~Lineage() { release(); }

Lineage::Heap Lineage::heap() const noexcept {
  Heap h{};
  std::memcpy(&h, bytes_.data(), sizeof h);
  return h;
}

void Lineage::release() noexcept {
  if (on_heap()) delete[] heap().data;
  bytes_[kTag] = 0;
}

std::string_view Lineage::text() const noexcept {
  if (on_heap()) {
    const Heap h = heap();
    return {h.data, h.size};
  }
  return {bytes_.data(), static_cast<std::size_t>(static_cast<unsigned char>(bytes_[kTag]))};
}

std::optional<Fingerprint> Fingerprint::from_hex(std::string_view hex) noexcept {
  if (hex.size() != 2 * kSize) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out{};
  for (std::size_t i = 0; i < kSize; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return Fingerprint(out);
}

std::string Fingerprint::hex() const { return to_hex(bytes_.data(), bytes_.size()); }

}  // namespace nicsync
