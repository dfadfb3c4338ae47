#include "nicsync/app/config.hpp"

#include <fstream>
#include <sstream>

#include "app/toml_reader.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::app {
namespace {

void read_api(TableReader& t, ApiConfig& api) {
  if (auto v = t.string("listen", "an address such as \"127.0.0.1:9464\"")) {
    if (auto hp = http::split_host_port(*v); !hp) {
      t.error("listen", hp.error().message);
    } else {
      api.listen = *v;
    }
  }
  t.finish();
}

void read_log(TableReader& t, LogConfig& log) {
  if (auto v = t.string("level", "one of \"trace\", \"debug\", \"info\", \"warn\", \"error\"")) {
    static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
        {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},
        {"warn", LogLevel::warn},   {"error", LogLevel::error}, {"critical", LogLevel::critical},
        {"off", LogLevel::off}};
    bool found = false;
    for (auto [name, level] : kLevels) {
      if (*v == name) {
        log.level = level;
        found = true;
      }
    }
    if (!found) t.error("level", fmt::format("\"{}\" is not a level; use trace, debug, info, warn or error", *v));
  }
  if (auto v = t.string("format", "\"text\" or \"json\"")) {
    if (*v == "text")
      log.format = LogFormat::text;
    else if (*v == "json")
      log.format = LogFormat::json;
    else
      t.error("format", fmt::format("\"{}\" is not a format; use \"text\" or \"json\"", *v));
  }
  t.finish();
}

}  // namespace

std::string_view to_string(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::critical: return "critical";
    case LogLevel::off: return "off";
  }
  return "info";
}

Result<Config> parse_config(std::string_view text, std::string_view source) {
  Config config;
  config.source = std::string(source);
  ErrorList errors{std::string(source)};
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source();
    return Error(Errc::config_invalid, fmt::format("{}:{}:{}: not valid TOML: {}", source, where.begin.line,
                                                   where.begin.column, e.description()));
  }
  TableReader top(root, "", errors);
  if (const auto* t = top.table("api")) {
    TableReader r(*t, "api", errors);
    read_api(r, config.api);
  }
  if (const auto* t = top.table("log")) {
    TableReader r(*t, "log", errors);
    read_log(r, config.log);
  }
  top.finish();
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors.items()) {
      if (!message.empty()) message += '\n';
      message += e;
    }
    return Error(Errc::config_invalid, std::move(message));
  }
  return config;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::config_invalid,
                 fmt::format("{}: cannot open config file: {}; pass --config with the path of a readable file", path,
                             std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Error(Errc::config_invalid, fmt::format("{}: cannot read config file", path));
  return parse_config(buffer.str(), path);
}

}  // namespace nicsync::app
