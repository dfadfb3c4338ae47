#pragma once
/// \file
/// The status page at GET / of the API listener: server-rendered HTML for the people who run
/// nicsyncd. A summary (counts per state, readiness, Vault, change feed, credential age), the
/// destinations, every pair filtered, sorted (problems first) and a page at a time, and a page
/// per GSTIN with its delivery history. Everything shown is escaped; nothing secret is in it.
/// Its stylesheet and script are served by the daemon too (no inline code: the page's
/// Content-Security-Policy allows only its own origin's files); it works with JavaScript off.

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/api/api_server.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/ledger/store.hpp"
#include "nicsync/sync/engine.hpp"

namespace nicsync::api {

/// Orders of the pair table.
enum class PageSort : std::uint8_t {
  problems,     ///< rejected, parked, retrying, source deleted, pending, too old, in sync; then GSTIN
  gstin,        ///< GSTIN, then destination
  destination,  ///< destination, then GSTIN
  age,          ///< oldest credential first
  attempts,     ///< most attempts first
  next_attempt  ///< soonest next attempt first
};

/// What GET / asks for, validated and bounded.
struct PageQuery {
  std::string gstin_text;                  ///< upper-case letters and digits, at most 15; matches anywhere
  std::optional<ledger::PairState> state;  ///< only pairs in this state
  bool problems_only = false;              ///< state=problems: every pair not in sync
  PageSort sort = PageSort::problems;
  std::size_t page = 1;  ///< 1-based
  std::size_t per_page = 100;
};

/// Parses GET /'s query string (raw, still percent-encoded). Known parameters: q, state, sort,
/// page, per; anything else, or a value out of bounds, is an error saying what is allowed.
Result<PageQuery> parse_page_query(std::string_view query);
/// The query string that asks for `q` (only the parameters that differ from the defaults).
std::string page_query_string(const PageQuery& q);

/// One page of the pair table: engine indices in display order, and how many pairs matched.
struct PairListing {
  std::vector<std::size_t> rows;
  std::size_t matched = 0;
  std::size_t pages = 1;
  /// Over every pair, counted in the same pass: pairs per state (by ledger::PairState's value)
  /// and credential freshness.
  std::array<std::size_t, 6> counts{};
  Freshness freshness;
};
/// Filters and sorts the engine's pairs in place (a compact key a pair, no copies of them) and
/// picks the page asked for, in one pass over the pairs. Clamps the page number to the last page.
PairListing list_pairs(const sync::Engine& engine, const PageQuery& query, std::chrono::seconds max_age,
                       std::chrono::system_clock::time_point now);

/// GET / (pure; for tests).
std::string render_status_page(const sync::Engine& engine, const ApiHooks& hooks, const PageQuery& query,
                               std::chrono::system_clock::time_point now);
/// GET /gstin/<GSTIN>: its pairs and their delivery history, newest first.
std::string render_gstin_page(std::string_view gstin, const std::vector<sync::PairView>& pairs,
                              const Result<std::vector<ledger::HistoryEntry>>& history, const ApiHooks& hooks,
                              std::chrono::system_clock::time_point now);
/// A small HTML page for an error (400, 404) with a link back.
std::string render_error_page(int status, std::string_view message);

/// The page's stylesheet and script (GET /static/page.css, /static/page.js).
std::string_view page_css() noexcept;
std::string_view page_js() noexcept;

/// `text` safe inside HTML text and double-quoted attributes.
std::string html_escape(std::string_view text);
/// A duration for people: "45s", "12m", "3h 20m", "41d 2h".
std::string human_duration(std::chrono::seconds d);

}  // namespace nicsync::api
