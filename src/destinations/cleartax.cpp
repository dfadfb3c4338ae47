// ClearTax destination. How answers map to errors (reference/gst-domain.md §1.5, §3.6; the
// engine acts on the class of each code, see core/error.cpp):
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
#include "nicsync/destinations/cleartax.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include "destinations/cleartax_wire.hpp"
#include "destinations/single_flight.hpp"
#include "destinations/text.hpp"
#include "destinations/token_cache.hpp"
#include "nicsync/core/text.hpp"
#include "nicsync/core/timestamp.hpp"

namespace nicsync::destinations {
namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::system_clock;

namespace {

constexpr std::string_view kStorePath = "/einv/v2/nic_credentials/store_nic_credentials";
constexpr std::string_view kTokenPath = "/integration/v1/authz/token";

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

Result<void> ClearTaxConfig::validate() const {
  auto bad = [&](std::string_view field, std::string_view why) {
    return Error(Errc::config_invalid, fmt::format("destination \"{}\": {}: {}", name, field, why));
  };
  if (name.empty()) return Error(Errc::config_invalid, "a ClearTax destination needs a name");
  for (const auto* url : {&base_url, &token_base_url}) {
    if (url == &token_base_url && url->empty()) continue;
    const std::string_view field = url == &base_url ? "base_url" : "token_base_url";
    if (!url->starts_with("https://") && !url->starts_with("http://")) return bad(field, "must start with https://");
    if (url->starts_with("http://")) {
      // Plain HTTP would send NIC passwords and tokens in clear text: loopback only (tests).
      std::string_view rest = std::string_view(*url).substr(7);
      rest = rest.substr(0, rest.find('/'));
      const auto host = rest.starts_with("[") ? rest.substr(0, rest.find(']') + 1) : rest.substr(0, rest.find(':'));
      if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
        return bad(field, "must use https:// (plain http:// is only allowed to a loopback address)");
      }
    }
    if (url->find_first_of("?#") != std::string::npos) return bad(field, "must not have a query or fragment");
  }
  if (push_timeout.count() <= 0 || token_timeout.count() <= 0 || connect_timeout.count() <= 0) {
    return bad("timeouts", "must be positive");
  }
  if (token_calls_per_hour < 1) return bad("token_calls_per_hour", "must be at least 1");
  if (token_calls_per_day < 1) return bad("token_calls_per_day", "must be at least 1");
  if (token_refresh_margin.count() < 0) return bad("token_refresh_margin", "must not be negative");
  return {};
}

// --- the destination ---------------------------------------------------------------------------

namespace {

struct TokenRef {
  Secret value;
  std::uint64_t generation = 0;
};

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string sanitize(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out;
}

std::int64_t utc_day(system_clock::time_point t) {
  return std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
}

std::int64_t unix_seconds(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::chrono::milliseconds until_next_utc_day(system_clock::time_point now) {
  auto next = std::chrono::floor<std::chrono::days>(now) + std::chrono::days(1);
  return std::chrono::ceil<std::chrono::milliseconds>(next - now);
}

asio::awaitable<Result<void>> write_task(std::string path, std::string content) {
  auto r = detail::write_file_atomically(path, content);
  secure_wipe(content);
  co_return r;
}

// Runs the blocking write on the disk thread; resumes the caller on its own executor.
asio::awaitable<Result<void>> write_on(asio::thread_pool& pool, std::string path, std::string content) {
  return asio::co_spawn(pool, write_task(std::move(path), std::move(content)), asio::use_awaitable);
}

}  // namespace

struct ClearTaxDestination::Impl {
  Impl(asio::any_io_executor executor, http::Client& c, ClearTaxConfig cfg, SecretProvider p, const Clock& clk)
      : ex(std::move(executor)), client(c), config(std::move(cfg)), provider(std::move(p)), clock(clk), flight(ex) {
    base = trim_slash(config.base_url);
    store_url = base + std::string(kStorePath);
    token_url =
        trim_slash(config.token_base_url.empty() ? config.base_url : config.token_base_url) + std::string(kTokenPath);
    if (!config.state_dir.empty()) {
      cache_path = trim_slash(config.state_dir) + "/cleartax-" + sanitize(config.name) + ".token";
    }
  }

  ~Impl() {
    if (disk) disk->join();
  }

  asio::any_io_executor ex;
  http::Client& client;
  ClearTaxConfig config;
  SecretProvider provider;
  const Clock& clock;
  std::string base, store_url, token_url, cache_path;

  // The token shared by every delivery.
  Secret token;
  std::optional<system_clock::time_point> valid_till;
  std::optional<system_clock::time_point> obtained_at;
  std::uint64_t generation = 0;  // bumped on every new token; 0 = none yet
  detail::SingleFlight flight;

  // Token-call accounting (UTC day of the system clock), persisted with the token.
  std::int64_t day = -1;
  int calls_today = 0;
  std::deque<system_clock::time_point> recent_calls;
  bool cache_loaded = false;

  DestinationStats counters;
  std::unique_ptr<asio::thread_pool> disk;  // fsync never runs on the event loop

  [[nodiscard]] bool client_secret_mode() const noexcept { return config.auth == ClearTaxAuth::client_secret; }

  [[nodiscard]] bool token_usable(system_clock::time_point now) const {
    if (token.empty()) return false;
    if (!valid_till) return true;
    auto margin = std::chrono::duration_cast<system_clock::duration>(config.token_refresh_margin);
    if (obtained_at && *valid_till > *obtained_at) margin = std::min(margin, (*valid_till - *obtained_at) / 4);
    return now + margin < *valid_till;
  }

  void roll(system_clock::time_point now) {
    if (day != utc_day(now)) {
      day = utc_day(now);
      calls_today = 0;
    }
    while (!recent_calls.empty() && recent_calls.front() <= now - std::chrono::hours(1)) recent_calls.pop_front();
  }

  void load_cache() {
    if (cache_loaded) return;
    cache_loaded = true;
    if (cache_path.empty() || !client_secret_mode()) return;
    auto rec = detail::read_token_cache(cache_path);
    if (!rec) {
      spdlog::warn("destination={} ignoring the token cache: {}", config.name, rec.error().message);
      return;
    }
    if (!*rec) return;
    auto& r = **rec;
    if (r.token_url != token_url) {
      spdlog::info("destination={} token cache {} is for {}, not {}: ignored", config.name, cache_path,
                   redact_url(r.token_url), redact_url(token_url));
      return;
    }
    day = r.utc_day;
    calls_today = r.calls_today;
    for (auto s : r.recent_calls) recent_calls.emplace_back(std::chrono::seconds(s));
    std::sort(recent_calls.begin(), recent_calls.end());
    if (!r.access_token.empty()) {
      token = std::move(r.access_token);
      valid_till = r.valid_till;
      obtained_at = r.obtained_at;
      ++generation;
    }
    roll(clock.system_now());
    spdlog::info("destination={} token cache loaded: token={} valid_till={} calls_today={}", config.name,
                 token.empty() ? "none" : "cached",
                 valid_till ? fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(*valid_till))
                            : std::string("never"),
                 calls_today);
  }

  std::string cache_content() const {
    detail::TokenCacheRecord r;
    r.token_url = token_url;
    r.access_token = token;
    r.valid_till = valid_till;
    r.obtained_at = obtained_at;
    r.utc_day = day;
    r.calls_today = calls_today;
    for (auto t : recent_calls) r.recent_calls.push_back(unix_seconds(t));
    return detail::serialize_token_cache(r);
  }

  DestinationStats stats() const {
    DestinationStats s = counters;
    if (!client_secret_mode()) {
      s.token_cached = !token.empty();
      return s;
    }
    const auto now = clock.system_now();
    const int today = day == utc_day(now) ? calls_today : 0;
    s.token_requests_today = static_cast<std::uint64_t>(today);
    s.token_requests_left_today = std::max(0, config.token_calls_per_day - today);
    s.token_requests_last_hour = static_cast<std::uint64_t>(std::count_if(
        recent_calls.begin(), recent_calls.end(), [&](auto t) { return t > now - std::chrono::hours(1); }));
    s.token_requests_hourly_cap = config.token_calls_per_hour;
    s.token_cached = token_usable(now);
    if (s.token_cached) s.token_valid_till = valid_till;
    return s;
  }
};

namespace {

using ImplPtr = std::shared_ptr<ClearTaxDestination::Impl>;

asio::awaitable<void> persist(ImplPtr self) {
  if (self->cache_path.empty()) co_return;
  if (!self->disk) self->disk = std::make_unique<asio::thread_pool>(1);
  std::string path = self->cache_path;
  std::string content = self->cache_content();
  auto r = co_await write_on(*self->disk, std::move(path), std::move(content));
  if (!r) {
    spdlog::warn("destination={} cannot save the access token: {}; a restart will request a new one", self->config.name,
                 r.error().message);
  }
}

// Error of a token request, counted and explained.
Error token_error(const ClearTaxDestination::Impl& self, const http::Response& r) {
  std::string code, message;
  if (auto d = detail::first_error_detail(r.body)) {
    code = std::move(d->code);
    message = detail::provider_text(d->message, {});
  }
  const std::string said = code.empty() ? std::string() : fmt::format(", {} \"{}\"", code, message);
  Error e;
  if (r.status == 401) {
    e = Error(Errc::dest_unauthorized,
              fmt::format("destination {}: ClearTax refused the client secret (HTTP 401{}): put the current secret "
                          "of the Clear API client in Vault (a deleted or regenerated API client needs a new one)",
                          self.config.name, said));
  } else if (r.status == 429) {
    e = Error(Errc::dest_token_quota,
              fmt::format("destination {}: ClearTax refused a new access token (HTTP 429{}): the {} calls a day "
                          "are spent; pushes resume after 00:00 UTC",
                          self.config.name, said, self.config.token_calls_per_day));
  } else if (r.status >= 500) {
    e = Error(Errc::dest_unavailable,
              fmt::format("destination {}: the ClearTax token endpoint answered HTTP {}; retrying with backoff",
                          self.config.name, r.status));
  } else if (r.status == 200) {
    e = Error(Errc::dest_bad_response,
              fmt::format("destination {}: the ClearTax token endpoint answered HTTP 200 without an access_token "
                          "and a valid valid_till; retrying, report it if it persists",
                          self.config.name));
  } else {
    e = Error(Errc::dest_rejected,
              fmt::format("destination {}: ClearTax refused the token request (HTTP {}{}): check that the API "
                          "client may use the E-Invoicing product from this host's address",
                          self.config.name, r.status, said));
  }
  e.http_status = r.status;
  e.retry_after = r.retry_after();
  if (r.status == 429 && !e.retry_after) e.retry_after = until_next_utc_day(self.clock.system_now());
  if (!code.empty()) e.provider_code = "CT:" + code;
  return e;
}

// Gets a new token (client secret) or re-reads the static token. Runs single-flight.
asio::awaitable<Result<void>> refresh(ImplPtr self) {
  auto& cfg = self->config;
  if (!self->client_secret_mode()) {
    auto value = co_await self->provider();
    if (!value) {
      Error e = value.error();
      e.message = fmt::format("destination {}: cannot read the ClearTax auth token: {}", cfg.name, e.message);
      co_return e;
    }
    if (value->empty()) {
      co_return Error(Errc::config_invalid,
                      fmt::format("destination {}: the ClearTax auth token read from Vault is empty", cfg.name));
    }
    self->token = std::move(*value);
    self->valid_till.reset();
    self->obtained_at = self->clock.system_now();
    ++self->generation;
    co_return Result<void>{};
  }

  auto now = self->clock.system_now();
  self->roll(now);
  if (self->calls_today >= cfg.token_calls_per_day) {
    Error e(Errc::dest_token_quota,
            fmt::format("destination {}: the {} ClearTax token calls of today (UTC) are spent; pushes resume after "
                        "00:00 UTC",
                        cfg.name, cfg.token_calls_per_day));
    e.retry_after = until_next_utc_day(now);
    co_return e;
  }
  if (static_cast<int>(self->recent_calls.size()) >= cfg.token_calls_per_hour) {
    Error e(Errc::dest_token_quota,
            fmt::format("destination {}: {} ClearTax token calls in the last hour reached the hourly cap "
                        "(token_calls_per_hour); ClearTax keeps rejecting fresh tokens: check the auth setup",
                        cfg.name, self->recent_calls.size()));
    e.retry_after =
        std::chrono::ceil<std::chrono::milliseconds>(self->recent_calls.front() + std::chrono::hours(1) - now);
    co_return e;
  }
  auto secret = co_await self->provider();
  if (!secret) {
    Error e = secret.error();
    e.message = fmt::format("destination {}: cannot read the ClearTax client secret: {}", cfg.name, e.message);
    co_return e;
  }
  if (secret->empty()) {
    co_return Error(Errc::config_invalid,
                    fmt::format("destination {}: the ClearTax client secret read from Vault is empty", cfg.name));
  }

  // Count the call before it is made: a call that reached ClearTax may have been counted there.
  now = self->clock.system_now();
  self->roll(now);
  ++self->calls_today;
  self->recent_calls.push_back(now);
  http::Request req;
  req.method = "GET";
  req.url = self->token_url;
  req.headers = {{"x-clear-client-secret", std::string(secret->expose())}, {"Accept", "application/json"}};
  req.timeout = cfg.token_timeout;
  req.connect_timeout = cfg.connect_timeout;
  req.sensitive = true;
  secret->clear();
  auto resp = co_await self->client.request(std::move(req));
  if (!resp) {
    co_await persist(self);
    Error e = resp.error();
    e.message = fmt::format("destination {}: cannot get a ClearTax access token: {}", cfg.name, e.message);
    co_return e;
  }
  if (resp->status == 429) self->calls_today = std::max(self->calls_today, cfg.token_calls_per_day);
  std::optional<Error> failure;
  Secret access;
  std::optional<system_clock::time_point> till;
  if (resp->status == 200) {
    if (auto grant = detail::parse_token_grant(resp->body)) {
      access = std::move(grant->access_token);
      till = grant->valid_till;
    } else {
      failure = token_error(*self, *resp);
    }
  } else {
    failure = token_error(*self, *resp);
  }
  secure_wipe(resp->body);
  if (failure) {
    co_await persist(self);
    spdlog::warn("destination={} token request failed: {}", cfg.name, failure->describe());
    co_return *failure;
  }
  if (till && *till <= now + std::chrono::seconds(60)) {
    spdlog::warn(
        "destination={} the new ClearTax token is valid only until {:%FT%TZ} (now {:%FT%TZ}): check the "
        "system clock and the API client's token lifetime",
        cfg.name, std::chrono::floor<std::chrono::seconds>(*till), std::chrono::floor<std::chrono::seconds>(now));
  }
  self->token = std::move(access);
  self->valid_till = till;
  self->obtained_at = now;
  ++self->generation;
  co_await persist(self);
  spdlog::info("destination={} new ClearTax access token valid_till={} token_calls_today={} left_today={}", cfg.name,
               till ? fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(*till)) : std::string("never"),
               self->calls_today, std::max(0, cfg.token_calls_per_day - self->calls_today));
  co_return Result<void>{};
}

asio::awaitable<Result<TokenRef>> acquire(ImplPtr self) {
  self->load_cache();
  for (int round = 0; round < 3; ++round) {
    if (self->token_usable(self->clock.system_now())) co_return TokenRef{self->token, self->generation};
    if (self->flight.running()) {
      auto r = co_await self->flight.wait();
      if (!r) co_return r.error();
    } else {
      auto guard = self->flight.begin();
      auto r = co_await refresh(self);
      guard.finish(r);
      if (!r) co_return r.error();
    }
    // A token fresh from ClearTax is used even if its valid_till is already inside the refresh
    // margin (short validity, clock skew): refreshing again would only spend the daily calls.
    if (!self->token.empty()) co_return TokenRef{self->token, self->generation};
  }
  co_return Error(Errc::dest_unauthorized,
                  fmt::format("destination {}: every new ClearTax token was rejected at once", self->config.name));
}

// Forgets the token a request was refused with, unless a newer one already replaced it.
void invalidate(ClearTaxDestination::Impl& self, std::uint64_t generation) {
  if (self.generation == generation) self.token.clear();
}

http::Request store_request(const ClearTaxDestination::Impl& self, const TokenRef& token, const Delivery& d,
                            const Credential& c, const std::string& key) {
  const std::string& gstin = d.gstin.str();
  const auto password = c.password.expose();
  http::Request req;
  req.method = "POST";
  req.url = self.store_url;
  req.headers = {{"x-cleartax-auth-token", std::string(token.value.expose())},
                 {"x-cleartax-product", "EInvoice"},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"},
                 {"gstin", gstin},
                 {"Idempotency-Key", key}};
  // Sized once so that no copy of the password is left behind in a reallocated buffer.
  std::string& body = req.body;
  body.reserve(48 + json_escaped_size(gstin) + json_escaped_size(c.username) + json_escaped_size(password));
  body += "{\"gstin\":";
  append_json_string(body, gstin);
  body += ",\"username\":";
  append_json_string(body, c.username);
  body += ",\"password\":";
  append_json_string(body, password);
  body += '}';
  req.timeout = self.config.push_timeout;
  req.connect_timeout = self.config.connect_timeout;
  req.sensitive = true;
  return req;
}

asio::awaitable<Result<void>> push_impl(ImplPtr self, Delivery d, Credential c) {
  const std::string key = d.idempotency_key.empty()
                              ? idempotency_key(self->config.name, d.gstin, d.vault_path, d.lineage, d.version)
                              : d.idempotency_key;
  const std::string what = fmt::format("GSTIN {} ({} version {})", d.gstin, d.vault_path, d.version);
  auto fail = [&](Error e) -> Result<void> {
    ++self->counters.push_failures;
    spdlog::debug("destination={} gstin={} version={} attempt={} push failed: {}", self->config.name, d.gstin,
                  d.version, d.attempt, e.describe());
    return e;
  };
  for (int round = 0; round < 2; ++round) {
    auto token = co_await acquire(self);
    if (!token) co_return fail(token.error());
    auto req = store_request(*self, *token, d, c, key);
    auto resp = co_await self->client.request(std::move(req));
    if (!resp) {
      Error e = resp.error();
      e.message = fmt::format("cannot deliver {} to ClearTax ({}): {}", what, self->config.name, e.message);
      co_return fail(std::move(e));
    }
    auto r = interpret_store_response(*resp, d.gstin.str(), what, {c.password.expose(), token->value.expose()});
    if (r) {
      ++self->counters.pushes;
      spdlog::debug("destination={} gstin={} version={} attempt={} pushed", self->config.name, d.gstin, d.version,
                    d.attempt);
      co_return r;
    }
    if (round == 0 && r.error().is(Errc::dest_unauthorized)) {
      // Refresh once (single-flight across deliveries), then retry once.
      invalidate(*self, token->generation);
      ++self->counters.auth_retries;
      continue;
    }
    co_return fail(r.error());
  }
  co_return fail(Error(Errc::internal, "unreachable"));
}

asio::awaitable<Result<void>> probe_impl(ImplPtr self) {
  auto token = co_await acquire(self);
  if (!token) co_return token.error();
  // Any HTTP answer shows the host is reachable and its certificate verifies.
  http::Request req;
  req.method = "GET";
  req.url = self->base + "/";
  req.timeout = self->config.token_timeout;
  req.connect_timeout = self->config.connect_timeout;
  auto resp = co_await self->client.request(std::move(req));
  if (!resp) {
    Error e = resp.error();
    e.message = fmt::format("destination {}: ClearTax at {} is not reachable: {}", self->config.name,
                            redact_url(self->base), e.message);
    co_return e;
  }
  co_return Result<void>{};
}

}  // namespace

ClearTaxDestination::ClearTaxDestination(asio::any_io_executor executor, http::Client& client, ClearTaxConfig config,
                                         SecretProvider auth_secret, const Clock& clock) {
  if (auto ok = config.validate(); !ok) throw std::invalid_argument(ok.error().message);
  if (!auth_secret) throw std::invalid_argument("destination \"" + config.name + "\": no auth secret provider");
  impl_ = std::make_shared<Impl>(std::move(executor), client, std::move(config), std::move(auth_secret), clock);
}

ClearTaxDestination::~ClearTaxDestination() = default;

const std::string& ClearTaxDestination::name() const noexcept { return impl_->config.name; }

asio::awaitable<Result<void>> ClearTaxDestination::push(Delivery delivery, Credential credential) {
  return push_impl(impl_, std::move(delivery), std::move(credential));
}

asio::awaitable<Result<void>> ClearTaxDestination::probe() { return probe_impl(impl_); }

DestinationStats ClearTaxDestination::stats() const { return impl_->stats(); }

std::string ClearTaxDestination::token_cache_path() const { return impl_->cache_path; }

}  // namespace nicsync::destinations
