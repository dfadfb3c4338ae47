// Token answers: the `auth` block of a login or renewal, and lookup-self's data.
#include <fmt/format.h>

#include "vault/wire.hpp"
#include "vault/wire_reader.hpp"

namespace nicsync::vault::wire {
namespace json = boost::json;

namespace {

// Longer leases and TTLs count as this long: a steady or system time point plus more than about
// 290 years overflows. Vault's own limit (Go's time.Duration) is 292 years; no real token gets
// close to a century.
constexpr std::chrono::seconds kMaxLease = std::chrono::hours(24 * 365 * 100);

}  // namespace

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

}  // namespace nicsync::vault::wire
