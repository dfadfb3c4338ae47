#include "nicsync/sys/hardening.hpp"

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include <sys/prctl.h>
#include <sys/resource.h>

namespace nicsync::sys {
namespace {

std::string errno_text(int e) { return std::error_code(e, std::system_category()).message(); }

}  // namespace

Result<void> disable_core_dumps() {
  // Not mlock/MADV_DONTDUMP: with dumps off for the whole process they would only add a
  // page-aligned allocator for Secret (DONTDUMP works on whole pages) or need CAP_IPC_LOCK /
  // RLIMIT_MEMLOCK (mlock). Keeping secrets off swap is the unit's job (MemorySwapMax=0).
  rlimit current{};
  if (::getrlimit(RLIMIT_CORE, &current) != 0) {
    return Error(Errc::sys_hardening_failed,
                 fmt::format("cannot read the core dump limit (getrlimit RLIMIT_CORE): {}", errno_text(errno)));
  }
  // Already 0 (LimitCORE=0): leave it, so a seccomp filter without setrlimit costs nothing.
  if (current.rlim_cur != 0 || current.rlim_max != 0) {
    const rlimit none{0, 0};
    if (::setrlimit(RLIMIT_CORE, &none) != 0) {
      return Error(Errc::sys_hardening_failed,
                   fmt::format("cannot disable core dumps (setrlimit RLIMIT_CORE 0): {}; run nicsyncd with "
                               "LimitCORE=0 (systemd) or `ulimit -c 0`",
                               errno_text(errno)));
    }
  }
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Error(Errc::sys_hardening_failed,
                 fmt::format("cannot mark the process non-dumpable (prctl PR_SET_DUMPABLE 0): {}; check the "
                             "unit's SystemCallFilter= allows prctl (@process)",
                             errno_text(errno)));
  }
  return {};
}

}  // namespace nicsync::sys
