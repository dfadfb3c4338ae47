#include "nicsync/core/duration.hpp"

#include <gtest/gtest.h>

namespace nicsync {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesUnitsAndCombinations) {
  EXPECT_EQ(parse_duration("500ms").value(), milliseconds(500));
  EXPECT_EQ(parse_duration("30s").value(), milliseconds(30'000));
  EXPECT_EQ(parse_duration("5m").value(), milliseconds(300'000));
  EXPECT_EQ(parse_duration("2h").value(), milliseconds(7'200'000));
  EXPECT_EQ(parse_duration("1d").value(), milliseconds(86'400'000));
  EXPECT_EQ(parse_duration("1h30m").value(), milliseconds(5'400'000));
  EXPECT_EQ(parse_duration("0s").value(), milliseconds(0));
}

TEST(Duration, RejectsWithAHint) {
  for (const char* bad : {"", "30", "s", "5 m", "-1s", "1.5s", "10y", "1h 30m"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().is(Errc::invalid_duration));
    EXPECT_NE(r.error().message.find("\"30s\""), std::string::npos) << r.error().message;
  }
  EXPECT_NE(parse_duration("30").error().message.find("unit is missing"), std::string::npos);
  EXPECT_FALSE(parse_duration("99999999999999999999s"));
}

TEST(Duration, FormatsShortest) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1s500ms");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(86'400'000 + 3'600'000)), "1d1h");
  for (const char* s : {"1h30m", "250ms", "2d", "45s"}) EXPECT_EQ(format_duration(parse_duration(s).value()), s);
}

}  // namespace
}  // namespace nicsync
