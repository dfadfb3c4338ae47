#pragma once
/// \file
/// The `nicsyncd` command line: `run`, `version`, and the operator commands of later issues.

namespace nicsync::app {

/// Exit codes (documented in README.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      ///< runtime failure
  kExitUsage = 2,        ///< bad command line
  kExitConfig = 3,       ///< configuration invalid
  kExitUnavailable = 4,  ///< a needed service (daemon, Vault, state directory) is unavailable
};

/// Parses `argv` and runs the chosen subcommand; returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace nicsync::app
