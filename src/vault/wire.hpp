#pragma once
// Vault's wire format in one place: URLs and headers the client sends, JSON bodies it parses
// (with wiping allocation, because bodies carry secrets), and how statuses and error bodies
// become classified `Error`s. Pure functions, unit-tested against the reference's bodies; each
// section below names the file that defines it.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "nicsync/core/clock.hpp"
#include "nicsync/core/result.hpp"
#include "nicsync/http/message.hpp"
#include "nicsync/vault/client.hpp"
#include "nicsync/vault/types.hpp"

namespace nicsync::vault::wire {

// --- addresses, URLs, headers (wire_address.cpp) -------------------------------------------------

/// A parsed VAULT_ADDR.
struct BaseAddress {
  bool tls = false;
  std::string host;  ///< as in the URL (IPv6 in brackets)
  std::uint16_t port = 0;
  /// "https://host:port" — with a TLS server name, the name replaces the host here
  /// (so curl sends it as SNI and verifies it) and `connect_to` sends the traffic to the host.
  std::string url_base;
  std::string connect_to;  ///< curl CONNECT_TO entry, empty without a server name
  std::string display;     ///< "https://host:port" for messages
};

/// Parses `http(s)://host[:port][/]`; `server_name` (VAULT_TLS_SERVER_NAME) may be empty.
Result<BaseAddress> parse_address(std::string_view address, std::string_view server_name);

/// Percent-encodes a logical path for the URL like Go's url.URL.EscapedPath: unreserved
/// characters and "$&+,/:;=@" stay, the rest (space, "?", "#", "%", "*", non-ASCII …) is escaped.
std::string encode_path(std::string_view path);

/// `<base>/v1/<encoded api_path>[?query]`.
std::string make_url(std::string_view url_base, std::string_view api_path, std::string_view query = {});

/// The headers of every call: `X-Vault-Request: true`, `X-Vault-Token` (when a token is
/// given), `X-Vault-Namespace` (when not root), `Content-Type: application/json` with a body.
std::vector<http::Header> make_headers(const Token* token, const Namespace& ns, bool has_body);

// --- JSON (wire_json.cpp) ------------------------------------------------------------------------

/// Storage whose blocks are wiped before they are freed: everything parsed with it (strings
/// holding passwords and tokens, the parser's own scratch space) leaves no copy behind.
boost::json::storage_ptr wiping_storage() noexcept;

/// Parses a whole body with `wiping_storage()`. `what` names the call in the error
/// ("GET secret/data/x"); the message never quotes the body (it may hold secrets).
Result<boost::json::value> parse_json(std::string_view body, std::string_view what);

/// Room on the stack for parsing one response: a body of up to a few KiB (a metadata read
/// with a handful of versions) is parsed without a heap allocation, where the DOM of a small
/// body otherwise costs some fifty. What is parsed into it lives as long as the scratch;
/// the room is wiped when the scratch goes, and what overflows to the heap is
/// `wiping_storage()`'s.
class JsonScratch {
 public:
  JsonScratch() noexcept;
  ~JsonScratch();
  JsonScratch(const JsonScratch&) = delete;
  JsonScratch& operator=(const JsonScratch&) = delete;

 private:
  friend Result<boost::json::value> parse_json(std::string_view, std::string_view, JsonScratch&);
  alignas(16) unsigned char values_[6144];
  alignas(16) unsigned char temp_[2048];
  boost::json::monotonic_resource resource_;
};

/// `parse_json` into `scratch`: the value must not outlive it.
Result<boost::json::value> parse_json(std::string_view body, std::string_view what, JsonScratch& scratch);

// --- statuses to errors (wire_errors.cpp) --------------------------------------------------------

/// True for statuses worth another attempt: 412, 429 and 5xx except 501 (reference §9).
bool is_retryable_status(int status) noexcept;
/// True for transport failures worth another attempt (not TLS verification, bad URLs, caps).
bool is_retryable_error(const Error& e) noexcept;

/// Vault's `errors` strings, each flattened ("1 error occurred:\n\t* permission denied\n\n"
/// becomes "permission denied"), without control characters and cut at 300 bytes; the first 5
/// at most; empty if the body has none or is not JSON.
std::vector<std::string> error_messages(std::string_view body);
/// One Go multierror string flattened to "a; b".
std::string flatten_error(std::string_view message);

/// What a call was doing, for error messages that tell the operator what to fix.
struct CallContext {
  std::string method;       ///< "GET", "POST"
  std::string api_path;     ///< logical path after /v1/, e.g. "secret/data/nic/X"
  std::string action;       ///< "read", "list", "log in", "renew the token", …
  std::string capability;   ///< policy capability needed on api_path ("read", "list", "update")
  std::string not_found;    ///< what a 404 means here ("no secret at secret/nic/X")
  std::string denied_hint;  ///< replaces the "grant the capability" advice of a 403 when set
};

/// The `Error` for a non-2xx response (403 included: the caller decides between
/// `vault_token_invalid` and `vault_permission_denied` before calling this, see `dead_token`).
/// `retry_after` comes from the response headers.
Error error_from_response(const CallContext& ctx, int status, std::string_view body,
                          std::optional<std::chrono::milliseconds> retry_after, bool dead_token = false);

/// True when a 403 body says the token itself is invalid (Vault ≥ 1.17 wording).
bool says_invalid_token(std::string_view body);

// --- bodies (wire_kv.cpp, wire_auth.cpp) ---------------------------------------------------------

/// KV v2 data read; handles 200 and the 404 forms (`{"errors":[]}` → not found, raw
/// envelope with `data.data == null` → deleted / destroyed).
Result<KvSecret> parse_kv2_data(const KvPath& path, int status, std::string_view body);
Result<KvMetadata> parse_kv2_metadata(const KvPath& path, std::string_view body);
Result<KvSecret> parse_kv1_data(const KvPath& path, std::string_view body);
/// `data.keys` of a list response.
Result<std::vector<std::string>> parse_list(std::string_view what, std::string_view body);
/// `sys/internal/ui/mounts/<path>` response, with the CLI's version rule.
Result<MountInfo> parse_mount(std::string_view what, std::string_view body);

/// The `auth` block of a login or renew-self response. Leases (and lookup-self's TTL) longer
/// than 100 years count as 100 years.
struct AuthBlock {
  Token token;
  std::string accessor;
  std::vector<std::string> policies;
  std::chrono::seconds lease_duration{0};
  bool renewable = false;
  std::vector<std::string> warnings;
};
Result<AuthBlock> parse_auth(std::string_view what, std::string_view body);
Result<TokenInfo> parse_lookup_self(std::string_view body);

// --- scalars (wire_scalars.cpp) ------------------------------------------------------------------

/// Go's strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view text) noexcept;
/// Integer seconds ("30") or a Go duration ("1m30s", "1.5s", "250ms").
std::optional<std::chrono::milliseconds> parse_seconds_or_go_duration(std::string_view text) noexcept;

}  // namespace nicsync::vault::wire
