#include "nicsync/sync/mapping.hpp"

#include <cassert>
#include <limits>

namespace nicsync::sync {

void MappingList::push_back(MappingConfig m) {
  assert(paths_.size() + m.path.size() <= std::numeric_limits<std::uint32_t>::max());
  Route route{std::move(m.destinations), std::move(m.username_key), std::move(m.password_key)};
  auto [it, added] = route_ids_.try_emplace(std::move(route), static_cast<std::uint32_t>(routes_.size()));
  if (added) routes_.push_back(it->first);
  entries_.push_back({std::move(m.gstin), static_cast<std::uint32_t>(paths_.size()),
                      static_cast<std::uint32_t>(m.path.size()), it->second});
  paths_ += m.path;
}

void MappingList::shrink_to_fit() {
  entries_.shrink_to_fit();
  paths_.shrink_to_fit();
  routes_.shrink_to_fit();
}

MappingView MappingList::operator[](std::size_t i) const {
  const Entry& e = entries_.at(i);
  const Route& r = routes_[e.route];
  return {e.gstin, std::string_view(paths_).substr(e.path_begin, e.path_size), r.destinations, r.username_key,
          r.password_key};
}

}  // namespace nicsync::sync
