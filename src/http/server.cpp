#include "nicsync/http/server.hpp"

#include <array>
#include <charconv>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include "http/request_parsing.hpp"

namespace nicsync::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// --- small helpers ---------------------------------------------------------------------

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int value = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
      if (ec != std::errc{} || p != s.data() + i + 3) return std::nullopt;
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<std::string> ServerRequest::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) {
      std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      std::string plus(value);
      for (auto& c : plus) {
        if (c == '+') c = ' ';
      }
      return percent_decode(plus);
    }
  }
  return std::nullopt;
}

ServerResponse ServerResponse::text(int status, std::string body, std::string content_type) {
  ServerResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers.push_back({"Content-Type", std::move(content_type)});
  return r;
}

ServerResponse ServerResponse::json(int status, std::string body) {
  return text(status, std::move(body), "application/json");
}

Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Error(
        Errc::invalid_argument,
        fmt::format("listen address \"{}\" is invalid: {}; write \"127.0.0.1:9464\" or \"[::1]:9464\"", text, why));
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("an IPv6 address needs the form [addr]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("the port is missing");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return fail("put an IPv6 address in brackets");
  }
  if (host.empty()) return fail("the host is missing");
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || value > 65535) {
    return fail("the port must be a number from 0 to 65535");
  }
  return std::pair<std::string, std::uint16_t>{std::string(host), static_cast<std::uint16_t>(value)};
}

bool is_loopback_host(std::string_view host) noexcept {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  return !ec && addr.is_loopback();
}

// --- router ------------------------------------------------------------------------------

void Router::add(std::string method, std::string path, RouteHandler handler) {
  routes_.push_back({std::move(method), std::move(path), false, std::move(handler)});
}

void Router::add_prefix(std::string method, std::string prefix, RouteHandler handler) {
  routes_.push_back({std::move(method), std::move(prefix), true, std::move(handler)});
}

void Router::set_fallback(RouteHandler handler) { fallback_ = std::move(handler); }

asio::awaitable<ServerResponse> Router::dispatch(const ServerRequest& request) const {
  std::string allow;
  for (const auto& route : routes_) {
    const bool path_ok = route.prefix ? request.path.starts_with(route.path) : request.path == route.path;
    if (!path_ok) continue;
    if (route.method == "*" || route.method == request.method) co_return co_await route.handler(request);
    if (!allow.empty()) allow += ", ";
    allow += route.method;
  }
  if (fallback_) co_return co_await fallback_(request);
  if (!allow.empty()) {
    auto r = ServerResponse::text(405, "method not allowed\n");
    r.headers.push_back({"Allow", allow});
    co_return r;
  }
  co_return ServerResponse::text(404, "not found\n");
}

RouteHandler Router::handler() const {
  return [this](const ServerRequest& r) { return dispatch(r); };
}

// --- requests -----------------------------------------------------------------------------

namespace {

using RequestParser = bhttp::request_parser<bhttp::string_body>;

// Before the header is read its path is unknown: the largest limit holds until then, and
// apply_path_limit sets the one of the path once it is known. (Beast checks a Content-Length
// against the limit only at the end of the header, a chunked body chunk by chunk: the
// Content-Length is checked again here.)
void apply_limits(RequestParser& parser, const ServerOptions& opt) {
  parser.header_limit(static_cast<std::uint32_t>(opt.header_limit));
  std::size_t most = opt.body_limit;
  for (const auto& [path, limit] : opt.path_body_limits) most = std::max(most, limit);
  parser.body_limit(most);
}

// Whether the body announced fits its path's limit.
bool apply_path_limit(RequestParser& parser, const ServerOptions& opt) {
  if (opt.path_body_limits.empty()) return true;
  std::string_view target = parser.get().target();
  target = target.substr(0, target.find('?'));
  std::size_t limit = opt.body_limit;
  for (const auto& [path, path_limit] : opt.path_body_limits) {
    if (target == path) limit = path_limit;
  }
  parser.body_limit(limit);
  const auto length = parser.content_length();
  return !length || *length <= limit;
}

// The status a session answers to a request it cannot read; nothing when the peer went away or
// was too slow (there is nobody to answer, or the timeout already said it).
std::optional<unsigned> refusal_status(const beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) return 431;
  if (ec == bhttp::error::body_limit) return 413;  // also a Content-Length already too large
  if (ec == beast::error::timeout || ec == asio::error::eof || ec == asio::error::operation_aborted ||
      ec == asio::error::connection_reset) {
    return std::nullopt;
  }
  return 400;
}

ServerRequest to_server_request(bhttp::request<bhttp::string_body>& msg) {
  ServerRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  auto q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  req.headers.reserve(16);
  for (const auto& f : msg) req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  req.body = std::move(msg.body());
  return req;
}

}  // namespace

namespace detail {

ParsedRequests parse_requests(std::string_view bytes, const ServerOptions& options) {
  ParsedRequests out;
  while (!bytes.empty()) {
    RequestParser parser;
    apply_limits(parser, options);
    // The header first, then its path's body limit, as a session reads them.
    beast::error_code ec;
    std::size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    if (!ec && parser.is_header_done()) {
      if (!apply_path_limit(parser, options)) {
        out.refused = 413;
        break;
      }
      // Eager: one call parses as far as the bytes go, as a session's reads do once every
      // byte has arrived.
      parser.eager(true);
      if (!parser.is_done() && !bytes.empty()) {
        used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
        bytes.remove_prefix(used);
      }
    }
    if (ec == bhttp::error::need_more || (!ec && !parser.is_done())) {
      // A session would read more here (the parser must not see the same bytes again).
      out.incomplete = true;
      break;
    }
    if (ec) {
      if (auto status = refusal_status(ec)) out.refused = *status;
      break;
    }
    auto& msg = parser.get();
    const bool keep_alive = msg.keep_alive();
    out.requests.push_back(to_server_request(msg));
    if (!keep_alive) break;  // the session closes after answering it
  }
  return out;
}

}  // namespace detail

// --- server ------------------------------------------------------------------------------

namespace {

struct Session {
  std::uint64_t id = 0;
  bool idle = true;
  bool finished = false;               // the session coroutine has returned
  std::function<void()> close_socket;  // set by the session coroutine
  asio::cancellation_signal cancel;
};

template <class Stream>
beast::tcp_stream& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

template <class Stream>
class WebSocketImpl final : public WebSocket {
 public:
  explicit WebSocketImpl(beast::websocket::stream<Stream>& ws) : ws_(ws) {}

  asio::awaitable<Result<void>> send_text(std::string text) override {
    ws_.text(true);
    auto [ec, n] = co_await ws_.async_write(asio::buffer(text), kTuple);
    if (ec) co_return Error(Errc::http_network, "websocket write failed: " + ec.message());
    co_return Result<void>{};
  }
  asio::awaitable<Result<void>> ping() override {
    auto [ec] = co_await ws_.async_ping({}, kTuple);
    if (ec) co_return Error(Errc::http_network, "websocket ping failed: " + ec.message());
    co_return Result<void>{};
  }
  asio::awaitable<Result<std::string>> read() override {
    beast::flat_buffer buffer;
    auto [ec, n] = co_await ws_.async_read(buffer, kTuple);
    if (ec) co_return Error(Errc::http_network, "websocket closed: " + ec.message());
    co_return beast::buffers_to_string(buffer.data());
  }
  asio::awaitable<void> close(std::uint16_t code, std::string reason) override {
    beast::websocket::close_reason cr(static_cast<beast::websocket::close_code>(code), reason);
    auto [ec] = co_await ws_.async_close(cr, kTuple);
    (void)ec;
  }
  void drop() noexcept override {
    boost::system::error_code ec;
    lowest(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest(ws_).socket().close(ec);
  }

 private:
  beast::websocket::stream<Stream>& ws_;
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::any_io_executor executor, ServerOptions opts, RouteHandler h)
      : ex(std::move(executor)),
        options(std::move(opts)),
        handler(std::move(h)),
        acceptor(ex),
        ssl_ctx(asio::ssl::context::tls_server),
        drained(ex) {}

  Result<void> start() {
    auto hp = split_host_port(options.listen);
    if (!hp) return hp.error();
    auto [host, port] = *hp;
    boost::system::error_code ec;
    asio::ip::address addr =
        host == "localhost" ? asio::ip::make_address("127.0.0.1") : asio::ip::make_address(host, ec);
    if (ec) {
      return Error(Errc::invalid_argument,
                   fmt::format("listen address \"{}\": \"{}\" is not an IP address", options.listen, host));
    }
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
      if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
        return Error(Errc::invalid_argument, "TLS needs both a certificate file and a key file");
      }
      ssl_ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                          asio::ssl::context::single_dh_use);
      ssl_ctx.use_certificate_chain_file(options.tls_cert_file, ec);
      if (ec) {
        return Error(Errc::invalid_argument,
                     fmt::format("cannot load TLS certificate {}: {}", options.tls_cert_file, ec.message()));
      }
      ssl_ctx.use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
      if (ec) {
        return Error(Errc::invalid_argument,
                     fmt::format("cannot load TLS key {}: {}", options.tls_key_file, ec.message()));
      }
      if (!options.tls_client_ca_file.empty()) {
        ssl_ctx.load_verify_file(options.tls_client_ca_file, ec);
        if (ec) {
          return Error(Errc::invalid_argument,
                       fmt::format("cannot load client CA file {}: {}", options.tls_client_ca_file, ec.message()));
        }
        ssl_ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
      }
      use_tls = true;
    }
    tcp::endpoint ep(addr, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      acceptor.close();
      return Error(Errc::io_error, fmt::format("cannot listen on {}: {}", options.listen, ec.message()));
    }
    bound = acceptor.local_endpoint(ec);
    asio::co_spawn(ex, accept_loop(shared_from_this()), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          spdlog::error("http server: accept loop failed: {}", x.what());
        }
      }
    });
    return {};
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    asio::steady_timer backoff(self->ex);
    while (!self->stopping) {
      auto [ec, socket] = co_await self->acceptor.async_accept(kTuple);
      if (self->stopping) break;
      if (ec) {
        if (ec == asio::error::operation_aborted) break;
        // Out of descriptors and the like: wait a little instead of spinning.
        spdlog::warn("http server {}: accept failed: {}", self->options.listen, ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(kTuple);
        continue;
      }
      if (self->sessions.size() >= self->options.max_connections && !self->close_oldest_idle()) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      ++self->stats.connections_accepted;
      auto session = std::make_shared<Session>();
      session->id = ++self->next_session;
      self->sessions.emplace(session->id, session);
      auto done = [self, session](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const boost::system::system_error& x) {
            if (x.code() != asio::error::operation_aborted) spdlog::debug("http session ended: {}", x.what());
          } catch (const std::exception& x) {
            spdlog::error("http session failed: {}", x.what());
          }
        }
        session->finished = true;
        self->sessions.erase(session->id);
        if (self->stopping && self->sessions.empty()) self->drained.cancel();
      };
      if (self->use_tls) {
        asio::co_spawn(
            self->ex,
            run_session(self, session, beast::ssl_stream<beast::tcp_stream>(std::move(socket), self->ssl_ctx)),
            asio::bind_cancellation_slot(session->cancel.slot(), std::move(done)));
      } else {
        asio::co_spawn(self->ex, run_session(self, session, beast::tcp_stream(std::move(socket))),
                       asio::bind_cancellation_slot(session->cancel.slot(), std::move(done)));
      }
    }
  }

  template <class Stream>
  static asio::awaitable<void> run_session(std::shared_ptr<Impl> self, std::shared_ptr<Session> session,
                                           Stream stream) {
    constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
    const ServerOptions& opt = self->options;
    // close_socket refers to this frame: forget it however the coroutine ends.
    struct Forget {
      Session& s;
      ~Forget() { s.close_socket = nullptr; }
    } forget{*session};
    session->close_socket = [&stream] {
      boost::system::error_code ec;
      lowest(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
      lowest(stream).socket().close(ec);
    };
    std::string remote;
    std::uint16_t remote_port = 0;
    {
      boost::system::error_code ec;
      auto ep = lowest(stream).socket().remote_endpoint(ec);
      if (!ec) {
        remote = ep.address().to_string();
        remote_port = ep.port();
      }
    }
    if constexpr (kTls) {
      lowest(stream).expires_after(opt.header_timeout);
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
      if (ec) {
        session->close_socket = nullptr;
        co_return;
      }
    }
    beast::flat_buffer buffer;
    bool keep_alive = true;
    while (keep_alive && !self->stopping) {
      // Phase 1: wait for the first byte of a request (idle timeout).
      session->idle = true;
      if (buffer.size() == 0) {
        lowest(stream).expires_after(opt.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
        if (ec) break;
        buffer.commit(n);
      }
      session->idle = false;
      // Phase 2: the rest of the header (header timeout), then the body.
      RequestParser parser;
      apply_limits(parser, opt);
      lowest(stream).expires_after(opt.header_timeout);
      {
        auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
        if (ec) {
          if (auto status = refusal_status(ec)) co_await write_refusal(stream, *status);
          break;
        }
      }
      if (!apply_path_limit(parser, opt)) {
        co_await write_refusal(stream, 413);
        break;
      }
      if (auto expect = parser.get()[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
        if (ec) break;
      }
      lowest(stream).expires_after(opt.body_timeout);
      {
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
        if (ec) {
          if (auto status = refusal_status(ec)) co_await write_refusal(stream, *status);
          break;
        }
      }
      ++self->stats.requests;
      auto& msg = parser.get();
      keep_alive = msg.keep_alive();
      ServerRequest req = to_server_request(msg);
      req.remote_address = remote;
      req.remote_port = remote_port;
      req.connection_id = session->id;

      // The handler runs with no socket deadline; cancellation reaches it on a forced stop.
      lowest(stream).expires_never();
      ServerResponse resp;
      try {
        resp = co_await self->handler(req);
      } catch (const boost::system::system_error& x) {
        if (x.code() == asio::error::operation_aborted) throw;
        spdlog::error("http handler for {} {} failed: {}", req.method, req.path, x.what());
        resp = ServerResponse::text(500, "internal error\n");
      } catch (const std::exception& x) {
        spdlog::error("http handler for {} {} failed: {}", req.method, req.path, x.what());
        resp = ServerResponse::text(500, "internal error\n");
      }

      if (resp.action == ServerResponse::Action::drop) break;
      if (resp.action == ServerResponse::Action::reset) {
        boost::system::error_code ec;
        lowest(stream).socket().set_option(asio::socket_base::linger(true, 0), ec);
        lowest(stream).socket().close(ec);
        break;
      }
      if (resp.websocket && beast::websocket::is_upgrade(msg)) {
        lowest(stream).expires_never();
        beast::websocket::stream<Stream> ws(std::move(stream));
        session->close_socket = [&ws] {
          boost::system::error_code ec;
          lowest(ws).socket().shutdown(tcp::socket::shutdown_both, ec);
          lowest(ws).socket().close(ec);
        };
        ws.set_option(beast::websocket::stream_base::timeout::suggested(beast::role_type::server));
        auto [ec] = co_await ws.async_accept(msg, kTuple);
        if (!ec) {
          WebSocketImpl<Stream> adaptor(ws);
          co_await resp.websocket(adaptor);
        }
        session->close_socket = nullptr;
        co_return;
      }

      if (self->stopping || resp.close) keep_alive = false;
      bhttp::response<bhttp::string_body> out;
      out.version(11);
      out.result(static_cast<unsigned>(resp.status));
      for (auto& h : resp.headers) out.insert(h.name, h.value);
      const std::size_t full = resp.body.size();
      out.body() = std::move(resp.body);
      out.keep_alive(keep_alive && !resp.truncate_body_at);
      out.prepare_payload();
      lowest(stream).expires_after(opt.write_timeout);
      if (resp.truncate_body_at && *resp.truncate_body_at < full) {
        bhttp::response_serializer<bhttp::string_body> sr(out);
        auto [ec, n] = co_await bhttp::async_write_header(stream, sr, kTuple);
        if (!ec) {
          auto [ec2, n2] =
              co_await asio::async_write(stream, asio::buffer(out.body().data(), *resp.truncate_body_at), kTuple);
          (void)ec2;
        }
        break;
      }
      auto [ec, n] = co_await bhttp::async_write(stream, out, kTuple);
      if (ec) break;
    }
    // Orderly close: TLS close_notify (bounded), then shut down the TCP send side.
    if constexpr (kTls) {
      if (!self->stopping) {
        lowest(stream).expires_after(std::chrono::seconds(1));
        auto [ec] = co_await stream.async_shutdown(kTuple);
        (void)ec;
      }
    }
    boost::system::error_code ignored;
    lowest(stream).socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest(stream).socket().close(ignored);
    session->close_socket = nullptr;
  }

  template <class Stream>
  static asio::awaitable<void> write_refusal(Stream& stream, unsigned status) {
    std::string body = status == 431   ? "request header too large\n"
                       : status == 413 ? "request body too large\n"
                                       : "bad request\n";
    co_await write_simple(stream, status, std::move(body));
  }

  template <class Stream>
  static asio::awaitable<void> write_simple(Stream& stream, unsigned status, std::string body) {
    bhttp::response<bhttp::string_body> out;
    out.version(11);
    out.result(status);
    out.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    out.keep_alive(false);
    out.body() = std::move(body);
    out.prepare_payload();
    lowest(stream).expires_after(std::chrono::seconds(5));
    auto [ec, n] = co_await bhttp::async_write(stream, out, kTuple);
    if (ec) co_return;
    // Lingering close: the client may still be sending a body we refused. Closing with unread
    // data would make the kernel send RST, and the client could lose our answer.
    boost::system::error_code ignored;
    lowest(stream).socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest(stream).expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink{};
    for (std::size_t total = 0; total < (256u << 10);) {
      auto [rec, got] = co_await lowest(stream).async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      total += got;
    }
  }

  void close_acceptor() {
    boost::system::error_code ec;
    acceptor.cancel(ec);
    acceptor.close(ec);
  }

  void force_close_all() {
    // Copy: closing may end sessions, which erase themselves.
    auto copy = sessions;
    for (auto& entry : copy) {
      // A copy, not the structured binding: clang < 16 cannot capture bindings.
      std::shared_ptr<Session> s = entry.second;
      // Emit from the loop thread while holding the session: co_spawn's cancellation
      // handler then runs inline instead of queueing a step that could outlive the session.
      asio::post(ex, [s] {
        if (!s->finished) s->cancel.emit(asio::cancellation_type::terminal);
      });
      if (s->close_socket) s->close_socket();
    }
  }

  asio::any_io_executor ex;
  ServerOptions options;
  RouteHandler handler;
  tcp::acceptor acceptor;
  asio::ssl::context ssl_ctx;
  bool use_tls = false;
  tcp::endpoint bound;
  bool stopping = false;
  // At the connection limit, room for a new connection: the longest-idle one (between
  // requests, or still in its TLS handshake) is closed, as nginx reuses keep-alive connections.
  // Otherwise connections that never send a request would lock everyone out until they time out.
  bool close_oldest_idle() {
    Session* oldest = nullptr;
    for (auto& [id, s] : sessions) {
      if (s->idle && !s->finished && s->close_socket && (oldest == nullptr || id < oldest->id)) oldest = s.get();
    }
    if (oldest == nullptr) return false;
    ++stats.idle_closed_at_limit;
    oldest->close_socket();
    oldest->close_socket = nullptr;
    return true;
  }

  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session = 0;
  asio::steady_timer drained;
  ServerStats stats;
};

Server::Server(asio::any_io_executor executor, ServerOptions options, RouteHandler handler)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(handler))) {}

Server::~Server() { stop_now(); }

Result<void> Server::start() { return impl_->start(); }

std::uint16_t Server::port() const noexcept { return impl_->bound.port(); }

std::string Server::local_address() const {
  const auto& ep = impl_->bound;
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

bool Server::tls() const noexcept { return impl_->use_tls; }

asio::awaitable<void> Server::stop(std::chrono::milliseconds grace) {
  auto impl = impl_;
  impl->stopping = true;
  impl->close_acceptor();
  // Phase one: idle connections go now; busy ones finish their response (Connection: close).
  for (auto& [id, s] : std::unordered_map(impl->sessions)) {
    if (s->idle && s->close_socket) s->close_socket();
  }
  if (!impl->sessions.empty()) {
    impl->drained.expires_after(grace);
    co_await impl->drained.async_wait(kTuple);
  }
  // Phase two: cancel what is left and wait briefly for the coroutines to unwind.
  if (!impl->sessions.empty()) {
    impl->force_close_all();
    impl->drained.expires_after(std::chrono::seconds(2));
    if (!impl->sessions.empty()) co_await impl->drained.async_wait(kTuple);
  }
}

void Server::stop_now() noexcept {
  if (!impl_) return;
  impl_->stopping = true;
  impl_->close_acceptor();
  impl_->force_close_all();
}

void Server::drop_connections() noexcept {
  auto copy = impl_->sessions;
  for (auto& [id, s] : copy) {
    if (s->close_socket) s->close_socket();
  }
}

ServerStats Server::stats() const noexcept {
  ServerStats s = impl_->stats;
  s.open_connections = impl_->sessions.size();
  return s;
}

}  // namespace nicsync::http
