// ClearTax's answers read as data (the token grant, error details, valid_till) and as errors.
// How a store answer maps to an error (reference/gst-domain.md §1.5, §3.6; the engine acts on
// the class of each code, see core/error.cpp):
//
// | answer                                             | Errc                      | class               |
// |----------------------------------------------------|---------------------------|---------------------|
// | HTTP 200 and "success": true                       | (success)                 |                     |
// | HTTP 401, or code 105 with any status              | dest_unauthorized         | auth: refresh once, |
// |                                                    |                           | retry once          |
// | HTTP 429                                           | dest_rate_limited         | transient           |
// | HTTP 5xx, or ClearTax code 301/302                 | dest_unavailable          | transient           |
// | NIC 1008/1017/1019/3000/3002                       | dest_credential_rejected  | credential_rejected |
// | NIC 1015                                           | dest_gstin_not_linked     | permanent           |
// | NIC 1018                                           | dest_wrong_gsp            | permanent           |
// | NIC 1014/3029/3033-3036                            | dest_gstin_inactive       | permanent           |
// | ClearTax 502                                       | dest_no_access            | permanent           |
// | "success": false with another code or none         | dest_unknown_code         | transient (engine   |
// |                                                    |                           | parks after 3)      |
// | other 4xx / 3xx without a known code               | dest_rejected             | permanent           |
// | HTTP 200 whose body is not {"success": bool, ...},  | dest_bad_response         | transient           |
// | or another 2xx                                     |                           |                     |
//
// Codes are read from `errorDetails` (also `error_details`, `ErrorDetails`, `errors`), an array
// of objects or one object, with `error_code` (also `errorCode`, `ErrorCode`, `code`) as a
// string or a number: the body's shape is not documented (gst-domain.md §1.3 [U]).
#include "destinations/cleartax_wire.hpp"

#include <algorithm>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "destinations/text.hpp"
#include "nicsync/core/text.hpp"
#include "nicsync/core/timestamp.hpp"
#include "nicsync/destinations/cleartax.hpp"

namespace nicsync::destinations {
namespace json = boost::json;
using std::chrono::system_clock;

namespace {

struct Detail {
  std::string code;
  std::string message;
  std::string source;
};

const json::value* find_any(const json::object& o, std::initializer_list<std::string_view> keys) {
  for (auto k : keys) {
    if (const auto* v = o.if_contains(k); v != nullptr && !v->is_null()) return v;
  }
  return nullptr;
}

std::string scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  return {};
}

// Only spaces and control bytes: nothing an operator could read once cleaned.
bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

void collect_detail(const json::value& v, std::vector<Detail>& out) {
  if (!v.is_object()) return;
  const auto& o = v.as_object();
  Detail d;
  if (const auto* c = find_any(o, {"error_code", "errorCode", "ErrorCode", "code"})) d.code = scalar_text(*c);
  if (const auto* m = find_any(o, {"error_message", "errorMessage", "ErrorMessage", "message"})) {
    d.message = scalar_text(*m);
  }
  if (const auto* s = find_any(o, {"error_source", "errorSource", "ErrorSource", "source"})) {
    d.source = scalar_text(*s);
  }
  if (blank(d.code)) d.code.clear();
  if (blank(d.message)) d.message.clear();
  if (!d.code.empty() || !d.message.empty()) out.push_back(std::move(d));
}

std::vector<Detail> collect_details(const json::object& body) {
  std::vector<Detail> out;
  const auto* details = find_any(body, {"errorDetails", "error_details", "ErrorDetails", "errors"});
  if (details == nullptr) return out;
  if (details->is_array()) {
    for (const auto& e : details->as_array()) collect_detail(e, out);
  } else {
    collect_detail(*details, out);
  }
  return out;
}

bool nic_source(const Detail& d) {
  std::string s = d.source;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s.find("NIC") != std::string::npos || s.find("GOVT") != std::string::npos ||
      s.find("GSTN") != std::string::npos || s.find("IRP") != std::string::npos) {
    return true;
  }
  // Without a source, NIC's codes are the four-digit ones.
  return s.empty() && d.code.size() == 4;
}

std::string provider_code_of(const Detail& d) { return (nic_source(d) ? "NIC:" : "CT:") + d.code; }

// The meaning of a known code; nullopt for codes nicsync does not know.
std::optional<Errc> code_meaning(std::string_view code) {
  static constexpr std::pair<std::string_view, Errc> kCodes[] = {
      {"1008", Errc::dest_credential_rejected}, {"1017", Errc::dest_credential_rejected},
      {"1019", Errc::dest_credential_rejected}, {"3000", Errc::dest_credential_rejected},
      {"3002", Errc::dest_credential_rejected}, {"1015", Errc::dest_gstin_not_linked},
      {"1018", Errc::dest_wrong_gsp},           {"1014", Errc::dest_gstin_inactive},
      {"3029", Errc::dest_gstin_inactive},      {"3033", Errc::dest_gstin_inactive},
      {"3034", Errc::dest_gstin_inactive},      {"3035", Errc::dest_gstin_inactive},
      {"3036", Errc::dest_gstin_inactive},      {"502", Errc::dest_no_access},
      {"105", Errc::dest_unauthorized},         {"301", Errc::dest_unavailable},
      {"302", Errc::dest_unavailable},
  };
  for (auto [c, e] : kCodes) {
    if (c == code) return e;
  }
  return std::nullopt;
}

// When several details come back, the one that matters most decides: a credential NIC refused
// must never be retried, whatever else the answer says.
int severity(Errc e) {
  switch (e) {
    case Errc::dest_credential_rejected: return 5;
    case Errc::dest_wrong_gsp:
    case Errc::dest_gstin_not_linked:
    case Errc::dest_gstin_inactive:
    case Errc::dest_no_access: return 4;
    case Errc::dest_unauthorized: return 3;
    case Errc::dest_unavailable: return 2;
    default: return 1;
  }
}

std::string what_to_do(Errc e, std::string_view gstin) {
  switch (e) {
    case Errc::dest_credential_rejected:
      return fmt::format(
          "NIC rejected the API username/password for GSTIN {}; this version will not be pushed again: set the "
          "password that is valid on the e-invoice portal in Vault (the new version is pushed automatically)",
          gstin);
    case Errc::dest_gstin_not_linked:
      return fmt::format(
          "the NIC API user is not linked to GSTIN {}: check that the username stored in Vault was created for "
          "this GSTIN, or correct the mapping",
          gstin);
    case Errc::dest_wrong_gsp:
      return fmt::format(
          "the NIC API user for GSTIN {} is registered for another GSP, not ClearTax: create an API user "
          "\"through GSP\" for DEFMACRO SOFTWARE PRIVATE LIMITED on the e-invoice portal and store it in Vault",
          gstin);
    case Errc::dest_gstin_inactive:
      return fmt::format(
          "GSTIN {} is inactive, cancelled, suspended or frozen at NIC, or not enabled for e-invoicing: resolve "
          "it on the GST / e-invoice portal, then retry the delivery",
          gstin);
    case Errc::dest_no_access:
      return fmt::format(
          "the ClearTax account behind this destination has no access to GSTIN {}: add the GSTIN to the "
          "workspace, or give the API client / auth token access to it, then retry the delivery",
          gstin);
    case Errc::dest_unauthorized:
      return "ClearTax rejected the access token; it is refreshed automatically, and if this persists check the "
             "client secret or auth token of this destination in Vault";
    case Errc::dest_unavailable: return "ClearTax or NIC is temporarily unable to process it; retrying with backoff";
    default: return {};
  }
}

Error make_error(Errc e, std::string message, const http::Response& r, std::string provider_code = {}) {
  Error err(e, std::move(message));
  err.http_status = r.status;
  err.retry_after = r.retry_after();
  err.provider_code = std::move(provider_code);
  return err;
}

std::string quoted(const Detail& d, const std::vector<std::string_view>& scrub) {
  if (d.message.empty()) return {};
  return fmt::format(" \"{}\"", detail::provider_text(d.message, scrub));
}

}  // namespace

Result<void> interpret_store_response(const http::Response& r, std::string_view gstin, std::string_view what,
                                      std::initializer_list<std::string_view> secrets) {
  const std::vector<std::string_view> scrub(secrets);
  boost::system::error_code ec;
  json::value parsed = r.body.empty() ? json::value() : json::parse(r.body, ec);
  const json::object* body = (!ec && parsed.is_object()) ? &parsed.as_object() : nullptr;
  std::vector<Detail> details = body ? collect_details(*body) : std::vector<Detail>{};
  // Codes reach messages, the ledger and metrics labels like provider text does: cleaned,
  // short and without secrets, whatever the answer echoes.
  for (auto& d : details) d.code = detail::provider_text(d.code, scrub, 32);

  // The known code that matters most, else the first code.
  const Detail* known = nullptr;
  std::optional<Errc> known_errc;
  for (const auto& d : details) {
    auto m = code_meaning(d.code);
    if (m && (!known_errc || severity(*m) > severity(*known_errc))) {
      known = &d;
      known_errc = m;
    }
  }
  const Detail* first = details.empty() ? nullptr : &details.front();
  auto from_known = [&](std::string_view status_text) {
    const std::string code = provider_code_of(*known);
    return make_error(*known_errc,
                      fmt::format("ClearTax refused {} ({}, {}{}): {}", what, status_text, code, quoted(*known, scrub),
                                  what_to_do(*known_errc, gstin)),
                      r, code);
  };
  const std::string status_text = fmt::format("HTTP {}", r.status);

  if (r.status == 401) {
    return make_error(Errc::dest_unauthorized,
                      fmt::format("ClearTax refused {} ({}{}): {}", what, status_text,
                                  first ? ", " + provider_code_of(*first) + quoted(*first, scrub) : std::string(),
                                  what_to_do(Errc::dest_unauthorized, gstin)),
                      r, first ? provider_code_of(*first) : std::string());
  }
  if (r.status == 429) {
    return make_error(Errc::dest_rate_limited,
                      fmt::format("ClearTax rate-limited {} (HTTP 429): retrying after the delay it asks for", what),
                      r);
  }
  if (r.status >= 500) {
    return make_error(
        Errc::dest_unavailable,
        fmt::format("ClearTax answered HTTP {} for {}: {}", r.status, what, what_to_do(Errc::dest_unavailable, gstin)),
        r);
  }
  if (r.status == 200) {
    if (body == nullptr) {
      return make_error(Errc::dest_bad_response,
                        fmt::format("ClearTax answered {} with HTTP 200 but not with a JSON object (\"{}\"); "
                                    "retrying, report it if it persists",
                                    what, detail::provider_text(r.body, scrub, 80)),
                        r);
    }
    const auto* success = body->if_contains("success");
    if (success == nullptr || !success->is_bool()) {
      return make_error(Errc::dest_bad_response,
                        fmt::format("ClearTax answered {} with HTTP 200 but without a boolean \"success\" (\"{}\"); "
                                    "retrying, report it if it persists",
                                    what, detail::provider_text(r.body, scrub, 80)),
                        r);
    }
    if (success->as_bool()) return {};
    if (known) return from_known("HTTP 200, success false");
    const std::string code = first ? provider_code_of(*first) : std::string("CT:unspecified");
    return make_error(Errc::dest_unknown_code,
                      fmt::format("ClearTax refused {} with code {}{} that nicsync does not know: retried a few "
                                  "times, then parked; look the code up in ClearTax's error list",
                                  what, code, first ? quoted(*first, scrub) : std::string()),
                      r, code);
  }
  if (known) return from_known(status_text);
  if (r.status >= 300 && r.status < 400) {
    return make_error(Errc::dest_rejected,
                      fmt::format("ClearTax answered {} to {} (Location: {}): set base_url to the address it "
                                  "points to",
                                  status_text, what, redact_url(r.header("Location").value_or("none"))),
                      r);
  }
  if (r.status >= 400) {
    const std::string code = first ? provider_code_of(*first) : std::string();
    return make_error(
        Errc::dest_rejected,
        fmt::format("ClearTax rejected the request for {} ({}{}{}): the request does not fit the API; "
                    "check base_url and report it if it persists",
                    what, status_text, code.empty() ? "" : ", " + code, first ? quoted(*first, scrub) : std::string()),
        r, code);
  }
  return make_error(
      Errc::dest_bad_response,
      fmt::format("ClearTax answered {} to {} instead of HTTP 200 with \"success\": true", status_text, what), r);
}

namespace detail {

std::optional<TokenGrant> parse_token_grant(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.as_object();
  const auto* t = o.if_contains("access_token");
  if (t == nullptr || !t->is_string() || t->as_string().empty()) return std::nullopt;
  TokenGrant grant;
  auto& s = t->as_string();
  grant.access_token = Secret(std::string_view(s.data(), s.size()));
  secure_wipe(const_cast<char*>(s.data()), s.size());
  if (const auto* vt = o.if_contains("valid_till"); vt != nullptr && vt->is_string()) {
    grant.valid_till = parse_valid_till(vt->as_string());
    if (!grant.valid_till) return std::nullopt;  // an unreadable expiry: do not guess
  }
  return grant;
}

std::optional<ProviderDetail> first_error_detail(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  std::vector<Detail> details = collect_details(v.as_object());
  if (details.empty()) return std::nullopt;
  return ProviderDetail{provider_text(details.front().code, {}, 32), std::move(details.front().message)};
}

}  // namespace detail

std::optional<system_clock::time_point> parse_valid_till(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2), se = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !se || *h > 23 || *mi > 59 || *se > 60) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*mo)},
                                  std::chrono::day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  // A time_point holds years 1678-2261 only. A far-future expiry ("9999-12-31") means "does not
  // expire" in practice; refusing it would make every token request fail and spend the quota.
  using std::chrono::sys_days;
  if (*y > kMaxTimestampYear) return sys_days(std::chrono::year{kMaxTimestampYear} / std::chrono::December / 31);
  if (*y < kMinTimestampYear) return sys_days(std::chrono::year{kMinTimestampYear} / std::chrono::January / 1);
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;  // sub-second part is dropped
  }
  std::chrono::minutes offset{0};
  if (pos == s.size()) {
    // No zone: ClearTax documents +00:00; take UTC.
  } else if (s[pos] == 'Z' && pos + 1 == s.size()) {
  } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
    auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om) return std::nullopt;
    offset = std::chrono::hours(*oh) + std::chrono::minutes(*om);
    if (s[pos] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  return std::chrono::sys_days(ymd) + std::chrono::hours(*h) + std::chrono::minutes(*mi) + std::chrono::seconds(*se) -
         offset;
}

}  // namespace nicsync::destinations
