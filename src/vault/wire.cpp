#include "vault/wire.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <new>

#include <boost/container/pmr/memory_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "nicsync/core/secret.hpp"
#include "nicsync/core/timestamp.hpp"

namespace nicsync::vault::wire {
namespace json = boost::json;

// --- addresses, URLs, headers ------------------------------------------------------------

Result<BaseAddress> parse_address(std::string_view address, std::string_view server_name) {
  auto fail = [&](std::string_view why) {
    return Error(Errc::config_invalid,
                 fmt::format("Vault address \"{}\" {}; write it like https://vault.example.com:8200", address, why));
  };
  if (address.starts_with("unix://")) return fail("is a unix socket, which this client does not support");
  auto parsed = boost::urls::parse_uri(address);
  if (!parsed) return fail("is not a URL");
  const auto& u = *parsed;
  BaseAddress out;
  if (u.scheme() == "https") {
    out.tls = true;
  } else if (u.scheme() != "http") {
    return fail("must start with http:// or https://");
  }
  if (u.has_userinfo()) return fail("must not contain a user name or password");
  if (u.has_query() || u.has_fragment()) return fail("must not contain a query or fragment");
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return fail("must not contain a path");
  out.host = std::string(u.encoded_host());  // IPv6 literals keep their brackets
  if (out.host.empty()) return fail("has no host");
  if (u.has_port()) {
    if (u.port_number() == 0) return fail("has an invalid port");
    out.port = u.port_number();
  } else {
    out.port = out.tls ? 443 : 80;
  }
  const std::string scheme = out.tls ? "https" : "http";
  out.display = fmt::format("{}://{}:{}", scheme, out.host, out.port);
  if (server_name.empty()) {
    out.url_base = out.display;
  } else {
    if (server_name.find_first_of(":/@ \t\r\n") != std::string_view::npos) {
      return Error(
          Errc::config_invalid,
          fmt::format("TLS server name \"{}\" must be a plain host name (VAULT_TLS_SERVER_NAME)", server_name));
    }
    out.url_base = fmt::format("{}://{}:{}", scheme, server_name, out.port);
    out.connect_to = fmt::format("{}:{}:{}:{}", server_name, out.port, out.host, out.port);
  }
  return out;
}

std::string encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size() + 8);
  for (unsigned char c : path) {
    // Go's url.URL.EscapedPath (what the official client sends): unreserved characters and
    // "$&+,/:;=@" stay, everything else is escaped.
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '@' || c == '$' || c == '&' ||
                      c == '+' || c == ',' || c == ';' || c == '=';
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string make_url(std::string_view url_base, std::string_view api_path, std::string_view query) {
  std::string url;
  url.reserve(url_base.size() + api_path.size() + query.size() + 8);
  url.append(url_base);
  url.append("/v1/");
  url.append(encode_path(api_path));
  if (!query.empty()) {
    url += '?';
    url.append(query);
  }
  return url;
}

std::vector<http::Header> make_headers(const Token* token, const Namespace& ns, bool has_body) {
  std::vector<http::Header> headers;
  headers.reserve(4);
  // Vault Agent/Proxy listeners with require_request_header refuse requests without it.
  headers.push_back({"X-Vault-Request", "true"});
  if (token != nullptr && !token->empty()) headers.push_back({"X-Vault-Token", std::string(token->secret().expose())});
  if (!ns.empty()) headers.push_back({"X-Vault-Namespace", ns.str()});
  if (has_body) headers.push_back({"Content-Type", "application/json"});
  return headers;
}

bool is_retryable_status(int status) noexcept {
  return status == 412 || status == 429 || (status >= 500 && status != 501);
}

bool is_retryable_error(const Error& e) noexcept {
  if (e.code.category() != nicsync_category()) return false;
  switch (static_cast<Errc>(e.code.value())) {
    case Errc::http_timeout:
    case Errc::http_connect_timeout:
    case Errc::http_connection_refused:
    case Errc::http_resolve_failed:
    case Errc::http_network:
    case Errc::http_tls:
    case Errc::http_protocol: return true;
    default: return false;
  }
}

// --- JSON -----------------------------------------------------------------------------------

namespace {

class WipingResource final : public boost::container::pmr::memory_resource {
 private:
  // The aligned forms only for over-aligned requests (Boost.JSON asks for alignment 1 for
  // strings), and the unsized delete: clang (< 19) has no sized deallocation by default.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator new(bytes);
    return ::operator new(bytes, std::align_val_t(alignment));
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    secure_wipe(p, bytes);
    if (alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(p);
    } else {
      ::operator delete(p, std::align_val_t(alignment));
    }
  }
  bool do_is_equal(const boost::container::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

}  // namespace

json::storage_ptr wiping_storage() noexcept {
  static WipingResource resource;
  return json::storage_ptr(&resource);
}

namespace {

Result<json::value> parse_with(json::parser& parser, std::string_view body, std::string_view what) {
  if (body.empty()) {
    return Error(Errc::vault_bad_response,
                 fmt::format("Vault's response to {} has an empty body where JSON was expected", what));
  }
  boost::system::error_code ec;
  const std::size_t used = parser.write(body.data(), body.size(), ec);
  if (ec) {
    const bool truncated = ec == json::error::incomplete || used >= body.size();
    return Error(Errc::vault_bad_response,
                 fmt::format("Vault's response to {} is {} ({} at byte {} of {}); a proxy or load balancer between "
                             "nicsync and Vault may be cutting or rewriting responses",
                             what, truncated ? "truncated JSON" : "not valid JSON", ec.message(), used, body.size()));
  }
  return parser.release();
}

json::parse_options vault_parse_options() {
  json::parse_options options;
  options.max_depth = 64;
  return options;
}

}  // namespace

Result<json::value> parse_json(std::string_view body, std::string_view what) {
  json::parser parser(wiping_storage(), vault_parse_options());
  parser.reset(wiping_storage());
  return parse_with(parser, body, what);
}

JsonScratch::JsonScratch() noexcept : resource_(values_, sizeof values_, wiping_storage()) {}

JsonScratch::~JsonScratch() {
  resource_.release();
  secure_wipe(values_, sizeof values_);
  secure_wipe(temp_, sizeof temp_);
}

Result<json::value> parse_json(std::string_view body, std::string_view what, JsonScratch& scratch) {
  // The parser's own stack starts in `temp_` and, past it, takes from the same resource.
  json::parser parser(json::storage_ptr(&scratch.resource_), vault_parse_options(), scratch.temp_,
                      sizeof scratch.temp_);
  parser.reset(json::storage_ptr(&scratch.resource_));
  return parse_with(parser, body, what);
}

std::string flatten_error(std::string_view message) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
      s.remove_suffix(1);
    }
    return s;
  };
  // Go's hashicorp/go-multierror: "2 errors occurred:\n\t* a\n\t* b\n\n".
  const auto header_end = message.find(" occurred:");
  if (header_end != std::string_view::npos && message.find("\t* ") != std::string_view::npos) {
    std::string out;
    std::size_t pos = header_end;
    while ((pos = message.find("\t* ", pos)) != std::string_view::npos) {
      pos += 3;
      auto end = message.find("\n\t* ", pos);
      auto item = trim(message.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
      if (!item.empty()) {
        if (!out.empty()) out += "; ";
        out.append(item);
      }
      if (end == std::string_view::npos) break;
      pos = end;
    }
    return out;
  }
  return std::string(trim(message));
}

namespace {

// Vault's words as they may appear in a message: control characters become spaces, and the text
// is cut on a UTF-8 boundary. Messages reach logs, the ledger and /v1/status; a broken or
// hostile server (or a proxy) must not be able to forge log lines or flood them.
std::string vault_text(std::string_view s, std::size_t max = 300) {
  std::string out;
  out.reserve(std::min(s.size(), max + 3));
  for (char c : s) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  if (out.size() > max) {
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

constexpr std::size_t kMaxErrorMessages = 5;

// Longer leases and TTLs count as this long: a steady or system time point plus more than about
// 290 years overflows. Vault's own limit (Go's time.Duration) is 292 years; no real token gets
// close to a century.
constexpr std::chrono::seconds kMaxLease = std::chrono::hours(24 * 365 * 100);

}  // namespace

std::vector<std::string> error_messages(std::string_view body) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 16;
  auto v = json::parse(body, ec, {}, options);
  if (ec || !v.is_object()) return out;
  const auto* errors = v.as_object().if_contains("errors");
  if (errors == nullptr || !errors->is_array()) return out;
  for (const auto& e : errors->as_array()) {
    if (out.size() == kMaxErrorMessages) break;
    if (e.is_string()) {
      auto flat = vault_text(flatten_error(std::string_view(e.as_string())));
      if (!flat.empty()) out.push_back(std::move(flat));
    }
  }
  return out;
}

bool says_invalid_token(std::string_view body) {
  for (const auto& m : error_messages(body)) {
    if (m.find("invalid token") != std::string::npos) return true;
  }
  return false;
}

// --- statuses to errors -------------------------------------------------------------------

namespace {

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out.append(sep);
    out += p;
  }
  return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

Error error_from_response(const CallContext& ctx, int status, std::string_view body,
                          std::optional<std::chrono::milliseconds> retry_after, bool dead_token) {
  const auto messages = error_messages(body);
  const std::string said = join(messages, "; ");
  const std::string where = fmt::format("{} {}", ctx.method, ctx.api_path);
  const std::string vault_says = said.empty() ? std::string() : ": " + said;
  Error e;
  switch (status) {
    case 400:
      e = Error(Errc::vault_bad_request,
                fmt::format("Vault refused to {} {} (400{})", ctx.action, ctx.api_path, vault_says));
      break;
    case 403:
      if (dead_token) {
        e = Error(Errc::vault_token_invalid,
                  fmt::format("Vault token is invalid, expired or revoked ({} answered 403{}); the client logs in "
                              "again where it can, otherwise provide a new token",
                              where, vault_says));
      } else {
        const std::string advice = !ctx.denied_hint.empty()
                                       ? ctx.denied_hint
                                       : fmt::format("grant the token's policy the \"{}\" capability on path \"{}\"",
                                                     ctx.capability, ctx.api_path);
        e = Error(Errc::vault_permission_denied,
                  fmt::format("Vault denied {} {} (403{}); {}", ctx.action, ctx.api_path, vault_says, advice));
      }
      break;
    case 404:
      e = Error(
          Errc::vault_not_found,
          fmt::format("{} (404{})", ctx.not_found.empty() ? "nothing at " + ctx.api_path : ctx.not_found, vault_says));
      break;
    case 405:
      e = Error(
          Errc::vault_bad_request,
          fmt::format("Vault does not support {} (405{}); check the mount type and KV version", where, vault_says));
      break;
    case 412:
      e = Error(Errc::vault_precondition,
                fmt::format("Vault node lacks the index state for {} (412{}); retry, or send requests to the active "
                            "node",
                            where, vault_says));
      break;
    case 429:
      e = Error(Errc::vault_rate_limited,
                fmt::format("Vault rate limit quota exceeded for {} (429{}); raise the quota or lower the poll rate",
                            where, vault_says));
      break;
    case 501:
      e = Error(
          Errc::vault_unavailable,
          fmt::format("Vault is not initialised ({} answered 501{}); run `vault operator init`", where, vault_says));
      break;
    case 503:
      if (contains(said, "sealed")) {
        e = Error(
            Errc::vault_sealed,
            fmt::format("Vault is sealed ({} answered 503{}); unseal it (`vault operator unseal`)", where, vault_says));
      } else if (contains(said, "active") || contains(said, "standby")) {
        e = Error(Errc::vault_unavailable,
                  fmt::format("Vault has no active node ({} answered 503{}); wait for leader election or check the "
                              "cluster",
                              where, vault_says));
      } else {
        e = Error(Errc::vault_unavailable, fmt::format("Vault is unavailable ({} answered 503{})", where, vault_says));
      }
      break;
    default:
      if (status >= 500) {
        e = Error(Errc::vault_unavailable,
                  fmt::format("Vault failed to {} {} ({}{}{})", ctx.action, ctx.api_path, status, vault_says,
                              messages.empty() ? "; the body is not Vault's JSON error" : ""));
      } else if (status >= 400) {
        e = Error(Errc::vault_bad_request, fmt::format("Vault refused {} ({}{})", where, status, vault_says));
      } else {
        e = Error(Errc::vault_bad_response,
                  fmt::format("Vault answered {} with unexpected HTTP status {}", where, status));
      }
  }
  e.http_status = status;
  e.retry_after = retry_after;
  return e;
}

// --- bodies -------------------------------------------------------------------------------

namespace {

std::optional<Clock::system_time> parse_time(std::string_view text) noexcept {
  auto t = nicsync::parse_rfc3339(text);
  if (!t) return std::nullopt;
  return std::chrono::time_point_cast<Clock::system_time::duration>(*t);
}

// Access to a JSON response with errors that name the call and the field.
// Where a field sits ("data.versions.3.created_time"), for error messages only: kept as its
// parts and joined only when a message is written, so a read that succeeds formats nothing.
struct Name {
  std::string_view a, b, c;
  Name(const char* whole) : a(whole) {}         // NOLINT(google-explicit-constructor)
  Name(std::string_view whole) : a(whole) {}    // NOLINT(google-explicit-constructor)
  Name(const std::string& whole) : a(whole) {}  // NOLINT(google-explicit-constructor)
  Name(std::string_view first, std::string_view second, std::string_view third = {}) : a(first), b(second), c(third) {}
  /// This name with one more part; at most three.
  [[nodiscard]] Name operator/(std::string_view leaf) const { return b.empty() ? Name(a, leaf) : Name(a, b, leaf); }
};

}  // namespace
}  // namespace nicsync::vault::wire

template <>
struct fmt::formatter<nicsync::vault::wire::Name> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const nicsync::vault::wire::Name& n, Ctx& ctx) const {
    auto out = ctx.out();
    bool first = true;
    for (std::string_view part : {n.a, n.b, n.c}) {
      if (part.empty()) continue;
      if (!first) *out++ = '.';
      first = false;
      out = std::copy(part.begin(), part.end(), out);
    }
    return out;
  }
};

namespace nicsync::vault::wire {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view what) : what_(what) {}

  [[nodiscard]] Error shape(std::string_view why) const {
    return Error(Errc::vault_bad_response, fmt::format("Vault's response to {} has the wrong shape: {}", what_, why));
  }

  Result<const json::object*> object(const json::value& v, Name name) const {
    if (!v.is_object()) return shape(fmt::format("\"{}\" is not an object", name));
    return &v.as_object();
  }
  Result<const json::object*> object(const json::object& parent, std::string_view key, Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr) return shape(fmt::format("\"{}\" is missing", name));
    return object(*v, name);
  }
  /// Null or absent gives nullptr.
  Result<const json::object*> nullable_object(const json::object& parent, std::string_view key, Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return static_cast<const json::object*>(nullptr);
    return object(*v, name);
  }
  Result<std::int64_t> integer(const json::object& parent, std::string_view key, Name name,
                               std::optional<std::int64_t> fallback = std::nullopt) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      return shape(fmt::format("\"{}\" is missing", name));
    }
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return static_cast<std::int64_t>(v->get_uint64());
    }
    if (v->is_double()) {
      const double d = v->get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
    }
    return shape(fmt::format("\"{}\" is not an integer", name));
  }
  Result<std::string> string(const json::object& parent, std::string_view key, Name name, bool required = false) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (required) return shape(fmt::format("\"{}\" is missing", name));
      return std::string();
    }
    if (!v->is_string()) return shape(fmt::format("\"{}\" is not a string", name));
    return std::string(std::string_view(v->get_string()));
  }
  Result<bool> boolean(const json::object& parent, std::string_view key, Name name) const {
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return false;
    if (!v->is_bool()) return shape(fmt::format("\"{}\" is not a boolean", name));
    return v->get_bool();
  }
  Result<std::vector<std::string>> strings(const json::object& parent, std::string_view key, Name name) const {
    std::vector<std::string> out;
    const auto* v = parent.if_contains(key);
    if (v == nullptr || v->is_null()) return out;
    if (!v->is_array()) return shape(fmt::format("\"{}\" is not an array", name));
    for (const auto& item : v->get_array()) {
      if (!item.is_string()) return shape(fmt::format("\"{}\" holds a non-string", name));
      out.emplace_back(std::string_view(item.get_string()));
    }
    return out;
  }
  Result<std::map<std::string, std::string>> string_map(const json::object& parent, std::string_view key,
                                                        Name name) const {
    std::map<std::string, std::string> out;
    auto obj = nullable_object(parent, key, name);
    if (!obj) return obj.error();
    if (*obj == nullptr) return out;
    for (const auto& [k, v] : **obj) {
      // Vault only stores strings here; anything else is skipped rather than failing a read.
      if (v.is_string()) out.emplace(std::string(std::string_view(k)), std::string(std::string_view(v.get_string())));
    }
    return out;
  }

 private:
  std::string_view what_;
};

std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

Result<KvVersionInfo> read_version_info(const Reader& r, const json::object& o, Name name,
                                        std::optional<std::int64_t> version) {
  KvVersionInfo info;
  if (version) {
    info.version = *version;
  } else {
    auto v = r.integer(o, "version", name / "version");
    if (!v) return v.error();
    info.version = *v;
  }
  auto created = r.string(o, "created_time", name / "created_time");
  if (!created) return created.error();
  info.created_time = std::move(*created);
  auto deletion = r.string(o, "deletion_time", name / "deletion_time");
  if (!deletion) return deletion.error();
  info.deletion_time = std::move(*deletion);
  auto destroyed = r.boolean(o, "destroyed", name / "destroyed");
  if (!destroyed) return destroyed.error();
  info.destroyed = *destroyed;
  if (!info.created_time.empty()) {
    auto t = parse_time(info.created_time);
    if (!t) return r.shape(fmt::format("\"{}.created_time\" is not an RFC 3339 time", name));
    info.created_at = *t;
  }
  if (!info.deletion_time.empty()) {
    info.deletion_at = parse_time(info.deletion_time);
    if (!info.deletion_at) return r.shape(fmt::format("\"{}.deletion_time\" is not an RFC 3339 time", name));
  }
  return info;
}

Result<KvData> read_fields(const json::object& data, const KvPath& path) {
  KvData::Fields fields;
  std::map<std::string, std::string> non_string;
  for (const auto& [k, v] : data) {
    std::string name{std::string_view(k)};
    if (v.is_string()) {
      // Straight from the (wiping) JSON storage into the Secret: no plain copy in between.
      fields.emplace(std::move(name), Secret(std::string_view(v.get_string())));
    } else {
      non_string.emplace(std::move(name), std::string(kind_name(v.kind())));
    }
  }
  return KvData(path.str(), std::move(fields), std::move(non_string));
}

std::string kv_what(std::string_view method, const KvPath& path, std::string_view infix) {
  if (path.mount.empty()) return fmt::format("{} {}", method, path.key.str());
  return fmt::format("{} {}/{}{}", method, path.mount.str(), infix, path.key.str());
}

}  // namespace

Result<KvSecret> parse_kv2_data(const KvPath& path, int status, std::string_view body) {
  const std::string what = kv_what("GET", path, "data/");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  const json::object& envelope = **top;

  if (status == 404) {
    // Deleted or destroyed: Vault writes a success-shaped envelope with data.data == null.
    const auto* data = envelope.if_contains("data");
    if (data != nullptr && data->is_object()) {
      const auto& d = data->get_object();
      const auto* md = d.if_contains("metadata");
      const auto* dd = d.if_contains("data");
      if (md != nullptr && md->is_object() && (dd == nullptr || dd->is_null())) {
        auto info = read_version_info(r, md->get_object(), "data.metadata", std::nullopt);
        if (!info) return info.error();
        Error e;
        if (info->destroyed) {
          e = Error(Errc::vault_version_destroyed,
                    fmt::format("{} version {} is destroyed; write a new version (vault kv put {} ...)", path.str(),
                                info->version, path.str()));
        } else if (!info->deletion_time.empty()) {
          e = Error(Errc::vault_version_deleted,
                    fmt::format("{} version {} was deleted at {}; undelete it (vault kv undelete -versions={} {}) or "
                                "write a new version",
                                path.str(), info->version, info->deletion_time, info->version, path.str()));
        } else {
          e = Error(Errc::vault_not_found, fmt::format("{} version {} has no data (404)", path.str(), info->version));
        }
        e.http_status = 404;
        return e;
      }
    }
    auto warnings = r.strings(envelope, "warnings", "warnings");
    std::string detail;
    if (warnings && !warnings->empty()) detail = ": " + vault_text((*warnings)[0]);
    for (const auto& m : error_messages(body)) detail += ": " + m;
    Error e(Errc::vault_not_found,
            fmt::format("no secret at {} (KV v2 {} answered 404{}); check the mount, the path and the version",
                        path.str(), what, detail));
    e.http_status = 404;
    return e;
  }

  auto data = r.object(envelope, "data", "data");
  if (!data) return data.error();
  const auto* inner = (*data)->if_contains("data");
  if (inner == nullptr || inner->is_null()) {
    return r.shape("\"data.data\" is missing or null in a 200 response (is this a KV v1 mount?)");
  }
  if (!inner->is_object()) return r.shape("\"data.data\" is not an object");
  auto md = r.object(**data, "metadata", "data.metadata");
  if (!md) return md.error();
  auto info = read_version_info(r, **md, "data.metadata", std::nullopt);
  if (!info) return info.error();
  auto custom = r.string_map(**md, "custom_metadata", "data.metadata.custom_metadata");
  if (!custom) return custom.error();
  auto fields = read_fields(inner->get_object(), path);
  if (!fields) return fields.error();

  KvSecret out;
  out.path = path;
  out.kv = KvVersion::v2;
  out.version = info->version;
  out.metadata = std::move(*info);
  out.custom_metadata = std::move(*custom);
  out.data = std::move(*fields);
  return out;
}

Result<KvMetadata> parse_kv2_metadata(const KvPath& path, std::string_view body) {
  const std::string what = kv_what("GET", path, "metadata/");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  const json::object& d = **data;

  KvMetadata m;
  m.path = path;
  auto current = r.integer(d, "current_version", "data.current_version");
  if (!current) return current.error();
  m.current_version = *current;
  auto oldest = r.integer(d, "oldest_version", "data.oldest_version", 0);
  if (!oldest) return oldest.error();
  m.oldest_version = *oldest;
  auto max_versions = r.integer(d, "max_versions", "data.max_versions", 0);
  if (!max_versions) return max_versions.error();
  m.max_versions = *max_versions;
  auto cas = r.boolean(d, "cas_required", "data.cas_required");
  if (!cas) return cas.error();
  m.cas_required = *cas;
  auto dva = r.string(d, "delete_version_after", "data.delete_version_after");
  if (!dva) return dva.error();
  m.delete_version_after = std::move(*dva);
  auto created = r.string(d, "created_time", "data.created_time");
  if (!created) return created.error();
  m.created_time = std::move(*created);
  auto updated = r.string(d, "updated_time", "data.updated_time");
  if (!updated) return updated.error();
  m.updated_time = std::move(*updated);
  if (!m.created_time.empty()) {
    auto t = parse_time(m.created_time);
    if (!t) return r.shape("\"data.created_time\" is not an RFC 3339 time");
    m.created_at = *t;
  }
  if (!m.updated_time.empty()) {
    auto t = parse_time(m.updated_time);
    if (!t) return r.shape("\"data.updated_time\" is not an RFC 3339 time");
    m.updated_at = *t;
  }
  auto custom = r.string_map(d, "custom_metadata", "data.custom_metadata");
  if (!custom) return custom.error();
  m.custom_metadata = std::move(*custom);

  auto versions = r.nullable_object(d, "versions", "data.versions");
  if (!versions) return versions.error();
  if (*versions != nullptr) {
    for (const auto& [k, v] : **versions) {
      const std::string_view key(k);
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), n);
      if (ec != std::errc() || end != key.data() + key.size() || n <= 0) {
        return r.shape(
            fmt::format("\"data.versions\" has a key that is not a version number: \"{}\"", vault_text(key, 40)));
      }
      const Name name("data.versions", key);
      auto obj = r.object(v, name);
      if (!obj) return obj.error();
      auto info = read_version_info(r, **obj, name, n);
      if (!info) return info.error();
      m.versions.emplace(n, std::move(*info));
    }
  }
  return m;
}

Result<KvSecret> parse_kv1_data(const KvPath& path, std::string_view body) {
  const std::string what = kv_what("GET", path, "");
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  auto fields = read_fields(**data, path);
  if (!fields) return fields.error();
  KvSecret out;
  out.path = path;
  out.kv = KvVersion::v1;
  out.data = std::move(*fields);
  return out;
}

Result<std::vector<std::string>> parse_list(std::string_view what, std::string_view body) {
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  if ((*data)->if_contains("keys") == nullptr) return r.shape("\"data.keys\" is missing");
  return r.strings(**data, "keys", "data.keys");
}

Result<MountInfo> parse_mount(std::string_view what, std::string_view body) {
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  auto mount_path = r.string(**data, "path", "data.path", true);
  if (!mount_path) return mount_path.error();
  auto type = r.string(**data, "type", "data.type");
  if (!type) return type.error();
  auto path = VaultPath::parse(*mount_path);
  if (!path || path->empty()) {
    return r.shape(fmt::format("\"data.path\" is not a mount path: \"{}\"", vault_text(*mount_path, 100)));
  }
  MountInfo info;
  info.path = std::move(*path);
  info.type = std::move(*type);
  // The CLI's rule (command/kv_helpers.go): options.version "2" is v2, anything else v1.
  info.version = KvVersion::v1;
  auto options = r.nullable_object(**data, "options", "data.options");
  if (!options) return options.error();
  if (*options != nullptr) {
    const auto* v = (*options)->if_contains("version");
    if (v != nullptr && v->is_string() && std::string_view(v->get_string()) == "2") info.version = KvVersion::v2;
  }
  return info;
}

Result<AuthBlock> parse_auth(std::string_view what, std::string_view body) {
  const Reader r(what);
  JsonScratch scratch;
  auto parsed = parse_json(body, what, scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto auth = r.nullable_object(**top, "auth", "auth");
  if (!auth) return auth.error();
  if (*auth == nullptr) return r.shape("\"auth\" is missing or null");
  const json::object& a = **auth;
  AuthBlock out;
  const auto* token = a.if_contains("client_token");
  if (token == nullptr || !token->is_string() || token->get_string().empty()) {
    return r.shape("\"auth.client_token\" is missing or not a string");
  }
  out.token = Token(Secret(std::string_view(token->get_string())));
  auto accessor = r.string(a, "accessor", "auth.accessor");
  if (!accessor) return accessor.error();
  out.accessor = std::move(*accessor);
  auto policies = r.strings(a, "policies", "auth.policies");
  if (!policies) return policies.error();
  out.policies = std::move(*policies);
  auto lease = r.integer(a, "lease_duration", "auth.lease_duration", 0);
  if (!lease) return lease.error();
  if (*lease < 0) return r.shape("\"auth.lease_duration\" is negative");
  out.lease_duration = std::chrono::seconds(std::min<std::int64_t>(*lease, kMaxLease.count()));
  auto renewable = r.boolean(a, "renewable", "auth.renewable");
  if (!renewable) return renewable.error();
  out.renewable = *renewable;
  auto warnings = r.strings(**top, "warnings", "warnings");
  if (!warnings) return warnings.error();
  out.warnings = std::move(*warnings);
  return out;
}

Result<TokenInfo> parse_lookup_self(std::string_view body) {
  const Reader r("GET auth/token/lookup-self");
  JsonScratch scratch;
  auto parsed = parse_json(body, "GET auth/token/lookup-self", scratch);
  if (!parsed) return parsed.error();
  auto top = r.object(*parsed, "the body");
  if (!top) return top.error();
  auto data = r.object(**top, "data", "data");
  if (!data) return data.error();
  const json::object& d = **data;
  TokenInfo info;
  auto ttl = r.integer(d, "ttl", "data.ttl", 0);
  if (!ttl) return ttl.error();
  if (*ttl < 0) return r.shape("\"data.ttl\" is negative");
  info.ttl = std::chrono::seconds(std::min<std::int64_t>(*ttl, kMaxLease.count()));
  auto renewable = r.boolean(d, "renewable", "data.renewable");
  if (!renewable) return renewable.error();
  info.renewable = *renewable;
  auto accessor = r.string(d, "accessor", "data.accessor");
  if (!accessor) return accessor.error();
  info.accessor = std::move(*accessor);
  auto display = r.string(d, "display_name", "data.display_name");
  if (!display) return display.error();
  info.display_name = std::move(*display);
  auto policies = r.strings(d, "policies", "data.policies");
  if (!policies) return policies.error();
  info.policies = std::move(*policies);
  auto expire = r.string(d, "expire_time", "data.expire_time");
  if (!expire) return expire.error();
  if (!expire->empty()) {
    info.expire_time = parse_time(*expire);
    if (!info.expire_time) return r.shape("\"data.expire_time\" is not an RFC 3339 time");
  }
  return info;
}

// --- scalars ------------------------------------------------------------------------------

std::optional<bool> parse_go_bool(std::string_view s) noexcept {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") return false;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_seconds_or_go_duration(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n > 1'000'000'000) return std::nullopt;
    return std::chrono::milliseconds(n * 1000);
  }
  // Go's time.ParseDuration without sign: ([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+ or "0".
  if (s == "0") return std::chrono::milliseconds(0);
  long double total_ns = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    long double value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') value = value * 10 + (s[i++] - '0');
    bool had_digits = i > start;
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i++] - '0') * scale;
        scale /= 10;
        had_digits = true;
      }
    }
    if (!had_digits) return std::nullopt;
    const std::size_t unit_start = i;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.') ++i;
    const std::string_view unit = s.substr(unit_start, i - unit_start);
    long double scale = 0;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      scale = 1e3L;
    } else if (unit == "ms") {
      scale = 1e6L;
    } else if (unit == "s") {
      scale = 1e9L;
    } else if (unit == "m") {
      scale = 60e9L;
    } else if (unit == "h") {
      scale = 3600e9L;
    } else {
      return std::nullopt;
    }
    total_ns += value * scale;
    if (total_ns > 1e18L) return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ns / 1e6L));
}

}  // namespace nicsync::vault::wire
