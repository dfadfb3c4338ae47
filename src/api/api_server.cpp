#include "nicsync/api/api_server.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/api/status_page.hpp"
#include "nicsync/core/build_info.hpp"
#include "nicsync/core/error_hint.hpp"
#include "nicsync/core/timestamp.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::api {
namespace asio = boost::asio;
namespace json = boost::json;
using ledger::PairState;

namespace {

constexpr PairState kAllStates[] = {PairState::in_sync, PairState::pending,  PairState::retrying,
                                    PairState::parked,  PairState::rejected, PairState::source_deleted};

json::value time_or_null(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return nullptr;
  return json::value(format_rfc3339(t));
}

json::value version_or_null(const std::optional<ledger::VersionRef>& v) {
  if (!v) return nullptr;
  return json::value(v->version.number);
}

http::ServerResponse json_response(int status, const json::value& body) {
  return http::ServerResponse::json(status, json::serialize(body) + "\n");
}

http::ServerResponse error_response(int status, std::string message) {
  return json_response(status, json::object{{"error", std::move(message)}});
}

// What /v1/status and nicsync_warnings list: the hook's warnings and credentials too old.
std::vector<std::string> all_warnings(const ApiHooks& hooks, const Freshness& fresh) {
  std::vector<std::string> out = hooks.warnings ? hooks.warnings() : std::vector<std::string>{};
  if (fresh.too_old > 0) {
    out.push_back(
        fmt::format("{} credential(s) were written to Vault more than {} ago ([sync] max_credential_age): change the "
                    "password at the e-invoice portal, then write it to Vault as a new version",
                    fresh.too_old, human_duration(fresh.max_age)));
  }
  return out;
}

// The page's policy: its own stylesheet and script, fetches of itself, nothing else; no
// framing, no forms elsewhere.
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

http::ServerResponse page_response(int status, std::string body, std::string content_type) {
  auto r = http::ServerResponse::text(status, std::move(body), std::move(content_type));
  r.headers.push_back({"Content-Security-Policy", std::string(kPagePolicy)});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"X-Frame-Options", "DENY"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"Cross-Origin-Opener-Policy", "same-origin"});
  r.headers.push_back({"Cross-Origin-Resource-Policy", "same-origin"});
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

http::ServerResponse html_response(int status, std::string body) {
  return page_response(status, std::move(body), "text/html; charset=utf-8");
}

// Standard base64 (RFC 4648, padding optional); nothing for anything else.
std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() > 4096 || in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned bits = 0;
  int count = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) {
      secure_wipe(out);
      return std::nullopt;
    }
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xffu));
    }
  }
  return out;
}

bool scheme_is(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
  }
  return true;
}

}  // namespace

Result<void> validate(const ApiOptions& options) {
  auto hp = http::split_host_port(options.listen);
  if (!hp) return hp.error();
  const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return Error(Errc::config_invalid, "api: TLS needs both tls_cert_file and tls_key_file");
  }
  if (options.require_token_for_reads && !options.bearer_token) {
    return Error(Errc::config_invalid, "api.require_token is set but api.token_file is not");
  }
  if (http::is_loopback_host(hp->first) || options.allow_insecure) return {};
  if (!tls) {
    return Error(Errc::config_invalid,
                 fmt::format("api.listen {} is not a loopback address: set api.tls_cert_file and api.tls_key_file "
                             "(or set api.allow_insecure = true if a proxy in front terminates TLS)",
                             options.listen));
  }
  if (!options.bearer_token) {
    return Error(Errc::config_invalid,
                 fmt::format("api.listen {} is not a loopback address: set api.token_file so that only holders of "
                             "the token can read status and metrics (or set api.allow_insecure = true)",
                             options.listen));
  }
  return {};
}

http::ServerOptions server_options(const ApiOptions& options) {
  http::ServerOptions so;
  so.listen = options.listen;
  so.tls_cert_file = options.tls_cert_file;
  so.tls_key_file = options.tls_key_file;
  so.body_limit = 64u << 10;
  so.header_limit = 8u << 10;
  so.header_timeout = std::chrono::seconds(5);
  so.idle_timeout = std::chrono::seconds(30);
  so.max_connections = 256;
  if (options.audit_feed_body_limit > 0) {
    so.path_body_limits.emplace_back(std::string(kAuditFeedPath), options.audit_feed_body_limit);
  }
  return so;
}

std::string render_metrics(const sync::Engine& engine, const ApiHooks& hooks) {
  MetricsWriter w;
  w.gauge("nicsync_build_info", "Build information of the running nicsyncd.",
          {{"version", build_info::kVersion}, {"compiler", build_info::kCompiler}}, 1);
  const bool ready = !hooks.not_ready_reasons || hooks.not_ready_reasons().empty();
  w.gauge("nicsync_ready", "1 when Vault auth, the ledger and the first full resync are good.", {}, ready ? 1 : 0);
  const auto counts = engine.state_counts();
  for (auto s : kAllStates) {
    auto it = counts.find(s);
    w.gauge("nicsync_pairs", "(destination, GSTIN) pairs by state.", {{"state", std::string(ledger::to_string(s))}},
            it == counts.end() ? 0.0 : static_cast<double>(it->second));
  }
  const auto oldest = engine.oldest_unsynced_age();
  w.gauge("nicsync_oldest_unsynced_seconds", "Age of the oldest pair not in sync (0 when all are).", {},
          oldest ? static_cast<double>(oldest->count()) : 0.0);
  w.counter("nicsync_redeliveries_after_restart_total",
            "Pushes redone because the previous run stopped before recording their outcome.", {},
            static_cast<double>(engine.redeliveries_after_crash()));
  w.gauge("nicsync_ledger_writable", "1 while the ledger accepts writes.", {}, engine.ledger_writable() ? 1 : 0);
  const Freshness fresh = freshness(engine, hooks, std::chrono::system_clock::now());
  w.gauge("nicsync_warnings", "Problems needing an operator that do not stop the daemon (see /v1/status).", {},
          static_cast<double>(all_warnings(hooks, fresh).size()));
  w.gauge("nicsync_credential_age_seconds_max",
          "Age of the oldest credential: since Vault wrote the current version of a pair's key.", {},
          static_cast<double>(fresh.oldest.count()));
  w.gauge("nicsync_credentials_too_old", "Pairs whose credential is older than [sync] max_credential_age (0 if off).",
          {}, static_cast<double>(fresh.too_old));
  w.gauge("nicsync_versions_behind",
          "Vault versions not yet at their destination, summed over pairs (a recreated key counts 1).", {},
          static_cast<double>(fresh.versions_behind));
  for (const auto& [name, m] : engine.lane_metrics()) {
    for (const char* outcome : {"applied", "unchanged", "failed", "parked", "rejected", "source_deleted"}) {
      auto it = m.outcomes.find(outcome);
      w.counter("nicsync_deliveries_total", "Delivery outcomes by destination.",
                {{"destination", name}, {"outcome", outcome}},
                it == m.outcomes.end() ? 0.0 : static_cast<double>(it->second));
    }
    w.histogram("nicsync_delivery_latency_seconds", "From observing a new version to its confirmed delivery.",
                {{"destination", name}}, m.latency);
    w.histogram("nicsync_vault_write_to_delivery_seconds",
                "From the Vault write of a version to its confirmed delivery.", {{"destination", name}}, m.lag);
    w.gauge("nicsync_destination_in_flight",
            "Deliveries under way (Vault read, waiting for a push slot, push, ledger commit).", {{"destination", name}},
            m.in_flight);
    w.gauge("nicsync_destination_pushing", "Pushes out at the provider (at most its concurrency).",
            {{"destination", name}}, m.pushing);
    w.gauge("nicsync_destination_queued", "Pairs waiting for a delivery to start.", {{"destination", name}},
            static_cast<double>(m.queued));
    w.gauge("nicsync_destination_breaker_open", "1 while the circuit breaker keeps pushes away (open or half-open).",
            {{"destination", name}}, m.breaker_state == "closed" ? 0 : 1);
  }
  if (hooks.extra_metrics) hooks.extra_metrics(w);
  return w.text();
}

json::object render_status(const sync::Engine& engine, const ApiHooks& hooks) {
  const auto now = std::chrono::system_clock::now();
  const Freshness fresh = freshness(engine, hooks, now);
  json::object out;
  out["version"] = build_info::kVersion;
  std::vector<std::string> reasons = hooks.not_ready_reasons ? hooks.not_ready_reasons() : std::vector<std::string>{};
  out["ready"] = reasons.empty();
  json::array why;
  for (auto& r : reasons) why.emplace_back(std::move(r));
  out["not_ready_reasons"] = std::move(why);
  json::array warnings;
  for (auto& w : all_warnings(hooks, fresh)) warnings.emplace_back(std::move(w));
  out["warnings"] = std::move(warnings);
  if (hooks.vault) {
    const VaultInfo v = hooks.vault();
    out["vault"] = json::object{{"address", v.address},
                                {"token_valid", v.token_valid},
                                {"token_ttl_seconds", v.token_ttl ? json::value(v.token_ttl->count()) : nullptr},
                                {"problem", v.problem}};
  }
  if (hooks.change_feed) out["change_feed"] = hooks.change_feed();
  if (hooks.role) {
    if (auto role = hooks.role(); !role.empty()) out["role"] = std::move(role);
  }
  out["credentials"] =
      json::object{{"max_age_seconds", fresh.max_age.count() > 0 ? json::value(fresh.max_age.count()) : nullptr},
                   {"oldest_age_seconds", fresh.known > 0 ? json::value(fresh.oldest.count()) : nullptr},
                   {"too_old", fresh.too_old},
                   {"versions_behind", fresh.versions_behind}};
  if (hooks.details) {
    for (auto& [key, value] : hooks.details()) out[key] = std::move(value);
  }
  json::object counts;
  const auto c = engine.state_counts();
  for (auto s : kAllStates) {
    auto it = c.find(s);
    counts[ledger::to_string(s)] = it == c.end() ? 0 : it->second;
  }
  out["counts"] = std::move(counts);
  json::object lanes;
  const auto infos = hooks.destinations ? hooks.destinations() : std::vector<DestinationInfo>{};
  for (const auto& [name, m] : engine.lane_metrics()) {
    json::object lane{
        {"breaker", m.breaker_state}, {"in_flight", m.in_flight}, {"pushing", m.pushing}, {"queued", m.queued}};
    for (const auto& d : infos) {
      if (d.name != name) continue;
      lane["kind"] = d.kind;
      lane["rate_limit"] = d.rate_limit;
      lane["concurrency"] = d.concurrency;
      lane["token_calls_left_today"] = d.token_calls_left_today >= 0 ? json::value(d.token_calls_left_today) : nullptr;
    }
    lanes[name] = std::move(lane);
  }
  out["destinations"] = std::move(lanes);
  json::array pairs;
  for (const auto& v : engine.snapshot()) {
    const auto& r = v.record;
    json::object p;
    p["gstin"] = v.config.gstin.str();
    p["destination"] = v.config.destination;
    p["vault_path"] = v.config.source.path;
    p["state"] = ledger::to_string(r.state);
    p["applied_version"] = version_or_null(r.applied);
    p["applied_at"] = time_or_null(r.applied_at);
    if (r.applied_at != std::chrono::system_clock::time_point{}) {
      p["applied_age_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(now - r.applied_at).count();
    } else {
      p["applied_age_seconds"] = nullptr;
    }
    p["pending_version"] = version_or_null(r.pending);
    // The version the pair works towards, when it is a readable one.
    const bool target = v.target && v.target->state == SourceState::present;
    p["target_version"] = target ? json::value(v.target->number) : json::value(nullptr);
    p["vault_version"] = v.vault_version > 0 ? json::value(v.vault_version) : json::value(nullptr);
    p["versions_behind"] = v.versions_behind;
    if (v.written_at != std::chrono::system_clock::time_point{}) {
      const auto age =
          std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - v.written_at).count());
      p["written_at"] = format_rfc3339(v.written_at);
      p["credential_age_seconds"] = age;
      p["too_old"] = fresh.max_age.count() > 0 && age > fresh.max_age.count();
    } else {
      p["written_at"] = nullptr;
      p["credential_age_seconds"] = nullptr;
      p["too_old"] = false;
    }
    p["in_flight"] = v.in_flight;
    p["attempts"] = r.attempts;
    p["next_attempt_at"] = r.state == PairState::retrying ? time_or_null(r.next_attempt_at) : json::value(nullptr);
    if (r.last_error_code.empty()) {
      p["last_error"] = nullptr;
    } else {
      p["last_error"] = json::object{{"class", r.last_error_class},
                                     {"code", r.last_error_code},
                                     {"provider_code", r.last_error_provider},
                                     {"message", r.last_error_message}};
      const ErrorHint h = error_hint_or_general(r.last_error_code);
      p["last_error"].as_object()["hint"] = h.hint;
      p["last_error"].as_object()["next_action"] = h.next_action;
    }
    pairs.emplace_back(std::move(p));
  }
  out["pairs"] = std::move(pairs);
  return out;
}

struct ApiServer::Impl {
  Impl(asio::any_io_executor ex, ApiOptions o, sync::Engine& e, ApiHooks h)
      : options(std::move(o)), engine(e), hooks(std::move(h)) {
    auto hp = http::split_host_port(options.listen);
    loopback = hp && http::is_loopback_host(hp->first);
    build_routes();
    server = std::make_unique<http::Server>(std::move(ex), server_options(options), router.handler());
  }

  // Constant-time bearer check; the token never appears in any output.
  bool authorized(const http::ServerRequest& r) const {
    if (!options.bearer_token) return false;
    auto h = r.header("Authorization");
    if (!h || !scheme_is(*h, "bearer")) return false;
    return Secret(h->substr(7)) == *options.bearer_token;
  }

  // What a browser can send after its login prompt: HTTP Basic, any user name, the API token
  // as the password. Reads only: a browser sends it by itself with every request to this
  // origin, including ones another site makes it send, so it must never start a sync.
  bool authorized_for_reads(const http::ServerRequest& r) const {
    if (authorized(r)) return true;
    if (!options.bearer_token) return false;
    auto h = r.header("Authorization");
    if (!h || !scheme_is(*h, "basic")) return false;
    auto decoded = base64_decode(h->substr(6));
    if (!decoded) return false;
    const auto colon = decoded->find(':');
    const bool ok =
        colon != std::string::npos && Secret(std::string_view(*decoded).substr(colon + 1)) == *options.bearer_token;
    secure_wipe(*decoded);
    return ok;
  }

  bool reads_need_token() const { return options.require_token_for_reads || (!loopback && !options.allow_insecure); }

  // Reads need the token off loopback unless the operator allowed otherwise.
  std::optional<http::ServerResponse> guard_read(const http::ServerRequest& r) const {
    if (!reads_need_token() || authorized_for_reads(r)) return std::nullopt;
    auto resp = error_response(401, "this endpoint needs the API bearer token (Authorization: Bearer ...)");
    resp.headers.push_back({"WWW-Authenticate", "Bearer"});
    return resp;
  }

  // On loopback any page the local browser opens can reach the listener, also under a name
  // its author's DNS points at 127.0.0.1 (DNS rebinding): such a request carries that name as
  // Host. Pages are served to loopback names only.
  bool host_allowed(const http::ServerRequest& r) const {
    if (!loopback) return true;
    auto h = r.header("Host");
    if (!h || h->empty() || h->size() > 300) return false;
    std::string_view host = *h;
    if (host.starts_with('[')) {
      const auto close = host.find(']');
      if (close == std::string_view::npos || (close + 1 < host.size() && host[close + 1] != ':')) return false;
      host = host.substr(1, close - 1);
    } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    return http::is_loopback_host(host);
  }

  // The page's access rules: a loopback Host, then what /v1/status asks, with a challenge a
  // browser answers with its login prompt. A refusal says nothing more.
  std::optional<http::ServerResponse> guard_page(const http::ServerRequest& r) const {
    if (!host_allowed(r)) {
      return page_response(421, "this page is served only to loopback host names (127.0.0.1, localhost, [::1])\n",
                           "text/plain; charset=utf-8");
    }
    if (!reads_need_token() || authorized_for_reads(r)) return std::nullopt;
    auto resp = page_response(401, "unauthorized\n", "text/plain; charset=utf-8");
    resp.headers.push_back({"WWW-Authenticate", "Basic realm=\"nicsyncd\", charset=\"UTF-8\""});
    return resp;
  }

  void build_routes() {
    router.add("GET", "/healthz", [](const http::ServerRequest&) -> asio::awaitable<http::ServerResponse> {
      co_return http::ServerResponse::text(200, "ok\n");
    });
    router.add("GET", "/readyz", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_read(r)) co_return *denied;
      auto reasons = hooks.not_ready_reasons ? hooks.not_ready_reasons() : std::vector<std::string>{};
      json::array why;
      for (auto& s : reasons) why.emplace_back(std::move(s));
      const bool ready = why.empty();
      json::object body{{"ready", ready}, {"reasons", std::move(why)}};
      if (hooks.details) {
        for (auto& [key, value] : hooks.details()) body[key] = std::move(value);
      }
      co_return json_response(ready ? 200 : 503, body);
    });
    router.add("GET", "/metrics", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_read(r)) co_return *denied;
      co_return http::ServerResponse::text(200, render_metrics(engine, hooks), "text/plain; version=0.0.4");
    });
    router.add("GET", "/v1/status", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_read(r)) co_return *denied;
      co_return json_response(200, render_status(engine, hooks));
    });
    router.add("GET", "/v1/history", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_read(r)) co_return *denied;
      co_return co_await history(r);
    });
    router.add("POST", "/v1/sync", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      co_return co_await trigger(r);
    });
    router.add("GET", "/", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_page(r)) co_return *denied;
      auto query = parse_page_query(r.query);
      if (!query) co_return html_response(400, render_error_page(400, query.error().message));
      co_return html_response(200, render_status_page(engine, hooks, *query, std::chrono::system_clock::now()));
    });
    router.add_prefix("GET", "/gstin/", [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
      if (auto denied = guard_page(r)) co_return *denied;
      co_return co_await gstin_page(r);
    });
    for (const char* asset : {"/static/page.css", "/static/page.js"}) {
      router.add("GET", asset, [this, asset](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
        if (auto denied = guard_page(r)) co_return *denied;
        const bool css = std::string_view(asset).ends_with(".css");
        co_return page_response(200, std::string(css ? page_css() : page_js()),
                                css ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8");
      });
    }
    if (hooks.release_lease) {
      router.add("POST", "/v1/lease/release",
                 [this](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
                   if (!authorized(r)) {
                     auto resp = error_response(401, "POST /v1/lease/release needs the API bearer token");
                     resp.headers.push_back({"WWW-Authenticate", "Bearer"});
                     co_return resp;
                   }
                   auto done = co_await hooks.release_lease();
                   if (!done) co_return error_response(409, done.error().message);
                   co_return json_response(200, json::object{{"message", *done}});
                 });
    }
    if (hooks.audit_feed_entry) add_audit_feed_route(router, options.audit_feed_token, hooks.audit_feed_entry);
  }

  asio::awaitable<http::ServerResponse> gstin_page(const http::ServerRequest& r) {
    const std::string_view rest = std::string_view(r.path).substr(std::string_view("/gstin/").size());
    std::optional<std::string> text;
    if (rest.size() <= 64) text = http::percent_decode(rest);
    auto gstin = text && !r.query.size() ? Gstin::parse(*text, GstinMode::sandbox)
                                         : Result<Gstin>(Error(Errc::invalid_gstin, "not a GSTIN"));
    if (!gstin) co_return html_response(400, render_error_page(400, "The address does not name a GSTIN."));
    // Copies of this GSTIN's pairs only, taken before the ledger read gives the loop away.
    std::vector<sync::PairView> pairs;
    for (std::size_t i = 0, n = engine.pair_count(); i < n; ++i) {
      if (engine.brief(i).gstin == gstin->str()) pairs.push_back(engine.view(i));
    }
    auto history = co_await engine.history(gstin->str(), 200);
    if (pairs.empty() && history && history->empty()) {
      co_return html_response(404, render_error_page(404, "No pair and no history for this GSTIN."));
    }
    co_return html_response(200,
                            render_gstin_page(gstin->str(), pairs, history, hooks, std::chrono::system_clock::now()));
  }

  asio::awaitable<http::ServerResponse> history(const http::ServerRequest& r) {
    std::string gstin = r.query_param("gstin").value_or("");
    if (!gstin.empty()) {
      auto g = Gstin::parse(gstin, GstinMode::sandbox);
      if (!g) co_return error_response(400, g.error().message);
    }
    std::size_t limit = 100;
    if (auto l = r.query_param("limit")) {
      // Digits only: stoul would take "1e99" as 1 and "-1" as a huge number.
      unsigned long long n = 0;
      const auto [end, ec] = std::from_chars(l->data(), l->data() + l->size(), n);
      if (l->empty() || ec == std::errc::invalid_argument || end != l->data() + l->size()) {
        co_return error_response(400, "limit must be a number from 1 to 10000");
      }
      // Larger numbers (even past 64 bits) mean "as many as allowed".
      limit = ec == std::errc::result_out_of_range
                  ? 10000
                  : static_cast<std::size_t>(std::clamp<unsigned long long>(n, 1, 10000));
    }
    auto entries = co_await engine.history(gstin, limit);
    if (!entries) co_return error_response(503, "cannot read the ledger: " + entries.error().message);
    json::array out;
    for (const auto& h : *entries) {
      out.emplace_back(json::object{{"at", format_rfc3339(h.at)},
                                    {"gstin", h.gstin},
                                    {"destination", h.destination},
                                    {"version", h.version.number},
                                    {"outcome", ledger::to_string(h.outcome)},
                                    {"attempt", h.attempt},
                                    {"error_class", h.error_class},
                                    {"error_code", h.error_code},
                                    {"provider_code", h.error_provider},
                                    {"message", h.message},
                                    {"duration_ms", h.duration.count()}});
      if (!h.error_code.empty()) {
        const ErrorHint hint = error_hint_or_general(h.error_code);
        out.back().as_object()["hint"] = hint.hint;
        out.back().as_object()["next_action"] = hint.next_action;
      }
    }
    co_return json_response(200, json::object{{"entries", std::move(out)}});
  }

  asio::awaitable<http::ServerResponse> trigger(const http::ServerRequest& r) {
    if (!options.bearer_token) {
      co_return error_response(403, "POST /v1/sync is disabled: set api.token_file in the configuration");
    }
    if (!authorized(r)) {
      auto resp = error_response(401, "POST /v1/sync needs the API bearer token (Authorization: Bearer ...)");
      resp.headers.push_back({"WWW-Authenticate", "Bearer"});
      co_return resp;
    }
    if (hooks.forward_sync) {
      if (auto forwarded = co_await hooks.forward_sync(r)) co_return std::move(*forwarded);
    }
    if (!hooks.trigger) co_return error_response(503, "triggers are not available yet");
    TriggerRequest req;
    if (!r.body.empty()) {
      boost::system::error_code ec;
      json::value body = json::parse(r.body, ec);
      if (ec || !body.is_object()) {
        co_return error_response(400, "the body must be a JSON object like {\"gstins\": [\"...\"], \"force\": false}");
      }
      for (const auto& [key, value] : body.as_object()) {
        if (key == "gstins") {
          if (!value.is_array()) co_return error_response(400, "\"gstins\" must be an array of GSTIN strings");
          for (const auto& g : value.as_array()) {
            if (!g.is_string()) co_return error_response(400, "\"gstins\" must be an array of GSTIN strings");
            auto parsed = Gstin::parse(std::string_view(g.as_string()), GstinMode::sandbox);
            if (!parsed) co_return error_response(400, parsed.error().message);
            req.gstins.push_back(std::move(*parsed));
          }
        } else if (key == "force" || key == "dry_run") {
          if (!value.is_bool()) co_return error_response(400, fmt::format("\"{}\" must be true or false", key));
          (key == "force" ? req.force : req.dry_run) = value.as_bool();
        } else {
          co_return error_response(
              400, fmt::format("unknown field \"{}\" (allowed: gstins, force, dry_run)", std::string_view(key)));
        }
      }
    }
    spdlog::info("api: sync requested for {} GSTIN(s){}{}",
                 req.gstins.empty() ? std::string("all") : std::to_string(req.gstins.size()),
                 req.force ? " (force)" : "", req.dry_run ? " (dry run)" : "");
    auto report = co_await hooks.trigger(std::move(req));
    if (!report) co_return error_response(503, report.error().message);
    json::array items;
    for (const auto& i : report->items) {
      items.emplace_back(json::object{{"gstin", i.gstin},
                                      {"destination", i.destination},
                                      {"result", i.result},
                                      {"version", i.version ? json::value(*i.version) : json::value(nullptr)},
                                      {"message", i.message}});
    }
    json::array errors;
    for (const auto& e : report->errors) errors.emplace_back(e);
    json::object answer{{"items", std::move(items)}, {"errors", std::move(errors)}};
    if (hooks.served_by) answer["served_by"] = hooks.served_by();
    co_return json_response(200, std::move(answer));
  }

  ApiOptions options;
  sync::Engine& engine;
  ApiHooks hooks;
  bool loopback = true;
  http::Router router;
  std::unique_ptr<http::Server> server;
};

ApiServer::ApiServer(asio::any_io_executor executor, ApiOptions options, sync::Engine& engine, ApiHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options), engine, std::move(hooks))) {}

ApiServer::~ApiServer() {
  if (impl_) impl_->server->stop_now();
}

Result<void> ApiServer::start() {
  if (auto v = validate(impl_->options); !v) return v;
  return impl_->server->start();
}

std::string ApiServer::local_address() const { return impl_->server->local_address(); }

asio::awaitable<void> ApiServer::stop(std::chrono::milliseconds grace) { co_await impl_->server->stop(grace); }

void ApiServer::stop_now() noexcept { impl_->server->stop_now(); }

void ApiServer::set_bearer_token(std::optional<Secret> token) { impl_->options.bearer_token = std::move(token); }

asio::awaitable<http::ServerResponse> ApiServer::handle(http::ServerRequest request) {
  co_return co_await impl_->router.dispatch(request);
}

}  // namespace nicsync::api
