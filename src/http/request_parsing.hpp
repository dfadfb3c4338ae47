#pragma once
// How a server session turns bytes into requests (the same Beast parser, limits and conversion
// as `Server`), callable without a socket: the API request path is fuzzed through it.

#include <optional>
#include <string_view>
#include <vector>

#include "nicsync/http/server.hpp"

namespace nicsync::http::detail {

struct ParsedRequests {
  /// The complete requests at the start of the bytes, in order (pipelined); parsing stops after
  /// one that does not keep the connection alive, as a session does.
  std::vector<ServerRequest> requests;
  /// The status a session answers before it closes, when the bytes then hold an unreadable
  /// request: 400, 413 (body too large) or 431 (header too large).
  std::optional<unsigned> refused;
  /// The bytes end inside a request (a session would wait for more, then time out).
  bool incomplete = false;
};

/// Parses `bytes` as a client's side of one connection, with `options`' header and body limits.
ParsedRequests parse_requests(std::string_view bytes, const ServerOptions& options);

}  // namespace nicsync::http::detail
