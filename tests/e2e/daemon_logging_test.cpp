// The real nicsyncd's log output: `[log] format = "json"` gives one JSON object per line (time,
// level, message, fields) for everything it writes, a delivery's line carries gstin,
// destination, version and attempt as fields; with stderr connected to journald (JOURNAL_STREAM
// naming the stream, as systemd sets it) every text line starts with its `<N>` priority and has
// no timestamp, multi-line messages included.
#include <signal.h>

#include <regex>

#include <gtest/gtest.h>

#include "testing/world.hpp"

namespace nicsync {
namespace {

using namespace std::chrono_literals;
using testing::Daemon;
using testing::DaemonConfig;
using testing::eventually;
using testing::World;
using testing::world_gstin;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = std::min(text.find('\n', at), text.size());
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// Runs the daemon as systemd would connect it to journald: JOURNAL_STREAM is the device and
// inode of its stderr (here the test's pipe), set by a shell that then execs the daemon.
const std::vector<std::string> kJournalWrapper = {
    "/bin/sh", "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && export JOURNAL_STREAM && exec \"$@\"",
    "sh"};

class DaemonLogging : public ::testing::Test {
 protected:
  void SetUp() override { world_.seed_cleartax_secret(); }

  /// Starts a daemon with `format`, lets it deliver version 1 of one GSTIN, rejects a broken
  /// reload (a multi-line error), stops it with SIGTERM; returns everything it wrote.
  std::string run_daemon(const std::string& format, std::vector<std::string> wrapper) {
    world_.put_credential(gstin_, "API_LOG", password_);
    DaemonConfig cfg{.gstins = {gstin_}};
    cfg.log_format = format;
    cfg.log_level = "debug";
    Daemon d(world_, dir_, cfg);
    d.start({}, std::move(wrapper));
    EXPECT_TRUE(d.wait_started()) << d.process().output();
    EXPECT_TRUE(eventually([&] { return world_.stored(gstin_).has_value(); }, 20s)) << d.process().output();
    EXPECT_TRUE(eventually([&] { return d.readyz() == 200; }, 20s)) << d.process().output();
    d.mark_output();
    testing::write_file(d.config_path(), d.config_text() + "[[mapping]]\ngstin = \"27AAPFU0939F1Z\"\n");
    d.signal(SIGHUP);
    EXPECT_TRUE(d.wait_for_log("reload rejected", 20s)) << d.process().output();
    d.signal(SIGTERM);
    EXPECT_EQ(d.process().wait(20s), 0) << d.process().output();
    const std::string out = d.process().output();
    EXPECT_EQ(out.find(password_), std::string::npos) << "the password reached the log";
    return out;
  }

  World world_;
  testing::TempDir dir_;
  const std::string gstin_ = world_gstin(70);
  const std::string password_ = "Pw-planted-\"log\"-7f3a";
};

/// Checks one JSON log line; returns it parsed (an empty object after a failure).
boost::json::object parse_json_line(const std::string& line) {
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << "not JSON: " << line;
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << line;
    return {};
  }
  auto o = v.as_object();
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  EXPECT_TRUE(o.contains("time") && o.at("time").is_string() &&
              std::regex_match(std::string(o.at("time").as_string()), kTime))
      << line;
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warning", "error", "critical"};
  EXPECT_TRUE(o.contains("level") && o.at("level").is_string() &&
              kLevels.count(std::string(o.at("level").as_string())) == 1)
      << line;
  EXPECT_TRUE(o.contains("message") && o.at("message").is_string()) << line;
  if (o.contains("fields")) {
    EXPECT_TRUE(o.at("fields").is_object()) << line;
  }
  for (const auto& [key, value] : o) {
    EXPECT_TRUE(key == "time" || key == "level" || key == "message" || key == "fields") << line;
  }
  return o;
}

TEST_F(DaemonLogging, JsonFormatWritesOneObjectPerLineWithDeliveryFields) {
  const std::string out = run_daemon("json", {});
  const auto lines = lines_of(out);
  ASSERT_GT(lines.size(), 5u) << out;
  bool delivered = false, rejected = false, pushed_debug = false;
  for (const auto& line : lines) {
    auto o = parse_json_line(line);
    if (o.empty()) continue;
    const std::string message(o.at("message").as_string());
    if (message == "delivered") {
      delivered = true;
      EXPECT_EQ(o.at("level").as_string(), "info");
      ASSERT_TRUE(o.contains("fields")) << line;
      const auto& f = o.at("fields").as_object();
      EXPECT_EQ(f.at("gstin").as_string(), gstin_) << line;
      EXPECT_EQ(f.at("destination").as_string(), "cleartax") << line;
      EXPECT_EQ(f.at("version").as_int64(), 1) << line;
      EXPECT_EQ(f.at("attempt").as_int64(), 1) << line;
    }
    if (message.starts_with("pushed")) {
      // The destination's own (debug) line about the push carries the same four fields.
      pushed_debug = true;
      const auto& f = o.at("fields").as_object();
      EXPECT_EQ(f.at("gstin").as_string(), gstin_) << line;
      EXPECT_TRUE(f.contains("destination") && f.contains("version") && f.contains("attempt")) << line;
    }
    if (message.starts_with("reload rejected")) {
      rejected = true;
      EXPECT_EQ(o.at("level").as_string(), "error");
      EXPECT_NE(message.find("\n"), std::string::npos) << "the multi-line message stays one JSON line: " << line;
      EXPECT_NE(message.find("nicsyncd.toml:"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(delivered) << out;
  EXPECT_TRUE(pushed_debug) << out;
  EXPECT_TRUE(rejected) << out;
}

TEST_F(DaemonLogging, TextUnderJournaldHasPriorityPrefixesAndNoTimestamps) {
  const std::string out = run_daemon("text", kJournalWrapper);
  const auto lines = lines_of(out);
  ASSERT_GT(lines.size(), 5u) << out;
  static const std::regex kPrefixed(R"(<[2-7]>.*)");
  std::map<std::string, int> by_priority;
  for (const auto& line : lines) {
    ASSERT_TRUE(std::regex_match(line, kPrefixed)) << "no priority prefix: " << line << "\n" << out;
    EXPECT_FALSE(std::regex_search(line, std::regex(R"(^<\d>\d{4}-\d\d-\d\d)"))) << "timestamp: " << line;
    ++by_priority[line.substr(0, 3)];
  }
  const std::string delivered = fmt::format("<6>gstin={} destination=cleartax version=1 attempt=1: delivered", gstin_);
  EXPECT_NE(std::find(lines.begin(), lines.end(), delivered), lines.end()) << out;
  EXPECT_GT(by_priority["<7>"], 0) << "debug lines are <7>\n" << out;
  // The rejected reload is an error over several lines: each has <3>, so journald keeps the
  // whole message at error priority.
  auto first = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.starts_with("<3>reload rejected, keeping the current configuration:");
  });
  ASSERT_NE(first, lines.end()) << out;
  ASSERT_NE(first + 1, lines.end());
  EXPECT_TRUE((first + 1)->starts_with("<3>") && (first + 1)->find("nicsyncd.toml:") != std::string::npos)
      << *(first + 1);
}

TEST_F(DaemonLogging, JsonUnderJournaldCarriesThePriorityToo) {
  const std::string out = run_daemon("json", kJournalWrapper);
  bool delivered = false;
  for (const auto& line : lines_of(out)) {
    ASSERT_TRUE(std::regex_match(line, std::regex(R"(<[2-7]>\{.*\})"))) << line;
    auto o = parse_json_line(line.substr(3));
    if (!o.empty() && o.at("message").as_string() == "delivered") {
      delivered = true;
      EXPECT_TRUE(line.starts_with("<6>")) << line;
    }
  }
  EXPECT_TRUE(delivered) << out;
}

TEST_F(DaemonLogging, AJournalStreamThatIsNotStderrIsIgnored) {
  // Inherited from a parent whose stderr went to the journal (a desktop session, a service's
  // shell): this process's stderr is a pipe, so plain text with timestamps.
  world_.put_credential(gstin_, "API_LOG", password_);
  Daemon d(world_, dir_, {.gstins = {gstin_}});
  d.start({"JOURNAL_STREAM=8:12345"});
  ASSERT_TRUE(d.wait_started()) << d.process().output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.process().wait(20s), 0);
  for (const auto& line : lines_of(d.process().output())) {
    EXPECT_TRUE(std::regex_search(line, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} )"))) << line;
  }
}

}  // namespace
}  // namespace nicsync
