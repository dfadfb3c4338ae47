#include "nicsync/sync/mapper.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "nicsync/vault/types.hpp"

namespace nicsync::sync {

Result<void> Mapper::configure(const MappingList& mappings, const std::vector<MappingSetConfig>& sets) {
  const auto* old_mappings = std::exchange(mappings_, &mappings);
  const auto* old_sets = std::exchange(sets_, &sets);
  if (auto r = engine_.set_pairs(build()); !r) {
    mappings_ = old_mappings;
    sets_ = old_sets;
    return r;
  }
  // Members of sets that are gone are forgotten; a new set has none until it is listed.
  std::erase_if(members_, [&](const auto& entry) {
    return std::none_of(sets.begin(), sets.end(), [&](const MappingSetConfig& s) { return s.prefix == entry.first; });
  });
  release_held(nullptr);
  return {};
}

std::vector<std::string> Mapper::watched_keys() const {
  std::vector<std::string> out;
  if (mappings_ == nullptr) return out;
  out.reserve(mappings_->size());
  for (const auto& m : *mappings_) out.emplace_back(m.path);
  return out;
}

std::vector<std::string> Mapper::watched_prefixes() const {
  std::vector<std::string> out;
  if (sets_ == nullptr) return out;
  for (const auto& s : *sets_) out.push_back(s.prefix);
  return out;
}

std::vector<PairConfig> Mapper::build() const {
  std::vector<PairConfig> out;
  if (mappings_ == nullptr || sets_ == nullptr) return out;
  std::size_t count = 0;
  for (const auto& m : *mappings_) count += m.destinations.size();
  for (const auto& s : *sets_) {
    if (auto it = members_.find(s.prefix); it != members_.end()) count += it->second.size() * s.destinations.size();
  }
  out.reserve(count);
  for (const auto& m : *mappings_) {
    for (const auto& d : m.destinations) {
      out.push_back({d, m.gstin, SourceRef{std::string(m.path), m.username_key, m.password_key}});
    }
  }
  for (const auto& s : *sets_) {
    auto it = members_.find(s.prefix);
    if (it == members_.end()) continue;
    for (const auto& g : it->second) {
      for (const auto& d : s.destinations) {
        out.push_back({d, g, SourceRef{s.prefix + g.str(), s.username_key, s.password_key}});
      }
    }
  }
  drop_repeated_pairs(out);  // an explicit mapping wins over a set, an earlier set over a later one
  return out;
}

void Mapper::set_listed(const std::string& prefix, std::vector<Gstin> members) {
  if (sets_ == nullptr) return;
  const bool configured =
      std::any_of(sets_->begin(), sets_->end(), [&](const MappingSetConfig& s) { return s.prefix == prefix; });
  if (!configured) return;  // a listing that was under way when its set was removed
  auto [it, added] = members_.try_emplace(prefix);
  if (added || it->second != members) {
    it->second = std::move(members);
    it->second.shrink_to_fit();
    if (auto r = engine_.set_pairs(build()); !r) spdlog::error("mappings: {}", r.error().message);
  }
  release_held(&prefix);
}

void Mapper::observe(const Observation& o) {
  if (engine_.observe(o) > 0) return;
  if (!in_a_set_folder(o.path)) {
    ++dropped_;
    spdlog::info("watch: {} is not mapped (any more); its observation is ignored", o.path);
    return;
  }
  // A key in a mapping set's folder that the last listing did not include (a new GSTIN): its
  // pairs appear with the next listing.
  if (held_.size() >= kMaxHeld && held_.find(o.path) == held_.end()) {
    ++dropped_;
    spdlog::warn("watch: {} observations wait for their mapping sets to be listed; {} is read again at the next sweep",
                 held_.size(), o.path);
    return;
  }
  spdlog::debug("watch: {} waits for the next listing of its mapping set", o.path);
  held_.insert_or_assign(o.path, o);
}

bool Mapper::in_a_set_folder(std::string_view path) const {
  if (sets_ == nullptr) return false;
  return std::any_of(sets_->begin(), sets_->end(),
                     [&](const MappingSetConfig& s) { return vault::directly_in_folder(path, s.prefix); });
}

void Mapper::release_held(const std::string* listed) {
  for (auto it = held_.begin(); it != held_.end();) {
    const Observation& o = it->second;
    if (engine_.observe(o) > 0) {
      ++delivered_late_;
      spdlog::debug("watch: {} is mapped now; its held observation is delivered", o.path);
      it = held_.erase(it);
      continue;
    }
    const bool decided = listed != nullptr && vault::directly_in_folder(o.path, *listed);
    if (decided || !in_a_set_folder(o.path)) {
      ++dropped_;
      spdlog::info("watch: {} is not a member of its mapping set; its observation is ignored", o.path);
      it = held_.erase(it);
      continue;
    }
    ++it;
  }
}

std::vector<Gstin> Mapper::gstins_of(std::string_view path, GstinMode mode) const {
  auto gstins = engine_.gstins_reading(path);
  if (gstins.empty() && in_a_set_folder(path)) {
    if (auto g = Gstin::parse(path.substr(path.rfind('/') + 1), mode)) gstins.push_back(std::move(*g));
  }
  std::sort(gstins.begin(), gstins.end());
  gstins.erase(std::unique(gstins.begin(), gstins.end()), gstins.end());
  return gstins;
}

MapperStats Mapper::stats() const { return MapperStats{held_.size(), delivered_late_, dropped_}; }

}  // namespace nicsync::sync
