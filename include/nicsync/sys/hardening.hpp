#pragma once
/// \file
/// Process hardening the daemon applies to itself before it reads any secret.

#include "nicsync/core/result.hpp"

namespace nicsync::sys {

/// Makes sure no core dump of this process can ever hold a credential or token:
///  - `RLIMIT_CORE` soft and hard limits to 0 (the hard limit too, so nothing in the process can
///    raise it again; skipped when already 0, e.g. under LimitCORE=0);
///  - `prctl(PR_SET_DUMPABLE, 0)`: no dump even where `core_pattern` pipes to a handler (pipe
///    handlers ignore RLIMIT_CORE), and other processes of the same user can no longer ptrace
///    it or read /proc/PID/mem, environ, smaps (root still can).
/// Call it first thing in `nicsyncd run` (and any subcommand that reads secrets). A failure is
/// an `Errc::sys_hardening_failed` error saying which step failed; the caller decides whether to
/// go on (the daemon should not). The dumpable flag is reset by execve, so it is per process.
Result<void> disable_core_dumps();

}  // namespace nicsync::sys
