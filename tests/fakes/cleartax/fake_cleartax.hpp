#pragma once
/// \file
/// The test ClearTax: an in-process HTTP server that speaks ClearTax's token endpoint and
/// `store_nic_credentials` as reference/gst-domain.md §1 documents them (the choices made where
/// the reference is silent are listed at the top of fake_cleartax.cpp), plus a recording
/// endpoint under `/hooks/` that tests use as a webhook destination, fault injection and an
/// admin API (`/__admin/...`, same operations as the C++ methods below).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/http/message.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::fakes {

/// How the test ClearTax starts.
struct FakeClearTaxOptions {
  http::ServerOptions server;               ///< listen address, TLS files, limits
  std::vector<std::string> client_secrets;  ///< accepted `x-clear-client-secret` values
  std::vector<std::string> auth_tokens;     ///< static user auth tokens (accepted forever)
  /// Lifetime of issued access tokens; nothing = "never expires" (`valid_till: null`).
  std::optional<std::chrono::seconds> token_validity = std::chrono::hours(6);
  int daily_token_limit = 288;  ///< token calls per client secret per UTC day
  /// Source of time for token validity, the UTC day and receive timestamps; nullptr = real.
  const Clock* clock = nullptr;
  /// The oldest recorded requests are forgotten beyond this many.
  std::size_t max_recorded_requests = 1'000'000;
};

/// What an injected fault does to a matching request.
enum class FaultAction {
  none,           ///< nothing beyond the delay: the request is served normally
  status,         ///< answer `status` with `body` (default body per status) instead of serving
  success_false,  ///< answer HTTP 200 `{"success":false,...}` with `code` instead of serving
  hang,           ///< never answer (until reset or stop); the client's deadline must fire
  drop,           ///< close the connection without an answer
  reset,          ///< abort the connection with a TCP RST
  truncate,       ///< serve, then send only `truncate_at` bytes of the body and close
};

/// One fault rule. Rules are tried in the order they were added; the first one that matches
/// and has uses left applies.
struct Fault {
  /// Exact path, or a prefix ending in '*' ("/einv/*"); empty matches every ClearTax and hook path.
  std::string path;
  int times = 1;                       ///< how many matching requests it applies to; 0 = until cleared
  std::chrono::milliseconds delay{0};  ///< wait this long before acting (latency)
  FaultAction action = FaultAction::status;
  int status = 500;                                 ///< for `status`
  std::string body;                                 ///< for `status`; empty = a default body for the status
  std::optional<std::chrono::seconds> retry_after;  ///< adds `Retry-After` (status, success_false)
  std::size_t truncate_at = 0;                      ///< for `truncate`: body bytes sent before closing
  std::string code = "301";                         ///< for `success_false`: ClearTax or NIC code
  std::string message;                              ///< for `success_false`; empty = the code's usual message
  /// For hang/drop/reset: let the request take effect (store the credentials) before failing,
  /// like a server that did the work but whose answer was lost.
  bool apply_first = false;
};

/// Makes `store_nic_credentials` fail with `code` for requests whose fields match every field
/// that is set. NIC codes and ClearTax 502/201 are accepted (see the table in fake_cleartax.cpp).
struct BadCredentialRule {
  std::optional<std::string> gstin;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string code = "1019";
  std::string message;  ///< empty = the code's usual message
};

/// Credentials held for one GSTIN (the last successful store wins).
struct StoredCredential {
  std::string username;
  std::string password;
  std::uint64_t stores = 0;    ///< successful stores for this GSTIN so far
  std::uint64_t last_seq = 0;  ///< sequence number of the request that stored them
  std::chrono::system_clock::time_point updated_at;
};

/// A request as received (admin calls are not recorded).
struct RecordedRequest {
  std::uint64_t seq = 0;  ///< 1, 2, ... in receive order
  std::string method;
  std::string path;
  std::string query;
  std::vector<http::Header> headers;  ///< values of secret-bearing headers replaced by "***"
  std::string body;                   ///< exactly as received (tests read passwords from it)
  std::chrono::system_clock::time_point received_at;
  std::uint64_t connection_id = 0;
  /// Which credential authenticated it: "access:<n>" (n-th issued token), "static:<n>",
  /// "revoked:<n>", "expired:<n>", "revoked-static:<n>", "unknown", "missing", or "" where none
  /// is needed.
  std::string auth;
  int status = 0;       ///< HTTP status answered; 0 if dropped, reset or hung
  std::string outcome;  ///< "stored", "rejected:1019", "fault:drop", "token_issued", ...

  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return http::find_header(headers, name);
  }
};

/// Token endpoint counters.
struct TokenStats {
  int calls_today = 0;    ///< tokens issued today (UTC), all client secrets
  int refused_today = 0;  ///< calls answered 429 today
  int limit = 0;          ///< per client secret per day
  std::uint64_t issued_total = 0;
  int unauthorized = 0;  ///< calls with a missing or unknown secret (since reset)
};

/// What the recording endpoint answers for a path.
struct HookResponse {
  int status = 200;
  std::string body = R"({"ok":true})";
  std::vector<http::Header> headers = {{"Content-Type", "application/json"}};
};

class FakeClearTax {
 public:
  FakeClearTax(boost::asio::any_io_executor executor, FakeClearTaxOptions options);
  ~FakeClearTax();
  FakeClearTax(const FakeClearTax&) = delete;
  FakeClearTax& operator=(const FakeClearTax&) = delete;

  Result<void> start();
  /// "http://127.0.0.1:43817" (or https://).
  [[nodiscard]] std::string base_url() const;
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] http::Server& server() noexcept;
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);
  void stop_now() noexcept;

  // --- configuration ---------------------------------------------------------------------
  void add_client_secret(std::string secret);
  void add_auth_token(std::string token);
  /// Revokes a static user auth token (as deleting it in the E-Invoicing UI would).
  void revoke_auth_token(std::string_view token);
  void set_token_validity(std::optional<std::chrono::seconds> validity);
  void set_daily_token_limit(int limit);
  void add_fault(Fault fault);
  void clear_faults();
  void add_bad_credentials(BadCredentialRule rule);
  void clear_bad_credentials();
  /// Answer for recording-endpoint paths matching `path` (exact, or prefix with trailing '*').
  void set_hook_response(std::string path, HookResponse response);
  /// Revokes every issued access token (static tokens stay).
  void revoke_tokens();
  /// Makes every issued access token expired as of now.
  void expire_tokens();
  /// Ends every hung request by dropping its connection.
  void release_hangs();
  /// Back to the state after start(): stored credentials, requests, faults, rules, hook
  /// answers, tokens and counters are forgotten; secrets and options given at construction stay.
  void reset();

  // --- observation -----------------------------------------------------------------------
  [[nodiscard]] std::optional<StoredCredential> stored(std::string_view gstin) const;
  [[nodiscard]] std::map<std::string, StoredCredential> stored_all() const;
  /// Recorded requests whose path matches `path` (exact, prefix with trailing '*', empty = all).
  [[nodiscard]] std::vector<RecordedRequest> requests(std::string_view path = {}) const;
  [[nodiscard]] TokenStats token_stats() const;
  /// Every access token issued since start or reset, in issue order (for secret scans).
  [[nodiscard]] std::vector<std::string> issued_tokens() const;
  /// Requests currently held by a hang or delay fault.
  [[nodiscard]] std::size_t hung_requests() const noexcept;
  /// Completes once at least `count` requests matching `path` have been received (event-driven).
  boost::asio::awaitable<void> wait_for_requests(std::string path, std::size_t count);

  /// Paths of the ClearTax API this fake serves.
  static constexpr std::string_view kTokenPath = "/integration/v1/authz/token";
  static constexpr std::string_view kStorePath = "/einv/v2/nic_credentials/store_nic_credentials";

  struct State;

 private:
  std::shared_ptr<State> state_;
  std::unique_ptr<http::Server> server_;
};

/// Parses a fault from its admin-API JSON form (fields as in `Fault`, `delay_ms`,
/// `retry_after` in seconds, `action` by name). Errors say which field is wrong.
Result<Fault> fault_from_json(std::string_view json);

}  // namespace nicsync::fakes
