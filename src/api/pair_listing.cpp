// The status page's pair table without copying the pairs: GET /'s query parsed and bounded,
// the engine's pairs filtered and sorted through a compact key each (an index, a rank, one
// number and the GSTIN's text in place), and only the rows of the page asked for picked out.
// Credential freshness is counted in the same kind of pass.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>

#include "nicsync/api/status_page.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::api {
using ledger::PairState;
using SystemTime = std::chrono::system_clock::time_point;

namespace {

constexpr std::size_t kMaxQueryBytes = 512;
static_assert(std::tuple_size_v<decltype(PairListing::counts)> ==
                  static_cast<std::size_t>(PairState::source_deleted) + 1,
              "one count per pair state");
constexpr std::size_t kMaxPage = 1'000'000;

struct SortName {
  PageSort sort;
  std::string_view name;
};
constexpr SortName kSorts[] = {{PageSort::problems, "problems"},       {PageSort::gstin, "gstin"},
                               {PageSort::destination, "destination"}, {PageSort::age, "age"},
                               {PageSort::attempts, "attempts"},       {PageSort::next_attempt, "next"}};

std::string_view sort_name(PageSort s) {
  for (const auto& n : kSorts) {
    if (n.sort == s) return n.name;
  }
  return "problems";
}

std::optional<std::size_t> bounded_number(std::string_view text, std::size_t min, std::size_t max) {
  std::size_t n = 0;
  if (text.empty() || text.size() > 7) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || end != text.data() + text.size() || n < min || n > max) return std::nullopt;
  return n;
}

// Problems first: what needs an operator most, then what waits, then what is fine.
std::uint8_t severity(PairState s, bool too_old) {
  switch (s) {
    case PairState::rejected: return 0;
    case PairState::parked: return 1;
    case PairState::retrying: return 2;
    case PairState::source_deleted: return 3;
    case PairState::pending: return 4;
    case PairState::in_sync: return too_old ? 5 : 6;
  }
  return 7;
}

struct Key {
  std::string_view gstin;  // empty when the sort does not look at it
  std::int64_t value = 0;
  std::uint32_t index = 0;
  std::uint8_t rank = 0;
};

bool key_less(const Key& a, const Key& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  if (a.value != b.value) return a.value < b.value;
  if (a.gstin != b.gstin) return a.gstin < b.gstin;
  return a.index < b.index;
}

std::int64_t seconds_of(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<PageQuery> parse_page_query(std::string_view query) {
  auto bad = [](std::string_view why) { return Error(Errc::invalid_argument, std::string(why)); };
  PageQuery q;
  if (query.size() > kMaxQueryBytes) return bad("the query is too long");
  std::array<bool, 5> seen{};
  const std::array<std::string_view, 5> known = {"q", "state", "sort", "page", "per"};
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    std::string raw(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    std::replace(raw.begin(), raw.end(), '+', ' ');
    auto decoded = http::percent_decode(raw);
    if (!decoded) return bad("a parameter is not percent-encoded correctly");
    const std::string& value = *decoded;
    const auto slot = std::find(known.begin(), known.end(), key);
    if (slot == known.end()) return bad("unknown parameter (allowed: q, state, sort, page, per)");
    auto& once = seen[static_cast<std::size_t>(slot - known.begin())];
    if (once) return bad("a parameter is given twice");
    once = true;
    if (key == "q") {
      std::string text;
      for (char c : value) {
        if (c == ' ') continue;
        if (!std::isalnum(static_cast<unsigned char>(c))) return bad("q: a GSTIN or part of one (letters and digits)");
        text.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
      }
      if (text.size() > 15) return bad("q: at most 15 characters");
      q.gstin_text = std::move(text);
    } else if (key == "state") {
      if (value.empty()) continue;
      if (value == "problems") {
        q.problems_only = true;
      } else if (auto s = ledger::pair_state_from_string(value)) {
        q.state = *s;
      } else {
        return bad("state: one of problems, in_sync, pending, retrying, parked, rejected, source_deleted");
      }
    } else if (key == "sort") {
      auto it = std::find_if(std::begin(kSorts), std::end(kSorts), [&](const SortName& n) { return n.name == value; });
      if (it == std::end(kSorts)) return bad("sort: one of problems, gstin, destination, age, attempts, next");
      q.sort = it->sort;
    } else if (key == "page") {
      auto n = bounded_number(value, 1, kMaxPage);
      if (!n) return bad("page: a number from 1 to 1000000");
      q.page = *n;
    } else {
      auto n = bounded_number(value, 10, 500);
      if (!n) return bad("per: a number from 10 to 500");
      q.per_page = *n;
    }
  }
  return q;
}

std::string page_query_string(const PageQuery& q) {
  std::string out;
  auto add = [&](std::string_view key, std::string_view value) {
    out += out.empty() ? '?' : '&';
    out.append(key).append(1, '=').append(value);  // every value is letters, digits and '_'
  };
  if (!q.gstin_text.empty()) add("q", q.gstin_text);
  if (q.problems_only) add("state", "problems");
  if (q.state) add("state", ledger::to_string(*q.state));
  if (q.sort != PageSort::problems) add("sort", sort_name(q.sort));
  if (q.per_page != 100) add("per", std::to_string(q.per_page));
  if (q.page != 1) add("page", std::to_string(q.page));
  return out.empty() ? "/" : "/" + out;
}

PairListing list_pairs(const sync::Engine& engine, const PageQuery& query, std::chrono::seconds max_age,
                       SystemTime now) {
  PairListing out;
  const std::size_t n = engine.pair_count();
  const std::int64_t now_s = seconds_of(now);
  const std::int64_t limit_s = max_age.count();
  Freshness& fresh = out.freshness;
  fresh.max_age = std::max(max_age, std::chrono::seconds{0});
  std::int64_t oldest = 0;
  std::vector<Key> keys;
  keys.reserve(query.gstin_text.empty() && !query.state && !query.problems_only ? n : 64);
  for (std::size_t i = 0; i < n; ++i) {
    const sync::PairBrief b = engine.brief(i);
    const std::int64_t written_s = b.written_at == SystemTime{} ? 0 : seconds_of(b.written_at);
    ++out.counts[std::min<std::size_t>(static_cast<std::size_t>(b.state), out.counts.size() - 1)];
    fresh.versions_behind += b.versions_behind;
    if (written_s > 0) {
      ++fresh.known;
      const std::int64_t age = std::max<std::int64_t>(0, now_s - written_s);
      oldest = std::max(oldest, age);
      if (limit_s > 0 && age > limit_s) ++fresh.too_old;
    }
    if (query.state && b.state != *query.state) continue;
    if (query.problems_only && b.state == PairState::in_sync) continue;
    if (!query.gstin_text.empty() && b.gstin.find(query.gstin_text) == std::string_view::npos) continue;
    Key k;
    k.index = static_cast<std::uint32_t>(i);
    k.gstin = b.gstin;
    switch (query.sort) {
      case PageSort::problems: {
        const bool too_old = limit_s > 0 && written_s > 0 && now_s - written_s > limit_s;
        k.rank = severity(b.state, too_old);
        break;
      }
      case PageSort::gstin: break;
      case PageSort::destination: k.gstin = {}; break;  // the engine's own order
      case PageSort::age: k.value = written_s > 0 ? written_s : std::numeric_limits<std::int64_t>::max(); break;
      case PageSort::attempts: k.value = -static_cast<std::int64_t>(b.attempts); break;
      case PageSort::next_attempt:
        k.value = b.state == PairState::retrying && b.next_attempt_at != SystemTime{}
                      ? seconds_of(b.next_attempt_at)
                      : std::numeric_limits<std::int64_t>::max();
        break;
    }
    keys.push_back(k);
  }
  fresh.oldest = std::chrono::seconds(oldest);
  out.matched = keys.size();
  out.pages = std::max<std::size_t>(1, (keys.size() + query.per_page - 1) / query.per_page);
  const std::size_t page = std::min(query.page, out.pages);
  const std::size_t begin = (page - 1) * query.per_page;
  const std::size_t end = std::min(begin + query.per_page, keys.size());
  // Only the page's rows are put in order: those before it are only put before it.
  const auto first = keys.begin() + static_cast<std::ptrdiff_t>(begin);
  if (begin > 0) std::nth_element(keys.begin(), first, keys.end(), key_less);
  std::partial_sort(first, keys.begin() + static_cast<std::ptrdiff_t>(end), keys.end(), key_less);
  out.rows.reserve(end - begin);
  for (std::size_t i = begin; i < end; ++i) out.rows.push_back(keys[i].index);
  return out;
}

Freshness freshness(const sync::Engine& engine, const ApiHooks& hooks, SystemTime now) {
  Freshness f;
  if (hooks.max_credential_age) f.max_age = std::max(hooks.max_credential_age(), std::chrono::seconds{0});
  const std::int64_t now_s = seconds_of(now);
  std::int64_t oldest = 0;
  for (std::size_t i = 0, n = engine.pair_count(); i < n; ++i) {
    const sync::PairBrief b = engine.brief(i);
    f.versions_behind += b.versions_behind;
    if (b.written_at == SystemTime{}) continue;
    ++f.known;
    const std::int64_t age = std::max<std::int64_t>(0, now_s - seconds_of(b.written_at));
    oldest = std::max(oldest, age);
    if (f.max_age.count() > 0 && age > f.max_age.count()) ++f.too_old;
  }
  f.oldest = std::chrono::seconds(oldest);
  return f;
}

}  // namespace nicsync::api
