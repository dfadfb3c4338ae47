#pragma once
/// \file
/// Vault's event stream (Enterprise ≥ 1.13 with events on; removed from Community ≥ 1.16 and
/// OpenBao): a websocket subscription to KV events that makes the daemon react faster. Events
/// can be lost, so callers resync after every (re)subscribe and keep polling as the truth.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"

namespace nicsync::vault {

class Client;

/// One KV event (reference §6.4–§6.5), from a CloudEvents JSON message.
struct KvEvent {
  std::string id;
  std::string event_type;  ///< "kv-v2/data-write", "kv-v2/destroy", "kv-v1/write", …
  std::string operation;   ///< "data-write", "destroy", … (the part after "kv-vN/")
  std::string mount;       ///< mount path without slashes, e.g. "secret"
  /// Key below the mount, e.g. "app/db"; empty for mount-wide events (config-write).
  std::string key;
  std::string path;       ///< metadata "path", e.g. "secret/destroy/app/db"
  std::string data_path;  ///< metadata "data_path" ("secret/data/app/db"); empty on deletes
  std::optional<std::int64_t> current_version;
  std::optional<std::int64_t> oldest_version;
  /// deleted_versions / undeleted_versions / destroyed_versions, when the event has them.
  std::vector<std::int64_t> versions;
  std::string vault_namespace;  ///< "data.namespace", empty for the root namespace
  std::string vault_index;      ///< metadata "vault_index" (X-Vault-Index), if sent
  std::string time;             ///< CloudEvents "time"
};

/// Parses one JSON event message; `vault_bad_response` when it is not a KV event message.
Result<KvEvent> parse_kv_event(std::string_view message);

struct EventSubscriberOptions {
  /// Event type glob to subscribe to.
  std::string event_type = "kv-v2/*";
  /// Full-jitter backoff between reconnects.
  std::chrono::milliseconds backoff_base{1'000};
  std::chrono::milliseconds backoff_cap{60'000};
  /// Connect + TLS + upgrade deadline.
  std::chrono::milliseconds connect_timeout{10'000};
  /// A subscription that receives nothing (not even Vault's 30 s pings) for this long is
  /// considered dead and reconnected.
  std::chrono::milliseconds idle_timeout{95'000};
};

/// Counters for status and metrics.
struct EventSubscriberStats {
  bool subscribed = false;
  std::uint64_t subscriptions = 0;  ///< successful upgrades
  std::uint64_t disconnects = 0;
  std::uint64_t events = 0;
  std::uint64_t malformed = 0;  ///< messages that were not KV events
  std::optional<Error> last_error;
};

/// Subscribes to KV events with the client's address, TLS settings, namespace and token.
/// Runs on the client's executor.
class EventSubscriber {
 public:
  using EventHandler = std::function<void(const KvEvent&)>;
  using SubscribedHandler = std::function<void()>;

  explicit EventSubscriber(Client& client, EventSubscriberOptions options = {});
  ~EventSubscriber();
  EventSubscriber(const EventSubscriber&) = delete;
  EventSubscriber& operator=(const EventSubscriber&) = delete;

  /// Subscribes and delivers events until cancelled (returns `cancelled`). After every
  /// successful (re)subscribe `on_subscribed` runs, so the caller can resync: events from
  /// then on are already being delivered, so nothing falls in the gap. A dropped
  /// connection is re-established with backoff. Returns `vault_events_unavailable` when the
  /// server answers the upgrade with 404, 405 or (for a live token) 403: fall back to polling.
  /// Handlers run on the loop and must not throw.
  boost::asio::awaitable<Result<void>> run(EventHandler on_event, SubscribedHandler on_subscribed);

  [[nodiscard]] EventSubscriberStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::vault
