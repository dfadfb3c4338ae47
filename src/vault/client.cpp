// The Vault client: calls with retries and classification, auth, and the token lifetime
// manager. Everything runs on the executor's thread; shared state needs no locks.
#include "nicsync/vault/client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nicsync/core/duration.hpp"
#include "nicsync/core/text.hpp"
#include "vault/client_impl.hpp"

#include <sys/stat.h>

namespace nicsync::vault {
namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxCredentialFile = 64u << 10;

// Wipes a string when the scope ends (also when a coroutine unwinds).
struct WipeOnExit {
  std::string& s;
  ~WipeOnExit() { secure_wipe(s); }
};

std::optional<FileIdentity> identify(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{st.st_dev, st.st_ino,
                      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, st.st_size};
}

// Reads a small credential file into a Secret (surrounding whitespace trimmed), leaving no
// plain copy behind. The message never holds the content.
Result<Secret> read_secret_file(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::io_error, fmt::format("cannot open the {} \"{}\": {}", what, path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size > static_cast<off_t>(kMaxCredentialFile)) {
    ::close(fd);
    return Error(Errc::io_error, fmt::format("the {} \"{}\" is not a small regular file", what, path));
  }
  std::string buf(kMaxCredentialFile, '\0');
  WipeOnExit wipe{buf};
  std::size_t used = 0;
  while (used < buf.size()) {
    const ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Error(Errc::io_error, fmt::format("cannot read the {} \"{}\": {}", what, path, std::strerror(err)));
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::string_view content(buf.data(), used);
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!content.empty() && space(content.front())) content.remove_prefix(1);
  while (!content.empty() && space(content.back())) content.remove_suffix(1);
  if (content.empty()) return Error(Errc::io_error, fmt::format("the {} \"{}\" is empty", what, path));
  return Secret(content);
}

std::string kv2_api(const KvPath& p, std::string_view part) {
  std::string out = p.mount.str();
  if (!out.empty()) out += '/';
  out.append(part);
  if (!p.key.empty()) {
    out += '/';
    out += p.key.str();
  }
  return out;
}

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

std::optional<HeldToken> Client::Impl::usable_token() const {
  if (config_error || shut || !token_usable(clock.now())) return std::nullopt;
  if (config.auth.method == AuthMethod::token_file && token_file_changed()) return std::nullopt;
  return HeldToken{token, gen};
}

asio::awaitable<Result<http::Response>> Client::Impl::authed(const Call& call) {
  bool relogged = false;
  for (;;) {
    // The usual case, a live token, without a coroutine of its own.
    auto held = usable_token();
    if (!held) {
      auto fresh = co_await ensure_token();
      if (!fresh) co_return fresh.error();
      held = std::move(*fresh);
    }
    auto r = co_await send(call, &held->token);
    if (!r || r->status != 403) co_return std::move(r);
    auto judged = co_await judge_403(call, *held, std::move(r->body), relogged);
    if (judged) co_return std::move(*judged);  // else: logged in again, try once more
  }
}

asio::awaitable<std::optional<Result<http::Response>>> Client::Impl::judge_403(const Call& call, HeldToken held,
                                                                               std::string body, bool& relogged) {
  using Judged = std::optional<Result<http::Response>>;
  // Vault Agent may have written a new token since we read the file.
  if (!relogged && config.auth.method == AuthMethod::token_file && token_file_changed()) {
    relogged = true;
    ++stats.relogins_after_403;
    if (auto l = co_await login_shared(held.gen); !l) co_return Judged(l.error());
    co_return std::nullopt;
  }

  // Is the token dead, or does the policy deny the path? Newer Vaults say "invalid token";
  // older ones say only "permission denied", so ask lookup-self.
  bool dead = wire::says_invalid_token(body);
  bool alive = false;
  if (!dead) {
    auto info = co_await lookup_self_with(held.token);
    if (!info && info.error().is(Errc::vault_token_invalid)) {
      dead = true;
    } else if (info) {
      alive = true;
      verified_policies = info->policies;
    }
  }

  if (dead) {
    if (held.gen == gen) token_dead = true;
    if (!relogged && config.auth.method != AuthMethod::token) {
      relogged = true;
      ++stats.relogins_after_403;
      spdlog::info("vault: token rejected (403 on {} {}); logging in again", call.method, call.ctx.api_path);
      if (auto l = co_await login_shared(held.gen); !l) co_return Judged(l.error());
      co_return std::nullopt;
    }
    co_return Judged(dead_token_error(call.ctx, body));
  }

  // A policy denial: one fresh AppRole login per token, in case the role's policies changed
  // (a token's policy list is fixed when it is issued).
  if (!relogged && config.auth.method == AuthMethod::approle && held.gen != denial_relogin_gen) {
    relogged = true;
    ++stats.relogins_after_403;
    if (auto l = co_await login_shared(held.gen); !l) co_return Judged(l.error());
    denial_relogin_gen = gen;
    co_return std::nullopt;
  }
  Error e = wire::error_from_response(call.ctx, 403, body, std::nullopt, false);
  if (alive && !verified_policies.empty()) {
    std::string list;
    for (const auto& p : verified_policies) list += (list.empty() ? "" : ", ") + p;
    e.message += fmt::format(" (the token's policies: {})", list);
  }
  co_return Judged(std::move(e));
}

Error Client::Impl::dead_token_error(const wire::CallContext& ctx, std::string_view body) const {
  Error e = wire::error_from_response(ctx, 403, body, std::nullopt, true);
  const auto said = wire::error_messages(body);
  std::string vault_says;
  for (const auto& m : said) vault_says += (vault_says.empty() ? ": " : "; ") + m;
  const std::string where = fmt::format("{} {} answered 403{}", ctx.method, ctx.api_path, vault_says);
  switch (config.auth.method) {
    case AuthMethod::token:
      e.message = fmt::format(
          "the Vault token (from the config or VAULT_TOKEN) is invalid, expired or revoked ({}); provide a new token "
          "and reload",
          where);
      break;
    case AuthMethod::token_file:
      e.message = fmt::format(
          "the Vault token in \"{}\" is invalid, expired or revoked ({}) and the file has not been replaced; check "
          "the Vault Agent (or job) that writes it",
          resolve_credential_path(config.auth.token_file), where);
      break;
    case AuthMethod::approle:
      e.message = fmt::format(
          "Vault rejects the token even right after an AppRole login ({}); check the role's token settings "
          "(token_num_uses, token_bound_cidrs)",
          where);
      break;
    case AuthMethod::none: break;
  }
  return e;
}

// --- auth ---------------------------------------------------------------------------------

std::string Client::Impl::resolve_credential_path(const std::string& path) const {
  std::filesystem::path p(path);
  if (p.is_relative() && !config.auth.credentials_directory.empty()) {
    return (std::filesystem::path(config.auth.credentials_directory) / p).string();
  }
  return path;
}

bool Client::Impl::expired(Clock::steady_time now) const noexcept { return expires_steady && now >= *expires_steady; }

bool Client::Impl::token_usable(Clock::steady_time now) const noexcept {
  return !token.empty() && !token_dead && !expired(now);
}

bool Client::Impl::token_file_changed() const {
  if (!token_file_id) return true;
  auto id = identify(resolve_credential_path(config.auth.token_file));
  return id && *id != *token_file_id;
}

asio::awaitable<Result<HeldToken>> Client::Impl::ensure_token() {
  if (config_error) co_return *config_error;
  if (shut) co_return Error(Errc::http_client_shutdown, "Vault client shut down");
  bool need = !token_usable(clock.now());
  if (!need && config.auth.method == AuthMethod::token_file && token_file_changed()) need = true;
  if (need) {
    if (auto r = co_await login_shared(gen); !r) co_return r.error();
    if (token.empty()) co_return Error(Errc::vault_token_invalid, "no Vault token after login");
  }
  co_return HeldToken{token, gen};
}

asio::awaitable<Result<void>> Client::Impl::login_shared(std::uint64_t observed_gen) {
  if (gen != observed_gen && token_usable(clock.now())) co_return Result<void>{};
  if (login_in_flight) {
    while (login_in_flight && !shut) {
      auto [ec] = co_await login_done.async_wait(kTuple);
      (void)ec;
    }
    co_return last_login;
  }
  struct InFlight {
    Impl& self;
    explicit InFlight(Impl& s) : self(s) { self.login_in_flight = true; }
    ~InFlight() {
      self.login_in_flight = false;
      self.login_done.cancel();  // wakes every waiter
    }
  } in_flight(*this);
  last_login = co_await do_login();
  if (!last_login) note_login_failure(last_login.error());
  co_return last_login;
}

void Client::Impl::note_login_failure(const Error& e) {
  ++state.login_failures;
  state.last_error = e;
  spdlog::warn("vault: login failed method={} error={}", to_string(config.auth.method), e.describe());
}

void Client::Impl::install_token(Token t, seconds ttl, bool renewable) {
  const auto now = clock.now();
  token = std::move(t);
  ++gen;
  token_dead = false;
  expires_steady = ttl.count() > 0 ? std::optional(now + ttl) : std::nullopt;
  schedule.start(ttl, renewable, config.renew_increment, now, uniform());
  ++state.logins;
  state.renewable = renewable;
  state.ttl = ttl;
  state.last_login_at = clock.system_now();
  state.expires_at = ttl.count() > 0 ? std::optional(clock.system_now() + ttl) : std::nullopt;
  state.last_error.reset();
  spdlog::info("vault: logged in method={} ttl={}s renewable={}", to_string(config.auth.method), ttl.count(),
               renewable);
  lifetime_timer.cancel();  // re-plan with the new lease
}

asio::awaitable<Result<void>> Client::Impl::do_login() {
  switch (config.auth.method) {
    case AuthMethod::none: co_return Error(Errc::config_invalid, "no Vault authentication configured");
    case AuthMethod::token: {
      auto info = co_await lookup_self_with(config.auth.token);
      if (!info) {
        Error e = info.error();
        if (e.is(Errc::vault_token_invalid)) {
          e.message =
              "the Vault token (from the config or VAULT_TOKEN) is invalid, expired or revoked "
              "(lookup-self answered 403); provide a new token and reload";
        }
        co_return e;
      }
      install_token(config.auth.token, info->ttl, info->renewable);
      co_return Result<void>{};
    }
    case AuthMethod::token_file: {
      const std::string path = resolve_credential_path(config.auth.token_file);
      const auto id = identify(path);
      auto secret = read_secret_file(path, "Vault token file");
      if (!secret) co_return secret.error();
      Token t(std::move(*secret));
      auto info = co_await lookup_self_with(t);
      if (!info) {
        Error e = info.error();
        if (e.is(Errc::vault_token_invalid)) {
          e.message = fmt::format(
              "the Vault token in \"{}\" is invalid, expired or revoked (lookup-self answered 403); check the Vault "
              "Agent (or job) that writes it",
              path);
        }
        co_return e;
      }
      token_file_id = id;
      install_token(std::move(t), info->ttl, info->renewable);
      co_return Result<void>{};
    }
    case AuthMethod::approle: {
      const std::string role_path = resolve_credential_path(config.auth.role_id_file);
      const std::string secret_path = resolve_credential_path(config.auth.secret_id_file);
      auto role_id = read_secret_file(role_path, "AppRole role_id file");
      if (!role_id) co_return role_id.error();
      auto secret_id = read_secret_file(secret_path, "AppRole secret_id file");
      if (!secret_id) co_return secret_id.error();
      Call call;
      call.method = "POST";
      call.api_path = fmt::format("auth/{}/login", config.auth.approle_mount);
      call.sensitive = true;
      // Sized up front so that no reallocation leaves a copy of the ids behind.
      call.body.reserve(64 + 2 * (role_id->size() + secret_id->size()) * 6);
      call.body += "{\"role_id\":";
      append_json_string(call.body, role_id->expose());
      call.body += ",\"secret_id\":";
      append_json_string(call.body, secret_id->expose());
      call.body += '}';
      call.ctx = {"POST", call.api_path, "log in with AppRole at", "update", "no AppRole auth mount here"};
      WipeOnExit wipe_ids{call.body};
      auto r = co_await send(call, nullptr);
      if (!r) co_return r.error();
      WipeOnExit wipe{r->body};
      if (r->status == 200) {
        auto auth = wire::parse_auth(fmt::format("POST auth/{}/login", config.auth.approle_mount), r->body);
        if (!auth) co_return auth.error();
        install_token(std::move(auth->token), auth->lease_duration, auth->renewable);
        co_return Result<void>{};
      }
      const auto said = wire::error_messages(r->body);
      std::string vault_says;
      for (const auto& m : said) vault_says += (vault_says.empty() ? ": " : "; ") + m;
      if (r->status == 400 || r->status == 403) {
        Error e(Errc::vault_login_failed,
                fmt::format("AppRole login at auth/{}/login refused ({}{}); check the role_id in \"{}\" and the "
                            "secret_id in \"{}\" (a secret_id can expire or run out of uses)",
                            config.auth.approle_mount, r->status, vault_says, role_path, secret_path));
        e.http_status = r->status;
        co_return e;
      }
      co_return wire::error_from_response(
          {"POST", fmt::format("auth/{}/login", config.auth.approle_mount), "log in with AppRole at", "update",
           fmt::format("no AppRole auth method mounted at auth/{}", config.auth.approle_mount)},
          r->status, r->body, r->retry_after());
    }
  }
  co_return Error(Errc::internal, "unknown auth method");
}

asio::awaitable<Result<TokenInfo>> Client::Impl::lookup_self_with(Token t) {
  Call call;
  call.api_path = "auth/token/lookup-self";
  call.ctx = {"GET", call.api_path, "look up the token at", "read", "no token endpoint"};
  auto r = co_await send(call, &t);
  if (!r) co_return r.error();
  WipeOnExit wipe{r->body};  // holds the token itself ("id")
  if (r->status == 200) co_return wire::parse_lookup_self(r->body);
  co_return wire::error_from_response(call.ctx, r->status, r->body, r->retry_after(), r->status == 403);
}

asio::awaitable<Client::Impl::RenewOutcome> Client::Impl::renew() {
  if (token.empty()) co_return RenewOutcome::refused;
  HeldToken held{token, gen};
  Call call;
  call.method = "POST";
  call.api_path = "auth/token/renew-self";
  call.body = fmt::format("{{\"increment\":{}}}", config.renew_increment.count());
  call.ctx = {"POST", call.api_path, "renew the token at", "update", "no token endpoint"};
  auto r = co_await send(call, &held.token);
  Error failure;
  if (!r) {
    failure = r.error();
  } else {
    WipeOnExit wipe{r->body};
    if (r->status == 200) {
      auto auth = wire::parse_auth("POST auth/token/renew-self", r->body);
      if (auth) {
        if (held.gen != gen) co_return RenewOutcome::renewed;  // replaced meanwhile
        const auto now = clock.now();
        schedule.renewed(auth->lease_duration, auth->renewable, now, uniform());
        expires_steady = auth->lease_duration.count() > 0 ? std::optional(now + auth->lease_duration) : std::nullopt;
        ++state.renewals;
        state.last_renewal_at = clock.system_now();
        state.ttl = auth->lease_duration;
        state.renewable = auth->renewable;
        state.expires_at =
            auth->lease_duration.count() > 0 ? std::optional(clock.system_now() + auth->lease_duration) : std::nullopt;
        state.last_error.reset();
        for (const auto& w : auth->warnings) spdlog::info("vault: token renewal: {}", w);
        spdlog::debug("vault: token renewed ttl={}s", auth->lease_duration.count());
        co_return RenewOutcome::renewed;
      }
      failure = auth.error();
    } else {
      failure = wire::error_from_response(call.ctx, r->status, r->body, r->retry_after(), r->status == 403);
      if (r->status == 400 || r->status == 403) {
        // "lease is not renewable", "invalid lease ID", "batch tokens cannot be renewed", dead token.
        if (r->status == 403 && held.gen == gen) token_dead = true;
        spdlog::info("vault: token renewal refused ({}); logging in again", failure.describe());
        ++state.renewal_failures;
        co_return RenewOutcome::refused;
      }
    }
  }
  ++state.renewal_failures;
  state.last_error = failure;
  spdlog::warn("vault: token renewal failed error={}", failure.describe());
  co_return RenewOutcome::failed;
}

asio::awaitable<void> Client::Impl::run_lifetime() {
  int failures = 0;
  for (;;) {
    auto cs = co_await asio::this_coro::cancellation_state;
    if (shut || cs.cancelled() != asio::cancellation_type::none) co_return;
    const auto now = clock.now();
    detail::LeaseSchedule::Step step = schedule.next(now);
    if (!token_usable(now)) step = {detail::LeaseSchedule::Action::relogin, now};

    if (step.action == detail::LeaseSchedule::Action::none || step.at > now) {
      // Sleep until the step is due, or until something asks for a re-plan.
      const auto wait = step.action == detail::LeaseSchedule::Action::none
                            ? milliseconds(std::chrono::hours(24))
                            : duration_cast<milliseconds>(step.at - now) + milliseconds(1);
      lifetime_timer.expires_after(wait);
      auto [ec] = co_await lifetime_timer.async_wait(kTuple);
      (void)ec;
      continue;
    }

    bool ok = false;
    if (step.action == detail::LeaseSchedule::Action::relogin) {
      ok = static_cast<bool>(co_await login_shared(gen));
    } else {
      const auto outcome = co_await renew();
      if (outcome == RenewOutcome::refused) {
        schedule.refused(clock.now());
        continue;
      }
      ok = outcome == RenewOutcome::renewed;
    }
    if (ok) {
      failures = 0;
      continue;
    }
    auto delay = detail::full_jitter(config.login_backoff_base, config.login_backoff_cap, failures++, uniform());
    if (step.action == detail::LeaseSchedule::Action::renew && expires_steady) {
      // Retry renewals only until the grace slice; the re-login then takes over.
      const auto left = duration_cast<milliseconds>(*expires_steady - schedule.grace() - clock.now());
      delay = std::clamp(delay, milliseconds(0), std::max(left, milliseconds(0)));
    }
    lifetime_timer.expires_after(delay);
    auto [ec] = co_await lifetime_timer.async_wait(kTuple);
    (void)ec;
  }
}

asio::awaitable<Result<void>> Client::login() {
  auto self = impl_;
  ++self->stats.calls;
  if (self->config_error) co_return self->finish_call(Result<void>(*self->config_error));
  co_return self->finish_call(co_await self->login_shared(self->gen));
}

asio::awaitable<void> Client::run_token_lifetime() {
  auto self = impl_;
  co_await self->run_lifetime();
}

void Client::recheck_token() noexcept { impl_->lifetime_timer.cancel(); }

TokenState Client::token_state() const {
  TokenState s = impl_->state;
  s.valid = impl_->token_usable(impl_->clock.now());
  return s;
}

asio::awaitable<Result<TokenInfo>> Client::lookup_self() {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = "auth/token/lookup-self";
  call.ctx = {"GET", call.api_path, "look up the token at", "read", "no token endpoint"};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<TokenInfo>(r.error()));
  WipeOnExit wipe{r->body};
  if (r->status == 200) co_return self->finish_call(wire::parse_lookup_self(r->body));
  co_return self->finish_call(
      Result<TokenInfo>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

// --- KV ---------------------------------------------------------------------------------------

asio::awaitable<Result<MountInfo>> Client::detect_mount(VaultPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = "sys/internal/ui/mounts/" + path.str();
  call.ctx = {"GET",
              call.api_path,
              "the mount preflight for",
              "read",
              "",
              fmt::format("give the token's policy at least one capability on a path under the mount that holds {} "
                          "(e.g. \"read\" on <mount>/data/<key>), and check that the mount exists",
                          path.str())};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<MountInfo>(r.error()));
  if (r->status == 404) co_return MountInfo{};  // very old Vault: no preflight, assume KV v1 (the CLI's rule)
  if (r->status != 200) {
    co_return self->finish_call(
        Result<MountInfo>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
  }
  auto info = wire::parse_mount("GET " + call.api_path, r->body);
  if (!info) co_return self->finish_call(std::move(info));
  if (info->type != "kv" && info->type != "generic") {
    co_return self->finish_call(Result<MountInfo>(
        Error(Errc::invalid_argument, fmt::format("{} is on a \"{}\" mount at {}/, not a KV mount; map a KV path",
                                                  path.str(), info->type, info->path.str()))));
  }
  co_return info;
}

asio::awaitable<Result<KvSecret>> Client::read_kv2(KvPath path, std::optional<std::int64_t> version) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = kv2_api(path, "data");
  if (version && *version > 0) call.query = fmt::format("version={}", *version);
  call.ctx = {"GET", call.api_path, "read", "read",
              version ? fmt::format("no version {} of {}", *version, path.str()) : "no secret at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvSecret>(r.error()));
  WipeOnExit wipe{r->body};
  if (r->status == 200 || r->status == 404) {
    co_return self->finish_call(wire::parse_kv2_data(path, r->status, r->body));
  }
  co_return self->finish_call(
      Result<KvSecret>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

asio::awaitable<Result<KvMetadata>> Client::read_kv2_metadata(KvPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = kv2_api(path, "metadata");
  call.ctx = {"GET", call.api_path, "read", "read", "no key at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvMetadata>(r.error()));
  if (r->status == 200) co_return self->finish_call(wire::parse_kv2_metadata(path, r->body));
  co_return self->finish_call(
      Result<KvMetadata>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

namespace {

asio::awaitable<Result<std::vector<std::string>>> list_at(std::shared_ptr<Client::Impl> self, std::string api_path,
                                                          std::string display) {
  ++self->stats.calls;
  Call call;
  call.api_path = std::move(api_path);
  call.query = "list=true";
  call.ctx = {"GET", call.api_path, "list", "list", "no folder " + display};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<std::vector<std::string>>(r.error()));
  if (r->status == 200) co_return self->finish_call(wire::parse_list("LIST " + call.api_path, r->body));
  // An empty or absent folder is a 404 with an empty error list.
  if (r->status == 404 && wire::error_messages(r->body).empty() && !wire::parse_json(r->body, "").has_error()) {
    co_return std::vector<std::string>{};
  }
  co_return self->finish_call(
      Result<std::vector<std::string>>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

}  // namespace

asio::awaitable<Result<std::vector<std::string>>> Client::list_kv2(VaultPath mount, VaultPath dir) {
  auto self = impl_;
  KvPath p{std::move(mount), std::move(dir)};
  co_return co_await list_at(self, kv2_api(p, "metadata"), p.str());
}

asio::awaitable<Result<KvSecret>> Client::read_kv1(KvPath path) {
  auto self = impl_;
  ++self->stats.calls;
  Call call;
  call.api_path = path.str();
  call.ctx = {"GET", call.api_path, "read", "read", "no secret at " + path.str()};
  auto r = co_await self->authed(call);
  if (!r) co_return self->finish_call(Result<KvSecret>(r.error()));
  WipeOnExit wipe{r->body};
  if (r->status == 200) co_return self->finish_call(wire::parse_kv1_data(path, r->body));
  co_return self->finish_call(
      Result<KvSecret>(wire::error_from_response(call.ctx, r->status, r->body, r->retry_after())));
}

asio::awaitable<Result<std::vector<std::string>>> Client::list_kv1(VaultPath mount, VaultPath dir) {
  auto self = impl_;
  KvPath p{std::move(mount), std::move(dir)};
  co_return co_await list_at(self, p.str(), p.str());
}

asio::awaitable<Result<KvSecret>> Client::read(KvPath path, KvVersion kv, std::optional<std::int64_t> version) {
  if (kv == KvVersion::v1) return read_kv1(std::move(path));
  return read_kv2(std::move(path), version);
}

}  // namespace nicsync::vault
