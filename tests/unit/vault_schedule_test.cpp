// Retry backoff and the token lease schedule (renew at ~2/3 of the TTL, grace rules of the Go
// client's LifetimeWatcher, re-login at max TTL), driven by a ManualClock.
#include <gtest/gtest.h>

#include "vault/schedule.hpp"

namespace nicsync::vault::detail {
namespace {

using namespace std::chrono_literals;
using Action = LeaseSchedule::Action;

TEST(VaultBackoff, FullJitterStaysWithinTheCappedExponential) {
  EXPECT_EQ(full_jitter(250ms, 5s, 0, 0.0), 0ms);
  EXPECT_EQ(full_jitter(250ms, 5s, 0, 0.9999), 250ms);
  EXPECT_EQ(full_jitter(250ms, 5s, 1, 0.9999), 500ms);
  EXPECT_EQ(full_jitter(250ms, 5s, 3, 0.9999), 2000ms);
  EXPECT_EQ(full_jitter(250ms, 5s, 10, 0.9999), 5s);    // capped
  EXPECT_EQ(full_jitter(250ms, 5s, 1000, 0.9999), 5s);  // no overflow
  EXPECT_EQ(full_jitter(1s, 300s, 4, 0.5), 8s);
  for (int attempt = 0; attempt < 20; ++attempt) {
    for (double u : {0.0, 0.1, 0.5, 0.999999}) {
      const auto d = full_jitter(1s, 300s, attempt, u);
      EXPECT_GE(d, 0ms);
      EXPECT_LE(d, 300s);
    }
  }
}

TEST(VaultLease, RenewsAtTwoThirdsPlusAThirdOfTheGrace) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(3600s, true, 0s, clock.now(), 0.0);
  EXPECT_EQ(s.grace(), 360s);  // 10 % of the lease at u = 0
  auto step = s.next(clock.now());
  EXPECT_EQ(step.action, Action::renew);
  EXPECT_EQ(step.at, clock.now() + 2400s + 120s);

  s.start(3600s, true, 0s, clock.now(), 0.5);
  EXPECT_EQ(s.grace(), 540s);  // 15 %
  EXPECT_EQ(s.next(clock.now()).at, clock.now() + 2400s + 180s);
}

TEST(VaultLease, GraceUsesTheIncrementWhenSmaller) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(3600s, true, 600s, clock.now(), 0.0);
  EXPECT_EQ(s.grace(), 60s);
}

TEST(VaultLease, NonRenewableTokenIsReplacedWithinTheGrace) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(100s, false, 0s, clock.now(), 0.0);
  const auto step = s.next(clock.now());
  EXPECT_EQ(step.action, Action::relogin);
  EXPECT_EQ(step.at, clock.now() + 90s);  // expiry − 10 %
}

TEST(VaultLease, TokensWithoutExpiryNeedNothing) {
  ManualClock clock;
  LeaseSchedule s;
  EXPECT_EQ(s.next(clock.now()).action, Action::none);
  s.start(0s, false, 0s, clock.now(), 0.3);
  EXPECT_EQ(s.next(clock.now()).action, Action::none);
  EXPECT_FALSE(s.has_expiry());
}

TEST(VaultLease, RefusedRenewalMeansReloginNow) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(60s, true, 0s, clock.now(), 0.0);
  clock.advance(41s);
  s.refused(clock.now());
  const auto step = s.next(clock.now());
  EXPECT_EQ(step.action, Action::relogin);
  EXPECT_EQ(step.at, clock.now());
}

TEST(VaultLease, FailingRenewalsTurnIntoReloginWithinTheGrace) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(60s, true, 0s, clock.now(), 0.0);  // grace 6 s, renew at 40 + 2 = 42 s
  clock.advance(42s);
  EXPECT_EQ(s.next(clock.now()).action, Action::renew);
  clock.advance(11s);  // 53 s: still 7 s left
  EXPECT_EQ(s.next(clock.now()).action, Action::renew);
  clock.advance(1s);  // 54 s: 6 s left = the grace
  EXPECT_EQ(s.next(clock.now()).action, Action::relogin);
}

// A token with TTL 1 h and max TTL 2 h (a typical AppRole role): renewals extend it until the
// max TTL caps them, then a re-login happens before expiry and after most of the life was used.
TEST(VaultLease, MaxTtlCapEndsRenewalsWithAReloginBeforeExpiry) {
  ManualClock clock;
  const auto issued = clock.now();
  const auto hard_expiry = issued + 2h;
  LeaseSchedule s;
  s.start(3600s, true, 0s, clock.now(), 0.5);
  int renewals = 0;
  for (int i = 0; i < 100; ++i) {
    const auto step = s.next(clock.now());
    ASSERT_NE(step.action, Action::none);
    if (step.at > clock.now()) clock.advance(step.at - clock.now());
    if (step.action == Action::relogin) break;
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(hard_expiry - clock.now());
    s.renewed(std::min<std::chrono::seconds>(3600s, left), true, clock.now(), 0.5);
    ++renewals;
  }
  EXPECT_GE(renewals, 2);
  EXPECT_EQ(s.next(clock.now()).action, Action::relogin);
  EXPECT_LT(clock.now(), hard_expiry);
  EXPECT_GE(hard_expiry - clock.now(), s.grace());  // never runs into the last grace slice
  EXPECT_GT(clock.now() - issued, 80min);           // but used most of the token's life (86 of 120 min)
}

TEST(VaultLease, ShortTtlsStillLeaveTimeToRenew) {
  ManualClock clock;
  LeaseSchedule s;
  s.start(3s, true, 0s, clock.now(), 0.0);  // grace 300 ms, renew at 2 s + 100 ms
  auto step = s.next(clock.now());
  EXPECT_EQ(step.action, Action::renew);
  EXPECT_EQ(step.at, clock.now() + 2100ms);
  // A renewal that only grants 1 s (cap): 1 s − (667 + 100) ms ≤ 300 ms grace → re-login now.
  clock.advance(2100ms);
  s.renewed(1s, true, clock.now(), 0.0);
  step = s.next(clock.now());
  EXPECT_EQ(step.action, Action::relogin);
  EXPECT_EQ(step.at, clock.now());
}

}  // namespace
}  // namespace nicsync::vault::detail
