#pragma once
// [watch.audit] in a running daemon: the audit feed, its socket listener and the route of
// OpenBao's http device, followed by the watcher; and what the API shows of them (metrics,
// /readyz and /v1/status details, a warning while the feed is down). Kept apart from
// runtime.cpp, which only calls these.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "nicsync/api/api_server.hpp"
#include "nicsync/app/config.hpp"
#include "nicsync/watch/audit_feed.hpp"
#include "nicsync/watch/audit_listener.hpp"
#include "nicsync/watch/watcher.hpp"

namespace nicsync::app {

/// [watch.audit]'s token file as `check` and a start read it (readable, long enough, not the
/// API's own token file): the line to report, if anything is wrong.
std::optional<std::string> check_audit_token_file(const Config& config);

class AuditFeedWiring {
 public:
  /// Builds the feed, binds its listener (errors say which address and why) and has the
  /// watcher follow it. Nothing when [watch.audit] is off.
  static Result<std::unique_ptr<AuditFeedWiring>> start(const Config& config, boost::asio::any_io_executor loop,
                                                        watch::Watcher& watcher);
  ~AuditFeedWiring();
  AuditFeedWiring(const AuditFeedWiring&) = delete;
  AuditFeedWiring& operator=(const AuditFeedWiring&) = delete;

  /// POST /v1/audit-feed for OpenBao's http device, when token_file is set.
  void add_api_hooks(api::ApiOptions& options, api::ApiHooks& hooks);
  void add_metrics(api::MetricsWriter& w) const;
  /// {"audit_feed": {...}} for /readyz and /v1/status.
  [[nodiscard]] boost::json::object details() const;
  /// Why the feed is not healthy, once it had the time to become so.
  [[nodiscard]] std::optional<std::string> warning() const;
  /// The listener stops and nothing more reaches the watcher.
  void stop();

 private:
  AuditFeedWiring(const Config& config, watch::Watcher& watcher);

  AuditFeedConfig config_;
  std::chrono::milliseconds poll_interval_;
  watch::Watcher& watcher_;
  std::shared_ptr<watch::AuditFeed> feed_;
  std::unique_ptr<watch::AuditListener> listener_;
  std::optional<Secret> token_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace nicsync::app
