#pragma once
/// \file
/// POST /v1/audit-feed: where OpenBao's `http` audit device posts each entry (reference
/// vault-audit.md §3.2), with a bearer token of its own (not the API's, which may trigger
/// syncs). Always answered 204 once the body is read: any other status is a device failure in
/// OpenBao, and with no other device that fails every request it serves. A post without the
/// token is answered the same and not read, only counted.

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>

#include "nicsync/core/secret.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::api {

inline constexpr std::string_view kAuditFeedPath = "/v1/audit-feed";

/// Hands one posted entry on, with whether it carried the token (called on the API's loop).
using AuditFeedTaker = std::function<void(std::string_view body, bool authorized)>;

/// Adds the route to `router`.
void add_audit_feed_route(http::Router& router, std::optional<Secret> token, AuditFeedTaker take);

}  // namespace nicsync::api
