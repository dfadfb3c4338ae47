#pragma once
/// \file
/// The listener for Vault's (and OpenBao's) `socket` audit device (reference vault-audit.md
/// §3.1): plain TCP or a unix socket, any number of connections (one per Vault node), each
/// read continuously on a thread and an io_context of its own and handed line by line to an
/// `AuditFeed`. Vault writes each entry synchronously and never reads: a reader that falls
/// behind stalls every request Vault serves, so reading never waits for the daemon's loop.
///
/// A line is at most kMaxAuditLineBytes; a longer one is skipped (counted) up to its newline.
/// Half a line at the end of a connection is dropped (Vault writes the whole entry again on
/// its next connection), and bytes of two connections are never joined.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nicsync/core/result.hpp"
#include "nicsync/watch/audit_feed.hpp"

namespace nicsync::watch {

struct AuditListenerOptions {
  /// "127.0.0.1:9465", "[::1]:9465", "0.0.0.0:9465", or "unix:/run/nicsync/audit.sock".
  std::string listen;
  /// Addresses and ranges ("10.0.0.5", "10.0.0.0/24", "fd00::/8") whose connections are
  /// accepted; required off loopback (Vault's socket device has no TLS and no credentials).
  /// Empty on a loopback address: any local peer.
  std::vector<std::string> allow_from;
  /// A unix socket's mode and group (empty: the daemon's own): the Vault user must be able
  /// to write to it.
  std::uint32_t socket_mode = 0660;
  std::string socket_group;
  /// Connections open at once (an HA cluster opens one per node); more are closed at once.
  std::size_t max_connections = 64;
};

/// Whether `options` can be used (listen address, allow_from entries, a group that exists);
/// errors say what to write instead.
Result<void> validate(const AuditListenerOptions& options);

/// A parsed allow_from list: addresses and prefixes, IPv4-mapped IPv6 peers matched as IPv4.
class AddressRanges {
 public:
  static Result<AddressRanges> parse(const std::vector<std::string>& entries);
  [[nodiscard]] bool empty() const noexcept { return ranges_.empty(); }
  /// `address` as text ("10.0.0.5", "::ffff:10.0.0.5").
  [[nodiscard]] bool contains(std::string_view address) const;

 private:
  struct Range {
    std::vector<unsigned char> bytes;  // 4 or 16
    unsigned prefix = 0;
  };
  std::vector<Range> ranges_;
};

class AuditListener {
 public:
  /// Binds now (errors say which address and why) and starts reading on a thread of its own.
  static Result<std::unique_ptr<AuditListener>> start(AuditListenerOptions options, std::shared_ptr<AuditFeed> feed);
  /// Stops: closes the listener and every connection, joins the thread, removes the socket file.
  ~AuditListener();
  AuditListener(const AuditListener&) = delete;
  AuditListener& operator=(const AuditListener&) = delete;

  /// "127.0.0.1:41873" (the port bound), or "unix:/path".
  [[nodiscard]] std::string local_address() const;
  void stop();

  struct Impl;

 private:
  explicit AuditListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nicsync::watch
