// JSON log lines (fields from the leading key=value words, escaping, numbers) and the check
// that stderr really is journald's stream before priority prefixes are used.
#include "nicsync/app/logging.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

namespace nicsync::app {
namespace {

// 2024-05-01T10:20:30.000123Z
const auto kTime =
    std::chrono::system_clock::time_point(std::chrono::seconds(1714558830)) + std::chrono::microseconds(123);

boost::json::object parse(const std::string& line) {
  EXPECT_TRUE(line.ends_with("}\n")) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  return boost::json::parse(line).as_object();
}

TEST(JsonLogLine, DeliveryFieldsBecomeFieldsAndTheRestTheMessage) {
  const auto o = parse(json_log_line("info", kTime,
                                     "gstin=07AAFCD5862R1ZX destination=cleartax version=12 "
                                     "attempt=2: delivered"));
  EXPECT_EQ(o.at("time").as_string(), "2024-05-01T10:20:30.000123Z");
  EXPECT_EQ(o.at("level").as_string(), "info");
  EXPECT_EQ(o.at("message").as_string(), "delivered");
  const auto& f = o.at("fields").as_object();
  EXPECT_EQ(f.at("gstin").as_string(), "07AAFCD5862R1ZX");  // leading digits, still a string
  EXPECT_EQ(f.at("destination").as_string(), "cleartax");
  EXPECT_EQ(f.at("version").as_int64(), 12);
  EXPECT_EQ(f.at("attempt").as_int64(), 2);
  EXPECT_EQ(f.size(), 4u);
}

TEST(JsonLogLine, OnlyLeadingWordsAreFields) {
  // Later key=value words belong to the message (they may be anything).
  auto o = parse(json_log_line("info", kTime, "destination=ct token cache loaded: token=*** valid_till=2024"));
  EXPECT_EQ(o.at("message").as_string(), "token cache loaded: token=*** valid_till=2024");
  EXPECT_EQ(o.at("fields").as_object().size(), 1u);
  o = parse(json_log_line("debug", kTime, "destination=ct gstin=X version=3 attempt=1 pushed status=200"));
  EXPECT_EQ(o.at("message").as_string(), "pushed status=200");
  EXPECT_EQ(o.at("fields").as_object().size(), 4u);
  // No fields: the whole text is the message, and there is no "fields" member.
  o = parse(json_log_line("warning", kTime, "watch: cannot read secret/nic/X: permission denied (a=b)"));
  EXPECT_EQ(o.at("message").as_string(), "watch: cannot read secret/nic/X: permission denied (a=b)");
  EXPECT_FALSE(o.contains("fields"));
  // Not field names: upper case, dots, spaces.
  o = parse(json_log_line("info", kTime, "api.token_file=x: unreadable"));
  EXPECT_FALSE(o.contains("fields"));
  EXPECT_EQ(o.at("message").as_string(), "api.token_file=x: unreadable");
}

TEST(JsonLogLine, NumbersOnlyWhenUnambiguous) {
  const auto o = parse(json_log_line("info", kTime, "a=0 b=007 c=123456789012345678 d=1234567890123456789 e=-1: x"));
  const auto& f = o.at("fields").as_object();
  EXPECT_EQ(f.at("a").as_int64(), 0);
  EXPECT_EQ(f.at("b").as_string(), "007");
  EXPECT_EQ(f.at("c").as_int64(), 123456789012345678);
  EXPECT_EQ(f.at("d").as_string(), "1234567890123456789");
  EXPECT_EQ(f.at("e").as_string(), "-1");
}

TEST(JsonLogLine, EscapesEverythingJsonNeeds) {
  const std::string text = std::string("quote \" backslash \\ newline\nline two\ttab \x01 del \x7f ü");
  const auto line = json_log_line("error", kTime, text);
  const auto o = parse(line);
  EXPECT_EQ(o.at("message").as_string(), text);
  EXPECT_EQ(o.at("level").as_string(), "error");
}

TEST(StderrIsJournal, OnlyWhenTheVariableNamesStderr) {
  struct stat st {};
  ASSERT_EQ(::fstat(2, &st), 0);
  const std::string mine = fmt::format("{}:{}", st.st_dev, st.st_ino);
  EXPECT_TRUE(stderr_is_journal(mine.c_str()));
  EXPECT_FALSE(stderr_is_journal(nullptr));
  EXPECT_FALSE(stderr_is_journal(""));
  EXPECT_FALSE(stderr_is_journal(fmt::format("{}:{}", st.st_dev, st.st_ino + 1).c_str()));
  EXPECT_FALSE(stderr_is_journal(fmt::format("{}:{}", st.st_dev + 1, st.st_ino).c_str()));
  EXPECT_FALSE(stderr_is_journal((mine + "x").c_str()));
  EXPECT_FALSE(stderr_is_journal(("x" + mine).c_str()));
  EXPECT_FALSE(stderr_is_journal(std::to_string(st.st_ino).c_str()));
}

}  // namespace
}  // namespace nicsync::app
