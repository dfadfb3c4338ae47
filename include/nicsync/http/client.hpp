#pragma once
/// \file
/// Asynchronous HTTP client: one long-lived libcurl multi handle driven by the Asio loop.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"
#include "nicsync/http/message.hpp"

namespace nicsync::http {

/// How the client verifies servers and presents itself.
struct TlsOptions {
  std::string ca_file;      ///< PEM bundle; empty = system store (or ca_path)
  std::string ca_path;      ///< directory of hashed PEM CA files
  std::string client_cert;  ///< PEM client certificate (mutual TLS)
  std::string client_key;   ///< PEM key for client_cert
  bool verify = true;       ///< false only when the operator asked for it (VAULT_SKIP_VERIFY)
};

struct ClientOptions {
  TlsOptions tls;
  /// Connections kept and opened per host; more concurrent requests wait in line.
  long max_host_connections = 64;
  /// Connections in total (0 = unlimited).
  long max_total_connections = 0;
  std::chrono::milliseconds timeout{30'000};          ///< default whole-request deadline
  std::chrono::milliseconds connect_timeout{10'000};  ///< default connect deadline
  std::size_t max_response_bytes = 8u << 20;          ///< default response body cap
  std::string user_agent;                             ///< default "nicsync/<version>"
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<Header> headers;
  std::string body;
  std::optional<std::chrono::milliseconds> timeout;          ///< overrides ClientOptions::timeout
  std::optional<std::chrono::milliseconds> connect_timeout;  ///< overrides ClientOptions::connect_timeout
  std::optional<std::size_t> max_response_bytes;             ///< overrides ClientOptions::max_response_bytes
  /// Connect somewhere else than the URL's host while keeping its name for TLS
  /// (curl's CONNECT_TO, "host:port:connect-host:connect-port"); for a TLS server name override.
  std::string connect_to;
  /// The body or headers carry secrets: the client wipes its copies (body and header values)
  /// once the request is done.
  bool sensitive = false;
};

struct Response {
  int status = 0;
  std::vector<Header> headers;  ///< as received, names in their original case
  std::string body;

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return find_header(headers, name);
  }
  /// Retry-After of this response, if present and valid.
  [[nodiscard]] std::optional<std::chrono::milliseconds> retry_after() const;
};

/// Counters for tests and metrics.
struct ClientStats {
  std::uint64_t requests_started = 0;
  std::uint64_t requests_completed = 0;
  std::uint64_t connections_opened = 0;
  std::size_t in_flight = 0;
};

/// All requests share one curl multi handle (connection reuse, per-host caps) that is
/// driven entirely from the executor's thread; the loop is never blocked. Every HTTP status
/// is a success at this level (the caller interprets it); transport failures come back as
/// `Error`s with project codes. Cancelling the awaiting operation (e.g. through awaitable
/// operators) removes the transfer and completes with `Errc::cancelled`.
class Client {
 public:
  explicit Client(boost::asio::any_io_executor executor, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Performs one request. Must be awaited on the client's executor.
  boost::asio::awaitable<Result<Response>> request(Request request);

  /// Aborts every transfer (completing with `Errc::http_client_shutdown`) and refuses new ones.
  void shutdown();

  /// Frees the request handles kept for reuse (~8 KiB each; one per request that ran at the
  /// same time, up to the connection cap). Open connections stay. For a client that has gone
  /// idle after a burst; the next requests make new handles.
  void release_idle_handles();
  /// Request handles kept for reuse.
  [[nodiscard]] std::size_t idle_handles() const noexcept;

  [[nodiscard]] ClientStats stats() const noexcept;
  [[nodiscard]] const ClientOptions& options() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::http
