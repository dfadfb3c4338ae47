#include "app/audit_feed_wiring.hpp"

#include <filesystem>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "app/runtime.hpp"
#include "nicsync/core/duration.hpp"
#include "nicsync/core/timestamp.hpp"

namespace nicsync::app {
namespace json = boost::json;

namespace {

// The feed becomes healthy within a probe round trip of a device connecting; a warning before
// this much time after the start would only say that Vault had no request to log yet.
constexpr std::chrono::seconds kWarningGrace{60};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::optional<std::string> check_audit_token_file(const Config& config) {
  const auto& file = config.watch.audit.token_file;
  if (file.empty()) return std::nullopt;
  std::error_code ec;
  if (!config.api.token_file.empty() && std::filesystem::equivalent(file, config.api.token_file, ec)) {
    return fmt::format(
        "{}: is api.token_file; the http audit device needs a token of its own (one that cannot "
        "trigger syncs)",
        config.where("watch.audit.token_file"));
  }
  if (auto t = read_token_file(file); !t) {
    return fmt::format("{}: {}", config.where("watch.audit.token_file"), t.error().message);
  }
  return std::nullopt;
}

AuditFeedWiring::AuditFeedWiring(const Config& config, watch::Watcher& watcher)
    : config_(config.watch.audit),
      poll_interval_(config.watch.poll_interval),
      watcher_(watcher),
      started_(std::chrono::steady_clock::now()) {}

Result<std::unique_ptr<AuditFeedWiring>> AuditFeedWiring::start(const Config& config, boost::asio::any_io_executor loop,
                                                                watch::Watcher& watcher) {
  if (!config.watch.audit.enabled()) return std::unique_ptr<AuditFeedWiring>();
  std::unique_ptr<AuditFeedWiring> w(new AuditFeedWiring(config, watcher));
  const auto& c = w->config_;
  if (!c.token_file.empty()) {
    auto token = read_token_file(c.token_file);
    if (!token) return Error(token.error().code, config.where("watch.audit.token_file") + ": " + token.error().message);
    w->token_ = std::move(*token);
  }
  watch::AuditFeedOptions fo;
  fo.prefix = c.prefix;
  w->feed_ = watch::AuditFeed::create(std::move(loop), fo);
  if (!c.listen.empty()) {
    watch::AuditListenerOptions lo;
    lo.listen = c.listen;
    lo.allow_from = c.allow_from;
    lo.socket_mode = c.socket_mode;
    lo.socket_group = c.socket_group;
    auto listener = watch::AuditListener::start(std::move(lo), w->feed_);
    if (!listener) {
      return Error(listener.error().code, config.where("watch.audit.listen") + ": " + listener.error().message);
    }
    w->listener_ = std::move(*listener);
    spdlog::info("audit feed: listening on {} for Vault's socket audit device", w->listener_->local_address());
  }
  watch::AuditFollowOptions follow;
  follow.min_resync_gap = c.min_resync_gap;
  watcher.attach_audit_feed(w->feed_, follow);
  return w;
}

AuditFeedWiring::~AuditFeedWiring() { stop(); }

void AuditFeedWiring::stop() {
  if (listener_) listener_->stop();
  if (feed_) feed_->close();
}

void AuditFeedWiring::add_api_hooks(api::ApiOptions& options, api::ApiHooks& hooks) {
  if (!token_) return;
  options.audit_feed_token = token_;
  options.audit_feed_body_limit = watch::kMaxAuditLineBytes + 1;  // and its newline
  std::weak_ptr<watch::AuditFeed> feed = feed_;
  hooks.audit_feed_entry = [feed](std::string_view body, bool authorized) {
    if (auto f = feed.lock()) f->take_http_entry(body, authorized);
  };
}

void AuditFeedWiring::add_metrics(api::MetricsWriter& w) const {
  const auto s = feed_->stats();
  const auto h = watcher_.audit_feed_health();
  w.gauge("nicsync_audit_feed_connections", "Audit device connections open (socket device).", {},
          static_cast<double>(s.connections_open));
  w.counter("nicsync_audit_feed_connections_total", "Audit device connections by outcome.", {{"outcome", "accepted"}},
            static_cast<double>(s.connections_accepted));
  w.counter("nicsync_audit_feed_connections_total", "Audit device connections by outcome.", {{"outcome", "refused"}},
            static_cast<double>(s.connections_refused));
  const std::pair<const char*, std::uint64_t> outcomes[] = {
      {"matched", s.entries_matched},       {"ignored", s.entries_ignored},     {"duplicate", s.entries_duplicate},
      {"malformed", s.entries_malformed},   {"too_large", s.entries_too_large}, {"dropped", s.entries_dropped},
      {"unauthorized", s.http_unauthorized}};
  for (const auto& [outcome, n] : outcomes) {
    w.counter("nicsync_audit_feed_entries_total", "Audit entries by what became of them.", {{"outcome", outcome}},
              static_cast<double>(n));
  }
  w.gauge("nicsync_audit_feed_healthy",
          "1 while a device is connected and the daemon's own reads come back through the feed.", {},
          h.healthy ? 1 : 0);
  w.gauge("nicsync_audit_feed_last_entry_timestamp_seconds", "When the last audit entry arrived (0: none yet).", {},
          s.last_entry_at == Clock::system_time{}
              ? 0.0
              : std::chrono::duration<double>(s.last_entry_at.time_since_epoch()).count());
  w.histogram("nicsync_audit_feed_lag_seconds",
              "From a watched key's write (the entry's time) to the daemon reading its entry.", {}, s.lag);
  w.counter("nicsync_audit_feed_hint_reads_total", "Vault reads made because of audit entries (repeats included).", {},
            static_cast<double>(h.hint_reads));
  w.counter("nicsync_audit_feed_resyncs_total", "Full resyncs the audit feed caused (new connection, overflow).", {},
            static_cast<double>(h.resyncs));
}

json::object AuditFeedWiring::details() const {
  const auto s = feed_->stats();
  const auto h = watcher_.audit_feed_health();
  json::object o;
  o["listen"] = listener_ ? json::value(listener_->local_address()) : json::value(nullptr);
  o["http_device"] = token_.has_value();
  o["connected"] = h.connected;
  o["connections"] = s.connections_open;
  o["healthy"] = h.healthy;
  if (s.last_entry_at == Clock::system_time{}) {
    o["last_entry_at"] = nullptr;
  } else {
    o["last_entry_at"] = format_rfc3339(s.last_entry_at);
  }
  o["own_read_seen_seconds_ago"] =
      h.own_read_seen_at ? json::value(seconds_since(*h.own_read_seen_at)) : json::value(nullptr);
  o["entries"] = json::object{{"matched", s.entries_matched},     {"ignored", s.entries_ignored},
                              {"duplicate", s.entries_duplicate}, {"malformed", s.entries_malformed},
                              {"too_large", s.entries_too_large}, {"dropped", s.entries_dropped}};
  o["resyncs"] = h.resyncs;
  return json::object{{"audit_feed", std::move(o)}};
}

std::optional<std::string> AuditFeedWiring::warning() const {
  const auto h = watcher_.audit_feed_health();
  if (h.healthy || std::chrono::steady_clock::now() - started_ < kWarningGrace) return std::nullopt;
  const std::string polling = format_duration(poll_interval_);
  if (!h.connected) {
    return fmt::format(
        "audit feed: no audit device is connected{}; enable one in Vault (README: \"The audit feed\"); changes are "
        "found by polling every {} meanwhile",
        listener_ ? " to " + listener_->local_address() : std::string(), polling);
  }
  return fmt::format(
      "audit feed: a device is connected but this daemon's own reads {} through it (another Vault? an audit filter?); "
      "changes are found by polling every {} meanwhile",
      h.own_read_seen_at ? fmt::format("stopped coming back {:.0f} s ago", seconds_since(*h.own_read_seen_at))
                         : std::string("never came back"),
      polling);
}

}  // namespace nicsync::app
