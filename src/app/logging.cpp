#include "nicsync/app/logging.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "nicsync/core/text.hpp"

#include <sys/stat.h>

namespace nicsync::app {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
    case LogLevel::critical: return spdlog::level::critical;
    case LogLevel::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

// sd-daemon(3) priorities by spdlog level (trace, debug, info, warn, err, critical, off).
std::string_view journal_prefix(spdlog::level::level_enum level) {
  static constexpr std::string_view kPrefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
  const auto i = static_cast<std::size_t>(level);
  return i < std::size(kPrefix) ? kPrefix[i] : kPrefix[2];
}

// journald reads a stream line by line and takes the priority from each line's own prefix:
// every line of a multi-line message gets it, or the later ones would be logged at info.
class JournalFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view prefix = journal_prefix(msg.level);
    const std::string_view text(msg.payload.data(), msg.payload.size());
    std::size_t from = 0;
    for (;;) {
      const auto nl = text.find('\n', from);
      dest.append(prefix);
      dest.append(text.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from));
      dest.push_back('\n');
      if (nl == std::string_view::npos) break;
      from = nl + 1;
    }
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JournalFormatter>(); }
};

void append_json_string(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.push_back('"');
  append_json_escaped_to(dest, s);
  dest.push_back('"');
}

bool is_field_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

// A decimal without sign or leading zero that fits in 64 bits goes out as a JSON number
// (version=3, attempt=2); anything else, GSTINs with leading digits included, as a string.
bool is_json_integer(std::string_view v) {
  if (v.empty() || v.size() > 18 || (v.size() > 1 && v[0] == '0')) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One JSON object per line: {"time":"…Z","level":"info","message":"delivered",
// "fields":{"gstin":"…","destination":"cleartax","version":3,"attempt":1}}. The fields are the
// message's leading `key=value` words (STYLE: "gstin=… destination=… version=… attempt=…: what
// happened"); the text after them is the message.
void write_json_line(spdlog::memory_buf_t& dest, std::string_view level, std::chrono::system_clock::time_point time,
                     std::string_view payload) {
  const auto since_epoch = time.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - secs).count();
  const std::time_t t = secs.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(dest),
                 "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\"level\":", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  append_json_string(dest, level);

  // Leading key=value words, each ended by a space, the last one by ": " (or the end).
  std::string_view rest = payload;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  for (;;) {
    const auto eq = rest.find('=');
    if (eq == std::string_view::npos || !is_field_name(rest.substr(0, eq))) break;
    const auto end = rest.find(' ', eq + 1);
    std::string_view value = rest.substr(eq + 1, end == std::string_view::npos ? std::string_view::npos : end - eq - 1);
    const bool last = value.ends_with(':') || end == std::string_view::npos;
    if (value.ends_with(':')) value.remove_suffix(1);
    if (value.empty() || value.find_first_of("=\"") != std::string_view::npos) break;
    fields.emplace_back(rest.substr(0, eq), value);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (last) break;
  }
  if (fields.empty()) rest = payload;
  dest.append(std::string_view(",\"message\":"));
  append_json_string(dest, rest);
  if (!fields.empty()) {
    dest.append(std::string_view(",\"fields\":{"));
    bool first = true;
    for (const auto& [name, value] : fields) {
      if (!first) dest.push_back(',');
      first = false;
      append_json_string(dest, name);
      dest.push_back(':');
      if (is_json_integer(value)) {
        dest.append(value);
      } else {
        append_json_string(dest, value);
      }
    }
    dest.push_back('}');
  }
  dest.append(std::string_view("}\n"));
}

class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(bool journal) : journal_(journal) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    if (journal_) dest.append(journal_prefix(msg.level));
    const auto level = spdlog::level::to_string_view(msg.level);
    write_json_line(dest, std::string_view(level.data(), level.size()), msg.time,
                    std::string_view(msg.payload.data(), msg.payload.size()));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(journal_); }

 private:
  bool journal_;
};

}  // namespace

std::string json_log_line(std::string_view level, std::chrono::system_clock::time_point time,
                          std::string_view message) {
  spdlog::memory_buf_t buf;
  write_json_line(buf, level, time, message);
  return std::string(buf.data(), buf.size());
}

bool stderr_is_journal(const char* journal_stream) {
  if (journal_stream == nullptr) return false;
  // "<st_dev>:<st_ino>" of the stream systemd connected; compare with what fd 2 is now (a
  // variable inherited by a process whose stderr went elsewhere must not count).
  const std::string_view v(journal_stream);
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  const auto d = std::from_chars(v.data(), v.data() + colon, dev);
  const auto i = std::from_chars(v.data() + colon + 1, v.data() + v.size(), ino);
  if (d.ec != std::errc() || d.ptr != v.data() + colon || i.ec != std::errc() || i.ptr != v.data() + v.size()) {
    return false;
  }
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

void setup_logging(const LogConfig& config) {
  const bool journal = stderr_is_journal(std::getenv("JOURNAL_STREAM"));
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("nicsync", sink);
  if (config.format == LogFormat::json) {
    logger->set_formatter(std::make_unique<JsonFormatter>(journal));
  } else if (journal) {
    logger->set_formatter(std::make_unique<JournalFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(to_spdlog(config.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace nicsync::app
