// The Vault client's authentication: logging in by each method (token, token file, AppRole),
// one login shared by concurrent callers, and calls made with the current token, where a 403 is
// judged (dead token or policy denial) and answered by one new login where that can help.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nicsync/core/text.hpp"
#include "nicsync/vault/client.hpp"
#include "vault/client_impl.hpp"

#include <sys/stat.h>

namespace nicsync::vault {
namespace asio = boost::asio;
using std::chrono::seconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxCredentialFile = 64u << 10;

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

}  // namespace

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

asio::awaitable<Result<void>> Client::login() {
  auto self = impl_;
  ++self->stats.calls;
  if (self->config_error) co_return self->finish_call(Result<void>(*self->config_error));
  co_return self->finish_call(co_await self->login_shared(self->gen));
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

}  // namespace nicsync::vault
