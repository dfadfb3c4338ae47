#pragma once
/// \file
/// Logging to stderr: text (with journald priority prefixes under systemd) or JSON lines.

#include <chrono>
#include <string>
#include <string_view>

#include "nicsync/app/config.hpp"

namespace nicsync::app {

/// Installs the process-wide spdlog logger for `config`.
/// - text: `2024-05-01T10:00:00.123 info  message`; when stderr is systemd's journal stream
///   (`JOURNAL_STREAM` names the device and inode fd 2 still has), `<6>message` instead: the
///   sd-daemon(3) priority on every line and no timestamp, which journald adds itself.
/// - json: one object per line, `{"time","level","message","fields"}`; `fields` holds the
///   message's leading `key=value` words (`gstin=… destination=… version=… attempt=…:`), numbers
///   as JSON numbers. Under the journal each line also starts with its `<N>` priority.
void setup_logging(const LogConfig& config);

/// The JSON line (with its '\n') that `format = "json"` writes for `message` at `level`
/// ("info", "warning", ...) and `time`.
std::string json_log_line(std::string_view level, std::chrono::system_clock::time_point time, std::string_view message);

/// Whether `journal_stream` (the value of `JOURNAL_STREAM`, may be null) names the file fd 2
/// refers to, i.e. stderr goes to journald (systemd.exec(5)).
bool stderr_is_journal(const char* journal_stream);

}  // namespace nicsync::app
