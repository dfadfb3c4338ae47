// The Vault client: construction from its config, and the transport every call goes through
// (retries with jitter, one redirect to the active node, the per-call deadline). Logging in and
// the token: client_auth.cpp and client_lifetime.cpp; KV calls: client_kv.cpp. Everything runs
// on the executor's thread; shared state needs no locks.
#include "nicsync/vault/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"
#include "vault/client_impl.hpp"

namespace nicsync::vault {
namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

bool is_redirect(int status) { return status == 301 || status == 302 || status == 307 || status == 308; }

asio::awaitable<bool> sleep_for(asio::any_io_executor ex, milliseconds d) {
  asio::steady_timer t(ex, d);
  auto [ec] = co_await t.async_wait(kTuple);
  co_return !ec;
}

}  // namespace

// --- construction -------------------------------------------------------------------------

Client::Impl::Impl(asio::any_io_executor executor, ClientConfig cfg, Clock& clk)
    : ex(std::move(executor)),
      config(std::move(cfg)),
      clock(clk),
      rng(std::random_device{}()),
      login_done(ex),
      lifetime_timer(ex) {
  login_done.expires_at(asio::steady_timer::time_point::max());
  if (config.address.empty()) config.address = "https://127.0.0.1:8200";
  if (auto v = validate(config); !v) {
    config_error = v.error();
  } else if (auto b = wire::parse_address(config.address, config.tls.server_name); !b) {
    config_error = b.error();
  } else {
    base = std::move(*b);
  }
  timeout = config.timeout.value_or(milliseconds(60'000));
  max_retries = config.max_retries.value_or(2);
  state.method = config.auth.method;

  http::ClientOptions options;
  options.tls.ca_file = config.tls.ca_cert;
  options.tls.ca_path = config.tls.ca_path;
  options.tls.client_cert = config.tls.client_cert;
  options.tls.client_key = config.tls.client_key;
  options.tls.verify = !config.tls.skip_verify.value_or(false);
  options.max_host_connections = config.max_connections;
  options.timeout = timeout;
  options.max_response_bytes = config.max_response_bytes;
  http = std::make_unique<http::Client>(ex, options);
  if (!options.tls.verify) {
    spdlog::warn(
        "vault: TLS certificate verification is OFF (VAULT_SKIP_VERIFY); anyone between nicsync and {} can "
        "read tokens and secrets",
        base.display);
  }
}

Client::Client(asio::any_io_executor executor, ClientConfig config, Clock& clock)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config), clock)) {}

Client::~Client() {
  if (impl_) impl_->shutdown();
}

void Client::Impl::shutdown() {
  if (shut) return;
  shut = true;
  http->shutdown();
  lifetime_timer.cancel();
  login_done.cancel();
}

void Client::shutdown() { impl_->shutdown(); }

const ClientConfig& Client::config() const noexcept { return impl_->config; }

ClientStats Client::stats() const {
  ClientStats s = impl_->stats;
  s.connections_opened = impl_->http->stats().connections_opened;
  return s;
}

// --- transport ------------------------------------------------------------------------------

// The coroutines of a call keep only what must outlive a suspension; building the request,
// reading errors and redirects happen in plain functions. (g++ keeps every local of a coroutine
// in its heap frame: with all of it inline, `send` and `authed` took ~1.9 KiB each, past the
// sizes the allocators cache, for every Vault read.)

http::Request Client::Impl::make_request(const Call& call, const Token* token, const std::string& redirected_url,
                                         milliseconds remaining) const {
  http::Request req;
  req.method = call.method;
  req.url = redirected_url.empty() ? wire::make_url(base.url_base, call.api_path, call.query) : redirected_url;
  if (redirected_url.empty()) req.connect_to = base.connect_to;
  req.headers = wire::make_headers(token, config.vault_namespace, !call.body.empty());
  req.body = call.body;
  // The token travels in a header: have the HTTP client wipe its copy too.
  req.sensitive = call.sensitive || token != nullptr;
  req.timeout = remaining;
  return req;
}

namespace {

std::string where_of(const Call& call) { return fmt::format("{} {}", call.method, call.api_path); }

Error transport_error(Error e) {
  std::string_view hint;
  if (e.is(Errc::http_connection_refused) || e.is(Errc::http_resolve_failed)) {
    hint = "; is Vault running, and is VAULT_ADDR right?";
  } else if (e.is(Errc::http_tls_verify)) {
    hint = "; check VAULT_CACERT / VAULT_CAPATH and VAULT_TLS_SERVER_NAME";
  } else if (e.is(Errc::http_tls)) {
    hint = "; check the client certificate (VAULT_CLIENT_CERT/KEY) and that the address is https";
  }
  e.message = fmt::format("Vault request failed: {}{}", e.message, hint);
  return e;
}

}  // namespace

std::optional<Result<std::string>> Client::Impl::redirect_target(const Call& call, const http::Response& r) const {
  // A standby that cannot forward answers 307 to the active node; follow one hop like the Go
  // client, never from https down to http.
  auto location = r.header("Location");
  if (!location || location->empty()) return std::nullopt;
  std::string target(*location);
  if (target.starts_with("/")) target = base.url_base + target;
  auto u = boost::urls::parse_uri(target);
  if (!u || (u->scheme() != "http" && u->scheme() != "https")) {
    return Result<std::string>(
        Error(Errc::vault_bad_response, fmt::format("Vault redirected {} to an unusable location", where_of(call))));
  }
  if (base.tls && u->scheme() == "http") {
    return Result<std::string>(Error(
        Errc::vault_bad_response,
        fmt::format("Vault redirected {} from https to http; refusing to send the token in clear", where_of(call))));
  }
  return Result<std::string>(std::move(target));
}

asio::awaitable<Result<http::Response>> Client::Impl::send(const Call& call, const Token* token) {
  if (config_error) co_return *config_error;
  const auto deadline = clock.now() + timeout;
  std::string redirected_url;
  int attempt = 0;
  // What the last attempt gave: handed back when no time is left for another.
  std::optional<Result<http::Response>> last;

  for (;;) {
    if (shut) co_return Error(Errc::http_client_shutdown, fmt::format("Vault client shut down ({})", where_of(call)));
    auto remaining = duration_cast<milliseconds>(deadline - clock.now());
    if (remaining <= milliseconds(0)) {
      if (last) co_return std::move(*last);
      co_return Error(Errc::http_timeout, fmt::format("Vault call {} exceeded its deadline of {}", where_of(call),
                                                      format_duration(timeout)));
    }
    ++stats.http_requests;
    auto r = co_await http->request(make_request(call, token, redirected_url, remaining));

    std::optional<milliseconds> delay;
    if (!r) {
      if (r.error().is(Errc::cancelled) || r.error().is(Errc::http_client_shutdown)) co_return std::move(r);
      r = transport_error(r.error());
      if (!wire::is_retryable_error(r.error()) || attempt >= max_retries) co_return std::move(r);
    } else {
      if (is_redirect(r->status) && redirected_url.empty()) {
        if (auto target = redirect_target(call, *r)) {
          if (!*target) co_return target->error();
          redirected_url = std::move(**target);
          continue;
        }
      }
      if (!wire::is_retryable_status(r->status) || attempt >= max_retries) co_return std::move(r);
      delay = r->retry_after();
    }
    last = std::move(r);
    if (!delay) delay = detail::full_jitter(config.retry_base, config.retry_cap, attempt, uniform());
    remaining = duration_cast<milliseconds>(deadline - clock.now());
    if (*delay >= remaining) {
      // No time left for the wait the server asked for: hand back what we have; the caller's
      // error carries Retry-After.
      co_return std::move(*last);
    }
    ++stats.retries;
    ++attempt;
    if (!co_await sleep_for(ex, *delay)) {
      co_return Error(Errc::cancelled, fmt::format("Vault call {} cancelled", where_of(call)));
    }
  }
}

}  // namespace nicsync::vault
