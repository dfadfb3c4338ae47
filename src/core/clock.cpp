#include "nicsync/core/clock.hpp"

namespace nicsync {

Clock& Clock::real() noexcept {
  static SystemClock clock;
  return clock;
}

}  // namespace nicsync
