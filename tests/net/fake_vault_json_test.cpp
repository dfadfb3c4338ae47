// The test Vault's Go-compatible JSON writer and parser, and the Go text formats of times and
// durations: the bytes Vault's encoding/json and time packages produce.
#include <gtest/gtest.h>

#include "go_json.hpp"

namespace nicsync::fakes {
namespace {

using namespace std::chrono_literals;

std::string go_quoted(std::string_view s) {
  std::string out;
  go_quote_json(s, out);
  return out;
}

TEST(GoJson, EscapesLikeGoEncoder) {
  EXPECT_EQ(go_quoted("p&<>x"), R"("p\u0026\u003c\u003ex")");
  EXPECT_EQ(go_quoted("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(go_quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(go_quoted(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(go_quoted("\x7f"), "\"\x7f\"");                                          // DEL is not escaped
  EXPECT_EQ(go_quoted("caf\xC3\xA9 \xE2\x82\xB9"), "\"caf\xC3\xA9 \xE2\x82\xB9\"");  // UTF-8 kept as is
  EXPECT_EQ(go_quoted("\xE2\x80\xA8\xE2\x80\xA9"), R"("\u2028\u2029")");
  EXPECT_EQ(go_quoted("a\xFF"
                      "b\xC3"),
            R"("a\ufffdb\ufffd")");                                 // invalid UTF-8
  EXPECT_EQ(go_quoted("\xED\xA0\x80"), R"("\ufffd\ufffd\ufffd")");  // a surrogate is invalid, byte by byte
}

TEST(GoJson, StructsKeepOrderMapsAreSorted) {
  GoValue s = GoValue::object();
  s.set("zeta", GoValue::number(1)).set("alpha", GoValue::boolean(false)).set("mid", GoValue());
  EXPECT_EQ(s.dump(), R"({"zeta":1,"alpha":false,"mid":null})");
  GoValue m = GoValue::map();
  m.set("zeta", GoValue::number(1)).set("Alpha", GoValue::string("x")).set("alpha", GoValue::string("y"));
  m.set("10", GoValue::string("ten")).set("9", GoValue::string("nine"));
  EXPECT_EQ(m.dump(), R"({"10":"ten","9":"nine","Alpha":"x","alpha":"y","zeta":1})");
  m.set("zeta", GoValue::number(2));  // replacing keeps one entry
  EXPECT_EQ(m.members().size(), 5u);
  EXPECT_EQ(GoValue::array().dump(), "[]");
  EXPECT_EQ(GoValue::string_array({"a", "b"}).dump(), R"(["a","b"])");
}

TEST(GoJson, ParsesWithUseNumberAndReencodesSorted) {
  auto v = parse_go_json(R"( {"b": 1.50, "a": [1e3, -0, true, null], "c": {"z":"\u00e9\ud83d\ude00", "y": "\/"}} )");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->dump(), "{\"a\":[1e3,-0,true,null],\"b\":1.50,\"c\":{\"y\":\"/\",\"z\":\"\xC3\xA9\xF0\x9F\x98\x80\"}}");
  auto dup = parse_go_json(R"({"a":1,"a":2})");
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->dump(), R"({"a":2})");
  auto trailing = parse_go_json(R"({"a":1} garbage)");  // Decoder.Decode reads one value
  ASSERT_TRUE(trailing);
  auto lone = parse_go_json(R"(["\ud800x"])");
  ASSERT_TRUE(lone);
  EXPECT_EQ(lone->dump(), "[\"\xEF\xBF\xBDx\"]");
  EXPECT_EQ(parse_go_json("12")->as_int(), 12);
  EXPECT_FALSE(parse_go_json("1.0")->as_int());
}

TEST(GoJson, ParseErrorsUseGoMessages) {
  auto msg = [](std::string_view s) {
    auto v = parse_go_json(s);
    return v ? std::string("<ok>") : v.error().message;
  };
  EXPECT_EQ(msg(""), "EOF");
  EXPECT_EQ(msg("   "), "EOF");
  EXPECT_EQ(msg("{"), "unexpected EOF");
  EXPECT_EQ(msg(R"({"a":)"), "unexpected EOF");
  EXPECT_EQ(msg("x"), "invalid character 'x' looking for beginning of value");
  EXPECT_EQ(msg("{a}"), "invalid character 'a' looking for beginning of object key string");
  EXPECT_EQ(msg(R"({"a" 1})"), "invalid character '1' after object key");
  EXPECT_EQ(msg(R"({"a":1 "b":2})"), "invalid character '\"' after object key:value pair");
  EXPECT_EQ(msg("[1 2]"), "invalid character '2' after array element");
  EXPECT_EQ(msg("[01]"), "invalid character '1' after array element");
  EXPECT_EQ(msg("[-x]"), "invalid character 'x' in numeric literal");
  EXPECT_EQ(msg("[tru]"), "invalid character ']' in literal true (expecting 'e')");
  EXPECT_EQ(msg("\"a\nb\""), "invalid character '\\n' in string literal");
  EXPECT_EQ(msg(R"("\q")"), "invalid character 'q' in string escape code");
  EXPECT_EQ(msg(R"("\u12x4")"), "invalid character 'x' in \\u hexadecimal character escape");
  EXPECT_EQ(msg("{'a':1}"), "invalid character '\\'' looking for beginning of object key string");
}

TEST(GoJson, TimesAreRfc3339NanoTrimmed) {
  using namespace std::chrono;
  const sys_days day = year{2025} / 3 / 4;
  EXPECT_EQ(go_rfc3339_nano(day + 10h + 11min + 12s + 345678901ns), "2025-03-04T10:11:12.345678901Z");
  EXPECT_EQ(go_rfc3339_nano(day + 10h + 11min + 12s + 500ms), "2025-03-04T10:11:12.5Z");
  EXPECT_EQ(go_rfc3339_nano(day + 10h + 11min + 12s + 123000ns), "2025-03-04T10:11:12.000123Z");
  EXPECT_EQ(go_rfc3339_nano(day), "2025-03-04T00:00:00Z");
  EXPECT_EQ(http_date(sys_days{year{1994} / 11 / 6} + 8h + 49min + 37s), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(GoJson, DurationsPrintLikeGo) {
  EXPECT_EQ(go_duration(0s), "0s");
  EXPECT_EQ(go_duration(1h), "1h0m0s");
  EXPECT_EQ(go_duration(930s), "15m30s");
  EXPECT_EQ(go_duration(59s), "59s");
  EXPECT_EQ(go_duration(1500ms), "1.5s");
  EXPECT_EQ(go_duration(300ms), "300ms");
  EXPECT_EQ(go_duration(1500us), "1.5ms");
  EXPECT_EQ(go_duration(2us), "2\xC2\xB5s");
  EXPECT_EQ(go_duration(7ns), "7ns");
  EXPECT_EQ(go_duration(-90s), "-1m30s");
  EXPECT_EQ(go_duration(std::chrono::hours(768)), "768h0m0s");
}

TEST(GoJson, DurationSecondParsing) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(go_parse_duration_second("1h"), nanoseconds(1h));
  EXPECT_EQ(go_parse_duration_second("1h30m"), nanoseconds(90min));
  EXPECT_EQ(go_parse_duration_second("1.5h"), nanoseconds(90min));
  EXPECT_EQ(go_parse_duration_second("300ms"), nanoseconds(300ms));
  EXPECT_EQ(go_parse_duration_second("90"), nanoseconds(90s));
  EXPECT_EQ(go_parse_duration_second("2d"), nanoseconds(48h));
  EXPECT_EQ(go_parse_duration_second(""), nanoseconds(0));
  EXPECT_FALSE(go_parse_duration_second("1x"));
  EXPECT_FALSE(go_parse_duration_second("h"));
  EXPECT_FALSE(go_parse_duration_second("abc"));
  EXPECT_EQ(go_parse_bool("T"), true);
  EXPECT_EQ(go_parse_bool("0"), false);
  EXPECT_FALSE(go_parse_bool("yes"));
  EXPECT_FALSE(go_parse_bool(""));
  EXPECT_EQ(go_atoi("+42"), 42);
  EXPECT_FALSE(go_atoi("4x"));
}

TEST(GoJson, RandomIdsHaveTheRightShape) {
  const auto id = random_uuid();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(id, random_uuid());
  EXPECT_EQ(random_base62(24).size(), 24u);
}

}  // namespace
}  // namespace nicsync::fakes
