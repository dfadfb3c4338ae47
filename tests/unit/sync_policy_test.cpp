// Pure timing and admission rules of the sync engine: backoff, token bucket, circuit breaker.
#include <random>

#include <gtest/gtest.h>

#include "nicsync/core/timestamp.hpp"
#include "nicsync/sync/backoff.hpp"
#include "nicsync/sync/limits.hpp"

namespace nicsync::sync {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

TEST(Backoff, CeilingDoublesFromBaseUpToTheCap) {
  BackoffPolicy p{.base = 1s, .cap = 300s};
  EXPECT_EQ(backoff_ceiling(p, 1), 1s);
  EXPECT_EQ(backoff_ceiling(p, 2), 2s);
  EXPECT_EQ(backoff_ceiling(p, 3), 4s);
  EXPECT_EQ(backoff_ceiling(p, 9), 256s);
  EXPECT_EQ(backoff_ceiling(p, 10), 300s);
  EXPECT_EQ(backoff_ceiling(p, 1000), 300s) << "no overflow for huge attempt counts";
  EXPECT_EQ(backoff_ceiling(p, 0), 1s);
}

TEST(Backoff, FullJitterSpansZeroToTheCeiling) {
  BackoffPolicy p{.base = 1s, .cap = 60s};
  EXPECT_EQ(backoff_delay(p, 3, std::nullopt, 0.0), 0ms);
  EXPECT_EQ(backoff_delay(p, 3, std::nullopt, 0.5), 2000ms);
  EXPECT_EQ(backoff_delay(p, 3, std::nullopt, 0.999), 3996ms);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  milliseconds lo = 1h, hi = 0ms;
  for (int i = 0; i < 10000; ++i) {
    auto d = backoff_delay(p, 20, std::nullopt, u(rng));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    ASSERT_LE(d, 60s);
  }
  EXPECT_LT(lo, 1s) << "full jitter reaches near zero";
  EXPECT_GT(hi, 59s) << "and near the cap";
}

TEST(Backoff, RetryAfterIsAFloorWithinReason) {
  BackoffPolicy p{.base = 1s, .cap = 60s, .max_retry_after = 600s};
  EXPECT_EQ(backoff_delay(p, 1, 30s, 0.1), 30s) << "never sooner than the server asked";
  EXPECT_EQ(backoff_delay(p, 10, 1s, 0.5), 30s) << "jitter above the floor wins";
  EXPECT_EQ(backoff_delay(p, 1, 86400s, 0.1), 600s) << "absurd Retry-After is capped";
  EXPECT_EQ(backoff_delay(p, 1, -5s, 0.0), 0ms);
}

TEST(Backoff, MaxAge) {
  BackoffPolicy p{.max_age = 1h};
  const auto t0 = SteadyTime{} + 10h;
  EXPECT_FALSE(past_max_age(p, t0, t0 + 59min));
  EXPECT_TRUE(past_max_age(p, t0, t0 + 60min));
}

TEST(TokenBucket, RateAndBurst) {
  SteadyTime t{};
  TokenBucket b(10.0, 3.0, t);
  EXPECT_TRUE(b.try_take(t));
  EXPECT_TRUE(b.try_take(t));
  EXPECT_TRUE(b.try_take(t));
  EXPECT_FALSE(b.try_take(t)) << "burst spent";
  EXPECT_NEAR(std::chrono::duration<double>(b.wait_time(t)).count(), 0.1, 1e-6);
  EXPECT_FALSE(b.try_take(t + 99ms));
  EXPECT_TRUE(b.try_take(t + 100ms));
  // Over one second at 10/s about 10 are admitted, no matter how often we ask.
  int admitted = 0;
  for (int ms = 200; ms <= 1200; ++ms) admitted += b.try_take(t + milliseconds(ms)) ? 1 : 0;
  EXPECT_GE(admitted, 10);
  EXPECT_LE(admitted, 11);
  TokenBucket unlimited(0, 1, t);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.try_take(t));
  EXPECT_EQ(unlimited.wait_time(t).count(), 0);
}

TEST(CircuitBreaker, OpensAfterThresholdAndProbesOnce) {
  CircuitBreaker cb(3, 10s);
  SteadyTime t = SteadyTime{} + 1h;
  EXPECT_TRUE(cb.allow(t));
  cb.on_failure(t);
  cb.on_failure(t);
  EXPECT_EQ(cb.state(t), CircuitBreaker::State::closed);
  cb.on_success();  // resets the count
  cb.on_failure(t);
  cb.on_failure(t);
  EXPECT_EQ(cb.state(t), CircuitBreaker::State::closed);
  cb.on_failure(t);
  EXPECT_EQ(cb.state(t), CircuitBreaker::State::open);
  EXPECT_FALSE(cb.allow(t + 9s));
  EXPECT_EQ(cb.state(t + 10s), CircuitBreaker::State::half_open);
  EXPECT_TRUE(cb.allow(t + 10s)) << "one probe";
  EXPECT_FALSE(cb.allow(t + 10s)) << "only one probe at a time";
  cb.on_failure(t + 11s);  // probe failed: open again from now
  EXPECT_EQ(cb.state(t + 20s), CircuitBreaker::State::open);
  EXPECT_TRUE(cb.allow(t + 21s));
  cb.on_success();
  EXPECT_EQ(cb.state(t + 21s), CircuitBreaker::State::closed);
  EXPECT_TRUE(cb.allow(t + 21s));
  EXPECT_EQ(cb.times_opened(), 2u);
}

TEST(CircuitBreaker, AbandonedProbeFreesTheSlot) {
  CircuitBreaker cb(1, 1s);
  SteadyTime t{};
  cb.on_failure(t);
  EXPECT_TRUE(cb.allow(t + 1s));
  cb.on_abandoned();
  EXPECT_TRUE(cb.allow(t + 1s));
}

TEST(Timestamp, ParsesVaultTimesAndOrdersThemCorrectly) {
  auto a = parse_rfc3339("2025-03-01T12:00:00Z");
  auto b = parse_rfc3339("2025-03-01T12:00:00.5Z");
  auto c = parse_rfc3339("2025-03-04T10:11:12.345678901Z");
  auto d = parse_rfc3339("2025-03-05T09:00:00.123456-08:00");
  ASSERT_TRUE(a && b && c && d);
  EXPECT_LT(*a, *b) << "text order would say the opposite";
  EXPECT_EQ((*b - *a).count(), 500'000'000);
  EXPECT_LT(*c, *d);
  EXPECT_EQ(*d, *parse_rfc3339("2025-03-05T17:00:00.123456Z"));
  for (const char* bad : {"", "2025-03-01", "2025-13-01T00:00:00Z", "2025-03-01T12:00:00", "2025-03-01T12:00:00.Z",
                          "2025-03-01T12:00:00Zjunk", "2025-02-30T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
  EXPECT_EQ(format_rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(1741168800123))),
            "2025-03-05T10:00:00.123Z");
}

}  // namespace
}  // namespace nicsync::sync
