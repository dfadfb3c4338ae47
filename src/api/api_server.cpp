#include "nicsync/api/api_server.hpp"

#include <algorithm>
#include <charconv>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/core/build_info.hpp"
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
  w.gauge("nicsync_warnings", "Problems needing an operator that do not stop the daemon (see /v1/status).", {},
          hooks.warnings ? static_cast<double>(hooks.warnings().size()) : 0.0);
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
  json::object out;
  out["version"] = build_info::kVersion;
  std::vector<std::string> reasons = hooks.not_ready_reasons ? hooks.not_ready_reasons() : std::vector<std::string>{};
  out["ready"] = reasons.empty();
  json::array why;
  for (auto& r : reasons) why.emplace_back(std::move(r));
  out["not_ready_reasons"] = std::move(why);
  json::array warnings;
  if (hooks.warnings) {
    for (auto& w : hooks.warnings()) warnings.emplace_back(std::move(w));
  }
  out["warnings"] = std::move(warnings);
  json::object counts;
  const auto c = engine.state_counts();
  for (auto s : kAllStates) {
    auto it = c.find(s);
    counts[ledger::to_string(s)] = it == c.end() ? 0 : it->second;
  }
  out["counts"] = std::move(counts);
  json::object lanes;
  for (const auto& [name, m] : engine.lane_metrics()) {
    lanes[name] = json::object{
        {"breaker", m.breaker_state}, {"in_flight", m.in_flight}, {"pushing", m.pushing}, {"queued", m.queued}};
  }
  out["destinations"] = std::move(lanes);
  json::array pairs;
  const auto now = std::chrono::system_clock::now();
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
    if (!h || !h->starts_with("Bearer ")) return false;
    return Secret(h->substr(7)) == *options.bearer_token;
  }

  // Reads need the token off loopback unless the operator allowed otherwise.
  std::optional<http::ServerResponse> guard_read(const http::ServerRequest& r) const {
    const bool required = options.require_token_for_reads || (!loopback && !options.allow_insecure);
    if (!required || authorized(r)) return std::nullopt;
    auto resp = error_response(401, "this endpoint needs the API bearer token (Authorization: Bearer ...)");
    resp.headers.push_back({"WWW-Authenticate", "Bearer"});
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
      co_return json_response(ready ? 200 : 503, json::object{{"ready", ready}, {"reasons", std::move(why)}});
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
    co_return json_response(200, json::object{{"items", std::move(items)}, {"errors", std::move(errors)}});
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
