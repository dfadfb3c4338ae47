#pragma once
/// \file
/// The daemon's configuration: TOML, validated completely before use; every error names the
/// file, line and key and says what is expected. Unknown keys are errors.

#include <chrono>
#include <string>
#include <string_view>

#include "nicsync/core/result.hpp"

namespace nicsync::app {

enum class LogLevel { trace, debug, info, warn, error, critical, off };
enum class LogFormat { text, json };

struct ApiConfig {
  std::string listen = "127.0.0.1:9464";
};

struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

struct Config {
  std::string source;  ///< file it was read from ("<string>" for text)
  ApiConfig api;
  LogConfig log;
};

/// Reads and validates a config file.
Result<Config> load_config_file(const std::string& path);
/// Parses and validates config text; `source` names it in errors.
Result<Config> parse_config(std::string_view text, std::string_view source);

std::string_view to_string(LogLevel l) noexcept;

}  // namespace nicsync::app
