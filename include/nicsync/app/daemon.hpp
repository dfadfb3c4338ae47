#pragma once
/// \file
/// `nicsyncd run`: wires the modules together on one event loop.

#include "nicsync/app/config.hpp"

namespace nicsync::app {

/// Runs the daemon until SIGTERM/SIGINT; returns the process exit code.
int run_daemon(Config config);

}  // namespace nicsync::app
