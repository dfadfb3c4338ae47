// The ClearTax access token: read from and saved to the cache file (off the event loop), counted
// against the hourly and daily call caps, refreshed by one caller at a time while the others
// wait, and forgotten when ClearTax refuses it.
#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/chrono.h>
#include <spdlog/spdlog.h>

#include "destinations/cleartax_impl.hpp"
#include "destinations/cleartax_wire.hpp"
#include "destinations/text.hpp"
#include "destinations/token_cache.hpp"
#include "nicsync/core/text.hpp"

namespace nicsync::destinations {
namespace asio = boost::asio;
using std::chrono::system_clock;

namespace {

using ImplPtr = std::shared_ptr<ClearTaxDestination::Impl>;

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

}  // namespace

bool ClearTaxDestination::Impl::token_usable(system_clock::time_point now) const {
  if (token.empty()) return false;
  if (!valid_till) return true;
  auto margin = std::chrono::duration_cast<system_clock::duration>(config.token_refresh_margin);
  if (obtained_at && *valid_till > *obtained_at) margin = std::min(margin, (*valid_till - *obtained_at) / 4);
  return now + margin < *valid_till;
}

void ClearTaxDestination::Impl::roll(system_clock::time_point now) {
  if (day != utc_day(now)) {
    day = utc_day(now);
    calls_today = 0;
  }
  while (!recent_calls.empty() && recent_calls.front() <= now - std::chrono::hours(1)) recent_calls.pop_front();
}

Secret ClearTaxDestination::Impl::cache_content() const {
  detail::TokenCacheRecord r;
  r.token_url = token_url;
  r.access_token = token;
  r.valid_till = valid_till;
  r.obtained_at = obtained_at;
  r.utc_day = day;
  r.calls_today = calls_today;
  for (auto t : recent_calls) r.recent_calls.push_back(unix_seconds(t));
  std::string content = detail::serialize_token_cache(r);
  return Secret::take(content);
}

DestinationStats ClearTaxDestination::Impl::stats() const {
  DestinationStats s = counters;
  if (!client_secret_mode()) {
    s.token_cached = !token.empty();
    return s;
  }
  const auto now = clock.system_now();
  const int today = day == utc_day(now) ? calls_today : 0;
  s.token_requests_today = static_cast<std::uint64_t>(today);
  s.token_requests_left_today = std::max(0, config.token_calls_per_day - today);
  s.token_requests_last_hour = static_cast<std::uint64_t>(
      std::count_if(recent_calls.begin(), recent_calls.end(), [&](auto t) { return t > now - std::chrono::hours(1); }));
  s.token_requests_hourly_cap = config.token_calls_per_hour;
  s.token_cached = token_usable(now);
  if (s.token_cached) s.token_valid_till = valid_till;
  return s;
}

namespace detail {
namespace {

asio::awaitable<void> persist(ImplPtr self) {
  if (!self->stash) co_return;
  auto stash = self->stash;  // kept alive across the wait
  auto r = co_await stash->save(self->stash_name, self->cache_content());
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

}  // namespace

asio::awaitable<void> load_cache(ImplPtr self) {
  if (self->cache_loaded) co_return;
  self->cache_loaded = true;
  if (!self->stash || !self->client_secret_mode()) co_return;
  const std::string where = self->stash->where(self->stash_name);
  auto stash = self->stash;
  auto content = co_await stash->load(self->stash_name);
  if (!content) {
    spdlog::warn("destination={} ignoring the token cache: {}", self->config.name, content.error().message);
    co_return;
  }
  if (!*content) co_return;
  auto rec = detail::parse_token_cache(**content, where);
  if (!rec) {
    spdlog::warn("destination={} ignoring the token cache: {}", self->config.name, rec.error().message);
    co_return;
  }
  auto& r = *rec;
  if (r.token_url != self->token_url) {
    spdlog::info("destination={} token cache {} is for {}, not {}: ignored", self->config.name, where,
                 redact_url(r.token_url), redact_url(self->token_url));
    co_return;
  }
  self->day = r.utc_day;
  self->calls_today = r.calls_today;
  for (auto s : r.recent_calls) self->recent_calls.emplace_back(std::chrono::seconds(s));
  std::sort(self->recent_calls.begin(), self->recent_calls.end());
  if (!r.access_token.empty()) {
    self->token = std::move(r.access_token);
    self->valid_till = r.valid_till;
    self->obtained_at = r.obtained_at;
    ++self->generation;
  }
  self->roll(self->clock.system_now());
  spdlog::info("destination={} token cache loaded: token={} valid_till={} calls_today={}", self->config.name,
               self->token.empty() ? "none" : "cached",
               self->valid_till ? fmt::format("{:%FT%TZ}", std::chrono::floor<std::chrono::seconds>(*self->valid_till))
                                : std::string("never"),
               self->calls_today);
}

asio::awaitable<Result<TokenRef>> acquire_token(ImplPtr self) {
  co_await load_cache(self);
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

void invalidate_token(ClearTaxDestination::Impl& self, std::uint64_t generation) {
  if (self.generation == generation) self.token.clear();
}

}  // namespace detail
}  // namespace nicsync::destinations
