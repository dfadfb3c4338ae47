#pragma once
/// \file
/// A fixed-bucket histogram (Prometheus style: cumulative buckets, sum and count).

#include <cstdint>
#include <vector>

namespace nicsync {

class Histogram {
 public:
  /// `bounds` are the upper bounds of the buckets, ascending; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double value) noexcept;
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  /// Cumulative count of observations ≤ bounds()[i]; the last entry is +Inf (== count()).
  [[nodiscard]] std::vector<std::uint64_t> cumulative() const;
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] double sum() const noexcept { return sum_; }
  /// Estimated quantile (linear within the bucket), for logs and benchmarks.
  [[nodiscard]] double quantile(double q) const noexcept;

  /// Seconds buckets from 1 ms to 1 h, for delivery latency and lag.
  static std::vector<double> latency_bounds();

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, +Inf last
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace nicsync
