#include "nicsync/core/gstin.hpp"

#include <random>

#include <gtest/gtest.h>

namespace nicsync {
namespace {

struct Example {
  const char* gstin;
  bool valid_strict;
  const char* expect_in_error;  // substring of the error, if invalid
};

// Every example of reference/gst-domain.md §5.3 with its stated result.
const Example kExamples[] = {
    {"27AAPFU0939F1ZV", true, ""},
    {"07AAFCD5862R1ZX", true, ""},
    {"29ABCDE1234F1ZW", true, ""},
    {"07AAACR5055K1Z9", true, ""},
    {"33AAACI1195H1ZT", true, ""},
    {"24AAACC1206D1ZM", true, ""},
    {"27AAPFU0939F1ZO", false, "position 15 (check character) is 'O', expected 'V'"},
    {"29AWGPV7107B1Z1", false, "expected 'F'"},
    {"07AAAAA0000A1Z8", false, "expected '4'"},
    {"29AAFCD5862R000", false, "position 13"},
    {"24AAFCD5862R005", false, "position 13"},
    {"37ARZPT4384Q1MT", false, "position 14"},
    {"29AABCT1332L000", false, "position 13"},
};

TEST(Gstin, ReferenceExamplesStrict) {
  for (const auto& ex : kExamples) {
    auto r = Gstin::parse(ex.gstin, GstinMode::strict);
    EXPECT_EQ(static_cast<bool>(r), ex.valid_strict) << ex.gstin;
    if (!r) {
      EXPECT_TRUE(r.error().is(Errc::invalid_gstin));
      EXPECT_NE(r.error().message.find(ex.expect_in_error), std::string::npos) << ex.gstin << ": " << r.error().message;
    }
  }
}

TEST(Gstin, SandboxAcceptsSandboxShapes) {
  for (const char* g : {"29AAFCD5862R000", "24AAFCD5862R005", "37ARZPT4384Q1MT", "29AABCT1332L000", "27AAPFU0939F1ZO",
                        "27AAPFU0939F1ZV"}) {
    EXPECT_TRUE(Gstin::parse(g, GstinMode::sandbox)) << g;
  }
  // ...but still checks length, state digits and the PAN shape.
  auto short_one = Gstin::parse("29AAFCD5862R00", GstinMode::sandbox);
  ASSERT_FALSE(short_one);
  EXPECT_NE(short_one.error().message.find("14 characters"), std::string::npos);
  auto bad_state = Gstin::parse("X9AAFCD5862R000", GstinMode::sandbox);
  ASSERT_FALSE(bad_state);
  EXPECT_NE(bad_state.error().message.find("position 1 (state code)"), std::string::npos);
  auto bad_pan = Gstin::parse("29AAFC05862R000", GstinMode::sandbox);
  ASSERT_FALSE(bad_pan);
  EXPECT_NE(bad_pan.error().message.find("position 7 (PAN) is '0', expected an upper-case letter"), std::string::npos);
}

TEST(Gstin, ErrorsNameThePosition) {
  auto r = Gstin::parse("27aapfu0939F1ZV");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("position 3 (PAN) is 'a', expected an upper-case letter"), std::string::npos)
      << r.error().message;
  auto state = Gstin::parse("42AAPFU0939F1ZV");
  ASSERT_FALSE(state);
  EXPECT_NE(state.error().message.find("\"42\" is not a GST state code"), std::string::npos);
  auto zero_entity = Gstin::parse("27AAPFU0939F0ZV");
  ASSERT_FALSE(zero_entity);
  EXPECT_NE(zero_entity.error().message.find("position 13 (entity number)"), std::string::npos);
  auto control = Gstin::parse(std::string("27AAPFU0939F1Z") + '\x01');
  ASSERT_FALSE(control);
  EXPECT_NE(control.error().message.find("byte 0x01"), std::string::npos);
  auto long_input = Gstin::parse(std::string(1000, 'A'));
  ASSERT_FALSE(long_input);
  EXPECT_LT(long_input.error().message.size(), 120u) << "hostile input must not be echoed in full";
}

TEST(Gstin, Accessors) {
  auto g = Gstin::parse("07AAFCD5862R1ZX").value();
  EXPECT_EQ(g.state_code(), "07");
  EXPECT_EQ(g.pan(), "AAFCD5862R");
  EXPECT_EQ(gstin_state_name(g.state_code()), "Delhi");
  EXPECT_EQ(fmt::format("{}", g), "07AAFCD5862R1ZX");
}

// Property: for random well-shaped bodies the generated check character always passes, and
// any single-character change anywhere always fails strict validation.
TEST(Gstin, PropertyGeneratedCheckPassesAndAnySingleChangeFails) {
  std::mt19937 rng(20261125);
  const std::string alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const std::string letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const std::string digits = "0123456789";
  const std::string entity = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const char* states[] = {"01", "07", "09", "24", "27", "29", "33", "36", "37", "38", "97", "99"};
  auto pick = [&](const std::string& set) { return set[rng() % set.size()]; };
  for (int round = 0; round < 2000; ++round) {
    std::string g = states[rng() % std::size(states)];
    for (int i = 0; i < 5; ++i) g += pick(letters);
    for (int i = 0; i < 4; ++i) g += pick(digits);
    g += pick(letters);
    g += pick(entity);
    g += 'Z';
    g += gstin_check_char(g);
    ASSERT_TRUE(Gstin::parse(g)) << g;
    for (std::size_t pos = 0; pos < 15; ++pos) {
      for (char c : alnum) {
        if (c == g[pos]) continue;
        std::string changed = g;
        changed[pos] = c;
        ASSERT_FALSE(Gstin::parse(changed, GstinMode::strict)) << g << " -> " << changed;
      }
    }
  }
}

}  // namespace
}  // namespace nicsync
