#pragma once
/// \file
/// Logging to stderr: text (with journald priority prefixes under systemd) or JSON lines.

#include "nicsync/app/config.hpp"

namespace nicsync::app {

/// Installs the process-wide spdlog logger for `config`. Under systemd (JOURNAL_STREAM set)
/// text lines carry `<N>` priority prefixes and no timestamp, which journald adds itself.
void setup_logging(const LogConfig& config);

}  // namespace nicsync::app
