#pragma once
// The ClearTax access-token cache: one small JSON file per destination in the state directory,
// mode 0600, replaced atomically (temp file, fsync, rename, fsync of the directory). It also
// keeps the token-call counters, so a restart neither spends one of the 288 daily calls nor
// forgets how many were spent.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"

namespace nicsync::destinations::detail {

struct TokenCacheRecord {
  std::string token_url;  ///< the endpoint that issued it (a cache from another environment is ignored)
  Secret access_token;    ///< empty = none held
  std::optional<std::chrono::system_clock::time_point> valid_till;  ///< nothing = never expires
  std::optional<std::chrono::system_clock::time_point> obtained_at;
  std::int64_t utc_day = -1;  ///< days since the epoch of `calls_today`
  int calls_today = 0;
  std::vector<std::int64_t> recent_calls;  ///< unix seconds of the calls in the last hour
};

/// The file's content; nothing if the file does not exist. Refuses (with a message saying why) a
/// file that is not a regular file owned by this user with mode 0600.
Result<std::optional<Secret>> read_token_cache_file(const std::string& path);

/// The record in a cache's content; `where` names the cache in errors (which never quote it).
Result<TokenCacheRecord> parse_token_cache(const Secret& content, std::string_view where);

/// The file's content. It holds the token: wipe it (secure_wipe) once written.
std::string serialize_token_cache(const TokenCacheRecord& record);

/// Writes `content` to `path` with mode 0600: temp file in the same directory, fsync, rename
/// over `path`, fsync of the directory. Blocks: call it off the event loop.
Result<void> write_file_atomically(const std::string& path, std::string_view content);

}  // namespace nicsync::destinations::detail
