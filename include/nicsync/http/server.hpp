#pragma once
/// \file
/// HTTP/1.1 listener on Boost.Beast: plain or TLS, coroutine sessions, a route table, body and
/// header limits, idle and header-read timeouts, and a two-phase shutdown. Used by the daemon's
/// API and by the test servers (which also need its fault actions and websocket upgrade).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"
#include "nicsync/http/message.hpp"

namespace nicsync::http {

/// A request as the handler sees it.
struct ServerRequest {
  std::string method;  ///< as sent, e.g. "GET", "LIST"
  std::string target;  ///< raw request target, e.g. "/v1/secret/data/x?version=2"
  std::string path;    ///< target up to '?', still percent-encoded
  std::string query;   ///< target after '?', raw
  std::vector<Header> headers;
  std::string body;
  std::string remote_address;
  std::uint16_t remote_port = 0;
  std::uint64_t connection_id = 0;  ///< unique per TCP connection

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return find_header(headers, name);
  }
  /// Value of query parameter `name` (percent-decoded), if present.
  [[nodiscard]] std::optional<std::string> query_param(std::string_view name) const;
};

/// A server-side websocket after a successful upgrade.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  virtual boost::asio::awaitable<Result<void>> send_text(std::string text) = 0;
  virtual boost::asio::awaitable<Result<void>> ping() = 0;
  /// Reads the next message; an error when the peer closed or the connection broke.
  virtual boost::asio::awaitable<Result<std::string>> read() = 0;
  virtual boost::asio::awaitable<void> close(std::uint16_t code, std::string reason) = 0;
  /// Drops the TCP connection without a websocket close frame.
  virtual void drop() noexcept = 0;
};

/// What to send back. Besides a normal response, test servers can ask for faults.
struct ServerResponse {
  enum class Action {
    respond,  ///< send the response
    drop,     ///< close the connection without answering
    reset,    ///< abort the connection with a TCP RST
  };
  int status = 200;
  std::vector<Header> headers;
  std::string body;
  Action action = Action::respond;
  /// Send the headers (with the full Content-Length) and only this many body bytes, then close.
  std::optional<std::size_t> truncate_body_at;
  /// Close the connection after this response.
  bool close = false;
  /// Accept a websocket upgrade and hand the socket to this function.
  std::function<boost::asio::awaitable<void>(WebSocket&)> websocket;

  static ServerResponse text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static ServerResponse json(int status, std::string body);
};

using RouteHandler = std::function<boost::asio::awaitable<ServerResponse>(const ServerRequest&)>;

/// Exact and prefix routes by method and path; "*" matches any method. Unknown paths give 404,
/// known paths with another method 405 (with Allow).
class Router {
 public:
  void add(std::string method, std::string path, RouteHandler handler);
  void add_prefix(std::string method, std::string prefix, RouteHandler handler);
  void set_fallback(RouteHandler handler);
  [[nodiscard]] boost::asio::awaitable<ServerResponse> dispatch(const ServerRequest& request) const;
  /// The router as a handler for `Server` (the router must outlive the server).
  [[nodiscard]] RouteHandler handler() const;

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix;
    RouteHandler handler;
  };
  std::vector<Route> routes_;
  RouteHandler fallback_;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  ///< "host:port", "[::1]:port"; port 0 picks one
  std::string tls_cert_file;           ///< PEM chain; with tls_key_file enables TLS
  std::string tls_key_file;
  /// PEM CA bundle: when set, clients must present a certificate signed by it (mutual TLS).
  std::string tls_client_ca_file;
  std::size_t body_limit = 1u << 20;
  /// Other body limits for requests to these exact paths (the target before any '?').
  std::vector<std::pair<std::string, std::size_t>> path_body_limits;
  std::size_t header_limit = 16u << 10;
  std::chrono::milliseconds idle_timeout{60'000};    ///< waiting for a request on an open connection
  std::chrono::milliseconds header_timeout{10'000};  ///< from the first byte to the end of the headers
  std::chrono::milliseconds body_timeout{30'000};    ///< reading the body
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t max_connections = 1024;
};

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t requests = 0;
  std::size_t open_connections = 0;
  std::uint64_t idle_closed_at_limit = 0;  ///< idle connections closed to make room at max_connections
};

class Server {
 public:
  Server(boost::asio::any_io_executor executor, ServerOptions options, RouteHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds, listens and starts accepting. Errors say which address failed and why.
  Result<void> start();
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// "127.0.0.1:43817" (the bound address).
  [[nodiscard]] std::string local_address() const;
  [[nodiscard]] bool tls() const noexcept;
  /// Two-phase stop: stop accepting and close idle connections, let requests in progress
  /// finish for up to `grace`, then cancel handlers and close everything.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);
  /// Immediate stop (phase two only); safe to call more than once.
  void stop_now() noexcept;
  /// Closes every open connection (not the listener): for fault injection.
  void drop_connections() noexcept;

  [[nodiscard]] ServerStats stats() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

/// Parses "host:port" / "[v6]:port" into host and port; errors say what is expected.
Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host) noexcept;

/// Percent-decodes `s` ('+' is kept as is). Returns nothing on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace nicsync::http
