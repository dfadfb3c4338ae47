// core/text: hex, JSON string escaping (never reallocating a reserved buffer) and URLs redacted
// for messages.
#include "nicsync/core/text.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace nicsync {
namespace {

TEST(Text, HexIsLowerCaseTwoDigitsAByte) {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff, 0x7e};
  EXPECT_EQ(to_hex(bytes, sizeof bytes), "000fa0ff7e");
  EXPECT_EQ(to_hex(bytes, 0), "");
}

TEST(Text, JsonEscapingFitsTheReservedSize) {
  std::string out;
  const std::string_view in = "a\"b\\c\n\t\x01\x1f ü";
  out.reserve(json_escaped_size(in));
  const auto capacity = out.capacity();
  append_json_escaped(out, in);
  EXPECT_EQ(out, "a\\\"b\\\\c\\n\\t\\u0001\\u001f ü");
  EXPECT_EQ(out.size(), json_escaped_size(in));
  EXPECT_EQ(out.capacity(), capacity);  // never reallocated
}

TEST(Text, JsonStringIsQuotedAndReadsBack) {
  const std::string_view in = "a\"b\\c\n\x01\b\f\r\tü&<>";
  std::string out;
  append_json_string(out, in);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\\b\\f\\r\\tü&<>\"");
  EXPECT_EQ(out.size(), json_escaped_size(in) + 2);
  EXPECT_EQ(std::string_view(boost::json::parse(out).as_string()), in);
}

TEST(Text, RedactedUrlKeepsSchemeHostPortAndPath) {
  EXPECT_EQ(redact_url("https://user:pw@host:1/p?q=1#f"), "https://host:1/p");
  EXPECT_EQ(redact_url("https://host/a@b?token=x"), "https://host/a@b");
  EXPECT_EQ(redact_url("https://host#frag"), "https://host");
  // A password with a bare '@' goes as a whole, not just up to its first '@'.
  EXPECT_EQ(redact_url("https://user:p@ss@host/p"), "https://host/p");
  EXPECT_EQ(redact_url("not a url?x"), "not a url");
}

}  // namespace
}  // namespace nicsync
