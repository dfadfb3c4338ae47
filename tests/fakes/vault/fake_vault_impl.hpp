#pragma once
// Internals of the test Vault shared by its source files: reply helpers (Vault's envelopes and
// error bodies), the KV, token, policy and AppRole state, and FakeVault::Impl itself.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "fake_vault.hpp"
#include "go_json.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::fakes::detail {

using SysTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

/// Vault's system-wide default and maximum lease TTL (768h).
inline constexpr std::chrono::seconds kSystemMaxTtl{2764800};
inline constexpr std::string_view kVaultVersion = "1.19.0";
/// The KV plugin's running version (sys/internal/ui/mounts, audit entries).
inline constexpr std::string_view kKvPluginVersion = "v0.26.2+builtin";

// --- replies -------------------------------------------------------------------------------

/// A logical operation as Vault's HTTP layer derives it from the method.
enum class Op { read, list, create, update, patch, del };
std::string_view capability_for(Op op) noexcept;

/// One answer: exact body bytes plus what the pipeline needs to know about it.
struct Reply {
  int status = 200;
  std::string body;
  bool json_content_type = true;  ///< Content-Type: application/json (Vault sets it even on 204)
  std::vector<http::Header> headers;
  bool wrote = false;  ///< a successful write (gets X-Vault-Index in Enterprise mode)
  http::ServerResponse::Action action = http::ServerResponse::Action::respond;
  std::optional<std::size_t> truncate_at;
};

/// Vault's HTTPResponse envelope, serialised in Go field order.
struct Envelope {
  std::string request_id;
  std::string lease_id;
  bool renewable = false;
  std::int64_t lease_duration = 0;
  GoValue data;                       ///< null unless set
  std::vector<std::string> warnings;  ///< empty → null
  GoValue auth;                       ///< null unless set
  std::string mount_type;
  [[nodiscard]] std::string dump() const;
};

/// 200 with the envelope and Go's Encoder newline.
Reply reply_ok(const Envelope& e);
/// A backend's raw response (logical.RespondWithStatusCode): json.Marshal without newline,
/// mount_type "".
Reply reply_raw(int status, Envelope e);
/// {"errors":[...]} + newline.
Reply reply_errors(int status, const std::vector<std::string>& errors);
/// 204, no body, Content-Type still application/json.
Reply reply_no_content();
/// A namespace path as Vault keeps it: no leading slash, one trailing slash ("" for root).
std::string normalize_namespace(std::string_view ns);
/// Go's multierror text: "1 error occurred:\n\t* a\n\n", "2 errors occurred:\n\t* a\n\t* b\n\n".
std::string multierror(const std::vector<std::string>& errors);

// --- KV ------------------------------------------------------------------------------------

/// created_by / deleted_by / last_updated_by: a struct (actor, operation, entity_id,
/// client_id, each omitempty).
struct Attribution {
  std::string actor, operation, entity_id, client_id;
  [[nodiscard]] GoValue to_go() const;
};

struct KvVersion {
  SysTime created;
  std::optional<SysTime> deletion;
  bool destroyed = false;
  std::optional<Attribution> created_by, deleted_by;
  GoValue data;  ///< a map; null once destroyed
};

struct KvKey {
  SysTime created{}, updated{};
  std::int64_t current = 0, oldest = 0;
  std::int64_t max_versions = 0;
  bool cas_required = false;
  std::chrono::nanoseconds delete_version_after{0};
  std::map<std::string, std::string> custom_metadata;  ///< empty = null on the wire
  std::optional<Attribution> last_updated_by;
  std::map<std::int64_t, KvVersion> versions;
};

struct KvConfig {
  std::int64_t max_versions = 0;
  bool cas_required = false;
  std::chrono::nanoseconds delete_version_after{0};
};

struct KvMount {
  std::string path;  ///< full path with trailing '/', namespace included: "secret/", "team-a/secret/"
  std::string ns;    ///< namespace path of the mount ("" root, "team-a/")
  int version = 2;
  std::string accessor;
  std::string uuid;
  KvConfig config;
  std::map<std::string, KvKey> keys;  ///< v2
  std::map<std::string, GoValue> v1;  ///< v1: key → stored object
};

/// One event as the KV plugin emits it (before the bus wraps it in a CloudEvent).
struct KvEvent {
  std::string type;  ///< "kv-v2/data-write"
  GoValue metadata;  ///< map of strings
  std::string mount_path;
  std::string mount_accessor;
  std::string ns;
};

// --- auth ----------------------------------------------------------------------------------

struct Token {
  std::string id, accessor;
  std::vector<std::string> policies;
  std::string display_name = "token";
  std::string path = "auth/token/create";
  std::optional<std::map<std::string, std::string>> meta;
  std::int64_t num_uses = 0;
  bool orphan = false;
  bool renewable = true;
  bool batch = false;
  bool has_lease = true;  ///< false for the root token from `operator init` (no lease entry)
  std::string entity_id;
  std::string actor = "token";  ///< auth method, for KV attribution
  std::chrono::seconds creation_ttl{0};
  std::chrono::seconds explicit_max_ttl{0};
  std::chrono::seconds max_ttl{0};  ///< effective maximum; 0 = system
  SteadyTime issue_steady{};
  SysTime issue_sys{};
  std::optional<SteadyTime> expire_steady;  ///< none: never expires
  std::optional<SysTime> expire_sys;
  std::optional<SysTime> last_renewal_sys;
  [[nodiscard]] bool is_root() const;
};

struct Policy {
  std::string name;
  std::vector<PolicyRule> rules;
};

struct AppRole {
  std::string name, role_id, secret_id;
  TokenSpec spec;
  std::string entity_id;
};

/// Capabilities a token has on one path (the most specific matching rule wins; deny wins
/// within it). `rule` is the winning rule's merged subscribe_event_types.
struct Capabilities {
  std::set<std::string> caps;
  /// The policies whose rules made the winning one, sorted (audit entries' granting_policies).
  std::vector<std::string> granting;
  std::vector<std::string> subscribe_event_types;
  bool root = false;
  [[nodiscard]] bool has(std::string_view cap) const { return root || caps.count(std::string(cap)) > 0; }
};

/// Glob match of Vault policy paths: `+` is one segment, a trailing `*` any suffix.
bool policy_path_matches(std::string_view pattern, std::string_view path);
/// A shell-like glob with `*` only (event types).
bool event_glob_matches(std::string_view pattern, std::string_view text);

/// The authenticated caller of a logical request.
struct Caller {
  Token* token = nullptr;
  [[nodiscard]] Attribution attribution(std::string operation) const;
};

/// A logical request after the HTTP layer: operation, path relative to /v1/ (namespace
/// included, list paths end with '/'), and data (body object or query parameters).
struct LogicalRequest {
  Op op = Op::read;
  std::string path;
  GoValue data;  ///< a map (possibly empty)
  bool has_body = false;
  std::string request_id;
  Caller caller;
  const http::ServerRequest* http = nullptr;

  // What the token check found (authorize), for running the request after its audit entry was
  // written and for the audit entries themselves.
  std::string token_id;
  /// The caller as it was authorised: a use-limited token may be gone once the request ran.
  std::optional<Token> audit_caller;
  bool acl_checked = false;
  bool allowed = false;
  std::vector<std::string> granting_policies;
  std::string revoke_after;      ///< a use-limited token whose last use this request spent
  bool unauthenticated = false;  ///< a login: no token is looked at
};

class AuditDevice;

/// A live event websocket.
struct Subscription {
  explicit Subscription(boost::asio::any_io_executor ex) : wake(ex) {}
  std::string type_glob;
  std::string token_id;
  std::string ns;
  std::deque<std::string> queue;
  boost::asio::steady_timer wake;
  bool closed = false;
};

}  // namespace nicsync::fakes::detail

namespace nicsync::fakes {

struct FakeVault::Impl : std::enable_shared_from_this<FakeVault::Impl> {
  Impl(boost::asio::any_io_executor ex, FakeVaultOptions options);

  using Reply = detail::Reply;
  using LogicalRequest = detail::LogicalRequest;

  // time
  [[nodiscard]] detail::SysTime sys_now() const { return clock->system_now(); }
  [[nodiscard]] detail::SteadyTime steady_now() const { return clock->now(); }

  // HTTP entry (fake_vault.cpp)
  static boost::asio::awaitable<http::ServerResponse> serve(std::shared_ptr<Impl> self, http::ServerRequest req);
  boost::asio::awaitable<Reply> handle_v1(const http::ServerRequest& req, std::string rel, std::string& log_path);
  /// Vault's token check: who asks and whether the policies allow it; the refusal if not.
  std::optional<Reply> authorize(LogicalRequest& lr);
  /// Routes an authorised request to its backend.
  Reply execute(LogicalRequest& lr);
  http::ServerResponse finish(const http::ServerRequest& req, Reply reply) const;
  Reply health(const http::ServerRequest& req) const;
  Reply ui_mounts(const http::ServerRequest& req, std::string_view ns, const std::string& sub_path);
  Reply sys_other(LogicalRequest& lr);
  std::optional<Reply> take_fault(const std::string& rel, std::optional<FaultSpec>& pending_truncate);
  std::optional<Reply> rate_limited(const std::string& rel);
  std::string next_index();
  http::ServerResponse admin(const http::ServerRequest& req);
  [[nodiscard]] std::string redact_tokens(std::string_view path) const;
  void log_request(const std::string& method, const std::string& path, detail::SteadyTime at, int status);

  // events (fake_vault_events.cpp)
  Reply events_subscribe(const http::ServerRequest& req, const std::string& rel, std::string_view ns,
                         http::ServerResponse& upgrade);
  void emit(detail::KvEvent event);
  static boost::asio::awaitable<void> close_binary(http::WebSocket* ws);
  static boost::asio::awaitable<void> run_subscription(std::shared_ptr<Impl> self,
                                                       std::shared_ptr<detail::Subscription> sub, http::WebSocket* ws);

  // audit devices (fake_vault_audit.cpp)
  /// Runs a request between its audit entries: the request entry first (`refused`, the
  /// token check's refusal, is logged with its error and answered without running), then
  /// `run`, then the response entry. An entry no device took fails the request with a 500,
  /// before it ran or after, as Vault does.
  boost::asio::awaitable<Reply> audited(LogicalRequest& lr, std::optional<Reply> refused, std::function<Reply()> run);
  Result<void> start_audit();
  void stop_audit();

  // KV (fake_vault_kv.cpp)
  void add_mount(std::string path, int kv_version);
  detail::KvMount* find_mount(const std::string& path);
  const detail::KvMount* find_mount_exact(const std::string& path) const;
  detail::KvMount* find_mount_exact(const std::string& path);
  /// The operation Vault's existence check turns a POST/PUT into (create or update).
  detail::Op effective_op(detail::KvMount& m, detail::Op op, const std::string& rest) const;
  Reply kv(detail::KvMount& m, LogicalRequest& lr, const std::string& rest);
  Reply kv_v1(detail::KvMount& m, LogicalRequest& lr, const std::string& rest);
  Reply kv_v2(detail::KvMount& m, LogicalRequest& lr, const std::string& rest);
  std::int64_t kv2_write(detail::KvMount& m, const std::string& key, GoValue data, const detail::Attribution& by,
                         std::string event_operation);
  bool kv2_delete_latest(detail::KvMount& m, const std::string& key, const detail::Attribution& by);
  void kv2_delete_versions(detail::KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions,
                           const detail::Attribution& by);
  void kv2_undelete(detail::KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions,
                    const detail::Attribution& by);
  void kv2_destroy(detail::KvMount& m, const std::string& key, const std::vector<std::int64_t>& versions);
  void kv2_delete_metadata(detail::KvMount& m, const std::string& key);
  /// Emits a KV event: `path` is the mount path + `path_suffix`, `data_path` (when not empty)
  /// the mount path + `data_path_suffix`.
  void kv_event(const detail::KvMount& m, std::string type, const std::string& path_suffix,
                const std::string& data_path_suffix, std::vector<std::pair<std::string, std::string>> extra);
  detail::Token& token_from_spec(const TokenSpec& spec);
  GoValue version_metadata(const detail::KvKey& k, std::int64_t version) const;
  bool version_dead(const detail::KvVersion& v) const;

  // auth (fake_vault_auth.cpp)
  enum class TokenState { missing, dead, ok };
  TokenState lookup_token(const http::ServerRequest& req, detail::Token*& out);
  Reply dead_token_reply() const;
  Reply denied_reply() const;
  detail::Capabilities capabilities(const detail::Token& t, const std::string& path) const;
  bool has_mount_access(const detail::Token& t, const std::string& mount_path) const;
  detail::Token& issue_token(detail::Token t);
  detail::Token* find_token(const std::string& id);
  void revoke(const std::string& id);
  Reply token_endpoint(LogicalRequest& lr, const std::string& sub);
  Reply approle_login(LogicalRequest& lr);
  GoValue auth_block(const detail::Token& t) const;
  std::vector<std::string> sanitize_policies(std::vector<std::string> policies, bool add_default) const;

  boost::asio::any_io_executor ex;
  FakeVaultOptions options;
  Clock* clock;
  std::unique_ptr<http::Server> server;
  std::string scheme = "http";

  // state
  std::map<std::string, detail::KvMount> mounts;  ///< by full path with trailing '/'
  std::set<std::string> namespaces;               ///< "team-a/", ...
  std::map<std::string, detail::Token> tokens;
  std::vector<std::string> issued_ids;  ///< every token id ever issued (secret scans)
  std::map<std::string, detail::Policy> policies;
  std::map<std::string, detail::AppRole> approles;  ///< by role name
  std::string cluster_id, cluster_name;
  std::uint64_t write_index = 0;

  // modes and faults
  bool sealed = false;
  bool standby = false;
  HealthFlags health_flags{};
  std::chrono::milliseconds latency{0};
  std::deque<FaultSpec> faults;
  std::optional<std::string> redirect;
  std::int64_t rate_limit = 0;
  std::chrono::seconds rate_interval{1};
  bool rate_headers = false;
  detail::SteadyTime rate_window_start{};
  std::int64_t rate_window_count = 0;

  // audit
  std::vector<std::shared_ptr<detail::AuditDevice>> audit_devices;
  std::map<std::string, std::string> namespace_ids;      ///< namespace path → id, for audit entries
  std::map<std::string, std::string> builtin_accessors;  ///< "auth/token/" → "auth_token_1a2b3c4d"
  AuditStats audit_stats;
  int failing_request_entries = 0;  ///< fail_audit_entries
  int failing_response_entries = 0;

  // observation
  std::deque<LoggedRequest> log;
  std::vector<std::shared_ptr<detail::Subscription>> subscriptions;
};

}  // namespace nicsync::fakes
