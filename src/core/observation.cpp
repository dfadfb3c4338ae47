#include "nicsync/core/observation.hpp"

namespace nicsync {

std::string_view to_string(ObservationSource s) noexcept {
  switch (s) {
    case ObservationSource::poll: return "poll";
    case ObservationSource::event: return "event";
    case ObservationSource::trigger: return "trigger";
  }
  return "unknown";
}

}  // namespace nicsync
