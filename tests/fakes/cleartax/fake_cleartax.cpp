// The test ClearTax. It must behave like the real ClearTax wherever a client could tell
// (reference/gst-domain.md §1, §3.6); where the reference marks behaviour [U], this table is the
// one place that records what the fake does instead. Change a choice here and in the code below
// together.
//
// | # | question left open by the reference [U]            | choice made by the fake                          |
// |---|----------------------------------------------------|--------------------------------------------------|
// | 1 | body of `store_nic_credentials` when it fails      | `{"success":false,"errorDetails":[{"error_code": |
// |   |                                                    | "1019","error_message":"Incorrect Password",     |
// |   |                                                    | "error_source":"NIC"}]}`: an array of objects    |
// |   |                                                    | with snake_case keys and the code as a string;   |
// |   |                                                    | error_source "NIC" or "CLEARTAX"                 |
// | 2 | HTTP status of NIC codes 1008/1014/1015/1017/1018/ | HTTP 200 with `success:false` (as the 2020 docs  |
// |   | 1019/3000/3002/3029/3033-3036, ClearTax 201/301/302| show): the client must read the body, not only   |
// |   |                                                    | the status                                       |
// | 3 | HTTP status of ClearTax 502 (no access to GSTIN)   | HTTP 403 with the `success:false` body of row 1  |
// | 4 | missing, unknown, revoked or expired auth token on | HTTP 401 with the row-1 body, code "105"         |
// |   | store_nic_credentials                              | "Invalid Token" (ClearTax's own code for it)     |
// | 5 | ClearTax 105 as `success:false` at HTTP 200        | only when injected (FaultAction::success_false)  |
// | 6 | malformed request: missing/wrong x-cleartax-      | HTTP 400 with the row-1 body, code "500" (the    |
// |   | product, missing gstin header, header gstin !=     | reference: 500 is also used for header GSTIN !=  |
// |   | body gstin, bad JSON, missing or non-string fields,| seller GSTIN); message says what is wrong;       |
// |   | GSTIN not 15 characters of 0-9A-Z                  | nothing is stored                                |
// | 7 | Content-Type other than application/json          | HTTP 415 with the row-1 body, code "500"         |
// | 8 | does the API check the pair against NIC?           | no: it stores whatever it gets unless a          |
// |   |                                                    | BadCredentialRule matches (then nothing stored)  |
// | 9 | Idempotency-Key                                    | ignored (recorded only): a retried push is       |
// |   |                                                    | applied again, as an unaware server would        |
// |10 | token endpoint 401/429 `errors[]` codes            | 401 "INVALID_CLIENT_SECRET" (missing or unknown  |
// |   |                                                    | secret), 429 "RATE_LIMIT_EXCEEDED";              |
// |   |                                                    | error_source "CLEAR", error_id a fresh UUID      |
// |11 | token endpoint 429: Retry-After?                   | none: the client must know the day resets at     |
// |   |                                                    | 00:00 UTC                                        |
// |12 | do refused (401/429) token calls count towards 288?| no; only issued tokens count                     |
// |13 | shape of an access token                           | "1.<uuid>_<64 hex>" (opaque to clients)          |
// |14 | token validity                                     | 6 h unless configured; `valid_till` null when    |
// |   |                                                    | configured "never"                               |
// |15 | a new token revokes the previous one               | per client secret, immediately, even if the new  |
// |   |                                                    | one is never used                                |
// |16 | rate limit of store_nic_credentials                | none unless injected; injected 429 carries       |
// |   |                                                    | Retry-After only when the fault sets it          |
// |17 | default body of an injected status                 | 5xx: an HTML gateway page (text/html), as a load |
// |   |                                                    | balancer in front would send; other: row-1 body  |
// |   |                                                    | with the status as code                          |
// |18 | which GSTINs may a token act on                    | any (no onboarding check); restrict one with a   |
// |   |                                                    | BadCredentialRule{gstin, code "502"}             |
// |19 | header names                                       | case-insensitive (HTTP); values compared exactly |
#include "fake_cleartax.hpp"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/rand.h>

namespace nicsync::fakes {
namespace asio = boost::asio;
namespace json = boost::json;
using http::ServerRequest;
using http::ServerResponse;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// --- small helpers -------------------------------------------------------------------------

bool path_matches(std::string_view pattern, std::string_view path) {
  if (pattern.empty()) return true;
  if (pattern.back() == '*') return path.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
  return pattern == path;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : buf) fmt::format_to(std::back_inserter(out), "{:02x}", c);
  return out;
}

std::string random_uuid() {
  auto h = random_hex(16);
  return fmt::format("{}-{}-4{}-a{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(13, 3), h.substr(17, 3),
                     h.substr(20, 12));
}

std::int64_t utc_day(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
}

// "2026-01-01T06:00:00+00:00", as ClearTax writes valid_till.
std::string format_valid_till(std::chrono::system_clock::time_point t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}+00:00", std::chrono::floor<std::chrono::seconds>(t));
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::floor<std::chrono::microseconds>(t);
  auto secs = std::chrono::floor<std::chrono::seconds>(us);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", secs, (us - secs).count());
}

// Headers whose values are secrets are recorded as "***".
bool is_secret_header(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view word : {"token", "secret", "password", "authorization", "cookie", "api-key", "apikey"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

bool is_gstin_shape(std::string_view g) {
  if (g.size() != 15) return false;
  return std::all_of(g.begin(), g.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'); });
}

// --- ClearTax and NIC codes ------------------------------------------------------------------

struct CodeInfo {
  std::string_view code;
  std::string_view message;
  std::string_view source;  // "NIC" or "CLEARTAX"
  int http_status;          // rows 2-4 of the table
};

constexpr CodeInfo kCodes[] = {
    {"1008", "Invalid login credentials", "NIC", 200},
    {"1014", "Inactive User", "NIC", 200},
    {"1015", "Invalid GSTIN for this user", "NIC", 200},
    {"1017", "Incorrect user id/User does not exists", "NIC", 200},
    {"1018", "Client Id is not mapped to this user", "NIC", 200},
    {"1019", "Incorrect Password", "NIC", 200},
    {"3000", "Invalid login credentials", "NIC", 200},
    {"3002", "Invalid login credentials", "NIC", 200},
    {"3029", "GSTIN is not active", "NIC", 200},
    {"3033", "Your account has been frozen", "NIC", 200},
    {"3034", "Your account has been cancelled", "NIC", 200},
    {"3035", "Your account has been suspended", "NIC", 200},
    {"3036", "Your account is inactive", "NIC", 200},
    {"105", "Invalid Token", "CLEARTAX", 401},
    {"201", "NIC Credentials are not Present In Database", "CLEARTAX", 200},
    {"301", "We are temporarily unable to process your request, please retry", "CLEARTAX", 200},
    {"302", "NIC servers are not responding, please retry after some time", "CLEARTAX", 200},
    {"500", "Something went wrong, please quote the error id to support", "CLEARTAX", 400},
    {"502", "You do not have access to this GSTIN", "CLEARTAX", 403},
};

const CodeInfo* find_code(std::string_view code) {
  for (const auto& c : kCodes) {
    if (c.code == code) return &c;
  }
  return nullptr;
}

// Row 1 of the table.
std::string failure_body(std::string_view code, std::string_view message) {
  const CodeInfo* info = find_code(code);
  json::object detail;
  detail["error_code"] = code;
  detail["error_message"] = message.empty() ? (info ? info->message : std::string_view("Error")) : message;
  detail["error_source"] = info ? info->source : std::string_view("CLEARTAX");
  json::array details;
  details.push_back(std::move(detail));
  json::object body;
  body["success"] = false;
  body["errorDetails"] = std::move(details);
  return json::serialize(body);
}

ServerResponse failure(int status, std::string_view code, std::string_view message = {}) {
  return ServerResponse::json(status, failure_body(code, message));
}

// Row 10: the Clear Finance Cloud `errors[]` shape.
ServerResponse token_error(int status, std::string_view code, std::string_view message) {
  json::object e;
  e["error_code"] = code;
  e["error_message"] = message;
  e["error_source"] = "CLEAR";
  e["error_id"] = random_uuid();
  json::array errors;
  errors.push_back(std::move(e));
  json::object body;
  body["errors"] = std::move(errors);
  return ServerResponse::json(status, json::serialize(body));
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

// Row 17.
ServerResponse injected_status(const Fault& f) {
  ServerResponse r;
  r.status = f.status;
  if (!f.body.empty()) {
    r = ServerResponse::json(f.status, f.body);
  } else if (f.status >= 500) {
    r = ServerResponse::text(f.status,
                             fmt::format("<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} "
                                         "{1}</h1></center>\r\n</body>\r\n</html>\r\n",
                                         f.status, reason_phrase(f.status)),
                             "text/html");
  } else {
    r = failure(f.status, std::to_string(f.status), reason_phrase(f.status));
  }
  if (f.retry_after) r.headers.push_back({"Retry-After", std::to_string(f.retry_after->count())});
  return r;
}

// --- JSON helpers for the admin API ------------------------------------------------------------

json::object headers_json(const std::vector<http::Header>& headers) {
  json::object o;
  for (const auto& h : headers) {
    std::string name(h.name);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    o[name] = h.value;
  }
  return o;
}

Result<std::string> json_string(const json::object& o, std::string_view key, bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    if (required) return Error(Errc::invalid_argument, fmt::format("\"{}\" is required", key));
    return std::string();
  }
  if (!it->value().is_string()) return Error(Errc::invalid_argument, fmt::format("\"{}\" must be a string", key));
  return std::string(it->value().as_string());
}

Result<std::int64_t> json_int(const json::object& o, std::string_view key, std::int64_t fallback) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return fallback;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64()) return static_cast<std::int64_t>(it->value().as_uint64());
  return Error(Errc::invalid_argument, fmt::format("\"{}\" must be an integer", key));
}

Result<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return Error(Errc::invalid_argument, "the body must be a JSON object");
  return std::move(v.as_object());
}

ServerResponse admin_error(const Error& e) {
  json::object o;
  o["error"] = e.message;
  return ServerResponse::json(400, json::serialize(o));
}

ServerResponse admin_ok() { return ServerResponse::json(200, R"({"ok":true})"); }

std::optional<FaultAction> action_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, FaultAction> kNames[] = {
      {"none", FaultAction::none},
      {"status", FaultAction::status},
      {"success_false", FaultAction::success_false},
      {"hang", FaultAction::hang},
      {"drop", FaultAction::drop},
      {"reset", FaultAction::reset},
      {"truncate", FaultAction::truncate},
  };
  for (auto [n, a] : kNames) {
    if (n == name) return a;
  }
  return std::nullopt;
}

}  // namespace

Result<Fault> fault_from_json(std::string_view text) {
  auto obj = parse_object(text);
  if (!obj) return obj.error();
  static constexpr std::string_view kKnown[] = {"path",   "times",   "delay_ms",    "action",
                                                "status", "body",    "retry_after", "truncate_at",
                                                "code",   "message", "apply_first"};
  for (const auto& kv : *obj) {
    if (std::find(std::begin(kKnown), std::end(kKnown), kv.key()) == std::end(kKnown)) {
      return Error(Errc::invalid_argument, fmt::format("unknown fault field \"{}\"", std::string_view(kv.key())));
    }
  }
  Fault f;
  auto path = json_string(*obj, "path", false);
  auto action = json_string(*obj, "action", false);
  auto body = json_string(*obj, "body", false);
  auto code = json_string(*obj, "code", false);
  auto message = json_string(*obj, "message", false);
  auto times = json_int(*obj, "times", 1);
  auto delay = json_int(*obj, "delay_ms", 0);
  auto status = json_int(*obj, "status", 500);
  auto retry = json_int(*obj, "retry_after", -1);
  auto trunc = json_int(*obj, "truncate_at", 0);
  for (const auto* r : {&path, &action, &body, &code, &message}) {
    if (!*r) return r->error();
  }
  for (const auto* r : {&times, &delay, &status, &retry, &trunc}) {
    if (!*r) return r->error();
  }
  f.path = *path;
  if (!action->empty()) {
    auto a = action_from_name(*action);
    if (!a) return Error(Errc::invalid_argument, fmt::format("unknown fault action \"{}\"", *action));
    f.action = *a;
  }
  f.body = *body;
  if (!code->empty()) f.code = *code;
  f.message = *message;
  if (*times < 0) return Error(Errc::invalid_argument, "\"times\" must be >= 0");
  f.times = static_cast<int>(*times);
  f.delay = std::chrono::milliseconds(*delay);
  f.status = static_cast<int>(*status);
  if (f.status < 100 || f.status > 599) return Error(Errc::invalid_argument, "\"status\" must be 100-599");
  if (*retry >= 0) f.retry_after = std::chrono::seconds(*retry);
  f.truncate_at = static_cast<std::size_t>(*trunc);
  if (auto it = obj->find("apply_first"); it != obj->end()) {
    if (!it->value().is_bool()) return Error(Errc::invalid_argument, "\"apply_first\" must be true or false");
    f.apply_first = it->value().as_bool();
  }
  return f;
}

// --- state ------------------------------------------------------------------------------------

struct IssuedToken {
  std::uint64_t id = 0;  // 1, 2, ... in issue order
  std::size_t secret_index = 0;
  std::optional<std::chrono::system_clock::time_point> valid_till;
  bool revoked = false;
};

struct ClientSecretState {
  std::string secret;
  std::int64_t day = -1;
  int calls_today = 0;
  int refused_today = 0;
  std::string current_token;
};

struct FakeClearTax::State {
  State(asio::any_io_executor executor, FakeClearTaxOptions o)
      : ex(std::move(executor)), options(std::move(o)), changed(ex, asio::steady_timer::time_point::max()) {
    clock = options.clock != nullptr ? options.clock : &Clock::real();
    for (auto& s : options.client_secrets) secrets.push_back({s});
    static_tokens = options.auth_tokens;
    token_validity = options.token_validity;
    daily_limit = options.daily_token_limit;
  }

  asio::any_io_executor ex;
  FakeClearTaxOptions options;
  const Clock* clock;

  // configuration (reset() restores what options gave)
  std::vector<ClientSecretState> secrets;
  std::vector<std::string> static_tokens;
  std::set<std::string> revoked_static;
  std::optional<std::chrono::seconds> token_validity;
  int daily_limit;
  std::vector<Fault> faults;
  std::vector<BadCredentialRule> bad_credentials;
  std::vector<std::pair<std::string, HookResponse>> hook_responses;

  // what happened
  std::unordered_map<std::string, IssuedToken> tokens;
  std::uint64_t issued_total = 0;
  int unauthorized_token_calls = 0;
  std::map<std::string, StoredCredential> stored;
  std::deque<RecordedRequest> records;
  std::uint64_t next_seq = 1;
  std::set<asio::steady_timer*> hangs;
  asio::steady_timer changed;  // cancelled whenever a request is recorded

  [[nodiscard]] std::chrono::system_clock::time_point now() const { return clock->system_now(); }

  void roll_day(ClientSecretState& c) {
    const auto today = utc_day(now());
    if (c.day != today) {
      c.day = today;
      c.calls_today = 0;
      c.refused_today = 0;
    }
  }

  RecordedRequest* record_of(std::uint64_t seq) {
    if (records.empty() || seq < records.front().seq) return nullptr;
    auto i = seq - records.front().seq;
    return i < records.size() ? &records[i] : nullptr;
  }

  std::uint64_t record(const ServerRequest& r) {
    RecordedRequest rec;
    rec.seq = next_seq++;
    rec.method = r.method;
    rec.path = r.path;
    rec.query = r.query;
    rec.headers = r.headers;
    for (auto& h : rec.headers) {
      if (is_secret_header(h.name)) h.value = "***";
    }
    rec.body = r.body;
    rec.received_at = now();
    rec.connection_id = r.connection_id;
    records.push_back(std::move(rec));
    while (records.size() > options.max_recorded_requests) records.pop_front();
    changed.cancel();
    return next_seq - 1;
  }

  // A fault ends the request; if it was served first (apply_first), both outcomes are kept.
  void mark_fault(std::uint64_t seq, std::string_view what) {
    if (auto* rec = record_of(seq)) {
      rec->outcome =
          rec->outcome.empty() ? fmt::format("fault:{}", what) : fmt::format("{}+fault:{}", rec->outcome, what);
      rec->status = 0;
    }
  }

  void finish(std::uint64_t seq, int status, std::string outcome, std::string auth = {}) {
    if (auto* rec = record_of(seq)) {
      rec->status = status;
      rec->outcome = std::move(outcome);
      if (!auth.empty()) rec->auth = std::move(auth);
    }
  }

  // Takes one use of the first matching fault.
  std::optional<Fault> take_fault(std::string_view path) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (!path_matches(it->path, path)) continue;
      Fault f = *it;
      if (it->times > 0 && --it->times == 0) faults.erase(it);
      return f;
    }
    return std::nullopt;
  }

  // --- authentication ---

  // Label for RecordedRequest::auth and whether the token is acceptable now.
  std::pair<std::string, bool> check_auth_token(std::optional<std::string_view> token) const {
    if (!token || token->empty()) return {"missing", false};
    for (std::size_t i = 0; i < static_tokens.size(); ++i) {
      if (static_tokens[i] != *token) continue;
      if (revoked_static.contains(static_tokens[i])) return {fmt::format("revoked-static:{}", i), false};
      return {fmt::format("static:{}", i), true};
    }
    auto it = tokens.find(std::string(*token));
    if (it == tokens.end()) return {"unknown", false};
    const auto& t = it->second;
    if (t.revoked) return {fmt::format("revoked:{}", t.id), false};
    if (t.valid_till && now() >= *t.valid_till) return {fmt::format("expired:{}", t.id), false};
    return {fmt::format("access:{}", t.id), true};
  }

  // --- ClearTax endpoints ---

  ServerResponse token(const ServerRequest& r, std::uint64_t seq) {
    auto secret = r.header("x-clear-client-secret");
    ClientSecretState* client = nullptr;
    std::size_t index = 0;
    if (secret) {
      for (std::size_t i = 0; i < secrets.size(); ++i) {
        if (secrets[i].secret == *secret) {
          client = &secrets[i];
          index = i;
        }
      }
    }
    if (client == nullptr) {
      ++unauthorized_token_calls;
      finish(seq, 401, "token_unauthorized", secret ? "unknown" : "missing");
      return token_error(401, "INVALID_CLIENT_SECRET",
                         secret ? "Client secret is invalid" : "x-clear-client-secret header is required");
    }
    roll_day(*client);
    if (client->calls_today >= daily_limit) {
      ++client->refused_today;
      finish(seq, 429, "token_rate_limited", fmt::format("secret:{}", index));
      return token_error(429, "RATE_LIMIT_EXCEEDED",
                         fmt::format("Access token limit of {} calls per day reached for this client", daily_limit));
    }
    ++client->calls_today;
    // Row 15: the previous token of this client stops working at once.
    if (auto old = tokens.find(client->current_token); old != tokens.end()) old->second.revoked = true;
    std::string value = fmt::format("1.{}_{}", random_uuid(), random_hex(32));
    IssuedToken t;
    t.id = ++issued_total;
    t.secret_index = index;
    if (token_validity) t.valid_till = std::chrono::floor<std::chrono::seconds>(now()) + *token_validity;
    json::object body;
    body["access_token"] = value;
    if (t.valid_till) {
      body["valid_till"] = format_valid_till(*t.valid_till);
    } else {
      body["valid_till"] = nullptr;
    }
    finish(seq, 200, "token_issued", fmt::format("secret:{}", index));
    tokens.emplace(value, t);
    client->current_token = std::move(value);
    return ServerResponse::json(200, json::serialize(body));
  }

  // Validates and stores; `auth` was checked by the caller.
  ServerResponse store(const ServerRequest& r, std::uint64_t seq) {
    auto reject = [&](int status, std::string_view code, std::string message, std::string outcome) {
      finish(seq, status, std::move(outcome));
      return failure(status, code, message);
    };
    auto product = r.header("x-cleartax-product");
    if (!product) return reject(400, "500", "x-cleartax-product header is required", "bad_request:product");
    if (*product != "EInvoice") {
      return reject(400, "500", "x-cleartax-product must be EInvoice", "bad_request:product");
    }
    auto content_type = r.header("Content-Type");
    if (!content_type || content_type->substr(0, content_type->find(';')) != "application/json") {
      return reject(415, "500", "Content-Type must be application/json", "bad_request:content_type");
    }
    auto header_gstin = r.header("gstin");
    if (!header_gstin || header_gstin->empty()) {
      return reject(400, "500", "gstin header is required", "bad_request:gstin_header");
    }
    boost::system::error_code ec;
    auto parsed = json::parse(r.body, ec);
    if (ec || !parsed.is_object()) return reject(400, "500", "request body must be a JSON object", "bad_request:body");
    const auto& body = parsed.as_object();
    std::string fields[3];
    static constexpr std::string_view kFields[] = {"gstin", "username", "password"};
    for (int i = 0; i < 3; ++i) {
      auto it = body.find(kFields[i]);
      if (it == body.end() || !it->value().is_string() || it->value().as_string().empty()) {
        return reject(400, "500", fmt::format("{} is required and must be a non-empty string", kFields[i]),
                      fmt::format("bad_request:{}", kFields[i]));
      }
      fields[i] = std::string(it->value().as_string());
    }
    const auto& [gstin, username, password] = fields;
    if (*header_gstin != gstin) {
      return reject(400, "500", "GSTIN in the gstin header does not match the GSTIN in the request",
                    "bad_request:gstin_mismatch");
    }
    if (!is_gstin_shape(gstin)) return reject(400, "500", "Invalid GSTIN", "bad_request:gstin");
    for (const auto& rule : bad_credentials) {
      if ((rule.gstin && *rule.gstin != gstin) || (rule.username && *rule.username != username) ||
          (rule.password && *rule.password != password)) {
        continue;
      }
      const CodeInfo* info = find_code(rule.code);
      const int status = info ? info->http_status : 200;
      finish(seq, status, "rejected:" + rule.code);
      return failure(status, rule.code, rule.message);
    }
    auto& s = stored[gstin];
    s.username = username;
    s.password = password;
    ++s.stores;
    s.last_seq = seq;
    s.updated_at = now();
    finish(seq, 200, "stored");
    return ServerResponse::json(200, R"({"success":true,"errorDetails":null})");
  }

  ServerResponse hook(const ServerRequest& r, std::uint64_t seq) {
    HookResponse answer;
    for (const auto& [pattern, resp] : hook_responses) {
      if (path_matches(pattern, r.path)) answer = resp;
    }
    finish(seq, answer.status, "hook");
    ServerResponse out;
    out.status = answer.status;
    out.headers = answer.headers;
    out.body = answer.body;
    return out;
  }

  // Serves a request that got past the fault layer (or was let through by apply_first).
  ServerResponse serve(const ServerRequest& r, std::uint64_t seq) {
    if (r.path == FakeClearTax::kTokenPath) {
      if (r.method != "GET") {
        finish(seq, 405, "method_not_allowed");
        auto out = ServerResponse::json(405, R"({"errors":[{"error_code":"METHOD_NOT_ALLOWED"}]})");
        out.headers.push_back({"Allow", "GET"});
        return out;
      }
      return token(r, seq);
    }
    if (r.path == FakeClearTax::kStorePath) {
      if (r.method != "POST") {
        finish(seq, 405, "method_not_allowed");
        auto out = failure(405, "405", "Method Not Allowed");
        out.headers.push_back({"Allow", "POST"});
        return out;
      }
      auto [label, ok] = check_auth_token(r.header("x-cleartax-auth-token"));
      if (auto* rec = record_of(seq)) rec->auth = label;
      if (!ok) {
        finish(seq, 401, "unauthorized");
        return failure(401, "105");
      }
      return store(r, seq);
    }
    if (r.path.starts_with("/hooks/")) return hook(r, seq);
    finish(seq, 404, "not_found");
    return failure(404, "404", "Not Found");
  }

  // --- admin API ---

  [[nodiscard]] json::object stored_json(const StoredCredential& s) const {
    json::object o;
    o["username"] = s.username;
    o["password"] = s.password;
    o["stores"] = s.stores;
    o["last_seq"] = s.last_seq;
    o["updated_at"] = format_timestamp(s.updated_at);
    return o;
  }

  static json::object request_json(const RecordedRequest& r) {
    json::object o;
    o["seq"] = r.seq;
    o["method"] = r.method;
    o["path"] = r.path;
    o["query"] = r.query;
    o["headers"] = headers_json(r.headers);
    o["body"] = r.body;
    o["received_at"] = format_timestamp(r.received_at);
    o["connection_id"] = r.connection_id;
    o["auth"] = r.auth;
    o["status"] = r.status;
    o["outcome"] = r.outcome;
    return o;
  }

  TokenStats token_stats() {
    TokenStats s;
    s.limit = daily_limit;
    s.issued_total = issued_total;
    s.unauthorized = unauthorized_token_calls;
    for (auto& c : secrets) {
      roll_day(c);
      s.calls_today += c.calls_today;
      s.refused_today += c.refused_today;
    }
    return s;
  }

  void revoke_all() {
    for (auto& [v, t] : tokens) t.revoked = true;
  }

  void expire_all() {
    const auto t_now = now();
    for (auto& [v, t] : tokens) t.valid_till = t_now;
  }

  void release_all() {
    for (auto* t : hangs) t->cancel();
  }

  void reset() {
    release_all();
    secrets.clear();
    for (auto& s : options.client_secrets) secrets.push_back({s});
    static_tokens = options.auth_tokens;
    revoked_static.clear();
    token_validity = options.token_validity;
    daily_limit = options.daily_token_limit;
    faults.clear();
    bad_credentials.clear();
    hook_responses.clear();
    tokens.clear();
    issued_total = 0;
    unauthorized_token_calls = 0;
    stored.clear();
    records.clear();
    next_seq = 1;
  }

  ServerResponse admin(const ServerRequest& r) {
    const std::string_view path = std::string_view(r.path).substr(std::string_view("/__admin").size());
    auto body_object = [&]() { return parse_object(r.body.empty() ? std::string_view("{}") : r.body); };
    if (r.method == "GET" && path == "/stored") {
      json::object all;
      for (const auto& [g, s] : stored) all[g] = stored_json(s);
      json::object o;
      o["gstins"] = std::move(all);
      return ServerResponse::json(200, json::serialize(o));
    }
    if (r.method == "GET" && path.starts_with("/stored/")) {
      auto it = stored.find(std::string(path.substr(8)));
      if (it == stored.end()) return ServerResponse::json(404, R"({"error":"nothing stored for this GSTIN"})");
      return ServerResponse::json(200, json::serialize(stored_json(it->second)));
    }
    if (r.method == "GET" && path == "/requests") {
      const std::string pattern = r.query_param("path").value_or("");
      std::uint64_t since = 0;
      if (auto s = r.query_param("since")) since = std::strtoull(s->c_str(), nullptr, 10);
      json::array list;
      for (const auto& rec : records) {
        if (rec.seq > since && path_matches(pattern, rec.path)) list.push_back(request_json(rec));
      }
      json::object o;
      o["requests"] = std::move(list);
      return ServerResponse::json(200, json::serialize(o));
    }
    if (r.method == "GET" && path == "/tokens") {
      auto s = token_stats();
      json::object o;
      o["calls_today"] = s.calls_today;
      o["refused_today"] = s.refused_today;
      o["limit"] = s.limit;
      o["issued_total"] = s.issued_total;
      o["unauthorized"] = s.unauthorized;
      return ServerResponse::json(200, json::serialize(o));
    }
    if (r.method == "POST" && path == "/faults") {
      auto f = fault_from_json(r.body);
      if (!f) return admin_error(f.error());
      faults.push_back(std::move(*f));
      return admin_ok();
    }
    if (r.method == "DELETE" && path == "/faults") {
      faults.clear();
      return admin_ok();
    }
    if (r.method == "POST" && path == "/bad-credentials") {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      BadCredentialRule rule;
      for (auto [key, field] : {std::pair{"gstin", &rule.gstin}, std::pair{"username", &rule.username},
                                std::pair{"password", &rule.password}}) {
        auto v = json_string(*o, key, false);
        if (!v) return admin_error(v.error());
        if (o->contains(key)) *field = *v;
      }
      auto code = json_string(*o, "code", true);
      if (!code) return admin_error(code.error());
      auto message = json_string(*o, "message", false);
      if (!message) return admin_error(message.error());
      rule.code = *code;
      rule.message = *message;
      bad_credentials.push_back(std::move(rule));
      return admin_ok();
    }
    if (r.method == "DELETE" && path == "/bad-credentials") {
      bad_credentials.clear();
      return admin_ok();
    }
    if (r.method == "POST" && path == "/hooks") {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      auto p = json_string(*o, "path", true);
      auto status = json_int(*o, "status", 200);
      auto b = json_string(*o, "body", false);
      if (!p) return admin_error(p.error());
      if (!status) return admin_error(status.error());
      if (!b) return admin_error(b.error());
      HookResponse resp;
      resp.status = static_cast<int>(*status);
      if (o->contains("body")) resp.body = *b;
      if (auto it = o->find("headers"); it != o->end() && it->value().is_object()) {
        resp.headers.clear();
        for (const auto& kv : it->value().as_object()) {
          if (!kv.value().is_string()) return admin_error(Error(Errc::invalid_argument, "header values are strings"));
          resp.headers.push_back({std::string(kv.key()), std::string(kv.value().as_string())});
        }
      }
      hook_responses.emplace_back(*p, std::move(resp));
      return admin_ok();
    }
    if (r.method == "POST" && path == "/tokens/revoke") {
      revoke_all();
      return admin_ok();
    }
    if (r.method == "POST" && path == "/tokens/expire") {
      expire_all();
      return admin_ok();
    }
    if (r.method == "POST" && path == "/hangs/release") {
      release_all();
      return admin_ok();
    }
    if (r.method == "POST" && (path == "/client-secrets" || path == "/auth-tokens")) {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      auto v = json_string(*o, path == "/client-secrets" ? "secret" : "token", true);
      if (!v) return admin_error(v.error());
      if (path == "/client-secrets") {
        secrets.push_back({*v});
      } else {
        static_tokens.push_back(*v);
      }
      return admin_ok();
    }
    if (r.method == "POST" && path == "/auth-tokens/revoke") {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      auto v = json_string(*o, "token", true);
      if (!v) return admin_error(v.error());
      revoked_static.insert(*v);
      return admin_ok();
    }
    if (r.method == "POST" && path == "/token-validity") {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      auto secs = json_int(*o, "seconds", -1);
      if (!secs) return admin_error(secs.error());
      token_validity = *secs < 0 ? std::nullopt : std::optional(std::chrono::seconds(*secs));
      return admin_ok();
    }
    if (r.method == "POST" && path == "/daily-token-limit") {
      auto o = body_object();
      if (!o) return admin_error(o.error());
      auto limit = json_int(*o, "limit", 288);
      if (!limit) return admin_error(limit.error());
      daily_limit = static_cast<int>(*limit);
      return admin_ok();
    }
    if (r.method == "POST" && path == "/reset") {
      reset();
      return admin_ok();
    }
    return ServerResponse::json(404, R"({"error":"unknown admin call"})");
  }
};

namespace {

using StatePtr = std::shared_ptr<FakeClearTax::State>;

// Waits until `delay` passes, the request is released (reset, release_hangs) or the server
// stops; true if the full delay passed.
asio::awaitable<bool> wait_registered(StatePtr s, std::chrono::milliseconds delay) {
  asio::steady_timer timer(s->ex, delay);
  s->hangs.insert(&timer);
  auto [ec] = co_await timer.async_wait(kTuple);
  s->hangs.erase(&timer);
  co_return !ec;
}

asio::awaitable<ServerResponse> handle(StatePtr s, const ServerRequest& r) {
  if (r.path.starts_with("/__admin/")) co_return s->admin(r);
  const std::uint64_t seq = s->record(r);
  auto fault = s->take_fault(r.path);
  if (!fault) co_return s->serve(r, seq);
  if (fault->delay.count() > 0) {
    if (!co_await wait_registered(s, fault->delay)) {
      s->mark_fault(seq, "released");
      co_return ServerResponse{.action = ServerResponse::Action::drop};
    }
  }
  switch (fault->action) {
    case FaultAction::none: co_return s->serve(r, seq);
    case FaultAction::status: {
      s->finish(seq, fault->status, fmt::format("fault:status:{}", fault->status));
      co_return injected_status(*fault);
    }
    case FaultAction::success_false: {
      s->finish(seq, 200, "fault:success_false:" + fault->code);
      auto out = failure(200, fault->code, fault->message);
      if (fault->retry_after) out.headers.push_back({"Retry-After", std::to_string(fault->retry_after->count())});
      co_return out;
    }
    case FaultAction::hang: {
      if (fault->apply_first) (void)s->serve(r, seq);
      s->mark_fault(seq, "hang");
      co_await wait_registered(s, std::chrono::hours(24));
      co_return ServerResponse{.action = ServerResponse::Action::drop};
    }
    case FaultAction::drop:
    case FaultAction::reset: {
      if (fault->apply_first) (void)s->serve(r, seq);
      const bool drop = fault->action == FaultAction::drop;
      s->mark_fault(seq, drop ? "drop" : "reset");
      co_return ServerResponse{.action = drop ? ServerResponse::Action::drop : ServerResponse::Action::reset};
    }
    case FaultAction::truncate: {
      auto out = s->serve(r, seq);
      if (auto* rec = s->record_of(seq)) rec->outcome += "+fault:truncate";
      out.truncate_body_at = fault->truncate_at;
      co_return out;
    }
  }
  co_return s->serve(r, seq);
}

asio::awaitable<void> wait_for(StatePtr s, std::string path, std::size_t count) {
  for (;;) {
    std::size_t n = 0;
    for (const auto& rec : s->records) {
      if (path_matches(path, rec.path)) ++n;
    }
    if (n >= count) co_return;
    // The timer never expires; record() cancels its waits. (Setting the expiry here would
    // cancel the waits of other waiters.)
    co_await s->changed.async_wait(kTuple);
  }
}

}  // namespace

// --- FakeClearTax -----------------------------------------------------------------------------

FakeClearTax::FakeClearTax(asio::any_io_executor executor, FakeClearTaxOptions options)
    : state_(std::make_shared<State>(executor, std::move(options))) {
  server_ = std::make_unique<http::Server>(executor, state_->options.server,
                                           [s = state_](const ServerRequest& r) { return handle(s, r); });
}

FakeClearTax::~FakeClearTax() {
  state_->release_all();
  server_->stop_now();
}

Result<void> FakeClearTax::start() { return server_->start(); }

std::string FakeClearTax::base_url() const {
  return fmt::format("{}://{}", server_->tls() ? "https" : "http", server_->local_address());
}

std::uint16_t FakeClearTax::port() const noexcept { return server_->port(); }
http::Server& FakeClearTax::server() noexcept { return *server_; }

asio::awaitable<void> FakeClearTax::stop(std::chrono::milliseconds grace) {
  state_->release_all();
  co_await server_->stop(grace);
}

void FakeClearTax::stop_now() noexcept {
  state_->release_all();
  server_->stop_now();
}

void FakeClearTax::add_client_secret(std::string secret) { state_->secrets.push_back({std::move(secret)}); }
void FakeClearTax::add_auth_token(std::string token) { state_->static_tokens.push_back(std::move(token)); }
void FakeClearTax::revoke_auth_token(std::string_view token) { state_->revoked_static.insert(std::string(token)); }
void FakeClearTax::set_token_validity(std::optional<std::chrono::seconds> v) { state_->token_validity = v; }
void FakeClearTax::set_daily_token_limit(int limit) { state_->daily_limit = limit; }
void FakeClearTax::add_fault(Fault fault) { state_->faults.push_back(std::move(fault)); }
void FakeClearTax::clear_faults() { state_->faults.clear(); }
void FakeClearTax::add_bad_credentials(BadCredentialRule rule) { state_->bad_credentials.push_back(std::move(rule)); }
void FakeClearTax::clear_bad_credentials() { state_->bad_credentials.clear(); }
void FakeClearTax::set_hook_response(std::string path, HookResponse response) {
  state_->hook_responses.emplace_back(std::move(path), std::move(response));
}
void FakeClearTax::revoke_tokens() { state_->revoke_all(); }
void FakeClearTax::expire_tokens() { state_->expire_all(); }
void FakeClearTax::release_hangs() { state_->release_all(); }
void FakeClearTax::reset() { state_->reset(); }

std::optional<StoredCredential> FakeClearTax::stored(std::string_view gstin) const {
  auto it = state_->stored.find(std::string(gstin));
  if (it == state_->stored.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, StoredCredential> FakeClearTax::stored_all() const { return state_->stored; }

std::vector<RecordedRequest> FakeClearTax::requests(std::string_view path) const {
  std::vector<RecordedRequest> out;
  for (const auto& rec : state_->records) {
    if (path_matches(path, rec.path)) out.push_back(rec);
  }
  return out;
}

TokenStats FakeClearTax::token_stats() const { return state_->token_stats(); }

std::vector<std::string> FakeClearTax::issued_tokens() const {
  std::vector<std::pair<std::uint64_t, std::string>> by_id;
  for (const auto& [value, t] : state_->tokens) by_id.emplace_back(t.id, value);
  std::sort(by_id.begin(), by_id.end());
  std::vector<std::string> out;
  for (auto& [id, value] : by_id) out.push_back(std::move(value));
  return out;
}
std::size_t FakeClearTax::hung_requests() const noexcept { return state_->hangs.size(); }

asio::awaitable<void> FakeClearTax::wait_for_requests(std::string path, std::size_t count) {
  return wait_for(state_, std::move(path), count);
}

}  // namespace nicsync::fakes
