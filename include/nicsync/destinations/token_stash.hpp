#pragma once
/// \file
/// Where a destination keeps what a restart must not lose: ClearTax's access token and its
/// token-call counts (a new token revokes the previous one, and only 288 may be issued a day).
/// The content is the destination's own text and holds the token. With a ledger on one host it
/// is a 0600 file in the state directory; with a ledger shared by replicas it lives in the
/// ledger, sealed with a key the database never sees (app wires that one).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "nicsync/core/result.hpp"
#include "nicsync/core/secret.hpp"

namespace nicsync::destinations {

class TokenStash {
 public:
  virtual ~TokenStash() = default;
  /// The content saved under `name`, or nothing when there is none. Errors say why a saved
  /// content cannot be used (it is then replaced by the next save).
  virtual boost::asio::awaitable<Result<std::optional<Secret>>> load(std::string name) = 0;
  /// Saves `content` under `name`; completes once it is durable.
  virtual boost::asio::awaitable<Result<void>> save(std::string name, Secret content) = 0;
  /// Where `name` is kept, for log lines and status (no secret).
  [[nodiscard]] virtual std::string where(std::string_view name) const = 0;
};

/// A 0600 file `<directory>/<name>.token` per name, replaced atomically (temporary file, fsync,
/// rename, fsync of the directory) on a thread of its own.
std::shared_ptr<TokenStash> make_file_token_stash(std::string directory);

}  // namespace nicsync::destinations
