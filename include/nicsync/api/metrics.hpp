#pragma once
/// \file
/// Prometheus text exposition (version 0.0.4): families with HELP/TYPE written once, escaped
/// label values, histograms with cumulative buckets. Labels must have bounded cardinality: no
/// GSTIN labels.

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nicsync/core/histogram.hpp"

namespace nicsync::api {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsWriter {
 public:
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  void counter(std::string_view name, std::string_view help, const Labels& labels, double value);
  void histogram(std::string_view name, std::string_view help, const Labels& labels, const Histogram& h);
  /// The exposition text, families in the order they were first written.
  [[nodiscard]] std::string text() const;

 private:
  struct Family {
    std::string type;
    std::string help;
    std::vector<std::string> lines;
  };
  Family& family(std::string_view name, std::string_view type, std::string_view help);
  std::vector<std::string> order_;
  std::map<std::string, Family, std::less<>> families_;
};

/// `value` with Prometheus label escaping (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace nicsync::api
