#include "nicsync/app/config.hpp"

#include <gtest/gtest.h>

namespace nicsync::app {
namespace {

TEST(Config, DefaultsWhenEmpty) {
  auto c = parse_config("", "empty.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->api.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->log.level, LogLevel::info);
}

TEST(Config, ReadsApiAndLog) {
  auto c = parse_config("[api]\nlisten = \"127.0.0.1:19464\"\n[log]\nlevel = \"debug\"\nformat = \"json\"\n", "x.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->api.listen, "127.0.0.1:19464");
  EXPECT_EQ(c->log.level, LogLevel::debug);
  EXPECT_EQ(c->log.format, LogFormat::json);
}

TEST(Config, UnknownKeysAreErrorsWithFileAndLine) {
  auto c = parse_config("[api]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n\n[lgo]\nlevel = \"info\"\n", "my.toml");
  ASSERT_FALSE(c);
  const auto& m = c.error().message;
  EXPECT_NE(m.find("my.toml:3: api.listn: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("my.toml:5: lgo: unknown key"), std::string::npos) << m;
}

TEST(Config, WrongTypesAndValuesSayWhatIsExpected) {
  auto c = parse_config("[api]\nlisten = 9464\n[log]\nlevel = \"loud\"\n", "t.toml");
  ASSERT_FALSE(c);
  const auto& m = c.error().message;
  EXPECT_NE(m.find("t.toml:2: api.listen: expected an address such as \"127.0.0.1:9464\", got an integer"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.toml:4: log.level: \"loud\" is not a level"), std::string::npos) << m;
}

TEST(Config, BadListenAddress) {
  auto c = parse_config("[api]\nlisten = \"localhost\"\n", "t.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(
      c.error().message.find("t.toml:2: api.listen: listen address \"localhost\" is invalid: the port is missing"),
      std::string::npos)
      << c.error().message;
}

TEST(Config, SyntaxErrorsCarryLineAndColumn) {
  auto c = parse_config("[api\nlisten = 1\n", "broken.toml");
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(Errc::config_invalid));
  EXPECT_NE(c.error().message.find("broken.toml:1:"), std::string::npos) << c.error().message;
}

TEST(Config, MissingFileSaysWhatToDo) {
  auto c = load_config_file("/nonexistent/nicsyncd.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("cannot open config file"), std::string::npos);
  EXPECT_NE(c.error().message.find("--config"), std::string::npos);
}

}  // namespace
}  // namespace nicsync::app
