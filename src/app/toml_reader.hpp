#pragma once
// Reads typed values out of a toml++ table while remembering which keys were used, so that
// unknown keys can be reported; every message carries file:line and the dotted key.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "nicsync/core/duration.hpp"

namespace nicsync::app {

class ErrorList {
 public:
  explicit ErrorList(std::string source) : source_(std::move(source)) {}
  void add(const toml::source_region& where, std::string_view key, std::string_view what) {
    if (where.begin.line > 0) {
      errors_.push_back(fmt::format("{}:{}: {}: {}", source_, where.begin.line, key, what));
    } else {
      errors_.push_back(fmt::format("{}: {}: {}", source_, key, what));
    }
  }
  void add_plain(std::string what) { errors_.push_back(fmt::format("{}: {}", source_, what)); }
  /// Remembers where `key` was set (for checks that run after parsing).
  void note_line(const std::string& key, const toml::source_region& where) {
    if (where.begin.line > 0) lines_.emplace(key, where.begin.line);
  }
  [[nodiscard]] std::map<std::string, std::uint32_t, std::less<>> take_lines() { return std::move(lines_); }
  [[nodiscard]] bool empty() const noexcept { return errors_.empty(); }
  [[nodiscard]] const std::vector<std::string>& items() const noexcept { return errors_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

 private:
  std::string source_;
  std::vector<std::string> errors_;
  std::map<std::string, std::uint32_t, std::less<>> lines_;
};

inline std::string_view toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

/// One table of the config. Call `finish()` after reading to report unknown keys.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, ErrorList& errors)
      : table_(table), path_(std::move(path)), errors_(errors) {}

  [[nodiscard]] std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const toml::table& table() const noexcept { return table_; }
  ErrorList& errors() noexcept { return errors_; }

  const toml::node* node(std::string_view key) {
    used_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (n != nullptr) errors_.note_line(key_path(key), n->source());
    return n;
  }

  void error(std::string_view key, std::string_view what) {
    const toml::node* n = table_.get(key);
    errors_.add(n != nullptr ? n->source() : table_.source(), key_path(key), what);
  }

  std::optional<std::string> string(std::string_view key, std::string_view expected) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
    errors_.add(n->source(), key_path(key), fmt::format("expected {}, got {}", expected, toml_type_name(*n)));
    return std::nullopt;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (n->is_boolean()) return n->value<bool>();
    errors_.add(n->source(), key_path(key), fmt::format("expected true or false, got {}", toml_type_name(*n)));
    return std::nullopt;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) {
      errors_.add(n->source(), key_path(key),
                  fmt::format("expected an integer from {} to {}, got {}", min, max, toml_type_name(*n)));
      return std::nullopt;
    }
    const auto v = *n->value<std::int64_t>();
    if (v < min || v > max) {
      errors_.add(n->source(), key_path(key), fmt::format("expected an integer from {} to {}, got {}", min, max, v));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::chrono::milliseconds> duration(std::string_view key, std::chrono::milliseconds min,
                                                    std::chrono::milliseconds max) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) {
      errors_.add(n->source(), key_path(key),
                  fmt::format("expected a duration string such as \"30s\" or \"5m\", got {}", toml_type_name(*n)));
      return std::nullopt;
    }
    auto d = parse_duration(*n->value<std::string>());
    if (!d) {
      errors_.add(n->source(), key_path(key), d.error().message);
      return std::nullopt;
    }
    if (*d < min || *d > max) {
      errors_.add(n->source(), key_path(key),
                  fmt::format("must be between {} and {}", format_duration(min), format_duration(max)));
      return std::nullopt;
    }
    return *d;
  }

  /// A number (integer or float) within [min, max].
  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    double v = 0;
    if (n->is_integer()) {
      v = static_cast<double>(*n->value<std::int64_t>());
    } else if (n->is_floating_point()) {
      v = *n->value<double>();
    } else {
      errors_.add(n->source(), key_path(key),
                  fmt::format("expected a number from {} to {}, got {}", min, max, toml_type_name(*n)));
      return std::nullopt;
    }
    if (!(v >= min && v <= max)) {
      errors_.add(n->source(), key_path(key), fmt::format("expected a number from {} to {}, got {}", min, max, v));
      return std::nullopt;
    }
    return v;
  }

  /// An array of strings (an error for anything else, naming the bad element).
  std::optional<std::vector<std::string>> strings(std::string_view key, std::string_view expected) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      errors_.add(n->source(), key_path(key),
                  fmt::format("expected an array of {}, got {}", expected, toml_type_name(*n)));
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto& e = (*arr)[i];
      if (!e.is_string()) {
        errors_.add(e.source(), fmt::format("{}[{}]", key_path(key), i + 1),
                    fmt::format("expected {}, got {}", expected, toml_type_name(e)));
        return std::nullopt;
      }
      out.push_back(*e.value<std::string>());
    }
    return out;
  }

  /// An array of integers within [min, max].
  std::optional<std::vector<std::int64_t>> integers(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      errors_.add(n->source(), key_path(key), fmt::format("expected an array of integers, got {}", toml_type_name(*n)));
      return std::nullopt;
    }
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto& e = (*arr)[i];
      if (!e.is_integer() || *e.value<std::int64_t>() < min || *e.value<std::int64_t>() > max) {
        errors_.add(e.source(), fmt::format("{}[{}]", key_path(key), i + 1),
                    fmt::format("expected an integer from {} to {}", min, max));
        return std::nullopt;
      }
      out.push_back(*e.value<std::int64_t>());
    }
    return out;
  }

  /// An inline table (or table) of string values.
  std::optional<std::vector<std::pair<std::string, std::string>>> string_map(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return std::nullopt;
    const auto* t = n->as_table();
    if (t == nullptr) {
      errors_.add(n->source(), key_path(key),
                  fmt::format("expected a table of strings such as "
                              "{{ \"X-Env\" = \"prod\" }}, got {}",
                              toml_type_name(*n)));
      return std::nullopt;
    }
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : *t) {
      if (!v.is_string()) {
        errors_.add(v.source(), fmt::format("{}.{}", key_path(key), k.str()),
                    fmt::format("expected a string, got {}", toml_type_name(v)));
        continue;
      }
      out.emplace_back(std::string(k.str()), *v.value<std::string>());
    }
    return out;
  }

  /// An array of tables (`[[key]]`); each element comes with its dotted path "key[N]".
  std::vector<std::pair<const toml::table*, std::string>> tables(std::string_view key) {
    std::vector<std::pair<const toml::table*, std::string>> out;
    const toml::node* n = node(key);
    if (n == nullptr) return out;
    const auto* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      errors_.add(n->source(), key_path(key), fmt::format("expected [[{}]] tables, got {}", key, toml_type_name(*n)));
      return out;
    }
    for (std::size_t i = 0; i < arr->size(); ++i) {
      out.emplace_back((*arr)[i].as_table(), fmt::format("{}[{}]", key_path(key), i + 1));
    }
    return out;
  }

  /// A sub-table, or nothing (with an error if the key holds something else).
  const toml::table* table(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (const auto* t = n->as_table()) return t;
    errors_.add(n->source(), key_path(key), fmt::format("expected a table, got {}", toml_type_name(*n)));
    return nullptr;
  }

  /// Reports every key that was never asked for.
  void finish() {
    for (const auto& [k, v] : table_) {
      if (used_.count(std::string(k.str())) == 0) {
        errors_.add(v.source(), key_path(k.str()), "unknown key (check the spelling; see config/nicsyncd.toml)");
      }
    }
  }

 private:
  const toml::table& table_;
  std::string path_;
  ErrorList& errors_;
  std::set<std::string, std::less<>> used_;
};

}  // namespace nicsync::app
