// The Vault client's token lifetime: renewals on the lease schedule, a new login when renewing
// is refused or the token runs out, with backoff between failures.
#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nicsync/vault/client.hpp"
#include "vault/client_impl.hpp"

namespace nicsync::vault {
namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

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

}  // namespace nicsync::vault
