// The status page's HTML. Every text that comes from outside (GSTINs, Vault paths, destination
// names, error messages, warnings) goes through html_escape; attributes are always
// double-quoted; links are built only from validated values. No inline script or style: the
// page's policy allows only /static/page.css and /static/page.js.
#include "nicsync/api/status_page.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "nicsync/core/build_info.hpp"
#include "nicsync/core/error_hint.hpp"
#include "nicsync/core/gstin.hpp"
#include "nicsync/core/timestamp.hpp"

namespace nicsync::api {
using ledger::PairState;
using SystemTime = std::chrono::system_clock::time_point;
using std::chrono::seconds;

namespace {

constexpr PairState kStates[] = {PairState::in_sync, PairState::pending,  PairState::retrying,
                                 PairState::parked,  PairState::rejected, PairState::source_deleted};
constexpr int kRefreshSeconds = 10;

std::string_view state_label(PairState s) {
  switch (s) {
    case PairState::in_sync: return "in sync";
    case PairState::pending: return "pending";
    case PairState::retrying: return "retrying";
    case PairState::parked: return "parked";
    case PairState::rejected: return "rejected";
    case PairState::source_deleted: return "source deleted";
  }
  return "unknown";
}

/// Escaped text where `backquoted` words become <code>: the hint table's convention.
std::string prose(std::string_view text) {
  std::string out;
  bool in_code = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '`') continue;
    out += html_escape(text.substr(start, i - start));
    out += in_code ? "</code>" : "<code>";
    in_code = !in_code;
    start = i + 1;
  }
  out += html_escape(text.substr(start));
  if (in_code) out += "</code>";  // an odd number of backquotes: close the last one
  return out;
}

seconds age_of(SystemTime t, SystemTime now) {
  return std::max(seconds{0}, std::chrono::duration_cast<seconds>(now - t));
}

/// A time as "5m ago" / "in 30s", with the exact time as its title.
std::string when(SystemTime t, SystemTime now) {
  if (t == SystemTime{}) return "&ndash;";
  const std::string exact = html_escape(format_rfc3339(t));
  if (t <= now)
    return fmt::format("<time datetime=\"{}\" title=\"{}\">{} ago</time>", exact, exact,
                       human_duration(age_of(t, now)));
  return fmt::format("<time datetime=\"{}\" title=\"{}\">in {}</time>", exact, exact, human_duration(age_of(now, t)));
}

std::string version_cell(const std::optional<ledger::VersionRef>& v) {
  if (!v) return "&ndash;";
  return v->version.number == 0 ? std::string("kv1") : std::to_string(v->version.number);
}

std::string gstin_link(std::string_view gstin) {
  const std::string g = html_escape(gstin);
  const std::string_view state = gstin.size() >= 2 ? gstin_state_name(gstin.substr(0, 2)) : std::string_view{};
  return fmt::format("<a class=\"gstin\" href=\"/gstin/{}\">{}</a><span class=\"sub\">{}</span>", g, g,
                     html_escape(state));
}

std::string error_cell(const ledger::PairRecord& r) {
  if (r.last_error_code.empty()) return "&ndash;";
  std::string out = fmt::format("<span class=\"code\">{}</span>", html_escape(r.last_error_code));
  if (!r.last_error_provider.empty())
    out += fmt::format(" <span class=\"code\">{}</span>", html_escape(r.last_error_provider));
  out += fmt::format("<span class=\"msg\">{}</span>", html_escape(r.last_error_message));
  const ErrorHint h = error_hint_or_general(r.last_error_code);
  out += fmt::format("<span class=\"hint\">{}</span><span class=\"action\">What to do: {}</span>", prose(h.hint),
                     prose(h.next_action));
  return out;
}

void head(std::string& out, std::string_view title) {
  out += fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title>"
      "<link rel=\"stylesheet\" href=\"/static/page.css\"><script src=\"/static/page.js\" defer></script>"
      "<noscript><meta http-equiv=\"refresh\" content=\"{}\"></noscript></head>\n<body>",
      html_escape(title), kRefreshSeconds * 3);
}

void banner(std::string& out, bool ready) {
  out += fmt::format(
      "<header><h1><a href=\"/\">nicsyncd</a></h1><span class=\"ver\">{}</span>"
      "<span id=\"readiness\" class=\"badge {}\">{}</span></header>\n",
      html_escape(build_info::kVersion), ready ? "ok" : "bad", ready ? "ready" : "not ready");
}

void footer(std::string& out, SystemTime now) {
  out += fmt::format(
      "<footer>Shown at {} UTC; refreshes every {} s (with JavaScript off: every {} s). "
      "<a href=\"/v1/status\">/v1/status</a> &middot; <a href=\"/metrics\">/metrics</a></footer>\n</body></html>\n",
      html_escape(format_rfc3339(now)), kRefreshSeconds, kRefreshSeconds * 3);
}

void filter_form(std::string& out, const PageQuery& q) {
  out += "<form id=\"filter\" method=\"get\" action=\"/\" role=\"search\">";
  out += fmt::format(
      "<label>GSTIN <input id=\"q\" name=\"q\" value=\"{}\" maxlength=\"15\" autocomplete=\"off\" "
      "spellcheck=\"false\" placeholder=\"e.g. 07AAF\"></label>",
      html_escape(q.gstin_text));
  out += "<label>State <select id=\"state\" name=\"state\"><option value=\"\">all</option>";
  out += fmt::format("<option value=\"problems\"{}>all but in sync</option>", q.problems_only ? " selected" : "");
  for (auto s : kStates) {
    out += fmt::format("<option value=\"{}\"{}>{}</option>", ledger::to_string(s), q.state == s ? " selected" : "",
                       state_label(s));
  }
  out += "</select></label><label>Order <select id=\"sort\" name=\"sort\">";
  struct SortOption {
    PageSort sort;
    std::string_view value;
    std::string_view label;
  };
  constexpr SortOption sorts[] = {
      {PageSort::problems, "problems", "problems first"},    {PageSort::gstin, "gstin", "GSTIN"},
      {PageSort::destination, "destination", "destination"}, {PageSort::age, "age", "oldest credential"},
      {PageSort::attempts, "attempts", "most attempts"},     {PageSort::next_attempt, "next", "next attempt"}};
  for (const auto& o : sorts) {
    out += fmt::format("<option value=\"{}\"{}>{}</option>", o.value, q.sort == o.sort ? " selected" : "", o.label);
  }
  out += "</select></label><button type=\"submit\">Show</button></form>\n";
}

void summary(std::string& out, const PairListing& listing, const ApiHooks& hooks,
             const std::vector<std::string>& reasons) {
  const Freshness& fresh = listing.freshness;
  out += "<section class=\"summary\"><h2>Summary</h2><div class=\"cards\">";
  for (auto s : kStates) {
    const std::size_t n = listing.counts[static_cast<std::size_t>(s)];
    out += fmt::format(
        "<a class=\"card st-{0}{1}\" href=\"/?state={0}\"><span class=\"n\" data-state=\"{0}\">{2}</span> {3}</a>",
        ledger::to_string(s), n == 0 ? " zero" : "", n, state_label(s));
  }
  out += "</div><dl class=\"facts\">";
  out += "<dt>Readiness</dt><dd>";
  if (reasons.empty()) {
    out += "<span class=\"ok\">ready</span>";
  } else {
    out += "<span class=\"bad\">not ready</span><ul class=\"reasons\">";
    for (const auto& r : reasons) out += "<li>" + html_escape(r) + "</li>";
    out += "</ul>";
  }
  out += "</dd>";
  if (hooks.vault) {
    const VaultInfo v = hooks.vault();
    out += fmt::format("<dt>Vault</dt><dd><span class=\"mono\">{}</span> &middot; ", html_escape(v.address));
    if (!v.token_valid) {
      out += "<span class=\"bad\">not authenticated</span>";
      if (!v.problem.empty()) out += ": " + html_escape(v.problem);
    } else if (v.token_ttl) {
      const bool low = *v.token_ttl < seconds{300};
      out += fmt::format("token valid, <span class=\"{}\">expires in {}</span>", low ? "bad" : "ok",
                         human_duration(*v.token_ttl));
    } else {
      out += "token valid, does not expire";
    }
    out += "</dd>";
  }
  if (hooks.change_feed) out += "<dt>Change feed</dt><dd>" + html_escape(hooks.change_feed()) + "</dd>";
  if (hooks.role) {
    if (auto role = hooks.role(); !role.empty()) out += "<dt>Role</dt><dd>" + html_escape(role) + "</dd>";
  }
  out += "<dt>Credentials</dt><dd>";
  if (fresh.known == 0) {
    out += "age not known yet";
  } else {
    out += fmt::format("oldest written {} ago", human_duration(fresh.oldest));
  }
  if (fresh.max_age.count() > 0) {
    out += fmt::format(" &middot; <span id=\"too-old\" class=\"{}\">{} older than {}</span>",
                       fresh.too_old > 0 ? "bad" : "ok", fresh.too_old, human_duration(fresh.max_age));
  }
  out += fmt::format(" &middot; <span id=\"behind\" class=\"{}\">{} version(s) behind Vault</span></dd></dl>",
                     fresh.versions_behind > 0 ? "warn" : "ok", fresh.versions_behind);
  std::vector<std::string> warnings = hooks.warnings ? hooks.warnings() : std::vector<std::string>{};
  if (!warnings.empty()) {
    out += "<h3>Warnings</h3><ul id=\"warnings\" class=\"warnings\">";
    for (const auto& w : warnings) out += "<li>" + html_escape(w) + "</li>";
    out += "</ul>";
  }
  out += "</section>\n";
}

void destinations(std::string& out, const sync::Engine& engine, const ApiHooks& hooks) {
  const auto lanes = engine.lane_metrics();
  std::vector<DestinationInfo> infos = hooks.destinations ? hooks.destinations() : std::vector<DestinationInfo>{};
  out +=
      "<section class=\"dests\"><h2>Destinations</h2><div class=\"scroll\"><table id=\"destinations\"><thead><tr>"
      "<th>Destination</th><th>Breaker</th><th>Rate limit</th><th>In flight</th><th>Pushing</th><th>Queued</th>"
      "<th>Token calls left today</th></tr></thead><tbody>";
  for (const auto& [name, m] : lanes) {
    const std::string& lane_name = name;  // clang 14 cannot capture a structured binding
    auto info = std::find_if(infos.begin(), infos.end(), [&](const DestinationInfo& d) { return d.name == lane_name; });
    std::string rate = "&ndash;";
    std::string calls = "&ndash;";
    std::string kind;
    if (info != infos.end()) {
      rate = info->rate_limit > 0 ? fmt::format("{:g}/s", info->rate_limit) : std::string("unlimited");
      if (info->concurrency > 0) rate += fmt::format(", {} at once", info->concurrency);
      if (info->token_calls_left_today >= 0) calls = std::to_string(info->token_calls_left_today);
      kind = info->kind;
    }
    out += fmt::format(
        "<tr><td>{}<span class=\"sub\">{}</span></td><td><span class=\"breaker {}\">{}</span></td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        html_escape(name), html_escape(kind), m.breaker_state == "closed" ? "ok" : "bad", html_escape(m.breaker_state),
        rate, m.in_flight, m.pushing, m.queued, calls);
  }
  out += "</tbody></table></div></section>\n";
}

void pair_row(std::string& out, const sync::PairView& v, seconds max_age, SystemTime now) {
  const auto& r = v.record;
  const std::string state(ledger::to_string(r.state));
  std::string age = "&ndash;";
  bool too_old = false;
  if (v.written_at != SystemTime{}) {
    const seconds a = age_of(v.written_at, now);
    too_old = max_age.count() > 0 && a > max_age;
    age = fmt::format("<span class=\"{}\" title=\"{}\">{} ago</span>", too_old ? "bad" : "",
                      html_escape(format_rfc3339(v.written_at)), human_duration(a));
    if (too_old) age += "<span class=\"sub bad\">older than " + human_duration(max_age) + "</span>";
  }
  out += fmt::format(
      "<tr class=\"st-{0}\" data-gstin=\"{1}\" data-state=\"{0}\"><td>{2}</td><td data-label=\"Destination\">{3}</td>"
      "<td data-label=\"State\"><span class=\"state\">{4}</span>{5}</td><td data-label=\"Applied\">{6}</td>"
      "<td data-label=\"Pending\">{7}</td><td data-label=\"Vault wrote it\">{8}</td>"
      "<td data-label=\"Versions behind\">{9}</td><td data-label=\"Attempts\">{10}</td>"
      "<td data-label=\"Next attempt\">{11}</td><td class=\"err\" data-label=\"Last error\">{12}</td></tr>\n",
      state, html_escape(v.config.gstin.str()), gstin_link(v.config.gstin.str()), html_escape(v.config.destination),
      html_escape(state_label(r.state)), v.in_flight ? "<span class=\"sub\">pushing now</span>" : "",
      version_cell(r.applied), version_cell(r.pending), age, v.versions_behind, r.attempts,
      r.state == PairState::retrying ? when(r.next_attempt_at, now) : std::string("&ndash;"), error_cell(r));
}

constexpr std::string_view kPairHead =
    "<thead><tr><th>GSTIN</th><th>Destination</th><th>State</th><th>Applied</th><th>Pending</th>"
    "<th>Vault wrote it</th><th>Behind</th><th>Attempts</th><th>Next attempt</th><th>Last error</th></tr></thead>";

// The same head with links that order the table by a column (keeping the filter).
std::string sortable_head(const PageQuery& q) {
  auto th = [&](std::string_view label, PageSort sort) {
    PageQuery as = q;
    as.sort = sort;
    as.page = 1;
    return fmt::format("<th{}><a href=\"{}\">{}</a></th>", q.sort == sort ? " aria-sort=\"ascending\"" : "",
                       html_escape(page_query_string(as)), label);
  };
  return "<thead><tr>" + th("GSTIN", PageSort::gstin) + th("Destination", PageSort::destination) +
         th("State", PageSort::problems) + "<th>Applied</th><th>Pending</th>" + th("Vault wrote it", PageSort::age) +
         "<th>Behind</th>" + th("Attempts", PageSort::attempts) + th("Next attempt", PageSort::next_attempt) +
         "<th>Last error</th></tr></thead>";
}

void pager(std::string& out, const PageQuery& q, const PairListing& l) {
  const std::size_t page = std::min(q.page, l.pages);
  out += "<nav class=\"pager\">";
  if (page > 1) {
    PageQuery prev = q;
    prev.page = page - 1;
    out += fmt::format("<a rel=\"prev\" href=\"{}\">&larr; previous</a>", html_escape(page_query_string(prev)));
  }
  out += fmt::format("<span>page {} of {}</span>", page, l.pages);
  if (page < l.pages) {
    PageQuery next = q;
    next.page = page + 1;
    out += fmt::format("<a rel=\"next\" href=\"{}\">next &rarr;</a>", html_escape(page_query_string(next)));
  }
  out += "</nav>";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\0': out += "&#xFFFD;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string human_duration(seconds d) {
  const auto s = std::max<std::int64_t>(0, d.count());
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m", s / 60);
  if (s < 86400)
    return s % 3600 / 60 == 0 ? fmt::format("{}h", s / 3600) : fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
  return s % 86400 / 3600 == 0 ? fmt::format("{}d", s / 86400) : fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
}

std::string render_status_page(const sync::Engine& engine, const ApiHooks& hooks, const PageQuery& query,
                               SystemTime now) {
  const std::vector<std::string> reasons =
      hooks.not_ready_reasons ? hooks.not_ready_reasons() : std::vector<std::string>{};
  const seconds max_age = hooks.max_credential_age ? hooks.max_credential_age() : seconds{0};
  const PairListing listing = list_pairs(engine, query, max_age, now);
  const Freshness& fresh = listing.freshness;
  std::string out;
  out.reserve(16384 + listing.rows.size() * 900);
  head(out, "nicsyncd status");
  banner(out, reasons.empty());
  filter_form(out, query);
  out += fmt::format("<main id=\"live\" data-refresh=\"{}\">\n", kRefreshSeconds);
  summary(out, listing, hooks, reasons);
  destinations(out, engine, hooks);
  out += fmt::format(
      "<section class=\"pairs\"><h2>Pairs <span id=\"matched\" data-matched=\"{}\" data-total=\"{}\">{} of {}</span>"
      "</h2><div class=\"scroll\"><table id=\"pairs\">",
      listing.matched, engine.pair_count(), listing.matched, engine.pair_count());
  out += sortable_head(query);
  out += "<tbody>";
  for (std::size_t i : listing.rows) pair_row(out, engine.view(i), fresh.max_age, now);
  if (listing.rows.empty()) out += "<tr><td colspan=\"10\" class=\"empty\">No pair matches.</td></tr>";
  out += "</tbody></table></div>";
  pager(out, query, listing);
  out += "</section></main>\n";
  footer(out, now);
  return out;
}

std::string render_gstin_page(std::string_view gstin, const std::vector<sync::PairView>& pairs,
                              const Result<std::vector<ledger::HistoryEntry>>& history, const ApiHooks& hooks,
                              SystemTime now) {
  const std::vector<std::string> reasons =
      hooks.not_ready_reasons ? hooks.not_ready_reasons() : std::vector<std::string>{};
  const seconds max_age = hooks.max_credential_age ? std::max(hooks.max_credential_age(), seconds{0}) : seconds{0};
  std::string out;
  head(out, fmt::format("{} - nicsyncd", gstin));
  banner(out, reasons.empty());
  const std::string_view state = gstin_state_name(gstin.substr(0, 2));
  out += fmt::format(
      "<nav class=\"crumbs\"><a href=\"/\">&larr; all pairs</a></nav><main id=\"live\" data-refresh=\"{}\">"
      "<h2 class=\"gstin-title\"><span id=\"gstin\">{}</span> <span class=\"sub\">{}</span></h2>\n",
      kRefreshSeconds, html_escape(gstin), html_escape(state));
  out += "<section class=\"pairs\"><h3>Destinations</h3><div class=\"scroll\"><table id=\"pairs\">";
  out += kPairHead;
  out += "<tbody>";
  for (const auto& v : pairs) pair_row(out, v, max_age, now);
  if (pairs.empty()) out += "<tr><td colspan=\"10\" class=\"empty\">This GSTIN is not mapped now.</td></tr>";
  out += "</tbody></table></div>";
  for (const auto& v : pairs) {
    out += fmt::format("<p class=\"path\">{}: Vault key <span class=\"mono\">{}</span>",
                       html_escape(v.config.destination), html_escape(v.config.source.path));
    if (v.vault_version > 0) out += fmt::format(", current version {}", v.vault_version);
    out += "</p>";
  }
  out += "</section><section class=\"history\"><h3>Delivery history</h3>";
  if (!history) {
    out += "<p class=\"bad\">The ledger cannot be read: " + html_escape(history.error().message) + "</p>";
  } else {
    out +=
        "<div class=\"scroll\"><table id=\"history\"><thead><tr><th>When</th><th>Destination</th><th>Version</th>"
        "<th>Outcome</th><th>Attempt</th><th>Took</th><th>Detail</th></tr></thead><tbody>";
    for (const auto& h : *history) {
      std::string detail = html_escape(h.message);
      if (!h.error_code.empty()) {
        detail =
            fmt::format("<span class=\"code\">{}</span>{} <span class=\"msg\">{}</span>", html_escape(h.error_code),
                        h.error_provider.empty() ? std::string()
                                                 : " <span class=\"code\">" + html_escape(h.error_provider) + "</span>",
                        detail);
        detail += fmt::format("<span class=\"action\">What to do: {}</span>",
                              prose(error_hint_or_general(h.error_code).next_action));
      }
      const std::string outcome(ledger::to_string(h.outcome));
      out += fmt::format(
          "<tr class=\"oc-{0}\"><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6} ms</td><td>{7}</td>"
          "</tr>\n",
          html_escape(outcome), when(h.at, now), html_escape(h.destination),
          h.version.number == 0 ? std::string("kv1") : std::to_string(h.version.number), html_escape(outcome),
          h.attempt, h.duration.count(), detail);
    }
    if (history->empty()) out += "<tr><td colspan=\"7\" class=\"empty\">Nothing delivered yet.</td></tr>";
    out += "</tbody></table></div>";
  }
  out += "</section></main>\n";
  footer(out, now);
  return out;
}

std::string render_error_page(int status, std::string_view message) {
  std::string out;
  head(out, fmt::format("{} - nicsyncd", status));
  out += fmt::format(
      "<header><h1><a href=\"/\">nicsyncd</a></h1></header><main><p class=\"bad\">{}</p>"
      "<p><a href=\"/\">Back to the status page</a></p></main></body></html>\n",
      html_escape(message));
  return out;
}

}  // namespace nicsync::api
