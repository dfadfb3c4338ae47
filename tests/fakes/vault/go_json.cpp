#include "go_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <random>

#include <fmt/format.h>

namespace nicsync::fakes {

// --- values --------------------------------------------------------------------------------

GoValue GoValue::boolean(bool b) {
  GoValue v;
  v.kind_ = Kind::boolean;
  v.bool_ = b;
  return v;
}

GoValue GoValue::number(std::int64_t n) {
  GoValue v;
  v.kind_ = Kind::number;
  v.text_ = std::to_string(n);
  return v;
}

GoValue GoValue::raw_number(std::string text) {
  GoValue v;
  v.kind_ = Kind::number;
  v.text_ = std::move(text);
  return v;
}

GoValue GoValue::string(std::string s) {
  GoValue v;
  v.kind_ = Kind::string;
  v.text_ = std::move(s);
  return v;
}

GoValue GoValue::array(std::vector<GoValue> items) {
  GoValue v;
  v.kind_ = Kind::array;
  v.items_ = std::move(items);
  return v;
}

GoValue GoValue::string_array(const std::vector<std::string>& items) {
  GoValue v = array();
  v.items_.reserve(items.size());
  for (const auto& s : items) v.items_.push_back(string(s));
  return v;
}

GoValue GoValue::object() {
  GoValue v;
  v.kind_ = Kind::object;
  return v;
}

GoValue GoValue::map() {
  GoValue v;
  v.kind_ = Kind::object;
  v.sorted_ = true;
  return v;
}

std::optional<std::int64_t> GoValue::as_int() const {
  if (kind_ != Kind::number) return std::nullopt;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), n);
  if (ec != std::errc{} || p != text_.data() + text_.size()) return std::nullopt;
  return n;
}

GoValue& GoValue::set(std::string key, GoValue value) {
  for (auto& m : members_) {
    if (m.key == key) {
      m.value = std::move(value);
      return *this;
    }
  }
  members_.push_back({std::move(key), std::move(value)});
  return *this;
}

const GoValue* GoValue::find(std::string_view key) const noexcept {
  for (const auto& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

GoValue* GoValue::find(std::string_view key) noexcept {
  for (auto& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

bool GoValue::erase(std::string_view key) {
  auto it = std::find_if(members_.begin(), members_.end(), [&](const Member& m) { return m.key == key; });
  if (it == members_.end()) return false;
  members_.erase(it);
  return true;
}

GoValue& GoValue::push(GoValue v) {
  items_.push_back(std::move(v));
  return *this;
}

bool operator==(const GoValue& a, const GoValue& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case GoValue::Kind::null: return true;
    case GoValue::Kind::boolean: return a.bool_ == b.bool_;
    case GoValue::Kind::number:
    case GoValue::Kind::string: return a.text_ == b.text_;
    case GoValue::Kind::array: return a.items_ == b.items_;
    case GoValue::Kind::object: {
      if (a.members_.size() != b.members_.size()) return false;
      for (const auto& m : a.members_) {
        const GoValue* other = b.find(m.key);
        if (!other || !(*other == m.value)) return false;
      }
      return true;
    }
  }
  return false;
}

// --- encoding ------------------------------------------------------------------------------

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Decodes one UTF-8 sequence at s[i] like Go's utf8.DecodeRuneInString: returns the code point
// and its length, or -1 and 1 for an invalid or overlong sequence, a surrogate or > U+10FFFF.
std::pair<std::int32_t, std::size_t> decode_utf8(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) -> int {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 < 0x80) return {b0, 1};
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    int c1 = cont(1);
    if (c1 < 0) return {-1, 1};
    return {((b0 & 0x1F) << 6) | c1, 2};
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    int c1 = cont(1);
    if (c1 < 0) return {-1, 1};
    if (b0 == 0xE0 && c1 < 0x20) return {-1, 1};   // overlong
    if (b0 == 0xED && c1 >= 0x20) return {-1, 1};  // surrogates
    int c2 = cont(2);
    if (c2 < 0) return {-1, 1};
    return {((b0 & 0x0F) << 12) | (c1 << 6) | c2, 3};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    int c1 = cont(1);
    if (c1 < 0) return {-1, 1};
    if (b0 == 0xF0 && c1 < 0x10) return {-1, 1};   // overlong
    if (b0 == 0xF4 && c1 >= 0x10) return {-1, 1};  // > U+10FFFF
    int c2 = cont(2);
    if (c2 < 0) return {-1, 1};
    int c3 = cont(3);
    if (c3 < 0) return {-1, 1};
    return {((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, 4};
  }
  return {-1, 1};
}

void append_utf8(std::uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

void go_quote_json(std::string_view s, std::string& out) {
  out.push_back('"');
  std::size_t start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      // Go's htmlSafeSet: printable ASCII except '"', '\\', '<', '>', '&'; DEL is safe.
      if (b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&') {
        ++i;
        continue;
      }
      out.append(s.substr(start, i - start));
      switch (b) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\b': out += "\\b"; break;  // Go >= 1.22
        case '\f': out += "\\f"; break;  // Go >= 1.22
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out.push_back(kHex[b >> 4]);
          out.push_back(kHex[b & 0xF]);
      }
      ++i;
      start = i;
      continue;
    }
    auto [cp, size] = decode_utf8(s, i);
    if (cp < 0) {
      out.append(s.substr(start, i - start));
      out += "\\ufffd";
      i += size;
      start = i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      out.append(s.substr(start, i - start));
      out += "\\u202";
      out.push_back(kHex[cp & 0xF]);
      i += size;
      start = i;
      continue;
    }
    i += size;
  }
  out.append(s.substr(start));
  out.push_back('"');
}

void GoValue::dump_to(std::string& out) const {
  switch (kind_) {
    case Kind::null: out += "null"; return;
    case Kind::boolean: out += bool_ ? "true" : "false"; return;
    case Kind::number: out += text_; return;
    case Kind::string: go_quote_json(text_, out); return;
    case Kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : items_) {
        if (!first) out.push_back(',');
        first = false;
        v.dump_to(out);
      }
      out.push_back(']');
      return;
    }
    case Kind::object: {
      out.push_back('{');
      auto write = [&](const Member& m, bool first) {
        if (!first) out.push_back(',');
        go_quote_json(m.key, out);
        out.push_back(':');
        m.value.dump_to(out);
      };
      if (sorted_) {
        std::vector<const Member*> order;
        order.reserve(members_.size());
        for (const auto& m : members_) order.push_back(&m);
        std::sort(order.begin(), order.end(), [](const Member* a, const Member* b) { return a->key < b->key; });
        for (std::size_t k = 0; k < order.size(); ++k) write(*order[k], k == 0);
      } else {
        for (std::size_t k = 0; k < members_.size(); ++k) write(members_[k], k == 0);
      }
      out.push_back('}');
      return;
    }
  }
}

std::string GoValue::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

// --- parsing -------------------------------------------------------------------------------

namespace {

// Go's quoteChar for syntax error messages.
std::string quote_char(unsigned char c) {
  if (c == '\'') return "'\\''";
  if (c == '"') return "'\"'";
  switch (c) {
    case '\a': return "'\\a'";
    case '\b': return "'\\b'";
    case '\f': return "'\\f'";
    case '\n': return "'\\n'";
    case '\r': return "'\\r'";
    case '\t': return "'\\t'";
    case '\v': return "'\\v'";
    default: break;
  }
  if (c < 0x20 || c == 0x7F) return fmt::format("'\\x{:02x}'", c);
  if (c < 0x80) return std::string("'") + static_cast<char>(c) + "'";
  if (c < 0xA0 || c == 0xAD) return fmt::format("'\\u{:04x}'", c);
  std::string s = "'";
  append_utf8(c, s);
  s += "'";
  return s;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<GoValue> parse_top() {
    skip_ws();
    if (i_ >= s_.size()) return Error(Errc::invalid_argument, "EOF");
    GoValue v;
    if (!value(v, 0)) return Error(Errc::invalid_argument, error_);
    return v;
  }

 private:
  bool fail_eof() {
    error_ = "unexpected EOF";
    return false;
  }
  bool fail(std::string_view context) {
    if (i_ >= s_.size()) return fail_eof();
    error_ = fmt::format("invalid character {} {}", quote_char(static_cast<unsigned char>(s_[i_])), context);
    return false;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool value(GoValue& out, int depth) {
    if (depth > 10000) {
      error_ = "exceeded max depth";
      return false;
    }
    skip_ws();
    if (i_ >= s_.size()) return fail_eof();
    const char c = s_[i_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      std::string str;
      if (!string(str)) return false;
      out = GoValue::string(std::move(str));
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    if (c == 't') return literal("true", GoValue::boolean(true), out);
    if (c == 'f') return literal("false", GoValue::boolean(false), out);
    if (c == 'n') return literal("null", GoValue(), out);
    return fail("looking for beginning of value");
  }

  bool literal(std::string_view word, GoValue v, GoValue& out) {
    for (std::size_t k = 0; k < word.size(); ++k, ++i_) {
      if (i_ >= s_.size()) return fail_eof();
      if (s_[i_] != word[k]) return fail(fmt::format("in literal {} (expecting '{}')", word, word[k]));
    }
    out = std::move(v);
    return true;
  }

  bool digits() {
    if (i_ >= s_.size()) return fail_eof();
    if (s_[i_] < '0' || s_[i_] > '9') return fail("in numeric literal");
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return true;
  }

  bool number(GoValue& out) {
    const std::size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ >= s_.size()) return fail_eof();
    if (s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    out = GoValue::raw_number(std::string(s_.substr(start, i_ - start)));
    return true;
  }

  int hex4() {
    int v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (i_ >= s_.size()) {
        fail_eof();
        return -1;
      }
      const char c = s_[i_];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) {
        fail("in \\u hexadecimal character escape");
        return -1;
      }
      v = v * 16 + d;
    }
    return v;
  }

  bool string(std::string& out) {
    ++i_;  // opening quote
    for (;;) {
      if (i_ >= s_.size()) return fail_eof();
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return fail("in string literal");
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return fail_eof();
        const char e = s_[i_];
        switch (e) {
          case '"': out.push_back('"'); break;
          case '\\': out.push_back('\\'); break;
          case '/': out.push_back('/'); break;
          case 'b': out.push_back('\b'); break;
          case 'f': out.push_back('\f'); break;
          case 'n': out.push_back('\n'); break;
          case 'r': out.push_back('\r'); break;
          case 't': out.push_back('\t'); break;
          case 'u': {
            ++i_;
            int cp = hex4();
            if (cp < 0) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              // A high surrogate must be followed by \u + low surrogate, else U+FFFD.
              if (i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                const std::size_t save = i_;
                i_ += 2;
                int lo = hex4();
                if (lo < 0) return false;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                  append_utf8(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), out);
                } else {
                  append_utf8(0xFFFD, out);
                  i_ = save;  // the second escape is decoded on its own
                }
              } else {
                append_utf8(0xFFFD, out);
              }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              append_utf8(0xFFFD, out);
            } else {
              append_utf8(static_cast<std::uint32_t>(cp), out);
            }
            continue;  // hex4 advanced past the digits
          }
          default: return fail("in string escape code");
        }
        ++i_;
        continue;
      }
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
        ++i_;
        continue;
      }
      auto [cp, size] = decode_utf8(s_, i_);
      if (cp < 0) {
        append_utf8(0xFFFD, out);
      } else {
        out.append(s_.substr(i_, size));
      }
      i_ += size;
    }
  }

  bool object(GoValue& out, int depth) {
    ++i_;
    out = GoValue::map();
    skip_ws();
    if (i_ >= s_.size()) return fail_eof();
    if (s_[i_] == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (i_ >= s_.size()) return fail_eof();
      if (s_[i_] != '"') return fail("looking for beginning of object key string");
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (i_ >= s_.size()) return fail_eof();
      if (s_[i_] != ':') return fail("after object key");
      ++i_;
      GoValue v;
      if (!value(v, depth + 1)) return false;
      out.set(std::move(key), std::move(v));
      skip_ws();
      if (i_ >= s_.size()) return fail_eof();
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return true;
      }
      return fail("after object key:value pair");
    }
  }

  bool array(GoValue& out, int depth) {
    ++i_;
    out = GoValue::array();
    skip_ws();
    if (i_ >= s_.size()) return fail_eof();
    if (s_[i_] == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      GoValue v;
      if (!value(v, depth + 1)) return false;
      out.push(std::move(v));
      skip_ws();
      if (i_ >= s_.size()) return fail_eof();
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return true;
      }
      return fail("after array element");
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;
};

}  // namespace

Result<GoValue> parse_go_json(std::string_view text) { return Parser(text).parse_top(); }

// --- time and duration ---------------------------------------------------------------------

std::string go_rfc3339_nano(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(t.time_since_epoch());
  const auto day = floor<days>(ns);
  const year_month_day ymd{sys_days{day}};
  auto rest = ns - day;
  const auto h = duration_cast<hours>(rest);
  rest -= h;
  const auto m = duration_cast<minutes>(rest);
  rest -= m;
  const auto s = duration_cast<seconds>(rest);
  rest -= s;
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), h.count(),
                                m.count(), s.count());
  if (rest.count() > 0) {
    std::string frac = fmt::format("{:09}", rest.count());
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    out += '.';
    out += frac;
  }
  out += 'Z';
  return out;
}

namespace {

// Go's fmtFrac: writes the fraction of v/10^prec (".12345") without trailing zeros, and no
// dot at all when the fraction is zero. Returns v/10^prec.
std::uint64_t fmt_frac(std::string& rev, std::uint64_t v, int prec) {
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    const auto digit = v % 10;
    print = print || digit != 0;
    if (print) rev.push_back(static_cast<char>('0' + digit));
    v /= 10;
  }
  if (print) rev.push_back('.');
  return v;
}

void fmt_int(std::string& rev, std::uint64_t v) {
  if (v == 0) {
    rev.push_back('0');
    return;
  }
  while (v > 0) {
    rev.push_back(static_cast<char>('0' + v % 10));
    v /= 10;
  }
}

}  // namespace

std::string go_duration(std::chrono::nanoseconds d) {
  // Built back to front like Go's Duration.format.
  std::string rev;
  const bool neg = d.count() < 0;
  std::uint64_t u = neg ? static_cast<std::uint64_t>(0) - static_cast<std::uint64_t>(d.count())
                        : static_cast<std::uint64_t>(d.count());
  if (u < 1'000'000'000ULL) {
    int prec = 0;
    rev.push_back('s');
    if (u == 0) return "0s";
    if (u < 1'000ULL) {
      prec = 0;
      rev.push_back('n');
    } else if (u < 1'000'000ULL) {
      prec = 3;
      rev += "\xB5\xC2";  // "µ" (U+00B5) reversed
    } else {
      prec = 6;
      rev.push_back('m');
    }
    u = fmt_frac(rev, u, prec);
    fmt_int(rev, u);
  } else {
    rev.push_back('s');
    u = fmt_frac(rev, u, 9);
    fmt_int(rev, u % 60);
    u /= 60;
    if (u > 0) {
      rev.push_back('m');
      fmt_int(rev, u % 60);
      u /= 60;
      if (u > 0) {
        rev.push_back('h');
        fmt_int(rev, u);
      }
    }
  }
  if (neg) rev.push_back('-');
  return {rev.rbegin(), rev.rend()};
}

namespace {

// Go's time.ParseDuration.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return std::nullopt;
    std::size_t k = 0;
    long double v = 0;
    while (k < s.size() && s[k] >= '0' && s[k] <= '9') v = v * 10 + (s[k++] - '0');
    const bool pre = k > 0;
    bool post = false;
    if (k < s.size() && s[k] == '.') {
      ++k;
      long double scale = 1;
      while (k < s.size() && s[k] >= '0' && s[k] <= '9') {
        scale /= 10;
        v += (s[k++] - '0') * scale;
        post = true;
      }
    }
    if (!pre && !post) return std::nullopt;
    s.remove_prefix(k);
    std::size_t u = 0;
    while (u < s.size() && s[u] != '.' && !(s[u] >= '0' && s[u] <= '9')) ++u;
    if (u == 0) return std::nullopt;  // missing unit
    const std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double mult = 0;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
      mult = 1e3L;
    else if (unit == "ms")
      mult = 1e6L;
    else if (unit == "s")
      mult = 1e9L;
    else if (unit == "m")
      mult = 60e9L;
    else if (unit == "h")
      mult = 3600e9L;
    else
      return std::nullopt;
    total += v * mult;
    if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  }
  auto ns = static_cast<std::int64_t>(total);
  return std::chrono::nanoseconds(neg ? -ns : ns);
}

}  // namespace

std::optional<std::chrono::nanoseconds> go_parse_duration_second(std::string_view s) {
  if (s.empty()) return std::chrono::nanoseconds(0);
  if (s.ends_with('s') || s.ends_with('m') || s.ends_with('h')) return parse_go_duration(s);
  if (s.ends_with('d')) {
    auto days = go_atoi(s.substr(0, s.size() - 1));
    if (!days) return std::nullopt;
    return std::chrono::hours(24 * *days);
  }
  auto secs = go_atoi(s);
  if (!secs) return std::nullopt;
  return std::chrono::seconds(*secs);
}

std::optional<bool> go_parse_bool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") return false;
  return std::nullopt;
}

std::optional<std::int64_t> go_atoi(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string http_date(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd{day};
  const weekday wd{day};
  const hh_mm_ss hms{secs - day};
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[wd.c_encoding()],
                     static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
                     static_cast<int>(ymd.year()), hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

namespace {
std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}
}  // namespace

std::string random_uuid() {
  std::uniform_int_distribution<std::uint64_t> dist;
  std::uint64_t hi = dist(rng());
  std::uint64_t lo = dist(rng());
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                  // version 4
  lo = (lo & ~(0xC000ULL << 48)) | (0x8000ULL << 48);  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                     lo & 0xFFFFFFFFFFFFULL);
}

std::string random_base62(std::size_t n) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<std::size_t> dist(0, kAlphabet.size() - 1);
  std::string out(n, '\0');
  for (auto& c : out) c = kAlphabet[dist(rng())];
  return out;
}

}  // namespace nicsync::fakes
