#pragma once
/// \file
/// The identity of a credential version, from the watcher through the engine to the ledger:
/// `VersionId` (KV version, lineage, deleted/destroyed state) and the keyed `Fingerprint` of
/// the credential it holds. Text forms are made only at the edges (ledger rows, logs, JSON).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nicsync {

/// KV engine version of the mount a path lives on.
enum class KvVersion : std::uint8_t { v1 = 1, v2 = 2 };

/// State of the current version of a Vault key.
enum class SourceState : std::uint8_t {
  present,    ///< readable
  deleted,    ///< current version soft-deleted (or expired by delete_version_after)
  destroyed,  ///< current version destroyed
  missing,    ///< no such key (never written, or metadata deleted)
};

std::string_view to_string(SourceState s) noexcept;

/// Which life of a Vault key a version belongs to. KV v2: the key's metadata `created_time`,
/// exactly as Vault sent it (a key deleted and written again starts a new lineage at version 1).
/// KV v1, which has no versions: the fingerprint text of the content once it was read. Opaque:
/// lineages are only ever compared for equality — never parsed, never ordered.
class Lineage {
 public:
  Lineage() noexcept = default;
  explicit Lineage(std::string_view text);
  Lineage(const Lineage& other) : Lineage(other.text()) {}
  Lineage(Lineage&& other) noexcept;
  Lineage& operator=(const Lineage& other);
  Lineage& operator=(Lineage&& other) noexcept;
  ~Lineage();

  /// The text as Vault sent it (ledger rows, the webhook body, the Idempotency-Key).
  [[nodiscard]] std::string_view text() const noexcept;
  [[nodiscard]] bool empty() const noexcept { return text().empty(); }
  friend bool operator==(const Lineage& a, const Lineage& b) noexcept { return a.text() == b.text(); }

 private:
  // Every watched key and every pair holds one, up to 100,000 of each: a created_time (at most
  // 30 bytes, "2026-11-25T23:30:00.123456789Z") is held in place, where a std::string would put
  // it in a 48-byte heap block. 32 bytes: up to 31 bytes of text, then a tag byte that is the
  // text's length, or kOnHeap for a longer text, whose pointer and size then fill the front.
  static constexpr std::size_t kTag = 31;
  static constexpr unsigned char kOnHeap = 0xff;
  struct Heap {
    char* data;
    std::size_t size;
  };
  [[nodiscard]] bool on_heap() const noexcept { return static_cast<unsigned char>(bytes_[kTag]) == kOnHeap; }
  [[nodiscard]] Heap heap() const noexcept;
  void release() noexcept;
  alignas(Heap) std::array<char, 32> bytes_{};
};

/// One version of one Vault key as far as delivery cares: its number in its lineage and whether
/// it is readable. KV v1 keys have number 0 (their lineage is the content's fingerprint).
struct VersionId {
  std::int64_t number = 0;
  Lineage lineage;
  SourceState state = SourceState::present;

  /// The same version of the same lineage, whatever its state.
  [[nodiscard]] bool same_version(const VersionId& o) const noexcept {
    return number == o.number && lineage == o.lineage;
  }
  friend bool operator==(const VersionId&, const VersionId&) = default;
};

/// The keyed HMAC-SHA256 of a credential (ledger::Fingerprinter): tells whether a destination
/// already holds a credential without holding it. 32 bytes; 64 lower-case hex digits as text.
class Fingerprint {
 public:
  static constexpr std::size_t kSize = 32;
  using Bytes = std::array<unsigned char, kSize>;

  Fingerprint() = default;
  explicit Fingerprint(const Bytes& bytes) noexcept : bytes_(bytes) {}

  /// From its text form; nothing if `hex` is not 64 hex digits.
  static std::optional<Fingerprint> from_hex(std::string_view hex) noexcept;
  [[nodiscard]] std::string hex() const;
  [[nodiscard]] const Bytes& bytes() const noexcept { return bytes_; }
  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;

 private:
  Bytes bytes_{};
};

}  // namespace nicsync
