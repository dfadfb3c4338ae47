#include "nicsync/api/metrics.hpp"

#include <cmath>

#include <fmt/format.h>

namespace nicsync::api {
namespace {

std::string render_labels(const Labels& labels, std::string_view extra_key = {}, std::string_view extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += fmt::format("{}=\"{}\"", k, escape_label_value(v));
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += fmt::format("{}=\"{}\"", extra_key, extra_value);
  }
  out += '}';
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

MetricsWriter::Family& MetricsWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    order_.emplace_back(name);
    it = families_.emplace(std::string(name), Family{std::string(type), std::string(help), {}}).first;
  }
  return it->second;
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
  family(name, "gauge", help).lines.push_back(fmt::format("{}{} {}", name, render_labels(labels), number(value)));
}

void MetricsWriter::counter(std::string_view name, std::string_view help, const Labels& labels, double value) {
  family(name, "counter", help).lines.push_back(fmt::format("{}{} {}", name, render_labels(labels), number(value)));
}

void MetricsWriter::histogram(std::string_view name, std::string_view help, const Labels& labels, const Histogram& h) {
  auto& f = family(name, "histogram", help);
  const auto cumulative = h.cumulative();
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    f.lines.push_back(
        fmt::format("{}_bucket{} {}", name, render_labels(labels, "le", number(h.bounds()[i])), cumulative[i]));
  }
  f.lines.push_back(fmt::format("{}_bucket{} {}", name, render_labels(labels, "le", "+Inf"), h.count()));
  f.lines.push_back(fmt::format("{}_sum{} {}", name, render_labels(labels), number(h.sum())));
  f.lines.push_back(fmt::format("{}_count{} {}", name, render_labels(labels), h.count()));
}

std::string MetricsWriter::text() const {
  std::string out;
  for (const auto& name : order_) {
    const auto& f = families_.at(name);
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(f.help), name, f.type);
    for (const auto& line : f.lines) {
      out += line;
      out += '\n';
    }
  }
  return out;
}

}  // namespace nicsync::api
