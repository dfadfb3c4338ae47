#pragma once
/// \file
/// Mappings as configured and the pairs they resolve to: a [[mapping]] names a GSTIN, the Vault
/// key holding its credential and the destinations it goes to; a [[mapping_set]] maps every key
/// under a Vault folder (each named by a GSTIN). Each (destination, GSTIN) is one pair.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/gstin.hpp"

namespace nicsync::sync {

/// Where a pair's credential lives in Vault: the key's full path and its two fields. The mount
/// and KV version are Vault's business (the Vault client detects them), not the mapping's.
struct SourceRef {
  std::string path;  ///< full path, mount included: "secret/nic/07AAFCD5862R1ZX"
  std::string username_field = "username";
  std::string password_field = "password";
  friend bool operator==(const SourceRef&, const SourceRef&) = default;
};

/// One pair: a GSTIN at a destination and the Vault key that holds its credential.
struct PairConfig {
  std::string destination;
  Gstin gstin;
  SourceRef source;
  friend bool operator==(const PairConfig&, const PairConfig&) = default;
};

/// Keeps the first of the pairs that name the same destination and GSTIN, in their order (an
/// explicit mapping listed before the mapping sets wins over them). Engine::set_pairs refuses
/// such repeats.
void drop_repeated_pairs(std::vector<PairConfig>& pairs);

/// GSTIN → Vault path → destinations (explicit): one [[mapping]] as it is read.
struct MappingConfig {
  Gstin gstin;
  std::string path;  ///< full Vault path incl. the mount
  std::vector<std::string> destinations;
  std::string username_key = "username";
  std::string password_key = "password";
};

/// One [[mapping]] of a MappingList: views into the list, valid while it lives unchanged.
struct MappingView {
  const Gstin& gstin;
  std::string_view path;
  const std::vector<std::string>& destinations;
  const std::string& username_key;
  const std::string& password_key;
};

/// The [[mapping]]s, held compactly since a service provider lists 10,000 of them: each keeps
/// its GSTIN, its path (in one text shared by all) and the index of its route (destinations
/// and field names), which mappings share. About 75 bytes a mapping, where a MappingConfig
/// took 250 in small heap blocks that stayed scattered between longer-lived ones.
class MappingList {
 public:
  class Iterator {
   public:
    using value_type = MappingView;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Iterator(const MappingList* list, std::size_t at) : list_(list), at_(at) {}
    MappingView operator*() const { return (*list_)[at_]; }
    Iterator& operator++() {
      ++at_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++at_;
      return before;
    }
    bool operator==(const Iterator& o) const noexcept { return at_ == o.at_; }

   private:
    const MappingList* list_ = nullptr;
    std::size_t at_ = 0;
  };

  /// Adds a mapping. The paths of all mappings together must stay under 4 GiB (the config
  /// loader's 4 MiB limit on files keeps them far below).
  void push_back(MappingConfig m);
  /// Gives back what growing took (the parser calls it once the file is read).
  void shrink_to_fit();
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  MappingView operator[](std::size_t i) const;
  [[nodiscard]] Iterator begin() const noexcept { return {this, 0}; }
  [[nodiscard]] Iterator end() const noexcept { return {this, entries_.size()}; }

 private:
  struct Route {
    std::vector<std::string> destinations;
    std::string username_key;
    std::string password_key;
    auto operator<=>(const Route&) const = default;
  };
  struct Entry {
    Gstin gstin;
    std::uint32_t path_begin = 0;
    std::uint32_t path_size = 0;
    std::uint32_t route = 0;
  };
  std::vector<Entry> entries_;
  std::string paths_;                         // every path, back to back
  std::vector<Route> routes_;                 // usually one or a few
  std::map<Route, std::uint32_t> route_ids_;  // route → its index in routes_
};

/// Every key under `prefix` is a GSTIN, mapped to `destinations`.
struct MappingSetConfig {
  std::string prefix;  ///< full Vault path of a folder, ending in '/'
  std::vector<std::string> destinations;
  std::string username_key = "username";
  std::string password_key = "password";
};

}  // namespace nicsync::sync
