#pragma once
/// \file
/// The Vault client: KV v2/v1 reads and lists, mount detection, token / token-file / AppRole
/// auth and a token lifetime manager, over one keep-alive connection pool.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/vault/config.hpp"
#include "nicsync/vault/types.hpp"

namespace nicsync::vault {

/// The token as the lifetime manager sees it (for /readyz, status and metrics).
struct TokenState {
  AuthMethod method = AuthMethod::none;
  /// A token Vault accepted, not known to be revoked, and not past its expiry.
  bool valid = false;
  bool renewable = false;
  /// Wall-clock expiry; nothing when the token does not expire (root) or none is held.
  std::optional<Clock::system_time> expires_at;
  /// TTL granted by the last login or renewal.
  std::chrono::seconds ttl{0};
  std::optional<Clock::system_time> last_login_at;
  std::optional<Clock::system_time> last_renewal_at;
  /// The last login or renewal failure (cleared by the next success).
  std::optional<Error> last_error;
  std::uint64_t logins = 0;
  std::uint64_t login_failures = 0;
  std::uint64_t renewals = 0;
  std::uint64_t renewal_failures = 0;
};

/// Request counters (monotonic, for metrics).
struct ClientStats {
  std::uint64_t calls = 0;          ///< API calls made by callers (reads, lists, lookups)
  std::uint64_t calls_failed = 0;   ///< calls that returned an error
  std::uint64_t http_requests = 0;  ///< HTTP attempts, retries and auth calls included
  std::uint64_t retries = 0;        ///< attempts repeated after a retryable failure
  std::uint64_t relogins_after_403 = 0;
  std::uint64_t connections_opened = 0;  ///< TCP connections opened by the pool
  /// Failed calls by error code name (e.g. "vault_sealed").
  std::map<std::string, std::uint64_t> errors_by_code;
};

/// What `lookup-self` says about the current token (never the token itself).
struct TokenInfo {
  std::string accessor;
  std::string display_name;
  std::vector<std::string> policies;
  std::chrono::seconds ttl{0};  ///< remaining; 0 = no expiry
  bool renewable = false;
  std::optional<Clock::system_time> expire_time;
};

class EventSubscriber;

/// A Vault client. All methods must be called and awaited on the executor's thread. Each
/// call retries 412, 429, 5xx other than 501 and transport failures with full-jitter backoff
/// (honouring Retry-After) within one deadline; a 403 triggers one re-login (or re-read of the
/// token file) and a retry when the token turns out dead; errors are classified and say what
/// to do. Secret values come back as `Secret`s and the response buffers that held them are
/// wiped.
class Client {
 public:
  /// `config` is validated here; an invalid config makes every call fail with
  /// `config_invalid` (check `validate()` first to report it early).
  Client(boost::asio::any_io_executor executor, ClientConfig config, Clock& clock);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- auth ------------------------------------------------------------------------------

  /// Logs in now (token: lookup-self; token file: read it and lookup-self; AppRole: read the
  /// id files and log in). Concurrent logins share one attempt.
  boost::asio::awaitable<Result<void>> login();

  /// Keeps the token alive until cancelled: logs in (with backoff while that fails), renews
  /// at about two thirds of the TTL, and logs in again when renewal is refused, stops
  /// extending the TTL (max TTL) or the TTL runs into its grace slice. Never returns an error;
  /// failures show in `token_state()`.
  boost::asio::awaitable<void> run_token_lifetime();

  /// Makes the lifetime manager re-plan now (after a clock jump, a reload, or a hint that
  /// the token file changed).
  void recheck_token() noexcept;

  [[nodiscard]] TokenState token_state() const;

  /// `GET auth/token/lookup-self` with the current token.
  boost::asio::awaitable<Result<TokenInfo>> lookup_self();

  // --- KV ----------------------------------------------------------------------------------

  /// The KV engine and mount of `path` (`sys/internal/ui/mounts/<path>`, the CLI's rule).
  boost::asio::awaitable<Result<MountInfo>> detect_mount(VaultPath path);

  /// Where `path` lives: its mount, its key below the mount and the mount's KV version. Each
  /// mount is detected once and remembered: a path under a known mount (the longest that is a
  /// whole-segment prefix) asks Vault nothing. (A server without the preflight endpoint gives an
  /// empty mount, which is never reused for another path.)
  boost::asio::awaitable<Result<KvLocation>> locate(VaultPath path);
  /// `locate` for a path given as text.
  boost::asio::awaitable<Result<KvLocation>> locate(std::string_view path);
  /// Where `path` lives if its mount is known already, without a coroutine (the fast path of
  /// every poll); nothing when Vault has to be asked (then `locate`) or the path is not valid.
  [[nodiscard]] std::optional<KvLocation> known_location(std::string_view path) const;

  /// KV v2 data, current version or `version`. A soft-deleted or destroyed version gives
  /// `vault_version_deleted` / `vault_version_destroyed`, an absent key or version
  /// `vault_not_found`.
  boost::asio::awaitable<Result<KvSecret>> read_kv2(KvPath path, std::optional<std::int64_t> version = std::nullopt);
  /// KV v2 key metadata; `vault_not_found` when the key does not exist.
  boost::asio::awaitable<Result<KvMetadata>> read_kv2_metadata(KvPath path);
  /// KV v2 keys below `dir` of `mount` (folders end in `/`); empty when the folder is empty.
  boost::asio::awaitable<Result<std::vector<std::string>>> list_kv2(VaultPath mount, VaultPath dir);

  /// KV v1 data.
  boost::asio::awaitable<Result<KvSecret>> read_kv1(KvPath path);
  /// KV v1 keys below `dir` of `mount`.
  boost::asio::awaitable<Result<std::vector<std::string>>> list_kv1(VaultPath mount, VaultPath dir);

  /// Reads through the engine version given (`version` only for KV v2).
  boost::asio::awaitable<Result<KvSecret>> read(KvPath path, KvVersion kv,
                                                std::optional<std::int64_t> version = std::nullopt);

  [[nodiscard]] ClientStats stats() const;
  [[nodiscard]] const ClientConfig& config() const noexcept;

  /// Fails calls in flight and refuses new ones.
  void shutdown();

  struct Impl;

 private:
  friend class EventSubscriber;
  std::shared_ptr<Impl> impl_;
};

}  // namespace nicsync::vault
