// Vault's event websocket (reference §6) on Boost.Beast, plain or TLS. Beast stays in this file.
#include "nicsync/vault/events.hpp"

#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "vault/client_impl.hpp"

namespace nicsync::vault {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxRedirects = 3;

// --- parsing --------------------------------------------------------------------------------

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return std::string_view(v->get_string());
}

}  // namespace

Result<KvEvent> parse_kv_event(std::string_view message) {
  auto bad = [](std::string_view why) {
    return Error(Errc::vault_bad_response, fmt::format("Vault event message {}", why));
  };
  boost::system::error_code ec;
  auto v = json::parse(message, ec);
  if (ec) return bad(fmt::format("is not JSON ({})", ec.message()));
  if (!v.is_object()) return bad("is not a JSON object");
  const auto& top = v.get_object();
  const auto* data_v = top.if_contains("data");
  if (data_v == nullptr || !data_v->is_object()) return bad("has no \"data\" object (is it a CloudEvents message?)");
  const auto& data = data_v->get_object();

  KvEvent ev;
  ev.id = std::string(str(top, "id"));
  ev.time = std::string(str(top, "time"));
  ev.event_type = std::string(str(data, "event_type"));
  if (ev.event_type.empty()) return bad("has no \"data.event_type\"");
  ev.vault_namespace = std::string(str(data, "namespace"));

  const json::object* metadata = nullptr;
  if (const auto* event = data.if_contains("event"); event != nullptr && event->is_object()) {
    if (ev.id.empty()) ev.id = std::string(str(event->get_object(), "id"));
    if (const auto* md = event->get_object().if_contains("metadata"); md != nullptr && md->is_object()) {
      metadata = &md->get_object();
    }
  }
  if (metadata == nullptr) return bad("has no \"data.event.metadata\" object");

  ev.operation = std::string(str(*metadata, "operation"));
  if (ev.operation.empty()) {
    // 1.13/1.14 had no "operation": it is the part of the type after "kv-vN/".
    if (auto slash = ev.event_type.find('/'); slash != std::string::npos)
      ev.operation = ev.event_type.substr(slash + 1);
  }
  ev.path = std::string(str(*metadata, "path"));
  ev.data_path = std::string(str(*metadata, "data_path"));
  ev.vault_index = std::string(str(*metadata, "vault_index"));
  // Metadata values are strings, numbers included (§6.4).
  if (auto cv = str(*metadata, "current_version"); !cv.empty()) {
    ev.current_version = to_int(cv);
    if (!ev.current_version) return bad("has a \"current_version\" that is not a number");
  }
  if (auto ov = str(*metadata, "oldest_version"); !ov.empty()) ev.oldest_version = to_int(ov);
  for (std::string_view field : {"deleted_versions", "undeleted_versions", "destroyed_versions"}) {
    auto list = str(*metadata, field);
    if (list.empty()) continue;
    boost::system::error_code lec;
    auto arr = json::parse(list, lec);
    if (lec || !arr.is_array()) return bad(fmt::format("has a \"{}\" that is not a JSON array", field));
    for (const auto& n : arr.get_array()) {
      if (n.is_int64()) {
        ev.versions.push_back(n.get_int64());
      } else if (n.is_string()) {
        if (auto i = to_int(std::string_view(n.get_string()))) ev.versions.push_back(*i);
      }
    }
  }

  std::string mount_path;
  if (const auto* pi = data.if_contains("plugin_info"); pi != nullptr && pi->is_object()) {
    mount_path = std::string(str(pi->get_object(), "mount_path"));
  }
  while (mount_path.ends_with('/')) mount_path.pop_back();
  ev.mount = mount_path;

  // The key: the path below the mount (1.15+ prefixes the mount; 1.13/1.14 did not), minus
  // the KV v2 operation segment.
  std::string_view rest = ev.data_path.empty() ? std::string_view(ev.path) : std::string_view(ev.data_path);
  if (!mount_path.empty() && rest.starts_with(mount_path) &&
      (rest.size() == mount_path.size() || rest[mount_path.size()] == '/')) {
    rest.remove_prefix(std::min(rest.size(), mount_path.size() + 1));
  }
  if (ev.event_type.starts_with("kv-v2/")) {
    const auto slash = rest.find('/');
    const auto first = rest.substr(0, slash);
    if (first == "data" || first == "metadata" || first == "delete" || first == "undelete" || first == "destroy" ||
        first == "subkeys") {
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    } else if (first == "config") {
      rest = {};
    }
  }
  ev.key = std::string(rest);
  return ev;
}

// --- the subscriber -------------------------------------------------------------------------

namespace {

struct Endpoint {
  bool tls = false;
  std::string host;         ///< for the resolver (no IPv6 brackets)
  std::string host_header;  ///< as in the URL
  std::uint16_t port = 0;
  std::string tls_name;  ///< name to verify (and send as SNI unless it is an IP address)
  std::string target;    ///< "/v1/sys/events/subscribe/kv-v2%2F%2A?json=true"
  std::string display;   ///< "wss://host:port/v1/sys/events/subscribe/kv-v2/*"
};

enum class End { dropped, failed, unavailable, fatal, redirect, retry_now, cancelled };

struct SessionResult {
  End end = End::failed;
  Error error;
  std::string location;
};

// Sets the Vault headers on the upgrade request (a named function object: it is stored).
struct Decorate {
  Secret token;
  std::string ns;
  void operator()(websocket::request_type& req) const {
    req.set("X-Vault-Token", token.expose());
    req.set("X-Vault-Request", "true");
    if (!ns.empty()) req.set("X-Vault-Namespace", ns);
  }
};

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

Result<Endpoint> endpoint_from_url(std::string_view url, std::string_view tls_name_override, std::string target) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return Error(Errc::vault_bad_response, fmt::format("unusable event stream address \"{}\"", url));
  Endpoint ep;
  const auto scheme = u->scheme();
  if (scheme == "https" || scheme == "wss") {
    ep.tls = true;
  } else if (scheme != "http" && scheme != "ws") {
    return Error(Errc::vault_bad_response, fmt::format("unusable event stream address \"{}\"", url));
  }
  ep.host_header = std::string(u->encoded_host());
  ep.host = std::string(u->encoded_host_address());
  ep.port = u->has_port() ? u->port_number() : (ep.tls ? 443 : 80);
  if (u->has_port()) ep.host_header += ":" + std::to_string(ep.port);
  ep.tls_name = tls_name_override.empty() ? ep.host : std::string(tls_name_override);
  ep.target = target.empty() ? std::string(u->encoded_resource()) : std::move(target);
  ep.display = fmt::format("{}://{}{}", ep.tls ? "wss" : "ws", ep.host_header, ep.target);
  return ep;
}

}  // namespace

struct EventSubscriber::Impl : std::enable_shared_from_this<EventSubscriber::Impl> {
  Impl(std::shared_ptr<Client::Impl> c, EventSubscriberOptions o)
      : client(std::move(c)), options(std::move(o)), rng(std::random_device{}()) {}

  std::shared_ptr<Client::Impl> client;
  EventSubscriberOptions options;
  EventSubscriberStats stats;
  std::mt19937_64 rng;
  std::unique_ptr<asio::ssl::context> ssl;

  Result<asio::ssl::context*> ssl_context() {
    if (ssl) return ssl.get();
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    const TlsConfig& tls = client->config.tls;
    boost::system::error_code ec;
    if (!tls.ca_cert.empty()) {
      ctx->load_verify_file(tls.ca_cert, ec);
    } else if (tls.ca_path.empty()) {
      ctx->set_default_verify_paths(ec);
    }
    if (!ec && !tls.ca_path.empty()) ctx->add_verify_path(tls.ca_path, ec);
    if (!ec && !tls.client_cert.empty()) ctx->use_certificate_chain_file(tls.client_cert, ec);
    if (!ec && !tls.client_key.empty()) ctx->use_private_key_file(tls.client_key, asio::ssl::context::pem, ec);
    if (ec) {
      return Error(Errc::config_invalid,
                   fmt::format("cannot set up TLS for the Vault event stream: {}; check VAULT_CACERT, VAULT_CAPATH "
                               "and VAULT_CLIENT_CERT/KEY",
                               ec.message()));
    }
    ssl = std::move(ctx);
    return ssl.get();
  }

  Result<Endpoint> default_endpoint() const {
    // Go's client: "/v1/sys/events/subscribe/" + type, escaped as a path; the CLI adds json=true.
    const std::string target = "/v1/" + wire::encode_path("sys/events/subscribe/" + options.event_type) + "?json=true";
    return endpoint_from_url(client->base.display, client->config.tls.server_name, target);
  }

  // `stream` is a local of the awaiting session frame; the rest is passed by value (g++ 12).
  asio::awaitable<Result<void>> connect(beast::tcp_stream& stream, Endpoint ep) {
    tcp::resolver resolver(stream.get_executor());
    auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), kTuple);
    if (rec) {
      co_return Error(Errc::http_resolve_failed,
                      fmt::format("cannot resolve {} for the Vault event stream: {}", ep.host, rec.message()));
    }
    stream.expires_after(options.connect_timeout);
    auto [cec, endpoint] = co_await stream.async_connect(results, kTuple);
    (void)endpoint;
    if (cec) {
      const Errc code = cec == asio::error::connection_refused ? Errc::http_connection_refused
                        : cec == beast::error::timeout         ? Errc::http_connect_timeout
                                                               : Errc::http_network;
      co_return Error(code,
                      fmt::format("cannot connect to {} for the Vault event stream: {}", ep.display, cec.message()));
    }
    co_return Result<void>{};
  }

  // Upgrade and read until the stream ends.
  template <class Next>
  asio::awaitable<SessionResult> converse(websocket::stream<Next>& ws, Endpoint ep, HeldToken held,
                                          EventHandler on_event, SubscribedHandler on_subscribed) {
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = options.connect_timeout;
    timeouts.idle_timeout = options.idle_timeout;
    // Beast 1.81 only counts received frames (Vault's own pings every 30 s included) towards
    // the idle timer when keep-alive pings are on; without them a stream would be cut
    // idle_timeout after the upgrade however busy it is. Our pings are answered by the peer's
    // websocket layer; a stream that receives nothing for about idle_timeout is dead.
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.set_option(
        websocket::stream_base::decorator(Decorate{held.token.secret(), client->config.vault_namespace.str()}));
    beast::get_lowest_layer(ws).expires_never();

    websocket::response_type res;
    auto [hec] = co_await ws.async_handshake(res, ep.host_header, ep.target, kTuple);
    if (hec == websocket::error::upgrade_declined) co_return co_await declined(ep, held, res.result_int(), res);
    if (hec) {
      co_return SessionResult{
          End::failed, Error(Errc::http_network,
                             fmt::format("Vault event stream {}: upgrade failed: {}", ep.display, hec.message()))};
    }

    stats.subscribed = true;
    ++stats.subscriptions;
    stats.last_error.reset();
    spdlog::info("vault: subscribed to events type={} at {}", options.event_type, ep.display);
    try {
      if (on_subscribed) on_subscribed();
    } catch (const std::exception& x) {
      spdlog::error("vault: event subscription callback threw: {}", x.what());
    }

    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buffer, kTuple);
      if (ec) {
        stats.subscribed = false;
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return SessionResult{End::cancelled, Error()};
        ++stats.disconnects;
        std::string why = ec.message();
        if (ec == websocket::error::closed) {
          why = fmt::format("closed by Vault (code {}{}{})", static_cast<int>(ws.reason().code),
                            ws.reason().reason.empty() ? "" : ": ",
                            std::string(ws.reason().reason.data(), ws.reason().reason.size()));
        }
        co_return SessionResult{
            End::dropped, Error(Errc::http_network, fmt::format("Vault event stream {} ended: {}", ep.display, why))};
      }
      const std::string_view message(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (!ws.got_text()) {
        ++stats.malformed;
        spdlog::warn("vault: binary event frame ignored ({} bytes); is json=true honoured?", n);
      } else if (auto ev = parse_kv_event(message)) {
        ++stats.events;
        try {
          if (on_event) on_event(*ev);
        } catch (const std::exception& x) {
          spdlog::error("vault: event callback threw: {}", x.what());
        }
      } else {
        ++stats.malformed;
        spdlog::warn("vault: event ignored: {}", ev.error().describe());
      }
      buffer.consume(buffer.size());
    }
  }

  asio::awaitable<SessionResult> declined(Endpoint ep, HeldToken held, int status, websocket::response_type res) {
    const std::string body = res.body();
    std::string said;
    for (const auto& m : wire::error_messages(body)) said += (said.empty() ? ": " : "; ") + m;
    const std::string where = fmt::format("{} answered {}{}", ep.display, status, said);
    if (status == 301 || status == 302 || status == 307 || status == 308) {
      auto location = res.find(beast::http::field::location);
      if (location != res.end()) {
        co_return SessionResult{End::redirect, Error(Errc::vault_unavailable, where), std::string(location->value())};
      }
    }
    if (status == 401 || status == 403) {
      // A dead token first gets a fresh login; a live one lacks the policy, or events are off.
      bool dead = wire::says_invalid_token(body);
      if (!dead) {
        auto info = co_await client->lookup_self_with(held.token);
        dead = !info && info.error().is(Errc::vault_token_invalid);
      }
      if (dead && client->config.auth.method != AuthMethod::token) {
        if (held.gen == client->gen) client->token_dead = true;
        if (auto l = co_await client->login_shared(held.gen); !l) co_return SessionResult{End::failed, l.error()};
        co_return SessionResult{End::retry_now, Error(Errc::vault_token_invalid, where)};
      }
      if (dead) co_return SessionResult{End::failed, Error(Errc::vault_token_invalid, where)};
      co_return SessionResult{
          End::unavailable,
          Error(Errc::vault_events_unavailable,
                fmt::format("Vault refused the event subscription ({}); give the token \"read\" on "
                            "sys/events/subscribe/{} (and \"list\", \"subscribe\" on the secret paths), or rely on "
                            "polling",
                            where, options.event_type))};
    }
    if (status == 404 || status == 405) {
      co_return SessionResult{
          End::unavailable,
          Error(Errc::vault_events_unavailable,
                fmt::format("Vault offers no event stream ({}); events need Vault Enterprise (or 1.13–1.15 with "
                            "events on): polling only",
                            where))};
    }
    if (status == 400) {
      co_return SessionResult{
          End::fatal, Error(Errc::vault_bad_request,
                            fmt::format("Vault rejected the event subscription ({}); check the event type \"{}\"",
                                        where, options.event_type))};
    }
    Error e = wire::error_from_response(
        {"GET", "sys/events/subscribe/" + options.event_type, "subscribe to events at", "read", "no event stream"},
        status, body, std::nullopt);
    co_return SessionResult{End::failed, std::move(e)};
  }

  asio::awaitable<SessionResult> session(Endpoint ep, HeldToken held, EventHandler on_event,
                                         SubscribedHandler on_subscribed) {
    auto ex = client->ex;
    if (!ep.tls) {
      websocket::stream<beast::tcp_stream> ws(ex);
      if (auto c = co_await connect(beast::get_lowest_layer(ws), ep); !c)
        co_return SessionResult{End::failed, c.error()};
      co_return co_await converse(ws, ep, held, on_event, on_subscribed);
    }
    auto ctx = ssl_context();
    if (!ctx) co_return SessionResult{End::fatal, ctx.error()};
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ex, **ctx);
    if (auto c = co_await connect(beast::get_lowest_layer(ws), ep); !c) co_return SessionResult{End::failed, c.error()};
    auto& tls = ws.next_layer();
    const bool verify = !client->config.tls.skip_verify.value_or(false);
    if (!is_ip_literal(ep.tls_name)) {
      if (SSL_set_tlsext_host_name(tls.native_handle(), ep.tls_name.c_str()) != 1) {
        co_return SessionResult{End::failed, Error(Errc::http_tls, "cannot set the TLS server name")};
      }
    }
    if (verify) {
      tls.set_verify_mode(asio::ssl::verify_peer);
      tls.set_verify_callback(asio::ssl::host_name_verification(ep.tls_name));
    } else {
      tls.set_verify_mode(asio::ssl::verify_none);
    }
    beast::get_lowest_layer(ws).expires_after(options.connect_timeout);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
    if (ec) {
      const bool verify_failed =
          ec.category() == asio::error::get_ssl_category() &&
          ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
      co_return SessionResult{
          End::failed,
          Error(verify_failed ? Errc::http_tls_verify : Errc::http_tls,
                fmt::format("TLS handshake with {} for the Vault event stream failed: {}{}", ep.display, ec.message(),
                            verify_failed ? "; check VAULT_CACERT / VAULT_CAPATH and VAULT_TLS_SERVER_NAME" : ""))};
    }
    co_return co_await converse(ws, ep, held, on_event, on_subscribed);
  }
};

EventSubscriber::EventSubscriber(Client& client, EventSubscriberOptions options)
    : impl_(std::make_shared<Impl>(client.impl_, std::move(options))) {}

EventSubscriber::~EventSubscriber() = default;

EventSubscriberStats EventSubscriber::stats() const { return impl_->stats; }

asio::awaitable<Result<void>> EventSubscriber::run(EventHandler on_event, SubscribedHandler on_subscribed) {
  auto self = impl_;
  auto client = self->client;
  if (client->config_error) co_return *client->config_error;
  auto first = self->default_endpoint();
  if (!first) co_return first.error();
  Endpoint ep = *first;
  int failures = 0;
  int redirects = 0;
  for (;;) {
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return Error(Errc::cancelled, "event stream cancelled");
    if (client->shut) co_return Error(Errc::http_client_shutdown, "Vault client shut down");

    SessionResult r;
    auto held = co_await client->ensure_token();
    if (!held) {
      r = {End::failed, held.error()};
    } else {
      r = co_await self->session(ep, *held, on_event, on_subscribed);
    }
    // A cancelled login or session is the caller stopping us, not a failure to report.
    auto after = co_await asio::this_coro::cancellation_state;
    if (r.end == End::cancelled || r.error.is(Errc::cancelled) || after.cancelled() != asio::cancellation_type::none) {
      co_return Error(Errc::cancelled, "event stream cancelled");
    }
    switch (r.end) {
      case End::cancelled: co_return Error(Errc::cancelled, "event stream cancelled");
      case End::unavailable:
        self->stats.last_error = r.error;
        spdlog::warn("vault: {}", r.error.describe());
        co_return r.error;
      case End::fatal: self->stats.last_error = r.error; co_return r.error;
      case End::retry_now: continue;
      case End::redirect:
        if (++redirects <= kMaxRedirects) {
          auto next = endpoint_from_url(r.location, client->config.tls.server_name, {});
          if (next && !(ep.tls && !next->tls)) {
            ep = std::move(*next);
            continue;
          }
          r.error = Error(Errc::vault_bad_response,
                          fmt::format("Vault redirected the event stream to an unusable or insecure location"));
        }
        break;
      case End::dropped: failures = 0; break;
      case End::failed: break;
    }
    // Back to the configured address (a new active node may have been elected), after a pause.
    redirects = 0;
    ep = *first;
    self->stats.last_error = r.error;
    const auto delay = detail::full_jitter(self->options.backoff_base, self->options.backoff_cap, failures++,
                                           std::uniform_real_distribution<double>(0.0, 1.0)(self->rng));
    spdlog::warn("vault: event stream: {}; reconnecting in {} ms", r.error.describe(), delay.count());
    asio::steady_timer timer(client->ex, delay);
    auto [ec] = co_await timer.async_wait(kTuple);
    if (ec) co_return Error(Errc::cancelled, "event stream cancelled");
  }
}

}  // namespace nicsync::vault
