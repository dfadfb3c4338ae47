#pragma once
// The Vault client's shared state: its calls (client.cpp), authentication (client_auth.cpp), token
// lifetime (client_lifetime.cpp) and KV calls (client_kv.cpp), and the event subscriber.

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nicsync/core/secret.hpp"
#include "nicsync/http/client.hpp"
#include "nicsync/vault/client.hpp"
#include "vault/schedule.hpp"
#include "vault/wire.hpp"

#include <sys/types.h>

namespace nicsync::vault {

/// Identity of a token file: a new inode (rename) or a new mtime/size (rewrite) means the
/// writer (e.g. Vault Agent) replaced the token.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  std::int64_t mtime_ns = 0;
  off_t size = 0;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

/// One API call before it is sent.
struct Call {
  std::string method = "GET";
  std::string api_path;  ///< logical path after /v1/, not yet encoded
  std::string query;
  std::string body;
  bool sensitive = false;  ///< the body carries secrets: wiped after use
  wire::CallContext ctx;
};

/// Wipes a string when the scope ends (also when a coroutine unwinds).
struct WipeOnExit {
  std::string& s;
  ~WipeOnExit() { secure_wipe(s); }
};

/// A token in use and the login generation it came from.
struct HeldToken {
  Token token;
  std::uint64_t gen = 0;
};

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(boost::asio::any_io_executor executor, ClientConfig cfg, Clock& clk);

  // --- transport ------------------------------------------------------------------------
  /// Sends a call with retries, redirects and the per-call deadline; any final HTTP status is
  /// returned as a response, transport failures as errors.
  /// `call` must outlive the returned awaitable (callers await it at once); its body is the
  /// caller's to wipe.
  boost::asio::awaitable<Result<http::Response>> send(const Call& call, const Token* token);
  /// `send` with the current token; a 403 is judged (dead token or policy), answered by one
  /// re-login or token-file re-read where that can help, and otherwise returned as an error.
  boost::asio::awaitable<Result<http::Response>> authed(const Call& call);
  /// After a 403: the answer to give, or nullopt when a new login makes another try worthwhile.
  boost::asio::awaitable<std::optional<Result<http::Response>>> judge_403(const Call& call, HeldToken held,
                                                                          std::string body, bool& relogged);
  [[nodiscard]] http::Request make_request(const Call& call, const Token* token, const std::string& redirected_url,
                                           std::chrono::milliseconds remaining) const;
  /// For a redirect response: the URL to follow, an error, or nullopt when it names no target.
  [[nodiscard]] std::optional<Result<std::string>> redirect_target(const Call& call, const http::Response& r) const;
  /// The current token when it can be used as it is (no login, no wait).
  [[nodiscard]] std::optional<HeldToken> usable_token() const;

  // --- auth -----------------------------------------------------------------------------
  boost::asio::awaitable<Result<HeldToken>> ensure_token();
  /// Logs in unless someone already replaced token generation `observed_gen`; concurrent
  /// callers share one attempt.
  boost::asio::awaitable<Result<void>> login_shared(std::uint64_t observed_gen);
  boost::asio::awaitable<Result<void>> do_login();
  boost::asio::awaitable<Result<TokenInfo>> lookup_self_with(Token token);
  enum class RenewOutcome { renewed, refused, failed };
  boost::asio::awaitable<RenewOutcome> renew();
  boost::asio::awaitable<void> run_lifetime();

  void install_token(Token t, std::chrono::seconds ttl, bool renewable);
  void note_login_failure(const Error& e);
  [[nodiscard]] bool expired(Clock::steady_time now) const noexcept;
  [[nodiscard]] bool token_usable(Clock::steady_time now) const noexcept;
  [[nodiscard]] bool token_file_changed() const;
  [[nodiscard]] Error dead_token_error(const wire::CallContext& ctx, std::string_view body) const;
  [[nodiscard]] std::string resolve_credential_path(const std::string& path) const;
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
  void shutdown();

  template <class T>
  Result<T> finish_call(Result<T> r) {
    if (!r) {
      ++stats.calls_failed;
      if (r.error().code.category() == nicsync_category()) {
        ++stats.errors_by_code[std::string(errc_name(static_cast<Errc>(r.error().code.value())))];
      } else {
        ++stats.errors_by_code["other"];
      }
    }
    return r;
  }

  boost::asio::any_io_executor ex;
  ClientConfig config;
  Clock& clock;
  std::optional<Error> config_error;
  wire::BaseAddress base;
  std::chrono::milliseconds timeout{60'000};
  int max_retries = 2;
  std::unique_ptr<http::Client> http;
  std::mt19937_64 rng;

  // Token and its lifetime.
  Token token;
  std::uint64_t gen = 0;
  bool token_dead = false;
  std::optional<Clock::steady_time> expires_steady;
  std::optional<FileIdentity> token_file_id;
  detail::LeaseSchedule schedule;
  TokenState state;
  bool login_in_flight = false;
  Result<void> last_login;
  boost::asio::steady_timer login_done;        // cancelled when a shared login finishes
  boost::asio::steady_timer lifetime_timer;    // the lifetime loop sleeps here; cancel = re-plan
  std::uint64_t denial_relogin_gen = 0;        // token generation a policy 403 already re-logged into
  std::vector<std::string> verified_policies;  // of the token lookup-self last confirmed alive

  ClientStats stats;
  bool shut = false;
  std::vector<MountInfo> mounts;  // detected so far (locate), none with an empty path
};

}  // namespace nicsync::vault
