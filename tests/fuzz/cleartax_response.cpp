// Fuzz target: ClearTax's answers as the destination reads them: `store_nic_credentials`
// answers for every status (interpret_store_response: success or a classified error), the token
// endpoint's body (detail::parse_token_grant) and error details, and `valid_till`. Messages and
// provider codes quote ClearTax's text only cleaned, bounded and with the password and token
// removed, whatever the answer echoes back.
#include <fmt/chrono.h>

#include "destinations/cleartax_wire.hpp"
#include "fuzz/fuzz_target.hpp"
#include "fuzz/text_checks.hpp"
#include "nicsync/destinations/cleartax.hpp"

namespace {

using namespace nicsync;

// The password pushed and the access token used; seeds echo them in every field.
constexpr std::string_view kPassword = "Pl4nted Pass#1";
constexpr std::string_view kToken = "tok-Pl4nted-0123";

void check_error(const Error& e) {
  NICSYNC_FUZZ_CHECK(cleartax_response, !e.message.empty() && fuzz::clean_text(e.message));
  NICSYNC_FUZZ_CHECK(cleartax_response, fuzz::clean_text(e.provider_code, 64));
  for (std::string_view text : {std::string_view(e.message), std::string_view(e.provider_code)}) {
    NICSYNC_FUZZ_CHECK(cleartax_response, !fuzz::contains(text, kPassword) && !fuzz::contains(text, kToken));
  }
}

}  // namespace

NICSYNC_FUZZ_TARGET(cleartax_response) {
  const std::string_view body = fuzz::as_text(data, size);
  http::Response r;
  r.body = std::string(body);
  r.headers = {{"Content-Type", "application/json"}, {"Location", "https://api.clear.in/elsewhere?token=x"}};
  for (int status : {200, 201, 204, 302, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503}) {
    r.status = status;
    auto result = destinations::interpret_store_response(r, "07AAFCD5862R1ZX", "the credentials of 07AAFCD5862R1ZX",
                                                         {kPassword, kToken});
    if (result) {
      NICSYNC_FUZZ_CHECK(cleartax_response, status == 200);
      continue;
    }
    check_error(result.error());
    NICSYNC_FUZZ_CHECK(cleartax_response, result.error().http_status == status);
  }

  if (auto grant = destinations::detail::parse_token_grant(body)) {
    NICSYNC_FUZZ_CHECK(cleartax_response, !grant->access_token.empty());
  }
  if (auto d = destinations::detail::first_error_detail(body)) {
    NICSYNC_FUZZ_CHECK(cleartax_response, !d->code.empty() || !d->message.empty());
  }
  if (size <= 64) {
    if (auto t = destinations::parse_valid_till(body)) {
      // As the destination logs it.
      const auto text = fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(*t));
      NICSYNC_FUZZ_CHECK(cleartax_response, text.size() >= 20);
    }
  }
  return 0;
}
