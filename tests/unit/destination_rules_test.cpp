// Pure rules of the destinations: ClearTax answer shapes and codes, valid_till parsing and the
// quoting of provider text.
#include <gtest/gtest.h>

#include "destinations/text.hpp"
#include "nicsync/destinations/cleartax.hpp"

namespace nicsync::destinations {
namespace {

using namespace std::chrono_literals;

http::Response answer(int status, std::string body, std::vector<http::Header> headers = {}) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

Error fails(const http::Response& r) {
  auto out = interpret_store_response(r, "07AAFCD5862R1ZX", "GSTIN 07AAFCD5862R1ZX");
  EXPECT_FALSE(out) << r.body;
  return out ? Error() : out.error();
}

TEST(ClearTaxAnswers, SuccessOnlyOn200WithSuccessTrue) {
  EXPECT_TRUE(interpret_store_response(answer(200, R"({"success": true, "errorDetails": null})"), "g", "w"));
  EXPECT_TRUE(interpret_store_response(answer(200, R"({"success":true})"), "g", "w"));
  EXPECT_TRUE(fails(answer(200, R"({"success":"true"})")).is(Errc::dest_bad_response));
  EXPECT_TRUE(fails(answer(200, "")).is(Errc::dest_bad_response));
  EXPECT_TRUE(fails(answer(200, "[true]")).is(Errc::dest_bad_response));
  EXPECT_TRUE(fails(answer(202, R"({"success":true})")).is(Errc::dest_bad_response));
  EXPECT_TRUE(fails(answer(204, "")).is(Errc::dest_bad_response));
}

TEST(ClearTaxAnswers, ErrorDetailShapesAreAllRead) {
  const std::vector<std::string> bodies = {
      R"({"success":false,"errorDetails":[{"error_code":"1019","error_message":"Incorrect Password"}]})",
      R"({"success":false,"errorDetails":{"errorCode":"1019","errorMessage":"Incorrect Password"}})",
      R"({"success":false,"errorDetails":[{"ErrorCode":1019,"ErrorMessage":"Incorrect Password"}]})",
      R"({"success":false,"error_details":[{"code":"1019"}]})",
      R"({"success":false,"errors":[{"error_code":"1019","error_source":"NIC"}]})",
  };
  for (const auto& b : bodies) {
    auto e = fails(answer(200, b));
    EXPECT_TRUE(e.is(Errc::dest_credential_rejected)) << b << " -> " << e.describe();
    EXPECT_EQ(e.provider_code, "NIC:1019") << b;
    EXPECT_EQ(e.error_class(), ErrorClass::credential_rejected);
  }
}

TEST(ClearTaxAnswers, TheWeightiestKnownCodeDecides) {
  // A refused credential must never be retried, whatever else comes with it.
  auto e = fails(answer(200, R"({"success":false,"errorDetails":[{"error_code":"302"},{"error_code":"1017"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_credential_rejected));
  e = fails(answer(200, R"({"success":false,"errorDetails":[{"error_code":"7777"},{"error_code":"1015"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_gstin_not_linked));
  EXPECT_EQ(e.provider_code, "NIC:1015");
  e = fails(answer(200, R"({"success":false,"errorDetails":[{"error_code":"7777","error_source":"CLEARTAX"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_unknown_code));
  EXPECT_EQ(e.provider_code, "CT:7777");
  e = fails(answer(200, R"({"success":false,"errorDetails":[{"error_code":"2150"}]})"));
  EXPECT_EQ(e.provider_code, "NIC:2150");  // four digits and no source: NIC's numbering
}

TEST(ClearTaxAnswers, StatusesFirst) {
  auto e = fails(answer(401, ""));
  EXPECT_TRUE(e.is(Errc::dest_unauthorized));
  EXPECT_EQ(e.http_status, 401);
  e = fails(answer(429, "", {{"Retry-After", "30"}}));
  EXPECT_TRUE(e.is(Errc::dest_rate_limited));
  EXPECT_EQ(e.retry_after, 30s);
  // A 5xx is transient even if its body names a credential code.
  e = fails(answer(503, R"({"success":false,"errorDetails":[{"error_code":"1019"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_unavailable));
  e = fails(answer(403, R"({"success":false,"errorDetails":[{"error_code":"502"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_no_access));
  e = fails(answer(400, R"({"success":false,"errorDetails":[{"error_code":"1018"}]})"));
  EXPECT_TRUE(e.is(Errc::dest_wrong_gsp));
  e = fails(answer(302, "", {{"Location", "https://api.clear.in/x?token=abc"}}));
  EXPECT_TRUE(e.is(Errc::dest_rejected));
  EXPECT_NE(e.message.find("https://api.clear.in/x"), std::string::npos);
  EXPECT_EQ(e.message.find("token=abc"), std::string::npos);
  e = fails(answer(200, R"({"success":false,"errorDetails":[{"error_code":105}]})"));
  EXPECT_TRUE(e.is(Errc::dest_unauthorized));
  EXPECT_EQ(e.error_class(), ErrorClass::auth);
}

TEST(ClearTaxAnswers, ProviderTextIsScrubbed) {
  auto r = interpret_store_response(
      answer(200, R"({"success":false,"errorDetails":[{"error_code":"1019","error_message":"bad s3cr3t!"}]})"), "g",
      "w", {"s3cr3t!"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("s3cr3t!"), std::string::npos);
  EXPECT_NE(r.error().message.find("\"bad ***\""), std::string::npos) << r.error().message;
}

TEST(ValidTill, Formats) {
  using std::chrono::sys_days;
  using std::chrono::year;
  const auto base = sys_days{year{2026} / 3 / 14} + 15h + 26min + 53s;
  EXPECT_EQ(parse_valid_till("2026-03-14T15:26:53+00:00"), base);
  EXPECT_EQ(parse_valid_till("2026-03-14T15:26:53Z"), base);
  EXPECT_EQ(parse_valid_till("2026-03-14T15:26:53.123456Z"), base);
  EXPECT_EQ(parse_valid_till("2026-03-14T20:56:53+05:30"), base);
  EXPECT_EQ(parse_valid_till("2026-03-14T10:26:53-05:00"), base);
  EXPECT_EQ(parse_valid_till("2026-03-14 15:26:53"), base);
  for (std::string_view bad : {"", "2026-03-14", "2026-02-30T00:00:00Z", "2026-03-14T25:00:00Z",
                               "2026-03-14T15:26:53+0530", "2026-03-14T15:26:53 +00:00", "tomorrow"}) {
    EXPECT_FALSE(parse_valid_till(bad)) << bad;
  }
}

TEST(Text, ProviderTextScrubsFlattensAndCuts) {
  EXPECT_EQ(detail::provider_text("pw=abc and abc again", {"abc"}), "pw=*** and *** again");
  EXPECT_EQ(detail::provider_text("<html>\r\n  <b>x</b>\n</html>\n", {}), "<html> <b>x</b> </html>");
  EXPECT_EQ(detail::provider_text("xyz", {""}), "xyz");
  auto cut = detail::provider_text(std::string(300, 'a'), {}, 10);
  EXPECT_EQ(cut, "aaaaaaaaaa...");
  EXPECT_EQ(detail::provider_text("ééééé", {}, 3), "é...");  // never half a UTF-8 character
}

}  // namespace
}  // namespace nicsync::destinations
